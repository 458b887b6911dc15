//! The API user's outbound webhooks (`/v1/webhooks/*`): calls to the real handler and a
//! local receiver, the signatures a receiver checks, the log lines the functions write.

use std::collections::HashMap;
use std::time::Duration;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, RequestExt};
use sandbox::outbound::{EgressClient, Targets};
use sandbox::session::UserId;
use sandbox::webhooks::{LogEntry, LogStatus};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{assert_error, finish, request, Reply, TestEnv};

/// The settings path (create, list, update, delete).
pub const SETTINGS: &str = "/v1/webhooks/settings";
/// The test path.
pub const TEST: &str = "/v1/webhooks/test";
/// The logs path.
pub const LOGS: &str = "/v1/webhooks/logs";
/// The redeliver path.
pub const REDELIVER: &str = "/v1/webhooks/logs/redeliver";
/// The recover path.
pub const RECOVER: &str = "/v1/webhooks/logs/recover";

/// A delivery client as `make dev` runs it: private targets and plain `http` allowed (the
/// receivers in tests listen on 127.0.0.1), a 5 s limit (two shared cores).
pub fn local_egress() -> EgressClient {
    EgressClient::new(Targets::PrivateAllowed, Duration::from_secs(5)).expect("egress client")
}

/// A delivery client as deployed: public addresses and `https` only.
pub fn public_egress() -> EgressClient {
    EgressClient::new(Targets::PublicOnly, Duration::from_secs(5)).expect("egress client")
}

/// The events function's deliverer as `make dev` runs it (private targets allowed), with the
/// retry schedule `schedule` (`WEBHOOK_RETRY_SCHEDULE_SECONDS`) and an attempt limit of
/// `timeout`.
pub fn deliverer(schedule: &str, timeout: Duration) -> sandbox::delivery::Deliverer {
    let settings = sandbox::outbound::DeliverySettings {
        timeout,
        schedule: sandbox::outbound::RetrySchedule::parse(schedule).expect("a schedule"),
        targets: Targets::PrivateAllowed,
        concurrency: 16,
    };
    let egress = EgressClient::new(settings.targets, timeout).expect("egress client");
    sandbox::delivery::Deliverer::new(egress, settings)
}

/// The secret of the webhooks [`TestEnv::hook`] makes: known, so a test can check signatures.
pub const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A create body for `url` with the required fields.
pub fn new_webhook(name: &str, url: &str) -> Value {
    json!({ "name": name, "url": url, "events": ["message.received"] })
}

impl TestEnv {
    /// A fresh environment whose users may start (or queue) `limit` webhook attempts a minute
    /// (`USER_WEBHOOK_ATTEMPTS_PER_MINUTE`).
    pub async fn with_webhook_attempts_per_minute(limit: i64) -> Self {
        let options = crate::Options {
            user_webhook_attempts_per_minute: limit,
            ..crate::Options::default()
        };
        Self::with(options).await
    }

    /// Any `/v1/webhooks/*` request, through `egress`.
    pub async fn webhooks_with(
        &self,
        egress: &EgressClient,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        query: &[(&str, &str)],
    ) -> Reply {
        let body = body.map_or(Body::Empty, |b| Body::Text(b.to_string()));
        let query: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let req = request(method.clone(), path, key, body).with_query_string_parameters(query);
        finish(
            method.as_str(),
            path,
            sandbox::api::webhooks::handle(&self.app, egress, req).await,
        )
    }

    /// Any `/v1/webhooks/*` request, with private targets allowed.
    pub async fn webhooks(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
        query: &[(&str, &str)],
    ) -> Reply {
        self.webhooks_with(&local_egress(), method, path, Some(key), body, query)
            .await
    }

    /// `POST /v1/webhooks/settings`.
    pub async fn create_webhook(&self, key: &str, body: &Value) -> Reply {
        self.webhooks(Method::POST, SETTINGS, key, Some(body), &[])
            .await
    }

    /// A webhook of `key`'s user to `url` for `events`, signing with [`HOOK_SECRET`] (expects
    /// 200); its id.
    pub async fn hook(&self, key: &str, url: &str, events: &[&str]) -> String {
        let body = json!({
            "name": "receiver", "url": url, "events": events, "secret": HOOK_SECRET,
        });
        let reply = self.create_webhook(key, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["webhook"]["_id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }

    /// An active session of `user`'s for [`crate::SPAIN_DIGITS`] (the Graph stub accepting),
    /// a webhook of theirs to `server` for `events` signing with [`HOOK_SECRET`], and the
    /// table's stream from then on: what a delivery test starts from.
    pub async fn hooked(&self, user: &str, server: &MockServer, events: &[&str]) -> Hooked {
        crate::meta::accept(&self.meta).await;
        let key = self.active(user, crate::SPAIN_DIGITS).await.key;
        let id = self.hook(&key, &hook_url(server), events).await;
        let stream = crate::stream::TableStream::open(self).await;
        Hooked { key, id, stream }
    }

    /// The `n`th text from `digits` (each `n` a distinct message), sent now.
    pub async fn text_from(&self, digits: &str, text: &str, n: u32) {
        let now = sandbox::Clock::now(&*self.clock);
        self.deliver_messages(vec![crate::deliveries::text_at(digits, text, now, n)])
            .await;
    }

    /// The first page of `key`'s user's delivery log, newest first.
    pub async fn logged(&self, key: &str) -> Vec<Value> {
        self.webhook_logs(key, &[])
            .await
            .get("logs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Creates a webhook to `url` (expects 200) and returns the answer's `webhook`.
    pub async fn webhook_to(&self, key: &str, url: &str) -> Value {
        let reply = self.create_webhook(key, &new_webhook("hook", url)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["webhook"].clone()
    }

    /// `GET /v1/webhooks/settings`'s `webhooks`.
    pub async fn list_webhooks(&self, key: &str) -> Value {
        let reply = self.webhooks(Method::GET, SETTINGS, key, None, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["webhooks"].clone()
    }

    /// `POST /v1/webhooks/test` for `id`.
    pub async fn test_webhook(&self, key: &str, id: &str) -> Reply {
        self.webhooks(
            Method::POST,
            TEST,
            key,
            Some(&json!({ "webhookId": id })),
            &[],
        )
        .await
    }

    /// `GET /v1/webhooks/logs` with `query` (expects 200).
    pub async fn webhook_logs(&self, key: &str, query: &[(&str, &str)]) -> Value {
        let reply = self.webhooks(Method::GET, LOGS, key, None, query).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()
    }

    /// Every delivery due at `at`, from every shard of the due index, as the sweep reads them.
    pub async fn due_deliveries(&self, at: i64) -> Vec<sandbox::store::DueDelivery> {
        let mut due = Vec::new();
        for shard in sandbox::store::Key::due_shards() {
            let read = self.app.store.due_deliveries(&shard, at, usize::MAX).await;
            due.extend(read.expect("the due index"));
        }
        due
    }

    /// `POST /v1/webhooks/logs/redeliver`.
    pub async fn redeliver(&self, key: &str, webhook_id: &str, event_id: &str) -> Reply {
        let body = json!({ "webhookId": webhook_id, "eventId": event_id });
        self.webhooks(Method::POST, REDELIVER, key, Some(&body), &[])
            .await
    }

    /// Stores a log entry of `user`'s directly, as an attempt of `event` to `webhook` at `at`
    /// would (500 when it failed), its payload `{"id", "event"}`.
    pub async fn log_entry(
        &self,
        user: &str,
        webhook: &str,
        event: &str,
        event_id: &str,
        status: LogStatus,
        at: i64,
    ) {
        let failed = status == LogStatus::Failed;
        let entry = LogEntry {
            webhook_id: webhook.into(),
            webhook_name: "hook".into(),
            event_id: event_id.into(),
            event: event.into(),
            url: "https://hooks.example.com/".into(),
            status,
            status_code: Some(if failed { 500 } else { 200 }),
            request_payload: format!(r#"{{"id":"{event_id}","event":"{event}"}}"#).into_bytes(),
            response_body: String::new(),
            error_message: failed.then(|| "answered 500".into()),
            attempt_number: 1,
            response_time_ms: 12,
            created_at: at,
        };
        self.app
            .store
            .log_attempt(&UserId::new(user), &entry)
            .await
            .expect("logged");
    }

    /// `DELETE /v1/webhooks/settings` with `query`.
    pub async fn delete_webhook(&self, key: &str, query: &[(&str, &str)]) -> Reply {
        self.webhooks(Method::DELETE, SETTINGS, key, None, query)
            .await
    }

    /// `PUT /v1/webhooks/settings` with `body`.
    pub async fn update_webhook(&self, key: &str, body: &Value) -> Reply {
        self.webhooks(Method::PUT, SETTINGS, key, Some(body), &[])
            .await
    }

    /// `POST /v1/webhooks/logs/recover` with `body`.
    pub async fn recover(&self, key: &str, body: &Value) -> Reply {
        self.webhooks(Method::POST, RECOVER, key, Some(body), &[])
            .await
    }
}

/// Asserts that `reply` is 400 `invalid_field_value`; its body.
pub fn assert_invalid_field(reply: &Reply) -> Value {
    let (kind, code) = ("invalid_request_error", "invalid_field_value");
    assert_error(reply, StatusCode::BAD_REQUEST, kind, code)
}

/// Asserts that `reply` is 400 `invalid_field_value` naming `param`; its body.
pub fn assert_invalid(reply: &Reply, param: &str) -> Value {
    let body = assert_invalid_field(reply);
    assert_eq!(body["param"], param, "{body}");
    body
}

/// Asserts that `reply` is the 429 of a user past the minute's webhook attempts.
pub fn assert_rate_limited(reply: &Reply) {
    let (kind, code) = ("rate_limit_error", "rate_limit_exceeded");
    let body = assert_error(reply, StatusCode::TOO_MANY_REQUESTS, kind, code);
    assert_eq!(body["details"], json!({ "scope": "user" }), "{body}");
}

/// Asserts that `reply` is the one 404 of a webhook id that names none of the caller's.
pub fn assert_webhook_not_found(reply: &Reply) {
    let body = assert_error(
        reply,
        StatusCode::NOT_FOUND,
        "not_found",
        "webhook_not_found",
    );
    assert_eq!(body["param"], "webhookId", "{body}");
}

/// What [`TestEnv::hooked`] made.
pub struct Hooked {
    /// The user's API key.
    pub key: String,
    /// The webhook's id.
    pub id: String,
    /// The table's stream, read from just after the webhook was made.
    pub stream: crate::stream::TableStream,
}

/// A receiver that answers every POST with `status`.
pub async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_string("ok"))
        .mount(&server)
        .await;
    server
}

/// The receiver's URL for deliveries.
pub fn hook_url(server: &MockServer) -> String {
    format!("{}/hook", server.uri())
}

/// The requests a receiver got.
pub async fn received(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap_or_default()
}

/// A header of a request a receiver got, as text (empty when absent).
pub fn header(request: &wiremock::Request, name: &str) -> String {
    let value = request.headers.get(name).map(|v| v.as_bytes());
    String::from_utf8_lossy(value.unwrap_or_default()).into_owned()
}

/// Whether the Standard Webhooks reference verifier (the `standardwebhooks` crate's
/// `Webhook::verify`, holding only `secret`, a `whsec_` one) accepts a delivery: any of the
/// `webhook-signature` values, and a `webhook-timestamp` within five minutes of the wall clock.
pub fn verifies(secret: &str, request: &wiremock::Request) -> bool {
    standardwebhooks::Webhook::new(secret)
        .and_then(|hook| hook.verify(&request.body, &request.headers))
        .is_ok()
}

pub use crate::logs::Captured;

/// HMAC-SHA256 of `message` keyed with `key`, by the `hmac` crate: independent of the service's
/// signing code.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `X-Zernio-Signature` as a receiver computes it: hex HMAC-SHA256 of the body, keyed with the
/// secret's text.
pub fn zernio_signature(secret: &str, body: &[u8]) -> String {
    hmac_sha256(secret.as_bytes(), body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `webhook-signature` as a Standard Webhooks receiver computes it for a `whsec_` secret:
/// `v1,` and the base64 HMAC-SHA256 of `<id>.<timestamp>.<body>`, keyed with the secret's
/// decoded bytes.
pub fn standard_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64");
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("v1,{}", b64.encode(hmac_sha256(&key, &signed)))
}
