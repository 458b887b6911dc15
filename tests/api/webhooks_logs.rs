//! `getWebhookLogs` and `redeliverWebhookEvent` (`GET /v1/webhooks/logs`,
//! `POST /v1/webhooks/logs/redeliver`, README "Outbound webhooks"): filters, pages, 30 days,
//! the same bytes under the same event id (events from the stream too, and ids minted before
//! issue 25), and no secret in any answer or log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

use e2e::deliveries::text_at;
use e2e::stream::TableStream;
use e2e::webhooks::{deliverer, hook_url, received, receiver, LOGS};
use e2e::{assert_error, TestEnv, SPAIN_DIGITS, T0};
use lambda_http::http::{Method, StatusCode};
use sandbox::session::UserId;
use sandbox::webhooks::{LogEntry, LogStatus};
use sandbox::Clock;
use serde_json::{json, Value};

/// Stores a log entry for `user` directly, as a delivery of `event` would.
async fn logged(
    env: &TestEnv,
    user: &str,
    webhook: &str,
    event: &str,
    event_id: &str,
    status: LogStatus,
    at: i64,
) {
    let entry = LogEntry {
        webhook_id: webhook.into(),
        webhook_name: "hook".into(),
        event_id: event_id.into(),
        event: event.into(),
        url: "https://hooks.example.com/".into(),
        status,
        status_code: Some(if status == LogStatus::Success {
            200
        } else {
            500
        }),
        request_payload: format!(r#"{{"id":"{event_id}","event":"{event}"}}"#).into_bytes(),
        response_body: String::new(),
        error_message: (status == LogStatus::Failed).then(|| "answered 500".into()),
        attempt_number: 1,
        response_time_ms: 12,
        created_at: at,
    };
    env.app
        .store
        .put_webhook_log(&UserId::new(user), &entry)
        .await
        .unwrap();
}

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
        logged(
            env,
            "u1",
            hook,
            event,
            &format!("evt_{i}"),
            status,
            T0 + i as i64,
        )
        .await;
    }
    logged(
        env,
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
        let body = assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_field_value",
        );
        assert_eq!(body["param"], name, "{name}={value}");
    }
}

#[tokio::test]
async fn log_entries_are_kept_thirty_days() {
    let env = TestEnv::new().await;
    logged(
        &env,
        "u1",
        "wh_A",
        "message.received",
        "evt_0",
        LogStatus::Success,
        T0,
    )
    .await;
    let items = env.snapshot().await;
    let entry = items
        .iter()
        .find(|i| i["pk"].as_s().unwrap() == "WHLOG#u1")
        .expect("the log item");
    assert_eq!(
        entry["expiresAt"].as_n().unwrap(),
        &(T0 + 30 * 86_400).to_string()
    );
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

#[tokio::test]
async fn an_event_id_minted_before_issue_25_is_still_redelivered() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let server = receiver(200).await;
    let hook = env.webhook_to(&key, &hook_url(&server)).await;
    let id = hook["_id"].as_str().unwrap();
    // The stream's ids were base64url: `-` and `_` among the 22 characters.
    let legacy = "evt_Zq-3_xTb9LmN7cVd1KpQeA";
    logged(
        &env,
        "u1",
        id,
        "message.received",
        legacy,
        LogStatus::Failed,
        T0,
    )
    .await;
    let reply = env.redeliver(&key, id, legacy).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["eventId"], legacy);
    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers.get("webhook-id").unwrap(), legacy);
}

#[tokio::test]
async fn redeliver_of_an_unknown_event_or_webhook_is_not_found() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let stranger = env.api_key("u2").await;
    let server = receiver(200).await;
    let hook = env.webhook_to(&key, &hook_url(&server)).await;
    let id = hook["_id"].as_str().unwrap();
    let event_id = env.test_webhook(&key, id).await.json()["eventId"]
        .as_str()
        .unwrap()
        .to_owned();

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
    let body = assert_error(
        &reply,
        StatusCode::NOT_FOUND,
        "not_found",
        "webhook_not_found",
    );
    assert_eq!(body["param"], "webhookId");
    let reply = env
        .webhooks(
            Method::POST,
            e2e::webhooks::REDELIVER,
            &key,
            Some(&json!({"webhookId": id})),
            &[],
        )
        .await;
    let body = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_field_value",
    );
    assert_eq!(body["param"], "eventId");
    assert_eq!(received(&server).await.len(), 1, "only the test was sent");
}

/// Log lines written while the guard lives, in this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_answer_but_the_create_and_no_log_line_shows_a_secret() {
    let env = TestEnv::new().await;
    let logs = Captured::default();
    let writer = logs.clone();
    let _guard =
        tracing::subscriber::set_default(sandbox::telemetry::subscriber(move || writer.clone()));
    // Other tests' threads log without a subscriber: interest they cached is computed again.
    tracing::callsite::rebuild_interest_cache();
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
    let lines = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    // Not asserted present: tracing caches per call site whether anyone listens, and a test
    // thread without a subscriber can cache "no" meanwhile, so a captured line may be missing
    // (never a line that was not written).
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
