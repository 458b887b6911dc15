//! Sandbox messages, the pure part: what a send request may contain, the conversation's
//! messages and their public shape, the idempotency key and the list cursor. No I/O here;
//! `api::send` and `api::messages` apply these rules through the store and the Graph client.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::edge::ApiError;
use crate::session::{rfc3339, DeliveryStatus, UserId};

/// Meta's limit on a text message body, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Send bodies may be larger than the session routes' 8 KiB: 4,096 characters of text can take
/// up to 16 KiB in UTF-8, and more once JSON-escaped.
pub const MAX_SEND_BODY_BYTES: usize = 64 * 1024;
/// How long conversation items are kept (their TTL), revoked session or not.
pub const CONVERSATION_SECONDS: i64 = 7 * 86_400;
/// How long an idempotency key's first answer is kept.
pub const IDEMPOTENCY_SECONDS: i64 = 86_400;
/// `limit` of a conversation page when the caller names none.
pub const DEFAULT_PAGE: i32 = 50;
/// The largest page.
pub const MAX_PAGE: i32 = 100;
/// The `sk` prefix of every conversation item.
pub const MESSAGE_SK_PREFIX: &str = "MSG#";

/// What a send asks for: Meta's three message kinds the sandbox allows.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// Free-form text (inside the customer-service window only).
    Text(String),
    /// The configured sandbox template (allowed at any time).
    Template,
    /// Meta's `interactive` object (`button` or `list`), passed through after a shape check.
    Interactive(Value),
}

impl Outbound {
    /// The contract's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Template => "template",
            Self::Interactive(_) => "interactive",
        }
    }

    /// Whether Meta allows it only inside the customer-service window.
    pub fn needs_window(&self) -> bool {
        !matches!(self, Self::Template)
    }

    /// The content as the conversation shows it (`{"text": {"body": ...}}`, ...).
    pub fn content(&self, template_name: &str, template_language: &str) -> Value {
        match self {
            Self::Text(body) => json!({ "text": { "body": body } }),
            Self::Template => {
                json!({ "template": { "name": template_name, "language": template_language } })
            }
            Self::Interactive(v) => json!({ "interactive": v }),
        }
    }
}

/// A parsed send body: the message and the optional `to`, still as given.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    /// The message.
    pub message: Outbound,
    /// `to`, if given (checked against the session's phone by the handler).
    pub to: Option<String>,
}

fn field(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        param,
        message: message.into(),
        details: None,
    }
}

/// Checks a send body and names the first field that is wrong.
pub fn parse_send(body: &Map<String, Value>, template_name: &str) -> Result<SendRequest, ApiError> {
    let to = match body.get("to") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(field("to", "to must be a string")),
    };
    let message = match body.get("type") {
        None | Some(Value::Null) => {
            return Err(field(
                "type",
                "type is required: text, template or interactive",
            ))
        }
        Some(Value::String(t)) if t == "text" => Outbound::Text(text_body(body)?),
        Some(Value::String(t)) if t == "template" => {
            template_check(body, template_name)?;
            Outbound::Template
        }
        Some(Value::String(t)) if t == "interactive" => {
            Outbound::Interactive(interactive(body.get("interactive"))?)
        }
        Some(_) => {
            return Err(field(
                "type",
                "type must be one of text, template, interactive",
            ))
        }
    };
    Ok(SendRequest { message, to })
}

fn text_body(body: &Map<String, Value>) -> Result<String, ApiError> {
    let text = match body.get("text") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(t)) => match t.get("body") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(field("text.body", "text.body must be a string")),
        },
        _ => return Err(field("text.body", "text.body is required for type text")),
    };
    let chars = text.chars().count();
    if chars == 0 || text.trim().is_empty() {
        return Err(field("text.body", "text.body must not be empty"));
    }
    if chars > MAX_TEXT_CHARS {
        return Err(field(
            "text.body",
            format!("text.body has {chars} characters; WhatsApp allows at most {MAX_TEXT_CHARS}"),
        ));
    }
    Ok(text.to_owned())
}

fn template_check(body: &Map<String, Value>, template_name: &str) -> Result<(), ApiError> {
    match body.get("template") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(t)) => match t.get("name") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(n)) if n == template_name => Ok(()),
            Some(_) => Err(field(
                "template.name",
                format!("the sandbox sends only its own template, {template_name}"),
            )),
        },
        Some(_) => Err(field("template", "template must be an object")),
    }
}

/// Meta's interactive object, checked for the shape Meta requires of `button` and `list`.
fn interactive(value: Option<&Value>) -> Result<Value, ApiError> {
    let Some(Value::Object(obj)) = value else {
        return Err(field(
            "interactive",
            "interactive must be Meta's interactive object for type interactive",
        ));
    };
    let body_text = obj
        .get("body")
        .and_then(|b| b.get("text"))
        .and_then(Value::as_str);
    if body_text.is_none_or(|t| t.trim().is_empty()) {
        return Err(field(
            "interactive.body.text",
            "interactive.body.text is required",
        ));
    }
    let action = obj.get("action").and_then(Value::as_object);
    let non_empty = |name: &str, max: usize| {
        action
            .and_then(|a| a.get(name))
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty() && a.len() <= max)
            .is_some()
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("button") => {
            let ok = non_empty("buttons", 3)
                && action
                    .and_then(|a| a.get("buttons"))
                    .and_then(Value::as_array)
                    .is_some_and(|bs| {
                        bs.iter().all(|b| {
                            b["type"] == "reply"
                                && b["reply"]["id"].is_string()
                                && b["reply"]["title"].is_string()
                        })
                    });
            if !ok {
                return Err(field(
                    "interactive.action.buttons",
                    "a button message needs 1 to 3 buttons of type reply, each with reply.id and reply.title",
                ));
            }
        }
        Some("list") => {
            let has_button = action
                .and_then(|a| a.get("button"))
                .and_then(Value::as_str)
                .is_some_and(|b| !b.is_empty());
            if !has_button {
                return Err(field(
                    "interactive.action.button",
                    "a list message needs action.button, the label that opens the list",
                ));
            }
            if !non_empty("sections", 10) {
                return Err(field(
                    "interactive.action.sections",
                    "a list message needs 1 to 10 sections",
                ));
            }
        }
        _ => {
            return Err(field(
                "interactive.type",
                "interactive.type must be button or list",
            ))
        }
    }
    Ok(Value::Object(obj.clone()))
}

/// Checks an `Idempotency-Key`: 1-255 printable ASCII characters.
pub fn idempotency_key(header: Option<&str>) -> Result<Option<&str>, ApiError> {
    match header {
        None => Ok(None),
        Some(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x20..0x7f).contains(&b)) => {
            Ok(Some(k))
        }
        Some(_) => Err(field(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        )),
    }
}

/// The id of an idempotency record: the key is scoped to its user, and hashed so any
/// printable key fits a DynamoDB key and never shows in one.
pub fn idempotency_id(user: &UserId, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(user.as_str().as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

/// What "the same body" means for a retry: the JSON value, not its whitespace.
pub fn body_fingerprint(body: &Map<String, Value>) -> String {
    let text = serde_json::to_string(body).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Which way a conversation message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the user through the sandbox number.
    Outbound,
    /// Sent by the phone to the sandbox number.
    Inbound,
}

impl Direction {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbound => "outbound",
            Self::Inbound => "inbound",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "outbound" => Some(Self::Outbound),
            "inbound" => Some(Self::Inbound),
            _ => None,
        }
    }
}

/// The status an outbound message has before Meta reports anything.
pub const ACCEPTED: &str = "accepted";
/// Its rank: every status Meta reports ranks higher ([`DeliveryStatus::rank`]).
pub const ACCEPTED_RANK: i64 = 0;

/// One message of a user's sandbox conversation, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationMessage {
    /// Whose conversation.
    pub user_id: UserId,
    /// When it was sent (epoch seconds): its place in the conversation.
    pub created_at: i64,
    /// What makes its key unique within that second (`o<random>` out, `i<wamid>` in).
    pub suffix: String,
    /// Meta's `wamid` (absent while an outbound send is in flight).
    pub message_id: Option<String>,
    /// Outbound or inbound.
    pub direction: Direction,
    /// The phone's digits.
    pub phone: String,
    /// Meta's message type (`text`, `template`, `interactive`, `button`, ...).
    pub kind: String,
    /// The content fields (`{"text": {...}}`, `{"button": {...}}`, ...).
    pub content: Value,
    /// Outbound only: `accepted`, `sent`, `delivered`, `read` or `failed`.
    pub status: Option<String>,
    /// Outbound only: Meta's error of a failed message.
    pub error: Option<Value>,
    /// Inbound only: the sender's business-scoped user id (BSUID), where it is known.
    pub bsuid: Option<String>,
}

impl ConversationMessage {
    /// The `sk` of this message: newest first is descending `sk`.
    pub fn sort_key(&self) -> String {
        message_sort_key(self.created_at, &self.suffix)
    }

    /// The public JSON shape (`openapi.yaml`, `SandboxMessage`).
    pub fn view(&self) -> Value {
        let mut out = Map::new();
        out.insert(
            "id".into(),
            self.message_id
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        out.insert("direction".into(), self.direction.as_str().into());
        out.insert("phoneE164".into(), self.phone.clone().into());
        out.insert("type".into(), self.kind.clone().into());
        if let Value::Object(content) = &self.content {
            for (k, v) in content {
                out.insert(k.clone(), v.clone());
            }
        }
        if let (Direction::Inbound, Some(bsuid)) = (self.direction, &self.bsuid) {
            out.insert(
                "sender".into(),
                serde_json::json!({ "businessScopedUserId": bsuid }),
            );
        }
        if self.direction == Direction::Outbound {
            out.insert(
                "status".into(),
                self.status
                    .clone()
                    .unwrap_or_else(|| ACCEPTED.into())
                    .into(),
            );
            if let Some(e) = &self.error {
                out.insert("error".into(), e.clone());
            }
        }
        out.insert("createdAt".into(), rfc3339(self.created_at).into());
        Value::Object(out)
    }
}

/// `MSG#<zero-padded epoch seconds>#<suffix>`: sorts by time as text.
pub fn message_sort_key(created_at: i64, suffix: &str) -> String {
    format!("{MESSAGE_SK_PREFIX}{created_at:010}#{suffix}")
}

/// The rank of a stored outbound status (`accepted` lowest), so statuses only move forward.
pub fn status_rank(status: &str) -> Option<i64> {
    if status == ACCEPTED {
        return Some(ACCEPTED_RANK);
    }
    DeliveryStatus::parse(status).map(DeliveryStatus::rank)
}

/// An opaque page cursor: the `sk` the next page starts after, base64url-encoded. The
/// partition is always the caller's, so a cursor can never reach another conversation.
pub fn encode_cursor(sort_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(sort_key.as_bytes())
}

/// The `sk` a cursor names, if it is one this service issued the shape of.
pub fn decode_cursor(cursor: &str) -> Option<String> {
    if cursor.is_empty() || cursor.len() > 1024 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok()?;
    let sk = String::from_utf8(bytes).ok()?;
    let rest = sk.strip_prefix(MESSAGE_SK_PREFIX)?;
    let (time, suffix) = rest.split_once('#')?;
    (time.len() == 10 && time.bytes().all(|b| b.is_ascii_digit()) && !suffix.is_empty())
        .then_some(sk)
}

/// `limit` from the query string: 1-100, default 50.
pub fn page_limit(raw: Option<&str>) -> Result<i32, ApiError> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(s) => match s.trim().parse::<i32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(field("limit", "limit must be a whole number from 1 to 100")),
        },
    }
}

/// When the customer-service window of a phone that last wrote at `last_inbound` closes.
pub fn window_expires_at(last_inbound: Option<i64>, window_seconds: i64) -> Option<i64> {
    last_inbound.map(|t| t + window_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn param_of(v: Value) -> &'static str {
        match parse_send(&obj(v), "sandbox_start") {
            Err(ApiError::InvalidField { param, .. }) => param,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn send_bodies_are_checked_field_by_field() {
        assert_eq!(param_of(json!({})), "type");
        assert_eq!(param_of(json!({"type": "image"})), "type");
        assert_eq!(param_of(json!({"type": "text"})), "text.body");
        assert_eq!(
            param_of(json!({"type": "text", "text": {"body": ""}})),
            "text.body"
        );
        assert_eq!(
            param_of(json!({"type": "text", "text": {"body": "é".repeat(4097)}})),
            "text.body"
        );
        assert_eq!(
            param_of(json!({"type": "text", "text": {"body": "hi"}, "to": 1})),
            "to"
        );
        assert_eq!(
            param_of(json!({"type": "template", "template": {"name": "promo"}})),
            "template.name"
        );
        assert_eq!(param_of(json!({"type": "interactive"})), "interactive");
        assert_eq!(
            param_of(
                json!({"type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"}}})
            ),
            "interactive.action.buttons"
        );
        assert_eq!(
            param_of(
                json!({"type": "interactive", "interactive": {"type": "flow", "body": {"text": "x"}}})
            ),
            "interactive.type"
        );
        let ok = parse_send(
            &obj(json!({"type": "text", "text": {"body": "é".repeat(4096)}, "to": "+34 688"})),
            "sandbox_start",
        )
        .unwrap();
        assert_eq!(ok.to.as_deref(), Some("+34 688"));
        let list = json!({"type": "list", "body": {"text": "Menu"},
            "action": {"button": "Open", "sections": [{"title": "A", "rows": [{"id": "1", "title": "One"}]}]}});
        let ok = parse_send(
            &obj(json!({"type": "interactive", "interactive": list})),
            "sandbox_start",
        )
        .unwrap();
        assert_eq!(ok.message, Outbound::Interactive(list));
    }

    #[test]
    fn idempotency_keys_are_printable_and_bounded() {
        assert_eq!(idempotency_key(None).unwrap(), None);
        assert_eq!(idempotency_key(Some("a b-1")).unwrap(), Some("a b-1"));
        assert!(idempotency_key(Some("")).is_err());
        assert!(idempotency_key(Some(&"k".repeat(256))).is_err());
        assert!(idempotency_key(Some("tab\there")).is_err());
        assert!(idempotency_key(Some("é")).is_err());
        let u = UserId::new("u1");
        assert_ne!(
            idempotency_id(&u, "k"),
            idempotency_id(&UserId::new("u2"), "k")
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_anything_else() {
        let sk = message_sort_key(1_795_529_722, "oAbC");
        assert_eq!(sk, "MSG#1795529722#oAbC");
        assert_eq!(decode_cursor(&encode_cursor(&sk)), Some(sk));
        for bad in [
            "",
            "!!",
            &encode_cursor("SESSION"),
            &encode_cursor("MSG#12#x"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_rank_from_accepted_to_failed() {
        assert_eq!(status_rank("accepted"), Some(0));
        assert!(status_rank("read") > status_rank("delivered"));
        assert_eq!(status_rank("played"), None);
        assert_eq!(page_limit(None).unwrap(), 50);
        assert!(page_limit(Some("0")).is_err() && page_limit(Some("101")).is_err());
    }
}
