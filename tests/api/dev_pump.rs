//! `make dev`'s stand-in for the events function's event source mapping (`tools/stream-pump`,
//! README "Local development") on DynamoDB Local: it starts at `LATEST`, passes only what the
//! template's filter passes, hands records over as Lambda's JSON, resumes at the lowest failed
//! record, bisects a batch the function failed, and gives up after the mapping's retries.

use e2e::stream::{events_in, local, TableStream};
use e2e::{TestEnv, SPAIN_DIGITS};
use sandbox::events::StreamRecord;
use serde_json::{json, Value};
use stream_pump::filter::Filter;
use stream_pump::pump::{sequence, Backoff, Pump, MAX_RETRIES};

/// No waits between retries: the tests count them.
const NO_WAIT: Backoff = Backoff {
    first: std::time::Duration::ZERO,
    max: std::time::Duration::ZERO,
};

/// Polls until a round moves nothing; every batch the function got.
fn drain(
    pump: &mut Pump,
    answer: &mut dyn FnMut(&[Value]) -> Result<Value, String>,
) -> Vec<Vec<Value>> {
    let mut batches = Vec::new();
    let mut idle = 0;
    while idle < 3 {
        let moved = pump.poll(&mut |event| {
            let batch = event["Records"].as_array().cloned().unwrap_or_default();
            let answered = answer(&batch);
            batches.push(batch);
            answered
        });
        idle = if moved == 0 { idle + 1 } else { 0 };
    }
    batches
}

/// The events function and its mapping's filter.
fn events() -> (&'static str, Filter) {
    (
        "events",
        Filter::for_function("events").expect("the events mapping's filter"),
    )
}

/// Whether the events mapping hands `record` over.
fn passes_filter(record: &Value) -> bool {
    events().1.passes(record)
}

fn ok(_: &[Value]) -> Result<Value, String> {
    Ok(json!({ "batchItemFailures": [] }))
}

/// Puts an item with key (`pk`, `sk`) straight into the table.
async fn put(env: &TestEnv, pk: &str, sk: &str) {
    env.app
        .store
        .client()
        .put_item()
        .table_name(&env.table)
        .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
        .item("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
        .send()
        .await
        .expect("put an item");
}

fn sequences(batch: &[Value]) -> Vec<String> {
    batch
        .iter()
        .filter_map(|r| sequence(r).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_pump_hands_over_what_the_filter_passes_from_latest_as_lambdas_json() {
    let env = TestEnv::accepting().await;
    let stream = TableStream::open(&env).await;
    put(&env, "USER#before", "SESSION").await;
    let before = stream.records().len();
    let mut pump = Pump::start(local(), stream.arn(), NO_WAIT, events()).expect("start the pump");

    // A session's activation writes session, conversation and bookkeeping items.
    let s = env.pending("u1", SPAIN_DIGITS).await;
    env.deliver_messages(vec![s.button_reply(SPAIN_DIGITS)])
        .await;
    let handed: Vec<Value> = drain(&mut pump, &mut ok).concat();

    let written: Vec<Value> = stream.records();
    let after_start = &written[before..];
    assert!(
        after_start.iter().any(|r| !passes_filter(r)),
        "the activation writes items the filter drops (keys, counters, records)"
    );
    let expected: Vec<String> = after_start
        .iter()
        .filter(|r| passes_filter(r))
        .filter_map(|r| sequence(r).map(str::to_owned))
        .collect();
    assert_eq!(
        sequences(&handed),
        expected,
        "every USER#/CONV# record after the start, once, in order"
    );
    for record in &handed {
        assert_eq!(record["eventSourceARN"], stream.arn());
        assert!(StreamRecord::from_lambda_json(record).is_ok(), "{record}");
    }
    let mut names: Vec<&str> = events_in(&handed)
        .iter()
        .map(|e| e.event.as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["message.received", "whatsapp.sandbox.session.activated"]
    );
}

#[tokio::test]
async fn a_partial_failure_resumes_at_the_lowest_failed_record() {
    let env = TestEnv::new().await;
    let stream = TableStream::open(&env).await;
    let mut pump = Pump::start(local(), stream.arn(), NO_WAIT, events()).expect("start the pump");
    for n in 0..5 {
        put(&env, "CONV#u1", &format!("MSG#{n}")).await;
    }

    let mut calls = 0;
    let batches = drain(&mut pump, &mut |batch| {
        calls += 1;
        if calls > 1 {
            return ok(batch);
        }
        // The 4th and the 2nd fail: the 2nd and everything after it come again.
        let ids = [&batch[3], &batch[1]].map(|r| json!({ "itemIdentifier": sequence(r) }));
        Ok(json!({ "batchItemFailures": ids }))
    });
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert_eq!(batches[0].len(), 5);
    assert_eq!(sequences(&batches[1]), sequences(&batches[0])[1..]);
}

#[tokio::test]
async fn a_failed_invocation_is_bisected_then_retried_up_to_the_limit() {
    let env = TestEnv::new().await;
    let stream = TableStream::open(&env).await;
    let mut pump = Pump::start(local(), stream.arn(), NO_WAIT, events()).expect("start the pump");
    for n in 0..4 {
        put(&env, "USER#u1", &format!("ITEM#{n}")).await;
    }

    // The first record always fails the function: halves until it is alone, then retried up to
    // the limit and dropped; the others are handed over after it.
    let batches = drain(&mut pump, &mut |batch| {
        if batch[0]["dynamodb"]["Keys"]["sk"]["S"] == "ITEM#0" {
            Err("Unhandled: boom".into())
        } else {
            ok(batch)
        }
    });
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    let failing = 1 + MAX_RETRIES as usize;
    let mut expected = vec![4, 2];
    expected.extend(std::iter::repeat_n(1, failing - 2));
    expected.push(3);
    assert_eq!(
        sizes, expected,
        "4, 2, then alone until the retries run out, then the rest"
    );
    let last = &batches[batches.len() - 1];
    let keys: Vec<&str> = last
        .iter()
        .filter_map(|r| r["dynamodb"]["Keys"]["sk"]["S"].as_str())
        .collect();
    assert_eq!(keys, ["ITEM#1", "ITEM#2", "ITEM#3"]);
}

#[tokio::test]
async fn the_phone_pump_hands_over_only_sends_to_plus_one_numbers_and_the_phone_plays_them() {
    let env = TestEnv::accepting().await;
    let stream = TableStream::open(&env).await;
    let phone = (
        "phone",
        Filter::for_function("phone").expect("the phone mapping's filter"),
    );
    let mut pump = Pump::start(local(), stream.arn(), NO_WAIT, phone).expect("start the pump");

    env.pending("u1", SPAIN_DIGITS).await;
    let (key, _) = env.virtual_session("u2", e2e::phones::TAPS).await;
    let handed: Vec<Value> = drain(&mut pump, &mut ok).concat();

    // The virtual session's record of its template's id, nothing of the Spanish session, none
    // of the claim's put (no template id yet).
    assert_eq!(handed.len(), 1, "{handed:?}");
    let image = &handed[0]["dynamodb"]["NewImage"];
    assert_eq!(image["phoneE164"]["S"], e2e::phones::TAPS_DIGITS);
    assert!(image["activationMessageId"]["S"].is_string());
    let played =
        sandbox::virtual_phones::handle_batch(&env.app, &json!({ "Records": handed })).await;
    assert_eq!(played.cues, 1);
    assert_eq!(env.session_of(&key).await["status"], "active");
}
