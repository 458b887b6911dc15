//! `POST /v1/webhooks/test` `{webhookId}`: sends a signed `webhook.test` event to the webhook
//! now (whether or not it is active or subscribed to `webhook.test`), logs the attempt, and
//! answers with its outcome.

use lambda_http::{Body, Request, Response};

use super::{body, deliver, Send};
use crate::app::App;
use crate::edge::ApiError;
use crate::outbound::EgressClient;
use crate::session::UserId;
use crate::webhooks::{test_payload, webhook_id_field, EventId, WebhookId, TEST_EVENT};

pub(super) async fn test(
    app: &App,
    egress: &EgressClient,
    user: &UserId,
    req: &Request,
    now: i64,
) -> Result<Response<Body>, ApiError> {
    let body = body(req)?;
    let id = webhook_id_field(body.get("webhookId"), None)?;
    let id = WebhookId::parse(id).ok_or(ApiError::WebhookNotFound)?;
    let webhook = app
        .store
        .webhook(user, &id)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    let event_id = EventId::generate().map_err(|_| ApiError::Internal)?;
    let payload = test_payload(&event_id, &webhook, now);
    let send = Send {
        event: TEST_EVENT,
        event_id: event_id.as_str(),
        body: &payload,
        attempt_number: 1,
    };
    deliver(app, egress, user, &webhook, send).await
}
