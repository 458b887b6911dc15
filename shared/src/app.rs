//! The dependencies a handler runs with, built once per container.

use std::sync::Arc;

use lambda_http::Request;

use crate::auth::{Authenticator, MAX_NEGATIVE_KEYS};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, Role};
use crate::edge::ApiError;
use crate::graph::GraphClient;
use crate::session::UserId;
use crate::store::Store;

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
    /// them.
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
/// rustls with ring, trusting the platform's roots (rustls-native-certs: `SSL_CERT_FILE`, else
/// the platform's bundle), as it does when nothing else is configured.
#[cfg(feature = "bench-sdk-client")]
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The extra init of the functions that send to Meta (create, send): the Graph API client,
/// before the first request instead of inside it. (libphonenumber's metadata is not loaded
/// here: a calling code's part loads on its first number, `phone`.)
pub fn graph_init(config: &Config) -> Result<Option<GraphClient>, InitError> {
    let token = config
        .access_token
        .clone()
        .ok_or(ConfigError::Missing("META_ACCESS_TOKEN"))?;
    let graph = GraphClient::new(config, token).map_err(|e| InitError::Http(e.to_string()))?;
    Ok(Some(graph))
}

/// A function's whole `main`: JSON logs, the [`App`] built once per container (a missing
/// variable stops the start with a log line naming it), then `handler` for every request.
pub async fn run<H, Fut>(role: Role, handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Arc<App>, Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    // No Graph client: nothing of it is linked in.
    run_with(role, |_: &Config| Ok(None), handler).await
}

/// [`run`] with a function-specific init step (`prepare`) after the shared one: create and send
/// pass [`graph_init`].
pub async fn run_with<P, H, Fut>(
    role: Role,
    prepare: P,
    handler: H,
) -> Result<(), lambda_http::Error>
where
    P: FnOnce(&Config) -> Result<Option<GraphClient>, InitError>,
    H: Fn(Arc<App>, Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    crate::telemetry::init();
    let app = init(role, prepare).inspect_err(|e| {
        tracing::error!(error = %e, role = ?role, "function failed to start");
    })?;
    let app = Arc::new(app);
    serve_requests(move |req| handler(Arc::clone(&app), req)).await
}

/// The whole `main` of a function that needs no [`App`] (the console, which serves only the
/// files embedded in it): JSON logs, then `handler` for every request. No configuration is
/// read and no DynamoDB client is built.
pub async fn run_plain<H, Fut>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    crate::telemetry::init();
    serve_requests(handler).await
}

/// Runs `handler` for every request the runtime hands over, its responses as they are
/// ([`Reply`]).
async fn serve_requests<H, Fut>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    lambda_http::run(lambda_http::service_fn(move |req: Request| {
        let response = handler(req);
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

/// Init: the configuration, the DynamoDB client, then `prepare` (create and send: the Graph
/// client). No connection is opened and no request is made: `make bench` measured a warm-up
/// connection at init (ours, opened without sending a request) against none, and none was as
/// fast in cold total (README, "Benchmark", "Decisions"). The trust roots load on the first
/// handshake ([`crate::https::DeferredRoots`]).
fn init<P>(role: Role, prepare: P) -> Result<App, InitError>
where
    P: FnOnce(&Config) -> Result<Option<GraphClient>, InitError>,
{
    let config = Config::from_env(role)?;
    let graph = prepare(&config)?;
    let mut app = App::from_config(config);
    app.graph = graph;
    Ok(app)
}

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
