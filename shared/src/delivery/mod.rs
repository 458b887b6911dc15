//! Delivery I/O: events reach the API users' webhooks. The `events` function runs it; the
//! `/v1/webhooks/test` and `/logs/redeliver` routes use its one logged attempt.
//!
//! - [`stream`]: a batch of the table's stream records → the events they report
//!   (`crate::events`, pure) → one claimed delivery per subscribed webhook → attempts. Only a
//!   storage failure fails a record (`batchItemFailures`); an endpoint's failure is a retry.
//! - [`sweep`]: every minute, the deliveries whose retry (or lease) is due, shard by shard.
//! - [`recover`]: the events of a window whose latest attempt failed, due again for the sweep
//!   (`POST /v1/webhooks/logs/recover`).
//! - [`logged_attempt`]: one attempt, its log entry and what it means for the webhook.
//!
//! # The webhook as it is now
//! Right before each attempt, the webhook is read again (strongly consistent): a delivery to
//! a webhook deleted, turned off or no longer subscribed to the event since it was claimed ends
//! unattempted (`cancelled`), and one whose URL, secret or headers changed goes out with the new
//! ones. Once `PUT` or `DELETE /v1/webhooks/settings` has answered, no attempt starts with the
//! old settings.
//!
//! # Fairness
//! A run's deliveries go in one queue per webhook, in order; up to
//! [`DeliverySettings::concurrency`] queues run at once, each user's first queue before any
//! user's second. A queue whose attempt got no answer (timed out, could not connect, refused)
//! defers the rest of its deliveries unattempted: a hanging endpoint costs its own queue one
//! attempt timeout, and holds up no other webhook's deliveries. The container then attempts
//! none of that endpoint's deliveries for the schedule's first wait (they are deferred at
//! once), so a stream of batches pays that timeout once per wait, not once per batch. A queue
//! still going after [`ATTEMPT_BUDGET`] (a receiver that answers, slowly, every time) defers the
//! rest too, so an invocation ends inside the function's timeout. In a sweep, a webhook gets at
//! most [`SweepLimits::per_webhook`] attempts; the rest of its due deliveries are postponed
//! behind every delivery due now, their attempt not counted (or deferred with the rest of the
//! queue if its endpoint does not answer).
//!
//! **A deferral is a failed attempt, for the schedule**: the delivery moves to its next
//! attempt after the schedule's next wait, and one deferred at its last attempt has failed for
//! good (logged as not attempted, counted in `failureCount`). So a hanging endpoint's backlog
//! ends on the schedule, never lingers.
//!
//! [`DeliverySettings::concurrency`]: crate::outbound::DeliverySettings
//! [`SweepLimits::per_webhook`]: crate::delivery::sweep::SweepLimits

/// Recover since a time: the failed events of a window become due deliveries again.
pub mod recover;
/// Stream batches: events, claims, attempts, batch item failures.
pub mod stream;
/// The scheduled sweep of due deliveries.
pub mod sweep;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{stream as futures_stream, StreamExt};
use serde_json::{json, Value};

use crate::app::App;
use crate::outbound::{
    attempt, AttemptError, Delivery, DeliverySettings, EgressClient, NextStep, Outcome,
};
use crate::session::UserId;
use crate::store::{DeliveryItem, DeliveryState, DueDelivery, Next, StoreError, WebhookOutcome};
use crate::webhooks::{LogEntry, LogStatus, Webhook, WebhookId};
use sweep::SweepLimits;

/// One invocation of the events function: a stream batch (`{"Records": […]}`) answers
/// Lambda's partial batch response; the schedule's event (`"detail-type": "Scheduled
/// Event"`) sweeps and answers `{"swept": n}`, the deliveries it moved. One log line per invocation, with the request
/// id, what it was, the counts and the time taken.
pub async fn handle(app: &App, deliverer: &Deliverer, request_id: &str, payload: &Value) -> Value {
    let started = Instant::now();
    if payload.get("Records").is_some() {
        let report = stream::handle_batch(app, deliverer, payload).await;
        tracing::info!(
            request_id,
            route = "stream",
            status = crate::events::batch_status(&report.failed),
            records = report.records,
            events = report.events,
            claimed = report.claimed,
            duplicates = report.duplicates,
            failed_records = report.failed.len(),
            delivered = report.tally.delivered,
            retrying = report.tally.retrying,
            deferred = report.tally.deferred,
            failed = report.tally.failed,
            cancelled = report.tally.cancelled,
            store_errors = report.tally.store_errors,
            latency_ms = elapsed_ms(started),
            "invocation"
        );
        return report.response();
    }
    if payload.get("detail-type").and_then(Value::as_str) == Some(SCHEDULED_EVENT) {
        let report = match sweep::sweep(app, deliverer).await {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::error!(error = %e, "the sweep could read no shard of the due deliveries");
                None
            }
        };
        let status = match &report {
            None => "failed",
            Some(r) if r.unread_shards > 0 => "partial",
            Some(_) => "ok",
        };
        let report = report.unwrap_or_default();
        let tally = report.tally;
        tracing::info!(
            request_id,
            route = "sweep",
            status,
            due = report.due,
            unread_shards = report.unread_shards,
            taken = tally.taken,
            delivered = tally.delivered,
            retrying = tally.retrying,
            deferred = tally.deferred,
            failed = tally.failed,
            cancelled = tally.cancelled,
            postponed = tally.postponed,
            store_errors = tally.store_errors,
            latency_ms = elapsed_ms(started),
            "invocation"
        );
        return json!({ "swept": tally.moved() });
    }
    tracing::warn!(
        request_id,
        route = "unknown",
        status = "ignored",
        latency_ms = elapsed_ms(started),
        "invocation: neither a stream batch nor the schedule's event"
    );
    json!({ "ignored": true })
}

/// The `detail-type` of EventBridge's scheduled events.
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// How long past an attempt's time limit a claim or take-over holds a delivery: time for the
/// log write and the follow-up. A holder that died is replaced by the sweep after this.
const LEASE_MARGIN: Duration = Duration::from_secs(60);

/// How long a container holds off an endpoint that did not answer when the schedule has no
/// waits.
const HOLD_WITHOUT_SCHEDULE: Duration = Duration::from_secs(10);

/// How long one invocation keeps starting attempts: a queue's deliveries not begun by then
/// are deferred like those behind a hanging endpoint. With the attempt's time limit (5 s) and
/// the writes after it, an invocation ends well inside the function's 60 s timeout, however
/// slowly a receiver answers.
pub const ATTEMPT_BUDGET: Duration = Duration::from_secs(30);

/// What the events function runs with besides the [`App`]: the delivery client and settings.
pub struct Deliverer {
    /// The egress that reaches only the addresses the settings allow.
    pub egress: EgressClient,
    /// Timeout, schedule, targets, concurrency.
    pub settings: DeliverySettings,
    /// How long an invocation starts attempts ([`ATTEMPT_BUDGET`]).
    pub budget: Duration,
    /// What one sweep reads and attempts ([`SweepLimits::DEFAULT`]).
    pub sweep: SweepLimits,
    /// Endpoints (URLs) whose last attempt got no answer, and until when (epoch seconds) this
    /// container attempts none of their deliveries: per container, so a hanging endpoint costs
    /// one attempt timeout per hold, not one per batch.
    quiet: std::sync::Mutex<HashMap<String, i64>>,
}

/// What one logged attempt is to send.
#[derive(Debug, Clone, Copy)]
pub struct Send<'a> {
    /// The event's name.
    pub event: &'a str,
    /// The event's id.
    pub event_id: &'a str,
    /// The bytes.
    pub body: &'a [u8],
    /// Which attempt this is (1 for the first).
    pub attempt_number: u32,
}

/// A logged attempt: its log entry, and how it ended (`None`: not made, the URL is refused
/// by today's rules).
#[derive(Debug, Clone)]
pub struct Logged {
    /// What the log holds.
    pub entry: LogEntry,
    /// How the attempt ended.
    pub outcome: Option<Outcome>,
    /// Whether it got no answer at all (time limit, connection, refused address).
    pub unanswered: bool,
}

/// Makes attempt `send` to `user`'s `webhook` now, logs it, then applies its outcome to the
/// webhook (a success sets `lastFiredAt` and resets `failureCount`, a 410 turns it off). The
/// attempt's time limit bounds it; only the writes can fail.
pub async fn logged_attempt(
    app: &App,
    egress: &EgressClient,
    user: &UserId,
    webhook: &Webhook,
    send: Send<'_>,
) -> Result<Logged, StoreError> {
    let now = app.clock.now();
    let (outcome, status_code, response_time_ms, response_body, error) =
        match webhook.delivery_parts(egress.targets(), now) {
            // Set while other rules applied (private targets allowed then): refused now.
            Err(reason) => (None, None, 0, String::new(), Err(reason)),
            Ok((url, secrets, headers)) => {
                let delivery = Delivery {
                    url: &url,
                    event: send.event,
                    event_id: send.event_id,
                    body: send.body,
                    secrets: &secrets,
                    custom_headers: &headers,
                };
                let made = attempt(egress, &delivery, send.attempt_number, &*app.clock).await;
                (
                    Some(made.outcome),
                    made.status_code,
                    made.response_time_ms,
                    made.response_body,
                    Ok(made.error),
                )
            }
        };
    let unanswered = match &error {
        Err(_) => true,
        Ok(error) => matches!(
            error,
            Some(
                AttemptError::TimedOut
                    | AttemptError::Connect(_)
                    | AttemptError::Refused(_)
                    | AttemptError::NoAddress(_)
            )
        ),
    };
    let error_message = match error {
        Err(reason) => Some(reason),
        Ok(error) => error.map(|e| e.to_string()),
    };
    let status = match outcome {
        Some(Outcome::Delivered) => LogStatus::Success,
        _ => LogStatus::Failed,
    };
    let mut entry = LogEntry {
        status,
        status_code,
        response_body,
        response_time_ms,
        ..log_entry(webhook, send, now, error_message)
    };
    // The log first: an attempt that was made is always on record, under its own number (the
    // next free one, when a concurrent attempt of the event took the one it was sent as).
    let number = app.store.log_attempt(user, &entry).await;
    tracing::info!(
        webhook_id = webhook.id.as_str(),
        event = send.event,
        event_id = send.event_id,
        attempt = number.as_ref().map_or(send.attempt_number, |n| *n),
        logged = number.is_ok(),
        status = status.as_str(),
        status_code,
        response_time_ms,
        "webhook delivery attempt"
    );
    entry.attempt_number = number?;
    let follow_up = match outcome {
        Some(Outcome::Delivered) => Some(WebhookOutcome::Delivered),
        Some(Outcome::Gone) => Some(WebhookOutcome::Gone),
        Some(Outcome::Failed { .. }) | None => None,
    };
    if let Some(follow_up) = follow_up {
        app.store
            .record_webhook_outcome(user, &webhook.id, follow_up, now)
            .await?;
    }
    Ok(Logged {
        entry,
        outcome,
        unanswered,
    })
}

/// The log entry of `send` to `webhook` at `now`, failed with `error_message`, before any
/// answer is known: what an attempt fills in, and all a delivery never attempted has.
fn log_entry(
    webhook: &Webhook,
    send: Send<'_>,
    now: i64,
    error_message: Option<String>,
) -> LogEntry {
    LogEntry {
        webhook_id: webhook.id.as_str().to_owned(),
        webhook_name: webhook.name.clone(),
        event_id: send.event_id.to_owned(),
        event: send.event.to_owned(),
        url: webhook.url.clone(),
        status: LogStatus::Failed,
        status_code: None,
        request_payload: send.body.to_vec(),
        response_body: String::new(),
        error_message,
        attempt_number: send.attempt_number,
        response_time_ms: 0,
        created_at: now,
    }
}

/// Whether `webhook` takes deliveries of `event` now: on, subscribed to it, and its resource
/// group not disabled (`disabledResourceGroups`). The one rule of live delivery, the sweep and
/// recover.
pub fn subscribes(webhook: &Webhook, event: &str) -> bool {
    webhook.is_active
        && webhook.events.iter().any(|e| e == event)
        && webhook.disabled_group(event).is_none()
}

/// A delivery to run.
#[derive(Debug, Clone)]
pub enum Job {
    /// Claimed by this invocation (a stream batch's): held until the lease's end.
    Held(DeliveryItem),
    /// Listed as due (a sweep's): taken over only when it is attempted, moved or ended
    /// directly otherwise (deferred, postponed past its webhook's share, cancelled).
    Due(DueDelivery),
}

impl Job {
    fn user(&self) -> &UserId {
        match self {
            Self::Held(item) => &item.user,
            Self::Due(due) => &due.user,
        }
    }

    fn webhook_id(&self) -> &str {
        match self {
            Self::Held(item) => &item.webhook_id,
            Self::Due(due) => &due.webhook_id,
        }
    }

    fn event(&self) -> &str {
        match self {
            Self::Held(item) => &item.event,
            Self::Due(due) => &due.event,
        }
    }

    /// The version a conditional write on it expects.
    fn version(&self) -> Option<DueDelivery> {
        match self {
            Self::Held(item) => item.as_due(),
            Self::Due(due) => Some(due.clone()),
        }
    }
}

/// What a run of jobs did, for the invocation's log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Due deliveries taken over for an attempt (the sweep's).
    pub taken: usize,
    /// Attempts that delivered.
    pub delivered: usize,
    /// Attempts that failed and will be retried.
    pub retrying: usize,
    /// Deliveries deferred unattempted (behind an endpoint that did not answer, or out of
    /// time) to their next attempt.
    pub deferred: usize,
    /// Deliveries that failed for good (their last attempt failed or was deferred) or met a
    /// 410.
    pub failed: usize,
    /// Deliveries ended unattempted: the webhook was deleted, turned off or unsubscribed.
    pub cancelled: usize,
    /// Due deliveries past their webhook's share of a sweep, moved behind what is due now,
    /// their attempt not counted.
    pub postponed: usize,
    /// Jobs whose storage writes failed (the lease makes the sweep finish them).
    pub store_errors: usize,
}

impl Tally {
    fn add(mut self, other: Self) -> Self {
        self.taken += other.taken;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.deferred += other.deferred;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.postponed += other.postponed;
        self.store_errors += other.store_errors;
        self
    }

    /// The deliveries moved on: attempted, deferred or ended.
    pub fn moved(&self) -> usize {
        self.delivered + self.retrying + self.deferred + self.failed + self.cancelled
    }
}

/// Why a delivery was deferred unattempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deferral {
    /// An attempt to the same endpoint got no answer just before.
    Unanswered,
    /// The invocation's time for starting attempts ran out.
    OutOfTime,
}

impl Deferral {
    /// The log's `errorMessage` when this deferral was the delivery's last attempt.
    fn last_attempt_message(self, attempt: u32) -> String {
        let why = match self {
            Self::Unanswered => "the endpoint did not answer an attempt just before it",
            Self::OutOfTime => "the delivery run's time for attempts ran out",
        };
        format!("not attempted ({why}); attempt {attempt} was the schedule's last: failed for good")
    }
}

/// How long a claim or take-over holds a delivery whose attempt is bounded by `timeout`: the
/// attempt and [`LEASE_MARGIN`].
pub fn lease(timeout: Duration) -> Duration {
    timeout + LEASE_MARGIN
}

impl Deliverer {
    /// How long a claim or take-over holds a delivery.
    pub fn lease(&self) -> Duration {
        lease(self.settings.timeout)
    }

    /// `now` plus the lease, in epoch seconds.
    pub fn lease_until(&self, now: i64) -> i64 {
        now + seconds(self.lease())
    }

    /// A deliverer with the default budget and sweep limits.
    pub fn new(egress: EgressClient, settings: DeliverySettings) -> Self {
        Self {
            egress,
            settings,
            budget: ATTEMPT_BUDGET,
            sweep: SweepLimits::DEFAULT,
            quiet: std::sync::Mutex::default(),
        }
    }

    /// How long a container holds off an endpoint that did not answer (defers its deliveries
    /// at once): the schedule's first wait.
    fn hold(&self) -> Duration {
        self.settings
            .schedule
            .waits()
            .first()
            .copied()
            .unwrap_or(HOLD_WITHOUT_SCHEDULE)
    }

    /// Whether the endpoint at `url` did not answer its last attempt, less than a hold ago.
    fn is_quiet(&self, url: &str, now: i64) -> bool {
        self.quiet
            .lock()
            .map(|quiet| quiet.get(url).is_some_and(|until| now < *until))
            .unwrap_or(false)
    }

    /// Records how the endpoint at `url` answered an attempt at `now`.
    fn note_answer(&self, url: &str, answered: bool, now: i64) {
        if let Ok(mut quiet) = self.quiet.lock() {
            if answered {
                quiet.remove(url);
            } else {
                // Only endpoints still held are kept: the map stays as small as they are few.
                quiet.retain(|_, until| now < *until);
                quiet.insert(url.to_owned(), now + seconds(self.hold()));
            }
        }
    }

    /// Runs `jobs`: one queue per webhook, in order; up to `concurrency` queues at once, each
    /// user's first queue before any user's second. `share`: the most attempts one webhook gets
    /// (a sweep's); the rest of its deliveries are postponed behind what is due now.
    pub async fn run(&self, app: &App, jobs: Vec<Job>, share: Option<usize>) -> Tally {
        let deadline = Instant::now() + self.budget;
        futures_stream::iter(fair_queues(jobs))
            .map(|queue| self.run_queue(app, queue, deadline, share))
            .buffer_unordered(self.settings.concurrency.max(1))
            .fold(
                Tally::default(),
                |total, tally| async move { total.add(tally) },
            )
            .await
    }

    /// One webhook's jobs, in order. The webhook is read before the first and right before
    /// each attempt; a delivery it no longer takes ends there. After an attempt that got no
    /// answer (in this queue, or at this endpoint in this container less than a hold ago), or
    /// once `deadline` passed, the rest are deferred unattempted; past `share` attempts,
    /// postponed.
    async fn run_queue(
        &self,
        app: &App,
        queue: Vec<Job>,
        deadline: Instant,
        share: Option<usize>,
    ) -> Tally {
        let mut tally = Tally::default();
        // The webhook as last read: `None` before the first read, `Some(None)` if deleted.
        let mut webhook: Option<Option<Webhook>> = None;
        let mut attempts = 0;
        let mut deferral: Option<Deferral> = None;
        for job in queue {
            if deferral.is_none() && Instant::now() >= deadline {
                deferral = Some(Deferral::OutOfTime);
            }
            let within_share = share.is_none_or(|most| attempts < most);
            let attempting = deferral.is_none() && within_share;
            // Read before the first job and before each attempt; a deleted webhook stays
            // deleted (ids are never reused), so its queue is not read again.
            let deleted = matches!(webhook, Some(None));
            if webhook.is_none() || (attempting && !deleted) {
                match self.current_webhook(app, &job).await {
                    Ok(found) => webhook = Some(found),
                    Err(e) => {
                        tracing::error!(error = %e, "reading a webhook failed");
                        tally.store_errors += 1;
                        continue;
                    }
                }
            }
            let hook = webhook
                .as_ref()
                .and_then(Option::as_ref)
                .filter(|hook| subscribes(hook, job.event()));
            let result = match hook {
                // Deleted, turned off or unsubscribed since: the delivery ends here.
                None => self.cancel(app, &job, &mut tally).await,
                Some(hook) if attempting && !self.is_quiet(&hook.url, app.clock.now()) => {
                    attempts += 1;
                    self.attempt_job(app, &job, hook, &mut tally).await
                }
                Some(hook) if attempting => {
                    deferral = Some(Deferral::Unanswered);
                    self.defer(app, &job, hook, Deferral::Unanswered, &mut tally)
                        .await
                }
                Some(hook) => match deferral {
                    Some(why) => self.defer(app, &job, hook, why, &mut tally).await,
                    None => self.postpone(app, &job, &mut tally).await,
                },
            };
            match result {
                Ok(effect) => {
                    if let (Some(url), true) = (&effect.attempted_url, effect.attempted) {
                        self.note_answer(url, !effect.unanswered, app.clock.now());
                    }
                    if effect.unanswered && deferral.is_none() {
                        deferral = Some(Deferral::Unanswered);
                    }
                    if effect.webhook_off {
                        if let Some(Some(hook)) = webhook.as_mut() {
                            hook.is_active = false;
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "recording a delivery failed");
                    tally.store_errors += 1;
                }
            }
        }
        tally
    }

    /// The webhook of a delivery, as it is now (`None` if deleted): a strongly consistent read.
    async fn current_webhook(&self, app: &App, job: &Job) -> Result<Option<Webhook>, StoreError> {
        match WebhookId::parse(job.webhook_id()) {
            Some(id) => app.store.webhook(job.user(), &id).await,
            None => Ok(None),
        }
    }

    /// Attempts `job` now (a due one is taken over first) with `webhook` as just read, and
    /// records what follows.
    async fn attempt_job(
        &self,
        app: &App,
        job: &Job,
        webhook: &Webhook,
        tally: &mut Tally,
    ) -> Result<Effect, StoreError> {
        let held = match job {
            Job::Held(item) => item.clone(),
            Job::Due(seen) => {
                let lease = self.lease_until(app.clock.now());
                match app.store.take_due_delivery(seen, lease).await? {
                    Some(held) => {
                        tally.taken += 1;
                        held
                    }
                    // Taken by another sweep, or finished, since the index was read.
                    None => return Ok(Effect::default()),
                }
            }
        };
        let send = Send {
            event: &held.event,
            event_id: &held.event_id,
            body: &held.payload,
            attempt_number: held.next_attempt,
        };
        let logged = logged_attempt(app, &self.egress, &held.user, webhook, send).await?;
        let now = app.clock.now();
        let next = match logged.outcome {
            Some(Outcome::Delivered) => Next::Settle(DeliveryState::Delivered),
            Some(Outcome::Gone) => Next::Settle(DeliveryState::Gone),
            // A failure, or an attempt refused by today's rules (`None`): retried like any
            // failure (the rules change only with configuration, so it fails for good at the
            // end).
            Some(Outcome::Failed { retry_after }) => {
                self.after_failure(held.next_attempt, retry_after, now)
            }
            None => self.after_failure(held.next_attempt, None, now),
        };
        let mut effect = Effect {
            attempted: logged.outcome.is_some(),
            attempted_url: Some(webhook.url.clone()),
            unanswered: logged.unanswered,
            webhook_off: next == Next::Settle(DeliveryState::Gone),
        };
        let Some(version) = held.as_due() else {
            return Ok(effect);
        };
        if self.finish(app, &version, next).await?.is_some() {
            match next {
                Next::Retry { .. } => tally.retrying += 1,
                Next::Settle(DeliveryState::Delivered) => tally.delivered += 1,
                Next::Settle(DeliveryState::Failed) => {
                    tally.failed += 1;
                    effect.webhook_off |=
                        self.failed_for_good(app, &held.user, webhook, now).await?;
                }
                Next::Settle(_) => tally.failed += 1,
            }
        }
        Ok(effect)
    }

    /// What follows attempt number `attempt` that failed (asking `retry_after`), or was
    /// deferred: the schedule's next attempt after its wait, or the end.
    fn after_failure(&self, attempt: u32, retry_after: Option<Duration>, now: i64) -> Next {
        match self.settings.schedule.after_failure(attempt, retry_after) {
            NextStep::RetryAfter(wait) => Next::Retry {
                attempt: attempt.saturating_add(1),
                at: now + seconds(wait),
            },
            NextStep::GiveUp => Next::Settle(DeliveryState::Failed),
        }
    }

    /// Counts a delivery to `webhook` that failed for good in its `failureCount`; `true` if
    /// that turned the webhook off.
    async fn failed_for_good(
        &self,
        app: &App,
        user: &UserId,
        webhook: &Webhook,
        now: i64,
    ) -> Result<bool, StoreError> {
        let disabled = app
            .store
            .count_terminal_failure(user, &webhook.id, now)
            .await?;
        if disabled {
            tracing::warn!(
                webhook_id = webhook.id.as_str(),
                "webhook turned off after consecutive failed deliveries"
            );
        }
        Ok(disabled)
    }

    /// Defers `job` unattempted, `why`, as a failed attempt for the schedule: to its next
    /// attempt after the schedule's wait, or, if it was the last, failed for good, logged (with
    /// the bytes, so it can be redelivered) and counted.
    async fn defer(
        &self,
        app: &App,
        job: &Job,
        webhook: &Webhook,
        why: Deferral,
        tally: &mut Tally,
    ) -> Result<Effect, StoreError> {
        let Some(version) = job.version() else {
            return Ok(Effect::default());
        };
        let now = app.clock.now();
        let next = self.after_failure(version.next_attempt, None, now);
        let Some(item) = self.finish(app, &version, next).await? else {
            return Ok(Effect::default());
        };
        if let Next::Retry { .. } = next {
            tally.deferred += 1;
            return Ok(Effect::default());
        }
        tally.failed += 1;
        let send = Send {
            event: &item.event,
            event_id: &item.event_id,
            body: &item.payload,
            attempt_number: item.next_attempt,
        };
        let message = why.last_attempt_message(item.next_attempt);
        tracing::info!(
            webhook_id = webhook.id.as_str(),
            event = send.event,
            event_id = send.event_id,
            attempt = send.attempt_number,
            status = LogStatus::Failed.as_str(),
            "webhook delivery failed for good unattempted"
        );
        app.store
            .log_attempt(&item.user, &log_entry(webhook, send, now, Some(message)))
            .await?;
        Ok(Effect {
            webhook_off: self.failed_for_good(app, &item.user, webhook, now).await?,
            ..Effect::default()
        })
    }

    /// Moves `job`, past its webhook's share of this sweep, just behind every delivery due now,
    /// at the same attempt: the next sweep reads the shard's other due deliveries before it,
    /// so one webhook's backlog cannot take a shard's read sweep after sweep.
    async fn postpone(
        &self,
        app: &App,
        job: &Job,
        tally: &mut Tally,
    ) -> Result<Effect, StoreError> {
        if let Some(version) = job.version() {
            let next = Next::Retry {
                attempt: version.next_attempt,
                at: app.clock.now() + 1,
            };
            if self.finish(app, &version, next).await?.is_some() {
                tally.postponed += 1;
            }
        }
        Ok(Effect::default())
    }

    /// Ends `job` unattempted: its webhook was deleted, turned off or unsubscribed.
    async fn cancel(&self, app: &App, job: &Job, tally: &mut Tally) -> Result<Effect, StoreError> {
        if let Some(version) = job.version() {
            let next = Next::Settle(DeliveryState::Cancelled);
            if self.finish(app, &version, next).await?.is_some() {
                tally.cancelled += 1;
            }
        }
        Ok(Effect::default())
    }

    /// Records `next` for the delivery at `version`: the item as it was, or `None` (logged) if
    /// it had moved on (its lease passed to another holder, or another sweep moved it).
    async fn finish(
        &self,
        app: &App,
        version: &DueDelivery,
        next: Next,
    ) -> Result<Option<DeliveryItem>, StoreError> {
        let done = app
            .store
            .finish_delivery(version, next, app.clock.now())
            .await?;
        if done.is_none() {
            tracing::warn!(
                webhook_id = version.webhook_id.as_str(),
                event_id = version.event_id.as_str(),
                "delivery moved on while this run held or saw it (lease passed, or another sweep)"
            );
        }
        Ok(done)
    }
}

/// What a job's outcome means for the rest of its queue.
#[derive(Debug, Default, Clone)]
struct Effect {
    /// An attempt was made (not refused before it started).
    attempted: bool,
    /// The endpoint it was made to.
    attempted_url: Option<String>,
    /// The attempt got no answer: the rest of the queue is deferred.
    unanswered: bool,
    /// The webhook was turned off (410, or too many failures): the rest is cancelled.
    webhook_off: bool,
}

/// `jobs` in one queue per webhook, each in the order it came; the queues in rounds, every
/// user's first queue (in order of appearance) before any user's second, so one user's many
/// webhooks cannot take every slot ahead of another user's one.
fn fair_queues(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut order: Vec<(UserId, String)> = Vec::new();
    let mut queues: HashMap<(UserId, String), Vec<Job>> = HashMap::new();
    for job in jobs {
        let key = (job.user().clone(), job.webhook_id().to_owned());
        let queue = queues.entry(key.clone()).or_default();
        if queue.is_empty() {
            order.push(key);
        }
        queue.push(job);
    }
    let mut round_of_user: HashMap<UserId, usize> = HashMap::new();
    let mut ranked: Vec<(usize, Vec<Job>)> = order
        .into_iter()
        .filter_map(|key| {
            let round = round_of_user.entry(key.0.clone()).or_default();
            let ranked = (*round, queues.remove(&key)?);
            *round += 1;
            Some(ranked)
        })
        .collect();
    // Stable: within a round, the order of appearance.
    ranked.sort_by_key(|(round, _)| *round);
    ranked.into_iter().map(|(_, queue)| queue).collect()
}

/// A duration in whole epoch seconds, rounded up.
fn seconds(d: Duration) -> i64 {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i64::try_from(whole).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::Targets;

    fn deliverer() -> Deliverer {
        // The default schedule: a first wait of 10 s.
        let settings = DeliverySettings::default();
        let egress = EgressClient::new(Targets::PublicOnly, settings.timeout).expect("a client");
        Deliverer::new(egress, settings)
    }

    #[test]
    fn an_endpoint_that_did_not_answer_is_held_off_for_the_first_wait_then_forgotten() {
        let d = deliverer();
        let (a, b) = ("https://a.example/hook", "https://b.example/hook");
        d.note_answer(a, false, 100);
        assert!(d.is_quiet(a, 109));
        assert!(!d.is_quiet(a, 110));
        assert!(!d.is_quiet(b, 105), "only that endpoint");
        // Another endpoint's silence later drops the one no longer held.
        d.note_answer(b, false, 120);
        assert_eq!(d.quiet.lock().map(|q| q.len()).unwrap_or(0), 1);
        // An answer ends the hold at once.
        d.note_answer(b, true, 121);
        assert!(!d.is_quiet(b, 122));
        assert_eq!(d.quiet.lock().map(|q| q.len()).unwrap_or(9), 0);
    }
}
