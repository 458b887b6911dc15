//! An API user's outbound webhooks, their per-user counter, and the rate of test and redeliver.
//!
//! A user's webhooks share one partition (`WEBHOOKS#<userId>`) with the counter of how many
//! there are (`COUNT`). A create puts the webhook and adds one to the counter, if it is below
//! the limit, in one transaction, and a delete takes one off in the delete's transaction: the
//! limit holds under any concurrency without a read first. Concurrent creates of one user meet
//! on the counter; a transaction that only conflicted is tried again. The same partition holds
//! the count of test and redeliver attempts of each minute. The delivery log is
//! `delivery_log`'s.

use std::collections::HashMap;
use std::ops::ControlFlow;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};

use super::{
    conditional, n, query_items, s, transact_retrying, Backoff, Item, ItemKind, Key, Reason, Store,
    StoreError, Transact, Write,
};
use crate::session::UserId;
use crate::webhooks::{
    PreviousSecret, Webhook, WebhookChanges, WebhookId, MAX_CONSECUTIVE_FAILURES,
    SECRET_OVERLAP_SECONDS,
};

/// How often a create or delete that only met another transaction on the counter is tried.
const CONFLICT_ATTEMPTS: u32 = 12;
/// Concurrent creates of one user all touch the counter: waits of 20 ms a try, plus up to 50.
const CONFLICT_BACKOFF: Backoff = Backoff {
    attempts: CONFLICT_ATTEMPTS,
    step_ms: 20,
    jitter_ms: 50,
};

/// What a create did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Created {
    /// The webhook is stored and counted.
    Created,
    /// The user has the most webhooks allowed: nothing was written.
    LimitReached,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Removed {
    /// The webhook is gone and no longer counted.
    Removed,
    /// The user has no webhook with that id: nothing changed.
    NotFound,
}

/// What taking some of a user's attempts of a minute (test, redeliver, recover) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct AttemptUnits {
    /// How many were taken: as many as asked, or as many as the minute had left (0 once the
    /// user has started the most attempts allowed this minute: nothing was counted).
    pub granted: i64,
    /// The minute's count after this (the limit, when nothing was left).
    pub used: i64,
}

/// The stored shape of a webhook.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookItem {
    pk: String,
    sk: String,
    webhook_id: String,
    name: String,
    url: String,
    secret: String,
    /// The secret the latest rotation replaced, and when it stops signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_secret_until: Option<i64>,
    events: Vec<String>,
    is_active: bool,
    /// The JSON object text, in the order the user gave.
    #[serde(default)]
    custom_headers: String,
    #[serde(default)]
    disabled_resource_groups: Vec<String>,
    #[serde(default)]
    failure_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_fired_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

fn headers_text(pairs: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn webhook_from_item(operation: &'static str, item: Item) -> Result<Webhook, StoreError> {
    let raw: WebhookItem = serde_dynamo::from_item(item)
        .map_err(|e| StoreError::corrupt(operation, format!("undecodable webhook item: {e}")))?;
    let id = WebhookId::parse(&raw.webhook_id)
        .ok_or_else(|| StoreError::corrupt(operation, "webhook item with a malformed id"))?;
    let custom_headers = match serde_json::from_str::<serde_json::Value>(&raw.custom_headers) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
            .collect(),
        _ => Vec::new(),
    };
    let previous_secret = match (raw.previous_secret, raw.previous_secret_until) {
        (Some(secret), Some(until)) => Some(PreviousSecret { secret, until }),
        _ => None,
    };
    Ok(Webhook {
        id,
        name: raw.name,
        url: raw.url,
        secret: raw.secret,
        previous_secret,
        events: raw.events,
        is_active: raw.is_active,
        custom_headers,
        disabled_resource_groups: raw.disabled_resource_groups,
        failure_count: raw.failure_count,
        last_fired_at: raw.last_fired_at,
        created_at: raw.created_at,
        updated_at: raw.updated_at,
    })
}

impl Store {
    /// Stores `webhook` for `user` and counts it, unless `user` has `limit` webhooks already.
    pub async fn create_webhook(
        &self,
        user: &UserId,
        webhook: &Webhook,
        limit: i64,
    ) -> Result<Created, StoreError> {
        const OPERATION: &str = "TransactWriteItems(create webhook)";
        let build = |e: BuildError| StoreError::corrupt(OPERATION, e.to_string());
        let key = Key::webhook(user, webhook.id.as_str());
        let stored = WebhookItem {
            pk: key.pk,
            sk: key.sk,
            webhook_id: webhook.id.as_str().to_owned(),
            name: webhook.name.clone(),
            url: webhook.url.clone(),
            secret: webhook.secret.clone(),
            previous_secret: None,
            previous_secret_until: None,
            events: webhook.events.clone(),
            is_active: webhook.is_active,
            custom_headers: headers_text(&webhook.custom_headers),
            disabled_resource_groups: webhook.disabled_resource_groups.clone(),
            failure_count: webhook.failure_count,
            last_fired_at: webhook.last_fired_at,
            created_at: webhook.created_at,
            updated_at: webhook.updated_at,
        };
        let item: Item = serde_dynamo::to_item(stored)
            .map_err(|e| StoreError::corrupt(OPERATION, e.to_string()))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        let count = self
            .count_change(user, 1)
            .condition_expression("attribute_not_exists(#c) OR #c < :limit")
            .expression_attribute_values(":limit", n(limit))
            .build()
            .map_err(build)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match transact_retrying(self, OPERATION, items, CONFLICT_BACKOFF).await? {
            Transact::Done => Ok(Created::Created),
            Transact::Cancelled(reasons) => match reasons.get(1) {
                Some(Reason::ConditionFailed(_)) => Ok(Created::LimitReached),
                // A random id of 131 bits taken: not expected; nothing was written.
                _ => Err(StoreError::corrupt(
                    OPERATION,
                    "the new webhook id is taken",
                )),
            },
        }
    }

    /// The counter's part of a create's (`+1`) or a delete's (`-1`) transaction.
    fn count_change(&self, user: &UserId, delta: i64) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(Key::webhook_counter(user).item()))
            .update_expression("ADD #c :delta")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":delta", n(delta))
    }

    /// `user`'s webhooks, oldest first (strongly consistent: a create is seen at once).
    pub async fn webhooks(&self, user: &UserId) -> Result<Vec<Webhook>, StoreError> {
        const OPERATION: &str = "Query(webhooks)";
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(&Key::webhooks(user)))
            .expression_attribute_values(":prefix", s(ItemKind::Webhook.sort_key()))
            .consistent_read(true);
        let mut hooks = Vec::new();
        query_items(OPERATION, query, |item| {
            hooks.push(webhook_from_item(OPERATION, item)?);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        hooks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(hooks)
    }

    /// `user`'s webhook `id`, if there is one (strongly consistent).
    pub async fn webhook(
        &self,
        user: &UserId,
        id: &WebhookId,
    ) -> Result<Option<Webhook>, StoreError> {
        const OPERATION: &str = "GetItem(webhook)";
        let item = self
            .get(OPERATION, &Key::webhook(user, id.as_str()), true)
            .await?;
        item.map(|i| webhook_from_item(OPERATION, i)).transpose()
    }

    /// Applies `changes` to `user`'s webhook `id` at `now`: the webhook as it is now, or
    /// `None` if the user has no such webhook (nothing written).
    ///
    /// A new `secret` rotates: in the same write, the secret it replaces becomes
    /// `previousSecret`, signing beside it for [`SECRET_OVERLAP_SECONDS`] (DynamoDB reads
    /// every operand of an update expression before the update, so no read comes first). A
    /// `secret` equal to the current one changes nothing about the secrets, so a client that
    /// sends the whole webhook back on every update never cuts the previous secret's day short:
    /// the rotating write is conditional on the secret differing, and when it is the same the
    /// update is made again without it.
    pub async fn update_webhook(
        &self,
        user: &UserId,
        id: &WebhookId,
        changes: &WebhookChanges,
        now: i64,
    ) -> Result<Option<Webhook>, StoreError> {
        if changes.secret.is_some() {
            if let Some(rotated) = self.write_webhook_changes(user, id, changes, now).await? {
                return Ok(Some(rotated));
            }
            // No such webhook, or the secret it already has: the rest of the changes alone.
            let unchanged = WebhookChanges {
                secret: None,
                ..changes.clone()
            };
            return self.write_webhook_changes(user, id, &unchanged, now).await;
        }
        self.write_webhook_changes(user, id, changes, now).await
    }

    /// One conditional `UpdateItem` of [`Self::update_webhook`]: `None` if its condition failed
    /// (no such webhook; with a `secret`, also one that already has it).
    async fn write_webhook_changes(
        &self,
        user: &UserId,
        id: &WebhookId,
        changes: &WebhookChanges,
        now: i64,
    ) -> Result<Option<Webhook>, StoreError> {
        const OPERATION: &str = "UpdateItem(webhook)";
        let mut sets = vec!["updatedAt = :now".to_owned()];
        let mut values: HashMap<String, AttributeValue> = HashMap::from([(":now".into(), n(now))]);
        let mut names: HashMap<String, String> = HashMap::new();
        let mut set = |attr: &str, value: AttributeValue| {
            let (name, placeholder) = (format!("#{attr}"), format!(":{attr}"));
            sets.push(format!("{name} = {placeholder}"));
            names.insert(name, attr.to_owned());
            values.insert(placeholder, value);
        };
        if let Some(name) = &changes.name {
            set("name", s(name));
        }
        if let Some(url) = &changes.url {
            set("url", s(url));
        }
        if let Some(secret) = &changes.secret {
            set("secret", s(secret));
            set("previousSecretUntil", n(now + SECRET_OVERLAP_SECONDS));
        }
        if let Some(events) = &changes.events {
            set(
                "events",
                AttributeValue::L(events.iter().map(|e| s(e)).collect()),
            );
        }
        if let Some(active) = changes.is_active {
            set("isActive", AttributeValue::Bool(active));
            // Turned on again: the count of failures starts over.
            if active {
                set("failureCount", n(0));
            }
        }
        if let Some(headers) = &changes.custom_headers {
            set("customHeaders", s(&headers_text(headers)));
        }
        if let Some(groups) = &changes.disabled_resource_groups {
            set(
                "disabledResourceGroups",
                AttributeValue::L(groups.iter().map(|g| s(g)).collect()),
            );
        }
        let mut condition = "attribute_exists(pk)".to_owned();
        if changes.secret.is_some() {
            // The secret before this update, kept as the previous one.
            sets.push("previousSecret = #secret".to_owned());
            condition.push_str(" AND #secret <> :secret");
        }
        let result = self
            .update(&Key::webhook(user, id.as_str()))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(condition)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map(|out| out.attributes);
        match conditional(OPERATION, result)? {
            Write::Written(Some(item)) => Ok(Some(webhook_from_item(OPERATION, item)?)),
            Write::Written(None) => Err(StoreError::corrupt(OPERATION, "no item returned")),
            Write::ConditionFailed { .. } => Ok(None),
        }
    }

    /// Deletes `user`'s webhook `id` and takes it off the count, in one transaction.
    pub async fn delete_webhook(
        &self,
        user: &UserId,
        id: &WebhookId,
    ) -> Result<Removed, StoreError> {
        const OPERATION: &str = "TransactWriteItems(delete webhook)";
        let build = |e: BuildError| StoreError::corrupt(OPERATION, e.to_string());
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Key::webhook(user, id.as_str()).item()))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build)?;
        let count = self.count_change(user, -1).build().map_err(build)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        Ok(
            match transact_retrying(self, OPERATION, items, CONFLICT_BACKOFF).await? {
                Transact::Done => Removed::Removed,
                Transact::Cancelled(_) => Removed::NotFound,
            },
        )
    }

    /// Counts `wanted` attempts `user` starts (or queues) now with test, redeliver or recover,
    /// as many of them as the minute has left below `limit`: one conditional update of the
    /// minute's counter, which expires a minute after the minute ends. When not all of them
    /// fit, the count is read and the rest taken, again conditionally (a few rounds at most:
    /// each one that fails found the count grown).
    pub async fn take_webhook_attempts(
        &self,
        user: &UserId,
        now: i64,
        limit: i64,
        wanted: i64,
    ) -> Result<AttemptUnits, StoreError> {
        const ROUNDS: usize = 4;
        let key = Key::webhook_attempts(user, now);
        let mut asked = wanted.clamp(0, limit);
        for _ in 0..ROUNDS {
            if let Some(used) = self.add_webhook_attempts(&key, now, asked, limit).await? {
                return Ok(AttemptUnits {
                    granted: asked,
                    used,
                });
            }
            // One attempt that did not fit: the minute is full (the answer test and redeliver
            // need, at one request).
            if asked <= 1 {
                break;
            }
            let used = self.webhook_attempts_used(&key).await?;
            asked = asked.min(limit - used);
            if asked <= 0 {
                break;
            }
        }
        Ok(AttemptUnits {
            granted: 0,
            used: limit,
        })
    }

    /// Gives back `unused` attempts of the minute of `now` that `user` took but did not start.
    pub async fn give_back_webhook_attempts(
        &self,
        user: &UserId,
        now: i64,
        unused: i64,
    ) -> Result<(), StoreError> {
        const OPERATION: &str = "UpdateItem(webhook attempt rate back)";
        if unused <= 0 {
            return Ok(());
        }
        let result = self
            .update(&Key::webhook_attempts(user, now))
            .update_expression("ADD #c :minus")
            .condition_expression("#c >= :unused")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":minus", n(-unused))
            .expression_attribute_values(":unused", n(unused))
            .send()
            .await;
        let _ = conditional(OPERATION, result)?;
        Ok(())
    }

    /// `ADD count :asked` on the minute's counter if the count stays within `limit`: the count
    /// after it, or `None` (nothing counted) if it would not.
    async fn add_webhook_attempts(
        &self,
        key: &Key,
        now: i64,
        asked: i64,
        limit: i64,
    ) -> Result<Option<i64>, StoreError> {
        const OPERATION: &str = "UpdateItem(webhook attempt rate)";
        let result = self
            .update(key)
            .update_expression("ADD #c :asked SET #ttl = :expires")
            .condition_expression("attribute_not_exists(#c) OR #c <= :room")
            .expression_attribute_names("#c", "count")
            .expression_attribute_names("#ttl", super::TTL_ATTRIBUTE)
            .expression_attribute_values(":asked", n(asked))
            .expression_attribute_values(":room", n(limit - asked))
            .expression_attribute_values(
                ":expires",
                n(crate::limits::next_minute(now) + crate::limits::SECONDS_PER_MINUTE),
            )
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map(|out| out.attributes);
        Ok(match conditional(OPERATION, result)? {
            Write::Written(attributes) => {
                Some(count_of(attributes.as_ref(), "count").unwrap_or(limit))
            }
            Write::ConditionFailed { .. } => None,
        })
    }

    /// The minute's count of attempts (strongly consistent).
    async fn webhook_attempts_used(&self, key: &Key) -> Result<i64, StoreError> {
        const OPERATION: &str = "GetItem(webhook attempt rate)";
        let item = self.get(OPERATION, key, true).await?;
        Ok(count_of(item.as_ref(), "count").unwrap_or(0))
    }

    /// Records what an attempt means for the webhook: a success sets `lastFiredAt` and resets
    /// `failureCount`; a 410 turns it off. Nothing if it was deleted meanwhile.
    pub async fn record_webhook_outcome(
        &self,
        user: &UserId,
        id: &WebhookId,
        outcome: WebhookOutcome,
        now: i64,
    ) -> Result<(), StoreError> {
        const OPERATION: &str = "UpdateItem(webhook outcome)";
        let request = self
            .update(&Key::webhook(user, id.as_str()))
            .condition_expression("attribute_exists(pk)");
        let request = match outcome {
            WebhookOutcome::Delivered => request
                .update_expression("SET lastFiredAt = :now, failureCount = :zero")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":zero", n(0)),
            WebhookOutcome::Gone => request
                .update_expression("SET isActive = :off, updatedAt = :now")
                .expression_attribute_values(":off", AttributeValue::Bool(false))
                .expression_attribute_values(":now", n(now)),
        };
        let result = request.send().await.map(|_| ());
        let _ = conditional(OPERATION, result)?;
        Ok(())
    }

    /// Counts a delivery to `user`'s webhook `id` that failed for good (its last attempt
    /// failed), and turns the webhook off once [`MAX_CONSECUTIVE_FAILURES`] such failures
    /// follow one another (a success resets the count). `true` if this turned it off.
    pub async fn count_terminal_failure(
        &self,
        user: &UserId,
        id: &WebhookId,
        now: i64,
    ) -> Result<bool, StoreError> {
        const OPERATION: &str = "UpdateItem(webhook failure)";
        let key = Key::webhook(user, id.as_str());
        let result = self
            .update(&key)
            .update_expression("SET failureCount = if_not_exists(failureCount, :zero) + :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map(|out| out.attributes);
        let count = match conditional(OPERATION, result)? {
            Write::Written(attributes) => {
                count_of(attributes.as_ref(), "failureCount").unwrap_or(0)
            }
            // Deleted meanwhile.
            Write::ConditionFailed { .. } => return Ok(false),
        };
        if count < MAX_CONSECUTIVE_FAILURES {
            return Ok(false);
        }
        // Conditional on the count as it stands: a success in between reset it, and then the
        // webhook stays on.
        const OFF: &str = "UpdateItem(webhook off after failures)";
        let result = self
            .update(&key)
            .update_expression("SET isActive = :off, updatedAt = :now")
            .condition_expression("failureCount >= :max AND isActive = :on")
            .expression_attribute_values(":off", AttributeValue::Bool(false))
            .expression_attribute_values(":on", AttributeValue::Bool(true))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":max", n(MAX_CONSECUTIVE_FAILURES))
            .send()
            .await;
        Ok(conditional(OFF, result)?.written())
    }
}

/// What an attempt means for its webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Delivered: `lastFiredAt` now, `failureCount` back to 0.
    Delivered,
    /// 410 Gone: the webhook is turned off.
    Gone,
}

/// The number attribute `name` of `item`, if it has one.
fn count_of(item: Option<&Item>, name: &str) -> Option<i64> {
    item.and_then(|i| i.get(name))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}
