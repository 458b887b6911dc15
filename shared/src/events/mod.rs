//! Outbound events from the table's stream (`NEW_AND_OLD_IMAGES`): pure rules, no I/O.
//!
//! The stream is the outbox: an event exists exactly when the write it reports committed.
//! [`events_of`] reads one [`StreamRecord`]'s images with the store's own item codecs and
//! answers the events it reports, each with an id that depends only on the change (the same
//! record, or another record of the same change, always gives the same id), so the function
//! can deliver each event once per webhook with a conditional write on (event id, webhook id).
//!
//! # Rules
//! | item | change | event |
//! |---|---|---|
//! | session `USER#<id>`/`SESSION` | `MODIFY` `status` pending → active | `whatsapp.sandbox.session.activated` at `activatedAt` |
//! | session | `MODIFY`: `delivery` newer than before (rank up, or a first report of a new `activationMessageId`) | `message.sent` / `delivered` / `read` / `failed` of the activation template, at the report's time |
//! | session | `REMOVE` by the TTL sweeper | `session.ended`, `expired`, at the old `expiresAt` |
//! | session | `REMOVE` by a request, of a session already past `expiresAt` (a STOP sweeping it) | `session.ended`, `expired`, at `expiresAt` |
//! | session | `REMOVE` by a request, old image marked `endReason = opted_out` (STOP) | `session.ended`, `opted_out`, at `endedAt` (the STOP's time) |
//! | session | `REMOVE` by a request, pending, no `activationMessageId`, unmarked | none: create's rollback of a claim whose template Meta refused |
//! | session | `REMOVE` by a request, otherwise | `session.ended`, `revoked`, at the record's time |
//! | session | `MODIFY` to another `sessionId` (a claim replacing an expired item) | `session.ended`, `expired`, of the old one (none if it was not past `expiresAt`: a rollback putting the old item back) |
//! | session | `INSERT`; any other `MODIFY` (refresh, window, BSUID, STOP's marker, a status that did not move forward) | none |
//! | conversation `CONV#<id>`/`MSG#…`, inbound | `INSERT` | `message.received` at the message's time |
//! | conversation, outbound | `INSERT`/`MODIFY` where the recorded message's status ranks above what the old image reported (`accepted`, and a bare old image, count as nothing: a status that beat its send's record is reported when the record lands) | `message.sent` / `delivered` / `read` / `failed` at `statusAt` |
//! | conversation | a bare item (a status recorded before its send), `REMOVE`, an inbound redelivery | none |
//! | every other item (keys, counters, opt-outs, `INBOUND#`, `OUTMSG#`, `LASTSENT#`, `IDEM#`, `BSUID#`) | any | none |
//!
//! A session's end is reported once whatever reports it: its id is the session id's, so the
//! TTL removal of an item a claim had replaced and a rollback put back is the same event.
//!
//! # For the function
//! Per record: [`StreamRecord::from_lambda_json`], then [`events_of`]; for each event, each of
//! the user's webhooks that subscribes to it gets one delivery, claimed by a conditional write
//! on (event id, webhook id). An [`ImageError`] or [`RecordError`] is logged and skipped, never
//! failed: a failing record blocks its shard (reference §5). Records of different items may
//! sit in different shards, so events of one user are not ordered (an activation and its
//! reply's `message.received` come from two items); `timestamp` says when each happened. Only
//! `USER#` and `CONV#` items make events, so the event source mapping can filter on
//! `{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "USER#"}, {"prefix": "CONV#"}]}}}}`.
//!
//! # Ids
//! `evt_` + the first 16 bytes of SHA-256 over NUL-terminated parts, as 22 base62 characters
//! (the shape `openapi.yaml` declares, and the one [`crate::webhooks::EventId`] parses): the
//! event name and what names the change (the conversation item's key; the session id; the
//! session id and the template's `wamid`). Statuses only move forward, so (item, status)
//! happens once. (Until issue 25 the 16 bytes were written as base64url, whose `-` and `_`
//! redeliver refused; such ids in the log still parse.)
//!
//! [`events_of`]: crate::events::events_of
//! [`StreamRecord`]: crate::events::StreamRecord
//! [`StreamRecord::from_lambda_json`]: crate::events::StreamRecord::from_lambda_json
//! [`ImageError`]: crate::events::ImageError
//! [`RecordError`]: crate::events::RecordError

mod payload;
mod record;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::message::{status_rank, ConversationMessage, Direction};
use crate::session::{DeliveryStatus, EndReason, Session, SessionStatus, UserId};
use crate::store::{
    message_from_item, session_from_item, Item, ItemKind, ENDED_AT_ATTRIBUTE, END_REASON_ATTRIBUTE,
};

pub use record::{
    batch_item_failures, batch_status, item_from_json, Change, RecordError, StreamBatch,
    StreamRecord,
};

/// The prefix of every event id.
const EVENT_ID_PREFIX: &str = "evt_";

/// The events this service sends (Zernio's names, and ours for sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventName {
    /// An inbound message attributed to the user (the activation reply included).
    MessageReceived,
    /// Meta handed the user's message (or activation template) to WhatsApp.
    MessageSent,
    /// It reached the phone.
    MessageDelivered,
    /// The phone's owner read it.
    MessageRead,
    /// It will not arrive; the event carries Meta's error.
    MessageFailed,
    /// The phone's owner answered the template: the session is active.
    SessionActivated,
    /// The session is gone: revoked, opted out or expired.
    SessionEnded,
    /// A test event (`POST /v1/webhooks/test`).
    WebhookTest,
}

impl EventName {
    /// The wire spelling (`event`, `X-Zernio-Event`, a webhook's `events[]`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageReceived => "message.received",
            Self::MessageSent => "message.sent",
            Self::MessageDelivered => "message.delivered",
            Self::MessageRead => "message.read",
            Self::MessageFailed => "message.failed",
            Self::SessionActivated => "whatsapp.sandbox.session.activated",
            Self::SessionEnded => "whatsapp.sandbox.session.ended",
            Self::WebhookTest => "webhook.test",
        }
    }

    /// Parses the wire spelling (a webhook's subscribed `events`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Every event, in the order above.
    pub const ALL: [Self; 8] = [
        Self::MessageReceived,
        Self::MessageSent,
        Self::MessageDelivered,
        Self::MessageRead,
        Self::MessageFailed,
        Self::SessionActivated,
        Self::SessionEnded,
        Self::WebhookTest,
    ];

    /// The status event of a delivery state.
    pub fn of_status(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Sent => Self::MessageSent,
            DeliveryStatus::Delivered => Self::MessageDelivered,
            DeliveryStatus::Read => Self::MessageRead,
            DeliveryStatus::Failed => Self::MessageFailed,
        }
    }
}

/// One event for one user: what the function delivers to each of the user's webhooks that
/// subscribe to `event`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The stable event id (`evt_…`): the same for every record of the same change.
    pub id: String,
    /// What happened.
    pub event: EventName,
    /// Whose webhooks get it.
    pub user_id: UserId,
    /// When it happened (epoch seconds).
    pub timestamp: i64,
    /// The whole JSON body, Zernio's envelope: `id`, `event`, `timestamp`, then the rest.
    pub body: Value,
}

impl Event {
    /// A `webhook.test` event for `user`; `nonce` (random, from the caller) tells two tests
    /// apart, so each is delivered.
    pub fn webhook_test(user: &UserId, nonce: &str, at: i64) -> Self {
        let id = event_id(&[EventName::WebhookTest.as_str(), user.as_str(), nonce]);
        let body = payload::envelope(&id, EventName::WebhookTest, at, |b| {
            b.insert("test".into(), Value::Bool(true));
            b.insert(
                "message".into(),
                "A test event from the WhatsApp sandbox.".into(),
            );
        });
        Self {
            id,
            event: EventName::WebhookTest,
            user_id: user.clone(),
            timestamp: at,
            body,
        }
    }
}

/// An image of one of our own items that does not decode: a bug or a layout change, never
/// the stream's fault. The function logs it and moves on (a record must not block its shard).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable {kind} image: {detail}")]
pub struct ImageError {
    kind: &'static str,
    detail: String,
}

/// The events one stream record reports: none for most records, at most a few for any.
pub fn events_of(record: &StreamRecord) -> Result<Vec<Event>, ImageError> {
    let Some(image) = record.image() else {
        return Ok(Vec::new());
    };
    let (pk, sk) = (text(image, "pk"), text(image, "sk"));
    match (pk, sk) {
        (Some(pk), Some(sk))
            if ItemKind::Session.owns(pk) && sk == ItemKind::Session.sort_key() =>
        {
            session_events(record)
        }
        (Some(pk), Some(sk))
            if ItemKind::Message.owns(pk) && sk.starts_with(ItemKind::Message.sort_key()) =>
        {
            message_events(record, pk, sk)
        }
        _ => Ok(Vec::new()),
    }
}

/// The rules of the session item.
fn session_events(record: &StreamRecord) -> Result<Vec<Event>, ImageError> {
    let decode = |item: &Item| {
        session_from_item("decode(stream image)", item.clone()).map_err(|e| ImageError {
            kind: "session",
            detail: e.to_string(),
        })
    };
    let old = match &record.old {
        Some(raw) => Some((raw, decode(raw)?)),
        None => None,
    };
    let new = record.new.as_ref().map(decode).transpose()?;
    let mut events = Vec::new();
    match (record.change, old, new) {
        (Change::Remove, Some((raw, old)), _) => {
            events.extend(removal(record, raw, &old).map(|(reason, at)| ended(&old, reason, at)));
        }
        (Change::Modify, Some((_, old)), Some(new)) if old.id != new.id => {
            events.extend(replaced(&old, record.at));
        }
        (Change::Modify, Some((_, old)), Some(new)) => {
            if old.status == SessionStatus::Pending && new.status == SessionStatus::Active {
                events.push(activated(&new, record.at));
            }
            events.extend(template_status(&old, &new));
        }
        _ => {}
    }
    Ok(events)
}

/// The end of a session another one replaced. Create's claim replaces an item only once it
/// expired; a rollback putting that item back replaces a live claim, which ends nothing.
fn replaced(old: &Session, at: i64) -> Option<Event> {
    (old.expires_at <= at).then(|| ended(old, EndReason::Expired, old.expires_at))
}

/// Why and when a removed session ended; `None` for create's rollback of its own claim.
fn removal(record: &StreamRecord, raw: &Item, old: &Session) -> Option<(EndReason, i64)> {
    if record.by_ttl {
        return Some((EndReason::Expired, old.expires_at));
    }
    let ended_at = number(raw, ENDED_AT_ATTRIBUTE).unwrap_or(record.at);
    if old.expires_at <= ended_at {
        // Already over when a request swept it (a STOP may delete an expired item).
        return Some((EndReason::Expired, old.expires_at));
    }
    match text(raw, END_REASON_ATTRIBUTE).and_then(EndReason::parse) {
        Some(reason) => Some((reason, ended_at)),
        // Create's rollback: a claim whose template Meta refused, deleted by that request.
        None if old.status == SessionStatus::Pending && old.activation_message_id.is_none() => None,
        None => Some((EndReason::Revoked, record.at)),
    }
}

fn ended(old: &Session, reason: EndReason, at: i64) -> Event {
    // Not the reason: a session ends once, whichever record reports it.
    let id = event_id(&[EventName::SessionEnded.as_str(), old.id.as_str()]);
    let body = payload::session_body(&id, EventName::SessionEnded, at, old, Some(reason));
    Event {
        id,
        event: EventName::SessionEnded,
        user_id: old.user_id.clone(),
        timestamp: at,
        body,
    }
}

fn activated(new: &Session, record_at: i64) -> Event {
    let at = new.activated_at.unwrap_or(record_at);
    let id = event_id(&[EventName::SessionActivated.as_str(), new.id.as_str()]);
    let body = payload::session_body(&id, EventName::SessionActivated, at, new, None);
    Event {
        id,
        event: EventName::SessionActivated,
        user_id: new.user_id.clone(),
        timestamp: at,
        body,
    }
}

/// A delivery report of the activation template that moved forward.
fn template_status(old: &Session, new: &Session) -> Option<Event> {
    let delivery = new.delivery.as_ref()?;
    let message_id = new.activation_message_id.as_deref()?;
    let before = old
        .delivery
        .as_ref()
        .filter(|_| old.activation_message_id.as_deref() == Some(message_id))
        .map(|d| d.status.rank());
    if before.is_some_and(|rank| rank >= delivery.status.rank()) {
        return None;
    }
    let event = EventName::of_status(delivery.status);
    let id = event_id(&[event.as_str(), new.id.as_str(), message_id]);
    let body = payload::template_status_body(&id, event, new, message_id, delivery);
    Some(Event {
        id,
        event,
        user_id: new.user_id.clone(),
        timestamp: delivery.updated_at,
        body,
    })
}

/// The rules of a conversation item.
fn message_events(record: &StreamRecord, pk: &str, sk: &str) -> Result<Vec<Event>, ImageError> {
    let decode = |item: &Item| {
        message_from_item(item.clone()).map_err(|e| ImageError {
            kind: "conversation message",
            detail: e.to_string(),
        })
    };
    let (Some(raw), Some(new)) = (
        record.new.as_ref(),
        record.new.as_ref().map(decode).transpose()?.flatten(),
    ) else {
        return Ok(Vec::new()); // removed, or bare
    };
    let event = match new.direction {
        Direction::Inbound if record.change == Change::Insert => Some(received(&new, pk, sk)),
        Direction::Inbound => None,
        Direction::Outbound => {
            let old = record.old.as_ref().map(decode).transpose()?.flatten();
            outbound_status(old.as_ref(), &new, raw, pk, sk, record.at)
        }
    };
    Ok(event.into_iter().collect())
}

fn received(message: &ConversationMessage, pk: &str, sk: &str) -> Event {
    let event = EventName::MessageReceived;
    let id = event_id(&[event.as_str(), pk, sk]);
    let body = payload::received_body(&id, message);
    Event {
        id,
        event,
        user_id: message.user_id.clone(),
        timestamp: message.created_at,
        body,
    }
}

/// A status of a sandbox message that ranks above what the old image reported.
fn outbound_status(
    old: Option<&ConversationMessage>,
    new: &ConversationMessage,
    raw: &Item,
    pk: &str,
    sk: &str,
    record_at: i64,
) -> Option<Event> {
    let status = new.status.as_deref().and_then(DeliveryStatus::parse)?;
    let before = old
        .and_then(|m| m.status.as_deref())
        .and_then(status_rank)
        .unwrap_or(0);
    if before >= status.rank() {
        return None;
    }
    let event = EventName::of_status(status);
    let id = event_id(&[event.as_str(), pk, sk]);
    let at = number(raw, "statusAt").unwrap_or(record_at);
    let body = payload::message_status_body(&id, event, new, at);
    Some(Event {
        id,
        event,
        user_id: new.user_id.clone(),
        timestamp: at,
        body,
    })
}

/// `evt_` + the first 16 bytes of SHA-256 over the NUL-terminated parts, in base62.
fn event_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    format!(
        "{EVENT_ID_PREFIX}{}",
        crate::ids::base62_of(u128::from_be_bytes(first))
    )
}

/// A `String` attribute of an image.
fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// A whole-number `Number` attribute of an image.
fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests;
