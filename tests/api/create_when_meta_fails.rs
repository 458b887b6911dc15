//! `createWhatsAppSandboxSession` when Meta refuses, fails or cannot be reached (`openapi.yaml`:
//! the `platform_error` 400 and the 502 responses): the claim is undone and the table is left
//! exactly as before.

use std::time::Duration;

use e2e::meta;
use e2e::{assert_error, Options, TestEnv, DAY, SPAIN, UK};
use lambda_http::http::StatusCode;
use sandbox::App;
use serde_json::json;

/// A create for `SPAIN` through `app` answers 502 `upstream_unavailable` and leaves the table
/// exactly as before.
async fn assert_502_and_rolled_back(env: &TestEnv, app: &App, key: &str) {
    let before = env.snapshot().await;
    let reply = env.create_on(app, key, SPAIN).await;
    assert_error(
        &reply,
        StatusCode::BAD_GATEWAY,
        "api_error",
        "upstream_unavailable",
    );
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn meta_error_rolls_back_a_new_session_exactly_and_returns_metas_message() {
    let env = TestEnv::new().await;
    let meta_error = meta::error_body(
        131030,
        "(#131030) Recipient phone number not in allowed list",
    );
    meta::answer(&env.meta, 400, meta_error.clone()).await;
    let key = env.api_key("u1").await;
    let before = env.snapshot().await;
    let reply = env.create(&key, SPAIN).await;
    let err = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "platform_error",
        "whatsapp_send_failed",
    );
    assert_eq!(
        err["error"],
        "(#131030) Recipient phone number not in allowed list"
    );
    assert_eq!(err["platform"], "meta");
    assert_eq!(err["platformError"], meta_error["error"]);
    assert_eq!(env.snapshot().await, before, "table exactly as before");
    assert_eq!(env.sessions(&key).await, json!([]));
}

#[tokio::test]
async fn meta_error_on_refresh_leaves_the_pending_session_with_its_old_expiry() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    meta::accept(&env.meta).await;
    env.create(&key, SPAIN).await;
    meta::start_refusing(&env.meta, 132015, "(#132015) Template is paused").await;
    env.clock.advance(3_600);
    let before = env.snapshot().await;
    let reply = env.create(&key, SPAIN).await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "platform_error",
        "whatsapp_send_failed",
    );
    assert_eq!(env.snapshot().await, before, "table exactly as before");
    let list = env.list(Some(&key)).await.json();
    assert_eq!(list["sessions"][0]["expiresAt"], "2036-11-25T14:15:22Z");
}

#[tokio::test]
async fn meta_error_after_an_expired_session_restores_the_expired_item_exactly() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    env.create(&key, SPAIN).await;
    env.clock.advance(2 * DAY);
    meta::start_refusing(&env.meta, 100, "(#100) Invalid parameter").await;
    let before = env.snapshot().await;
    let reply = env.create(&key, UK).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn meta_5xx_without_error_object_is_502_and_rolled_back() {
    let env = TestEnv::new().await;
    meta::answer_raw(&env.meta, 503, "<html>Service Unavailable</html>").await;
    let key = env.api_key("u1").await;
    assert_502_and_rolled_back(&env, &env.app, &key).await;
}

#[tokio::test]
async fn meta_timeout_is_502_and_rolled_back() {
    let env = TestEnv::with(Options {
        meta_timeout_ms: 300,
        ..Options::default()
    })
    .await;
    meta::accept_with(&env.meta, None, Some(Duration::from_secs(2))).await;
    let key = env.api_key("u1").await;
    assert_502_and_rolled_back(&env, &env.app, &key).await;
    assert_eq!(
        env.sent_templates().await.len(),
        1,
        "sent once, never retried"
    );
}

#[tokio::test]
async fn meta_unreachable_is_502_and_rolled_back() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    // Point the Graph client at a port nobody listens on.
    let app = env.app_with_unreachable_graph();
    assert_502_and_rolled_back(&env, &app, &key).await;
}

#[tokio::test]
async fn rollback_never_clobbers_a_concurrent_refresh_whose_send_was_accepted() {
    let env = TestEnv::new().await;
    // The first send fails after a second; every later send is accepted at once.
    let failing = wiremock::ResponseTemplate::new(400)
        .set_body_json(meta::error_body(131000, "(#131000) Something went wrong"))
        .set_delay(Duration::from_secs(1));
    meta::answer_once_then_accept(&env.meta, failing).await;
    let key = env.api_key("u1").await;
    let (first, second) = tokio::join!(env.create(&key, SPAIN), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        env.create(&key, SPAIN).await
    });
    assert_eq!(first.status, StatusCode::BAD_REQUEST, "{}", first.text);
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    // The second caller was told its session exists: it must.
    let list = env.list(Some(&key)).await.json();
    assert_eq!(list["sessions"][0]["id"], second.json()["session"]["id"]);
}
