//! `make bench`'s second part (issue 19): outbound events on the local stack, `make dev` as a
//! newcomer runs it (`tools/dev.sh --headless`: DynamoDB Local, graph-stub, the functions
//! behind `cargo lambda watch`, the stream pump standing in for the event source mapping).
//!
//! 1. **Latency.** One user with an activated phone and a webhook to the bench's receiver. 200
//!    times, one after another: a signed Meta webhook delivery of a text from the phone; the
//!    time from the webhook function's 200 to the receiver's 200 for that text's
//!    `message.received`. Printed: p50 and p99; an idle pump sleeps 250 ms between polls, which
//!    bounds the tail.
//! 2. **A virtual phone's statuses (issue 24).** Twenty users, each with a session for its own
//!    virtual phone: the time from create's 200 until the session shows the template's first
//!    status, and (activated by a `/reply`) from a text's 200 until the conversation shows its
//!    first status. Printed: p50, p99 and max, with a PASS/FAIL line against the issue's 2 s.
//! 3. **A hanging endpoint among ten users.** Ten users, each with an activated phone and one
//!    webhook; nine point at a healthy receiver, one at an endpoint that accepts connections and
//!    never answers. 1,000 texts, 100 per user. Checked and printed: every healthy delivery
//!    succeeded on its first attempt, every delivery to the hanging endpoint is scheduled for a
//!    retry, and the receiver saw each event id exactly once; and how long the healthy ones
//!    took in all.
//!
//! 4. **A hostile tenant** (issue 25), on a second stack with `make dev`'s sweep every 10 s
//!    and a short retry schedule (`WEBHOOK_RETRY_SCHEDULE_SECONDS=10,20,40`: four attempts
//!    over 70 s). One user with ten webhooks at endpoints that accept connections and never
//!    answer, and a backlog of 5,000 deliveries (500 texts from its phone); beside it, two
//!    other users whose endpoint answers 500 once, then 200: one in another shard of the due
//!    index, one in the tenant's. Printed: when each retry lands after its failed first
//!    attempt (PASS for the other shard's within the schedule's first wait plus one sweep
//!    interval), and every 10 s how the backlog's deliveries stand along their schedule, until
//!    every one has ended (failed for good, or cancelled once ten final failures in a row
//!    turned its webhook off).
//!
//! In the first three parts the sweep is set to an hour (`DEV_SWEEP_SECONDS`), so the retries the
//! third part schedules are seen as scheduled, not made.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use sandbox::outbound::RetrySchedule;
use sandbox::session::UserId;
use sandbox::store::{DeliveryState, Key, Store};
use sandbox::webhooks::LogStatus;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// `tools/dev.sh`'s Meta app secret and sandbox phone number id (local-only values).
const DEV_APP_SECRET: &str = "dev-app-secret";
const DEV_PHONE_NUMBER_ID: &str = "109876543210987";
const DEV_TABLE: &str = "sandbox-dev";
/// Texts in the latency part.
const LATENCY_EVENTS: usize = 200;
/// Users and texts per user in the fan-out part.
const USERS: usize = 10;
const PER_USER: usize = 100;
/// How long any wait may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(600);
/// Sessions of virtual phones measured, one user and one phone each (issue 24).
const VIRTUAL_SESSIONS: usize = 20;
/// The issue's target: a virtual phone's status within this long of the send's 200.
const VIRTUAL_STATUS_TARGET_MS: f64 = 2_000.0;
/// The hostile tenant's webhooks, and the texts from its phone (each a delivery to every one).
const HOSTILE_WEBHOOKS: usize = 10;
const HOSTILE_TEXTS: usize = 500;
/// The third part's retry schedule (`WEBHOOK_RETRY_SCHEDULE_SECONDS`) and sweep interval.
const HOSTILE_SCHEDULE: &str = "10,20,40";
const HOSTILE_SWEEP_SECONDS: u64 = 10;

// ---------------------------------------------------------------------------------------------
// Receivers.

/// What a receiver saw: per request, the event id, the text (if any) and when it arrived.
#[derive(Default)]
struct Seen {
    arrivals: Vec<(String, String, Instant)>,
}

/// How a receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// 200 at once.
    Ok,
    /// Never (the connection stays open).
    Hang,
    /// 500 to an event's first delivery, then 200.
    FailFirst,
}

/// A receiver on 127.0.0.1 that answers as `answer` says.
async fn receiver(answer: Answer) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let arrived = Instant::now();
                            let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let id = event["id"].as_str().unwrap_or_default().to_owned();
                            let text = event["message"]["text"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned();
                            let first = match state.lock() {
                                Ok(mut seen) => {
                                    let again = seen.arrivals.iter().any(|a| a.0 == id);
                                    seen.arrivals.push((id, text, arrived));
                                    !again
                                }
                                Err(_) => false,
                            };
                            if answer == Answer::Hang {
                                std::future::pending::<()>().await;
                            }
                            let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                            if answer == Answer::FailFirst && first {
                                *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                            }
                            Ok::<_, Infallible>(response)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

// ---------------------------------------------------------------------------------------------
// The stack.

struct Stack {
    child: Child,
    _stdin: ChildStdin,
    dir: PathBuf,
    api: String,
    dynamodb: String,
}

impl Stack {
    /// `tools/dev.sh --headless` on free ports, with `env` set for it (and its functions).
    fn start(env: &[(&str, &str)]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ is inside the repository")
            .to_path_buf();
        let ports: Vec<u16> = {
            let listeners: Vec<StdListener> = (0..4)
                .map(|_| StdListener::bind("127.0.0.1:0").expect("a free port"))
                .collect();
            listeners
                .iter()
                .map(|l| l.local_addr().expect("address").port())
                .collect()
        };
        let dir =
            std::env::temp_dir().join(format!("bench-events-{}-{}", std::process::id(), ports[0]));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("state dir");
        let log = std::fs::File::create(dir.join("dev.log")).expect("dev.log");
        let mut child = Command::new("bash")
            .arg(root.join("tools/dev.sh"))
            .arg("--headless")
            .current_dir(&root)
            .env("DEV_API_PORT", ports[0].to_string())
            .env("DEV_DYNAMODB_PORT", ports[1].to_string())
            .env("DEV_GRAPH_PORT", ports[2].to_string())
            .env("DEV_RECEIVER_PORT", ports[3].to_string())
            .envs(env.iter().copied())
            .env("DEV_STATE_DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tools/dev.sh");
        let stdin = child.stdin.take().expect("stdin");
        let started = Instant::now();
        while !dir.join("stack.env").is_file() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tools/dev.sh exited ({status}); see {}", dir.display());
            }
            assert!(
                started.elapsed() < Duration::from_secs(1_800),
                "the stack did not start"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!(
            "bench-events: stack ready in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        Self {
            child,
            _stdin: stdin,
            dir,
            api: format!("http://127.0.0.1:{}", ports[0]),
            dynamodb: format!("http://127.0.0.1:{}", ports[1]),
        }
    }

    /// The dev table, through the store (the admin tool's credentials and region).
    fn store(&self) -> Store {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url(&self.dynamodb)
            .http_client(sandbox::app::https_client())
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local", "local", None, None, "bench",
            ))
            .build();
        Store::new(aws_sdk_dynamodb::Client::from_conf(config), DEV_TABLE)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the API and Meta's webhook.

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A new user's key, through the admin tool's code.
    async fn key(store: &Store, user: &str) -> String {
        let key = sandbox_admin::keys::generate_key().expect("a key");
        sandbox_admin::keys::create_key(store, &key, user, Some("bench".into()), now())
            .await
            .expect("stored");
        key
    }

    /// Creates a session for `phone`; graph-stub taps the template about a second later.
    async fn activate(&self, key: &str, phone: &str) {
        self.call(
            reqwest::Method::POST,
            "/v1/whatsapp/sandbox/sessions",
            key,
            Some(json!({ "phone": phone })),
        )
        .await;
        let started = Instant::now();
        loop {
            let list = self
                .call(
                    reqwest::Method::GET,
                    "/v1/whatsapp/sandbox/sessions",
                    key,
                    None,
                )
                .await;
            if list["sessions"][0]["status"] == "active" {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "never activated: {list}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls `path` with `key` until its answer satisfies `done` (every 10 ms, at most a minute).
    async fn until(&self, key: &str, path: &str, done: impl Fn(&Value) -> bool) {
        let started = Instant::now();
        loop {
            let answer = self.call(reqwest::Method::GET, path, key, None).await;
            if done(&answer) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{path} never got there: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn webhook(&self, key: &str, url: &str) {
        let body = json!({ "name": "bench", "url": url, "events": ["message.received"] });
        self.call(
            reqwest::Method::POST,
            "/v1/webhooks/settings",
            key,
            Some(body),
        )
        .await;
    }

    /// Meta's delivery of a text from `digits`, signed; returns when the webhook answered 200.
    async fn text_from(&self, digits: &str, text: &str, id: &str) -> Instant {
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "0", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "12029087457", "phone_number_id": DEV_PHONE_NUMBER_ID },
                "contacts": [{ "profile": { "name": "Bench" }, "wa_id": digits }],
                "messages": [{ "from": digits, "id": id, "timestamp": now().to_string(),
                               "type": "text", "text": { "body": text } }]
            }}]}]
        })
        .to_string();
        let signature = sandbox::meta::signature::sign(DEV_APP_SECRET.as_bytes(), body.as_bytes());
        let response = self
            .http
            .post(format!("{}/v1/whatsapp/webhook", self.base))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await
            .expect("the webhook answers");
        let answered = Instant::now();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        answered
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// Waits until `seen` holds an arrival matching `pred`; its time.
async fn arrival(seen: &Mutex<Seen>, pred: impl Fn(&(String, String, Instant)) -> bool) -> Instant {
    let started = Instant::now();
    loop {
        if let Some(hit) = seen
            .lock()
            .ok()
            .and_then(|s| s.arrivals.iter().find(|a| pred(a)).map(|a| a.2))
        {
            return hit;
        }
        assert!(started.elapsed() < PATIENCE, "no delivery arrived");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main]
async fn main() {
    let stack = Stack::start(&[("DEV_SWEEP_SECONDS", "3600")]);
    let store = stack.store();
    let api = Api {
        http: reqwest::Client::new(),
        base: stack.api.clone(),
    };

    // --- 1. Latency. ---------------------------------------------------------------------
    let (url, seen) = receiver(Answer::Ok).await;
    let key = Api::key(&store, "bench-latency").await;
    api.activate(&key, "+34 688 900 000").await;
    api.webhook(&key, &url).await;
    let mut latencies = Vec::with_capacity(LATENCY_EVENTS);
    for n in 0..LATENCY_EVENTS {
        let text = format!("latency {n}");
        let answered = api
            .text_from("34688900000", &text, &format!("wamid.BENCHLAT{n:05}"))
            .await;
        let arrived = arrival(&seen, |a| a.1 == text).await;
        latencies.push(arrived.saturating_duration_since(answered).as_secs_f64() * 1000.0);
    }

    // --- 2. A virtual phone's statuses after the send's 200 (issue 24). -----------------------
    // For each user: create's 200 until the session shows the template's first status, then
    // (activated by a /reply) a text's 200 until the conversation shows its first status. The
    // phone plays from the stream: the second stream-pump, the phone function, the webhook's
    // processing, all on debug builds.
    let mut template_ms = Vec::with_capacity(VIRTUAL_SESSIONS);
    let mut message_ms = Vec::with_capacity(VIRTUAL_SESSIONS);
    for u in 0..VIRTUAL_SESSIONS {
        let key = Api::key(&store, &format!("bench-virtual-{u}")).await;
        let created = api
            .call(
                reqwest::Method::POST,
                "/v1/whatsapp/sandbox/sessions",
                &key,
                Some(json!({ "phone": format!("+1 201 555 01{u:02}") })),
            )
            .await;
        let answered = Instant::now();
        let id = created["session"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        api.until(&key, "/v1/whatsapp/sandbox/sessions", |v| {
            v["sessions"][0]["delivery"]["status"].is_string()
        })
        .await;
        template_ms.push(answered.elapsed().as_secs_f64() * 1000.0);
        api.call(
            reqwest::Method::POST,
            &format!("/v1/whatsapp/sandbox/sessions/{id}/reply"),
            &key,
            Some(json!({ "type": "activate" })),
        )
        .await;
        let sent = api
            .call(
                reqwest::Method::POST,
                "/v1/whatsapp/sandbox/messages",
                &key,
                Some(json!({ "type": "text", "text": { "body": "bench" } })),
            )
            .await;
        let answered = Instant::now();
        let message = sent["message"]["id"].clone();
        api.until(&key, "/v1/whatsapp/sandbox/messages", |v| {
            v["messages"].as_array().is_some_and(|all| {
                all.iter()
                    .any(|m| m["id"] == message && m["status"] != "accepted")
            })
        })
        .await;
        message_ms.push(answered.elapsed().as_secs_f64() * 1000.0);
    }

    // --- 3. A hanging endpoint among ten users. ---------------------------------------------
    let (healthy_url, healthy) = receiver(Answer::Ok).await;
    let (hanging_url, hanging) = receiver(Answer::Hang).await;
    let mut users = Vec::new();
    for u in 0..USERS {
        let user = format!("bench-fan-{u}");
        let key = Api::key(&store, &user).await;
        let digits = format!("3468891{u:04}");
        api.activate(&key, &format!("+{digits}")).await;
        let url = if u == 0 { &hanging_url } else { &healthy_url };
        api.webhook(&key, url).await;
        users.push((user, key, digits));
    }
    let started = Instant::now();
    let mut sends = Vec::new();
    for n in 0..PER_USER {
        for (u, (_, _, digits)) in users.iter().enumerate() {
            sends.push((
                digits.clone(),
                format!("fan {u} {n}"),
                format!("wamid.BENCHFAN{u:02}{n:04}"),
            ));
        }
    }
    // Eight at a time, as Meta's retries and a busy number would.
    let http = &api;
    futures::stream::iter(sends)
        .for_each_concurrent(8, |(digits, text, id)| async move {
            http.text_from(&digits, &text, &id).await;
        })
        .await;
    let accepted = started.elapsed();
    let healthy_expected = (USERS - 1) * PER_USER;
    let done = loop {
        let count = healthy.lock().map(|s| s.arrivals.len()).unwrap_or(0);
        if count >= healthy_expected {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < PATIENCE,
            "only {count} of {healthy_expected} healthy deliveries arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Settle: late duplicates, and the last batch's deferrals, would show now.
    tokio::time::sleep(Duration::from_secs(8)).await;

    // Only the 1,000 texts count: the activation taps are `message.received` events too, and a
    // webhook registered while the pump had not yet handed a tap over gets it.
    let is_fan = |text: &str| text.starts_with("fan ");
    let arrivals: Vec<(String, String)> = healthy
        .lock()
        .map(|s| {
            s.arrivals
                .iter()
                .map(|a| (a.0.clone(), a.1.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (id, _) in &arrivals {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let fan_ids = arrivals.iter().filter(|(_, text)| is_fan(text)).count();
    let once = fan_ids == healthy_expected && counts.values().all(|c| *c == 1);
    let hanging_attempts = hanging.lock().map(|s| s.arrivals.len()).unwrap_or(0);
    let text_of = |payload: &[u8]| -> String {
        serde_json::from_slice::<Value>(payload)
            .ok()
            .and_then(|v| v["message"]["text"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };

    // The healthy users' logs: one attempt per text, the first, delivered.
    let mut first_attempt_ok = 0;
    let mut healthy_logged = 0;
    for (user, _, _) in users.iter().skip(1) {
        for entry in logs_of(&store, user).await {
            if !is_fan(&text_of(&entry.request_payload)) {
                continue;
            }
            healthy_logged += 1;
            if entry.attempt_number == 1 && entry.status == sandbox::webhooks::LogStatus::Success {
                first_attempt_ok += 1;
            }
        }
    }
    // The hanging user's deliveries of the texts: all pending, each due again.
    let deliveries: Vec<_> = deliveries_of(&store, &users[0].0)
        .await
        .into_iter()
        .filter(|d| is_fan(&text_of(&d.payload)))
        .collect();
    let scheduled = deliveries
        .iter()
        .filter(|d| d.state == sandbox::store::DeliveryState::Pending && d.due_at.is_some())
        .count();

    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("Outbound events on the local stack (tools/dev.sh: debug builds behind cargo lambda watch, the stream pump polling DynamoDB Local every 250 ms); {machine}, {cores} cores");
    println!(
        "  Meta webhook 200 -> receiver 200, {LATENCY_EVENTS} events one at a time: p50 {:.0} ms, p99 {:.0} ms (an idle pump sleeps 250 ms between polls, as Lambda's mapping polls about 4 times a second: the p99's order)",
        percentile(latencies.clone(), 0.5),
        percentile(latencies, 0.99)
    );
    println!(
        "  {} events for {USERS} users, one endpoint hanging: webhook accepted all in {:.1} s; the {healthy_expected} healthy deliveries all arrived {:.1} s after the first send",
        USERS * PER_USER,
        accepted.as_secs_f64(),
        done.as_secs_f64()
    );
    println!(
        "{} healthy deliveries succeeded on the first attempt: {first_attempt_ok} of {healthy_expected} (logged attempts {healthy_logged})",
        verdict(first_attempt_ok == healthy_expected && healthy_logged == healthy_expected)
    );
    println!(
        "{} hanging endpoint's deliveries all scheduled for retry: {scheduled} of {PER_USER} (attempts that reached it: {hanging_attempts})",
        verdict(scheduled == PER_USER && deliveries.len() == PER_USER)
    );
    println!(
        "{} the receiver counted each event id exactly once: {fan_ids} of the texts' {healthy_expected}, {} ids over {} requests (with the taps)",
        verdict(once),
        counts.len(),
        arrivals.len()
    );
    println!();
    println!("Virtual phones on the local stack (the second stream-pump and the phone function, debug builds), {VIRTUAL_SESSIONS} users, one phone each");
    for (what, times) in [
        (
            "a template (create's 200 -> the session shows its status)",
            template_ms,
        ),
        (
            "a text (send's 200 -> the conversation shows its status)",
            message_ms,
        ),
    ] {
        let worst = times.iter().copied().fold(0.0, f64::max);
        println!(
            "{} a virtual phone's first status of {what}: p50 {:.0} ms, p99 {:.0} ms, max {worst:.0} ms <= {VIRTUAL_STATUS_TARGET_MS:.0} ms",
            verdict(worst <= VIRTUAL_STATUS_TARGET_MS),
            percentile(times.clone(), 0.5),
            percentile(times, 0.99),
        );
    }
    drop(stack);

    hostile_tenant().await;
}

/// Part 3 (the module's doc): a hostile tenant's backlog behind ten hanging endpoints, and two
/// other users' retries beside it.
async fn hostile_tenant() {
    let sweep_seconds = HOSTILE_SWEEP_SECONDS.to_string();
    let stack = Stack::start(&[
        ("DEV_SWEEP_SECONDS", sweep_seconds.as_str()),
        ("WEBHOOK_RETRY_SCHEDULE_SECONDS", HOSTILE_SCHEDULE),
    ]);
    let store = stack.store();
    let api = Api {
        http: reqwest::Client::new(),
        base: stack.api.clone(),
    };
    let schedule = RetrySchedule::parse(HOSTILE_SCHEDULE).expect("a schedule");
    let first_wait = schedule.waits()[0].as_secs_f64();
    let shard_of = |user: &str| Key::due_shard(&UserId::new(user));

    // The tenant: ten webhooks at endpoints that accept connections and never answer.
    let tenant = "bench-hostile";
    let tenant_digits = "34688930000";
    let key = Api::key(&store, tenant).await;
    api.activate(&key, &format!("+{tenant_digits}")).await;
    let mut dead = Vec::new();
    for _ in 0..HOSTILE_WEBHOOKS {
        let (url, seen) = receiver(Answer::Hang).await;
        api.webhook(&key, &url).await;
        dead.push(seen);
    }
    // Beside it, two users whose endpoint fails an event's first delivery: one in another
    // shard of the due index, one in the tenant's.
    let mut victims = Vec::new();
    for (n, shared) in [(1, false), (2, true)] {
        let user = (0..)
            .map(|i| format!("bench-victim-{i}"))
            .find(|u| (shard_of(u) == shard_of(tenant)) == shared)
            .expect("a user in the wanted shard");
        let key = Api::key(&store, &user).await;
        let digits = format!("3468893000{n}");
        api.activate(&key, &format!("+{digits}")).await;
        let (url, seen) = receiver(Answer::FailFirst).await;
        api.webhook(&key, &url).await;
        victims.push((user, digits, seen));
    }

    // The backlog: 500 texts, eight at a time, each a delivery to every webhook.
    let started = Instant::now();
    let flood = |n: usize| format!("flood {n}");
    let http = &api;
    futures::stream::iter(0..HOSTILE_TEXTS)
        .for_each_concurrent(8, |n| async move {
            http.text_from(
                tenant_digits,
                &flood(n),
                &format!("wamid.BENCHHOSTILE{n:05}"),
            )
            .await;
        })
        .await;
    let text_of = |payload: &[u8]| -> String {
        serde_json::from_slice::<Value>(payload)
            .ok()
            .and_then(|v| v["message"]["text"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let backlog = || async {
        deliveries_of(&store, tenant)
            .await
            .into_iter()
            .filter(|d| text_of(&d.payload).starts_with("flood "))
            .collect::<Vec<_>>()
    };
    let expected = HOSTILE_WEBHOOKS * HOSTILE_TEXTS;
    loop {
        let claimed = backlog().await.len();
        if claimed >= expected {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "only {claimed} of {expected} deliveries claimed"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let claimed = started.elapsed();

    // The other users' texts; each retry's landing after its failed first attempt. Meanwhile,
    // every sweep interval, where the backlog stands along its schedule.
    let retries = futures::future::join_all(victims.iter().enumerate().map(
        |(n, (_, digits, seen))| async move {
            let text = format!("victim {n}");
            http.text_from(digits, &text, &format!("wamid.BENCHVICTIM{n:02}"))
                .await;
            let first = arrival(seen, |a| a.1 == text).await;
            let retry = {
                let started = Instant::now();
                loop {
                    let landed = seen.lock().ok().and_then(|s| {
                        s.arrivals
                            .iter()
                            .filter(|a| a.1 == text)
                            .nth(1)
                            .map(|a| a.2)
                    });
                    if let Some(landed) = landed {
                        break landed;
                    }
                    assert!(started.elapsed() < PATIENCE, "{text}: no retry landed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            retry.saturating_duration_since(first).as_secs_f64()
        },
    ));
    let progress = async {
        let mut lines = Vec::new();
        loop {
            let stand = backlog().await;
            let pending: Vec<_> = stand
                .iter()
                .filter(|d| d.state == DeliveryState::Pending)
                .collect();
            let by_attempt: Vec<String> = (1..=schedule.attempts())
                .map(|a| {
                    let n = pending.iter().filter(|d| d.next_attempt == a).count();
                    format!("{a}: {n}")
                })
                .collect();
            let count = |state: DeliveryState| stand.iter().filter(|d| d.state == state).count();
            lines.push(format!(
                "  +{:>4.0} s  pending {:>4} (next attempt {}), failed {:>4}, cancelled {:>4}",
                started.elapsed().as_secs_f64(),
                pending.len(),
                by_attempt.join(", "),
                count(DeliveryState::Failed),
                count(DeliveryState::Cancelled)
            ));
            if pending.is_empty() || started.elapsed() > PATIENCE {
                break (lines, pending.is_empty(), started.elapsed(), stand);
            }
            tokio::time::sleep(Duration::from_secs(HOSTILE_SWEEP_SECONDS)).await;
        }
    };
    let (landed, (lines, ended, took, stand)) = tokio::join!(retries, progress);

    // Every delivery that failed for good is in the log with its last attempt.
    let last = schedule.attempts();
    let logged: std::collections::HashSet<(String, String)> = logs_of(&store, tenant)
        .await
        .into_iter()
        .filter(|e| e.attempt_number == last && e.status == LogStatus::Failed)
        .map(|e| (e.event_id, e.webhook_id))
        .collect();
    let failed: Vec<_> = stand
        .iter()
        .filter(|d| d.state == DeliveryState::Failed)
        .collect();
    let failed_logged = failed
        .iter()
        .filter(|d| logged.contains(&(d.event_id.clone(), d.webhook_id.clone())))
        .count();
    let attempts: usize = dead
        .iter()
        .map(|seen| seen.lock().map_or(0, |s| s.arrivals.len()))
        .sum();

    let bound = first_wait + HOSTILE_SWEEP_SECONDS as f64;
    println!();
    println!(
        "A hostile tenant (tools/dev.sh, the sweep every {HOSTILE_SWEEP_SECONDS} s, WEBHOOK_RETRY_SCHEDULE_SECONDS={HOSTILE_SCHEDULE}): {HOSTILE_WEBHOOKS} webhooks at endpoints that never answer, {expected} deliveries claimed {:.1} s after the first of {HOSTILE_TEXTS} texts; the tenant's due shard {}",
        claimed.as_secs_f64(),
        shard_of(tenant)
    );
    for line in &lines {
        println!("{line}");
    }
    let (other, shared) = (&victims[0], &victims[1]);
    println!(
        "{} another user's retry (shard {}) landed {:.1} s after its failed first attempt (the first wait {first_wait:.0} s + one sweep interval {HOSTILE_SWEEP_SECONDS} s = {bound:.0} s)",
        verdict(landed[0] <= bound),
        shard_of(&other.0),
        landed[0]
    );
    println!(
        "info a user in the tenant's shard ({}): its retry landed {:.1} s after its failed first attempt (each sweep reads {} of a shard, earliest first)",
        shard_of(&shared.0),
        landed[1],
        sandbox::delivery::sweep::SweepLimits::DEFAULT.per_shard
    );
    println!(
        "{} the backlog moved along its schedule to its end: {} of {expected} ended {:.0} s after the first text (failed {}, cancelled {}; {attempts} attempts reached the endpoints; the schedule alone is {:.0} s)",
        verdict(ended),
        stand.len() - stand.iter().filter(|d| d.state == DeliveryState::Pending).count(),
        took.as_secs_f64(),
        failed.len(),
        stand.iter().filter(|d| d.state == DeliveryState::Cancelled).count(),
        schedule.waits().iter().map(Duration::as_secs_f64).sum::<f64>()
    );
    println!(
        "{} every delivery that failed for good is logged with its last attempt ({last}): {failed_logged} of {}",
        verdict(failed_logged == failed.len()),
        failed.len()
    );
    logs_page_cost(&stack, &key, tenant).await;
    drop(stack);
}

/// Attempts written straight into the hostile tenant's log before its reads are counted: its
/// own run logs only the attempts that reached an endpoint (most of the backlog ends
/// cancelled, unattempted), so the log is grown to a size where reading all of it would show.
const BIG_LOG_EXTRA: usize = 2_000;

/// What reading the hostile tenant's log costs (issue 25, "Reads cost a page"), once grown by
/// [`BIG_LOG_EXTRA`] attempts with 10 KB answers: the webhooks function's handler, in process,
/// on a DynamoDB client that counts its requests, against the stack's table; and redeliver's
/// lookup of an event's latest attempt. Each is at most 2 requests whatever the log's size.
async fn logs_page_cost(stack: &Stack, key: &str, tenant: &str) {
    let store = stack.store();
    let user = UserId::new(tenant);
    let logged = logs_of(&store, tenant).await;
    let hooks: Vec<String> = logged.iter().map(|e| e.webhook_id.clone()).collect();
    let start = now() - 3 * 3600;
    futures::stream::iter(0..BIG_LOG_EXTRA)
        .for_each_concurrent(16, |n| {
            let (store, user) = (&store, &user);
            let webhook_id = hooks[n % hooks.len().max(1)].clone();
            async move {
                let event_id = format!("evt_{n:022}");
                let entry = sandbox::webhooks::LogEntry {
                    webhook_id,
                    webhook_name: "hostile".into(),
                    event: "message.received".into(),
                    url: "http://127.0.0.1:9/".into(),
                    status: LogStatus::Failed,
                    status_code: Some(500),
                    request_payload: format!(r#"{{"id":"{event_id}","event":"message.received"}}"#)
                        .into_bytes(),
                    event_id,
                    response_body: "x".repeat(10 * 1024),
                    error_message: None,
                    attempt_number: 1,
                    response_time_ms: 9,
                    created_at: start + n as i64,
                };
                store
                    .log_attempt(user, &entry)
                    .await
                    .expect("an attempt logged");
            }
        })
        .await;
    let counter = e2e::RequestCounter::default();
    let client = e2e::dynamo::client(&stack.dynamodb, Some(counter.clone()));
    let vars: HashMap<&str, String> = HashMap::from([
        ("TABLE_NAME", DEV_TABLE.to_owned()),
        ("SANDBOX_DISPLAY_NUMBER", "+12029087457".to_owned()),
        ("SANDBOX_PHONE_NUMBER_ID", DEV_PHONE_NUMBER_ID.to_owned()),
        ("AUTH_CACHE_SECONDS", "60".to_owned()),
    ]);
    let config = sandbox::Config::from_lookup(sandbox::Role::Webhooks, |k| vars.get(k).cloned())
        .expect("the webhooks function's configuration");
    let app = sandbox::App::new(
        config,
        Store::new(client, DEV_TABLE),
        None,
        Arc::new(sandbox::SystemClock),
    );
    let egress = sandbox::outbound::EgressClient::new(
        sandbox::outbound::Targets::PrivateAllowed,
        Duration::from_secs(5),
    )
    .expect("an egress client");
    let page = |query: Vec<(&'static str, String)>| {
        let (app, egress, counter) = (&app, &egress, &counter);
        async move {
            let query: HashMap<String, String> =
                query.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let req = e2e::request(
                lambda_http::http::Method::GET,
                "/v1/webhooks/logs",
                Some(key),
                lambda_http::Body::Empty,
            );
            let req = lambda_http::RequestExt::with_query_string_parameters(req, query);
            counter.reset();
            let response = sandbox::api::webhooks::handle(app, egress, req).await;
            let requests = counter.take();
            let body: Value = match response.body() {
                lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
                _ => Value::Null,
            };
            assert_eq!(response.status(), 200, "{body}");
            (body, requests)
        }
    };
    // The key is cached by the first call, as in a warm container.
    let (first, _) = page(vec![("limit", "1".to_owned())]).await;
    let total = first["pagination"]["total"].as_u64().unwrap_or_default();
    let newest = &first["logs"][0];
    let (webhook_id, event_id) = (
        newest["webhookId"].as_str().unwrap_or_default().to_owned(),
        newest["eventId"].as_str().unwrap_or_default().to_owned(),
    );
    let size = logs_of(&stack.store(), tenant)
        .await
        .iter()
        .map(|e| e.request_payload.len() + e.response_body.len())
        .sum::<usize>();
    println!();
    println!(
        "The hostile tenant's log: {total} attempts ({:.1} MB of payloads and answers); what a read costs (DynamoDB requests, counted by the client)",
        size as f64 / 1e6
    );
    for (what, query) in [
        ("the newest page (limit 50)", vec![]),
        (
            "a page further on (limit 100, skip 1000)",
            vec![("limit", "100".to_owned()), ("skip", "1000".to_owned())],
        ),
        (
            "the last page (limit 100)",
            vec![
                ("limit", "100".to_owned()),
                ("skip", total.saturating_sub(100).to_string()),
            ],
        ),
        (
            "one webhook's newest page",
            vec![("webhookId", webhook_id.clone())],
        ),
        ("one event's attempts", vec![("eventId", event_id.clone())]),
    ] {
        let (body, requests) = page(query).await;
        println!(
            "{} {what}: {} requests ({}), {} entries, total {}",
            verdict(requests.len() <= 2),
            requests.len(),
            requests.join(", "),
            body["logs"].as_array().map_or(0, Vec::len),
            body["pagination"]["total"]
        );
    }
    counter.reset();
    let latest = app
        .store
        .latest_webhook_log(&UserId::new(tenant), &webhook_id, &event_id, now())
        .await
        .expect("the latest attempt");
    let requests = counter.take();
    println!(
        "{} redeliver's lookup of the event's latest attempt: {} requests ({}), found attempt {}",
        verdict(requests.len() <= 2 && latest.is_some()),
        requests.len(),
        requests.join(", "),
        latest.map_or(0, |e| e.attempt_number)
    );
}

async fn logs_of(store: &Store, user: &str) -> Vec<sandbox::webhooks::LogEntry> {
    let user = sandbox::session::UserId::new(user);
    store
        .webhook_logs(
            &user,
            &sandbox::webhooks::LogFilter::default(),
            0,
            10_000,
            now(),
        )
        .await
        .map(|p| p.entries)
        .unwrap_or_default()
}

async fn deliveries_of(store: &Store, user: &str) -> Vec<sandbox::store::DeliveryItem> {
    store
        .deliveries_of(&sandbox::session::UserId::new(user))
        .await
        .unwrap_or_default()
}
