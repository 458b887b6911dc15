//! The webhook function: Meta's verification handshake and event deliveries.

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use sandbox::{api, App, Role};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sandbox::telemetry::init();
    let app = Arc::new(App::from_env(Role::Webhook).await.inspect_err(|e| {
        tracing::error!(error = %e, "webhook function failed to start");
    })?);
    lambda_http::run(service_fn(move |req: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Error>(api::webhook::handle(&app, req).await) }
    }))
    .await
}
