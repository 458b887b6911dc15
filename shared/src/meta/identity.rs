//! Who an event is from or about: the phone (WhatsApp id) and, since 2026, Meta's
//! business-scoped user id (BSUID). A user with a username may write with no phone at all,
//! so the webhook matches by phone, else by a BSUID it learned beside that phone.
//! No I/O here.

use super::payload::{Contact, InboundMessage, StatusEvent};
use crate::bsuid::Bsuid;

/// Whether `s` is a WhatsApp id that is a phone: digits only.
fn phone_digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// The phone and BSUID of a user, each when the event carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The phone's digits (Meta's `from`, `wa_id` or `recipient_id`).
    pub phone: Option<String>,
    /// The user's BSUID.
    pub bsuid: Option<Bsuid>,
}

impl Identity {
    /// Both, when the event carries the BSUID beside the phone: what the webhook learns.
    pub fn pair(&self) -> Option<(&str, &Bsuid)> {
        Some((self.phone.as_deref()?, self.bsuid.as_ref()?))
    }
}

/// Whether a change's only contact stands for an event that no contact names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lone {
    /// It does: the change's messages all come from one sender, whom `contacts` describes.
    IsTheirs,
    /// It does not: a status (its contact must name the recipient), or messages of several
    /// senders (the contact could be any of them).
    Unrelated,
}

/// The contact an event names: the one whose `wa_id` or `user_id` is `id` or whose `user_id`
/// is `user_id`, else (when `lone` says so) the only one, unless it names someone else.
fn contact_for<'a>(
    contacts: &'a [Contact],
    id: Option<&str>,
    user_id: Option<&str>,
    lone: Lone,
) -> Option<&'a Contact> {
    let is =
        |field: &Option<String>, value: Option<&str>| value.is_some() && field.as_deref() == value;
    let named = |c: &&Contact| is(&c.wa_id, id) || is(&c.user_id, id) || is(&c.user_id, user_id);
    let agrees = |field: &Option<String>, value: Option<&str>| {
        field.is_none() || value.is_none() || field.as_deref() == value
    };
    contacts.iter().find(named).or(match contacts {
        [only]
            if lone == Lone::IsTheirs
                && agrees(&only.wa_id, id)
                && agrees(&only.user_id, user_id) =>
        {
            Some(only)
        }
        _ => None,
    })
}

/// The user an event names by `id` (Meta's `from` or `recipient_id`: a phone, or since 2026
/// possibly a BSUID) and `user_id` (`from_user_id` or `recipient_user_id`): the phone is `id`
/// when that is a number, else the contact's `wa_id`; the BSUID is `user_id`, else the
/// contact's `user_id`, else an `id` that is a BSUID. So a phone and a BSUID come together
/// only from one object that ties them: the event (`from` beside `from_user_id`,
/// `recipient_id` beside `recipient_user_id`) or one contact (`wa_id` beside `user_id`; for a
/// change's messages from one sender, their contact's `user_id` beside their `from`).
fn identity(id: Option<&str>, user_id: Option<&str>, contacts: &[Contact], lone: Lone) -> Identity {
    let id = id.filter(|i| !i.is_empty());
    let contact = contact_for(contacts, id, user_id, lone);
    let phone = id.and_then(phone_digits).or_else(|| {
        contact
            .and_then(|c| c.wa_id.as_deref())
            .and_then(phone_digits)
    });
    let bsuid = [user_id, contact.and_then(|c| c.user_id.as_deref()), id]
        .into_iter()
        .flatten()
        .find_map(Bsuid::parse);
    Identity {
        phone: phone.map(str::to_owned),
        bsuid,
    }
}

/// Who sent each of one change's `messages` ([`identity`] of `from` and `from_user_id`), in
/// order. The change's only contact is the sender's when every message is from one sender
/// (Meta's `contacts` describes the senders); with several senders, only a contact that names
/// a message's sender is that sender's.
pub fn senders_of(messages: &[InboundMessage], contacts: &[Contact]) -> Vec<Identity> {
    let who = |m: &InboundMessage| (m.from.clone(), m.from_user_id.clone());
    let one_sender = messages
        .windows(2)
        .all(|pair| who(&pair[0]) == who(&pair[1]));
    let lone = if one_sender {
        Lone::IsTheirs
    } else {
        Lone::Unrelated
    };
    messages
        .iter()
        .map(|m| identity(m.from.as_deref(), m.from_user_id.as_deref(), contacts, lone))
        .collect()
}

/// Who a status is about ([`identity`] of `recipient_id` and `recipient_user_id`; a
/// `recipient_id` is a BSUID when the message was sent to one). A contact counts only when it
/// names the recipient: a lone contact without `wa_id` "agrees" with any phone, and its
/// `user_id` would be learned as that phone's.
pub fn recipient_of_status(status: &StatusEvent, contacts: &[Contact]) -> Identity {
    identity(
        status.recipient_id.as_deref(),
        status.recipient_user_id.as_deref(),
        contacts,
        Lone::Unrelated,
    )
}

/// A user's BSUID changed: Meta's `system` message (`user_id_update`, `user_changed_user_id`,
/// or `user_changed_number`, which regenerates the BSUID too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BsuidChange {
    /// The BSUID it replaces, when Meta names it.
    pub previous: Option<Bsuid>,
    /// The BSUID from now on.
    pub current: Bsuid,
}

/// The BSUID change a `system` message reports, if it reports one.
pub fn bsuid_change(message: &InboundMessage) -> Option<BsuidChange> {
    let system = message.system.as_ref()?;
    let kind = system.kind.as_deref()?;
    if !matches!(
        kind,
        "user_id_update" | "user_changed_user_id" | "user_changed_number"
    ) {
        return None;
    }
    let current = system
        .user_id
        .as_deref()
        .or(message.from_user_id.as_deref())
        .and_then(Bsuid::parse)?;
    let previous = system
        .previous_user_id
        .as_deref()
        .and_then(Bsuid::parse)
        .filter(|p| *p != current);
    Some(BsuidChange { previous, current })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BSUID: &str = "US.13491208655302741918";

    fn message(v: serde_json::Value) -> InboundMessage {
        serde_json::from_value(v).unwrap()
    }

    fn contacts(v: serde_json::Value) -> Vec<Contact> {
        serde_json::from_value(v).unwrap()
    }

    fn sender_of(message: &InboundMessage, contacts: &[Contact]) -> Identity {
        senders_of(std::slice::from_ref(message), contacts).remove(0)
    }

    fn status(v: serde_json::Value) -> StatusEvent {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_sender_is_its_phone_and_its_bsuid_each_when_given() {
        let both = sender_of(
            &message(json!({"from": "34688246216", "from_user_id": BSUID})),
            &contacts(json!([{"wa_id": "34688246216", "user_id": BSUID}])),
        );
        assert_eq!(
            both.pair().map(|(p, b)| (p, b.as_str())),
            Some(("34688246216", BSUID))
        );
        // Only in `contacts`.
        let from_contact = sender_of(
            &message(json!({"from": "34688246216"})),
            &contacts(json!([{"wa_id": "34688246216", "user_id": BSUID}])),
        );
        assert_eq!(from_contact, both);
        // No phone anywhere: `from` absent, or a BSUID itself.
        for m in [json!({"from_user_id": BSUID}), json!({"from": BSUID})] {
            let only = sender_of(&message(m), &contacts(json!([{"user_id": BSUID}])));
            assert_eq!(only.phone, None);
            assert_eq!(only.bsuid.as_ref().map(Bsuid::as_str), Some(BSUID));
        }
        // Another user's contact is not this sender's.
        let other = sender_of(
            &message(json!({"from": "34688246216"})),
            &contacts(json!([{"wa_id": "447400123456", "user_id": BSUID}])),
        );
        assert_eq!(other.bsuid, None);
        // The old shape: phone only.
        let old = sender_of(&message(json!({"from": "34688246216"})), &[]);
        assert_eq!(
            (old.phone.as_deref(), old.bsuid),
            (Some("34688246216"), None)
        );
    }

    #[test]
    fn a_status_names_its_recipient_by_phone_and_bsuid() {
        let status: StatusEvent = serde_json::from_value(json!({
            "id": "wamid.X", "status": "delivered", "recipient_id": "34688246216",
            "recipient_user_id": BSUID
        }))
        .unwrap();
        let who = recipient_of_status(&status, &[]);
        assert_eq!(
            who.pair().map(|(p, b)| (p, b.as_str())),
            Some(("34688246216", BSUID))
        );
        // A failed status without contacts nor recipient_user_id: the phone only.
        let failed: StatusEvent = serde_json::from_value(
            json!({"id": "wamid.X", "status": "failed", "recipient_id": "34688246216"}),
        )
        .unwrap();
        assert_eq!(recipient_of_status(&failed, &[]).bsuid, None);
    }

    #[test]
    fn a_statuss_lone_contact_without_wa_id_ties_its_bsuid_to_no_phone() {
        let delivered = status(json!({
            "id": "wamid.X", "status": "delivered", "recipient_id": "34688246216"
        }));
        let who = recipient_of_status(&delivered, &contacts(json!([{"user_id": BSUID}])));
        assert_eq!(who.pair(), None);
        assert_eq!(who.bsuid, None);
        // A contact that names the phone ties them.
        let named = contacts(json!([{"wa_id": "34688246216", "user_id": BSUID}]));
        assert_eq!(
            recipient_of_status(&delivered, &named)
                .pair()
                .map(|(p, b)| (p, b.as_str())),
            Some(("34688246216", BSUID))
        );
    }

    #[test]
    fn a_lone_contact_is_the_sender_of_a_changes_messages_only_when_they_have_one_sender() {
        let lone = contacts(json!([{"user_id": BSUID}]));
        let from =
            |phone: &str, n: u32| message(json!({"from": phone, "id": format!("wamid.{n}")}));
        // One sender: the change's contact is theirs, `from` beside its `user_id`.
        let one = senders_of(&[from("34688246216", 1), from("34688246216", 2)], &lone);
        for sender in &one {
            assert_eq!(
                sender.pair().map(|(p, b)| (p, b.as_str())),
                Some(("34688246216", BSUID))
            );
        }
        // Two senders: the contact could be either's, so it is neither's.
        let two = senders_of(&[from("34688246216", 1), from("447400123456", 2)], &lone);
        assert!(two.iter().all(|s| s.bsuid.is_none()), "{two:?}");
        // A contact that names its sender still counts.
        let named = contacts(json!([{"wa_id": "447400123456", "user_id": BSUID}]));
        let two = senders_of(&[from("34688246216", 1), from("447400123456", 2)], &named);
        assert_eq!(two[0].bsuid, None);
        assert_eq!(
            two[1].pair().map(|(p, b)| (p, b.as_str())),
            Some(("447400123456", BSUID))
        );
    }

    #[test]
    fn a_system_message_reports_the_new_bsuid() {
        let change = bsuid_change(&message(json!({
            "type": "system",
            "system": {"type": "user_id_update", "previous_user_id": BSUID, "user_id": "US.2"}
        })))
        .unwrap();
        assert_eq!(change.current.as_str(), "US.2");
        assert_eq!(change.previous.as_ref().map(Bsuid::as_str), Some(BSUID));
        assert_eq!(
            bsuid_change(&message(
                json!({"type": "system", "system": {"type": "customer_identity_changed"}})
            )),
            None
        );
    }
}
