//! The virtual phones in tests: the phone function's stream handler fed with the test table's
//! stream, as Lambda's event source mapping hands records over, and what a user of a virtual
//! phone sees.

use std::collections::HashMap;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, RequestExt};
use sandbox::virtual_phones::{handle_batch, PlayReport};
use serde_json::Value;

use super::stream::TableStream;
use super::{finish, request, Reply, TestEnv};

/// A virtual phone that taps Activate on delivery (line 50), as the README's first screen uses.
pub const TAPS: &str = "+1 201 555 0150";
/// [`TAPS`] as E.164 digits.
pub const TAPS_DIGITS: &str = "12015550150";
/// A virtual phone that answers only when told (line 00).
pub const REACHABLE: &str = "+1 201 555 0100";
/// [`REACHABLE`] as E.164 digits.
pub const REACHABLE_DIGITS: &str = "12015550100";

/// The virtual phones of one test: the table's stream, handed to the phone function's stream
/// handler from where [`Phones::open`] found it.
pub struct Phones {
    stream: TableStream,
}

impl Phones {
    /// The phones, playing what is written from now on.
    pub async fn open(env: &TestEnv) -> Self {
        Self {
            stream: TableStream::open(env).await,
        }
    }

    /// The records written since the last call, as the batch Lambda hands the phone function.
    pub fn next_batch(&mut self) -> Value {
        self.stream.new_batch()
    }

    /// Hands every record written since the last call to the phone function's stream handler,
    /// as one batch: what it did. (The phone's own writes cue nothing, so one call plays
    /// everything the sends before it cued.)
    pub async fn play(&mut self, env: &TestEnv) -> PlayReport {
        let batch = self.next_batch();
        handle_batch(&env.app, &batch).await
    }
}

impl TestEnv {
    /// Provisions `user` and creates a session for the virtual phone `phone` (expects 200):
    /// the user's key and the session id.
    pub async fn virtual_session(&self, user: &str, phone: &str) -> (String, String) {
        let key = self.api_key(user).await;
        let id = self.create_id(&key, phone).await;
        (key, id)
    }

    /// `POST /v1/whatsapp/sandbox/sessions/{session}/reply` with a raw body.
    pub async fn reply_raw(&self, key: Option<&str>, session: &str, body: Body) -> Reply {
        let path = format!("/v1/whatsapp/sandbox/sessions/{session}/reply");
        let req = request(Method::POST, &path, key, body).with_path_parameters(HashMap::from([(
            "sessionId".to_owned(),
            session.to_owned(),
        )]));
        finish(
            "POST",
            &path,
            sandbox::api::reply::handle(&self.app, req).await,
        )
    }

    /// `POST /v1/whatsapp/sandbox/sessions/{session}/reply` with `body`.
    pub async fn reply(&self, key: &str, session: &str, body: &Value) -> Reply {
        self.reply_raw(Some(key), session, Body::Text(body.to_string()))
            .await
    }

    /// Asserts that the Graph API stand-in received nothing at all.
    pub async fn assert_graph_untouched(&self) {
        let received = self.meta.received_requests().await.unwrap_or_default();
        assert!(
            received.is_empty(),
            "the Graph API stand-in received {} request(s): {:?}",
            received.len(),
            received
                .iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect::<Vec<_>>()
        );
    }

    /// The messages of `key`'s conversation, newest first (the first page).
    pub async fn conversation_messages(&self, key: &str) -> Vec<Value> {
        let page = self.messages_page(Some(key), &[]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        page.json()["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}
