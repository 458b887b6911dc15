//! The events function (issue 19; `sandbox::delivery`): the table's stream records, read from
//! DynamoDB Local exactly as the event source mapping hands them over, become signed deliveries
//! at the API user's receiver; failures are retried on the schedule by the sweep, through the
//! test's clock; duplicates deliver once; only storage failures fail a record.

use std::time::Duration;

use e2e::deliveries::text_at;
use e2e::pipeline::{header, Pipeline};
use e2e::stream::TableStream;
use e2e::webhooks::{deliverer, hook_url, received, receiver};
use e2e::{TestEnv, SPAIN_DIGITS, UK_DIGITS};
use lambda_http::http::StatusCode;
use sandbox::delivery::stream::handle_batch;
use sandbox::delivery::sweep::sweep;
use sandbox::session::UserId;
use sandbox::store::DeliveryState;
use sandbox::Clock;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The attempt limit of the deliverers here, but where a test says otherwise.
const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_phones_reply_reaches_the_receiver_signed_both_ways() {
    let server = receiver(200).await;
    let mut p = Pipeline::start(&server, "10,100", TIMEOUT).await;

    let answer = p.text("hello from the phone", 1).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));

    let got = received(&server).await;
    assert_eq!(got.len(), 1);
    let request = &got[0];
    let body: Value = serde_json::from_slice(&request.body).expect("JSON");
    assert_eq!(body["event"], "message.received");
    assert_eq!(body["message"]["text"], "hello from the phone");
    let event_id = body["id"].as_str().expect("an id");
    assert_eq!(header(request, "x-zernio-event"), "message.received");
    assert_eq!(header(request, "x-zernio-event-id"), event_id);
    assert_eq!(header(request, "webhook-id"), event_id);
    let secret = e2e::webhooks::HOOK_SECRET;
    // Zernio's: a plain HMAC (the hmac crate) of the raw body, keyed with the secret's text.
    assert_eq!(
        header(request, "x-zernio-signature"),
        e2e::webhooks::zernio_signature(secret, &request.body)
    );
    // Standard Webhooks, with a plain HMAC over `<id>.<timestamp>.<body>` (the service signs it
    // with the standardwebhooks crate; make dev's receiver verifies with it too).
    let timestamp = header(request, "webhook-timestamp");
    assert_eq!(timestamp, p.env.clock.now().to_string());
    assert_eq!(
        header(request, "webhook-signature"),
        e2e::webhooks::standard_signature(secret, event_id, &timestamp, &request.body)
    );

    let logged = p.env.logged(&p.session.key).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["status"], "success");
    assert_eq!(logged[0]["attemptNumber"], 1);
    assert_eq!(logged[0]["eventId"], event_id);
    assert_eq!(p.webhook_state().await["failureCount"], 0);
}

#[tokio::test]
async fn a_record_processed_twice_delivers_once_per_webhook() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let (a, b) = (receiver(200).await, receiver(200).await);
    env.hook(&s.key, &hook_url(&a), &["message.received"]).await;
    env.hook(&s.key, &hook_url(&b), &["message.received"]).await;
    let mut stream = TableStream::open(&env).await;
    let deliverer = deliverer("10", TIMEOUT);

    env.text_from(SPAIN_DIGITS, "once", 1).await;
    let batch = stream.new_batch();
    // The same batch again after it was handled, and twice at the same time.
    handle_batch(&env.app, &deliverer, &batch).await;
    handle_batch(&env.app, &deliverer, &batch).await;
    let (one, two) = tokio::join!(
        handle_batch(&env.app, &deliverer, &batch),
        handle_batch(&env.app, &deliverer, &batch)
    );
    assert_eq!(one.claimed + two.claimed, 0);
    assert_eq!(received(&a).await.len(), 1);
    assert_eq!(received(&b).await.len(), 1);
}

#[tokio::test]
async fn concurrent_first_passes_of_one_record_deliver_once() {
    let server = receiver(200).await;
    let mut p = Pipeline::start(&server, "10", TIMEOUT).await;

    p.env.text_from(SPAIN_DIGITS, "raced", 1).await;
    let batch = p.stream.new_batch();
    let (one, two) = tokio::join!(
        handle_batch(&p.env.app, &p.deliverer, &batch),
        handle_batch(&p.env.app, &p.deliverer, &batch)
    );
    assert_eq!(one.claimed + two.claimed, 1);
    assert_eq!(one.duplicates + two.duplicates, 1);
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn dynamodb_down_fails_the_records_from_the_first_that_could_not_be_claimed() {
    let server = receiver(200).await;
    let mut p = Pipeline::start(&server, "10", TIMEOUT).await;

    p.env.text_from(SPAIN_DIGITS, "first", 1).await;
    p.env.text_from(SPAIN_DIGITS, "second", 2).await;
    let batch = p.stream.new_batch();
    let records = batch["Records"].as_array().expect("records").clone();
    let sequence = |r: &Value| r["dynamodb"]["SequenceNumber"].as_str().map(str::to_owned);
    let reporting: Vec<String> = records
        .iter()
        .filter(|r| {
            let record = sandbox::events::StreamRecord::from_lambda_json(r).expect("a record");
            !sandbox::events::events_of(&record)
                .expect("decodes")
                .is_empty()
        })
        .filter_map(sequence)
        .collect();
    assert_eq!(reporting.len(), 2, "{records:?}");

    let down = p.env.app_with_unreachable_dynamodb();
    let report = handle_batch(&down, &p.deliverer, &batch).await;
    // From the first record with an event on, every record is reported: Lambda retries from
    // the earliest, and the records before it made no event.
    let first = records
        .iter()
        .position(|r| sequence(r).as_ref() == Some(&reporting[0]))
        .expect("found");
    let expected: Vec<String> = records[first..].iter().filter_map(sequence).collect();
    assert_eq!(report.failed, expected);
    assert_eq!(
        report.response()["batchItemFailures"][0]["itemIdentifier"],
        reporting[0].as_str()
    );
    assert!(received(&server).await.is_empty());

    // Once DynamoDB is back, the retried batch delivers each event once.
    let report = handle_batch(&p.env.app, &p.deliverer, &batch).await;
    assert!(report.failed.is_empty());
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn an_endpoints_failure_never_fails_the_batch_and_is_retried_on_the_schedule() {
    let server = receiver(500).await;
    let mut p = Pipeline::start(&server, "10,100", TIMEOUT).await;

    let answer = p.text("retry me", 1).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    assert_eq!(received(&server).await.len(), 1);
    let event_id = p.newest_event_id().await;
    let delivery = p.delivery(&event_id).await;
    let t1 = p.env.clock.now();
    assert_eq!(delivery.next_attempt, 2);
    assert_eq!(delivery.due_at, Some(t1 + 10));
    assert_eq!(delivery.state, DeliveryState::Pending);

    // Not yet due: the sweep leaves it.
    p.env.clock.set(t1 + 9);
    assert_eq!(p.sweep().await.tally.taken, 0);
    assert_eq!(received(&server).await.len(), 1);
    // Due: attempt 2, then 100 s until attempt 3.
    p.env.clock.set(t1 + 10);
    assert_eq!(p.sweep().await.tally.taken, 1);
    assert_eq!(received(&server).await.len(), 2);
    p.env.clock.set(t1 + 109);
    assert_eq!(p.sweep().await.tally.taken, 0);
    p.env.clock.set(t1 + 110);
    assert_eq!(p.sweep().await.tally.taken, 1);
    assert_eq!(received(&server).await.len(), 3);
    // Three attempts were the schedule's all: failed for good, counted, out of the index.
    p.env.clock.set(t1 + 100_000);
    assert_eq!(p.sweep().await.due, 0);
    let delivery = p.delivery(&event_id).await;
    assert_eq!(delivery.state, DeliveryState::Failed);
    assert_eq!(delivery.due_at, None);
    let attempts: Vec<i64> = p
        .env
        .logged(&p.session.key)
        .await
        .iter()
        .map(|l| l["attemptNumber"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(attempts, [3, 2, 1]);
    // The same event id and bytes on every attempt.
    let bodies: Vec<Vec<u8>> = received(&server)
        .await
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        p.webhook_state().await,
        json!({ "isActive": true, "failureCount": 1 })
    );
}

#[tokio::test]
async fn retry_after_lengthens_the_wait_within_the_schedule() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "50"))
        .mount(&server)
        .await;
    let mut p = Pipeline::start(&server, "10,30,1000", TIMEOUT).await;

    p.text("later please", 1).await;
    let event_id = p.newest_event_id().await;
    let t1 = p.env.clock.now();
    // Asked 50 s after the first wait of 10: granted up to the next wait, 30.
    assert_eq!(p.delivery(&event_id).await.due_at, Some(t1 + 30));
    p.env.clock.set(t1 + 30);
    p.sweep().await;
    // Asked 50 s when the wait is 30: granted, the following wait (1000) is the cap.
    assert_eq!(p.delivery(&event_id).await.due_at, Some(t1 + 30 + 50));
}

#[tokio::test]
async fn ten_deliveries_failed_for_good_in_a_row_turn_the_webhook_off_and_a_success_resets() {
    let server = MockServer::start().await;
    let failing = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount_as_scoped(&server)
        .await;
    // One attempt each: every failure is final.
    let mut p = Pipeline::start(&server, "", TIMEOUT).await;

    for n in 1..=9 {
        p.text("fail", n).await;
    }
    let state =
        |active: bool, failures: u32| json!({ "isActive": active, "failureCount": failures });
    assert_eq!(p.webhook_state().await, state(true, 9));

    // A success resets the count.
    drop(failing);
    let ok = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount_as_scoped(&server)
        .await;
    p.text("works", 10).await;
    assert_eq!(p.webhook_state().await, state(true, 0));
    drop(ok);

    let _failing = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount_as_scoped(&server)
        .await;
    for n in 11..=19 {
        p.text("fail", n).await;
    }
    assert_eq!(p.webhook_state().await, state(true, 9));
    p.text("fail", 20).await;
    assert_eq!(p.webhook_state().await, state(false, 10));

    // Off: the next event is not delivered.
    let before = received(&server).await.len();
    p.text("ignored", 21).await;
    assert_eq!(received(&server).await.len(), before);
}

#[tokio::test]
async fn a_410_turns_the_webhook_off_and_ends_its_other_deliveries() {
    let server = receiver(410).await;
    let mut p = Pipeline::start(&server, "10", TIMEOUT).await;

    p.env.text_from(SPAIN_DIGITS, "one", 1).await;
    p.env.text_from(SPAIN_DIGITS, "two", 2).await;
    p.pump().await;
    assert_eq!(received(&server).await.len(), 1);
    assert_eq!(p.webhook_state().await["isActive"], false);
    p.env.clock.advance(1_000);
    assert_eq!(p.sweep().await.due, 0);
}

#[tokio::test]
async fn a_hanging_endpoint_costs_one_attempt_timeout_and_holds_up_no_other_webhook() {
    let env = TestEnv::accepting().await;
    let healthy = env.active("u1", SPAIN_DIGITS).await;
    let other = env.api_key("u2").await;
    let ok = receiver(200).await;
    let hanging = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&hanging)
        .await;
    env.hook(&healthy.key, &hook_url(&ok), &["message.received"])
        .await;
    // The other user's webhook hangs; their session events come from the same batch.
    let hung = env
        .hook(
            &other,
            &hook_url(&hanging),
            &["whatsapp.sandbox.session.activated", "message.received"],
        )
        .await;
    let mut stream = TableStream::open(&env).await;
    let deliverer = deliverer("10,100", Duration::from_millis(700));

    // u2's session and reply, then five replies to u1, all in one batch.
    let second = env.active("u2", UK_DIGITS).await;
    env.deliver_messages(vec![text_at(UK_DIGITS, "u2 talks", env.clock.now(), 50)])
        .await;
    for n in 1..=5 {
        env.text_from(SPAIN_DIGITS, "to u1", n).await;
    }
    let report = handle_batch(&env.app, &deliverer, &stream.new_batch()).await;
    assert!(report.failed.is_empty());
    // Every healthy delivery made it on its first attempt.
    assert_eq!(received(&ok).await.len(), 5);
    assert_eq!(report.tally.delivered, 5);
    // The hanging endpoint got one attempt (timed out); the rest were put off unattempted.
    let to_hung: Vec<Value> = env.logged(&second.key).await;
    assert_eq!(to_hung.len(), 1, "{to_hung:?}");
    assert!(to_hung[0]["errorMessage"]
        .as_str()
        .unwrap_or_default()
        .contains("time limit"));
    assert_eq!(report.tally.retrying, 1);
    assert!(report.tally.deferred >= 1, "{report:?}");
    let now = env.clock.now();
    let due = env.due_deliveries(now + 10).await;
    assert!(due.iter().all(|d| d.webhook_id == hung));
    assert_eq!(due.len(), report.tally.retrying + report.tally.deferred);
    assert!(due.iter().all(|d| d.due_at == now + 10));
    // Put off or failed, each counts as the first attempt: the next is the second.
    assert!(due.iter().all(|d| d.next_attempt == 2), "{due:?}");

    // The next batch, within the schedule's first wait: the endpoint that did not answer gets
    // no attempt at all (no second timeout), the healthy one everything.
    env.deliver_messages(vec![text_at(UK_DIGITS, "u2 again", env.clock.now(), 51)])
        .await;
    env.text_from(SPAIN_DIGITS, "to u1", 6).await;
    let report = handle_batch(&env.app, &deliverer, &stream.new_batch()).await;
    assert_eq!(report.tally.delivered, 1);
    assert_eq!(report.tally.deferred, 1, "{report:?}");
    assert_eq!(env.logged(&second.key).await.len(), 1);
    assert_eq!(received(&ok).await.len(), 6);

    // After the wait, its deliveries are attempted again (one, which hangs; the rest put off).
    env.clock.advance(10);
    sweep(&env.app, &deliverer).await.expect("sweep");
    assert_eq!(env.logged(&second.key).await.len(), 2);
}

#[tokio::test]
async fn a_delivery_whose_holder_died_is_finished_by_the_sweep() {
    let server = receiver(200).await;
    let p = Pipeline::start(&server, "10", TIMEOUT).await;
    // A claim whose invocation never got to the attempt.
    let now = p.env.clock.now();
    let item = sandbox::store::DeliveryItem {
        user: UserId::new("u1"),
        webhook_id: p.webhook_id.clone(),
        event_id: "evt_orphan".into(),
        event: "message.received".into(),
        payload: br#"{"id":"evt_orphan"}"#.to_vec(),
        next_attempt: 1,
        due_at: None,
        state: DeliveryState::Pending,
    };
    let claim = p
        .env
        .app
        .store
        .claim_delivery(item, now, p.deliverer.lease_until(now))
        .await
        .expect("claim");
    assert!(matches!(claim, sandbox::store::Claim::Claimed(_)));
    // Within the lease: left to its holder.
    assert_eq!(p.sweep().await.tally.taken, 0);
    p.env.clock.set(p.deliverer.lease_until(now));
    assert_eq!(p.sweep().await.tally.taken, 1);
    let got = received(&server).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, br#"{"id":"evt_orphan"}"#);
}

#[tokio::test]
async fn a_deleted_webhooks_retries_end() {
    let server = receiver(500).await;
    let mut p = Pipeline::start(&server, "10,100", TIMEOUT).await;

    p.text("x", 1).await;
    let reply = p
        .env
        .webhooks(
            lambda_http::http::Method::DELETE,
            e2e::webhooks::SETTINGS,
            &p.session.key,
            None,
            &[("webhookId", p.webhook_id.as_str())],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    p.env.clock.advance(10);
    assert_eq!(p.sweep().await.tally.cancelled, 1);
    assert_eq!(received(&server).await.len(), 1);
    p.env.clock.advance(1_000);
    assert_eq!(p.sweep().await.due, 0);
}

#[tokio::test]
async fn session_events_reach_only_subscribed_webhooks() {
    let env = TestEnv::accepting().await;
    let sessions = receiver(200).await;
    let messages = receiver(200).await;
    let key = env.api_key("u1").await;
    env.hook(
        &key,
        &hook_url(&sessions),
        &[
            "whatsapp.sandbox.session.activated",
            "whatsapp.sandbox.session.ended",
        ],
    )
    .await;
    env.hook(&key, &hook_url(&messages), &["message.sent"])
        .await;
    let mut stream = TableStream::open(&env).await;
    let deliverer = deliverer("10", TIMEOUT);

    let s = env.active("u1", SPAIN_DIGITS).await;
    stream.pump(&env, &deliverer).await;
    let revoked = env.revoke(Some(&s.key), &s.id).await;
    assert!(revoked.status.is_success(), "{}", revoked.text);
    stream.pump(&env, &deliverer).await;

    let got: Vec<Value> = received(&sessions)
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("JSON"))
        .collect();
    let names: Vec<&str> = got.iter().filter_map(|b| b["event"].as_str()).collect();
    assert_eq!(
        names,
        [
            "whatsapp.sandbox.session.activated",
            "whatsapp.sandbox.session.ended"
        ]
    );
    assert_eq!(got[1]["reason"], "revoked");
    assert!(received(&messages).await.is_empty());
}

#[tokio::test]
async fn a_slow_receiver_is_cut_off_at_the_budget_and_the_rest_put_off() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(400)))
        .mount(&server)
        .await;
    let mut p = Pipeline::start(&server, "10", TIMEOUT).await;
    p.deliverer.budget = Duration::from_secs(1);

    for n in 1..=10 {
        p.env.text_from(SPAIN_DIGITS, "slow", n).await;
    }
    let report = handle_batch(&p.env.app, &p.deliverer, &p.stream.new_batch()).await;
    // Ten answers of 400 ms each do not fit in one second: the queue stops starting attempts.
    assert!(report.tally.deferred > 0, "{report:?}");
    assert_eq!(report.tally.delivered + report.tally.deferred, 10);
    assert_eq!(received(&server).await.len(), report.tally.delivered);
}
