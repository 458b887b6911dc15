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
    deliverer, header, hook_url, received, receiver, verifies, zernio_signature, Captured,
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

/// A user with an active session at the wall clock's now and a webhook of theirs to a receiver
/// answering 200, for `message.received`, created with [`HOOK_SECRET`] a day and an hour ago,
/// then rotated to each secret `rotations` names, that many seconds before now; the clock at
/// now.
struct Rotated {
    env: TestEnv,
    server: wiremock::MockServer,
    key: String,
    hook: String,
    /// The wall clock's now when it was set up: deliveries are signed at it.
    now: i64,
}

async fn rotated(rotations: &[(&str, i64)]) -> Rotated {
    let env = TestEnv::accepting().await;
    let server = receiver(200).await;
    let now = SystemClock.now();
    env.clock.set(now);
    let key = env.active("u1", SPAIN_DIGITS).await.key;
    env.clock.set(now - DAY - 3_600);
    let hook = env
        .hook(&key, &hook_url(&server), &["message.received"])
        .await;
    for (secret, ago) in rotations {
        env.clock.set(now - ago);
        rotate(&env, &key, &hook, secret).await;
    }
    env.clock.set(now);
    Rotated {
        env,
        server,
        key,
        hook,
        now,
    }
}

/// `PUT` of `secret` on `hook` (expects 200); the answer's `webhook`.
async fn rotate(env: &TestEnv, key: &str, hook: &str, secret: &str) -> Value {
    let reply = env
        .update_webhook(key, &json!({ "webhookId": hook, "secret": secret }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["webhook"].clone()
}

/// A test to `r`'s webhook now (expects success): the request its receiver got.
async fn tested(r: &Rotated) -> wiremock::Request {
    let test = r.env.test_webhook(&r.key, &r.hook).await;
    assert_eq!(test.json()["success"], true, "{}", test.text);
    received(&r.server).await.pop().expect("the test")
}

#[tokio::test]
async fn for_24_hours_after_a_rotation_either_secret_verifies_live_test_and_redelivered_deliveries()
{
    // Rotated a minute less than a day before now: the old secret signs for one more minute.
    let r = rotated(&[(NEW_SECRET, DAY - 60)]).await;
    let (env, key, hook) = (&r.env, r.key.as_str(), r.hook.as_str());
    let mut stream = TableStream::open(env).await;
    one_of_each(env, key, hook, &mut stream, 1).await;
    for (request, kind) in last_three(&r.server).await.iter().zip(KINDS) {
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
    env.clock.set(r.now + 61);
    one_of_each(env, key, hook, &mut stream, 2).await;
    for (request, kind) in last_three(&r.server).await.iter().zip(KINDS) {
        assert!(!verifies(HOOK_SECRET, request), "{kind}: the old secret");
        assert!(verifies(NEW_SECRET, request), "{kind}: the new secret");
        assert_eq!(header(request, "webhook-signature").split(' ').count(), 1);
    }
}

/// The kinds of delivery [`one_of_each`] makes, in order.
const KINDS: [&str; 3] = ["live", "test", "redelivered"];

#[tokio::test]
async fn a_second_rotation_within_the_day_keeps_only_the_secret_it_replaced() {
    let r = rotated(&[(NEW_SECRET, 3_600), (NEWEST_SECRET, 60)]).await;
    let request = tested(&r).await;
    assert!(verifies(NEWEST_SECRET, &request), "the newest secret");
    assert!(verifies(NEW_SECRET, &request), "the secret it replaced");
    assert!(
        !verifies(HOOK_SECRET, &request),
        "the first secret stopped signing at the second rotation"
    );
}

#[tokio::test]
async fn an_update_that_sends_the_current_secret_again_keeps_the_previous_one_signing() {
    let r = rotated(&[(NEW_SECRET, 60)]).await;
    // A client that sends the whole webhook back on every change.
    let again = json!({ "webhookId": r.hook, "name": "renamed", "secret": NEW_SECRET });
    let reply = r.env.update_webhook(&r.key, &again).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["webhook"]["name"], "renamed");
    let request = tested(&r).await;
    assert!(
        verifies(HOOK_SECRET, &request),
        "the old secret still signs"
    );
    assert!(verifies(NEW_SECRET, &request));
}

#[tokio::test]
async fn no_answer_and_no_log_line_shows_the_old_or_the_new_secret() {
    let (logs, _guard) = Captured::start();
    let r = rotated(&[]).await;
    let (env, key, hook) = (&r.env, r.key.as_str(), r.hook.as_str());
    let mut answers = vec![rotate(env, key, hook, NEW_SECRET).await.to_string()];
    let test = env.test_webhook(key, hook).await;
    let event_id = test.json()["eventId"].as_str().unwrap().to_owned();
    answers.push(test.text);
    answers.push(env.redeliver(key, hook, &event_id).await.text);
    answers.push(env.list_webhooks(key).await.to_string());
    answers.push(env.webhook_logs(key, &[]).await.to_string());
    let request = received(&r.server).await.pop().expect("the redelivery");
    assert!(verifies(HOOK_SECRET, &request), "both signed");
    let lines = logs.text();
    for secret in [HOOK_SECRET, NEW_SECRET] {
        for answer in &answers {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
        assert!(!lines.contains(secret), "{secret} logged:\n{lines}");
    }
}
