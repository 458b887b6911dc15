//! The send function: configuration and clients (the Graph API client included) are built once
//! per container, then every invocation runs the library's handler (`sandbox::api::send`).

use sandbox::{api, Role};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run(Role::Send, |app, req| async move {
        api::send::handle(&app, req).await
    })
    .await
}
