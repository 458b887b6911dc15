//! `sendWhatsAppSandboxMessage` (`openapi.yaml`; README "Sandbox messaging"): every refusal
//! with nothing sent, the customer-service window, the daily cap under concurrency,
//! `Idempotency-Key`, Meta's errors, and the DynamoDB requests of a send.

use futures::future::join_all;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use e2e::messaging::inbound_text;
use e2e::meta;
use e2e::{
    assert_error, assert_invalid_field, Options, TestEnv, DAY, SPAIN, SPAIN_DIGITS, T0, UK_DIGITS,
};

/// A text send to the active phone: 200 with the contract's shape, one Graph API call with
/// the text, the phone and the message's tag, and the message in the conversation.
#[tokio::test]
async fn a_text_to_the_active_phone_is_sent_and_kept() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let reply = env.send_text(&s.key, "hola 👋").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let message = &reply.json()["message"];
    assert!(message["id"].as_str().unwrap().starts_with("wamid."));
    assert_eq!(message["direction"], "outbound");
    assert_eq!(message["to"], SPAIN_DIGITS);
    assert_eq!(message["type"], "text");
    assert_eq!(message["status"], "accepted");
    assert_eq!(message["createdAt"], "2036-11-24T14:15:52Z");

    let sent = env.sent_messages().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], format!("+{SPAIN_DIGITS}"));
    assert_eq!(sent[0]["type"], "text");
    assert_eq!(sent[0]["text"]["body"], "hola 👋");

    let conversation = env.conversation(&s.key).await;
    let first = &conversation["messages"][0];
    assert_eq!(first["id"], message["id"]);
    assert_eq!(first["text"]["body"], "hola 👋");
    assert_eq!(first["status"], "accepted");
    assert_eq!(first["phoneE164"], SPAIN_DIGITS);
}

/// No session, a pending one, an expired one and a revoked one: 403, nothing sent.
#[tokio::test]
async fn without_an_active_session_nothing_is_sent() {
    let env = TestEnv::accepting().await;
    let text = json!({"type": "text", "text": {"body": "hi"}});
    let template = json!({"type": "template"});

    let nobody = env.api_key("nobody").await;
    let pending = env.pending("pending", SPAIN_DIGITS).await;
    let revoked = env.active("revoked", UK_DIGITS).await;
    assert_eq!(
        env.revoke(Some(&revoked.key), &revoked.id).await.status,
        StatusCode::OK
    );
    for key in [&nobody, &pending.key, &revoked.key] {
        for body in [&text, &template] {
            let reply = env.send(key, body).await;
            let err = assert_error(
                &reply,
                StatusCode::FORBIDDEN,
                "permission_error",
                "sandbox_session_required",
            );
            assert!(err.get("param").is_none());
        }
    }

    let expired = env.active("expired", "34611222333").await;
    env.clock.advance(env.app.config.active_ttl_seconds + 1);
    let reply = env.send(&expired.key, &template).await;
    assert_error(
        &reply,
        StatusCode::FORBIDDEN,
        "permission_error",
        "sandbox_session_required",
    );
    assert!(env.sent_messages().await.is_empty());
}

/// The window runs 24 hours from the phone's latest message: text and interactive inside it,
/// 400 with `details.windowExpiresAt` after it (the template still goes), and a new message
/// from the phone opens it again.
#[tokio::test]
async fn the_customer_service_window_opens_and_closes_with_the_phones_messages() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await; // the tap at T0 + 30
    let closes = T0 + 30 + DAY;
    env.clock.set(closes - 1);
    assert_eq!(
        env.send_text(&s.key, "still open").await.status,
        StatusCode::OK
    );

    env.clock.set(closes);
    let reply = env.send_text(&s.key, "too late").await;
    let err = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "outside_customer_service_window",
    );
    assert_eq!(err["details"]["windowExpiresAt"], "2036-11-25T14:15:52Z");
    let buttons = json!({"type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Pick one"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}}});
    assert_eq!(
        env.send(&s.key, &buttons).await.status,
        StatusCode::BAD_REQUEST
    );
    let template = env.send(&s.key, &json!({"type": "template"})).await;
    assert_eq!(template.status, StatusCode::OK, "{}", template.text);
    assert_eq!(
        env.sent_messages().await.len(),
        2,
        "the open-window text and the template"
    );

    // The phone writes again: the window is open for 24 hours from that message.
    env.deliver_messages(vec![inbound_text(SPAIN_DIGITS, "back", DAY + 100, 9)])
        .await;
    assert_eq!(env.send(&s.key, &buttons).await.status, StatusCode::OK);
    let page = env.conversation(&s.key).await;
    assert_eq!(page["windowExpiresAt"], "2036-11-26T14:17:02Z");
}

/// The window is the phone's, not the user's: a message the phone wrote to user A's bot also
/// opens it for user B, who activated the phone earlier.
#[tokio::test]
async fn the_window_follows_the_phone_whichever_user_it_wrote_to() {
    let env = TestEnv::accepting().await;
    let b = env.active("user-b", SPAIN_DIGITS).await;
    env.clock.advance(60);
    let a = env.active("user-a", SPAIN_DIGITS).await;
    // A sent last, so the plain message is A's; B's window moves with it all the same.
    env.send_text_id(&a.key, "hello from A").await;
    env.clock.set(T0 + 120 + DAY);
    assert_eq!(
        env.send_text(&b.key, "closed").await.status,
        StatusCode::BAD_REQUEST
    );
    env.deliver_messages(vec![inbound_text(SPAIN_DIGITS, "hi A", DAY + 125, 3)])
        .await;
    assert_eq!(
        env.send_text(&b.key, "open again").await.status,
        StatusCode::OK
    );
}

/// `to` in any spelling create accepts must be the session's phone.
#[tokio::test]
async fn to_must_name_the_session_phone() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let ok = env
        .send(&s.key, &json!({"type": "template", "to": SPAIN}))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    for other in ["+44 7400 123456", "not a phone"] {
        let reply = env
            .send(&s.key, &json!({"type": "template", "to": other}))
            .await;
        assert_invalid_field(&reply, "to");
    }
    assert_eq!(env.sent_messages().await.len(), 1);
}

/// Malformed bodies: 400 naming the field, nothing sent.
#[tokio::test]
async fn malformed_bodies_name_the_field() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "type"),
        (json!({"type": "audio"}), "type"),
        (json!({"type": "text"}), "text.body"),
        (json!({"type": "text", "text": {"body": ""}}), "text.body"),
        (
            json!({"type": "text", "text": {"body": "x".repeat(4097)}}),
            "text.body",
        ),
        (
            json!({"type": "template", "template": {"name": "promo_2026"}}),
            "template.name",
        ),
        (json!({"type": "interactive"}), "interactive"),
        (
            json!({"type": "interactive", "interactive": {"type": "list", "body": {"text": "Menu"}, "action": {"button": "Open"}}}),
            "interactive.action.sections",
        ),
        (json!({"type": "template", "to": 34688246216_i64}), "to"),
    ];
    for (body, param) in cases {
        let reply = env.send(&s.key, &body).await;
        assert_invalid_field(&reply, param);
    }
    let reply = env.send_raw(Some(&s.key), "{not json", None).await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_json",
    );
    let long_key = "k".repeat(256);
    let reply = env
        .send_raw(Some(&s.key), r#"{"type":"template"}"#, Some(&long_key))
        .await;
    assert_invalid_field(&reply, "Idempotency-Key");
    assert!(env.sent_messages().await.is_empty());
}

/// Ten concurrent sends against a limit of 3: exactly three 200s and three messages, seven
/// 429s with `details.scope: "user"` and the three headers.
#[tokio::test]
async fn the_daily_cap_holds_under_ten_concurrent_sends() {
    let mut env = TestEnv::accepting().await;
    env.app.config.user_daily_message_limit = 3;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let bodies: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    let replies = join_all(bodies.iter().map(|b| env.send_text(&s.key, b))).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(
        ok,
        3,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in replies.iter().filter(|r| r.status != StatusCode::OK) {
        let err = assert_error(
            r,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
        );
        assert_eq!(err["details"]["scope"], "user");
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(r.header("x-ratelimit-reset"), Some("2111184000"));
    }
    assert_eq!(env.sent_messages().await.len(), 3);

    // The next UTC day has a fresh budget.
    env.clock.set(2_111_184_000);
    assert_eq!(
        env.send(&s.key, &json!({"type": "template"})).await.status,
        StatusCode::OK
    );
}

/// Meta's refusal is answered verbatim as 400 `platform_error`, an unreachable Graph API as
/// 502; neither uses up the cap.
#[tokio::test]
async fn failed_sends_answer_like_create_and_give_their_unit_back() {
    let mut env = TestEnv::accepting().await;
    env.app.config.user_daily_message_limit = 1;
    let s = env.active("u1", SPAIN_DIGITS).await;

    meta::start_refusing(&env.meta, 131047, "Re-engagement message").await;
    let reply = env.send_text(&s.key, "hi").await;
    let err = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "platform_error",
        "whatsapp_send_failed",
    );
    assert_eq!(err["error"], "Re-engagement message");
    assert_eq!(
        err["platformError"],
        meta::error_body(131047, "Re-engagement message")["error"]
    );

    let unreachable = env.app_with_unreachable_graph();
    let req_body = json!({"type": "text", "text": {"body": "hi"}}).to_string();
    let reply = e2e::messaging::send_on(&unreachable, &s.key, &req_body).await;
    assert_error(
        &reply,
        StatusCode::BAD_GATEWAY,
        "api_error",
        "upstream_unavailable",
    );

    env.meta.reset().await;
    meta::accept(&env.meta).await;
    assert_eq!(env.send_text(&s.key, "hi").await.status, StatusCode::OK);
    assert_eq!(
        env.send_text(&s.key, "over").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// A retry with the same key and body gets the first answer and sends nothing; another body
/// with the key is 422; concurrent retries with one key send once.
#[tokio::test]
async fn idempotent_retries_send_once() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let body = json!({"type": "text", "text": {"body": "once"}}).to_string();
    let first = env.send_raw(Some(&s.key), &body, Some("order-42")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    // The same JSON with other whitespace is the same body.
    let spaced = r#"{ "type": "text", "text": { "body": "once" } }"#;
    let again = env.send_raw(Some(&s.key), spaced, Some("order-42")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json(), first.json());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(env.sent_messages().await.len(), 1);

    let other = json!({"type": "text", "text": {"body": "twice"}}).to_string();
    let reply = env.send_raw(Some(&s.key), &other, Some("order-42")).await;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request_error",
        "idempotency_key_reused",
    );
    assert_eq!(env.sent_messages().await.len(), 1);

    let body = json!({"type": "text", "text": {"body": "concurrent"}}).to_string();
    let replies =
        join_all((0..5).map(|_| env.send_raw(Some(&s.key), &body, Some("order-43")))).await;
    let ids: Vec<Value> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.json()["message"]["id"].clone()
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(env.sent_messages().await.len(), 2);

    // After 24 hours the key is free again.
    env.clock.advance(DAY);
    env.deliver_messages(vec![inbound_text(SPAIN_DIGITS, "still here", DAY, 5)])
        .await;
    let later = env.send_raw(Some(&s.key), &other, Some("order-42")).await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.text);
}

/// A retry with the same body while the first request with its key is still sending (its
/// claim has no answer yet) waits for it, then is 409 `idempotency_key_in_progress`; another
/// body with that key is 422 `idempotency_key_reused` at once. Neither sends.
#[tokio::test]
async fn a_key_still_in_flight_is_409_and_reused_with_another_body_422() {
    let env = TestEnv::with(Options {
        meta_timeout_ms: 200,
        ..Options::default()
    })
    .await;
    meta::accept(&env.meta).await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let body = json!({"type": "text", "text": {"body": "slow"}});
    // The first request's claim, as it stands while its send is in flight.
    let user = sandbox::session::UserId::new("u1");
    let id = sandbox::api::send::request::idempotency_id(&user, "order-7");
    let fingerprint =
        sandbox::api::send::request::body_fingerprint(body.as_object().expect("an object"));
    let claimed = env
        .app
        .store
        .reserve_message(
            &user,
            T0,
            (sandbox::limits::Quota::Person, 50),
            Some((&id, &fingerprint, "first")),
        )
        .await
        .unwrap();
    assert_eq!(claimed, sandbox::store::MessageReservation::Reserved);

    let retry = env
        .send_raw(Some(&s.key), &body.to_string(), Some("order-7"))
        .await;
    assert_error(
        &retry,
        StatusCode::CONFLICT,
        "invalid_request_error",
        "idempotency_key_in_progress",
    );
    let other = json!({"type": "text", "text": {"body": "another"}}).to_string();
    let reused = env.send_raw(Some(&s.key), &other, Some("order-7")).await;
    assert_error(
        &reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request_error",
        "idempotency_key_reused",
    );
    assert_eq!(env.sent_messages().await.len(), 0);
}

/// A common send costs at most three DynamoDB requests (read, reserve, record), with or
/// without a key, once the container has the caller's key cached.
#[tokio::test]
async fn a_send_costs_at_most_three_dynamodb_requests() {
    let env = TestEnv::with_auth_cache(60).await;
    meta::accept(&env.meta).await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    env.conversation(&s.key).await; // warms the auth cache
    env.counter.reset();
    env.send_text_id(&s.key, "one").await;
    let plain = env.counter.take();
    assert_eq!(
        plain,
        ["GetItem", "UpdateItem", "TransactWriteItems"],
        "{plain:?}"
    );
    let body = json!({"type": "text", "text": {"body": "two"}}).to_string();
    let keyed = env.send_raw(Some(&s.key), &body, Some("k-1")).await;
    assert_eq!(keyed.status, StatusCode::OK);
    let requests = env.counter.take();
    assert_eq!(
        requests,
        ["BatchGetItem", "TransactWriteItems", "TransactWriteItems"],
        "{requests:?}"
    );
    env.send_raw(Some(&s.key), &body, Some("k-1")).await;
    assert_eq!(env.counter.take(), ["BatchGetItem"], "a retry only reads");
    env.conversation(&s.key).await;
    assert_eq!(
        env.counter.take(),
        ["Query", "GetItem"],
        "a conversation page"
    );
}
