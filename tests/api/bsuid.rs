//! Meta's 2026 business-scoped user ids (BSUIDs) in `receiveWhatsAppWebhook` (`openapi.yaml`;
//! README, "What activates" and "Data model"): a message that carries only the BSUID reaches
//! the phone the BSUID was learned beside; an unknown BSUID's messages are recorded nowhere,
//! except a STOP, which blocks the phone once the BSUID is learned; every documented shape is
//! acknowledged; the conversation shows `sender.businessScopedUserId`; a pair is learned only
//! where one object ties the phone and the BSUID, never from a contact that names no phone.

use e2e::deliveries::bsuid::{
    beside_a_lone_contact, bsuid_in_from, bsuid_only, failed_without_contacts, status_with_bsuid,
    user_id_update, with_phone_and_username, NEW_SPAIN_BSUID, SPAIN_BSUID, STRANGER_BSUID,
};
use e2e::deliveries::{assert_received, failed_status, status, text_at, Pending};
use e2e::messaging::inbound_text;
use e2e::{assert_error, TestEnv, SPAIN, SPAIN_DIGITS, T0, UK_DIGITS};
use lambda_http::http::StatusCode;
use sandbox::bsuid::Bsuid;
use serde_json::{json, Value};

/// The texts of a conversation page, newest first.
fn texts(conversation: &Value) -> Vec<&str> {
    conversation["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["text"]["body"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// Delivers `delivery` and expects the 200 acknowledgement.
async fn deliver(env: &TestEnv, delivery: Value) {
    assert_received(&env.deliver(&delivery).await);
}

/// A pending session of `u1` for the Spanish phone whose template's `sent` status carried
/// the BSUID beside the phone: learned.
async fn pending_with_learned_bsuid(env: &TestEnv) -> Pending {
    let pending = env.pending("u1", SPAIN_DIGITS).await;
    let sent = pending.status("sent", SPAIN_DIGITS, T0 + 1);
    deliver(env, status_with_bsuid(sent, SPAIN_BSUID)).await;
    pending
}

/// The Spanish phone writes "hello" (at `T0 + 40`) with its phone and BSUID: learned.
async fn say_hello_with_phone_and_bsuid(env: &TestEnv) {
    let hello = inbound_text(SPAIN_DIGITS, "hello", 40, 1);
    deliver(env, with_phone_and_username(hello, SPAIN_BSUID)).await;
}

#[tokio::test]
async fn a_bsuid_only_reply_that_names_a_session_activates_it() {
    let env = TestEnv::accepting().await;
    let pending = pending_with_learned_bsuid(&env).await;
    deliver(
        &env,
        bsuid_only(pending.button_reply(SPAIN_DIGITS), SPAIN_BSUID),
    )
    .await;
    assert_eq!(env.session_of(&pending.key).await["status"], "active");
}

#[tokio::test]
async fn a_bsuid_only_message_is_recorded_in_the_conversation_it_belongs_to() {
    let env = TestEnv::accepting().await;
    let active = env.active("u1", SPAIN_DIGITS).await;
    // Later messages carry no phone.
    say_hello_with_phone_and_bsuid(&env).await;
    let no_from = inbound_text(SPAIN_DIGITS, "without from", 50, 2);
    deliver(&env, bsuid_only(no_from, SPAIN_BSUID)).await;
    let bsuid_from = inbound_text(SPAIN_DIGITS, "from is the bsuid", 60, 3);
    deliver(&env, bsuid_in_from(bsuid_from, SPAIN_BSUID)).await;
    let conversation = env.conversation(&active.key).await;
    assert_eq!(
        texts(&conversation),
        ["from is the bsuid", "without from", "hello"]
    );
    for m in conversation["messages"].as_array().unwrap().iter().take(3) {
        assert_eq!(m["phoneE164"], SPAIN_DIGITS, "{m}");
    }
}

#[tokio::test]
async fn a_bsuid_only_stop_is_honoured() {
    let env = TestEnv::accepting().await;
    let pending = pending_with_learned_bsuid(&env).await;
    let stop = text_at(SPAIN_DIGITS, "STOP", T0 + 100, 1);
    deliver(&env, bsuid_only(stop, SPAIN_BSUID)).await;
    assert_eq!(env.sessions(&pending.key).await, json!([]));
    assert!(env.opted_out(SPAIN_DIGITS).await);
}

#[tokio::test]
async fn messages_from_an_unknown_bsuid_are_recorded_nowhere() {
    let env = TestEnv::accepting().await;
    let active = env.active("u1", SPAIN_DIGITS).await;
    say_hello_with_phone_and_bsuid(&env).await;
    let pending = env.pending("u2", SPAIN_DIGITS).await;
    let before = env.snapshot().await;
    let text = inbound_text(SPAIN_DIGITS, "who am I", 50, 2);
    deliver(&env, bsuid_only(text, STRANGER_BSUID)).await;
    let tap = pending.button_reply(SPAIN_DIGITS);
    deliver(&env, bsuid_in_from(tap, STRANGER_BSUID)).await;
    assert_eq!(env.snapshot().await, before, "nothing written");
    assert_eq!(env.session_of(&pending.key).await["status"], "pending");
    // The same message from the phone's own BSUID is kept.
    let text = inbound_text(SPAIN_DIGITS, "it is me", 60, 3);
    deliver(&env, bsuid_only(text, SPAIN_BSUID)).await;
    assert_eq!(
        texts(&env.conversation(&active.key).await),
        ["it is me", "hello"]
    );
}

#[tokio::test]
async fn a_stop_from_an_unknown_bsuid_blocks_its_phone_once_the_bsuid_is_learned() {
    let env = TestEnv::accepting().await;
    let stop = text_at(SPAIN_DIGITS, "STOP", T0 + 5, 1);
    deliver(&env, bsuid_only(stop, SPAIN_BSUID)).await;
    let record = env.app.store.opt_out(SPAIN_DIGITS).await.unwrap();
    assert_eq!(record, None, "no phone known yet");
    // Not yet learned: the template goes out, and its status teaches the BSUID.
    env.clock.set(T0 + 10);
    let pending = env.pending("u1", SPAIN_DIGITS).await;
    let sent = pending.status("sent", SPAIN_DIGITS, T0 + 11);
    deliver(&env, status_with_bsuid(sent, SPAIN_BSUID)).await;
    assert!(env.opted_out(SPAIN_DIGITS).await);
    let other = env.api_key("u2").await;
    let body = assert_error(
        &env.create(&other, SPAIN).await,
        StatusCode::FORBIDDEN,
        "permission_error",
        "recipient_opted_out",
    );
    assert!(body["error"].as_str().unwrap().contains("START"), "{body}");
}

#[tokio::test]
async fn a_user_id_update_replaces_the_stored_bsuid() {
    let env = TestEnv::accepting().await;
    let active = env.active("u1", SPAIN_DIGITS).await;
    say_hello_with_phone_and_bsuid(&env).await;
    // No phone in the system message: the previous BSUID names it.
    deliver(
        &env,
        user_id_update(None, SPAIN_BSUID, NEW_SPAIN_BSUID, T0 + 45, 1),
    )
    .await;
    let new = inbound_text(SPAIN_DIGITS, "with the new id", 50, 2);
    deliver(&env, bsuid_only(new, NEW_SPAIN_BSUID)).await;
    let old = inbound_text(SPAIN_DIGITS, "with the old id", 60, 3);
    deliver(&env, bsuid_only(old, SPAIN_BSUID)).await;
    let conversation = env.conversation(&active.key).await;
    assert_eq!(texts(&conversation), ["with the new id", "hello"]);
    assert_eq!(
        conversation["messages"][0]["sender"]["businessScopedUserId"],
        NEW_SPAIN_BSUID
    );
}

#[tokio::test]
async fn every_documented_2026_shape_is_acknowledged() {
    let env = TestEnv::accepting().await;
    let pending = env.pending("u1", SPAIN_DIGITS).await;
    let at = |s: i64| T0 + s;
    let deliveries = [
        with_phone_and_username(inbound_text(SPAIN_DIGITS, "hi", 2, 1), SPAIN_BSUID),
        bsuid_only(inbound_text(SPAIN_DIGITS, "hi", 3, 2), SPAIN_BSUID),
        bsuid_in_from(inbound_text(SPAIN_DIGITS, "hi", 4, 3), SPAIN_BSUID),
        bsuid_only(inbound_text(SPAIN_DIGITS, "hi", 5, 4), STRANGER_BSUID),
        status_with_bsuid(pending.status("sent", SPAIN_DIGITS, at(6)), SPAIN_BSUID),
        status_with_bsuid(
            pending.status("delivered", SPAIN_DIGITS, at(7)),
            SPAIN_BSUID,
        ),
        status_with_bsuid(pending.status("read", SPAIN_DIGITS, at(8)), SPAIN_BSUID),
        status_with_bsuid(pending.failed_status(SPAIN_DIGITS, at(9)), SPAIN_BSUID),
        status_with_bsuid(
            status("wamid.OTHER", "read", SPAIN_DIGITS, at(9)),
            SPAIN_BSUID,
        ),
        failed_without_contacts(pending.failed_status(SPAIN_DIGITS, at(10))),
        failed_without_contacts(failed_status("wamid.OTHER", SPAIN_DIGITS, at(10))),
        user_id_update(Some(SPAIN_DIGITS), SPAIN_BSUID, NEW_SPAIN_BSUID, at(11), 1),
        user_id_update(None, NEW_SPAIN_BSUID, SPAIN_BSUID, at(12), 2),
        user_id_update(None, STRANGER_BSUID, "BR.1", at(13), 3),
    ];
    for delivery in deliveries {
        let reply = env.deliver(&delivery).await;
        assert_eq!(reply.status, StatusCode::OK, "{delivery}: {}", reply.text);
        assert_received(&reply);
    }
    // And acted on: the failed status is recorded, the BSUID is the latest one Meta named,
    // the one it replaced is forgotten, and an unknown one is never tied to a phone.
    assert_eq!(
        env.session_of(&pending.key).await["delivery"]["status"],
        "failed"
    );
    let phone_of = |bsuid: &'static str| {
        let store = env.app.store.clone();
        async move {
            let bsuid = Bsuid::parse(bsuid).unwrap();
            store
                .bsuid_record(&bsuid)
                .await
                .unwrap()
                .and_then(|r| r.phone)
        }
    };
    assert_eq!(phone_of(SPAIN_BSUID).await.as_deref(), Some(SPAIN_DIGITS));
    assert_eq!(phone_of(NEW_SPAIN_BSUID).await, None);
    assert_eq!(phone_of(STRANGER_BSUID).await, None);
    assert_eq!(phone_of("BR.1").await, None);
    assert_eq!(
        env.session_item("u1").await["bsuid"].as_s().unwrap(),
        SPAIN_BSUID
    );
}

#[tokio::test]
async fn inbound_messages_show_the_senders_bsuid_where_it_is_known() {
    let env = TestEnv::accepting().await;
    let active = env.active("u1", SPAIN_DIGITS).await;
    say_hello_with_phone_and_bsuid(&env).await;
    // The old shape, phone only: the BSUID learned for the phone is shown.
    env.deliver_messages(vec![inbound_text(SPAIN_DIGITS, "phone only", 50, 2)])
        .await;
    let conversation = env.conversation(&active.key).await;
    assert_eq!(texts(&conversation), ["phone only", "hello"]);
    // The activating tap came before the BSUID was known.
    for m in conversation["messages"].as_array().unwrap().iter().take(2) {
        assert_eq!(
            m["sender"],
            json!({ "businessScopedUserId": SPAIN_BSUID }),
            "{m}"
        );
    }
}

#[tokio::test]
async fn a_phone_whose_bsuid_is_known_costs_no_extra_request() {
    let env = TestEnv::accepting().await;
    let pending = pending_with_learned_bsuid(&env).await;
    env.counter.reset();
    let delivered = pending.status("delivered", SPAIN_DIGITS, T0 + 2);
    deliver(&env, status_with_bsuid(delivered, SPAIN_BSUID)).await;
    let requests = env.counter.take();
    assert_eq!(
        requests.len(),
        1,
        "the status's own update, got {requests:?}"
    );
    // The activating reply with the phone and the known BSUID: the lookups of the phone and
    // the activation's transaction, as without a BSUID.
    let tap = pending.button_reply(SPAIN_DIGITS);
    deliver(&env, with_phone_and_username(tap, SPAIN_BSUID)).await;
    let requests = env.counter.take();
    assert!(
        requests.len() <= 3,
        "two lookups of the phone and one activation, got {requests:?}"
    );
    assert_eq!(env.session_of(&pending.key).await["status"], "active");
}

/// The phone `bsuid` was learned beside, if any.
async fn phone_of(env: &TestEnv, bsuid: &str) -> Option<String> {
    let bsuid = Bsuid::parse(bsuid).unwrap();
    env.app
        .store
        .bsuid_record(&bsuid)
        .await
        .unwrap()
        .and_then(|r| r.phone)
}

#[tokio::test]
async fn a_statuss_only_contact_without_a_phone_teaches_nothing() {
    let env = TestEnv::accepting().await;
    let pending = env.pending("u1", SPAIN_DIGITS).await;
    // The template's status names the phone, and beside it a contact that names none.
    let sent = pending.status("sent", SPAIN_DIGITS, T0 + 1);
    deliver(
        &env,
        beside_a_lone_contact(vec![], vec![sent], STRANGER_BSUID),
    )
    .await;
    assert_eq!(
        env.session_of(&pending.key).await["delivery"]["status"],
        "sent"
    );
    assert_eq!(phone_of(&env, STRANGER_BSUID).await, None);
    assert!(!env.session_item("u1").await.contains_key("bsuid"));
    // So that BSUID's tap activates nothing.
    let tap = pending.button_reply(SPAIN_DIGITS);
    deliver(&env, bsuid_only(tap, STRANGER_BSUID)).await;
    assert_eq!(env.session_of(&pending.key).await["status"], "pending");
}

#[tokio::test]
async fn messages_of_two_phones_beside_one_contact_without_a_phone_teach_neither() {
    let env = TestEnv::accepting().await;
    env.active("u1", SPAIN_DIGITS).await;
    env.active("u2", UK_DIGITS).await;
    let spain = inbound_text(SPAIN_DIGITS, "from spain", 40, 1);
    let uk = inbound_text(UK_DIGITS, "from the uk", 41, 2);
    deliver(
        &env,
        beside_a_lone_contact(vec![spain, uk], vec![], STRANGER_BSUID),
    )
    .await;
    assert_eq!(phone_of(&env, STRANGER_BSUID).await, None);
    // One phone's message beside its contact: the contact is that sender's.
    let spain = inbound_text(SPAIN_DIGITS, "again", 50, 3);
    deliver(
        &env,
        beside_a_lone_contact(vec![spain], vec![], SPAIN_BSUID),
    )
    .await;
    assert_eq!(
        phone_of(&env, SPAIN_BSUID).await.as_deref(),
        Some(SPAIN_DIGITS)
    );
}
