//! Recover since a time (`POST /v1/webhooks/logs/recover`): after an outage longer than the
//! retry schedule, each event whose latest attempt to a webhook in a window failed gets one
//! more attempt, oldest first. Nothing is attempted here: each becomes a due delivery again,
//! which the events function's sweep attempts (its fair share per webhook, its log entry, its
//! own attempt number), so the route stays fast.
//!
//! [`plan`] reads what to queue; the route then takes one of the user's attempts of the minute
//! per delivery (the rate test and redeliver share), and [`queue`] makes those due:
//!
//! 1. The webhook's index (`BYHOOK#`), oldest first, from `since` to `until`: at most
//!    [`WINDOW_READ`] attempts (about one request). The events whose latest attempt read
//!    failed are the candidates, in the order of their first attempt in the window.
//! 2. A candidate the webhook no longer takes ([`subscribes`]: off, unsubscribed, its resource
//!    group disabled) is skipped, and so is `webhook.test`: a test is sent by the test route,
//!    never queued, and a new one is what a receiver wants.
//! 3. The others' delivery items, without their bytes, 100 to a `BatchGetItem`, in order until
//!    `most` are to be queued (three reads at most). One due within an attempt's lease (its
//!    retry is about to start, or an attempt is in flight) is skipped. One that the events
//!    function delivered at or after the failed attempt read is not owed (its success came
//!    later in the window, past what a read cut short saw). Any other is made due now,
//!    conditionally on the version read, as the next attempt (after the latest one read, and
//!    never behind the item's own count); an item that has expired while its log has not (an
//!    old event redelivered late) is made again from the logged bytes.
//!
//! Every candidate read is settled within the call (queued, skipped or not owed) at one
//! request per 100, so a call that stops early has queued `most` or settled 300 candidates,
//! and the next one, from where this one stopped (`next_since`: the first second of the window
//! not fully handled), passes over what this one queued (due now) and goes on. A call makes at
//! most: one `Query` of the index (two when its 5,000 items outweigh a page), three
//! `BatchGetItem`s, then the route's `UpdateItem` of the minute's attempts, one `UpdateItem` per
//! queued delivery (one `Query` and one `PutItem` for an expired one) and one `UpdateItem`
//! giving back what it could not queue.

use std::collections::HashMap;

use futures_util::{stream, StreamExt, TryStreamExt};

use super::subscribes;
use crate::app::App;
use crate::session::UserId;
use crate::store::{DeliveryItem, DeliveryStanding, DeliveryState, IndexedAttempt, StoreError};
use crate::webhooks::{LogStatus, RecoverWindow, Webhook, TEST_EVENT};

/// The most attempts of the window one call reads from the webhook's index: about one request
/// (the items are small), so a call costs the same whatever the outage.
pub const WINDOW_READ: usize = 5_000;

/// How many delivery items one read asks for (`BatchGetItem`'s most).
const ITEMS_PER_READ: usize = 100;

/// The most reads of delivery items one call makes: 300 candidates, settled whatever they
/// turn out to be (a window of deliveries all due already, or all delivered since, still
/// moves on by 300 a call).
const ITEM_READS: usize = 3;

/// How many of a call's writes run at once.
const AT_ONCE: usize = 8;

/// What [`plan`] found: the deliveries to make due, and what it passed over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The deliveries to make due now, oldest event first.
    pub due: Vec<Requeue>,
    /// Events whose latest attempt failed that are not queued: the webhook no longer takes
    /// them, they are tests, or their delivery is due or being attempted already.
    pub skipped: usize,
    /// The first second of the window this call could not finish, where a later call goes on
    /// (`None`: the whole window was handled).
    pub next_since: Option<i64>,
}

/// One event to attempt again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeue {
    /// The event's id.
    pub event_id: String,
    /// When its first attempt in the window was made: where a call that stops before it goes
    /// on.
    pub first_at: i64,
    /// The number of the attempt to make.
    pub attempt: u32,
    /// Its delivery as read (`None`: expired; made again from the log).
    pub seen: Option<DeliveryStanding>,
}

/// An event whose latest attempt read from the window failed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    event_id: String,
    event: String,
    /// Its first attempt in the window.
    first_at: i64,
    /// The number of its latest attempt read.
    latest: u32,
}

/// The events of `attempts` (oldest first) whose latest attempt failed, in the order of their
/// first attempt.
fn candidates(attempts: &[IndexedAttempt]) -> Vec<Candidate> {
    let mut order: Vec<Candidate> = Vec::new();
    let mut latest: HashMap<&str, (usize, LogStatus)> = HashMap::new();
    for attempt in attempts {
        let place = match latest.get(attempt.event_id.as_str()) {
            Some((place, _)) => *place,
            None => {
                order.push(Candidate {
                    event_id: attempt.event_id.clone(),
                    event: attempt.event.clone(),
                    first_at: attempt.at,
                    latest: attempt.attempt,
                });
                order.len() - 1
            }
        };
        order[place].latest = attempt.attempt;
        latest.insert(&attempt.event_id, (place, attempt.status));
    }
    order
        .into_iter()
        .filter(|c| {
            matches!(
                latest.get(c.event_id.as_str()),
                Some((_, LogStatus::Failed))
            )
        })
        .collect()
}

/// What becomes of a candidate, given its delivery as it stands (`None`: no item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Made due now as this attempt.
    Queue(u32),
    /// Due within `horizon`, or being attempted: left to its schedule.
    AlreadyDue,
    /// Delivered by the events function at or after the failed attempt read.
    Delivered,
}

fn verdict(candidate: &Candidate, seen: Option<&DeliveryStanding>, horizon: i64) -> Verdict {
    let next = candidate.latest.saturating_add(1);
    let Some(seen) = seen else {
        return Verdict::Queue(next);
    };
    if seen.due_at.is_some_and(|due| due <= horizon) {
        Verdict::AlreadyDue
    } else if seen.state == DeliveryState::Delivered && seen.next_attempt >= candidate.latest {
        Verdict::Delivered
    } else {
        Verdict::Queue(next.max(seen.next_attempt))
    }
}

/// What to queue for `user`'s `webhook` in `window`: at most `most` events; a delivery due
/// before `horizon` is left as it is.
pub async fn plan(
    app: &App,
    user: &UserId,
    webhook: &Webhook,
    window: RecoverWindow,
    most: usize,
    horizon: i64,
) -> Result<Plan, StoreError> {
    let hook = webhook.id.as_str();
    let (attempts, more) = app
        .store
        .webhook_attempts_in(user, hook, window, WINDOW_READ)
        .await?;
    let (wanted, passed): (Vec<Candidate>, Vec<Candidate>) = candidates(&attempts)
        .into_iter()
        .partition(|c| c.event != TEST_EVENT && subscribes(webhook, &c.event));
    let mut plan = Plan {
        skipped: passed.len(),
        // A read cut short goes on from its last second (read again: nothing twice).
        next_since: more.then(|| attempts.last().map_or(window.since, |a| a.at)),
        ..Plan::default()
    };
    for (read, chunk) in wanted.chunks(ITEMS_PER_READ).enumerate() {
        if plan.due.len() >= most || read == ITEM_READS {
            plan.next_since = Some(chunk[0].first_at);
            break;
        }
        let ids: Vec<&str> = chunk.iter().map(|c| c.event_id.as_str()).collect();
        let mut standing: HashMap<String, DeliveryStanding> = app
            .store
            .deliveries_to(user, hook, &ids)
            .await?
            .into_iter()
            .map(|item| (item.event_id.clone(), item))
            .collect();
        for candidate in chunk {
            if plan.due.len() >= most {
                plan.next_since = Some(candidate.first_at);
                break;
            }
            let seen = standing.remove(&candidate.event_id);
            match verdict(candidate, seen.as_ref(), horizon) {
                Verdict::Queue(attempt) => plan.due.push(Requeue {
                    event_id: candidate.event_id.clone(),
                    first_at: candidate.first_at,
                    attempt,
                    seen,
                }),
                Verdict::AlreadyDue => plan.skipped += 1,
                Verdict::Delivered => {}
            }
        }
    }
    Ok(plan)
}

/// Makes `due` (a plan's, oldest first) due at `now`, each conditionally on its version as
/// read, each a second later than the one before it (the last at `now`) so the sweep attempts
/// them in order; how many were queued (one that moved on meanwhile is not).
pub async fn queue(
    app: &App,
    user: &UserId,
    webhook: &Webhook,
    due: &[Requeue],
    now: i64,
) -> Result<usize, StoreError> {
    let first = now - i64::try_from(due.len()).unwrap_or(0) + 1;
    // The futures made first: a closure in the stream would make the handler's future
    // `Send` for one lifetime only.
    let writes: Vec<_> = due
        .iter()
        .zip(first..)
        .map(|(requeue, at)| requeue_one(app, user, webhook, requeue, at))
        .collect();
    let queued: Vec<bool> = stream::iter(writes)
        .buffer_unordered(AT_ONCE)
        .try_collect()
        .await?;
    Ok(queued.into_iter().filter(|q| *q).count())
}

async fn requeue_one(
    app: &App,
    user: &UserId,
    webhook: &Webhook,
    requeue: &Requeue,
    at: i64,
) -> Result<bool, StoreError> {
    if let Some(seen) = &requeue.seen {
        return app.store.requeue_delivery(seen, requeue.attempt, at).await;
    }
    let hook = webhook.id.as_str();
    let Some(logged) = app
        .store
        .latest_webhook_log(user, hook, &requeue.event_id, at)
        .await?
    else {
        return Ok(false);
    };
    let delivery = DeliveryItem {
        user: user.clone(),
        webhook_id: hook.to_owned(),
        event_id: logged.event_id,
        event: logged.event,
        payload: logged.request_payload,
        next_attempt: requeue.attempt,
        due_at: None,
        state: DeliveryState::Pending,
    };
    app.store.requeue_from_log(delivery, at).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use LogStatus::{Failed, Success};

    fn attempt(event_id: &str, attempt: u32, status: LogStatus, at: i64) -> IndexedAttempt {
        IndexedAttempt {
            event_id: event_id.to_owned(),
            event: "message.received".to_owned(),
            attempt,
            status,
            at,
        }
    }

    #[test]
    fn the_candidates_are_the_events_whose_latest_attempt_failed_by_their_first_attempt() {
        let read = [
            attempt("evt_a", 1, Failed, 10),
            attempt("evt_b", 1, Failed, 11),
            attempt("evt_c", 1, Success, 12),
            attempt("evt_b", 2, Success, 13),
            attempt("evt_d", 1, Failed, 14),
            attempt("evt_a", 2, Failed, 15),
        ];
        let found: Vec<(String, i64, u32)> = candidates(&read)
            .into_iter()
            .map(|c| (c.event_id, c.first_at, c.latest))
            .collect();
        assert_eq!(
            found,
            [("evt_a".to_owned(), 10, 2), ("evt_d".to_owned(), 14, 1)]
        );
    }

    #[test]
    fn a_candidate_is_queued_as_its_next_attempt_unless_due_already_or_delivered_since() {
        let candidate = Candidate {
            event_id: "evt_a".into(),
            event: "message.received".into(),
            first_at: 10,
            latest: 7,
        };
        let standing = |next_attempt, due_at, state| DeliveryStanding {
            user: UserId::new("u1"),
            webhook_id: "wh_A".into(),
            event_id: "evt_a".into(),
            next_attempt,
            due_at,
            state,
        };
        let horizon = 1_000;
        // Failed for good at its seventh attempt: the eighth.
        let failed = standing(7, None, DeliveryState::Failed);
        assert_eq!(
            verdict(&candidate, Some(&failed), horizon),
            Verdict::Queue(8)
        );
        // Expired: from the log, the next after the latest read.
        assert_eq!(verdict(&candidate, None, horizon), Verdict::Queue(8));
        // Still on its schedule, deferrals counted past the log: brought forward at its count.
        let later = standing(9, Some(horizon + 1), DeliveryState::Pending);
        assert_eq!(
            verdict(&candidate, Some(&later), horizon),
            Verdict::Queue(9)
        );
        // About to be attempted, or being attempted.
        let soon = standing(8, Some(horizon), DeliveryState::Pending);
        assert_eq!(
            verdict(&candidate, Some(&soon), horizon),
            Verdict::AlreadyDue
        );
        // Delivered by a retry after the failure read.
        let delivered = standing(8, None, DeliveryState::Delivered);
        assert_eq!(
            verdict(&candidate, Some(&delivered), horizon),
            Verdict::Delivered
        );
        // Delivered before it (a redelivery failed since): owed.
        let before = standing(3, None, DeliveryState::Delivered);
        assert_eq!(
            verdict(&candidate, Some(&before), horizon),
            Verdict::Queue(8)
        );
    }
}
