//! `GET /v1/whatsapp/sandbox/sessions`: the caller's live sessions.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::app::App;
use crate::edge::{json_response, serve, ApiError};

/// The route label in logs.
pub const ROUTE: &str = "GET /v1/whatsapp/sandbox/sessions";

/// Lists the caller's pending and active sessions (never expired ones, never another user's).
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(req, ROUTE, |req| list(app, req)).await
}

async fn list(app: &App, req: Request) -> Result<Response<Body>, ApiError> {
    let now = app.clock.now();
    let user = app.authenticate(&req, now).await?;
    let session = app.store.live_session(&user, now).await?;
    let sessions: Vec<_> = session.iter().map(|s| s.view()).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "sessions": sessions, "sandboxNumber": app.config.sandbox_display_number }),
    ))
}
