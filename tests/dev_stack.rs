//! `make dev`, driven the way a newcomer drives it: `tools/dev.sh --headless` brings up
//! DynamoDB Local, graph-stub, webhook-receiver, the functions behind `cargo lambda watch` and
//! stream-pump on free ports, and one activation runs over real HTTP: webhook-receiver is
//! registered as the user's webhook, then create, the stub's signed reply, list until active
//! while the activation and the reply arrive at the receiver with both signatures verified, a
//! sandbox message whose statuses and echo reach the conversation (and the echo the receiver),
//! revoke, list empty, and a send Meta refuses rolled back. The README's first screen runs as
//! written (its shell lines, with the stack's ports): a virtual phone (`+1 201 555 0150`)
//! activates by itself, is sent a message and answers a `/reply`, and a test event is
//! redelivered, the receiver printing the signed events; then the CI example (`examples/ci/`,
//! `node --test`) passes against the stack. Ctrl-C, SIGTERM
//! (to `make dev` or its process group) and `make` killed outright all stop every process the
//! stack started (README, "Local development"). Every process the stack started is stopped when
//! the test ends, whether it passes or fails.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use e2e::node::repo_root;
use e2e::stack::{free_ports, state_dir, Launch, Stack, Target};
use e2e::{SANDBOX_NUMBER, SPAIN, SPAIN_DIGITS};
use graph_stub::meta::BUTTON_TEXT;
use serde_json::{json, Value};

/// The stub replies about a second after the send; the first webhook call starts its function.
const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of the sessions route.
const SESSIONS: &str = "/v1/whatsapp/sandbox/sessions";
/// The path of the messages route.
const MESSAGES: &str = "/v1/whatsapp/sandbox/messages";

/// The stack's API as its user calls it over HTTP: the user's key on every request, the JSON
/// answer read, and a transport failure failing the test with the stack's logs.
struct Api<'a> {
    stack: &'a Stack,
    http: reqwest::Client,
}

impl<'a> Api<'a> {
    /// A new client (no connection of another stack's in its pool) for `stack`.
    fn of(stack: &'a Stack) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client");
        Self { stack, http }
    }

    /// `GET path`: the status and the JSON answer.
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(self.http.get(self.url(path))).await
    }

    /// `POST path` with `body`: the status and the JSON answer.
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(self.http.post(self.url(path)).json(&body)).await
    }

    /// `DELETE path`: the status and the JSON answer.
    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(self.http.delete(self.url(path))).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.api)
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let request = request.header("authorization", format!("Bearer {}", self.stack.key));
        let what = format!("{request:?}");
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", self.stack.logs()));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers webhook-receiver as the user's webhook for the activation and received
    /// messages, as the printed next steps show.
    async fn register_receiver(&self) {
        let (url, secret) = self.stack.receiver.clone();
        let (status, registered) = self
            .post(
                "/v1/webhooks/settings",
                json!({
                    "name": "make dev receiver",
                    "url": url,
                    "secret": secret,
                    "events": ["message.received", "whatsapp.sandbox.session.activated"],
                }),
            )
            .await;
        assert_eq!(status, 200, "{registered}\n{}", self.stack.logs());
    }

    /// Creates a session for `phone` (expects 200): the answer.
    async fn create(&self, phone: &str) -> Value {
        let (status, created) = self.post(SESSIONS, json!({ "phone": phone })).await;
        assert_eq!(status, 200, "{created}\n{}", self.stack.logs());
        created
    }

    /// Lists the user's sessions until the first is active (at most [`ACTIVATION_TIMEOUT`]):
    /// that list.
    async fn until_active(&self) -> Value {
        let started = Instant::now();
        loop {
            let (status, listed) = self.get(SESSIONS).await;
            assert_eq!(status, 200, "{listed}");
            if listed["sessions"][0]["status"] == "active" {
                return listed;
            }
            assert!(
                started.elapsed() < ACTIVATION_TIMEOUT,
                "the session is still not active after {} s: {listed}\n{}",
                ACTIVATION_TIMEOUT.as_secs(),
                self.stack.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test]
async fn make_dev_serves_the_whole_activation_flow_on_localhost() {
    let stack = Stack::start();
    let api = Api::of(&stack);

    // webhook-receiver becomes the user's webhook, as the printed next steps show.
    api.register_receiver().await;

    // Create: pending, and the stub got the activation template.
    let created = api.create(SPAIN).await;
    let session = &created["session"];
    let id = session["id"].as_str().expect("session id").to_owned();
    assert_eq!(session["status"], "pending");
    assert_eq!(session["phoneE164"], SPAIN_DIGITS);
    assert_eq!(created["sandboxNumber"], SANDBOX_NUMBER);

    // The stub plays the phone owner: its signed reply reaches the webhook and activates.
    let listed = api.until_active().await;
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
    let (status, sent) = api
        .post(
            MESSAGES,
            json!({ "type": "text", "text": { "body": "hello from make dev" } }),
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
        let (status, page) = api.get(MESSAGES).await;
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
    let (status, revoked) = api.delete(&format!("{SESSIONS}/{id}")).await;
    assert_eq!((status, revoked), (200, json!({ "success": true })));
    let (_, listed) = api.get(SESSIONS).await;
    assert_eq!(listed["sessions"], json!([]), "{listed}");

    // A number Meta refuses: Meta's error comes back verbatim and the session is rolled back.
    let (status, refused) = api
        .post(SESSIONS, json!({ "phone": "+34 600 000 042" }))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "whatsapp_send_failed");
    assert_eq!(refused["platformError"]["code"], 131030);
    let (_, listed) = api.get(SESSIONS).await;
    assert_eq!(listed["sessions"], json!([]), "{listed}");

    // Ctrl-C stops everything it started; a second start on the same ports works.
    drop(api);
    let mut stack = stack;
    stack.interrupt();
    let again = Stack::start_on(stack.ports);
    // A fresh client: the old one's pooled connections went to the stack that was stopped.
    let (status, listed) = Api::of(&again).get(SESSIONS).await;
    assert_eq!(
        (status, listed["sessions"].clone()),
        (200, json!([])),
        "{}",
        again.logs()
    );
}

/// How long `node --test examples/ci/` may take (it waits for events up to a minute each).
const CI_EXAMPLE_LIMIT: Duration = Duration::from_secs(300);
/// How long the README's first screen may take (its `until` waits for the activation).
const README_LIMIT: Duration = Duration::from_secs(120);
/// The README's section whose shell lines are run as written.
const FIRST_SCREEN: &str = "## Try it with no phone and no Meta account";
/// The addresses those lines use: `make dev`'s API and webhook-receiver on their default ports.
const DEFAULT_API: &str = "http://localhost:9000";
const DEFAULT_RECEIVER: &str = "http://127.0.0.1:9200/";

/// The shell lines of the README's [`FIRST_SCREEN`], every `sh` block in order, as a newcomer
/// pastes them after `make dev`'s `export KEY=…`, with its default ports moved to the stack's.
fn readme_first_screen(stack: &Stack) -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md");
    let section = readme
        .split(&format!("\n{FIRST_SCREEN}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("README.md has no section {FIRST_SCREEN:?}"));
    let section = section.split("\n## ").next().unwrap_or_default();
    let script: String = section
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    for default in [DEFAULT_API, DEFAULT_RECEIVER] {
        assert!(
            script.contains(default),
            "the README's first screen no longer calls {default}:\n{script}"
        );
    }
    script
        .replace(DEFAULT_API, &stack.api)
        .replace(DEFAULT_RECEIVER, &stack.receiver.0)
}

#[tokio::test]
async fn the_readmes_first_screen_runs_as_written_on_make_dev_and_the_ci_example_passes() {
    let stack = Stack::start();
    let api = Api::of(&stack);

    // The README's lines, in bash with every failure fatal: the receiver registered, a session
    // for +1 201 555 0150, which taps Activate as soon as its template is delivered (the phone
    // function plays it from the stream), a message, a `/reply`, a test event redelivered.
    let (script, key) = (readme_first_screen(&stack), stack.key.clone());
    let (passed, output) = tokio::task::spawn_blocking(move || {
        let args = ["-euo", "pipefail", "-c", script.as_str()];
        e2e::node::run_program(
            "bash",
            "install bash",
            &args,
            &[("KEY", key.as_str())],
            README_LIMIT,
        )
    })
    .await
    .expect("the README's lines ran");
    assert!(
        passed,
        "the README's first screen failed:\n{output}\n{}",
        stack.logs()
    );
    assert!(
        !output.contains(r#""error":""#),
        "the API refused a line of the README's first screen:\n{output}"
    );
    assert!(
        output.contains(r#""phoneE164":"12015550150","status":"active""#),
        "{output}"
    );
    // The phone's answer to `/reply`, and the test event's redelivery.
    assert!(
        output.contains(r#""direction":"inbound","phoneE164":"12015550150","type":"text","text":{"body":"Thanks! When will it arrive?"}"#),
        "{output}"
    );
    assert!(output.contains(r#""attemptNumber":2"#), "{output}");
    let listed = api.until_active().await;
    let id = listed["sessions"][0]["id"]
        .as_str()
        .expect("session id")
        .to_owned();
    // The message the lines sent, which the phone reports read.
    let sent = output
        .split(r#"{"message":{"id":""#)
        .filter_map(|rest| rest.split_once(r#"","direction":"outbound""#))
        .map(|(wamid, _)| wamid.to_owned())
        .next()
        .unwrap_or_else(|| panic!("no sent message in the output:\n{output}"));
    let verified = "webhook-receiver: verified ";
    for (event, what) in [
        (
            "whatsapp.sandbox.session.activated",
            format!("session {id}"),
        ),
        ("message.received", format!("text {}", json!(BUTTON_TEXT))),
        ("message.read", format!("message {sent}")),
        (
            "message.received",
            r#"text "Thanks! When will it arrive?""#.to_owned(),
        ),
        ("webhook.test", "(again: same id)".to_owned()),
    ] {
        stack
            .wait_for_receiver(&format!("{verified}{event} evt_"), &what)
            .await;
    }
    // Nothing about it ever reached the Graph API stand-in.
    let stub = std::fs::read_to_string(stack.dir.join("graph-stub.log")).unwrap_or_default();
    assert!(!stub.contains("12015550150"), "{stub}");
    let (status, _) = api.delete(&format!("{SESSIONS}/{id}")).await;
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
        let mut child = Stack::spawn(Launch::Headless, ports, &[]);
        let status = child.wait().expect("dev.sh ran");
        let log = std::fs::read_to_string(state_dir(ports).join("dev.log")).unwrap_or_default();
        assert!(!status.success(), "dev.sh must refuse a busy port\n{log}");
        assert!(log.contains(&format!("port {port}")), "{log}");
        assert!(log.contains("already in use"), "{log}");
        assert!(log.contains(variable), "{log}");
        let _ = std::fs::remove_dir_all(state_dir(ports));
    }
}
