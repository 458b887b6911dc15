//! `GET` and `POST /v1/whatsapp/webhook`: Meta's verification handshake and event deliveries.
//!
//! A correctly signed delivery is answered 200 even when it matches nothing, so Meta does not
//! retry it for a week; only a transient storage failure answers 503, so Meta retries. Every
//! write is a conditional transition, so a duplicated or replayed delivery changes nothing.

use std::collections::BTreeSet;

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::app::App;
use crate::edge::{body_bytes, json_response, serve, ApiError};
use crate::meta::matching::{delivery_of, intent, session_to_activate, Intent};
use crate::meta::payload::{epoch_seconds, InboundMessage, Notification, StatusEvent};
use crate::meta::signature::{secrets_equal, signature_ok};
use crate::phone::mask_digits;
use crate::store::{DeleteIf, StoreError, Write};

/// The route label in logs.
pub const ROUTE: &str = "/v1/whatsapp/webhook";

/// Meta's payloads are at most 3 MB; anything larger is not Meta.
const MAX_DELIVERY_BYTES: usize = 4 * 1024 * 1024;

/// Handles both methods of the webhook route.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let route = if req.method() == Method::GET {
        "GET /v1/whatsapp/webhook"
    } else {
        "POST /v1/whatsapp/webhook"
    };
    serve(req, route, |req| async move {
        match *req.method() {
            Method::GET => verify(app, &req),
            Method::POST => deliver(app, &req).await,
            _ => Err(ApiError::RouteNotFound),
        }
    })
    .await
}

/// The handshake: echo `hub.challenge` when the mode is `subscribe` and the token matches.
fn verify(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let params = req.query_string_parameters();
    let expected = app.config.verify_token.as_ref().map(|t| t.expose());
    let ok = params.first("hub.mode") == Some("subscribe")
        && matches!((params.first("hub.verify_token"), expected),
            (Some(given), Some(expected)) if secrets_equal(given, expected));
    let challenge = params.first("hub.challenge").unwrap_or_default();
    if !ok {
        return Err(ApiError::Forbidden("webhook verification failed".into()));
    }
    let mut response = Response::new(Body::Text(challenge.to_owned()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// An event delivery: signature first, then every entry, change, message and status.
async fn deliver(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let body = body_bytes(req);
    let secret = app
        .config
        .app_secret
        .as_ref()
        .map(|s| s.expose().as_bytes());
    let signature = req
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    let signed = body.len() <= MAX_DELIVERY_BYTES
        && secret.is_some_and(|secret| signature_ok(secret, body, signature));
    if !signed {
        tracing::warn!(
            has_signature = signature.is_some(),
            "webhook signature rejected"
        );
        return Err(ApiError::InvalidSignature);
    }
    let notification: Notification = match serde_json::from_slice(body) {
        Ok(n) => n,
        Err(e) => {
            // Retrying cannot fix a malformed body: acknowledge it and keep the evidence.
            tracing::warn!(error = %e, bytes = body.len(), "signed webhook body is not a delivery we can read");
            return Ok(received());
        }
    };
    // A storage failure answers 503, so Meta retries the whole delivery.
    process(app, &notification).await?;
    Ok(received())
}

fn received() -> Response<Body> {
    json_response(StatusCode::OK, &json!({ "received": true }))
}

/// Applies every event of the sandbox number; events of other numbers are skipped.
pub async fn process(app: &App, notification: &Notification) -> Result<(), StoreError> {
    let changes = notification.entry.iter().flat_map(|e| &e.changes);
    for change in changes {
        let number_id = change
            .value
            .metadata
            .as_ref()
            .and_then(|m| m.phone_number_id.as_deref());
        if number_id != Some(app.config.phone_number_id.as_str()) {
            tracing::info!(
                field = change.field.as_deref(),
                "event for another number skipped"
            );
            continue;
        }
        for message in &change.value.messages {
            on_message(app, message).await?;
        }
        for status in &change.value.statuses {
            on_status(app, status).await?;
        }
    }
    Ok(())
}

async fn on_message(app: &App, message: &InboundMessage) -> Result<(), StoreError> {
    let Some(from) = message.from.as_deref().filter(|f| !f.is_empty()) else {
        return Ok(()); // Usernames without a phone: nothing to match.
    };
    let now = app.clock.now();
    let sent_at = epoch_seconds(message.timestamp.as_ref()).unwrap_or(now);
    let masked = mask_digits(from);
    match intent(message) {
        Intent::Ignore => Ok(()),
        Intent::OptOut => {
            let sessions = app.store.sessions_for_phone(from).await?;
            let phones: BTreeSet<String> = std::iter::once(from.to_owned())
                .chain(sessions.iter().map(|s| s.phone.digits().to_owned()))
                .collect();
            let phones: Vec<String> = phones.into_iter().collect();
            let write = app.store.set_opt_out(from, true, sent_at, &phones).await?;
            if let Write::ConditionFailed { .. } = write {
                tracing::info!(phone = %masked, "stale opt-out ignored (a later message decided)");
                return Ok(());
            }
            // A failed condition below means a later message (or session) already decided that
            // item: leaving it is the rule, not an error.
            for phone in phones.iter().filter(|p| p.as_str() != from) {
                let _ = app.store.set_opt_out(phone, true, sent_at, &phones).await?;
            }
            for session in &sessions {
                let _ = app
                    .store
                    .delete_session(
                        &session.user_id,
                        &session.id,
                        DeleteIf::CreatedBy {
                            message_time: sent_at,
                        },
                    )
                    .await?;
            }
            tracing::info!(phone = %masked, sessions = sessions.len(), "phone opted out");
            Ok(())
        }
        Intent::OptIn => {
            let record = app.store.opt_out(from).await?;
            let mut phones = record.map(|r| r.phones).unwrap_or_default();
            if !phones.iter().any(|p| p == from) {
                phones.push(from.to_owned());
            }
            // A failed condition means a later message already decided that phone.
            for phone in &phones {
                let _ = app.store.set_opt_out(phone, false, sent_at, &[]).await?;
            }
            tracing::info!(phone = %masked, "opt-out lifted");
            Ok(())
        }
        Intent::Reply(reference) => {
            let sessions = app.store.sessions_for_phone(from).await?;
            let Some(target) = session_to_activate(&sessions, &reference, now) else {
                tracing::info!(phone = %masked, candidates = sessions.len(), "reply activates nothing");
                return Ok(());
            };
            let activated = app
                .store
                .activate(target, now, app.config.active_ttl_seconds)
                .await?
                .written();
            tracing::info!(
                phone = %masked,
                session_id = target.id.as_str(),
                activated,
                "activation reply"
            );
            Ok(())
        }
    }
}

async fn on_status(app: &App, status: &StatusEvent) -> Result<(), StoreError> {
    let (Some(message_id), Some(recipient)) =
        (status.id.as_deref(), status.recipient_id.as_deref())
    else {
        return Ok(());
    };
    let Some(delivery) = delivery_of(status, app.clock.now()) else {
        return Ok(()); // `played` and unknown statuses are not recorded.
    };
    let sessions = app.store.sessions_for_phone(recipient).await?;
    let Some(session) = sessions
        .iter()
        .find(|s| s.activation_message_id.as_deref() == Some(message_id))
    else {
        return Ok(()); // Not an activation message we know (or an older one).
    };
    let recorded = app
        .store
        .record_delivery(session, message_id, &delivery)
        .await?
        .written();
    tracing::info!(
        session_id = session.id.as_str(),
        status = delivery.status.as_str(),
        error_code = delivery.error.as_ref().map(|e| e.code),
        recorded,
        "activation message status"
    );
    Ok(())
}
