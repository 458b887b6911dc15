//! DynamoDB Local's JSON API, tables and streams, over plain HTTP ([`crate::http`]): what it
//! takes to find a table's stream and read it.
//!
//! DynamoDB Local checks no signature, but keeps one database per access key and region, so
//! each request names the ones its writers use (`make dev`: `local`, `us-east-1`, as the
//! functions' environment says).

use std::time::Duration;

use serde_json::{json, Value};

use crate::http::{self, HttpError};

/// The JSON API's version prefix of table operations (`X-Amz-Target`).
const TABLES: &str = "DynamoDB_20120810";
/// The JSON API's version prefix of stream operations.
const STREAMS: &str = "DynamoDBStreams_20120810";
/// DynamoDB Local answers at once; a stalled one is a failure to report, not to wait out.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No HTTP answer.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// DynamoDB refused the request (`kind` is the exception's name, e.g.
    /// `ExpiredIteratorException`).
    #[error("{action}: {status} {kind}: {message}")]
    Service {
        /// The operation.
        action: String,
        /// The HTTP status.
        status: u16,
        /// The exception's short name.
        kind: String,
        /// DynamoDB's message.
        message: String,
    },
    /// A 200 whose body is not the JSON expected.
    #[error("{action}: unexpected answer: {detail}")]
    Unexpected {
        /// The operation.
        action: String,
        /// What was wrong.
        detail: String,
    },
}

impl CallError {
    /// The exception's short name, for a refusal.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Self::Service { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// Where a shard iterator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// After the newest record: only what is written from now on.
    Latest,
    /// The oldest record the shard still holds.
    TrimHorizon,
    /// Just after the record with this sequence number.
    AfterSequenceNumber(String),
}

/// One shard of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// `ShardId`.
    pub id: String,
    /// The shard it continues (`ParentShardId`), read to its end first.
    pub parent: Option<String>,
    /// Whether it takes no more records (it has an `EndingSequenceNumber`).
    pub closed: bool,
}

/// One `GetRecords` answer.
#[derive(Debug, Clone)]
pub struct Records {
    /// The records, oldest first, in the streams API's JSON (which is Lambda's, less
    /// `eventSourceARN`).
    pub records: Vec<Value>,
    /// Where to read next; `None` once a closed shard is read to its end.
    pub next: Option<String>,
}

/// A DynamoDB Local endpoint, seen with one access key and region.
#[derive(Debug, Clone)]
pub struct DynamoDbLocal {
    /// `host:port`.
    address: String,
    access_key: String,
    region: String,
}

impl DynamoDbLocal {
    /// `endpoint` is `http://host:port` (the functions' `AWS_ENDPOINT_URL_DYNAMODB`).
    pub fn new(endpoint: &str, access_key: &str, region: &str) -> Self {
        let address = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        Self {
            address,
            access_key: access_key.to_owned(),
            region: region.to_owned(),
        }
    }

    /// The table's stream ARN, if its stream is on.
    pub fn stream_arn(&self, table: &str) -> Result<Option<String>, CallError> {
        let described = self.call(TABLES, "DescribeTable", &json!({ "TableName": table }))?;
        let table = &described["Table"];
        let enabled = table["StreamSpecification"]["StreamEnabled"] == true;
        Ok(table["LatestStreamArn"]
            .as_str()
            .filter(|_| enabled)
            .map(str::to_owned))
    }

    /// The table's stream ARN, after turning the stream on (`NEW_AND_OLD_IMAGES`) if it is off.
    pub fn ensure_stream(&self, table: &str) -> Result<String, CallError> {
        if let Some(arn) = self.stream_arn(table)? {
            return Ok(arn);
        }
        let spec = json!({ "StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES" });
        self.call(
            TABLES,
            "UpdateTable",
            &json!({ "TableName": table, "StreamSpecification": spec }),
        )?;
        self.stream_arn(table)?
            .ok_or_else(|| CallError::Unexpected {
                action: "UpdateTable".into(),
                detail: format!("the stream of {table} is still off"),
            })
    }

    /// Every shard of the stream, in the order DynamoDB lists them (parents first).
    pub fn shards(&self, stream_arn: &str) -> Result<Vec<Shard>, CallError> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let mut request = json!({ "StreamArn": stream_arn });
            if let Some(id) = &start {
                request["ExclusiveStartShardId"] = json!(id);
            }
            let described = self.call(STREAMS, "DescribeStream", &request)?;
            let description = &described["StreamDescription"];
            for shard in description["Shards"].as_array().into_iter().flatten() {
                let Some(id) = shard["ShardId"].as_str() else {
                    continue;
                };
                shards.push(Shard {
                    id: id.to_owned(),
                    parent: shard["ParentShardId"].as_str().map(str::to_owned),
                    closed: shard["SequenceNumberRange"]["EndingSequenceNumber"].is_string(),
                });
            }
            match description["LastEvaluatedShardId"].as_str() {
                Some(last) if start.as_deref() != Some(last) => start = Some(last.to_owned()),
                _ => return Ok(shards),
            }
        }
    }

    /// A shard iterator at `position`.
    pub fn iterator(
        &self,
        stream_arn: &str,
        shard: &str,
        position: &Position,
    ) -> Result<String, CallError> {
        let mut request = json!({ "StreamArn": stream_arn, "ShardId": shard });
        request["ShardIteratorType"] = json!(match position {
            Position::Latest => "LATEST",
            Position::TrimHorizon => "TRIM_HORIZON",
            Position::AfterSequenceNumber(_) => "AFTER_SEQUENCE_NUMBER",
        });
        if let Position::AfterSequenceNumber(sequence) = position {
            request["SequenceNumber"] = json!(sequence);
        }
        let answer = self.call(STREAMS, "GetShardIterator", &request)?;
        answer["ShardIterator"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CallError::Unexpected {
                action: "GetShardIterator".into(),
                detail: "no ShardIterator".into(),
            })
    }

    /// Up to `limit` records from `iterator`.
    pub fn records(&self, iterator: &str, limit: usize) -> Result<Records, CallError> {
        let answer = self.call(
            STREAMS,
            "GetRecords",
            &json!({ "ShardIterator": iterator, "Limit": limit }),
        )?;
        Ok(Records {
            records: answer["Records"].as_array().cloned().unwrap_or_default(),
            next: answer["NextShardIterator"].as_str().map(str::to_owned),
        })
    }

    /// One call of the JSON API; its answer.
    fn call(&self, target: &str, action: &str, body: &Value) -> Result<Value, CallError> {
        let credential = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/{}/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=00",
            self.access_key, self.region
        );
        let target = format!("{target}.{action}");
        let answer = http::post(
            &self.address,
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.0"),
                ("X-Amz-Target", &target),
                ("X-Amz-Date", "20260101T000000Z"),
                ("Authorization", &credential),
            ],
            body.to_string().as_bytes(),
            TIMEOUT,
        )?;
        let json: Value =
            serde_json::from_slice(&answer.body).map_err(|e| CallError::Unexpected {
                action: action.to_owned(),
                detail: format!("{} and a body that is not JSON: {e}", answer.status),
            })?;
        if answer.status != 200 {
            let kind = json["__type"].as_str().unwrap_or_default();
            return Err(CallError::Service {
                action: action.to_owned(),
                status: answer.status,
                // `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException`
                kind: kind.rsplit('#').next().unwrap_or(kind).to_owned(),
                message: json["message"]
                    .as_str()
                    .or(json["Message"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        Ok(json)
    }
}
