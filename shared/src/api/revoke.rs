//! `DELETE /v1/whatsapp/sandbox/sessions/{sessionId}`: hard-deletes the caller's session.

use lambda_http::{Body, Request, Response};

use super::path_session_id;
use crate::app::App;
use crate::edge::{serve, success, ApiError};
use crate::session::SessionId;
use crate::store::{DeleteIf, Write};

/// The route label in logs.
pub const ROUTE: &str = "DELETE /v1/whatsapp/sandbox/sessions/{sessionId}";

/// Revokes a session. Unknown, malformed, expired and foreign ids get one identical 400.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    serve(req, ROUTE, |req| revoke(app, req)).await
}

async fn revoke(app: &App, req: Request) -> Result<Response<Body>, ApiError> {
    let now = app.clock.now();
    let user = app.authenticate(&req, now).await?;
    let raw = path_session_id(&req);
    let id = SessionId::parse(&raw).ok_or(ApiError::SessionNotFound)?;
    match app
        .store
        .delete_session(&user, &id, DeleteIf::Live { now })
        .await?
    {
        Write::Written(()) => {
            tracing::info!(session_id = id.as_str(), "session revoked");
            Ok(success())
        }
        Write::ConditionFailed { .. } => Err(ApiError::SessionNotFound),
    }
}
