//! The test table's DynamoDB stream (`NEW_AND_OLD_IMAGES`), read from DynamoDB Local the way
//! Lambda's event source mapping hands records over: the same JSON per record.
//!
//! The streams API is called with a hand-written HTTP/1.1 request (the SDK for it is not a
//! dependency): DynamoDB Local checks no signature, but keeps one database per access key and
//! region, so the request names the test client's (`local`, `us-east-1`).

use std::io::{Read, Write};
use std::net::TcpStream;

use sandbox::events::{events_of, Event, StreamRecord};
use serde_json::{json, Value};

use crate::TestEnv;

/// The stream of one test's table, and how much of it was read.
pub struct TableStream {
    address: String,
    arn: String,
    /// Records written before [`TableStream::open`]: never shown.
    before: usize,
    /// Records (after `before`) already handed out by [`TableStream::new_events`].
    seen: usize,
}

impl TableStream {
    /// The table's stream (on since `create_table`), from now on: earlier writes are not shown.
    pub async fn open(env: &TestEnv) -> Self {
        let arn = env
            .app
            .store
            .client()
            .describe_table()
            .table_name(&env.table)
            .send()
            .await
            .expect("describe the table")
            .table
            .and_then(|t| t.latest_stream_arn)
            .expect("the table has a stream (create_table turns it on)");
        let endpoint = &super::dynamo::local().endpoint;
        let mut stream = Self {
            address: endpoint.trim_start_matches("http://").to_owned(),
            arn,
            before: 0,
            seen: 0,
        };
        stream.before = stream.all_records().len();
        stream
    }

    /// Every record since the stream was opened, oldest first, as Lambda's JSON.
    pub fn records(&self) -> Vec<Value> {
        let mut records = self.all_records();
        records.drain(..self.before.min(records.len()));
        records
    }

    /// Every record the stream holds, oldest first.
    fn all_records(&self) -> Vec<Value> {
        let stream = self.call("DescribeStream", json!({ "StreamArn": self.arn }));
        let mut records = Vec::new();
        let shards = stream["StreamDescription"]["Shards"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for shard in shards {
            let start = self.call(
                "GetShardIterator",
                json!({ "StreamArn": self.arn, "ShardId": shard["ShardId"],
                        "ShardIteratorType": "TRIM_HORIZON" }),
            );
            let mut iterator = start["ShardIterator"].clone();
            while iterator.is_string() {
                let out = self.call("GetRecords", json!({ "ShardIterator": iterator }));
                let batch = out["Records"].as_array().cloned().unwrap_or_default();
                if batch.is_empty() {
                    break;
                }
                records.extend(batch);
                iterator = out["NextShardIterator"].clone();
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

    /// One streams API call; its JSON answer.
    fn call(&self, action: &str, body: Value) -> Value {
        let body = body.to_string();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.0\r\n\
             X-Amz-Target: DynamoDBStreams_20120810.{action}\r\nX-Amz-Date: 20261204T000000Z\r\n\
             Authorization: AWS4-HMAC-SHA256 \
             Credential=local/20261204/us-east-1/dynamodb/aws4_request, SignedHeaders=host, \
             Signature=00\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
            host = self.address,
            len = body.len(),
        );
        let mut socket = TcpStream::connect(&self.address).expect("connect to DynamoDB Local");
        socket
            .write_all(request.as_bytes())
            .expect("send a streams request");
        let mut answer = Vec::new();
        socket
            .read_to_end(&mut answer)
            .expect("read a streams answer");
        let answer = String::from_utf8(answer).expect("a UTF-8 answer");
        let (head, payload) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{action}: {answer}");
        let payload = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            unchunk(payload)
        } else {
            payload.to_owned()
        };
        serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{action}: {e}: {payload}"))
    }
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

/// The body of a chunked HTTP/1.1 answer.
fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}
