//! `getWebhookLogs` and `redeliverWebhookEvent` (`GET /v1/webhooks/logs`,
//! `POST /v1/webhooks/logs/redeliver`, README "Outbound webhooks"): filters, pages, 30 days,
//! the same bytes under the same event id (events from the stream too, and ids minted before
//! issue 25), and no secret in any answer or log line.

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::deliveries::text_at;
use e2e::stream::TableStream;
use e2e::webhooks::{
    assert_invalid, assert_webhook_not_found, deliverer, hook_url, received, receiver, Captured,
    LOGS,
};
use e2e::{assert_error, TestEnv, DAY, SPAIN_DIGITS, T0};
use lambda_http::http::{Method, StatusCode};
use sandbox::session::UserId;
use sandbox::webhooks::{LogEntry, LogStatus};
use sandbox::Clock;
use serde_json::{json, Value};

fn event_ids(page: &Value) -> Vec<String> {
    page["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["eventId"].as_str().unwrap().to_owned())
        .collect()
}

/// Five entries of u1 (newest is evt_4) and one of u2.
async fn five_entries(env: &TestEnv) {
    let rows = [
        ("wh_A", "message.received", LogStatus::Success),
        ("wh_A", "message.sent", LogStatus::Failed),
        ("wh_B", "message.received", LogStatus::Failed),
        ("wh_B", "message.read", LogStatus::Success),
        ("wh_A", "message.received", LogStatus::Success),
    ];
    for (i, (hook, event, status)) in rows.into_iter().enumerate() {
        env.log_entry(
            "u1",
            hook,
            event,
            &format!("evt_{i}"),
            status,
            T0 + i as i64,
        )
        .await;
    }
    env.log_entry(
        "u2",
        "wh_C",
        "message.received",
        "evt_other",
        LogStatus::Success,
        T0,
    )
    .await;
}

#[tokio::test]
async fn logs_are_newest_first_and_filtered_by_event_event_id_status_and_webhook() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    five_entries(&env).await;
    let all = env.webhook_logs(&key, &[]).await;
    assert_eq!(
        event_ids(&all),
        ["evt_4", "evt_3", "evt_2", "evt_1", "evt_0"]
    );
    assert_eq!(
        all["pagination"],
        json!({"total": 5, "limit": 50, "skip": 0, "pages": 1, "hasMore": false})
    );
    let filtered = |query: &'static [(&'static str, &'static str)]| {
        let env = &env;
        let key = key.clone();
        async move { event_ids(&env.webhook_logs(&key, query).await) }
    };
    assert_eq!(
        filtered(&[("event", "message.received")]).await,
        ["evt_4", "evt_2", "evt_0"]
    );
    assert_eq!(filtered(&[("eventId", "evt_3")]).await, ["evt_3"]);
    assert_eq!(filtered(&[("status", "failed")]).await, ["evt_2", "evt_1"]);
    assert_eq!(filtered(&[("webhookId", "wh_B")]).await, ["evt_3", "evt_2"]);
    assert_eq!(
        filtered(&[
            ("webhookId", "wh_A"),
            ("status", "success"),
            ("event", "message.received")
        ])
        .await,
        ["evt_4", "evt_0"]
    );
    // Another user's entries are never shown, even by their ids.
    assert_eq!(
        filtered(&[("eventId", "evt_other")]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        filtered(&[("webhookId", "wh_C")]).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn logs_are_paged_by_limit_and_skip_with_the_total_of_every_match() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    five_entries(&env).await;
    let page = env
        .webhook_logs(&key, &[("limit", "2"), ("skip", "1")])
        .await;
    assert_eq!(event_ids(&page), ["evt_3", "evt_2"]);
    assert_eq!(
        page["pagination"],
        json!({"total": 5, "limit": 2, "skip": 1, "pages": 3, "hasMore": true})
    );
    let last = env
        .webhook_logs(&key, &[("limit", "2"), ("skip", "4")])
        .await;
    assert_eq!(event_ids(&last), ["evt_0"]);
    assert_eq!(
        last["pagination"],
        json!({"total": 5, "limit": 2, "skip": 4, "pages": 3, "hasMore": false})
    );
    let beyond = env.webhook_logs(&key, &[("skip", "9")]).await;
    assert_eq!(beyond["logs"], json!([]));
    assert_eq!(beyond["pagination"]["total"], 5);
    assert_eq!(beyond["pagination"]["hasMore"], false);
    let filtered = env
        .webhook_logs(
            &key,
            &[("status", "success"), ("limit", "1"), ("skip", "1")],
        )
        .await;
    assert_eq!(event_ids(&filtered), ["evt_3"]);
    assert_eq!(filtered["pagination"]["total"], 3);
}

#[tokio::test]
async fn bad_log_queries_are_refused_with_their_param() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    for (name, value) in [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "ten"),
        ("skip", "-1"),
        ("skip", "100001"),
        ("status", "ok"),
        ("event", "account.connected"),
    ] {
        let reply = env
            .webhooks(Method::GET, LOGS, &key, None, &[(name, value)])
            .await;
        assert_invalid(&reply, name);
    }
}

#[tokio::test]
async fn log_entries_are_kept_through_the_thirtieth_utc_day_after_their_own() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    env.log_entry(
        "u1",
        "wh_A",
        "message.received",
        "evt_0",
        LogStatus::Success,
        T0,
    )
    .await;
    // Every item of the entry (the entry, its index items, its counts) leaves when its day
    // leaves the log: the end of the 30th UTC day after T0's, at least 30 days after it.
    let gone_at = (T0 / DAY + 31) * DAY;
    assert!(gone_at >= T0 + 30 * DAY);
    let items = env.snapshot().await;
    let log: Vec<_> = items
        .iter()
        .filter(|i| i["pk"].as_s().unwrap() == "WHLOG#u1")
        .collect();
    assert_eq!(log.len(), 6, "{log:?}");
    for item in log {
        assert_eq!(item["expiresAt"].as_n().unwrap(), &gone_at.to_string());
    }
    // Shown, and counted, until then (DynamoDB's TTL sweep may lag; the reads do not).
    for (at, shown) in [(T0 + 30 * DAY, 1), (gone_at - 1, 1), (gone_at, 0)] {
        env.clock.set(at);
        for query in [&[][..], &[("webhookId", "wh_A")], &[("eventId", "evt_0")]] {
            let page = env.webhook_logs(&key, query).await;
            assert_eq!(
                page["logs"].as_array().unwrap().len(),
                shown,
                "{at} {query:?}"
            );
            assert_eq!(page["pagination"]["total"], shown, "{at} {query:?}");
        }
    }
}

#[tokio::test]
async fn redeliver_sends_the_same_bytes_under_the_same_event_id_as_the_next_attempt() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let server = receiver(200).await;
    let hook = env.webhook_to(&key, &hook_url(&server)).await;
    let id = hook["_id"].as_str().unwrap();
    let first = env.test_webhook(&key, id).await.json();
    let event_id = first["eventId"].as_str().unwrap();
    env.clock.advance(120);

    let reply = env.redeliver(&key, id, event_id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let outcome = reply.json();
    assert_eq!(outcome["success"], true);
    assert_eq!(outcome["eventId"], event_id);
    assert_eq!(outcome["attemptNumber"], 2);
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .starts_with("Delivered: the endpoint answered 200 in "),
        "{outcome}"
    );

    let requests = received(&server).await;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "the same bytes");
    for name in ["x-zernio-event-id", "webhook-id"] {
        assert_eq!(requests[1].headers.get(name).unwrap(), event_id);
    }
    assert_eq!(
        requests[1].headers.get("x-zernio-event").unwrap(),
        "webhook.test"
    );
    let timestamp = |r: &wiremock::Request| {
        r.headers
            .get("webhook-timestamp")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(
        timestamp(&requests[0]),
        timestamp(&requests[1]),
        "signed afresh"
    );

    let logs = env.webhook_logs(&key, &[("eventId", event_id)]).await;
    assert_eq!(logs["pagination"]["total"], 2);
    assert_eq!(logs["logs"][0]["attemptNumber"], 2);
    assert_eq!(
        logs["logs"][0]["requestPayload"],
        logs["logs"][1]["requestPayload"]
    );
}

#[tokio::test]
async fn every_event_from_the_stream_can_be_redelivered() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let server = receiver(200).await;
    let body = json!({"name": "h", "url": hook_url(&server), "events": ["message.received"]});
    let reply = env.create_webhook(&s.key, &body).await;
    let id = reply.json()["webhook"]["_id"].as_str().unwrap().to_owned();
    let mut stream = TableStream::open(&env).await;
    // Twenty texts: with the base64url ids of before, about half held a `-` or `_`, and
    // redeliver answered those 404.
    for n in 1..=20 {
        let text = text_at(SPAIN_DIGITS, &format!("text {n}"), env.clock.now(), n);
        env.deliver_messages(vec![text]).await;
    }
    let batch = stream.new_batch();
    let deliverer = deliverer("10,100", std::time::Duration::from_secs(5));
    sandbox::delivery::stream::handle_batch(&env.app, &deliverer, &batch).await;
    let logged = env.webhook_logs(&s.key, &[]).await;
    let ids = event_ids(&logged);
    assert_eq!(ids.len(), 20, "{logged}");
    for event_id in &ids {
        let reply = env.redeliver(&s.key, &id, event_id).await;
        assert_eq!(reply.status, StatusCode::OK, "{event_id}: {}", reply.text);
        assert_eq!(reply.json()["eventId"], *event_id);
        assert_eq!(reply.json()["attemptNumber"], 2);
    }
    let requests = received(&server).await;
    assert_eq!(requests.len(), 40);
    let bodies = |r: &[wiremock::Request]| {
        let mut b: Vec<Vec<u8>> = r.iter().map(|r| r.body.clone()).collect();
        b.sort();
        b
    };
    assert_eq!(
        bodies(&requests[..20]),
        bodies(&requests[20..]),
        "the same bytes again"
    );
}

/// An entry as the log kept it before issue 25: one item, `LOG#<time>#<event>#<webhook>#<attempt>`.
async fn legacy_entry(env: &TestEnv, user: &str, webhook_id: &str, event_id: &str, at: i64) {
    let text = |v: &str| AttributeValue::S(v.to_owned());
    let number = |v: i64| AttributeValue::N(v.to_string());
    let payload = format!(r#"{{"id":"{event_id}","event":"message.received"}}"#);
    env.app
        .store
        .client()
        .put_item()
        .table_name(&env.table)
        .item("pk", text(&format!("WHLOG#{user}")))
        .item(
            "sk",
            text(&format!("LOG#{at:010}#{event_id}#{webhook_id}#0001")),
        )
        .item("webhookId", text(webhook_id))
        .item("webhookName", text("hook"))
        .item("eventId", text(event_id))
        .item("event", text("message.received"))
        .item("url", text("https://hooks.example.com/"))
        .item("status", text("failed"))
        .item("statusCode", number(500))
        .item(
            "requestPayload",
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(payload)),
        )
        .item("responseBody", text("busy"))
        .item("attemptNumber", number(1))
        .item("responseTime", number(12))
        .item("createdAt", number(at))
        .item("expiresAt", number(at + 30 * DAY))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_event_logged_before_issue_25_is_listed_and_redelivered_once_the_log_is_migrated() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let server = receiver(200).await;
    let hook = env.webhook_to(&key, &hook_url(&server)).await;
    let id = hook["_id"].as_str().unwrap();
    // The stream's ids were base64url: `-` and `_` among the 22 characters.
    let legacy = "evt_Zq-3_xTb9LmN7cVd1KpQeA";
    legacy_entry(&env, "u1", id, legacy, T0 - 60).await;

    assert_eq!(
        env.app.store.migrate_legacy_webhook_logs().await.unwrap(),
        1
    );
    assert_eq!(
        env.app.store.migrate_legacy_webhook_logs().await.unwrap(),
        0,
        "a second run moves nothing"
    );
    let items = env.snapshot().await;
    assert!(
        !items
            .iter()
            .any(|i| i["sk"].as_s().unwrap().starts_with("LOG#")),
        "the old item is gone"
    );
    let logs = env.webhook_logs(&key, &[]).await;
    assert_eq!(logs["pagination"]["total"], 1);
    assert_eq!(logs["logs"][0]["eventId"], legacy);
    assert_eq!(logs["logs"][0]["responseBody"], "busy");
    assert_eq!(logs["logs"][0]["statusCode"], 500);

    let reply = env.redeliver(&key, id, legacy).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["eventId"], legacy);
    assert_eq!(reply.json()["attemptNumber"], 2);
    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers.get("webhook-id").unwrap(), legacy);
}

/// A webhook of `key`'s user to `server`, and the id of the test event sent to it.
async fn a_tested_webhook(
    env: &TestEnv,
    key: &str,
    server: &wiremock::MockServer,
) -> (String, String) {
    let hook = env.webhook_to(key, &hook_url(server)).await;
    let id = hook["_id"].as_str().unwrap().to_owned();
    let event_id = env.test_webhook(key, &id).await.json()["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, event_id)
}

#[tokio::test]
async fn redeliver_of_an_unknown_event_or_webhook_is_not_found() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let stranger = env.api_key("u2").await;
    let server = receiver(200).await;
    let (id, event_id) = a_tested_webhook(&env, &key, &server).await;
    let id = id.as_str();

    for unknown in ["evt_0000000000000000000000", "garbage"] {
        let reply = env.redeliver(&key, id, unknown).await;
        let body = assert_error(
            &reply,
            StatusCode::NOT_FOUND,
            "not_found",
            "webhook_event_not_found",
        );
        assert_eq!(body["param"], "eventId");
    }
    let reply = env.redeliver(&stranger, id, &event_id).await;
    assert_webhook_not_found(&reply);
    let reply = env
        .webhooks(
            Method::POST,
            e2e::webhooks::REDELIVER,
            &key,
            Some(&json!({"webhookId": id})),
            &[],
        )
        .await;
    assert_invalid(&reply, "eventId");
    assert_eq!(received(&server).await.len(), 1, "only the test was sent");
}

#[tokio::test]
async fn no_answer_but_the_create_and_no_log_line_shows_a_secret() {
    let env = TestEnv::new().await;
    let (logs, _guard) = Captured::start();
    let key = env.api_key("u1").await;
    let server = receiver(200).await;
    let given = json!({"name": "given", "url": hook_url(&server), "events": ["webhook.test"], "secret": "whsec_c2VjcmV0LWJ5dGVzLWdpdmVuLWJ5LXRoZS11c2Vy"});
    let generated = env.webhook_to(&key, &hook_url(&server)).await;
    let given = env.create_webhook(&key, &given).await.json()["webhook"].clone();
    let secrets = [
        generated["secret"].as_str().unwrap(),
        given["secret"].as_str().unwrap(),
    ];
    let mut answers = Vec::new();
    for hook in [&generated, &given] {
        let id = hook["_id"].as_str().unwrap();
        let test = env.test_webhook(&key, id).await;
        answers.push(test.text.clone());
        let event_id = test.json()["eventId"].as_str().unwrap().to_owned();
        answers.push(env.redeliver(&key, id, &event_id).await.text);
        let update =
            json!({"webhookId": id, "secret": "whsec_bmV3LXNlY3JldC1ieXRlcy1mb3ItdGhlLWhvb2s="});
        answers.push(
            env.webhooks(
                Method::PUT,
                e2e::webhooks::SETTINGS,
                &key,
                Some(&update),
                &[],
            )
            .await
            .text,
        );
    }
    answers.push(env.list_webhooks(&key).await.to_string());
    answers.push(env.webhook_logs(&key, &[]).await.to_string());
    // Not asserted present: a captured line may be missing (`Captured::start`), never one that
    // was not written.
    let lines = logs.text();
    for secret in secrets
        .into_iter()
        .chain(["whsec_bmV3LXNlY3JldC1ieXRlcy1mb3ItdGhlLWhvb2s="])
    {
        for answer in &answers {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
        assert!(!lines.contains(secret), "{secret} logged:\n{lines}");
    }
}

#[tokio::test]
async fn concurrent_redeliveries_each_get_their_own_entry_and_attempt_number() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let server = receiver(200).await;
    let (id, event_id) = a_tested_webhook(&env, &key, &server).await;
    let id = id.as_str();

    // Ten at once: each reads attempt 1 as the latest, so each would be attempt 2.
    let replies =
        futures::future::join_all((0..10).map(|_| env.redeliver(&key, id, &event_id))).await;
    let mut numbers: Vec<u64> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.json()["attemptNumber"].as_u64().unwrap()
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (2..=11).collect::<Vec<_>>());

    assert_eq!(
        received(&server).await.len(),
        11,
        "every attempt reached it"
    );
    let logs = env
        .webhook_logs(&key, &[("eventId", &event_id), ("limit", "100")])
        .await;
    assert_eq!(logs["pagination"]["total"], 11);
    let mut logged: Vec<u64> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["attemptNumber"].as_u64().unwrap())
        .collect();
    logged.sort_unstable();
    assert_eq!(
        logged,
        (1..=11).collect::<Vec<_>>(),
        "one entry per attempt"
    );
}

/// A page of the log, and the DynamoDB requests it cost.
async fn page_and_requests(
    env: &TestEnv,
    key: &str,
    query: &[(&str, &str)],
) -> (Value, Vec<String>) {
    env.counter.reset();
    let page = env.webhook_logs(key, query).await;
    (page, env.counter.take())
}

/// An answer of 10 KB, as the log keeps at most.
fn ten_kb() -> String {
    "x".repeat(10 * 1024)
}

#[tokio::test]
async fn a_page_of_a_big_log_costs_two_dynamodb_requests_and_redeliver_one_read() {
    let env = TestEnv::with_auth_cache(60).await;
    let key = env.api_key("u1").await;
    let server = receiver(200).await;
    let mut hooks = Vec::new();
    for _ in 0..3 {
        let hook = env.webhook_to(&key, &hook_url(&server)).await;
        hooks.push(hook["_id"].as_str().unwrap().to_owned());
    }
    // 300 attempts with 10 KB answers, 3.3 MB of entries: 270 events spread over the three
    // webhooks, and one event tried 30 times on the first.
    let user = UserId::new("u1");
    let entry = |n: usize, hook: &str, event_id: String, attempt: u32| LogEntry {
        webhook_id: hook.to_owned(),
        webhook_name: "hook".into(),
        event: "message.received".into(),
        url: hook_url(&server),
        status: if n.is_multiple_of(3) {
            LogStatus::Failed
        } else {
            LogStatus::Success
        },
        status_code: Some(if n.is_multiple_of(3) { 500 } else { 200 }),
        request_payload: format!(r#"{{"id":"{event_id}","event":"message.received"}}"#)
            .into_bytes(),
        event_id,
        response_body: ten_kb(),
        error_message: None,
        attempt_number: attempt,
        response_time_ms: 9,
        created_at: T0 - 3_000 + n as i64,
    };
    let hot = "evt_0000000000000000000hot".to_owned();
    for n in 0..300usize {
        let (hook, event_id, attempt) = if n.is_multiple_of(10) {
            (hooks[0].as_str(), hot.clone(), (n / 10 + 1) as u32)
        } else {
            (hooks[n % 3].as_str(), format!("evt_{n:022}"), 1)
        };
        env.app
            .store
            .log_attempt(&user, &entry(n, hook, event_id, attempt))
            .await
            .unwrap();
    }
    env.webhook_logs(&key, &[("limit", "1")]).await; // warms the auth cache
    env.counter.reset();

    let (all, requests) = page_and_requests(&env, &key, &[]).await;
    assert_eq!(requests, ["Query", "BatchGetItem"], "the newest page");
    assert_eq!(all["pagination"]["total"], 300);
    assert_eq!(all["logs"].as_array().unwrap().len(), 50);
    assert_eq!(all["logs"][0]["responseBody"], ten_kb());
    assert_eq!(
        all["logs"][0]["createdAt"],
        sandbox::session::rfc3339(T0 - 2_701)
    );

    let (deep, requests) =
        page_and_requests(&env, &key, &[("limit", "100"), ("skip", "150")]).await;
    assert_eq!(requests, ["Query", "BatchGetItem"], "a page further on");
    assert_eq!(deep["logs"].as_array().unwrap().len(), 100);
    assert_eq!(
        deep["logs"][0]["createdAt"],
        sandbox::session::rfc3339(T0 - 3_000 + 149)
    );
    assert_eq!(deep["pagination"]["hasMore"], true);

    let (one_hook, requests) = page_and_requests(&env, &key, &[("webhookId", &hooks[1])]).await;
    assert_eq!(requests, ["Query", "BatchGetItem"], "one webhook's page");
    assert_eq!(one_hook["pagination"]["total"], 90);
    assert!(one_hook["logs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["webhookId"] == hooks[1]));

    let (one_event, requests) = page_and_requests(&env, &key, &[("eventId", &hot)]).await;
    assert_eq!(requests, ["Query", "BatchGetItem"], "one event's page");
    assert_eq!(one_event["pagination"]["total"], 30);
    assert_eq!(one_event["logs"][0]["attemptNumber"], 30, "newest first");

    // Redeliver finds the latest attempt of the event with one read of one entry.
    let reply = env.redeliver(&key, &hooks[0], &hot).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["attemptNumber"], 31);
    assert_eq!(
        env.counter.take(),
        [
            "GetItem",            // the webhook
            "Query",              // its latest attempt of the event
            "UpdateItem",         // the minute's attempt rate
            "TransactWriteItems", // the new attempt's log
            "UpdateItem",         // lastFiredAt
        ]
    );
}
