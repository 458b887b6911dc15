//! `make dev`, driven the way a newcomer drives it: `tools/dev.sh --headless` brings up
//! DynamoDB Local, graph-stub, webhook-receiver, the functions behind `cargo lambda watch` and
//! stream-pump on free ports, and one activation runs over real HTTP: webhook-receiver is
//! registered as the user's webhook, then create, the stub's signed reply, list until active
//! while the activation and the reply arrive at the receiver with both signatures verified, a
//! sandbox message whose statuses and echo reach the conversation (and the echo the receiver),
//! revoke, list empty, and a send Meta refuses rolled back. A virtual phone (`+1 201 555
//! 0150`) activates by itself and answers a `/reply`, the receiver printing the signed events,
//! and the CI example (`examples/ci/`, `node --test`) passes against the stack. Ctrl-C, SIGTERM
//! (to `make dev` or its process group) and `make` killed outright all stop every process the
//! stack started (README, "Local development"). Every process the stack started is stopped when
//! the test ends, whether it passes or fails.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{SANDBOX_NUMBER, SPAIN, SPAIN_DIGITS};
use graph_stub::meta::BUTTON_TEXT;
use serde_json::{json, Value};

/// A cold machine compiles the functions first; a warm one is up in seconds.
const START_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The stub replies about a second after the send; the first webhook call starts its function.
const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(60);
/// From a write to the receiver: stream-pump's poll, and the events function's first
/// invocation waits for cargo lambda watch to start it.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);

/// The ports of a stack: API, DynamoDB Local, graph-stub, webhook-receiver.
type Ports = [u16; 4];

/// How the stack is started.
#[derive(Debug, Clone, Copy)]
enum Launch {
    /// `tools/dev.sh --headless`: logs to files, stops when its standard input closes.
    Headless,
    /// `make dev`, as a newcomer or a process manager runs it.
    Make,
}

/// Who is sent the signal that should stop the stack.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The started process alone (`kill <pid>`, what many process managers send first).
    Process,
    /// Its whole process group (a terminal's Ctrl-C, `timeout`, systemd's control group).
    Group,
}

/// A running `make dev` or `tools/dev.sh --headless`.
struct Stack {
    child: Child,
    /// Held open: when this test process dies, however it dies, dev.sh sees EOF and stops.
    _stdin: ChildStdin,
    dir: PathBuf,
    api: String,
    key: String,
    /// webhook-receiver's URL and secret (stack.env).
    receiver: (String, String),
    ports: Ports,
}

impl Stack {
    /// Starts the stack on free ports and waits until it reports ready.
    fn start() -> Self {
        Self::start_on(free_ports())
    }

    /// Starts the stack on `[api, dynamodb, graph, receiver]` and waits until it reports ready.
    fn start_on(ports: Ports) -> Self {
        Self::launch(Launch::Headless, ports)
    }

    /// Starts the stack the way `launch` says and waits until it reports ready.
    fn launch(launch: Launch, ports: Ports) -> Self {
        let mut child = Self::spawn(launch, ports);
        let stdin = child.stdin.take().expect("piped stdin");
        // Built before waiting, so a failed start is cleaned up by `Drop` too.
        let mut stack = Self {
            child,
            _stdin: stdin,
            dir: state_dir(ports),
            api: format!("http://127.0.0.1:{}", ports[0]),
            key: String::new(),
            receiver: (String::new(), String::new()),
            ports,
        };
        stack.wait_until_ready();
        stack
    }

    /// Runs the stack on `ports`, output into its state directory's dev.log.
    fn spawn(launch: Launch, ports: Ports) -> Child {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ is inside the repository")
            .to_path_buf();
        let dir = state_dir(ports);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the stack's state directory");
        let log = std::fs::File::create(dir.join("dev.log")).expect("create dev.log");
        let [api, dynamodb, graph, receiver] = ports;
        let mut command = match launch {
            Launch::Headless => {
                let mut c = Command::new("bash");
                c.arg(root.join("tools/dev.sh")).arg("--headless");
                c
            }
            Launch::Make => {
                let mut c = Command::new("make");
                c.args(["--no-print-directory", "dev"]);
                c
            }
        };
        command
            .current_dir(&root)
            .env("DEV_API_PORT", api.to_string())
            .env("DEV_DYNAMODB_PORT", dynamodb.to_string())
            .env("DEV_GRAPH_PORT", graph.to_string())
            .env("DEV_RECEIVER_PORT", receiver.to_string())
            .env("DEV_STATE_DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("dev.log handle"))
            .stderr(log);
        // What `cargo test` sets for this test is not meant for the builds dev.sh runs.
        for (name, _) in std::env::vars() {
            if name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_BIN_EXE_")
                || matches!(
                    name.as_str(),
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "MAKEFLAGS"
                        | "MFLAGS"
                        | "MAKELEVEL"
                )
            {
                command.env_remove(name);
            }
        }
        // Its own process group, so stopping it can reach dev.sh and whatever it runs in the
        // foreground (a build, make) at once.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {launch:?} (are bash and make installed?): {e}"))
    }

    /// Ctrl-C: SIGINT to the whole process group, as a terminal sends it.
    fn interrupt(&mut self) {
        self.stop_by("INT", Target::Group);
    }

    /// Sends `sig` to `target` (the started process is its group's leader). Everything the
    /// stack started must be gone within 30 s: every process group dev.sh recorded (stream-pump
    /// listens on no port), and every port free.
    fn stop_by(&mut self, sig: &str, target: Target) {
        let what = format!("SIG{sig} to the {target:?}");
        let groups = self.groups();
        // DynamoDB Local, graph-stub, webhook-receiver, cargo lambda watch, two stream-pumps.
        assert_eq!(
            groups.len(),
            6,
            "dev.sh recorded {groups:?} as the stack's process groups\n{}",
            self.logs()
        );
        let pid = self.child.id();
        match target {
            Target::Group => signal(sig, pid),
            Target::Process => {
                let _ = Command::new("kill")
                    .args(["-s", sig, &pid.to_string()])
                    .status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(
                Instant::now() < deadline,
                "the stack still runs 30 s after {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Killed outright, make is gone at once; dev.sh notices and stops what it started.
        for pgid in groups {
            while group_alive(pgid) {
                assert!(
                    Instant::now() < deadline,
                    "process group {pgid} still runs 30 s after {what}\n{}",
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for port in self.ports {
            while TcpListener::bind(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "port {port} is still in use 30 s after {what}\n{}",
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Waits for `stack.env`, which dev.sh writes once everything listens; takes the API key
    /// and the receiver's URL and secret from it.
    fn wait_until_ready(&mut self) {
        let started = Instant::now();
        let ready = self.dir.join("stack.env");
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let vars: HashMap<&str, &str> =
                    text.lines().filter_map(|l| l.split_once('=')).collect();
                let var = |name: &str| vars.get(name).copied().unwrap_or_default().to_owned();
                let key = var("DEV_API_KEY");
                assert!(key.starts_with("wsk_"), "stack.env has no API key:\n{text}");
                let receiver = (var("DEV_RECEIVER_URL"), var("DEV_RECEIVER_SECRET"));
                assert_eq!(
                    receiver.0,
                    format!("http://127.0.0.1:{}/", self.ports[3]),
                    "{text}"
                );
                assert!(receiver.1.starts_with("whsec_"), "{text}");
                eprintln!(
                    "dev stack ready in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                self.key = key;
                self.receiver = receiver;
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "tools/dev.sh exited ({status}) before the stack was ready.\n{}",
                    self.logs()
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the dev stack was not ready within {} s.\n{}",
                START_TIMEOUT.as_secs(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The tails of the stack's logs, for failure messages.
    fn logs(&self) -> String {
        [
            "dev.log",
            "graph-stub.log",
            "webhook-receiver.log",
            "stream-pump.log",
            "phone-pump.log",
            "watch.log",
            "dynamodb.log",
        ]
        .iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(self.dir.join(name)).ok()?;
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            Some(format!("--- {name} (last 40 lines) ---\n{tail}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// The process groups dev.sh recorded (one per process it started).
    fn groups(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("pgids"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Waits until webhook-receiver has printed a line that starts with `start` and contains
    /// `rest`; answers it.
    async fn wait_for_receiver(&self, start: &str, rest: &str) -> String {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            let printed =
                std::fs::read_to_string(self.dir.join("webhook-receiver.log")).unwrap_or_default();
            let found = printed
                .lines()
                .find(|l| l.starts_with(start) && l.contains(rest));
            if let Some(line) = found {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "webhook-receiver never printed {start:?} … {rest:?} within {} s\n{}",
                DELIVERY_TIMEOUT.as_secs(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Registers webhook-receiver as the user's webhook for the activation and received
    /// messages, as the printed next steps show.
    async fn register_receiver(&self, http: &reqwest::Client) {
        let (url, secret) = self.receiver.clone();
        let (status, registered) = call(
            self,
            http.post(format!("{}/v1/webhooks/settings", self.api))
                .header("authorization", format!("Bearer {}", self.key))
                .json(&json!({
                    "name": "make dev receiver",
                    "url": url,
                    "secret": secret,
                    "events": ["message.received", "whatsapp.sandbox.session.activated"],
                })),
        )
        .await;
        assert_eq!(status, 200, "{registered}\n{}", self.logs());
    }

    /// Lists the user's sessions until the first is active (at most [`ACTIVATION_TIMEOUT`]):
    /// that list.
    async fn until_active(&self, http: &reqwest::Client) -> Value {
        let sessions = format!("{}/v1/whatsapp/sandbox/sessions", self.api);
        let started = Instant::now();
        loop {
            let (status, listed) = call(
                self,
                http.get(&sessions)
                    .header("authorization", format!("Bearer {}", self.key)),
            )
            .await;
            assert_eq!(status, 200, "{listed}");
            if listed["sessions"][0]["status"] == "active" {
                return listed;
            }
            assert!(
                started.elapsed() < ACTIVATION_TIMEOUT,
                "the session is still not active after {} s: {listed}\n{}",
                ACTIVATION_TIMEOUT.as_secs(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits (briefly: it prints as it acts) until graph-stub has printed `line`.
    async fn wait_for_stub(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let printed =
                std::fs::read_to_string(self.dir.join("graph-stub.log")).unwrap_or_default();
            if printed.contains(line) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "graph-stub never printed {line:?}:\n{printed}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Stack {
    /// SIGTERM lets dev.sh stop what it started (each in its own process group); if it has not
    /// finished within 20 s, every group it recorded is killed outright.
    fn drop(&mut self) {
        let groups = self.groups();
        signal("TERM", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for pgid in groups {
            signal("KILL", pgid);
        }
        signal("KILL", self.child.id());
        let _ = self.child.wait();
    }
}

/// Sends `signal` to every process in group `pgid`.
fn signal(signal: &str, pgid: u32) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// Whether any process of group `pgid` still runs.
fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Where a stack on `ports` keeps its logs and generated files.
fn state_dir(ports: Ports) -> PathBuf {
    std::env::temp_dir().join(format!(
        "dev-stack-test-{}-{}",
        std::process::id(),
        ports[0]
    ))
}

fn free_ports() -> Ports {
    // Bound at the same time, so the four are distinct.
    let listeners: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free local port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("local address").port();
    [port(0), port(1), port(2), port(3)]
}

/// Sends `request` and reads the JSON answer; a transport failure fails the test with the logs.
async fn call(stack: &Stack, request: reqwest::RequestBuilder) -> (u16, Value) {
    let what = format!("{request:?}");
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}\n{}", stack.logs()));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn make_dev_serves_the_whole_activation_flow_on_localhost() {
    let stack = Stack::start();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client");
    let sessions = format!("{}/v1/whatsapp/sandbox/sessions", stack.api);
    let auth = format!("Bearer {}", stack.key);

    // webhook-receiver becomes the user's webhook, as the printed next steps show.
    stack.register_receiver(&http).await;

    // Create: pending, and the stub got the activation template.
    let (status, created) = call(
        &stack,
        http.post(&sessions)
            .header("authorization", &auth)
            .json(&json!({ "phone": SPAIN })),
    )
    .await;
    assert_eq!(status, 200, "{created}\n{}", stack.logs());
    let session = &created["session"];
    let id = session["id"].as_str().expect("session id").to_owned();
    assert_eq!(session["status"], "pending");
    assert_eq!(session["phoneE164"], SPAIN_DIGITS);
    assert_eq!(created["sandboxNumber"], SANDBOX_NUMBER);

    // The stub plays the phone owner: its signed reply reaches the webhook and activates.
    let listed = stack.until_active(&http).await;
    assert_eq!(listed["sessions"][0]["id"], id.as_str());
    assert!(listed["sessions"][0]["activatedAt"].is_string(), "{listed}");
    stack
        .wait_for_stub(&format!("payload   activate:{id}"))
        .await;
    stack.wait_for_stub("webhook answered 200 OK").await;

    // The activation and the phone's reply reach the receiver through the table's stream,
    // stream-pump and the events function, signed both ways and verified.
    let verified = "webhook-receiver: verified ";
    let activated = stack
        .wait_for_receiver(
            &format!("{verified}whatsapp.sandbox.session.activated evt_"),
            &format!("session {id}"),
        )
        .await;
    let reply = stack
        .wait_for_receiver(
            &format!("{verified}message.received evt_"),
            &format!("text {}", json!(BUTTON_TEXT)),
        )
        .await;
    eprintln!("{activated}\n{reply}");

    // A sandbox message: the stub prints it, reports it sent, delivered and read, and echoes
    // it; the conversation shows all of it.
    let messages = format!("{}/v1/whatsapp/sandbox/messages", stack.api);
    let (status, sent) = call(
        &stack,
        http.post(&messages)
            .header("authorization", &auth)
            .json(&json!({ "type": "text", "text": { "body": "hello from make dev" } })),
    )
    .await;
    assert_eq!(status, 200, "{sent}\n{}", stack.logs());
    let message_id = sent["message"]["id"]
        .as_str()
        .expect("a message id")
        .to_owned();
    stack.wait_for_stub("text      hello from make dev").await;
    let started = Instant::now();
    loop {
        let (status, page) = call(&stack, http.get(&messages).header("authorization", &auth)).await;
        assert_eq!(status, 200, "{page}");
        let all = page["messages"].as_array().cloned().unwrap_or_default();
        let ours = all.iter().find(|m| m["id"] == message_id.as_str());
        let echoed = all.iter().any(|m| {
            m["direction"] == "inbound" && m["text"]["body"] == "Echo: hello from make dev"
        });
        if ours.is_some_and(|m| m["status"] == "read") && echoed {
            assert!(page["windowExpiresAt"].is_string(), "{page}");
            break;
        }
        assert!(
            started.elapsed() < ACTIVATION_TIMEOUT,
            "no read status and echo after {} s: {page}\n{}",
            ACTIVATION_TIMEOUT.as_secs(),
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The echo is a message.received too; nothing was refused, and no status was delivered
    // (the webhook subscribes to none).
    stack
        .wait_for_receiver(
            &format!("{verified}message.received evt_"),
            "text \"Echo: hello from make dev\"",
        )
        .await;
    let printed =
        std::fs::read_to_string(stack.dir.join("webhook-receiver.log")).unwrap_or_default();
    assert!(!printed.contains("refused"), "{printed}");
    assert!(!printed.contains("verified message.read"), "{printed}");

    // Revoke, then nothing is left.
    let (status, revoked) = call(
        &stack,
        http.delete(format!("{sessions}/{id}"))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!((status, revoked), (200, json!({ "success": true })));
    let (_, listed) = call(&stack, http.get(&sessions).header("authorization", &auth)).await;
    assert_eq!(listed["sessions"], json!([]), "{listed}");

    // A number Meta refuses: Meta's error comes back verbatim and the session is rolled back.
    let (status, refused) = call(
        &stack,
        http.post(&sessions)
            .header("authorization", &auth)
            .json(&json!({ "phone": "+34 600 000 042" })),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "whatsapp_send_failed");
    assert_eq!(refused["platformError"]["code"], 131030);
    let (_, listed) = call(&stack, http.get(&sessions).header("authorization", &auth)).await;
    assert_eq!(listed["sessions"], json!([]), "{listed}");

    // Ctrl-C stops everything it started; a second start on the same ports works.
    let mut stack = stack;
    stack.interrupt();
    let again = Stack::start_on(stack.ports);
    // A fresh client: the old one's pooled connections went to the stack that was stopped.
    let http = reqwest::Client::new();
    let (status, listed) = call(
        &again,
        http.get(format!("{}/v1/whatsapp/sandbox/sessions", again.api))
            .header("authorization", format!("Bearer {}", again.key)),
    )
    .await;
    assert_eq!(
        (status, listed["sessions"].clone()),
        (200, json!([])),
        "{}",
        again.logs()
    );
}

/// How long `node --test examples/ci/` may take (it waits for events up to a minute each).
const CI_EXAMPLE_LIMIT: Duration = Duration::from_secs(300);

#[tokio::test]
async fn make_dev_plays_a_virtual_phone_that_activates_by_itself_and_the_ci_example_passes() {
    let stack = Stack::start();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client");
    let sessions = format!("{}/v1/whatsapp/sandbox/sessions", stack.api);
    let auth = format!("Bearer {}", stack.key);
    stack.register_receiver(&http).await;

    // The README's first screen: a session for +1 201 555 0150, which taps Activate as soon
    // as its template is delivered; the phone function plays it from the stream.
    let (status, created) = call(
        &stack,
        http.post(&sessions)
            .header("authorization", &auth)
            .json(&json!({ "phone": "+1 201 555 0150" })),
    )
    .await;
    assert_eq!(status, 200, "{created}\n{}", stack.logs());
    let id = created["session"]["id"]
        .as_str()
        .expect("session id")
        .to_owned();
    stack.until_active(&http).await;
    let verified = "webhook-receiver: verified ";
    stack
        .wait_for_receiver(
            &format!("{verified}whatsapp.sandbox.session.activated evt_"),
            &format!("session {id}"),
        )
        .await;
    stack
        .wait_for_receiver(
            &format!("{verified}message.received evt_"),
            &format!("text {}", json!(BUTTON_TEXT)),
        )
        .await;

    // The phone answers when told, and the answer reaches the receiver too.
    let (status, replied) = call(
        &stack,
        http.post(format!("{sessions}/{id}/reply"))
            .header("authorization", &auth)
            .json(&json!({ "type": "text", "text": "hello from the virtual phone" })),
    )
    .await;
    assert_eq!(status, 200, "{replied}\n{}", stack.logs());
    assert_eq!(
        replied["message"]["text"]["body"],
        "hello from the virtual phone"
    );
    stack
        .wait_for_receiver(
            &format!("{verified}message.received evt_"),
            "hello from the virtual phone",
        )
        .await;
    // Nothing about it ever reached the Graph API stand-in.
    let stub = std::fs::read_to_string(stack.dir.join("graph-stub.log")).unwrap_or_default();
    assert!(!stub.contains("12015550150"), "{stub}");
    let (status, _) = call(
        &stack,
        http.delete(format!("{sessions}/{id}"))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(status, 200);

    // examples/ci, as a user's CI runs it: node:test, @zernio/node and fetch, against the stack.
    let (api, key) = (stack.api.clone(), stack.key.clone());
    let (passed, output) = tokio::task::spawn_blocking(move || {
        let vars = [
            ("SANDBOX_API_URL", api.as_str()),
            ("SANDBOX_API_KEY", key.as_str()),
        ];
        e2e::node::run(&["--test", "examples/ci/"], &vars, CI_EXAMPLE_LIMIT)
    })
    .await
    .expect("the example ran");
    eprintln!("{output}");
    assert!(
        passed,
        "node --test examples/ci/ failed:\n{output}\n{}",
        stack.logs()
    );
}

#[test]
fn make_dev_stops_everything_on_sigterm_as_on_ctrl_c_and_starts_again() {
    let ports = free_ports();
    // `kill <pid>` or a process manager: SIGTERM to make alone, which passes it to dev.sh.
    Stack::launch(Launch::Make, ports).stop_by("TERM", Target::Process);
    // `timeout`, systemd's control group: SIGTERM to make and dev.sh at once.
    Stack::launch(Launch::Make, ports).stop_by("TERM", Target::Group);
    // A process manager's last resort after its grace period: make killed outright.
    Stack::launch(Launch::Make, ports).stop_by("KILL", Target::Process);
    // After all that, the same ports serve a new stack.
    let mut again = Stack::launch(Launch::Make, ports);
    assert!(again.key.starts_with("wsk_"), "{}", again.logs());
    again.stop_by("TERM", Target::Process);
}

#[test]
fn a_busy_port_is_named_with_the_variable_that_moves_it() {
    let busy = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let port = busy.local_addr().expect("address").port();
    for (at, variable) in [(0, "DEV_API_PORT="), (3, "DEV_RECEIVER_PORT=")] {
        let mut ports = free_ports();
        ports[at] = port;
        let mut child = Stack::spawn(Launch::Headless, ports);
        let status = child.wait().expect("dev.sh ran");
        let log = std::fs::read_to_string(state_dir(ports).join("dev.log")).unwrap_or_default();
        assert!(!status.success(), "dev.sh must refuse a busy port\n{log}");
        assert!(log.contains(&format!("port {port}")), "{log}");
        assert!(log.contains("already in use"), "{log}");
        assert!(log.contains(variable), "{log}");
        let _ = std::fs::remove_dir_all(state_dir(ports));
    }
}
