//! `GET /v1/webhooks/logs?event&eventId&status&webhookId&limit&skip`: the caller's delivery
//! log (30 days), newest first, filtered, `limit` (1-100, default 50) entries after the first
//! `skip`, with the number of matching entries in all: `{logs, pagination: {total, limit,
//! skip, pages, hasMore}}` (`pages` of `limit` entries in all; `hasMore` when entries follow
//! this page). Secrets are never logged, so never shown.

use lambda_http::http::StatusCode;
use lambda_http::{Body, RequestExt, Response};
use serde_json::{json, Value};

use super::Call;
use crate::edge::{json_response, ApiError};
use crate::webhooks::{
    field, LogEntry, LogFilter, LogStatus, DEFAULT_LOG_PAGE, MAX_LOG_PAGE, MAX_LOG_SKIP,
    SUPPORTED_EVENTS,
};

pub(super) async fn logs(call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let params = call.req.query_string_parameters();
    let raw = |name: &str| params.first(name).map(str::to_owned);
    // An empty id filters nothing; an empty event, status, limit or skip is refused.
    let text = |name: &str| raw(name).filter(|v| !v.is_empty());
    let event = match raw("event") {
        Some(e) if !SUPPORTED_EVENTS.contains(&e.as_str()) => {
            return Err(field(
                "event",
                format!("event must be one of {}", SUPPORTED_EVENTS.join(", ")),
            )
            .into())
        }
        other => other,
    };
    let status = match raw("status") {
        None => None,
        Some(s) => Some(
            LogStatus::parse(&s)
                .ok_or_else(|| field("status", "status must be success or failed"))?,
        ),
    };
    let limit = number(raw("limit"), "limit", 1, MAX_LOG_PAGE, DEFAULT_LOG_PAGE)?;
    let skip = number(raw("skip"), "skip", 0, MAX_LOG_SKIP, 0)?;
    let filter = LogFilter {
        event,
        event_id: text("eventId"),
        status,
        webhook_id: text("webhookId"),
    };
    let page = call
        .app
        .store
        .webhook_logs(&call.user, &filter, skip, limit, call.now)
        .await?;
    let logs: Vec<Value> = page.entries.iter().map(LogEntry::view).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "logs": logs,
            "pagination": {
                "total": page.total,
                "limit": limit,
                "skip": skip,
                "pages": page.total.div_ceil(limit),
                "hasMore": skip.saturating_add(logs.len()) < page.total,
            },
        }),
    ))
}

/// A whole number from `min` to `max`, `default` when absent.
fn number(
    raw: Option<String>,
    param: &'static str,
    min: usize,
    max: usize,
    default: usize,
) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(field(
                param,
                format!("{param} must be a whole number from {min} to {max}"),
            )
            .into()),
        },
    }
}
