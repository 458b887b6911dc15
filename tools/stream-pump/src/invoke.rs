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
        if !(200..300).contains(&answer.status) {
            return Err(format!("answered {}: {short}", answer.status));
        }
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| format!("answered {short:?}, not JSON"))?
        };
        // Lambda answers a failed invocation with 200, the error as the payload and this header.
        let flagged = answer.header("x-amz-function-error").is_some();
        if flagged || body.get("errorType").is_some() || body.get("errorMessage").is_some() {
            return Err(format!(
                "{}: {}",
                body["errorType"].as_str().unwrap_or("error"),
                body["errorMessage"].as_str().unwrap_or(&short)
            ));
        }
        Ok(body)
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
