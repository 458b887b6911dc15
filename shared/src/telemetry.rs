//! Structured JSON logs through `tracing`, set up once per container.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// The levels logged unless `RUST_LOG` says otherwise: ours at info, the SDK's and hyper's
/// chatter only from warn up.
const DEFAULT_LEVELS: &str =
    "info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_dynamodb=warn,hyper=warn";

/// JSON lines on stdout (CloudWatch's JSON log format), span fields such as the request id
/// in every line. `RUST_LOG` overrides the default levels, in the same `target=level` list
/// form (a level per target prefix; no regular expressions, which would add a regex engine
/// to every binary: README, "Benchmark").
pub fn init() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}

/// The subscriber [`init`] installs, writing to `writer`.
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = levels(std::env::var("RUST_LOG").ok().as_deref());
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer)
        .finish()
        .with(filter)
}

/// The filter for a `RUST_LOG` value; the defaults when it is unset or does not parse.
fn levels(rust_log: Option<&str>) -> Targets {
    rust_log
        .and_then(|v| v.parse().ok())
        .or_else(|| DEFAULT_LEVELS.parse().ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use tracing::Level;

    use lambda_http::{Body, Request};
    use serde_json::Value;

    use crate::edge::{serve, ApiError};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(buffer: &Buffer) -> Vec<Value> {
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
            .collect()
    }

    async fn one_request(status_error: Option<ApiError>) -> Vec<Value> {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let _guard = tracing::subscriber::set_default(super::subscriber(move || writer.clone()));
        let req: Request = lambda_http::http::Request::builder()
            .uri("/v1/whatsapp/sandbox/sessions")
            .header("x-request-id", "req-42")
            .body(Body::Empty)
            .unwrap();
        serve(req, "GET /v1/whatsapp/sandbox/sessions", |_| async move {
            tracing::info!(phone = %crate::phone::mask_digits("34688246216"), "inside");
            match status_error {
                Some(e) => Err(e),
                None => Ok(crate::edge::success()),
            }
        })
        .await;
        lines(&buffer)
    }

    #[test]
    fn rust_log_overrides_the_default_levels() {
        let defaults = super::levels(None);
        assert!(defaults.would_enable("sandbox::api", &Level::INFO));
        assert!(!defaults.would_enable("aws_smithy_runtime::client", &Level::INFO));
        assert!(defaults.would_enable("aws_smithy_runtime::client", &Level::WARN));

        let debug = super::levels(Some("debug,hyper=error"));
        assert!(debug.would_enable("sandbox::api", &Level::DEBUG));
        assert!(!debug.would_enable("hyper::proto", &Level::WARN));

        // A value that does not parse keeps the defaults rather than silencing the logs.
        let garbage = super::levels(Some("sandbox=[loud]"));
        assert!(garbage.would_enable("sandbox::api", &Level::INFO));
        assert!(!garbage.would_enable("hyper::proto", &Level::INFO));
    }

    #[tokio::test]
    async fn one_json_line_per_request_with_id_route_status_and_latency() {
        for (error, status) in [
            (None, 200),
            (Some(ApiError::Unauthorized), 401),
            (Some(ApiError::ServiceUnavailable), 503),
        ] {
            let lines = one_request(error).await;
            let summary: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
            assert_eq!(summary.len(), 1, "{lines:?}");
            let line = summary[0];
            assert_eq!(line["status"], status);
            assert!(line["latency_ms"].as_f64().is_some(), "{line}");
            assert_eq!(line["span"]["request_id"], "req-42");
            assert_eq!(line["span"]["route"], "GET /v1/whatsapp/sandbox/sessions");
            // Every line of the request carries its id; phones only masked.
            for l in &lines {
                assert_eq!(l["span"]["request_id"], "req-42", "{l}");
                assert!(!l.to_string().contains("34688246216"), "{l}");
            }
        }
    }
}
