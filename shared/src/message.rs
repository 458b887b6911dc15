//! A sandbox message, the domain part: what a send asks for, a conversation's messages, their
//! statuses and the order those only move forward in, their public shape, their lifetimes and
//! the customer-service window. No I/O and no HTTP here: the store, the Graph client and the
//! webhook use these types; how a request becomes one is `api::send::request`'s business.

use serde_json::{json, Map, Value};

use crate::session::{rfc3339, DeliveryStatus, UserId};

/// How long conversation items are kept (their TTL), revoked session or not.
pub const CONVERSATION_SECONDS: i64 = 7 * 86_400;
/// How long an idempotency key's first answer is kept.
pub const IDEMPOTENCY_SECONDS: i64 = 86_400;

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

/// The rank of a stored outbound status (`accepted` lowest), so statuses only move forward.
pub fn status_rank(status: &str) -> Option<i64> {
    if status == ACCEPTED {
        return Some(ACCEPTED_RANK);
    }
    DeliveryStatus::parse(status).map(DeliveryStatus::rank)
}

/// When the customer-service window of a phone that last wrote at `last_inbound` closes.
pub fn window_expires_at(last_inbound: Option<i64>, window_seconds: i64) -> Option<i64> {
    last_inbound.map(|t| t + window_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_rank_from_accepted_to_failed() {
        assert_eq!(status_rank("accepted"), Some(0));
        assert!(status_rank("read") > status_rank("delivered"));
        assert_eq!(status_rank("played"), None);
    }
}
