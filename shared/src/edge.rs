//! The HTTP edge: the error envelope, request ids, JSON bodies, and one log line per request.

use std::future::Future;
use std::time::Instant;

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tracing::Instrument;

use crate::auth::AuthError;
use crate::limits::{self, Scope, Usage};
use crate::session::rfc3339;
use crate::store::StoreError;
use crate::webhooks::WebhookError;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// Every error the API can answer, mapped to the contract's envelope in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Body not JSON or not an object.
    #[error("{0}")]
    InvalidJson(String),
    /// Body over the route's limit ([`MAX_BODY_BYTES`] unless the route says otherwise).
    #[error("request body is larger than {limit_kib} KiB")]
    PayloadTooLarge {
        /// The route's limit in KiB.
        limit_kib: usize,
    },
    /// A field is missing or invalid.
    #[error("{message}")]
    InvalidField {
        /// The field.
        param: &'static str,
        /// What is wrong, for a human.
        message: String,
        /// Extra machine-readable facts.
        details: Option<Value>,
    },
    /// Missing, malformed, unknown or disabled API key.
    #[error("Unauthorized")]
    Unauthorized,
    /// A webhook delivery whose `X-Hub-Signature-256` is missing or wrong.
    #[error("invalid or missing X-Hub-Signature-256")]
    InvalidSignature,
    /// The webhook handshake's verify token did not match.
    #[error("{0}")]
    Forbidden(String),
    /// The recipient opted out (STOP) in one of its WhatsApp forms: nothing sent or changed.
    #[error("{0} opted out of sandbox messages; they can reply START to opt back in")]
    RecipientOptedOut(String),
    /// A daily send cap is reached: nothing sent or changed.
    #[error("{}", limit_message(*.sends, .usage, *.now))]
    RateLimited {
        /// What the cap counts.
        sends: Sends,
        /// The cap that refused.
        usage: Usage,
        /// The request's time (the reset is the next UTC midnight after it).
        now: i64,
    },
    /// Unknown, malformed, expired or foreign session id: one answer for all.
    #[error("Session not found")]
    SessionNotFound,
    /// `/reply` to a session whose phone is not a virtual phone the service plays.
    #[error("this session's phone is not a virtual phone: only +1 NXX 555 0100 to +1 NXX 555 0199 (with VIRTUAL_PHONES on) can be told to reply")]
    NotAVirtualPhone,
    /// Meta rejected the send: its message verbatim and its error object.
    #[error("{message}")]
    Platform {
        /// Meta's `error.message`.
        message: String,
        /// Meta's `error` object.
        error: Value,
    },
    /// Meta unreachable, timed out, or 5xx without an error object.
    #[error("WhatsApp is not reachable right now; nothing was sent, try again later")]
    UpstreamUnavailable,
    /// DynamoDB unavailable or throttled past retries.
    #[error("the service is temporarily unavailable; try again later")]
    ServiceUnavailable,
    /// No route for this method and path.
    #[error("no such endpoint")]
    RouteNotFound,
    /// A send without an active session (none, pending, expired or revoked).
    #[error("sending needs an active sandbox session: create one and have the phone owner answer the activation template")]
    SessionRequired,
    /// Text or interactive while the phone's customer-service window is closed.
    #[error("the customer-service window is closed: the phone has not written to the sandbox number in the last 24 hours; send the sandbox template (type template) instead")]
    WindowClosed {
        /// When the window closed (epoch seconds); `None` if the phone never wrote.
        expires_at: Option<i64>,
    },
    /// The `Idempotency-Key` was used with another body.
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    /// The first request with this `Idempotency-Key` is still being processed.
    #[error("a request with this Idempotency-Key is still in progress; retry in a moment")]
    IdempotencyKeyInProgress,
    /// No webhook of the caller has that id (unknown, malformed, or another user's): one
    /// answer for all.
    #[error("Webhook not found")]
    WebhookNotFound,
    /// The webhook has no logged delivery of that event id.
    #[error("No delivery of this event to this webhook is logged (logs are kept 30 days)")]
    WebhookEventNotFound,
    /// A redelivery of an event whose resource group the webhook disables
    /// (`disabledResourceGroups`): nothing sent.
    #[error("this webhook's disabledResourceGroups includes {group}, the group of this event: it is not delivered to it")]
    ResourceGroupDisabled {
        /// The group.
        group: &'static str,
    },
    /// The caller has the most webhooks a user may have.
    #[error("a user may have at most {limit} webhooks; delete one first")]
    WebhookLimitReached {
        /// The limit.
        limit: i64,
    },
    /// Anything else; the details are in the log, never in the body.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidJson(_)
            | Self::InvalidField { .. }
            | Self::SessionNotFound
            | Self::NotAVirtualPhone
            | Self::Platform { .. } => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::WindowClosed { .. } => StatusCode::BAD_REQUEST,
            Self::SessionRequired => StatusCode::FORBIDDEN,
            // The IETF `Idempotency-Key` draft's answers, as Zernio gives them: another body
            // is unprocessable; the same body while the first is in flight is a conflict.
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::IdempotencyKeyInProgress => StatusCode::CONFLICT,
            Self::Unauthorized | Self::InvalidSignature => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::RecipientOptedOut(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RouteNotFound | Self::WebhookNotFound | Self::WebhookEventNotFound => {
                StatusCode::NOT_FOUND
            }
            Self::ResourceGroupDisabled { .. } => StatusCode::CONFLICT,
            Self::WebhookLimitReached { .. } => StatusCode::BAD_REQUEST,
            Self::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error envelope: `{error, type, code, param?, details?, platform?, platformError?}`.
    pub fn body(&self) -> Value {
        let (kind, code) = match self {
            Self::InvalidJson(_) => ("invalid_request_error", "invalid_json"),
            Self::PayloadTooLarge { .. } => ("invalid_request_error", "payload_too_large"),
            Self::SessionRequired => ("permission_error", "sandbox_session_required"),
            Self::WindowClosed { .. } => {
                ("invalid_request_error", "outside_customer_service_window")
            }
            Self::IdempotencyKeyReused => ("invalid_request_error", "idempotency_key_reused"),
            Self::IdempotencyKeyInProgress => {
                ("invalid_request_error", "idempotency_key_in_progress")
            }
            Self::InvalidField { .. } => ("invalid_request_error", "invalid_field_value"),
            Self::Unauthorized => ("authentication_error", "unauthorized"),
            Self::InvalidSignature => ("authentication_error", "invalid_signature"),
            Self::Forbidden(_) => ("permission_error", "forbidden"),
            Self::RecipientOptedOut(_) => ("permission_error", "recipient_opted_out"),
            Self::RateLimited { .. } => ("rate_limit_error", "rate_limit_exceeded"),
            Self::SessionNotFound => ("invalid_request_error", "session_not_found"),
            Self::NotAVirtualPhone => ("invalid_request_error", "not_a_virtual_phone"),
            Self::Platform { .. } => ("platform_error", "whatsapp_send_failed"),
            Self::UpstreamUnavailable => ("api_error", "upstream_unavailable"),
            Self::ServiceUnavailable => ("api_error", "service_unavailable"),
            Self::RouteNotFound => ("not_found", "route_not_found"),
            Self::WebhookNotFound => ("not_found", "webhook_not_found"),
            Self::WebhookEventNotFound => ("not_found", "webhook_event_not_found"),
            Self::ResourceGroupDisabled { .. } => {
                ("invalid_request_error", "resource_group_disabled")
            }
            Self::WebhookLimitReached { .. } => ("invalid_request_error", "webhook_limit_reached"),
            Self::Internal => ("api_error", "internal_error"),
        };
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.to_string()));
        body.insert("type".into(), kind.into());
        body.insert("code".into(), code.into());
        match self {
            Self::InvalidField { param, details, .. } => {
                body.insert("param".into(), (*param).into());
                if let Some(d) = details {
                    body.insert("details".into(), d.clone());
                }
            }
            Self::SessionNotFound | Self::NotAVirtualPhone => {
                body.insert("param".into(), "sessionId".into());
            }
            Self::WebhookNotFound => {
                body.insert("param".into(), "webhookId".into());
            }
            Self::WebhookEventNotFound => {
                body.insert("param".into(), "eventId".into());
            }
            Self::ResourceGroupDisabled { group } => {
                body.insert("param".into(), "eventId".into());
                body.insert("details".into(), json!({ "group": group }));
            }
            Self::WebhookLimitReached { limit } => {
                body.insert("details".into(), json!({ "limit": limit }));
            }
            Self::RateLimited { usage, .. } => {
                body.insert("details".into(), json!({ "scope": usage.scope.as_str() }));
            }
            Self::Platform { error, .. } => {
                body.insert("platform".into(), "meta".into());
                body.insert("platformError".into(), error.clone());
            }
            Self::WindowClosed { expires_at } => {
                let at = expires_at.map(crate::session::rfc3339);
                body.insert("details".into(), json!({ "windowExpiresAt": at }));
            }
            _ => {}
        }
        Value::Object(body)
    }

    /// A bad `phone` field.
    pub fn phone(message: impl Into<String>) -> Self {
        Self::InvalidField {
            param: "phone",
            message: message.into(),
            details: None,
        }
    }
}

/// The one place a storage failure becomes an answer: logged once with its cause, then 503 so
/// clients (and Meta) retry.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "DynamoDB request failed");
        Self::ServiceUnavailable
    }
}

/// The one place a webhook rule's refusal becomes an answer: a field is 400
/// `invalid_field_value` with its `param`; a secret that could not be generated is logged and
/// answered 500.
impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::InvalidField { param, message } => Self::InvalidField {
                param,
                message,
                details: None,
            },
            WebhookError::SecretGeneration(e) => {
                tracing::error!(error = %e, "generating a webhook secret failed");
                Self::Internal
            }
        }
    }
}

/// Every unauthenticated request gets the same 401; a failed key lookup is a storage failure.
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => Self::Unauthorized,
            AuthError::Store(e) => e.into(),
        }
    }
}

/// The request id: a valid incoming `X-Request-Id`, else the platform's.
pub fn request_id(req: &Request) -> String {
    let incoming = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_request_id(v));
    if let Some(id) = incoming {
        return id.to_owned();
    }
    let from_gateway = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    from_gateway
        .filter(|id| !id.is_empty())
        .or_else(|| {
            req.lambda_context_ref()
                .map(|c| c.request_id.clone())
                .filter(|id| !id.is_empty())
        })
        .or_else(|| crate::ids::random_base62(22).ok())
        .unwrap_or_else(|| "unknown".into())
}

/// 1–128 characters of `A-Za-z0-9._-`.
pub fn is_valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The error envelope as a response (with `WWW-Authenticate` on 401).
pub fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.status(), &error.body());
    if matches!(error, ApiError::Unauthorized) {
        response
            .headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    }
    if let ApiError::RateLimited { sends, usage, now } = error {
        with_rate_limit_headers_until(&mut response, *usage, sends.resets_at(*now));
    }
    response
}

/// Adds `X-RateLimit-Limit`, `-Remaining` and `-Reset` for a daily cap's `usage` at `now`.
pub fn with_rate_limit_headers(response: &mut Response<Body>, usage: Usage, now: i64) {
    with_rate_limit_headers_until(response, usage, limits::next_utc_midnight(now));
}

/// Adds `X-RateLimit-Limit`, `-Remaining` and `-Reset` for `usage` of a cap that resets at
/// `reset` (epoch seconds).
pub fn with_rate_limit_headers_until(response: &mut Response<Body>, usage: Usage, reset: i64) {
    for (name, value) in limits::rate_limit_headers_until(usage, reset) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
}

/// What a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sends {
    /// Activation templates (create), per user and per recipient phone, per UTC day.
    Activations,
    /// Sandbox messages (send), per user, per UTC day.
    Messages,
    /// Attempts a user starts with `POST /v1/webhooks/test` and `/logs/redeliver`, or queues
    /// with `/logs/recover`, per minute.
    WebhookAttempts,
}

impl Sends {
    /// When the cap's count starts over after `now`: the next UTC midnight, or for the webhook
    /// attempts the next minute.
    pub fn resets_at(self, now: i64) -> i64 {
        match self {
            Self::Activations | Self::Messages => limits::next_utc_midnight(now),
            Self::WebhookAttempts => limits::next_minute(now),
        }
    }
}

/// The 429's message: which cap, and when it resets.
fn limit_message(sends: Sends, usage: &Usage, now: i64) -> String {
    let (period, what) = match (sends, usage.scope) {
        (Sends::Activations, Scope::User) => {
            ("daily", "activation messages for this API key's user")
        }
        (Sends::Activations, Scope::Recipient) => ("daily", "activation messages to this phone"),
        (Sends::Messages, _) => ("daily", "sandbox messages for this API key's user"),
        (Sends::WebhookAttempts, _) => (
            "per-minute",
            "webhook tests, redeliveries and recovered deliveries for this API key's user",
        ),
    };
    format!(
        "{period} limit of {} {what} reached; try again after {}",
        usage.limit,
        rfc3339(sends.resets_at(now))
    )
}

/// The raw body bytes (API Gateway's base64 bodies arrive already decoded as `Binary`).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// The body as a JSON object, or the contract's 400/413.
pub fn json_object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    json_object_within(req, MAX_BODY_BYTES)
}

/// The body as a JSON object of at most `max_bytes`, or the contract's 400/413.
pub fn json_object_within(req: &Request, max_bytes: usize) -> Result<Map<String, Value>, ApiError> {
    let bytes = body_bytes(req);
    if bytes.len() > max_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit_kib: max_bytes / 1024,
        });
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::InvalidJson("request body is not valid JSON".into()))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::InvalidJson(
            "request body must be a JSON object".into(),
        )),
    }
}

/// Runs one request: request id, the handler, the envelope for errors, the `X-Request-Id`
/// header, and exactly one log line with id, route, status and latency.
pub async fn serve<F, Fut>(req: Request, route: &'static str, handler: F) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let id = request_id(&req);
    let span = tracing::info_span!("request", request_id = %id, route);
    async move {
        let mut response = match handler(req).await {
            Ok(r) => r,
            Err(e) => {
                if e.status().is_server_error() {
                    tracing::warn!(error = %e, "request failed");
                }
                error_response(&e)
            }
        };
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", v);
        }
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        response
    }
    .instrument(span)
    .await
}

/// `{"success": true}`.
pub fn success() -> Response<Body> {
    json_response(StatusCode::OK, &json!({ "success": true }))
}
