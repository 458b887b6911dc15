//! The console function: no configuration and no client to build (it serves only the files
//! embedded in it), so every invocation runs the handler (`console::handle`) straight away.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    sandbox::app::run_plain(console::handle).await
}
