//! `make dev`'s stand-in for the AWS pieces that drive the `events` and `phone` functions, never
//! deployed: Lambda's event source mappings on the table's stream (here DynamoDB Local's), each
//! with its filter, and the EventBridge schedule of the events function's sweep. The functions
//! run behind `cargo lambda watch` and are invoked exactly as Lambda invokes them; one pump
//! process per mapping, as each mapping reads the stream on its own.

/// DynamoDB Local's JSON API: a table's stream, its shards and records.
pub mod dynamodb;
/// The mappings' filters (template.yaml's patterns), applied as Lambda applies them.
pub mod filter;
/// One JSON POST over plain HTTP/1.1.
pub mod http;
/// Invoking a function behind `cargo lambda watch`; the scheduled event.
pub mod invoke;
/// The event source mapping: shards, filter, batches, partial failures, retries.
pub mod pump;
