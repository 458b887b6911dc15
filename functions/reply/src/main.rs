//! The reply function: configuration and clients are built once per container, then every
//! invocation runs the library's handler (`sandbox::api::reply`), which makes a virtual phone
//! write to the sandbox number through the webhook's own processing, in process.

use sandbox::{api, Role};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run(Role::Reply, |app, req| async move {
        api::reply::handle(&app, req).await
    })
    .await
}
