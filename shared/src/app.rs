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
    /// The HTTP client could not be built.
    #[error("could not build the Graph API client: {0}")]
    Http(#[from] reqwest::Error),
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

    /// Builds everything from the environment: one DynamoDB client and, for create, one HTTP
    /// client, reused by every invocation of the container.
    pub async fn from_env(role: Role) -> Result<Self, InitError> {
        let config = Config::from_env(role)?;
        // Bounded DynamoDB requests: a hanging table answers 503 inside the Lambda timeout.
        let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(crate::store::sdk_timeouts())
            .retry_config(crate::store::sdk_retries())
            .load()
            .await;
        let store = Store::new(
            aws_sdk_dynamodb::Client::new(&sdk_config),
            config.table_name.clone(),
        );
        // Only the functions that send to Meta build an HTTP client.
        let graph = match (role, &config.access_token) {
            (Role::Create | Role::Send, Some(token)) => {
                Some(GraphClient::new(&config, token.clone())?)
            }
            _ => None,
        };
        if matches!(role, Role::Create | Role::Send) {
            // Only create and send parse phone numbers (send: its optional `to`): load
            // libphonenumber's metadata during init, not inside the first request.
            let _ = crate::phone::PhoneE164::parse("+34688246216");
        }
        Ok(Self::new(config, store, graph, Arc::new(SystemClock)))
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

/// A function's whole `main`: JSON logs, the [`App`] built once per container (a missing
/// variable stops the start with a log line naming it), then `handler` for every request.
pub async fn run<H, Fut>(role: Role, handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Arc<App>, Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    crate::telemetry::init();
    let app = Arc::new(App::from_env(role).await.inspect_err(|e| {
        tracing::error!(error = %e, role = ?role, "function failed to start");
    })?);
    lambda_http::run(lambda_http::service_fn(move |req: Request| {
        let response = handler(Arc::clone(&app), req);
        async move { Ok::<_, lambda_http::Error>(response.await) }
    }))
    .await
}
