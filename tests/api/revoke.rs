//! `revokeWhatsAppSandboxSession` (`DELETE /v1/whatsapp/sandbox/sessions/{sessionId}` in
//! `openapi.yaml`).

use e2e::{TestEnv, DAY, NOT_FOUND, SPAIN, T0, UK};
use lambda_http::http::StatusCode;
use sandbox::session::SessionId;
use sandbox::store::ItemKind;
use serde_json::json;

#[tokio::test]
async fn revoke_deletes_own_session() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let id = env.create_id(&key, SPAIN).await;
    let reply = env.revoke(Some(&key), &id).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"success": true}));
    assert_eq!(env.sessions(&key).await, json!([]));
    assert!(
        env.snapshot()
            .await
            .iter()
            .all(|i| !ItemKind::Session.owns(i["pk"].as_s().unwrap())),
        "hard-deleted"
    );
    // A new phone may now be activated.
    assert_eq!(env.create(&key, UK).await.status, StatusCode::OK);
}

#[tokio::test]
async fn revoke_of_foreign_unknown_malformed_or_expired_session_is_the_same_400() {
    let env = TestEnv::accepting().await;
    let alice = env.api_key("alice").await;
    let bob = env.api_key("bob").await;
    let bobs = env.create_id(&bob, UK).await;
    let alices = env.create_id(&alice, SPAIN).await;
    let unknown = SessionId::generate().unwrap();
    let mut bodies = vec![
        env.revoke(Some(&alice), &bobs).await, // another user's
        env.revoke(Some(&alice), unknown.as_str()).await, // unknown
        env.revoke(Some(&alice), "not-a-session-id").await, // malformed
        env.revoke(Some(&alice), "wss_%00..%2F").await, // malformed, odd characters
    ];
    env.clock.advance(DAY);
    bodies.push(env.revoke(Some(&alice), &alices).await); // expired
    for reply in &bodies {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.text, NOT_FOUND, "byte-identical");
    }
    // Bob's session is untouched by Alice's attempt.
    env.clock.set(T0);
    assert_eq!(env.sessions(&bob).await[0]["id"], bobs.as_str());
}
