//! `listWhatsAppSandboxSessions` (`GET /v1/whatsapp/sandbox/sessions` in `openapi.yaml`).

use e2e::{TestEnv, SANDBOX_NUMBER, SPAIN, T0, UK};
use lambda_http::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn list_is_empty_array_with_sandbox_number_when_no_session() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let reply = env.list(Some(&key)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"sessions": [], "sandboxNumber": SANDBOX_NUMBER})
    );
}

#[tokio::test]
async fn list_shows_own_pending_and_active_sessions_never_another_users() {
    let env = TestEnv::accepting().await;
    let alice = env.api_key("alice").await;
    let bob = env.api_key("bob").await;
    let a = env.create(&alice, SPAIN).await.json()["session"].clone();
    env.create(&bob, UK).await;
    let list = env.list(Some(&alice)).await.json();
    assert_eq!(list["sessions"], json!([a]));
    env.activate("bob", T0 + 5).await;
    let list = env.list(Some(&bob)).await.json();
    assert_eq!(list["sessions"][0]["status"], "active");
    assert_eq!(list["sessions"][0]["phoneE164"], "447400123456");
}
