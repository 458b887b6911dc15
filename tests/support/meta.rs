//! The Graph API stub: a `wiremock` server that answers template sends like Meta.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::PHONE_NUMBER_ID;

/// The path sends go to.
pub fn messages_path() -> String {
    format!("/v26.0/{PHONE_NUMBER_ID}/messages")
}

/// Accepts every send with a fresh `wamid`, reporting `wa_id` as the digits sent to, unless
/// `wa_id` overrides it (Meta rewrites some Brazilian and Mexican numbers).
pub struct Accepts {
    next: AtomicUsize,
    wa_id: Option<String>,
    delay: Option<Duration>,
}

impl Respond for Accepts {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        let wa_id = self
            .wa_id
            .clone()
            .unwrap_or_else(|| to.trim_start_matches('+').to_owned());
        let template = ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": to, "wa_id": wa_id }],
            "messages": [{ "id": format!("wamid.TEST{n:06}"), "message_status": "accepted" }],
        }));
        match self.delay {
            Some(d) => template.set_delay(d),
            None => template,
        }
    }
}

/// Meta accepts every template send.
pub async fn accept(server: &MockServer) {
    accept_with(server, None, None).await;
}

/// Meta accepts every template send, reporting `wa_id` and answering after `delay`.
pub async fn accept_with(server: &MockServer, wa_id: Option<&str>, delay: Option<Duration>) {
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(header("authorization", "Bearer test-token"))
        .respond_with(Accepts {
            next: AtomicUsize::new(0),
            wa_id: wa_id.map(str::to_owned),
            delay,
        })
        .mount(server)
        .await;
}

/// Meta answers the first send with `first` (a slow answer, an error), and accepts every
/// later one at once.
pub async fn answer_once_then_accept(server: &MockServer, first: ResponseTemplate) {
    Mock::given(method("POST"))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    accept(server).await;
}

/// Meta answers every send with `status` and `body`.
pub async fn answer(server: &MockServer, status: u16, body: Value) {
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
}

/// From now on Meta refuses every send with a 400 and its error `code` (earlier mocks and
/// received requests are forgotten).
pub async fn start_refusing(server: &MockServer, code: i64, message: &str) {
    server.reset().await;
    answer(server, 400, error_body(code, message)).await;
}

/// Meta answers every send with `status` and a raw text body.
pub async fn answer_raw(server: &MockServer, status: u16, body: &str) {
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(server)
        .await;
}

/// The bodies of every send received so far.
pub async fn sent_templates(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == messages_path())
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

/// The quick-reply payload of a sent template.
pub fn payload_of(template: &Value) -> String {
    template["template"]["components"][0]["parameters"][0]["payload"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A Meta error envelope.
pub fn error_body(code: i64, message: &str) -> Value {
    json!({ "error": {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "error_data": { "messaging_product": "whatsapp", "details": "details from Meta" },
        "fbtrace_id": "AbC1dEfGhIjK2lMnOpQrStU"
    }})
}
