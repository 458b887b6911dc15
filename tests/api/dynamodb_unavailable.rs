//! Every operation when DynamoDB cannot be reached or hangs (`openapi.yaml`: the 503
//! `service_unavailable` response of the session operations and of `receiveWhatsAppWebhook`;
//! README, "Timeouts").

use std::time::{Duration, Instant};

use e2e::deliveries::{envelope, sign, text_reply};
use e2e::{assert_error, TestEnv, SPAIN, SPAIN_DIGITS};
use lambda_http::http::{Method, StatusCode};
use lambda_http::Body;
use sandbox::store::Store;
use sandbox::App;
use serde_json::json;

#[tokio::test]
async fn dynamodb_unavailable_is_503_service_unavailable_without_aws_details() {
    let env = TestEnv::accepting().await;
    let app = env.app_with_unreachable_dynamodb();
    for (method, path) in [
        (Method::POST, "/v1/whatsapp/sandbox/sessions"),
        (Method::GET, "/v1/whatsapp/sandbox/sessions"),
        (
            Method::DELETE,
            "/v1/whatsapp/sandbox/sessions/wss_3kTMd9Xr7QeZp1bN8vYc2a",
        ),
    ] {
        let req = e2e::request(
            method.clone(),
            path,
            Some("some-key"),
            json!({"phone": SPAIN}).to_string().into(),
        );
        let response = match method {
            Method::POST => sandbox::api::create::handle(&app, req).await,
            Method::GET => sandbox::api::list::handle(&app, req).await,
            _ => sandbox::api::revoke::handle(&app, req).await,
        };
        let reply = e2e::finish(method.as_str(), path, response);
        let err = assert_error(
            &reply,
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "service_unavailable",
        );
        let text = err.to_string().to_lowercase();
        for leak in ["dispatch", "dynamodb", "connect", "127.0.0.1", "some-key"] {
            assert!(!text.contains(leak), "{text}");
        }
    }
    assert!(env.sent_templates().await.is_empty());
}

#[tokio::test]
async fn transient_storage_failure_is_503_so_meta_retries() {
    let env = TestEnv::accepting().await;
    let app = env.app_with_unreachable_dynamodb();
    let body = envelope(vec![text_reply(SPAIN_DIGITS, "hi", None, 1)], vec![]).to_string();
    let mut req = e2e::request(
        lambda_http::http::Method::POST,
        "/v1/whatsapp/webhook",
        None,
        Body::Text(body.clone()),
    );
    req.headers_mut()
        .insert("x-hub-signature-256", sign(&body).parse().unwrap());
    let reply = e2e::finish(
        "POST",
        "/v1/whatsapp/webhook",
        sandbox::api::webhook::handle(&app, req).await,
    );
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["code"], "service_unavailable");
}

/// A DynamoDB endpoint that accepts connections and never answers: every socket is held open
/// until the test ends.
async fn hanging_dynamodb() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (endpoint, holder)
}

#[tokio::test]
async fn a_dynamodb_that_accepts_connections_and_never_answers_gives_503_within_the_bound() {
    let env = TestEnv::accepting().await;
    let (endpoint, holder) = hanging_dynamodb().await;
    let app = App::new(
        env.app.config.clone(),
        Store::new(e2e::dynamo::client(&endpoint, None), &env.table),
        env.app.graph_client(),
        env.clock.clone(),
    );
    // The first request (the key lookup) hangs: one operation's time, never the Lambda's.
    let one_operation = sandbox::store::OPERATION_TIMEOUT + Duration::from_secs(1);
    let create_bound = sandbox::api::create::time_bound(&app.config);
    assert!(one_operation < create_bound);

    let started = Instant::now();
    let reply = env.create_on(&app, "some-key", SPAIN).await;
    let elapsed = started.elapsed();
    assert_error(
        &reply,
        StatusCode::SERVICE_UNAVAILABLE,
        "api_error",
        "service_unavailable",
    );
    assert!(
        elapsed < one_operation,
        "create answered after {elapsed:?}, bound {one_operation:?}"
    );
    assert!(env.sent_templates().await.is_empty());

    let started = Instant::now();
    let path = "/v1/whatsapp/sandbox/sessions";
    let req = e2e::request(Method::GET, path, Some("some-key"), Body::Empty);
    let reply = e2e::finish("GET", path, sandbox::api::list::handle(&app, req).await);
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < one_operation);
    holder.abort();
}
