//! `createWhatsAppSandboxSession` racing the phone owner and itself (`openapi.yaml`: the 200
//! and 502 responses; README, "Activation integrity"): a rollback only undoes this request's
//! own pending write, a slow send never overwrites what a newer one recorded, and a failure
//! to record a send is retried within the time left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::deliveries::button_reply;
use e2e::dynamo::BeforeEachRequest;
use e2e::meta::{self, payload_of};
use e2e::{Options, TestEnv, SPAIN, SPAIN_DIGITS};
use lambda_http::http::StatusCode;
use sandbox::store::Store;
use sandbox::App;
use serde_json::{json, Value};
use wiremock::ResponseTemplate;

/// The first template Meta's stub received (it records a request before answering it).
async fn first_template_received(env: &TestEnv) -> Value {
    for _ in 0..200 {
        if let Some(template) = env.sent_templates().await.into_iter().next() {
            return template;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no template reached the Graph API stub");
}

#[tokio::test]
async fn a_send_answered_after_the_timeout_while_the_owner_taps_the_button_leaves_the_session_active(
) {
    let env = TestEnv::with(Options {
        meta_timeout_ms: 1_500,
        ..Options::default()
    })
    .await;
    // Meta accepts, but only after the client gave up.
    meta::accept_with(&env.meta, None, Some(Duration::from_secs(4))).await;
    let key = env.api_key("u1").await;
    let (reply, ()) = tokio::join!(env.create(&key, SPAIN), async {
        // The template reached the phone; the owner taps its button while create waits.
        let template = first_template_received(&env).await;
        env.deliver_messages(vec![button_reply(
            SPAIN_DIGITS,
            &payload_of(&template),
            "wamid.NOT-YET-RECORDED",
            1,
        )])
        .await;
    });
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let session = reply.json()["session"].clone();
    assert_eq!(session["status"], "active", "create answers the truth");
    let listed = env.session_of(&key).await;
    assert_eq!(listed["status"], "active", "the owner's activation stays");
    assert_eq!(listed["id"], session["id"]);
    // The template was accepted after all: it counts.
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("2"));
}

#[tokio::test]
async fn a_slow_first_send_never_overwrites_the_message_id_of_a_newer_refresh() {
    let env = TestEnv::new().await;
    // The first send is accepted, but answers after a second; every later one at once.
    let slow = ResponseTemplate::new(200)
        .set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": format!("+{SPAIN_DIGITS}"), "wa_id": SPAIN_DIGITS }],
            "messages": [{ "id": "wamid.SLOW-FIRST", "message_status": "accepted" }],
        }))
        .set_delay(Duration::from_secs(1));
    meta::answer_once_then_accept(&env.meta, slow).await;
    let key = env.api_key("u1").await;
    let (first, second) = tokio::join!(env.create(&key, SPAIN), async {
        first_template_received(&env).await;
        env.create(&key, SPAIN).await
    });
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(
        first.json()["session"]["id"],
        second.json()["session"]["id"]
    );
    let item = env.session_item("u1").await;
    assert_eq!(
        item["activationMessageId"].as_s().unwrap(),
        "wamid.TEST000000",
        "the newer refresh's message id stays"
    );
}

/// Fails the next `left` `UpdateItem` requests before they leave, as a flaky network would.
fn failing_updates(left: Arc<AtomicUsize>) -> BeforeEachRequest {
    BeforeEachRequest::new("FailUpdates", move |operation| {
        let n = left.load(Ordering::SeqCst);
        if operation == "UpdateItem" && n > 0 {
            left.store(n - 1, Ordering::SeqCst);
            return Err("injected network failure".into());
        }
        Ok(())
    })
}

#[tokio::test]
async fn a_failure_to_store_the_message_id_is_retried_within_the_time_left() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let failures = Arc::new(AtomicUsize::new(sandbox::store::MAX_ATTEMPTS as usize + 1));
    let client = env.app.store.client().config().to_builder();
    let client = aws_sdk_dynamodb::Client::from_conf(
        client
            .interceptor(failing_updates(failures.clone()))
            .build(),
    );
    let app = App::new(
        env.app.config.clone(),
        Store::new(client, &env.table),
        env.app.graph_client(),
        env.clock.clone(),
    );
    let reply = env.create_on(&app, &key, SPAIN).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(failures.load(Ordering::SeqCst), 0, "every failure was hit");
    let item = env.session_item("u1").await;
    assert_eq!(
        item["activationMessageId"].as_s().unwrap(),
        "wamid.TEST000000"
    );
    assert_eq!(item["waId"].as_s().unwrap(), SPAIN_DIGITS);
}
