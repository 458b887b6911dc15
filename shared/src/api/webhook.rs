//! `GET` and `POST /v1/whatsapp/webhook`: Meta's handshake and event deliveries.

use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::http::{serve, ApiError};

/// The route label in logs.
pub const ROUTE: &str = "/v1/whatsapp/webhook";

/// Placeholder until the webhook lands.
pub async fn handle(_app: &App, req: Request) -> Response<Body> {
    serve(req, ROUTE, |_req| async { Err(ApiError::RouteNotFound) }).await
}
