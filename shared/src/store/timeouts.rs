//! How long one DynamoDB request may take, whatever hangs.
//!
//! The arithmetic (README, "Timeouts"; `template.yaml` sizes each function's `Timeout` from it):
//! - a connection gets [`CONNECT_TIMEOUT`] (1 s), one attempt [`ATTEMPT_TIMEOUT`] (2 s), and
//!   the whole operation, retries and backoff included, [`OPERATION_TIMEOUT`] (4 s = T);
//!   DynamoDB answers in milliseconds, so a slow attempt is retried once before the operation
//!   gives up, and a throttled request gets up to [`MAX_ATTEMPTS`] tries inside the same T
//!   (DynamoDB Local on a busy test machine needs the generous attempt time; production never
//!   comes close);
//! - list and revoke: auth + one item request = 2T = 8 s, under their 15 s Lambda timeout;
//! - create: auth, then the claim (and, for a refresh, the reservation) start no later than 2T
//!   after the request did, so the send starts by 3T; the Graph send takes at most
//!   `META_TIMEOUT_MS` (5 s); recording or undoing it (and its retries) must end by 2T after
//!   that: 5T + 5 s = 25 s, under create's 30 s Lambda timeout, so a hanging DynamoDB becomes
//!   the contract's 503 (or 502 for Meta) and never a Lambda timeout.

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;

/// Time to open a connection to DynamoDB.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time for one attempt of a request.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for a whole operation, every retry and backoff included (T in the arithmetic above).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
/// Attempts per operation (throttling and transient errors), all within [`OPERATION_TIMEOUT`].
pub const MAX_ATTEMPTS: u32 = 3;

/// The DynamoDB client's timeouts: the functions and the tests build their clients with these.
pub fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The DynamoDB client's retries: the SDK's standard mode, [`MAX_ATTEMPTS`] attempts.
pub fn sdk_retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}
