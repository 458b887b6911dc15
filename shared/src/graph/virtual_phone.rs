//! A virtual phone (`+1 NXX 555 01XX`): the service plays Meta and the phone's owner for it,
//! with Meta's shapes ([`crate::meta::wire`]). No I/O here.
//!
//! - [`answer`]: Meta's answer to a send (a fresh `wamid`; lines 70-79: Meta's 131030 refusal,
//!   its error object verbatim).
//! - [`cue_of`]: which stream record reports a send Meta accepted for a virtual phone: a
//!   session whose `activationMessageId` is new (an activation template; its first when the
//!   session had none) or an outbound conversation item whose `messageId` is new (a sandbox
//!   message). The tag Meta would echo is rebuilt with the functions the send used
//!   ([`crate::meta::callback`]), so each status finds its item exactly as a real one does.
//! - [`deliveries`]: what the phone writes back for a cue, in order: `sent`, `delivered`,
//!   `read` (lines 60-69: `failed` with 131026); lines 50-59 then tap Activate on an activation
//!   template; lines 80-89 answer their session's first template with `STOP`. Everything is
//!   derived from the cue (times, the ids of the phone's own messages), so a stream record
//!   handed over twice writes the same deliveries and the webhook's de-duplication holds.
//! - [`reply`]: a message the caller tells the phone to write (`/reply`).
//!
//! Lines 90-99 are a WhatsApp-username user: every status carries one contact with the phone
//! and its business-scoped user id (BSUID) together, every message only the BSUID. The BSUID
//! is derived from the number ([`bsuid_of`]), the same for every user of a deployment.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Accepted, SendError};
use crate::config::Config;
use crate::events::{Change, StreamRecord};
use crate::ids;
use crate::message::Direction;
use crate::meta::callback::{activation_payload, activation_tag, message_tag};
use crate::meta::wire::{self, Business, Content, GraphError, Report, Status, User};
use crate::phone::{Behaviour, PhoneE164, VirtualLine};
use crate::session::{Session, SessionId};
use crate::store::{message_from_item, session_from_item, ItemKind, StoreError};

/// Meta's answer to a send to a virtual phone on `line`: accepted with a fresh `wamid` (and
/// the number as its WhatsApp id), or, for lines 70-79, refused at once with Meta's 131030
/// error object, as a test number refuses a recipient missing from its allowed list.
pub fn answer(line: VirtualLine, phone: &PhoneE164) -> Result<Accepted, SendError> {
    let random = |n| ids::random_base62(n).map_err(|e| SendError::Unavailable(e.to_string()));
    if line.behaviour() == Behaviour::Refused {
        let refusal = GraphError::not_in_allowed_list();
        return Err(SendError::Rejected {
            message: refusal.message.clone(),
            error: refusal.object(&random(23)?),
        });
    }
    Ok(Accepted {
        message_id: format!("wamid.{}", random(40)?),
        wa_id: Some(phone.digits().to_owned()),
    })
}

/// The business-scoped user id Meta gives the user of a virtual phone: `US.` and 20 digits
/// derived from the number, the same for every user of the deployment.
pub fn bsuid_of(phone: &PhoneE164) -> String {
    let digest = Sha256::digest(format!("virtual phone {}", phone.digits()).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    format!("US.{:020}", u64::from_be_bytes(first))
}

/// The username of a virtual phone's user (lines 90-99 show it).
pub fn username_of(phone: &PhoneE164) -> String {
    format!("virtual.{}", phone.digits())
}

/// A `wamid` for a message the phone writes because of `cause` (what it answers), the same
/// every time: a record handed over again writes the same message, which the webhook's
/// de-duplication recognises.
fn derived_wamid(kind: &str, cause: &str) -> String {
    let digest = Sha256::digest(format!("virtual {kind} {cause}").as_bytes());
    format!("wamid.{}", URL_SAFE_NO_PAD.encode(&digest[..24]))
}

/// A send Meta accepted for a virtual phone, as the table's stream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    /// The phone.
    pub phone: PhoneE164,
    /// Its line.
    pub line: VirtualLine,
    /// The sent message's `wamid`.
    pub message_id: String,
    /// The `biz_opaque_callback_data` the send carried, rebuilt as the send built it.
    pub tag: Option<String>,
    /// When it was sent (epoch seconds): the time of everything the phone answers to it.
    pub sent_at: i64,
    /// What was sent.
    pub sent: Sent,
}

/// What a cue's send was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// An activation template of a session.
    Template {
        /// The session (its quick-reply payload names it).
        session: SessionId,
        /// Whether it is the session's first template (a refresh sends another).
        first: bool,
    },
    /// A sandbox message (text, interactive or the template) of a user's conversation.
    Message,
}

/// The cue a stream record gives, if it reports a send accepted for a virtual phone the
/// service plays: `None` for everything else (other items, other changes of these, real
/// phones). An image that does not decode is an error, to be logged and skipped.
pub fn cue_of(record: &StreamRecord, config: &Config) -> Result<Option<Cue>, StoreError> {
    let Some(new) = record.new.as_ref() else {
        return Ok(None);
    };
    if record.change == Change::Remove {
        return Ok(None);
    }
    let pk = new.get("pk").and_then(|v| v.as_s().ok());
    match pk {
        Some(pk) if ItemKind::Session.owns(pk) => session_cue(record, new, config),
        Some(pk) if ItemKind::Message.owns(pk) => message_cue(record, new, config),
        _ => Ok(None),
    }
}

/// A session whose `activationMessageId` is new: an activation template went out.
fn session_cue(
    record: &StreamRecord,
    new: &crate::store::Item,
    config: &Config,
) -> Result<Option<Cue>, StoreError> {
    const OPERATION: &str = "stream(session)";
    let session = session_from_item(OPERATION, new.clone())?;
    let (Some(message_id), Some(line)) = (
        session.activation_message_id.as_deref(),
        config.virtual_line(&session.phone),
    ) else {
        return Ok(None);
    };
    // The template the item named before, if it was this session's.
    let before = match &record.old {
        Some(old) => session_from_item(OPERATION, old.clone())
            .ok()
            .filter(|old| old.id == session.id)
            .and_then(|old| old.activation_message_id),
        None => None,
    };
    if before.as_deref() == Some(message_id) {
        return Ok(None);
    }
    Ok(template_cue(&session, line, before.is_none()))
}

/// The cue of `session`'s latest activation template on `line` (`first`: whether it is the
/// session's first); `None` while no template of it was recorded.
pub fn template_cue(session: &Session, line: VirtualLine, first: bool) -> Option<Cue> {
    Some(Cue {
        message_id: session.activation_message_id.clone()?,
        tag: activation_tag(&session.id, &session.user_id),
        sent_at: session.template_sent_at.unwrap_or(session.created_at),
        sent: Sent::Template {
            session: session.id.clone(),
            first,
        },
        phone: session.phone.clone(),
        line,
    })
}

/// An outbound conversation item whose `messageId` is new: a sandbox message went out.
fn message_cue(
    record: &StreamRecord,
    new: &crate::store::Item,
    config: &Config,
) -> Result<Option<Cue>, StoreError> {
    let Some(message) = message_from_item(new.clone())? else {
        return Ok(None);
    };
    let Some(message_id) = message.message_id.clone() else {
        return Ok(None);
    };
    let phone = PhoneE164::from_stored(&message.phone);
    let line = phone.as_ref().and_then(|p| config.virtual_line(p));
    let (Direction::Outbound, Some(phone), Some(line)) = (message.direction, phone, line) else {
        return Ok(None);
    };
    let before = record
        .old
        .as_ref()
        .and_then(|old| message_from_item(old.clone()).ok().flatten())
        .and_then(|old| old.message_id);
    if before.as_deref() == Some(message_id.as_str()) {
        return Ok(None);
    }
    Ok(Some(Cue {
        tag: message_tag(&message.user_id, message.created_at, &message.suffix),
        sent_at: message.created_at,
        sent: Sent::Message,
        phone,
        line,
        message_id,
    }))
}

/// The phone as a delivery names it: by number, or (lines 90-99) as a username user.
fn user_of<'a>(line: VirtualLine, phone: &'a str, bsuid: &'a str, username: &'a str) -> User<'a> {
    match line.behaviour() {
        Behaviour::Username => User::Username {
            phone,
            bsuid,
            username,
        },
        _ => User::Phone(phone),
    }
}

/// The profile name a virtual phone's messages carry.
fn profile_name(phone: &PhoneE164) -> String {
    format!("Virtual phone {}", phone.with_plus())
}

/// A status of `cue`'s message, as Meta posts it: for a username user (lines 90-99) one
/// contact ties the phone and its BSUID together, which is how the webhook learns the BSUID.
pub fn status(cue: &Cue, business: Business<'_>, report: Report) -> Value {
    let (bsuid, username) = (bsuid_of(&cue.phone), username_of(&cue.phone));
    business.status(&Status {
        message_id: &cue.message_id,
        status: report,
        timestamp: cue.sent_at,
        recipient: user_of(cue.line, cue.phone.digits(), &bsuid, &username),
        tag: cue.tag.as_deref(),
    })
}

/// Everything the phone writes back for `cue`, in order, each a delivery as Meta posts it (to
/// be signed with the app secret and handed to the webhook one after the other).
pub fn deliveries(cue: &Cue, business: Business<'_>) -> Vec<Value> {
    let (bsuid, username) = (bsuid_of(&cue.phone), username_of(&cue.phone));
    let user = user_of(cue.line, cue.phone.digits(), &bsuid, &username);
    let status = |report: Report| status(cue, business, report);
    let behaviour = cue.line.behaviour();
    if behaviour == Behaviour::Unreachable {
        return vec![status(Report::Failed(wire::undeliverable()))];
    }
    let mut out = vec![
        status(Report::Sent),
        status(Report::Delivered),
        status(Report::Read),
    ];
    let answer = match (&cue.sent, behaviour) {
        (Sent::Template { session, .. }, Behaviour::TapsActivate) => Some((
            "tap",
            Content::Button {
                payload: activation_payload(session),
            },
        )),
        (Sent::Template { first: true, .. }, Behaviour::AnswersStop) => {
            Some(("stop", Content::Text("STOP".into())))
        }
        _ => None,
    };
    if let Some((kind, content)) = answer {
        let id = derived_wamid(kind, &cue.message_id);
        out.push(business.message(&wire::Message {
            from: user,
            id: &id,
            timestamp: cue.sent_at,
            context: Some(&cue.message_id),
            profile_name: &profile_name(&cue.phone),
            content,
        }));
    }
    out
}

/// A message the phone on `line` writes to the sandbox number because its session's user told
/// it to (`/reply`): `id` and `timestamp` are the message's, `context` the message it quotes.
pub fn reply(
    business: Business<'_>,
    phone: &PhoneE164,
    line: VirtualLine,
    id: &str,
    timestamp: i64,
    context: Option<&str>,
    content: Content,
) -> Value {
    let (bsuid, username) = (bsuid_of(phone), username_of(phone));
    business.message(&wire::Message {
        from: user_of(line, phone.digits(), &bsuid, &username),
        id,
        timestamp,
        context,
        profile_name: &profile_name(phone),
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bsuid::Bsuid;

    fn phone(typed: &str) -> PhoneE164 {
        PhoneE164::parse(typed).expect("a valid number")
    }

    #[test]
    fn a_send_is_accepted_with_a_fresh_wamid_except_on_the_refusing_lines() {
        for line in ["+1 201 555 0100", "+1 201 555 0169", "+1 201 555 0199"] {
            let p = phone(line);
            let first = answer(p.virtual_line().unwrap(), &p).expect("accepted");
            let second = answer(p.virtual_line().unwrap(), &p).expect("accepted");
            assert!(first.message_id.starts_with("wamid."), "{first:?}");
            assert_ne!(first.message_id, second.message_id);
            assert_eq!(first.wa_id.as_deref(), Some(p.digits()));
        }
        let refused = phone("+1 201 555 0170");
        match answer(refused.virtual_line().unwrap(), &refused) {
            Err(SendError::Rejected { message, error }) => {
                assert_eq!(
                    message,
                    "(#131030) Recipient phone number not in allowed list"
                );
                assert_eq!(error["code"], 131030);
                assert_eq!(error["type"], "OAuthException");
                assert!(error["fbtrace_id"].as_str().is_some_and(|t| !t.is_empty()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_virtual_users_bsuid_is_metas_format_and_the_same_for_a_number_every_time() {
        let p = phone("+1 201 555 0190");
        let bsuid = bsuid_of(&p);
        assert_eq!(bsuid, bsuid_of(&phone("+1 (201) 555-0190")));
        assert_ne!(bsuid, bsuid_of(&phone("+1 201 555 0191")));
        assert!(bsuid.starts_with("US.") && bsuid.len() == 23, "{bsuid}");
        assert!(Bsuid::parse(&bsuid).is_some(), "{bsuid}");
    }

    const SANDBOX: Business<'static> = Business {
        phone_number_id: "109876543210987",
        display_number: "12029087457",
    };

    fn cue(typed: &str, sent: Sent) -> Cue {
        let p = phone(typed);
        Cue {
            line: p.virtual_line().unwrap(),
            phone: p,
            message_id: "wamid.SENT".into(),
            tag: Some("act:wss_3kTMd9Xr7QeZp1bN8vYc2a:u1".into()),
            sent_at: 1_795_529_722,
            sent,
        }
    }

    fn template(first: bool) -> Sent {
        Sent::Template {
            session: SessionId::parse("wss_3kTMd9Xr7QeZp1bN8vYc2a").unwrap(),
            first,
        }
    }

    /// What each delivery is: a status's `status`, or a message's type and text/payload.
    fn shape(deliveries: &[Value]) -> Vec<String> {
        deliveries
            .iter()
            .map(|d| {
                let value = &d["entry"][0]["changes"][0]["value"];
                match value["statuses"].get(0) {
                    Some(status) => status["status"].as_str().unwrap().to_owned(),
                    None => {
                        let m = &value["messages"][0];
                        assert_eq!(m["context"]["id"], "wamid.SENT", "{m}");
                        assert_eq!(m["timestamp"], "1795529722");
                        let said = m["text"]["body"]
                            .as_str()
                            .or(m["button"]["payload"].as_str());
                        format!("{} {}", m["type"].as_str().unwrap(), said.unwrap())
                    }
                }
            })
            .collect()
    }

    #[test]
    fn each_line_answers_a_send_as_the_behaviour_table_says() {
        let plays = |typed: &str, sent: Sent| shape(&deliveries(&cue(typed, sent), SANDBOX));
        let statuses = ["sent", "delivered", "read"];
        assert_eq!(plays("+1 201 555 0100", template(true)), statuses);
        assert_eq!(plays("+1 201 555 0149", Sent::Message), statuses);
        let tap = [
            "sent",
            "delivered",
            "read",
            "button activate:wss_3kTMd9Xr7QeZp1bN8vYc2a",
        ];
        assert_eq!(plays("+1 201 555 0150", template(true)), tap);
        assert_eq!(
            plays("+1 201 555 0159", template(false)),
            tap,
            "a refresh too"
        );
        assert_eq!(plays("+1 201 555 0150", Sent::Message), statuses);
        assert_eq!(plays("+1 201 555 0160", template(true)), ["failed"]);
        assert_eq!(plays("+1 201 555 0169", Sent::Message), ["failed"]);
        let stop = ["sent", "delivered", "read", "text STOP"];
        assert_eq!(plays("+1 201 555 0180", template(true)), stop);
        assert_eq!(
            plays("+1 201 555 0189", template(false)),
            statuses,
            "its first only"
        );
        assert_eq!(plays("+1 201 555 0180", Sent::Message), statuses);
        assert_eq!(plays("+1 201 555 0190", template(true)), statuses);
    }

    #[test]
    fn a_username_users_statuses_name_phone_and_bsuid_together_and_its_messages_only_the_bsuid() {
        let c = cue("+1 201 555 0190", template(true));
        let bsuid = bsuid_of(&c.phone);
        for delivery in deliveries(&c, SANDBOX) {
            let value = &delivery["entry"][0]["changes"][0]["value"];
            assert_eq!(value["contacts"][0]["wa_id"], "12015550190", "{value}");
            assert_eq!(value["contacts"][0]["user_id"], bsuid.as_str(), "{value}");
            assert_eq!(value["statuses"][0]["recipient_user_id"], bsuid.as_str());
        }
        let written = reply(
            SANDBOX,
            &c.phone,
            c.line,
            "wamid.R",
            5,
            None,
            Content::Text("hi".into()),
        );
        let value = &written["entry"][0]["changes"][0]["value"];
        assert!(value["messages"][0].get("from").is_none(), "{value}");
        assert!(value["contacts"][0].get("wa_id").is_none(), "{value}");
        assert_eq!(value["messages"][0]["from_user_id"], bsuid.as_str());
        // Any other line writes as its phone.
        let p = phone("+1 201 555 0189");
        let written = reply(
            SANDBOX,
            &p,
            p.virtual_line().unwrap(),
            "wamid.R",
            5,
            None,
            Content::Text("hi".into()),
        );
        let value = &written["entry"][0]["changes"][0]["value"];
        assert_eq!(value["messages"][0]["from"], "12015550189");
        assert!(value.get("statuses").is_none());
    }

    #[test]
    fn the_phones_own_message_ids_depend_only_on_what_they_answer() {
        assert_eq!(
            derived_wamid("tap", "wamid.A"),
            derived_wamid("tap", "wamid.A")
        );
        assert_ne!(
            derived_wamid("tap", "wamid.A"),
            derived_wamid("stop", "wamid.A")
        );
        assert_ne!(
            derived_wamid("tap", "wamid.A"),
            derived_wamid("tap", "wamid.B")
        );
        assert!(derived_wamid("tap", "wamid.A").starts_with("wamid."));
    }
}
