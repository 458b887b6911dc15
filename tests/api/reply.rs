//! `replyFromVirtualPhone` (`POST /v1/whatsapp/sandbox/sessions/{sessionId}/reply`; README
//! "Virtual phones"): each answer and refusal, what the conversation and the sessions show
//! right after, and a reply reaching only the caller's session when other users have
//! sessions for the same virtual phone.

use e2e::phones::{Phones, REACHABLE, REACHABLE_DIGITS};
use e2e::{assert_error, assert_invalid_field, Options, TestEnv, DAY, NOT_FOUND, SPAIN, T0};
use lambda_http::http::StatusCode;
use lambda_http::Body;
use sandbox::graph::virtual_phone::bsuid_of;
use sandbox::phone::PhoneE164;
use serde_json::{json, Value};

/// The template's `wamid` of `user`'s session.
async fn template_of(env: &TestEnv, user: &str) -> String {
    env.session_item(user).await["activationMessageId"]
        .as_s()
        .unwrap()
        .clone()
}

/// Asserts a 200 answer and returns its `message`, which the caller's conversation shows right
/// after, exactly as `GET /v1/whatsapp/sandbox/messages` shows it.
async fn replied(env: &TestEnv, key: &str, reply: &e2e::Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["success"], true, "{body}");
    let message = body["message"].clone();
    assert!(
        message["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("wamid.")),
        "{message}"
    );
    assert_eq!(message["direction"], "inbound");
    let conversation = env.conversation_messages(key).await;
    let shown = conversation.iter().find(|m| m["id"] == message["id"]);
    assert_eq!(shown, Some(&message), "{conversation:?}");
    message
}

#[tokio::test]
async fn activate_taps_the_templates_button_and_the_session_is_active_right_after() {
    let env = TestEnv::new().await;
    let (key, id) = env.virtual_session("u1", REACHABLE).await;
    let template = template_of(&env, "u1").await;

    let reply = env.reply(&key, &id, &json!({"type": "activate"})).await;

    let message = replied(&env, &key, &reply).await;
    assert_eq!(message["type"], "button");
    assert_eq!(message["phoneE164"], REACHABLE_DIGITS);
    assert_eq!(message["button"]["payload"], format!("activate:{id}"));
    assert_eq!(message["button"]["text"], "Activate");
    assert_eq!(message["context"]["id"], template.as_str());
    let session = env.session_of(&key).await;
    assert_eq!(session["status"], "active");
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_text_on_a_pending_session_quotes_the_template_and_activates_it() {
    let env = TestEnv::new().await;
    let (key, id) = env.virtual_session("u1", REACHABLE).await;
    let template = template_of(&env, "u1").await;

    let reply = env
        .reply(
            &key,
            &id,
            &json!({"type": "text", "text": "yes, that's me"}),
        )
        .await;

    let message = replied(&env, &key, &reply).await;
    assert_eq!(message["type"], "text");
    assert_eq!(message["text"]["body"], "yes, that's me");
    assert_eq!(message["context"]["id"], template.as_str());
    assert_eq!(env.session_of(&key).await["status"], "active");
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_text_on_an_active_session_quotes_the_latest_message_sent_to_the_phone() {
    let env = TestEnv::new().await;
    let (key, id) = env.virtual_session("u1", REACHABLE).await;
    env.activate("u1", T0).await;
    env.clock.advance(5);
    let first = env.send_text_id(&key, "first").await;
    env.clock.advance(5);
    let latest = env.send_text_id(&key, "second").await;
    assert_ne!(first, latest);

    let reply = env
        .reply(&key, &id, &json!({"type": "text", "text": "got it"}))
        .await;

    let message = replied(&env, &key, &reply).await;
    assert_eq!(message["context"]["id"], latest.as_str());
    let page = env.conversation(&key).await;
    let window = page["windowExpiresAt"]
        .as_str()
        .expect("the window is open");
    assert_eq!(window, sandbox::session::rfc3339(T0 + 10 + DAY));
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn interactive_picks_a_button_or_a_list_row_of_the_latest_interactive_message_by_id() {
    let env = TestEnv::new().await;
    let (key, id) = env.virtual_session("u1", REACHABLE).await;
    env.activate("u1", T0).await;
    let buttons = json!({"type": "interactive", "interactive": {"type": "button",
        "body": {"text": "Ship it?"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "ship", "title": "Ship"}},
            {"type": "reply", "reply": {"id": "wait", "title": "Wait"}}]}}});
    let sent = env.send(&key, &buttons).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let buttons_id = sent.json()["message"]["id"].as_str().unwrap().to_owned();

    let reply = env
        .reply(&key, &id, &json!({"type": "interactive", "id": "wait"}))
        .await;
    let message = replied(&env, &key, &reply).await;
    assert_eq!(message["type"], "interactive");
    assert_eq!(
        message["interactive"],
        json!({"type": "button_reply", "button_reply": {"id": "wait", "title": "Wait"}})
    );
    assert_eq!(message["context"]["id"], buttons_id.as_str());

    env.clock.advance(1);
    let list = json!({"type": "interactive", "interactive": {"type": "list",
        "body": {"text": "Size?"}, "action": {"button": "Pick", "sections": [
            {"title": "Sizes", "rows": [{"id": "s", "title": "Small"},
                                        {"id": "l", "title": "Large", "description": "XL too"}]}]}}});
    let sent = env.send(&key, &list).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let reply = env
        .reply(&key, &id, &json!({"type": "interactive", "id": "l"}))
        .await;
    let message = replied(&env, &key, &reply).await;
    assert_eq!(
        message["interactive"],
        json!({"type": "list_reply",
               "list_reply": {"id": "l", "title": "Large", "description": "XL too"}})
    );
    // The buttons are no longer the latest interactive message.
    let stale = env
        .reply(&key, &id, &json!({"type": "interactive", "id": "wait"}))
        .await;
    assert_invalid_field(&stale, "id");
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn an_interactive_id_without_an_interactive_message_is_invalid_and_nothing_is_written() {
    let env = TestEnv::new().await;
    let (key, id) = env.virtual_session("u1", REACHABLE).await;
    let before = env.snapshot().await;

    let reply = env
        .reply(&key, &id, &json!({"type": "interactive", "id": "yes"}))
        .await;

    assert_invalid_field(&reply, "id");
    assert_eq!(env.snapshot().await, before);
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_foreign_unknown_malformed_expired_or_revoked_session_is_revokes_not_found() {
    let env = TestEnv::new().await;
    let (key, id) = env.virtual_session("u1", REACHABLE).await;
    let (other, others_id) = env.virtual_session("u2", REACHABLE).await;
    assert_eq!(env.session_of(&other).await["status"], "pending");
    let (revoked_key, revoked) = env.virtual_session("u3", REACHABLE).await;
    env.revoke(Some(&revoked_key), &revoked).await;
    let activate = json!({"type": "activate"});

    let mut answers = vec![
        env.reply(&key, &others_id, &activate).await,
        env.reply(&key, "wss_0000000000000000000000", &activate)
            .await,
        env.reply(&key, "not-a-session", &activate).await,
        env.reply(&revoked_key, &revoked, &activate).await,
    ];
    env.clock.advance(DAY);
    answers.push(env.reply(&key, &id, &activate).await);

    for reply in &answers {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.text, NOT_FOUND);
    }
    assert_eq!(env.conversation_messages(&other).await, Vec::<Value>::new());
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_real_phones_session_is_not_a_virtual_phone() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let id = env.create_id(&key, SPAIN).await;
    let before = env.snapshot().await;

    let reply = env.reply(&key, &id, &json!({"type": "activate"})).await;

    let body = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "not_a_virtual_phone",
    );
    assert_eq!(body["param"], "sessionId");
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn with_virtual_phones_off_the_range_is_not_a_virtual_phone_either() {
    let env = TestEnv::with(Options {
        virtual_phones: false,
        ..Options::default()
    })
    .await;
    e2e::meta::accept(&env.meta).await;
    let (key, id) = env.virtual_session("u1", REACHABLE).await;

    let reply = env.reply(&key, &id, &json!({"type": "activate"})).await;

    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "not_a_virtual_phone",
    );
}

#[tokio::test]
async fn every_malformed_body_is_refused_with_its_param_and_nothing_is_written() {
    let env = TestEnv::new().await;
    let (key, id) = env.virtual_session("u1", REACHABLE).await;
    let before = env.snapshot().await;
    for (body, param) in [
        (json!({}), "type"),
        (json!({"type": "wave"}), "type"),
        (json!({"type": ["text"]}), "type"),
        (json!({"type": "text"}), "text"),
        (json!({"type": "text", "text": ""}), "text"),
        (json!({"type": "text", "text": "x".repeat(4097)}), "text"),
        (json!({"type": "interactive"}), "id"),
    ] {
        let reply = env.reply(&key, &id, &body).await;
        assert_invalid_field(&reply, param);
    }
    for raw in ["not json", "[1, 2]"] {
        let reply = env
            .reply_raw(Some(&key), &id, Body::Text(raw.to_owned()))
            .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
        );
    }
    let huge = json!({"type": "text", "text": "x".repeat(70 * 1024)}).to_string();
    let reply = env.reply_raw(Some(&key), &id, Body::Text(huge)).await;
    assert_error(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "payload_too_large",
    );
    let anonymous = env
        .reply_raw(None, &id, Body::Text(r#"{"type":"activate"}"#.into()))
        .await;
    assert_error(
        &anonymous,
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "unauthorized",
    );
    assert_eq!(env.snapshot().await, before);
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_reply_reaches_only_the_callers_session_and_conversation() {
    let env = TestEnv::new().await;
    let (k1, id1) = env.virtual_session("u1", REACHABLE).await;
    let (k2, id2) = env.virtual_session("u2", REACHABLE).await;

    // Both pending: u1's phone activates u1's session only.
    let reply = env.reply(&k1, &id1, &json!({"type": "activate"})).await;
    replied(&env, &k1, &reply).await;
    assert_eq!(env.session_of(&k1).await["status"], "active");
    assert_eq!(env.session_of(&k2).await["status"], "pending");
    assert_eq!(env.conversation_messages(&k2).await, Vec::<Value>::new());

    // Both active, u2 sent to the phone last: u1's text still goes to u1 only.
    let reply = env.reply(&k2, &id2, &json!({"type": "activate"})).await;
    replied(&env, &k2, &reply).await;
    env.clock.advance(5);
    env.send_text_id(&k1, "from u1").await;
    env.clock.advance(5);
    env.send_text_id(&k2, "from u2").await;
    let before = env.conversation_messages(&k2).await;

    let reply = env
        .reply(&k1, &id1, &json!({"type": "text", "text": "for u1"}))
        .await;

    let message = replied(&env, &k1, &reply).await;
    assert_eq!(message["text"]["body"], "for u1");
    assert_eq!(env.conversation_messages(&k2).await, before);
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_username_phone_writes_with_only_its_bsuid_which_its_statuses_tied_to_the_phone() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    let username = "+1 201 555 0190";
    let phone = PhoneE164::parse(username).unwrap();
    let (key, id) = env.virtual_session("u1", username).await;
    // Its template's statuses, each with one contact naming the phone and the BSUID.
    phones.play(&env).await;

    let reply = env
        .reply(&key, &id, &json!({"type": "text", "text": "hi, it's me"}))
        .await;

    let message = replied(&env, &key, &reply).await;
    assert_eq!(message["phoneE164"], phone.digits());
    assert_eq!(
        message["sender"]["businessScopedUserId"],
        bsuid_of(&phone),
        "{message}"
    );
    assert_eq!(env.session_of(&key).await["status"], "active");
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_username_phones_reply_before_its_statuses_were_played_still_arrives() {
    let env = TestEnv::new().await;
    let username = "+1 201 555 0199";
    let (key, id) = env.virtual_session("u1", username).await;

    let reply = env.reply(&key, &id, &json!({"type": "activate"})).await;

    let message = replied(&env, &key, &reply).await;
    assert_eq!(message["type"], "button");
    assert_eq!(env.session_of(&key).await["status"], "active");
    env.assert_graph_untouched().await;
}
