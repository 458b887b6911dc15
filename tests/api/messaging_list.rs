//! `listWhatsAppSandboxMessages` and the webhook side of messaging (`openapi.yaml`; README
//! "Sandbox messaging"): the conversation newest first across pages, kept after a revoke,
//! never another user's; statuses moving forward only; inbound messages recorded for the
//! user they are for.

use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use e2e::deliveries::{status, tagged, text_reply};
use e2e::messaging::inbound_text;
use e2e::{assert_error, TestEnv, SPAIN, SPAIN_DIGITS, T0};

fn texts(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["text"]["body"]
                .as_str()
                .or(m["button"]["text"].as_str())
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

/// Pages of 2 through 5 messages and the activation tap: newest first, each message once,
/// `nextCursor` null at the end; a tampered cursor is 400 `param: "cursor"`.
#[tokio::test]
async fn the_conversation_pages_newest_first() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    for i in 1..=5 {
        env.clock.advance(1);
        env.send_text_id(&s.key, &format!("m{i}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut params = vec![("limit", "2".to_owned())];
        if let Some(c) = &cursor {
            params.push(("cursor", c.clone()));
        }
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = env.messages_page(Some(&s.key), &params).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let page = reply.json();
        assert!(page["messages"].as_array().unwrap().len() <= 2);
        seen.extend(texts(&page));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["m5", "m4", "m3", "m2", "m1", "Activate"]);

    for bad in ["not-a-cursor", "TVNHIzEyMw", "U0VTU0lPTg"] {
        let reply = env.messages_page(Some(&s.key), &[("cursor", bad)]).await;
        let err = assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_field_value",
        );
        assert_eq!(err["param"], "cursor");
    }
    for bad in ["0", "101", "ten"] {
        let reply = env.messages_page(Some(&s.key), &[("limit", bad)]).await;
        assert_eq!(reply.json()["param"], "limit", "{bad}");
    }
    let reply = env.messages_page(None, &[]).await;
    assert_error(
        &reply,
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "unauthorized",
    );
}

/// A cursor only ever moves through its holder's own conversation.
#[tokio::test]
async fn a_cursor_never_reaches_another_users_conversation() {
    let env = TestEnv::accepting().await;
    let a = env.active("user-a", SPAIN_DIGITS).await;
    env.send_text_id(&a.key, "for A's eyes").await;
    let page = env
        .messages_page(Some(&a.key), &[("limit", "1")])
        .await
        .json();
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    let b = env.api_key("user-b").await;
    let theirs = env
        .messages_page(Some(&b), &[("cursor", cursor.as_str())])
        .await
        .json();
    assert_eq!(theirs["messages"], json!([]));
    assert_eq!(env.conversation(&b).await["messages"], json!([]));
}

/// Revoking blocks future sends only: the conversation stays readable, without a window.
#[tokio::test]
async fn the_history_stays_after_a_revoke() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    env.send_text_id(&s.key, "before revoke").await;
    assert_eq!(
        env.conversation(&s.key).await["windowExpiresAt"],
        "2036-11-25T14:15:52Z"
    );
    assert_eq!(env.revoke(Some(&s.key), &s.id).await.status, StatusCode::OK);
    let page = env.conversation(&s.key).await;
    assert_eq!(texts(&page), ["before revoke", "Activate"]);
    assert_eq!(page["windowExpiresAt"], Value::Null);
    // A new session for the same phone sees the same conversation.
    env.create_id(&s.key, SPAIN).await;
    assert_eq!(texts(&env.conversation(&s.key).await).len(), 2);
}

/// Statuses of a sandbox message, found by its tag, move it forward only; `failed` carries
/// Meta's error; a status without our tag changes nothing.
#[tokio::test]
async fn statuses_move_a_message_forward_only() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let id = env.send_text_id(&s.key, "track me").await;
    let tag = env.sent_messages().await[0]["biz_opaque_callback_data"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = |st: &str, at: i64| tagged(status(&id, st, SPAIN_DIGITS, T0 + at), &tag);
    env.deliver_statuses(vec![mine("sent", 1)]).await;
    assert_eq!(
        env.conversation(&s.key).await["messages"][0]["status"],
        "sent"
    );
    env.deliver_statuses(vec![mine("read", 3), mine("delivered", 2)])
        .await;
    env.deliver_statuses(vec![mine("delivered", 2)]).await;
    assert_eq!(
        env.conversation(&s.key).await["messages"][0]["status"],
        "read"
    );
    // Untagged, it is somebody else's message: nothing is looked up or changed.
    env.counter.reset();
    env.deliver_statuses(vec![status(&id, "failed", SPAIN_DIGITS, T0 + 4)])
        .await;
    assert!(env.counter.take().is_empty());

    env.clock.advance(1);
    let id2 = env.send_text_id(&s.key, "fail me").await;
    let tag2 = env.sent_messages().await[1]["biz_opaque_callback_data"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = tagged(
        e2e::deliveries::failed_status(&id2, SPAIN_DIGITS, T0 + 5),
        &tag2,
    );
    env.deliver_statuses(vec![failed]).await;
    let newest = &env.conversation(&s.key).await["messages"][0];
    assert_eq!(newest["status"], "failed");
    assert_eq!(newest["error"]["code"], 131026);
}

/// Two users active for one phone: a plain message goes to the one who sent to the phone
/// most recently, a quote to the sender of the quoted message; a user without a live session
/// for the phone never gets it.
#[tokio::test]
async fn inbound_messages_go_to_the_user_they_answer() {
    let env = TestEnv::accepting().await;
    let a = env.active("user-a", SPAIN_DIGITS).await;
    env.clock.advance(60);
    let b = env.active("user-b", SPAIN_DIGITS).await;
    env.clock.advance(60);
    let from_a = env.send_text_id(&a.key, "A here").await;
    env.deliver_messages(vec![inbound_text(
        SPAIN_DIGITS,
        "to A (latest sender)",
        200,
        11,
    )])
    .await;
    env.clock.advance(60);
    env.send_text_id(&b.key, "B here").await;
    env.deliver_messages(vec![inbound_text(
        SPAIN_DIGITS,
        "to B (latest sender)",
        300,
        12,
    )])
    .await;
    let mut quote = text_reply(SPAIN_DIGITS, "quoting A", Some(&from_a), 13);
    quote["timestamp"] = json!((T0 + 310).to_string());
    env.deliver_messages(vec![quote]).await;

    let inbound = |page: Value| -> Vec<String> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "inbound" && m["type"] == "text")
            .map(|m| m["text"]["body"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        inbound(env.conversation(&a.key).await),
        ["quoting A", "to A (latest sender)"]
    );
    assert_eq!(
        inbound(env.conversation(&b.key).await),
        ["to B (latest sender)"]
    );

    // A revokes: a quote of A's message is now for nobody, and B gets plain messages.
    assert_eq!(env.revoke(Some(&a.key), &a.id).await.status, StatusCode::OK);
    let mut quote = text_reply(SPAIN_DIGITS, "quoting A again", Some(&from_a), 14);
    quote["timestamp"] = json!((T0 + 400).to_string());
    env.deliver_messages(vec![quote, inbound_text(SPAIN_DIGITS, "anyone?", 401, 15)])
        .await;
    assert_eq!(
        inbound(env.conversation(&a.key).await),
        ["quoting A", "to A (latest sender)"]
    );
    assert_eq!(
        inbound(env.conversation(&b.key).await),
        ["anyone?", "to B (latest sender)"]
    );
    // A phone nobody has a session for is kept for nobody, and costs only its lookups, even
    // when it quotes a message.
    env.counter.reset();
    let mut quoting = inbound_text("447400999888", "hello?", 402, 16);
    quoting["context"] = json!({ "from": "12029087457", "id": from_a });
    env.deliver_messages(vec![quoting]).await;
    assert!(
        env.counter.take().iter().all(|op| op == "Query"),
        "only the phone lookups"
    );
    let inbound_items = env
        .snapshot()
        .await
        .into_iter()
        .filter(|i| i["pk"].as_s().unwrap().starts_with("CONV#"))
        .filter(|i| i.get("phone").and_then(|p| p.as_s().ok()) == Some(&"447400999888".to_owned()))
        .count();
    assert_eq!(inbound_items, 0);
}
