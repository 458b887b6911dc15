//! The create function: configuration and clients (with libphonenumber's metadata and the Graph
//! API client, which only create and send need) are built once per container, then every invocation
//! runs the library's handler (`sandbox::api::create`).

use sandbox::app::graph_init;
use sandbox::{api, Role};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run_with(Role::Create, graph_init, |app, req| async move {
        api::create::handle(&app, req).await
    })
    .await
}
