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
use super::signing::{standard_signatures, zernio_signature, SigningSecrets};

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
    /// The webhook's secrets (two for a day after a rotation).
    pub secrets: &'a SigningSecrets,
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
    /// A failed attempt that got no response (refused, unreachable, timed out).
    fn without_response(number: u32, error: AttemptError) -> Self {
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
        return Attempt::without_response(number, refused.into());
    }
    let now = clock.now();
    let headers = match headers(delivery, now) {
        Ok(headers) => headers,
        Err(error) => return Attempt::without_response(number, error),
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
                ..Attempt::without_response(number, classify(&error))
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
    // Zernio's header holds one value: the current secret's.
    let zernio = zernio_signature(&delivery.secrets.current, delivery.body);
    let standard = standard_signatures(delivery.secrets, delivery.event_id, now, delivery.body)
        .map_err(|_| AttemptError::InvalidHeader("the Standard Webhooks signature"))?;
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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use base64::Engine;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::clock::{ManualClock, SystemClock};
    use crate::outbound::egress::{Rule, StaticResolver, Targets};
    use crate::outbound::schedule::{NextStep, RetrySchedule};
    use crate::outbound::signing::WebhookSecret;

    const BODY: &[u8] = br#"{"id":"evt_123","event":"message.received","text":"h\u00e9llo"}"#;
    /// Ample for a local stub on a loaded machine: tests that expect an answer get one.
    const LIMIT: Duration = Duration::from_secs(5);
    /// The limit of the tests that expect it to cut an attempt short.
    const SHORT_LIMIT: Duration = Duration::from_millis(200);
    /// Bounds a test that would otherwise hang if a time limit were missing.
    const GUARD: Duration = Duration::from_secs(15);

    struct Fixture {
        url: WebhookUrl,
        secrets: SigningSecrets,
        headers: CustomHeaders,
    }

    impl Fixture {
        fn new(url: &str) -> Self {
            Self::with_secret(url, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        }

        fn with_secret(url: &str, secret: &str) -> Self {
            Self {
                url: WebhookUrl::parse(url, Targets::PrivateAllowed).unwrap(),
                secrets: WebhookSecret::parse(secret).unwrap().into(),
                headers: CustomHeaders::parse([("X-Api-Key", "k-1"), ("X-Tenant", "acme")])
                    .unwrap(),
            }
        }

        fn delivery(&self) -> Delivery<'_> {
            Delivery {
                url: &self.url,
                event: "message.received",
                event_id: "evt_123",
                body: BODY,
                secrets: &self.secrets,
                custom_headers: &self.headers,
            }
        }
    }

    /// A client that may reach the local stub servers.
    fn local_client() -> EgressClient {
        local_client_with(LIMIT)
    }

    /// [`local_client`] with another time limit.
    fn local_client_with(limit: Duration) -> EgressClient {
        EgressClient::new(Targets::PrivateAllowed, limit).unwrap()
    }

    /// A deployed stack's client whose resolver answers every name with `addrs`.
    fn public_client(resolver: Arc<StaticResolver>) -> EgressClient {
        EgressClient::with_resolver(Targets::PublicOnly, LIMIT, resolver).unwrap()
    }

    async fn send(client: &EgressClient, fixture: &Fixture) -> Attempt {
        tokio::time::timeout(GUARD, attempt(client, &fixture.delivery(), 1, &SystemClock))
            .await
            .expect("the attempt ends within its time limit")
    }

    async fn stub(response: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(response)
            .mount(&server)
            .await;
        server
    }

    /// Whether anything connected to `listener` within a moment.
    async fn connected(listener: &TcpListener) -> bool {
        tokio::time::timeout(Duration::from_millis(300), listener.accept())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_2xx_is_delivered_and_the_response_is_recorded() {
        let server = stub(ResponseTemplate::new(201).set_body_string("thanks")).await;
        let fixture = Fixture::new(&format!("{}/hook", server.uri()));
        let attempt = send(&local_client(), &fixture).await;
        assert_eq!(attempt.outcome, Outcome::Delivered);
        assert_eq!(attempt.number, 1);
        assert_eq!(attempt.status_code, Some(201));
        assert_eq!(attempt.response_body, "thanks");
        assert_eq!(attempt.error, None);
    }

    #[tokio::test]
    async fn the_exact_body_is_sent_with_the_event_headers_and_the_custom_headers() {
        let server = stub(ResponseTemplate::new(200)).await;
        let fixture = Fixture::new(&format!("{}/hook", server.uri()));
        send(&local_client(), &fixture).await;
        let requests = server.received_requests().await.unwrap();
        let request = &requests[0];
        assert_eq!(request.body, BODY);
        let header = |name: &str| request.headers.get(name).unwrap().to_str().unwrap();
        assert_eq!(header("content-type"), "application/json");
        assert_eq!(header("X-Zernio-Event"), "message.received");
        assert_eq!(header("X-Zernio-Event-Id"), "evt_123");
        assert_eq!(header("webhook-id"), "evt_123");
        assert_eq!(header("x-api-key"), "k-1");
        assert_eq!(header("x-tenant"), "acme");
    }

    /// Both signatures checked by code that is not ours: a plain HMAC for each (the Standard
    /// Webhooks signature is made by the `standardwebhooks` crate, so its verifier alone would
    /// not be independent), and that crate's verifier too, for a `whsec_` secret and a plain one.
    #[tokio::test]
    async fn both_signatures_verify_with_independent_code() {
        let server = stub(ResponseTemplate::new(204)).await;
        let url = format!("{}/hook", server.uri());
        let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let plain = "a plain secret, not base64";
        for secret in [whsec, plain] {
            server.reset().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(204))
                .mount(&server)
                .await;
            let fixture = Fixture::with_secret(&url, secret);
            assert_eq!(
                send(&local_client(), &fixture).await.outcome,
                Outcome::Delivered
            );
            let request = &server.received_requests().await.unwrap()[0];

            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(&request.body);
            let expected = hex::encode(mac.finalize().into_bytes());
            let sent = request.headers.get("x-zernio-signature").unwrap();
            assert_eq!(sent.to_str().unwrap(), expected, "{secret}");

            let verifier = if secret.starts_with("whsec_") {
                standardwebhooks::Webhook::new(secret).unwrap()
            } else {
                standardwebhooks::Webhook::from_bytes(secret.as_bytes().to_vec()).unwrap()
            };
            verifier
                .verify(&request.body, &request.headers)
                .unwrap_or_else(|e| panic!("{secret}: {e}"));
            let signature = request.headers.get("webhook-signature").unwrap();
            assert!(signature.to_str().unwrap().starts_with("v1,"));

            let key = match secret.strip_prefix("whsec_") {
                Some(encoded) => base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap(),
                None => secret.as_bytes().to_vec(),
            };
            let timestamp = request.headers.get("webhook-timestamp").unwrap();
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
            mac.update(format!("evt_123.{}.", timestamp.to_str().unwrap()).as_bytes());
            mac.update(&request.body);
            let expected = format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            );
            assert_eq!(signature.to_str().unwrap(), expected, "{secret}");
        }
    }

    #[tokio::test]
    async fn the_standard_timestamp_is_the_attempts_time() {
        let server = stub(ResponseTemplate::new(200)).await;
        let fixture = Fixture::new(&format!("{}/hook", server.uri()));
        let clock = ManualClock::new(1_700_000_123);
        attempt(&local_client(), &fixture.delivery(), 3, &clock).await;
        let request = &server.received_requests().await.unwrap()[0];
        let timestamp = request.headers.get("webhook-timestamp").unwrap();
        assert_eq!(timestamp.to_str().unwrap(), "1700000123");
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_refused_address_is_refused_without_connecting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        for (address, rule) in [
            ("127.0.0.1", Rule::Loopback),
            ("169.254.169.254", Rule::LinkLocal),
        ] {
            let resolver = StaticResolver::new(&[address.parse::<IpAddr>().unwrap()]);
            let client = public_client(Arc::clone(&resolver));
            let fixture = Fixture::new(&format!("https://hooks.example.test:{port}/hook"));
            let attempt = send(&client, &fixture).await;
            assert!(
                !connected(&listener).await,
                "{address}: a connection was attempted"
            );
            assert_eq!(
                resolver.lookups.load(Ordering::SeqCst),
                1,
                "the name was resolved"
            );
            assert_eq!(attempt.outcome, Outcome::Failed { retry_after: None });
            assert_eq!(attempt.status_code, None);
            match &attempt.error {
                Some(AttemptError::Refused(refused)) => assert_eq!(refused.rule, rule),
                other => panic!("{address}: {other:?}"),
            }
            let message = attempt.error.unwrap().to_string();
            assert!(message.contains(rule.name()), "{message}");
        }
    }

    /// The default client, through the system's resolver (`localhost` comes from the hosts
    /// file, no DNS server needed).
    #[tokio::test]
    async fn the_system_resolver_is_filtered_too() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = EgressClient::new(Targets::PublicOnly, LIMIT).unwrap();
        let attempt = send(
            &client,
            &Fixture::new(&format!("https://localhost:{port}/")),
        )
        .await;
        match attempt.error {
            Some(AttemptError::Refused(refused)) => assert_eq!(refused.rule, Rule::Loopback),
            other => panic!("{other:?}"),
        }
        assert!(!connected(&listener).await, "a connection was attempted");

        let server = stub(ResponseTemplate::new(200)).await;
        let port = server.address().port();
        let fixture = Fixture::new(&format!("http://localhost:{port}/hook"));
        let attempt = send(&local_client(), &fixture).await;
        assert_eq!(attempt.outcome, Outcome::Delivered, "{:?}", attempt.error);
    }

    #[tokio::test]
    async fn ip_literal_urls_are_refused_before_any_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let resolver = StaticResolver::new(&[]);
        let client = public_client(Arc::clone(&resolver));
        for (url, rule) in [
            (format!("https://127.0.0.1:{port}/"), Rule::Loopback),
            ("https://[::1]/".to_owned(), Rule::Loopback),
            (
                "https://[::ffff:169.254.169.254]/".to_owned(),
                Rule::LinkLocal,
            ),
        ] {
            let attempt = send(&client, &Fixture::new(&url)).await;
            match attempt.error {
                Some(AttemptError::Refused(refused)) => assert_eq!(refused.rule, rule, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
            assert_eq!(attempt.outcome, Outcome::Failed { retry_after: None });
        }
        assert!(!connected(&listener).await, "a connection was attempted");
        assert_eq!(resolver.lookups.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_public_only_client_sends_nothing_over_plain_http() {
        let resolver = StaticResolver::new(&["93.184.215.14".parse().unwrap()]);
        let client = public_client(Arc::clone(&resolver));
        let attempt = send(&client, &Fixture::new("http://hooks.example.test/hook")).await;
        assert!(
            matches!(attempt.error, Some(AttemptError::Request(_))),
            "{:?}",
            attempt.error
        );
        assert_eq!(resolver.lookups.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
        let server = MockServer::start().await;
        Mock::given(path("/followed"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        let fixture = Fixture::new(&format!("{}/hook", server.uri()));
        for location in [
            format!("{}/followed", server.uri()),
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ] {
            Mock::given(path("/hook"))
                .respond_with(ResponseTemplate::new(302).insert_header("location", &*location))
                .up_to_n_times(1)
                .mount(&server)
                .await;
            let attempt = send(&local_client(), &fixture).await;
            assert_eq!(attempt.status_code, Some(302), "{location}");
            assert_eq!(attempt.outcome, Outcome::Failed { retry_after: None });
            assert_eq!(attempt.error, Some(AttemptError::Redirect(302)));
        }
        let requests = server.received_requests().await.unwrap();
        let paths: Vec<&str> = requests.iter().map(|r| r.url.path()).collect();
        assert_eq!(paths, ["/hook", "/hook"], "nothing followed the redirects");
    }

    #[tokio::test]
    async fn a_410_turns_the_webhook_off() {
        let server = stub(ResponseTemplate::new(410)).await;
        let attempt = send(
            &local_client(),
            &Fixture::new(&format!("{}/hook", server.uri())),
        )
        .await;
        assert_eq!(attempt.outcome, Outcome::Gone);
        assert_eq!(attempt.status_code, Some(410));
    }

    #[tokio::test]
    async fn other_statuses_fail_the_attempt() {
        for status in [400, 404, 429, 500, 503] {
            let server = stub(ResponseTemplate::new(status)).await;
            let attempt = send(
                &local_client(),
                &Fixture::new(&format!("{}/hook", server.uri())),
            )
            .await;
            assert_eq!(attempt.outcome, Outcome::Failed { retry_after: None });
            assert_eq!(attempt.error, Some(AttemptError::Status(status)));
        }
    }

    #[tokio::test]
    async fn a_retry_after_is_honoured_within_the_schedule() {
        let schedule = RetrySchedule::default();
        let now = 1_700_000_000;
        let in_two_minutes = "Tue, 14 Nov 2023 22:15:20 GMT";
        for (retry_after, asked, wait) in [("60", 60, 60), (in_two_minutes, 120, 100), ("5", 5, 10)]
        {
            let server =
                stub(ResponseTemplate::new(503).insert_header("retry-after", retry_after)).await;
            let fixture = Fixture::new(&format!("{}/hook", server.uri()));
            let attempt = attempt(
                &local_client(),
                &fixture.delivery(),
                1,
                &ManualClock::new(now),
            )
            .await;
            let Outcome::Failed { retry_after: got } = attempt.outcome else {
                panic!("{:?}", attempt.outcome);
            };
            assert_eq!(got, Some(Duration::from_secs(asked)), "{retry_after}");
            assert_eq!(
                schedule.after_failure(1, got),
                NextStep::RetryAfter(Duration::from_secs(wait)),
                "{retry_after}"
            );
        }
    }

    #[tokio::test]
    async fn the_response_body_is_cut_at_10_kb() {
        for status in [200, 500] {
            let long = "x".repeat(50 * 1024);
            let server = stub(ResponseTemplate::new(status).set_body_string(long)).await;
            let attempt = send(
                &local_client(),
                &Fixture::new(&format!("{}/hook", server.uri())),
            )
            .await;
            assert_eq!(attempt.response_body.len(), RESPONSE_BODY_CAP_BYTES);
            assert_eq!(attempt.status_code, Some(status));
        }
    }

    #[tokio::test]
    async fn a_slow_endpoint_is_cut_at_the_time_limit() {
        let server = stub(ResponseTemplate::new(200).set_delay(Duration::from_secs(30))).await;
        let attempt = send(
            &local_client_with(SHORT_LIMIT),
            &Fixture::new(&format!("{}/hook", server.uri())),
        )
        .await;
        assert_eq!(attempt.outcome, Outcome::Failed { retry_after: None });
        assert_eq!(attempt.error, Some(AttemptError::TimedOut));
        assert_eq!(attempt.status_code, None);
    }

    /// A server that answers with headers and the start of a body, then never finishes it.
    #[tokio::test]
    async fn a_body_that_never_ends_is_cut_at_the_time_limit() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 100000\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.write_all(b"partial").await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        // Long enough for the head to arrive, far shorter than the body's stall.
        let attempt = send(
            &local_client_with(Duration::from_secs(1)),
            &Fixture::new(&format!("http://127.0.0.1:{port}/")),
        )
        .await;
        server.abort();
        assert_eq!(attempt.status_code, Some(500));
        assert_eq!(attempt.response_body, "partial");
        assert_eq!(attempt.outcome, Outcome::Failed { retry_after: None });
    }
}
