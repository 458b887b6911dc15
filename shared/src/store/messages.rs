//! Sandbox messages: the conversation items, who sent an outbound message, `Idempotency-Key`
//! records, the daily message counter, and the customer-service window kept on the session.
//!
//! A common send costs three requests: one read (the session, and the key's record when there
//! is a key), one reservation (the counter, with the key's record in the same transaction),
//! and one transaction after Meta accepted (the message, who sent it, the key's answer). Every
//! item but the counter is unique to the send, so concurrent sends only meet on the counter,
//! which a plain conditional `UpdateItem` serializes without conflicts.

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::item::session_from_item;
use super::{
    conditional, n, s, split_message_sort_key, transact_retrying, Backoff, Item, Key, Reason,
    Store, StoreError, Transact, Write, MESSAGE_SK_PREFIX, TTL_ATTRIBUTE,
};
use crate::limits::{counter_expires_at, Quota};
use crate::message::{
    ConversationMessage, Direction, ACCEPTED, ACCEPTED_RANK, CONVERSATION_SECONDS,
    IDEMPOTENCY_SECONDS,
};
use crate::session::{Delivery, Session, SessionStatus, UserId};

/// How often a transaction that only met another one on the same item is tried again.
const CONFLICT_ATTEMPTS: u32 = 6;
/// Waits of 10 ms a try, plus up to 20.
const CONFLICT_BACKOFF: Backoff = Backoff {
    attempts: CONFLICT_ATTEMPTS,
    step_ms: 10,
    jitter_ms: 20,
};

/// The stored answer to an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    /// The request body's fingerprint ([`crate::api::send::request::body_fingerprint`]).
    pub fingerprint: String,
    /// The first answer's body, once the first request finished; `None` while in progress.
    pub response: Option<Value>,
    /// Until when the record counts (epoch seconds).
    pub expires_at: i64,
}

/// What reserving a send did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum MessageReservation {
    /// One unit of today's cap is held (and the key's record written, if any).
    Reserved,
    /// The cap is reached: nothing was written.
    LimitReached,
    /// Another request holds this `Idempotency-Key`: nothing was written.
    KeyTaken,
}

/// The stored shape of a conversation message. `phone` is not `phoneE164`, the session
/// index's key, so messages never show up in the webhook's phone lookups.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageItem {
    pk: String,
    sk: String,
    // A bare item (a status that beat its send's record) has none yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    phone: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default)]
    created_at: i64,
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bsuid: Option<String>,
}

/// Decodes a stored conversation item; `None` for a bare item (a status that arrived before
/// its send was recorded).
pub(crate) fn message_from_item(item: Item) -> Result<Option<ConversationMessage>, StoreError> {
    const OPERATION: &str = "Query(conversation)";
    let raw: MessageItem = serde_dynamo::from_item(item)
        .map_err(|e| StoreError::corrupt(OPERATION, format!("undecodable message item: {e}")))?;
    // A status that arrived before its send was recorded leaves a bare item: not shown.
    let (Some(user_id), Some(message_id), Some(direction)) = (
        raw.user_id,
        raw.message_id,
        Direction::parse(&raw.direction),
    ) else {
        return Ok(None);
    };
    let (created_at, suffix) = split_message_sort_key(&raw.sk)
        .ok_or_else(|| StoreError::corrupt(OPERATION, "message item with a malformed sk"))?;
    Ok(Some(ConversationMessage {
        user_id,
        created_at,
        suffix,
        message_id: Some(message_id),
        direction,
        phone: raw.phone,
        kind: raw.kind,
        content: serde_json::from_str(&raw.content).unwrap_or(Value::Null),
        status: raw.status,
        error: raw.error.and_then(|e| serde_json::from_str(&e).ok()),
        bsuid: raw.bsuid,
    }))
}

fn idempotency_from_item(item: &Item) -> IdempotencyRecord {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    IdempotencyRecord {
        fingerprint: text("fingerprint").unwrap_or_default(),
        response: text("response").and_then(|r| serde_json::from_str(&r).ok()),
        expires_at: item
            .get(TTL_ATTRIBUTE)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

impl Store {
    /// The user's session and, for a keyed send, the key's record: one `BatchGetItem`
    /// (strongly consistent), or one `GetItem` without a key.
    pub async fn send_context(
        &self,
        user: &UserId,
        idempotency_id: Option<&str>,
    ) -> Result<(Option<Session>, Option<IdempotencyRecord>), StoreError> {
        const OPERATION: &str = "BatchGetItem(send)";
        let session_key = Key::session(user);
        let Some(id) = idempotency_id else {
            let item = self.get("GetItem(session)", &session_key, true).await?;
            let session = item
                .map(|i| session_from_item("GetItem(session)", i))
                .transpose()?;
            return Ok((session, None));
        };
        let idem_key = Key::idempotency(id);
        let found = self
            .batch_get(OPERATION, &[session_key.clone(), idem_key.clone()])
            .await?;
        let mut session = None;
        let mut record = None;
        for item in found {
            let pk = item.get("pk").and_then(|v| v.as_s().ok()).cloned();
            if pk.as_deref() == Some(session_key.pk.as_str()) {
                session = Some(session_from_item(OPERATION, item)?);
            } else if pk.as_deref() == Some(idem_key.pk.as_str()) {
                record = Some(idempotency_from_item(&item));
            }
        }
        Ok((session, record))
    }

    /// The record of an `Idempotency-Key` (strongly consistent).
    pub async fn idempotency_record(
        &self,
        id: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let item = self
            .get("GetItem(idempotency)", &Key::idempotency(id), true)
            .await?;
        Ok(item.as_ref().map(idempotency_from_item))
    }

    /// Holds one unit of `user`'s cap of `quota` for today (and, with a key, claims the key
    /// for this request, `owner`): both or neither. The counter's condition makes the cap exact
    /// under any concurrency.
    pub async fn reserve_message(
        &self,
        user: &UserId,
        now: i64,
        (quota, limit): (Quota, i64),
        key: Option<(&str, &str, &str)>,
    ) -> Result<MessageReservation, StoreError> {
        const OPERATION: &str = "TransactWriteItems(reserve)";
        let counter = Key::message_counter_of(quota, user, now);
        let build = |e: BuildError| StoreError::corrupt(OPERATION, e.to_string());
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(counter.item()))
            .update_expression("ADD #n :one SET expiresAt = :exp")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":exp", n(counter_expires_at(now)))
            .build()
            .map_err(build)?;
        let Some((id, fingerprint, owner)) = key else {
            let result = self.update_item_of(count).send().await.map(|_| ());
            return Ok(match conditional("UpdateItem(reserve)", result)? {
                Write::Written(()) => MessageReservation::Reserved,
                Write::ConditionFailed { .. } => MessageReservation::LimitReached,
            });
        };
        let mut record = Key::idempotency(id).item();
        record.insert("fingerprint".into(), s(fingerprint));
        record.insert("owner".into(), s(owner));
        record.insert(TTL_ATTRIBUTE.into(), n(now + IDEMPOTENCY_SECONDS));
        let claim = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build)?;
        let items = vec![
            TransactWriteItem::builder().put(claim).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        Ok(
            match transact_retrying(self, OPERATION, items, CONFLICT_BACKOFF).await? {
                Transact::Done => MessageReservation::Reserved,
                Transact::Cancelled(reasons) => match reasons.first() {
                    Some(Reason::ConditionFailed(_)) => MessageReservation::KeyTaken,
                    _ => MessageReservation::LimitReached,
                },
            },
        )
    }

    /// Gives back the unit of `quota` a failed send held, and frees its key so a retry can
    /// send.
    pub async fn release_message(
        &self,
        user: &UserId,
        reserved_at: i64,
        quota: Quota,
        key: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(
                Key::message_counter_of(quota, user, reserved_at).item(),
            ))
            .update_expression("ADD #n :minus")
            .condition_expression("#n > :zero")
            .expression_attribute_names("#n", "count")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map(|_| ());
        let _ = conditional("UpdateItem(release)", result)?;
        if let Some((id, owner)) = key {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Key::idempotency(id).item()))
                .condition_expression("#o = :o")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":o", s(owner))
                .send()
                .await
                .map(|_| ());
            let _ = conditional("DeleteItem(idempotency)", result)?;
        }
        Ok(())
    }

    /// After Meta accepted a send: the message (its status only set if no status webhook got
    /// there first), who sent it (for replies quoting it), who sent to the phone last (for
    /// replies quoting nothing), and the key's answer. One transaction.
    pub async fn record_outbound(
        &self,
        message: &ConversationMessage,
        canonical_phone: &str,
        key: Option<(&str, &str, &Value)>,
    ) -> Result<(), StoreError> {
        const OPERATION: &str = "TransactWriteItems(record message)";
        let build = |e: BuildError| StoreError::corrupt(OPERATION, e.to_string());
        let Some(message_id) = message.message_id.as_deref() else {
            return Err(StoreError::corrupt(
                OPERATION,
                "an outbound message without id",
            ));
        };
        let expires = message.created_at + CONVERSATION_SECONDS;
        let item_key = Key::message(&message.user_id, message.created_at, &message.suffix);
        let upsert = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item_key.item()))
            .update_expression(
                "SET messageId = :mid, userId = :u, direction = :d, phone = :p, #type = :t, \
                 content = :c, createdAt = :at, expiresAt = :exp, \
                 #status = if_not_exists(#status, :accepted), \
                 statusRank = if_not_exists(statusRank, :zero)",
            )
            .expression_attribute_names("#type", "type")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":mid", s(message_id))
            .expression_attribute_values(":u", s(message.user_id.as_str()))
            .expression_attribute_values(":d", s(message.direction.as_str()))
            .expression_attribute_values(":p", s(&message.phone))
            .expression_attribute_values(":t", s(&message.kind))
            .expression_attribute_values(":c", s(&message.content.to_string()))
            .expression_attribute_values(":at", n(message.created_at))
            .expression_attribute_values(":exp", n(expires))
            .expression_attribute_values(":accepted", s(ACCEPTED))
            .expression_attribute_values(":zero", n(ACCEPTED_RANK))
            .build()
            .map_err(build)?;
        let mut reference = Key::outbound_ref(message_id).item();
        reference.insert("userId".into(), s(message.user_id.as_str()));
        reference.insert(TTL_ATTRIBUTE.into(), n(expires));
        let reference = Put::builder()
            .table_name(&self.table)
            .set_item(Some(reference))
            .build()
            .map_err(build)?;
        let mut last = Key::last_sender(canonical_phone).item();
        last.insert("userId".into(), s(message.user_id.as_str()));
        last.insert("sentAt".into(), n(message.created_at));
        last.insert(TTL_ATTRIBUTE.into(), n(expires));
        // Concurrent sends to one phone race here; the latest write is close enough to "who
        // sent last" for attributing a reply that names nobody.
        let last = Put::builder()
            .table_name(&self.table)
            .set_item(Some(last))
            .build()
            .map_err(build)?;
        let mut items = vec![
            TransactWriteItem::builder().update(upsert).build(),
            TransactWriteItem::builder().put(reference).build(),
            TransactWriteItem::builder().put(last).build(),
        ];
        if let Some((id, owner, response)) = key {
            let done = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Key::idempotency(id).item()))
                .update_expression("SET #r = :r")
                .condition_expression("#o = :o")
                .expression_attribute_names("#r", "response")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_values(":r", s(&response.to_string()))
                .expression_attribute_values(":o", s(owner))
                .build()
                .map_err(build)?;
            items.push(TransactWriteItem::builder().update(done).build());
        }
        match transact_retrying(self, OPERATION, items, CONFLICT_BACKOFF).await? {
            Transact::Done => Ok(()),
            Transact::Cancelled(_) => Err(StoreError::corrupt(
                OPERATION,
                "the idempotency record is no longer this request's",
            )),
        }
    }

    /// Records a status of a sandbox message, only moving forward (`accepted` < `sent` <
    /// `delivered` < `read` < `failed`). The tag names the item, so this is one `UpdateItem`;
    /// a status that arrives before its send is recorded still lands (the send's record keeps
    /// it).
    pub async fn record_message_status(
        &self,
        user: &UserId,
        created_at: i64,
        suffix: &str,
        delivery: &Delivery,
    ) -> Result<Write, StoreError> {
        const OPERATION: &str = "UpdateItem(message status)";
        let mut set = String::from(
            "SET #status = :s, statusRank = :r, statusAt = :at, \
             expiresAt = if_not_exists(expiresAt, :exp)",
        );
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::message(user, created_at, suffix).item()))
            .condition_expression("attribute_not_exists(statusRank) OR statusRank < :r")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":s", s(delivery.status.as_str()))
            .expression_attribute_values(":r", n(delivery.status.rank()))
            .expression_attribute_values(":at", n(delivery.updated_at))
            .expression_attribute_values(":exp", n(created_at + CONVERSATION_SECONDS));
        if let Some(error) = &delivery.error {
            let text = serde_json::to_string(error)
                .map_err(|e| StoreError::corrupt(OPERATION, e.to_string()))?;
            set.push_str(", #error = :e");
            req = req
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":e", s(&text));
        }
        let result = req.update_expression(set).send().await.map(|_| ());
        conditional(OPERATION, result)
    }

    /// A page of `user`'s conversation, newest first, after the `sk` `after`; the `sk` the
    /// next page starts after, if DynamoDB says there may be more.
    pub async fn conversation(
        &self,
        user: &UserId,
        limit: i32,
        after: Option<String>,
    ) -> Result<(Vec<ConversationMessage>, Option<String>), StoreError> {
        let pk = Key::conversation(user);
        let start = after.map(|sk| {
            Item::from([
                ("pk".to_owned(), s(&pk)),
                ("sk".to_owned(), AttributeValue::S(sk)),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :msg)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":msg", s(MESSAGE_SK_PREFIX))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("Query(conversation)", e))?;
        let mut messages = Vec::new();
        for item in out.items.unwrap_or_default() {
            if let Some(m) = message_from_item(item)? {
                messages.push(m);
            }
        }
        let next = out
            .last_evaluated_key
            .and_then(|k| k.get("sk").and_then(|v| v.as_s().ok()).cloned());
        Ok((messages, next))
    }

    /// One message of `user`'s conversation, by its time and suffix (strongly consistent).
    pub async fn conversation_message(
        &self,
        user: &UserId,
        created_at: i64,
        suffix: &str,
    ) -> Result<Option<ConversationMessage>, StoreError> {
        let key = Key::message(user, created_at, suffix);
        match self.get("GetItem(conversation)", &key, true).await? {
            Some(item) => message_from_item(item),
            None => Ok(None),
        }
    }

    /// The user who sent the sandbox message Meta calls `message_id`, if it was one.
    pub async fn outbound_owner(&self, message_id: &str) -> Result<Option<UserId>, StoreError> {
        let item = self
            .get(
                "GetItem(outbound ref)",
                &Key::outbound_ref(message_id),
                false,
            )
            .await?;
        Ok(item
            .and_then(|i| i.get("userId").and_then(|v| v.as_s().ok()).cloned())
            .map(UserId::new))
    }

    /// Who last sent a sandbox message to the phone with these canonical digits, and when.
    pub async fn last_sender(&self, canonical: &str) -> Result<Option<(UserId, i64)>, StoreError> {
        let item = self
            .get("GetItem(last sender)", &Key::last_sender(canonical), false)
            .await?;
        Ok(item.and_then(|i| {
            let user = i.get("userId").and_then(|v| v.as_s().ok())?.clone();
            let at = i.get("sentAt").and_then(|v| v.as_n().ok())?.parse().ok()?;
            Some((UserId::new(user), at))
        }))
    }

    /// The `Put` of an inbound message: its key comes from Meta's id and time, so a
    /// redelivery writes the very same item again.
    pub(crate) fn inbound_put(&self, message: &ConversationMessage) -> Result<Put, StoreError> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(inbound_item(message)?))
            .build()
            .map_err(|e| StoreError::corrupt("PutItem(inbound message)", e.to_string()))
    }

    /// Records an inbound message in its user's conversation.
    pub async fn record_inbound(&self, message: &ConversationMessage) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(inbound_item(message)?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::from_sdk("PutItem(inbound message)", e))
    }

    /// Moves the customer-service window of an active session forward to `at`, the time of
    /// the phone's latest message (never back).
    pub async fn touch_window(&self, session: &Session, at: i64) -> Result<Write, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::session(&session.user_id).item()))
            .update_expression("SET lastInboundAt = :t")
            .condition_expression(
                "sessionId = :id AND #status = :active \
                 AND (attribute_not_exists(lastInboundAt) OR lastInboundAt < :t)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":id", s(session.id.as_str()))
            .expression_attribute_values(":active", s(SessionStatus::Active.as_str()))
            .expression_attribute_values(":t", n(at))
            .return_values(ReturnValue::None)
            .send()
            .await
            .map(|_| ());
        conditional("UpdateItem(window)", result)
    }
}

/// The stored item of an inbound message.
pub(crate) fn inbound_item(message: &ConversationMessage) -> Result<Item, StoreError> {
    let Key { pk, sk } = Key::message(&message.user_id, message.created_at, &message.suffix);
    let item = MessageItem {
        pk,
        sk,
        user_id: Some(message.user_id.clone()),
        message_id: message.message_id.clone(),
        direction: message.direction.as_str().to_owned(),
        phone: message.phone.clone(),
        kind: message.kind.clone(),
        content: message.content.to_string(),
        status: None,
        error: None,
        created_at: message.created_at,
        expires_at: message.created_at + CONVERSATION_SECONDS,
        bsuid: message.bsuid.clone(),
    };
    serde_dynamo::to_item(item)
        .map_err(|e| StoreError::corrupt("PutItem(inbound message)", e.to_string()))
}
