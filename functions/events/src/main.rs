//! The events function: the table's stream (through an event source mapping with a filter)
//! and a schedule every minute invoke it. Configuration, the DynamoDB client and the delivery
//! client (`sandbox::outbound::EgressClient`, the egress that reaches only public addresses)
//! are built once per container; every invocation runs the library's handler
//! (`sandbox::delivery::handle`).

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use sandbox::delivery::Deliverer;
use sandbox::outbound::{DeliverySettings, EgressClient};
use sandbox::{App, Config, Role};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    sandbox::telemetry::init();
    let started =
        init().inspect_err(|e| tracing::error!(error = %e, "function failed to start"))?;
    let (app, deliverer) = (Arc::new(started.0), Arc::new(started.1));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (app, deliverer) = (Arc::clone(&app), Arc::clone(&deliverer));
        async move {
            let answer = sandbox::delivery::handle(
                &app,
                &deliverer,
                &event.context.request_id,
                &event.payload,
            )
            .await;
            Ok::<_, lambda_runtime::Error>(answer)
        }
    }))
    .await
}

/// The app and the deliverer, from the environment.
fn init() -> Result<(App, Deliverer), String> {
    let config = Config::from_env(Role::Events).map_err(|e| e.to_string())?;
    let settings = DeliverySettings::from_env().map_err(|e| e.to_string())?;
    let egress =
        EgressClient::new(settings.targets, settings.timeout).map_err(|e| e.to_string())?;
    Ok((App::from_config(config), Deliverer::new(egress, settings)))
}
