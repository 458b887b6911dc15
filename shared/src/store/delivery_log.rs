//! The delivery log: one entry per attempt to a user's webhooks, kept 30 days, read a page at a
//! time whatever its size.
//!
//! Everything lives in the user's partition `WHLOG#<userId>`. An attempt writes, in one
//! `TransactWriteItems`:
//! - the entry itself, `ATTEMPT#<eventId>#<webhookId>#<attempt>`, with the exact bytes sent and
//!   the first 10 KB of the answer, put only if that attempt number is free: two attempts (two
//!   redeliveries at once, a retry beside a redelivery) never share a number or an entry;
//! - three small index items that name it, each in the order one listing reads:
//!   `BYTIME#<time>#…` (the user's log, newest first), `BYHOOK#<webhookId>#<time>#…` (one
//!   webhook's), `BYEVENT#<eventId>#<webhookId>#<attempt>` (one event's);
//! - the entry's count in its day, on two counters of its webhook: `BYTIME#~<webhookId>` and
//!   `BYHOOK#<webhookId>#~`. Each sorts after its index's entries (`~` after the digits of a
//!   time), so the backward `Query` that reads a page of the index reads the counts first, in
//!   the same request. One counter per webhook rather than one per user: a user's webhooks are
//!   written by as many queues at once, and transactions on one item would conflict.
//!
//! Entries are shown for the day of the attempt and the 30 UTC days after it (so every entry for
//! at least 30 days); `expiresAt` is the end of that, so a day's counts and its entries leave
//! together and `pagination.total` is exact. A page is then one `Query` of small index items
//! (the page's `skip` and `limit`, and the counts) and one `BatchGetItem` of its entries; a
//! page of one event's entries reads all of that event's index items (one request for some
//! thousands). Only the `event` and `status` filters without an `eventId` read the scope's
//! whole index (about 5,000 index items per request, as a deep `skip` does) to find and count
//! their matches.

use std::ops::ControlFlow;

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::{
    n, query_items, s, transact_retrying, Backoff, Item, ItemKind, Key, Reason, Store, StoreError,
    Transact, TTL_ATTRIBUTE,
};
use crate::limits::utc_day;
use crate::session::UserId;
use crate::webhooks::{
    log_expires_at, log_window_start, LogEntry, LogFilter, LogStatus, RecoverWindow,
    LOG_RETENTION_DAYS,
};

/// The `sk` prefix of every entry.
const ATTEMPT: &str = "ATTEMPT#";
/// The `sk` prefix of an entry of the layout before issue 25, which
/// [`Store::migrate_legacy_webhook_logs`] moves.
const LEGACY_ENTRY: &str = "LOG#";
/// The `sk` prefix of the user's index, newest first.
const BY_TIME: &str = "BYTIME#";
/// The `sk` prefix of one webhook's index.
const BY_HOOK: &str = "BYHOOK#";
/// The `sk` prefix of one event's index.
const BY_EVENT: &str = "BYEVENT#";
/// Sorts after every digit: a counter's place at the newest end of its index.
const COUNTER: char = '~';

/// Attempt numbers are written with this many digits, so they sort as numbers.
const ATTEMPT_DIGITS: usize = 6;
/// The largest attempt number.
const MAX_ATTEMPT: u32 = 999_999;
/// How many taken attempt numbers one write steps over before it gives up: more concurrent
/// attempts of one event to one webhook than the per-user rate lets anyone start.
const RENUMBERINGS: u32 = 64;
/// More counters than this in a user's index cost the page read a second request (a user's
/// webhooks of the last 31 days, deleted ones included).
const COUNTER_MARGIN: usize = 64;
/// Days of counts removed from a counter on each write, past the window: a day's count is
/// removed by the first write a month later (one number per day stays when a week passes
/// without one, never read).
const STALE_DAYS_REMOVED: i64 = 7;

/// Transactions of one webhook's attempts meet on its two counters (a queue, tests,
/// redeliveries): waits of 15 ms a try, plus up to 40.
const LOG_BACKOFF: Backoff = Backoff {
    attempts: 16,
    step_ms: 15,
    jitter_ms: 40,
};

/// One page of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The entries of the page, newest first.
    pub entries: Vec<LogEntry>,
    /// How many entries match the filters in all.
    pub total: usize,
}

/// One attempt as its webhook's index item names it: enough to tell, without the entry, which
/// event's latest attempt failed (recover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedAttempt {
    /// The event's id.
    pub event_id: String,
    /// The event's name.
    pub event: String,
    /// The attempt's number.
    pub attempt: u32,
    /// How it went.
    pub status: LogStatus,
    /// When it was made (epoch seconds).
    pub at: i64,
}

impl IndexedAttempt {
    fn from_index(
        operation: &'static str,
        scope: Scope<'_>,
        item: &Item,
    ) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str| StoreError::corrupt(operation, format!("an index item's {what}"));
        let key = scope.entry_of(sk_of(item)).ok_or_else(|| corrupt("key"))?;
        let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
        Ok(Self {
            event_id: key.event_id.to_owned(),
            event: text("event").cloned().unwrap_or_default(),
            attempt: key.attempt,
            status: text("status")
                .and_then(|s| LogStatus::parse(s))
                .ok_or_else(|| corrupt("status"))?,
            at: number(item, "createdAt").ok_or_else(|| corrupt("time"))?,
        })
    }
}

/// The log a listing reads: the user's, one webhook's, or one event's.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    /// The user's whole log.
    User,
    /// One webhook's entries.
    Webhook(&'a str),
    /// One event's entries.
    Event(&'a str),
}

impl<'s> Scope<'s> {
    /// The `sk` prefix of the scope's index items (and of its counters).
    fn prefix(self) -> String {
        match self {
            Self::User => BY_TIME.to_owned(),
            Self::Webhook(id) => format!("{BY_HOOK}{id}#"),
            Self::Event(id) => format!("{BY_EVENT}{id}#"),
        }
    }

    /// The `sk` of the scope's index item for an attempt.
    fn index_sk(self, at: i64, entry: &AttemptKey<'_>) -> String {
        let AttemptKey {
            event_id,
            webhook_id,
            attempt,
        } = entry;
        let attempt = format!("{attempt:0ATTEMPT_DIGITS$}");
        match self {
            Self::User => format!("{BY_TIME}{at:010}#{event_id}#{webhook_id}#{attempt}"),
            Self::Webhook(_) => format!("{}{at:010}#{event_id}#{attempt}", self.prefix()),
            Self::Event(_) => format!("{}{webhook_id}#{attempt}", self.prefix()),
        }
    }

    /// The entry an index item of this scope names, read back from its `sk`.
    fn entry_of<'a>(self, sk: &'a str) -> Option<AttemptKey<'a>>
    where
        's: 'a,
    {
        let rest = sk.strip_prefix(self.prefix().as_str())?;
        let parts: Vec<&str> = rest.split('#').collect();
        let (event_id, webhook_id, attempt) = match (self, parts.as_slice()) {
            (Self::User, [_, event, hook, attempt]) => (*event, *hook, *attempt),
            (Self::Webhook(hook), [_, event, attempt]) => (*event, hook, *attempt),
            (Self::Event(event), [hook, attempt]) => (event, *hook, *attempt),
            _ => return None,
        };
        Some(AttemptKey {
            event_id,
            webhook_id,
            attempt: attempt.parse().ok()?,
        })
    }

    /// The `sk` of the counter of `webhook_id`'s entries in this scope (the event scope has
    /// none: an event's entries are counted as they are read).
    fn counter_sk(self, webhook_id: &str) -> Option<String> {
        match self {
            Self::User => Some(format!("{BY_TIME}{COUNTER}{webhook_id}")),
            Self::Webhook(_) => Some(format!("{}{COUNTER}", self.prefix())),
            Self::Event(_) => None,
        }
    }
}

/// What names one entry: its event, its webhook, its attempt number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AttemptKey<'a> {
    event_id: &'a str,
    webhook_id: &'a str,
    attempt: u32,
}

impl AttemptKey<'_> {
    /// The entry's `sk`.
    fn sk(&self) -> String {
        format!(
            "{ATTEMPT}{}#{}#{:0ATTEMPT_DIGITS$}",
            self.event_id, self.webhook_id, self.attempt
        )
    }
}

/// The attribute of a counter that holds the count of the UTC day `day`.
fn day_attribute(day: i64) -> String {
    format!("d{day}")
}

/// Whether an id can be a part of a key: the ids this service makes never hold `#`, and a
/// filter that does names nothing.
fn key_safe(id: &str) -> bool {
    !id.is_empty() && !id.contains('#')
}

/// The whole entry, as `ATTEMPT#…` holds it.
fn entry_item(user: &UserId, entry: &LogEntry, key: &AttemptKey<'_>) -> Item {
    let mut item = Key::log(user, key.sk()).item();
    item.insert("webhookId".into(), s(&entry.webhook_id));
    item.insert("webhookName".into(), s(&entry.webhook_name));
    item.insert("eventId".into(), s(&entry.event_id));
    item.insert("event".into(), s(&entry.event));
    item.insert("url".into(), s(&entry.url));
    item.insert("status".into(), s(entry.status.as_str()));
    if let Some(code) = entry.status_code {
        item.insert("statusCode".into(), n(i64::from(code)));
    }
    item.insert(
        "requestPayload".into(),
        AttributeValue::B(Blob::new(entry.request_payload.clone())),
    );
    item.insert("responseBody".into(), s(&entry.response_body));
    if let Some(error) = &entry.error_message {
        item.insert("errorMessage".into(), s(error));
    }
    item.insert("attemptNumber".into(), n(i64::from(key.attempt)));
    item.insert(
        "responseTime".into(),
        n(i64::try_from(entry.response_time_ms).unwrap_or(i64::MAX)),
    );
    item.insert("createdAt".into(), n(entry.created_at));
    item.insert(TTL_ATTRIBUTE.into(), n(log_expires_at(entry.created_at)));
    item
}

/// An index item: its key, what the `event` and `status` filters read, and when.
fn index_item(user: &UserId, sk: String, entry: &LogEntry) -> Item {
    let mut item = Key::log(user, sk).item();
    item.insert("event".into(), s(&entry.event));
    item.insert("status".into(), s(entry.status.as_str()));
    item.insert("createdAt".into(), n(entry.created_at));
    item.insert(TTL_ATTRIBUTE.into(), n(log_expires_at(entry.created_at)));
    item
}

fn entry_from_item(operation: &'static str, item: &Item) -> Result<LogEntry, StoreError> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let status = text("status")
        .as_deref()
        .and_then(LogStatus::parse)
        .ok_or_else(|| StoreError::corrupt(operation, "log entry without a status"))?;
    Ok(LogEntry {
        webhook_id: text("webhookId").unwrap_or_default(),
        webhook_name: text("webhookName").unwrap_or_default(),
        event_id: text("eventId").unwrap_or_default(),
        event: text("event").unwrap_or_default(),
        url: text("url").unwrap_or_default(),
        status,
        status_code: number(item, "statusCode").and_then(|c| u16::try_from(c).ok()),
        request_payload: item
            .get("requestPayload")
            .and_then(|v| v.as_b().ok())
            .map(|b| b.clone().into_inner())
            .unwrap_or_default(),
        response_body: text("responseBody").unwrap_or_default(),
        error_message: text("errorMessage"),
        attempt_number: number(item, "attemptNumber")
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(1),
        response_time_ms: number(item, "responseTime")
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(0),
        created_at: number(item, "createdAt").unwrap_or(0),
    })
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn sk_of(item: &Item) -> &str {
    item.get("sk")
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

/// Whether an index item passes the `event` and `status` filters.
fn passes(item: &Item, filter: &LogFilter) -> bool {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str);
    filter
        .event
        .as_deref()
        .is_none_or(|e| text("event") == Some(e))
        && filter
            .status
            .is_none_or(|st| text("status") == Some(st.as_str()))
}

impl Store {
    /// Logs one attempt of `user`'s webhooks (kept 30 days) under the first free attempt number
    /// from `entry.attempt_number` on, with its index items and counts, in one transaction;
    /// answers the number it got.
    pub async fn log_attempt(&self, user: &UserId, entry: &LogEntry) -> Result<u32, StoreError> {
        self.write_log(user, entry, None).await?.ok_or_else(|| {
            StoreError::corrupt(
                "TransactWriteItems(webhook log)",
                "cancelled for no condition",
            )
        })
    }

    /// [`Self::log_attempt`], with `also` (a conditional write) in the same transaction:
    /// `None` when its condition failed, and nothing was written.
    async fn write_log(
        &self,
        user: &UserId,
        entry: &LogEntry,
        also: Option<TransactWriteItem>,
    ) -> Result<Option<u32>, StoreError> {
        const OPERATION: &str = "TransactWriteItems(webhook log)";
        if !key_safe(&entry.event_id) || !key_safe(&entry.webhook_id) {
            return Err(StoreError::corrupt(OPERATION, "an id that cannot be a key"));
        }
        let mut attempt = entry.attempt_number.max(1);
        for _ in 0..RENUMBERINGS {
            if attempt > MAX_ATTEMPT {
                break;
            }
            let key = AttemptKey {
                event_id: &entry.event_id,
                webhook_id: &entry.webhook_id,
                attempt,
            };
            let mut items = self.log_items(user, entry, &key)?;
            items.extend(also.clone());
            match transact_retrying(self, OPERATION, items, LOG_BACKOFF).await? {
                Transact::Done => return Ok(Some(attempt)),
                // Another attempt has this number: the next one.
                Transact::Cancelled(reasons)
                    if matches!(reasons.first(), Some(Reason::ConditionFailed(_))) =>
                {
                    attempt += 1;
                }
                Transact::Cancelled(reasons)
                    if also.is_some()
                        && matches!(reasons.last(), Some(Reason::ConditionFailed(_))) =>
                {
                    return Ok(None)
                }
                Transact::Cancelled(_) => {
                    return Err(StoreError::corrupt(OPERATION, "cancelled for no condition"))
                }
            }
        }
        Err(StoreError::corrupt(
            OPERATION,
            "no free attempt number for this event and webhook",
        ))
    }

    /// Moves every log entry of the layout before issue 25 (`WHLOG#<userId>` /
    /// `LOG#<time>#<eventId>#<webhookId>#<attempt>`, the whole entry in one item, found only by
    /// reading the user's whole log) to this one: each is logged anew, with its index items and
    /// counts, and deleted in the same transaction, so a second run (or two at once) moves
    /// nothing twice. Scans the table: an operator's one-off (`sandbox-admin
    /// migrate-webhook-logs`), not a request path. Answers how many it moved.
    pub async fn migrate_legacy_webhook_logs(&self) -> Result<usize, StoreError> {
        const OPERATION: &str = "Scan(legacy webhook log)";
        let build = |e: BuildError| StoreError::corrupt(OPERATION, e.to_string());
        let mut moved = 0;
        let mut legacy = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :log) AND begins_with(sk, :legacy)")
            .expression_attribute_values(":log", s(ItemKind::WebhookLog.prefix()))
            .expression_attribute_values(":legacy", s(LEGACY_ENTRY))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        // Item by item as the scan reads them: a page in memory at a time.
        while let Some(item) = legacy.next().await {
            let item = item.map_err(|e| StoreError::from_sdk(OPERATION, e))?;
            let pk = item.get("pk").and_then(|v| v.as_s().ok()).cloned();
            let Some(user) = pk.as_deref().and_then(|pk| ItemKind::WebhookLog.id_of(pk)) else {
                continue;
            };
            let user = UserId::new(user);
            let entry = entry_from_item(OPERATION, &item)?;
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Key::log(&user, sk_of(&item).to_owned()).item()))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(build)?;
            let also = TransactWriteItem::builder().delete(delete).build();
            if self.write_log(&user, &entry, Some(also)).await?.is_some() {
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// The transaction of one attempt's log: the entry (if its number is free), its three
    /// index items, and its count on its webhook's two counters.
    fn log_items(
        &self,
        user: &UserId,
        entry: &LogEntry,
        key: &AttemptKey<'_>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        const OPERATION: &str = "TransactWriteItems(webhook log)";
        let build = |e: BuildError| StoreError::corrupt(OPERATION, e.to_string());
        let put = |item: Item, condition: Option<&str>| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(build)
        };
        let day = utc_day(entry.created_at);
        let count = |sk: String| {
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Key::log(user, sk).item()))
                .update_expression(format!(
                    "ADD #today :one SET #ttl = :expires REMOVE {}",
                    (1..=STALE_DAYS_REMOVED)
                        .map(|i| format!("#stale{i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .expression_attribute_names("#today", day_attribute(day))
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":expires", n(log_expires_at(entry.created_at)));
            for i in 1..=STALE_DAYS_REMOVED {
                update = update.expression_attribute_names(
                    format!("#stale{i}"),
                    day_attribute(day - LOG_RETENTION_DAYS - i),
                );
            }
            update
                .build()
                .map(|u| TransactWriteItem::builder().update(u).build())
                .map_err(build)
        };
        let mut items = vec![put(
            entry_item(user, entry, key),
            Some("attribute_not_exists(pk)"),
        )?];
        for scope in [
            Scope::User,
            Scope::Webhook(key.webhook_id),
            Scope::Event(key.event_id),
        ] {
            let sk = scope.index_sk(entry.created_at, key);
            items.push(put(index_item(user, sk, entry), None)?);
            if let Some(counter) = scope.counter_sk(key.webhook_id) {
                items.push(count(counter)?);
            }
        }
        Ok(items)
    }

    /// The entries of `user`'s log that match `filter` at `now`, newest first: those after the
    /// first `skip`, at most `limit`, and how many match in all. Without `event` and `status`
    /// filters: one `Query` of the index (with the counts) and one `BatchGetItem` of the page.
    pub async fn webhook_logs(
        &self,
        user: &UserId,
        filter: &LogFilter,
        skip: usize,
        limit: usize,
        now: i64,
    ) -> Result<LogPage, StoreError> {
        let ids = [filter.event_id.as_deref(), filter.webhook_id.as_deref()];
        if ids.into_iter().flatten().any(|id| !key_safe(id)) {
            return Ok(LogPage {
                entries: Vec::new(),
                total: 0,
            });
        }
        let (page, total) = match (&filter.event_id, &filter.webhook_id) {
            (Some(event), _) => {
                self.event_index(user, event, filter, skip, limit, now)
                    .await?
            }
            (None, Some(hook)) => {
                self.time_index(user, Scope::Webhook(hook), filter, skip, limit, now)
                    .await?
            }
            (None, None) => {
                self.time_index(user, Scope::User, filter, skip, limit, now)
                    .await?
            }
        };
        let keys: Vec<Key> = page.iter().map(|k| Key::log(user, k.clone())).collect();
        let mut found = self
            .batch_get("BatchGetItem(webhook log page)", &keys)
            .await?;
        // In the page's order (the batch answers in any order).
        found.sort_by_key(|item| {
            let sk = sk_of(item);
            page.iter().position(|p| p == sk).unwrap_or(usize::MAX)
        });
        let entries = found
            .iter()
            .map(|item| entry_from_item("BatchGetItem(webhook log page)", item))
            .collect::<Result<_, _>>()?;
        Ok(LogPage { entries, total })
    }

    /// A page of the user's or a webhook's index, newest first, within the window: the `sk`s of
    /// the page's entries, and how many match in all. The counters sort at the index's newest
    /// end, so they come first in the same read.
    async fn time_index(
        &self,
        user: &UserId,
        scope: Scope<'_>,
        filter: &LogFilter,
        skip: usize,
        limit: usize,
        now: i64,
    ) -> Result<(Vec<String>, usize), StoreError> {
        const OPERATION: &str = "Query(webhook log index)";
        let prefix = scope.prefix();
        let counted = filter.event.is_none() && filter.status.is_none();
        let first_day = utc_day(log_window_start(now));
        let wanted = skip.saturating_add(limit);
        let query = self
            .log_query(user, "sk BETWEEN :from AND :to")
            .expression_attribute_values(
                ":from",
                s(&format!("{prefix}{:010}", log_window_start(now))),
            )
            .expression_attribute_values(":to", s(&format!("{prefix}{COUNTER}{COUNTER}")))
            .scan_index_forward(false)
            .limit(i32::try_from(wanted.saturating_add(COUNTER_MARGIN)).unwrap_or(i32::MAX));
        let mut page = Vec::new();
        let mut total = 0usize;
        let mut matched = 0usize;
        query_items(OPERATION, query, |item| {
            let sk = sk_of(&item);
            if sk[prefix.len()..].starts_with(COUNTER) {
                if counted {
                    total += counts_since(&item, first_day);
                }
                return Ok(ControlFlow::Continue(()));
            }
            if !passes(&item, filter) {
                return Ok(ControlFlow::Continue(()));
            }
            if matched >= skip && page.len() < limit {
                let entry = scope
                    .entry_of(sk)
                    .ok_or_else(|| StoreError::corrupt(OPERATION, "an index item's key"))?;
                page.push(entry.sk());
            }
            matched += 1;
            // Counted: stop once the page is full. Filtered: read on, to count every match.
            Ok(if counted && matched >= wanted {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .await?;
        Ok((page, if counted { total } else { matched }))
    }

    /// A page of one event's index, newest first, within the window: the event's index items
    /// are all read (an event has a few attempts per webhook) and counted.
    async fn event_index(
        &self,
        user: &UserId,
        event_id: &str,
        filter: &LogFilter,
        skip: usize,
        limit: usize,
        now: i64,
    ) -> Result<(Vec<String>, usize), StoreError> {
        const OPERATION: &str = "Query(webhook log of an event)";
        let scope = Scope::Event(event_id);
        let query = self
            .log_query(user, "begins_with(sk, :prefix)")
            .expression_attribute_values(":prefix", s(&scope.prefix()));
        let since = log_window_start(now);
        let mut matches: Vec<(i64, String, String)> = Vec::new();
        query_items(OPERATION, query, |item| {
            let at = number(&item, "createdAt").unwrap_or(0);
            let sk = sk_of(&item);
            let entry = scope
                .entry_of(sk)
                .ok_or_else(|| StoreError::corrupt(OPERATION, "an index item's key"))?;
            let webhook = filter.webhook_id.as_deref();
            if at >= since && passes(&item, filter) && webhook.is_none_or(|w| w == entry.webhook_id)
            {
                let order = Scope::User.index_sk(at, &entry);
                matches.push((at, order, entry.sk()));
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        // Newest first, as the user's index orders them.
        matches.sort_by(|a, b| b.1.cmp(&a.1));
        let total = matches.len();
        let page = matches
            .into_iter()
            .skip(skip)
            .take(limit)
            .map(|(_, _, sk)| sk)
            .collect();
        Ok((page, total))
    }

    /// A strongly consistent `Query` of `user`'s log, its `sk` as `sk_condition` says.
    fn log_query(&self, user: &UserId, sk_condition: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!("pk = :pk AND {sk_condition}"))
            .expression_attribute_values(":pk", s(&Key::webhook_logs(user)))
            .consistent_read(true)
    }

    /// The latest logged attempt of event `event_id` to `user`'s webhook `webhook_id` within
    /// the window at `now`: one `Query` of one item.
    pub async fn latest_webhook_log(
        &self,
        user: &UserId,
        webhook_id: &str,
        event_id: &str,
        now: i64,
    ) -> Result<Option<LogEntry>, StoreError> {
        const OPERATION: &str = "Query(latest attempt of an event)";
        if !key_safe(event_id) || !key_safe(webhook_id) {
            return Ok(None);
        }
        let query = self
            .log_query(user, "begins_with(sk, :prefix)")
            .expression_attribute_values(
                ":prefix",
                s(&format!("{ATTEMPT}{event_id}#{webhook_id}#")),
            )
            .scan_index_forward(false)
            .limit(1);
        let mut latest = None;
        query_items(OPERATION, query, |item| {
            latest = Some(entry_from_item(OPERATION, &item)?);
            Ok(ControlFlow::Break(()))
        })
        .await?;
        Ok(latest.filter(|entry| entry.created_at >= log_window_start(now)))
    }
}

impl Store {
    /// The attempts of `user`'s webhook `webhook_id` made in `window` (both ends included),
    /// oldest first, at most `most` (its index items: about 5,000 a request); and whether the
    /// window holds more after them.
    pub async fn webhook_attempts_in(
        &self,
        user: &UserId,
        webhook_id: &str,
        window: RecoverWindow,
        most: usize,
    ) -> Result<(Vec<IndexedAttempt>, bool), StoreError> {
        const OPERATION: &str = "Query(a webhook's attempts in a window)";
        let RecoverWindow { since, until } = window;
        if !key_safe(webhook_id) || since > until {
            return Ok((Vec::new(), false));
        }
        let scope = Scope::Webhook(webhook_id);
        let prefix = scope.prefix();
        // Every index item of those seconds, and none of the counter (`~` after `#`).
        let query = self
            .log_query(user, "sk BETWEEN :from AND :to")
            .expression_attribute_values(":from", s(&format!("{prefix}{since:010}")))
            .expression_attribute_values(":to", s(&format!("{prefix}{until:010}#{COUNTER}")))
            .limit(i32::try_from(most.saturating_add(1)).unwrap_or(i32::MAX));
        let mut attempts = Vec::new();
        let mut more = false;
        query_items(OPERATION, query, |item| {
            if attempts.len() == most {
                more = true;
                return Ok(ControlFlow::Break(()));
            }
            attempts.push(IndexedAttempt::from_index(OPERATION, scope, &item)?);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok((attempts, more))
    }
}

/// A counter's counts of the days from `first_day` on.
fn counts_since(item: &Item, first_day: i64) -> usize {
    item.iter()
        .filter_map(|(name, value)| {
            let day: i64 = name.strip_prefix('d')?.parse().ok()?;
            let count: usize = value.as_n().ok()?.parse().ok()?;
            (day >= first_day).then_some(count)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AttemptKey<'static> {
        AttemptKey {
            event_id: "evt_E",
            webhook_id: "wh_A",
            attempt: 12,
        }
    }

    #[test]
    fn each_index_names_its_entry_and_sorts_by_time() {
        assert_eq!(key().sk(), "ATTEMPT#evt_E#wh_A#000012");
        for scope in [Scope::User, Scope::Webhook("wh_A"), Scope::Event("evt_E")] {
            let sk = scope.index_sk(1_795_529_722, &key());
            assert_eq!(scope.entry_of(&sk), Some(key()), "{sk}");
        }
        assert_eq!(
            Scope::User.index_sk(1_795_529_722, &key()),
            "BYTIME#1795529722#evt_E#wh_A#000012"
        );
        assert_eq!(
            Scope::Webhook("wh_A").index_sk(1_795_529_722, &key()),
            "BYHOOK#wh_A#1795529722#evt_E#000012"
        );
        assert_eq!(
            Scope::Event("evt_E").index_sk(1_795_529_722, &key()),
            "BYEVENT#evt_E#wh_A#000012"
        );
        // The counters sort after every entry of their index.
        let entry = Scope::User.index_sk(9_999_999_999, &key());
        assert!(Scope::User.counter_sk("wh_A").unwrap() > entry);
        let entry = Scope::Webhook("wh_A").index_sk(9_999_999_999, &key());
        assert!(Scope::Webhook("wh_A").counter_sk("wh_A").unwrap() > entry);
    }

    #[test]
    fn a_counter_counts_the_days_of_the_window() {
        let item: Item = [
            ("pk", s("WHLOG#u")),
            ("sk", s("BYTIME#~wh_A")),
            ("d100", n(3)),
            ("d99", n(4)),
            ("d70", n(5)),
            (TTL_ATTRIBUTE, n(1)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(counts_since(&item, 99), 7);
        assert_eq!(counts_since(&item, 70), 12);
    }
}
