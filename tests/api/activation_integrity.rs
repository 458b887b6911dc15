//! Activation integrity on `receiveWhatsAppWebhook` (`openapi.yaml`; README "Architecture"):
//! only the phone owner's answer to *this* template activates, exactly once; STOP always stops;
//! a delivery costs a bounded number of DynamoDB requests however many statuses it carries.

use e2e::deliveries::{button_reply, envelope, status, tagged, text_at};
use e2e::meta;
use e2e::{TestEnv, SPAIN, SPAIN_DIGITS, T0};
use serde_json::json;

/// Consent: P chats with user A's bot (A's session is active); stranger B creates a session
/// for P; P's next ordinary message, which quotes no template, must not activate B's session.
#[tokio::test]
async fn a_strangers_session_stays_pending_after_a_plain_message_while_the_owner_is_active_elsewhere(
) {
    let env = TestEnv::accepting().await;
    let a = env.pending("user-a", SPAIN_DIGITS).await;
    env.deliver_messages(vec![a.button_reply(SPAIN_DIGITS)])
        .await;
    assert_eq!(env.session_of(&a.key).await["status"], "active");

    env.clock.advance(60);
    let b = env.pending("user-b", SPAIN_DIGITS).await;
    env.deliver_messages(vec![text_at(SPAIN_DIGITS, "thanks, bot!", T0 + 90, 7)])
        .await;
    assert_eq!(env.session_of(&b.key).await["status"], "pending");
    assert_eq!(env.session_of(&a.key).await["status"], "active");

    // B's own template answered by P still activates B.
    let mut tap = button_reply(SPAIN_DIGITS, &b.payload, &b.wamid, 8);
    tap["timestamp"] = json!((T0 + 95).to_string());
    env.deliver_messages(vec![tap]).await;
    assert_eq!(env.session_of(&b.key).await["status"], "active");
}

/// Replay: a plain "ok" activates P's session; the user revokes it and creates a new one in the
/// same second; Meta redelivers the same "ok": the new session must stay pending.
#[tokio::test]
async fn a_replayed_delivery_activates_nothing() {
    let env = TestEnv::accepting().await;
    let first = env.pending("u1", SPAIN_DIGITS).await;
    let ok = envelope(vec![text_at(SPAIN_DIGITS, "ok", T0, 1)], vec![]);
    e2e::deliveries::assert_received(&env.deliver(&ok).await);
    assert_eq!(env.session_of(&first.key).await["status"], "active");

    assert_eq!(
        env.revoke(Some(&first.key), &first.id).await.json(),
        json!({"success": true})
    );
    let again = env.create(&first.key, SPAIN).await;
    assert_eq!(again.json()["session"]["status"], "pending");
    let before = env.snapshot().await;

    e2e::deliveries::assert_received(&env.deliver(&ok).await);
    assert_eq!(env.session_of(&first.key).await["status"], "pending");
    assert_eq!(env.snapshot().await, before, "a redelivery changes nothing");
}

/// A reply sent before the session's latest template never activates it, even with no other
/// session around; one in the very second of the send does (Meta's timestamps are whole
/// seconds).
#[tokio::test]
async fn a_reply_older_than_the_latest_template_never_activates_it() {
    let env = TestEnv::accepting().await;
    env.clock.advance(100);
    let session = env.pending("u1", SPAIN_DIGITS).await;
    env.deliver_messages(vec![text_at(SPAIN_DIGITS, "hello?", T0 + 99, 1)])
        .await;
    assert_eq!(env.session_of(&session.key).await["status"], "pending");
    env.deliver_messages(vec![text_at(SPAIN_DIGITS, "ok", T0 + 100, 2)])
        .await;
    assert_eq!(env.session_of(&session.key).await["status"], "active");
}

/// Ordering: P sends STOP and then START; Meta delivers START first. The STOP must still
/// delete the session it came after, and P is not opted out (START was the later message).
#[tokio::test]
async fn stop_after_a_later_start_still_deletes_the_session() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    env.deliver_messages(vec![text_at(SPAIN_DIGITS, "START", T0 + 20, 2)])
        .await;
    env.deliver_messages(vec![text_at(SPAIN_DIGITS, "STOP", T0 + 10, 1)])
        .await;
    assert_eq!(env.sessions(&session.key).await, json!([]));
    assert!(
        !env.opted_out(SPAIN_DIGITS).await,
        "the later START decides the flag"
    );
}

/// A Brazilian owner whose WhatsApp reports the number without the ninth digit: the session
/// was stored without a `wa_id` (Meta's answer carried none), and the reply from the 12-digit
/// form still activates it.
#[tokio::test]
async fn a_brazilian_owner_replying_from_the_twelve_digit_form_activates_a_session_without_wa_id() {
    let env = TestEnv::new().await;
    meta::answer(
        &env.meta,
        200,
        json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.BR0001"}]}),
    )
    .await;
    let key = env.api_key("u1").await;
    let reply = env.create(&key, "+55 11 98765-4321").await;
    assert_eq!(reply.json()["session"]["phoneE164"], "5511987654321");
    assert!(!env.session_item("u1").await.contains_key("waId"));

    env.deliver_messages(vec![text_at("551187654321", "sim", T0 + 5, 1)])
        .await;
    assert_eq!(env.session_of(&key).await["status"], "active");
}

/// One signed delivery with 1,000 statuses of messages that are not activation templates and
/// one activation reply costs a handful of DynamoDB requests, not thousands, and activates.
#[tokio::test]
async fn a_delivery_with_a_thousand_foreign_statuses_costs_a_handful_of_requests() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    let mut statuses: Vec<_> = (0..1_000)
        .map(|i| {
            let recipient = format!("3469{i:07}");
            status(
                &format!("wamid.OTHER{i:05}"),
                "delivered",
                &recipient,
                T0 + 3,
            )
        })
        .collect();
    // One more carries another system's tag: also not ours.
    statuses.push(tagged(
        status("wamid.CAMPAIGN", "read", "34611111111", T0 + 3),
        "campaign-7",
    ));
    let delivery = envelope(vec![session.button_reply(SPAIN_DIGITS)], statuses);
    env.counter.reset();
    e2e::deliveries::assert_received(&env.deliver(&delivery).await);
    let requests = env.counter.take();
    assert!(
        requests.len() <= 4,
        "two lookups of the phone and one activation, got {requests:?}"
    );
    assert_eq!(env.session_of(&session.key).await["status"], "active");
}
