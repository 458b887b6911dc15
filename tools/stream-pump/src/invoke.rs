//! A function behind `cargo lambda watch`, invoked through Lambda's Invoke API path
//! (`POST /2015-03-31/functions/<name>/invocations`), and the scheduled event EventBridge sends.

use std::time::Duration;

use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::http;

/// A function to invoke.
#[derive(Debug, Clone)]
pub struct Function {
    address: String,
    path: String,
    timeout: Duration,
}

impl Function {
    /// Function `name` behind `cargo lambda watch` at `address` (`127.0.0.1:9000`). `timeout`
    /// bounds the wait for its answer: a first invocation may wait for the function to start.
    pub fn new(address: &str, name: &str, timeout: Duration) -> Self {
        Self {
            address: address.to_owned(),
            path: format!("/2015-03-31/functions/{name}/invocations"),
            timeout,
        }
    }

    /// Where it is invoked, for messages.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.address, self.path)
    }

    /// Invokes it with `payload`; its answer, or why there is none (the function failed, or
    /// could not be reached).
    pub fn invoke(&self, payload: &Value) -> Result<Value, String> {
        let answer = http::post(
            &self.address,
            &self.path,
            &[("Content-Type", "application/json")],
            payload.to_string().as_bytes(),
            self.timeout,
        )
        .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&answer.body);
        let short: String = text.chars().take(300).collect();
        let body: Option<Value> = if text.trim().is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_str(&text).ok()
        };
        // Lambda answers a failed invocation with 200, the error as the payload and
        // X-Amz-Function-Error; cargo lambda watch with a 500 and the same payload.
        let error = body
            .as_ref()
            .filter(|b| b.get("errorType").is_some() || b.get("errorMessage").is_some());
        if let Some(error) = error {
            return Err(format!(
                "{}: {}",
                error["errorType"].as_str().unwrap_or("error"),
                error["errorMessage"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_end()
            ));
        }
        let flagged = answer.header("x-amz-function-error").is_some();
        match body {
            Some(body) if (200..300).contains(&answer.status) && !flagged => Ok(body),
            _ => Err(format!("answered {}: {short}", answer.status)),
        }
    }
}

/// EventBridge's event for a scheduled rule (`rate(1 minute)` in template.yaml); `n` numbers
/// it (EventBridge gives each a UUID).
pub fn scheduled_event(now: OffsetDateTime, n: u64) -> Value {
    let time = now
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default();
    json!({
        "version": "0",
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/dev-events-sweep"],
        "detail": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Invokes a function whose endpoint answers `raw` once; also the request it got.
    fn invoke_answered(raw: &'static str) -> (Result<Value, String>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = vec![0; 4096];
            let n = socket.read(&mut request).unwrap();
            socket.write_all(raw.as_bytes()).unwrap();
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        let function = Function::new(&address, "events", Duration::from_secs(5));
        let result = function.invoke(&json!({ "Records": [] }));
        (result, server.join().unwrap())
    }

    #[test]
    fn an_answer_is_the_functions_result_and_an_error_says_why() {
        let (ok, request) = invoke_answered(
            "HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n{\"batchItemFailures\":[]}",
        );
        assert_eq!(ok, Ok(json!({ "batchItemFailures": [] })));
        assert!(request.starts_with("POST /2015-03-31/functions/events/invocations HTTP/1.1"));
        assert!(request.ends_with(r#"{"Records":[]}"#), "{request}");

        // cargo lambda watch's answer to a function that failed.
        let (failed, _) = invoke_answered(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 46\r\n\r\n\
             {\"errorType\":\"Boom\",\"errorMessage\":\"no table\"}",
        );
        assert_eq!(failed, Err("Boom: no table".into()));
        // Lambda's.
        let (failed, _) = invoke_answered(
            "HTTP/1.1 200 OK\r\nX-Amz-Function-Error: Unhandled\r\nContent-Length: 2\r\n\r\n{}",
        );
        assert_eq!(failed, Err("answered 200: {}".into()));
        let (missing, _) =
            invoke_answered("HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\nmissing");
        assert_eq!(missing, Err("answered 404: missing".into()));
    }

    #[test]
    fn the_scheduled_event_is_eventbridges_shape() {
        let at = OffsetDateTime::from_unix_timestamp(1_795_529_722).unwrap();
        let event = scheduled_event(at, 7);
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["source"], "aws.events");
        assert_eq!(event["time"], "2026-11-24T14:15:22Z");
        assert_eq!(event["id"], "00000000-0000-4000-8000-000000000007");
        assert_eq!(event["detail"], json!({}));
    }
}
