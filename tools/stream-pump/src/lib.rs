//! `make dev`'s stand-in for the AWS pieces that drive the `events` function, never deployed:
//! Lambda's event source mapping on the table's stream (here DynamoDB Local's) and the
//! EventBridge schedule of its sweep. The function runs behind `cargo lambda watch` and is
//! invoked exactly as Lambda invokes it.

/// DynamoDB Local's JSON API: a table's stream, its shards and records.
pub mod dynamodb;
/// One JSON POST over plain HTTP/1.1.
pub mod http;
/// Invoking a function behind `cargo lambda watch`; the scheduled event.
pub mod invoke;
/// The event source mapping: shards, filter, batches, partial failures, retries.
pub mod pump;
