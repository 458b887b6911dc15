//! Deliveries of events to webhooks: one item per (event, webhook), the outbox's other half.
//!
//! `WHDLV#<userId>` / `DLV#<eventId>#<webhookId>` holds the exact bytes to send, the number of
//! the next attempt and the state. Its conditional creation is the claim: a stream record
//! processed twice, or by two invocations at once, creates it once, so each webhook gets one
//! delivery of each event.
//!
//! An item that is due carries `dueShard` (always [`DUE_SHARD`]) and `dueAt`, the keys of the
//! sparse index [`DUE_INDEX`], which the sweep reads every minute: a retry waiting for its
//! time, and also a delivery being attempted right now, whose `dueAt` is the end of its lease.
//! If the invocation holding the lease dies, the sweep finds the item once the lease is over
//! and makes the attempt. A settled delivery (delivered, failed for good, gone, cancelled)
//! drops both attributes and leaves the index. Every change after the claim is conditional on
//! the `nextAttempt` and `dueAt` its holder saw, so two holders never both act on one item.

use std::collections::HashMap;
use std::ops::ControlFlow;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    conditional, n, query_items, s, Item, ItemKind, Key, Store, StoreError, Write, TTL_ATTRIBUTE,
};
use super::{DUE_INDEX, DUE_SHARD};
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
}

impl DeliveryItem {
    fn key(&self) -> Key {
        Key::delivery(&self.user, &self.event_id, &self.webhook_id)
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
            item.insert("dueShard".into(), s(DUE_SHARD));
            item.insert("dueAt".into(), n(due));
        }
        item.insert("createdAt".into(), n(now));
        item.insert("updatedAt".into(), n(now));
        // Kept as long as the log: long past the last retry (about two days) and the stream's
        // 24 hours, in which a record may come again and must find its claim.
        item.insert(TTL_ATTRIBUTE.into(), n(now + LOG_RETENTION_SECONDS));
        item
    }

    fn from_item(operation: &'static str, item: &Item) -> Result<Self, StoreError> {
        let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
        let number = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let corrupt = |what: &str| StoreError::corrupt(operation, format!("delivery item {what}"));
        let user = text("userId")
            .map(UserId::new)
            .ok_or_else(|| corrupt("without a user"))?;
        Ok(Self {
            user,
            webhook_id: text("webhookId")
                .ok_or_else(|| corrupt("without a webhook"))?
                .clone(),
            event_id: text("eventId")
                .ok_or_else(|| corrupt("without an event id"))?
                .clone(),
            event: text("event").cloned().unwrap_or_default(),
            payload: item
                .get("payload")
                .and_then(|v| v.as_b().ok())
                .map(|b| b.clone().into_inner())
                .ok_or_else(|| corrupt("without a payload"))?,
            next_attempt: number("nextAttempt")
                .and_then(|a| u32::try_from(a).ok())
                .ok_or_else(|| corrupt("without an attempt number"))?,
            due_at: number("dueAt"),
            state: text("state")
                .and_then(|s| DeliveryState::parse(s))
                .ok_or_else(|| corrupt("without a state"))?,
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
            due_at: Some(lease_until),
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
        Ok(match conditional(OPERATION, result)? {
            Write::Written(_) => Claim::Claimed(delivery),
            Write::ConditionFailed { .. } => Claim::Exists,
        })
    }

    /// Takes over a due delivery, as the sweep found it, until `lease_until`: `None` if it
    /// changed since (another sweep took it, or its holder finished it).
    pub async fn take_due_delivery(
        &self,
        seen: &DeliveryItem,
        lease_until: i64,
    ) -> Result<Option<DeliveryItem>, StoreError> {
        const OPERATION: &str = "UpdateItem(take due delivery)";
        let Some(due) = seen.due_at else {
            return Ok(None);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(seen.key().item()))
            .update_expression("SET dueAt = :lease")
            .condition_expression("nextAttempt = :n AND dueAt = :due")
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":n", n(i64::from(seen.next_attempt)))
            .expression_attribute_values(":due", n(due))
            .send()
            .await;
        Ok(match conditional(OPERATION, result)? {
            Write::Written(_) => Some(DeliveryItem {
                due_at: Some(lease_until),
                ..seen.clone()
            }),
            Write::ConditionFailed { .. } => None,
        })
    }

    /// Records what follows the attempt (or deferral) of `held`, which the caller holds: a
    /// retry at a time, or the end. `false` if the caller no longer held it (its lease ran out
    /// and the sweep took it over): nothing changed.
    pub async fn finish_delivery(
        &self,
        held: &DeliveryItem,
        next: Next,
        now: i64,
    ) -> Result<bool, StoreError> {
        const OPERATION: &str = "UpdateItem(finish delivery)";
        let Some(lease) = held.due_at else {
            return Ok(false);
        };
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":n".to_owned(), n(i64::from(held.next_attempt))),
            (":lease".to_owned(), n(lease)),
            (":now".to_owned(), n(now)),
        ]);
        let expression = match next {
            Next::Retry { attempt, at } => {
                values.insert(":next".into(), n(i64::from(attempt)));
                values.insert(":at".into(), n(at));
                "SET nextAttempt = :next, dueAt = :at, updatedAt = :now"
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
            .set_key(Some(held.key().item()))
            .update_expression(expression)
            .condition_expression("nextAttempt = :n AND dueAt = :lease")
            .set_expression_attribute_values(Some(values));
        if matches!(next, Next::Settle(_)) {
            request = request.expression_attribute_names("#state", "state");
        }
        let result = request.send().await;
        Ok(conditional(OPERATION, result)?.written())
    }

    /// Up to `limit` deliveries due at `now` (by the index, which lags writes slightly: a
    /// take-over checks the item itself), earliest first.
    pub async fn due_deliveries(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryItem>, StoreError> {
        const OPERATION: &str = "Query(due deliveries)";
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("dueShard = :shard AND dueAt <= :now")
            .expression_attribute_values(":shard", s(DUE_SHARD))
            .expression_attribute_values(":now", n(now))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        let mut due = Vec::new();
        if limit == 0 {
            return Ok(due);
        }
        query_items(OPERATION, query, |item| {
            due.push(DeliveryItem::from_item(OPERATION, &item)?);
            Ok(if due.len() < limit {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            })
        })
        .await?;
        Ok(due)
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
