//! `verifyWhatsAppWebhook` and `receiveWhatsAppWebhook` (`GET`/`POST /v1/whatsapp/webhook` in
//! `openapi.yaml`): the handshake, signatures, and the replies that activate a session.

use base64::Engine as _;
use e2e::deliveries::{
    assert_received, button_reply, envelope, envelope_for, sign, status, text_reply, Pending,
};
use e2e::meta;
use e2e::{TestEnv, DAY, SPAIN_DIGITS, T0, UK_DIGITS, VERIFY_TOKEN};
use lambda_http::http::StatusCode;
use lambda_http::Body;
use serde_json::json;

#[tokio::test]
async fn button_reply_activates_the_session_for_seven_days() {
    let env = TestEnv::accepting().await;
    let Pending {
        key,
        id,
        wamid,
        payload,
        tag,
    } = env.pending("u1", SPAIN_DIGITS).await;
    assert_eq!(payload, format!("activate:{id}"));
    assert_eq!(
        tag,
        format!("act:{id}:u1"),
        "the template names its session for statuses"
    );
    env.clock.advance(60);
    env.deliver_messages(vec![button_reply(SPAIN_DIGITS, &payload, &wamid, 1)])
        .await;
    let s = env.session_of(&key).await;
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["status"], "active");
    assert_eq!(s["activatedAt"], sandbox::session::rfc3339(T0 + 60));
    assert_eq!(s["expiresAt"], sandbox::session::rfc3339(T0 + 60 + 7 * DAY));
    // The TTL attribute moved with it.
    let item = env.session_item("u1").await;
    assert_eq!(
        item["expiresAt"].as_n().unwrap(),
        &(T0 + 60 + 7 * DAY).to_string()
    );
    // Active for 7 days, then gone.
    env.clock.advance(7 * DAY - 1);
    assert_eq!(env.session_of(&key).await["status"], "active");
    env.clock.advance(1);
    assert_eq!(env.sessions(&key).await, json!([]));
}

#[tokio::test]
async fn text_reply_quoting_the_template_activates() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    // Another user's pending session for the same phone: context.id still picks ours.
    env.pending("u2", SPAIN_DIGITS).await;
    env.deliver_messages(vec![text_reply(
        SPAIN_DIGITS,
        "yes, activate",
        Some(&session.wamid),
        1,
    )])
    .await;
    assert_eq!(env.session_of(&session.key).await["status"], "active");
}

#[tokio::test]
async fn bare_text_activates_the_only_pending_session_of_the_phone() {
    let env = TestEnv::accepting().await;
    let key = env.pending("u1", SPAIN_DIGITS).await.key;
    env.deliver_messages(vec![text_reply(SPAIN_DIGITS, "hi", None, 1)])
        .await;
    assert_eq!(env.session_of(&key).await["status"], "active");
}

#[tokio::test]
async fn bare_text_with_two_users_pending_for_the_phone_activates_neither() {
    let env = TestEnv::accepting().await;
    let k1 = env.pending("u1", SPAIN_DIGITS).await.key;
    let k2 = env.pending("u2", SPAIN_DIGITS).await.key;
    let before = env.snapshot().await;
    env.deliver_messages(vec![text_reply(SPAIN_DIGITS, "hi", None, 1)])
        .await;
    assert_eq!(env.session_of(&k1).await["status"], "pending");
    assert_eq!(env.session_of(&k2).await["status"], "pending");
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn reply_to_an_expired_pending_session_does_not_activate() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    env.clock.advance(DAY);
    let before = env.snapshot().await;
    env.deliver_messages(vec![session.button_reply(SPAIN_DIGITS)])
        .await;
    assert_eq!(env.snapshot().await, before);
    assert_eq!(env.sessions(&session.key).await, json!([]));
}

#[tokio::test]
async fn reply_from_a_phone_with_no_session_is_acknowledged_and_changes_nothing() {
    let env = TestEnv::accepting().await;
    env.pending("u1", SPAIN_DIGITS).await;
    let before = env.snapshot().await;
    env.deliver_messages(vec![text_reply(UK_DIGITS, "hi", None, 1)])
        .await;
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn payload_naming_a_session_of_another_phone_does_not_activate_it() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    env.deliver_messages(vec![session.button_reply(UK_DIGITS)])
        .await;
    assert_eq!(env.session_of(&session.key).await["status"], "pending");
}

#[tokio::test]
async fn events_for_another_phone_number_id_are_ignored() {
    let env = TestEnv::accepting().await;
    let Pending {
        key,
        wamid,
        payload,
        ..
    } = env.pending("u1", SPAIN_DIGITS).await;
    let before = env.snapshot().await;
    let payload = envelope_for(
        "999999999999999",
        vec![button_reply(SPAIN_DIGITS, &payload, &wamid, 1)],
        vec![status(&wamid, "delivered", SPAIN_DIGITS, T0 + 5)],
    );
    assert_received(&env.deliver(&payload).await);
    assert_eq!(env.snapshot().await, before);
    assert_eq!(env.session_of(&key).await["status"], "pending");
}

#[tokio::test]
async fn duplicate_delivery_changes_nothing_the_second_time() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    let delivery = envelope(
        vec![session.button_reply(SPAIN_DIGITS)],
        vec![status(&session.wamid, "read", SPAIN_DIGITS, T0 + 20)],
    );
    assert_received(&env.deliver(&delivery).await);
    let after_first = env.snapshot().await;
    env.clock.advance(300);
    assert_received(&env.deliver(&delivery).await);
    assert_eq!(env.snapshot().await, after_first);
}

#[tokio::test]
async fn brazilian_reply_from_the_reported_wa_id_activates() {
    let env = TestEnv::new().await;
    // Sent to +55 11 98765-4321; Meta reports (and replies from) the number without the 9.
    meta::accept_with(&env.meta, Some("551187654321"), None).await;
    let key = env.pending("br", "5511987654321").await.key;
    env.deliver_messages(vec![text_reply("551187654321", "ok", None, 1)])
        .await;
    assert_eq!(env.session_of(&key).await["status"], "active");
}

#[tokio::test]
async fn mexican_reply_from_the_reported_wa_id_activates() {
    let env = TestEnv::new().await;
    // Sent to +52 55 1234 5678; Meta reports the old mobile form with the extra 1.
    meta::accept_with(&env.meta, Some("5215512345678"), None).await;
    let session = env.pending("mx", "525512345678").await;
    env.deliver_messages(vec![session.button_reply("5215512345678")])
        .await;
    assert_eq!(env.session_of(&session.key).await["status"], "active");
}

#[tokio::test]
async fn every_entry_change_message_and_status_of_a_batch_is_processed() {
    let env = TestEnv::accepting().await;
    let s1 = env.pending("u1", SPAIN_DIGITS).await;
    let s2 = env.pending("u2", UK_DIGITS).await;
    let s3 = env.pending("u3", "12025550243").await;
    let (k1, k2, k3) = (&s1.key, &s2.key, &s3.key);
    let first = envelope(
        vec![button_reply(SPAIN_DIGITS, &s1.payload, &s1.wamid, 1)],
        vec![s3.status("delivered", "12025550243", T0 + 3)],
    );
    let second = envelope(
        vec![text_reply(UK_DIGITS, "ok", Some(&s2.wamid), 2)],
        vec![s1.status("read", SPAIN_DIGITS, T0 + 4)],
    );
    let mut batch = first.clone();
    let second_entry = second["entry"][0].clone();
    batch["entry"].as_array_mut().unwrap().push(second_entry);
    // And a second change inside the first entry.
    let extra_change = envelope(vec![], vec![s2.status("sent", UK_DIGITS, T0 + 2)])["entry"][0]
        ["changes"][0]
        .clone();
    batch["entry"][0]["changes"]
        .as_array_mut()
        .unwrap()
        .push(extra_change);
    assert_received(&env.deliver(&batch).await);
    let v1 = env.session_of(k1).await;
    assert_eq!(v1["status"], "active");
    assert_eq!(v1["delivery"]["status"], "read");
    let v2 = env.session_of(k2).await;
    assert_eq!(v2["status"], "active");
    assert_eq!(v2["delivery"]["status"], "sent");
    let v3 = env.session_of(k3).await;
    assert_eq!(v3["status"], "pending");
    assert_eq!(v3["delivery"]["status"], "delivered");
}

#[tokio::test]
async fn wrong_missing_or_truncated_signature_is_401_and_changes_nothing() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    let body = envelope(vec![session.button_reply(SPAIN_DIGITS)], vec![]).to_string();
    let good = sign(&body);
    let wrong = sandbox::meta::signature::sign(b"not-the-app-secret", body.as_bytes());
    let before = env.snapshot().await;
    for sig in [
        None,
        Some(wrong.as_str()),
        Some(&good[..good.len() - 1]),
        Some(&good[..20]),
        Some(good.trim_start_matches("sha256=")),
        Some("sha256="),
    ] {
        let reply = env.webhook_raw(Body::Text(body.clone()), sig).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{sig:?}");
        assert_eq!(reply.json()["type"], "authentication_error");
        assert_eq!(reply.json()["code"], "invalid_signature");
    }
    // A body changed after signing.
    let tampered = body.replace("Activate", "Activatf");
    let reply = env.webhook_raw(Body::Text(tampered), Some(&good)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(env.snapshot().await, before);
    assert_eq!(env.session_of(&session.key).await["status"], "pending");
}

#[tokio::test]
async fn base64_encoded_body_from_api_gateway_is_verified_on_its_decoded_bytes() {
    let env = TestEnv::accepting().await;
    let session = env.pending("u1", SPAIN_DIGITS).await;
    // Non-ASCII as Meta sends it (escaped), then base64 as API Gateway may deliver it.
    let body = envelope(vec![session.button_reply(SPAIN_DIGITS)], vec![])
        .to_string()
        .replace("\"Ana\"", "\"Ana \\u00e9\"");
    let sig = sign(&body);
    let encoded = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let reply = env.webhook_raw(Body::Binary(decoded), Some(&sig)).await;
    assert_received(&reply);
    assert_eq!(env.session_of(&session.key).await["status"], "active");
}

#[tokio::test]
async fn signed_malformed_json_is_acknowledged_and_changes_nothing() {
    let env = TestEnv::accepting().await;
    env.pending("u1", SPAIN_DIGITS).await;
    let before = env.snapshot().await;
    for body in ["{not json", "[]", "{\"entry\": 5}"] {
        let reply = env
            .webhook_raw(Body::Text(body.into()), Some(&sign(body)))
            .await;
        assert_received(&reply);
    }
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged() {
    let env = TestEnv::accepting().await;
    let key = env.pending("u1", SPAIN_DIGITS).await.key;
    let mut payload = envelope(
        vec![
            json!({"from": SPAIN_DIGITS, "id": "wamid.S", "type": "system", "system": {"body": "changed number"}}),
        ],
        vec![],
    );
    payload["entry"][0]["changes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"field": "account_update", "value": {"event": "X"}}));
    assert_received(&env.deliver(&payload).await);
    assert_eq!(env.session_of(&key).await["status"], "pending");
}

#[tokio::test]
async fn handshake_with_the_right_token_echoes_the_challenge_as_plain_text() {
    let env = TestEnv::new().await;
    let reply = env
        .handshake(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", VERIFY_TOKEN),
            ("hub.challenge", "1158201444"),
        ])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text, "1158201444");
    assert_eq!(reply.header("content-type"), Some("text/plain"));
}

#[tokio::test]
async fn handshake_with_a_wrong_token_or_mode_is_403() {
    let env = TestEnv::new().await;
    for params in [
        vec![
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "wrong"),
            ("hub.challenge", "1"),
        ],
        vec![
            ("hub.mode", "unsubscribe"),
            ("hub.verify_token", VERIFY_TOKEN),
            ("hub.challenge", "1"),
        ],
        vec![("hub.mode", "subscribe"), ("hub.challenge", "1")],
        vec![],
    ] {
        let reply = env.handshake(&params).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{params:?}");
        assert_ne!(reply.text, "1");
    }
}
