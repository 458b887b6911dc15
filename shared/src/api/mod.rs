//! The request handlers, one module per function.

/// `POST /v1/whatsapp/sandbox/sessions`: claim, send, record (or roll back).
pub mod create;
/// `GET /v1/whatsapp/sandbox/sessions`: the caller's live session.
pub mod list;
/// `GET /v1/whatsapp/sandbox/messages`: the caller's sandbox conversation.
pub mod messages;
/// `POST /v1/whatsapp/sandbox/sessions/{sessionId}/reply`: a virtual phone writes.
pub mod reply;
/// `DELETE /v1/whatsapp/sandbox/sessions/{sessionId}`.
pub mod revoke;
/// `POST /v1/whatsapp/sandbox/messages`: a message to the caller's activated phone.
pub mod send;
/// `GET` and `POST /v1/whatsapp/webhook`: handshake and Meta's event deliveries.
pub mod webhook;
/// `/v1/webhooks/*`: the API user's outbound webhooks (settings, test, logs, redeliver).
pub mod webhooks;

use serde_json::json;

use crate::edge::json_response;
use crate::session::Session;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};

/// `{"session": {...}, "sandboxNumber": "+..."}`.
fn session_response(session: &Session, sandbox_number: &str) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({ "session": session.view(), "sandboxNumber": sandbox_number }),
    )
}

/// The `{sessionId}` path parameter, or the path segment after `sessions/` when the router gave
/// none (revoke, reply).
fn path_session_id(req: &Request) -> String {
    if let Some(id) = req.path_parameters_ref().and_then(|p| p.first("sessionId")) {
        return id.to_owned();
    }
    let path = req.uri().path();
    path.split_once("/sessions/")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
        .unwrap_or_default()
        .to_owned()
}
