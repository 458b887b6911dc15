//! Secret rotation without downtime (`updateWebhookSettings` with a new `secret`, README
//! "Outbound webhooks"): for 24 hours `webhook-signature` carries the new secret's signature and
//! the old one's, so the Standard Webhooks reference verifier holding either accepts every
//! delivery (live, test, redeliver); `X-Zernio-Signature` is the new secret's; after the 24
//! hours only the new one signs. Neither secret is shown or logged.
//!
//! The reference verifier checks `webhook-timestamp` against the wall clock (five minutes), so
//! these tests sign at the wall clock's now and set the rotation back in time instead.

use std::time::Duration;

use e2e::stream::TableStream;
use e2e::webhooks::{
    capture_logs, deliverer, header, hook_url, received, receiver, verifies, zernio_signature,
    HOOK_SECRET,
};
use e2e::{TestEnv, DAY, SPAIN_DIGITS};
use lambda_http::http::StatusCode;
use sandbox::clock::{Clock, SystemClock};
use serde_json::{json, Value};

/// The secret a rotation sets (`whsec_`, base64 of 32 bytes).
const NEW_SECRET: &str = "whsec_bmV3LXNlY3JldC1ieXRlcy1mb3ItdGhlLWhvb2stMzI=";
/// The secret of a second rotation.
const NEWEST_SECRET: &str = "whsec_dGhpcmQtc2VjcmV0LWJ5dGVzLWZvci10aGUtaG9vay0z";

/// One of each kind of delivery to `hook`, signed at the test clock's now: a live one (a
/// phone's `n`th text through the events function), a test, and a redelivery of the test.
async fn one_of_each(env: &TestEnv, key: &str, hook: &str, stream: &mut TableStream, n: u32) {
    env.text_from(SPAIN_DIGITS, &format!("text {n}"), n).await;
    let answer = stream
        .pump(env, &deliverer("10", Duration::from_secs(5)))
        .await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    let test = env.test_webhook(key, hook).await;
    assert_eq!(test.json()["success"], true, "{}", test.text);
    let event_id = test.json()["eventId"].as_str().unwrap().to_owned();
    let again = env.redeliver(key, hook, &event_id).await;
    assert_eq!(again.json()["success"], true, "{}", again.text);
}

/// The last three requests `server` got.
async fn last_three(server: &wiremock::MockServer) -> Vec<wiremock::Request> {
    let got = received(server).await;
    assert!(got.len() >= 3, "{} requests", got.len());
    got[got.len() - 3..].to_vec()
}

/// An active session of `user` at the wall clock's now, and a webhook of theirs to `server`
/// for `message.received`, created with [`HOOK_SECRET`] at `created_at`: the API key and the
/// webhook's id.
async fn hooked(env: &TestEnv, server: &wiremock::MockServer, created_at: i64) -> (String, String) {
    let now = SystemClock.now();
    env.clock.set(now);
    let s = env.active("u1", SPAIN_DIGITS).await;
    env.clock.set(created_at);
    let id = env
        .hook(&s.key, &hook_url(server), &["message.received"])
        .await;
    (s.key, id)
}

/// `PUT` of `secret` on `hook` (expects 200); the answer's `webhook`.
async fn rotate(env: &TestEnv, key: &str, hook: &str, secret: &str) -> Value {
    let reply = env
        .update_webhook(key, &json!({ "webhookId": hook, "secret": secret }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["webhook"].clone()
}

#[tokio::test]
async fn for_24_hours_after_a_rotation_either_secret_verifies_live_test_and_redelivered_deliveries()
{
    let env = TestEnv::accepting().await;
    let server = receiver(200).await;
    let now = SystemClock.now();
    // Rotated a minute less than a day before now: the old secret signs for one more minute.
    let rotated_at = now - DAY + 60;
    let (key, hook) = hooked(&env, &server, rotated_at - 60).await;
    env.clock.set(rotated_at);
    rotate(&env, &key, &hook, NEW_SECRET).await;
    let mut stream = TableStream::open(&env).await;

    env.clock.set(now);
    one_of_each(&env, &key, &hook, &mut stream, 1).await;
    let within = last_three(&server).await;
    for (request, kind) in within.iter().zip(["live", "test", "redelivered"]) {
        assert!(verifies(HOOK_SECRET, request), "{kind}: the old secret");
        assert!(verifies(NEW_SECRET, request), "{kind}: the new secret");
        assert_eq!(
            header(request, "webhook-signature").split(' ').count(),
            2,
            "{kind}: the new secret's, then the old one's"
        );
        assert_eq!(
            header(request, "x-zernio-signature"),
            zernio_signature(NEW_SECRET, &request.body),
            "{kind}: Zernio's signature, with the new secret"
        );
    }

    // A second past the day: the old secret signs no more.
    env.clock.set(rotated_at + DAY + 1);
    one_of_each(&env, &key, &hook, &mut stream, 2).await;
    let after = last_three(&server).await;
    for (request, kind) in after.iter().zip(["live", "test", "redelivered"]) {
        assert!(!verifies(HOOK_SECRET, request), "{kind}: the old secret");
        assert!(verifies(NEW_SECRET, request), "{kind}: the new secret");
        assert_eq!(header(request, "webhook-signature").split(' ').count(), 1);
    }
}

#[tokio::test]
async fn a_second_rotation_within_the_day_keeps_only_the_secret_it_replaced() {
    let env = TestEnv::accepting().await;
    let server = receiver(200).await;
    let now = SystemClock.now();
    let (key, hook) = hooked(&env, &server, now - 7_200).await;
    env.clock.set(now - 3_600);
    rotate(&env, &key, &hook, NEW_SECRET).await;
    env.clock.set(now - 60);
    rotate(&env, &key, &hook, NEWEST_SECRET).await;

    env.clock.set(now);
    let test = env.test_webhook(&key, &hook).await;
    assert_eq!(test.json()["success"], true, "{}", test.text);
    let request = received(&server).await.pop().expect("the test");
    assert!(verifies(NEWEST_SECRET, &request), "the newest secret");
    assert!(verifies(NEW_SECRET, &request), "the secret it replaced");
    assert!(
        !verifies(HOOK_SECRET, &request),
        "the first secret stopped signing at the second rotation"
    );
}

#[tokio::test]
async fn an_update_that_sends_the_current_secret_again_keeps_the_previous_one_signing() {
    let env = TestEnv::accepting().await;
    let server = receiver(200).await;
    let now = SystemClock.now();
    let (key, hook) = hooked(&env, &server, now - 120).await;
    env.clock.set(now - 60);
    rotate(&env, &key, &hook, NEW_SECRET).await;
    // A client that sends the whole webhook back on every change.
    let reply = env
        .update_webhook(
            &key,
            &json!({ "webhookId": hook, "name": "renamed", "secret": NEW_SECRET }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["webhook"]["name"], "renamed");

    env.clock.set(now);
    env.test_webhook(&key, &hook).await;
    let request = received(&server).await.pop().expect("the test");
    assert!(
        verifies(HOOK_SECRET, &request),
        "the old secret still signs"
    );
    assert!(verifies(NEW_SECRET, &request));
}

#[tokio::test]
async fn no_answer_and_no_log_line_shows_the_old_or_the_new_secret() {
    let env = TestEnv::accepting().await;
    let (logs, _guard) = capture_logs();
    let server = receiver(200).await;
    let now = SystemClock.now();
    let (key, hook) = hooked(&env, &server, now - 120).await;
    env.clock.set(now - 60);
    let mut answers = vec![rotate(&env, &key, &hook, NEW_SECRET).await.to_string()];
    env.clock.set(now);
    let test = env.test_webhook(&key, &hook).await;
    let event_id = test.json()["eventId"].as_str().unwrap().to_owned();
    answers.push(test.text);
    answers.push(env.redeliver(&key, &hook, &event_id).await.text);
    answers.push(env.list_webhooks(&key).await.to_string());
    answers.push(env.webhook_logs(&key, &[]).await.to_string());
    let request = received(&server).await.pop().expect("the redelivery");
    assert!(verifies(HOOK_SECRET, &request), "both signed");
    let lines = logs.text();
    for secret in [HOOK_SECRET, NEW_SECRET] {
        for answer in &answers {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
        assert!(!lines.contains(secret), "{secret} logged:\n{lines}");
    }
}
