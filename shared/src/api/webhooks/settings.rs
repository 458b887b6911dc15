//! `/v1/webhooks/settings`: create (`POST`), list (`GET`), update (`PUT`), delete (`DELETE`).
//!
//! Create answers `{success, webhook}` with the secret (given or generated), the only answer
//! that ever shows it; list answers `{webhooks}`, update `{success, webhook}`, delete
//! `{success}`. A webhook id that names no webhook of the caller (unknown, malformed, another
//! user's) is one 404 `webhook_not_found`. An update's refusals come in this order: no id 400,
//! no such webhook 404, then the fields 400 (so no field is parsed for a webhook that is not
//! there).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};

use super::body;
use crate::app::App;
use crate::edge::{json_response, success, ApiError};
use crate::outbound::EgressClient;
use crate::session::UserId;
use crate::store::{Created, Removed};
use crate::webhooks::{webhook_id_field, NewWebhook, Webhook, WebhookChanges, WebhookId};

pub(super) async fn create(
    app: &App,
    egress: &EgressClient,
    user: &UserId,
    req: &Request,
    now: i64,
) -> Result<Response<Body>, ApiError> {
    let new = NewWebhook::parse(&body(req)?, egress.targets())?;
    let webhook = Webhook {
        id: WebhookId::generate().map_err(|_| ApiError::Internal)?,
        name: new.name,
        url: new.url,
        secret: new.secret,
        events: new.events,
        is_active: new.is_active,
        custom_headers: new.custom_headers,
        failure_count: 0,
        last_fired_at: None,
        created_at: now,
        updated_at: now,
    };
    let limit = app.config.user_webhook_limit;
    match app.store.create_webhook(user, &webhook, limit).await? {
        Created::Created => Ok(json_response(
            StatusCode::OK,
            &json!({ "success": true, "webhook": webhook.view_with_secret() }),
        )),
        Created::LimitReached => Err(ApiError::WebhookLimitReached { limit }),
    }
}

pub(super) async fn list(app: &App, user: &UserId) -> Result<Response<Body>, ApiError> {
    let hooks = app.store.webhooks(user).await?;
    let views: Vec<Value> = hooks.iter().map(Webhook::view).collect();
    Ok(json_response(StatusCode::OK, &json!({ "webhooks": views })))
}

pub(super) async fn update(
    app: &App,
    egress: &EgressClient,
    user: &UserId,
    req: &Request,
    now: i64,
) -> Result<Response<Body>, ApiError> {
    let body = body(req)?;
    let id = webhook_id_field(body.get("webhookId"), body.get("_id"))?;
    let id = WebhookId::parse(id).ok_or(ApiError::WebhookNotFound)?;
    // The webhook first: a body for no webhook of the caller is 404, whatever its fields hold.
    if app.store.webhook(user, &id).await?.is_none() {
        return Err(ApiError::WebhookNotFound);
    }
    let changes = WebhookChanges::parse(&body, egress.targets())?;
    // Conditional on the webhook existing still (a delete meanwhile is 404 too).
    let webhook = app
        .store
        .update_webhook(user, &id, &changes, now)
        .await?
        .ok_or(ApiError::WebhookNotFound)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "success": true, "webhook": webhook.view() }),
    ))
}

pub(super) async fn delete(
    app: &App,
    user: &UserId,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let params = req.query_string_parameters();
    let primary = params.first("webhookId").map(|s| Value::String(s.into()));
    let legacy = params.first("id").map(|s| Value::String(s.into()));
    let id = webhook_id_field(primary.as_ref(), legacy.as_ref())?;
    let id = WebhookId::parse(id).ok_or(ApiError::WebhookNotFound)?;
    match app.store.delete_webhook(user, &id).await? {
        Removed::Removed => Ok(success()),
        Removed::NotFound => Err(ApiError::WebhookNotFound),
    }
}
