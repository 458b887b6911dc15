//! Meta's side of the wire, written as Meta writes it: the webhook deliveries it posts to the
//! business (statuses of its messages; a quick-reply tap, a typed text, an interactive reply;
//! the `contacts` block with the 2026 business-scoped user ids; the envelope) and the error
//! objects its Graph API answers with. No I/O.
//!
//! Two stand-ins for Meta speak through it: the service's own virtual phones
//! (`graph::virtual_phone`) and `make dev`'s Graph API stand-in (`tools/graph-stub`). The
//! service reads the same deliveries with [`super::payload`]; the shapes follow Meta's Cloud API
//! reference (`shared/reference/whatsapp-cloud-api.md`, sections 3 and 4).

use serde_json::{json, Value};

/// The WhatsApp Business Account id in the deliveries (`entry[0].id`).
pub const WABA_ID: &str = "102030405060708";
/// The label of the activation template's quick-reply button, as the phone shows it.
pub const BUTTON_TEXT: &str = "Activate";

/// The sandbox number, as every delivery names it in `value.metadata`.
#[derive(Debug, Clone, Copy)]
pub struct Business<'a> {
    /// Meta's id of the number (`metadata.phone_number_id`).
    pub phone_number_id: &'a str,
    /// Its digits (`metadata.display_phone_number`, and `context.from` of a reply).
    pub display_number: &'a str,
}

impl Business<'_> {
    /// The `whatsapp_business_account` delivery of one `messages` change with `value`.
    fn envelope(&self, mut value: Value) -> Value {
        value["messaging_product"] = json!("whatsapp");
        value["metadata"] = json!({
            "display_phone_number": self.display_number,
            "phone_number_id": self.phone_number_id,
        });
        json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": WABA_ID, "changes": [{ "field": "messages", "value": value }] }],
        })
    }

    /// A delivery with one status of one of the business's messages.
    pub fn status(&self, status: &Status<'_>) -> Value {
        let mut event = json!({
            "id": status.message_id,
            "status": status.status.as_str(),
            "timestamp": status.timestamp.to_string(),
        });
        let mut value = json!({});
        match &status.recipient {
            User::Phone(phone) => event["recipient_id"] = json!(phone),
            User::Username {
                phone,
                bsuid,
                username,
            } => {
                event["recipient_id"] = json!(phone);
                // A failed status omits the business-scoped ids and the contacts block.
                if !matches!(status.status, Report::Failed(_)) {
                    event["recipient_user_id"] = json!(bsuid);
                    value["contacts"] = json!([{
                        "profile": { "username": username },
                        "wa_id": phone,
                        "user_id": bsuid,
                    }]);
                }
            }
        }
        if let Report::Failed(error) = &status.status {
            event["errors"] = json!([error]);
        }
        if let Some(tag) = status.tag {
            event["biz_opaque_callback_data"] = json!(tag);
        }
        value["statuses"] = json!([event]);
        self.envelope(value)
    }

    /// A delivery with one message from a user to the business.
    pub fn message(&self, message: &Message<'_>) -> Value {
        let mut event = json!({
            "id": message.id,
            "timestamp": message.timestamp.to_string(),
        });
        let contact = match &message.from {
            User::Phone(phone) => {
                event["from"] = json!(phone);
                json!({ "profile": { "name": message.profile_name }, "wa_id": phone })
            }
            // Meta's shape for a user whose phone it does not share: only the BSUID.
            User::Username {
                bsuid, username, ..
            } => {
                event["from_user_id"] = json!(bsuid);
                json!({
                    "profile": { "name": message.profile_name, "username": username },
                    "user_id": bsuid,
                })
            }
        };
        if let Some(quoted) = message.context {
            event["context"] = json!({ "from": self.display_number, "id": quoted });
        }
        match &message.content {
            Content::Text(body) => {
                event["type"] = json!("text");
                event["text"] = json!({ "body": body });
            }
            Content::Button { payload } => {
                event["type"] = json!("button");
                event["button"] = json!({ "payload": payload, "text": BUTTON_TEXT });
            }
            Content::Choice(choice) => {
                let kind = choice.kind.as_str();
                let mut picked = json!({ "id": choice.id, "title": choice.title });
                if let Some(description) = &choice.description {
                    picked["description"] = json!(description);
                }
                event["type"] = json!("interactive");
                event["interactive"] = json!({ "type": kind, kind: picked });
            }
        }
        self.envelope(json!({ "contacts": [contact], "messages": [event] }))
    }
}

/// A WhatsApp user as a delivery names them.
#[derive(Debug, Clone, Copy)]
pub enum User<'a> {
    /// By phone only (`from`, `recipient_id`, `contacts[].wa_id`).
    Phone(&'a str),
    /// A user with a username (Meta's 2026 business-scoped user ids): a status carries the
    /// phone and the BSUID side by side in one contact; a message only the BSUID and the
    /// username (no `from`, no `wa_id`).
    Username {
        /// The phone's digits.
        phone: &'a str,
        /// The business-scoped user id (`US.…`).
        bsuid: &'a str,
        /// The username.
        username: &'a str,
    },
}

/// What a status reports.
#[derive(Debug, Clone)]
pub enum Report {
    /// Meta handed the message to WhatsApp.
    Sent,
    /// It reached the phone.
    Delivered,
    /// The user opened it.
    Read,
    /// It will not arrive: the `errors[]` element (for example [`undeliverable`]).
    Failed(Value),
}

impl Report {
    /// Meta's `status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed(_) => "failed",
        }
    }
}

/// One status of one of the business's messages.
#[derive(Debug, Clone)]
pub struct Status<'a> {
    /// The message's `wamid`.
    pub message_id: &'a str,
    /// What happened to it.
    pub status: Report,
    /// When, epoch seconds.
    pub timestamp: i64,
    /// Its recipient.
    pub recipient: User<'a>,
    /// The `biz_opaque_callback_data` it was sent with, which Meta echoes.
    pub tag: Option<&'a str>,
}

/// One message from a user to the business.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// Its sender.
    pub from: User<'a>,
    /// The message's own `wamid`.
    pub id: &'a str,
    /// When, epoch seconds.
    pub timestamp: i64,
    /// The business's message it answers (`context.id`), if it quotes one.
    pub context: Option<&'a str>,
    /// The sender's profile name.
    pub profile_name: &'a str,
    /// What it says.
    pub content: Content,
}

/// What a user's message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Typed text (`type: text`).
    Text(String),
    /// A tap on a template's quick-reply button (`type: button`): the payload the template was
    /// sent with.
    Button {
        /// The button's payload.
        payload: String,
    },
    /// A reply button or list row picked in an interactive message (`type: interactive`).
    Choice(Choice),
}

/// The reply button or list row a user picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// A reply button or a list row.
    pub kind: ChoiceKind,
    /// Its id, as the business sent it.
    pub id: String,
    /// Its title.
    pub title: String,
    /// A list row's description, when it has one.
    pub description: Option<String>,
}

/// Which kind of interactive answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceKind {
    /// `button_reply`: a reply button of an interactive `button` message.
    ButtonReply,
    /// `list_reply`: a row of an interactive `list` message.
    ListReply,
}

impl ChoiceKind {
    /// Meta's `interactive.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ButtonReply => "button_reply",
            Self::ListReply => "list_reply",
        }
    }
}

/// The `errors[]` element of a `failed` status for a number that cannot receive the message
/// (131026, Message undeliverable).
pub fn undeliverable() -> Value {
    json!({
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": { "details": "Message Undeliverable." },
        "href": "/documentation/business-messaging/whatsapp/support/error-codes",
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

    /// 100 (GraphMethodException): a phone number id the business does not own.
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

    /// The `error` object, with Meta's support trace id.
    pub fn object(&self, fbtrace_id: &str) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            error["error_data"] = json!({ "messaging_product": "whatsapp", "details": details });
        }
        error["fbtrace_id"] = json!(fbtrace_id);
        error
    }

    /// The response body: `{"error": {...}}`.
    pub fn body(&self, fbtrace_id: &str) -> Value {
        json!({ "error": self.object(fbtrace_id) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::identity::{recipient_of_status, senders_of};
    use crate::meta::matching::{delivery_of, reference_of, Reference};
    use crate::meta::payload::Notification;

    const SANDBOX: Business<'static> = Business {
        phone_number_id: "109876543210987",
        display_number: "12029087457",
    };
    const BSUID: &str = "US.13491208655302741918";
    const USERNAME: User<'static> = User::Username {
        phone: "12015550190",
        bsuid: BSUID,
        username: "virtual.0190",
    };

    fn read(delivery: Value) -> Notification {
        serde_json::from_value(delivery).expect("the service's own parser reads it")
    }

    #[test]
    fn a_status_is_a_delivery_the_service_reads_with_its_tag() {
        let delivery = SANDBOX.status(&Status {
            message_id: "wamid.SENT",
            status: Report::Read,
            timestamp: 1_795_529_722,
            recipient: User::Phone("34688246216"),
            tag: Some("msg:1:oX:u1"),
        });
        assert_eq!(delivery["entry"][0]["id"], WABA_ID);
        let value = &delivery["entry"][0]["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], "109876543210987");
        assert_eq!(value["statuses"][0]["timestamp"], "1795529722");
        let n = read(delivery);
        let s = &n.entry[0].changes[0].value.statuses[0];
        assert_eq!(s.biz_opaque_callback_data.as_deref(), Some("msg:1:oX:u1"));
        assert_eq!(s.recipient_id.as_deref(), Some("34688246216"));
        assert_eq!(s.status.as_deref(), Some("read"));
    }

    #[test]
    fn a_failed_status_carries_meta_error_and_no_business_scoped_ids() {
        let delivery = SANDBOX.status(&Status {
            message_id: "wamid.X",
            status: Report::Failed(undeliverable()),
            timestamp: 5,
            recipient: USERNAME,
            tag: None,
        });
        let value = &delivery["entry"][0]["changes"][0]["value"];
        assert!(value.get("contacts").is_none(), "{value}");
        assert!(value["statuses"][0].get("recipient_user_id").is_none());
        let n = read(delivery);
        let status = &n.entry[0].changes[0].value.statuses[0];
        let report = delivery_of(status, 0).expect("a failed report");
        assert_eq!(report.error.map(|e| e.code), Some(131026));
    }

    #[test]
    fn a_username_users_status_ties_phone_and_bsuid_in_one_contact_and_its_message_has_only_the_bsuid(
    ) {
        let status = SANDBOX.status(&Status {
            message_id: "wamid.X",
            status: Report::Delivered,
            timestamp: 5,
            recipient: USERNAME,
            tag: None,
        });
        let contacts = &status["entry"][0]["changes"][0]["value"]["contacts"];
        assert_eq!(contacts.as_array().map(Vec::len), Some(1));
        assert_eq!(contacts[0]["wa_id"], "12015550190");
        assert_eq!(contacts[0]["user_id"], BSUID);
        let n = read(status);
        let value = &n.entry[0].changes[0].value;
        let who = recipient_of_status(&value.statuses[0], &value.contacts);
        assert_eq!(
            who.pair()
                .map(|(p, b)| (p.to_owned(), b.as_str().to_owned())),
            Some(("12015550190".to_owned(), BSUID.to_owned()))
        );

        let message = SANDBOX.message(&Message {
            from: USERNAME,
            id: "wamid.IN",
            timestamp: 6,
            context: None,
            profile_name: "Virtual",
            content: Content::Text("hi".into()),
        });
        let value = &message["entry"][0]["changes"][0]["value"];
        let m = &value["messages"][0];
        assert!(m.get("from").is_none(), "{m}");
        assert!(value["contacts"][0].get("wa_id").is_none());
        assert_eq!(m["from_user_id"], BSUID);
        let n = read(message);
        let value = &n.entry[0].changes[0].value;
        let sender = senders_of(&value.messages, &value.contacts).remove(0);
        assert_eq!(sender.phone, None);
        assert_eq!(
            sender.bsuid.map(|b| b.as_str().to_owned()),
            Some(BSUID.into())
        );
    }

    #[test]
    fn a_tap_and_an_interactive_choice_quote_the_message_they_answer() {
        let tap = SANDBOX.message(&Message {
            from: User::Phone("34688246216"),
            id: "wamid.TAP",
            timestamp: 1_795_529_752,
            context: Some("wamid.TEMPLATE"),
            profile_name: "Local tester",
            content: Content::Button {
                payload: "activate:wss_X".into(),
            },
        });
        let m = &tap["entry"][0]["changes"][0]["value"]["messages"][0];
        assert_eq!(m["context"]["from"], "12029087457");
        assert_eq!(m["button"]["text"], BUTTON_TEXT);
        assert_eq!(m["timestamp"], "1795529752");
        let n = read(tap);
        assert_eq!(
            reference_of(&n.entry[0].changes[0].value.messages[0]),
            Reference::SessionId("wss_X".into())
        );

        let row = SANDBOX.message(&Message {
            from: User::Phone("34688246216"),
            id: "wamid.ROW",
            timestamp: 1,
            context: Some("wamid.LIST"),
            profile_name: "Local tester",
            content: Content::Choice(Choice {
                kind: ChoiceKind::ListReply,
                id: "row-2".into(),
                title: "Two".into(),
                description: Some("the second".into()),
            }),
        });
        let m = &row["entry"][0]["changes"][0]["value"]["messages"][0];
        assert_eq!(m["type"], "interactive");
        assert_eq!(m["interactive"]["type"], "list_reply");
        assert_eq!(m["interactive"]["list_reply"]["id"], "row-2");
        assert_eq!(m["interactive"]["list_reply"]["description"], "the second");
        let n = read(row);
        assert_eq!(
            reference_of(&n.entry[0].changes[0].value.messages[0]),
            Reference::MessageId("wamid.LIST".into())
        );
    }

    #[test]
    fn graph_errors_have_metas_shape() {
        let body = GraphError::not_in_allowed_list().body("Atrace");
        assert_eq!(body["error"]["code"], 131030);
        assert_eq!(body["error"]["type"], "OAuthException");
        assert_eq!(
            body["error"]["message"],
            "(#131030) Recipient phone number not in allowed list"
        );
        assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp");
        assert!(body["error"]["error_data"]["details"].is_string());
        assert_eq!(body["error"]["fbtrace_id"], "Atrace");
        assert!(GraphError::invalid_token().body("A")["error"]
            .get("error_data")
            .is_none());
    }
}
