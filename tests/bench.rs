//! `make bench`: prints the numbers behind the service's performance targets.
//!
//! - init: what a cold start spends in our code before the first request (configuration,
//!   the DynamoDB and HTTP clients, libphonenumber's metadata).
//! - latency: handler time per operation against DynamoDB Local and the stub Graph API on
//!   this machine (Lambda's own runtime overhead and the network to real DynamoDB excluded).
//! - round trips: DynamoDB requests per operation with a warm auth cache (the budget:
//!   create 2 + 1 Graph call, list 1, revoke 1).

use std::time::{Duration, Instant};

use e2e::deliveries::{button_reply, envelope};
use e2e::meta;
use e2e::{Options, TestEnv};
use lambda_http::http::StatusCode;

const N: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, mut samples: Vec<Duration>, requests: f64) {
    samples.sort();
    println!(
        "{name:<10} n={:<4} p50={:>7.2} ms  p95={:>7.2} ms  p99={:>7.2} ms  dynamodb_requests={requests:.1}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
    );
}

#[tokio::main]
async fn main() {
    // Init: the same steps App::from_env takes, timed one by one.
    let t = Instant::now();
    let _ = sandbox::phone::PhoneE164::parse("+34688246216");
    let metadata = t.elapsed();
    let t = Instant::now();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let _client = aws_sdk_dynamodb::Client::new(&sdk);
    let clients = t.elapsed();
    println!(
        "init       phonenumber_metadata={:.1} ms  aws_sdk_client={:.1} ms",
        metadata.as_secs_f64() * 1000.0,
        clients.as_secs_f64() * 1000.0
    );

    let env = TestEnv::with(Options {
        auth_cache_seconds: 3600,
        ..Options::default()
    })
    .await;
    meta::accept(&env.meta).await;
    let mut keys = Vec::with_capacity(N);
    for i in 0..N {
        keys.push(env.api_key(&format!("bench-{i}")).await);
    }
    for k in &keys {
        env.list(Some(k)).await; // warm the auth cache, as a warm container would be
    }

    let mut create = Vec::with_capacity(N);
    let mut ids = Vec::with_capacity(N);
    env.counter.reset();
    for (i, k) in keys.iter().enumerate() {
        let phone = format!("+34 688 {:06}", 100_000 + i);
        let t = Instant::now();
        let reply = env.create(k, &phone).await;
        create.push(t.elapsed());
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        ids.push(
            reply.json()["session"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    report("create", create, env.counter.count() as f64 / N as f64);

    let mut list = Vec::with_capacity(N);
    env.counter.reset();
    for k in &keys {
        let t = Instant::now();
        env.list(Some(k)).await;
        list.push(t.elapsed());
    }
    report("list", list, env.counter.count() as f64 / N as f64);

    let templates = env.sent_templates().await;
    let mut webhook = Vec::with_capacity(N);
    env.counter.reset();
    for (i, t) in templates.iter().enumerate() {
        let from = t["to"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('+')
            .to_owned();
        let payload = meta::payload_of(t);
        let delivery = envelope(
            vec![button_reply(&from, &payload, "wamid.unknown", i as u32)],
            vec![],
        );
        let started = Instant::now();
        env.deliver(&delivery).await;
        webhook.push(started.elapsed());
    }
    report("webhook", webhook, env.counter.count() as f64 / N as f64);

    let mut revoke = Vec::with_capacity(N);
    env.counter.reset();
    for (k, id) in keys.iter().zip(&ids) {
        let t = Instant::now();
        let reply = env.revoke(Some(k), id).await;
        revoke.push(t.elapsed());
        assert_eq!(reply.status, StatusCode::OK);
    }
    report("revoke", revoke, env.counter.count() as f64 / N as f64);

    for name in ["create", "list", "revoke", "webhook"] {
        let path = format!(
            "{}/../target/lambda/{name}/bootstrap",
            env!("CARGO_MANIFEST_DIR")
        );
        if let Ok(meta) = std::fs::metadata(&path) {
            println!(
                "binary     {name:<8} {:.1} MiB (target/lambda/{name}/bootstrap)",
                meta.len() as f64 / 1048576.0
            );
        }
    }
}
