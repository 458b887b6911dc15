//! Meta's webhook deliveries: payload shapes, signature, and the pure rules that decide what
//! an event means. No I/O here; `api::webhook` applies the decisions through the store.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::graph::PAYLOAD_PREFIX;
use crate::session::{Delivery, DeliveryError, DeliveryStatus, Session, SessionStatus};

/// True iff `header` is `sha256=<hex>` of HMAC-SHA256(`secret`, `body`), compared in constant time.
pub fn signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// `sha256=<hex>` for `body` under `secret` (tests, the local Graph stand-in, re-signing events).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Compares two secrets in constant time (hashing first, so the length does not leak either).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .ct_eq(&Sha256::digest(b.as_bytes()))
        .into()
}

/// A delivery: `{object, entry: [{changes: [{field, value}]}]}`. Every field is optional so
/// a shape we do not know is ignored rather than rejected.
#[derive(Debug, Default, Deserialize)]
pub struct Notification {
    /// `whatsapp_business_account`.
    #[serde(default)]
    pub object: Option<String>,
    /// The batched entries.
    #[serde(default)]
    pub entry: Vec<Entry>,
}

/// One WABA's changes.
#[derive(Debug, Default, Deserialize)]
pub struct Entry {
    /// The changes.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One change: `field` is `messages` for messages and statuses.
#[derive(Debug, Default, Deserialize)]
pub struct Change {
    /// The subscribed field.
    #[serde(default)]
    pub field: Option<String>,
    /// The payload.
    #[serde(default)]
    pub value: ChangeValue,
}

/// The `value` of a `messages` change.
#[derive(Debug, Default, Deserialize)]
pub struct ChangeValue {
    /// Which business number was involved.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Inbound messages.
    #[serde(default)]
    pub messages: Vec<InboundMessage>,
    /// Statuses of our outbound messages.
    #[serde(default)]
    pub statuses: Vec<StatusEvent>,
}

/// `value.metadata`.
#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    /// Meta's id of the business number.
    #[serde(default)]
    pub phone_number_id: Option<String>,
}

/// An inbound message.
#[derive(Debug, Default, Deserialize)]
pub struct InboundMessage {
    /// The sender's WhatsApp id (usually the phone's digits).
    #[serde(default)]
    pub from: Option<String>,
    /// The inbound message's own wamid.
    #[serde(default)]
    pub id: Option<String>,
    /// Unix seconds, as a string.
    #[serde(default)]
    pub timestamp: Option<Value>,
    /// `text`, `button`, `interactive`, `image`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// For `text`.
    #[serde(default)]
    pub text: Option<Text>,
    /// For `button` (a template's quick reply).
    #[serde(default)]
    pub button: Option<Button>,
    /// The message this one replies to.
    #[serde(default)]
    pub context: Option<Context>,
}

/// `text`.
#[derive(Debug, Default, Deserialize)]
pub struct Text {
    /// What the user typed.
    #[serde(default)]
    pub body: Option<String>,
}

/// `button`.
#[derive(Debug, Default, Deserialize)]
pub struct Button {
    /// The payload we put on the template.
    #[serde(default)]
    pub payload: Option<String>,
    /// The button's label.
    #[serde(default)]
    pub text: Option<String>,
}

/// `context`.
#[derive(Debug, Default, Deserialize)]
pub struct Context {
    /// The wamid of our message being replied to.
    #[serde(default)]
    pub id: Option<String>,
}

/// A status of one of our messages.
#[derive(Debug, Default, Deserialize)]
pub struct StatusEvent {
    /// The wamid of our message.
    #[serde(default)]
    pub id: Option<String>,
    /// `sent`, `delivered`, `read`, `failed`, …
    #[serde(default)]
    pub status: Option<String>,
    /// Unix seconds, as a string.
    #[serde(default)]
    pub timestamp: Option<Value>,
    /// The recipient's WhatsApp id.
    #[serde(default)]
    pub recipient_id: Option<String>,
    /// For `failed`.
    #[serde(default)]
    pub errors: Vec<StatusErrorItem>,
}

/// One error of a failed status.
#[derive(Debug, Default, Deserialize)]
pub struct StatusErrorItem {
    /// Meta's code (131026: undeliverable).
    #[serde(default)]
    pub code: Option<i64>,
    /// Meta's title.
    #[serde(default)]
    pub title: Option<String>,
    /// Meta's message.
    #[serde(default)]
    pub message: Option<String>,
    /// `error_data.details`.
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

/// `error_data`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorData {
    /// The specific reason.
    #[serde(default)]
    pub details: Option<String>,
}

/// Unix seconds from Meta's string (or, leniently, number) timestamp.
pub fn epoch_seconds(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// What an inbound message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// STOP and friends: delete every session for the phone and block new templates.
    OptOut,
    /// START / UNSTOP: lift the block.
    OptIn,
    /// A reply that may activate a pending session.
    Reply(Reference),
    /// Not a reply (system notices, unsupported types).
    Ignore,
}

/// How a reply names the session it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// The quick-reply payload named this session id.
    SessionId(String),
    /// The reply quotes this message id (`context.id`).
    MessageId(String),
    /// Nothing: activates only if exactly one pending session exists for the phone.
    None,
}

const OPT_OUT: [&str; 6] = ["STOP", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
const OPT_IN: [&str; 2] = ["START", "UNSTOP"];

/// Classifies an inbound message.
pub fn intent(message: &InboundMessage) -> Intent {
    let kind = message.kind.as_deref().unwrap_or("");
    if matches!(kind, "system" | "unsupported" | "reaction") {
        return Intent::Ignore;
    }
    let words = [
        message.text.as_ref().and_then(|t| t.body.as_deref()),
        message.button.as_ref().and_then(|b| b.text.as_deref()),
        message.button.as_ref().and_then(|b| b.payload.as_deref()),
    ];
    for word in words.into_iter().flatten() {
        let word = word.trim().to_ascii_uppercase();
        if OPT_OUT.contains(&word.as_str()) {
            return Intent::OptOut;
        }
        if OPT_IN.contains(&word.as_str()) {
            return Intent::OptIn;
        }
    }
    let payload = message
        .button
        .as_ref()
        .and_then(|b| b.payload.as_deref())
        .and_then(|p| p.strip_prefix(PAYLOAD_PREFIX));
    if let Some(id) = payload {
        return Intent::Reply(Reference::SessionId(id.to_owned()));
    }
    match message.context.as_ref().and_then(|c| c.id.as_deref()) {
        Some(id) if !id.is_empty() => Intent::Reply(Reference::MessageId(id.to_owned())),
        _ => Intent::Reply(Reference::None),
    }
}

/// Which of the phone's sessions a reply activates: the one it names, or, naming none, the only
/// pending one. Only pending, live sessions qualify.
pub fn session_to_activate<'a>(
    sessions: &'a [Session],
    reference: &Reference,
    now: i64,
) -> Option<&'a Session> {
    let mut pending = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Pending && s.is_live(now));
    match reference {
        Reference::SessionId(id) => pending.find(|s| s.id.as_str() == id),
        Reference::MessageId(mid) => {
            pending.find(|s| s.activation_message_id.as_deref() == Some(mid.as_str()))
        }
        Reference::None => {
            let only = pending.next()?;
            pending.next().is_none().then_some(only)
        }
    }
}

/// The delivery report a status event carries, if it is one we record.
pub fn delivery_of(event: &StatusEvent, now: i64) -> Option<Delivery> {
    let status = DeliveryStatus::parse(event.status.as_deref()?)?;
    let error = if status == DeliveryStatus::Failed {
        event.errors.first().map(|e| DeliveryError {
            code: e.code.unwrap_or(0),
            title: e.title.clone(),
            message: e.message.clone(),
            details: e.error_data.as_ref().and_then(|d| d.details.clone()),
        })
    } else {
        None
    };
    Some(Delivery {
        status,
        updated_at: epoch_seconds(event.timestamp.as_ref()).unwrap_or(now),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_rejections() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let good = sign(b"secret", body);
        assert!(signature_ok(b"secret", body, Some(&good)));
        assert!(!signature_ok(b"other", body, Some(&good)));
        assert!(!signature_ok(b"secret", b"{}", Some(&good)));
        assert!(!signature_ok(b"secret", body, None));
        assert!(!signature_ok(
            b"secret",
            body,
            Some(&good[..good.len() - 2])
        ));
        assert!(!signature_ok(
            b"secret",
            body,
            Some(good.trim_start_matches("sha256="))
        ));
        assert!(!signature_ok(b"secret", body, Some("sha256=zz")));
    }

    fn text(body: &str) -> InboundMessage {
        InboundMessage {
            kind: Some("text".into()),
            text: Some(Text {
                body: Some(body.into()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn keywords_are_trimmed_and_case_insensitive() {
        for w in [
            "STOP",
            " stop ",
            "Stop All",
            "unsubscribe",
            "CANCEL",
            "end",
            "Quit",
        ] {
            assert_eq!(intent(&text(w)), Intent::OptOut, "{w}");
        }
        for w in ["START", " unstop"] {
            assert_eq!(intent(&text(w)), Intent::OptIn, "{w}");
        }
        assert_eq!(intent(&text("stop it")), Intent::Reply(Reference::None));
    }

    #[test]
    fn secrets_compare() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
