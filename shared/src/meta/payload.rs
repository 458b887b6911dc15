//! The shapes of Meta's webhook deliveries. Every field is optional, so a shape we do not know
//! is ignored rather than rejected.

use serde::Deserialize;
use serde_json::Value;

/// A delivery: `{object, entry: [{changes: [{field, value}]}]}`. Every field is optional so
/// a shape we do not know is ignored rather than rejected.
#[derive(Debug, Default, Deserialize)]
pub struct Notification {
    /// `whatsapp_business_account`.
    #[serde(default)]
    pub object: Option<String>,
    /// The batched entries.
    #[serde(default)]
    pub entry: Vec<Entry>,
}

/// One WABA's changes.
#[derive(Debug, Default, Deserialize)]
pub struct Entry {
    /// The changes.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One change: `field` is `messages` for messages and statuses.
#[derive(Debug, Default, Deserialize)]
pub struct Change {
    /// The subscribed field.
    #[serde(default)]
    pub field: Option<String>,
    /// The payload.
    #[serde(default)]
    pub value: ChangeValue,
}

/// The `value` of a `messages` change.
#[derive(Debug, Default, Deserialize)]
pub struct ChangeValue {
    /// Which business number was involved.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Who the messages are from, or the statuses are about (absent from `failed` statuses
    /// and system messages).
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Inbound messages.
    #[serde(default)]
    pub messages: Vec<InboundMessage>,
    /// Statuses of our outbound messages.
    #[serde(default)]
    pub statuses: Vec<StatusEvent>,
}

/// `value.metadata`.
#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    /// Meta's id of the business number.
    #[serde(default)]
    pub phone_number_id: Option<String>,
}

/// One entry of `value.contacts`: the user a message is from or a status is about.
#[derive(Debug, Default, Deserialize)]
pub struct Contact {
    /// The user's phone (WhatsApp id); since 2026 omitted for some users with a username.
    #[serde(default)]
    pub wa_id: Option<String>,
    /// The user's business-scoped user id (BSUID), since 2026.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The parent BSUID, for linked business portfolios.
    #[serde(default)]
    pub parent_user_id: Option<String>,
    /// The user's profile (`name`, and `username` when they set one).
    #[serde(default)]
    pub profile: Option<Value>,
}

/// An inbound message.
#[derive(Debug, Default, Deserialize)]
pub struct InboundMessage {
    /// The sender's WhatsApp id (usually the phone's digits); since 2026 absent for some
    /// users with a username.
    #[serde(default)]
    pub from: Option<String>,
    /// The sender's business-scoped user id (BSUID), since 2026.
    #[serde(default)]
    pub from_user_id: Option<String>,
    /// The inbound message's own wamid.
    #[serde(default)]
    pub id: Option<String>,
    /// Unix seconds, as a string.
    #[serde(default)]
    pub timestamp: Option<Value>,
    /// `text`, `button`, `interactive`, `image`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// For `text`.
    #[serde(default)]
    pub text: Option<Text>,
    /// For `button` (a template's quick reply).
    #[serde(default)]
    pub button: Option<Button>,
    /// The message this one replies to.
    #[serde(default)]
    pub context: Option<Context>,
    /// For `interactive`: the button or list row the user picked, as Meta sends it.
    #[serde(default)]
    pub interactive: Option<Value>,
    /// For `reaction`: the emoji and the message it reacts to.
    #[serde(default)]
    pub reaction: Option<Value>,
    /// For `system`: a change of the user's number or BSUID.
    #[serde(default)]
    pub system: Option<SystemNotice>,
}

/// `system`: Meta telling that a user's phone number or business-scoped user id changed.
#[derive(Debug, Default, Deserialize)]
pub struct SystemNotice {
    /// `user_id_update`, `user_changed_user_id`, `user_changed_number`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The user's BSUID from now on.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The BSUID it replaces.
    #[serde(default)]
    pub previous_user_id: Option<String>,
    /// The new phone, for `user_changed_number`.
    #[serde(default)]
    pub wa_id: Option<String>,
}

/// `text`.
#[derive(Debug, Default, Deserialize)]
pub struct Text {
    /// What the user typed.
    #[serde(default)]
    pub body: Option<String>,
}

/// `button`.
#[derive(Debug, Default, Deserialize)]
pub struct Button {
    /// The payload we put on the template.
    #[serde(default)]
    pub payload: Option<String>,
    /// The button's label.
    #[serde(default)]
    pub text: Option<String>,
}

/// `context`.
#[derive(Debug, Default, Deserialize)]
pub struct Context {
    /// The wamid of our message being replied to.
    #[serde(default)]
    pub id: Option<String>,
}

/// A status of one of our messages.
#[derive(Debug, Default, Deserialize)]
pub struct StatusEvent {
    /// The wamid of our message.
    #[serde(default)]
    pub id: Option<String>,
    /// `sent`, `delivered`, `read`, `failed`, …
    #[serde(default)]
    pub status: Option<String>,
    /// Unix seconds, as a string.
    #[serde(default)]
    pub timestamp: Option<Value>,
    /// The recipient's WhatsApp id (or, for a message sent to a BSUID, that BSUID).
    #[serde(default)]
    pub recipient_id: Option<String>,
    /// The recipient's business-scoped user id, since 2026 (omitted from a `failed` status of
    /// a message sent to a phone number).
    #[serde(default)]
    pub recipient_user_id: Option<String>,
    /// The `biz_opaque_callback_data` the message was sent with, echoed by Meta.
    #[serde(default)]
    pub biz_opaque_callback_data: Option<String>,
    /// For `failed`.
    #[serde(default)]
    pub errors: Vec<StatusErrorItem>,
}

/// One error of a failed status.
#[derive(Debug, Default, Deserialize)]
pub struct StatusErrorItem {
    /// Meta's code (131026: undeliverable).
    #[serde(default)]
    pub code: Option<i64>,
    /// Meta's title.
    #[serde(default)]
    pub title: Option<String>,
    /// Meta's message.
    #[serde(default)]
    pub message: Option<String>,
    /// `error_data.details`.
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

/// `error_data`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorData {
    /// The specific reason.
    #[serde(default)]
    pub details: Option<String>,
}

/// Unix seconds from Meta's string (or, leniently, number) timestamp.
pub fn epoch_seconds(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}
