//! The send request: what a `POST /v1/whatsapp/sandbox/messages` body may contain, checked
//! field by field, and its `Idempotency-Key`. Pure; it answers with the edge's [`ApiError`]
//! because every refusal here is a 400 naming the field.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::edge::ApiError;
use crate::message::Outbound;
use crate::session::UserId;

/// Meta's limit on a text message body, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Send bodies may be larger than the session routes' 8 KiB: 4,096 characters of text can take
/// up to 16 KiB in UTF-8, and more once JSON-escaped.
pub const MAX_SEND_BODY_BYTES: usize = 64 * 1024;

/// A parsed send body: the message and the optional `to`, still as given.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    /// The message.
    pub message: Outbound,
    /// `to`, if given (checked against the session's phone by the handler).
    pub to: Option<String>,
}

fn field(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        param,
        message: message.into(),
        details: None,
    }
}

/// Checks a send body and names the first field that is wrong.
pub fn parse_send(body: &Map<String, Value>, template_name: &str) -> Result<SendRequest, ApiError> {
    let to = match body.get("to") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(field("to", "to must be a string")),
    };
    let message = match body.get("type") {
        None | Some(Value::Null) => {
            return Err(field(
                "type",
                "type is required: text, template or interactive",
            ))
        }
        Some(Value::String(t)) if t == "text" => Outbound::Text(text_body(body)?),
        Some(Value::String(t)) if t == "template" => {
            template_check(body, template_name)?;
            Outbound::Template
        }
        Some(Value::String(t)) if t == "interactive" => {
            Outbound::Interactive(interactive(body.get("interactive"))?)
        }
        Some(_) => {
            return Err(field(
                "type",
                "type must be one of text, template, interactive",
            ))
        }
    };
    Ok(SendRequest { message, to })
}

fn text_body(body: &Map<String, Value>) -> Result<String, ApiError> {
    let text = match body.get("text") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(t)) => match t.get("body") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(field("text.body", "text.body must be a string")),
        },
        _ => return Err(field("text.body", "text.body is required for type text")),
    };
    let chars = text.chars().count();
    if chars == 0 || text.trim().is_empty() {
        return Err(field("text.body", "text.body must not be empty"));
    }
    if chars > MAX_TEXT_CHARS {
        return Err(field(
            "text.body",
            format!("text.body has {chars} characters; WhatsApp allows at most {MAX_TEXT_CHARS}"),
        ));
    }
    Ok(text.to_owned())
}

fn template_check(body: &Map<String, Value>, template_name: &str) -> Result<(), ApiError> {
    match body.get("template") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(t)) => match t.get("name") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(n)) if n == template_name => Ok(()),
            Some(_) => Err(field(
                "template.name",
                format!("the sandbox sends only its own template, {template_name}"),
            )),
        },
        Some(_) => Err(field("template", "template must be an object")),
    }
}

/// Meta's interactive object, checked for the shape Meta requires of `button` and `list`.
fn interactive(value: Option<&Value>) -> Result<Value, ApiError> {
    let Some(Value::Object(obj)) = value else {
        return Err(field(
            "interactive",
            "interactive must be Meta's interactive object for type interactive",
        ));
    };
    let body_text = obj
        .get("body")
        .and_then(|b| b.get("text"))
        .and_then(Value::as_str);
    if body_text.is_none_or(|t| t.trim().is_empty()) {
        return Err(field(
            "interactive.body.text",
            "interactive.body.text is required",
        ));
    }
    let action = obj.get("action").and_then(Value::as_object);
    let non_empty = |name: &str, max: usize| {
        action
            .and_then(|a| a.get(name))
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty() && a.len() <= max)
            .is_some()
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("button") => {
            let ok = non_empty("buttons", 3)
                && action
                    .and_then(|a| a.get("buttons"))
                    .and_then(Value::as_array)
                    .is_some_and(|bs| {
                        bs.iter().all(|b| {
                            b["type"] == "reply"
                                && b["reply"]["id"].is_string()
                                && b["reply"]["title"].is_string()
                        })
                    });
            if !ok {
                return Err(field(
                    "interactive.action.buttons",
                    "a button message needs 1 to 3 buttons of type reply, each with reply.id and reply.title",
                ));
            }
        }
        Some("list") => {
            let has_button = action
                .and_then(|a| a.get("button"))
                .and_then(Value::as_str)
                .is_some_and(|b| !b.is_empty());
            if !has_button {
                return Err(field(
                    "interactive.action.button",
                    "a list message needs action.button, the label that opens the list",
                ));
            }
            if !non_empty("sections", 10) {
                return Err(field(
                    "interactive.action.sections",
                    "a list message needs 1 to 10 sections",
                ));
            }
        }
        _ => {
            return Err(field(
                "interactive.type",
                "interactive.type must be button or list",
            ))
        }
    }
    Ok(Value::Object(obj.clone()))
}

/// Checks an `Idempotency-Key`: 1-255 printable ASCII characters.
pub fn idempotency_key(header: Option<&str>) -> Result<Option<&str>, ApiError> {
    match header {
        None => Ok(None),
        Some(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x20..0x7f).contains(&b)) => {
            Ok(Some(k))
        }
        Some(_) => Err(field(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        )),
    }
}

/// The id of an idempotency record: the key is scoped to its user, and hashed so any
/// printable key fits a DynamoDB key and never shows in one.
pub fn idempotency_id(user: &UserId, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(user.as_str().as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

/// What "the same body" means for a retry: the JSON value, not its whitespace.
pub fn body_fingerprint(body: &Map<String, Value>) -> String {
    let text = serde_json::to_string(body).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn param_of(v: Value) -> &'static str {
        match parse_send(&obj(v), "sandbox_start") {
            Err(ApiError::InvalidField { param, .. }) => param,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn send_bodies_are_checked_field_by_field() {
        assert_eq!(param_of(json!({})), "type");
        assert_eq!(param_of(json!({"type": "image"})), "type");
        assert_eq!(param_of(json!({"type": "text"})), "text.body");
        assert_eq!(
            param_of(json!({"type": "text", "text": {"body": ""}})),
            "text.body"
        );
        assert_eq!(
            param_of(json!({"type": "text", "text": {"body": "é".repeat(4097)}})),
            "text.body"
        );
        assert_eq!(
            param_of(json!({"type": "text", "text": {"body": "hi"}, "to": 1})),
            "to"
        );
        assert_eq!(
            param_of(json!({"type": "template", "template": {"name": "promo"}})),
            "template.name"
        );
        assert_eq!(param_of(json!({"type": "interactive"})), "interactive");
        assert_eq!(
            param_of(
                json!({"type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"}}})
            ),
            "interactive.action.buttons"
        );
        assert_eq!(
            param_of(
                json!({"type": "interactive", "interactive": {"type": "flow", "body": {"text": "x"}}})
            ),
            "interactive.type"
        );
        let ok = parse_send(
            &obj(json!({"type": "text", "text": {"body": "é".repeat(4096)}, "to": "+34 688"})),
            "sandbox_start",
        )
        .unwrap();
        assert_eq!(ok.to.as_deref(), Some("+34 688"));
        let list = json!({"type": "list", "body": {"text": "Menu"},
            "action": {"button": "Open", "sections": [{"title": "A", "rows": [{"id": "1", "title": "One"}]}]}});
        let ok = parse_send(
            &obj(json!({"type": "interactive", "interactive": list})),
            "sandbox_start",
        )
        .unwrap();
        assert_eq!(ok.message, Outbound::Interactive(list));
    }

    #[test]
    fn idempotency_keys_are_printable_and_bounded() {
        assert_eq!(idempotency_key(None).unwrap(), None);
        assert_eq!(idempotency_key(Some("a b-1")).unwrap(), Some("a b-1"));
        assert!(idempotency_key(Some("")).is_err());
        assert!(idempotency_key(Some(&"k".repeat(256))).is_err());
        assert!(idempotency_key(Some("tab\there")).is_err());
        assert!(idempotency_key(Some("é")).is_err());
        let u = UserId::new("u1");
        assert_ne!(
            idempotency_id(&u, "k"),
            idempotency_id(&UserId::new("u2"), "k")
        );
    }
}
