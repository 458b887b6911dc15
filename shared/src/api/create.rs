//! `POST /v1/whatsapp/sandbox/sessions`: start (or refresh) an activation and send the template.
//!
//! The common case costs two DynamoDB requests and one Graph API call: one
//! `TransactWriteItems` (claim the user's one slot, take a unit of the user's and the
//! recipient's daily counters, check that no WhatsApp form of the phone opted out), the send,
//! and one `UpdateItem` storing Meta's message id. A new session is written first, so no two
//! concurrent creates can both send, and a failed send rolls back exactly that write and gives
//! its units back, but only while the row is still the pending one this request wrote. A
//! refresh of a live pending session for the same phone reserves its units (and checks the
//! session is unchanged) first, sends, then refreshes; a failed send gives the units back and
//! leaves the row untouched.

use std::future::Future;
use std::time::{Duration, Instant};

use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use super::session_response;
use crate::app::App;
use crate::config::Config;
use crate::edge::{json_object, serve, with_rate_limit_headers, ApiError, Sends};
use crate::graph::{Meta, SendError};
use crate::ids;
use crate::limits::Quota;
use crate::phone::PhoneE164;
use crate::session::{Session, SessionId, SessionStatus};
use crate::store::{Caps, Item, Reservation, Reserve, StoreError, Write, OPERATION_TIMEOUT};

/// The route label in logs.
pub const ROUTE: &str = "POST /v1/whatsapp/sandbox/sessions";

/// How often a create starts over after losing a race with a concurrent revoke.
const MAX_ATTEMPTS: usize = 3;
/// A pause before storing Meta's ids again after a failure.
const RECORD_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The longest a create can take whatever hangs (the arithmetic is in `store::timeouts`): no
/// DynamoDB request before the send starts later than 2T after the request, so the send starts
/// by 3T; it takes at most `META_TIMEOUT_MS`; recording or undoing it ends by 2T after that.
pub fn time_bound(config: &Config) -> Duration {
    5 * OPERATION_TIMEOUT + config.graph_timeout
}

/// When each stage of one create must be done by.
#[derive(Debug, Clone, Copy)]
struct TimePlan {
    /// No DynamoDB request before the send starts after this.
    send_by: Instant,
    /// Every request after the send has ended by this.
    answer_by: Instant,
}

impl TimePlan {
    fn new(started: Instant, config: &Config) -> Self {
        Self {
            send_by: started + 2 * OPERATION_TIMEOUT,
            answer_by: started + time_bound(config),
        }
    }

    /// The latest start of a request after the send (a first attempt always runs).
    fn last_start(&self) -> Instant {
        self.answer_by - OPERATION_TIMEOUT
    }
}

/// Creates or refreshes the caller's session for `phone` and sends the activation template.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(req, ROUTE, |req| create(app, req)).await
}

async fn create(app: &App, req: Request) -> Result<Response<Body>, ApiError> {
    let plan = TimePlan::new(Instant::now(), &app.config);
    let now = app.clock.now();
    let user = app.authenticate(&req, now).await?;
    let phone = phone_from_body(&req)?;
    let meta = app.meta.as_ref().ok_or_else(|| {
        tracing::error!("create runs without a Graph API client");
        ApiError::Internal
    })?;
    let caps = caps_for(&app.config, &phone);

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
        let claim = app
            .store
            .claim(&session, &write_id, now, caps, plan.send_by)
            .await?;
        let existing = match claim {
            Reserve::Reserved {
                reservation,
                previous,
            } => {
                let new = NewSend {
                    session,
                    write_id: &write_id,
                    previous,
                    reservation,
                    now,
                    plan,
                };
                return send_new(app, meta, new).await;
            }
            Reserve::SessionDiffers {
                current: Some(existing),
            } => *existing,
            // The claim asks for the item that failed it, so this does not happen; had the
            // slot freed meanwhile, claiming again is right.
            Reserve::SessionDiffers { current: None } => continue,
            Reserve::OptedOut => return Err(opted_out(&phone)),
            Reserve::Capped(usage) => return Err(capped(&phone, usage, now)),
        };
        if existing.phone != phone {
            return Err(different_phone(&existing));
        }
        if existing.status == SessionStatus::Active {
            // Nothing is sent, so nothing is counted and no limit applies.
            return Ok(session_response(
                &existing,
                &app.config.sandbox_display_number,
            ));
        }
        if let Some(done) = refresh(app, meta, existing, &write_id, now, caps, plan).await? {
            return Ok(done);
        }
        // The session was revoked or replaced while we sent: start over.
    }
    tracing::warn!("create kept losing races with concurrent changes");
    Err(ApiError::ServiceUnavailable)
}

/// The caps and opt-outs a template to `phone` passes: a person's phone counts against the
/// user's and the recipient's daily caps; a virtual phone against the user's own virtual cap
/// only, and only this user's opt-out of it counts (`limits::Quota`).
fn caps_for(config: &Config, phone: &PhoneE164) -> Caps {
    match config.quota(phone) {
        Quota::Person => Caps::Person {
            user: config.user_daily_send_limit,
            recipient: config.recipient_daily_send_limit,
        },
        Quota::Virtual => Caps::Virtual {
            user: config.virtual_daily_send_limit,
        },
    }
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

/// A new session that holds the slot and its units, about to be sent.
struct NewSend<'a> {
    session: Session,
    write_id: &'a str,
    previous: Option<Item>,
    reservation: Reservation,
    now: i64,
    plan: TimePlan,
}

/// A new session holds the slot: send, then record Meta's ids or roll back the claim.
async fn send_new(app: &App, meta: &Meta, new: NewSend<'_>) -> Result<Response<Body>, ApiError> {
    let NewSend {
        mut session,
        write_id,
        previous,
        mut reservation,
        now,
        plan,
    } = new;
    let number = &app.config.sandbox_display_number;
    let accepted = match meta.send_activation(&session).await {
        Ok(accepted) => accepted,
        Err(send_error) => {
            let rollback = app
                .store
                .roll_back_claim(
                    &session.user_id,
                    write_id,
                    previous,
                    &mut reservation,
                    plan.last_start(),
                )
                .await;
            match rollback {
                Ok(Write::Written(())) => {}
                // The owner answered this very template while we waited: Meta did accept it
                // after all. The truth is the active session, and its units stay counted.
                Ok(Write::ConditionFailed {
                    current: Some(current),
                }) if current.id == session.id && current.status == SessionStatus::Active => {
                    tracing::info!(
                        session_id = session.id.as_str(),
                        "the send failed for us but the owner activated the session meanwhile"
                    );
                    let mut response = session_response(&current, number);
                    with_rate_limit_headers(&mut response, reservation.usage(), now);
                    return Ok(response);
                }
                // A newer request holds the row now: leave it, give only our units back.
                Ok(Write::ConditionFailed { .. }) => {
                    tracing::warn!(
                        session_id = session.id.as_str(),
                        "rollback skipped: the row was changed by a newer request"
                    );
                    if let Err(e) = app
                        .store
                        .give_back_units(&mut reservation, plan.last_start())
                        .await
                    {
                        tracing::error!(error = %e, "could not give back the units of a failed send");
                    }
                }
                Err(e) => tracing::error!(
                    error = %e,
                    session_id = session.id.as_str(),
                    "ROLLBACK FAILED after a failed send; the pending row stays until it expires"
                ),
            }
            return Err(send_failed(&session.phone, send_error));
        }
    };
    tracing::info!(
        session_id = session.id.as_str(),
        phone = %session.phone,
        "activation template sent for a new session"
    );
    let recorded = retry_within(plan, || {
        app.store.record_send(
            &session,
            write_id,
            &accepted.message_id,
            accepted.wa_id.as_deref(),
        )
    })
    .await;
    session.activation_message_id = Some(accepted.message_id.clone());
    session.wa_id = accepted.wa_id.clone();
    let answer = match recorded {
        Ok(Write::Written(())) => session,
        // A newer refresh of this session (its message id is the newer one and stays), or
        // the owner's activation: the row as it is now is the truth.
        Ok(Write::ConditionFailed {
            current: Some(current),
        }) if current.id == session.id && current.is_live(now) => *current,
        Ok(Write::ConditionFailed { .. }) => {
            tracing::warn!(
                session_id = session.id.as_str(),
                "session revoked while its template was being sent"
            );
            session
        }
        // Out of time: the session exists with its template sent; the button payload names
        // it and the webhook matches the phone's other WhatsApp forms, so it still activates.
        Err(e) => {
            tracing::error!(error = %e, session_id = session.id.as_str(),
                "could not store the activation message id");
            session
        }
    };
    let mut response = session_response(&answer, number);
    with_rate_limit_headers(&mut response, reservation.usage(), now);
    Ok(response)
}

/// Runs a store request after the send again on failure while the plan leaves time for one
/// more; the last error when it does not.
async fn retry_within<T, F, Fut>(plan: TimePlan, mut request: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    loop {
        match request().await {
            Ok(done) => return Ok(done),
            Err(e) if Instant::now() + RECORD_RETRY_PAUSE < plan.last_start() => {
                tracing::warn!(error = %e, "storing the send failed; trying again");
                tokio::time::sleep(RECORD_RETRY_PAUSE).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Same phone, live and pending: reserve units, send again, then refresh expiry and message
/// id. `None` when the session changed meanwhile in a way that means starting over.
async fn refresh(
    app: &App,
    meta: &Meta,
    mut session: Session,
    write_id: &str,
    now: i64,
    caps: Caps,
    plan: TimePlan,
) -> Result<Option<Response<Body>>, ApiError> {
    let number = &app.config.sandbox_display_number;
    let reserved = app
        .store
        .reserve_refresh(&session, now, caps, plan.send_by)
        .await?;
    let mut reservation = match reserved {
        Reserve::Reserved { reservation, .. } => reservation,
        // Activated by the owner meanwhile: nothing to send.
        Reserve::SessionDiffers {
            current: Some(current),
        } if current.id == session.id
            && current.is_live(now)
            && current.status == SessionStatus::Active =>
        {
            return Ok(Some(session_response(&current, number)));
        }
        Reserve::SessionDiffers { .. } => return Ok(None),
        Reserve::OptedOut => return Err(opted_out(&session.phone)),
        Reserve::Capped(usage) => return Err(capped(&session.phone, usage, now)),
    };
    let accepted = match meta.send_activation(&session).await {
        Ok(accepted) => accepted,
        Err(e) => {
            if let Err(store_error) = app
                .store
                .give_back_units(&mut reservation, plan.last_start())
                .await
            {
                tracing::error!(error = %store_error, "could not give back the units of a failed send");
            }
            return Err(send_failed(&session.phone, e));
        }
    };
    session.expires_at = now + app.config.pending_ttl_seconds;
    session.template_sent_at = Some(now);
    session.delivery = None;
    if accepted.wa_id.is_some() {
        session.wa_id = accepted.wa_id.clone();
    }
    let outcome = retry_within(plan, || {
        app.store.refresh_pending(
            &session,
            &accepted.message_id,
            accepted.wa_id.as_deref(),
            write_id,
            now,
        )
    })
    .await;
    session.activation_message_id = Some(accepted.message_id);
    let with_headers = |mut response: Response<Body>| {
        with_rate_limit_headers(&mut response, reservation.usage(), now);
        response
    };
    match outcome {
        Ok(Write::Written(())) => {
            tracing::info!(session_id = session.id.as_str(), phone = %session.phone,
                "activation template sent again; pending session refreshed");
            Ok(Some(with_headers(session_response(&session, number))))
        }
        // Activated by the owner's reply while we sent: the active session is the answer.
        Ok(Write::ConditionFailed {
            current: Some(current),
        }) if current.id == session.id && current.is_live(now) => {
            Ok(Some(with_headers(session_response(&current, number))))
        }
        Ok(Write::ConditionFailed { .. }) => Ok(None),
        // The template went out for a session that still exists, pending, with its earlier
        // message id; the new template's button names it, so it still activates.
        Err(e) => {
            tracing::error!(error = %e, session_id = session.id.as_str(),
                "could not store the refreshed send");
            Ok(Some(with_headers(session_response(&session, number))))
        }
    }
}

/// The 403 for a phone that opted out (in any of its WhatsApp forms).
fn opted_out(phone: &PhoneE164) -> ApiError {
    tracing::info!(phone = %phone, "create refused: the phone opted out");
    ApiError::RecipientOptedOut(phone.with_plus())
}

/// The 429 for a reached daily cap.
fn capped(phone: &PhoneE164, usage: crate::limits::Usage, now: i64) -> ApiError {
    tracing::info!(phone = %phone, scope = usage.scope.as_str(), limit = usage.limit,
        "create refused: daily send limit reached");
    ApiError::RateLimited {
        sends: Sends::Activations,
        usage,
        now,
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
