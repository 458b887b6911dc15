//! The revoke function: configuration and clients are built once per container, then every
//! invocation runs the library's handler (`sandbox::api::revoke`).

use sandbox::{api, Role};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run(Role::Revoke, |app, req| async move {
        api::revoke::handle(&app, req).await
    })
    .await
}
