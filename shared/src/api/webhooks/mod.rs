//! `/v1/webhooks/*`: an API user's outbound webhooks as `@zernio/node` calls them, and recover.
//! One function serves the eight routes; a module per route, each handler taking the one
//! [`Call`] (the app, the delivery client, the caller, the request and its time).
//!
//! Test and redeliver make one attempt now through the function's [`EgressClient`] (built once
//! per container, only in this function), log it, and answer with its [`outcome`]:
//! `{success, message, statusCode, responseTime, error, eventId, attemptNumber}`. A 410 turns the webhook
//! off; a success sets `lastFiredAt` and resets `failureCount`. Recover queues its attempts for
//! the events function's sweep. Together they start (or queue) at most
//! `USER_WEBHOOK_ATTEMPTS_PER_MINUTE` attempts per user and minute (429 past it, with the
//! `X-RateLimit-*` headers on every answer), so none of them hammers a third party or maps its
//! ports.

/// `GET /v1/webhooks/logs`: the delivery log, filtered and paged.
pub mod logs;
/// `POST /v1/webhooks/logs/recover`: the failed events of a window, attempted again.
pub mod recover;
/// `POST /v1/webhooks/logs/redeliver`: the logged bytes again, under the same event id.
pub mod redeliver;
/// `POST`, `GET`, `PUT`, `DELETE /v1/webhooks/settings`.
pub mod settings;
/// `POST /v1/webhooks/test`: a `webhook.test` event now.
pub mod test;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::delivery::{logged_attempt, Send};
use crate::edge::{
    json_object_within, json_response, serve, with_rate_limit_headers_until, ApiError, Sends,
};
use crate::limits::{Scope, Usage};
use crate::outbound::EgressClient;
use crate::session::UserId;
use crate::webhooks::{webhook_id_field, LogEntry, LogStatus, Webhook, WebhookId};

/// The largest body these routes read: ten custom headers of 1,024 characters, a 2,048
/// character URL and the rest fit, even with every character written as a JSON escape.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// One of the eight routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Create,
    List,
    Update,
    Delete,
    Test,
    Logs,
    Redeliver,
    Recover,
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
        } else if is("/v1/webhooks/logs/recover") && method == Method::POST {
            Self::Recover
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
            Self::Recover => "POST /v1/webhooks/logs/recover",
        }
    }
}

/// Serves any of the eight routes (404 `route_not_found` for anything else).
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
    let call = Call {
        app,
        egress,
        user,
        req: &req,
        now,
    };
    match route {
        Route::Create => settings::create(&call).await,
        Route::List => settings::list(&call).await,
        Route::Update => settings::update(&call).await,
        Route::Delete => settings::delete(&call).await,
        Route::Test => test::test(&call).await,
        Route::Logs => logs::logs(&call).await,
        Route::Redeliver => redeliver::redeliver(&call).await,
        Route::Recover => recover::recover(&call).await,
    }
}

/// One authenticated request to a route: what every handler works with.
struct Call<'a> {
    app: &'a App,
    egress: &'a EgressClient,
    /// The caller (from the API key).
    user: UserId,
    req: &'a Request,
    /// When the request was authenticated.
    now: i64,
}

impl Call<'_> {
    /// The body as a JSON object of at most [`MAX_BODY_BYTES`].
    fn body(&self) -> Result<Map<String, Value>, ApiError> {
        json_object_within(self.req, MAX_BODY_BYTES)
    }

    /// The body, and the caller's webhook its `webhookId` (or the legacy field `legacy`)
    /// names: 400 `param: "webhookId"` without one, 404 `webhook_not_found` for an id that
    /// names no webhook of the caller (unknown, malformed, another user's), before any other
    /// field is read.
    async fn named_webhook(
        &self,
        legacy: Option<&str>,
    ) -> Result<(Map<String, Value>, Webhook), ApiError> {
        let body = self.body()?;
        let id = webhook_id_field(body.get("webhookId"), legacy.and_then(|l| body.get(l)))?;
        let webhook = self.webhook(id).await?;
        Ok((body, webhook))
    }

    /// The caller's webhook `id`, or 404 `webhook_not_found`.
    async fn webhook(&self, id: &str) -> Result<Webhook, ApiError> {
        let id = WebhookId::parse(id).ok_or(ApiError::WebhookNotFound)?;
        self.app
            .store
            .webhook(&self.user, &id)
            .await?
            .ok_or(ApiError::WebhookNotFound)
    }

    /// Takes `wanted` of the caller's attempts of this minute, as many as are left (none past
    /// `USER_WEBHOOK_ATTEMPTS_PER_MINUTE`: 429 `rate_limit_exceeded` when any were wanted);
    /// how many it took, and the `X-RateLimit-*` headers' usage.
    async fn take_attempts(&self, wanted: usize) -> Result<(usize, Usage), ApiError> {
        let limit = self.app.config.user_webhook_attempts_per_minute;
        let wanted = i64::try_from(wanted).unwrap_or(i64::MAX);
        let taken = self
            .app
            .store
            .take_webhook_attempts(&self.user, self.now, limit, wanted)
            .await?;
        let usage = Usage {
            scope: Scope::User,
            limit,
            used: taken.used,
        };
        if wanted > 0 && taken.granted == 0 {
            tracing::info!(limit, "webhook attempt rate reached");
            return Err(ApiError::RateLimited {
                sends: Sends::WebhookAttempts,
                usage,
                now: self.now,
            });
        }
        Ok((usize::try_from(taken.granted).unwrap_or(0), usage))
    }

    /// `response` with the `X-RateLimit-*` headers of `usage` (the minute resets next).
    fn with_rate(&self, mut response: Response<Body>, usage: Usage) -> Response<Body> {
        let reset = Sends::WebhookAttempts.resets_at(self.now);
        with_rate_limit_headers_until(&mut response, usage, reset);
        response
    }

    /// Takes one of the caller's attempts of this minute (429 past the rate), then makes one
    /// attempt of `send` to `webhook` now and logs it ([`logged_attempt`]); answers with its
    /// [`outcome`].
    async fn deliver(&self, webhook: &Webhook, send: Send<'_>) -> Result<Response<Body>, ApiError> {
        let (_, usage) = self.take_attempts(1).await?;
        let logged = logged_attempt(self.app, self.egress, &self.user, webhook, send).await?;
        Ok(self.with_rate(outcome(&logged.entry), usage))
    }
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
