//! `GET /v1/whatsapp/sandbox/messages`: the caller's sandbox conversation, newest first.
//!
//! One `Query` of the caller's own conversation partition (so a cursor can never reach another
//! user's) and one read of the session for the customer-service window. Messages are kept 7
//! days, also after the session is revoked.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::app::App;
use crate::edge::{json_response, serve, ApiError};
use crate::message::{decode_cursor, encode_cursor, page_limit, window_expires_at};
use crate::session::{rfc3339, SessionStatus};

/// The route label in logs.
pub const ROUTE: &str = "GET /v1/whatsapp/sandbox/messages";

/// Lists a page of the caller's conversation.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(req, ROUTE, |req| list(app, req)).await
}

async fn list(app: &App, req: Request) -> Result<Response<Body>, ApiError> {
    let now = app.clock.now();
    let user = app.authenticate(&req, now).await?;
    let params = req.query_string_parameters();
    let limit = page_limit(params.first("limit"))?;
    let after = match params.first("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::InvalidField {
            param: "cursor",
            message: "cursor is not one this API returned as nextCursor".into(),
            details: None,
        })?),
    };
    let (messages, next) = app.store.conversation(&user, limit, after).await?;
    let session = app.store.live_session(&user, now).await?;
    let window = session
        .filter(|s| s.status == SessionStatus::Active)
        .and_then(|s| {
            window_expires_at(
                s.last_inbound_at,
                app.config.customer_service_window_seconds,
            )
        });
    let views: Vec<_> = messages.iter().map(|m| m.view()).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "messages": views,
            "nextCursor": next.as_deref().map(encode_cursor),
            "windowExpiresAt": window.map(rfc3339),
        }),
    ))
}
