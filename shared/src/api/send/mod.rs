//! `POST /v1/whatsapp/sandbox/messages`: a text, interactive or template message to the
//! caller's activated phone, through the sandbox number.
//!
//! Every refusal happens before anything is written or sent. The common send costs three
//! DynamoDB requests (read the session and the key's record; reserve a unit of the daily cap,
//! with the key's record in the same transaction; record the accepted message) and one Graph
//! API call. A failed send gives its unit back and frees its key.
//!
//! `Idempotency-Key`: the first request claims the key before it sends. A retry with the same
//! body gets the first answer (200, `Idempotent-Replayed: true`) and sends nothing; another
//! body with the key is 422 `idempotency_key_reused`; a retry that arrives while the first is
//! still sending waits for its answer (at most the Graph API timeout and a second), then
//! answers 409 `idempotency_key_in_progress`. Only a 200 is kept: a refused or failed send
//! frees the key, so a retry may succeed later.

/// The send body's checks and its `Idempotency-Key`, pure.
pub mod request;

use std::time::Duration;

use lambda_http::http::header::HeaderValue;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::app::App;
use crate::edge::{json_object_within, json_response, serve, ApiError, Sends};
use crate::graph::SendError;
use crate::ids;
use crate::limits::{canonical_digits, Scope, Usage};
use crate::message::{window_expires_at, ConversationMessage, Direction, ACCEPTED};
use crate::meta::callback::message_tag;
use crate::phone::PhoneE164;
use crate::session::{rfc3339, Session, SessionStatus, UserId};
use crate::store::{IdempotencyRecord, MessageReservation};
use request::{
    body_fingerprint, idempotency_id, idempotency_key, parse_send, SendRequest, MAX_SEND_BODY_BYTES,
};

/// The route label in logs.
pub const ROUTE: &str = "POST /v1/whatsapp/sandbox/messages";

/// How often a keyed send starts over after its key was freed by a failed first request.
const MAX_ATTEMPTS: usize = 3;
/// How often a retry looks for the first request's answer while it is in progress.
const POLL: Duration = Duration::from_millis(100);

/// Sends a sandbox message to the caller's active session phone.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(req, ROUTE, |req| send(app, req)).await
}

/// The key's record id, the body's fingerprint, and this request's claim on the key.
struct Keyed {
    id: String,
    fingerprint: String,
    owner: String,
}

async fn send(app: &App, req: Request) -> Result<Response<Body>, ApiError> {
    let now = app.clock.now();
    let user = app.authenticate(&req, now).await?;
    let body = json_object_within(&req, MAX_SEND_BODY_BYTES)?;
    let request = parse_send(&body, &app.config.template_name)?;
    let header = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let keyed = match idempotency_key(header)? {
        Some(k) => Some(Keyed {
            id: idempotency_id(&user, k),
            fingerprint: body_fingerprint(&body),
            owner: ids::random_base62(16).map_err(internal)?,
        }),
        None => None,
    };

    for _ in 0..MAX_ATTEMPTS {
        let (session, record) = app
            .store
            .send_context(&user, keyed.as_ref().map(|k| k.id.as_str()))
            .await?;
        if let (Some(k), Some(record)) = (&keyed, record) {
            if let Some(answer) = earlier_answer(app, k, record, now).await? {
                return Ok(answer);
            }
        }
        let session = allowed(app, session, &request, now)?;
        let key = keyed
            .as_ref()
            .map(|k| (k.id.as_str(), k.fingerprint.as_str(), k.owner.as_str()));
        // A virtual phone's messages count against the user's own virtual cap.
        let quota = app.config.quota(&session.phone);
        let limit = app.config.daily_message_limit(quota);
        match app
            .store
            .reserve_message(&user, now, (quota, limit), key)
            .await?
        {
            MessageReservation::Reserved => {
                return deliver(app, &user, &session, &request, keyed.as_ref(), now).await
            }
            MessageReservation::LimitReached => {
                tracing::info!(limit, "daily message limit reached");
                return Err(ApiError::RateLimited {
                    sends: Sends::Messages,
                    usage: Usage {
                        scope: Scope::User,
                        limit,
                        used: limit,
                    },
                    now,
                });
            }
            // A concurrent request with the same key won the claim: read its answer.
            MessageReservation::KeyTaken => continue,
        }
    }
    Err(ApiError::IdempotencyKeyInProgress)
}

/// What an existing record of this key answers: the first answer, 422 for another body, 409
/// while the first is still in flight past the wait, or
/// `None` when the key is free again (expired, or the first request failed and let it go).
async fn earlier_answer(
    app: &App,
    keyed: &Keyed,
    mut record: IdempotencyRecord,
    now: i64,
) -> Result<Option<Response<Body>>, ApiError> {
    let deadline = tokio::time::Instant::now() + app.config.graph_timeout + Duration::from_secs(1);
    loop {
        if record.expires_at <= now {
            return Ok(None);
        }
        if record.fingerprint != keyed.fingerprint {
            return Err(ApiError::IdempotencyKeyReused);
        }
        if let Some(answer) = record.response {
            let mut response = json_response(StatusCode::OK, &answer);
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(Some(response));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::IdempotencyKeyInProgress);
        }
        tokio::time::sleep(POLL).await;
        match app.store.idempotency_record(&keyed.id).await? {
            Some(r) => record = r,
            None => return Ok(None),
        }
    }
}

/// The session a send may go to, or the refusal: an active live session (403 otherwise),
/// `to` naming its phone, and for text and interactive an open customer-service window.
fn allowed(
    app: &App,
    session: Option<Session>,
    request: &SendRequest,
    now: i64,
) -> Result<Session, ApiError> {
    let session = session
        .filter(|s| s.status == SessionStatus::Active && s.is_live(now))
        .ok_or(ApiError::SessionRequired)?;
    if let Some(to) = &request.to {
        let same = PhoneE164::parse(to).is_ok_and(|p| p.digits() == session.phone.digits());
        if !same {
            return Err(ApiError::InvalidField {
                param: "to",
                message: format!(
                    "to must be the phone of your active sandbox session, {}",
                    session.phone.with_plus()
                ),
                details: Some(json!({ "sessionPhoneE164": session.phone.digits() })),
            });
        }
    }
    if request.message.needs_window() {
        let closes = window_expires_at(
            session.last_inbound_at,
            app.config.customer_service_window_seconds,
        );
        if closes.is_none_or(|t| t <= now) {
            return Err(ApiError::WindowClosed { expires_at: closes });
        }
    }
    Ok(session)
}

/// The unit is held: send once, then record the message (or give the unit back).
async fn deliver(
    app: &App,
    user: &UserId,
    session: &Session,
    request: &SendRequest,
    keyed: Option<&Keyed>,
    now: i64,
) -> Result<Response<Body>, ApiError> {
    let meta = app.meta.as_ref().ok_or_else(|| {
        tracing::error!("send runs without a Graph API client");
        ApiError::Internal
    })?;
    let suffix = format!("o{}", ids::random_base62(12).map_err(internal)?);
    let tag = message_tag(user, now, &suffix);
    let sent = meta
        .send_message(session, &request.message, tag.as_deref())
        .await;
    let accepted = match sent {
        Ok(a) => a,
        Err(e) => {
            let key = keyed.map(|k| (k.id.as_str(), k.owner.as_str()));
            let quota = app.config.quota(&session.phone);
            if let Err(release) = app.store.release_message(user, now, quota, key).await {
                tracing::error!(error = %release, "could not give back the unit of a failed send");
            }
            return Err(send_failed(session, e));
        }
    };
    let kind = request.message.kind();
    let answer = json!({ "message": {
        "id": accepted.message_id,
        "direction": "outbound",
        "to": session.phone.digits(),
        "type": kind,
        "status": ACCEPTED,
        "createdAt": rfc3339(now),
    }});
    let message = ConversationMessage {
        user_id: user.clone(),
        created_at: now,
        suffix,
        message_id: Some(accepted.message_id),
        direction: Direction::Outbound,
        phone: session.phone.digits().to_owned(),
        kind: kind.to_owned(),
        content: request
            .message
            .content(&app.config.template_name, &app.config.template_language),
        status: Some(ACCEPTED.to_owned()),
        error: None,
        bsuid: None,
    };
    let key = keyed.map(|k| (k.id.as_str(), k.owner.as_str(), &answer));
    let canonical = canonical_digits(&session.phone);
    if let Err(e) = app.store.record_outbound(&message, &canonical, key).await {
        // Meta accepted it: the answer is still 200. The conversation lacks this message.
        tracing::error!(error = %e, "sandbox message sent but not recorded");
    }
    tracing::info!(phone = %session.phone, kind, "sandbox message sent");
    Ok(json_response(StatusCode::OK, &answer))
}

fn send_failed(session: &Session, error: SendError) -> ApiError {
    match error {
        SendError::Rejected { message, error } => {
            tracing::warn!(
                phone = %session.phone,
                meta_code = error.get("code").and_then(serde_json::Value::as_i64),
                fbtrace_id = error.get("fbtrace_id").and_then(serde_json::Value::as_str),
                "Meta rejected the sandbox message"
            );
            ApiError::Platform { message, error }
        }
        SendError::Unavailable(reason) => {
            tracing::warn!(phone = %session.phone, reason = %reason, "Graph API unavailable");
            ApiError::UpstreamUnavailable
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "internal error");
    ApiError::Internal
}
