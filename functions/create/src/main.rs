//! The create function: configuration and clients (with libphonenumber's metadata and the Graph
//! API client, which only create and send need) are built once per container, then every invocation
//! runs the library's handler (`sandbox::api::create`).

use sandbox::{api, App, Role};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run_with(Role::Create, App::with_graph, |app, req| async move {
        api::create::handle(&app, req).await
    })
    .await
}
