//! The HTTP side: any path, POST only; each delivery's line printed as it is answered.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::Receiver;

/// Larger than any event the service sends (a webhook body is at most 256 KiB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Listens on `127.0.0.1:port` and serves until the process ends.
pub async fn run(port: u16, receiver: Receiver) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    serve(listener, receiver).await
}

/// Serves on a bound listener (tests bind port 0).
pub async fn serve(listener: TcpListener, receiver: Receiver) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    announce(address);
    let receiver = Arc::new(receiver);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: keep serving, without spinning.
                eprintln!("webhook-receiver: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let receiver = Arc::clone(&receiver);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let receiver = Arc::clone(&receiver);
                async move { Ok::<_, Infallible>(handle(&receiver, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("webhook-receiver: connection error: {e}");
            }
        });
    }
}

fn announce(address: SocketAddr) {
    println!(
        "webhook-receiver: listening on http://{address}/ (any path); each delivery's \
         X-Zernio-Signature and Standard Webhooks signature are checked before it is printed"
    );
}

async fn handle(receiver: &Receiver, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "webhook-receiver: POST deliveries here\n",
        );
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            eprintln!("webhook-receiver: refused 400: cannot read the body: {e}");
            return text(StatusCode::BAD_REQUEST, "cannot read the body\n");
        }
    };
    let (status, line) = receiver.receive(&parts.headers, &body);
    if status.is_success() {
        println!("webhook-receiver: {line}");
    } else {
        eprintln!("webhook-receiver: {line}");
    }
    text(status, &format!("{line}\n"))
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
}
