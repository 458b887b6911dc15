//! The DynamoDB client's connections, on the SDK's own HTTP client as the functions build it
//! (`app::https_client`; README "Benchmark", TLS and HTTP): a retry after a transient error
//! opens a new connection (connection poisoning), and the connect timeout bounds the TLS
//! handshake as well as TCP.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::StalledStreamProtectionConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::Client;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use tokio::net::TcpListener;

fn client(endpoint: &str, timeouts: TimeoutConfig, retries: RetryConfig) -> Client {
    // No stalled-stream protection: the only bounds are the ones each test sets.
    let config = aws_sdk_dynamodb::Config::builder()
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .behavior_version(BehaviorVersion::latest())
        .http_client(sandbox::app::https_client())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .timeout_config(timeouts)
        .retry_config(retries)
        .build();
    Client::from_conf(config)
}

/// A DynamoDB stand-in that answers its first request 503 and every other `ListTables` with no
/// tables, counting the connections it accepted and the requests it answered.
async fn unavailable_once() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let (connections, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (accepted, answered) = (Arc::clone(&connections), Arc::clone(&requests));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepted.fetch_add(1, SeqCst);
            let answered = Arc::clone(&answered);
            let service = hyper::service::service_fn(move |_: Request<hyper::body::Incoming>| {
                let first = answered.fetch_add(1, SeqCst) == 0;
                async move {
                    let (status, body) = if first {
                        (
                            503,
                            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ServiceUnavailableException","message":"try again"}"#,
                        )
                    } else {
                        (200, r#"{"TableNames":[]}"#)
                    };
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
                    response.headers_mut().insert(
                        "content-type",
                        "application/x-amz-json-1.0".parse().expect("header"),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (endpoint, connections, requests)
}

#[tokio::test]
async fn a_retry_after_a_503_goes_out_on_a_new_connection() {
    let (endpoint, connections, requests) = unavailable_once().await;
    let dynamodb = client(
        &endpoint,
        sandbox::store::sdk_timeouts(),
        sandbox::store::sdk_retries(),
    );
    dynamodb
        .list_tables()
        .send()
        .await
        .expect("the retry after the 503 succeeds");
    assert_eq!(requests.load(SeqCst), 2);
    // The SDK poisoned the connection that answered 503: the pool dropped it, and the retry
    // opened another. (Kept in the pool, the retry went out on the same connection.)
    assert_eq!(connections.load(SeqCst), 2);
}

#[tokio::test]
async fn the_connect_timeout_bounds_a_tls_handshake_the_server_never_answers() {
    // Accepts TCP connections and never says a word: the ClientHello goes unanswered.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("https://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(200))
        .build();
    let dynamodb = client(&endpoint, timeouts, RetryConfig::disabled());

    // Without a bound on the handshake the request would wait forever (no read, attempt or
    // operation timeout, no stalled-stream protection): the test's own limit would fail it.
    let result = tokio::time::timeout(Duration::from_secs(20), dynamodb.list_tables().send())
        .await
        .expect("the handshake is bounded by the connect timeout");
    match result {
        Err(SdkError::DispatchFailure(failure)) => {
            assert!(failure.is_timeout(), "{failure:?}");
        }
        other => panic!("expected a connect timeout, got {other:?}"),
    }
}
