//! The messages function: configuration and the DynamoDB client are built once per container
//! (no Graph API client: it only reads), then every invocation runs the library's handler
//! (`sandbox::api::messages`).

use sandbox::{api, Role};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run(Role::Messages, |app, req| async move {
        api::messages::handle(&app, req).await
    })
    .await
}
