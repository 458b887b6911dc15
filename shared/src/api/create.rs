//! `POST /v1/whatsapp/sandbox/sessions`: start (or refresh) an activation and send the template.
//!
//! The common case costs one conditional `PutItem` (claiming the user's one slot), one Graph
//! API call and one `UpdateItem` (storing Meta's message id). A refresh of a live pending
//! session for the same phone sends first and writes after, so a failed send leaves the row
//! untouched; a new session is written first, so no two concurrent creates can both send,
//! and a failed send rolls back exactly that write.

use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use super::session_response;
use crate::app::App;
use crate::edge::{json_object, serve, ApiError};
use crate::graph::{GraphClient, SendError};
use crate::ids;
use crate::phone::PhoneE164;
use crate::session::{Session, SessionId, SessionStatus};
use crate::store::{Item, Write};

/// The route label in logs.
pub const ROUTE: &str = "POST /v1/whatsapp/sandbox/sessions";

/// How often a create starts over after losing a race with a concurrent revoke.
const MAX_ATTEMPTS: usize = 3;

/// Creates or refreshes the caller's session for `phone` and sends the activation template.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(req, ROUTE, |req| create(app, req)).await
}

async fn create(app: &App, req: Request) -> Result<Response<Body>, ApiError> {
    let now = app.clock.now();
    let user = app.authenticate(&req, now).await?;
    let phone = phone_from_body(&req)?;
    let graph = app.graph.as_ref().ok_or_else(|| {
        tracing::error!("create runs without a Graph API client");
        ApiError::Internal
    })?;

    for _ in 0..MAX_ATTEMPTS {
        let id = SessionId::generate().map_err(internal)?;
        let session = Session::new_pending(
            id,
            &user,
            phone.clone(),
            now,
            app.config.pending_ttl_seconds,
        );
        let write_id = ids::random_base62(16).map_err(internal)?;
        let existing = match app.store.claim(&session, &write_id, now).await? {
            Write::Written(previous) => {
                return send_new(app, graph, session, &write_id, previous).await;
            }
            Write::ConditionFailed {
                current: Some(existing),
            } => *existing,
            // The claim asks for the item that failed it, so this does not happen; had the
            // slot freed meanwhile, claiming again is right.
            Write::ConditionFailed { current: None } => continue,
        };
        if existing.phone != phone {
            return Err(different_phone(&existing));
        }
        if existing.status == SessionStatus::Active {
            return Ok(session_response(
                &existing,
                &app.config.sandbox_display_number,
            ));
        }
        if let Some(done) = refresh(app, graph, existing, &write_id, now).await? {
            return Ok(done);
        }
        // The session was revoked or replaced while we sent: start over.
    }
    tracing::warn!("create kept losing races with concurrent changes");
    Err(ApiError::ServiceUnavailable)
}

/// `phone` from the body, normalized, or the contract's 400.
fn phone_from_body(req: &Request) -> Result<PhoneE164, ApiError> {
    let body = json_object(req)?;
    match body.get("phone") {
        None | Some(Value::Null) => Err(ApiError::phone("phone is required")),
        Some(Value::String(s)) => PhoneE164::parse(s).map_err(|e| ApiError::phone(e.to_string())),
        Some(_) => Err(ApiError::phone("phone must be a string")),
    }
}

fn different_phone(existing: &Session) -> ApiError {
    ApiError::InvalidField {
        param: "phone",
        message: format!(
            "You already have a sandbox session for {}; revoke it (DELETE /v1/whatsapp/sandbox/sessions/{}) before starting one for another phone",
            existing.phone.with_plus(),
            existing.id.as_str()
        ),
        details: Some(json!({
            "existingSessionId": existing.id.as_str(),
            "existingPhoneE164": existing.phone.digits(),
        })),
    }
}

/// A new session holds the slot: send, then record Meta's ids or roll back the claim.
async fn send_new(
    app: &App,
    graph: &GraphClient,
    mut session: Session,
    write_id: &str,
    previous: Option<Item>,
) -> Result<Response<Body>, ApiError> {
    match graph.send_activation(&session).await {
        Ok(accepted) => {
            match app
                .store
                .record_send(&session, &accepted.message_id, accepted.wa_id.as_deref())
                .await
            {
                Ok(Write::Written(())) => {}
                Ok(Write::ConditionFailed { .. }) => tracing::warn!(
                    session_id = session.id.as_str(),
                    "session revoked while its template was being sent"
                ),
                // The template went out and the session exists; the button payload still
                // activates it. Only delivery statuses for this message cannot be matched.
                Err(e) => tracing::error!(error = %e, session_id = session.id.as_str(),
                    "could not store the activation message id"),
            }
            tracing::info!(
                session_id = session.id.as_str(),
                phone = %session.phone,
                // No message id: a wamid base64-encodes the recipient's number.
                "activation template sent for a new session"
            );
            session.activation_message_id = Some(accepted.message_id);
            session.wa_id = accepted.wa_id;
            Ok(session_response(
                &session,
                &app.config.sandbox_display_number,
            ))
        }
        Err(send_error) => {
            match app
                .store
                .roll_back_claim(&session.user_id, write_id, previous)
                .await
            {
                Ok(Write::Written(())) => {}
                Ok(Write::ConditionFailed { .. }) => tracing::warn!(
                    session_id = session.id.as_str(),
                    "rollback skipped: the row was changed by a newer request"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    session_id = session.id.as_str(),
                    "ROLLBACK FAILED after a failed send; the pending row stays until it expires"
                ),
            }
            Err(send_failed(&session.phone, send_error))
        }
    }
}

/// Same phone, live and pending: send again, then refresh expiry and message id. `None` when
/// the session changed meanwhile in a way that means starting over.
async fn refresh(
    app: &App,
    graph: &GraphClient,
    mut session: Session,
    write_id: &str,
    now: i64,
) -> Result<Option<Response<Body>>, ApiError> {
    let accepted = graph
        .send_activation(&session)
        .await
        .map_err(|e| send_failed(&session.phone, e))?;
    session.expires_at = now + app.config.pending_ttl_seconds;
    session.template_sent_at = Some(now);
    session.delivery = None;
    if accepted.wa_id.is_some() {
        session.wa_id = accepted.wa_id.clone();
    }
    let outcome = app
        .store
        .refresh_pending(
            &session,
            &accepted.message_id,
            accepted.wa_id.as_deref(),
            write_id,
            now,
        )
        .await?;
    session.activation_message_id = Some(accepted.message_id);
    let number = &app.config.sandbox_display_number;
    match outcome {
        Write::Written(()) => {
            tracing::info!(session_id = session.id.as_str(), phone = %session.phone,
                "activation template sent again; pending session refreshed");
            Ok(Some(session_response(&session, number)))
        }
        // Activated by the owner's reply while we sent: the active session is the answer.
        Write::ConditionFailed {
            current: Some(current),
        } if current.id == session.id && current.is_live(now) => {
            Ok(Some(session_response(&current, number)))
        }
        Write::ConditionFailed { .. } => Ok(None),
    }
}

fn send_failed(phone: &PhoneE164, error: SendError) -> ApiError {
    match error {
        SendError::Rejected { message, error } => {
            tracing::warn!(
                phone = %phone,
                meta_code = error.get("code").and_then(serde_json::Value::as_i64),
                fbtrace_id = error.get("fbtrace_id").and_then(serde_json::Value::as_str),
                "Meta rejected the activation template"
            );
            ApiError::Platform { message, error }
        }
        SendError::Unavailable(reason) => {
            tracing::warn!(phone = %phone, reason = %reason, "Graph API unavailable");
            ApiError::UpstreamUnavailable
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "internal error");
    ApiError::Internal
}
