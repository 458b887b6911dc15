//! Init: what a function builds before its first request, and what it leaves out (README
//! "Benchmark").

use std::collections::HashMap;

use e2e::TestEnv;
use sandbox::app::{dynamodb_client, InitError};
use sandbox::config::{Config, ConfigError, Role};
use sandbox::store::{sdk_retries, sdk_timeouts};
use sandbox::App;

#[tokio::test]
async fn only_create_gets_a_graph_client() {
    let env = TestEnv::new().await;
    let bare = |config: Config| App::new(config, env.app.store.clone(), None, env.clock.clone());
    let create = bare(env.app.config.clone())
        .with_graph()
        .expect("create's init");
    assert!(create.meta.is_some());
    // The shared init (App::from_config) leaves the Graph client out: list, revoke and the
    // webhook never build it.
    assert!(bare(env.app.config.clone()).meta.is_none());

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
    assert!(bare(send).with_graph().expect("send's init").meta.is_some());
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
fn only_the_delivering_functions_build_the_delivery_client() {
    // The delivery client (reqwest with the filtering resolver) is built in the mains of the
    // webhooks function (test, redeliver) and the events function (deliveries) and nowhere
    // else: App has no field for it, so no other function's init can build or link it.
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
    builders.sort();
    assert_eq!(builders, ["events", "webhooks"]);
}
