//! The tag an activation template or a sandbox message carries in Meta's
//! `biz_opaque_callback_data`, and the payload of the activation template's quick-reply button.
//!
//! Meta echoes that string, unprocessed, in every status webhook of the message it was sent
//! with (the status webhook reference: "only included if message sent with
//! biz_opaque_callback_data"; at most 256 bytes). Tagging the activation template with the
//! session it belongs to lets the webhook update exactly that session item, and lets it skip
//! the statuses of every other message without a single DynamoDB request.

use crate::session::{SessionId, UserId};

/// The quick-reply payload prefix: `activate:<session id>` names the session being answered.
pub const PAYLOAD_PREFIX: &str = "activate:";

/// The quick-reply payload that binds a reply to `session`.
pub fn activation_payload(session: &SessionId) -> String {
    format!("{PAYLOAD_PREFIX}{}", session.as_str())
}

/// The prefix of an activation tag: `act:<sessionId>:<userId>`.
const ACTIVATION_PREFIX: &str = "act:";
/// Meta's limit on `biz_opaque_callback_data`.
pub const MAX_TAG_BYTES: usize = 256;

/// The tag of the activation template of `session`, owned by `user`; `None` if it would not
/// fit Meta's 256 bytes (a user id that long is not tagged, and its statuses are not kept).
pub fn activation_tag(session: &SessionId, user: &UserId) -> Option<String> {
    let tag = format!("{ACTIVATION_PREFIX}{}:{}", session.as_str(), user.as_str());
    (tag.len() <= MAX_TAG_BYTES).then_some(tag)
}

/// The prefix of a sandbox message tag: `msg:<createdAt>:<suffix>:<userId>`.
const MESSAGE_PREFIX: &str = "msg:";

/// What a tag names: the item its statuses update, found with no lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// An activation template: the session and its user.
    Activation {
        /// The session.
        session: SessionId,
        /// Its user.
        user: UserId,
    },
    /// A sandbox message: the conversation item's key parts.
    Message {
        /// Whose conversation.
        user: UserId,
        /// The message's time (the first part of its `sk`).
        created_at: i64,
        /// The rest of its `sk`.
        suffix: String,
    },
}

/// The tag of a sandbox message of `user` stored at `created_at` / `suffix`; `None` if it
/// would not fit Meta's 256 bytes (its statuses are then not kept).
pub fn message_tag(user: &UserId, created_at: i64, suffix: &str) -> Option<String> {
    let tag = format!("{MESSAGE_PREFIX}{created_at}:{suffix}:{}", user.as_str());
    (tag.len() <= MAX_TAG_BYTES).then_some(tag)
}

/// What a tag names; `None` for any string this service did not write.
pub fn parse_tag(tag: &str) -> Option<Tag> {
    if let Some(rest) = tag.strip_prefix(ACTIVATION_PREFIX) {
        // Session ids have a fixed shape without `:`, so the first `:` ends it; the user id
        // may contain `:` itself.
        let (session, user) = rest.split_once(':')?;
        let session = SessionId::parse(session)?;
        return (!user.is_empty()).then(|| Tag::Activation {
            session,
            user: UserId::new(user),
        });
    }
    let rest = tag.strip_prefix(MESSAGE_PREFIX)?;
    let mut parts = rest.splitn(3, ':');
    let created_at = parts.next()?.parse::<i64>().ok()?;
    let suffix = parts
        .next()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()))?;
    let user = parts.next().filter(|u| !u.is_empty())?;
    Some(Tag::Message {
        user: UserId::new(user),
        created_at,
        suffix: suffix.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_reject_other_strings() {
        let id = SessionId::parse("wss_3kTMd9Xr7QeZp1bN8vYc2a").unwrap();
        let user = UserId::new("team:42");
        let tag = activation_tag(&id, &user).unwrap();
        assert_eq!(tag, "act:wss_3kTMd9Xr7QeZp1bN8vYc2a:team:42");
        assert_eq!(
            parse_tag(&tag),
            Some(Tag::Activation {
                session: id.clone(),
                user: user.clone()
            })
        );
        let msg = message_tag(&user, 1_795_529_722, "oAbC12").unwrap();
        assert_eq!(msg, "msg:1795529722:oAbC12:team:42");
        assert_eq!(
            parse_tag(&msg),
            Some(Tag::Message {
                user,
                created_at: 1_795_529_722,
                suffix: "oAbC12".into()
            })
        );
        for other in [
            "",
            "act:",
            "act:wss_3kTMd9Xr7QeZp1bN8vYc2a",
            "act:wss_3kTMd9Xr7QeZp1bN8vYc2a:",
            "act:wss_short:u1",
            "msg:wss_3kTMd9Xr7QeZp1bN8vYc2a:u1",
            "msg:12:o-x:u1",
            "msg:12:oX:",
            "campaign-7",
        ] {
            assert_eq!(parse_tag(other), None, "{other:?}");
        }
        assert_eq!(activation_tag(&id, &UserId::new("u".repeat(300))), None);
    }
}
