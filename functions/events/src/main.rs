//! The events function: one binary for two triggers, a batch of the table's stream and the
//! scheduled sweep of due retries (issue 19). A placeholder until the handler lands: it answers
//! every invocation as a stream batch with no failed record, so `sam build` has a binary.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    sandbox::telemetry::init();
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({ "batchItemFailures": [] }))
    }))
    .await
}
