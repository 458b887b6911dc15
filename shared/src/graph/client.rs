//! Meta's Graph API client: sends the activation template and sandbox messages over HTTPS.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Accepted, SendError};
use crate::config::{Config, Secret};
use crate::message::Outbound;
use crate::meta::callback::{activation_payload, activation_tag};
use crate::session::Session;

/// Sends activation templates from the sandbox number. Built once per container.
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    messages_url: String,
    token: Secret,
    template_name: String,
    template_language: String,
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<MessageRef>,
}

#[derive(Deserialize)]
struct Contact {
    wa_id: Option<String>,
}

#[derive(Deserialize)]
struct MessageRef {
    id: String,
}

impl GraphClient {
    /// Builds the client with the configured connect and total timeouts. No retries: a timed-out
    /// send is ambiguous, and a retry could deliver the template twice.
    pub fn new(config: &Config, token: Secret) -> Result<Self, reqwest::Error> {
        // The TLS settings the reqwest clients share (ring, the trust roots loaded once).
        Self::with_tls(config, token, crate::https::tls_config())
    }

    /// [`GraphClient::new`] with other TLS settings (tests trust a test CA with it).
    pub fn with_tls(
        config: &Config,
        token: Secret,
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .connect_timeout(config.graph_connect_timeout)
            .timeout(config.graph_timeout)
            .build()?;
        Ok(Self {
            http,
            messages_url: format!(
                "{}/{}/{}/messages",
                config.graph_base_url, config.graph_api_version, config.phone_number_id
            ),
            token,
            template_name: config.template_name.clone(),
            template_language: config.template_language.clone(),
        })
    }

    /// The HTTP client under this one: its TLS settings, its connector. A send reports a
    /// failed connection only as "could not connect"; tests read the TLS error from this.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The request body of the activation template of `session`, to its phone.
    pub fn template_body(&self, session: &Session) -> Value {
        let mut body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            // `+` and digits: without the `+`, Meta may prefix the sender's country code.
            "to": session.phone.with_plus(),
            "type": "template",
            "template": {
                "name": self.template_name,
                "language": { "code": self.template_language },
                "components": [{
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{ "type": "payload", "payload": activation_payload(&session.id) }]
                }]
            }
        });
        // Meta echoes this in every status of the message: the webhook finds the session by
        // it, and skips every untagged status without a DynamoDB request.
        if let Some(tag) = activation_tag(&session.id, &session.user_id) {
            body["biz_opaque_callback_data"] = Value::String(tag);
        }
        body
    }

    /// Sends the activation template once.
    pub async fn send_activation(&self, session: &Session) -> Result<Accepted, SendError> {
        self.send(&self.template_body(session)).await
    }

    /// The request body of a sandbox message to `session`'s phone, tagged with `tag` so its
    /// statuses find its conversation item. The template is the sandbox's own, with the
    /// session's quick-reply payload (a tap names the session, as for activation).
    pub fn message_body(&self, session: &Session, message: &Outbound, tag: Option<&str>) -> Value {
        let mut body = match message {
            Outbound::Template => self.template_body(session),
            Outbound::Text(text) => json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": session.phone.with_plus(),
                "type": "text",
                "text": { "preview_url": false, "body": text }
            }),
            Outbound::Interactive(interactive) => json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": session.phone.with_plus(),
                "type": "interactive",
                "interactive": interactive
            }),
        };
        match tag {
            Some(tag) => body["biz_opaque_callback_data"] = Value::String(tag.to_owned()),
            None => {
                if let Some(b) = body.as_object_mut() {
                    b.remove("biz_opaque_callback_data");
                }
            }
        }
        body
    }

    /// Sends one request body ([`Self::template_body`], [`Self::message_body`]) once, with no
    /// retries: one `POST /messages`, classified.
    pub async fn send(&self, body: &Value) -> Result<Accepted, SendError> {
        let response = self
            .http
            .post(&self.messages_url)
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| SendError::Unavailable(describe(&e)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| SendError::Unavailable(describe(&e)))?;
        classify(status.as_u16(), &bytes)
    }
}

/// Turns Meta's answer into an outcome: any error object is a rejection (whatever the HTTP
/// status); a 2xx with a message id is accepted; anything else is "unavailable".
pub fn classify(status: u16, body: &[u8]) -> Result<Accepted, SendError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(error) = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .filter(|e| e.is_object())
    {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("Meta rejected the template send")
            .to_owned();
        return Err(SendError::Rejected {
            message,
            error: error.clone(),
        });
    }
    if !(200..300).contains(&status) {
        return Err(SendError::Unavailable(format!(
            "HTTP {status} without an error object"
        )));
    }
    let parsed: SendResponse = json
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| SendError::Unavailable(format!("HTTP {status} with an unreadable body")))?;
    let message_id = parsed
        .messages
        .into_iter()
        .next()
        .map(|m| m.id)
        .ok_or_else(|| SendError::Unavailable(format!("HTTP {status} without a message id")))?;
    Ok(Accepted {
        message_id,
        wa_id: parsed.contacts.into_iter().next().and_then(|c| c.wa_id),
    })
}

/// A transport failure in words an operator can use, without the request URL.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        let text = e.to_string();
        match e.url() {
            Some(url) => text.replace(url.as_str(), "<graph url>"),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_object_is_a_rejection_whatever_the_status() {
        let body = br#"{"error":{"message":"(#131030) Recipient phone number not in allowed list","code":131030}}"#;
        for status in [400, 403, 500] {
            match classify(status, body) {
                Err(SendError::Rejected { message, error }) => {
                    assert_eq!(
                        message,
                        "(#131030) Recipient phone number not in allowed list"
                    );
                    assert_eq!(error["code"], 131030);
                }
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn bare_5xx_and_garbage_are_unavailable() {
        assert!(matches!(
            classify(503, b"oops"),
            Err(SendError::Unavailable(_))
        ));
        assert!(matches!(
            classify(200, b"{}"),
            Err(SendError::Unavailable(_))
        ));
    }

    #[test]
    fn accepted_send_yields_wamid_and_wa_id() {
        let body = br#"{"messaging_product":"whatsapp","contacts":[{"input":"+5511987654321","wa_id":"551187654321"}],"messages":[{"id":"wamid.X"}]}"#;
        let ok = classify(200, body).unwrap();
        assert_eq!(ok.message_id, "wamid.X");
        assert_eq!(ok.wa_id.as_deref(), Some("551187654321"));
    }
}
