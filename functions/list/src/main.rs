//! The list function: configuration and clients are built once per container, then every
//! invocation runs the library's handler (`sandbox::api::list`).

use sandbox::{api, Role};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::run(Role::List, |app, req| async move {
        api::list::handle(&app, req).await
    })
    .await
}
