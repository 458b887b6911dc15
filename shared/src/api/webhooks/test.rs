//! `POST /v1/webhooks/test` `{webhookId}`: sends a signed `webhook.test` event to the webhook
//! now (whether or not it is active or subscribed to `webhook.test`; `webhook.test` belongs to
//! no resource group, so `disabledResourceGroups` never stops it), logs the attempt, and
//! answers with its outcome.

use lambda_http::{Body, Response};

use super::{Call, Send};
use crate::edge::ApiError;
use crate::webhooks::{test_payload, EventId, TEST_EVENT};

pub(super) async fn test(call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let (_, webhook) = call.named_webhook(None).await?;
    let event_id = EventId::generate().map_err(|_| ApiError::Internal)?;
    let payload = test_payload(&event_id, &webhook, call.now);
    let send = Send {
        event: TEST_EVENT,
        event_id: event_id.as_str(),
        body: &payload,
        attempt_number: 1,
    };
    call.deliver(&webhook, send).await
}
