//! `/v1/webhooks/*`: an API user's outbound webhooks as `@zernio/node` calls them. One function
//! serves the seven routes; a module per route.
//!
//! Test and redeliver make one attempt now through the function's [`EgressClient`] (built once
//! per container, only in this function), log it, and answer with its [`outcome`]:
//! `{success, message, statusCode, responseTime, error, eventId, attemptNumber}`. A 410 turns the webhook
//! off; a success sets `lastFiredAt` and resets `failureCount`. Together they start at most
//! `USER_WEBHOOK_ATTEMPTS_PER_MINUTE` attempts per user and minute (429 past it, with the
//! `X-RateLimit-*` headers on both answers), so neither hammers a third party or maps its
//! ports.

/// `GET /v1/webhooks/logs`: the delivery log, filtered and paged.
pub mod logs;
/// `POST /v1/webhooks/logs/redeliver`: the logged bytes again, under the same event id.
pub mod redeliver;
/// `POST`, `GET`, `PUT`, `DELETE /v1/webhooks/settings`.
pub mod settings;
/// `POST /v1/webhooks/test`: a `webhook.test` event now.
pub mod test;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::app::App;
use crate::delivery::{logged_attempt, Send};
use crate::edge::{
    json_object_within, json_response, serve, with_rate_limit_headers_until, ApiError, Sends,
};
use crate::limits::{Scope, Usage};
use crate::outbound::EgressClient;
use crate::session::UserId;
use crate::store::AttemptUnit;
use crate::webhooks::{LogEntry, LogStatus, Webhook};

/// The largest body these routes read: ten custom headers of 1,024 characters, a 2,048
/// character URL and the rest fit, even with every character written as a JSON escape.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// One of the seven routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Create,
    List,
    Update,
    Delete,
    Test,
    Logs,
    Redeliver,
}

impl Route {
    /// The route of a method and path (a trailing slash or a stage prefix is ignored).
    fn of(method: &Method, path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        let is = |suffix: &str| path.ends_with(suffix);
        Some(if is("/v1/webhooks/settings") {
            match *method {
                Method::POST => Self::Create,
                Method::GET => Self::List,
                Method::PUT => Self::Update,
                Method::DELETE => Self::Delete,
                _ => return None,
            }
        } else if is("/v1/webhooks/test") && method == Method::POST {
            Self::Test
        } else if is("/v1/webhooks/logs/redeliver") && method == Method::POST {
            Self::Redeliver
        } else if is("/v1/webhooks/logs") && method == Method::GET {
            Self::Logs
        } else {
            return None;
        })
    }

    /// The route label in logs.
    fn label(self) -> &'static str {
        match self {
            Self::Create => "POST /v1/webhooks/settings",
            Self::List => "GET /v1/webhooks/settings",
            Self::Update => "PUT /v1/webhooks/settings",
            Self::Delete => "DELETE /v1/webhooks/settings",
            Self::Test => "POST /v1/webhooks/test",
            Self::Logs => "GET /v1/webhooks/logs",
            Self::Redeliver => "POST /v1/webhooks/logs/redeliver",
        }
    }
}

/// Serves any of the seven routes (404 `route_not_found` for anything else).
pub async fn handle(app: &App, egress: &EgressClient, req: Request) -> Response<Body> {
    let Some(route) = Route::of(req.method(), req.uri().path()) else {
        return serve(req, "webhooks (no route)", |_| async {
            Err(ApiError::RouteNotFound)
        })
        .await;
    };
    serve(req, route.label(), |req| dispatch(route, app, egress, req)).await
}

async fn dispatch(
    route: Route,
    app: &App,
    egress: &EgressClient,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let now = app.clock.now();
    let user = app.authenticate(&req, now).await?;
    match route {
        Route::Create => settings::create(app, egress, &user, &req, now).await,
        Route::List => settings::list(app, &user).await,
        Route::Update => settings::update(app, egress, &user, &req, now).await,
        Route::Delete => settings::delete(app, &user, &req).await,
        Route::Test => test::test(app, egress, &user, &req, now).await,
        Route::Logs => logs::logs(app, &user, &req).await,
        Route::Redeliver => redeliver::redeliver(app, egress, &user, &req, now).await,
    }
}

/// The body as a JSON object of at most [`MAX_BODY_BYTES`].
fn body(req: &Request) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    json_object_within(req, MAX_BODY_BYTES)
}

/// Takes one of the user's attempts of this minute (429 `rate_limit_exceeded` past
/// `USER_WEBHOOK_ATTEMPTS_PER_MINUTE`), then makes one attempt of `send` to `webhook` now and
/// logs it ([`logged_attempt`]); answers with its [`outcome`].
async fn deliver(
    app: &App,
    egress: &EgressClient,
    user: &UserId,
    webhook: &Webhook,
    send: Send<'_>,
) -> Result<Response<Body>, ApiError> {
    let now = app.clock.now();
    let limit = app.config.user_webhook_attempts_per_minute;
    let usage = |used| Usage {
        scope: Scope::User,
        limit,
        used,
    };
    let used = match app.store.take_webhook_attempt(user, now, limit).await? {
        AttemptUnit::Taken { used } => used,
        AttemptUnit::LimitReached => {
            tracing::info!(limit, "webhook attempt rate reached");
            return Err(ApiError::RateLimited {
                sends: Sends::WebhookAttempts,
                usage: usage(limit),
                now,
            });
        }
    };
    let logged = logged_attempt(app, egress, user, webhook, send).await?;
    let mut response = outcome(&logged.entry);
    with_rate_limit_headers_until(
        &mut response,
        usage(used),
        Sends::WebhookAttempts.resets_at(now),
    );
    Ok(response)
}

/// The answer of test and redeliver: how the attempt went, and `message` (the one other field
/// of `@zernio/node`'s `TestWebhookResponse` and `RedeliverWebhookEventResponse`) saying so.
fn outcome(entry: &LogEntry) -> Response<Body> {
    let success = entry.status == LogStatus::Success;
    let message = match (success, entry.status_code, &entry.error_message) {
        (true, Some(code), _) => format!(
            "Delivered: the endpoint answered {code} in {} ms",
            entry.response_time_ms
        ),
        (_, _, Some(error)) => format!("Not delivered: {error}"),
        (_, Some(code), None) => format!("Not delivered: the endpoint answered {code}"),
        (_, None, None) => "Not delivered".to_owned(),
    };
    json_response(
        StatusCode::OK,
        &json!({
            "success": success,
            "message": message,
            "statusCode": entry.status_code,
            "responseTime": entry.response_time_ms,
            "error": entry.error_message,
            "eventId": entry.event_id,
            "attemptNumber": entry.attempt_number,
        }),
    )
}
