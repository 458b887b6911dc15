//! Init: what a function builds before its first request, and what it leaves out (README
//! "Benchmark").

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::TestEnv;
use sandbox::app::{dynamodb_client, warm_up, InitError};
use sandbox::config::{Config, ConfigError, Role, Secret};
use sandbox::graph::GraphClient;
use sandbox::https::{deferred, roots_from, sdk_client_with, DeferredRoots};
use sandbox::store::{sdk_retries, sdk_timeouts};
use sandbox::App;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::tls::{https_proxy, make_tls};

/// A TCP relay to `backend` (`http://host:port`) that counts the connections it relays and the
/// bytes the client side sends on them.
async fn counting_relay(backend: &str) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let backend = backend.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
    let address = listener.local_addr().expect("relay address");
    let connections = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let (counted, summed) = (Arc::clone(&connections), Arc::clone(&sent));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&backend).await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let summed = Arc::clone(&summed);
            tokio::spawn(async move {
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let upstream = async {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_client.read(&mut buffer).await {
                        summed.fetch_add(n, Ordering::SeqCst);
                        if to_server.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown().await;
                };
                let downstream = tokio::io::copy(&mut from_server, &mut to_client);
                let _ = tokio::join!(upstream, downstream);
            });
        }
    });
    (format!("http://{address}"), connections, sent)
}

/// Waits (at most 2 s) for `counter` to reach `value`: the relays accept on their own tasks.
async fn settles_at(counter: &AtomicUsize, value: usize) -> usize {
    for _ in 0..200 {
        if counter.load(Ordering::SeqCst) == value {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    counter.load(Ordering::SeqCst)
}

#[tokio::test]
async fn warm_up_opens_the_first_requests_tls_connection_and_sends_no_request() {
    // The function's client (this process's trust store replaced by the test CA, loaded beside
    // the handshake as init does) -> TLS proxy -> counting relay -> DynamoDB Local. The relay sees
    // the decrypted side: a connection per TLS session, and any request bytes.
    let env = TestEnv::new().await;
    let before = env.snapshot().await;
    let dir = std::env::temp_dir().join(format!("sandbox-warm-up-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tls = make_tls(&dir);
    let (relay, connections, sent) = counting_relay(&e2e::dynamo::local().endpoint).await;
    let endpoint = https_proxy(&tls, &relay).await;
    let loads = Arc::new(AtomicUsize::new(0));
    let (counted, ca_file) = (Arc::clone(&loads), tls.ca_file.clone());
    let roots = DeferredRoots::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let found = rustls_native_certs::load_certs_from_paths(Some(&ca_file), None);
        roots_from(found, &[])
    });
    let http = sdk_client_with(Arc::new(deferred(Arc::new(roots))));
    let client = e2e::dynamo::client_with(http, &endpoint, Some(env.counter.clone()));
    env.counter.reset();

    assert!(warm_up(&client, &env.table, Role::List).await);
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "the handshake checked the server"
    );
    assert_eq!(settles_at(&connections, 1).await, 1, "one TLS session");
    assert_eq!(
        sent.load(Ordering::SeqCst),
        0,
        "no request reached DynamoDB"
    );
    assert_eq!(env.counter.take(), ["GetItem"], "the SDK ran one read");

    // The first request uses that connection: no second handshake.
    client
        .get_item()
        .table_name(&env.table)
        .set_key(Some(sandbox::store::Key::api_key("warm-up").item()))
        .send()
        .await
        .expect("a read through the connection opened ahead");
    assert!(sent.load(Ordering::SeqCst) > 0);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "no second connection"
    );
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(env.snapshot().await, before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_graph_client_opens_its_connection_at_init_and_the_first_send_uses_it() {
    // The Graph client -> counting relay -> the Graph API stub: a connection, and no request,
    // until the first create sends its template over that same connection.
    let env = TestEnv::accepting().await;
    let (relay, connections, sent) = counting_relay(&env.meta.uri()).await;
    let mut config = env.app.config.clone();
    config.graph_base_url = relay;
    let graph = GraphClient::new(&config, Secret::new("test-token")).expect("http client");

    assert!(graph.open_ahead().await);
    assert_eq!(settles_at(&connections, 1).await, 1, "one connection");
    assert_eq!(sent.load(Ordering::SeqCst), 0, "nothing sent to Meta");
    assert!(env.sent_templates().await.is_empty());

    let app = App::new(
        config,
        env.app.store.clone(),
        Some(graph),
        env.clock.clone(),
    );
    let key = env.api_key("u1").await;
    let reply = env.create_on(&app, &key, e2e::SPAIN).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(env.sent_templates().await.len(), 1);
    assert!(sent.load(Ordering::SeqCst) > 0);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "no second connection"
    );
}

#[tokio::test]
async fn a_graph_connection_that_cannot_be_opened_at_init_is_reported() {
    let env = TestEnv::new().await;
    let unreachable = env.app_with_unreachable_graph();
    let graph = unreachable.graph.as_ref().expect("a Graph client");
    assert!(!graph.open_ahead().await);
}

#[tokio::test]
async fn warm_up_against_an_unreachable_table_still_lets_init_finish() {
    let env = TestEnv::new().await;
    let dead = env.app_with_unreachable_dynamodb();
    assert!(!warm_up(dead.store.client(), &env.table, Role::Webhook).await);
}

#[tokio::test]
async fn only_create_gets_a_graph_client() {
    let env = TestEnv::new().await;
    let bare = |config: Config| App::new(config, env.app.store.clone(), None, env.clock.clone());
    let create = bare(env.app.config.clone())
        .with_graph()
        .expect("create's init");
    assert!(create.graph.is_some());
    // The shared init (App::from_config) leaves the Graph client out: list, revoke and the
    // webhook never build it.
    assert!(bare(env.app.config.clone()).graph.is_none());

    let vars: HashMap<&str, &str> = HashMap::from([
        ("TABLE_NAME", "t"),
        ("SANDBOX_DISPLAY_NUMBER", "+12029087457"),
        ("SANDBOX_PHONE_NUMBER_ID", "1"),
    ]);
    let list = Config::from_lookup(Role::List, |k| vars.get(k).map(|v| v.to_string()))
        .expect("list's configuration");
    assert!(matches!(
        bare(list).with_graph(),
        Err(InitError::Config(ConfigError::Missing("META_ACCESS_TOKEN")))
    ));

    // Send sends to Meta too: its init is create's.
    let send_vars = |k: &str| match k {
        "META_ACCESS_TOKEN" => Some("token".to_owned()),
        _ => vars.get(k).map(|v| v.to_string()),
    };
    let send = Config::from_lookup(Role::Send, send_vars).expect("send's configuration");
    assert!(bare(send)
        .with_graph()
        .expect("send's init")
        .graph
        .is_some());
}

#[test]
fn the_functions_dynamodb_client_has_the_stores_timeouts_and_retries() {
    // The same bounds as store::sdk_timeouts documents: a hanging table answers 503 inside
    // the Lambda timeout, in production as in the tests' client.
    let client = dynamodb_client();
    assert_eq!(client.config().timeout_config(), Some(&sdk_timeouts()));
    assert_eq!(client.config().retry_config(), Some(&sdk_retries()));
}

#[test]
fn only_the_webhooks_function_builds_the_delivery_client() {
    // The delivery client (reqwest with the filtering resolver) is built in the webhooks
    // function's main and nowhere else: App has no field for it, so no other function's init
    // can build or link it.
    let dir = format!("{}/../functions", env!("CARGO_MANIFEST_DIR"));
    let mut builders = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("functions/") {
        let main = entry.unwrap().path().join("src/main.rs");
        let Ok(text) = std::fs::read_to_string(&main) else {
            continue;
        };
        if text.contains("EgressClient") || text.contains("outbound") {
            builders.push(
                main.parent()
                    .unwrap()
                    .parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    assert_eq!(builders, ["webhooks"]);
}
