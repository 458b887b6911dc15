//! Concurrent `createWhatsAppSandboxSession` calls for one user (`openapi.yaml`: one live
//! session per user): one session, one send.

use e2e::{TestEnv, SPAIN};
use futures::future::join_all;
use lambda_http::http::StatusCode;
use sandbox::store::ItemKind;

#[tokio::test]
async fn twenty_concurrent_creates_for_different_phones_leave_one_session_and_one_send() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let phones: Vec<String> = (0..20)
        .map(|i| format!("+34 688 246 {:03}", 200 + i))
        .collect();
    let replies = join_all(phones.iter().map(|p| env.create(&key, p))).await;
    let ok: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 1, "exactly one create wins");
    assert!(replies
        .iter()
        .filter(|r| r.status != StatusCode::OK)
        .all(|r| r.status == StatusCode::BAD_REQUEST && r.json()["code"] == "invalid_field_value"));
    assert_eq!(
        env.sent_templates().await.len(),
        1,
        "exactly one template sent"
    );
    let list = env.list(Some(&key)).await.json();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(list["sessions"][0]["id"], ok[0].json()["session"]["id"]);
}

#[tokio::test]
async fn twenty_concurrent_creates_for_the_same_phone_leave_one_session() {
    // Caps high enough for every refresh to send: this is about the one session (the caps
    // under concurrency are in `limits`).
    let env = TestEnv::accepting_with_limits(100, 100).await;
    let key = env.api_key("u1").await;
    let replies = join_all((0..20).map(|_| env.create(&key, SPAIN))).await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::OK),
        "{replies:?}"
    );
    let ids: std::collections::HashSet<_> = replies
        .iter()
        .map(|r| r.json()["session"]["id"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "every caller sees the same session");
    let list = env.list(Some(&key)).await.json();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    let sessions = env
        .snapshot()
        .await
        .into_iter()
        .filter(|i| ItemKind::Session.owns(i["pk"].as_s().unwrap()))
        .count();
    assert_eq!(sessions, 1);
}
