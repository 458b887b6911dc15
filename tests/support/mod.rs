//! Test support: a real DynamoDB (DynamoDB Local, started once per test process), a table per
//! test, a `wiremock` Graph API, a manual clock, and helpers that call the real handlers with
//! constructed `lambda_http` requests. The constants every test shares are defined here once.

/// Webhook deliveries as Meta sends them, signed, and the pending sessions they answer.
pub mod deliveries;
/// DynamoDB Local: started once per process, a fresh table per test, a request counter.
pub mod dynamo;
/// The functions' log lines, captured in a test.
pub mod logs;
/// Sandbox messaging: sends, conversation pages, activated sessions.
pub mod messaging;
/// The Graph API stub (`wiremock`) answering template sends like Meta.
pub mod meta;
/// Node.js scripts: `@zernio/node` driven unchanged, the CI example.
pub mod node;
/// The virtual phones: the phone function's stream handler fed from the table's stream, and
/// `/reply`.
pub mod phones;
/// The events function's pipeline: a user's session and webhook, the table's stream, a
/// deliverer.
pub mod pipeline;
/// `make dev`'s whole stack on free ports, for the tests that drive it over HTTP.
pub mod stack;
/// The test table's DynamoDB stream, read as Lambda hands it over.
pub mod stream;
/// The API user's outbound webhooks: calls to `/v1/webhooks/*`, local receivers.
pub mod webhooks;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use sandbox::auth::key_hash;
use sandbox::clock::ManualClock;
use sandbox::config::{Config, Role, Secret};
use sandbox::graph::GraphClient;
use sandbox::session::UserId;
use sandbox::store::{Activation, Answer, ApiKeyRecord, Item, Key, Store};
use sandbox::{api, App};
use serde_json::{json, Value};
use wiremock::MockServer;

pub use dynamo::RequestCounter;

/// A fixed "now" for tests: 2036-11-24T14:15:22Z. Far in the future on purpose: DynamoDB Local
/// runs the table's TTL against the wall clock, so an item whose `expiresAt` is derived from a
/// past `T0` (a pending session lives `T0` + 1 day) can be swept in the middle of a test.
pub const T0: i64 = 2_111_148_922;
/// The sandbox's Meta phone number id in tests.
pub const PHONE_NUMBER_ID: &str = "109876543210987";
/// The sandbox display number in tests.
pub const SANDBOX_NUMBER: &str = "+12029087457";
/// The Meta app secret in tests.
pub const APP_SECRET: &str = "test-app-secret";
/// The webhook verify token in tests.
pub const VERIFY_TOKEN: &str = "test-verify-token";
/// A day in seconds (the pending lifetime).
pub const DAY: i64 = 86_400;
/// A Spanish mobile number as a user types it.
pub const SPAIN: &str = "+34 688-246-216";
/// [`SPAIN`] as E.164 digits: `phoneE164`, Meta's `wa_id` and the webhook's `from`.
pub const SPAIN_DIGITS: &str = "34688246216";
/// A UK mobile number as a user types it.
pub const UK: &str = "+44 7400 123456";
/// [`UK`] as E.164 digits.
pub const UK_DIGITS: &str = "447400123456";
/// The revoke answer for any session that is not the caller's live one, byte for byte.
pub const NOT_FOUND: &str = r#"{"error":"Session not found","type":"invalid_request_error","code":"session_not_found","param":"sessionId"}"#;

/// What a handler answered.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: lambda_http::http::HeaderMap,
    /// The body as text.
    pub text: String,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One test's world: its own table, its own Graph API stub, its own clock.
pub struct TestEnv {
    /// The app the handlers run with.
    pub app: App,
    /// The Graph API stub.
    pub meta: MockServer,
    /// The test's clock.
    pub clock: Arc<ManualClock>,
    /// DynamoDB requests made through `app.store`.
    pub counter: RequestCounter,
    /// The table name.
    pub table: String,
}

/// Options for [`TestEnv::with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// `AUTH_CACHE_SECONDS`.
    pub auth_cache_seconds: i64,
    /// `META_TIMEOUT_MS`.
    pub meta_timeout_ms: u64,
    /// `USER_DAILY_SEND_LIMIT` (the production default unless a test needs another).
    pub user_daily_send_limit: i64,
    /// `RECIPIENT_DAILY_SEND_LIMIT` (the production default unless a test needs another).
    pub recipient_daily_send_limit: i64,
    /// `USER_WEBHOOK_LIMIT` (the production default unless a test needs another).
    pub user_webhook_limit: i64,
    /// `USER_WEBHOOK_ATTEMPTS_PER_MINUTE` (the production default unless a test needs another).
    pub user_webhook_attempts_per_minute: i64,
    /// `VIRTUAL_PHONES` (on, the production default, unless a test needs the range as
    /// ordinary numbers; the other limits are the production defaults, which a test may change
    /// in `app.config`).
    pub virtual_phones: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            auth_cache_seconds: 0,
            meta_timeout_ms: 2_000,
            user_daily_send_limit: 10,
            recipient_daily_send_limit: 3,
            user_webhook_limit: sandbox::config::DEFAULT_USER_WEBHOOK_LIMIT,
            user_webhook_attempts_per_minute:
                sandbox::config::DEFAULT_USER_WEBHOOK_ATTEMPTS_PER_MINUTE,
            virtual_phones: true,
        }
    }
}

impl TestEnv {
    /// A fresh environment with default options (auth cache off, so counts are per request).
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    /// A fresh environment whose Graph API stub accepts every send.
    pub async fn accepting() -> Self {
        let env = Self::new().await;
        meta::accept(&env.meta).await;
        env
    }

    /// A fresh environment whose Graph API stub accepts every send, with these daily caps
    /// (per user, per recipient phone).
    pub async fn accepting_with_limits(user: i64, recipient: i64) -> Self {
        let env = Self::with(Options {
            user_daily_send_limit: user,
            recipient_daily_send_limit: recipient,
            ..Options::default()
        })
        .await;
        meta::accept(&env.meta).await;
        env
    }

    /// A fresh environment whose authenticator caches keys for `seconds`, as a warm container.
    pub async fn with_auth_cache(seconds: i64) -> Self {
        Self::with(Options {
            auth_cache_seconds: seconds,
            ..Options::default()
        })
        .await
    }

    /// A fresh environment.
    pub async fn with(options: Options) -> Self {
        let local = dynamo::local();
        let counter = RequestCounter::default();
        let client = dynamo::client(&local.endpoint, Some(counter.clone()));
        let table = dynamo::fresh_table(&client).await;
        let meta = MockServer::start().await;
        let vars: HashMap<&str, String> = HashMap::from([
            ("TABLE_NAME", table.clone()),
            ("SANDBOX_DISPLAY_NUMBER", SANDBOX_NUMBER.to_owned()),
            ("SANDBOX_PHONE_NUMBER_ID", PHONE_NUMBER_ID.to_owned()),
            ("META_GRAPH_BASE_URL", meta.uri()),
            ("META_ACCESS_TOKEN", "test-token".to_owned()),
            ("META_APP_SECRET", APP_SECRET.to_owned()),
            ("META_WEBHOOK_VERIFY_TOKEN", VERIFY_TOKEN.to_owned()),
            ("AUTH_CACHE_SECONDS", options.auth_cache_seconds.to_string()),
            ("META_TIMEOUT_MS", options.meta_timeout_ms.to_string()),
            ("META_CONNECT_TIMEOUT_MS", "500".to_owned()),
            (
                "USER_DAILY_SEND_LIMIT",
                options.user_daily_send_limit.to_string(),
            ),
            (
                "RECIPIENT_DAILY_SEND_LIMIT",
                options.recipient_daily_send_limit.to_string(),
            ),
            ("USER_WEBHOOK_LIMIT", options.user_webhook_limit.to_string()),
            (
                "USER_WEBHOOK_ATTEMPTS_PER_MINUTE",
                options.user_webhook_attempts_per_minute.to_string(),
            ),
            ("VIRTUAL_PHONES", options.virtual_phones.to_string()),
        ]);
        let config = Config::from_lookup(Role::Create, |k| vars.get(k).cloned())
            .expect("test configuration is complete");
        let graph = GraphClient::new(&config, Secret::new("test-token")).expect("http client");
        let clock = Arc::new(ManualClock::new(T0));
        let app = App::new(
            config,
            Store::new(client, &table),
            Some(graph),
            clock.clone(),
        );
        counter.reset();
        Self {
            app,
            meta,
            clock,
            counter,
            table,
        }
    }

    /// Provisions an active API key for `user` and returns the key.
    pub async fn api_key(&self, user: &str) -> String {
        self.key_with_status(user, "active").await
    }

    /// Provisions an API key with a given status.
    pub async fn key_with_status(&self, user: &str, status: &str) -> String {
        let key = format!(
            "sk_test_{user}_{}",
            sandbox::ids::random_base62(24).unwrap()
        );
        self.put_key(&key, user, status).await;
        key
    }

    /// Stores `key` (as its hash, like the admin tool) for `user` with `status`.
    pub async fn put_key(&self, key: &str, user: &str, status: &str) {
        let record = ApiKeyRecord {
            status: status.to_owned(),
            ..ApiKeyRecord::active(
                &key_hash(key),
                UserId::new(user),
                "2026-11-01T00:00:00Z".into(),
                Some("test".into()),
            )
        };
        self.app.store.put_api_key(&record).await.expect("put key");
        self.counter.reset();
    }

    /// Disables `key` the way `sandbox-admin disable-key` does.
    pub async fn disable_key(&self, key: &str) {
        let record = sandbox_admin::keys::find_key(&self.app.store, &key_hash(key))
            .await
            .expect("the key exists");
        sandbox_admin::keys::disable_key(&self.app.store, &record)
            .await
            .expect("disable key");
    }

    /// `POST /v1/whatsapp/sandbox/sessions` with a raw body.
    pub async fn create_raw(&self, key: Option<&str>, body: impl Into<Body>) -> Reply {
        create_with(&self.app, key, body.into()).await
    }

    /// `POST /v1/whatsapp/sandbox/sessions` with `{"phone": phone}`, handled by `app` (one of
    /// the `app_with_unreachable_*` variants).
    pub async fn create_on(&self, app: &App, key: &str, phone: &str) -> Reply {
        let body = json!({ "phone": phone }).to_string();
        create_with(app, Some(key), body.into()).await
    }

    /// `POST /v1/whatsapp/sandbox/sessions` with `{"phone": phone}`.
    pub async fn create(&self, key: &str, phone: &str) -> Reply {
        let body = json!({ "phone": phone }).to_string();
        self.create_raw(Some(key), body).await
    }

    /// Creates a session for `phone` (expecting 200) and returns its id.
    pub async fn create_id(&self, key: &str, phone: &str) -> String {
        let reply = self.create(key, phone).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["session"]["id"]
            .as_str()
            .expect("a session id")
            .to_owned()
    }

    /// The `sessions` array `GET /v1/whatsapp/sandbox/sessions` shows `key`'s user.
    pub async fn sessions(&self, key: &str) -> Value {
        self.list(Some(key)).await.json()["sessions"].clone()
    }

    /// The first (the one) session `key`'s user sees, `null` if none.
    pub async fn session_of(&self, key: &str) -> Value {
        self.sessions(key).await[0].clone()
    }

    /// Whether `digits` is opted out now (panics if it never sent STOP or START).
    pub async fn opted_out(&self, digits: &str) -> bool {
        let record = self.app.store.opt_out(digits).await.expect("read opt-out");
        record.expect("an opt-out record").opted_out
    }

    /// Activates `user`'s live session at `at` through the store, as the webhook does.
    pub async fn activate(&self, user: &str, at: i64) {
        let session = self
            .app
            .store
            .live_session(&UserId::new(user), at)
            .await
            .expect("read the session")
            .unwrap_or_else(|| panic!("{user} has no live session at {at}"));
        let ttl = self.app.config.active_ttl_seconds;
        let answer = Answer {
            message_id: None,
            sent_at: at,
        };
        let activated = self.app.store.activate(&session, &answer, at, ttl).await;
        assert_eq!(
            activated.expect("activate"),
            Activation::Activated,
            "{user}'s session was activated"
        );
    }

    /// `GET /v1/whatsapp/sandbox/sessions`.
    pub async fn list(&self, key: Option<&str>) -> Reply {
        let req = request(
            Method::GET,
            "/v1/whatsapp/sandbox/sessions",
            key,
            Body::Empty,
        );
        finish(
            "GET",
            "/v1/whatsapp/sandbox/sessions",
            api::list::handle(&self.app, req).await,
        )
    }

    /// `DELETE /v1/whatsapp/sandbox/sessions/{id}`.
    pub async fn revoke(&self, key: Option<&str>, id: &str) -> Reply {
        let path = format!("/v1/whatsapp/sandbox/sessions/{id}");
        let req = request(Method::DELETE, &path, key, Body::Empty)
            .with_path_parameters(HashMap::from([("sessionId".to_owned(), id.to_owned())]));
        finish("DELETE", &path, api::revoke::handle(&self.app, req).await)
    }

    /// The same app, but with a DynamoDB client pointed at a port nobody listens on.
    pub fn app_with_unreachable_dynamodb(&self) -> App {
        let dead = dynamo::client(&nobody_listens(), None);
        App::new(
            self.app.config.clone(),
            Store::new(dead, &self.table),
            None,
            self.clock.clone(),
        )
    }

    /// The same app and table, but with a Graph API client pointed at a port nobody listens on.
    pub fn app_with_unreachable_graph(&self) -> App {
        let mut config = self.app.config.clone();
        config.graph_base_url = nobody_listens();
        let graph = GraphClient::new(&config, Secret::new("t")).expect("http client");
        App::new(
            config,
            self.app.store.clone(),
            Some(graph),
            self.clock.clone(),
        )
    }

    /// Every item in the table, sorted by key, for "exactly as before" comparisons.
    pub async fn snapshot(&self) -> Vec<Item> {
        dynamo::scan_all(self.app.store.client(), &self.table).await
    }

    /// The raw session item of `user` (panics if there is none).
    pub async fn session_item(&self, user: &str) -> Item {
        self.item(&Key::session(&UserId::new(user)))
            .await
            .unwrap_or_else(|| panic!("no session item for {user}"))
    }

    /// The item at `key` as stored (a consistent read), if there is one.
    pub async fn item(&self, key: &Key) -> Option<Item> {
        self.app
            .store
            .client()
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem")
            .item
    }

    /// The activation templates the Graph API stub received, as JSON bodies.
    pub async fn sent_templates(&self) -> Vec<Value> {
        meta::sent_templates(&self.meta).await
    }
}

/// `http://127.0.0.1:<port>` on a port that was free a moment ago.
fn nobody_listens() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port();
    format!("http://127.0.0.1:{port}")
}

/// Asserts an error envelope: `status`, `type` `kind`, `code`, a message, JSON and a request
/// id; returns the body for further checks.
pub fn assert_error(reply: &Reply, status: StatusCode, kind: &str, code: &str) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["type"], kind, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.header("x-request-id").is_some());
    body
}

/// [`assert_error`] of a 400 `invalid_field_value` whose `param` names `param`: the body.
pub fn assert_invalid_field(reply: &Reply, param: &str) -> Value {
    let body = assert_error(
        reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_field_value",
    );
    assert_eq!(body["param"], param, "{body}");
    body
}

/// `POST /v1/whatsapp/sandbox/sessions` handled by `app`.
async fn create_with(app: &App, key: Option<&str>, body: Body) -> Reply {
    let req = request(Method::POST, "/v1/whatsapp/sandbox/sessions", key, body);
    finish(
        "POST",
        "/v1/whatsapp/sandbox/sessions",
        api::create::handle(app, req).await,
    )
}

/// A request as API Gateway would hand it to the function.
pub fn request(method: Method, path: &str, key: Option<&str>, body: Body) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://api.test{path}"))
        .header("content-type", "application/json");
    if let Some(k) = key {
        builder = builder.header("authorization", format!("Bearer {k}"));
    }
    builder.body(body).expect("valid request")
}

/// Reads a handler's response, and records it for the OpenAPI check when asked to.
pub fn finish(method: &str, path: &str, response: Response<Body>) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = match response.into_body() {
        Body::Empty => String::new(),
        Body::Text(t) => t,
        Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    let reply = Reply {
        status,
        headers,
        text,
    };
    record(method, path, &reply);
    reply
}

static RECORD_LOCK: Mutex<()> = Mutex::new(());

/// Appends the response to `$CONTRACT_RECORDINGS` (JSON lines), which `tools/check_openapi.py`
/// validates against `openapi.yaml`.
fn record(method: &str, path: &str, reply: &Reply) {
    let Ok(file) = std::env::var("CONTRACT_RECORDINGS") else {
        return;
    };
    let content_type = reply.header("content-type").unwrap_or("").to_owned();
    let body = serde_json::from_str::<Value>(&reply.text)
        .unwrap_or_else(|_| Value::String(reply.text.clone()));
    // Headers too, so the check holds the declared response headers (X-Request-Id, ...).
    let headers: serde_json::Map<String, Value> = reply
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), Value::from(value.to_str().ok()?))))
        .collect();
    let line = serde_json::json!({
        "method": method, "path": path, "status": reply.status.as_u16(),
        "contentType": content_type, "headers": headers, "body": body,
    });
    let _guard = RECORD_LOCK.lock();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .expect("open recordings file");
    writeln!(f, "{line}").expect("write recording");
}
