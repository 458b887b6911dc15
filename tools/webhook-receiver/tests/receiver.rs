//! The receiver accepts exactly what the service signs: deliveries signed by the service's own
//! code (`sandbox::outbound`) pass, and each way a delivery can be wrong is refused and named.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, StatusCode};
use sandbox::clock::SystemClock;
use sandbox::outbound::signing::{standard_signature, zernio_signature};
use sandbox::outbound::{
    attempt, CustomHeaders, Delivery, EgressClient, Outcome, Targets, WebhookSecret, WebhookUrl,
};
use webhook_receiver::{server, Receiver, Secret, DEV_SECRET};

const BODY: &str = r#"{"id":"evt_1","event":"message.received","timestamp":"2026-11-24T14:15:22Z","message":{"id":"wamid.1","text":"Echo: hi \"there\""}}"#;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The headers the service sends with `body`, signed with `secret` at `at`.
fn signed(secret: &str, body: &str, at: i64) -> HeaderMap {
    let key = WebhookSecret::parse(secret).expect("a secret");
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("a header value"));
    };
    set("x-zernio-event", "message.received".into());
    set("x-zernio-event-id", "evt_1".into());
    set(
        "x-zernio-signature",
        zernio_signature(&key, body.as_bytes()),
    );
    set("webhook-id", "evt_1".into());
    set("webhook-timestamp", at.to_string());
    set(
        "webhook-signature",
        standard_signature(&key, "evt_1", at, body.as_bytes()).expect("signed"),
    );
    headers
}

fn receiver() -> Receiver {
    Receiver::new(Secret::parse(DEV_SECRET).expect("the dev secret"))
}

#[test]
fn a_delivery_signed_by_the_service_is_printed_with_its_text() {
    let receiver = receiver();
    let headers = signed(DEV_SECRET, BODY, now());
    let (status, line) = receiver.receive(&headers, BODY.as_bytes());
    assert_eq!(status, StatusCode::OK, "{line}");
    assert_eq!(
        line,
        r#"verified message.received evt_1 text "Echo: hi \"there\"""#
    );
    let (status, line) = receiver.receive(&headers, BODY.as_bytes());
    assert_eq!(status, StatusCode::OK);
    assert!(line.ends_with("(again: same id)"), "{line}");
}

#[test]
fn a_secret_without_whsec_is_checked_with_its_text() {
    let receiver = Receiver::new(Secret::parse("plain secret").expect("a secret"));
    let (status, line) = receiver.receive(&signed("plain secret", BODY, now()), BODY.as_bytes());
    assert_eq!(status, StatusCode::OK, "{line}");
}

#[test]
fn each_broken_signature_is_refused_with_401_and_named() {
    let receiver = receiver();
    let good = signed(DEV_SECRET, BODY, now());
    let refused = |headers: &HeaderMap, body: &str| {
        let (status, line) = receiver.receive(headers, body.as_bytes());
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{line}");
        line
    };

    let tampered = BODY.replace("hi", "ho");
    assert!(refused(&good, &tampered).contains("X-Zernio-Signature is not the HMAC"));

    let other = signed(
        "whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci0=",
        BODY,
        now(),
    );
    assert!(refused(&other, BODY).contains("X-Zernio-Signature"));

    let mut upper = good.clone();
    let hex = good["x-zernio-signature"]
        .to_str()
        .expect("ascii")
        .to_uppercase();
    upper.insert(
        "x-zernio-signature",
        HeaderValue::from_str(&hex).expect("hex"),
    );
    assert!(refused(&upper, BODY).contains("not lowercase hex"));

    let mut missing = good.clone();
    missing.remove("x-zernio-signature");
    assert!(refused(&missing, BODY).contains("no X-Zernio-Signature"));

    // Zernio's signature right, the Standard Webhooks one wrong, missing or stale.
    let mut wrong = good.clone();
    wrong.insert("webhook-id", HeaderValue::from_static("evt_2"));
    assert!(
        refused(&wrong, BODY).contains("webhook-signature (Standard Webhooks): signature invalid")
    );
    let mut unsigned = good.clone();
    unsigned.remove("webhook-signature");
    assert!(refused(&unsigned, BODY).contains("missing header signature"));
    let stale = signed(DEV_SECRET, BODY, now() - 600);
    assert!(refused(&stale, BODY).contains("too old"));
}

#[test]
fn a_signed_body_that_is_no_event_or_disagrees_with_its_headers_is_400() {
    let receiver = receiver();
    let (status, line) = receiver.receive(&signed(DEV_SECRET, "[]", now()), b"[]");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{line}");
    assert!(line.contains("no \"event\""), "{line}");

    let mut headers = signed(DEV_SECRET, BODY, now());
    headers.insert("x-zernio-event", HeaderValue::from_static("message.read"));
    let (status, line) = receiver.receive(&headers, BODY.as_bytes());
    assert_eq!(status, StatusCode::BAD_REQUEST, "{line}");
    assert!(line.contains("x-zernio-event"), "{line}");
}

#[test]
fn session_and_status_lines_name_what_they_are_about() {
    let receiver = receiver();
    let line = |body: &str| {
        let headers = {
            let mut h = signed(DEV_SECRET, body, now());
            let event: serde_json::Value = serde_json::from_str(body).expect("json");
            let name = event["event"].as_str().expect("event").to_owned();
            h.insert(
                "x-zernio-event",
                HeaderValue::from_str(&name).expect("name"),
            );
            h
        };
        receiver.receive(&headers, body.as_bytes()).1
    };
    assert_eq!(
        line(
            r#"{"id":"evt_1","event":"whatsapp.sandbox.session.ended","session":{"id":"wss_1"},"reason":"revoked"}"#
        ),
        "verified whatsapp.sandbox.session.ended evt_1 session wss_1 reason revoked"
    );
    assert_eq!(
        line(r#"{"id":"evt_1","event":"message.read","message":{"id":"wamid.7"}}"#),
        "verified message.read evt_1 message wamid.7 (again: same id)"
    );
}

/// Over HTTP, from the service's own delivery code: 200 for the right secret, 401 otherwise.
#[tokio::test]
async fn the_services_delivery_reaches_the_receiver_over_http() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!(
        "http://{}/hooks/dev",
        listener.local_addr().expect("address")
    );
    tokio::spawn(server::serve(listener, receiver()));

    let egress = EgressClient::new(Targets::PrivateAllowed, std::time::Duration::from_secs(5))
        .expect("egress client");
    let url = WebhookUrl::parse(&url, Targets::PrivateAllowed).expect("a local url");
    let headers = CustomHeaders::parse(Vec::<(String, String)>::new()).expect("no headers");
    let send = |secret: &str| {
        let secrets = WebhookSecret::parse(secret).expect("a secret").into();
        let (url, headers, egress) = (&url, &headers, &egress);
        async move {
            let delivery = Delivery {
                url,
                event: "message.received",
                event_id: "evt_1",
                body: BODY.as_bytes(),
                secrets: &secrets,
                custom_headers: headers,
            };
            attempt(egress, &delivery, 1, &SystemClock).await
        }
    };
    let delivered = send(DEV_SECRET).await;
    assert_eq!(delivered.outcome, Outcome::Delivered, "{delivered:?}");
    assert!(
        delivered
            .response_body
            .starts_with("verified message.received evt_1"),
        "{delivered:?}"
    );
    let refused = send("whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci0=").await;
    assert_eq!(refused.status_code, Some(401), "{refused:?}");
}
