//! The send function: configuration and clients (with libphonenumber's metadata and the Graph
//! API client, like create) are built once
//! per container, then every invocation runs the library's handler (`sandbox::api::send`).

use sandbox::{api, App, Role};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run_with(Role::Send, App::with_graph, |app, req| async move {
        api::send::handle(&app, req).await
    })
    .await
}
