//! Webhook deliveries as Meta sends them, signed for real, and the pending sessions they answer.

use std::collections::HashMap;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, RequestExt};
use serde_json::{json, Value};

use super::meta::payload_of;
use super::{finish, request, Reply, TestEnv, APP_SECRET, PHONE_NUMBER_ID};

/// A pending session as the phone owner sees it: what a reply needs to name it.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The API key of the session's user.
    pub key: String,
    /// The session id.
    pub id: String,
    /// Meta's id of the activation template (`context.id` of a quoting reply).
    pub wamid: String,
    /// The quick-reply button's payload.
    pub payload: String,
    /// The `biz_opaque_callback_data` the template was sent with, which Meta echoes in each
    /// of its statuses.
    pub tag: String,
}

impl Pending {
    /// The phone owner's tap on this session's "Activate" button, sent from `from`.
    pub fn button_reply(&self, from: &str) -> Value {
        button_reply(from, &self.payload, &self.wamid, 1)
    }

    /// A status of this session's activation template, as Meta reports it (with the tag).
    pub fn status(&self, status: &str, recipient: &str, timestamp: i64) -> Value {
        tagged(
            self::status(&self.wamid, status, recipient, timestamp),
            &self.tag,
        )
    }

    /// A `failed` status (131026) of this session's activation template, with the tag.
    pub fn failed_status(&self, recipient: &str, timestamp: i64) -> Value {
        tagged(failed_status(&self.wamid, recipient, timestamp), &self.tag)
    }
}

/// `status` as Meta echoes it for a message sent with `biz_opaque_callback_data` = `tag`.
pub fn tagged(mut status: Value, tag: &str) -> Value {
    status["biz_opaque_callback_data"] = Value::String(tag.to_owned());
    status
}

/// Asserts the webhook's 200 acknowledgement.
pub fn assert_received(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json(), json!({"received": true}));
}

/// `sha256=<hex>` of `body` under the test app secret.
pub fn sign(body: &str) -> String {
    sandbox::meta::signature::sign(APP_SECRET.as_bytes(), body.as_bytes())
}

/// A `whatsapp_business_account` delivery with one change for `phone_number_id`.
pub fn envelope_for(phone_number_id: &str, messages: Vec<Value>, statuses: Vec<Value>) -> Value {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "12029087457", "phone_number_id": phone_number_id },
    });
    if !messages.is_empty() {
        value["contacts"] = json!([{ "profile": { "name": "Ana" }, "wa_id": messages[0]["from"] }]);
        value["messages"] = Value::Array(messages);
    }
    if !statuses.is_empty() {
        value["statuses"] = Value::Array(statuses);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102030405060708", "changes": [{ "field": "messages", "value": value }] }]
    })
}

/// A delivery for the sandbox number.
pub fn envelope(messages: Vec<Value>, statuses: Vec<Value>) -> Value {
    envelope_for(PHONE_NUMBER_ID, messages, statuses)
}

/// A tap on the template's quick-reply button.
pub fn button_reply(from: &str, payload: &str, context_id: &str, n: u32) -> Value {
    json!({
        "context": { "from": "12029087457", "id": context_id },
        "from": from,
        "id": format!("wamid.IN{n:04}"),
        "timestamp": (super::T0 + 30).to_string(),
        "type": "button",
        "button": { "payload": payload, "text": "Activate" }
    })
}

/// A typed reply, optionally quoting one of our messages.
pub fn text_reply(from: &str, body: &str, context_id: Option<&str>, n: u32) -> Value {
    let mut m = json!({
        "from": from,
        "id": format!("wamid.IN{n:04}"),
        "timestamp": (super::T0 + 30).to_string(),
        "type": "text",
        "text": { "body": body }
    });
    if let Some(id) = context_id {
        m["context"] = json!({ "from": "12029087457", "id": id });
    }
    m
}

/// A typed message sent at `timestamp`.
pub fn text_at(from: &str, body: &str, timestamp: i64, n: u32) -> Value {
    let mut m = text_reply(from, body, None, n);
    m["timestamp"] = Value::String(timestamp.to_string());
    m
}

/// A status of one of our messages.
pub fn status(message_id: &str, status: &str, recipient: &str, timestamp: i64) -> Value {
    json!({
        "id": message_id, "status": status, "timestamp": timestamp.to_string(),
        "recipient_id": recipient
    })
}

/// A `failed` status with Meta's 131026.
pub fn failed_status(message_id: &str, recipient: &str, timestamp: i64) -> Value {
    json!({
        "id": message_id, "status": "failed", "timestamp": timestamp.to_string(),
        "recipient_id": recipient,
        "errors": [{ "code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                     "error_data": { "details": "Message Undeliverable." },
                     "href": "/documentation/business-messaging/whatsapp/support/error-codes" }]
    })
}

impl TestEnv {
    /// Provisions `user` and creates a session for `digits` (E.164 digits, as Meta's `from`).
    pub async fn pending(&self, user: &str, digits: &str) -> Pending {
        let key = self.api_key(user).await;
        let reply = self.create(&key, &format!("+{digits}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let id = reply.json()["session"]["id"].as_str().unwrap().to_owned();
        let sent = self.sent_templates().await;
        let template = sent
            .iter()
            .rev()
            .find(|t| payload_of(t).ends_with(&id))
            .expect("a template for this session");
        let item = self.session_item(user).await;
        let wamid = item["activationMessageId"].as_s().unwrap().clone();
        Pending {
            key,
            id,
            wamid,
            payload: payload_of(template),
            tag: template["biz_opaque_callback_data"]
                .as_str()
                .expect("the template carries its session's tag")
                .to_owned(),
        }
    }

    /// Delivers `messages` (and no statuses), signed, and expects the 200 acknowledgement.
    pub async fn deliver_messages(&self, messages: Vec<Value>) {
        assert_received(&self.deliver(&envelope(messages, vec![])).await);
    }

    /// Delivers `statuses` (and no messages), signed, and expects the 200 acknowledgement.
    pub async fn deliver_statuses(&self, statuses: Vec<Value>) {
        assert_received(&self.deliver(&envelope(vec![], statuses)).await);
    }

    /// `POST /v1/whatsapp/webhook` with `body` and the given signature header.
    pub async fn webhook_raw(&self, body: Body, signature: Option<&str>) -> Reply {
        let mut req = request(Method::POST, "/v1/whatsapp/webhook", None, body);
        if let Some(sig) = signature {
            req.headers_mut()
                .insert("x-hub-signature-256", sig.parse().expect("header value"));
        }
        finish(
            "POST",
            "/v1/whatsapp/webhook",
            sandbox::api::webhook::handle(&self.app, req).await,
        )
    }

    /// `POST /v1/whatsapp/webhook` with `payload`, correctly signed.
    pub async fn deliver(&self, payload: &Value) -> Reply {
        let body = payload.to_string();
        let sig = sign(&body);
        self.webhook_raw(Body::Text(body), Some(&sig)).await
    }

    /// `GET /v1/whatsapp/webhook?…` with these query parameters.
    pub async fn handshake(&self, params: &[(&str, &str)]) -> Reply {
        let query: HashMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let req = request(Method::GET, "/v1/whatsapp/webhook", None, Body::Empty)
            .with_query_string_parameters(query);
        finish(
            "GET",
            "/v1/whatsapp/webhook",
            sandbox::api::webhook::handle(&self.app, req).await,
        )
    }
}

/// Meta's 2026 shapes (business-scoped user ids, usernames), one fixture per shape of Meta's
/// "Business-scoped user IDs" documentation and its webhook references: `user_id` on every
/// message and status, `username` when the user set one, the phone only sometimes.
pub mod bsuid {
    use serde_json::{json, Value};

    use super::envelope;

    /// The BSUID of the Spanish test phone's owner (Meta's documented example).
    pub const SPAIN_BSUID: &str = "US.13491208655302741918";
    /// The BSUID Meta gives that owner after a `user_id_update`.
    pub const NEW_SPAIN_BSUID: &str = "US.20260811000000000042";
    /// A BSUID no phone of the tests is ever learned beside.
    pub const STRANGER_BSUID: &str = "BR.99887766554433221100";
    /// A parent BSUID (linked business portfolios).
    pub const PARENT_BSUID: &str = "US.ENT.11815799212886844830";
    /// A username.
    pub const USERNAME: &str = "ana.sandbox";

    /// `delivery` with `value.contacts` set to `contacts` (or removed when `None`).
    fn with_contacts(mut delivery: Value, contacts: Option<Value>) -> Value {
        let value = &mut delivery["entry"][0]["changes"][0]["value"];
        match (value.as_object_mut(), contacts) {
            (Some(v), Some(c)) => {
                v.insert("contacts".into(), c);
            }
            (Some(v), None) => {
                v.remove("contacts");
            }
            _ => {}
        }
        delivery
    }

    /// An inbound message from a user with a username whose phone Meta shares: `from` and
    /// `contacts[].wa_id` beside `from_user_id`, `contacts[].user_id` and `profile.username`.
    pub fn with_phone_and_username(mut message: Value, bsuid: &str) -> Value {
        let phone = message["from"].clone();
        message["from_user_id"] = json!(bsuid);
        with_contacts(
            envelope(vec![message], vec![]),
            Some(json!([{
                "profile": { "name": "Ana", "username": USERNAME },
                "wa_id": phone,
                "user_id": bsuid,
                "parent_user_id": PARENT_BSUID
            }])),
        )
    }

    /// An inbound message with no phone at all: no `from`, no `contacts[].wa_id`; only
    /// `from_user_id`, `contacts[].user_id` and the username.
    pub fn bsuid_only(mut message: Value, bsuid: &str) -> Value {
        if let Some(m) = message.as_object_mut() {
            m.remove("from");
        }
        message["from_user_id"] = json!(bsuid);
        with_contacts(
            envelope(vec![message], vec![]),
            Some(json!([{
                "profile": { "name": "Ana", "username": USERNAME },
                "user_id": bsuid
            }])),
        )
    }

    /// As [`bsuid_only`], with `from` present but not a number (the BSUID itself).
    pub fn bsuid_in_from(message: Value, bsuid: &str) -> Value {
        let mut delivery = bsuid_only(message, bsuid);
        delivery["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = json!(bsuid);
        delivery
    }

    /// A `sent`, `delivered` or `read` status of a message sent to a phone number:
    /// `recipient_id` (the phone), `recipient_user_id` and `recipient_parent_user_id`, and
    /// `contacts` with `wa_id`, `user_id`, `parent_user_id` (and the username, except on
    /// `sent`).
    pub fn status_with_bsuid(mut status: Value, bsuid: &str) -> Value {
        let phone = status["recipient_id"].clone();
        let sent = status["status"] == "sent";
        status["recipient_user_id"] = json!(bsuid);
        status["recipient_parent_user_id"] = json!(PARENT_BSUID);
        let mut contact = json!({
            "wa_id": phone, "user_id": bsuid, "parent_user_id": PARENT_BSUID
        });
        if !sent {
            contact["profile"] = json!({ "username": USERNAME });
        }
        with_contacts(envelope(vec![], vec![status]), Some(json!([contact])))
    }

    /// `statuses` or `messages` beside one contact that names no phone (no `wa_id`), only
    /// `bsuid`: not a shape Meta documents, and nothing to learn from (no object ties the
    /// BSUID to any phone).
    pub fn beside_a_lone_contact(messages: Vec<Value>, statuses: Vec<Value>, bsuid: &str) -> Value {
        with_contacts(
            envelope(messages, statuses),
            Some(json!([{ "profile": { "username": USERNAME }, "user_id": bsuid }])),
        )
    }

    /// A `failed` status of a message sent to a phone number: no `contacts` and no
    /// `recipient_user_id` (Meta omits both); `recipient_id` is the phone.
    pub fn failed_without_contacts(status: Value) -> Value {
        with_contacts(envelope(vec![], vec![status]), None)
    }

    /// A `system` message: the user's BSUID changed from `previous` to `current`; no
    /// `contacts` (system messages have none), `from` the phone only when Meta shares it.
    pub fn user_id_update(
        phone: Option<&str>,
        previous: &str,
        current: &str,
        timestamp: i64,
        n: u32,
    ) -> Value {
        let mut message = json!({
            "from_user_id": current,
            "id": format!("wamid.SYS{n:04}"),
            "timestamp": timestamp.to_string(),
            "type": "system",
            "system": {
                "body": "User Ana changed their business-scoped user id",
                "type": "user_id_update",
                "previous_user_id": previous,
                "user_id": current,
                "previous_parent_user_id": PARENT_BSUID,
                "parent_user_id": PARENT_BSUID
            }
        });
        if let Some(p) = phone {
            message["from"] = json!(p);
        }
        with_contacts(envelope(vec![message], vec![]), None)
    }
}
