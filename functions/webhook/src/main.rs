//! The webhook function: configuration and clients are built once per container, then every
//! invocation runs the library's handler (`sandbox::api::webhook`).

use sandbox::{api, Role};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run(Role::Webhook, |app, req| async move {
        api::webhook::handle(&app, req).await
    })
    .await
}
