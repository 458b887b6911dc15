//! A receiver of the service's outbound webhooks, for `make dev` (never deployed): it checks
//! both signatures of every delivery, as an API user's receiver would, then prints one line
//! per event and answers 200; a delivery that fails a check is answered 401 (a signature) or
//! 400 (anything else) and the line says why.
//!
//! The checks are written independently of the service's signing code (`sandbox::outbound`),
//! so a bug there shows here:
//! - `X-Zernio-Signature`: the lowercase hex HMAC-SHA256 of the raw body, keyed with the
//!   secret's text (`whsec_` prefix included), compared in constant time (`hmac`).
//! - `webhook-id`, `webhook-timestamp`, `webhook-signature`: the Standard Webhooks reference
//!   crate (`standardwebhooks`), which also refuses a timestamp more than 5 minutes away.

pub mod server;

use std::collections::HashSet;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use sha2::Sha256;
use standardwebhooks::Webhook;

/// `make dev`'s secret: `whsec_` and the base64 of 32 bytes. Published, so local only.
pub const DEV_SECRET: &str = "whsec_bWFrZS1kZXYtcmVjZWl2ZXItbG9jYWwtb25seS1rZXk=";

/// The header of Zernio's signature.
const X_ZERNIO_SIGNATURE: &str = "x-zernio-signature";

/// The webhook secret the receiver checks deliveries with.
pub struct Secret {
    text: String,
    standard: Webhook,
}

impl Secret {
    /// A `whsec_<base64>` secret keys the Standard Webhooks signature with its decoded bytes;
    /// any other text with its UTF-8 bytes (as the service signs).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the secret is empty".into());
        }
        let standard = if text.starts_with("whsec_") {
            Webhook::new(text)
                .map_err(|e| format!("a whsec_ secret must continue with base64: {e}"))?
        } else {
            Webhook::from_bytes(text.as_bytes().to_vec()).map_err(|e| e.to_string())?
        };
        Ok(Self {
            text: text.to_owned(),
            standard,
        })
    }
}

/// A delivery that passed both checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `event` (`message.received`).
    pub name: String,
    /// `id` (`evt_…`).
    pub id: String,
    /// What the line shows besides the name and id (a message's text, a session's id).
    pub detail: String,
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401 for a signature, 400 for anything else.
    pub status: StatusCode,
    /// Why, in words.
    pub reason: String,
}

impl Refusal {
    fn signature(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            reason: reason.into(),
        }
    }

    fn malformed(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            reason: reason.into(),
        }
    }
}

/// Checks one delivery: both signatures over the raw `body`, then that the body is an event
/// whose id and name the headers repeat.
pub fn verify(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> Result<Event, Refusal> {
    let zernio = headers
        .get(X_ZERNIO_SIGNATURE)
        .ok_or_else(|| Refusal::signature("no X-Zernio-Signature"))?;
    // Lowercase, as Zernio sends it: a receiver comparing hex strings would refuse others.
    let lowercase = zernio
        .as_bytes()
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    let zernio = hex::decode(zernio.as_bytes())
        .ok()
        .filter(|_| lowercase)
        .ok_or_else(|| Refusal::signature("X-Zernio-Signature is not lowercase hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.text.as_bytes())
        .map_err(|_| Refusal::signature("the secret cannot key HMAC-SHA256"))?;
    mac.update(body);
    mac.verify_slice(&zernio).map_err(|_| {
        Refusal::signature("X-Zernio-Signature is not the HMAC-SHA256 of the body with this secret")
    })?;
    secret
        .standard
        .verify(body, headers)
        .map_err(|e| Refusal::signature(format!("webhook-signature (Standard Webhooks): {e}")))?;

    let event: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::malformed(format!("the body is not JSON: {e}")))?;
    let field = |name: &str| {
        event[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Refusal::malformed(format!("the body has no {name:?}")))
    };
    let (name, id) = (field("event")?, field("id")?);
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    for (h, expected) in [
        ("webhook-id", &id),
        ("x-zernio-event-id", &id),
        ("x-zernio-event", &name),
    ] {
        if header(h) != Some(expected.as_str()) {
            return Err(Refusal::malformed(format!(
                "{h} is {:?}, the body says {expected:?}",
                header(h).unwrap_or("missing")
            )));
        }
    }
    Ok(Event {
        detail: detail(&name, &event),
        name,
        id,
    })
}

/// What a line shows of an event besides its name and id.
fn detail(name: &str, event: &Value) -> String {
    let text = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    match name {
        "message.received" => format!("text {}", text(&event["message"]["text"])),
        "message.failed" => format!(
            "message {} error {}",
            event["message"]["id"].as_str().unwrap_or("?"),
            text(&event["error"]["code"])
        ),
        n if n.starts_with("message.") => {
            format!("message {}", event["message"]["id"].as_str().unwrap_or("?"))
        }
        n if n.starts_with("whatsapp.sandbox.session.") => {
            let mut line = format!("session {}", event["session"]["id"].as_str().unwrap_or("?"));
            if let Some(reason) = event["reason"].as_str() {
                line.push_str(&format!(" reason {reason}"));
            }
            line
        }
        _ => String::new(),
    }
}

/// The receiver: the secret, and the event ids seen (a retry or a redelivery repeats one).
pub struct Receiver {
    secret: Secret,
    seen: Mutex<HashSet<String>>,
}

impl Receiver {
    /// A receiver checking deliveries with `secret`.
    pub fn new(secret: Secret) -> Self {
        Self {
            secret,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// Checks one delivery; answers its status and the line to print.
    pub fn receive(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, String) {
        match verify(&self.secret, headers, body) {
            Ok(event) => {
                let first = self
                    .seen
                    .lock()
                    .map(|mut seen| seen.insert(event.id.clone()))
                    .unwrap_or(true);
                let again = if first { "" } else { " (again: same id)" };
                let detail = if event.detail.is_empty() {
                    String::new()
                } else {
                    format!(" {}", event.detail)
                };
                let line = format!("verified {} {}{detail}{again}", event.name, event.id);
                (StatusCode::OK, line)
            }
            Err(refusal) => {
                let id = ["webhook-id", "x-zernio-event-id"]
                    .iter()
                    .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
                    .unwrap_or("(no event id)");
                let line = format!(
                    "refused {} {id}: {}",
                    refusal.status.as_u16(),
                    refusal.reason
                );
                (refusal.status, line)
            }
        }
    }
}
