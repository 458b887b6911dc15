//! The dependencies a handler runs with, built once per container.

use std::sync::Arc;

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use lambda_http::Request;

use crate::auth::{Authenticator, MAX_NEGATIVE_KEYS};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, Role};
use crate::edge::ApiError;
use crate::graph::{GraphClient, Meta};
use crate::session::UserId;
use crate::store::Store;

/// Store, Meta, clock, config and the auth cache: everything a handler needs.
pub struct App {
    /// Configuration read at init.
    pub config: Config,
    /// The DynamoDB store.
    pub store: Store,
    /// Where sends go: the Graph API client, and the virtual phones when `VIRTUAL_PHONES` is
    /// on (only the create and send functions have one).
    pub meta: Option<Meta>,
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
    /// Assembles an app from parts (tests pass their own store, Graph URL and clock); the
    /// Graph client becomes the app's [`Meta`] with the configuration's `VIRTUAL_PHONES`.
    pub fn new(
        config: Config,
        store: Store,
        graph: Option<GraphClient>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let auth = Authenticator::new(config.auth_cache_seconds)
            .with_negative_cache(config.auth_negative_cache_seconds, MAX_NEGATIVE_KEYS);
        let meta = graph.map(|client| Meta::new(client, config.virtual_phones));
        Self {
            config,
            store,
            meta,
            clock,
            auth,
        }
    }

    /// The Graph API client, for apps built from this one (tests).
    pub fn graph_client(&self) -> Option<GraphClient> {
        self.meta.as_ref().map(|m| m.client().clone())
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
        let graph = graph_init(&self.config)?;
        self.meta = graph.map(|client| Meta::new(client, self.config.virtual_phones));
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
/// endpoint from `AWS_ENDPOINT_URL_DYNAMODB` when set (DynamoDB Local), the SDK's own HTTP
/// client over rustls with ring ([`https_client`]; the crypto the Graph client uses too: one
/// stack per binary). Not aws-config's default chain: its profile files, SSO, STS and instance
/// metadata are never used in Lambda, yet would be linked into every binary and probed at init.
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

/// The DynamoDB client's HTTP client: the SDK's own (`aws-smithy-http-client`: hyper, rustls
/// with ring), trusting the platform's roots plus `EXTRA_CA_CERTS`
/// ([`crate::https::sdk_trust_store`]). Everything in the workspace that builds an SDK client
/// passes this one: the SDK's `default-https-client` feature would bring aws-lc, and Cargo
/// unifies features across the workspace when `cargo lambda` builds a function.
pub fn https_client() -> SharedHttpClient {
    https_client_trusting(crate::https::sdk_trust_store())
}

/// [`https_client`] with another trust store (tests trust a test CA alone with it).
pub fn https_client_trusting(trust: TrustStore) -> SharedHttpClient {
    let client =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring));
    match TlsContext::builder().with_trust_store(trust).build() {
        Ok(tls) => client.tls_context(tls).build_https(),
        // Not in the SDK's current code (building a context checks nothing yet): the platform's
        // roots alone, and a line saying the extra certificates are not trusted.
        Err(e) => {
            tracing::warn!(error = %e, "TLS context not built: the SDK's default trust only");
            client.build_https()
        }
    }
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

/// Init: the configuration, `prepare` (create and send: the Graph client), then the DynamoDB
/// client. No connection is opened and no request is made: `make bench` measured a warm-up
/// connection at init (ours, opened without sending a request) against none, and none was as
/// fast in cold total (README, "Benchmark", "Decisions"). The DynamoDB client's trust roots
/// (the platform's) load here: the SDK builds its connector once when the client is built, so
/// that they load at init rather than in the first request. The Graph client's load on its
/// first handshake ([`crate::https::DeferredRoots`]).
fn init<P>(role: Role, prepare: P) -> Result<App, InitError>
where
    P: FnOnce(&Config) -> Result<Option<GraphClient>, InitError>,
{
    let config = Config::from_env(role)?;
    let graph = prepare(&config)?;
    let virtual_phones = config.virtual_phones;
    let mut app = App::from_config(config);
    app.meta = graph.map(|client| Meta::new(client, virtual_phones));
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
