//! `sandbox-admin`: the operator's tool for the sandbox table, local or on AWS. It creates the
//! table the way the tests and `make dev` do, issues, lists and disables API keys, which the
//! HTTP API deliberately cannot do, and moves the delivery log to its paged layout once.

mod args;

use std::process::ExitCode;

use aws_config::BehaviorVersion;
use sandbox::clock::{Clock, SystemClock};
use sandbox::store::Store;

use args::{Command, USAGE};
use sandbox_admin::keys::{self, AdminError, HASH_SHOWN};

#[tokio::main]
async fn main() -> ExitCode {
    let invocation = match args::parse(std::env::args().skip(1)) {
        Ok(invocation) => invocation,
        Err(message) => return usage_error(&message),
    };
    if invocation.command == Command::Help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let table = invocation
        .table
        .or_else(|| std::env::var("TABLE_NAME").ok())
        .filter(|t| !t.trim().is_empty());
    let Some(table) = table else {
        return usage_error("no table: pass --table NAME or set TABLE_NAME");
    };
    // The SDK's own lookup: AWS_ENDPOINT_URL_DYNAMODB, region, profile and credentials.
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(sandbox::app::https_client())
        .load()
        .await;
    if sdk.region().is_none() {
        eprintln!(
            "sandbox-admin: no AWS region: set AWS_REGION (with DynamoDB Local any value works, \
             e.g. us-east-1)"
        );
        return ExitCode::FAILURE;
    }
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    match run(&store, invocation.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox-admin: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("sandbox-admin: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

async fn run(store: &Store, command: Command) -> Result<(), AdminError> {
    match command {
        Command::Help => println!("{USAGE}"),
        Command::CreateTable => create_table(store).await?,
        Command::CreateKey { user, label, key } => {
            let key = match key {
                Some(k) => k,
                None => keys::generate_key()?,
            };
            let record = keys::create_key(store, &key, &user, label, SystemClock.now()).await?;
            // The key alone on stdout, so scripts can capture it; the advice goes to stderr.
            println!("{key}");
            eprintln!(
                "Created an API key for user {user} (hash {}). This is the only time the key \
                 is shown: only its SHA-256 hash is stored.",
                &record.hash()[..HASH_SHOWN]
            );
        }
        Command::ListKeys => print!("{}", keys::table(&keys::keys_with_prefix(store, "").await?)),
        Command::MigrateWebhookLogs => {
            let moved = store.migrate_legacy_webhook_logs().await?;
            println!("Moved {moved} delivery log entries to the paged layout.");
            let moved = store.migrate_legacy_due_deliveries().await?;
            println!("Moved {moved} due deliveries to their users' shards of the due index.");
        }
        Command::DisableKey { hash } => {
            let record = keys::find_key(store, &hash).await?;
            keys::disable_key(store, &record).await?;
            println!(
                "Disabled key {} of user {}. Containers that used it in the last \
                 AUTH_CACHE_SECONDS (default 60) may accept it until their cache expires.",
                &record.hash()[..HASH_SHOWN],
                record.user_id
            );
        }
    }
    Ok(())
}

/// Creates the table with `sandbox::store::create_table` (the definition the tests use and
/// `template.yaml` declares) unless it already exists, so running it twice is harmless.
async fn create_table(store: &Store) -> Result<(), AdminError> {
    let described = store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await;
    match described {
        Ok(_) => {
            println!("Table {} already exists.", store.table());
            return Ok(());
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => return Err(AdminError::sdk("DescribeTable", e)),
    }
    sandbox::store::create_table(store.client(), store.table()).await?;
    println!("Created table {}.", store.table());
    Ok(())
}
