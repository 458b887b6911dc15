//! `GET` and `POST /v1/whatsapp/webhook`: Meta's verification handshake and event deliveries.
//!
//! A correctly signed delivery is answered 200 even when it matches nothing, so Meta does not
//! retry it for a week; only a transient storage failure answers 503, so Meta retries. Every
//! write is a conditional transition, so a duplicated or replayed delivery changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{stream, StreamExt, TryStreamExt};

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::app::App;
use crate::edge::{body_bytes, json_response, serve, ApiError};
use crate::limits::canonical_digits;
use crate::message::{ConversationMessage, Direction};
use crate::meta::callback::{parse_tag, Tag};
use crate::meta::matching::{
    delivery_of, inbound_content, intent, recipient_of, reference_of, session_to_activate, Intent,
    Reference,
};
use crate::meta::payload::{epoch_seconds, InboundMessage, Notification, StatusEvent};
use crate::meta::signature::{secrets_equal, signature_ok};
use crate::phone::{mask_digits, PhoneE164};
use crate::session::{Session, SessionStatus, UserId};
use crate::store::{Activation, Answer, DeleteIf, StoreError};

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
            // serde's message can quote payload values (numbers, names): log only where and
            // what kind of error it is.
            tracing::warn!(
                category = ?e.classify(),
                line = e.line(),
                column = e.column(),
                bytes = body.len(),
                "signed webhook body is not a delivery we can read"
            );
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

/// How many independent events (phones, statuses) of one delivery are applied at once: a
/// batch of up to 1,000 updates must finish well inside the function's timeout, without
/// opening hundreds of connections at once.
const CONCURRENCY: usize = 16;

/// Applies every event of the sandbox number; events of other numbers are skipped.
///
/// Messages are grouped by sender: each phone's sessions are looked up once, and its messages
/// are applied in the order they were sent, and each is recorded in the conversation of the
/// user it is for. Phones and statuses are independent, so they run with bounded concurrency.
/// A status costs a request only when it carries one of our tags (an activation template or a
/// sandbox message); every other status is skipped without touching DynamoDB.
pub async fn process(app: &App, notification: &Notification) -> Result<(), StoreError> {
    let mut by_phone: BTreeMap<&str, Vec<&InboundMessage>> = BTreeMap::new();
    let mut tagged: Vec<(&StatusEvent, Tag)> = Vec::new();
    let mut untagged = 0usize;
    for change in notification.entry.iter().flat_map(|e| &e.changes) {
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
            // Usernames without a phone number: nothing to match.
            if let Some(from) = message.from.as_deref().filter(|f| !f.is_empty()) {
                by_phone.entry(from).or_default().push(message);
            }
        }
        for status in &change.value.statuses {
            match status
                .biz_opaque_callback_data
                .as_deref()
                .and_then(parse_tag)
            {
                Some(tag) => tagged.push((status, tag)),
                None => untagged += 1,
            }
        }
    }
    if untagged > 0 {
        tracing::info!(
            statuses = untagged,
            "statuses of messages this service did not tag skipped"
        );
    }
    let now = app.clock.now();
    // The futures are collected first: a stream over a mapping closure would not be `Send`
    // for every lifetime the Lambda runtime asks for.
    let phones: Vec<_> = by_phone
        .into_iter()
        .map(|(from, messages)| on_phone(app, from, messages, now))
        .collect();
    stream::iter(phones)
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let statuses: Vec<_> = tagged
        .into_iter()
        .map(|(status, tag)| on_status(app, status, tag, now))
        .collect();
    stream::iter(statuses)
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Applies one phone's messages of this delivery in the order they were sent, after one
/// lookup of the phone's sessions (kept up to date as the messages change them); records each
/// message for the user it is for; then moves the customer-service window of the phone's
/// active sessions to its latest message.
async fn on_phone(
    app: &App,
    from: &str,
    mut messages: Vec<&InboundMessage>,
    now: i64,
) -> Result<(), StoreError> {
    let sent_at = |m: &InboundMessage| epoch_seconds(m.timestamp.as_ref()).unwrap_or(now);
    messages.sort_by_key(|m| sent_at(m));
    let masked = mask_digits(from);
    let mut sessions = app.store.sessions_for_phone(from).await?;
    let mut latest: Option<i64> = None;
    for message in messages {
        let message_time = sent_at(message);
        let mut recorded = false;
        match intent(message) {
            Intent::Ignore => {}
            Intent::OptOut => {
                opt_out(app, from, &sessions, message_time).await?;
                sessions.retain(|s| s.created_at > message_time);
                tracing::info!(phone = %masked, "phone opted out");
            }
            Intent::OptIn => {
                opt_in(app, from, message_time).await?;
                tracing::info!(phone = %masked, "opt-out lifted");
            }
            Intent::Reply(reference) => {
                let Some(target) = session_to_activate(&sessions, &reference, message_time, now)
                else {
                    tracing::info!(phone = %masked, candidates = sessions.len(), "reply activates nothing");
                    record(app, from, message, message_time, &sessions, now).await?;
                    latest = latest.max(Some(message_time));
                    continue;
                };
                let answer = Answer {
                    message_id: message.id.as_deref().filter(|id| !id.is_empty()),
                    sent_at: message_time,
                };
                let entry = conversation_entry(&target.user_id, from, message, message_time);
                let outcome = app
                    .store
                    .activate_recording(
                        target,
                        &answer,
                        now,
                        app.config.active_ttl_seconds,
                        entry.as_ref(),
                    )
                    .await?;
                tracing::info!(
                    phone = %masked,
                    session_id = target.id.as_str(),
                    outcome = ?outcome,
                    "activation reply"
                );
                // Activated: recorded with the activation. Replayed: seen before, and
                // recorded then.
                recorded = outcome != Activation::NotAnswerable;
                if outcome == Activation::Activated {
                    let id = target.id.clone();
                    if let Some(s) = sessions.iter_mut().find(|s| s.id == id) {
                        s.status = SessionStatus::Active;
                        s.activated_at = Some(now);
                        s.expires_at = now + app.config.active_ttl_seconds;
                        s.last_inbound_at = Some(message_time);
                    }
                }
                if outcome == Activation::Replayed {
                    continue;
                }
            }
        }
        if !recorded {
            record(app, from, message, message_time, &sessions, now).await?;
        }
        latest = latest.max(Some(message_time));
    }
    if let Some(at) = latest {
        // Meta keeps one window per number and customer: every active session of the phone
        // may send free-form messages until 24 hours after its latest message.
        for session in &sessions {
            let open_since = session.last_inbound_at.unwrap_or(i64::MIN);
            if session.status == SessionStatus::Active && session.is_live(now) && open_since < at {
                let _ = app.store.touch_window(session, at).await?;
            }
        }
    }
    Ok(())
}

/// The conversation item of an inbound message for `user`; `None` for system notices and
/// messages without an id (nothing to show, and no key that stays the same on redelivery).
fn conversation_entry(
    user: &UserId,
    from: &str,
    message: &InboundMessage,
    message_time: i64,
) -> Option<ConversationMessage> {
    let kind = message.kind.as_deref().unwrap_or("unknown");
    let id = message.id.as_deref().filter(|id| !id.is_empty())?;
    if matches!(kind, "system" | "unsupported") {
        return None;
    }
    Some(ConversationMessage {
        user_id: user.clone(),
        created_at: message_time,
        suffix: format!("i{id}"),
        message_id: Some(id.to_owned()),
        direction: Direction::Inbound,
        phone: from.to_owned(),
        kind: kind.to_owned(),
        content: inbound_content(message),
        status: None,
        error: None,
    })
}

/// Records an inbound message for the user it is for ([`recipient_of`]), if any. A quote of a
/// message that is no activation template costs one read (who sent it); a phone with more
/// than one active session one read (who sent to it last).
async fn record(
    app: &App,
    from: &str,
    message: &InboundMessage,
    message_time: i64,
    sessions: &[Session],
    now: i64,
) -> Result<(), StoreError> {
    // Nobody to record it for (or nothing to record): no request at all.
    let anyone = sessions.iter().any(|s| s.is_live(now));
    if !anyone || conversation_entry(&UserId::new(""), from, message, message_time).is_none() {
        return Ok(());
    }
    let reference = reference_of(message);
    let quoted_owner = match &reference {
        Reference::MessageId(mid)
            if !sessions
                .iter()
                .any(|s| s.activation_message_id.as_deref() == Some(mid.as_str())) =>
        {
            app.store.outbound_owner(mid).await?
        }
        _ => None,
    };
    let active: Vec<&Session> = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Active && s.is_live(now))
        .collect();
    // Who of several active users sent to the phone last: one read, only when it matters.
    let mut last_sent: Option<(UserId, i64)> = None;
    if active.len() > 1 && matches!(reference, Reference::None | Reference::MessageId(_)) {
        let canonical = PhoneE164::from_stored(from)
            .map(|p| canonical_digits(&p))
            .unwrap_or_else(|| from.to_owned());
        last_sent = app.store.last_sender(&canonical).await?;
    }
    let recency = |s: &Session| {
        let activated = s.activated_at.unwrap_or(s.created_at);
        match &last_sent {
            Some((user, at)) if *user == s.user_id => activated.max(*at),
            _ => activated,
        }
    };
    let Some(owner) = recipient_of(sessions, &reference, quoted_owner.as_ref(), recency, now)
    else {
        tracing::info!(phone = %mask_digits(from), "inbound message for nobody's live session: not kept");
        return Ok(());
    };
    if let Some(entry) = conversation_entry(&owner.user_id, from, message, message_time) {
        app.store.record_inbound(&entry).await?;
    }
    Ok(())
}

/// STOP: blocks new templates to every number of this person (unless a later START already
/// decided), and deletes every one of their sessions created before the STOP, whatever order
/// STOP and START arrive in: only the blocked flag follows the latest message time.
async fn opt_out(
    app: &App,
    from: &str,
    sessions: &[Session],
    message_time: i64,
) -> Result<(), StoreError> {
    let phones: BTreeSet<String> = std::iter::once(from.to_owned())
        .chain(sessions.iter().map(|s| s.phone.digits().to_owned()))
        .collect();
    let phones: Vec<String> = phones.into_iter().collect();
    // A failed condition means a later message already decided that number: leaving its flag
    // is the rule, not an error.
    for phone in &phones {
        let _ = app
            .store
            .set_opt_out(phone, true, message_time, &phones)
            .await?;
    }
    for session in sessions {
        let _ = app
            .store
            .delete_session(
                &session.user_id,
                &session.id,
                DeleteIf::CreatedBy { message_time },
            )
            .await?;
    }
    Ok(())
}

/// START / UNSTOP: lifts the block on every number recorded with this person's opt-out.
async fn opt_in(app: &App, from: &str, message_time: i64) -> Result<(), StoreError> {
    let record = app.store.opt_out(from).await?;
    let mut phones = record.map(|r| r.phones).unwrap_or_default();
    if !phones.iter().any(|p| p == from) {
        phones.push(from.to_owned());
    }
    // A failed condition means a later message already decided that phone.
    for phone in &phones {
        let _ = app
            .store
            .set_opt_out(phone, false, message_time, &[])
            .await?;
    }
    Ok(())
}

/// A tagged status: an activation template's is recorded on the session its tag names, while
/// that template is still the session's latest; a sandbox message's on its conversation item.
/// Both only move forward.
async fn on_status(app: &App, status: &StatusEvent, tag: Tag, now: i64) -> Result<(), StoreError> {
    let Some(message_id) = status.id.as_deref() else {
        return Ok(());
    };
    let Some(delivery) = delivery_of(status, now) else {
        return Ok(()); // `played` and unknown statuses are not recorded.
    };
    match tag {
        Tag::Activation { session, user } => {
            let recorded = app
                .store
                .record_delivery(&user, &session, message_id, &delivery)
                .await?
                .written();
            tracing::info!(
                session_id = session.as_str(),
                status = delivery.status.as_str(),
                error_code = delivery.error.as_ref().map(|e| e.code),
                recorded,
                "activation message status"
            );
        }
        Tag::Message {
            user,
            created_at,
            suffix,
        } => {
            let recorded = app
                .store
                .record_message_status(&user, created_at, &suffix, &delivery)
                .await?
                .written();
            tracing::info!(
                status = delivery.status.as_str(),
                error_code = delivery.error.as_ref().map(|e| e.code),
                recorded,
                "sandbox message status"
            );
        }
    }
    Ok(())
}
