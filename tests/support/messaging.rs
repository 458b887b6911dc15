//! Sandbox messaging: sends and conversation pages through the real handlers, and activated
//! sessions to send to.

use std::collections::HashMap;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, RequestExt};
use serde_json::{json, Value};

use super::deliveries::Pending;
use super::{finish, request, Reply, TestEnv, T0};
use sandbox::clock::Clock;

/// The path of both messaging operations.
pub const MESSAGES: &str = "/v1/whatsapp/sandbox/messages";

impl TestEnv {
    /// `POST /v1/whatsapp/sandbox/messages` with a raw body and an optional `Idempotency-Key`.
    pub async fn send_raw(
        &self,
        key: Option<&str>,
        body: &str,
        idempotency: Option<&str>,
    ) -> Reply {
        let mut req = request(Method::POST, MESSAGES, key, Body::Text(body.to_owned()));
        if let Some(k) = idempotency {
            req.headers_mut()
                .insert("idempotency-key", k.parse().expect("header value"));
        }
        finish(
            "POST",
            MESSAGES,
            sandbox::api::send::handle(&self.app, req).await,
        )
    }

    /// Sends `body` as JSON.
    pub async fn send(&self, key: &str, body: &Value) -> Reply {
        self.send_raw(Some(key), &body.to_string(), None).await
    }

    /// Sends a text message.
    pub async fn send_text(&self, key: &str, text: &str) -> Reply {
        self.send(key, &json!({"type": "text", "text": {"body": text}}))
            .await
    }

    /// Sends a text message, expects 200, and returns Meta's message id.
    pub async fn send_text_id(&self, key: &str, text: &str) -> String {
        let reply = self.send_text(key, text).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["message"]["id"].as_str().unwrap().to_owned()
    }

    /// `GET /v1/whatsapp/sandbox/messages` with query parameters.
    pub async fn messages_page(&self, key: Option<&str>, params: &[(&str, &str)]) -> Reply {
        let query: HashMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let req =
            request(Method::GET, MESSAGES, key, Body::Empty).with_query_string_parameters(query);
        finish(
            "GET",
            MESSAGES,
            sandbox::api::messages::handle(&self.app, req).await,
        )
    }

    /// The first page of `key`'s conversation (expects 200).
    pub async fn conversation(&self, key: &str) -> Value {
        let reply = self.messages_page(Some(key), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()
    }

    /// Provisions `user`, creates a session for `digits` and has the phone tap its button
    /// 30 seconds after the clock's now, which activates it and opens the customer-service
    /// window; the clock then stands at the tap.
    pub async fn active(&self, user: &str, digits: &str) -> Pending {
        let pending = self.pending(user, digits).await;
        let mut tap = pending.button_reply(digits);
        tap["timestamp"] = json!((self.clock.now() + 30).to_string());
        tap["id"] = json!(format!("wamid.TAP.{user}.{}", self.clock.now()));
        self.deliver_messages(vec![tap]).await;
        self.clock.advance(30);
        assert_eq!(self.session_of(&pending.key).await["status"], "active");
        pending
    }

    /// The sandbox messages (not activation templates) the Graph API stub received.
    pub async fn sent_messages(&self) -> Vec<Value> {
        self.sent_templates()
            .await
            .into_iter()
            .filter(|b| {
                b["biz_opaque_callback_data"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("msg:"))
            })
            .collect()
    }
}

/// A text message from `from` at `T0 + offset`, Meta's id `wamid.IN<n>`.
pub fn inbound_text(from: &str, body: &str, offset: i64, n: u32) -> Value {
    super::deliveries::text_at(from, body, T0 + offset, n)
}

/// `POST /v1/whatsapp/sandbox/messages` handled by `app` (one of the `app_with_unreachable_*`
/// variants).
pub async fn send_on(app: &sandbox::App, key: &str, body: &str) -> Reply {
    let req = request(
        Method::POST,
        MESSAGES,
        Some(key),
        Body::Text(body.to_owned()),
    );
    finish("POST", MESSAGES, sandbox::api::send::handle(app, req).await)
}
