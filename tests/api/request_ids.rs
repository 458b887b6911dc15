//! The `X-Request-Id` every answer carries (`openapi.yaml`, the `X-Request-Id` header of each
//! operation's responses).

use e2e::TestEnv;
use lambda_http::http::Method;
use lambda_http::Body;

#[tokio::test]
async fn valid_incoming_request_id_is_reused_and_invalid_one_replaced() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let call = |id: Option<String>| {
        let mut req = e2e::request(
            Method::GET,
            "/v1/whatsapp/sandbox/sessions",
            Some(&key),
            Body::Empty,
        );
        if let Some(id) = id {
            req.headers_mut()
                .insert("x-request-id", id.parse().unwrap());
        }
        req
    };
    let reply = e2e::finish(
        "GET",
        "/v1/whatsapp/sandbox/sessions",
        sandbox::api::list::handle(&env.app, call(Some("abc-123_X.y".into()))).await,
    );
    assert_eq!(reply.header("x-request-id"), Some("abc-123_X.y"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    for bad in [
        "has space".to_owned(),
        "x".repeat(129),
        "semi;colon".to_owned(),
    ] {
        let reply = e2e::finish(
            "GET",
            "/v1/whatsapp/sandbox/sessions",
            sandbox::api::list::handle(&env.app, call(Some(bad.clone()))).await,
        );
        let id = reply.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        assert!(sandbox::edge::is_valid_request_id(id), "{id}");
    }
    // Errors carry it too.
    let reply = env.list(None).await;
    assert!(reply.header("x-request-id").is_some());
}
