//! End-to-end tests: the real handlers against DynamoDB Local and a stub Graph API.
//! One test binary, so DynamoDB Local starts once per test run.

#[path = "admin.rs"]
mod admin;
#[path = "events.rs"]
mod events;
#[path = "init.rs"]
mod init;
#[path = "sessions.rs"]
mod sessions;
#[path = "template.rs"]
mod template;
#[path = "webhook.rs"]
mod webhook;
