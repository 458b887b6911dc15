//! The JSON bodies: Zernio's envelope (`id`, `event`, `timestamp` first, no `data` wrapper),
//! with the fields of `WebhookPayloadMessage` and its status payloads that a sandbox has.
//!
//! Choices, where a sandbox lacks what Zernio fills in:
//! - `message.id` and `message.platformMessageId` are both Meta's `wamid`: the id the
//!   messages API already answers with.
//! - `conversationId` / `conversation.id` is `wsc_` + a hash of the user and the phone's
//!   canonical WhatsApp digits, so every form of one number (Brazil's ninth digit…) is one
//!   conversation; `conversation.platformConversationId` and `participantId` are the digits.
//! - `sender` only on incoming messages: the phone (`id` = its digits, `phoneNumber` = `+…`)
//!   and its `businessScopedUserId` when known. Outgoing messages come from the sandbox's
//!   number, which pure code does not know: no `sender`.
//! - `account` is `{ "platform": "whatsapp" }` (the function may add the sandbox number).
//! - `attachments` is always empty: the sandbox keeps no media.
//! - `text`: a text's body, a button's or interactive reply's title, an interactive
//!   message's body text; otherwise `null` (templates, reactions, media).
//! - A failed status's `error` is `{code, title, message, explanation}`, `explanation` being
//!   Meta's `error_data.details`; absent parts are `null`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::EventName;
use crate::limits::canonical_digits;
use crate::message::{ConversationMessage, Direction};
use crate::phone::PhoneE164;
use crate::session::{rfc3339, Delivery, EndReason, Session, UserId};

/// `{id, event, timestamp}`, then what `rest` adds.
pub(super) fn envelope(
    id: &str,
    event: EventName,
    at: i64,
    rest: impl FnOnce(&mut Map<String, Value>),
) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), id.into());
    body.insert("event".into(), event.as_str().into());
    body.insert("timestamp".into(), rfc3339(at).into());
    rest(&mut body);
    Value::Object(body)
}

/// A session event: the session as the API shows it, and why it ended.
pub(super) fn session_body(
    id: &str,
    event: EventName,
    at: i64,
    session: &Session,
    reason: Option<EndReason>,
) -> Value {
    envelope(id, event, at, |b| {
        b.insert(
            "session".into(),
            serde_json::to_value(session.view()).unwrap_or(Value::Null),
        );
        if let Some(r) = reason {
            b.insert("reason".into(), r.as_str().into());
        }
    })
}

/// `message.received`.
pub(super) fn received_body(id: &str, m: &ConversationMessage) -> Value {
    envelope(id, EventName::MessageReceived, m.created_at, |b| {
        b.insert("message".into(), message(m));
        b.insert("conversation".into(), conversation(&m.user_id, &m.phone));
        b.insert("account".into(), account());
    })
}

/// A status of a sandbox message.
pub(super) fn message_status_body(
    id: &str,
    event: EventName,
    m: &ConversationMessage,
    status_at: i64,
) -> Value {
    let error = m.error.as_ref().map(|e| {
        error(
            e.get("code").cloned(),
            e.get("title").cloned(),
            e.get("message").cloned(),
            e.get("details").cloned(),
        )
    });
    status_body(
        id,
        event,
        status_at,
        message(m),
        error,
        &m.user_id,
        &m.phone,
    )
}

/// A status of the session's activation template.
pub(super) fn template_status_body(
    id: &str,
    event: EventName,
    session: &Session,
    message_id: &str,
    delivery: &Delivery,
) -> Value {
    let phone = session.phone.digits();
    let message = json!({
        "id": message_id,
        "conversationId": conversation_id(&session.user_id, phone),
        "platform": "whatsapp",
        "platformMessageId": message_id,
        "direction": "outgoing",
        "text": null,
        "attachments": [],
        "sentAt": rfc3339(session.template_sent_at.unwrap_or(session.created_at)),
    });
    let error = delivery.error.as_ref().map(|e| {
        error(
            Some(e.code.into()),
            e.title.clone().map(Value::from),
            e.message.clone().map(Value::from),
            e.details.clone().map(Value::from),
        )
    });
    status_body(
        id,
        event,
        delivery.updated_at,
        message,
        error,
        &session.user_id,
        phone,
    )
}

/// `{id, event, timestamp, message, statusAt, error?, conversation, account}`.
fn status_body(
    id: &str,
    event: EventName,
    at: i64,
    message: Value,
    error: Option<Value>,
    user: &UserId,
    phone: &str,
) -> Value {
    envelope(id, event, at, |b| {
        b.insert("message".into(), message);
        b.insert("statusAt".into(), rfc3339(at).into());
        if let Some(e) = error {
            b.insert("error".into(), e);
        }
        b.insert("conversation".into(), conversation(user, phone));
        b.insert("account".into(), account());
    })
}

fn error(
    code: Option<Value>,
    title: Option<Value>,
    message: Option<Value>,
    explanation: Option<Value>,
) -> Value {
    json!({
        "code": code.unwrap_or(Value::Null),
        "title": title.unwrap_or(Value::Null),
        "message": message.unwrap_or(Value::Null),
        "explanation": explanation.unwrap_or(Value::Null),
    })
}

/// `InboxWebhookMessage` as far as a sandbox message has it.
fn message(m: &ConversationMessage) -> Value {
    let mid = m.message_id.clone().unwrap_or_default();
    let mut out = Map::new();
    out.insert("id".into(), mid.clone().into());
    out.insert(
        "conversationId".into(),
        conversation_id(&m.user_id, &m.phone).into(),
    );
    out.insert("platform".into(), "whatsapp".into());
    out.insert("platformMessageId".into(), mid.into());
    let direction = match m.direction {
        Direction::Inbound => "incoming",
        Direction::Outbound => "outgoing",
    };
    out.insert("direction".into(), direction.into());
    out.insert(
        "text".into(),
        text_of(&m.content).map_or(Value::Null, Value::from),
    );
    out.insert("attachments".into(), json!([]));
    if m.direction == Direction::Inbound {
        let mut sender = Map::new();
        sender.insert("id".into(), m.phone.clone().into());
        sender.insert("phoneNumber".into(), format!("+{}", m.phone).into());
        if let Some(b) = &m.bsuid {
            sender.insert("businessScopedUserId".into(), b.clone().into());
        }
        out.insert("sender".into(), Value::Object(sender));
    }
    out.insert("sentAt".into(), rfc3339(m.created_at).into());
    Value::Object(out)
}

/// The readable text of a stored content object, if it has one.
fn text_of(content: &Value) -> Option<&str> {
    let interactive = &content["interactive"];
    [
        &content["text"]["body"],
        &content["button"]["text"],
        &interactive["button_reply"]["title"],
        &interactive["list_reply"]["title"],
        &interactive["body"]["text"],
    ]
    .into_iter()
    .find_map(Value::as_str)
}

fn conversation(user: &UserId, phone: &str) -> Value {
    json!({
        "id": conversation_id(user, phone),
        "platformConversationId": phone,
        "participantId": phone,
    })
}

fn account() -> Value {
    json!({ "platform": "whatsapp" })
}

/// `wsc_` + base64url of 16 bytes of SHA-256 over the user and the phone's canonical digits.
fn conversation_id(user: &UserId, phone: &str) -> String {
    let canonical = PhoneE164::from_stored(phone)
        .map(|p| canonical_digits(&p))
        .unwrap_or_else(|| phone.to_owned());
    let mut h = Sha256::new();
    h.update(user.as_str().as_bytes());
    h.update([0]);
    h.update(canonical.as_bytes());
    format!("wsc_{}", URL_SAFE_NO_PAD.encode(&h.finalize()[..16]))
}
