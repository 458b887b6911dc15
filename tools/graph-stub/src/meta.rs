//! Meta's wire formats as the stub speaks them: the sends it receives (template, text,
//! interactive), the answers the Graph API gives, and the webhook deliveries the phone's side
//! produces (statuses, a quick-reply tap, a typed or picked reply). The shapes follow
//! Meta's Cloud API reference (`shared/reference/whatsapp-cloud-api.md`, sections 1-5).

use serde_json::{json, Value};

/// The recipients the stub refuses, as people write them.
pub const REJECT_RANGE: &str = "+34 600 000 000 to +34 600 000 099";
/// Valid Spanish mobile numbers by libphonenumber (so they pass the service's phone check and
/// reach Meta), which no real person is handed out for local testing.
const REJECT_PREFIX: &str = "346000000";

/// Whether Meta (the stub) refuses to send to these digits: the documented reject range.
pub fn is_rejected(digits: &str) -> bool {
    digits.len() == 11 && digits.starts_with(REJECT_PREFIX)
}

/// The WhatsApp Business Account id in the stub's webhook deliveries (`entry[0].id`).
pub const WABA_ID: &str = "102030405060708";
/// The label of the template's quick-reply button, as the phone shows it.
pub const BUTTON_TEXT: &str = "Activate";

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

/// A Graph API error: the HTTP status and the fields of Meta's `error` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// The HTTP status Meta answers with.
    pub status: u16,
    /// `error.code`, the field clients branch on.
    pub code: i64,
    /// `error.message`.
    pub message: String,
    /// `error.type`.
    pub kind: &'static str,
    /// `error.error_data.details`, present on WhatsApp errors.
    pub details: Option<String>,
}

impl GraphError {
    /// 131030: what Meta answers for a recipient missing from a test number's allow list.
    pub fn not_in_allowed_list() -> Self {
        Self {
            status: 400,
            code: 131030,
            message: "(#131030) Recipient phone number not in allowed list".into(),
            kind: "OAuthException",
            details: Some(
                "Recipient phone number not in allowed list: Add recipient phone number to \
                 recipient list and try again."
                    .into(),
            ),
        }
    }

    /// 190: a missing or wrong access token.
    pub fn invalid_token() -> Self {
        Self {
            status: 401,
            code: 190,
            message: "Invalid OAuth access token - Cannot parse access token".into(),
            kind: "OAuthException",
            details: None,
        }
    }

    /// 100: a malformed send.
    pub fn invalid_parameter(details: String) -> Self {
        Self {
            status: 400,
            code: 100,
            message: "(#100) Invalid parameter".into(),
            kind: "OAuthException",
            details: Some(details),
        }
    }

    /// 100 (GraphMethodException): a phone number id the stub does not own.
    pub fn unknown_object(id: &str) -> Self {
        Self {
            status: 400,
            code: 100,
            message: format!(
                "Unsupported post request. Object with ID '{id}' does not exist, cannot be \
                 loaded due to missing permissions, or does not support this operation."
            ),
            kind: "GraphMethodException",
            details: None,
        }
    }

    /// 2500: any path other than the messages endpoint.
    pub fn unknown_path(path: &str) -> Self {
        Self {
            status: 404,
            code: 2500,
            message: format!("Unknown path components: {path}"),
            kind: "OAuthException",
            details: None,
        }
    }

    /// The response body: `{"error": {...}}` with Meta's support trace id.
    pub fn body(&self, fbtrace_id: &str) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            error["error_data"] = json!({ "messaging_product": "whatsapp", "details": details });
        }
        error["fbtrace_id"] = json!(fbtrace_id);
        json!({ "error": error })
    }
}

/// The `whatsapp_business_account` envelope of one change for the sandbox number.
fn envelope(phone_number_id: &str, display_number: &str, mut value: Value) -> Value {
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({
        "display_phone_number": display_number,
        "phone_number_id": phone_number_id,
    });
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": WABA_ID, "changes": [{ "field": "messages", "value": value }] }],
    })
}

/// A status Meta posts for one of the sandbox number's messages.
#[derive(Debug, Clone)]
pub struct StatusUpdate<'a> {
    /// The sandbox number's id.
    pub phone_number_id: &'a str,
    /// The sandbox number's digits.
    pub display_number: &'a str,
    /// The recipient's digits (`recipient_id`).
    pub recipient: &'a str,
    /// The message's id.
    pub message_id: &'a str,
    /// `sent`, `delivered` or `read`.
    pub status: &'a str,
    /// When, epoch seconds.
    pub timestamp: u64,
    /// The send's `biz_opaque_callback_data`, echoed as Meta does.
    pub tag: Option<&'a str>,
}

impl StatusUpdate<'_> {
    /// The delivery with one `statuses` entry.
    pub fn to_json(&self) -> Value {
        let mut status = json!({
            "id": self.message_id,
            "status": self.status,
            "timestamp": self.timestamp.to_string(),
            "recipient_id": self.recipient,
        });
        if let Some(tag) = self.tag {
            status["biz_opaque_callback_data"] = json!(tag);
        }
        envelope(
            self.phone_number_id,
            self.display_number,
            json!({ "statuses": [status] }),
        )
    }
}

/// A message the phone sends back: typed text, or the choice it picked in an interactive
/// message, quoting the message it answers.
#[derive(Debug, Clone)]
pub struct PhoneReply<'a> {
    /// The sandbox number's id.
    pub phone_number_id: &'a str,
    /// The sandbox number's digits.
    pub display_number: &'a str,
    /// The phone's digits.
    pub from: &'a str,
    /// The message it answers (`context.id`).
    pub replied_to: &'a str,
    /// The reply's own id.
    pub message_id: &'a str,
    /// When, epoch seconds.
    pub timestamp: u64,
    /// What it says.
    pub reply: Reply,
}

/// What the phone answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Typed text.
    Text(String),
    /// The picked reply button or list row: interactive type (`button_reply`/`list_reply`),
    /// id, title.
    Choice(&'static str, String, String),
}

impl PhoneReply<'_> {
    /// The delivery with one message.
    pub fn to_json(&self) -> Value {
        let mut message = json!({
            "context": { "from": self.display_number, "id": self.replied_to },
            "from": self.from,
            "id": self.message_id,
            "timestamp": self.timestamp.to_string(),
        });
        match &self.reply {
            Reply::Text(body) => {
                message["type"] = json!("text");
                message["text"] = json!({ "body": body });
            }
            Reply::Choice(kind, id, title) => {
                message["type"] = json!("interactive");
                message["interactive"] =
                    json!({ "type": kind, *kind: { "id": id, "title": title } });
            }
        }
        envelope(
            self.phone_number_id,
            self.display_number,
            json!({
                "contacts": [{ "profile": { "name": "Local tester" }, "wa_id": self.from }],
                "messages": [message],
            }),
        )
    }
}

/// The delivery Meta posts when the recipient taps the template's quick-reply button.
#[derive(Debug, Clone)]
pub struct ButtonTap<'a> {
    /// The sandbox number's id (`metadata.phone_number_id`).
    pub phone_number_id: &'a str,
    /// The sandbox number's digits (`metadata.display_phone_number`, `context.from`).
    pub display_number: &'a str,
    /// The tapping phone's digits (`from`, `wa_id`).
    pub from: &'a str,
    /// The template message being answered (`context.id`).
    pub replied_to: &'a str,
    /// The reply's own message id.
    pub message_id: &'a str,
    /// When the tap happened, epoch seconds.
    pub timestamp: u64,
    /// The button's payload; Meta reports the button's label when the send set none.
    pub payload: Option<&'a str>,
}

impl ButtonTap<'_> {
    /// The `whatsapp_business_account` envelope with one `button` message.
    pub fn to_json(&self) -> Value {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": WABA_ID,
                "changes": [{
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": self.display_number,
                            "phone_number_id": self.phone_number_id,
                        },
                        "contacts": [{ "profile": { "name": "Local tester" }, "wa_id": self.from }],
                        "messages": [{
                            "context": { "from": self.display_number, "id": self.replied_to },
                            "from": self.from,
                            "id": self.message_id,
                            // Meta sends every timestamp as a string of epoch seconds.
                            "timestamp": self.timestamp.to_string(),
                            "type": "button",
                            "button": {
                                "payload": self.payload.unwrap_or(BUTTON_TEXT),
                                "text": BUTTON_TEXT,
                            },
                        }],
                    },
                }],
            }],
        })
    }
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
    fn statuses_and_replies_are_deliveries_the_service_reads() {
        let status = StatusUpdate {
            phone_number_id: "109876543210987",
            display_number: "12029087457",
            recipient: "34688246216",
            message_id: "wamid.SENT",
            status: "read",
            timestamp: 1,
            tag: Some("msg:1:oX:u1"),
        }
        .to_json();
        let n: sandbox::meta::payload::Notification = serde_json::from_value(status).unwrap();
        let s = &n.entry[0].changes[0].value.statuses[0];
        assert_eq!(s.biz_opaque_callback_data.as_deref(), Some("msg:1:oX:u1"));
        let reply = PhoneReply {
            phone_number_id: "109876543210987",
            display_number: "12029087457",
            from: "34688246216",
            replied_to: "wamid.SENT",
            message_id: "wamid.R",
            timestamp: 2,
            reply: Reply::Choice("button_reply", "yes".into(), "Yes".into()),
        }
        .to_json();
        let m = &reply["entry"][0]["changes"][0]["value"]["messages"][0];
        assert_eq!(m["interactive"]["button_reply"]["id"], "yes");
        assert_eq!(m["context"]["id"], "wamid.SENT");
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

    #[test]
    fn errors_have_meta_shape() {
        let body = GraphError::not_in_allowed_list().body("Atrace");
        assert_eq!(body["error"]["code"], 131030);
        assert_eq!(body["error"]["type"], "OAuthException");
        assert_eq!(
            body["error"]["message"],
            "(#131030) Recipient phone number not in allowed list"
        );
        assert!(body["error"]["error_data"]["details"].is_string());
        assert_eq!(body["error"]["fbtrace_id"], "Atrace");
        assert!(GraphError::invalid_token().body("A")["error"]
            .get("error_data")
            .is_none());
    }

    #[test]
    fn button_tap_is_a_webhook_delivery_the_service_reads() {
        let tap = ButtonTap {
            phone_number_id: "109876543210987",
            display_number: "12029087457",
            from: "34688246216",
            replied_to: "wamid.SENT",
            message_id: "wamid.REPLY",
            timestamp: 1_795_529_752,
            payload: Some("activate:wss_X"),
        };
        let body = tap.to_json();
        let value = &body["entry"][0]["changes"][0]["value"];
        assert_eq!(body["object"], "whatsapp_business_account");
        assert_eq!(value["metadata"]["phone_number_id"], "109876543210987");
        assert_eq!(value["contacts"][0]["wa_id"], "34688246216");
        let message = &value["messages"][0];
        assert_eq!(message["context"]["id"], "wamid.SENT");
        assert_eq!(message["timestamp"], "1795529752");
        assert_eq!(message["button"]["payload"], "activate:wss_X");
        let notification: sandbox::meta::payload::Notification =
            serde_json::from_value(body).expect("the service's own parser reads it");
        assert_eq!(notification.entry.len(), 1);
    }
}
