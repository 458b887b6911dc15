//! A local stand-in for Meta's Graph API, for development only (never deployed).
//!
//! It answers `POST /{version}/{phone_number_id}/messages` the way Meta does (templates, text
//! and interactive messages), prints every send, and then plays the phone: it reports each
//! message `sent`, `delivered` and `read` (echoing the send's `biz_opaque_callback_data`), and
//! answers it (taps a template's quick-reply button, echoes a text, picks an interactive
//! message's first choice), each by posting a correctly signed webhook delivery to the local
//! webhook. With it, the whole
//! activation flow runs on one machine without a Meta account. Sends to the reject range
//! ([`meta::REJECT_RANGE`]) fail like a recipient missing from a test number's allow list, so
//! the create function's rollback can be watched too.
//!
//! Meta's shapes (the deliveries, the error objects) and Meta's signing are the service's own
//! description of Meta's side (`sandbox::meta::wire`, `sandbox::meta::signature::sign`), which
//! its virtual phones use too: one copy, checked against Meta's documented examples and HMAC's
//! known answers in the library's tests rather than against a second copy here.

pub mod meta;
pub mod server;
