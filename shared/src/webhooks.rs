//! An API user's outbound webhooks (pure): the settings Zernio's `/v1/webhooks/settings` takes
//! and returns, their rules, the delivery log's entries, and the `webhook.test` payload.
//!
//! Every rule of the request bodies lives here, so a [`NewWebhook`] or a [`WebhookChanges`]
//! is valid once parsed; the URL and header rules themselves are [`crate::outbound`]'s. The
//! secret is kept by the store and shown only in the create answer ([`Webhook::view_with_secret`]).
//!
//! No HTTP here: a refusal is a [`WebhookError`], which the edge maps to the error envelope in
//! one place (`edge::ApiError`'s `From<WebhookError>`), as it does the store's errors.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::ids::{is_base62, random_base62, RandomError};
use crate::limits::{utc_day, SECONDS_PER_DAY};
use crate::outbound::headers::MAX_CUSTOM_HEADERS;
use crate::outbound::{
    CustomHeaders, HeaderError, SecretError, SigningSecrets, Targets, WebhookSecret, WebhookUrl,
};
use crate::session::rfc3339;

/// The events a webhook can subscribe to.
pub const SUPPORTED_EVENTS: [&str; 8] = [
    "message.received",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
    "whatsapp.sandbox.session.activated",
    "whatsapp.sandbox.session.ended",
    "webhook.test",
];

/// The event `POST /v1/webhooks/test` sends.
pub const TEST_EVENT: &str = "webhook.test";

/// The resource groups of Zernio's vocabulary, which `disabledResourceGroups` may list (the
/// type `@zernio/node` gives the field). Only `messages` and `accounts` hold events of this
/// service ([`resource_group`]); the others are accepted, stored and returned, and disable
/// nothing here.
pub const RESOURCE_GROUPS: [&str; 10] = [
    "publishing",
    "engagement",
    "messages",
    "contacts",
    "analytics",
    "ads",
    "telephony",
    "accounts",
    "billing",
    "webhooks",
];

/// The resource group an event belongs to: `messages` for `message.*`, `accounts` for the
/// session events (the group of Zernio's account events, their nearest kin). `webhook.test`
/// belongs to none, so no group ever stops a test.
pub fn resource_group(event: &str) -> Option<&'static str> {
    if event.starts_with("message.") {
        Some("messages")
    } else if event.starts_with("whatsapp.sandbox.session.") {
        Some("accounts")
    } else {
        None
    }
}

/// How long a secret replaced by a `PUT` keeps signing beside the new one: a day, so receivers
/// can move to the new secret one by one (a rolling deploy) without refusing a delivery.
pub const SECRET_OVERLAP_SECONDS: i64 = SECONDS_PER_DAY;

/// A webhook's name is 1 to this many characters.
pub const MAX_NAME_CHARS: usize = 50;

/// A secret the user sets is at most this many characters.
pub const MAX_SECRET_CHARS: usize = 256;

/// How long a delivery log entry is kept: the UTC day of its attempt and this many days after
/// it, so at least 30 days ([`log_window_start`], [`log_expires_at`]).
pub const LOG_RETENTION_DAYS: i64 = 30;

/// [`LOG_RETENTION_DAYS`] in seconds: how long a delivery item is kept.
pub const LOG_RETENTION_SECONDS: i64 = LOG_RETENTION_DAYS * SECONDS_PER_DAY;

/// The first second of the oldest UTC day whose attempts the log still shows at `now`.
pub fn log_window_start(now: i64) -> i64 {
    (utc_day(now) - LOG_RETENTION_DAYS) * SECONDS_PER_DAY
}

/// When the entry of an attempt made at `at` leaves the log (its `expiresAt`): the moment its
/// day leaves the window, at least 30 days after it.
pub fn log_expires_at(at: i64) -> i64 {
    (utc_day(at) + LOG_RETENTION_DAYS + 1) * SECONDS_PER_DAY
}

/// Deliveries that failed for good in a row (each after its last attempt) that turn a webhook
/// off (`isActive: false`); any success resets the count.
pub const MAX_CONSECUTIVE_FAILURES: i64 = 10;

/// The logs route's page: default and largest `limit`.
pub const DEFAULT_LOG_PAGE: usize = 50;
/// The largest `limit` of the logs route.
pub const MAX_LOG_PAGE: usize = 100;
/// The largest `skip` of the logs route (more than 30 days of logs of one user hold).
pub const MAX_LOG_SKIP: usize = 100_000;

/// The random part of webhook and event ids, in base62 characters (about 131 bits).
const ID_CHARS: usize = 22;

/// Declares an id type the service mints: `$prefix` and [`ID_CHARS`] base62 characters. Its
/// `parse` takes any id of a shape the service ever minted: that one, and what `$earlier`
/// (if given) accepts after the prefix. Anything else names nothing.
macro_rules! minted_id {
    ($(#[$doc:meta])* $name:ident = $prefix:literal $(, also $earlier:path)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            pub fn generate() -> Result<Self, RandomError> {
                Ok(Self(format!("{}{}", $prefix, random_base62(ID_CHARS)?)))
            }

            /// An id of a shape the service ever minted; anything else names nothing.
            pub fn parse(s: &str) -> Option<Self> {
                s.strip_prefix($prefix)
                    .filter(|rest| is_base62(rest, ID_CHARS) $(|| $earlier(rest))?)
                    .map(|_| Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

minted_id!(
    /// A webhook's id: `wh_` and 22 base62 characters.
    WebhookId = "wh_"
);

minted_id!(
    /// An event's id: `evt_` and 22 base62 characters, the same on every attempt and
    /// redelivery. Ids the events function minted before issue 25 are `evt_` and 22 base64url
    /// characters (`-` and `_` too): they stay in the log for 30 days, and parse, so they can
    /// be redelivered.
    EventId = "evt_", also base64url_id
);

/// The random part of an event id minted before issue 25: 22 base64url characters.
fn base64url_id(rest: &str) -> bool {
    rest.len() == ID_CHARS
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a webhook request is refused: the domain's own error, which knows no HTTP.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A field is missing or breaks its rule; `param` names it.
    #[error("{message}")]
    InvalidField {
        /// The field, as the request spells it.
        param: &'static str,
        /// What is wrong, for a human.
        message: String,
    },
    /// The secret could not be generated (the operating system's random source failed).
    #[error("the webhook secret could not be generated: {0}")]
    SecretGeneration(#[from] SecretError),
}

/// A stored webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `_id`.
    pub id: WebhookId,
    /// 1-50 characters.
    pub name: String,
    /// The URL as the user gave it (checked by [`WebhookUrl::parse`] when set).
    pub url: String,
    /// The signing secret's text: never in an answer but the create's.
    pub secret: String,
    /// The secret the latest rotation replaced, while it still signs; never in any answer.
    pub previous_secret: Option<PreviousSecret>,
    /// Subscribed events, each in [`SUPPORTED_EVENTS`], in the order given, without repeats.
    pub events: Vec<String>,
    /// Whether events are delivered.
    pub is_active: bool,
    /// The custom headers as the user gave them (checked by [`CustomHeaders::parse`]).
    pub custom_headers: Vec<(String, String)>,
    /// Resource groups whose events it does not receive, each in [`RESOURCE_GROUPS`], in the
    /// order given, without repeats.
    pub disabled_resource_groups: Vec<String>,
    /// Consecutive terminal failures, reset by any success.
    pub failure_count: i64,
    /// The last successful delivery (epoch seconds).
    pub last_fired_at: Option<i64>,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub updated_at: i64,
}

impl Webhook {
    /// The `Webhook` object of `@zernio/node`, without the secret.
    pub fn view(&self) -> Value {
        let headers: Map<String, Value> = self
            .custom_headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let view = json!({
            "_id": self.id.as_str(),
            "name": self.name,
            "url": self.url,
            "events": self.events,
            "isActive": self.is_active,
            "customHeaders": headers,
            "disabledResourceGroups": self.disabled_resource_groups,
            "failureCount": self.failure_count,
            "lastFiredAt": self.last_fired_at.map(rfc3339),
            "createdAt": rfc3339(self.created_at),
            "updatedAt": rfc3339(self.updated_at),
        });
        without_nulls(view, &["lastFiredAt"])
    }

    /// [`Self::view`] with the secret: the create answer only.
    pub fn view_with_secret(&self) -> Value {
        let mut view = self.view();
        view["secret"] = Value::String(self.secret.clone());
        view
    }

    /// The parsed pieces a delivery at `now` needs, checked again against `targets` (a URL
    /// accepted while private targets were allowed is refused once they are not): the URL,
    /// the secrets that sign (the previous one too until its day is over), the headers.
    pub fn delivery_parts(
        &self,
        targets: Targets,
        now: i64,
    ) -> Result<(WebhookUrl, SigningSecrets, CustomHeaders), String> {
        let url = WebhookUrl::parse(&self.url, targets).map_err(|e| e.to_string())?;
        let secret = |text: &str| WebhookSecret::parse(text).map_err(|e| e.to_string());
        let previous = match &self.previous_secret {
            Some(previous) if now < previous.until => Some(secret(&previous.secret)?),
            _ => None,
        };
        let secrets = SigningSecrets {
            current: secret(&self.secret)?,
            previous,
        };
        let headers = CustomHeaders::parse(self.custom_headers.iter().map(|(k, v)| (k, v)))
            .map_err(|e| e.to_string())?;
        Ok((url, secrets, headers))
    }

    /// The group of `event` this webhook disables (`disabledResourceGroups`), if it does: its
    /// events are dropped before delivery, live and on every replay.
    pub fn disabled_group(&self, event: &str) -> Option<&'static str> {
        resource_group(event)
            .filter(|group| self.disabled_resource_groups.iter().any(|d| d == group))
    }
}

/// The secret a rotation replaced (a `PUT` with a new `secret`): it signs beside the new one
/// until `until`, [`SECRET_OVERLAP_SECONDS`] after the rotation. A second rotation within that
/// day replaces it with the secret that one retired (only the newest previous secret is kept),
/// so the one before stops signing at once.
#[derive(Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    /// The secret's text.
    pub secret: String,
    /// When it stops signing (epoch seconds).
    pub until: i64,
}

impl std::fmt::Debug for PreviousSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreviousSecret(***, until {})", self.until)
    }
}

/// A create request, checked: every field valid, the secret generated if none was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// The name.
    pub name: String,
    /// The URL as given.
    pub url: String,
    /// The secret's text (given or generated).
    pub secret: String,
    /// The events, without repeats.
    pub events: Vec<String>,
    /// `isActive`, true unless given.
    pub is_active: bool,
    /// The custom headers as given.
    pub custom_headers: Vec<(String, String)>,
    /// `disabledResourceGroups`, none unless given.
    pub disabled_resource_groups: Vec<String>,
}

impl NewWebhook {
    /// Checks a create body; `targets` decides whether plain `http` and private literals pass.
    pub fn parse(body: &Map<String, Value>, targets: Targets) -> Result<Self, WebhookError> {
        let name = name(required(body, "name")?)?;
        let url = url(required(body, "url")?, targets)?;
        let events = events(required(body, "events")?)?;
        let secret = match present(body, "secret") {
            Some(v) => secret(v)?,
            None => WebhookSecret::generate()?.expose().to_owned(),
        };
        let is_active = match present(body, "isActive") {
            Some(v) => boolean(v, "isActive")?,
            None => true,
        };
        let custom_headers = match present(body, "customHeaders") {
            Some(v) => custom_headers(v)?,
            None => Vec::new(),
        };
        let disabled_resource_groups = match present(body, DISABLED_GROUPS) {
            Some(v) => resource_groups(v)?,
            None => Vec::new(),
        };
        Ok(Self {
            name,
            url,
            secret,
            events,
            is_active,
            custom_headers,
            disabled_resource_groups,
        })
    }
}

/// An update request's fields, each checked like create's; absent ones stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new URL.
    pub url: Option<String>,
    /// A new secret.
    pub secret: Option<String>,
    /// New events.
    pub events: Option<Vec<String>>,
    /// Turn on or off (turning on also resets `failureCount`).
    pub is_active: Option<bool>,
    /// New custom headers (replacing all of them).
    pub custom_headers: Option<Vec<(String, String)>>,
    /// A new `disabledResourceGroups` (replacing it; empty clears it).
    pub disabled_resource_groups: Option<Vec<String>>,
}

impl WebhookChanges {
    /// Checks an update body's fields (the id is [`webhook_id_field`]'s).
    pub fn parse(body: &Map<String, Value>, targets: Targets) -> Result<Self, WebhookError> {
        Ok(Self {
            name: present(body, "name").map(name).transpose()?,
            url: present(body, "url").map(|v| url(v, targets)).transpose()?,
            secret: present(body, "secret").map(secret).transpose()?,
            events: present(body, "events").map(events).transpose()?,
            is_active: present(body, "isActive")
                .map(|v| boolean(v, "isActive"))
                .transpose()?,
            custom_headers: present(body, "customHeaders")
                .map(custom_headers)
                .transpose()?,
            disabled_resource_groups: present(body, DISABLED_GROUPS)
                .map(resource_groups)
                .transpose()?,
        })
    }
}

/// The webhook id a body or query names: `webhookId`, else the legacy `legacy` (`_id` in
/// bodies, `id` in the delete's query). Missing or not a string: 400 `param: "webhookId"`.
pub fn webhook_id_field<'a>(
    primary: Option<&'a Value>,
    legacy: Option<&'a Value>,
) -> Result<&'a str, WebhookError> {
    match primary.filter(|v| !v.is_null()).or(legacy) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(field("webhookId", "webhookId must be a string")),
        None => Err(field("webhookId", "webhookId is required")),
    }
}

/// A refusal of the field `param`.
pub fn field(param: &'static str, message: impl Into<String>) -> WebhookError {
    WebhookError::InvalidField {
        param,
        message: message.into(),
    }
}

/// A field that is present and not `null`.
fn present<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

fn required<'a>(
    body: &'a Map<String, Value>,
    key: &'static str,
) -> Result<&'a Value, WebhookError> {
    present(body, key).ok_or_else(|| field(key, format!("{key} is required")))
}

fn name(v: &Value) -> Result<String, WebhookError> {
    match v.as_str() {
        Some(s) if (1..=MAX_NAME_CHARS).contains(&s.chars().count()) => Ok(s.to_owned()),
        _ => Err(field(
            "name",
            format!("name must be a string of 1 to {MAX_NAME_CHARS} characters"),
        )),
    }
}

fn url(v: &Value, targets: Targets) -> Result<String, WebhookError> {
    let s = v
        .as_str()
        .ok_or_else(|| field("url", "url must be a string"))?;
    WebhookUrl::parse(s, targets).map_err(|e| field("url", format!("url is refused: {e}")))?;
    Ok(s.to_owned())
}

fn secret(v: &Value) -> Result<String, WebhookError> {
    let s = v
        .as_str()
        .ok_or_else(|| field("secret", "secret must be a string"))?;
    if s.chars().count() > MAX_SECRET_CHARS {
        return Err(field(
            "secret",
            format!("secret must be at most {MAX_SECRET_CHARS} characters"),
        ));
    }
    WebhookSecret::parse(s).map_err(|e| field("secret", format!("secret is refused: {e}")))?;
    Ok(s.to_owned())
}

fn events(v: &Value) -> Result<Vec<String>, WebhookError> {
    let list = v
        .as_array()
        .ok_or_else(|| field("events", "events must be an array of event names"))?;
    if list.is_empty() {
        return Err(field("events", "events must name at least one event"));
    }
    let mut out: Vec<String> = Vec::new();
    for item in list {
        let Some(event) = item.as_str().filter(|e| SUPPORTED_EVENTS.contains(e)) else {
            return Err(field(
                "events",
                format!(
                    "events must each be one of {}; got {item}",
                    SUPPORTED_EVENTS.join(", ")
                ),
            ));
        };
        if !out.iter().any(|e| e == event) {
            out.push(event.to_owned());
        }
    }
    Ok(out)
}

/// The field `disabledResourceGroups`.
const DISABLED_GROUPS: &str = "disabledResourceGroups";

fn resource_groups(v: &Value) -> Result<Vec<String>, WebhookError> {
    let refused = || {
        field(
            DISABLED_GROUPS,
            format!(
                "disabledResourceGroups must be an array of resource groups, each one of {}",
                RESOURCE_GROUPS.join(", ")
            ),
        )
    };
    let list = v.as_array().ok_or_else(refused)?;
    let mut out: Vec<String> = Vec::new();
    for item in list {
        let group = item
            .as_str()
            .filter(|g| RESOURCE_GROUPS.contains(g))
            .ok_or_else(refused)?;
        if !out.iter().any(|g| g == group) {
            out.push(group.to_owned());
        }
    }
    Ok(out)
}

fn boolean(v: &Value, param: &'static str) -> Result<bool, WebhookError> {
    v.as_bool()
        .ok_or_else(|| field(param, format!("{param} must be true or false")))
}

fn custom_headers(v: &Value) -> Result<Vec<(String, String)>, WebhookError> {
    let map = v.as_object().ok_or_else(|| {
        field(
            "customHeaders",
            "customHeaders must be an object of header names to string values",
        )
    })?;
    // Counted before anything else is read: any object is refused in time linear in its size.
    if map.len() > MAX_CUSTOM_HEADERS {
        return Err(field(
            "customHeaders",
            HeaderError::TooMany(map.len()).to_string(),
        ));
    }
    let mut pairs = Vec::with_capacity(map.len());
    for (k, v) in map {
        let value = v.as_str().ok_or_else(|| {
            field(
                "customHeaders",
                format!("the value of customHeaders {k:?} must be a string"),
            )
        })?;
        pairs.push((k.clone(), value.to_owned()));
    }
    CustomHeaders::parse(pairs.iter().map(|(k, v)| (k, v)))
        .map_err(|e| field("customHeaders", e.to_string()))?;
    Ok(pairs)
}

/// Whether a delivery attempt succeeded, as the log's `status` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStatus {
    /// A 2xx within the time limit.
    Success,
    /// Anything else.
    Failed,
}

impl LogStatus {
    /// `success` / `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
        }
    }

    /// From the stored or queried text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One delivery attempt, as the log keeps it for 30 days (`WebhookLog` of `@zernio/node`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The webhook's id.
    pub webhook_id: String,
    /// The webhook's name when the attempt was made.
    pub webhook_name: String,
    /// The event's id.
    pub event_id: String,
    /// The event's name.
    pub event: String,
    /// Where it was sent.
    pub url: String,
    /// Success or failure.
    pub status: LogStatus,
    /// The response's status, if one came.
    pub status_code: Option<u16>,
    /// The exact bytes sent (a redelivery sends them again).
    pub request_payload: Vec<u8>,
    /// The first 10 KB of the response body.
    pub response_body: String,
    /// Why it failed.
    pub error_message: Option<String>,
    /// 1 for the first attempt of this event to this webhook.
    pub attempt_number: u32,
    /// Milliseconds.
    pub response_time_ms: u64,
    /// When the attempt was made (epoch seconds).
    pub created_at: i64,
}

impl LogEntry {
    /// The `WebhookLog` object: the payload as the JSON it is (as text if it is not JSON).
    pub fn view(&self) -> Value {
        let payload = serde_json::from_slice::<Value>(&self.request_payload).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&self.request_payload).into_owned())
        });
        let view = json!({
            "webhookId": self.webhook_id,
            "webhookName": self.webhook_name,
            "eventId": self.event_id,
            "event": self.event,
            "url": self.url,
            "status": self.status.as_str(),
            "statusCode": self.status_code,
            "requestPayload": payload,
            "responseBody": self.response_body,
            "errorMessage": self.error_message,
            "attemptNumber": self.attempt_number,
            "responseTime": self.response_time_ms,
            "createdAt": rfc3339(self.created_at),
        });
        without_nulls(view, &["statusCode", "errorMessage"])
    }
}

/// `view` without those of `fields` that are `null`. `@zernio/node` types them optional, not
/// nullable (`lastFiredAt?: string`), so a value it does not have is absent, never `null`.
fn without_nulls(mut view: Value, fields: &[&str]) -> Value {
    if let Some(map) = view.as_object_mut() {
        for field in fields {
            if map.get(*field).is_some_and(Value::is_null) {
                map.shift_remove(*field);
            }
        }
    }
    view
}

/// The logs route's filters (each optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only this event name.
    pub event: Option<String>,
    /// Only this event id.
    pub event_id: Option<String>,
    /// Only successes or only failures.
    pub status: Option<LogStatus>,
    /// Only this webhook.
    pub webhook_id: Option<String>,
}

/// How far back `POST /v1/webhooks/logs/recover` reaches: 30 days (the log shows at least
/// that much).
pub const RECOVER_DAYS: i64 = LOG_RETENTION_DAYS;

/// The most events one recover call queues (fewer when the user's minute of attempts has fewer
/// left): what a call reads and writes stays bounded whatever the outage.
pub const RECOVER_PER_CALL: usize = 100;

/// The window of a recover request, checked: `since` to `until` (both included, epoch
/// seconds), `since` at most [`RECOVER_DAYS`] before now and not after `until`, which is now
/// when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoverWindow {
    /// The window's first second.
    pub since: i64,
    /// The window's last second.
    pub until: i64,
}

impl RecoverWindow {
    /// Checks a recover body's `since` and `until` (RFC 3339, as every time in the API) at `now`.
    pub fn parse(body: &Map<String, Value>, now: i64) -> Result<Self, WebhookError> {
        let since = timestamp(required(body, "since")?, "since")?;
        let until = match present(body, "until") {
            Some(v) => timestamp(v, "until")?,
            None => now,
        };
        if since > until {
            return Err(field(
                "since",
                "since must not be after until (now, when until is absent)",
            ));
        }
        if since < now - RECOVER_DAYS * SECONDS_PER_DAY {
            return Err(field(
                "since",
                format!("since must be at most {RECOVER_DAYS} days ago"),
            ));
        }
        Ok(Self { since, until })
    }
}

/// An RFC 3339 time (`2026-12-04T19:40:02Z`, any offset, fractions of a second dropped), in
/// epoch seconds.
fn timestamp(v: &Value, param: &'static str) -> Result<i64, WebhookError> {
    v.as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .map(OffsetDateTime::unix_timestamp)
        .ok_or_else(|| {
            field(
                param,
                format!("{param} must be an RFC 3339 time, such as 2026-12-04T19:40:02Z"),
            )
        })
}

/// The `webhook.test` payload: top-level fields, no `data` wrapper, as Zernio's events are.
pub fn test_payload(event_id: &EventId, webhook: &Webhook, now: i64) -> Vec<u8> {
    let payload = json!({
        "id": event_id.as_str(),
        "event": TEST_EVENT,
        "webhook": { "id": webhook.id.as_str(), "name": webhook.name },
        "message": "This is a test event: your endpoint received and can verify deliveries.",
        "timestamp": rfc3339(now),
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn param_of(v: Value) -> &'static str {
        match NewWebhook::parse(&obj(v), Targets::PublicOnly) {
            Err(WebhookError::InvalidField { param, .. }) => param,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn valid() -> Value {
        json!({"name": "n", "url": "https://hooks.example.com/z", "events": ["message.received"]})
    }

    #[test]
    fn a_minimal_create_gets_a_generated_secret_and_is_active() {
        let hook = NewWebhook::parse(&obj(valid()), Targets::PublicOnly).unwrap();
        assert!(hook.secret.starts_with("whsec_"), "{}", hook.secret);
        assert!(hook.is_active);
        assert!(hook.custom_headers.is_empty());
    }

    #[test]
    fn each_bad_field_is_named() {
        let with = |k: &str, v: Value| {
            let mut b = valid();
            b[k] = v;
            b
        };
        assert_eq!(param_of(with("name", json!(""))), "name");
        assert_eq!(param_of(with("name", json!("x".repeat(51)))), "name");
        assert_eq!(
            param_of(with("url", json!("http://hooks.example.com/"))),
            "url"
        );
        assert_eq!(param_of(with("url", json!("https://10.0.0.1/"))), "url");
        assert_eq!(param_of(with("events", json!([]))), "events");
        assert_eq!(
            param_of(with("events", json!(["account.connected"]))),
            "events"
        );
        assert_eq!(param_of(with("secret", json!(""))), "secret");
        assert_eq!(param_of(with("isActive", json!("yes"))), "isActive");
        assert_eq!(
            param_of(with("customHeaders", json!({"Host": "x"}))),
            "customHeaders"
        );
        assert_eq!(
            param_of(json!({"url": "https://a.example/", "events": ["webhook.test"]})),
            "name"
        );
    }

    #[test]
    fn events_keep_their_order_without_repeats() {
        let mut b = valid();
        b["events"] = json!(["message.read", "message.sent", "message.read"]);
        let hook = NewWebhook::parse(&obj(b), Targets::PublicOnly).unwrap();
        assert_eq!(hook.events, ["message.read", "message.sent"]);
    }

    #[test]
    fn ids_have_their_shapes() {
        let id = WebhookId::generate().unwrap();
        assert_eq!(WebhookId::parse(id.as_str()), Some(id));
        assert_eq!(WebhookId::parse("wh_short"), None);
        let evt = EventId::generate().unwrap();
        assert_eq!(EventId::parse(evt.as_str()), Some(evt));
        assert_eq!(EventId::parse("evt_../../x"), None);
        // The stream's ids before issue 25: base64url, `-` and `_` included.
        assert!(EventId::parse("evt_Ab-_0123456789abcdefgh").is_some());
        for bad in [
            "evt_Ab-_0123456789abcdefg",
            "evt_Ab-_0123456789abcdefghi",
            "evt_Ab#_0123456789abcdefgh",
            "evt_Ab+/0123456789abcdefgh",
            "wh_Ab-_0123456789abcdefghi",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_legacy_id_field_is_read_when_the_new_one_is_absent() {
        let id = json!("wh_x");
        assert_eq!(webhook_id_field(None, Some(&id)).unwrap(), "wh_x");
        assert_eq!(webhook_id_field(Some(&id), None).unwrap(), "wh_x");
        assert!(webhook_id_field(None, None).is_err());
        assert!(webhook_id_field(Some(&json!(3)), None).is_err());
    }
}
