//! The test table's DynamoDB stream (`NEW_AND_OLD_IMAGES`), read from DynamoDB Local the way
//! Lambda's event source mapping hands records over: the same JSON per record.
//!
//! The streams API is called with `make dev`'s stand-in for the mapping (`stream_pump`'s
//! client: plain HTTP, as the SDK for streams is not a dependency). DynamoDB Local checks no
//! signature, but keeps one database per access key and region, so the client names the test
//! client's (`local`, `us-east-1`).

use sandbox::events::{events_of, Event, StreamRecord};
use serde_json::{json, Value};
use stream_pump::dynamodb::{DynamoDbLocal, Position};

use crate::TestEnv;

/// The stream of one test's table, and how much of it was read.
pub struct TableStream {
    db: DynamoDbLocal,
    arn: String,
    /// Records already handed out (or written before [`TableStream::open`]).
    seen: usize,
}

impl TableStream {
    /// The table's stream (on from the table's creation, as in template.yaml; turned on here
    /// if it is off), read from now on: the records of earlier writes are passed over.
    pub async fn open(env: &TestEnv) -> Self {
        let db = local();
        let arn = db.ensure_stream(&env.table).expect("the table's stream");
        let mut stream = Self { db, arn, seen: 0 };
        stream.seen = stream.records().len();
        stream
    }

    /// The ARN of the table's stream.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Every record since the stream was turned on, oldest first, as Lambda's JSON.
    pub fn records(&self) -> Vec<Value> {
        let mut records = Vec::new();
        let shards = self.db.shards(&self.arn).expect("the stream's shards");
        for shard in shards {
            let mut iterator = Some(
                self.db
                    .iterator(&self.arn, &shard.id, &Position::TrimHorizon)
                    .expect("a shard iterator"),
            );
            while let Some(at) = iterator {
                let read = self.db.records(&at, 1000).expect("GetRecords");
                if read.records.is_empty() {
                    break;
                }
                records.extend(read.records);
                iterator = read.next;
            }
        }
        records.sort_by_key(|r| {
            r["dynamodb"]["SequenceNumber"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        });
        records
    }

    /// The events of every record written since the last call, in stream order.
    pub fn new_events(&mut self) -> Vec<Event> {
        events_in(&self.new_records())
    }

    /// Every record written since the last call, in stream order, as Lambda's JSON.
    pub fn new_records(&mut self) -> Vec<Value> {
        let records = self.records();
        let fresh = records[self.seen..].to_vec();
        self.seen = records.len();
        fresh
    }

    /// The records written since the last call as the batch Lambda's event source mapping
    /// hands the events function: `{"Records": […]}`.
    pub fn new_batch(&mut self) -> Value {
        json!({ "Records": self.new_records() })
    }

    /// Hands the records written since the last call to the events function as one batch
    /// (`deliverer`'s); its answer.
    pub async fn pump(&mut self, env: &TestEnv, deliverer: &sandbox::delivery::Deliverer) -> Value {
        let batch = self.new_batch();
        sandbox::delivery::stream::handle_batch(&env.app, deliverer, &batch)
            .await
            .response()
    }
}

/// The test process's DynamoDB Local, as the test clients see it.
pub fn local() -> DynamoDbLocal {
    DynamoDbLocal::new(&super::dynamo::local().endpoint, "local", "us-east-1")
}

/// The events of these records (Lambda's JSON), in order.
pub fn events_in(records: &[Value]) -> Vec<Event> {
    records
        .iter()
        .flat_map(|r| {
            let record = StreamRecord::from_lambda_json(r).expect("a stream record");
            events_of(&record).expect("images of our own items decode")
        })
        .collect()
}
