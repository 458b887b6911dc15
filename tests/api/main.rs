//! The service's HTTP operations, a file per route or concern: the real handlers against
//! DynamoDB Local and a `wiremock` Graph API. One test binary, so DynamoDB Local starts once
//! per test run. Each file's opening comment names the `openapi.yaml` operation or README
//! section it holds the code to.

/// Only the owner's answer to this template activates, exactly once; STOP always stops; the
/// DynamoDB requests of a large delivery.
mod activation_integrity;
/// `sandbox-admin`'s key operations against a real table and the real authenticator.
mod admin;
/// API-key authentication on every session operation, and the auth cache.
mod auth;
/// Unknown API keys: the bounded negative cache and the DynamoDB reads a flood of bad keys costs.
mod auth_cache;
/// Meta's business-scoped user ids: matching a message without a phone, learning, opt-outs.
mod bsuid;
/// Concurrent creates for one user.
mod concurrency;
/// The DynamoDB client's connections: poisoned after a transient error, bounded handshakes.
mod connections;
/// The console function: the page and its assets, their policy, caching and 404s.
mod console;
/// `createWhatsAppSandboxSession`: validation, normalization, and each existing-session case.
mod create;
/// `createWhatsAppSandboxSession` racing the phone owner and itself: rollbacks and records.
mod create_races;
/// `createWhatsAppSandboxSession` when Meta refuses, fails or cannot be reached.
mod create_when_meta_fails;
/// Delivery statuses recorded by the webhook and shown on the session.
mod delivery_statuses;
/// `make dev`'s stand-in for the events function's event source mapping (`tools/stream-pump`).
mod dev_pump;
/// Every operation when DynamoDB cannot be reached.
mod dynamodb_unavailable;
/// The events function: stream batches and the sweep become signed deliveries (issue 19).
mod event_deliveries;
/// The sample events under `events/` drive the real handlers.
mod events;
/// HTTPS trust: the DynamoDB client's roots and `EXTRA_CA_CERTS`, retries of dropped
/// connections, the reqwest clients' roots loaded beside the handshake.
mod https;
/// Init: what a function builds before its first request (the warm-up read, the Graph client).
mod init;
/// Opt-outs (403) and the daily send limits (429, `X-RateLimit-*`) of create.
mod limits;
/// `listWhatsAppSandboxSessions`.
mod list;
/// What the functions log: no message ids, no payload values.
mod logs;
/// `listWhatsAppSandboxMessages`, statuses and inbound attribution of sandbox messages.
mod messaging_list;
/// `sendWhatsAppSandboxMessage`: refusals, window, cap, idempotency, Meta's errors.
mod messaging_send;
/// STOP and START replies.
mod opt_out;
/// The table's stream as the outbox: real writes' stream records become exactly their events
/// (`sandbox::events`), a STOP told apart from a revoke.
mod outbox;
/// `replyFromVirtualPhone`: a virtual phone writes when told; its answers and refusals.
mod reply;
/// The `X-Request-Id` header.
mod request_ids;
/// `revokeWhatsAppSandboxSession`.
mod revoke;
/// DynamoDB round trips and Graph API calls per operation.
mod round_trips;
/// The sweep under a hostile tenant: shards, a bounded share per webhook, deferrals moving
/// along the schedule, expiry beyond what is owed.
mod sweep_fairness;
/// `template.yaml` agrees with the code: table, routes, policies.
mod template;
/// HTTPS for the tests: a test CA and a TLS proxy (shared with the bench).
#[path = "../tls.rs"]
mod tls;
/// Every kind of bad server certificate refused by both clients, over TLS 1.2 and 1.3.
mod tls_refusals;
/// Virtual phones: a STOP per user that lifts after 60 s, no per-recipient cap, their own caps.
mod virtual_limits;
/// Virtual phones (`+1 NXX 555 01XX`): each row of the behaviour table, played from the stream.
mod virtual_phones;
/// The webhook handshake, signatures, and the replies that activate a session.
mod webhook_activation;
/// A webhook deleted, turned off or changed while its deliveries run: no attempt with the old
/// settings once the route has answered.
mod webhook_changes;
/// `disabledResourceGroups`: stored, returned, honoured live, in the sweep, on redeliver.
mod webhooks_groups;
/// `GET /v1/webhooks/logs` and `POST /v1/webhooks/logs/redeliver`.
mod webhooks_logs;
/// `POST /v1/webhooks/logs/recover`: the failed events of a window, queued for the sweep.
mod webhooks_recover;
/// Secret rotation: both signatures for 24 hours, either secret verifies.
mod webhooks_rotation;
/// `@zernio/node`'s webhook methods, unchanged, over HTTP (`tests/sdk/webhooks.mjs`).
mod webhooks_sdk;
/// `/v1/webhooks/settings`: create, list, update, delete.
mod webhooks_settings;
/// `POST /v1/webhooks/test`.
mod webhooks_test;
