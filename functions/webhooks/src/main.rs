//! The webhooks function: configuration, the DynamoDB client and the delivery client (the
//! egress that reaches only public addresses, `sandbox::outbound::EgressClient`) are built once
//! per container, then every invocation runs the library's handler
//! (`sandbox::api::webhooks`), which serves all seven `/v1/webhooks/*` routes. Only this
//! function builds the delivery client.

use std::sync::Arc;

use sandbox::outbound::{DeliverySettings, EgressClient};
use sandbox::{api, Role};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::telemetry::init();
    let egress = DeliverySettings::from_env()
        .map_err(|e| e.to_string())
        .and_then(|settings| {
            EgressClient::new(settings.targets, settings.timeout).map_err(|e| e.to_string())
        })
        .inspect_err(|e| tracing::error!(error = %e, "function failed to start"))?;
    let egress = Arc::new(egress);
    sandbox::run(Role::Webhooks, move |app, req| {
        let egress = Arc::clone(&egress);
        async move { api::webhooks::handle(&app, &egress, req).await }
    })
    .await
}
