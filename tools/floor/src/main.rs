//! The cold-start floor: the smallest `lambda_http` function, built with the same release
//! profile as the real ones, so `make bench` can show what our own init adds on top.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_req: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
