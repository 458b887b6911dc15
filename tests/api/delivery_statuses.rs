//! Delivery statuses delivered to `receiveWhatsAppWebhook` and shown as a session's `delivery`
//! by `listWhatsAppSandboxSessions` and `createWhatsAppSandboxSession` (`openapi.yaml`).

use e2e::{TestEnv, SPAIN_DIGITS, T0};
use serde_json::json;

#[tokio::test]
async fn statuses_in_order_are_recorded_and_visible_in_list_and_create() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    for (i, st) in ["sent", "delivered", "read"].iter().enumerate() {
        let t = T0 + 10 + i as i64;
        env.deliver_statuses(vec![session.status(st, SPAIN_DIGITS, t)])
            .await;
        let s = env.session_of(&session.key).await;
        assert_eq!(s["delivery"]["status"], *st);
        assert_eq!(s["delivery"]["updatedAt"], sandbox::session::rfc3339(t));
    }
}

#[tokio::test]
async fn out_of_order_statuses_never_move_backwards() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    env.deliver_statuses(vec![session.status("read", SPAIN_DIGITS, T0 + 12)])
        .await;
    env.deliver_statuses(vec![session.status("delivered", SPAIN_DIGITS, T0 + 11)])
        .await;
    env.deliver_statuses(vec![session.status("sent", SPAIN_DIGITS, T0 + 10)])
        .await;
    let s = env.session_of(&session.key).await;
    assert_eq!(s["delivery"]["status"], "read");
    assert_eq!(
        s["delivery"]["updatedAt"],
        sandbox::session::rfc3339(T0 + 12)
    );
}

#[tokio::test]
async fn failed_status_with_metas_error_is_visible_in_list() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    env.deliver_statuses(vec![session.status("sent", SPAIN_DIGITS, T0 + 5)])
        .await;
    env.deliver_statuses(vec![session.failed_status(SPAIN_DIGITS, T0 + 9)])
        .await;
    let s = env.session_of(&session.key).await;
    assert_eq!(s["status"], "pending");
    assert_eq!(
        s["delivery"],
        json!({"status": "failed", "updatedAt": sandbox::session::rfc3339(T0 + 9),
               "error": {"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                         "details": "Message Undeliverable."}})
    );
    // A refresh sends a new template and starts a fresh delivery report.
    let again = env.create(&session.key, "+34688246216").await.json();
    assert!(again["session"].get("delivery").is_none(), "{again}");
}

#[tokio::test]
async fn status_for_an_older_activation_message_is_not_recorded() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    env.create(&session.key, "+34688246216").await; // refresh: a new message id
    env.deliver_statuses(vec![session.failed_status(SPAIN_DIGITS, T0 + 9)])
        .await;
    assert!(env.session_of(&session.key).await.get("delivery").is_none());
}
