//! Meta's webhook: what it delivers, how it is signed, and what each event means. No I/O here;
//! the route `api::webhook` reads the request and applies the decisions through the store.
//! (Sending templates is the Graph API client's job, in `graph`; `wire` writes Meta's side,
//! for the stand-ins that play it.)

/// What Meta echoes back to us: the `biz_opaque_callback_data` tag that ties a message's
/// statuses to its item, and the quick-reply payload that names the session a reply answers.
pub mod callback;
/// Who an event is from or about: the phone and the business-scoped user id (BSUID).
pub mod identity;
/// What an event means: intent of a message, the session a reply activates, delivery reports.
pub mod matching;
/// The JSON shapes of a delivery (`Notification` down to each message and status).
pub mod payload;
/// `X-Hub-Signature-256` and constant-time secret comparison.
pub mod signature;
/// Meta's side of the wire: the deliveries it posts and the errors its Graph API answers, as
/// the virtual phones and `make dev`'s Graph stand-in write them.
pub mod wire;
