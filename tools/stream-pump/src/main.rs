//! `stream-pump`: a function's stream trigger (and the events function's schedule) under
//! `make dev` (see the library's doc).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use stream_pump::dynamodb::{CallError, DynamoDbLocal};
use stream_pump::filter::Filter;
use stream_pump::invoke::{scheduled_event, Function};
use stream_pump::pump::{Backoff, Pump, BATCH_SIZE};
use time::OffsetDateTime;

const USAGE: &str = "\
usage: stream-pump [OPTIONS]

Development only (make dev), never deployed. Reads the table's stream on DynamoDB Local as
the function's event source mapping in template.yaml does (from LATEST, with its filter:
events gets pk USER# or CONV#, phone the records of sends to +1 numbers; batches of up to
100, batchItemFailures honoured) and invokes the function behind cargo lambda watch with each
batch; for the events function, every few seconds it invokes it with EventBridge's scheduled
event, as the sweep's schedule does. Logs a line per batch on standard error.
Each option falls back to the environment variable in brackets, then to the default.
  --table NAME         the table                        [TABLE_NAME] sandbox-dev
  --dynamodb URL       DynamoDB Local                   [AWS_ENDPOINT_URL_DYNAMODB] http://127.0.0.1:8000
  --invoke-port N      cargo lambda watch's port        [DEV_API_PORT] 9000
  --function NAME      the function invoked: events or phone   events
  --sweep-seconds N    the scheduled events' rate       [DEV_SWEEP_SECONDS] 10 for events, else 0 (0: none)
  --ready-file PATH    written once the stream is read from LATEST
DynamoDB Local keeps one database per access key and region: AWS_ACCESS_KEY_ID (local) and
AWS_REGION (us-east-1) must be the functions'.";

/// Lambda's event source mapping polls a shard about four times a second.
const POLL: Duration = Duration::from_millis(250);
/// A first invocation waits for cargo lambda watch to start (or build) the function; a batch
/// then takes at most a few delivery timeouts.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(300);
/// `make dev` creates the table before it starts the pump; this only covers a slow start.
const TABLE_WAIT: Duration = Duration::from_secs(60);

/// What the command line and the environment ask for.
#[derive(Debug, PartialEq)]
struct Options {
    table: String,
    dynamodb: String,
    invoke_port: u16,
    function: String,
    filter: Filter,
    sweep_every: Option<Duration>,
    ready_file: Option<String>,
}

fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let options = match parse(std::env::args().skip(1).collect(), env) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("stream-pump: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let access_key = env("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "local".into());
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let db = DynamoDbLocal::new(&options.dynamodb, &access_key, &region);

    let (mut pump, arn) = match start(&db, &options.table, &options.function, &options.filter) {
        Ok(started) => started,
        Err(e) => {
            eprintln!(
                "stream-pump: cannot read the stream of table {} at {}: {e}",
                options.table, options.dynamodb
            );
            return ExitCode::FAILURE;
        }
    };
    let function = Function::new(
        &format!("127.0.0.1:{}", options.invoke_port),
        &options.function,
        INVOKE_TIMEOUT,
    );
    let sweeps = options
        .sweep_every
        .map_or("no scheduled events".into(), |every| {
            format!("a scheduled event every {} s", every.as_secs())
        });
    eprintln!(
        "stream-pump: reading {arn} ({} open shards) from LATEST; batches of up to {BATCH_SIZE} \
         records its mapping's filter passes and {sweeps} go to {}",
        pump.open_shards(),
        function.url()
    );
    if let Some(path) = &options.ready_file {
        if let Err(e) = std::fs::write(path, format!("{arn}\n")) {
            eprintln!("stream-pump: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(every) = options.sweep_every {
        let function = function.clone();
        std::thread::spawn(move || sweep(&function, every));
    }
    loop {
        if pump.poll(&mut |batch| function.invoke(batch)) == 0 {
            std::thread::sleep(POLL);
        }
    }
}

/// The table's stream (turned on if it is off), read from `LATEST` from now on for
/// `function` through `filter`; its ARN.
fn start(
    db: &DynamoDbLocal,
    table: &str,
    function: &str,
    filter: &Filter,
) -> Result<(Pump, String), CallError> {
    let deadline = Instant::now() + TABLE_WAIT;
    let arn = loop {
        match db.stream_arn(table) {
            Ok(Some(arn)) => break arn,
            // `sandbox::store::create_table` turns the stream on; this covers an older table.
            Ok(None) => {
                eprintln!(
                    "stream-pump: the stream of {table} is off; turning it on (NEW_AND_OLD_IMAGES)"
                );
                break db.ensure_stream(table)?;
            }
            // Not created yet, or DynamoDB Local not listening yet.
            Err(e)
                if Instant::now() < deadline
                    && (e.kind() == Some("ResourceNotFoundException")
                        || matches!(e, CallError::Http(_))) =>
            {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    };
    let pump = Pump::start(db.clone(), &arn, Backoff::DEV, (function, filter.clone()))?;
    Ok((pump, arn))
}

/// Invokes `function` with a scheduled event every `every`, at a fixed rate as the sweep's
/// EventBridge rule does (`rate(…)`: a sweep that runs long delays the next one, not every one
/// after it; one at a time). Logs sweeps that handled something, and each new failure once.
fn sweep(function: &Function, every: Duration) {
    let mut last_error: Option<String> = None;
    let started = Instant::now();
    for n in 1u32.. {
        std::thread::sleep(until_tick(started, every, n, Instant::now()));
        match function.invoke(&scheduled_event(OffsetDateTime::now_utc(), u64::from(n))) {
            Ok(answer) => {
                if last_error.take().is_some() {
                    eprintln!("stream-pump: scheduled sweep -> events: answers again");
                }
                if answer["swept"].as_u64() != Some(0) {
                    eprintln!("stream-pump: scheduled sweep -> events: {answer}");
                }
            }
            Err(e) => {
                if last_error.as_ref() != Some(&e) {
                    eprintln!("stream-pump: scheduled sweep -> events: {e}");
                    last_error = Some(e);
                }
            }
        }
    }
}

/// How long to wait at `now` for the `n`th tick of a rate of `every` from `started`: nothing
/// if it passed already (the sweep before it ran long).
fn until_tick(started: Instant, every: Duration, n: u32, now: Instant) -> Duration {
    (started + every.saturating_mul(n)).saturating_duration_since(now)
}

/// Parses the arguments after the program name (`None`: help); `env` looks up fallbacks.
fn parse(
    args: Vec<String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Options>, String> {
    let mut given: Vec<(String, String)> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if matches!(arg.as_str(), "-h" | "--help" | "help") {
            return Ok(None);
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("--{flag} needs a value"))?;
                (flag.to_owned(), value)
            }
        };
        given.push((name, value));
    }
    let mut take = |name: &str| {
        let at = given.iter().position(|(n, _)| n == name)?;
        Some(given.remove(at).1)
    };
    let mut get = |name: &str, var: Option<&str>, default: &str| {
        take(name)
            .or_else(|| var.and_then(&env))
            .unwrap_or_else(|| default.to_owned())
    };
    let table = get("table", Some("TABLE_NAME"), "sandbox-dev");
    let dynamodb = get(
        "dynamodb",
        Some("AWS_ENDPOINT_URL_DYNAMODB"),
        "http://127.0.0.1:8000",
    );
    let port = get("invoke-port", Some("DEV_API_PORT"), "9000");
    let invoke_port = port
        .parse::<u16>()
        .map_err(|_| format!("the invoke port must be a number up to 65535, not {port:?}"))?;
    let function = get("function", None, "events");
    let filter = Filter::for_function(&function).ok_or_else(|| {
        format!("no event source mapping in template.yaml feeds the function {function:?} (events or phone)")
    })?;
    // The deployed schedule is rate(1 minute). Locally every 10 s: the first retry of a failed
    // delivery is due 10 s after it (WEBHOOK_RETRY_SCHEDULE_SECONDS), and a developer fixing
    // their receiver should see that retry arrive about then, not up to a minute later. Only
    // the events function has a schedule.
    let sweep_default = if function == "events" { "10" } else { "0" };
    let seconds = take("sweep-seconds")
        .or_else(|| {
            (function == "events")
                .then(|| env("DEV_SWEEP_SECONDS"))
                .flatten()
        })
        .unwrap_or_else(|| sweep_default.to_owned());
    let seconds = seconds
        .parse::<u64>()
        .map_err(|_| format!("the sweep interval must be whole seconds, not {seconds:?}"))?;
    let ready_file = take("ready-file");
    if let Some((name, _)) = given.first() {
        return Err(format!("unknown option --{name}"));
    }
    if !dynamodb.starts_with("http://") {
        return Err(format!(
            "DynamoDB Local's URL must be http://host:port, not {dynamodb:?}"
        ));
    }
    Ok(Some(Options {
        table,
        dynamodb,
        invoke_port,
        function,
        filter,
        sweep_every: (seconds > 0).then(|| Duration::from_secs(seconds)),
        ready_file,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sweeps_keep_a_fixed_rate_when_one_runs_long() {
        let started = Instant::now();
        let every = Duration::from_secs(10);
        let at = |seconds: u64| started + Duration::from_secs(seconds);
        assert_eq!(until_tick(started, every, 1, at(0)), every);
        // The first sweep took 15 s: the second starts at 20 s, not 10 s after it ended.
        assert_eq!(
            until_tick(started, every, 2, at(15)),
            Duration::from_secs(5)
        );
        // One that overran its tick starts at once.
        assert_eq!(until_tick(started, every, 3, at(31)), Duration::ZERO);
    }

    fn parse_with(line: &str, vars: &[(&str, &str)]) -> Result<Option<Options>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let args = line.split_whitespace().map(str::to_owned).collect();
        parse(args, |name| vars.get(name).cloned())
    }

    #[test]
    fn flags_override_environment_which_overrides_defaults() {
        let vars = [("DEV_API_PORT", "9300"), ("DEV_SWEEP_SECONDS", "3")];
        let options = parse_with("--sweep-seconds=0 --ready-file /tmp/r", &vars)
            .unwrap()
            .unwrap();
        assert_eq!(
            options,
            Options {
                table: "sandbox-dev".into(),
                dynamodb: "http://127.0.0.1:8000".into(),
                invoke_port: 9300,
                function: "events".into(),
                filter: Filter::for_function("events").unwrap(),
                sweep_every: None,
                ready_file: Some("/tmp/r".into()),
            }
        );
        let defaults = parse_with("", &[]).unwrap().unwrap();
        assert_eq!(defaults.sweep_every, Some(Duration::from_secs(10)));
        assert_eq!(defaults.invoke_port, 9000);
        // The phone function has its own filter and no schedule, whatever DEV_SWEEP_SECONDS says.
        let phone = parse_with("--function phone", &vars).unwrap().unwrap();
        assert_eq!(phone.filter, Filter::for_function("phone").unwrap());
        assert_eq!(phone.sweep_every, None);
    }

    #[test]
    fn bad_options_are_named() {
        assert!(parse_with("--nope 1", &[]).unwrap_err().contains("--nope"));
        assert!(parse_with("--invoke-port x", &[])
            .unwrap_err()
            .contains("port"));
        assert!(parse_with("--sweep-seconds", &[])
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse_with("--help", &[]).unwrap().is_none());
        assert!(parse_with("--function create", &[])
            .unwrap_err()
            .contains("no event source mapping"));
    }
}
