//! `/v1/webhooks/settings`: create (`POST`), list (`GET`), update (`PUT`), delete (`DELETE`).
//!
//! Create answers `{success, webhook}` with the secret (given or generated), the only answer
//! that ever shows it; list answers `{webhooks}`, update `{success, webhook}`, delete
//! `{success}`. A webhook id that names no webhook of the caller (unknown, malformed, another
//! user's) is one 404 `webhook_not_found`. An update's refusals come in this order: no id 400,
//! no such webhook 404, then the fields 400 (so no field is parsed for a webhook that is not
//! there). A new `secret` rotates: the one it replaces keeps signing beside it for a day
//! (`store::update_webhook`); neither is ever shown again.

use lambda_http::http::StatusCode;
use lambda_http::{Body, RequestExt, Response};
use serde_json::{json, Value};

use super::Call;
use crate::edge::{json_response, success, ApiError};
use crate::store::{Created, Removed};
use crate::webhooks::{webhook_id_field, NewWebhook, Webhook, WebhookChanges, WebhookId};

pub(super) async fn create(call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let new = NewWebhook::parse(&call.body()?, call.egress.targets())?;
    let webhook = Webhook {
        id: WebhookId::generate().map_err(|_| ApiError::Internal)?,
        name: new.name,
        url: new.url,
        secret: new.secret,
        previous_secret: None,
        events: new.events,
        is_active: new.is_active,
        custom_headers: new.custom_headers,
        disabled_resource_groups: new.disabled_resource_groups,
        failure_count: 0,
        last_fired_at: None,
        created_at: call.now,
        updated_at: call.now,
    };
    let limit = call.app.config.user_webhook_limit;
    match call
        .app
        .store
        .create_webhook(&call.user, &webhook, limit)
        .await?
    {
        Created::Created => Ok(json_response(
            StatusCode::OK,
            &json!({ "success": true, "webhook": webhook.view_with_secret() }),
        )),
        Created::LimitReached => Err(ApiError::WebhookLimitReached { limit }),
    }
}

pub(super) async fn list(call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let hooks = call.app.store.webhooks(&call.user).await?;
    let views: Vec<Value> = hooks.iter().map(Webhook::view).collect();
    Ok(json_response(StatusCode::OK, &json!({ "webhooks": views })))
}

pub(super) async fn update(call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    // The webhook first: a body for no webhook of the caller is 404, whatever its fields hold.
    let (body, webhook) = call.named_webhook(Some("_id")).await?;
    let changes = WebhookChanges::parse(&body, call.egress.targets())?;
    // Conditional on the webhook existing still (a delete meanwhile is 404 too).
    let webhook = call
        .app
        .store
        .update_webhook(&call.user, &webhook.id, &changes, call.now)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "success": true, "webhook": webhook.view() }),
    ))
}

pub(super) async fn delete(call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let params = call.req.query_string_parameters();
    let primary = params.first("webhookId").map(|s| Value::String(s.into()));
    let legacy = params.first("id").map(|s| Value::String(s.into()));
    let id = webhook_id_field(primary.as_ref(), legacy.as_ref())?;
    let id = WebhookId::parse(id).ok_or(ApiError::WebhookNotFound)?;
    match call.app.store.delete_webhook(&call.user, &id).await? {
        Removed::Removed => Ok(success()),
        Removed::NotFound => Err(ApiError::WebhookNotFound),
    }
}
