//! API-key authentication on every session operation (`createWhatsAppSandboxSession`,
//! `listWhatsAppSandboxSessions`, `revokeWhatsAppSandboxSession` in `openapi.yaml`: the
//! `bearerAuth` scheme and its 401) and the warm container's auth cache (README, "Configuration").

use e2e::{TestEnv, SPAIN};
use lambda_http::http::{Method, StatusCode};
use lambda_http::Body;
use serde_json::json;

const UNAUTHORIZED: &str =
    r#"{"error":"Unauthorized","type":"authentication_error","code":"unauthorized"}"#;

#[tokio::test]
async fn missing_malformed_unknown_or_disabled_key_is_401_on_every_session_endpoint() {
    let env = TestEnv::accepting().await;
    let disabled = env.key_with_status("u-disabled", "disabled").await;
    let body = json!({"phone": SPAIN}).to_string();
    for key in [None, Some("not-a-real-key"), Some(disabled.as_str())] {
        for reply in [
            env.create_raw(key, body.clone()).await,
            env.list(key).await,
            env.revoke(key, "wss_3kTMd9Xr7QeZp1bN8vYc2a").await,
        ] {
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            assert_eq!(reply.text, UNAUTHORIZED);
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        }
    }
    // Wrong scheme, and a scheme in another case that must still work.
    let key = env.api_key("u1").await;
    let list_with = |authorization: String| {
        let mut req = e2e::request(
            Method::GET,
            "/v1/whatsapp/sandbox/sessions",
            None,
            Body::Empty,
        );
        req.headers_mut()
            .insert("authorization", authorization.parse().unwrap());
        sandbox::api::list::handle(&env.app, req)
    };
    let basic = list_with(format!("Basic {key}")).await;
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let mixed_case = list_with(format!("bEaReR {key}")).await;
    assert_eq!(mixed_case.status(), StatusCode::OK);
    assert!(env.sent_templates().await.is_empty());
}

#[tokio::test]
async fn warm_container_does_no_auth_read_and_disabled_key_stops_within_cache_time() {
    let env = TestEnv::with_auth_cache(60).await;
    let key = env.api_key("u1").await;
    env.list(Some(&key)).await;
    assert_eq!(
        env.counter.take(),
        ["GetItem", "GetItem"],
        "cold: key + session"
    );
    env.list(Some(&key)).await;
    assert_eq!(env.counter.operations(), ["GetItem"], "warm: session only");

    // Disable the key: it keeps working until the cache entry is 60 s old, then 401.
    env.disable_key(&key).await;
    env.clock.advance(59);
    assert_eq!(env.list(Some(&key)).await.status, StatusCode::OK);
    env.clock.advance(1);
    assert_eq!(env.list(Some(&key)).await.status, StatusCode::UNAUTHORIZED);
}
