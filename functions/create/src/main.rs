//! The create function: configuration and clients are built once per container, then every
//! invocation runs the library's handler (`sandbox::api::create`).

use sandbox::{api, Role};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run(Role::Create, |app, req| async move {
        api::create::handle(&app, req).await
    })
    .await
}
