//! `webhook-receiver`: receives the service's outbound webhooks on localhost, checks both
//! signatures of each and prints it (see the library's doc).

use std::process::ExitCode;

use webhook_receiver::{server, Receiver, Secret, DEV_SECRET};

const USAGE: &str = "\
usage: webhook-receiver [--port N]

Development only (make dev), never deployed. Listens on 127.0.0.1:N for the service's
webhook deliveries (any path), checks X-Zernio-Signature and the Standard Webhooks signature
(webhook-id, webhook-timestamp, webhook-signature) of each, prints a line per event and
answers 200; a delivery that fails a check is answered 401 (400 if the signatures hold but the
event does not) and the line on standard error says why.
  --port N     [DEV_RECEIVER_PORT] 9200
The secret to register the receiver's webhook with is DEV_RECEIVER_SECRET's, by default the
local-only whsec_ secret printed at start.";

fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => env("DEV_RECEIVER_PORT").unwrap_or_else(|| "9200".into()),
        ["--port", port] => port.to_owned(),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("webhook-receiver: unexpected arguments {args:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("webhook-receiver: the port must be a number up to 65535, not {port:?}");
        return ExitCode::from(2);
    };
    let text = env("DEV_RECEIVER_SECRET").unwrap_or_else(|| DEV_SECRET.into());
    let secret = match Secret::parse(&text) {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!("webhook-receiver: DEV_RECEIVER_SECRET: {e}");
            return ExitCode::from(2);
        }
    };
    if text == DEV_SECRET {
        // Published in the repository, so printing it gives nothing away.
        println!("webhook-receiver: the webhook secret is the local-only {DEV_SECRET}");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("webhook-receiver: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = runtime.block_on(server::run(port, Receiver::new(secret))) {
        eprintln!(
            "webhook-receiver: cannot serve on 127.0.0.1:{port}: {e}\n\
             (another program uses the port? choose one with --port or DEV_RECEIVER_PORT)"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
