//! The sends the stub receives (template, text, interactive) and its answer to an accepted
//! one, as Meta's Cloud API reference has them (`shared/reference/whatsapp-cloud-api.md`,
//! sections 1-3). The webhook deliveries the phone's side produces and the Graph API's error
//! objects are the service's own description of Meta's side (`sandbox::meta::wire`), which
//! its virtual phones speak too.

use serde_json::{json, Value};

pub use sandbox::meta::wire::{GraphError, BUTTON_TEXT};

/// The recipients the stub refuses, as people write them.
pub const REJECT_RANGE: &str = "+34 600 000 000 to +34 600 000 099";
/// Valid Spanish mobile numbers by libphonenumber (so they pass the service's phone check and
/// reach Meta), which no real person is handed out for local testing.
const REJECT_PREFIX: &str = "346000000";

/// Whether Meta (the stub) refuses to send to these digits: the documented reject range.
pub fn is_rejected(digits: &str) -> bool {
    digits.len() == 11 && digits.starts_with(REJECT_PREFIX)
}

/// What a send asks Meta to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A template: `template.name`, `template.language.code`, and the payload of its first
    /// quick-reply button parameter, if the send set one.
    Template {
        /// `template.name`.
        name: String,
        /// `template.language.code`.
        language: String,
        /// The quick-reply payload.
        payload: Option<String>,
    },
    /// Free-form text: `text.body`.
    Text(String),
    /// An interactive message: its `type` (`button`, `list`) and the first choice's id and
    /// title, which the phone picks when it answers.
    Interactive {
        /// `interactive.type`.
        kind: String,
        /// The first reply button or list row: `(id, title)`.
        first: Option<(String, String)>,
    },
}

/// What the stub reads from a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSend {
    /// `to` exactly as sent (Meta echoes it as `contacts[0].input`).
    pub to: String,
    /// The digits of `to`: the WhatsApp id reported back and the phone that replies.
    pub digits: String,
    /// The message.
    pub content: Content,
    /// `biz_opaque_callback_data`, which Meta echoes in every status of the message.
    pub tag: Option<String>,
}

impl MessageSend {
    /// Reads a send request body. The error becomes `error_data.details` of Meta's code 100.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        if v["messaging_product"] != "whatsapp" {
            return Err("messaging_product must be \"whatsapp\"".into());
        }
        let to = v["to"].as_str().ok_or("to is required")?;
        let digits: String = to.chars().filter(char::is_ascii_digit).collect();
        if !(7..=15).contains(&digits.len()) {
            return Err(format!("to {to:?} is not a phone number"));
        }
        let content = match v["type"].as_str() {
            Some("template") => {
                let template = &v["template"];
                let name = template["name"]
                    .as_str()
                    .ok_or("template.name is required")?;
                let language = template["language"]["code"]
                    .as_str()
                    .ok_or("template.language.code is required")?;
                let payload = template["components"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["type"] == "button" && c["sub_type"] == "quick_reply")
                    .flat_map(|c| c["parameters"].as_array().into_iter().flatten())
                    .find(|p| p["type"] == "payload")
                    .and_then(|p| p["payload"].as_str());
                Content::Template {
                    name: name.to_owned(),
                    language: language.to_owned(),
                    payload: payload.map(str::to_owned),
                }
            }
            Some("text") => {
                let body = v["text"]["body"]
                    .as_str()
                    .filter(|b| !b.is_empty())
                    .ok_or("text.body is required")?;
                Content::Text(body.to_owned())
            }
            Some("interactive") => {
                let i = &v["interactive"];
                let kind = i["type"].as_str().ok_or("interactive.type is required")?;
                let pick = |id: &Value, title: &Value| {
                    Some((id.as_str()?.to_owned(), title.as_str()?.to_owned()))
                };
                let first = match kind {
                    "button" => pick(
                        &i["action"]["buttons"][0]["reply"]["id"],
                        &i["action"]["buttons"][0]["reply"]["title"],
                    ),
                    "list" => pick(
                        &i["action"]["sections"][0]["rows"][0]["id"],
                        &i["action"]["sections"][0]["rows"][0]["title"],
                    ),
                    other => return Err(format!("interactive.type {other:?} is not supported")),
                };
                Content::Interactive {
                    kind: kind.to_owned(),
                    first,
                }
            }
            _ => return Err("the stub accepts type template, text or interactive".into()),
        };
        Ok(Self {
            to: to.to_owned(),
            digits,
            content,
            tag: v["biz_opaque_callback_data"].as_str().map(str::to_owned),
        })
    }

    /// The quick-reply payload of a template send.
    pub fn payload(&self) -> Option<&str> {
        match &self.content {
            Content::Template { payload, .. } => payload.as_deref(),
            _ => None,
        }
    }
}

/// Meta's 200 answer to an accepted send: accepted, not delivered.
pub fn accepted(send: &MessageSend, message_id: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": send.to, "wa_id": send.digits }],
        "messages": [{ "id": message_id, "message_status": "accepted" }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEND: &str = r#"{"messaging_product":"whatsapp","recipient_type":"individual",
        "to":"+34688246216","type":"template","template":{"name":"sandbox_start",
        "language":{"code":"en_US"},"components":[{"type":"button","sub_type":"quick_reply",
        "index":"0","parameters":[{"type":"payload","payload":"activate:wss_X"}]}]}}"#;

    #[test]
    fn reads_recipient_template_and_payload() {
        let send = MessageSend::parse(SEND.as_bytes()).unwrap();
        assert_eq!(send.to, "+34688246216");
        assert_eq!(send.digits, "34688246216");
        assert_eq!(
            send.content,
            Content::Template {
                name: "sandbox_start".into(),
                language: "en_US".into(),
                payload: Some("activate:wss_X".into())
            }
        );
        assert_eq!(send.payload(), Some("activate:wss_X"));
        let answer = accepted(&send, "wamid.X");
        assert_eq!(answer["contacts"][0]["input"], "+34688246216");
        assert_eq!(answer["contacts"][0]["wa_id"], "34688246216");
        assert_eq!(answer["messages"][0]["id"], "wamid.X");
    }

    #[test]
    fn malformed_sends_say_what_is_wrong() {
        assert!(MessageSend::parse(b"nope")
            .unwrap_err()
            .contains("not JSON"));
        let text = SEND.replace("\"to\":\"+34688246216\",", "");
        assert_eq!(
            MessageSend::parse(text.as_bytes()).unwrap_err(),
            "to is required"
        );
    }

    #[test]
    fn reads_text_and_interactive_sends_with_their_tag() {
        let text = r#"{"messaging_product":"whatsapp","to":"+34688246216","type":"text",
            "text":{"body":"hola"},"biz_opaque_callback_data":"msg:1:oX:u1"}"#;
        let send = MessageSend::parse(text.as_bytes()).unwrap();
        assert_eq!(send.content, Content::Text("hola".into()));
        assert_eq!(send.tag.as_deref(), Some("msg:1:oX:u1"));
        let buttons = r#"{"messaging_product":"whatsapp","to":"+34688246216","type":"interactive",
            "interactive":{"type":"button","body":{"text":"?"},"action":{"buttons":[
            {"type":"reply","reply":{"id":"yes","title":"Yes"}}]}}}"#;
        let send = MessageSend::parse(buttons.as_bytes()).unwrap();
        assert_eq!(
            send.content,
            Content::Interactive {
                kind: "button".into(),
                first: Some(("yes".into(), "Yes".into()))
            }
        );
    }

    #[test]
    fn reject_range_numbers_are_valid_phones_that_meta_refuses() {
        for n in 0..100 {
            let number = format!("+34 600 000 {n:03}");
            let phone = sandbox::phone::PhoneE164::parse(&number)
                .unwrap_or_else(|e| panic!("{number}: {e}"));
            assert!(is_rejected(phone.digits()), "{number}");
        }
        for digits in ["34600000100", "34688246216", "346000000123", "3460000001"] {
            assert!(!is_rejected(digits), "{digits}");
        }
    }
}
