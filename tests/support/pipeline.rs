//! The events function's pipeline as most of its tests start it: a user with an active
//! session, one webhook of theirs, the table's stream read as Lambda's event source mapping
//! hands it over, and the deliverer.

use std::time::Duration;

use sandbox::delivery::sweep::{sweep, SweepReport};
use sandbox::delivery::Deliverer;
use sandbox::session::UserId;
use sandbox::store::DeliveryItem;
use serde_json::{json, Value};
use wiremock::MockServer;

use crate::deliveries::Pending;
use crate::stream::TableStream;
use crate::webhooks::{deliverer, hook_url};
use crate::{TestEnv, SPAIN_DIGITS};

/// `u1`'s active session with [`SPAIN_DIGITS`], its one webhook, the stream from then on, and
/// the deliverer that runs them.
pub struct Pipeline {
    /// A test environment whose Graph API stub accepts every send.
    pub env: TestEnv,
    /// `u1`'s active session.
    pub session: Pending,
    /// The id of `u1`'s webhook, for `message.received`.
    pub webhook_id: String,
    /// The table's stream, read from just after the webhook was made.
    pub stream: TableStream,
    /// The events function's deliverer.
    pub deliverer: Deliverer,
}

impl Pipeline {
    /// `u1`'s active session, its webhook for `message.received` at `server`, the stream from
    /// then on, and a deliverer on the retry `schedule` whose attempts are cut off at `timeout`.
    pub async fn start(server: &MockServer, schedule: &str, timeout: Duration) -> Self {
        let env = TestEnv::accepting().await;
        let session = env.active("u1", SPAIN_DIGITS).await;
        let webhook_id = env
            .hook(&session.key, &hook_url(server), &["message.received"])
            .await;
        let stream = TableStream::open(&env).await;
        Self {
            env,
            session,
            webhook_id,
            stream,
            deliverer: deliverer(schedule, timeout),
        }
    }

    /// The phone's `n`th text (each `n` a distinct message), and the stream's new records
    /// handed to the events function: its answer (`batchItemFailures`).
    pub async fn text(&mut self, text: &str, n: u32) -> Value {
        self.env.text_from(SPAIN_DIGITS, text, n).await;
        self.pump().await
    }

    /// The stream's new records handed to the events function: its answer.
    pub async fn pump(&mut self) -> Value {
        self.stream.pump(&self.env, &self.deliverer).await
    }

    /// The sweep at the test clock's now.
    pub async fn sweep(&self) -> SweepReport {
        sweep(&self.env.app, &self.deliverer).await.expect("sweep")
    }

    /// The event id of the newest entry of the user's delivery log.
    pub async fn newest_event_id(&self) -> String {
        self.env.logged(&self.session.key).await[0]["eventId"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// The delivery of `event_id` to the webhook, as stored.
    pub async fn delivery(&self, event_id: &str) -> DeliveryItem {
        self.env
            .app
            .store
            .delivery(&UserId::new("u1"), event_id, &self.webhook_id)
            .await
            .expect("read")
            .expect("the delivery")
    }

    /// The webhook's `isActive` and `failureCount`, as stored.
    pub async fn webhook_state(&self) -> Value {
        let webhooks = self
            .env
            .app
            .store
            .webhooks(&UserId::new("u1"))
            .await
            .expect("webhooks");
        let hook = webhooks
            .iter()
            .find(|h| h.id.as_str() == self.webhook_id)
            .expect("the webhook");
        json!({ "isActive": hook.is_active, "failureCount": hook.failure_count })
    }
}

/// A header of a request a receiver got, as text (empty when absent).
pub fn header(request: &wiremock::Request, name: &str) -> String {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
