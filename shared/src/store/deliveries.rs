//! Deliveries of events to webhooks: one item per (event, webhook), the outbox's other half.
//!
//! `WHDLV#<userId>` / `DLV#<eventId>#<webhookId>` holds the exact bytes to send, the number of
//! the next attempt and the state. Its conditional creation is the claim: a stream record
//! processed twice, or by two invocations at once, creates it once, so each webhook gets one
//! delivery of each event.
//!
//! An item that is due carries `dueShard` and `dueAt`, the keys of the sparse index
//! [`DUE_INDEX`], which the sweep reads every minute: a retry waiting for its time, and also a
//! delivery being attempted right now, whose `dueAt` is the end of its lease. If the invocation
//! holding the lease dies, the sweep finds the item once the lease is over and makes the
//! attempt. A settled delivery (delivered, failed for good, gone, cancelled) drops both
//! attributes and leaves the index. Every change after the claim is conditional on the
//! `nextAttempt` and `dueAt` its writer saw ([`DueDelivery`]), so two writers never both act
//! on one item.
//!
//! **Shards.** `dueShard` is one of [`DUE_SHARDS`] values, `DUE#00` to `DUE#15`, fixed by the
//! delivery's user ([`Key::due_shard`]): one user's deliveries share one partition of the
//! index, and the sweep reads every partition, so however many deliveries one user has due,
//! they fill only their own shard's read.
//!
//! **Expiry.** Every write that sets `dueAt` sets `expiresAt` to `dueAt` plus the log's 30 days
//! ([`expires_at`]): an item always outlives what it still owes (its next attempt, and the
//! lease of whoever takes it then), however long the schedule, and is kept 30 days past its
//! last due time, as the log keeps its attempts, and longer than the stream's 24 hours in which
//! a record may come again and must find its claim. Settling leaves it as it was.

use std::collections::HashMap;
use std::ops::ControlFlow;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use sha2::{Digest, Sha256};

use super::{
    conditional, n, query_items, s, Item, ItemKind, Key, Store, StoreError, Write, TTL_ATTRIBUTE,
};
use super::{DUE_INDEX, DUE_SHARDS, DUE_SHARD_PREFIX};
use crate::session::UserId;
use crate::webhooks::LOG_RETENTION_SECONDS;

/// A delivery as stored: what to send, to which webhook, and which attempt is next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryItem {
    /// The API user whose webhook it is.
    pub user: UserId,
    /// The webhook's id.
    pub webhook_id: String,
    /// The event's id.
    pub event_id: String,
    /// The event's name.
    pub event: String,
    /// The bytes sent on every attempt.
    pub payload: Vec<u8>,
    /// The number of the attempt to make next (1 for the first).
    pub next_attempt: u32,
    /// While due: when (epoch seconds); the lease's end while an attempt is in flight.
    pub due_at: Option<i64>,
    /// Where the delivery stands.
    pub state: DeliveryState,
}

/// A delivery as the due index lists it, without its bytes: whose, which event, and the version
/// a conditional write expects (its next attempt and due time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// The API user whose webhook it is.
    pub user: UserId,
    /// The webhook's id.
    pub webhook_id: String,
    /// The event's id.
    pub event_id: String,
    /// The event's name.
    pub event: String,
    /// The number of the attempt to make next.
    pub next_attempt: u32,
    /// When it is due (epoch seconds): a retry's time, or the end of a holder's lease.
    pub due_at: i64,
}

/// A delivery as recover reads it, without its bytes: where it stands, and the version a
/// conditional write expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStanding {
    /// The API user whose webhook it is.
    pub user: UserId,
    /// The webhook's id.
    pub webhook_id: String,
    /// The event's id.
    pub event_id: String,
    /// The number of the attempt to make next (settled: the last one's).
    pub next_attempt: u32,
    /// While due: when (epoch seconds); the lease's end while an attempt is in flight.
    pub due_at: Option<i64>,
    /// Where the delivery stands.
    pub state: DeliveryState,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Being attempted, or waiting for its next attempt.
    Pending,
    /// A 2xx came back.
    Delivered,
    /// Every attempt failed.
    Failed,
    /// The receiver answered 410: the webhook was turned off.
    Gone,
    /// The webhook was deleted or turned off before the delivery ended.
    Cancelled,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Gone => "gone",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Delivered,
            Self::Failed,
            Self::Gone,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// What a claim did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Claim {
    /// This caller holds the delivery until the lease ends (the item's `dueAt`).
    Claimed(DeliveryItem),
    /// The delivery exists already: another processing of the same event made it.
    Exists,
}

/// What happens to a delivery whose attempt (or deferral) its holder finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Attempt number `attempt` at `at` (epoch seconds).
    Retry {
        /// The number of the next attempt.
        attempt: u32,
        /// When it is due.
        at: i64,
    },
    /// Settled: it leaves the due index.
    Settle(DeliveryState),
}

impl Key {
    /// The delivery of event `event_id` to `user`'s webhook `webhook_id`.
    pub fn delivery(user: &UserId, event_id: &str, webhook_id: &str) -> Self {
        Self {
            pk: Self::deliveries(user),
            sk: format!("{}{event_id}#{webhook_id}", ItemKind::Delivery.sort_key()),
        }
    }
}

impl Key {
    /// The partition of `user`'s deliveries.
    pub fn deliveries(user: &UserId) -> String {
        format!("{}{}", ItemKind::Delivery.prefix(), user.as_str())
    }

    /// The `dueShard` of `user`'s due deliveries: `DUE#` and two digits, the first byte of the
    /// SHA-256 of the user id modulo [`DUE_SHARDS`] (the same in every build, unlike std's
    /// hasher, since items keep it).
    pub fn due_shard(user: &UserId) -> String {
        let digest = Sha256::digest(user.as_str().as_bytes());
        due_shard_name(digest[0] % DUE_SHARDS)
    }

    /// Every `dueShard`, in order: what the sweep reads.
    pub fn due_shards() -> impl Iterator<Item = String> {
        (0..DUE_SHARDS).map(due_shard_name)
    }
}

/// The one `dueShard` of the layout before issue 25: every due delivery in one partition
/// ([`Store::migrate_legacy_due_deliveries`] moves them to their shards).
const LEGACY_DUE_SHARD: &str = "DUE";

fn due_shard_name(shard: u8) -> String {
    format!("{DUE_SHARD_PREFIX}{shard:02}")
}

/// When a delivery item due (or held) until `due` expires: the log's 30 days after it.
fn expires_at(due: i64) -> i64 {
    due.saturating_add(LOG_RETENTION_SECONDS)
}

/// The attributes every delivery item has, read once for both views of it.
struct Common {
    user: UserId,
    webhook_id: String,
    event_id: String,
    event: String,
    next_attempt: u32,
    due_at: Option<i64>,
}

impl Common {
    fn from_item(operation: &'static str, item: &Item) -> Result<Self, StoreError> {
        let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
        let corrupt = |what: &str| StoreError::corrupt(operation, format!("delivery item {what}"));
        Ok(Self {
            user: text("userId")
                .map(UserId::new)
                .ok_or_else(|| corrupt("without a user"))?,
            webhook_id: text("webhookId")
                .ok_or_else(|| corrupt("without a webhook"))?
                .clone(),
            event_id: text("eventId")
                .ok_or_else(|| corrupt("without an event id"))?
                .clone(),
            event: text("event").cloned().unwrap_or_default(),
            next_attempt: number(item, "nextAttempt")
                .and_then(|a| u32::try_from(a).ok())
                .ok_or_else(|| corrupt("without an attempt number"))?,
            due_at: number(item, "dueAt"),
        })
    }
}

fn number(item: &Item, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
}

/// The attributes recover reads: [`DeliveryStanding`]'s, not the bytes.
const STANDING_PROJECTION: [&str; 6] = [
    "userId",
    "webhookId",
    "eventId",
    "nextAttempt",
    "dueAt",
    "state",
];

impl DeliveryStanding {
    fn from_item(operation: &'static str, item: &Item) -> Result<Self, StoreError> {
        let Common {
            user,
            webhook_id,
            event_id,
            next_attempt,
            due_at,
            ..
        } = Common::from_item(operation, item)?;
        let state = state_of(operation, item)?;
        Ok(Self {
            user,
            webhook_id,
            event_id,
            next_attempt,
            due_at,
            state,
        })
    }
}

/// The `state` of a delivery item.
fn state_of(operation: &'static str, item: &Item) -> Result<DeliveryState, StoreError> {
    item.get("state")
        .and_then(|v| v.as_s().ok())
        .and_then(|s| DeliveryState::parse(s))
        .ok_or_else(|| StoreError::corrupt(operation, "delivery item without a state"))
}

/// The attributes of an index entry the sweep reads: [`DueDelivery`]'s, not the bytes.
const DUE_PROJECTION: [&str; 6] = [
    "userId",
    "webhookId",
    "eventId",
    "event",
    "nextAttempt",
    "dueAt",
];

impl DueDelivery {
    fn key(&self) -> Key {
        Key::delivery(&self.user, &self.event_id, &self.webhook_id)
    }

    fn from_item(operation: &'static str, item: &Item) -> Result<Self, StoreError> {
        let common = Common::from_item(operation, item)?;
        Ok(Self {
            due_at: common
                .due_at
                .ok_or_else(|| StoreError::corrupt(operation, "due delivery item without dueAt"))?,
            user: common.user,
            webhook_id: common.webhook_id,
            event_id: common.event_id,
            event: common.event,
            next_attempt: common.next_attempt,
        })
    }
}

impl DeliveryItem {
    fn key(&self) -> Key {
        Key::delivery(&self.user, &self.event_id, &self.webhook_id)
    }

    /// The version of this item a conditional write expects (`None` once settled).
    pub fn as_due(&self) -> Option<DueDelivery> {
        self.due_at.map(|due_at| DueDelivery {
            user: self.user.clone(),
            webhook_id: self.webhook_id.clone(),
            event_id: self.event_id.clone(),
            event: self.event.clone(),
            next_attempt: self.next_attempt,
            due_at,
        })
    }

    fn to_item(&self, now: i64) -> Item {
        let mut item = self.key().item();
        item.insert("userId".into(), s(self.user.as_str()));
        item.insert("webhookId".into(), s(&self.webhook_id));
        item.insert("eventId".into(), s(&self.event_id));
        item.insert("event".into(), s(&self.event));
        item.insert(
            "payload".into(),
            AttributeValue::B(Blob::new(self.payload.clone())),
        );
        item.insert("nextAttempt".into(), n(i64::from(self.next_attempt)));
        item.insert("state".into(), s(self.state.as_str()));
        if let Some(due) = self.due_at {
            item.insert("dueShard".into(), s(&Key::due_shard(&self.user)));
            item.insert("dueAt".into(), n(due));
        }
        item.insert("createdAt".into(), n(now));
        item.insert("updatedAt".into(), n(now));
        item.insert(
            TTL_ATTRIBUTE.into(),
            n(expires_at(self.due_at.unwrap_or(now))),
        );
        item
    }

    fn from_item(operation: &'static str, item: &Item) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::corrupt(operation, format!("delivery item {what}"));
        let common = Common::from_item(operation, item)?;
        Ok(Self {
            user: common.user,
            webhook_id: common.webhook_id,
            event_id: common.event_id,
            event: common.event,
            payload: item
                .get("payload")
                .and_then(|v| v.as_b().ok())
                .map(|b| b.clone().into_inner())
                .ok_or_else(|| corrupt("without a payload"))?,
            next_attempt: common.next_attempt,
            due_at: common.due_at,
            state: state_of(operation, item)?,
        })
    }
}

impl Store {
    /// Creates the delivery of `delivery.event_id` to `delivery.webhook_id`, held by the caller
    /// until `lease_until`, unless it exists: the one delivery per (event, webhook).
    pub async fn claim_delivery(
        &self,
        delivery: DeliveryItem,
        now: i64,
        lease_until: i64,
    ) -> Result<Claim, StoreError> {
        const OPERATION: &str = "PutItem(claim delivery)";
        let delivery = DeliveryItem {
            next_attempt: 1,
            ..delivery
        };
        Ok(
            match self
                .put_pending(OPERATION, delivery, now, lease_until)
                .await?
            {
                Some(held) => Claim::Claimed(held),
                None => Claim::Exists,
            },
        )
    }

    /// Puts `delivery` pending, due at `due`, unless its item exists: the delivery as put, or
    /// `None` (nothing written).
    async fn put_pending(
        &self,
        operation: &'static str,
        delivery: DeliveryItem,
        now: i64,
        due: i64,
    ) -> Result<Option<DeliveryItem>, StoreError> {
        let delivery = DeliveryItem {
            due_at: Some(due),
            state: DeliveryState::Pending,
            ..delivery
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(delivery.to_item(now)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        Ok(match conditional(operation, result)? {
            Write::Written(_) => Some(delivery),
            Write::ConditionFailed { .. } => None,
        })
    }

    /// Takes over a due delivery, as the sweep found it, until `lease_until`: the item (with
    /// its bytes), or `None` if it changed since (another sweep took it, or its holder finished
    /// it).
    pub async fn take_due_delivery(
        &self,
        seen: &DueDelivery,
        lease_until: i64,
    ) -> Result<Option<DeliveryItem>, StoreError> {
        const OPERATION: &str = "UpdateItem(take due delivery)";
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(seen.key().item()))
            .update_expression("SET dueAt = :lease, dueShard = :shard, expiresAt = :expires")
            .condition_expression("nextAttempt = :n AND dueAt = :due")
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":shard", s(&Key::due_shard(&seen.user)))
            .expression_attribute_values(":expires", n(expires_at(lease_until)))
            .expression_attribute_values(":n", n(i64::from(seen.next_attempt)))
            .expression_attribute_values(":due", n(seen.due_at))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map(|out| out.attributes);
        match conditional(OPERATION, result)? {
            Write::Written(Some(item)) => Ok(Some(DeliveryItem::from_item(OPERATION, &item)?)),
            Write::Written(None) => Err(StoreError::corrupt(OPERATION, "no item returned")),
            Write::ConditionFailed { .. } => Ok(None),
        }
    }

    /// Records what follows the attempt (or deferral, or end) of the delivery at version `at`,
    /// which the caller holds or found due: a retry at a time, or the end. The item as it was
    /// (with its bytes) if written; `None` if it was no longer at that version (its lease ran
    /// out and the sweep took it over, or another sweep moved it): nothing changed.
    pub async fn finish_delivery(
        &self,
        at: &DueDelivery,
        next: Next,
        now: i64,
    ) -> Result<Option<DeliveryItem>, StoreError> {
        const OPERATION: &str = "UpdateItem(finish delivery)";
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":n".to_owned(), n(i64::from(at.next_attempt))),
            (":version".to_owned(), n(at.due_at)),
            (":now".to_owned(), n(now)),
        ]);
        let expression = match next {
            Next::Retry { attempt, at: due } => {
                values.insert(":next".into(), n(i64::from(attempt)));
                values.insert(":at".into(), n(due));
                values.insert(":shard".into(), s(&Key::due_shard(&at.user)));
                values.insert(":expires".into(), n(expires_at(due)));
                "SET nextAttempt = :next, dueAt = :at, dueShard = :shard, expiresAt = :expires, \
                 updatedAt = :now"
            }
            Next::Settle(state) => {
                values.insert(":state".into(), s(state.as_str()));
                "SET #state = :state, updatedAt = :now REMOVE dueShard, dueAt"
            }
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(at.key().item()))
            .update_expression(expression)
            .condition_expression("nextAttempt = :n AND dueAt = :version")
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld);
        if matches!(next, Next::Settle(_)) {
            request = request.expression_attribute_names("#state", "state");
        }
        let result = request.send().await.map(|out| out.attributes);
        match conditional(OPERATION, result)? {
            Write::Written(Some(item)) => Ok(Some(DeliveryItem::from_item(OPERATION, &item)?)),
            Write::Written(None) => Err(StoreError::corrupt(OPERATION, "no item returned")),
            Write::ConditionFailed { .. } => Ok(None),
        }
    }

    /// Up to `limit` deliveries of index shard `shard` due at `now`, earliest first, without
    /// their bytes (by the index, which lags writes slightly: a take-over or a move checks the
    /// item itself). The pages read cost what the whole items weigh; only their keys and
    /// versions come back.
    pub async fn due_deliveries(
        &self,
        shard: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        const OPERATION: &str = "Query(due deliveries)";
        let mut due = Vec::new();
        if limit == 0 {
            return Ok(due);
        }
        let mut names: HashMap<String, String> = DUE_PROJECTION
            .iter()
            .enumerate()
            .map(|(i, attribute)| (format!("#p{i}"), (*attribute).to_owned()))
            .collect();
        names.insert("#shard".into(), "dueShard".into());
        names.insert("#due".into(), "dueAt".into());
        let projection = (0..DUE_PROJECTION.len())
            .map(|i| format!("#p{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("#shard = :shard AND #due <= :now")
            .projection_expression(projection)
            .set_expression_attribute_names(Some(names))
            .expression_attribute_values(":shard", s(shard))
            .expression_attribute_values(":now", n(now))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        query_items(OPERATION, query, |item| {
            due.push(DueDelivery::from_item(OPERATION, &item)?);
            Ok(if due.len() < limit {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            })
        })
        .await?;
        Ok(due)
    }

    /// Where the deliveries of `user`'s events `event_ids` to webhook `webhook_id` that exist
    /// stand, without their bytes (strongly consistent; one `BatchGetItem` per 100).
    pub async fn deliveries_to(
        &self,
        user: &UserId,
        webhook_id: &str,
        event_ids: &[&str],
    ) -> Result<Vec<DeliveryStanding>, StoreError> {
        const OPERATION: &str = "BatchGetItem(deliveries)";
        let keys: Vec<Key> = event_ids
            .iter()
            .map(|event_id| Key::delivery(user, event_id, webhook_id))
            .collect();
        self.batch_get_projected(OPERATION, &keys, &STANDING_PROJECTION)
            .await?
            .iter()
            .map(|item| DeliveryStanding::from_item(OPERATION, item))
            .collect()
    }

    /// Makes the delivery `seen` due now as attempt `attempt` (recover), if it still stands as
    /// it was seen: settled, or pending at the same attempt and due time. `false` if it moved
    /// on meanwhile (nothing written).
    pub async fn requeue_delivery(
        &self,
        seen: &DeliveryStanding,
        attempt: u32,
        now: i64,
    ) -> Result<bool, StoreError> {
        const OPERATION: &str = "UpdateItem(requeue delivery)";
        let request = self
            .update(&Key::delivery(&seen.user, &seen.event_id, &seen.webhook_id))
            .update_expression(
                "SET nextAttempt = :next, dueAt = :now, dueShard = :shard, #state = :pending, \
                 expiresAt = :expires, updatedAt = :now",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":next", n(i64::from(attempt)))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":shard", s(&Key::due_shard(&seen.user)))
            .expression_attribute_values(":pending", s(DeliveryState::Pending.as_str()))
            .expression_attribute_values(":expires", n(expires_at(now)))
            .expression_attribute_values(":seen", n(i64::from(seen.next_attempt)));
        let request = match seen.due_at {
            Some(due) => request
                .condition_expression("nextAttempt = :seen AND dueAt = :due")
                .expression_attribute_values(":due", n(due)),
            None => {
                request.condition_expression("nextAttempt = :seen AND attribute_not_exists(dueAt)")
            }
        };
        let result = request.send().await.map(|_| ());
        Ok(conditional(OPERATION, result)?.written())
    }

    /// Creates `delivery` due now (recover, for an event whose delivery item has expired while
    /// its log has not: the bytes come from the log), unless it exists. `false` if it does.
    pub async fn requeue_from_log(
        &self,
        delivery: DeliveryItem,
        now: i64,
    ) -> Result<bool, StoreError> {
        const OPERATION: &str = "PutItem(requeue delivery)";
        let put = self.put_pending(OPERATION, delivery, now, now).await?;
        Ok(put.is_some())
    }

    /// Moves every due delivery of the layout before issue 25, whose `dueShard` was the one
    /// value `DUE` (a partition the sweep no longer reads), into its user's shard, and sets its
    /// expiry from its due time as every write now does (the old one counted from the claim, so
    /// a delivery retried late could have expired while still owed). Each move is conditional on
    /// the old shard, so a second run (or two at once) moves nothing twice. Reads only the old
    /// partition of the due index: an operator's one-off (`sandbox-admin
    /// migrate-webhook-logs`), not a request path. Answers how many it moved.
    pub async fn migrate_legacy_due_deliveries(&self) -> Result<usize, StoreError> {
        const OPERATION: &str = "Query(legacy due deliveries)";
        const MOVE: &str = "UpdateItem(legacy due delivery)";
        let mut moved = 0;
        let mut legacy = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("dueShard = :legacy")
            .expression_attribute_values(":legacy", s(LEGACY_DUE_SHARD))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = legacy.next().await {
            let item = item.map_err(|e| StoreError::from_sdk(OPERATION, e))?;
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
            let (Some(pk), Some(sk)) = (text("pk"), text("sk")) else {
                continue;
            };
            let Some(user) = ItemKind::Delivery.id_of(pk) else {
                continue;
            };
            let due = item
                .get("dueAt")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| StoreError::corrupt(OPERATION, "a due delivery without dueAt"))?;
            let key = Key {
                pk: pk.to_owned(),
                sk: sk.to_owned(),
            };
            let result = self
                .update(&key)
                .update_expression("SET dueShard = :shard, #ttl = :expires")
                .condition_expression("dueShard = :legacy")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":shard", s(&Key::due_shard(&UserId::new(user))))
                .expression_attribute_values(":expires", n(expires_at(due)))
                .expression_attribute_values(":legacy", s(LEGACY_DUE_SHARD))
                .send()
                .await;
            if conditional(MOVE, result)?.written() {
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Every delivery of `user`'s webhooks, as they stand (tools and benchmarks).
    pub async fn deliveries_of(&self, user: &UserId) -> Result<Vec<DeliveryItem>, StoreError> {
        const OPERATION: &str = "Query(deliveries)";
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&Key::deliveries(user)))
            .consistent_read(true);
        let mut found = Vec::new();
        query_items(OPERATION, query, |item| {
            found.push(DeliveryItem::from_item(OPERATION, &item)?);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(found)
    }

    /// The delivery of `event_id` to `user`'s webhook `webhook_id`, as it stands.
    pub async fn delivery(
        &self,
        user: &UserId,
        event_id: &str,
        webhook_id: &str,
    ) -> Result<Option<DeliveryItem>, StoreError> {
        const OPERATION: &str = "GetItem(delivery)";
        let item = self
            .get(OPERATION, &Key::delivery(user, event_id, webhook_id), true)
            .await?;
        item.map(|i| DeliveryItem::from_item(OPERATION, &i))
            .transpose()
    }
}
