//! Daily send counters and the guards every template send passes in one transaction: a unit
//! of the user's and of the recipient's counter, and a `ConditionCheck` that no WhatsApp form
//! of the phone opted out. A virtual phone's send ([`Caps::Virtual`]) takes a unit of the
//! user's own virtual counter only, and checks only this user's opt-out of the phone, which
//! lifts [`VIRTUAL_OPT_OUT_SECONDS`] after its `STOP`.
//!
//! A successful `TransactWriteItems` returns no values, yet a 200 names the units left. So each
//! counter update is conditioned on the EXACT count this container expects (a small cache,
//! 0 when unknown): when the guess holds, the count after the send is the guess plus one; when
//! it does not, the cancellation reason's `ALL_OLD` item carries the true count, and the next
//! attempt uses it (or the answer is 429 when it is at the cap). When the count moved again
//! (concurrent sends to one phone), the next attempt asks only `sends < limit` for that counter,
//! so contention costs a bounded number of attempts; the 200's remaining count is then the
//! best known one (it may overstate by the concurrent sends). A counter never passes its cap:
//! no update is ever sent that expects a count at or above it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::{n, transact, Item, Key, Reason, Store, StoreError, Transact};
use crate::limits::{self, Quota, Scope, Usage, VIRTUAL_OPT_OUT_SECONDS};
use crate::phone::PhoneE164;
use crate::session::{Session, UserId};

/// How many times a transaction is tried when its guesses were wrong or it collided with a
/// concurrent one (each try learns the true counts, so a few are enough).
const MAX_TRANSACTION_ATTEMPTS: usize = 10;
/// The counters this container remembers; past that the cache starts over (a wrong guess
/// only costs one more attempt).
const MAX_CACHED_COUNTERS: usize = 1024;
/// The attribute holding a counter's sends.
const SENDS: &str = "sends";

/// The daily caps a template send counts against, and whose opt-out blocks it, by the phone it
/// goes to ([`Quota`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caps {
    /// A person's phone: a unit of the user's and of the recipient's counters; an opt-out of
    /// any WhatsApp form of the phone blocks the send.
    Person {
        /// `USER_DAILY_SEND_LIMIT`.
        user: i64,
        /// `RECIPIENT_DAILY_SEND_LIMIT`.
        recipient: i64,
    },
    /// A virtual phone, which every user shares: a unit of the user's own virtual counter
    /// only; only this user's opt-out of the phone blocks it, and only for
    /// [`VIRTUAL_OPT_OUT_SECONDS`] after the `STOP`.
    Virtual {
        /// `VIRTUAL_DAILY_SEND_LIMIT`.
        user: i64,
    },
}

impl Caps {
    /// The quota these caps count against.
    fn quota(self) -> Quota {
        match self {
            Self::Person { .. } => Quota::Person,
            Self::Virtual { .. } => Quota::Virtual,
        }
    }
}

/// What this container last saw each counter hold, so the next guess is usually right.
#[derive(Debug, Default)]
pub(super) struct CounterCache(Mutex<HashMap<String, i64>>);

impl CounterCache {
    fn get(&self, pk: &str) -> i64 {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(pk).copied().unwrap_or(0)
    }

    fn set(&self, pk: &str, sends: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CACHED_COUNTERS && !map.contains_key(pk) {
            map.clear();
        }
        map.insert(pk.to_owned(), sends);
    }
}

/// One counter a send takes a unit of, and its count as far as this request knows.
#[derive(Debug, Clone)]
struct Counter {
    key: Key,
    scope: Scope,
    limit: i64,
    /// Before a reservation: the count expected now. After it: the count including our unit.
    sends: i64,
    /// Whether the update expects exactly `sends` (else only below the cap).
    exact: bool,
    /// How often this counter's guess was wrong in this request.
    misses: u32,
}

impl Counter {
    fn usage(&self) -> Usage {
        Usage {
            scope: self.scope,
            limit: self.limit,
            used: self.sends,
        }
    }
}

/// The units one send holds: what a 200's headers report and what a failed send gives back.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// The user's counter first, then the recipient's (a person's phone).
    counters: Vec<Counter>,
}

impl Reservation {
    /// The cap the `X-RateLimit-*` headers describe (the tightest, this send counted).
    pub fn usage(&self) -> Usage {
        let user = self.counters[0].usage();
        limits::tightest(self.counters.iter().map(Counter::usage)).unwrap_or(user)
    }
}

/// What a guarded transaction did.
#[derive(Debug)]
pub(super) enum Guarded {
    /// Everything was written; the units are held.
    Reserved(Reservation),
    /// The first item's condition failed (the session part): its `ALL_OLD` item, if any.
    /// Nothing was reserved.
    HeadFailed(Option<Item>),
    /// A form of the phone opted out.
    OptedOut,
    /// A cap is reached: the one that refused.
    Capped(Usage),
}

/// What an undo did.
#[derive(Debug)]
pub(super) enum Undo {
    /// Everything was undone and given back.
    Done,
    /// The session part's condition failed (its `ALL_OLD` item, if any); nothing changed.
    HeadFailed(Option<Item>),
}

impl Store {
    /// The counters of a send by `user` to `phone` at `now` (the user's first), with this
    /// container's guesses.
    fn counters(&self, user: &UserId, phone: &PhoneE164, caps: Caps, now: i64) -> Vec<Counter> {
        let counter = |key: Key, scope, limit| {
            let sends = self.counts.get(&key.pk);
            Counter {
                key,
                scope,
                limit,
                sends,
                exact: true,
                misses: 0,
            }
        };
        let user_key = Key::user_counter_of(caps.quota(), user, now);
        match caps {
            Caps::Person {
                user: user_cap,
                recipient,
            } => vec![
                counter(user_key, Scope::User, user_cap),
                counter(
                    Key::recipient_counter(phone, now),
                    Scope::Recipient,
                    recipient,
                ),
            ],
            // No per-recipient cap: it protects a person, and no one holds a virtual phone.
            Caps::Virtual { user: user_cap } => vec![counter(user_key, Scope::User, user_cap)],
        }
    }

    /// The opt-out checks of a send by `user` to `phone` at `now`: every WhatsApp form of a
    /// person's phone, or this user's opt-out of a virtual phone (in force for
    /// [`VIRTUAL_OPT_OUT_SECONDS`] after its `STOP`).
    fn opt_out_checks(
        &self,
        user: &UserId,
        phone: &PhoneE164,
        caps: Caps,
        now: i64,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        match caps {
            Caps::Person { .. } => phone
                .whatsapp_forms()
                .iter()
                .map(|form| not_opted_out(&self.table, &Key::opt_out(form.digits()), None))
                .collect(),
            Caps::Virtual { .. } => Ok(vec![not_opted_out(
                &self.table,
                &Key::user_opt_out(phone.digits(), user),
                Some(now - VIRTUAL_OPT_OUT_SECONDS),
            )?]),
        }
    }

    /// Sends `head` (the session part; a builder's error is a corrupt `operation`) together with a unit of each of `session`'s counters and
    /// an opt-out check of every form of its phone; tries again (bounded, and not after
    /// `deadline`) while the guesses were wrong or a concurrent transaction collided.
    pub(super) async fn guarded(
        &self,
        operation: &'static str,
        head: &(dyn Fn() -> Result<TransactWriteItem, BuildError> + Sync),
        session: &Session,
        caps: Caps,
        now: i64,
        deadline: Instant,
    ) -> Result<Guarded, StoreError> {
        let mut counters = self.counters(&session.user_id, &session.phone, caps, now);
        for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
            // A cap of 0 never sends. A cached count at the cap may be stale (units given
            // back elsewhere): it is checked by expecting one below the cap, which can never
            // pass it.
            if let Some(off) = counters.iter().find(|c| c.limit <= 0) {
                return Ok(Guarded::Capped(off.usage()));
            }
            if Instant::now() >= deadline {
                return Err(StoreError::out_of_time(operation));
            }
            let mut items =
                vec![head().map_err(|e| StoreError::corrupt(operation, e.to_string()))?];
            for c in &counters {
                items.push(reserve_unit(&self.table, c, now)?);
            }
            items.extend(self.opt_out_checks(&session.user_id, &session.phone, caps, now)?);
            let reasons = match transact(self, operation, items).await? {
                Transact::Done => {
                    for c in &mut counters {
                        c.sends = expected(c) + 1;
                        self.counts.set(&c.key.pk, c.sends);
                    }
                    return Ok(Guarded::Reserved(Reservation { counters }));
                }
                Transact::Cancelled(reasons) => reasons,
            };
            let mut reasons = reasons.into_iter();
            let head_reason = reasons.next();
            let mut conflict = matches!(head_reason, Some(Reason::Conflict));
            for c in &mut counters {
                match reasons.next() {
                    Some(Reason::ConditionFailed(item)) => {
                        c.sends = sends_of(item.as_ref());
                        self.counts.set(&c.key.pk, c.sends);
                        c.misses += 1;
                        // Missed twice: it is moving; ask only for room below the cap.
                        c.exact = c.misses < 2;
                    }
                    Some(Reason::Conflict) => conflict = true,
                    Some(Reason::Other(code)) => {
                        return Err(StoreError::cancelled(operation, code))
                    }
                    // The guess held: that is the count.
                    Some(Reason::Passed) if c.exact => c.sends = expected(c),
                    Some(Reason::Passed) | None => {}
                }
            }
            let mut opted_out = false;
            for reason in reasons {
                match reason {
                    Reason::ConditionFailed(_) => opted_out = true,
                    Reason::Conflict => conflict = true,
                    Reason::Other(code) => return Err(StoreError::cancelled(operation, code)),
                    Reason::Passed => {}
                }
            }
            match head_reason {
                Some(Reason::ConditionFailed(current)) => return Ok(Guarded::HeadFailed(current)),
                Some(Reason::Other(code)) => return Err(StoreError::cancelled(operation, code)),
                _ => {}
            }
            if opted_out {
                return Ok(Guarded::OptedOut);
            }
            if let Some(full) = counters.iter().find(|c| c.sends >= c.limit) {
                return Ok(Guarded::Capped(full.usage()));
            }
            if conflict {
                tokio::time::sleep(jitter(attempt)).await;
            }
        }
        Err(StoreError::cancelled(
            operation,
            "still contended after every attempt".into(),
        ))
    }

    /// Gives the units of `reservation` back (a send that Meta did not accept), together with
    /// `head` (the session part of the undo) when there is one. `HeadFailed(current)` when the
    /// head's condition failed: nothing was given back then, and the caller decides.
    pub(super) async fn give_back(
        &self,
        operation: &'static str,
        head: Option<&(dyn Fn() -> Result<TransactWriteItem, BuildError> + Sync)>,
        reservation: &mut Reservation,
        deadline: Instant,
    ) -> Result<Undo, StoreError> {
        for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
            let mut items = Vec::new();
            if let Some(head) = head {
                items.push(head().map_err(|e| StoreError::corrupt(operation, e.to_string()))?);
            }
            let owed: Vec<usize> = (0..reservation.counters.len())
                .filter(|&i| reservation.counters[i].sends > 0)
                .collect();
            for &i in &owed {
                items.push(return_unit(&self.table, &reservation.counters[i])?);
            }
            if items.is_empty() {
                return Ok(Undo::Done);
            }
            // An undo (with a head) always gets its first attempt; a bare give-back, which may
            // follow one, starts only while time is left.
            if (attempt > 0 || head.is_none()) && Instant::now() >= deadline {
                return Err(StoreError::out_of_time(operation));
            }
            let reasons = match transact(self, operation, items).await? {
                Transact::Done => {
                    for &i in &owed {
                        let c = &mut reservation.counters[i];
                        c.sends -= 1;
                        self.counts.set(&c.key.pk, c.sends);
                    }
                    return Ok(Undo::Done);
                }
                Transact::Cancelled(reasons) => reasons,
            };
            let mut reasons = reasons.into_iter();
            let mut head_failed = None;
            let mut conflict = false;
            if head.is_some() {
                match reasons.next() {
                    Some(Reason::ConditionFailed(current)) => head_failed = Some(current),
                    Some(Reason::Conflict) => conflict = true,
                    Some(Reason::Other(code)) => {
                        return Err(StoreError::cancelled(operation, code))
                    }
                    Some(Reason::Passed) | None => {}
                }
            }
            for &i in &owed {
                match reasons.next() {
                    Some(Reason::ConditionFailed(item)) => {
                        let c = &mut reservation.counters[i];
                        c.sends = sends_of(item.as_ref());
                        self.counts.set(&c.key.pk, c.sends);
                    }
                    Some(Reason::Conflict) => conflict = true,
                    Some(Reason::Other(code)) => {
                        return Err(StoreError::cancelled(operation, code))
                    }
                    Some(Reason::Passed) | None => {}
                }
            }
            if let Some(current) = head_failed {
                return Ok(Undo::HeadFailed(current));
            }
            if conflict {
                tokio::time::sleep(jitter(attempt)).await;
            }
        }
        Err(StoreError::cancelled(
            operation,
            "still contended after every attempt".into(),
        ))
    }
}

/// A counter's sends in an `ALL_OLD` item (no item: 0).
fn sends_of(item: Option<&Item>) -> i64 {
    item.and_then(|i| i.get(SENDS))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Takes one unit of `counter` if it holds exactly the count we expect, below the cap.
fn reserve_unit(table: &str, counter: &Counter, now: i64) -> Result<TransactWriteItem, StoreError> {
    let expected = expected(counter);
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(counter.key.item()))
        .update_expression("ADD sends :one SET expiresAt = :exp")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":exp", n(limits::counter_expires_at(now)))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    update = if !counter.exact {
        update
            .condition_expression("attribute_not_exists(sends) OR sends < :limit")
            .expression_attribute_values(":limit", n(counter.limit))
    } else if expected == 0 {
        update
            .condition_expression("attribute_not_exists(sends) OR sends = :expected")
            .expression_attribute_values(":expected", n(0))
    } else {
        update
            .condition_expression("sends = :expected")
            .expression_attribute_values(":expected", n(expected))
    };
    let update = update
        .build()
        .map_err(|e| StoreError::corrupt("TransactWriteItems(reserve)", e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// The count a reservation expects: the known count, but never at or past the cap, so an
/// update can never take the last unit twice.
fn expected(counter: &Counter) -> i64 {
    counter.sends.min(counter.limit - 1).max(0)
}

/// Gives one unit of `counter` back if it holds exactly the count we believe; the last unit
/// deletes the item, so a refused first send leaves the table exactly as before.
fn return_unit(table: &str, counter: &Counter) -> Result<TransactWriteItem, StoreError> {
    let error = |e: aws_sdk_dynamodb::error::BuildError| {
        StoreError::corrupt("TransactWriteItems(give back)", e.to_string())
    };
    if counter.sends == 1 {
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(counter.key.item()))
            .condition_expression("sends = :expected")
            .expression_attribute_values(":expected", n(1))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(error)?;
        return Ok(TransactWriteItem::builder().delete(delete).build());
    }
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(counter.key.item()))
        .update_expression("ADD sends :minus")
        .condition_expression("sends = :expected")
        .expression_attribute_values(":minus", n(-1))
        .expression_attribute_values(":expected", n(counter.sends))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(error)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Holds only while the opt-out item `key` is not in force: absent, lifted, or (with
/// `lifted_by`) set no later than that time, after which it lifts by itself.
fn not_opted_out(
    table: &str,
    key: &Key,
    lifted_by: Option<i64>,
) -> Result<TransactWriteItem, StoreError> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key.item()))
        .expression_attribute_values(":false", AttributeValue::Bool(false));
    let check = match lifted_by {
        None => check.condition_expression("attribute_not_exists(pk) OR optedOut = :false"),
        Some(at) => check
            .condition_expression(
                "attribute_not_exists(pk) OR optedOut = :false OR updatedAt <= :lifted",
            )
            .expression_attribute_values(":lifted", n(at)),
    };
    let check = check
        .build()
        .map_err(|e| StoreError::corrupt("TransactWriteItems(opt-out)", e.to_string()))?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// A growing, jittered pause before trying a collided transaction again.
fn jitter(attempt: usize) -> Duration {
    let noise = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 20)
        .unwrap_or(0);
    Duration::from_millis(10 * (attempt as u64 + 1) + u64::from(noise))
}

#[cfg(test)]
mod tests {
    use super::super::reason;
    use super::*;

    fn counter(sends: i64, limit: i64) -> Counter {
        Counter {
            key: Key::user_counter(&UserId::new("u1"), 0),
            scope: Scope::User,
            limit,
            sends,
            exact: true,
            misses: 0,
        }
    }

    #[test]
    fn a_reservation_never_expects_a_count_at_or_past_the_cap() {
        assert_eq!(expected(&counter(0, 3)), 0);
        assert_eq!(expected(&counter(2, 3)), 2);
        // A stale count at or past the cap is checked one below it.
        assert_eq!(expected(&counter(3, 3)), 2);
        assert_eq!(expected(&counter(9, 3)), 2);
    }

    #[test]
    fn cancellation_reasons_are_read_as_dynamodb_names_them() {
        use aws_sdk_dynamodb::types::CancellationReason;
        let item = Item::from([("sends".to_owned(), n(2))]);
        let failed = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .set_item(Some(item))
            .build();
        match reason(&failed) {
            Reason::ConditionFailed(item) => assert_eq!(sends_of(item.as_ref()), 2),
            other => panic!("{other:?}"),
        }
        let passed = CancellationReason::builder().code("None").build();
        assert!(matches!(reason(&passed), Reason::Passed));
        let conflict = CancellationReason::builder()
            .code("TransactionConflict")
            .build();
        assert!(matches!(reason(&conflict), Reason::Conflict));
        let throttled = CancellationReason::builder()
            .code("ThrottlingError")
            .build();
        assert!(matches!(reason(&throttled), Reason::Other(_)));
        assert_eq!(sends_of(None), 0, "no counter yet: nothing sent");
    }

    #[test]
    fn the_cache_forgets_everything_rather_than_grow_past_its_bound() {
        let cache = CounterCache::default();
        for i in 0..MAX_CACHED_COUNTERS {
            cache.set(&format!("COUNT#USER#u{i}#2026-11-24"), 1);
        }
        assert_eq!(cache.get("COUNT#USER#u0#2026-11-24"), 1);
        cache.set("COUNT#USER#new#2026-11-24", 2);
        assert_eq!(cache.get("COUNT#USER#u0#2026-11-24"), 0);
        assert_eq!(cache.get("COUNT#USER#new#2026-11-24"), 2);
    }
}
