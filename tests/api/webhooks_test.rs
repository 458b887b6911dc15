//! `testWebhook` (`POST /v1/webhooks/test`, README "Outbound webhooks"): a signed
//! `webhook.test` event delivered now to a local receiver, logged, answered with its outcome; a
//! 410 turns the webhook off.

use e2e::webhooks::{
    assert_invalid, assert_rate_limited, hook_url, received, receiver, standard_signature,
    zernio_signature,
};
use e2e::{TestEnv, T0};
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn test_delivers_a_signed_webhook_test_event_and_logs_it() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let server = receiver(200).await;
    let body = json!({
        "name": "local", "url": hook_url(&server), "events": ["message.received"],
        "customHeaders": {"X-Api-Key": "k-1"},
    });
    let created = env.create_webhook(&key, &body).await.json()["webhook"].clone();
    let (id, secret) = (
        created["_id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );

    let reply = env.test_webhook(&key, id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let outcome = reply.json();
    assert_eq!(outcome["success"], true, "{outcome}");
    let ms = outcome["responseTime"].as_u64().expect("a response time");
    assert_eq!(
        outcome["message"],
        format!("Delivered: the endpoint answered 200 in {ms} ms")
    );
    assert_eq!(outcome["statusCode"], 200);
    assert_eq!(outcome["error"], Value::Null);
    assert_eq!(outcome["attemptNumber"], 1);
    assert!(outcome["responseTime"].is_u64());
    assert!(!reply.text.contains(secret));

    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let payload: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["event"], "webhook.test");
    assert_eq!(payload["id"], outcome["eventId"]);
    assert_eq!(header("x-zernio-event").as_deref(), Some("webhook.test"));
    assert_eq!(
        header("x-zernio-event-id"),
        outcome["eventId"].as_str().map(str::to_owned)
    );
    assert_eq!(
        header("webhook-id"),
        outcome["eventId"].as_str().map(str::to_owned)
    );
    assert_eq!(
        header("x-zernio-signature"),
        Some(zernio_signature(secret, &request.body))
    );
    let (id_header, timestamp) = (
        header("webhook-id").unwrap(),
        header("webhook-timestamp").unwrap(),
    );
    assert_eq!(timestamp, e2e::T0.to_string(), "signed at the clock's now");
    assert_eq!(
        header("webhook-signature"),
        Some(standard_signature(
            secret,
            &id_header,
            &timestamp,
            &request.body
        ))
    );
    assert_eq!(header("x-api-key").as_deref(), Some("k-1"));

    let logs = env.webhook_logs(&key, &[]).await;
    assert_eq!(logs["pagination"]["total"], 1);
    let entry = &logs["logs"][0];
    assert_eq!(entry["webhookId"], id);
    assert_eq!(entry["webhookName"], "local");
    assert_eq!(entry["eventId"], outcome["eventId"]);
    assert_eq!(entry["event"], "webhook.test");
    assert_eq!(entry["url"], hook_url(&server));
    assert_eq!(entry["status"], "success");
    assert_eq!(entry["statusCode"], 200);
    assert_eq!(entry["requestPayload"], payload);
    assert_eq!(entry["responseBody"], "ok");
    // No error: absent, not null (`@zernio/node` types it `errorMessage?: string`).
    assert!(entry.get("errorMessage").is_none(), "{entry}");
    assert_eq!(entry["attemptNumber"], 1);
    assert!(!logs.to_string().contains(secret));

    // A success is the webhook's last delivery.
    let hook = env.list_webhooks(&key).await[0].clone();
    assert_eq!(hook["lastFiredAt"], entry["createdAt"]);
    assert_eq!(hook["failureCount"], 0);
}

#[tokio::test]
async fn a_410_from_the_endpoint_turns_the_webhook_off() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let server = receiver(410).await;
    let hook = env.webhook_to(&key, &hook_url(&server)).await;
    let reply = env.test_webhook(&key, hook["_id"].as_str().unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["success"], false);
    assert_eq!(reply.json()["statusCode"], 410);
    assert_eq!(env.list_webhooks(&key).await[0]["isActive"], false);
}

#[tokio::test]
async fn a_failed_test_is_answered_with_its_error_logged_as_failed_and_leaves_the_webhook_on() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let server = receiver(500).await;
    let hook = env.webhook_to(&key, &hook_url(&server)).await;
    let outcome = env
        .test_webhook(&key, hook["_id"].as_str().unwrap())
        .await
        .json();
    assert_eq!(outcome["success"], false);
    assert_eq!(outcome["statusCode"], 500);
    assert_eq!(outcome["error"], "answered 500");
    assert_eq!(outcome["message"], "Not delivered: answered 500");
    let logs = env.webhook_logs(&key, &[]).await;
    assert_eq!(logs["logs"][0]["status"], "failed");
    assert_eq!(logs["logs"][0]["errorMessage"], "answered 500");
    let hook = env.list_webhooks(&key).await[0].clone();
    assert_eq!(hook["isActive"], true);
    assert!(hook.get("lastFiredAt").is_none(), "{hook}");
}

#[tokio::test]
async fn an_endpoint_nobody_listens_on_is_a_logged_failure_without_a_status() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = env
        .webhook_to(&key, &format!("http://127.0.0.1:{port}/hook"))
        .await;
    let outcome = env
        .test_webhook(&key, hook["_id"].as_str().unwrap())
        .await
        .json();
    assert_eq!(outcome["success"], false);
    assert_eq!(outcome["statusCode"], Value::Null);
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .starts_with("could not connect"),
        "{outcome}"
    );
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .starts_with("Not delivered: could not connect"),
        "{outcome}"
    );
    // No answer, no status code: absent, not null (`statusCode?: number` in `@zernio/node`).
    let entry = env.webhook_logs(&key, &[]).await["logs"][0].clone();
    assert!(entry.get("statusCode").is_none(), "{entry}");
    assert_eq!(entry["errorMessage"], outcome["error"]);
}

#[tokio::test]
async fn a_url_set_while_private_targets_were_allowed_is_refused_once_they_are_not() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let server = receiver(200).await;
    let hook = env.webhook_to(&key, &hook_url(&server)).await;
    let body = json!({ "webhookId": hook["_id"] });
    let reply = env
        .webhooks_with(
            &e2e::webhooks::public_egress(),
            lambda_http::http::Method::POST,
            e2e::webhooks::TEST,
            Some(&key),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(reply.json()["success"], false, "{}", reply.text);
    assert!(
        received(&server).await.is_empty(),
        "nothing reached the private address"
    );
}

#[tokio::test]
async fn test_without_a_webhook_id_is_refused_with_its_param() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let reply = env
        .webhooks(
            lambda_http::http::Method::POST,
            e2e::webhooks::TEST,
            &key,
            Some(&json!({})),
            &[],
        )
        .await;
    assert_invalid(&reply, "webhookId");
}

/// The `X-RateLimit-*` headers of a reply, as numbers.
fn rate_headers(reply: &e2e::Reply) -> [i64; 3] {
    [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ]
    .map(|name| {
        reply
            .header(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {:?}", reply.headers))
    })
}

#[tokio::test]
async fn test_and_redeliver_together_start_at_most_the_users_rate_of_attempts_a_minute() {
    let env = TestEnv::with_webhook_attempts_per_minute(3).await;
    let key = env.api_key("u1").await;
    let other = env.api_key("u2").await;
    let server = receiver(200).await;
    let hook = env.webhook_to(&key, &hook_url(&server)).await;
    let id = hook["_id"].as_str().unwrap();
    let next_minute = (T0 / 60 + 1) * 60;

    let first = env.test_webhook(&key, id).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(rate_headers(&first), [3, 2, next_minute]);
    let event_id = first.json()["eventId"].as_str().unwrap().to_owned();
    let second = env.redeliver(&key, id, &event_id).await;
    assert_eq!(rate_headers(&second), [3, 1, next_minute]);
    let third = env.test_webhook(&key, id).await;
    assert_eq!(rate_headers(&third), [3, 0, next_minute]);

    for refused in [
        env.test_webhook(&key, id).await,
        env.redeliver(&key, id, &event_id).await,
    ] {
        assert_rate_limited(&refused);
        assert_eq!(rate_headers(&refused), [3, 0, next_minute]);
    }
    assert_eq!(
        received(&server).await.len(),
        3,
        "nothing sent past the rate"
    );
    assert_eq!(
        env.webhook_logs(&key, &[]).await["pagination"]["total"],
        3,
        "nor logged"
    );

    // Per user: another user's attempts are their own.
    let theirs = env.webhook_to(&other, &hook_url(&server)).await;
    let reply = env
        .test_webhook(&other, theirs["_id"].as_str().unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // The next minute starts over.
    env.clock.set(next_minute);
    let reply = env.test_webhook(&key, id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(rate_headers(&reply), [3, 2, next_minute + 60]);
}
