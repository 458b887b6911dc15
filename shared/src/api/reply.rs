//! `POST /v1/whatsapp/sandbox/sessions/{sessionId}/reply`: the caller's session's virtual phone
//! writes to the sandbox number, as its owner would on WhatsApp.
//!
//! - `{"type": "activate"}` taps the quick-reply button of the session's latest template
//!   (its payload names the session; `context.id` is the template's `wamid`).
//! - `{"type": "text", "text": "…"}` types a message (1-4096 characters) quoting the latest
//!   message this user sent to the phone: a sandbox message, or the template when nothing was
//!   sent after it (so on a pending session it activates, as a real quoted reply would).
//! - `{"type": "interactive", "id": "…"}` picks the reply button or list row with that id of
//!   the latest interactive message this user sent to the phone.
//!
//! The message is signed and handed to the webhook in process (`virtual_phones::hand_over`),
//! so it meets the webhook's signature check, parsing and rules; the answer is sent once that
//! processing finished, with the message as `GET /v1/whatsapp/sandbox/messages` shows it. The
//! quote (payload or `context.id`) is what makes it reach only the caller's session and
//! conversation when other users have sessions for the same virtual phone.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};

use super::path_session_id;
use super::send::request::MAX_TEXT_CHARS;
use super::webhook::conversation_entry;
use crate::app::App;
use crate::bsuid::Bsuid;
use crate::edge::{json_object_within, json_response, serve, ApiError};
use crate::graph::virtual_phone::{bsuid_of, reply, status, template_cue};
use crate::ids;
use crate::message::{ConversationMessage, Direction};
use crate::meta::callback::activation_payload;
use crate::meta::payload::Notification;
use crate::meta::wire::{Choice, ChoiceKind, Content, Report};
use crate::phone::{Behaviour, VirtualLine};
use crate::session::{Session, SessionId, UserId};
use crate::virtual_phones::{business, hand_over};

/// The route label in logs.
pub const ROUTE: &str = "POST /v1/whatsapp/sandbox/sessions/{sessionId}/reply";

/// A reply body is small, but a text of 4,096 characters can take 16 KiB in UTF-8, more once
/// JSON-escaped (as for a send).
const MAX_REPLY_BODY_BYTES: usize = 64 * 1024;
/// The longest interactive id accepted (Meta's reply-button ids are at most 256 characters).
const MAX_CHOICE_ID_CHARS: usize = 256;
/// How many pages of the conversation (of up to 100 messages) a reply reads to find the
/// message it quotes.
const CONVERSATION_PAGES: usize = 3;

/// Makes the caller's session's virtual phone write.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(req, ROUTE, |req| answer(app, req)).await
}

/// What the caller tells the phone to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyRequest {
    /// Tap the template's quick-reply button.
    Activate,
    /// Type this text.
    Text(String),
    /// Pick the reply button or list row with this id.
    Interactive(String),
}

fn field(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        param,
        message: message.into(),
        details: None,
    }
}

/// Checks a reply body and names the first field that is wrong.
pub fn parse_reply(body: &Map<String, Value>) -> Result<ReplyRequest, ApiError> {
    let kind = match body.get("type") {
        None | Some(Value::Null) => {
            return Err(field(
                "type",
                "type is required: activate, text or interactive",
            ))
        }
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(field("type", "type must be a string")),
    };
    match kind {
        "activate" => Ok(ReplyRequest::Activate),
        "text" => {
            let Some(Value::String(text)) = body.get("text") else {
                return Err(field("text", "text is required for type text, as a string"));
            };
            let chars = text.chars().count();
            if chars == 0 || text.trim().is_empty() {
                return Err(field("text", "text must not be empty"));
            }
            if chars > MAX_TEXT_CHARS {
                return Err(field(
                    "text",
                    format!("text must be at most {MAX_TEXT_CHARS} characters"),
                ));
            }
            Ok(ReplyRequest::Text(text.clone()))
        }
        "interactive" => match body.get("id") {
            Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_CHOICE_ID_CHARS => {
                Ok(ReplyRequest::Interactive(id.clone()))
            }
            _ => Err(field(
                "id",
                format!("id is required for type interactive: the id of a reply button or list row (1-{MAX_CHOICE_ID_CHARS} characters)"),
            )),
        },
        _ => Err(field(
            "type",
            "type must be one of activate, text, interactive",
        )),
    }
}

async fn answer(app: &App, req: Request) -> Result<Response<Body>, ApiError> {
    let now = app.clock.now();
    let user = app.authenticate(&req, now).await?;
    let request = parse_reply(&json_object_within(&req, MAX_REPLY_BODY_BYTES)?)?;
    let id = SessionId::parse(&path_session_id(&req)).ok_or(ApiError::SessionNotFound)?;
    let session = app
        .store
        .live_session(&user, now)
        .await?
        .filter(|s| s.id == id)
        .ok_or(ApiError::SessionNotFound)?;
    let line = app
        .config
        .virtual_line(&session.phone)
        .ok_or(ApiError::NotAVirtualPhone)?;
    let (context, content) = match request {
        ReplyRequest::Activate => (
            session.activation_message_id.clone(),
            Content::Button {
                payload: activation_payload(&session.id),
            },
        ),
        ReplyRequest::Text(text) => (
            latest_sent(app, &session).await?.map(|m| m.0),
            Content::Text(text),
        ),
        ReplyRequest::Interactive(choice) => {
            let (quoted, picked) = pick(app, &session, &choice).await?;
            (Some(quoted), Content::Choice(picked))
        }
    };
    introduce(app, &session, line).await?;
    let message_id = format!("wamid.{}", ids::random_base62(40).map_err(internal)?);
    let delivery = reply(
        business(app),
        &session.phone,
        line,
        &message_id,
        now,
        context.as_deref(),
        content,
    );
    hand_over(app, &delivery).await?;
    let shown = recorded(app, &user, &session, line, &delivery, now).await?;
    tracing::info!(phone = %session.phone, session_id = session.id.as_str(), "virtual phone replied");
    Ok(json_response(
        StatusCode::OK,
        &json!({ "success": true, "message": shown.view() }),
    ))
}

/// A username user's messages carry only the BSUID, which the webhook matches only once it has
/// learned it beside the phone. The phone learns it from the first status of the session's
/// template (the phone function plays it from the stream); if this reply came first, the
/// phone reports that `sent` status now, as Meta reports a status before the answer to it.
/// Statuses only move forward, so the stream's later copy changes nothing.
async fn introduce(app: &App, session: &Session, line: VirtualLine) -> Result<(), ApiError> {
    if line.behaviour() != Behaviour::Username || session.bsuid.is_some() {
        return Ok(());
    }
    match template_cue(session, line, false) {
        Some(cue) => hand_over(app, &status(&cue, business(app), Report::Sent)).await,
        None => Ok(()),
    }
}

/// The `wamid` and time of the latest message the session's user sent to its phone: the
/// latest sandbox message to it, or the session's template when nothing was sent after it.
async fn latest_sent(app: &App, session: &Session) -> Result<Option<(String, i64)>, ApiError> {
    let template = session
        .activation_message_id
        .clone()
        .map(|id| (id, session.template_sent_at.unwrap_or(session.created_at)));
    let since = template.as_ref().map_or(i64::MIN, |t| t.1);
    let sent = find_sent(app, session, since, |_| true).await?;
    Ok(sent
        .and_then(|m| Some((m.message_id?, m.created_at)))
        .or(template))
}

/// The latest interactive message the session's user sent to its phone, and the reply button
/// or list row `id` of it; `param: "id"` when there is none.
async fn pick(app: &App, session: &Session, id: &str) -> Result<(String, Choice), ApiError> {
    let unknown = || {
        field(
            "id",
            "no reply button or list row with this id in the latest interactive message you sent to this phone",
        )
    };
    let latest = find_sent(app, session, i64::MIN, |m| m.kind == "interactive")
        .await?
        .ok_or_else(unknown)?;
    let interactive = &latest.content["interactive"];
    let choice = choice_of(interactive, id).ok_or_else(unknown)?;
    Ok((latest.message_id.ok_or_else(unknown)?, choice))
}

/// The reply button (`button` message) or list row (`list` message) `id` of an interactive
/// message as it was sent (Meta's `interactive` object).
pub fn choice_of(interactive: &Value, id: &str) -> Option<Choice> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match interactive["type"].as_str()? {
        "button" => interactive["action"]["buttons"]
            .as_array()?
            .iter()
            .map(|b| &b["reply"])
            .find(|r| r["id"].as_str() == Some(id))
            .map(|r| Choice {
                kind: ChoiceKind::ButtonReply,
                id: id.to_owned(),
                title: text(&r["title"]).unwrap_or_default(),
                description: None,
            }),
        "list" => interactive["action"]["sections"]
            .as_array()?
            .iter()
            .flat_map(|s| s["rows"].as_array().into_iter().flatten())
            .find(|r| r["id"].as_str() == Some(id))
            .map(|r| Choice {
                kind: ChoiceKind::ListReply,
                id: id.to_owned(),
                title: text(&r["title"]).unwrap_or_default(),
                description: text(&r["description"]),
            }),
        _ => None,
    }
}

/// The newest outbound message of the session's user to its phone that `wanted` accepts, sent
/// at `since` or later, reading the conversation newest first.
async fn find_sent(
    app: &App,
    session: &Session,
    since: i64,
    wanted: impl Fn(&ConversationMessage) -> bool,
) -> Result<Option<ConversationMessage>, ApiError> {
    let mut after = None;
    for _ in 0..CONVERSATION_PAGES {
        let (page, next) = app.store.conversation(&session.user_id, 100, after).await?;
        for message in page {
            if message.created_at < since {
                return Ok(None);
            }
            let to_phone = message.direction == Direction::Outbound
                && message.phone == session.phone.digits()
                && message.message_id.is_some();
            if to_phone && wanted(&message) {
                return Ok(Some(message));
            }
        }
        match next {
            Some(sk) => after = Some(sk),
            None => break,
        }
    }
    Ok(None)
}

/// The phone's message as the conversation shows it once the webhook processed it: read back
/// from the table. A message the webhook kept for nobody (a `STOP`, which ended the session)
/// is shown as it would have been kept.
async fn recorded(
    app: &App,
    user: &UserId,
    session: &Session,
    line: VirtualLine,
    delivery: &Value,
    now: i64,
) -> Result<ConversationMessage, ApiError> {
    let notification: Notification = serde_json::from_value(delivery.clone()).map_err(internal)?;
    let message = notification
        .entry
        .first()
        .and_then(|e| e.changes.first())
        .and_then(|c| c.value.messages.first())
        .ok_or_else(|| internal("a reply without its message"))?;
    let bsuid = (line.behaviour() == Behaviour::Username)
        .then(|| Bsuid::parse(&bsuid_of(&session.phone)))
        .flatten();
    let entry = conversation_entry(user, session.phone.digits(), bsuid.as_ref(), message, now)
        .ok_or_else(|| internal("a reply the conversation cannot show"))?;
    let stored = app
        .store
        .conversation_message(user, entry.created_at, &entry.suffix)
        .await?;
    if stored.is_none() {
        tracing::info!(
            phone = %session.phone,
            "the virtual phone's message was kept for no conversation"
        );
    }
    Ok(stored.unwrap_or(entry))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "internal error");
    ApiError::Internal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    fn param(r: Result<ReplyRequest, ApiError>) -> &'static str {
        match r {
            Err(ApiError::InvalidField { param, .. }) => param,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reply_bodies_are_parsed_and_every_bad_field_is_named() {
        assert_eq!(
            parse_reply(&body(json!({"type": "activate"}))).unwrap(),
            ReplyRequest::Activate
        );
        assert_eq!(
            parse_reply(&body(json!({"type": "text", "text": "hola"}))).unwrap(),
            ReplyRequest::Text("hola".into())
        );
        assert_eq!(
            parse_reply(&body(json!({"type": "interactive", "id": "yes"}))).unwrap(),
            ReplyRequest::Interactive("yes".into())
        );
        let long = "é".repeat(MAX_TEXT_CHARS);
        assert!(parse_reply(&body(json!({"type": "text", "text": long}))).is_ok());
        for (bad, expected) in [
            (json!({}), "type"),
            (json!({"type": null}), "type"),
            (json!({"type": 3}), "type"),
            (json!({"type": "tap"}), "type"),
            (json!({"type": "text"}), "text"),
            (json!({"type": "text", "text": {"body": "hi"}}), "text"),
            (json!({"type": "text", "text": ""}), "text"),
            (json!({"type": "text", "text": "  "}), "text"),
            (
                json!({"type": "text", "text": "x".repeat(MAX_TEXT_CHARS + 1)}),
                "text",
            ),
            (json!({"type": "interactive"}), "id"),
            (json!({"type": "interactive", "id": ""}), "id"),
            (json!({"type": "interactive", "id": 7}), "id"),
            (json!({"type": "interactive", "id": "x".repeat(257)}), "id"),
        ] {
            assert_eq!(param(parse_reply(&body(bad.clone()))), expected, "{bad}");
        }
    }

    #[test]
    fn a_choice_is_found_by_id_among_buttons_or_list_rows() {
        let buttons = json!({"type": "button", "body": {"text": "?"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
            {"type": "reply", "reply": {"id": "no", "title": "No"}}]}});
        let no = choice_of(&buttons, "no").unwrap();
        assert_eq!(
            (no.kind, no.title.as_str()),
            (ChoiceKind::ButtonReply, "No")
        );
        assert_eq!(choice_of(&buttons, "maybe"), None);
        let list = json!({"type": "list", "body": {"text": "?"}, "action": {"button": "Pick",
            "sections": [{"title": "A", "rows": [{"id": "a1", "title": "One"}]},
                         {"title": "B", "rows": [{"id": "b1", "title": "Two", "description": "2"}]}]}});
        let b1 = choice_of(&list, "b1").unwrap();
        assert_eq!(b1.kind, ChoiceKind::ListReply);
        assert_eq!(b1.description.as_deref(), Some("2"));
        assert_eq!(choice_of(&list, "yes"), None);
    }
}
