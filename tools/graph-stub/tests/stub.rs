//! The stub as the create function and the webhook meet it: over HTTP, on a free port, with a
//! `wiremock` server standing in for the webhook so the reply's signature can be checked.

use std::time::Duration;

use graph_stub::server::{serve, Config};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "test-app-secret";

/// A stub on a free port whose replies go to a fresh webhook stand-in.
async fn start(auto_reply: bool) -> (String, MockServer) {
    // The tests' own reqwest clients may be built before the stub's: ring for them too, as the
    // stub installs it (alone, `cargo test -p graph-stub` has no other crate that would).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let webhook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/whatsapp/webhook"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "received": true })))
        .mount(&webhook)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = Config {
        phone_number_id: "109876543210987".into(),
        display_number: "12029087457".into(),
        access_token: Some("test-token".into()),
        app_secret: SECRET.into(),
        webhook_url: format!("{}/v1/whatsapp/webhook", webhook.uri()),
        auto_reply,
        reply_delay: Duration::from_millis(10),
    };
    tokio::spawn(serve(listener, config));
    (base, webhook)
}

fn template(to: &str) -> Value {
    json!({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
        "type": "template",
        "template": { "name": "sandbox_start", "language": { "code": "en_US" },
            "components": [{ "type": "button", "sub_type": "quick_reply", "index": "0",
                "parameters": [{ "type": "payload", "payload": "activate:wss_X" }] }] }
    })
}

async fn send(base: &str, number_id: &str, token: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/v26.0/{number_id}/messages"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn accepted_send_is_answered_like_meta_then_tapped_with_a_signed_delivery() {
    let (base, webhook) = start(true).await;
    let (status, body) = send(
        &base,
        "109876543210987",
        "test-token",
        &template("+34688246216"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["contacts"][0],
        json!({ "input": "+34688246216", "wa_id": "34688246216" })
    );
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid."), "{wamid}");

    // First the statuses, then the tap: four deliveries, each signed.
    let deliveries = received(&webhook, 4).await;
    for (delivery, expected) in deliveries.iter().zip(["sent", "delivered", "read"]) {
        let status = &delivery["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(status["status"], expected);
        assert_eq!(status["id"], wamid.as_str());
    }
    let all = webhook.received_requests().await.unwrap_or_default();
    let delivery = &all[3];
    let signature = delivery.headers.get("x-hub-signature-256").unwrap();
    assert!(sandbox::meta::signature::signature_ok(
        SECRET.as_bytes(),
        &delivery.body,
        signature.to_str().ok()
    ));
    let payload: Value = serde_json::from_slice(&delivery.body).unwrap();
    let value = &payload["entry"][0]["changes"][0]["value"];
    assert_eq!(value["metadata"]["phone_number_id"], "109876543210987");
    let message = &value["messages"][0];
    assert_eq!(message["from"], "34688246216");
    assert_eq!(
        message["context"],
        json!({ "from": "12029087457", "id": wamid })
    );
    assert_eq!(message["button"]["payload"], "activate:wss_X");
    assert_ne!(message["id"], wamid.as_str());
}

/// Waits for `n` webhook deliveries, checks each signature, and returns their JSON bodies.
async fn received(webhook: &MockServer, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let received = webhook.received_requests().await.unwrap_or_default();
        if received.len() >= n {
            return received
                .iter()
                .map(|r| {
                    let signature = r.headers.get("x-hub-signature-256").unwrap();
                    assert!(sandbox::meta::signature::signature_ok(
                        SECRET.as_bytes(),
                        &r.body,
                        signature.to_str().ok()
                    ));
                    serde_json::from_slice(&r.body).unwrap()
                })
                .collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} webhook deliveries",
            received.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_text_send_gets_tagged_statuses_and_a_quoting_echo() {
    let (base, webhook) = start(true).await;
    let body = json!({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+34688246216",
        "type": "text", "text": { "body": "ping" }, "biz_opaque_callback_data": "msg:1:oAb:u1"
    });
    let (status, answer) = send(&base, "109876543210987", "test-token", &body).await;
    assert_eq!(status, 200, "{answer}");
    let wamid = answer["messages"][0]["id"].as_str().unwrap().to_owned();
    let deliveries = received(&webhook, 4).await;
    for (delivery, expected) in deliveries.iter().zip(["sent", "delivered", "read"]) {
        let status = &delivery["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(status["status"], expected);
        assert_eq!(status["biz_opaque_callback_data"], "msg:1:oAb:u1");
        assert_eq!(status["recipient_id"], "34688246216");
    }
    let echo = &deliveries[3]["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(echo["type"], "text");
    assert_eq!(echo["text"]["body"], "Echo: ping");
    assert_eq!(echo["context"]["id"], wamid.as_str());
    assert_eq!(echo["from"], "34688246216");
}

#[tokio::test]
async fn reject_range_token_and_number_id_fail_with_meta_error_objects() {
    let (base, webhook) = start(true).await;
    let cases = [
        (
            "109876543210987",
            "test-token",
            "+34 600 000 042",
            400,
            131030,
        ),
        ("109876543210987", "wrong-token", "+34688246216", 401, 190),
        ("999", "test-token", "+34688246216", 400, 100),
    ];
    for (number_id, token, to, status, code) in cases {
        let (got, body) = send(&base, number_id, token, &template(to)).await;
        assert_eq!(
            (got, body["error"]["code"].as_i64()),
            (status, Some(code)),
            "{body}"
        );
        assert!(body["error"]["fbtrace_id"].is_string(), "{body}");
    }
    let (got, body) = send(&base, "109876543210987", "test-token", &json!({ "to": 1 })).await;
    assert_eq!(
        (got, body["error"]["code"].as_i64()),
        (400, Some(100)),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        webhook
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "refused sends are never answered by the phone"
    );
}

#[tokio::test]
async fn no_auto_reply_means_no_delivery() {
    let (base, webhook) = start(false).await;
    let (status, _) = send(
        &base,
        "109876543210987",
        "test-token",
        &template("+34688246216"),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(webhook
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}
