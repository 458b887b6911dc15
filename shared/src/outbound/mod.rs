//! Outbound webhooks, delivery side: how one event reaches an API user's URL, signed, through an
//! egress that reaches only public addresses, and when a failure is tried again. No storage and
//! no routes: the webhook settings, the delivery log and the scheduling of retries build on this.
//!
//! - [`settings`]: `WEBHOOK_TIMEOUT_MS`, `WEBHOOK_RETRY_SCHEDULE_SECONDS`,
//!   `WEBHOOK_ALLOW_PRIVATE_TARGETS`.
//! - [`endpoint`] and [`headers`] (pure): a webhook's URL and `customHeaders`, checked when set.
//! - [`signing`] (pure): the secret, `X-Zernio-Signature` and the Standard Webhooks signature.
//! - [`egress`]: the SSRF rules ([`egress::refusal`]), the resolver that applies them to the
//!   addresses a connection uses, and the HTTP client (no redirects, bounded time).
//! - [`attempt`]: one attempt, POST and classification ([`Outcome`]), recorded as [`Attempt`].
//! - [`schedule`] (pure): the waits between attempts and `Retry-After`.

/// One delivery attempt: the request, its outcome and its record.
pub mod attempt;
/// Which addresses a delivery may reach, and the client that enforces it.
pub mod egress;
/// A webhook's URL, checked when it is set.
pub mod endpoint;
/// A webhook's custom headers, checked when they are set.
pub mod headers;
/// The retry schedule and `Retry-After` (pure).
pub mod schedule;
/// Delivery settings from the environment.
pub mod settings;
/// The webhook secret and both signatures (pure).
pub mod signing;

pub use attempt::{attempt, Attempt, AttemptError, Delivery, Outcome};
pub use egress::{refusal, EgressClient, FilteringResolver, Refused, Rule, Targets};
pub use endpoint::{UrlError, WebhookUrl};
pub use headers::{CustomHeaders, HeaderError};
pub use schedule::{NextStep, RetrySchedule};
pub use settings::DeliverySettings;
pub use signing::{SecretError, SigningSecrets, WebhookSecret};
