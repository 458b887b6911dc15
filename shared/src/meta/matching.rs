//! The pure rules that decide what an event means: which intent an inbound message carries,
//! which session a reply activates, which delivery report a status event is. No I/O here;
//! `api::webhook` applies the decisions through the store.

use serde_json::{json, Map, Value};

use super::callback::PAYLOAD_PREFIX;
use super::payload::{epoch_seconds, InboundMessage, StatusEvent};
use crate::session::{Delivery, DeliveryError, DeliveryStatus, Session, SessionStatus, UserId};

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
    Intent::Reply(reference_of(message))
}

/// What a message says it answers: a session named by our quick-reply payload, one of our
/// messages it quotes (`context.id`), or nothing.
pub fn reference_of(message: &InboundMessage) -> Reference {
    let payload = message
        .button
        .as_ref()
        .and_then(|b| b.payload.as_deref())
        .and_then(|p| p.strip_prefix(PAYLOAD_PREFIX));
    if let Some(id) = payload {
        return Reference::SessionId(id.to_owned());
    }
    match message.context.as_ref().and_then(|c| c.id.as_deref()) {
        Some(id) if !id.is_empty() => Reference::MessageId(id.to_owned()),
        _ => Reference::None,
    }
}

/// Whose conversation an inbound message belongs to, among the phone's `sessions` (every
/// user's, after this message's own effects such as an activation):
/// - a message naming a session (quick-reply payload) or quoting one of a user's messages
///   (`context.id`: an activation template, or `quoted_owner`, the user who sent the quoted
///   sandbox message) belongs to that user, and to nobody when that user has no live session;
/// - otherwise to the user with an active, live session for the phone who most recently sent
///   to it or activated it (`recency`); a pending session gets no unaddressed messages, so a
///   stranger's pending session never reads what the owner writes to someone else;
/// - never to a user without a live session for the phone.
pub fn recipient_of<'a>(
    sessions: &'a [Session],
    reference: &Reference,
    quoted_owner: Option<&UserId>,
    recency: impl Fn(&Session) -> i64,
    now: i64,
) -> Option<&'a Session> {
    let mut live = sessions.iter().filter(|s| s.is_live(now));
    match reference {
        Reference::SessionId(id) => return live.find(|s| s.id.as_str() == id),
        Reference::MessageId(mid) => {
            if let Some(s) = sessions
                .iter()
                .find(|s| s.activation_message_id.as_deref() == Some(mid.as_str()))
            {
                return s.is_live(now).then_some(s);
            }
            if let Some(owner) = quoted_owner {
                return live.find(|s| &s.user_id == owner);
            }
        }
        Reference::None => {}
    }
    live.filter(|s| s.status == SessionStatus::Active)
        .max_by(|a, b| (recency(a), a.user_id.as_str()).cmp(&(recency(b), b.user_id.as_str())))
}

/// The content fields of an inbound message the conversation shows: `text`, `button`,
/// `interactive` or `reaction`, and `context.id` when it quotes a message.
pub fn inbound_content(message: &InboundMessage) -> Value {
    let mut out = Map::new();
    if let Some(body) = message.text.as_ref().and_then(|t| t.body.as_ref()) {
        out.insert("text".into(), json!({ "body": body }));
    }
    if let Some(b) = &message.button {
        out.insert(
            "button".into(),
            json!({ "payload": b.payload, "text": b.text }),
        );
    }
    if let Some(i) = &message.interactive {
        out.insert("interactive".into(), i.clone());
    }
    if let Some(r) = &message.reaction {
        out.insert("reaction".into(), r.clone());
    }
    if let Some(id) = message.context.as_ref().and_then(|c| c.id.as_ref()) {
        out.insert("context".into(), json!({ "id": id }));
    }
    Value::Object(out)
}

/// Which of the phone's sessions a reply activates, if any.
///
/// `sessions` are every session of the phone, across all users (live or not). Only a pending,
/// live session whose latest template went out no later than the reply's second qualifies
/// (Meta's timestamps are whole seconds, so a reply in the same second as the send counts):
/// - a reply naming a session (the quick-reply payload) or quoting a template (`context.id`)
///   activates that session;
/// - a reply naming nothing activates only when the phone has exactly one live session across
///   all users and it is that pending one. A live session anywhere else means the owner is
///   talking to someone else, and an ordinary message to them must not consent to a stranger.
pub fn session_to_activate<'a>(
    sessions: &'a [Session],
    reference: &Reference,
    message_time: i64,
    now: i64,
) -> Option<&'a Session> {
    let answerable = |s: &&Session| {
        s.status == SessionStatus::Pending
            && s.is_live(now)
            && s.template_sent_at.unwrap_or(s.created_at) <= message_time
    };
    match reference {
        Reference::SessionId(id) => sessions
            .iter()
            .filter(answerable)
            .find(|s| s.id.as_str() == id),
        Reference::MessageId(mid) => sessions
            .iter()
            .filter(answerable)
            .find(|s| s.activation_message_id.as_deref() == Some(mid.as_str())),
        Reference::None => {
            let mut live = sessions.iter().filter(|s| s.is_live(now));
            let only = live.next()?;
            let alone = live.next().is_none();
            (alone && answerable(&only)).then_some(only)
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
    use crate::phone::PhoneE164;
    use crate::session::{SessionId, UserId};

    const NOW: i64 = 1_000_000;

    /// A session of `user` for the Spanish test phone, sent at `sent`.
    fn session(user: &str, status: SessionStatus, sent: i64, expires: i64) -> Session {
        let mut s = Session::new_pending(
            SessionId::generate().unwrap(),
            &UserId::new(user),
            PhoneE164::parse("+34688246216").unwrap(),
            sent,
            expires - sent,
        );
        s.status = status;
        s.activation_message_id = Some(format!("wamid.{user}"));
        s
    }

    /// A table's sessions of the phone, a row a line: (user, status, a time, expires at).
    type Sessions = Vec<(&'static str, SessionStatus, i64, i64)>;

    /// A user of a table (`"a"`, `"b"`), or nobody.
    type User = Option<&'static str>;

    /// A reply whose quick-reply payload names `user`'s session (see [`naming_ids`]).
    fn by_payload(user: &str) -> Reference {
        Reference::SessionId(user.to_owned())
    }

    /// A reply that quotes `wamid.<id>` (`context.id`; the tables' templates are `wamid.<user>`).
    fn quoting(id: &str) -> Reference {
        Reference::MessageId(format!("wamid.{id}"))
    }

    /// `reference` as a delivery carries it: a quick-reply payload names a session by its id,
    /// so the tables' user label becomes the id of that user's session.
    fn naming_ids(reference: Reference, sessions: &[Session]) -> Reference {
        match reference {
            Reference::SessionId(user) => Reference::SessionId(
                sessions
                    .iter()
                    .find(|s| s.user_id.as_str() == user)
                    .map(|s| s.id.as_str().to_owned())
                    .unwrap_or_default(),
            ),
            other => other,
        }
    }

    #[test]
    fn which_session_a_reply_activates() {
        use SessionStatus::{Active, Pending};
        let live = NOW + 100;
        // Expiry is exclusive: expired at NOW.
        let gone = NOW;
        // (case, sessions of the phone (user, status, template sent at, expires at), reference,
        //  message time, the user whose session is activated or None)
        type Row = (&'static str, Sessions, Reference, i64, User);
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("the only pending session, plain reply", vec![("a", Pending, NOW - 10, live)], Reference::None, NOW, Some("a")),
            ("plain reply in the very second of the send", vec![("a", Pending, NOW, live)], Reference::None, NOW, Some("a")),
            ("plain reply older than the template", vec![("a", Pending, NOW - 10, live)], Reference::None, NOW - 11, None),
            ("two pending sessions, plain reply", vec![("a", Pending, NOW - 10, live), ("b", Pending, NOW - 5, live)], Reference::None, NOW, None),
            ("consent: owner active with A, stranger B pending, plain reply", vec![("a", Active, NOW - 99, live), ("b", Pending, NOW - 5, live)], Reference::None, NOW, None),
            ("only an active session, plain reply", vec![("a", Active, NOW - 99, live)], Reference::None, NOW, None),
            ("an expired session elsewhere does not count", vec![("a", Active, NOW - 99, gone), ("b", Pending, NOW - 5, live)], Reference::None, NOW, Some("b")),
            ("the only session expired", vec![("a", Pending, NOW - 10, gone)], Reference::None, NOW, None),
            ("payload names B while A is active", vec![("a", Active, NOW - 99, live), ("b", Pending, NOW - 5, live)], by_payload("b"), NOW, Some("b")),
            ("context quotes B's template while A is pending", vec![("a", Pending, NOW - 9, live), ("b", Pending, NOW - 5, live)], quoting("b"), NOW, Some("b")),
            ("payload names an active session", vec![("a", Active, NOW - 99, live)], by_payload("a"), NOW, None),
            ("payload older than the latest template", vec![("a", Pending, NOW - 10, live)], by_payload("a"), NOW - 20, None),
            ("context quotes an unknown message", vec![("a", Pending, NOW - 10, live)], quoting("other"), NOW, None),
            ("no sessions at all", vec![], Reference::None, NOW, None),
        ];
        for (case, rows, reference, message_time, expected) in rows {
            let sessions: Vec<Session> = rows
                .iter()
                .map(|(u, st, sent, exp)| session(u, *st, *sent, *exp))
                .collect();
            let reference = naming_ids(reference, &sessions);
            let got = session_to_activate(&sessions, &reference, message_time, NOW)
                .map(|s| s.user_id.as_str());
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn whose_conversation_an_inbound_message_is() {
        use SessionStatus::{Active, Pending};
        let live = NOW + 100;
        // (case, sessions (user, status, activated/sent at, expires at), reference, the user
        //  who sent the quoted sandbox message, expected user)
        type Row = (&'static str, Sessions, Reference, User, User);
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("two active users: the most recent one", vec![("a", Active, NOW - 50, live), ("b", Active, NOW - 10, live)], Reference::None, None, Some("b")),
            ("a quoted sandbox message names its sender", vec![("a", Active, NOW - 50, live), ("b", Active, NOW - 10, live)], quoting("sent-by-a"), Some("a"), Some("a")),
            ("the quoted sender has no live session: nobody", vec![("b", Active, NOW - 10, live)], quoting("sent-by-a"), Some("a"), None),
            ("quoting an activation template", vec![("a", Active, NOW - 50, live), ("b", Active, NOW - 10, live)], quoting("a"), None, Some("a")),
            ("an unknown quote falls back to recency", vec![("a", Active, NOW - 50, live)], quoting("elsewhere"), None, Some("a")),
            ("a pending stranger gets no unaddressed message", vec![("a", Active, NOW - 50, live), ("b", Pending, NOW - 1, live)], Reference::None, None, Some("a")),
            ("only an expired session: nobody", vec![("a", Active, NOW - 50, NOW)], Reference::None, None, None),
            ("the payload names a pending session", vec![("a", Active, NOW - 50, live), ("b", Pending, NOW - 1, live)], by_payload("b"), None, Some("b")),
        ];
        for (case, rows, reference, quoted, expected) in rows {
            let sessions: Vec<Session> = rows
                .iter()
                .map(|(u, st, at, exp)| {
                    let mut s = session(u, *st, *at, *exp);
                    s.activated_at = (*st == Active).then_some(*at);
                    s
                })
                .collect();
            let reference = naming_ids(reference, &sessions);
            let quoted = quoted.map(UserId::new);
            let recency = |s: &Session| s.activated_at.unwrap_or(s.created_at);
            let got = recipient_of(&sessions, &reference, quoted.as_ref(), recency, NOW)
                .map(|s| s.user_id.as_str());
            assert_eq!(got, expected, "{case}");
        }
    }

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
