//! Meta, as create and send meet it: the Graph API client for real phones and, for the virtual
//! phones (`+1 NXX 555 01XX`, `VIRTUAL_PHONES` on), the service's own stand-in, which answers a
//! send as Meta would with no network at all. The handlers send through [`Meta`] and never ask
//! which of the two answered.
//!
//! - [`client`]: `GraphClient`, one `POST /{version}/{phone-number-id}/messages` per send.
//! - [`virtual_phone`]: what a virtual phone does: its answer to a send (a fresh `wamid`, or
//!   Meta's 131030 refusal), and the deliveries it writes back (statuses, a tap, a `STOP`, a
//!   reply), which the phone and reply functions hand to the webhook (`crate::virtual_phones`,
//!   `crate::api::reply`).

/// The Graph API client (HTTPS).
pub mod client;
/// The virtual phones: their answers to sends and the deliveries they write (no I/O).
pub mod virtual_phone;

use serde_json::Value;

pub use client::{classify, GraphClient};

use crate::message::Outbound;
use crate::phone::VirtualLine;
use crate::session::Session;

/// A send Meta accepted (accepted, not delivered: delivery arrives by webhook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The `wamid` every later status webhook for this message carries.
    pub message_id: String,
    /// The WhatsApp id Meta reported for the recipient; may differ from the number sent to.
    pub wa_id: Option<String>,
}

/// Why a send did not go through.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Meta answered with an error object: its message verbatim and the object itself.
    #[error("Meta rejected the send: {message}")]
    Rejected {
        /// `error.message`, verbatim.
        message: String,
        /// The whole `error` object, verbatim.
        error: Value,
    },
    /// Meta unreachable, timed out, 5xx without an error object, or an unreadable answer.
    #[error("Graph API unavailable: {0}")]
    Unavailable(String),
}

/// Where create and send send: the Graph API, or a virtual phone's answer for a number in the
/// virtual range while `VIRTUAL_PHONES` is on. Built once per container (create, send).
#[derive(Debug, Clone)]
pub struct Meta {
    client: GraphClient,
    virtual_phones: bool,
}

impl Meta {
    /// Meta through `client`; the virtual range is played by the service when
    /// `virtual_phones` (`VIRTUAL_PHONES`) is on.
    pub fn new(client: GraphClient, virtual_phones: bool) -> Self {
        Self {
            client,
            virtual_phones,
        }
    }

    /// The Graph API client under this one.
    pub fn client(&self) -> &GraphClient {
        &self.client
    }

    /// The virtual line this send goes to, if the service plays it.
    fn virtual_line(&self, session: &Session) -> Option<VirtualLine> {
        self.virtual_phones
            .then(|| session.phone.virtual_line())
            .flatten()
    }

    /// Sends the activation template of `session` once.
    pub async fn send_activation(&self, session: &Session) -> Result<Accepted, SendError> {
        match self.virtual_line(session) {
            Some(line) => virtual_phone::answer(line, &session.phone),
            None => self.client.send_activation(session).await,
        }
    }

    /// Sends a sandbox message to `session`'s phone once, tagged with `tag`.
    pub async fn send_message(
        &self,
        session: &Session,
        message: &Outbound,
        tag: Option<&str>,
    ) -> Result<Accepted, SendError> {
        match self.virtual_line(session) {
            Some(line) => virtual_phone::answer(line, &session.phone),
            None => {
                let body = self.client.message_body(session, message, tag);
                self.client.send(&body).await
            }
        }
    }
}
