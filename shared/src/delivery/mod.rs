//! Delivery I/O: events reach the API users' webhooks. The `events` function runs it; the
//! `/v1/webhooks/test` and `/logs/redeliver` routes use its one logged attempt.
//!
//! - [`stream`]: a batch of the table's stream records → the events they report
//!   (`crate::events`, pure) → one claimed delivery per subscribed webhook → attempts. Only a
//!   storage failure fails a record (`batchItemFailures`); an endpoint's failure is a retry.
//! - [`sweep`]: every minute, the deliveries whose retry (or lease) is due.
//! - [`logged_attempt`]: one attempt, its log entry and what it means for the webhook.
//!
//! # Fairness
//! A batch's deliveries run in one queue per webhook, in order, and up to
//! [`DeliverySettings::concurrency`] queues at once. A queue whose attempt got no answer
//! (timed out, could not connect, refused) defers the rest of its deliveries in this
//! invocation to the schedule's first wait, unattempted: a hanging endpoint costs its own
//! queue one attempt timeout, and holds up no other webhook's deliveries. The container then
//! attempts none of that webhook's deliveries for the schedule's first wait (they are deferred
//! at once), so a stream of batches pays that timeout once per wait, not once per batch. A
//! queue still going
//! after [`ATTEMPT_BUDGET`] (a receiver that answers, slowly, every time) defers the rest too,
//! so an invocation ends inside the function's timeout.
//!
//! [`DeliverySettings::concurrency`]: crate::outbound::DeliverySettings

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
use crate::store::{DeliveryItem, DeliveryState, Next, StoreError, WebhookOutcome};
use crate::webhooks::{LogEntry, LogStatus, Webhook, WebhookId};

/// One invocation of the events function: a stream batch (`{"Records": […]}`) answers
/// Lambda's partial batch response; the schedule's event (`"detail-type": "Scheduled
/// Event"`) sweeps and answers `{"swept": n}`. One log line per invocation, with the request
/// id, what it was, the counts and the time taken.
pub async fn handle(app: &App, deliverer: &Deliverer, request_id: &str, payload: &Value) -> Value {
    let started = Instant::now();
    if payload.get("Records").is_some() {
        let report = stream::handle_batch(app, deliverer, payload).await;
        tracing::info!(
            request_id,
            route = "stream",
            status = if report.failed.is_empty() {
                "ok"
            } else {
                "partial"
            },
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
        let (swept, fields) = match sweep::sweep(app, deliverer).await {
            Ok(report) => (report.taken, Some(report)),
            Err(e) => {
                tracing::error!(error = %e, "the sweep could not read the due deliveries");
                (0, None)
            }
        };
        let tally = fields.as_ref().map(|r| r.tally).unwrap_or_default();
        tracing::info!(
            request_id,
            route = "sweep",
            status = if fields.is_some() { "ok" } else { "failed" },
            due = fields.as_ref().map_or(0, |r| r.due),
            taken = swept,
            delivered = tally.delivered,
            retrying = tally.retrying,
            deferred = tally.deferred,
            failed = tally.failed,
            cancelled = tally.cancelled,
            store_errors = tally.store_errors,
            latency_ms = elapsed_ms(started),
            "invocation"
        );
        return json!({ "swept": swept });
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

/// The wait before a deferred delivery (one whose queue met a hanging endpoint) is tried, when
/// the schedule has no waits.
const DEFER_WITHOUT_SCHEDULE: Duration = Duration::from_secs(10);

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
    /// Webhooks whose last attempt got no answer, and until when (epoch seconds) this
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
        match webhook.delivery_parts(egress.targets()) {
            // Set while other rules applied (private targets allowed then): refused now.
            Err(reason) => (None, None, 0, String::new(), Err(reason)),
            Ok((url, secret, headers)) => {
                let delivery = Delivery {
                    url: &url,
                    event: send.event,
                    event_id: send.event_id,
                    body: send.body,
                    secret: &secret,
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
        webhook_id: webhook.id.as_str().to_owned(),
        webhook_name: webhook.name.clone(),
        event_id: send.event_id.to_owned(),
        event: send.event.to_owned(),
        url: webhook.url.clone(),
        status,
        status_code,
        request_payload: send.body.to_vec(),
        response_body,
        error_message,
        attempt_number: send.attempt_number,
        response_time_ms,
        created_at: now,
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

/// A delivery the caller holds (claimed, or taken over from the due index), and the webhook
/// as the caller read it (`None`: read it before the attempt).
#[derive(Debug, Clone)]
pub struct Job {
    /// The held delivery.
    pub held: DeliveryItem,
    /// The webhook, when already read.
    pub webhook: Option<Webhook>,
}

/// What a run of jobs did, for the invocation's log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Attempts that delivered.
    pub delivered: usize,
    /// Attempts that failed and will be retried.
    pub retrying: usize,
    /// Deliveries deferred unattempted behind an endpoint that did not answer.
    pub deferred: usize,
    /// Deliveries that failed for good (last attempt) or met a 410.
    pub failed: usize,
    /// Deliveries dropped: the webhook was deleted or turned off.
    pub cancelled: usize,
    /// Jobs whose storage writes failed (the lease makes the sweep finish them).
    pub store_errors: usize,
}

impl Tally {
    fn add(mut self, other: Self) -> Self {
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.deferred += other.deferred;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.store_errors += other.store_errors;
        self
    }
}

impl Deliverer {
    /// How long a claim or take-over holds a delivery.
    pub fn lease(&self) -> Duration {
        self.settings.timeout + LEASE_MARGIN
    }

    /// `now` plus the lease, in epoch seconds.
    pub fn lease_until(&self, now: i64) -> i64 {
        now + seconds(self.lease())
    }

    /// A deliverer with the default budget.
    pub fn new(egress: EgressClient, settings: DeliverySettings) -> Self {
        Self {
            egress,
            settings,
            budget: ATTEMPT_BUDGET,
            quiet: std::sync::Mutex::default(),
        }
    }

    /// How long deliveries are put off behind an endpoint that did not answer: the
    /// schedule's first wait.
    fn hold(&self) -> Duration {
        self.settings
            .schedule
            .waits()
            .first()
            .copied()
            .unwrap_or(DEFER_WITHOUT_SCHEDULE)
    }

    /// Whether `webhook_id`'s endpoint did not answer its last attempt, less than a hold ago.
    fn is_quiet(&self, webhook_id: &str, now: i64) -> bool {
        self.quiet
            .lock()
            .map(|quiet| quiet.get(webhook_id).is_some_and(|until| now < *until))
            .unwrap_or(false)
    }

    /// Records how `webhook_id`'s endpoint answered an attempt at `now`.
    fn note_answer(&self, webhook_id: &str, answered: bool, now: i64) {
        if let Ok(mut quiet) = self.quiet.lock() {
            if answered {
                quiet.remove(webhook_id);
            } else {
                quiet.insert(webhook_id.to_owned(), now + seconds(self.hold()));
            }
        }
    }

    /// Runs `jobs`: one queue per webhook, in order; up to `concurrency` queues at once.
    pub async fn run(&self, app: &App, jobs: Vec<Job>) -> Tally {
        let deadline = Instant::now() + self.budget;
        let mut order: Vec<(UserId, String)> = Vec::new();
        let mut queues: HashMap<(UserId, String), Vec<Job>> = HashMap::new();
        for job in jobs {
            let key = (job.held.user.clone(), job.held.webhook_id.clone());
            let queue = queues.entry(key.clone()).or_default();
            if queue.is_empty() {
                order.push(key);
            }
            queue.push(job);
        }
        let queues: Vec<Vec<Job>> = order
            .into_iter()
            .filter_map(|key| queues.remove(&key))
            .collect();
        futures_stream::iter(queues)
            .map(|queue| self.run_queue(app, queue, deadline))
            .buffer_unordered(self.settings.concurrency.max(1))
            .fold(
                Tally::default(),
                |total, tally| async move { total.add(tally) },
            )
            .await
    }

    /// One webhook's jobs, in order. After an attempt that got no answer (in this queue, or in
    /// this container less than a hold ago), or once `deadline` passed, the rest are deferred
    /// unattempted.
    async fn run_queue(&self, app: &App, queue: Vec<Job>, deadline: Instant) -> Tally {
        let mut tally = Tally::default();
        let mut webhook: Option<Option<Webhook>> = None;
        let webhook_id = queue
            .first()
            .map(|job| job.held.webhook_id.clone())
            .unwrap_or_default();
        let mut tripped = self.is_quiet(&webhook_id, app.clock.now());
        for job in queue {
            if webhook.is_none() {
                webhook = match job.webhook.clone() {
                    Some(known) => Some(Some(known)),
                    None => match self.current_webhook(app, &job.held).await {
                        Ok(found) => Some(found),
                        Err(e) => {
                            tracing::error!(error = %e, "reading a webhook failed");
                            tally.store_errors += 1;
                            continue;
                        }
                    },
                };
            }
            tripped |= Instant::now() >= deadline;
            let result = match webhook.as_ref().and_then(Option::as_ref) {
                Some(hook) if hook.is_active && !tripped => {
                    self.attempt_job(app, &job.held, hook, &mut tally).await
                }
                Some(hook) if hook.is_active => self.defer(app, &job.held, &mut tally).await,
                // Deleted or turned off since: the delivery ends here.
                _ => {
                    tally.cancelled += 1;
                    self.finish(app, &job.held, Next::Settle(DeliveryState::Cancelled))
                        .await
                        .map(|_| Effect::default())
                }
            };
            match result {
                Ok(effect) => {
                    if effect.attempted {
                        self.note_answer(&webhook_id, !effect.unanswered, app.clock.now());
                    }
                    tripped |= effect.unanswered;
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

    /// The webhook of a delivery, as it is now (`None` if deleted).
    async fn current_webhook(
        &self,
        app: &App,
        held: &DeliveryItem,
    ) -> Result<Option<Webhook>, StoreError> {
        match WebhookId::parse(&held.webhook_id) {
            Some(id) => app.store.webhook(&held.user, &id).await,
            None => Ok(None),
        }
    }

    /// Attempts `held` now and records what follows.
    async fn attempt_job(
        &self,
        app: &App,
        held: &DeliveryItem,
        webhook: &Webhook,
        tally: &mut Tally,
    ) -> Result<Effect, StoreError> {
        let send = Send {
            event: &held.event,
            event_id: &held.event_id,
            body: &held.payload,
            attempt_number: held.next_attempt,
        };
        let logged = logged_attempt(app, &self.egress, &held.user, webhook, send).await?;
        let now = app.clock.now();
        let next = match logged.outcome {
            Some(Outcome::Delivered) => {
                tally.delivered += 1;
                Next::Settle(DeliveryState::Delivered)
            }
            Some(Outcome::Gone) => {
                tally.failed += 1;
                Next::Settle(DeliveryState::Gone)
            }
            // A failure, or an attempt refused by today's rules (`None`): retried like any
            // failure (the rules change only with configuration, so it fails for good at the
            // end).
            failed => {
                let retry_after = match failed {
                    Some(Outcome::Failed { retry_after }) => retry_after,
                    _ => None,
                };
                match self
                    .settings
                    .schedule
                    .after_failure(held.next_attempt, retry_after)
                {
                    NextStep::RetryAfter(wait) => {
                        tally.retrying += 1;
                        Next::Retry {
                            attempt: held.next_attempt.saturating_add(1),
                            at: now + seconds(wait),
                        }
                    }
                    NextStep::GiveUp => {
                        tally.failed += 1;
                        Next::Settle(DeliveryState::Failed)
                    }
                }
            }
        };
        let finished = self.finish(app, held, next).await?;
        let mut webhook_off = next == Next::Settle(DeliveryState::Gone);
        if finished && next == Next::Settle(DeliveryState::Failed) {
            let disabled = app
                .store
                .count_terminal_failure(&held.user, &webhook.id, now)
                .await?;
            if disabled {
                tracing::warn!(
                    webhook_id = webhook.id.as_str(),
                    "webhook turned off after consecutive failed deliveries"
                );
            }
            webhook_off |= disabled;
        }
        Ok(Effect {
            attempted: logged.outcome.is_some(),
            unanswered: logged.unanswered,
            webhook_off,
        })
    }

    /// Puts `held` off, unattempted, to the schedule's first wait.
    async fn defer(
        &self,
        app: &App,
        held: &DeliveryItem,
        tally: &mut Tally,
    ) -> Result<Effect, StoreError> {
        tally.deferred += 1;
        let wait = self.hold();
        let next = Next::Retry {
            attempt: held.next_attempt,
            at: app.clock.now() + seconds(wait),
        };
        self.finish(app, held, next)
            .await
            .map(|_| Effect::default())
    }

    /// Records `next` for `held`; `false` (logged) if the lease had passed to another holder.
    async fn finish(&self, app: &App, held: &DeliveryItem, next: Next) -> Result<bool, StoreError> {
        let done = app
            .store
            .finish_delivery(held, next, app.clock.now())
            .await?;
        if !done {
            tracing::warn!(
                webhook_id = held.webhook_id.as_str(),
                event_id = held.event_id.as_str(),
                "delivery changed hands while held (lease passed)"
            );
        }
        Ok(done)
    }
}

/// What a job's outcome means for the rest of its queue.
#[derive(Debug, Default, Clone, Copy)]
struct Effect {
    /// An attempt was made (not refused before it started).
    attempted: bool,
    /// The attempt got no answer: the rest of the queue is deferred.
    unanswered: bool,
    /// The webhook was turned off (410, or too many failures): the rest is cancelled.
    webhook_off: bool,
}

/// A duration in whole epoch seconds, rounded up.
fn seconds(d: Duration) -> i64 {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i64::try_from(whole).unwrap_or(i64::MAX)
}
