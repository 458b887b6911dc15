//! One DynamoDB stream record, as the rules read it, and its conversion from the JSON Lambda
//! delivers (serde_json only: no dependency on the Lambda event crates).
//!
//! Lambda hands a stream batch over as `{"Records": [record, …]}`; each record is
//!
//! ```json
//! {"eventID": "…", "eventName": "MODIFY", "eventSource": "aws:dynamodb",
//!  "dynamodb": {"ApproximateCreationDateTime": 1795529722, "Keys": {…},
//!               "NewImage": {…}, "OldImage": {…}, "SequenceNumber": "…",
//!               "StreamViewType": "NEW_AND_OLD_IMAGES"},
//!  "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"}}
//! ```
//!
//! Images are DynamoDB's low-level attribute-value JSON: `{"S": "…"}`, `{"N": "…"}`,
//! `{"B": "<base64>"}`, `{"BOOL": …}`, `{"NULL": true}`, `{"M": {…}}`, `{"L": […]}`,
//! `{"SS": […]}`, `{"NS": […]}`, `{"BS": […]}`. `userIdentity` is present only on deletions
//! made by DynamoDB's TTL sweeper (reference §5).

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::store::Item;

/// What happened to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new item (`INSERT`).
    Insert,
    /// An existing item was written (`MODIFY`).
    Modify,
    /// The item was deleted (`REMOVE`), by a request or by the TTL sweeper.
    Remove,
}

impl Change {
    /// Parses the stream's `eventName`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "INSERT" => Some(Self::Insert),
            "MODIFY" => Some(Self::Modify),
            "REMOVE" => Some(Self::Remove),
            _ => None,
        }
    }
}

/// One stream record of the table (`NEW_AND_OLD_IMAGES`).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    /// Insert, modify or remove.
    pub change: Change,
    /// The item before the change (`MODIFY`, `REMOVE`).
    pub old: Option<Item>,
    /// The item after the change (`INSERT`, `MODIFY`).
    pub new: Option<Item>,
    /// Whether DynamoDB's TTL sweeper made the change (a `REMOVE` by the service itself).
    pub by_ttl: bool,
    /// When the change was written (`ApproximateCreationDateTime`, epoch seconds).
    pub at: i64,
    /// The record's `SequenceNumber`: what a partial batch failure reports.
    pub sequence_number: Option<String>,
}

/// A stream record that is not the shape DynamoDB Streams delivers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A field the record must have is missing or of the wrong type.
    #[error("stream record: {0} is missing or malformed")]
    Field(&'static str),
    /// `eventName` is none of `INSERT`, `MODIFY`, `REMOVE`.
    #[error("stream record: unknown eventName {0:?}")]
    EventName(String),
    /// An image holds a value that is no DynamoDB attribute value.
    #[error("stream record: attribute {0:?} is no DynamoDB attribute value")]
    Attribute(String),
}

/// The principal of the TTL sweeper's deletions.
const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

impl StreamRecord {
    /// One record of a Lambda DynamoDB Streams event (an element of `Records`).
    pub fn from_lambda_json(record: &Value) -> Result<Self, RecordError> {
        let name = record
            .get("eventName")
            .and_then(Value::as_str)
            .ok_or(RecordError::Field("eventName"))?;
        let change = Change::parse(name).ok_or_else(|| RecordError::EventName(name.to_owned()))?;
        let dynamodb = record
            .get("dynamodb")
            .and_then(Value::as_object)
            .ok_or(RecordError::Field("dynamodb"))?;
        let image = |field: &'static str| -> Result<Option<Item>, RecordError> {
            match dynamodb.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(map)) => item_from_json(map).map(Some),
                Some(_) => Err(RecordError::Field(field)),
            }
        };
        // Seconds; Lambda may write it as a float (`1795529722.0`).
        let at = dynamodb
            .get("ApproximateCreationDateTime")
            .and_then(Value::as_f64)
            .ok_or(RecordError::Field("dynamodb.ApproximateCreationDateTime"))?
            .floor() as i64;
        let identity = record.get("userIdentity");
        let by_ttl = identity.and_then(|i| i.get("type")).and_then(Value::as_str)
            == Some("Service")
            && identity
                .and_then(|i| i.get("principalId"))
                .and_then(Value::as_str)
                == Some(TTL_PRINCIPAL);
        Ok(Self {
            change,
            old: image("OldImage")?,
            new: image("NewImage")?,
            by_ttl: by_ttl && change == Change::Remove,
            at,
            sequence_number: dynamodb
                .get("SequenceNumber")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Every record of a Lambda DynamoDB Streams event (`{"Records": […]}`), each parsed on its
    /// own so one malformed record does not hide the others.
    pub fn all_from_lambda_event(
        event: &Value,
    ) -> Result<Vec<Result<Self, RecordError>>, RecordError> {
        let records = event
            .get("Records")
            .and_then(Value::as_array)
            .ok_or(RecordError::Field("Records"))?;
        Ok(records.iter().map(Self::from_lambda_json).collect())
    }

    /// The image that names the item: the new one, or the old one of a removal.
    pub fn image(&self) -> Option<&Item> {
        self.new.as_ref().or(self.old.as_ref())
    }
}

/// A stream batch's records in the order a function plays them: a record that does not parse
/// is logged and skipped (it would fail the same way every time, and a failing record blocks
/// its shard), and once a record [failed](StreamBatch::fail), it and every record after it are
/// reported unprocessed (Lambda hands the batch over again from the earliest failure).
#[derive(Debug)]
pub struct StreamBatch {
    records: std::vec::IntoIter<Result<StreamRecord, RecordError>>,
    count: usize,
    failed: Vec<String>,
}

impl StreamBatch {
    /// The records of a Lambda DynamoDB Streams event (`{"Records": […]}`); none (logged) when
    /// it is no stream batch.
    pub fn of(event: &Value) -> Self {
        let records = StreamRecord::all_from_lambda_event(event).unwrap_or_else(|e| {
            tracing::error!(error = %e, "not a stream batch: nothing to do");
            Vec::new()
        });
        Self {
            count: records.len(),
            records: records.into_iter(),
            failed: Vec::new(),
        }
    }

    /// How many records the batch holds, parsed or not.
    pub fn record_count(&self) -> usize {
        self.count
    }

    /// `record`, the last one this batch gave, failed for a storage failure: it and every
    /// record after it are reported, and the batch gives no more.
    pub fn fail(&mut self, record: &StreamRecord) {
        match &record.sequence_number {
            Some(seq) => self.failed.push(seq.clone()),
            None => tracing::error!("a failed record has no sequence number"),
        }
        while let Some(rest) = self.next() {
            self.failed.extend(rest.sequence_number);
        }
    }

    /// The sequence numbers to report in `batchItemFailures`, earliest first.
    pub fn into_failed(self) -> Vec<String> {
        self.failed
    }
}

impl Iterator for StreamBatch {
    type Item = StreamRecord;

    /// The next record that parses.
    fn next(&mut self) -> Option<StreamRecord> {
        self.records.find_map(|record| {
            record
                .inspect_err(|e| tracing::error!(error = %e, "stream record skipped"))
                .ok()
        })
    }
}

/// The invocation log's `status` for a stream batch: `ok`, or `partial` when records failed.
pub fn batch_status(failed: &[String]) -> &'static str {
    if failed.is_empty() {
        "ok"
    } else {
        "partial"
    }
}

/// Lambda's partial batch response to a stream batch (`ReportBatchItemFailures`): the
/// sequence numbers of the records to hand over again, earliest first (none: all done).
pub fn batch_item_failures(failed: &[String]) -> Value {
    let failures: Vec<Value> = failed
        .iter()
        .map(|seq| serde_json::json!({ "itemIdentifier": seq }))
        .collect();
    serde_json::json!({ "batchItemFailures": failures })
}

/// An image (`{"name": {"S": "…"}, …}`) as the SDK's item.
pub fn item_from_json(map: &Map<String, Value>) -> Result<Item, RecordError> {
    map.iter()
        .map(|(name, v)| {
            attribute_from_json(v)
                .map(|a| (name.clone(), a))
                .ok_or_else(|| RecordError::Attribute(name.clone()))
        })
        .collect()
}

/// One low-level attribute value (`{"S": "…"}`, `{"M": {…}}`, …).
fn attribute_from_json(value: &Value) -> Option<AttributeValue> {
    let map = value.as_object()?;
    let (tag, inner) = match map.len() {
        1 => map.iter().next()?,
        _ => return None,
    };
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let blob = |v: &Value| -> Option<Blob> { STANDARD.decode(v.as_str()?).ok().map(Blob::new) };
    Some(match tag.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_owned()),
        "N" => AttributeValue::N(inner.as_str()?.to_owned()),
        "B" => AttributeValue::B(blob(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(inner.as_bool()?),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "BS" => AttributeValue::Bs(inner.as_array()?.iter().map(blob).collect::<Option<_>>()?),
        "L" => AttributeValue::L(
            inner
                .as_array()?
                .iter()
                .map(attribute_from_json)
                .collect::<Option<_>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(inner.as_object()?).ok()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_owned())
    }

    #[test]
    fn a_lambda_modify_record_parses_into_a_stream_record() {
        let record = json!({
            "eventID": "c4ca4238a0b923820dcc509a6f75849b",
            "eventName": "MODIFY",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1795529722.0,
                "Keys": {"pk": {"S": "USER#u1"}, "sk": {"S": "SESSION"}},
                "OldImage": {"pk": {"S": "USER#u1"}, "status": {"S": "pending"}},
                "NewImage": {
                    "pk": {"S": "USER#u1"}, "status": {"S": "active"},
                    "expiresAt": {"N": "1795616122"},
                    "delivery": {"M": {"status": {"S": "read"}, "errorCode": {"NULL": true}}},
                    "phones": {"SS": ["34688246216"]}, "optedOut": {"BOOL": false},
                    "list": {"L": [{"N": "1"}, {"S": "x"}]}, "raw": {"B": "AAE="}
                },
                "SequenceNumber": "111",
                "SizeBytes": 26,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            },
            "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026"
        });
        let r = StreamRecord::from_lambda_json(&record).unwrap();
        assert_eq!(r.change, Change::Modify);
        assert!(!r.by_ttl);
        assert_eq!(r.at, 1_795_529_722);
        assert_eq!(r.sequence_number.as_deref(), Some("111"));
        let new = r.new.unwrap();
        assert_eq!(new["status"], s("active"));
        assert_eq!(new["expiresAt"], AttributeValue::N("1795616122".into()));
        let delivery = new["delivery"].as_m().unwrap();
        assert_eq!(delivery["status"], s("read"));
        assert_eq!(delivery["errorCode"], AttributeValue::Null(true));
        assert_eq!(
            new["phones"],
            AttributeValue::Ss(vec!["34688246216".into()])
        );
        assert_eq!(new["optedOut"], AttributeValue::Bool(false));
        assert_eq!(
            new["list"],
            AttributeValue::L(vec![AttributeValue::N("1".into()), s("x")])
        );
        assert_eq!(new["raw"], AttributeValue::B(Blob::new(vec![0, 1])));
        assert_eq!(r.old.unwrap()["status"], s("pending"));
    }

    #[test]
    fn a_removal_by_the_ttl_sweeper_is_told_apart_from_a_request() {
        let remove = |identity: Option<Value>| {
            let mut record = json!({
                "eventName": "REMOVE",
                "dynamodb": {"ApproximateCreationDateTime": 1795529722,
                             "OldImage": {"pk": {"S": "USER#u1"}}}
            });
            if let Some(i) = identity {
                record["userIdentity"] = i;
            }
            StreamRecord::from_lambda_json(&record).unwrap()
        };
        let ttl = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
        assert!(remove(Some(ttl)).by_ttl);
        assert!(!remove(None).by_ttl);
        let other = json!({"type": "Service", "principalId": "example.amazonaws.com"});
        assert!(!remove(Some(other)).by_ttl);
        let r = remove(None);
        assert_eq!(r.change, Change::Remove);
        assert!(r.new.is_none());
        assert_eq!(r.image().unwrap()["pk"], s("USER#u1"));
    }

    #[test]
    fn malformed_records_are_refused_one_by_one() {
        let event = json!({"Records": [
            {"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": 1,
                "NewImage": {"pk": {"S": "CONV#u1"}}}},
            {"eventName": "UPSERT", "dynamodb": {"ApproximateCreationDateTime": 1}},
            {"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": 1,
                "NewImage": {"pk": {"X": "?"}}}},
            {"eventName": "INSERT"}
        ]});
        let parsed = StreamRecord::all_from_lambda_event(&event).unwrap();
        assert!(parsed[0].is_ok());
        assert_eq!(parsed[1], Err(RecordError::EventName("UPSERT".into())));
        assert_eq!(parsed[2], Err(RecordError::Attribute("pk".into())));
        assert_eq!(parsed[3], Err(RecordError::Field("dynamodb")));
        assert!(StreamRecord::all_from_lambda_event(&json!({})).is_err());
    }

    #[test]
    fn a_batch_skips_what_does_not_parse_and_reports_a_failed_record_with_all_after_it() {
        let record = |seq: &str| {
            json!({"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": 1,
                "NewImage": {"pk": {"S": "CONV#u1"}}, "SequenceNumber": seq}})
        };
        let malformed = json!({"eventName": "UPSERT", "dynamodb": {"SequenceNumber": "2"}});
        let event =
            json!({"Records": [record("1"), malformed, record("3"), record("4"), record("5")]});
        let sequence = |r: &StreamRecord| r.sequence_number.clone().unwrap_or_default();

        let mut all = StreamBatch::of(&event);
        assert_eq!(all.record_count(), 5);
        let played: Vec<String> = all.by_ref().map(|r| sequence(&r)).collect();
        assert_eq!(played, ["1", "3", "4", "5"]);
        assert!(all.into_failed().is_empty());

        let mut batch = StreamBatch::of(&event);
        assert_eq!(batch.next().map(|r| sequence(&r)).as_deref(), Some("1"));
        let failing = batch.next().expect("the third record");
        batch.fail(&failing);
        assert!(batch.next().is_none(), "nothing is played after a failure");
        assert_eq!(batch.into_failed(), ["3", "4", "5"]);

        let none = StreamBatch::of(&json!({"detail-type": "Scheduled Event"}));
        assert_eq!(none.record_count(), 0);
        assert_eq!(batch_status(&[]), "ok");
        assert_eq!(batch_status(&["3".into()]), "partial");
    }
}
