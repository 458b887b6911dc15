//! `POST /v1/webhooks/logs/recover` `{webhookId, since, until?}`: one more attempt for each
//! event whose latest attempt to the webhook in the window failed, oldest first, queued for the
//! events function's sweep ([`crate::delivery::recover`]). Answers `{success, queued, skipped,
//! hasMore, nextSince?}`: `queued` deliveries are due now (the sweep attempts them within a
//! minute or two, each logged as usual); `skipped` failed events were not queued (the webhook no
//! longer takes them, tests, or already due); with `hasMore`, a later call with `since` =
//! `nextSince` goes on.
//!
//! Bounded: `since` at most 30 days back; at most [`RECOVER_PER_CALL`] events a call, and each
//! queued one takes one of the user's attempts of the minute that test and redeliver share
//! (429 when none is left, nothing queued).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{json, Map, Value};

use super::Call;
use crate::delivery::{lease, recover};
use crate::edge::{json_response, ApiError};
use crate::session::rfc3339;
use crate::webhooks::{RecoverWindow, RECOVER_PER_CALL};

pub(super) async fn recover(call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let (body, webhook) = call.named_webhook(None).await?;
    let window = RecoverWindow::parse(&body, call.now)?;
    // Never more than the minute could grant: what is read stays within what can be queued.
    let most = usize::try_from(call.app.config.user_webhook_attempts_per_minute)
        .unwrap_or(0)
        .min(RECOVER_PER_CALL);
    // A delivery due sooner than an attempt's lease is about to be attempted, or is now.
    let horizon = call.now + i64::try_from(lease(call.egress.timeout()).as_secs()).unwrap_or(0);
    let mut plan = recover::plan(call.app, &call.user, &webhook, window, most, horizon).await?;
    let (granted, usage) = call.take_attempts(plan.due.len()).await?;
    if granted < plan.due.len() {
        plan.next_since = Some(plan.due[granted].first_at);
        plan.due.truncate(granted);
    }
    let queued = recover::queue(call.app, &call.user, &webhook, &plan.due, call.now).await?;
    // One that moved on between the read and its write was not queued: its unit goes back.
    let unused = i64::try_from(granted - queued).unwrap_or(0);
    call.app
        .store
        .give_back_webhook_attempts(&call.user, call.now, unused)
        .await?;
    let usage = crate::limits::Usage {
        used: usage.used - unused,
        ..usage
    };
    tracing::info!(
        webhook_id = webhook.id.as_str(),
        queued,
        skipped = plan.skipped,
        has_more = plan.next_since.is_some(),
        "webhook recover"
    );
    let mut answer = Map::new();
    answer.insert("success".into(), Value::Bool(true));
    answer.insert("queued".into(), json!(queued));
    answer.insert("skipped".into(), json!(plan.skipped));
    answer.insert("hasMore".into(), Value::Bool(plan.next_since.is_some()));
    if let Some(next) = plan.next_since {
        answer.insert("nextSince".into(), Value::String(rfc3339(next)));
    }
    Ok(call.with_rate(json_response(StatusCode::OK, &answer), usage))
}
