//! The request handlers, one module per function.

pub mod create;
pub mod list;
pub mod revoke;
pub mod webhook;

use serde_json::json;

use crate::http::json_response;
use crate::session::Session;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

/// `{"session": {...}, "sandboxNumber": "+..."}`.
fn session_response(session: &Session, sandbox_number: &str) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({ "session": session.view(), "sandboxNumber": sandbox_number }),
    )
}
