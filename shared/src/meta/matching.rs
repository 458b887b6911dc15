//! The pure rules that decide what an event means: which intent an inbound message carries,
//! which session a reply activates, which delivery report a status event is. No I/O here;
//! `api::webhook` applies the decisions through the store.

use super::payload::{epoch_seconds, InboundMessage, StatusEvent};
use crate::graph::PAYLOAD_PREFIX;
use crate::session::{Delivery, DeliveryError, DeliveryStatus, Session, SessionStatus};

/// What an inbound message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// STOP and friends: delete every session for the phone and block new templates.
    OptOut,
    /// START / UNSTOP: lift the block.
    OptIn,
    /// A reply that may activate a pending session.
    Reply(Reference),
    /// Not a reply (system notices, unsupported types).
    Ignore,
}

/// How a reply names the session it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// The quick-reply payload named this session id.
    SessionId(String),
    /// The reply quotes this message id (`context.id`).
    MessageId(String),
    /// Nothing: activates only if exactly one pending session exists for the phone.
    None,
}

const OPT_OUT: [&str; 6] = ["STOP", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
const OPT_IN: [&str; 2] = ["START", "UNSTOP"];

/// Classifies an inbound message.
pub fn intent(message: &InboundMessage) -> Intent {
    let kind = message.kind.as_deref().unwrap_or("");
    if matches!(kind, "system" | "unsupported" | "reaction") {
        return Intent::Ignore;
    }
    let words = [
        message.text.as_ref().and_then(|t| t.body.as_deref()),
        message.button.as_ref().and_then(|b| b.text.as_deref()),
        message.button.as_ref().and_then(|b| b.payload.as_deref()),
    ];
    for word in words.into_iter().flatten() {
        let word = word.trim().to_ascii_uppercase();
        if OPT_OUT.contains(&word.as_str()) {
            return Intent::OptOut;
        }
        if OPT_IN.contains(&word.as_str()) {
            return Intent::OptIn;
        }
    }
    let payload = message
        .button
        .as_ref()
        .and_then(|b| b.payload.as_deref())
        .and_then(|p| p.strip_prefix(PAYLOAD_PREFIX));
    if let Some(id) = payload {
        return Intent::Reply(Reference::SessionId(id.to_owned()));
    }
    match message.context.as_ref().and_then(|c| c.id.as_deref()) {
        Some(id) if !id.is_empty() => Intent::Reply(Reference::MessageId(id.to_owned())),
        _ => Intent::Reply(Reference::None),
    }
}

/// Which of the phone's sessions a reply activates: the one it names, or, naming none, the only
/// pending one. Only pending, live sessions qualify.
pub fn session_to_activate<'a>(
    sessions: &'a [Session],
    reference: &Reference,
    now: i64,
) -> Option<&'a Session> {
    let mut pending = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Pending && s.is_live(now));
    match reference {
        Reference::SessionId(id) => pending.find(|s| s.id.as_str() == id),
        Reference::MessageId(mid) => {
            pending.find(|s| s.activation_message_id.as_deref() == Some(mid.as_str()))
        }
        Reference::None => {
            let only = pending.next()?;
            pending.next().is_none().then_some(only)
        }
    }
}

/// The delivery report a status event carries, if it is one we record.
pub fn delivery_of(event: &StatusEvent, now: i64) -> Option<Delivery> {
    let status = DeliveryStatus::parse(event.status.as_deref()?)?;
    let error = if status == DeliveryStatus::Failed {
        event.errors.first().map(|e| DeliveryError {
            code: e.code.unwrap_or(0),
            title: e.title.clone(),
            message: e.message.clone(),
            details: e.error_data.as_ref().and_then(|d| d.details.clone()),
        })
    } else {
        None
    };
    Some(Delivery {
        status,
        updated_at: epoch_seconds(event.timestamp.as_ref()).unwrap_or(now),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::payload::Text;

    fn text(body: &str) -> InboundMessage {
        InboundMessage {
            kind: Some("text".into()),
            text: Some(Text {
                body: Some(body.into()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn keywords_are_trimmed_and_case_insensitive() {
        for w in [
            "STOP",
            " stop ",
            "Stop All",
            "unsubscribe",
            "CANCEL",
            "end",
            "Quit",
        ] {
            assert_eq!(intent(&text(w)), Intent::OptOut, "{w}");
        }
        for w in ["START", " unstop"] {
            assert_eq!(intent(&text(w)), Intent::OptIn, "{w}");
        }
        assert_eq!(intent(&text("stop it")), Intent::Reply(Reference::None));
    }
}
