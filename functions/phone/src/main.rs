//! The phone function: the table's stream (an event source mapping filtered to the records of
//! accepted sends) invokes it, and the virtual phones play: each record's deliveries are
//! signed and handed to the webhook in process. Configuration and the DynamoDB client are
//! built once per container; every invocation runs the library's handler
//! (`sandbox::virtual_phones::handle`).

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use sandbox::{App, Config, Role};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    sandbox::telemetry::init();
    let config = Config::from_env(Role::Phone)
        .inspect_err(|e| tracing::error!(error = %e, "function failed to start"))?;
    let app = Arc::new(App::from_config(config));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move {
            let answer =
                sandbox::virtual_phones::handle(&app, &event.context.request_id, &event.payload)
                    .await;
            Ok::<_, lambda_runtime::Error>(answer)
        }
    }))
    .await
}
