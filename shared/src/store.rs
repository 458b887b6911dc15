//! The DynamoDB store: the only module that talks to the table.
//!
//! # Table
//! One table, on-demand, generic keys `pk` (S) / `sk` (S), TTL attribute `expiresAt` (N, epoch
//! seconds), and two sparse global secondary indexes used by the webhook:
//! `byPhone` (partition key `phoneE164`) and `byWaId` (partition key `waId`, the WhatsApp id
//! Meta reported at send time, which for Brazil, Mexico and Argentina may differ from the
//! number we sent to). Only session items carry those two attributes.
//!
//! # Items
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | API key (written by provisioning; layout fixed) | `KEY#<sha256 hex of the key>` | `KEY` | `userId`, `status` (`active`/`disabled`), `createdAt` (RFC 3339), `label`? |
//! | the user's one session | `USER#<userId>` | `SESSION` | `sessionId`, `userId`, `phoneE164`, `status`, `createdAt`, `expiresAt`, `activatedAt`?, `activationMessageId`?, `waId`?, `delivery`?, `deliveryRank`?, `writeId` |
//! | a phone's opt-out (STOP / START) | `OPTOUT#<digits>` | `OPTOUT` | `optedOut` (BOOL), `updatedAt` (N, the message's time), `phones` (SS, every number of that person) |
//!
//! # Access patterns
//! | operation | request |
//! |---|---|
//! | authenticate an API key | `GetItem KEY#<hash>/KEY` (cached per container) |
//! | create: claim the user's slot | `PutItem USER#<id>/SESSION` if `attribute_not_exists(pk) OR expiresAt <= :now`; on failure `ALL_OLD` returns the live session, so "different phone" needs no second read |
//! | create: store the accepted send | `UpdateItem` if `sessionId = :id` |
//! | create: refresh a pending session after a send | `UpdateItem` if `sessionId = :id AND status = pending AND expiresAt > :now` |
//! | create: roll back a claim | `DeleteItem` (or `PutItem` of the previous item) if `writeId = :mine` |
//! | list | strongly consistent `GetItem USER#<id>/SESSION`, expired filtered in code |
//! | revoke | `DeleteItem USER#<id>/SESSION` if `sessionId = :id AND expiresAt > :now` |
//! | webhook: sessions of a phone | `Query byPhone` and `Query byWaId` (no scans) |
//! | webhook: activate | `UpdateItem` if `sessionId = :id AND status = pending AND expiresAt > :now` |
//! | webhook: delivery status | `UpdateItem` if `activationMessageId = :mid AND (no deliveryRank OR deliveryRank < :rank)` |
//! | webhook: STOP deletes sessions | `DeleteItem` if `sessionId = :id AND createdAt <= :messageTime` |
//! | webhook: STOP / START | `UpdateItem OPTOUT#<digits>` if `attribute_not_exists(pk) OR updatedAt <= :messageTime` |
//! | create (later): is the phone opted out | `GetItem OPTOUT#<digits>/OPTOUT` |
//!
//! One item per user makes "one phone per user" structural: every create is a conditional
//! write on that item, never a read followed by a write.

use std::collections::HashMap;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use crate::phone::PhoneE164;
use crate::session::{Delivery, DeliveryError, DeliveryStatus, Session, SessionId, SessionStatus};

/// A raw DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The TTL attribute of every item that expires.
pub const TTL_ATTRIBUTE: &str = "expiresAt";
/// The index on the session's normalized phone.
pub const PHONE_INDEX: &str = "byPhone";
/// The index on the WhatsApp id Meta reported for the phone.
pub const WA_ID_INDEX: &str = "byWaId";

/// DynamoDB could not be reached, throttled us past retries, or answered with an error.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {operation} failed: {detail}")]
pub struct StoreError {
    operation: &'static str,
    detail: String,
}

impl StoreError {
    fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let detail = match &err {
            SdkError::ServiceError(e) => format!(
                "{}: {}",
                e.err().code().unwrap_or("unknown"),
                e.err().message().unwrap_or("")
            ),
            other => format!("{other}"),
        };
        Self { operation, detail }
    }

    fn corrupt(operation: &'static str, detail: impl Into<String>) -> Self {
        Self {
            operation,
            detail: detail.into(),
        }
    }
}

/// An API key's stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    /// `KEY#<sha256 hex>`.
    pub pk: String,
    /// Always `KEY`.
    pub sk: String,
    /// The user the key belongs to.
    pub user_id: String,
    /// `active` or `disabled`.
    pub status: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// A human label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl ApiKeyRecord {
    /// The partition key for a key hash.
    pub fn pk_for(hash_hex: &str) -> String {
        format!("KEY#{hash_hex}")
    }

    /// Whether the key may be used.
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// The stored shape of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionItem {
    pk: String,
    sk: String,
    session_id: String,
    user_id: String,
    phone_e164: String,
    status: String,
    created_at: i64,
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activation_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wa_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery: Option<DeliveryItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery_rank: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    write_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryItem {
    status: String,
    updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_details: Option<String>,
}

/// The key of a user's session item.
fn session_key(user_id: &str) -> (AttributeValue, AttributeValue) {
    (
        AttributeValue::S(format!("USER#{user_id}")),
        AttributeValue::S("SESSION".into()),
    )
}

/// True when a write failed only because its condition did not hold.
fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(e) if e.err().code() == Some("ConditionalCheckFailedException"))
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

impl SessionItem {
    fn from_session(session: &Session, write_id: &str) -> Self {
        Self {
            pk: format!("USER#{}", session.user_id),
            sk: "SESSION".into(),
            session_id: session.id.as_str().to_owned(),
            user_id: session.user_id.clone(),
            phone_e164: session.phone.digits().to_owned(),
            status: session.status.as_str().to_owned(),
            created_at: session.created_at,
            expires_at: session.expires_at,
            activated_at: session.activated_at,
            activation_message_id: session.activation_message_id.clone(),
            wa_id: session.wa_id.clone(),
            delivery: session.delivery.as_ref().map(|d| DeliveryItem {
                status: d.status.as_str().to_owned(),
                updated_at: d.updated_at,
                error_code: d.error.as_ref().map(|e| e.code),
                error_title: d.error.as_ref().and_then(|e| e.title.clone()),
                error_message: d.error.as_ref().and_then(|e| e.message.clone()),
                error_details: d.error.as_ref().and_then(|e| e.details.clone()),
            }),
            delivery_rank: session.delivery.as_ref().map(|d| d.status.rank()),
            write_id: Some(write_id.to_owned()),
        }
    }

    fn into_session(self) -> Option<Session> {
        let delivery = match self.delivery {
            None => None,
            Some(d) => Some(Delivery {
                status: DeliveryStatus::parse(&d.status)?,
                updated_at: d.updated_at,
                error: d.error_code.map(|code| DeliveryError {
                    code,
                    title: d.error_title,
                    message: d.error_message,
                    details: d.error_details,
                }),
            }),
        };
        Some(Session {
            id: SessionId::parse(&self.session_id)?,
            user_id: self.user_id,
            phone: PhoneE164::from_stored(&self.phone_e164)?,
            status: SessionStatus::parse(&self.status)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            activated_at: self.activated_at,
            activation_message_id: self.activation_message_id,
            wa_id: self.wa_id,
            delivery,
        })
    }
}

/// Decodes a stored session item.
pub fn session_from_item(operation: &'static str, item: Item) -> Result<Session, StoreError> {
    let raw: SessionItem = serde_dynamo::from_item(item)
        .map_err(|e| StoreError::corrupt(operation, format!("undecodable session item: {e}")))?;
    raw.into_session()
        .ok_or_else(|| StoreError::corrupt(operation, "session item with invalid fields"))
}

/// What the create's claim found.
#[derive(Debug)]
pub enum Claim {
    /// The slot was free (or held only by an expired session, returned for rollback).
    Claimed {
        /// The item the claim overwrote, if any: rollback puts it back exactly.
        previous: Option<Item>,
    },
    /// The user already has this live session.
    Held(Box<Session>),
}

/// What refreshing a pending session after a send found.
#[derive(Debug)]
pub enum Refresh {
    /// Expiry and message id updated.
    Refreshed,
    /// The session changed meanwhile (activated, revoked, expired): its current state, if any.
    Changed(Option<Box<Session>>),
}

/// The DynamoDB store.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    /// A store on `table` through `client` (built once per container).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads an API key record by the hash of the key.
    pub async fn api_key(&self, hash_hex: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&ApiKeyRecord::pk_for(hash_hex)))
            .key("sk", s("KEY"))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetItem(api key)", e))?;
        match out.item {
            None => Ok(None),
            Some(item) => serde_dynamo::from_item(item).map(Some).map_err(|e| {
                StoreError::corrupt("GetItem(api key)", format!("undecodable key item: {e}"))
            }),
        }
    }

    /// Writes an API key record (admin tool, tests); fails if that hash already exists.
    pub async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let item: Item = serde_dynamo::to_item(record)
            .map_err(|e| StoreError::corrupt("PutItem(api key)", e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("PutItem(api key)", e))?;
        Ok(())
    }

    /// The user's session if it is live at `now` (one strongly consistent read).
    pub async fn live_session(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        let (pk, sk) = session_key(user_id);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetItem(session)", e))?;
        match out.item {
            None => Ok(None),
            Some(item) => {
                let session = session_from_item("GetItem(session)", item)?;
                Ok(session.is_live(now).then_some(session))
            }
        }
    }

    /// Claims the user's one session slot for `session` unless a live session holds it.
    pub async fn claim(
        &self,
        session: &Session,
        write_id: &str,
        now: i64,
    ) -> Result<Claim, StoreError> {
        let item: Item = serde_dynamo::to_item(SessionItem::from_session(session, write_id))
            .map_err(|e| StoreError::corrupt("PutItem(claim)", e.to_string()))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Claim::Claimed {
                previous: out.attributes.filter(|a| !a.is_empty()),
            }),
            Err(err) => match err {
                SdkError::ServiceError(ref e)
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    let current = match err.into_service_error() {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => c.item,
                        _ => None,
                    };
                    let item = current.ok_or_else(|| {
                        StoreError::corrupt(
                            "PutItem(claim)",
                            "condition failed without ALL_OLD item",
                        )
                    })?;
                    Ok(Claim::Held(Box::new(session_from_item(
                        "PutItem(claim)",
                        item,
                    )?)))
                }
                other => Err(StoreError::from_sdk("PutItem(claim)", other)),
            },
        }
    }

    /// Stores the message id and WhatsApp id of the send Meta accepted for a new session.
    /// Returns false if the session is gone (revoked meanwhile).
    pub async fn record_send(
        &self,
        session: &Session,
        message_id: &str,
        wa_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = session_key(&session.user_id);
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .condition_expression("sessionId = :id")
            .expression_attribute_values(":id", s(session.id.as_str()))
            .expression_attribute_values(":mid", s(message_id));
        req = match wa_id {
            Some(w) => req
                .update_expression("SET activationMessageId = :mid, waId = :wa")
                .expression_attribute_values(":wa", s(w)),
            None => req.update_expression("SET activationMessageId = :mid"),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(StoreError::from_sdk("UpdateItem(record send)", e)),
        }
    }

    /// After a template was sent again for a live pending session: new expiry, new message id,
    /// delivery report reset. Conditioned on the session still being the same, pending and live.
    /// The new `write_id` makes a concurrent claimer's rollback skip this row: a template was
    /// accepted for it, so it must stay.
    pub async fn refresh_pending(
        &self,
        session: &Session,
        message_id: &str,
        wa_id: Option<&str>,
        write_id: &str,
        now: i64,
    ) -> Result<Refresh, StoreError> {
        let (pk, sk) = session_key(&session.user_id);
        let mut set =
            String::from("SET expiresAt = :exp, activationMessageId = :mid, writeId = :w");
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .condition_expression("sessionId = :id AND #status = :pending AND expiresAt > :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":id", s(session.id.as_str()))
            .expression_attribute_values(":pending", s(SessionStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(session.expires_at))
            .expression_attribute_values(":mid", s(message_id))
            .expression_attribute_values(":w", s(write_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(w) = wa_id {
            set.push_str(", waId = :wa");
            req = req.expression_attribute_values(":wa", s(w));
        }
        set.push_str(" REMOVE delivery, deliveryRank");
        match req.update_expression(set).send().await {
            Ok(_) => Ok(Refresh::Refreshed),
            Err(err) => match err {
                SdkError::ServiceError(ref e)
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    let current = match err.into_service_error() {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                        _ => None,
                    };
                    match current {
                        None => Ok(Refresh::Changed(None)),
                        Some(item) => Ok(Refresh::Changed(Some(Box::new(session_from_item(
                            "UpdateItem(refresh)",
                            item,
                        )?)))),
                    }
                }
                other => Err(StoreError::from_sdk("UpdateItem(refresh)", other)),
            },
        }
    }

    /// Undoes a claim: deletes the new row, or puts back the expired item it replaced.
    /// Conditioned on `writeId`, so a newer concurrent write is never clobbered.
    /// Returns false when the row was no longer ours.
    pub async fn undo_claim(
        &self,
        user_id: &str,
        write_id: &str,
        previous: Option<Item>,
    ) -> Result<bool, StoreError> {
        let result = match previous {
            None => {
                let (pk, sk) = session_key(user_id);
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", pk)
                    .key("sk", sk)
                    .condition_expression("writeId = :w")
                    .expression_attribute_values(":w", s(write_id))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        (
                            condition_failed(&e),
                            StoreError::from_sdk("DeleteItem(rollback)", e),
                        )
                    })
            }
            Some(item) => self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("writeId = :w")
                .expression_attribute_values(":w", s(write_id))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        condition_failed(&e),
                        StoreError::from_sdk("PutItem(rollback)", e),
                    )
                }),
        };
        match result {
            Ok(()) => Ok(true),
            Err((true, _)) => Ok(false),
            Err((false, e)) => Err(e),
        }
    }

    /// Hard-deletes the user's session `id` if it is live. False if there was no such session.
    pub async fn delete_session(
        &self,
        user_id: &str,
        id: &SessionId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = session_key(user_id);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .condition_expression("sessionId = :id AND expiresAt > :now")
            .expression_attribute_values(":id", s(id.as_str()))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(StoreError::from_sdk("DeleteItem(session)", e)),
        }
    }
}

/// A phone's opt-out record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    /// Whether templates to this phone are blocked.
    pub opted_out: bool,
    /// The time of the message that set it.
    pub updated_at: i64,
    /// Every number recorded for this person when they opted out (sender and session phones).
    pub phones: Vec<String>,
}

impl Store {
    /// Every session whose phone or reported WhatsApp id is `digits` (both indexes; no scan).
    pub async fn sessions_for_phone(&self, digits: &str) -> Result<Vec<Session>, StoreError> {
        let mut sessions: Vec<Session> = Vec::new();
        for (index, attribute) in [(PHONE_INDEX, "phoneE164"), (WA_ID_INDEX, "waId")] {
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(index)
                    .key_condition_expression("#k = :v")
                    .expression_attribute_names("#k", attribute)
                    .expression_attribute_values(":v", s(digits))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| StoreError::from_sdk("Query(phone)", e))?;
                for item in out.items.unwrap_or_default() {
                    let session = session_from_item("Query(phone)", item)?;
                    if !sessions.iter().any(|s| s.user_id == session.user_id) {
                        sessions.push(session);
                    }
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(sessions)
    }

    /// Turns a pending, live session active. False if it was not (already active, expired,
    /// revoked or replaced): a replayed reply changes nothing.
    pub async fn activate(
        &self,
        session: &Session,
        now: i64,
        active_ttl: i64,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = session_key(&session.user_id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .update_expression("SET #status = :active, activatedAt = :now, expiresAt = :exp")
            .condition_expression("sessionId = :id AND #status = :pending AND expiresAt > :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s(SessionStatus::Active.as_str()))
            .expression_attribute_values(":pending", s(SessionStatus::Pending.as_str()))
            .expression_attribute_values(":id", s(session.id.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(now + active_ttl))
            .send()
            .await;
        conditional("UpdateItem(activate)", result)
    }

    /// Records a delivery report on the session whose activation message is `message_id`,
    /// only moving forward (a late `delivered` never overwrites `read`).
    pub async fn record_delivery(
        &self,
        session: &Session,
        message_id: &str,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = session_key(&session.user_id);
        let stored = SessionItem::from_session(
            &Session {
                delivery: Some(delivery.clone()),
                ..session.clone()
            },
            "",
        );
        let delivery_value = serde_dynamo::to_attribute_value(&stored.delivery)
            .map_err(|e| StoreError::corrupt("UpdateItem(delivery)", e.to_string()))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .update_expression("SET delivery = :d, deliveryRank = :r")
            .condition_expression(
                "activationMessageId = :mid AND (attribute_not_exists(deliveryRank) OR deliveryRank < :r)",
            )
            .expression_attribute_values(":d", delivery_value)
            .expression_attribute_values(":r", n(delivery.status.rank()))
            .expression_attribute_values(":mid", s(message_id))
            .send()
            .await;
        conditional("UpdateItem(delivery)", result)
    }

    /// Deletes `session` if it existed when the message at `message_time` was sent, so a
    /// replayed STOP never deletes a session created after it.
    pub async fn delete_session_created_before(
        &self,
        session: &Session,
        message_time: i64,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = session_key(&session.user_id);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .condition_expression("sessionId = :id AND createdAt <= :t")
            .expression_attribute_values(":id", s(session.id.as_str()))
            .expression_attribute_values(":t", n(message_time))
            .send()
            .await;
        conditional("DeleteItem(opt-out)", result)
    }

    /// Sets or lifts the opt-out of `digits`, unless a later message already decided it.
    pub async fn set_opt_out(
        &self,
        digits: &str,
        opted_out: bool,
        message_time: i64,
        phones: &[String],
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&format!("OPTOUT#{digits}")))
            .key("sk", s("OPTOUT"))
            .condition_expression("attribute_not_exists(pk) OR updatedAt <= :t")
            .expression_attribute_values(":o", AttributeValue::Bool(opted_out))
            .expression_attribute_values(":t", n(message_time));
        req = if phones.is_empty() {
            req.update_expression("SET optedOut = :o, updatedAt = :t")
        } else {
            req.update_expression("SET optedOut = :o, updatedAt = :t ADD phones :p")
                .expression_attribute_values(":p", AttributeValue::Ss(phones.to_vec()))
        };
        conditional("UpdateItem(opt-out)", req.send().await)
    }

    /// The opt-out record of `digits`, if any.
    pub async fn opt_out(&self, digits: &str) -> Result<Option<OptOut>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&format!("OPTOUT#{digits}")))
            .key("sk", s("OPTOUT"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetItem(opt-out)", e))?;
        Ok(out.item.map(|item| OptOut {
            opted_out: matches!(item.get("optedOut"), Some(AttributeValue::Bool(true))),
            updated_at: item
                .get("updatedAt")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            phones: item
                .get("phones")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default(),
        }))
    }
}

/// Ok(true) if the write happened, Ok(false) if its condition did not hold.
fn conditional<T, E, R>(
    operation: &'static str,
    result: Result<T, SdkError<E, R>>,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if condition_failed(&e) => Ok(false),
        Err(e) => Err(StoreError::from_sdk(operation, e)),
    }
}

/// Creates the table exactly as `template.yaml` declares it (tests and the local stack).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let index = |name: &str, attribute: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(attribute, KeyType::Hash)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
    };
    let build = || -> Result<_, aws_sdk_dynamodb::error::BuildError> {
        Ok(client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("phoneE164")?)
            .attribute_definitions(attr("waId")?)
            .global_secondary_indexes(index(PHONE_INDEX, "phoneE164")?)
            .global_secondary_indexes(index(WA_ID_INDEX, "waId")?))
    };
    build()
        .map_err(|e| StoreError::corrupt("CreateTable", e.to_string()))?
        .send()
        .await
        .map_err(|e| StoreError::from_sdk("CreateTable", e))?;
    // On AWS a new table is CREATING for a while, and UpdateTimeToLive needs it ACTIVE.
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(std::time::Duration::from_secs(300))
        .await
        .map_err(|e| StoreError::corrupt("DescribeTable(wait)", e.to_string()))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(|e| StoreError::corrupt("UpdateTimeToLive", e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| StoreError::from_sdk("UpdateTimeToLive", e))?;
    Ok(())
}
