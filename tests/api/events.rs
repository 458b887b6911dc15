//! The sample events under `events/` are real API Gateway HTTP API v2 events: they parse the
//! way Lambda parses them and drive the real handlers (as `cargo lambda invoke --data-file`).

use std::future::Future;

use e2e::meta;
use e2e::{Reply, TestEnv, SPAIN_DIGITS};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use sandbox::api;
use sandbox::clock::Clock;
use sandbox::config::Secret;

/// The key the sample events carry; `make dev` provisions it for the local stack only.
const EVENTS_KEY: &str = "wsk_events_local_only_do_not_use_elsewhere_000000000000";
/// The app secret and verify token of the local stack, which signed the samples.
const DEV_APP_SECRET: &str = "dev-app-secret";
const DEV_VERIFY_TOKEN: &str = "dev-verify-token";

fn sample(name: &str) -> Request {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    lambda_http::request::from_str(&text)
        .unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"))
}

/// The sample event `name` through `handle`, answered as any test's request is (recorded for
/// the contract check under the event's own method and path).
async fn drive<F>(name: &str, handle: impl FnOnce(Request) -> F) -> Reply
where
    F: Future<Output = Response<Body>>,
{
    let request = sample(name);
    let (method, path) = (request.method().clone(), request.raw_http_path().to_owned());
    e2e::finish(method.as_str(), &path, handle(request).await)
}

async fn dev_env() -> TestEnv {
    let mut env = TestEnv::new().await;
    env.app.config.app_secret = Some(Secret::new(DEV_APP_SECRET));
    env.app.config.verify_token = Some(Secret::new(DEV_VERIFY_TOKEN));
    meta::accept(&env.meta).await;
    env.put_key(EVENTS_KEY, "events-user", "active").await;
    env
}

#[tokio::test]
async fn sample_session_events_drive_create_list_and_revoke() {
    let env = dev_env().await;
    let reply = drive("create.json", |r| api::create::handle(&env.app, r)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["session"]["phoneE164"], SPAIN_DIGITS);
    assert_eq!(reply.header("x-request-id"), Some("sample-post-sessions"));
    let reply = drive("list.json", |r| api::list::handle(&env.app, r)).await;
    assert_eq!(reply.json()["sessions"].as_array().unwrap().len(), 1);
    // The sample revokes a fixed id: the uniform not-found answer, which proves routing and auth.
    let reply = drive("revoke.json", |r| api::revoke::handle(&env.app, r)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["code"], "session_not_found");
}

#[tokio::test]
async fn the_sample_reply_event_drives_the_reply_function() {
    let env = dev_env().await;
    // The sample names a fixed session: the uniform not-found answer, which proves the route's
    // path parameter, the body and auth reach the handler.
    let reply = drive("reply.json", |r| api::reply::handle(&env.app, r)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.text, e2e::NOT_FOUND);
    assert_eq!(reply.header("x-request-id"), Some("sample-post-reply"));
}

#[tokio::test]
async fn sample_messaging_events_drive_send_and_messages() {
    let env = dev_env().await;
    let reply = drive("create.json", |r| api::create::handle(&env.app, r)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    env.activate("events-user", env.clock.now()).await;
    let reply = drive("send-message.json", |r| api::send::handle(&env.app, r)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("x-request-id"), Some("sample-post-messages"));
    assert_eq!(reply.json()["message"]["to"], SPAIN_DIGITS);
    let reply = drive("messages.json", |r| api::messages::handle(&env.app, r)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let messages = reply.json()["messages"].clone();
    assert_eq!(messages[0]["text"]["body"], "Hello from the sandbox!");
}

#[tokio::test]
async fn sample_webhook_events_are_correctly_signed_for_the_local_stack() {
    let env = dev_env().await;
    let reply = drive("webhook-verify.json", |r| api::webhook::handle(&env.app, r)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text, "1158201444");
    for name in ["webhook-button-reply.json", "webhook-status.json"] {
        let reply = drive(name, |r| api::webhook::handle(&env.app, r)).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text);
    }
}

#[tokio::test]
async fn sample_webhooks_events_drive_the_webhooks_function() {
    let env = dev_env().await;
    // As `make dev` runs it: private targets allowed, so the local receiver's URL is accepted.
    let egress = e2e::webhooks::local_egress();
    let run = |name| drive(name, |r| api::webhooks::handle(&env.app, &egress, r));
    let reply = run("webhooks-create.json").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("x-request-id"), Some("sample-webhooks-create"));
    let reply = run("webhooks-list.json").await;
    assert_eq!(reply.json()["webhooks"][0]["name"], "Local receiver");
    assert!(reply.json()["webhooks"][0].get("secret").is_none());
    let reply = run("webhooks-logs.json").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["pagination"]["limit"], 20);
    // The sample tests a fixed id: the uniform not-found answer, which proves routing and auth.
    let reply = run("webhooks-test.json").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    assert_eq!(reply.json()["code"], "webhook_not_found");
}

#[tokio::test]
async fn the_sample_console_event_gets_the_page() {
    let reply = drive("console.json", console::handle).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(reply.header("x-request-id"), Some("sample-get-console"));
    assert!(reply.text.contains("console/"), "{}", reply.text);
}
