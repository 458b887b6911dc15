//! `GET` and `POST /v1/whatsapp/webhook`: Meta's verification handshake and event deliveries.
//!
//! A correctly signed delivery is answered 200 even when it matches nothing, so Meta does not
//! retry it for a week; only a transient storage failure answers 503, so Meta retries. Every
//! write is a conditional transition, so a duplicated or replayed delivery changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::{stream, StreamExt, TryStreamExt};

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::app::App;
use crate::bsuid::Bsuid;
use crate::edge::{body_bytes, json_response, serve, ApiError};
use crate::limits::canonical_digits;
use crate::message::{ConversationMessage, Direction};
use crate::meta::callback::{parse_tag, Tag};
use crate::meta::identity::{bsuid_change, recipient_of_status, senders_of, Identity};
use crate::meta::matching::{
    delivery_of, inbound_content, intent, recipient_of, reference_of, session_to_activate, Intent,
    Reference,
};
use crate::meta::payload::{epoch_seconds, InboundMessage, Notification, StatusEvent};
use crate::meta::signature::{secrets_equal, signature_ok};
use crate::phone::{mask_digits, PhoneE164};
use crate::session::{Session, SessionStatus, UserId};
use crate::store::{Activation, Answer, BsuidRecord, DeleteIf, StoreError, Write};

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
    let signature = req
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    accept(app, body_bytes(req), signature).await?;
    Ok(received())
}

/// A delivery's raw `body` and its `X-Hub-Signature-256`, as the route gets them: the signature
/// checked, the body parsed, every event processed. The route answers 200 when this is `Ok`.
/// The virtual phones hand their deliveries to the webhook here, in process: the same checks
/// and the same processing as Meta's over HTTP.
pub async fn accept(app: &App, body: &[u8], signature: Option<&str>) -> Result<(), ApiError> {
    let secret = app
        .config
        .app_secret
        .as_ref()
        .map(|s| s.expose().as_bytes());
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
            return Ok(());
        }
    };
    // A storage failure answers 503, so Meta retries the whole delivery.
    process(app, &notification).await?;
    Ok(())
}

fn received() -> Response<Body> {
    json_response(StatusCode::OK, &json!({ "received": true }))
}

/// How many independent events (phones, statuses) of one delivery are applied at once: a
/// batch of up to 1,000 updates must finish well inside the function's timeout, without
/// opening hundreds of connections at once.
const CONCURRENCY: usize = 16;

/// An inbound message with the BSUID of its sender, when the delivery carries one.
#[derive(Clone, Copy)]
struct Inbound<'a> {
    message: &'a InboundMessage,
    bsuid: Option<&'a Bsuid>,
}

/// Applies every event of the sandbox number; events of other numbers are skipped.
///
/// Messages are grouped by sender: each phone's sessions are looked up once, and its messages
/// are applied in the order they were sent, and each is recorded in the conversation of the
/// user it is for. A sender known only by its business-scoped user id (BSUID) costs one read,
/// which finds the phone it was learned beside; its messages then join that phone's, and an
/// unknown BSUID's are recorded nowhere (a STOP or START is kept for when it is learned).
/// Phones and statuses are independent, so they run with bounded concurrency. A status costs
/// a request only when it carries one of our tags (an activation template or a sandbox
/// message); every other status is skipped without touching DynamoDB.
pub async fn process(app: &App, notification: &Notification) -> Result<(), StoreError> {
    // Owned first: each message's sender as the delivery names it.
    let mut senders: Vec<(&InboundMessage, Identity)> = Vec::new();
    let mut tagged: Vec<(&StatusEvent, Tag, Identity)> = Vec::new();
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
        let contacts = &change.value.contacts;
        let identities = senders_of(&change.value.messages, contacts);
        for (message, mut sender) in change.value.messages.iter().zip(identities) {
            // A changed BSUID with no phone: the phone is the one the previous BSUID names.
            if let (None, Some(change)) = (&sender.phone, bsuid_change(message)) {
                sender.bsuid = change.previous.or(Some(change.current));
            }
            senders.push((message, sender));
        }
        for status in &change.value.statuses {
            match status
                .biz_opaque_callback_data
                .as_deref()
                .and_then(parse_tag)
            {
                Some(tag) => tagged.push((status, tag, recipient_of_status(status, contacts))),
                None => untagged += 1,
            }
        }
    }
    let mut by_phone: BTreeMap<String, Vec<Inbound<'_>>> = BTreeMap::new();
    let mut by_bsuid: BTreeMap<&Bsuid, Vec<&InboundMessage>> = BTreeMap::new();
    let mut anonymous = 0usize;
    for (message, sender) in &senders {
        match (&sender.phone, &sender.bsuid) {
            (Some(phone), bsuid) => by_phone.entry(phone.clone()).or_default().push(Inbound {
                message,
                bsuid: bsuid.as_ref(),
            }),
            (None, Some(bsuid)) => by_bsuid.entry(bsuid).or_default().push(message),
            (None, None) => anonymous += 1,
        }
    }
    if anonymous > 0 {
        tracing::info!(
            messages = anonymous,
            "messages with neither a phone nor a business-scoped user id skipped"
        );
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
    let lookups: Vec<_> = by_bsuid
        .into_iter()
        .map(|(bsuid, messages)| async move {
            let record = app.store.bsuid_record(bsuid).await?;
            Ok::<_, StoreError>((bsuid, messages, record.and_then(|r| r.phone)))
        })
        .collect();
    let looked_up = stream::iter(lookups)
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let mut unknown = Vec::new();
    for (bsuid, messages, phone) in looked_up {
        match phone {
            Some(phone) => by_phone
                .entry(phone)
                .or_default()
                .extend(messages.into_iter().map(|message| Inbound {
                    message,
                    bsuid: Some(bsuid),
                })),
            None => unknown.push(on_unknown_bsuid(app, bsuid, messages, now)),
        }
    }
    stream::iter(unknown)
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let phones: Vec<_> = by_phone
        .iter()
        .map(|(from, messages)| on_phone(app, from, messages.clone(), now))
        .collect();
    stream::iter(phones)
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let statuses: Vec<_> = tagged
        .into_iter()
        .map(|(status, tag, recipient)| on_status(app, status, tag, recipient, now))
        .collect();
    stream::iter(statuses)
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// When a message was sent: Meta's timestamp, else now.
fn sent_at(message: &InboundMessage, now: i64) -> i64 {
    epoch_seconds(message.timestamp.as_ref()).unwrap_or(now)
}

/// Applies one phone's messages of this delivery in the order they were sent, after one
/// lookup of the phone's sessions (kept up to date as the messages change them); learns the
/// BSUID they carry when the sessions do not have it yet; records each message for the user
/// it is for; then moves the customer-service window of the phone's active sessions to its
/// latest message.
async fn on_phone(
    app: &App,
    from: &str,
    mut messages: Vec<Inbound<'_>>,
    now: i64,
) -> Result<(), StoreError> {
    messages.sort_by_key(|m| sent_at(m.message, now));
    let masked = mask_digits(from);
    let mut sessions = app.store.sessions_for_phone(from).await?;
    let bsuid = learn_from_messages(app, from, &messages, &mut sessions, now).await?;
    let mut latest: Option<i64> = None;
    // Whose conversation each message reached, and when the latest did: a virtual phone's
    // window is each user's own (below).
    let mut reached: HashMap<UserId, i64> = HashMap::new();
    let mut reach = |user: &UserId, at: i64| {
        let latest = reached.entry(user.clone()).or_insert(at);
        *latest = (*latest).max(at);
    };
    for Inbound { message, .. } in messages {
        let message_time = sent_at(message, now);
        let bsuid = bsuid.as_ref();
        let mut recorded = false;
        match intent(message) {
            Intent::Ignore => {}
            // A virtual phone is every user's: its STOP and START are one user's (below).
            Intent::OptOut if is_virtual(app, from) => {
                let owner = addressee(app, from, message, &sessions, now)
                    .await?
                    .map(|s| s.user_id.clone());
                if let Some(owner) = &owner {
                    virtual_opt_out(app, from, owner, &sessions, message_time).await?;
                    sessions.retain(|s| &s.user_id != owner || s.created_at > message_time);
                }
                tracing::info!(phone = %masked, answered = owner.is_some(),
                    "virtual phone opted out of the session it answered");
            }
            Intent::OptIn if is_virtual(app, from) => {
                let owner = addressee(app, from, message, &sessions, now).await?;
                if let Some(owner) = owner {
                    let _ = app
                        .store
                        .set_user_opt_out(from, &owner.user_id, false, message_time)
                        .await?;
                }
                tracing::info!(phone = %masked, "virtual phone's opt-out lifted");
            }
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
                    if let Some(owner) =
                        record(app, from, bsuid, message, message_time, &sessions, now).await?
                    {
                        reach(&owner, message_time);
                    }
                    latest = latest.max(Some(message_time));
                    continue;
                };
                let answer = Answer {
                    message_id: message.id.as_deref().filter(|id| !id.is_empty()),
                    sent_at: message_time,
                };
                let entry = conversation_entry(&target.user_id, from, bsuid, message, message_time);
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
                if recorded && outcome != Activation::Replayed {
                    reach(&target.user_id, message_time);
                }
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
            if let Some(owner) =
                record(app, from, bsuid, message, message_time, &sessions, now).await?
            {
                reach(&owner, message_time);
            }
        }
        latest = latest.max(Some(message_time));
    }
    let virtual_phone = is_virtual(app, from);
    if let Some(latest) = latest {
        // Meta keeps one window per number and customer: every active session of the phone
        // may send free-form messages until 24 hours after its latest message. A virtual phone
        // is every user's, and a message it writes reaches one user only (`/reply` is the
        // caller's): its window opens for that user alone, so one user's replies never open
        // another's window.
        for session in &sessions {
            let at = match (virtual_phone, reached.get(&session.user_id)) {
                (false, _) => latest,
                (true, Some(at)) => *at,
                (true, None) => continue,
            };
            let open_since = session.last_inbound_at.unwrap_or(i64::MIN);
            if session.status == SessionStatus::Active && session.is_live(now) && open_since < at {
                let _ = app.store.touch_window(session, at).await?;
            }
        }
    }
    Ok(())
}

/// The conversation item of an inbound message for `user` from `from` (whose BSUID is
/// `bsuid`, when known); `None` for system notices and messages without an id (nothing to
/// show, and no key that stays the same on redelivery).
pub(crate) fn conversation_entry(
    user: &UserId,
    from: &str,
    bsuid: Option<&Bsuid>,
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
        bsuid: bsuid.map(|b| b.as_str().to_owned()),
    })
}

/// Records an inbound message for the user it is for ([`addressee`]), if any: that user.
async fn record(
    app: &App,
    from: &str,
    bsuid: Option<&Bsuid>,
    message: &InboundMessage,
    message_time: i64,
    sessions: &[Session],
    now: i64,
) -> Result<Option<UserId>, StoreError> {
    // Nothing to record: no request at all.
    if conversation_entry(&UserId::new(""), from, None, message, message_time).is_none() {
        return Ok(None);
    }
    let Some(owner) = addressee(app, from, message, sessions, now).await? else {
        tracing::info!(phone = %mask_digits(from), "inbound message for nobody's live session: not kept");
        return Ok(None);
    };
    if let Some(entry) = conversation_entry(&owner.user_id, from, bsuid, message, message_time) {
        app.store.record_inbound(&entry).await?;
    }
    Ok(Some(owner.user_id.clone()))
}

/// The live session of the phone `from` an inbound message is for ([`recipient_of`]), if any:
/// the session its payload names or whose template it quotes, the sender of the sandbox
/// message it quotes, else the active user who sent to the phone last. A quote of a message
/// that is no activation template costs one read (who sent it); a phone with more than one
/// active session one read (who sent to it last).
async fn addressee<'a>(
    app: &App,
    from: &str,
    message: &InboundMessage,
    sessions: &'a [Session],
    now: i64,
) -> Result<Option<&'a Session>, StoreError> {
    // Nobody to address: no request at all.
    if !sessions.iter().any(|s| s.is_live(now)) {
        return Ok(None);
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
    Ok(recipient_of(
        sessions,
        &reference,
        quoted_owner.as_ref(),
        recency,
        now,
    ))
}

/// The phone's BSUID after this delivery's messages: the latest one they carry (or a change
/// Meta reported in a `system` message), else the one its sessions keep. It is learned only
/// when a session of the phone does not carry it yet or it replaces another, so a phone whose
/// BSUID is known costs no write; then the BSUIDs it replaces are forgotten.
async fn learn_from_messages(
    app: &App,
    phone: &str,
    messages: &[Inbound<'_>],
    sessions: &mut Vec<Session>,
    now: i64,
) -> Result<Option<Bsuid>, StoreError> {
    let kept = || {
        sessions
            .iter()
            .find_map(|s| s.bsuid.as_deref().and_then(Bsuid::parse))
    };
    let mut current: Option<Bsuid> = None;
    let mut replaced: BTreeSet<Bsuid> = BTreeSet::new();
    for Inbound { message, bsuid } in messages {
        match bsuid_change(message) {
            Some(change) => {
                replaced.extend(change.previous);
                current = Some(change.current);
            }
            None => current = bsuid.cloned().or(current),
        }
    }
    let Some(current) = current else {
        return Ok(kept());
    };
    // Expired sessions the TTL sweeper has not deleted yet neither teach nor need it.
    replaced.extend(
        sessions
            .iter()
            .filter(|s| s.is_live(now))
            .filter_map(|s| s.bsuid.as_deref().and_then(Bsuid::parse)),
    );
    replaced.remove(&current);
    let stale = |s: &Session| s.is_live(now) && s.bsuid.as_deref() != Some(current.as_str());
    if !sessions.iter().any(stale) && replaced.is_empty() {
        return Ok(Some(current));
    }
    let replaced: Vec<Bsuid> = replaced.into_iter().collect();
    if let Some((true, at)) = learn(app, phone, &current, &replaced, Some(sessions)).await? {
        sessions.retain(|s| s.created_at > at);
    }
    for session in sessions.iter_mut().filter(|s| stale(s)) {
        let _ = app.store.keep_bsuid_on_session(session, &current).await?;
        session.bsuid = Some(current.as_str().to_owned());
    }
    Ok(Some(current))
}

/// Records that `bsuid` is `phone`'s and forgets the BSUIDs it `replaced`. A STOP or START
/// the BSUID sent while its phone was unknown applies to the phone now, at that message's
/// time (so a later message of the phone still decides); it is answered, for the caller's
/// copy of the phone's `sessions` (looked up here only when a STOP needs them).
async fn learn(
    app: &App,
    phone: &str,
    bsuid: &Bsuid,
    replaced: &[Bsuid],
    sessions: Option<&[Session]>,
) -> Result<Option<(bool, i64)>, StoreError> {
    let record = app.store.learn_bsuid(bsuid, phone).await?;
    for old in replaced {
        // A failed condition: the old id already names another phone, which keeps it.
        let _ = app.store.forget_bsuid(old, phone).await?;
    }
    tracing::info!(
        phone = %mask_digits(phone),
        replaced = replaced.len(),
        "business-scoped user id learned"
    );
    // A virtual phone's opt-out is one user's, and a message that named no phone answered no
    // session: nothing to apply.
    let pending = record.opt_out.filter(|_| !is_virtual(app, phone));
    match pending {
        Some((true, at)) => {
            let looked_up;
            let sessions = match sessions {
                Some(sessions) => sessions,
                None => {
                    looked_up = app.store.sessions_for_phone(phone).await?;
                    &looked_up
                }
            };
            opt_out(app, phone, sessions, at).await?;
            tracing::info!(
                phone = %mask_digits(phone),
                "an opt-out sent before the phone was known now blocks it"
            );
        }
        Some((false, at)) => opt_in(app, phone, at).await?,
        None => {}
    }
    Ok(pending)
}

/// Messages from a BSUID no phone is known for: recorded nowhere, and logged without their
/// values. A STOP or START is kept on the BSUID and applies to its phone once it is learned
/// (at once, when it was learned between the lookup and this write).
async fn on_unknown_bsuid(
    app: &App,
    bsuid: &Bsuid,
    mut messages: Vec<&InboundMessage>,
    now: i64,
) -> Result<(), StoreError> {
    messages.sort_by_key(|m| sent_at(m, now));
    for message in messages {
        let message_time = sent_at(message, now);
        let opted_out = match intent(message) {
            Intent::OptOut => true,
            Intent::OptIn => false,
            Intent::Reply(_) | Intent::Ignore => {
                tracing::info!("message from an unknown business-scoped user id: not kept");
                continue;
            }
        };
        let outcome = app
            .store
            .set_bsuid_opt_out(bsuid, opted_out, message_time)
            .await?;
        tracing::info!(
            opted_out,
            recorded = outcome.written(),
            "opt-out of an unknown business-scoped user id kept until its phone is known"
        );
        if let Write::Written(BsuidRecord {
            phone: Some(phone), ..
        }) = outcome
        {
            if is_virtual(app, &phone) {
                continue;
            }
            if opted_out {
                let sessions = app.store.sessions_for_phone(&phone).await?;
                opt_out(app, &phone, &sessions, message_time).await?;
            } else {
                opt_in(app, &phone, message_time).await?;
            }
        }
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

/// Whether `digits` is a virtual phone the service plays (`VIRTUAL_PHONES`).
fn is_virtual(app: &App, digits: &str) -> bool {
    PhoneE164::from_stored(digits).is_some_and(|p| app.config.virtual_line(&p).is_some())
}

/// A virtual phone's STOP: every user shares the phone, so it blocks only `owner`, the user
/// whose session it answered, and only for `VIRTUAL_OPT_OUT_SECONDS` (create checks it), and
/// deletes only that user's session of the phone if it was created before the STOP.
async fn virtual_opt_out(
    app: &App,
    from: &str,
    owner: &UserId,
    sessions: &[Session],
    message_time: i64,
) -> Result<(), StoreError> {
    // A failed condition means a later message already decided it.
    let _ = app
        .store
        .set_user_opt_out(from, owner, true, message_time)
        .await?;
    for session in sessions.iter().filter(|s| &s.user_id == owner) {
        let _ = app
            .store
            .delete_session(owner, &session.id, DeleteIf::CreatedBy { message_time })
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
///
/// An activation template's status that names the recipient's BSUID beside the phone keeps it
/// on the session in the same update, and learns it when the session had another or none.
async fn on_status(
    app: &App,
    status: &StatusEvent,
    tag: Tag,
    recipient: Identity,
    now: i64,
) -> Result<(), StoreError> {
    let Some(message_id) = status.id.as_deref() else {
        return Ok(());
    };
    let Some(delivery) = delivery_of(status, now) else {
        return Ok(()); // `played` and unknown statuses are not recorded.
    };
    match tag {
        Tag::Activation { session, user } => {
            let pair = recipient.pair();
            let outcome = app
                .store
                .record_delivery(&user, &session, message_id, &delivery, pair.map(|p| p.1))
                .await?;
            let recorded = outcome.written();
            if let (Some((phone, bsuid)), Write::Written(previous)) = (pair, outcome) {
                if previous.as_deref() != Some(bsuid.as_str()) {
                    let replaced: Vec<Bsuid> = previous
                        .as_deref()
                        .and_then(Bsuid::parse)
                        .into_iter()
                        .collect();
                    learn(app, phone, bsuid, &replaced, None).await?;
                }
            }
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
