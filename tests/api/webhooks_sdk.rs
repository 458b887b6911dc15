//! `@zernio/node`'s webhook methods, unchanged (README "Outbound webhooks"): the real
//! `/v1/webhooks/*` handler served over HTTP on 127.0.0.1 (as the `webhooks` function, with
//! private targets allowed as `make dev` does), and `tests/sdk/webhooks.mjs` driving it with the
//! SDK pinned in package.json. The script's failures fail this test, its output shown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use e2e::node::repo_root;
use e2e::webhooks::local_egress;
use e2e::{finish, TestEnv};
use http_body_util::{BodyExt, Full};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::{Body, RequestExt};
use sandbox::clock::SystemClock;
use sandbox::outbound::EgressClient;
use sandbox::App;

/// How long the script may take (it takes about a second).
const SCRIPT_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdks_webhook_methods_work_unchanged() {
    let env = TestEnv::new().await;
    let key = env.api_key("sdk_user").await;
    // The wall clock: the script's receiver checks `webhook-timestamp` as a receiver would.
    let app = App::new(
        env.app.config.clone(),
        env.app.store.clone(),
        None,
        Arc::new(SystemClock),
    );
    let base_url = serve(app, local_egress()).await;

    let script = repo_root().join("tests/sdk/webhooks.mjs");
    let sdk = repo_root().join("node_modules/@zernio/node/package.json");
    assert!(
        sdk.is_file(),
        "@zernio/node is not installed ({} is missing).\n\
         Run `make test` (it runs `npm ci`), or `npm ci` at the repository root.",
        sdk.display()
    );
    let (ok, output) = tokio::task::spawn_blocking(move || {
        let env = [
            ("ZERNIO_BASE_URL", base_url.as_str()),
            ("ZERNIO_API_KEY", key.as_str()),
        ];
        e2e::node::run(&script, &env, SCRIPT_LIMIT)
    })
    .await
    .expect("the script's runner");
    // Shown with a failure (or with `--nocapture`): node:test's report of every method.
    println!("{output}");
    assert!(ok, "tests/sdk/webhooks.mjs failed: its report is above");
}

/// Serves `app`'s `/v1/webhooks/*` handler on `127.0.0.1`, each HTTP request turned into the
/// request API Gateway would hand the function (the query as its parameters); returns the base
/// URL. Every answer is recorded for the OpenAPI check, as the in-process tests' are.
async fn serve(app: App, egress: EgressClient) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("address"));
    let state = Arc::new((app, egress));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = Arc::clone(&state);
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(answer(&state.0, &state.1, req).await) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    base_url
}

async fn answer(
    app: &App,
    egress: &EgressClient,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let query: QueryMap = parts.uri.query().unwrap_or("").parse().unwrap_or_default();
    let (method, path) = (parts.method.to_string(), parts.uri.path().to_owned());
    let body = match String::from_utf8(bytes.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    let req = lambda_http::Request::from_parts(parts, body).with_query_string_parameters(query);
    let reply = finish(
        &method,
        &path,
        sandbox::api::webhooks::handle(app, egress, req).await,
    );
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.text)));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    response
}
