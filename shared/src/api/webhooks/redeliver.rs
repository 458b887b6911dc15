//! `POST /v1/webhooks/logs/redeliver` `{webhookId, eventId}`: the bytes last logged for that
//! event and webhook, sent again now under the same event id, signed afresh with the webhook's
//! current secrets, as the next attempt; logged, and answered with its outcome. An event of a
//! resource group the webhook disables (`disabledResourceGroups`) is refused, 409, unsent.

use lambda_http::{Body, Response};
use serde_json::Value;

use super::{Call, Send};
use crate::edge::ApiError;
use crate::webhooks::{field, EventId};

pub(super) async fn redeliver(call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let (body, webhook) = call.named_webhook(None).await?;
    let event_id = match body.get("eventId") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(field("eventId", "eventId must be a string").into()),
        None => return Err(field("eventId", "eventId is required").into()),
    };
    let event_id = EventId::parse(event_id).ok_or(ApiError::WebhookEventNotFound)?;
    let logged = call
        .app
        .store
        .latest_webhook_log(&call.user, webhook.id.as_str(), event_id.as_str(), call.now)
        .await?
        .ok_or(ApiError::WebhookEventNotFound)?;
    if let Some(group) = webhook.disabled_group(&logged.event) {
        return Err(ApiError::ResourceGroupDisabled { group });
    }
    let send = Send {
        event: &logged.event,
        event_id: &logged.event_id,
        body: &logged.request_payload,
        attempt_number: logged.attempt_number.saturating_add(1),
    };
    call.deliver(&webhook, send).await
}
