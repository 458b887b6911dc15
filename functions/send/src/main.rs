//! The send function: configuration and clients (with libphonenumber's metadata and the Graph
//! API client, like create) are built once
//! per container, then every invocation runs the library's handler (`sandbox::api::send`).

use sandbox::app::graph_init;
use sandbox::{api, Role};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run_with(Role::Send, graph_init, |app, req| async move {
        api::send::handle(&app, req).await
    })
    .await
}
