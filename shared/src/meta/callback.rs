//! The tag an activation template carries in Meta's `biz_opaque_callback_data`.
//!
//! Meta echoes that string, unprocessed, in every status webhook of the message it was sent
//! with (the status webhook reference: "only included if message sent with
//! biz_opaque_callback_data"; at most 256 bytes). Tagging the activation template with the
//! session it belongs to lets the webhook update exactly that session item, and lets it skip
//! the statuses of every other message without a single DynamoDB request.

use crate::session::{SessionId, UserId};

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

/// The session and user an activation tag names; `None` for any other string.
pub fn parse_activation_tag(tag: &str) -> Option<(SessionId, UserId)> {
    let rest = tag.strip_prefix(ACTIVATION_PREFIX)?;
    // Session ids have a fixed shape without `:`, so the first `:` ends it; the user id
    // may contain `:` itself.
    let (session, user) = rest.split_once(':')?;
    let session = SessionId::parse(session)?;
    (!user.is_empty()).then(|| (session, UserId::new(user)))
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
        assert_eq!(parse_activation_tag(&tag), Some((id.clone(), user)));
        for other in [
            "",
            "act:",
            "act:wss_3kTMd9Xr7QeZp1bN8vYc2a",
            "act:wss_3kTMd9Xr7QeZp1bN8vYc2a:",
            "act:wss_short:u1",
            "msg:wss_3kTMd9Xr7QeZp1bN8vYc2a:u1",
            "campaign-7",
        ] {
            assert_eq!(parse_activation_tag(other), None, "{other:?}");
        }
        assert_eq!(activation_tag(&id, &UserId::new("u".repeat(300))), None);
    }
}
