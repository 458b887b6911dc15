//! The phone function: the virtual phones play from the table's stream. A record of an
//! accepted send to a virtual phone (`graph::virtual_phone::cue_of`: a session's new
//! `activationMessageId`, a conversation item's new outbound `messageId`) becomes what the
//! phone writes back (`graph::virtual_phone::deliveries`), each delivery signed with the app
//! secret and handed to the webhook's own entry point in process ([`hand_over`]): the signature
//! check, the parsing and the processing Meta's deliveries get.
//!
//! Why the stream: a status names the `wamid` the service stored (`record_delivery` is
//! conditional on `activationMessageId`; a message's status finds its item by its tag), so it
//! must never be processed before that record exists. The record's stream entry exists only
//! once it does. The same path runs on AWS (an event source mapping), under `make dev`
//! (`tools/stream-pump`) and in the tests (`tests/support`), with no network hop.
//!
//! Records are played in order. A record fails (`batchItemFailures`) only when the table
//! could not be read or written while its deliveries were processed; Lambda then hands the
//! batch over again from it. Replaying is harmless: every delivery is derived from the record
//! (times, the ids of the phone's own messages), statuses only move forward, and the webhook
//! de-duplicates messages by id. A record that does not parse, or an image that does not
//! decode, is logged and skipped, as the events function does.

use std::time::Instant;

use serde_json::{json, Value};

use crate::app::App;
use crate::edge::ApiError;
use crate::events::{batch_item_failures, batch_status, StreamBatch};
use crate::graph::virtual_phone::{cue_of, deliveries};
use crate::meta::signature::sign;
use crate::meta::wire::Business;

/// What a batch did, for the invocation's log line and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlayReport {
    /// Records in the batch.
    pub records: usize,
    /// Records that cued a virtual phone.
    pub cues: usize,
    /// Deliveries handed to the webhook.
    pub deliveries: usize,
    /// The sequence numbers reported as failed, earliest first.
    pub failed: Vec<String>,
}

impl PlayReport {
    /// Lambda's partial batch response: `{"batchItemFailures": [{"itemIdentifier": …}]}`.
    pub fn response(&self) -> Value {
        batch_item_failures(&self.failed)
    }
}

/// One invocation of the phone function: a stream batch (`{"Records": […]}`) answers Lambda's
/// partial batch response. One log line per invocation, with the request id, the counts and
/// the time taken.
pub async fn handle(app: &App, request_id: &str, payload: &Value) -> Value {
    let started = Instant::now();
    if payload.get("Records").is_none() {
        tracing::warn!(
            request_id,
            route = "unknown",
            status = "ignored",
            "invocation: not a stream batch"
        );
        return json!({ "ignored": true });
    }
    let report = handle_batch(app, payload).await;
    tracing::info!(
        request_id,
        route = "stream",
        status = batch_status(&report.failed),
        records = report.records,
        cues = report.cues,
        deliveries = report.deliveries,
        failed_records = report.failed.len(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "invocation"
    );
    report.response()
}

/// Plays a Lambda DynamoDB Streams event (`{"Records": […]}`): each record's cue, in order.
pub async fn handle_batch(app: &App, event: &Value) -> PlayReport {
    let mut batch = StreamBatch::of(event);
    let mut report = PlayReport {
        records: batch.record_count(),
        ..PlayReport::default()
    };
    while let Some(record) = batch.next() {
        let cue = match cue_of(&record, &app.config) {
            Ok(Some(cue)) => cue,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, "stream image skipped");
                continue;
            }
        };
        report.cues += 1;
        tracing::info!(phone = %cue.phone, line = cue.line.number(), "virtual phone plays");
        for delivery in deliveries(&cue, business(app)) {
            if let Err(e) = hand_over(app, &delivery).await {
                tracing::error!(error = %e, "a virtual phone's delivery could not be processed");
                batch.fail(&record);
                break;
            }
            report.deliveries += 1;
        }
    }
    report.failed = batch.into_failed();
    report
}

/// The sandbox number as deliveries name it.
pub fn business(app: &App) -> Business<'_> {
    Business {
        phone_number_id: &app.config.phone_number_id,
        display_number: app.config.display_digits(),
    }
}

/// Signs `delivery` with the app secret, as Meta signs its deliveries, and hands it to the
/// webhook's own entry point (`api::webhook::accept`). An error is the webhook's: a storage
/// failure (`ServiceUnavailable`), or a missing app secret.
pub async fn hand_over(app: &App, delivery: &Value) -> Result<(), ApiError> {
    let body = delivery.to_string();
    let secret = app
        .config
        .app_secret
        .as_ref()
        .map(|s| s.expose().as_bytes())
        .ok_or(ApiError::InvalidSignature)?;
    let signature = sign(secret, body.as_bytes());
    crate::api::webhook::accept(app, body.as_bytes(), Some(&signature)).await
}
