//! The dependencies a handler runs with, built once per container.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::Request;

use crate::auth::{Authenticator, MAX_NEGATIVE_KEYS};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, Role};
use crate::edge::ApiError;
use crate::graph::GraphClient;
use crate::session::UserId;
use crate::store::{Key, Store};

/// Store, Graph client, clock, config and the auth cache: everything a handler needs.
pub struct App {
    /// Configuration read at init.
    pub config: Config,
    /// The DynamoDB store.
    pub store: Store,
    /// The Graph API client (only the create and send functions have one).
    pub graph: Option<GraphClient>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// API-key lookups and their per-container cache.
    pub auth: Authenticator,
}

/// Start-up failure: logged, and the function refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Bad or missing configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client could not be built (the reason in words: holding reqwest's error type
    /// here would link reqwest into every function).
    #[error("could not build the Graph API client: {0}")]
    Http(String),
    /// `prepare` panicked on its thread.
    #[error("the function's own init step panicked")]
    Panicked,
}

impl App {
    /// Assembles an app from parts (tests pass their own store, Graph URL and clock).
    pub fn new(
        config: Config,
        store: Store,
        graph: Option<GraphClient>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let auth = Authenticator::new(config.auth_cache_seconds)
            .with_negative_cache(config.auth_negative_cache_seconds, MAX_NEGATIVE_KEYS);
        Self {
            config,
            store,
            graph,
            clock,
            auth,
        }
    }

    /// What every function needs besides its configuration: one DynamoDB client. Create and
    /// send add their own parts ([`graph_init`]), so the others neither link nor initialize
    /// them; [`run_with`] also opens the DynamoDB connection ([`warm_up`]) during init.
    pub fn from_config(config: Config) -> Self {
        let store = Store::new(dynamodb_client(), config.table_name.clone());
        Self::new(config, store, None, Arc::new(SystemClock))
    }

    /// The extra init of the functions that send to Meta (create, send), on an app built
    /// without it: see [`graph_init`].
    pub fn with_graph(mut self) -> Result<Self, InitError> {
        self.graph = graph_init(&self.config)?;
        Ok(self)
    }

    /// The caller's user id, from the `Authorization` header.
    pub async fn authenticate(&self, req: &Request, now: i64) -> Result<UserId, ApiError> {
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        Ok(self.auth.user_for(&self.store, header, now).await?)
    }
}

/// The DynamoDB client as Lambda runs it: region and credentials from the variables Lambda
/// sets (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), the
/// endpoint from `AWS_ENDPOINT_URL_DYNAMODB` when set (DynamoDB Local), TLS by rustls with
/// ring (the crypto the Graph client uses too: one stack per binary). Not aws-config's
/// default chain: its profile files, SSO, STS and instance metadata are never used in Lambda,
/// yet would be linked into every binary and probed at init.
pub fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .http_client(https_client())
        .region(region.map(aws_sdk_dynamodb::config::Region::new))
        // Bounded DynamoDB requests: a hanging table answers 503 inside the Lambda timeout.
        .timeout_config(crate::store::sdk_timeouts())
        .retry_config(crate::store::sdk_retries())
        .credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    if let Some(url) = var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| var("AWS_ENDPOINT_URL")) {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// The SDK's HTTPS client ([`crate::https`]): HTTP/1.1 on rustls with ring. Everything in the
/// workspace that builds an SDK client passes this one (the SDK's `default-https-client`
/// feature would bring aws-lc and HTTP/2, and Cargo unifies features across the workspace when
/// `cargo lambda` builds a function).
#[cfg(not(feature = "bench-sdk-client"))]
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    crate::https::sdk_client()
}

/// `make bench`'s comparison (feature `bench-sdk-client`): the SDK's own HTTPS client, hyper and
/// rustls with ring, trusting the platform's roots (as [`crate::https::trust_roots`] finds
/// them, `SSL_CERT_FILE` first). Our warm-up header means nothing to it, so the warm-up read is
/// sent to DynamoDB.
#[cfg(feature = "bench-sdk-client")]
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The extra init of the functions that send to Meta (create, send): the Graph API client,
/// before the first request instead of inside it. (libphonenumber's metadata is not loaded
/// here: a calling code's part loads on its first number, `phone`.) [`run_with`] runs it on its
/// own thread while the DynamoDB connection opens, then opens the client's connection to Meta.
pub fn graph_init(config: &Config) -> Result<Option<GraphClient>, InitError> {
    let token = config
        .access_token
        .clone()
        .ok_or(ConfigError::Missing("META_ACCESS_TOKEN"))?;
    let graph = GraphClient::new(config, token).map_err(|e| InitError::Http(e.to_string()))?;
    Ok(Some(graph))
}

/// How long init waits for the warm-up read before giving up on it.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(2);

/// A read of a key that never exists, run during init through the SDK's whole pipeline
/// (endpoint, credentials, signing, serialization) but not sent: its [`crate::https::WARM_UP`]
/// header makes the HTTPS client open the connection the first request will use (TCP, the TLS
/// handshake with the RNG's entropy seeding and the trust roots), keep it, and fail the read with
/// [`crate::https::OpenedAhead`]. Every one-time cost of the first DynamoDB request but the
/// round trip is paid at init's burst CPU, and init waits for no round trip to DynamoDB: on AWS
/// it would be part of every cold start, for nothing. Should the header ever reach DynamoDB
/// (another HTTP client), the read is still harmless: the key is one the function's IAM policy
/// lets it read (`dynamodb:LeadingKeys`), an API-key item for the API functions, an opt-out item
/// for the webhook. A failure only costs that head start, so it is logged and init goes on.
/// Whether the connection was opened.
pub async fn warm_up(client: &aws_sdk_dynamodb::Client, table: &str, role: Role) -> bool {
    if cfg!(feature = "bench-no-warm-up") {
        return false;
    }
    let key = match role {
        Role::Webhook => Key::opt_out("warm-up"),
        _ => Key::api_key("warm-up"),
    };
    // The same client (its HTTP client, so the same connection pool), with the header added.
    let mut config = client.config().to_builder();
    if !cfg!(feature = "bench-real-warm-up") {
        config = config.interceptor(crate::https::OpenAhead);
    }
    let read = aws_sdk_dynamodb::Client::from_conf(config.build())
        .get_item()
        .table_name(table)
        .set_key(Some(key.item()))
        .projection_expression("pk")
        .send();
    match tokio::time::timeout(WARM_UP_TIMEOUT, read).await {
        Err(_) => {
            tracing::warn!("DynamoDB warm-up timed out");
            false
        }
        Ok(Err(e)) if crate::https::opened_ahead(&e) => true,
        // Sent after all (another HTTP client, or the bench's real warm-up): the connection is
        // open too.
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::warn!(
                error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e),
                "DynamoDB warm-up failed; the first request will open the connection"
            );
            false
        }
    }
}

/// A function's whole `main`: JSON logs, the [`App`] built once per container (a missing
/// variable stops the start with a log line naming it), then `handler` for every request.
pub async fn run<H, Fut>(role: Role, handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Arc<App>, Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    // No Graph client: nothing of it (not even opening its connection) is linked in.
    serve(role, |_: &Config| Ok(None), std::future::ready, handler).await
}

/// [`run`] with a function-specific init step (`prepare`) beside the shared one, for the
/// functions that send to Meta: create and send pass [`graph_init`], and init then opens the
/// Graph client's connection ([`GraphClient::open_ahead`]).
pub async fn run_with<P, H, Fut>(
    role: Role,
    prepare: P,
    handler: H,
) -> Result<(), lambda_http::Error>
where
    P: FnOnce(&Config) -> Result<Option<GraphClient>, InitError> + Send + 'static,
    H: Fn(Arc<App>, Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    serve(role, prepare, open_graph_ahead, handler).await
}

/// [`run`] and [`run_with`]: init (with `prepare`, then `open` on the client it built), then
/// the runtime.
async fn serve<P, O, F, H, Fut>(
    role: Role,
    prepare: P,
    open: O,
    handler: H,
) -> Result<(), lambda_http::Error>
where
    P: FnOnce(&Config) -> Result<Option<GraphClient>, InitError> + Send + 'static,
    O: FnOnce(GraphClient) -> F,
    F: std::future::Future<Output = GraphClient>,
    H: Fn(Arc<App>, Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    crate::telemetry::init();
    let app = init(role, prepare, open).await.inspect_err(|e| {
        tracing::error!(error = %e, role = ?role, "function failed to start");
    })?;
    let app = Arc::new(app);
    lambda_http::run(lambda_http::service_fn(move |req: Request| {
        let response = handler(Arc::clone(&app), req);
        async move { Ok::<_, lambda_http::Error>(Reply(response.await)) }
    }))
    .await
}

/// A handler's response, handed to the runtime as it is. lambda_http's own `IntoResponse` for
/// a `Response` re-decodes every text body by its `charset`, which links encoding_rs (about
/// 150 KB of code and tables per binary: README, "Benchmark"); our bodies are built as UTF-8
/// text already (`edge`).
struct Reply(lambda_http::Response<lambda_http::Body>);

impl lambda_http::IntoResponse for Reply {
    fn into_response(
        self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send>,
    > {
        Box::pin(std::future::ready(self.0))
    }
}

/// Init's two halves side by side. A thread of its own loads the trust roots (a platform
/// bundle: about 1.5 ms) and then runs `prepare` (create, send: the Graph client), while the
/// runtime's thread (the functions run tokio's current-thread runtime: one request at a time
/// needs no worker pool, whose threads cost every cold start) builds the DynamoDB client and
/// opens its connection ([`warm_up`]), whose handshake needs the roots only once the server's
/// certificate arrives ([`crate::https::DeferredRoots`]). As soon as `prepare` has built a
/// Graph client, the runtime's thread runs `open` on it (create and send: open its connection to
/// Meta, [`GraphClient::open_ahead`]), beside DynamoDB's warm-up. Init takes the longest of
/// these, not their sum.
async fn init<P, O, F>(role: Role, prepare: P, open: O) -> Result<App, InitError>
where
    P: FnOnce(&Config) -> Result<Option<GraphClient>, InitError> + Send + 'static,
    O: FnOnce(GraphClient) -> F,
    F: std::future::Future<Output = GraphClient>,
{
    one_heap();
    let config = Config::from_env(role)?;
    let for_prepare = config.clone();
    let (prepared, graph) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || {
        // First: the warm-up's handshake waits for them when the server's certificate arrives.
        crate::https::preload_trust_roots();
        let _ = prepared.send(prepare(&for_prepare));
    });
    let mut app = App::from_config(config);
    let graph = async {
        // Dropped unsent: `prepare` panicked.
        Ok::<_, InitError>(match graph.await.map_err(|_| InitError::Panicked)?? {
            Some(graph) => Some(open(graph).await),
            None => None,
        })
    };
    // A failed warm-up is logged; the first request opens the connection instead.
    let (_, graph) = tokio::join!(
        warm_up(app.store.client(), &app.config.table_name, role),
        graph
    );
    app.graph = graph?;
    // It has sent its result: this only reaps the thread.
    let _ = thread.join();
    Ok(app)
}

/// [`GraphClient::open_ahead`] within the warm-up's time limit; a failure is logged, and the
/// first send opens the connection instead. Hands the client back for the [`App`].
async fn open_graph_ahead(graph: GraphClient) -> GraphClient {
    if cfg!(feature = "bench-no-graph-ahead") {
        return graph;
    }
    match tokio::time::timeout(WARM_UP_TIMEOUT, graph.open_ahead()).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("Graph API connection could not be opened at init"),
        Err(_) => tracing::warn!("Graph API connection timed out at init"),
    }
    graph
}

/// Every thread allocates from glibc's main heap. By default a thread's first allocation sets
/// up an arena of its own, which made a CPU-bound load on init's second thread (libphonenumber's
/// whole metadata, when init had it) a fifth slower;
/// a function handles one request at a time, so there is no allocation contention to spread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_heap() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before this process starts
    // any thread of its own (the runtime is single-threaded), and a failure (0) leaves glibc's
    // default, which is only slower.
    let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_heap() {}

#[cfg(test)]
mod tests {
    use lambda_http::{Body, IntoResponse, Response};

    use super::Reply;

    #[tokio::test]
    async fn a_reply_reaches_the_runtime_as_the_handler_built_it() {
        let text = r#"{"name":"José"}"#;
        let mut response = Response::new(Body::Text(text.to_owned()));
        *response.status_mut() = lambda_http::http::StatusCode::CREATED;
        response.headers_mut().insert(
            "content-type",
            lambda_http::http::HeaderValue::from_static("application/json; charset=utf-8"),
        );
        let handed = Reply(response).into_response().await;
        assert_eq!(handed.status(), 201);
        assert_eq!(
            handed.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        assert!(matches!(handed.body(), Body::Text(t) if t == text));
    }
}
