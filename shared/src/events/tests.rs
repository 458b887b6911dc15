//! One test per rule of the table in `events`' doc comment. Session and inbound images come
//! from the store's own codecs, so a layout change breaks these tests; outbound conversation
//! items are literal copies of what `record_outbound` and `record_message_status` write.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;

use super::*;
use crate::message::{ConversationMessage, Direction};
use crate::phone::PhoneE164;
use crate::session::{Delivery, DeliveryError, DeliveryStatus, Session, SessionId, UserId};
use crate::store::{inbound_item, session_to_item, Key, ENDED_AT_ATTRIBUTE, END_REASON_ATTRIBUTE};

/// 2026-11-24T14:15:22Z.
const T: i64 = 1_795_529_722;
const SPAIN: &str = "34688246216";

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn user() -> UserId {
    UserId::new("u1")
}

/// A pending session whose template Meta accepted at `T`, living 10 minutes.
fn pending(id: &str) -> Session {
    pending_at(id, T)
}

/// A pending session created at `at`.
fn pending_at(id: &str, at: i64) -> Session {
    let mut session = Session::new_pending(
        SessionId::parse(id).unwrap(),
        &user(),
        PhoneE164::from_stored(SPAIN).unwrap(),
        at,
        600,
    );
    session.activation_message_id = Some("wamid.TEMPLATE1".into());
    session
}

const A: &str = "wss_3kTMd9Xr7QeZp1bN8vYc2a";
const B: &str = "wss_9zZZd9Xr7QeZp1bN8vYc2b";

/// `session` as `activate` leaves it, answered at `at`.
fn activated_at(mut session: Session, at: i64) -> Session {
    session.status = SessionStatus::Active;
    session.activated_at = Some(at);
    session.expires_at = at + 86_400;
    session.last_inbound_at = Some(at);
    session
}

fn with_delivery(mut session: Session, status: DeliveryStatus, at: i64) -> Session {
    session.delivery = Some(Delivery {
        status,
        updated_at: at,
        error: (status == DeliveryStatus::Failed).then(|| DeliveryError {
            code: 131_026,
            title: Some("Message undeliverable".into()),
            message: Some("Message undeliverable".into()),
            details: Some("The number is not on WhatsApp.".into()),
        }),
    });
    session
}

fn item(session: &Session) -> Item {
    session_to_item("test", session, "w1").unwrap()
}

fn record(change: Change, old: Option<Item>, new: Option<Item>, at: i64) -> StreamRecord {
    StreamRecord {
        change,
        old,
        new,
        by_ttl: false,
        at,
        sequence_number: None,
    }
}

fn modify(old: Item, new: Item, at: i64) -> StreamRecord {
    record(Change::Modify, Some(old), Some(new), at)
}

fn insert(new: Item, at: i64) -> StreamRecord {
    record(Change::Insert, None, Some(new), at)
}

fn remove(old: Item, at: i64) -> StreamRecord {
    record(Change::Remove, Some(old), None, at)
}

fn ttl_remove(old: Item, at: i64) -> StreamRecord {
    StreamRecord {
        by_ttl: true,
        ..remove(old, at)
    }
}

/// The one event of `record`.
fn one(record: &StreamRecord) -> Event {
    let mut events = events_of(record).unwrap();
    assert_eq!(events.len(), 1, "{events:#?}");
    events.remove(0)
}

fn none(record: &StreamRecord) {
    assert_eq!(events_of(record).unwrap(), Vec::new());
}

/// The item STOP's marker leaves on the session just before it deletes it.
fn marked_by_stop(session: &Session, stop_at: i64) -> Item {
    let mut item = item(session);
    item.insert(END_REASON_ATTRIBUTE.into(), s("opted_out"));
    item.insert(ENDED_AT_ATTRIBUTE.into(), n(stop_at));
    item
}

// --- sessions ---------------------------------------------------------------------------

#[test]
fn a_pending_session_turning_active_is_session_activated_at_its_activation_time() {
    let before = pending(A);
    let after = activated_at(before.clone(), T + 60);
    let e = one(&modify(item(&before), item(&after), T + 61));
    assert_eq!(e.event, EventName::SessionActivated);
    assert_eq!(e.event.as_str(), "whatsapp.sandbox.session.activated");
    assert_eq!(e.user_id, user());
    assert_eq!(e.timestamp, T + 60);
    assert_eq!(e.body["session"]["status"], "active");
    assert_eq!(e.body["session"]["id"], A);
    assert!(e.body.get("reason").is_none());
}

#[test]
fn an_activation_template_status_that_moved_forward_is_a_message_status_event() {
    let sent = with_delivery(pending(A), DeliveryStatus::Sent, T + 1);
    let delivered = with_delivery(pending(A), DeliveryStatus::Delivered, T + 2);
    let first = one(&modify(item(&pending(A)), item(&sent), T + 1));
    assert_eq!(first.event, EventName::MessageSent);
    assert_eq!(first.timestamp, T + 1);
    let e = one(&modify(item(&sent), item(&delivered), T + 3));
    assert_eq!(e.event, EventName::MessageDelivered);
    assert_eq!(e.timestamp, T + 2);
    assert_eq!(e.body["message"]["platformMessageId"], "wamid.TEMPLATE1");
    assert_eq!(e.body["message"]["direction"], "outgoing");
    assert_eq!(e.body["statusAt"], "2026-11-24T14:15:24Z");
    assert!(e.body.get("error").is_none());
    assert_ne!(first.id, e.id);
}

#[test]
fn a_failed_activation_template_carries_metas_error() {
    let failed = with_delivery(pending(A), DeliveryStatus::Failed, T + 2);
    let e = one(&modify(item(&pending(A)), item(&failed), T + 3));
    assert_eq!(e.event, EventName::MessageFailed);
    assert_eq!(
        e.body["error"],
        json!({"code": 131026, "title": "Message undeliverable",
               "message": "Message undeliverable", "explanation": "The number is not on WhatsApp."})
    );
}

#[test]
fn a_template_status_that_did_not_move_forward_is_no_event() {
    let read = with_delivery(pending(A), DeliveryStatus::Read, T + 3);
    // The store refuses a late `delivered`; a rewrite of the same status changes nothing.
    none(&modify(item(&read), item(&read), T + 4));
    let late = with_delivery(pending(A), DeliveryStatus::Delivered, T + 2);
    none(&modify(item(&read), item(&late), T + 4));
}

#[test]
fn the_first_status_of_a_refreshed_template_is_an_event_of_that_template() {
    let old = with_delivery(pending(A), DeliveryStatus::Read, T + 3);
    let mut refreshed = pending(A);
    refreshed.activation_message_id = Some("wamid.TEMPLATE2".into());
    let sent = with_delivery(refreshed.clone(), DeliveryStatus::Sent, T + 100);
    let e = one(&modify(item(&old), item(&sent), T + 100));
    assert_eq!(e.event, EventName::MessageSent);
    assert_eq!(e.body["message"]["id"], "wamid.TEMPLATE2");
}

#[test]
fn a_refresh_of_a_pending_session_is_no_event() {
    let before = with_delivery(pending(A), DeliveryStatus::Delivered, T + 2);
    let mut after = pending(A);
    after.expires_at = T + 900;
    after.template_sent_at = Some(T + 300);
    after.activation_message_id = Some("wamid.TEMPLATE2".into());
    none(&modify(item(&before), item(&after), T + 300));
}

#[test]
fn a_window_refresh_a_bsuid_and_stops_marker_are_no_event() {
    let active = activated_at(pending(A), T + 60);
    let mut later = active.clone();
    later.last_inbound_at = Some(T + 500);
    none(&modify(item(&active), item(&later), T + 500));
    let mut learned = active.clone();
    learned.bsuid = Some("ES.1234567890".into());
    none(&modify(item(&active), item(&learned), T + 500));
    none(&modify(
        item(&active),
        marked_by_stop(&active, T + 700),
        T + 700,
    ));
}

#[test]
fn a_new_session_is_no_event() {
    none(&insert(item(&pending(A)), T));
}

#[test]
fn a_ttl_removal_is_session_ended_expired_at_the_sessions_expiry() {
    let active = activated_at(pending(A), T + 60);
    // The sweeper may come up to two days late: the event says when the session ended.
    let e = one(&ttl_remove(item(&active), active.expires_at + 2 * 86_400));
    assert_eq!(e.event, EventName::SessionEnded);
    assert_eq!(e.body["reason"], "expired");
    assert_eq!(e.timestamp, active.expires_at);
    assert_eq!(e.body["timestamp"], rfc(active.expires_at));
    assert_eq!(e.body["session"]["status"], "active");
}

#[test]
fn an_expired_pending_session_ends_as_expired_too() {
    let e = one(&ttl_remove(item(&pending(A)), T + 5_000));
    assert_eq!(e.body["reason"], "expired");
    assert_eq!(e.body["session"]["status"], "pending");
}

#[test]
fn a_users_revoke_is_session_ended_revoked_at_the_deletion() {
    let active = activated_at(pending(A), T + 60);
    let e = one(&remove(item(&active), T + 120));
    assert_eq!(e.event, EventName::SessionEnded);
    assert_eq!(e.body["reason"], "revoked");
    assert_eq!(e.timestamp, T + 120);
}

#[test]
fn a_stop_is_session_ended_opted_out_at_the_stops_time() {
    let active = activated_at(pending(A), T + 60);
    let e = one(&remove(marked_by_stop(&active, T + 200), T + 203));
    assert_eq!(e.body["reason"], "opted_out");
    assert_eq!(e.timestamp, T + 200);
}

#[test]
fn a_stop_sweeping_an_expired_session_reports_it_expired() {
    let old = pending(A);
    let e = one(&remove(marked_by_stop(&old, T + 1_000), T + 1_001));
    assert_eq!(e.body["reason"], "expired");
    assert_eq!(e.timestamp, old.expires_at);
}

#[test]
fn creates_rollback_of_its_own_claim_is_no_event() {
    let mut claim = pending(A);
    claim.activation_message_id = None;
    none(&remove(item(&claim), T + 1));
}

#[test]
fn a_claim_replacing_an_expired_session_ends_it_once_as_the_sweeper_would() {
    let old = activated_at(pending(A), T + 60);
    let later = old.expires_at + 10;
    let new = pending_at(B, later);
    let e = one(&modify(item(&old), item(&new), later));
    assert_eq!(e.body["reason"], "expired");
    assert_eq!(e.body["session"]["id"], A);
    assert_eq!(e.timestamp, old.expires_at);
    // A rollback putting the old item back, then the sweeper: the same event, the same id.
    let mut claim = new.clone();
    claim.activation_message_id = None;
    none(&modify(item(&claim), item(&old), later + 1));
    let swept = one(&ttl_remove(item(&old), later + 86_400));
    assert_eq!(swept.id, e.id);
    assert_eq!(swept.body, e.body);
}

// --- conversation messages --------------------------------------------------------------

fn inbound(bsuid: Option<&str>) -> ConversationMessage {
    ConversationMessage {
        user_id: user(),
        created_at: T,
        suffix: "iwamid.IN1".into(),
        message_id: Some("wamid.IN1".into()),
        direction: Direction::Inbound,
        phone: SPAIN.into(),
        kind: "text".into(),
        content: json!({"text": {"body": "hola"}}),
        status: None,
        error: None,
        bsuid: bsuid.map(str::to_owned),
    }
}

/// What `record_outbound` writes, with what `record_message_status` adds.
fn outbound(status: &str, rank: i64, status_at: Option<i64>, error: Option<&str>) -> Item {
    let key = Key::message(&user(), T, "oAbC");
    let mut item = key.item();
    for (k, v) in [
        ("messageId", s("wamid.OUT1")),
        ("userId", s("u1")),
        ("direction", s("outbound")),
        ("phone", s(SPAIN)),
        ("type", s("text")),
        ("content", s(r#"{"text":{"body":"hi"}}"#)),
        ("createdAt", n(T)),
        ("expiresAt", n(T + 7 * 86_400)),
        ("status", s(status)),
        ("statusRank", n(rank)),
    ] {
        item.insert(k.into(), v);
    }
    if let Some(at) = status_at {
        item.insert("statusAt".into(), n(at));
    }
    if let Some(e) = error {
        item.insert("error".into(), s(e));
    }
    item
}

/// What `record_message_status` alone writes: a status that beat its send's record.
fn bare(status: &str, rank: i64, at: i64) -> Item {
    let mut item = Key::message(&user(), T, "oAbC").item();
    item.insert("status".into(), s(status));
    item.insert("statusRank".into(), n(rank));
    item.insert("statusAt".into(), n(at));
    item.insert("expiresAt".into(), n(T + 7 * 86_400));
    item
}

#[test]
fn an_inbound_message_is_message_received_for_its_conversations_user() {
    let e = one(&insert(inbound_item(&inbound(None)).unwrap(), T + 1));
    assert_eq!(e.event, EventName::MessageReceived);
    assert_eq!(e.user_id, user());
    assert_eq!(e.timestamp, T);
    let m = &e.body["message"];
    assert_eq!(m["id"], "wamid.IN1");
    assert_eq!(m["platformMessageId"], "wamid.IN1");
    assert_eq!(m["platform"], "whatsapp");
    assert_eq!(m["direction"], "incoming");
    assert_eq!(m["text"], "hola");
    assert_eq!(m["attachments"], json!([]));
    assert_eq!(
        m["sender"],
        json!({"id": SPAIN, "phoneNumber": "+34688246216"})
    );
    assert_eq!(m["sentAt"], "2026-11-24T14:15:22Z");
    assert_eq!(m["conversationId"], e.body["conversation"]["id"]);
    assert_eq!(e.body["account"]["platform"], "whatsapp");
}

#[test]
fn a_received_message_carries_the_senders_bsuid_when_known() {
    let e = one(&insert(
        inbound_item(&inbound(Some("ES.1234567890"))).unwrap(),
        T,
    ));
    assert_eq!(
        e.body["message"]["sender"]["businessScopedUserId"],
        "ES.1234567890"
    );
}

#[test]
fn a_button_reply_says_its_text() {
    let mut reply = inbound(None);
    reply.kind = "button".into();
    reply.content = json!({"button": {"payload": "activate:wss_x", "text": "Activate"}});
    let e = one(&insert(inbound_item(&reply).unwrap(), T));
    assert_eq!(e.body["message"]["text"], "Activate");
}

#[test]
fn an_inbound_redelivery_or_removal_is_no_event() {
    let first = inbound_item(&inbound(None)).unwrap();
    let again = inbound_item(&inbound(Some("ES.1234567890"))).unwrap();
    none(&modify(first.clone(), again, T + 60));
    none(&ttl_remove(first, T + 8 * 86_400));
}

#[test]
fn an_outbound_status_that_moved_forward_is_a_message_status_event_at_its_time() {
    let e = one(&modify(
        outbound("sent", 1, Some(T + 1), None),
        outbound("delivered", 2, Some(T + 2), None),
        T + 3,
    ));
    assert_eq!(e.event, EventName::MessageDelivered);
    assert_eq!(e.timestamp, T + 2);
    assert_eq!(e.body["statusAt"], "2026-11-24T14:15:24Z");
    assert_eq!(e.body["message"]["direction"], "outgoing");
    assert_eq!(e.body["message"]["text"], "hi");
    assert!(e.body["message"].get("sender").is_none());
    let sent = one(&modify(
        outbound("accepted", 0, None, None),
        outbound("sent", 1, Some(T + 1), None),
        T + 1,
    ));
    assert_eq!(sent.event, EventName::MessageSent);
}

#[test]
fn a_failed_outbound_message_carries_metas_error() {
    let error = r#"{"code":131047,"title":"Re-engagement message","message":"More than 24 hours","details":"Outside the window"}"#;
    let e = one(&modify(
        outbound("sent", 1, Some(T + 1), None),
        outbound("failed", 4, Some(T + 2), Some(error)),
        T + 3,
    ));
    assert_eq!(e.event, EventName::MessageFailed);
    assert_eq!(
        e.body["error"],
        json!({"code": 131047, "title": "Re-engagement message",
               "message": "More than 24 hours", "explanation": "Outside the window"})
    );
}

#[test]
fn an_accepted_send_and_a_status_that_did_not_move_are_no_event() {
    none(&insert(outbound("accepted", 0, None, None), T));
    let read = outbound("read", 3, Some(T + 3), None);
    none(&modify(read.clone(), read, T + 4));
}

#[test]
fn a_status_recorded_before_its_send_is_reported_when_the_send_is_recorded() {
    // Meta's status beat `record_outbound`: the bare item says nothing yet…
    none(&insert(bare("delivered", 2, T + 2), T + 2));
    // …and the send's record, which keeps the status, reports it.
    let e = one(&modify(
        bare("delivered", 2, T + 2),
        outbound("delivered", 2, Some(T + 2), None),
        T + 3,
    ));
    assert_eq!(e.event, EventName::MessageDelivered);
    assert_eq!(e.timestamp, T + 2);
}

// --- everything else ----------------------------------------------------------------------

#[test]
fn items_of_other_kinds_are_no_event() {
    let with = |key: Key, extra: &[(&str, AttributeValue)]| {
        let mut item = key.item();
        for (k, v) in extra {
            item.insert((*k).into(), v.clone());
        }
        item
    };
    let items = [
        with(
            Key::api_key("ab12"),
            &[("userId", s("u1")), ("status", s("active"))],
        ),
        with(
            Key::opt_out(SPAIN),
            &[("optedOut", AttributeValue::Bool(true))],
        ),
        with(Key::user_counter(&user(), T), &[("sends", n(1))]),
        with(Key::message_counter(&user(), T), &[("count", n(1))]),
        with(Key::inbound("wamid.IN1"), &[("expiresAt", n(T))]),
        with(Key::outbound_ref("wamid.OUT1"), &[("userId", s("u1"))]),
        with(Key::last_sender(SPAIN), &[("userId", s("u1"))]),
        with(Key::idempotency("ab"), &[("owner", s("x"))]),
        with(Key::bsuid("ES.1234567890"), &[("phone", s(SPAIN))]),
    ];
    for item in items {
        none(&insert(item.clone(), T));
        none(&modify(item.clone(), item.clone(), T));
        none(&ttl_remove(item.clone(), T));
        none(&remove(item, T));
    }
}

#[test]
fn an_undecodable_session_image_is_an_error_not_silence() {
    let mut broken = item(&pending(A));
    broken.insert("status".into(), s("paused"));
    assert!(events_of(&remove(broken, T + 1)).is_err());
}

// --- ids and shapes -----------------------------------------------------------------------

#[test]
fn the_same_record_twice_gives_the_same_event_and_id() {
    let r = insert(inbound_item(&inbound(None)).unwrap(), T + 1);
    let (a, b) = (one(&r), one(&r));
    assert_eq!(a, b);
    assert!(a.id.starts_with("evt_") && a.id.len() == 26, "{}", a.id);
    // The stream's arrival time is not part of the change.
    assert_eq!(
        one(&insert(inbound_item(&inbound(None)).unwrap(), T + 9)).id,
        a.id
    );
}

#[test]
fn every_event_id_has_the_shape_openapi_declares() {
    // `^evt_[0-9A-Za-z]{22}$`: about half of base64url ids held a `-` or `_`.
    for n in 0..2_000 {
        let at = T + n;
        let message = ConversationMessage {
            created_at: at,
            suffix: format!("iwamid.IN{n}"),
            ..inbound(None)
        };
        let received = one(&insert(inbound_item(&message).unwrap(), at)).id;
        let test = Event::webhook_test(&user(), &n.to_string(), at).id;
        for id in [received, test] {
            let rest = id.strip_prefix("evt_").expect("the prefix");
            assert!(crate::ids::is_base62(rest, 22), "{id}");
            assert!(crate::webhooks::EventId::parse(&id).is_some(), "{id}");
        }
    }
}

#[test]
fn different_changes_never_share_an_id() {
    let activation = one(&modify(
        item(&pending(A)),
        item(&activated_at(pending(A), T + 60)),
        T + 60,
    ));
    let ended = one(&remove(item(&activated_at(pending(A), T + 60)), T + 90));
    let ended_b = one(&remove(item(&activated_at(pending(B), T + 60)), T + 90));
    let sent = one(&modify(
        item(&pending(A)),
        item(&with_delivery(pending(A), DeliveryStatus::Sent, T + 1)),
        T + 1,
    ));
    let delivered = one(&modify(
        item(&pending(A)),
        item(&with_delivery(pending(A), DeliveryStatus::Delivered, T + 1)),
        T + 1,
    ));
    let received = one(&insert(inbound_item(&inbound(None)).unwrap(), T));
    let out_sent = one(&modify(
        outbound("accepted", 0, None, None),
        outbound("sent", 1, Some(T + 1), None),
        T + 1,
    ));
    let ids = [
        &activation.id,
        &ended.id,
        &ended_b.id,
        &sent.id,
        &delivered.id,
        &received.id,
        &out_sent.id,
    ];
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
}

/// The keys of a JSON object, in their order, separated by spaces.
fn keys(object: &serde_json::Value) -> String {
    let keys: Vec<&str> = object
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.join(" ")
}

#[test]
fn bodies_are_zernios_envelope_id_event_timestamp_first() {
    let e = one(&insert(inbound_item(&inbound(None)).unwrap(), T));
    assert_eq!(
        keys(&e.body),
        "id event timestamp message conversation account"
    );
    assert_eq!(e.body["id"], e.id.as_str());
    assert_eq!(e.body["event"], "message.received");
    assert_eq!(e.body["timestamp"], "2026-11-24T14:15:22Z");
    assert_eq!(
        keys(&e.body["message"]),
        "id conversationId platform platformMessageId direction text attachments sender sentAt"
    );
    let status = one(&modify(
        outbound("accepted", 0, None, None),
        outbound("sent", 1, Some(T + 1), None),
        T + 1,
    ));
    assert_eq!(
        keys(&status.body),
        "id event timestamp message statusAt conversation account"
    );
    let ended = one(&remove(item(&activated_at(pending(A), T + 60)), T + 90));
    assert_eq!(
        ended.body,
        json!({
            "id": ended.id,
            "event": "whatsapp.sandbox.session.ended",
            "timestamp": "2026-11-24T14:16:52Z",
            "session": {
                "id": A,
                "phoneE164": SPAIN,
                "status": "active",
                "expiresAt": rfc(T + 60 + 86_400),
                "activatedAt": rfc(T + 60),
                "createdAt": rfc(T),
            },
            "reason": "revoked",
        })
    );
}

#[test]
fn one_phones_forms_share_a_conversation_and_users_do_not() {
    // Brazil's mobile with and without the ninth digit is one conversation.
    let mut with_nine = inbound(None);
    with_nine.phone = "5511987654321".into();
    let mut without = with_nine.clone();
    without.phone = "551187654321".into();
    let mut other_user = with_nine.clone();
    other_user.user_id = UserId::new("u2");
    let conv = |m: &ConversationMessage| {
        one(&insert(inbound_item(m).unwrap(), T)).body["conversation"]["id"].clone()
    };
    assert_eq!(conv(&with_nine), conv(&without));
    assert_ne!(conv(&with_nine), conv(&other_user));
}

#[test]
fn a_webhook_test_event_is_an_envelope_marked_test() {
    let e = Event::webhook_test(&user(), "nonce1", T);
    assert_eq!(e.event, EventName::WebhookTest);
    assert_eq!(e.body["event"], "webhook.test");
    assert_eq!(e.body["test"], true);
    assert_eq!(e.body["timestamp"], "2026-11-24T14:15:22Z");
    assert_eq!(e, Event::webhook_test(&user(), "nonce1", T));
    assert_ne!(e.id, Event::webhook_test(&user(), "nonce2", T).id);
}

#[test]
fn event_names_round_trip() {
    for e in EventName::ALL {
        assert_eq!(EventName::parse(e.as_str()), Some(e));
    }
    assert_eq!(EventName::parse("session.activated"), None);
}

#[test]
fn a_lambda_record_of_a_ttl_removal_becomes_an_expired_event() {
    let active = activated_at(pending(A), T + 60);
    let image: serde_json::Map<String, serde_json::Value> = item(&active)
        .into_iter()
        .map(|(k, v)| (k, attribute_json(&v)))
        .collect();
    let lambda = json!({
        "eventName": "REMOVE",
        "dynamodb": {
            "ApproximateCreationDateTime": active.expires_at + 3_600,
            "Keys": {"pk": {"S": "USER#u1"}, "sk": {"S": "SESSION"}},
            "OldImage": image,
            "SequenceNumber": "42",
        },
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
    });
    let r = StreamRecord::from_lambda_json(&lambda).unwrap();
    let e = one(&r);
    assert_eq!(e.body["reason"], "expired");
    assert_eq!(e.timestamp, active.expires_at);
}

/// The attribute-value JSON DynamoDB Streams writes, for the image a codec built.
fn attribute_json(v: &AttributeValue) -> serde_json::Value {
    match v {
        AttributeValue::S(x) => json!({ "S": x }),
        AttributeValue::N(x) => json!({ "N": x }),
        AttributeValue::Bool(x) => json!({ "BOOL": x }),
        AttributeValue::Null(x) => json!({ "NULL": x }),
        AttributeValue::M(m) => {
            let inner: serde_json::Map<_, _> = m
                .iter()
                .map(|(k, v)| (k.clone(), attribute_json(v)))
                .collect();
            json!({ "M": inner })
        }
        AttributeValue::L(l) => json!({ "L": l.iter().map(attribute_json).collect::<Vec<_>>() }),
        other => panic!("not in a session item: {other:?}"),
    }
}

fn rfc(t: i64) -> String {
    crate::session::rfc3339(t)
}
