//! `recoverWebhookEvents` (`POST /v1/webhooks/logs/recover`, README "Outbound webhooks"): after
//! an outage longer than the retry schedule, each event whose latest attempt to the webhook in
//! the window failed is queued once more, oldest first, and the sweep attempts it (logged as
//! the next attempt); what the webhook no longer takes, tests and deliveries already due are
//! skipped; each queued event takes one of the user's attempts of the minute; a call that could
//! not finish says where the next goes on; bad input is refused with its `param`.

use std::time::Duration;

use e2e::stream::TableStream;
use e2e::webhooks::{
    assert_invalid, assert_rate_limited, assert_webhook_not_found, deliverer, hook_url, received,
    Hooked,
};
use e2e::{TestEnv, DAY, SPAIN_DIGITS};
use futures::StreamExt;
use lambda_http::http::StatusCode;
use sandbox::delivery::sweep::sweep;
use sandbox::delivery::Deliverer;
use sandbox::session::{rfc3339, UserId};
use sandbox::store::{Claim, DeliveryItem, DeliveryState, Next};
use sandbox::webhooks::LogStatus;
use sandbox::Clock;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockGuard, MockServer, ResponseTemplate};

/// A receiver whose answers are 500 while the returned guard lives, 200 after.
async fn down_for_now() -> (MockServer, MockGuard) {
    let server = MockServer::start().await;
    let down = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount_as_scoped(&server)
        .await;
    (server, down)
}

/// Back up: every later request is answered 200.
async fn back_up(server: &MockServer, down: MockGuard) {
    drop(down);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(server)
        .await;
}

/// One attempt each: every failure is final, as after the schedule's last attempt.
fn one_attempt() -> Deliverer {
    deliverer("", Duration::from_secs(5))
}

/// An outage in progress: a receiver answering 500 until [`back_up`], a user with an active
/// session and a webhook for `message.received` to it, the table's stream from then on, and
/// when it began: `(server, down, key, hook, stream, start)`.
async fn outage(env: &TestEnv) -> (MockServer, MockGuard, String, String, TableStream, i64) {
    let (server, down) = down_for_now().await;
    let Hooked { key, id, stream } = env.hooked("u1", &server, &["message.received"]).await;
    (server, down, key, id, stream, env.clock.now())
}

/// The phone's texts `texts`, a second apart, each handed to the events function at once.
async fn texts(env: &TestEnv, stream: &mut TableStream, texts: &[&str], first: u32) {
    for (n, text) in (first..).zip(texts) {
        env.clock.advance(1);
        env.text_from(SPAIN_DIGITS, text, n).await;
        stream.pump(env, &one_attempt()).await;
    }
}

/// The texts of the events `server` received, in order, from the `skip`th on.
async fn texts_at(server: &MockServer, skip: usize) -> Vec<String> {
    received(server)
        .await
        .iter()
        .skip(skip)
        .map(|r| {
            let event: Value = serde_json::from_slice(&r.body).expect("JSON");
            event["message"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// The recover body for `hook` since `since` (epoch seconds).
fn since(hook: &str, since: i64) -> Value {
    json!({ "webhookId": hook, "since": rfc3339(since) })
}

#[tokio::test]
async fn recover_queues_each_event_whose_latest_attempt_failed_and_the_sweep_sends_them_oldest_first(
) {
    let env = TestEnv::with_auth_cache(60).await;
    let (server, down, key, hook, mut stream, start) = outage(&env).await;
    texts(&env, &mut stream, &["one", "two", "three"], 1).await;
    // Failed, then delivered by a redelivery: nothing owed.
    texts(&env, &mut stream, &["redelivered"], 4).await;
    back_up(&server, down).await;
    let redelivered = env.logged(&key).await[0]["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        env.redeliver(&key, &hook, &redelivered).await.json()["success"],
        true
    );
    // Delivered at once: nothing owed.
    texts(&env, &mut stream, &["fine"], 5).await;
    let before = received(&server).await.len();
    assert_eq!(before, 6);
    env.clock.advance(3_600);
    env.webhook_logs(&key, &[("limit", "1")]).await; // warms the auth cache

    env.counter.reset();
    let reply = env.recover(&key, &since(&hook, start)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.json(),
        json!({ "success": true, "queued": 3, "skipped": 0, "hasMore": false })
    );
    assert_eq!(
        env.counter.take(),
        [
            "GetItem",      // the webhook
            "Query",        // its attempts in the window
            "BatchGetItem", // the failed events' deliveries
            "UpdateItem",   // the minute's attempts, one per queued event
            "UpdateItem",   // each delivery due now
            "UpdateItem",
            "UpdateItem",
        ]
    );
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("27"));
    assert_eq!(received(&server).await.len(), before, "queued, not sent");

    let report = sweep(&env.app, &one_attempt()).await.expect("sweep");
    assert_eq!(report.tally.delivered, 3, "{:?}", report.tally);
    assert_eq!(texts_at(&server, before).await, ["one", "two", "three"]);
    let logged = env.webhook_logs(&key, &[("limit", "3")]).await;
    for entry in logged["logs"].as_array().unwrap() {
        assert_eq!(entry["status"], "success", "{entry}");
        assert_eq!(entry["attemptNumber"], 2, "the next attempt: {entry}");
    }
    // All delivered now: nothing more to recover.
    let again = env.recover(&key, &since(&hook, start)).await;
    assert_eq!(again.json()["queued"], 0, "{}", again.text);
}

#[tokio::test]
async fn only_attempts_in_the_window_count_and_an_event_delivered_since_is_not_sent_again() {
    let env = TestEnv::new().await;
    let (server, down, key, hook, mut stream, _) = outage(&env).await;
    texts(&env, &mut stream, &["before"], 1).await;
    let since_at = env.clock.now() + 1;
    // Failed in the window, then delivered by its retry after it.
    env.clock.advance(1);
    env.text_from(SPAIN_DIGITS, "retried", 2).await;
    let retrying = deliverer("10", Duration::from_secs(5));
    stream.pump(&env, &retrying).await;
    texts(&env, &mut stream, &["inside"], 3).await;
    let until_at = env.clock.now();
    texts(&env, &mut stream, &["after"], 4).await;
    back_up(&server, down).await;
    env.clock.advance(10);
    assert_eq!(
        sweep(&env.app, &retrying)
            .await
            .expect("sweep")
            .tally
            .delivered,
        1
    );
    let before = received(&server).await.len();

    let body = json!({ "webhookId": hook, "since": rfc3339(since_at), "until": rfc3339(until_at) });
    let reply = env.recover(&key, &body).await;
    assert_eq!(reply.json()["queued"], 1, "{}", reply.text);
    sweep(&env.app, &one_attempt()).await.expect("sweep");
    assert_eq!(texts_at(&server, before).await, ["inside"]);
}

#[tokio::test]
async fn recover_skips_what_the_webhook_no_longer_takes_tests_and_deliveries_due_already() {
    let env = TestEnv::new().await;
    let (_server, _down, key, hook, mut stream, start) = outage(&env).await;
    // A failed test, and a failed event whose retry is due in 10 s.
    env.test_webhook(&key, &hook).await;
    env.clock.advance(1);
    env.text_from(SPAIN_DIGITS, "retrying", 1).await;
    stream
        .pump(&env, &deliverer("10", Duration::from_secs(5)))
        .await;
    let reply = env.recover(&key, &since(&hook, start)).await;
    assert_eq!(
        reply.json(),
        json!({ "success": true, "queued": 0, "skipped": 2, "hasMore": false })
    );

    // Its retry an hour away: brought forward.
    let item = |env: &TestEnv| {
        let (store, hook) = (env.app.store.clone(), hook.clone());
        async move {
            let user = UserId::new("u1");
            let all = store.deliveries_of(&user).await.expect("read");
            all.into_iter()
                .find(|d| d.webhook_id == hook)
                .expect("the delivery")
        }
    };
    let before = item(&env).await;
    let far = env
        .app
        .store
        .finish_delivery(
            &before.as_due().unwrap(),
            Next::Retry {
                attempt: 2,
                at: env.clock.now() + 3_600,
            },
            env.clock.now(),
        )
        .await
        .expect("moved");
    assert!(far.is_some());
    let reply = env.recover(&key, &since(&hook, start)).await;
    assert_eq!(reply.json()["queued"], 1, "{}", reply.text);
    let now = env.clock.now();
    let after = item(&env).await;
    assert_eq!((after.next_attempt, after.due_at), (2, Some(now)));
    assert_eq!(after.state, DeliveryState::Pending);

    // Turned off (the sweep then ends the delivery unattempted), or its group disabled:
    // skipped, though nothing is due.
    env.update_webhook(&key, &json!({ "webhookId": hook, "isActive": false }))
        .await;
    let report = sweep(&env.app, &one_attempt()).await.expect("sweep");
    assert_eq!(report.tally.cancelled, 1, "{:?}", report.tally);
    for change in [
        json!({ "webhookId": hook, "name": "still off" }),
        json!({ "webhookId": hook, "isActive": true, "disabledResourceGroups": ["messages"] }),
    ] {
        env.update_webhook(&key, &change).await;
        let reply = env.recover(&key, &since(&hook, start)).await;
        assert_eq!(reply.json()["queued"], 0, "{change}: {}", reply.text);
        assert_eq!(reply.json()["skipped"], 2, "{change}: {}", reply.text);
    }
}

#[tokio::test]
async fn each_queued_event_takes_one_of_the_minutes_attempts_and_the_answer_says_where_to_go_on() {
    let env = TestEnv::with_webhook_attempts_per_minute(2).await;
    let (server, down, key, hook, mut stream, start) = outage(&env).await;
    texts(&env, &mut stream, &["one", "two", "three"], 1).await;
    let two_at = start + 2;
    back_up(&server, down).await;
    env.clock.set((env.clock.now() / 60 + 1) * 60);
    // A test takes one of the minute's two attempts: one is left.
    assert_eq!(env.test_webhook(&key, &hook).await.json()["success"], true);

    let reply = env.recover(&key, &since(&hook, start)).await;
    assert_eq!(
        reply.json(),
        json!({
            "success": true, "queued": 1, "skipped": 0, "hasMore": true,
            "nextSince": rfc3339(two_at),
        })
    );
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
    let refused = env.recover(&key, &since(&hook, two_at)).await;
    assert_rate_limited(&refused);

    // The next minute, from where the answer said: the rest. A call that can queue fewer than
    // it finds (two a minute) says where to go on too.
    env.clock.advance(60);
    let rest = env.recover(&key, &since(&hook, two_at)).await;
    assert_eq!(
        rest.json(),
        json!({ "success": true, "queued": 2, "skipped": 0, "hasMore": false })
    );
    sweep(&env.app, &one_attempt()).await.expect("sweep");
    // Three failures, the test, then the three again, oldest first.
    assert_eq!(texts_at(&server, 4).await, ["one", "two", "three"]);
}

#[tokio::test]
async fn concurrent_recovers_queue_each_event_once_and_take_one_attempt_per_queued_event() {
    let env = TestEnv::new().await;
    let (server, down, key, hook, mut stream, start) = outage(&env).await;
    texts(&env, &mut stream, &["one", "two", "three", "four"], 1).await;
    back_up(&server, down).await;
    env.clock.set((env.clock.now() / 60 + 1) * 60);

    let body = since(&hook, start);
    let replies = futures::future::join_all((0..4).map(|_| env.recover(&key, &body))).await;
    let queued: u64 = replies
        .iter()
        .map(|r| r.json()["queued"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(queued, 4, "{replies:?}");
    // Units taken by a call whose writes found the deliveries queued by another went back.
    let test = env.test_webhook(&key, &hook).await;
    assert_eq!(
        test.header("x-ratelimit-remaining"),
        Some("25"),
        "30 - 4 - 1"
    );
    sweep(&env.app, &one_attempt()).await.expect("sweep");
    assert_eq!(received(&server).await.len(), 4 + 1 + 4, "each once");
}

#[tokio::test]
async fn a_call_settles_at_most_300_failed_events_and_says_where_the_next_goes_on() {
    let env = TestEnv::with_auth_cache(60).await;
    let key = env.api_key("u1").await;
    let hook = env.webhook_to(&key, "https://hooks.example.com/z").await["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // 350 events, a second apart, whose attempt failed and whose delivery a retry delivered
    // since: none is owed, and each costs recover a place in a read of delivery items.
    let user = UserId::new("u1");
    let first = env.clock.now() - 1_000;
    let store = &env.app.store;
    futures::stream::iter(0..350)
        .for_each_concurrent(16, |i| {
            let (env, user, hook) = (&env, &user, hook.as_str());
            async move {
                let (event_id, at) = (format!("evt_{i:022}"), first + i);
                let event = "message.received";
                env.log_entry("u1", hook, event, &event_id, LogStatus::Failed, at)
                    .await;
                let delivery = DeliveryItem {
                    user: user.clone(),
                    webhook_id: hook.to_owned(),
                    event_id,
                    event: event.to_owned(),
                    payload: b"{}".to_vec(),
                    next_attempt: 1,
                    due_at: None,
                    state: DeliveryState::Pending,
                };
                let Ok(Claim::Claimed(held)) = store.claim_delivery(delivery, at, at + 65).await
                else {
                    panic!("claimed");
                };
                let next = Next::Settle(DeliveryState::Delivered);
                let settled = store
                    .finish_delivery(&held.as_due().unwrap(), next, at)
                    .await;
                assert!(matches!(settled, Ok(Some(_))));
            }
        })
        .await;
    env.webhook_logs(&key, &[("limit", "1")]).await; // warms the auth cache

    env.counter.reset();
    let reply = env.recover(&key, &since(&hook, first)).await;
    assert_eq!(
        reply.json(),
        json!({
            "success": true, "queued": 0, "skipped": 0, "hasMore": true,
            "nextSince": rfc3339(first + 300),
        })
    );
    assert_eq!(
        env.counter.take(),
        [
            "GetItem",      // the webhook
            "Query",        // its 350 attempts
            "BatchGetItem", // three reads of 100 deliveries
            "BatchGetItem",
            "BatchGetItem",
            "UpdateItem", // the minute's attempts (none taken)
        ]
    );
    let rest = env.recover(&key, &since(&hook, first + 300)).await;
    assert_eq!(
        rest.json(),
        json!({ "success": true, "queued": 0, "skipped": 0, "hasMore": false })
    );
}

#[tokio::test]
async fn an_event_whose_delivery_has_expired_is_recovered_from_its_logged_bytes() {
    let env = TestEnv::accepting().await;
    let server = e2e::webhooks::receiver(200).await;
    let key = env.api_key("u1").await;
    let hook = env.webhook_to(&key, &hook_url(&server)).await["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let event_id = "evt_0000000000000000000old";
    let now = env.clock.now();
    env.log_entry(
        "u1",
        &hook,
        "message.received",
        event_id,
        LogStatus::Failed,
        now,
    )
    .await;

    let reply = env
        .recover(&key, &since(&hook, env.clock.now() - DAY))
        .await;
    assert_eq!(reply.json()["queued"], 1, "{}", reply.text);
    sweep(&env.app, &one_attempt()).await.expect("sweep");
    let got = received(&server).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].body,
        format!(r#"{{"id":"{event_id}","event":"message.received"}}"#).into_bytes()
    );
    assert_eq!(env.logged(&key).await[0]["attemptNumber"], 2);
}

#[tokio::test]
async fn bad_recover_requests_are_refused_with_their_param() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let hook = env.webhook_to(&key, "https://hooks.example.com/z").await["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = env.clock.now();
    let at = |t: i64| json!(rfc3339(t));
    for (body, param) in [
        (json!({ "since": at(now) }), "webhookId"),
        (json!({ "webhookId": 7, "since": at(now) }), "webhookId"),
        (json!({ "webhookId": hook }), "since"),
        (json!({ "webhookId": hook, "since": "yesterday" }), "since"),
        (json!({ "webhookId": hook, "since": now }), "since"),
        (
            json!({ "webhookId": hook, "since": at(now), "until": "now" }),
            "until",
        ),
        (
            json!({ "webhookId": hook, "since": at(now - 60), "until": at(now - 61) }),
            "since",
        ),
        (json!({ "webhookId": hook, "since": at(now + 1) }), "since"),
        (
            json!({ "webhookId": hook, "since": at(now - 30 * DAY - 1) }),
            "since",
        ),
    ] {
        assert_invalid(&env.recover(&key, &body).await, param);
    }
    for id in ["wh_000000000000000000000A", "not-an-id"] {
        assert_webhook_not_found(&env.recover(&key, &since(id, now)).await);
    }
    let stranger = env.api_key("u2").await;
    assert_webhook_not_found(&env.recover(&stranger, &since(&hook, now)).await);
    // Thirty days back exactly, an offset, a fraction of a second: accepted.
    for since in [at(now - 30 * DAY), json!("2036-11-24T15:15:22.5+01:00")] {
        let reply = env
            .recover(&key, &json!({ "webhookId": hook, "since": since }))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{since}: {}", reply.text);
    }
}
