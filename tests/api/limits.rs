//! `createWhatsAppSandboxSession`'s 403 `recipient_opted_out` and 429 `rate_limit_exceeded`
//! rows (`openapi.yaml`; README, "Abuse limits"): opt-outs in any WhatsApp form, the daily
//! per-user and per-recipient caps, their `X-RateLimit-*` headers, and the caps under
//! concurrency.

use e2e::deliveries::text_at;
use e2e::meta;
use e2e::{assert_error, Options, Reply, TestEnv, DAY, SPAIN, SPAIN_DIGITS, T0, UK};
use futures::future::join_all;
use lambda_http::http::StatusCode;
use sandbox::store::ItemKind;
use serde_json::json;

/// 2036-11-25T00:00:00Z, the UTC midnight after [`T0`].
const NEXT_MIDNIGHT: i64 = 2_111_184_000;

/// A Brazilian mobile as a user types it (with the ninth digit) ...
const BRAZIL: &str = "+55 11 98765-4321";
/// ... and the older 12-digit form WhatsApp may report as `from`.
const BRAZIL_12_DIGITS: &str = "551187654321";

/// Asserts the 403 and returns nothing: the body says who opted out.
fn assert_opted_out(reply: &Reply) {
    let body = assert_error(
        reply,
        StatusCode::FORBIDDEN,
        "permission_error",
        "recipient_opted_out",
    );
    assert!(body["error"].as_str().unwrap().contains("START"), "{body}");
}

/// Asserts a 429 of `scope` with its three headers (remaining 0, reset the next midnight).
fn assert_limited(reply: &Reply, scope: &str, limit: i64, reset: i64) {
    let body = assert_error(
        reply,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        "rate_limit_exceeded",
    );
    assert_eq!(body["details"], json!({ "scope": scope }));
    assert_eq!(reply.header("x-ratelimit-limit"), Some(&*limit.to_string()));
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(reply.header("x-ratelimit-reset"), Some(&*reset.to_string()));
}

/// STOP from `digits` through the signed webhook, at `at`.
async fn stop(env: &TestEnv, digits: &str, at: i64, n: u32) {
    env.deliver_messages(vec![text_at(digits, "STOP", at, n)])
        .await;
}

#[tokio::test]
async fn opted_out_phone_is_403_for_the_same_and_another_user_and_nothing_is_sent() {
    let env = TestEnv::accepting().await;
    let first = env.pending("u1", SPAIN_DIGITS).await;
    stop(&env, SPAIN_DIGITS, T0 + 10, 1).await;
    env.clock.set(T0 + 20);
    let other = env.api_key("u2").await;
    let sent = env.sent_templates().await.len();
    let before = env.snapshot().await;
    assert_opted_out(&env.create(&first.key, SPAIN).await);
    assert_opted_out(&env.create(&other, SPAIN).await);
    assert_eq!(env.sent_templates().await.len(), sent, "nothing sent");
    assert_eq!(env.snapshot().await, before, "nothing written");
}

#[tokio::test]
async fn opted_out_phone_blocks_the_refresh_of_an_existing_pending_session() {
    let env = TestEnv::accepting().await;
    let pending = env.pending("u1", SPAIN_DIGITS).await;
    // An opt-out recorded without deleting the session (as if STOP and the session raced):
    // the refresh still may not send.
    let written = env
        .app
        .store
        .set_opt_out(SPAIN_DIGITS, true, T0 + 10, &[])
        .await
        .unwrap();
    assert!(written.written());
    let before = env.snapshot().await;
    assert_opted_out(&env.create(&pending.key, SPAIN).await);
    assert_eq!(env.sent_templates().await.len(), 1, "only the first send");
    assert_eq!(
        env.snapshot().await,
        before,
        "the pending row is not refreshed"
    );
}

#[tokio::test]
async fn stop_in_one_whatsapp_form_blocks_the_other_and_start_lifts_it() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    // The owner's STOP arrives from the 12-digit form; the user types the 13-digit one.
    stop(&env, BRAZIL_12_DIGITS, T0 - 100, 1).await;
    assert_opted_out(&env.create(&key, BRAZIL).await);
    assert!(env.sent_templates().await.is_empty());

    env.deliver_messages(vec![text_at(BRAZIL_12_DIGITS, "START", T0 - 50, 2)])
        .await;
    let reply = env.create(&key, BRAZIL).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(env.sent_templates().await.len(), 1);
}

#[tokio::test]
async fn the_recipient_limit_counts_every_user() {
    let env = TestEnv::accepting().await; // recipient limit 3
    for user in ["u1", "u2", "u3"] {
        env.pending(user, SPAIN_DIGITS).await;
    }
    let fourth = env.api_key("u4").await;
    let before = env.snapshot().await;
    assert_limited(
        &env.create(&fourth, SPAIN).await,
        "recipient",
        3,
        NEXT_MIDNIGHT,
    );
    assert_eq!(env.sent_templates().await.len(), 3, "nothing more sent");
    assert_eq!(env.snapshot().await, before, "nothing changed");
    // Another phone is not affected.
    assert_eq!(env.create(&fourth, UK).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_user_limit_counts_every_phone() {
    let env = TestEnv::accepting_with_limits(3, 100).await;
    let key = env.api_key("u1").await;
    for phone in [SPAIN, UK, "+34 688 246 217"] {
        let id = env.create_id(&key, phone).await;
        assert_eq!(env.revoke(Some(&key), &id).await.status, StatusCode::OK);
    }
    assert_limited(
        &env.create(&key, "+34 688 246 218").await,
        "user",
        3,
        NEXT_MIDNIGHT,
    );
    assert_eq!(env.sent_templates().await.len(), 3);
    // Another user may still send to that phone.
    let other = env.api_key("u2").await;
    assert_eq!(
        env.create(&other, "+34 688 246 218").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_sends_do_not_count() {
    let env = TestEnv::with(Options {
        recipient_daily_send_limit: 1,
        ..Options::default()
    })
    .await;
    let key = env.api_key("u1").await;
    meta::answer(
        &env.meta,
        400,
        meta::error_body(131000, "(#131000) Something went wrong"),
    )
    .await;
    let before = env.snapshot().await;
    for _ in 0..3 {
        let reply = env.create(&key, SPAIN).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    }
    assert_eq!(
        env.snapshot().await,
        before,
        "no counter left behind by refused sends"
    );
    env.meta.reset().await;
    meta::accept(&env.meta).await;
    let reply = env.create(&key, SPAIN).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
}

#[tokio::test]
async fn a_refused_refresh_gives_its_unit_back() {
    let env = TestEnv::accepting_with_limits(10, 2).await;
    let key = env.api_key("u1").await;
    env.create_id(&key, SPAIN).await;
    meta::start_refusing(&env.meta, 132015, "(#132015) Template is paused").await;
    assert_eq!(
        env.create(&key, SPAIN).await.status,
        StatusCode::BAD_REQUEST
    );
    env.meta.reset().await;
    meta::accept(&env.meta).await;
    // The refused refresh did not use the second unit.
    let reply = env.create(&key, SPAIN).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
    assert_limited(
        &env.create(&key, SPAIN).await,
        "recipient",
        2,
        NEXT_MIDNIGHT,
    );
}

#[tokio::test]
async fn a_200_that_sent_carries_the_tighter_limits_headers() {
    let env = TestEnv::accepting().await; // user 10, recipient 3
    let key = env.api_key("u1").await;
    let reply = env.create(&key, SPAIN).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Recipient: 2 of 3 left; user: 9 of 10 left: the recipient's is tighter.
    assert_eq!(reply.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("2"));
    assert_eq!(
        reply.header("x-ratelimit-reset"),
        Some(&*NEXT_MIDNIGHT.to_string())
    );
    // The refresh sent again: one fewer.
    let reply = env.create(&key, SPAIN).await;
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("1"));
    // An active session answered unchanged sends nothing and is never limited.
    env.activate("u1", T0 + 1).await;
    let reply = env.create(&key, SPAIN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-ratelimit-limit"), None);
}

#[tokio::test]
async fn the_limits_start_over_at_the_next_utc_midnight() {
    let env = TestEnv::accepting_with_limits(10, 1).await;
    let key = env.api_key("u1").await;
    let other = env.api_key("u2").await;
    env.create_id(&key, SPAIN).await;
    env.clock.set(NEXT_MIDNIGHT - 1);
    assert_limited(
        &env.create(&other, SPAIN).await,
        "recipient",
        1,
        NEXT_MIDNIGHT,
    );
    env.clock.set(NEXT_MIDNIGHT);
    let reply = env.create(&other, SPAIN).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.header("x-ratelimit-reset"),
        Some(&*(NEXT_MIDNIGHT + DAY).to_string())
    );
}

/// Ten simultaneous creates of one phone with a recipient limit of 2, by `users`.
async fn ten_concurrent_creates(env: &TestEnv, users: &[&str]) {
    let mut keys = Vec::new();
    for user in users {
        keys.push(env.api_key(user).await);
    }
    let replies = join_all((0..10).map(|i| env.create(&keys[i % keys.len()], SPAIN))).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let limited: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(ok, 2, "{replies:?}");
    assert_eq!(limited.len(), 8, "{replies:?}");
    for reply in limited {
        assert_limited(reply, "recipient", 2, NEXT_MIDNIGHT);
    }
    assert_eq!(env.sent_templates().await.len(), 2, "two templates");
    let counters: Vec<_> = env
        .snapshot()
        .await
        .into_iter()
        .filter(|i| ItemKind::Counter.owns(i["pk"].as_s().unwrap()))
        .filter(|i| i["pk"].as_s().unwrap().starts_with("COUNT#PHONE#"))
        .collect();
    assert_eq!(counters.len(), 1);
    assert_eq!(counters[0]["sends"].as_n().unwrap(), "2");
}

#[tokio::test]
async fn ten_concurrent_creates_by_different_users_against_a_limit_of_two_send_two() {
    let env = TestEnv::accepting_with_limits(10, 2).await;
    let users: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    ten_concurrent_creates(&env, &users).await;
}

#[tokio::test]
async fn ten_concurrent_creates_by_one_user_against_a_limit_of_two_send_two() {
    let env = TestEnv::accepting_with_limits(10, 2).await;
    ten_concurrent_creates(&env, &["u1"]).await;
}
