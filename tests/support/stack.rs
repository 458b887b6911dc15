//! `make dev`'s stack for the tests that drive it (`tests/dev_stack.rs`, `tests/console.rs`):
//! `tools/dev.sh --headless` (or `make dev`) on free ports, its state directory, its logs for
//! failure messages, and stopping it so that every process it started is gone, whether the
//! test passes or fails.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A cold machine compiles the functions first; a warm one is up in seconds.
pub const START_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// From a write to the receiver: stream-pump's poll, and the events function's first
/// invocation waits for cargo lambda watch to start it.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);

/// The ports of a stack: API, DynamoDB Local, graph-stub, webhook-receiver.
pub type Ports = [u16; 4];

/// How the stack is started.
#[derive(Debug, Clone, Copy)]
pub enum Launch {
    /// `tools/dev.sh --headless`: logs to files, stops when its standard input closes.
    Headless,
    /// `make dev`, as a newcomer or a process manager runs it.
    Make,
}

/// Who is sent the signal that should stop the stack.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The started process alone (`kill <pid>`, what many process managers send first).
    Process,
    /// Its whole process group (a terminal's Ctrl-C, `timeout`, systemd's control group).
    Group,
}

/// A running `make dev` or `tools/dev.sh --headless`.
pub struct Stack {
    child: Child,
    /// Held open: when this test process dies, however it dies, dev.sh sees EOF and stops.
    _stdin: ChildStdin,
    /// Its state directory: logs and generated files.
    pub dir: PathBuf,
    /// The API's base URL.
    pub api: String,
    /// A fresh API key of user `dev-user`.
    pub key: String,
    /// webhook-receiver's URL and secret (stack.env).
    pub receiver: (String, String),
    /// `[api, dynamodb, graph, receiver]`.
    pub ports: Ports,
}

impl Stack {
    /// Starts the stack on free ports and waits until it reports ready.
    pub fn start() -> Self {
        Self::start_on(free_ports())
    }

    /// Starts the stack on `[api, dynamodb, graph, receiver]` and waits until it reports ready.
    pub fn start_on(ports: Ports) -> Self {
        Self::launch(Launch::Headless, ports)
    }

    /// Starts the stack on free ports with `env` (`DEV_WINDOW_SECONDS`, ...) set for dev.sh,
    /// and waits until it reports ready.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        Self::launch_with(Launch::Headless, free_ports(), env)
    }

    /// Starts the stack the way `launch` says and waits until it reports ready.
    pub fn launch(launch: Launch, ports: Ports) -> Self {
        Self::launch_with(launch, ports, &[])
    }

    /// [`Stack::launch`] with `env` set for dev.sh.
    fn launch_with(launch: Launch, ports: Ports, env: &[(&str, &str)]) -> Self {
        let mut child = Self::spawn(launch, ports, env);
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

    /// Runs the stack on `ports` with `env` set, output into its state directory's dev.log.
    pub fn spawn(launch: Launch, ports: Ports, env: &[(&str, &str)]) -> Child {
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
            .envs(env.iter().copied())
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
    pub fn interrupt(&mut self) {
        self.stop_by("INT", Target::Group);
    }

    /// Sends `sig` to `target` (the started process is its group's leader). Everything the
    /// stack started must be gone within 30 s: every process group dev.sh recorded (stream-pump
    /// listens on no port), and every port free.
    pub fn stop_by(&mut self, sig: &str, target: Target) {
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
    pub fn wait_until_ready(&mut self) {
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
    pub fn logs(&self) -> String {
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
    pub fn groups(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("pgids"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Waits until webhook-receiver has printed a line that starts with `start` and contains
    /// `rest`; answers it.
    pub async fn wait_for_receiver(&self, start: &str, rest: &str) -> String {
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

    /// Waits (briefly: it prints as it acts) until graph-stub has printed `line`.
    pub async fn wait_for_stub(&self, line: &str) {
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
pub fn state_dir(ports: Ports) -> PathBuf {
    std::env::temp_dir().join(format!(
        "dev-stack-test-{}-{}",
        std::process::id(),
        ports[0]
    ))
}

/// Four distinct free ports: API, DynamoDB Local, graph-stub, webhook-receiver.
pub fn free_ports() -> Ports {
    // Bound at the same time, so the four are distinct.
    let listeners: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free local port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("local address").port();
    [port(0), port(1), port(2), port(3)]
}
