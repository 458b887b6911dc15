//! One delivery attempt: POST the event's exact bytes with its headers, then classify what came
//! back and record it as a log entry needs it.

use std::error::Error as _;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

use crate::clock::Clock;

use super::egress::{EgressClient, NoAddress, Refused};
use super::endpoint::WebhookUrl;
use super::headers::CustomHeaders;
use super::schedule::parse_retry_after;
use super::signing::{standard_signature, zernio_signature, WebhookSecret};

/// How much of a response body an attempt keeps (Zernio's log cuts it at 10 KB); the rest is
/// not read.
pub const RESPONSE_BODY_CAP_BYTES: usize = 10 * 1024;

/// `X-Zernio-Event`: the event's name.
pub const X_ZERNIO_EVENT: &str = "x-zernio-event";
/// `X-Zernio-Event-Id`: the event's id (the payload's `id`).
pub const X_ZERNIO_EVENT_ID: &str = "x-zernio-event-id";
/// `X-Zernio-Signature`: see [`zernio_signature`].
pub const X_ZERNIO_SIGNATURE: &str = "x-zernio-signature";
/// `webhook-id` (Standard Webhooks): the event's id, the same on every attempt.
pub const WEBHOOK_ID: &str = "webhook-id";
/// `webhook-timestamp` (Standard Webhooks): when this attempt was signed, epoch seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// `webhook-signature` (Standard Webhooks): see [`standard_signature`].
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// What is delivered and where: the same on every attempt of one event.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The webhook's URL.
    pub url: &'a WebhookUrl,
    /// The event's name (`message.received`).
    pub event: &'a str,
    /// The event's id, stable across retries and redeliveries.
    pub event_id: &'a str,
    /// The payload, sent byte for byte as signed.
    pub body: &'a [u8],
    /// The webhook's secret.
    pub secret: &'a WebhookSecret,
    /// The webhook's `customHeaders`.
    pub custom_headers: &'a CustomHeaders,
}

/// How an attempt ended, for what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx within the time limit.
    Delivered,
    /// 410 Gone: the receiver asks for the webhook to be turned off.
    Gone,
    /// Anything else: retried on the schedule; `retry_after` is the receiver's `Retry-After`.
    Failed {
        /// The wait the receiver asked for, if it sent a readable `Retry-After`.
        retry_after: Option<Duration>,
    },
}

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// The address is refused by an egress rule (named in the message).
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The name resolved to nothing.
    #[error(transparent)]
    NoAddress(#[from] NoAddress),
    /// No complete answer within the time limit.
    #[error("no response within the time limit")]
    TimedOut,
    /// The connection could not be made (DNS, TCP, TLS).
    #[error("could not connect: {0}")]
    Connect(String),
    /// The request failed after connecting.
    #[error("request failed: {0}")]
    Request(String),
    /// The event's name or id cannot be a header value.
    #[error("{0} cannot be sent as a header value")]
    InvalidHeader(&'static str),
    /// A redirect, which is not followed.
    #[error("answered {0} (redirects are not followed)")]
    Redirect(u16),
    /// 410 Gone.
    #[error("answered 410 Gone")]
    Gone,
    /// Any other status outside 2xx.
    #[error("answered {0}")]
    Status(u16),
}

/// One attempt, as the delivery log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// The response's status, if one came.
    pub status_code: Option<u16>,
    /// From sending the request to the end of the (capped) body read, in milliseconds.
    pub response_time_ms: u64,
    /// The first [`RESPONSE_BODY_CAP_BYTES`] of the response body (invalid UTF-8 replaced).
    pub response_body: String,
    /// Why it did not deliver; `None` when delivered.
    pub error: Option<AttemptError>,
}

impl Attempt {
    fn failed_before_sending(number: u32, error: AttemptError) -> Self {
        Self {
            number,
            outcome: Outcome::Failed { retry_after: None },
            status_code: None,
            response_time_ms: 0,
            response_body: String::new(),
            error: Some(error),
        }
    }
}

/// Sends attempt `number` of `delivery` through `client`, signed at `clock`'s now.
pub async fn attempt(
    client: &EgressClient,
    delivery: &Delivery<'_>,
    number: u32,
    clock: &dyn Clock,
) -> Attempt {
    let url = delivery.url.as_url();
    // reqwest connects to an IP literal without asking the filtering resolver.
    if let Err(refused) = client.check_literal(url) {
        return Attempt::failed_before_sending(number, refused.into());
    }
    let now = clock.now();
    let headers = match headers(delivery, now) {
        Ok(headers) => headers,
        Err(error) => return Attempt::failed_before_sending(number, error),
    };

    let started = Instant::now();
    let sent = client
        .http()
        .post(url.clone())
        .headers(headers)
        .body(delivery.body.to_vec())
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(error) => {
            return Attempt {
                response_time_ms: elapsed_ms(started),
                ..Attempt::failed_before_sending(number, classify(&error))
            }
        }
    };

    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    // The outcome is the status's; a body that fails or stalls only shortens what is recorded
    // (the client's time limit covers the body too).
    let body = read_capped(&mut response).await;
    let response_time_ms = elapsed_ms(started);

    let (outcome, error) = match status {
        s if s.is_success() => (Outcome::Delivered, None),
        StatusCode::GONE => (Outcome::Gone, Some(AttemptError::Gone)),
        s if s.is_redirection() => (
            Outcome::Failed { retry_after },
            Some(AttemptError::Redirect(s.as_u16())),
        ),
        s => (
            Outcome::Failed { retry_after },
            Some(AttemptError::Status(s.as_u16())),
        ),
    };
    Attempt {
        number,
        outcome,
        status_code: Some(status.as_u16()),
        response_time_ms,
        response_body: body,
        error,
    }
}

/// Every header of the delivery: content type, the event's, both signatures, the user's.
fn headers(delivery: &Delivery<'_>, now: i64) -> Result<HeaderMap, AttemptError> {
    let value = |v: &str, what: &'static str| {
        HeaderValue::from_str(v).map_err(|_| AttemptError::InvalidHeader(what))
    };
    let zernio = zernio_signature(delivery.secret, delivery.body);
    let standard = standard_signature(delivery.secret, delivery.event_id, now, delivery.body);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let ours = [
        (X_ZERNIO_EVENT, value(delivery.event, "the event name")?),
        (X_ZERNIO_EVENT_ID, value(delivery.event_id, "the event id")?),
        (X_ZERNIO_SIGNATURE, value(&zernio, "the signature")?),
        (WEBHOOK_ID, value(delivery.event_id, "the event id")?),
        (WEBHOOK_TIMESTAMP, value(&now.to_string(), "the timestamp")?),
        (WEBHOOK_SIGNATURE, value(&standard, "the signature")?),
    ];
    for (name, value) in ours {
        headers.insert(HeaderName::from_static(name), value);
    }
    // Reserved names are refused when custom headers are set, so none overrides ours.
    for (name, value) in delivery.custom_headers.iter() {
        headers.append(name.clone(), value.clone());
    }
    Ok(headers)
}

/// The first [`RESPONSE_BODY_CAP_BYTES`] of the body; reading stops there.
async fn read_capped(response: &mut reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < RESPONSE_BODY_CAP_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_BODY_CAP_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// The attempt error a transport failure stands for: an egress refusal is found wherever the
/// client nested it.
fn classify(error: &reqwest::Error) -> AttemptError {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return refused.clone().into();
        }
        if let Some(none) = cause.downcast_ref::<NoAddress>() {
            return none.clone().into();
        }
        source = cause.source();
    }
    if error.is_timeout() {
        AttemptError::TimedOut
    } else if error.is_connect() {
        AttemptError::Connect(causes(error))
    } else {
        AttemptError::Request(causes(error))
    }
}

/// The error's causes, joined (reqwest's own message only repeats the URL).
fn causes(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
