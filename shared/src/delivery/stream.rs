//! One batch of the table's stream records: the events they report, one claimed delivery per
//! subscribed webhook, then the attempts.
//!
//! Records are read in order. A record fails (`batchItemFailures`) only when the table could
//! not be read or written while its deliveries were claimed; Lambda then hands the batch over
//! again from the earliest failed record, so that record and every later one are reported, and
//! the claims already made make the second pass deliver nothing twice. A record that does not
//! parse, or an image that does not decode, is logged and skipped: it would fail the same way
//! every time, and a failing record blocks its shard. The attempts come after every claim, and
//! an endpoint's failure is never a record's failure: it is a retry in the delivery item.

use std::collections::HashMap;

use serde_json::Value;

use super::{subscribes, Deliverer, Job, Tally};
use crate::app::App;
use crate::events::{batch_item_failures, events_of, Event, StreamRecord};
use crate::session::UserId;
use crate::store::{Claim, DeliveryItem, DeliveryState, StoreError};
use crate::webhooks::Webhook;

/// What a batch did, for the invocation's log line and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Records in the batch.
    pub records: usize,
    /// Events the records reported.
    pub events: usize,
    /// Deliveries claimed by this invocation.
    pub claimed: usize,
    /// Deliveries that existed already (the record was processed before).
    pub duplicates: usize,
    /// The sequence numbers reported as failed, earliest first.
    pub failed: Vec<String>,
    /// What the attempts did.
    pub tally: Tally,
}

impl BatchReport {
    /// Lambda's partial batch response: `{"batchItemFailures": [{"itemIdentifier": …}]}`.
    pub fn response(&self) -> Value {
        batch_item_failures(&self.failed)
    }
}

/// Handles a Lambda DynamoDB Streams event (`{"Records": […]}`).
pub async fn handle_batch(app: &App, deliverer: &Deliverer, event: &Value) -> BatchReport {
    let mut report = BatchReport::default();
    let records = match StreamRecord::all_from_lambda_event(event) {
        Ok(records) => records,
        Err(e) => {
            tracing::error!(error = %e, "not a stream batch: nothing to do");
            return report;
        }
    };
    report.records = records.len();
    let mut webhooks: HashMap<UserId, Vec<Webhook>> = HashMap::new();
    let mut jobs = Vec::new();
    let mut failing = false;
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(error = %e, "stream record skipped");
                continue;
            }
        };
        if failing {
            // Lambda starts again from the earliest failure: report the rest with it.
            report.failed.extend(record.sequence_number.clone());
            continue;
        }
        let events = match events_of(&record) {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(error = %e, "stream image skipped");
                continue;
            }
        };
        report.events += events.len();
        for event in &events {
            match claim_all(app, deliverer, &mut webhooks, event, &mut report).await {
                Ok(claimed) => jobs.extend(claimed),
                Err(e) => {
                    tracing::error!(error = %e, event_id = event.id.as_str(), "claiming deliveries failed");
                    failing = true;
                    break;
                }
            }
        }
        if failing {
            match &record.sequence_number {
                Some(seq) => report.failed.push(seq.clone()),
                None => tracing::error!("a failed record has no sequence number"),
            }
        }
    }
    report.tally = deliverer.run(app, jobs, None).await;
    report
}

/// Claims the delivery of `event` to each of its user's webhooks that is on and subscribes to
/// it (as the batch read them; each attempt reads its webhook again): the jobs this invocation
/// holds.
async fn claim_all(
    app: &App,
    deliverer: &Deliverer,
    cache: &mut HashMap<UserId, Vec<Webhook>>,
    event: &Event,
    report: &mut BatchReport,
) -> Result<Vec<Job>, StoreError> {
    let hooks = match cache.get(&event.user_id) {
        Some(hooks) => hooks,
        None => {
            let hooks = app.store.webhooks(&event.user_id).await?;
            cache.entry(event.user_id.clone()).or_insert(hooks)
        }
    };
    let name = event.event.as_str();
    let subscribed: Vec<&Webhook> = hooks.iter().filter(|h| subscribes(h, name)).collect();
    if subscribed.is_empty() {
        return Ok(Vec::new());
    }
    // The same bytes for every webhook and every attempt.
    let payload = serde_json::to_vec(&event.body).unwrap_or_default();
    let mut jobs = Vec::new();
    for webhook in subscribed {
        let now = app.clock.now();
        let item = DeliveryItem {
            user: event.user_id.clone(),
            webhook_id: webhook.id.as_str().to_owned(),
            event_id: event.id.clone(),
            event: name.to_owned(),
            payload: payload.clone(),
            next_attempt: 1,
            due_at: None,
            state: DeliveryState::Pending,
        };
        match app
            .store
            .claim_delivery(item, now, deliverer.lease_until(now))
            .await?
        {
            Claim::Claimed(held) => {
                report.claimed += 1;
                jobs.push(Job::Held(held));
            }
            Claim::Exists => report.duplicates += 1,
        }
    }
    Ok(jobs)
}
