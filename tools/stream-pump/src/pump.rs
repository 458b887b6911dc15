//! What Lambda's event source mapping does with the table's stream, as template.yaml sets it
//! up, done on DynamoDB Local: read every shard from `LATEST` (shards that appear later from
//! their start, a child after its parent), keep the records the mapping's filter passes
//! ([`crate::filter`]), hand them to the function in batches of up to 100 as Lambda's
//! JSON, and honour its answer (`ReportBatchItemFailures`): resume at the lowest failed sequence
//! number, halve a batch the function failed as a whole (`BisectBatchOnFunctionError`), and give
//! up on a batch after 10 retries (`MaximumRetryAttempts`), where Lambda would send it to the
//! dead-letter queue. Each shard waits for its own retries only, as each shard does on Lambda.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::dynamodb::{CallError, DynamoDbLocal, Position, Shard};
use crate::filter::Filter;

/// The mapping's `BatchSize`.
pub const BATCH_SIZE: usize = 100;
/// The mapping's `MaximumRetryAttempts`: retries of a failing batch before it is dropped.
pub const MAX_RETRIES: u32 = 10;

/// Waits between retries of a failing batch: doubling from `first` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The wait before the first retry.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// Lambda's waits are its own; these keep a failing batch from spinning without making a
    /// developer wait long for the retry of a fixed function.
    pub const DEV: Self = Self {
        first: Duration::from_millis(500),
        max: Duration::from_secs(10),
    };

    fn before_retry(self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(16);
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// How one invocation ended, as the pump needs it.
pub type Invoked = Result<Value, String>;

/// Where the function's answer to `batch` says to resume: `None` if every record is done,
/// else the index of the first record to hand over again. An answer without
/// `batchItemFailures` (or with an empty list) is a success; an identifier that names no
/// record of the batch fails the whole batch, as on Lambda.
pub fn resume_at(batch: &[Value], answer: &Value) -> Option<usize> {
    let failures = answer["batchItemFailures"].as_array()?;
    let mut first: Option<usize> = None;
    for failure in failures {
        let position = failure["itemIdentifier"]
            .as_str()
            .and_then(|id| batch.iter().position(|r| sequence(r) == Some(id)));
        let Some(position) = position else {
            return Some(0);
        };
        first = Some(first.map_or(position, |f| f.min(position)));
    }
    first
}

/// A record's `SequenceNumber`.
pub fn sequence(record: &Value) -> Option<&str> {
    record["dynamodb"]["SequenceNumber"].as_str()
}

/// One shard, as far as it has been handed over.
#[derive(Debug)]
struct ShardState {
    id: String,
    parent: Option<String>,
    /// Where to read next; `None`: get an iterator at `restart` first.
    iterator: Option<String>,
    restart: Position,
    /// Records read and filtered but not yet accepted by the function, oldest first.
    pending: Vec<Value>,
    /// How many records the next invocation takes (halved after a function error).
    batch: usize,
    /// Failed invocations of the batch at the front of `pending`.
    retries: u32,
    /// Not before this, after a failure.
    wait_until: Option<Instant>,
    /// `GetRecords` answered without a next iterator: the shard is closed and read.
    drained: bool,
}

impl ShardState {
    fn new(shard: &Shard, iterator: Option<String>, restart: Position) -> Self {
        Self {
            id: shard.id.clone(),
            parent: shard.parent.clone(),
            iterator,
            restart,
            pending: Vec::new(),
            batch: BATCH_SIZE,
            retries: 0,
            wait_until: None,
            drained: false,
        }
    }
}

/// The mapping between one stream and one function.
#[derive(Debug)]
pub struct Pump {
    db: DynamoDbLocal,
    stream_arn: String,
    backoff: Backoff,
    filter: Filter,
    /// The function's name, for the log lines.
    function: String,
    shards: Vec<ShardState>,
    /// Shards read to their end (or gone).
    done: HashSet<String>,
    /// The last error `poll` logged for the stream as a whole, so a lasting one is logged once.
    last_error: Option<String>,
}

impl Pump {
    /// Starts at `LATEST` on every open shard, now: records written after this returns and
    /// passed by `filter` are handed over to `function`, as for a mapping created with
    /// `StartingPosition: LATEST`.
    pub fn start(
        db: DynamoDbLocal,
        stream_arn: &str,
        backoff: Backoff,
        (function, filter): (&str, Filter),
    ) -> Result<Self, CallError> {
        let mut pump = Self {
            db,
            stream_arn: stream_arn.to_owned(),
            backoff,
            filter,
            function: function.to_owned(),
            shards: Vec::new(),
            done: HashSet::new(),
            last_error: None,
        };
        for shard in pump.db.shards(stream_arn)? {
            if shard.closed {
                // LATEST of a closed shard is its end.
                pump.done.insert(shard.id);
                continue;
            }
            let iterator = pump.db.iterator(stream_arn, &shard.id, &Position::Latest)?;
            let state = ShardState::new(&shard, Some(iterator), Position::Latest);
            pump.shards.push(state);
        }
        Ok(pump)
    }

    /// The shards being read.
    pub fn open_shards(&self) -> usize {
        self.shards.len()
    }

    /// One round over every shard: new shards are picked up, each shard not waiting for a retry
    /// hands at most one batch to `invoke`. Answers how many records were read or handed to the
    /// function, whatever it answered (0: nothing to do now, a good time to sleep).
    pub fn poll(&mut self, invoke: &mut dyn FnMut(&Value) -> Invoked) -> usize {
        match self.db.shards(&self.stream_arn) {
            Ok(listed) => {
                self.last_error = None;
                self.adopt(listed);
            }
            Err(e) => {
                let message = format!("cannot list the stream's shards: {e}");
                if self.last_error.as_ref() != Some(&message) {
                    eprintln!("stream-pump: {message}");
                    self.last_error = Some(message);
                }
                return 0;
            }
        }
        let mut moved = 0;
        for i in 0..self.shards.len() {
            let blocked = self.shards[i]
                .parent
                .as_ref()
                .is_some_and(|p| self.shards.iter().any(|s| &s.id == p));
            if !blocked {
                moved += self.step(i, invoke);
            }
        }
        let done = &mut self.done;
        self.shards.retain(|s| {
            let finished = s.drained && s.pending.is_empty();
            if finished {
                done.insert(s.id.clone());
            }
            !finished
        });
        moved
    }

    /// Tracks the shards that appeared since the last round, from their first record.
    fn adopt(&mut self, listed: Vec<Shard>) {
        for shard in listed {
            let known =
                self.done.contains(&shard.id) || self.shards.iter().any(|s| s.id == shard.id);
            if !known {
                eprintln!("stream-pump: new shard {}", shard.id);
                self.shards
                    .push(ShardState::new(&shard, None, Position::TrimHorizon));
            }
        }
    }

    /// Reads shard `i` if it has nothing pending, then hands over its next batch.
    fn step(&mut self, i: usize, invoke: &mut dyn FnMut(&Value) -> Invoked) -> usize {
        let now = Instant::now();
        if self.shards[i].wait_until.is_some_and(|t| now < t) {
            return 0;
        }
        let mut moved = 0;
        if self.shards[i].pending.is_empty() && !self.shards[i].drained {
            moved += self.read(i);
        }
        if !self.shards[i].pending.is_empty() {
            moved += self.hand_over(i, invoke);
        }
        moved
    }

    /// One `GetRecords` on shard `i`: its filtered records become pending. Answers how many
    /// records were read (filtered out ones included).
    fn read(&mut self, i: usize) -> usize {
        let arn = self.stream_arn.clone();
        let filter = &self.filter;
        let shard = &mut self.shards[i];
        let iterator = match shard.iterator.take() {
            Some(iterator) => iterator,
            None => match self.db.iterator(&arn, &shard.id, &shard.restart) {
                Ok(iterator) => iterator,
                Err(e) => return self.read_failed(i, e),
            },
        };
        let read = match self.db.records(&iterator, BATCH_SIZE) {
            Ok(read) => read,
            Err(e) => return self.read_failed(i, e),
        };
        let shard = &mut self.shards[i];
        shard.wait_until = None;
        if let Some(last) = read.records.last().and_then(sequence) {
            shard.restart = Position::AfterSequenceNumber(last.to_owned());
        }
        shard.drained = read.next.is_none();
        shard.iterator = read.next;
        let count = read.records.len();
        shard.pending = read
            .records
            .into_iter()
            .filter(|r| filter.passes(r))
            .map(|mut r| {
                // Lambda adds the stream's ARN to each record.
                r["eventSourceARN"] = json!(arn);
                r
            })
            .collect();
        shard.retries = 0;
        count
    }

    /// A failed read of shard `i`: start again where the last record read ends (a new iterator),
    /// after a pause; a shard that is gone is done.
    fn read_failed(&mut self, i: usize, error: CallError) -> usize {
        let shard = &mut self.shards[i];
        match error.kind() {
            Some("ResourceNotFoundException") => {
                eprintln!("stream-pump: shard {} is gone: {error}", shard.id);
                shard.drained = true;
            }
            Some("TrimmedDataAccessException") => {
                eprintln!(
                    "stream-pump: shard {} was trimmed past where it was read; reading from its oldest record",
                    shard.id
                );
                shard.restart = Position::TrimHorizon;
            }
            Some("ExpiredIteratorException") => {}
            _ => {
                eprintln!("stream-pump: cannot read shard {}: {error}", shard.id);
                shard.wait_until = Some(Instant::now() + Duration::from_secs(1));
            }
        }
        shard.iterator = None;
        0
    }

    /// Hands the batch at the front of shard `i`'s pending records to the function and applies
    /// its answer. Answers how many records were handed over.
    fn hand_over(&mut self, i: usize, invoke: &mut dyn FnMut(&Value) -> Invoked) -> usize {
        let backoff = self.backoff;
        let function = &self.function;
        let shard = &mut self.shards[i];
        let size = shard.batch.min(shard.pending.len());
        let batch = &shard.pending[..size];
        let range = format!(
            "shard {} seq {}..{}",
            shard.id,
            batch.first().and_then(sequence).unwrap_or("?"),
            batch.last().and_then(sequence).unwrap_or("?")
        );
        let records = if size == 1 { "record" } else { "records" };
        let (accepted, problem) = match invoke(&json!({ "Records": batch })) {
            Ok(answer) => match resume_at(batch, &answer) {
                None => (size, None),
                Some(at) => {
                    let failed = answer["batchItemFailures"].as_array().map_or(0, Vec::len);
                    let from = sequence(&batch[at]).unwrap_or("?").to_owned();
                    (at, Some(format!("{failed} failed, resuming at seq {from}")))
                }
            },
            Err(e) => {
                let halved = (size / 2).max(1);
                let note = if halved < size {
                    format!(" (bisected: next batch {halved})")
                } else {
                    String::new()
                };
                shard.batch = halved;
                (0, Some(format!("function error: {e}{note}")))
            }
        };
        shard.pending.drain(..accepted);
        let Some(problem) = problem else {
            eprintln!("stream-pump: {range}: {size} {records} -> {function}: ok");
            shard.batch = BATCH_SIZE;
            shard.retries = 0;
            shard.wait_until = None;
            return size;
        };
        shard.retries += 1;
        if shard.retries > MAX_RETRIES {
            let dropped = shard.batch.min(shard.pending.len());
            shard.pending.drain(..dropped);
            eprintln!(
                "stream-pump: {range}: {size} {records} -> {function}: {problem}; \
                 gave up on {dropped} after {MAX_RETRIES} retries (Lambda would send them to the dead-letter queue)"
            );
            shard.retries = 0;
            shard.batch = BATCH_SIZE;
            shard.wait_until = None;
        } else {
            let wait = backoff.before_retry(shard.retries);
            eprintln!(
                "stream-pump: {range}: {size} {records} -> {function}: {problem}; retry {} of {MAX_RETRIES} in {:.1} s",
                shard.retries,
                wait.as_secs_f64()
            );
            shard.wait_until = Some(Instant::now() + wait);
        }
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pk: &str, seq: &str) -> Value {
        json!({ "eventName": "INSERT",
                "dynamodb": { "Keys": { "pk": { "S": pk }, "sk": { "S": "x" } },
                              "SequenceNumber": seq } })
    }

    #[test]
    fn the_function_answer_says_where_to_resume() {
        let batch = [
            record("USER#a", "10"),
            record("USER#b", "20"),
            record("USER#c", "30"),
        ];
        assert_eq!(resume_at(&batch, &json!({ "batchItemFailures": [] })), None);
        assert_eq!(resume_at(&batch, &json!(null)), None);
        assert_eq!(resume_at(&batch, &json!({})), None);
        let failed = |ids: &[&str]| {
            let list: Vec<Value> = ids.iter().map(|i| json!({ "itemIdentifier": i })).collect();
            resume_at(&batch, &json!({ "batchItemFailures": list }))
        };
        assert_eq!(failed(&["30", "20"]), Some(1), "the lowest failed one");
        assert_eq!(failed(&["30"]), Some(2));
        assert_eq!(failed(&["99"]), Some(0), "an unknown id fails the batch");
        assert_eq!(
            resume_at(
                &batch,
                &json!({ "batchItemFailures": [{ "itemIdentifier": null }] })
            ),
            Some(0)
        );
    }

    #[test]
    fn the_backoff_doubles_up_to_its_limit() {
        let b = Backoff::DEV;
        let waits: Vec<u64> = (1..=7)
            .map(|r| b.before_retry(r).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    }
}
