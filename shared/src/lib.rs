//! The library every sandbox function stands on.
//!
//! Pure rules (`phone`, `bsuid`, `session`, `message`, `config`, `limits`, `meta`, `events`)
//! never touch the network; `store` (DynamoDB), `graph` (Meta's Graph API; its virtual phones answer with
//! no network at all), `outbound`'s egress and attempt (users' webhook URLs), `delivery`
//! (which runs them for the events function) and `virtual_phones` (which hands the virtual
//! phones' deliveries to the webhook) are the only modules that do I/O. `edge` is the HTTP edge: the
//! error envelope, request ids, JSON bodies and the one log line per request. `api` holds the
//! request handlers the Lambda binaries run, and the parsing of their requests.

/// The request handlers, one module per route.
pub mod api;
/// What a handler runs with (`App`, built once per container) and every function's `run`.
pub mod app;
/// API-key authentication and its per-container cache.
pub mod auth;
/// The business-scoped user id type (`Bsuid`): Meta's id for a user, beside or instead of the
/// phone.
pub mod bsuid;
/// Where "now" comes from (a manual clock in tests).
pub mod clock;
/// Configuration from the environment, per function role.
pub mod config;
/// Delivery I/O: stream batches and the retry sweep become attempts at users' webhooks.
pub mod delivery;
/// The HTTP edge: error envelope, request ids, JSON bodies, one log line per request.
pub mod edge;
/// Outbound events from the table's stream records (pure): which change is which event, its
/// stable id and Zernio's JSON envelope.
pub mod events;
/// Where sends go: the Graph API client, and the virtual phones the service plays.
pub mod graph;
/// HTTPS trust and TLS settings the maintained clients leave to us: `EXTRA_CA_CERTS` for the
/// SDK's HTTP client, and the rustls settings the reqwest clients (Graph, webhooks) share.
pub mod https;
/// Random identifiers: session ids, write tokens.
pub mod ids;
/// UTC days, daily-cap counter keys and the `X-RateLimit-*` headers (pure).
pub mod limits;
/// A sandbox message (pure): what a send asks for, the conversation, statuses and their order.
pub mod message;
/// Meta's webhook: payloads, signature, and the rules that decide what an event means.
pub mod meta;
/// Outbound webhooks: signing, the egress that reaches only public addresses, one attempt,
/// the retry schedule.
pub mod outbound;
/// The phone number type (`PhoneE164`) and masking for logs.
pub mod phone;
/// The session, its ids (`SessionId`, `UserId`), states and lifetimes.
pub mod session;
/// The DynamoDB store: one `Store`, a module per concern, the key builders.
pub mod store;
/// JSON logs, set up once per container.
pub mod telemetry;
/// The phone function: stream records of accepted sends to virtual phones become the phones'
/// signed deliveries, handed to the webhook in process.
pub mod virtual_phones;
/// An API user's outbound webhooks (pure): settings and their rules, log entries, test event.
pub mod webhooks;

pub use app::{run, run_with, App};
pub use clock::{Clock, SystemClock};
pub use config::{Config, Role};
