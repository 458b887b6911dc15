//! `createWebhookSettings`, `getWebhookSettings`, `updateWebhookSettings`,
//! `deleteWebhookSettings` (`/v1/webhooks/settings`, README "Outbound webhooks"): validation
//! with its `param`, the per-user limit (50, `USER_WEBHOOK_LIMIT`) under concurrency, the
//! secret shown once, another user's webhook not found.

use base64::Engine;
use e2e::webhooks::{
    assert_invalid, assert_invalid_field, assert_webhook_not_found, new_webhook, public_egress,
    SETTINGS,
};
use e2e::{assert_error, Options, TestEnv};
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

const URL: &str = "https://hooks.example.com/zernio";

/// The `param` of a create refused through `egress`, which must be a 400.
async fn refused_param(
    env: &TestEnv,
    egress: &sandbox::outbound::EgressClient,
    key: &str,
    body: &Value,
) -> String {
    let reply = env
        .webhooks_with(egress, Method::POST, SETTINGS, Some(key), Some(body), &[])
        .await;
    let body = assert_invalid_field(&reply);
    body["param"].as_str().expect("a param").to_owned()
}

fn with(field: &str, value: Value) -> Value {
    let mut body = new_webhook("hook", URL);
    body[field] = value;
    body
}

#[tokio::test]
async fn a_webhook_without_a_secret_gets_a_generated_one_shown_only_in_the_create_answer() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let reply = env.create_webhook(&key, &new_webhook("orders", URL)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["success"], true);
    let hook = &body["webhook"];
    let secret = hook["secret"].as_str().expect("the secret, once");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .unwrap();
    assert_eq!(raw.len(), 32);
    assert_eq!(hook["name"], "orders");
    assert_eq!(hook["url"], URL);
    assert_eq!(hook["events"], json!(["message.received"]));
    assert_eq!(hook["isActive"], true);
    assert_eq!(hook["failureCount"], 0);
    // Never fired: absent, not null (`@zernio/node` types it `lastFiredAt?: string`).
    assert!(hook.get("lastFiredAt").is_none(), "{hook}");
    assert_eq!(hook["customHeaders"], json!({}));
    assert!(hook["_id"].as_str().unwrap().starts_with("wh_"));

    let listed = env.list_webhooks(&key).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none(), "{listed}");
    assert!(!listed.to_string().contains(secret));
    let update = json!({ "webhookId": hook["_id"], "name": "renamed" });
    let reply = env.update_webhook(&key, &update).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(!reply.text.contains(secret), "{}", reply.text);
    assert!(reply.json()["webhook"].get("secret").is_none());
}

#[tokio::test]
async fn a_given_secret_is_kept_and_never_shown_after_the_create() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let reply = env
        .create_webhook(&key, &with("secret", json!("my-own-secret")))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["webhook"]["secret"], "my-own-secret");
    let listed = env.list_webhooks(&key).await;
    assert!(!listed.to_string().contains("my-own-secret"), "{listed}");
}

#[tokio::test]
async fn every_invalid_field_is_refused_with_its_param_and_nothing_is_stored() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let egress = public_egress();
    let headers = |n: usize| -> Value {
        (0..n)
            .map(|i| (format!("X-H{i}"), json!("v")))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut without_name = new_webhook("x", URL);
    without_name.as_object_mut().unwrap().remove("name");
    let mut without_url = new_webhook("x", URL);
    without_url.as_object_mut().unwrap().remove("url");
    let mut without_events = new_webhook("x", URL);
    without_events.as_object_mut().unwrap().remove("events");
    let cases = [
        (without_name, "name"),
        (with("name", json!("")), "name"),
        (with("name", json!("n".repeat(51))), "name"),
        (with("name", json!(7)), "name"),
        (without_url, "url"),
        (with("url", json!("/relative")), "url"),
        (with("url", json!("http://hooks.example.com/")), "url"),
        (
            with(
                "url",
                json!(format!("https://example.com/{}", "a".repeat(2_029))),
            ),
            "url",
        ),
        (
            with("url", json!("https://169.254.169.254/latest/meta-data/")),
            "url",
        ),
        (with("url", json!("https://127.0.0.1/")), "url"),
        (with("url", json!("https://[::1]/")), "url"),
        (without_events, "events"),
        (with("events", json!([])), "events"),
        (with("events", json!(["account.connected"])), "events"),
        (with("events", json!("message.received")), "events"),
        (with("secret", json!("")), "secret"),
        (with("secret", json!("whsec_not base64!")), "secret"),
        (with("isActive", json!("yes")), "isActive"),
        (with("customHeaders", headers(11)), "customHeaders"),
        (with("customHeaders", json!({"Host": "x"})), "customHeaders"),
        (
            with("customHeaders", json!({"content-type": "x"})),
            "customHeaders",
        ),
        (
            with("customHeaders", json!({"Content-Length": "1"})),
            "customHeaders",
        ),
        (
            with("customHeaders", json!({"webhook-id": "x"})),
            "customHeaders",
        ),
        (
            with("customHeaders", json!({"X-Zernio-Signature": "x"})),
            "customHeaders",
        ),
        (
            with("customHeaders", json!({"X Space": "x"})),
            "customHeaders",
        ),
        (
            with("customHeaders", json!({"X-A": "a".repeat(1_025)})),
            "customHeaders",
        ),
        (
            with("customHeaders", json!({"X-A": "a\r\nX-Injected: 1"})),
            "customHeaders",
        ),
        (
            with("customHeaders", json!({"X-A": "a\nb"})),
            "customHeaders",
        ),
        (with("customHeaders", json!({"X-A": 1})), "customHeaders"),
    ];
    for (body, param) in cases {
        assert_eq!(
            refused_param(&env, &egress, &key, &body).await,
            param,
            "{body}"
        );
    }
    assert_eq!(env.list_webhooks(&key).await, json!([]));
    // The edges that are allowed: 50 characters, 2,048 characters, ten headers of 1,024.
    let mut edge = with("name", json!("n".repeat(50)));
    edge["url"] = json!(format!("https://example.com/{}", "a".repeat(2_028)));
    edge["customHeaders"] = (0..10)
        .map(|i| (format!("X-H{i}"), json!("v".repeat(1_024))))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let reply = env
        .webhooks_with(
            &egress,
            Method::POST,
            SETTINGS,
            Some(&key),
            Some(&edge),
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn plain_http_and_private_addresses_are_accepted_only_where_private_targets_are_allowed() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let local = with("url", json!("http://127.0.0.1:3000/hook"));
    assert_eq!(
        refused_param(&env, &public_egress(), &key, &local).await,
        "url"
    );
    let reply = env.create_webhook(&key, &local).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// An environment whose users may have `limit` webhooks (`USER_WEBHOOK_LIMIT`).
async fn with_webhook_limit(limit: i64) -> TestEnv {
    TestEnv::with(Options {
        user_webhook_limit: limit,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn the_fifty_first_webhook_of_a_user_is_refused() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let other = env.api_key("u2").await;
    for i in 0..50 {
        let reply = env
            .create_webhook(&key, &new_webhook(&format!("h{i}"), URL))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let reply = env.create_webhook(&key, &new_webhook("h50", URL)).await;
    let body = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "webhook_limit_reached",
    );
    assert_eq!(body["details"]["limit"], 50);
    assert_eq!(
        body["error"],
        "a user may have at most 50 webhooks; delete one first"
    );
    assert_eq!(env.list_webhooks(&key).await.as_array().unwrap().len(), 50);
    // Per user: another user still has all their places.
    let reply = env
        .create_webhook(&other, &new_webhook("theirs", URL))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn the_limit_is_configurable() {
    let env = with_webhook_limit(2).await;
    let key = env.api_key("u1").await;
    for i in 0..2 {
        env.webhook_to(&key, &format!("{URL}/{i}")).await;
    }
    let reply = env.create_webhook(&key, &new_webhook("third", URL)).await;
    let body = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "webhook_limit_reached",
    );
    assert_eq!(body["details"]["limit"], 2);
}

#[tokio::test]
async fn fifteen_concurrent_creates_leave_exactly_ten_webhooks_under_a_limit_of_ten() {
    let env = with_webhook_limit(10).await;
    let key = env.api_key("u1").await;
    let bodies: Vec<Value> = (0..15)
        .map(|i| new_webhook(&format!("h{i}"), URL))
        .collect();
    let replies =
        futures::future::join_all(bodies.iter().map(|b| env.create_webhook(&key, b))).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let refused = replies
        .iter()
        .filter(|r| {
            r.status == StatusCode::BAD_REQUEST && r.json()["code"] == "webhook_limit_reached"
        })
        .count();
    assert_eq!((created, refused), (10, 5), "{replies:?}");
    assert_eq!(env.list_webhooks(&key).await.as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn deleting_a_webhook_answers_success_and_frees_its_place() {
    let env = with_webhook_limit(10).await;
    let key = env.api_key("u1").await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let hook = env.webhook_to(&key, &format!("{URL}/{i}")).await;
        ids.push(hook["_id"].as_str().unwrap().to_owned());
    }
    let reply = env.delete_webhook(&key, &[("webhookId", &ids[0])]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json(), json!({"success": true}));
    // The legacy query name `id`.
    let reply = env.delete_webhook(&key, &[("id", &ids[1])]).await;
    assert_eq!(reply.json(), json!({"success": true}));
    assert_eq!(env.list_webhooks(&key).await.as_array().unwrap().len(), 8);
    for i in 0..2 {
        let reply = env
            .create_webhook(&key, &new_webhook(&format!("again{i}"), URL))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let reply = env
        .create_webhook(&key, &new_webhook("one more", URL))
        .await;
    assert_eq!(reply.json()["code"], "webhook_limit_reached");
    // Deleted twice: not found the second time.
    assert_webhook_not_found(&env.delete_webhook(&key, &[("webhookId", &ids[0])]).await);
}

#[tokio::test]
async fn an_update_changes_only_the_given_fields_and_takes_the_legacy_id() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let hook = env.webhook_to(&key, URL).await;
    env.clock.advance(60);
    let update = json!({
        "_id": hook["_id"],
        "events": ["message.sent", "message.read"],
        "isActive": false,
        "customHeaders": {"X-Api-Key": "k"},
    });
    let reply = env.update_webhook(&key, &update).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let updated = reply.json()["webhook"].clone();
    assert_eq!(updated["events"], json!(["message.sent", "message.read"]));
    assert_eq!(updated["isActive"], false);
    assert_eq!(updated["customHeaders"], json!({"X-Api-Key": "k"}));
    assert_eq!(updated["name"], hook["name"]);
    assert_eq!(updated["url"], hook["url"]);
    assert_eq!(updated["createdAt"], hook["createdAt"]);
    assert_ne!(updated["updatedAt"], hook["updatedAt"]);
    assert_eq!(env.list_webhooks(&key).await[0], updated);
}

#[tokio::test]
async fn an_update_refuses_what_a_create_refuses() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let hook = env.webhook_to(&key, URL).await;
    let id = hook["_id"].clone();
    let egress = public_egress();
    for (field, value, param) in [
        ("url", json!("https://10.0.0.8/"), "url"),
        ("url", json!("http://hooks.example.com/"), "url"),
        ("name", json!(""), "name"),
        ("events", json!([]), "events"),
        (
            "customHeaders",
            json!({"X-Zernio-Event": "x"}),
            "customHeaders",
        ),
        ("isActive", json!(1), "isActive"),
    ] {
        let body = json!({ "webhookId": id, field: value });
        let reply = env
            .webhooks_with(&egress, Method::PUT, SETTINGS, Some(&key), Some(&body), &[])
            .await;
        assert_invalid(&reply, param);
    }
    let reply = env
        .webhooks(
            Method::PUT,
            SETTINGS,
            &key,
            Some(&json!({"name": "no id"})),
            &[],
        )
        .await;
    assert_invalid(&reply, "webhookId");
    let reply = env.delete_webhook(&key, &[]).await;
    assert_invalid(&reply, "webhookId");
    assert_eq!(env.list_webhooks(&key).await[0], hook_without_secret(&hook));
}

fn hook_without_secret(hook: &Value) -> Value {
    let mut hook = hook.clone();
    hook.as_object_mut().unwrap().remove("secret");
    hook
}

#[tokio::test]
async fn another_users_webhook_is_not_found_exactly_like_an_unknown_one() {
    let env = TestEnv::new().await;
    let owner = env.api_key("owner").await;
    let stranger = env.api_key("stranger").await;
    let hook = env.webhook_to(&owner, URL).await;
    let theirs = hook["_id"].as_str().unwrap();
    let unknown = "wh_000000000000000000000A";
    let mut answers = Vec::new();
    for id in [theirs, unknown, "not-an-id"] {
        let update = json!({ "webhookId": id, "name": "mine now" });
        let put = env.update_webhook(&stranger, &update).await;
        let delete = env.delete_webhook(&stranger, &[("webhookId", id)]).await;
        let test = env.test_webhook(&stranger, id).await;
        for reply in [&put, &delete, &test] {
            assert_webhook_not_found(reply);
            answers.push(reply.text.clone());
        }
    }
    answers.dedup();
    assert_eq!(
        answers.len(),
        1,
        "one answer whatever the cause: {answers:?}"
    );
    assert_eq!(
        env.list_webhooks(&owner).await[0],
        hook_without_secret(&hook)
    );
    assert_eq!(env.list_webhooks(&stranger).await, json!([]));
}

#[tokio::test]
async fn every_route_needs_a_valid_api_key() {
    let env = TestEnv::new().await;
    let egress = public_egress();
    for (method, path) in [
        (Method::POST, SETTINGS),
        (Method::GET, SETTINGS),
        (Method::PUT, SETTINGS),
        (Method::DELETE, SETTINGS),
        (Method::POST, e2e::webhooks::TEST),
        (Method::GET, e2e::webhooks::LOGS),
        (Method::POST, e2e::webhooks::REDELIVER),
        (Method::POST, e2e::webhooks::RECOVER),
    ] {
        for key in [None, Some("sk_unknown")] {
            let reply = env
                .webhooks_with(&egress, method.clone(), path, key, Some(&json!({})), &[])
                .await;
            assert_error(
                &reply,
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "unauthorized",
            );
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        }
    }
}

/// About 29,000 distinct header names (two of them one name in two cases, one with a value that
/// is no string) in a body under the 256 KiB limit.
fn a_flood_of_header_names() -> Value {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let name = |mut i: usize| {
        let mut n = String::new();
        loop {
            n.push(digits[i % 36] as char);
            i /= 36;
            if i == 0 {
                break n;
            }
        }
    };
    let mut headers: serde_json::Map<String, Value> =
        (0..28_999).map(|i| (name(i), json!(""))).collect();
    headers.insert("A".into(), json!(""));
    // And one value that is no string: only the count is judged.
    headers.insert("0".into(), json!(0));
    Value::Object(headers)
}

#[tokio::test]
async fn a_flood_of_custom_headers_is_refused_for_its_count_and_an_update_for_no_webhook_is_not_found(
) {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let flood = a_flood_of_header_names();
    assert_eq!(flood.as_object().unwrap().len(), 29_000);

    let create = with("customHeaders", flood.clone());
    assert!(create.to_string().len() < sandbox::api::webhooks::MAX_BODY_BYTES);
    let reply = env.create_webhook(&key, &create).await;
    let body = assert_invalid(&reply, "customHeaders");
    // Refused by the count, before any name is compared ("A" repeats "a").
    assert_eq!(
        body["error"],
        "at most 10 custom headers are allowed, got 29000"
    );

    let hook = env.webhook_to(&key, URL).await;
    let update = json!({ "webhookId": hook["_id"], "customHeaders": flood });
    let reply = env.update_webhook(&key, &update).await;
    let body = assert_invalid_field(&reply);
    assert_eq!(
        body["error"],
        "at most 10 custom headers are allowed, got 29000"
    );

    // For no webhook of the caller, the update is 404 before its fields are read.
    let update = json!({ "webhookId": "wh_000000000000000000000A", "customHeaders": flood });
    let reply = env.update_webhook(&key, &update).await;
    assert_webhook_not_found(&reply);
    let bad_url = json!({ "webhookId": "wh_000000000000000000000A", "url": "http://10.0.0.1/" });
    let reply = env
        .webhooks_with(
            &public_egress(),
            Method::PUT,
            SETTINGS,
            Some(&key),
            Some(&bad_url),
            &[],
        )
        .await;
    assert_webhook_not_found(&reply);
}
