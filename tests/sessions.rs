//! Create, list and revoke, one test per row of the contract (`API.md`).

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::meta::{self, payload_of};
use e2e::{Options, TestEnv, SANDBOX_NUMBER, T0};
use futures::future::join_all;
use lambda_http::http::{Method, StatusCode};
use lambda_http::Body;
use sandbox::session::{SessionId, UserId};
use sandbox::store::{ItemKind, Key};
use serde_json::{json, Value};

const SPAIN: &str = "+34 688-246-216";
const SPAIN_DIGITS: &str = "34688246216";
const UK: &str = "+44 7400 123456";
const DAY: i64 = 86_400;

const NOT_FOUND: &str = r#"{"error":"Session not found","type":"invalid_request_error","code":"session_not_found","param":"sessionId"}"#;
const UNAUTHORIZED: &str =
    r#"{"error":"Unauthorized","type":"authentication_error","code":"unauthorized"}"#;

async fn env_accepting() -> TestEnv {
    let env = TestEnv::new().await;
    meta::accept(&env.meta).await;
    env
}

/// Marks the user's session active directly in the table (the webhook's job, tested there).
async fn activate_in_table(env: &TestEnv, user: &str, at: i64) {
    env.app
        .store
        .client()
        .update_item()
        .table_name(&env.table)
        .set_key(Some(Key::session(&UserId::new(user)).item()))
        .update_expression("SET #s = :a, activatedAt = :at, expiresAt = :exp")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":a", AttributeValue::S("active".into()))
        .expression_attribute_values(":at", AttributeValue::N(at.to_string()))
        .expression_attribute_values(":exp", AttributeValue::N((at + 7 * DAY).to_string()))
        .send()
        .await
        .expect("activate");
}

fn assert_error(reply: &e2e::Reply, status: StatusCode, kind: &str, code: &str) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["type"], kind, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.header("x-request-id").is_some());
    body
}

// ---------- Authentication ----------

#[tokio::test]
async fn missing_malformed_unknown_or_disabled_key_is_401_on_every_session_endpoint() {
    let env = env_accepting().await;
    let disabled = env.key_with_status("u-disabled", "disabled").await;
    let body = json!({"phone": SPAIN}).to_string();
    for key in [None, Some("not-a-real-key"), Some(disabled.as_str())] {
        for reply in [
            env.create_raw(key, body.clone()).await,
            env.list(key).await,
            env.revoke(key, "wss_3kTMd9Xr7QeZp1bN8vYc2a").await,
        ] {
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            assert_eq!(reply.text, UNAUTHORIZED);
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        }
    }
    // Wrong scheme, and a scheme in another case that must still work.
    let key = env.api_key("u1").await;
    let list_with = |authorization: String| {
        let mut req = e2e::request(
            Method::GET,
            "/v1/whatsapp/sandbox/sessions",
            None,
            Body::Empty,
        );
        req.headers_mut()
            .insert("authorization", authorization.parse().unwrap());
        sandbox::api::list::handle(&env.app, req)
    };
    let basic = list_with(format!("Basic {key}")).await;
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let mixed_case = list_with(format!("bEaReR {key}")).await;
    assert_eq!(mixed_case.status(), StatusCode::OK);
    assert!(env.sent_templates().await.is_empty());
}

#[tokio::test]
async fn warm_container_does_no_auth_read_and_disabled_key_stops_within_cache_time() {
    let env = TestEnv::with(Options {
        auth_cache_seconds: 60,
        ..Options::default()
    })
    .await;
    let key = env.api_key("u1").await;
    env.list(Some(&key)).await;
    assert_eq!(
        env.counter.operations(),
        ["GetItem", "GetItem"],
        "cold: key + session"
    );
    env.counter.reset();
    env.list(Some(&key)).await;
    assert_eq!(env.counter.operations(), ["GetItem"], "warm: session only");

    // Disable the key: it keeps working until the cache entry is 60 s old, then 401.
    env.app
        .store
        .client()
        .update_item()
        .table_name(&env.table)
        .set_key(Some(Key::api_key(&sandbox::auth::key_hash(&key)).item()))
        .update_expression("SET #s = :d")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":d", AttributeValue::S("disabled".into()))
        .send()
        .await
        .unwrap();
    env.clock.advance(59);
    assert_eq!(env.list(Some(&key)).await.status, StatusCode::OK);
    env.clock.advance(1);
    assert_eq!(env.list(Some(&key)).await.status, StatusCode::UNAUTHORIZED);
}

// ---------- Request ids and headers ----------

#[tokio::test]
async fn valid_incoming_request_id_is_reused_and_invalid_one_replaced() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let call = |id: Option<String>| {
        let mut req = e2e::request(
            Method::GET,
            "/v1/whatsapp/sandbox/sessions",
            Some(&key),
            Body::Empty,
        );
        if let Some(id) = id {
            req.headers_mut()
                .insert("x-request-id", id.parse().unwrap());
        }
        req
    };
    let reply = e2e::finish(
        "GET",
        "/v1/whatsapp/sandbox/sessions",
        sandbox::api::list::handle(&env.app, call(Some("abc-123_X.y".into()))).await,
    );
    assert_eq!(reply.header("x-request-id"), Some("abc-123_X.y"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    for bad in [
        "has space".to_owned(),
        "x".repeat(129),
        "semi;colon".to_owned(),
    ] {
        let reply = e2e::finish(
            "GET",
            "/v1/whatsapp/sandbox/sessions",
            sandbox::api::list::handle(&env.app, call(Some(bad.clone()))).await,
        );
        let id = reply.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        assert!(sandbox::edge::is_valid_request_id(id), "{id}");
    }
    // Errors carry it too.
    let reply = env.list(None).await;
    assert!(reply.header("x-request-id").is_some());
}

// ---------- Create: body validation ----------

#[tokio::test]
async fn create_body_not_json_or_not_object_is_invalid_json() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    for body in [
        "",
        "not json",
        "[1,2]",
        "\"+34688246216\"",
        "{\"phone\":",
        "null",
    ] {
        let reply = env.create_raw(Some(&key), body.to_owned()).await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
        );
    }
    assert!(env.sent_templates().await.is_empty());
    assert!(env
        .snapshot()
        .await
        .iter()
        .all(|i| ItemKind::ApiKey.owns(i["pk"].as_s().unwrap())));
}

#[tokio::test]
async fn create_body_over_8_kib_is_413_payload_too_large() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let big = json!({"phone": SPAIN, "pad": "x".repeat(8 * 1024)}).to_string();
    let reply = env.create_raw(Some(&key), big).await;
    assert_error(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "payload_too_large",
    );
    // Exactly 8 KiB is still accepted.
    let mut body = json!({"phone": SPAIN, "pad": ""}).to_string();
    let pad = 8 * 1024 - body.len();
    body = json!({"phone": SPAIN, "pad": "x".repeat(pad)}).to_string();
    assert_eq!(body.len(), 8 * 1024);
    assert_eq!(
        env.create_raw(Some(&key), body).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn create_phone_missing_not_a_string_or_invalid_is_invalid_field_value() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let cases = [
        (json!({}), "required"),
        (json!({"phone": null}), "required"),
        (json!({"phone": 34688246216u64}), "must be a string"),
        (json!({"phone": ["+34688246216"]}), "must be a string"),
        (json!({"phone": "+34 68a 246 216"}), "'a'"),
        (json!({"phone": "++34688246216"}), "single +"),
        (json!({"phone": "+34+688246216"}), "single +"),
        (json!({"phone": "+٣٤٦٨٨٢٤٦٢١٦"}), "only digits"),
        (json!({"phone": "+３４６８８２４６２１６"}), "only digits"),
        (json!({"phone": "+34 6"}), "too short"),
        (json!({"phone": "+346882462161234567"}), "too long"),
        (json!({"phone": "+999 123 456 789"}), "not a valid"),
        (json!({"phone": "+1 555 0100"}), "not a valid"),
        (json!({"phone": ""}), "empty"),
    ];
    for (body, says) in cases {
        let reply = env.create_raw(Some(&key), body.to_string()).await;
        let err = assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_field_value",
        );
        assert_eq!(err["param"], "phone", "{body}");
        let msg = err["error"].as_str().unwrap();
        assert!(msg.contains(says), "{body}: {msg:?} should say {says:?}");
    }
    assert!(env.sent_templates().await.is_empty());
}

#[tokio::test]
async fn phones_from_many_countries_and_spellings_normalize_to_e164_digits() {
    let env = env_accepting().await;
    let cases: &[(&[&str], &str)] = &[
        (
            &["+34 688-246-216", "34688246216", "+34 (688) 24.62.16"],
            "34688246216",
        ), // Spain
        (
            &["+44 7400 123456", "447400123456", "+44 (7400) 123-456"],
            "447400123456",
        ), // UK
        (
            &["+1 (202) 555-0143", "12025550143", "+1.202.555.0143"],
            "12025550143",
        ), // USA
        (&["+49 1512 3456789", "+49-151-23456789"], "4915123456789"), // Germany
        (&["+33 6 12 34 56 78", "33612345678"], "33612345678"),       // France
        (&["+55 11 98765-4321", "5511987654321"], "5511987654321"),   // Brazil
        (
            &["+52 55 1234 5678", "525512345678", "+52 (55) 1234-5678"],
            "525512345678",
        ), // Mexico
        (&["+91 98765 43210", "919876543210"], "919876543210"),       // India
        (&["+81 90-1234-5678", "819012345678"], "819012345678"),      // Japan
        (&["+234 803 123 4567", "2348031234567"], "2348031234567"),   // Nigeria
        (&["+61 412 345 678", "61412345678"], "61412345678"),         // Australia
        (&["+54 9 11 2345-6789", "5491123456789"], "5491123456789"),  // Argentina
        (&["+39 312 345 6789", "393123456789"], "393123456789"),      // Italy
        (&["+971 50 123 4567", "971501234567"], "971501234567"),      // UAE
    ];
    for (i, (spellings, digits)) in cases.iter().enumerate() {
        for (j, spelling) in spellings.iter().enumerate() {
            // A user per spelling, so each create is a fresh session.
            let key = env.api_key(&format!("u{i}-{j}")).await;
            let reply = env.create(&key, spelling).await;
            assert_eq!(reply.status, StatusCode::OK, "{spelling}: {}", reply.text);
            assert_eq!(reply.json()["session"]["phoneE164"], *digits, "{spelling}");
        }
    }
    let sent = env.sent_templates().await;
    assert!(
        sent.iter()
            .all(|t| t["to"].as_str().unwrap().starts_with('+')),
        "sent as + and digits"
    );
}

// ---------- Create: the session rows ----------

#[tokio::test]
async fn no_live_session_creates_pending_session_and_sends_template() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let reply = env.create(&key, SPAIN).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let s = &body["session"];
    let id = s["id"].as_str().unwrap();
    assert!(SessionId::parse(id).is_some(), "{id}");
    assert_eq!(s["phoneE164"], SPAIN_DIGITS);
    assert_eq!(s["status"], "pending");
    assert_eq!(s["createdAt"], "2026-11-24T14:15:22Z");
    assert_eq!(s["expiresAt"], "2026-11-25T14:15:22Z");
    assert_eq!(s["activatedAt"], Value::Null);
    assert_eq!(body["sandboxNumber"], SANDBOX_NUMBER);

    let sent = env.sent_templates().await;
    assert_eq!(sent.len(), 1);
    let t = &sent[0];
    assert_eq!(t["messaging_product"], "whatsapp");
    assert_eq!(t["to"], "+34688246216");
    assert_eq!(t["type"], "template");
    assert_eq!(t["template"]["name"], "sandbox_start");
    assert_eq!(t["template"]["language"]["code"], "en_US");
    assert_eq!(payload_of(t), format!("activate:{id}"));

    // Meta's message id and wa_id are stored for the webhook.
    let item = env.session_item("u1").await;
    assert_eq!(
        item["activationMessageId"].as_s().unwrap(),
        "wamid.TEST000000"
    );
    assert_eq!(item["waId"].as_s().unwrap(), SPAIN_DIGITS);
    assert_eq!(item["expiresAt"].as_n().unwrap(), &(T0 + DAY).to_string());

    let list = env.list(Some(&key)).await.json();
    assert_eq!(list["sessions"][0]["id"], id);
}

#[tokio::test]
async fn live_pending_same_phone_keeps_id_and_created_at_refreshes_expiry_and_resends() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let first = env.create(&key, SPAIN).await.json()["session"].clone();
    env.clock.advance(3_600);
    // Another spelling of the same number.
    let reply = env.create(&key, "+34688246216").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let second = &reply.json()["session"];
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["createdAt"], first["createdAt"]);
    assert_eq!(second["status"], "pending");
    assert_eq!(second["expiresAt"], "2026-11-25T15:15:22Z");
    let sent = env.sent_templates().await;
    assert_eq!(sent.len(), 2);
    assert_eq!(payload_of(&sent[1]), payload_of(&sent[0]));
    // The new message id replaces the old one, and list agrees.
    let item = env.session_item("u1").await;
    assert_eq!(
        item["activationMessageId"].as_s().unwrap(),
        "wamid.TEST000001"
    );
    assert_eq!(
        env.list(Some(&key)).await.json()["sessions"][0]["expiresAt"],
        "2026-11-25T15:15:22Z"
    );
}

#[tokio::test]
async fn live_active_same_phone_is_returned_unchanged_and_nothing_is_sent() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    env.create(&key, SPAIN).await;
    activate_in_table(&env, "u1", T0 + 60).await;
    env.clock.advance(3_600);
    let before = env.list(Some(&key)).await.json()["sessions"][0].clone();
    assert_eq!(before["status"], "active");
    env.counter.reset();
    let reply = env.create(&key, SPAIN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["session"], before);
    assert_eq!(
        reply.json()["session"]["activatedAt"],
        "2026-11-24T14:16:22Z"
    );
    assert_eq!(
        env.sent_templates().await.len(),
        1,
        "only the first create sent"
    );
    assert_eq!(
        env.counter.operations(),
        ["GetItem", "PutItem"],
        "auth + the failed claim"
    );
}

#[tokio::test]
async fn live_session_for_different_phone_is_rejected_naming_it_and_nothing_is_sent() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let id = env.create(&key, SPAIN).await.json()["session"]["id"].clone();
    let before = env.snapshot().await;
    let reply = env.create(&key, UK).await;
    let err = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_field_value",
    );
    assert_eq!(err["param"], "phone");
    let msg = err["error"].as_str().unwrap();
    assert!(msg.contains("+34688246216"), "{msg}");
    assert!(msg.contains("revoke"), "{msg}");
    assert_eq!(err["details"]["existingSessionId"], id);
    assert_eq!(err["details"]["existingPhoneE164"], SPAIN_DIGITS);
    assert_eq!(env.sent_templates().await.len(), 1);
    assert_eq!(env.snapshot().await, before);

    // Also when the existing one is active.
    activate_in_table(&env, "u1", T0).await;
    let reply = env.create(&key, UK).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(env.sent_templates().await.len(), 1);
}

#[tokio::test]
async fn expired_session_does_not_block_a_new_phone_and_is_invisible() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let old = env.create(&key, SPAIN).await.json()["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.clock.advance(DAY); // expiresAt == now: expired
    assert_eq!(env.list(Some(&key)).await.json()["sessions"], json!([]));
    assert_eq!(env.revoke(Some(&key), &old).await.text, NOT_FOUND);
    let reply = env.create(&key, UK).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_ne!(reply.json()["session"]["id"], old.as_str());
    // Same phone after expiry: a brand-new session, not the old id.
    env.clock.advance(DAY);
    let again = env.create(&key, UK).await.json();
    assert_eq!(again["session"]["createdAt"], e2e_rfc(T0 + 2 * DAY));
    // Active sessions expire too.
    activate_in_table(&env, "u1", T0 + 2 * DAY).await;
    env.clock.advance(7 * DAY);
    assert_eq!(env.list(Some(&key)).await.json()["sessions"], json!([]));
}

fn e2e_rfc(t: i64) -> String {
    sandbox::session::rfc3339(t)
}

// ---------- Create: Meta fails ----------

#[tokio::test]
async fn meta_error_rolls_back_a_new_session_exactly_and_returns_metas_message() {
    let env = TestEnv::new().await;
    let meta_error = meta::error_body(
        131030,
        "(#131030) Recipient phone number not in allowed list",
    );
    meta::answer(&env.meta, 400, meta_error.clone()).await;
    let key = env.api_key("u1").await;
    let before = env.snapshot().await;
    let reply = env.create(&key, SPAIN).await;
    let err = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "platform_error",
        "whatsapp_send_failed",
    );
    assert_eq!(
        err["error"],
        "(#131030) Recipient phone number not in allowed list"
    );
    assert_eq!(err["platform"], "meta");
    assert_eq!(err["platformError"], meta_error["error"]);
    assert_eq!(env.snapshot().await, before, "table exactly as before");
    assert_eq!(env.list(Some(&key)).await.json()["sessions"], json!([]));
}

#[tokio::test]
async fn meta_error_on_refresh_leaves_the_pending_session_with_its_old_expiry() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    meta::accept(&env.meta).await;
    env.create(&key, SPAIN).await;
    env.meta.reset().await;
    meta::answer(
        &env.meta,
        400,
        meta::error_body(132015, "(#132015) Template is paused"),
    )
    .await;
    env.clock.advance(3_600);
    let before = env.snapshot().await;
    let reply = env.create(&key, SPAIN).await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "platform_error",
        "whatsapp_send_failed",
    );
    assert_eq!(env.snapshot().await, before, "table exactly as before");
    let list = env.list(Some(&key)).await.json();
    assert_eq!(list["sessions"][0]["expiresAt"], "2026-11-25T14:15:22Z");
}

#[tokio::test]
async fn meta_error_after_an_expired_session_restores_the_expired_item_exactly() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    env.create(&key, SPAIN).await;
    env.clock.advance(2 * DAY);
    env.meta.reset().await;
    meta::answer(
        &env.meta,
        400,
        meta::error_body(100, "(#100) Invalid parameter"),
    )
    .await;
    let before = env.snapshot().await;
    let reply = env.create(&key, UK).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn meta_5xx_without_error_object_is_502_and_rolled_back() {
    let env = TestEnv::new().await;
    meta::answer_raw(&env.meta, 503, "<html>Service Unavailable</html>").await;
    let key = env.api_key("u1").await;
    let before = env.snapshot().await;
    let reply = env.create(&key, SPAIN).await;
    assert_error(
        &reply,
        StatusCode::BAD_GATEWAY,
        "api_error",
        "upstream_unavailable",
    );
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn meta_timeout_is_502_and_rolled_back() {
    let env = TestEnv::with(Options {
        meta_timeout_ms: 300,
        ..Options::default()
    })
    .await;
    meta::accept_with(&env.meta, None, Some(Duration::from_secs(2))).await;
    let key = env.api_key("u1").await;
    let before = env.snapshot().await;
    let reply = env.create(&key, SPAIN).await;
    assert_error(
        &reply,
        StatusCode::BAD_GATEWAY,
        "api_error",
        "upstream_unavailable",
    );
    assert_eq!(env.snapshot().await, before);
    assert_eq!(
        env.sent_templates().await.len(),
        1,
        "sent once, never retried"
    );
}

#[tokio::test]
async fn meta_unreachable_is_502_and_rolled_back() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    // Point the Graph client at a port nobody listens on.
    let mut app_config = env.app.config.clone();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    app_config.graph_base_url = format!("http://127.0.0.1:{port}");
    let graph =
        sandbox::graph::GraphClient::new(&app_config, sandbox::config::Secret::new("t")).unwrap();
    let app = sandbox::App::new(
        app_config,
        env.app.store.clone(),
        Some(graph),
        env.clock.clone(),
    );
    let before = env.snapshot().await;
    let req = e2e::request(
        Method::POST,
        "/v1/whatsapp/sandbox/sessions",
        Some(&key),
        json!({"phone": SPAIN}).to_string().into(),
    );
    let reply = e2e::finish(
        "POST",
        "/v1/whatsapp/sandbox/sessions",
        sandbox::api::create::handle(&app, req).await,
    );
    assert_error(
        &reply,
        StatusCode::BAD_GATEWAY,
        "api_error",
        "upstream_unavailable",
    );
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn rollback_never_clobbers_a_concurrent_refresh_whose_send_was_accepted() {
    let env = TestEnv::new().await;
    // The first send fails after a second; every later send is accepted at once.
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(400)
                .set_body_json(meta::error_body(131000, "(#131000) Something went wrong"))
                .set_delay(Duration::from_secs(1)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&env.meta)
        .await;
    meta::accept(&env.meta).await;
    let key = env.api_key("u1").await;
    let (first, second) = tokio::join!(env.create(&key, SPAIN), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        env.create(&key, SPAIN).await
    });
    assert_eq!(first.status, StatusCode::BAD_REQUEST, "{}", first.text);
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    // The second caller was told its session exists: it must.
    let list = env.list(Some(&key)).await.json();
    assert_eq!(list["sessions"][0]["id"], second.json()["session"]["id"]);
}

// ---------- DynamoDB unavailable ----------

#[tokio::test]
async fn dynamodb_unavailable_is_503_service_unavailable_without_aws_details() {
    let env = env_accepting().await;
    let app = env.app_with_unreachable_dynamodb();
    for (method, path) in [
        (Method::POST, "/v1/whatsapp/sandbox/sessions"),
        (Method::GET, "/v1/whatsapp/sandbox/sessions"),
        (
            Method::DELETE,
            "/v1/whatsapp/sandbox/sessions/wss_3kTMd9Xr7QeZp1bN8vYc2a",
        ),
    ] {
        let req = e2e::request(
            method.clone(),
            path,
            Some("some-key"),
            json!({"phone": SPAIN}).to_string().into(),
        );
        let response = match method {
            Method::POST => sandbox::api::create::handle(&app, req).await,
            Method::GET => sandbox::api::list::handle(&app, req).await,
            _ => sandbox::api::revoke::handle(&app, req).await,
        };
        let reply = e2e::finish(method.as_str(), path, response);
        let err = assert_error(
            &reply,
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "service_unavailable",
        );
        let text = err.to_string().to_lowercase();
        for leak in ["dispatch", "dynamodb", "connect", "127.0.0.1", "some-key"] {
            assert!(!text.contains(leak), "{text}");
        }
    }
    assert!(env.sent_templates().await.is_empty());
}

// ---------- Concurrency ----------

#[tokio::test]
async fn twenty_concurrent_creates_for_different_phones_leave_one_session_and_one_send() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let phones: Vec<String> = (0..20)
        .map(|i| format!("+34 688 246 {:03}", 200 + i))
        .collect();
    let replies = join_all(phones.iter().map(|p| env.create(&key, p))).await;
    let ok: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 1, "exactly one create wins");
    assert!(replies
        .iter()
        .filter(|r| r.status != StatusCode::OK)
        .all(|r| r.status == StatusCode::BAD_REQUEST && r.json()["code"] == "invalid_field_value"));
    assert_eq!(
        env.sent_templates().await.len(),
        1,
        "exactly one template sent"
    );
    let list = env.list(Some(&key)).await.json();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(list["sessions"][0]["id"], ok[0].json()["session"]["id"]);
}

#[tokio::test]
async fn twenty_concurrent_creates_for_the_same_phone_leave_one_session() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let replies = join_all((0..20).map(|_| env.create(&key, SPAIN))).await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::OK),
        "{replies:?}"
    );
    let ids: std::collections::HashSet<_> = replies
        .iter()
        .map(|r| r.json()["session"]["id"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "every caller sees the same session");
    let list = env.list(Some(&key)).await.json();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    let sessions = env
        .snapshot()
        .await
        .into_iter()
        .filter(|i| ItemKind::Session.owns(i["pk"].as_s().unwrap()))
        .count();
    assert_eq!(sessions, 1);
}

// ---------- List ----------

#[tokio::test]
async fn list_is_empty_array_with_sandbox_number_when_no_session() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let reply = env.list(Some(&key)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"sessions": [], "sandboxNumber": SANDBOX_NUMBER})
    );
}

#[tokio::test]
async fn list_shows_own_pending_and_active_sessions_never_another_users() {
    let env = env_accepting().await;
    let alice = env.api_key("alice").await;
    let bob = env.api_key("bob").await;
    let a = env.create(&alice, SPAIN).await.json()["session"].clone();
    env.create(&bob, UK).await;
    let list = env.list(Some(&alice)).await.json();
    assert_eq!(list["sessions"], json!([a]));
    activate_in_table(&env, "bob", T0 + 5).await;
    let list = env.list(Some(&bob)).await.json();
    assert_eq!(list["sessions"][0]["status"], "active");
    assert_eq!(list["sessions"][0]["phoneE164"], "447400123456");
}

// ---------- Revoke ----------

#[tokio::test]
async fn revoke_deletes_own_session() {
    let env = env_accepting().await;
    let key = env.api_key("u1").await;
    let id = env.create(&key, SPAIN).await.json()["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = env.revoke(Some(&key), &id).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"success": true}));
    assert_eq!(env.list(Some(&key)).await.json()["sessions"], json!([]));
    assert!(
        env.snapshot()
            .await
            .iter()
            .all(|i| !ItemKind::Session.owns(i["pk"].as_s().unwrap())),
        "hard-deleted"
    );
    // A new phone may now be activated.
    assert_eq!(env.create(&key, UK).await.status, StatusCode::OK);
}

#[tokio::test]
async fn revoke_of_foreign_unknown_malformed_or_expired_session_is_the_same_400() {
    let env = env_accepting().await;
    let alice = env.api_key("alice").await;
    let bob = env.api_key("bob").await;
    let bobs = env.create(&bob, UK).await.json()["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let alices = env.create(&alice, SPAIN).await.json()["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown = SessionId::generate().unwrap();
    let mut bodies = vec![
        env.revoke(Some(&alice), &bobs).await, // another user's
        env.revoke(Some(&alice), unknown.as_str()).await, // unknown
        env.revoke(Some(&alice), "not-a-session-id").await, // malformed
        env.revoke(Some(&alice), "wss_%00..%2F").await, // malformed, odd characters
    ];
    env.clock.advance(DAY);
    bodies.push(env.revoke(Some(&alice), &alices).await); // expired
    for reply in &bodies {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.text, NOT_FOUND, "byte-identical");
    }
    // Bob's session is untouched by Alice's attempt.
    env.clock.set(T0);
    assert_eq!(
        env.list(Some(&bob)).await.json()["sessions"][0]["id"],
        bobs.as_str()
    );
}

// ---------- Round-trip budget ----------

#[tokio::test]
async fn round_trip_budget_per_operation() {
    let env = TestEnv::with(Options {
        auth_cache_seconds: 60,
        ..Options::default()
    })
    .await;
    meta::accept(&env.meta).await;
    let key = env.api_key("u1").await;
    env.list(Some(&key)).await; // warm the auth cache
    env.counter.reset();

    let id = env.create(&key, SPAIN).await.json()["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        env.counter.operations(),
        ["PutItem", "UpdateItem"],
        "create: claim + record send"
    );
    assert_eq!(
        env.sent_templates().await.len(),
        1,
        "create: one Graph API call"
    );
    env.counter.reset();

    env.create(&key, SPAIN).await;
    assert_eq!(
        env.counter.operations(),
        ["PutItem", "UpdateItem"],
        "refresh: claim + update"
    );
    env.counter.reset();

    env.list(Some(&key)).await;
    assert_eq!(env.counter.operations(), ["GetItem"], "list");
    env.counter.reset();

    env.revoke(Some(&key), &id).await;
    assert_eq!(env.counter.operations(), ["DeleteItem"], "revoke");
    env.counter.reset();

    // A cold container adds exactly the one auth read.
    let cold = TestEnv::new().await;
    meta::accept(&cold.meta).await;
    let key = cold.api_key("u1").await;
    cold.list(Some(&key)).await;
    assert_eq!(cold.counter.operations(), ["GetItem", "GetItem"]);
}
