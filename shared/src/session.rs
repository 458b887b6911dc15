//! The session and its lifetimes: pure rules, no I/O.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::ids::{self, RandomError};
use crate::phone::PhoneE164;

/// The prefix every session id carries, so ids say what they are in logs and support tickets.
const SESSION_ID_PREFIX: &str = "wss_";
/// 22 base62 characters ≈ 131 bits of randomness.
const SESSION_ID_RANDOM_LEN: usize = 22;

/// An opaque, URL-safe session id (`wss_` + 22 base62 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(format!(
            "{SESSION_ID_PREFIX}{}",
            ids::random_base62(SESSION_ID_RANDOM_LEN)?
        )))
    }

    /// Accepts only strings this service could have issued.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(SESSION_ID_PREFIX)?;
        ids::is_base62(rest, SESSION_ID_RANDOM_LEN).then(|| Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An API user's id: whatever the user's API-key record names (opaque, never parsed further).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Wraps a stored or provisioned user id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so `{:width$}` aligns ids in the admin tool's table.
        f.pad(&self.0)
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// Template sent, waiting for the phone owner's reply.
    Pending,
    /// The phone owner replied; the caller may message the phone.
    Active,
}

impl SessionStatus {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            _ => None,
        }
    }
}

/// Why a session ended (`whatsapp.sandbox.session.ended`'s `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The API user deleted it (`DELETE /v1/whatsapp/sandbox/sessions/{id}`).
    Revoked,
    /// The phone sent STOP.
    OptedOut,
    /// Its lifetime ran out (pending or active).
    Expired,
}

impl EndReason {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::OptedOut => "opted_out",
            Self::Expired => "expired",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "revoked" => Some(Self::Revoked),
            "opted_out" => Some(Self::OptedOut),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// Meta's delivery report for the activation message, as far as it has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: DeliveryStatus,
    /// When Meta reported it (epoch seconds).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub updated_at: i64,
    /// Meta's error, for `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<DeliveryError>,
}

/// Meta's error on a failed delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryError {
    /// Meta's numeric error code (for example 131026: not a WhatsApp number).
    pub code: i64,
    /// Meta's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Meta's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Meta's `error_data.details`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// Delivery states in the order they can only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Meta handed it to WhatsApp.
    Sent,
    /// It reached the phone.
    Delivered,
    /// The owner opened it.
    Read,
    /// It will not arrive (terminal).
    Failed,
}

impl DeliveryStatus {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }

    /// Parses Meta's (and our stored) spelling; other statuses (`played`, …) are `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sent" => Some(Self::Sent),
            "delivered" => Some(Self::Delivered),
            "read" => Some(Self::Read),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    /// Rank used to refuse moving backwards: a late `delivered` never overwrites `read`.
    pub fn rank(self) -> i64 {
        match self {
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Failed => 4,
        }
    }
}

/// A sandbox session: one user, one phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session's id.
    pub id: SessionId,
    /// The owning API user.
    pub user_id: UserId,
    /// The phone being activated.
    pub phone: PhoneE164,
    /// Pending or active.
    pub status: SessionStatus,
    /// Creation time (epoch seconds); kept on refresh.
    pub created_at: i64,
    /// Expiry (epoch seconds); the item's TTL attribute.
    pub expires_at: i64,
    /// Activation time (epoch seconds), once active.
    pub activated_at: Option<i64>,
    /// The `wamid` of the last activation template Meta accepted.
    pub activation_message_id: Option<String>,
    /// When the latest activation template was sent (epoch seconds, taken just before the
    /// send): a reply older than that whole second never activates the session.
    pub template_sent_at: Option<i64>,
    /// The WhatsApp id Meta reported for the phone (may differ from the phone's digits).
    pub wa_id: Option<String>,
    /// Delivery report of the activation message.
    pub delivery: Option<Delivery>,
    /// When the phone last wrote to the sandbox number (epoch seconds), kept on active
    /// sessions by the webhook: the customer-service window runs from it.
    pub last_inbound_at: Option<i64>,
    /// The phone's business-scoped user id (BSUID), once the webhook learned it.
    pub bsuid: Option<String>,
}

impl Session {
    /// A new pending session that lives for `pending_ttl` seconds from `now`.
    pub fn new_pending(
        id: SessionId,
        user_id: &UserId,
        phone: PhoneE164,
        now: i64,
        pending_ttl: i64,
    ) -> Self {
        Self {
            id,
            user_id: user_id.clone(),
            phone,
            status: SessionStatus::Pending,
            created_at: now,
            expires_at: now + pending_ttl,
            activated_at: None,
            activation_message_id: None,
            template_sent_at: Some(now),
            wa_id: None,
            delivery: None,
            last_inbound_at: None,
            bsuid: None,
        }
    }

    /// Whether the session exists at `now`: an expired one does not, whether or not
    /// DynamoDB's TTL sweeper has deleted the item yet.
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at > now
    }

    /// The public JSON shape of the session.
    pub fn view(&self) -> SessionView<'_> {
        SessionView {
            id: self.id.as_str(),
            phone_e164: self.phone.digits(),
            status: self.status,
            expires_at: rfc3339(self.expires_at),
            activated_at: self.activated_at.map(rfc3339),
            created_at: rfc3339(self.created_at),
            delivery: self.delivery.as_ref(),
        }
    }
}

/// The session object of the HTTP contract.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView<'a> {
    id: &'a str,
    phone_e164: &'a str,
    status: SessionStatus,
    expires_at: String,
    activated_at: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<&'a Delivery>,
}

/// RFC 3339, UTC, whole seconds, `Z` suffix.
pub fn rfc3339(epoch_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

fn serialize_rfc3339<S: serde::Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_and_reject_lookalikes() {
        let id = SessionId::generate().unwrap();
        assert_eq!(id.as_str().len(), 26);
        assert_eq!(SessionId::parse(id.as_str()), Some(id));
        assert!(SessionId::parse("wss_short").is_none());
        assert!(SessionId::parse("wss_3kTMd9Xr7QeZp1bN8vYc2!").is_none());
        assert!(SessionId::parse("xss_3kTMd9Xr7QeZp1bN8vYc2a").is_none());
        assert!(SessionId::parse("wss_3kTMd9Xr7QeZp1bN8vYc2a").is_some());
    }

    #[test]
    fn timestamps_are_whole_seconds_utc_with_z() {
        assert_eq!(rfc3339(1_795_616_122), "2026-11-25T14:15:22Z");
    }

    #[test]
    fn expiry_is_exclusive() {
        let phone = PhoneE164::parse("+34688246216").unwrap();
        let s = Session::new_pending(
            SessionId::generate().unwrap(),
            &UserId::new("u"),
            phone,
            100,
            10,
        );
        assert!(s.is_live(109));
        assert!(!s.is_live(110));
    }
}
