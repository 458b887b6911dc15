//! Structured JSON logs through `tracing`, set up once per container.

use tracing_subscriber::EnvFilter;

/// JSON lines on stdout (CloudWatch's JSON log format), span fields such as the request id
/// flattened into every line. `RUST_LOG` overrides the default level.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_dynamodb=warn,hyper=warn",
        )
    });
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}
