//! `POST /v1/webhooks/logs/redeliver` `{webhookId, eventId}`: the bytes last logged for that
//! event and webhook, sent again now under the same event id, signed afresh with the webhook's
//! current secret, as the next attempt; logged, and answered with its outcome.

use lambda_http::{Body, Request, Response};

use super::{body, deliver, Send};
use crate::app::App;
use crate::edge::ApiError;
use crate::outbound::EgressClient;
use crate::session::UserId;
use crate::webhooks::{field, webhook_id_field, EventId, WebhookId};

pub(super) async fn redeliver(
    app: &App,
    egress: &EgressClient,
    user: &UserId,
    req: &Request,
    _now: i64,
) -> Result<Response<Body>, ApiError> {
    let body = body(req)?;
    let id = webhook_id_field(body.get("webhookId"), None)?;
    let event_id = match body.get("eventId") {
        Some(serde_json::Value::String(s)) => s.as_str(),
        Some(_) => return Err(field("eventId", "eventId must be a string").into()),
        None => return Err(field("eventId", "eventId is required").into()),
    };
    let id = WebhookId::parse(id).ok_or(ApiError::WebhookNotFound)?;
    let webhook = app
        .store
        .webhook(user, &id)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    let event_id = EventId::parse(event_id).ok_or(ApiError::WebhookEventNotFound)?;
    let logged = app
        .store
        .latest_webhook_log(user, id.as_str(), event_id.as_str(), app.clock.now())
        .await?
        .ok_or(ApiError::WebhookEventNotFound)?;
    let send = Send {
        event: &logged.event,
        event_id: &logged.event_id,
        body: &logged.request_payload,
        attempt_number: logged.attempt_number.saturating_add(1),
    };
    deliver(app, egress, user, &webhook, send).await
}
