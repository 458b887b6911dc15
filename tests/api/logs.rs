//! What the functions log (README "Operations"): no raw WhatsApp message id (a `wamid`
//! base64-encodes the recipient's number) and no payload values from a body we could not read;
//! the console function's one line per request.

use e2e::deliveries::bsuid::{bsuid_only, STRANGER_BSUID, USERNAME};
use e2e::deliveries::{assert_received, sign, text_at};
use e2e::webhooks::Captured;
use e2e::{TestEnv, SPAIN_DIGITS};
use lambda_http::Body;

#[tokio::test]
async fn an_activation_and_its_statuses_log_no_message_id() {
    let env = TestEnv::accepting().await;
    let (logs, _guard) = Captured::start();
    let session = env.pending("u1", SPAIN_DIGITS).await;
    env.deliver_messages(vec![session.button_reply(SPAIN_DIGITS)])
        .await;
    env.deliver_statuses(vec![session.status("read", SPAIN_DIGITS, e2e::T0 + 40)])
        .await;
    assert_eq!(env.session_of(&session.key).await["status"], "active");
    let text = logs.text();
    assert!(text.contains("activation reply"), "{text}");
    assert!(!text.contains("wamid"), "a message id was logged:\n{text}");
    assert!(
        !text.contains(SPAIN_DIGITS),
        "a phone was logged unmasked:\n{text}"
    );
}

#[tokio::test]
async fn a_signed_body_we_cannot_read_is_logged_without_its_values() {
    let env = TestEnv::accepting().await;
    let (logs, _guard) = Captured::start();
    // Well-formed JSON of the wrong shape: serde's message would quote the string.
    let body = format!(r#"{{"object":"whatsapp_business_account","entry":"{SPAIN_DIGITS}"}}"#);
    let signature = sign(&body);
    assert_received(&env.webhook_raw(Body::Text(body), Some(&signature)).await);
    let text = logs.text();
    assert!(
        text.contains("not a delivery we can read"),
        "the unreadable body is still reported:\n{text}"
    );
    assert!(
        !text.contains(SPAIN_DIGITS),
        "a payload value was logged:\n{text}"
    );
}

#[tokio::test]
async fn messages_from_an_unknown_bsuid_are_logged_without_their_values() {
    let env = TestEnv::accepting().await;
    let (logs, _guard) = Captured::start();
    for (body, n) in [("hello", 1), ("STOP", 2)] {
        let message = text_at(SPAIN_DIGITS, body, e2e::T0 + i64::from(n), n);
        assert_received(&env.deliver(&bsuid_only(message, STRANGER_BSUID)).await);
    }
    let text = logs.text();
    assert!(
        text.contains("message from an unknown business-scoped user id: not kept"),
        "{text}"
    );
    assert!(
        text.contains("opt-out of an unknown business-scoped user id kept"),
        "{text}"
    );
    for value in [STRANGER_BSUID, USERNAME, "wamid"] {
        assert!(!text.contains(value), "{value} was logged:\n{text}");
    }
}

#[tokio::test]
async fn the_console_logs_one_line_per_request_with_its_id_route_status_and_latency() {
    let (logs, _guard) = Captured::start();
    let asset = format!("/console/{}/app.js", console::VERSION);
    for (path, id) in [
        ("/console", "page-1"),
        (asset.as_str(), "asset-1"),
        ("/console/nothing", "missing-1"),
    ] {
        let req = lambda_http::http::Request::builder()
            .uri(format!("https://api.test{path}"))
            .header("x-request-id", id)
            .body(Body::Empty)
            .expect("a request");
        console::handle(req).await;
    }
    let lines: Vec<serde_json::Value> = logs
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let seen: Vec<(&str, &str, u64)> = lines
        .iter()
        .map(|l| {
            assert!(l["latency_ms"].as_f64().is_some(), "{l}");
            assert_eq!(l["message"], "request", "{l}");
            (
                l["span"]["request_id"].as_str().unwrap_or_default(),
                l["span"]["route"].as_str().unwrap_or_default(),
                l["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("page-1", "GET /console", 200),
            ("asset-1", "GET /console/{proxy+}", 200),
            ("missing-1", "GET /console/{proxy+}", 404),
        ]
    );
}
