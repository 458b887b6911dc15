//! README, "Outbound webhooks" (no tenant slows another's retries; issue 25): the sweep reads
//! every shard of the due index and gives each webhook a bounded share, so a hostile tenant's
//! backlog of thousands behind hanging endpoints delays no other user's retry; a deferral is a
//! failed attempt for the schedule, so that backlog moves along it and ends, logged; and a
//! delivery item never expires while it still owes an attempt.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::stream::TableStream;
use e2e::webhooks::{deliverer, hook_url, received};
use e2e::{TestEnv, SPAIN_DIGITS};
use futures::StreamExt;
use sandbox::delivery::sweep::{sweep, SweepLimits};
use sandbox::delivery::Deliverer;
use sandbox::session::UserId;
use sandbox::store::{DeliveryItem, DeliveryState, Key};
use sandbox::Clock;
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An endpoint that accepts every connection and never answers within an attempt's limit.
async fn hanging() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    server
}

/// A receiver that answers 500 to the first delivery, then 200.
async fn fails_once() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// The first user named `<prefix>-<n>` whose due shard `wanted` accepts.
fn user_whose_shard(prefix: &str, wanted: impl Fn(&str) -> bool) -> String {
    (0..1_000)
        .map(|n| format!("{prefix}-{n}"))
        .find(|user| wanted(&Key::due_shard(&UserId::new(user))))
        .expect("one of a thousand users has such a shard")
}

/// A tenant whose `webhooks` webhooks all point at `url` (a hanging endpoint), each with
/// `per_webhook` deliveries due `ago` seconds ago (claims whose holder is long gone): a backlog
/// built straight into the table, as a flood of events would leave it. The webhooks' ids.
async fn backlog(
    env: &TestEnv,
    user: &str,
    url: &str,
    webhooks: usize,
    per_webhook: usize,
    ago: i64,
) -> Vec<String> {
    let key = env.api_key(user).await;
    let mut ids = Vec::new();
    for _ in 0..webhooks {
        ids.push(env.hook(&key, url, &["message.received"]).await);
    }
    let now = env.clock.now();
    let claims: Vec<DeliveryItem> = ids
        .iter()
        .flat_map(|id| {
            (0..per_webhook).map(move |n| {
                let event_id = format!("evt_backlog{n:06}");
                DeliveryItem {
                    user: UserId::new(user),
                    webhook_id: id.clone(),
                    payload: format!(r#"{{"id":"{event_id}","event":"message.received"}}"#)
                        .into_bytes(),
                    event_id,
                    event: "message.received".into(),
                    next_attempt: 1,
                    due_at: None,
                    state: DeliveryState::Pending,
                }
            })
        })
        .collect();
    let store = &env.app.store;
    futures::stream::iter(claims)
        .for_each_concurrent(32, |item| async move {
            let claim = store.claim_delivery(item, now, now - ago).await;
            assert!(matches!(claim, Ok(sandbox::store::Claim::Claimed(_))));
        })
        .await;
    ids
}

/// `user`'s deliveries, as they stand.
async fn deliveries(env: &TestEnv, user: &str) -> Vec<DeliveryItem> {
    env.app
        .store
        .deliveries_of(&UserId::new(user))
        .await
        .expect("deliveries")
}

/// A victim with an active session and a webhook to a receiver that fails once: a text whose
/// first attempt (by the stream) fails, so its retry is due after the schedule's first wait.
/// The receiver.
async fn retry_of(env: &TestEnv, user: &str, deliverer: &Deliverer) -> MockServer {
    let server = fails_once().await;
    let s = env.active(user, SPAIN_DIGITS).await;
    env.hook(&s.key, &hook_url(&server), &["message.received"])
        .await;
    let mut stream = TableStream::open(env).await;
    env.text_from(SPAIN_DIGITS, "retry me", 1).await;
    stream.pump(env, deliverer).await;
    assert_eq!(received(&server).await.len(), 1, "the first attempt");
    server
}

/// The rule of the two tests below at a given size: a hostile tenant's `webhooks` hanging
/// webhooks with `per_webhook` deliveries each, all due before another user's retry; the
/// retry is delivered by the first sweep after it is due.
async fn another_users_retry_in_the_first_sweep(
    limits: SweepLimits,
    webhooks: usize,
    per_webhook: usize,
) {
    let env = TestEnv::accepting().await;
    let mut deliverer = deliverer("10,100", Duration::from_millis(300));
    deliverer.sweep = limits;
    let hostile_shard = Key::due_shard(&UserId::new("hostile"));
    let victim = user_whose_shard("victim", |shard| shard != hostile_shard);
    let dead = hanging().await;
    backlog(&env, "hostile", &hook_url(&dead), webhooks, per_webhook, 60).await;
    let receiver = retry_of(&env, &victim, &deliverer).await;

    env.clock.advance(10);
    let report = sweep(&env.app, &deliverer).await.expect("sweep");
    assert_eq!(
        received(&receiver).await.len(),
        2,
        "the retry waited behind the backlog: {report:?}"
    );
    let mine = deliveries(&env, &victim).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].state, DeliveryState::Delivered);
    // The backlog got its shard's read: one attempt per webhook (each hung, and the rest of
    // its queue was put off to the next attempt), never more than its share.
    assert!(report.due <= limits.per_shard + 1, "{report:?}");
    let attempts = received(&dead).await.len();
    assert!((1..=webhooks).contains(&attempts), "{attempts} attempts");
    assert_eq!(
        report.tally.deferred + attempts + 1,
        report.due,
        "{report:?}"
    );
}

#[tokio::test]
async fn another_users_retry_is_taken_in_the_first_sweep_behind_a_hostile_tenants_backlog_of_thousands(
) {
    let small = SweepLimits {
        per_shard: 50,
        per_webhook: 5,
    };
    another_users_retry_in_the_first_sweep(small, 10, 200).await;
}

#[tokio::test]
async fn another_users_retry_is_taken_in_the_first_sweep_behind_ten_hanging_webhooks_with_5000_deliveries(
) {
    another_users_retry_in_the_first_sweep(SweepLimits::DEFAULT, 10, 500).await;
}

/// A retry due after a backlog of 150 deliveries in its shard (three webhooks of another
/// user's, at `endpoint`), swept at 50 a shard and 5 attempts a webhook: how many sweeps it
/// took to be delivered, and the backlog then.
async fn sweeps_until_a_retry_behind_a_backlog_in_its_shard(
    endpoint: &MockServer,
) -> (usize, i64, Vec<DeliveryItem>) {
    let env = TestEnv::accepting().await;
    let mut deliverer = deliverer("10,100", Duration::from_millis(300));
    deliverer.sweep = SweepLimits {
        per_shard: 50,
        per_webhook: 5,
    };
    let hostile_shard = Key::due_shard(&UserId::new("hostile"));
    let victim = user_whose_shard("victim", |shard| shard == hostile_shard);
    backlog(&env, "hostile", &hook_url(endpoint), 3, 50, 60).await;
    let receiver = retry_of(&env, &victim, &deliverer).await;

    env.clock.advance(10);
    let mut sweeps = 0;
    while received(&receiver).await.len() < 2 {
        sweeps += 1;
        assert!(sweeps <= 30, "still waiting after {sweeps} sweeps");
        sweep(&env.app, &deliverer).await.expect("sweep");
    }
    (sweeps, env.clock.now(), deliveries(&env, "hostile").await)
}

#[tokio::test]
async fn a_retry_sharing_its_shard_with_a_hanging_backlog_waits_only_until_the_backlog_moved_past_it(
) {
    let dead = hanging().await;
    let (sweeps, now, backlog) = sweeps_until_a_retry_behind_a_backlog_in_its_shard(&dead).await;
    // Each sweep reads the shard's 50 earliest: the webhook's attempt hangs and the rest of
    // what was read moves on to its next attempt, out of the next sweep's way.
    assert_eq!(sweeps, 4, "150 earlier deliveries, 50 a sweep");
    assert!(backlog.iter().all(|d| d.next_attempt == 2
        && d.state == DeliveryState::Pending
        && d.due_at == Some(now + 10)));
    assert!(received(&dead).await.len() <= 3 * 3);
}

#[tokio::test]
async fn a_retry_sharing_its_shard_with_a_failing_backlog_waits_only_until_the_backlog_moved_past_it(
) {
    let failing = e2e::webhooks::receiver(500).await;
    let (sweeps, now, backlog) = sweeps_until_a_retry_behind_a_backlog_in_its_shard(&failing).await;
    // The endpoint answers: each webhook gets its 5 attempts a sweep (retried after the wait),
    // and the rest of what was read is postponed just behind what is due now, uncounted.
    assert_eq!(sweeps, 4, "150 earlier deliveries, 50 a sweep");
    let attempted = backlog.iter().filter(|d| d.next_attempt == 2).count();
    assert_eq!(attempted, received(&failing).await.len());
    assert!(attempted <= 3 * 5 * 3, "{attempted}");
    assert!(backlog.iter().all(|d| d.state == DeliveryState::Pending
        && match d.next_attempt {
            2 => d.due_at == Some(now + 10),
            _ => d.due_at == Some(now + 1),
        }));
}

#[tokio::test]
async fn a_backlog_behind_a_hanging_endpoint_fails_for_good_after_the_schedules_attempts_each_logged(
) {
    let env = TestEnv::accepting().await;
    let deliverer = deliverer("10,20", Duration::from_millis(300));
    let dead = hanging().await;
    // Fewer than the ten final failures that turn a webhook off.
    let id = backlog(&env, "hostile", &hook_url(&dead), 1, 8, 0).await[0].clone();
    let start = env.clock.now();

    // Three attempts: one sweep each, at the schedule's times.
    for (at, attempt) in [(start, 2), (start + 10, 3)] {
        env.clock.set(at);
        sweep(&env.app, &deliverer).await.expect("sweep");
        let pending = deliveries(&env, "hostile").await;
        let wait = if attempt == 2 { 10 } else { 20 };
        assert!(
            pending.iter().all(|d| d.next_attempt == attempt
                && d.state == DeliveryState::Pending
                && d.due_at == Some(at + wait)),
            "{pending:?}"
        );
    }
    env.clock.set(start + 30);
    let report = sweep(&env.app, &deliverer).await.expect("sweep");
    assert_eq!(report.tally.failed, 8, "{report:?}");
    let ended = deliveries(&env, "hostile").await;
    assert!(ended
        .iter()
        .all(|d| d.state == DeliveryState::Failed && d.due_at.is_none()));
    assert!(env.due_deliveries(start + 1_000_000).await.is_empty());
    // One attempt per sweep reached the endpoint; every delivery's last attempt is logged,
    // with its bytes, those never made as such.
    assert_eq!(received(&dead).await.len(), 3);
    let key = env.api_key("hostile").await;
    let logged = env
        .webhook_logs(&key, &[("limit", "100"), ("status", "failed")])
        .await["logs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let last: Vec<&Value> = logged.iter().filter(|l| l["attemptNumber"] == 3).collect();
    assert_eq!(last.len(), 8, "{logged:?}");
    let unattempted = last
        .iter()
        .filter(|l| {
            l["errorMessage"]
                .as_str()
                .is_some_and(|m| m.starts_with("not attempted"))
        })
        .count();
    assert_eq!(unattempted, 7);
    assert!(last.iter().all(|l| l["requestPayload"]["id"].is_string()));
    let hook = &env.list_webhooks(&key).await[0];
    assert_eq!(hook["_id"], id.as_str());
    assert_eq!(hook["failureCount"], 8);
    assert_eq!(hook["isActive"], true);
}

/// The raw `expiresAt` and `dueAt` of a delivery.
async fn expiry(env: &TestEnv, user: &str, event_id: &str, webhook_id: &str) -> (i64, i64) {
    let key = Key::delivery(&UserId::new(user), event_id, webhook_id);
    let item = env.item(&key).await.expect("the delivery");
    let number = |name: &str| -> i64 {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {item:?}"))
    };
    (number("expiresAt"), number("dueAt"))
}

#[tokio::test]
async fn a_delivery_item_always_expires_after_its_next_due_time_and_the_lease() {
    let env = TestEnv::accepting().await;
    // A first wait of 40 days: longer than any fixed lifetime of 30.
    let wait = 40 * 86_400;
    let deliverer = deliverer(&wait.to_string(), Duration::from_secs(5));
    let lease = deliverer.lease().as_secs() as i64;
    let server = e2e::webhooks::receiver(500).await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let id = env
        .hook(&s.key, &hook_url(&server), &["message.received"])
        .await;
    let mut stream = TableStream::open(&env).await;
    env.text_from(SPAIN_DIGITS, "far retry", 1).await;
    stream.pump(&env, &deliverer).await;
    let event_id = env.logged(&s.key).await[0]["eventId"]
        .as_str()
        .expect("an event id")
        .to_owned();

    // After the failed first attempt: due in 40 days, kept past that and the lease.
    let (expires, due) = expiry(&env, "u1", &event_id, &id).await;
    assert_eq!(due, env.clock.now() + wait);
    assert!(expires > due + lease, "expires {expires}, due {due}");

    // Taken over late (the sweep did not run for a month): kept past the new lease.
    env.clock.set(due + 31 * 86_400);
    let seen = env.due_deliveries(env.clock.now()).await;
    assert_eq!(seen.len(), 1);
    let lease_until = deliverer.lease_until(env.clock.now());
    let held = env
        .app
        .store
        .take_due_delivery(&seen[0], lease_until)
        .await
        .expect("take over")
        .expect("taken");
    assert!(!held.payload.is_empty(), "the take-over answers the bytes");
    let (expires, due) = expiry(&env, "u1", &event_id, &id).await;
    assert_eq!(due, lease_until);
    assert!(
        expires > lease_until,
        "expires {expires}, lease {lease_until}"
    );

    // A claim, and a deferral to a far attempt: the same.
    let now = env.clock.now();
    let claim = DeliveryItem {
        event_id: "evt_claimed".into(),
        due_at: None,
        next_attempt: 1,
        ..held.clone()
    };
    let claimed = env
        .app
        .store
        .claim_delivery(claim, now, deliverer.lease_until(now))
        .await
        .expect("claim");
    assert!(matches!(claimed, sandbox::store::Claim::Claimed(_)));
    let (expires, due) = expiry(&env, "u1", "evt_claimed", &id).await;
    assert!(expires > due, "expires {expires}, due {due}");
}

#[tokio::test]
async fn a_webhook_gets_at_most_its_share_of_attempts_in_a_sweep_and_the_rest_move_behind_what_is_due(
) {
    let env = TestEnv::accepting().await;
    let mut deliverer = deliverer("10,100", Duration::from_secs(5));
    deliverer.sweep = SweepLimits {
        per_shard: 100,
        per_webhook: 5,
    };
    let server = e2e::webhooks::receiver(200).await;
    backlog(&env, "busy", &hook_url(&server), 1, 12, 60).await;
    let now = env.clock.now();

    let report = sweep(&env.app, &deliverer).await.expect("sweep");
    assert_eq!(received(&server).await.len(), 5);
    assert_eq!((report.tally.delivered, report.tally.postponed), (5, 7));
    // The rest are still before their first attempt, due just after what was due now.
    let waiting: Vec<DeliveryItem> = deliveries(&env, "busy")
        .await
        .into_iter()
        .filter(|d| d.state == DeliveryState::Pending)
        .collect();
    assert_eq!(waiting.len(), 7);
    assert!(waiting
        .iter()
        .all(|d| d.next_attempt == 1 && d.due_at == Some(now + 1)));
    env.clock.advance(1);
    sweep(&env.app, &deliverer).await.expect("sweep");
    env.clock.advance(1);
    sweep(&env.app, &deliverer).await.expect("sweep");
    assert_eq!(received(&server).await.len(), 12);
}

#[tokio::test]
async fn another_users_webhook_runs_before_a_users_second_webhook() {
    let env = TestEnv::accepting().await;
    // One queue at a time, and time for about two attempts of 300 ms.
    let mut deliverer = deliverer("10,100", Duration::from_secs(5));
    deliverer.settings.concurrency = 1;
    deliverer.budget = Duration::from_millis(500);
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(300)))
        .mount(&slow)
        .await;
    // The busy user's shard is read first: its three webhooks come first in the due list.
    let busy = user_whose_shard("busy", |shard| shard == "DUE#00");
    let other = user_whose_shard("other", |shard| shard > "DUE#00");
    backlog(&env, &busy, &hook_url(&slow), 3, 1, 60).await;
    backlog(&env, &other, &hook_url(&slow), 1, 1, 60).await;

    let report = sweep(&env.app, &deliverer).await.expect("sweep");
    let mine = deliveries(&env, &other).await;
    assert_eq!(mine[0].state, DeliveryState::Delivered, "{report:?}");
    assert_eq!(report.tally.delivered, 2, "{report:?}");
    assert_eq!(report.tally.deferred, 2, "{report:?}");
}

#[tokio::test]
async fn a_deleted_webhooks_due_deliveries_end_for_one_read_of_it_and_one_write_each() {
    let env = TestEnv::accepting().await;
    let deliverer = deliverer("10,100", Duration::from_secs(5));
    let server = e2e::webhooks::receiver(200).await;
    let id = backlog(&env, "gone", &hook_url(&server), 1, 5, 60).await[0].clone();
    let key = env.api_key("gone").await;
    let query = [("webhookId", id.as_str())];
    let reply = env
        .webhooks(
            lambda_http::http::Method::DELETE,
            e2e::webhooks::SETTINGS,
            &key,
            None,
            &query,
        )
        .await;
    assert_eq!(reply.status, lambda_http::http::StatusCode::OK);

    env.counter.reset();
    let report = sweep(&env.app, &deliverer).await.expect("sweep");
    assert_eq!(report.tally.cancelled, 5, "{report:?}");
    let operations = env.counter.take();
    let count = |name: &str| operations.iter().filter(|o| o.as_str() == name).count();
    // Every shard read once; the webhook once (deleted, it stays so); each delivery ended.
    assert_eq!(count("Query"), 16, "{operations:?}");
    assert_eq!(count("GetItem"), 1, "{operations:?}");
    assert_eq!(count("UpdateItem"), 5, "{operations:?}");
    assert_eq!(operations.len(), 22, "{operations:?}");
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn a_retry_due_in_the_index_partition_before_issue_25_is_swept_once_migrated() {
    let env = TestEnv::accepting().await;
    let deliverer = deliverer("10,100", Duration::from_millis(300));
    let receiver = retry_of(&env, "u1", &deliverer).await;
    let mine = deliveries(&env, "u1").await;
    let key = Key::delivery(&UserId::new("u1"), &mine[0].event_id, &mine[0].webhook_id);
    // As a build before issue 25 left it: in the one partition `DUE`, its expiry counted from
    // the claim.
    let claimed = env.clock.now();
    env.app
        .store
        .client()
        .update_item()
        .table_name(&env.table)
        .set_key(Some(key.item()))
        .update_expression("SET dueShard = :legacy, expiresAt = :expires")
        .expression_attribute_values(":legacy", AttributeValue::S("DUE".into()))
        .expression_attribute_values(":expires", AttributeValue::N((claimed + 60).to_string()))
        .send()
        .await
        .expect("UpdateItem");

    env.clock.advance(10);
    sweep(&env.app, &deliverer).await.expect("sweep");
    assert_eq!(
        received(&receiver).await.len(),
        1,
        "the old partition is not swept"
    );

    let store = &env.app.store;
    assert_eq!(store.migrate_legacy_due_deliveries().await.unwrap(), 1);
    assert_eq!(
        store.migrate_legacy_due_deliveries().await.unwrap(),
        0,
        "a second run moves nothing"
    );
    let item = env.item(&key).await.expect("the delivery");
    let number = |name: &str| item[name].as_n().unwrap().parse::<i64>().unwrap();
    assert_eq!(
        item["dueShard"].as_s().unwrap(),
        &Key::due_shard(&UserId::new("u1"))
    );
    assert_eq!(number("expiresAt"), number("dueAt") + 30 * 24 * 3600);

    sweep(&env.app, &deliverer).await.expect("sweep");
    assert_eq!(received(&receiver).await.len(), 2, "the retry, once moved");
    assert_eq!(
        deliveries(&env, "u1").await[0].state,
        DeliveryState::Delivered
    );
}
