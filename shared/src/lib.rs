//! The library every sandbox function stands on.
//!
//! Pure rules (`phone`, `session`, `config`) never touch the network; `store` (DynamoDB) and
//! `graph` (Meta's Graph API) are the only modules that do I/O. `http` is the edge: the error
//! envelope, request ids, JSON bodies and the one log line per request. `api` holds the
//! request handlers the Lambda binaries run.

pub mod api;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod graph;
pub mod http;
pub mod ids;
pub mod phone;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod webhook;

pub use app::{run, run_with, App};
pub use clock::{Clock, SystemClock};
pub use config::{Config, Role};
