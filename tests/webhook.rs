//! The activation webhook: handshake, signatures, activation, opt-out, delivery statuses.

use base64::Engine as _;
use e2e::meta::{self, payload_of};
use e2e::webhook::{
    button_reply, envelope, envelope_for, failed_status, sign, status, text_at, text_reply,
};
use e2e::{TestEnv, T0, VERIFY_TOKEN};
use lambda_http::http::StatusCode;
use lambda_http::Body;
use serde_json::{json, Value};

const SPAIN: &str = "34688246216";
const DAY: i64 = 86_400;

async fn env_accepting() -> TestEnv {
    let env = TestEnv::new().await;
    meta::accept(&env.meta).await;
    env
}

/// Creates a session for `user` on `phone`; returns (key, session id, activation message id, payload).
async fn pending(env: &TestEnv, user: &str, phone: &str) -> (String, String, String, String) {
    let key = env.api_key(user).await;
    let reply = env.create(&key, &format!("+{phone}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let id = reply.json()["session"]["id"].as_str().unwrap().to_owned();
    let sent = env.sent_templates().await;
    let template = sent
        .iter()
        .rev()
        .find(|t| payload_of(t).ends_with(&id))
        .expect("a template for this session");
    let item = env.session_item(user).await;
    let wamid = item["activationMessageId"].as_s().unwrap().clone();
    (key, id, wamid, payload_of(template))
}

async fn session_of(env: &TestEnv, key: &str) -> Value {
    env.list(Some(key)).await.json()["sessions"][0].clone()
}

/// Delivers `statuses` (and no messages), signed, and expects the 200 acknowledgement.
async fn deliver_statuses(env: &TestEnv, statuses: Vec<Value>) {
    assert_received(&env.deliver(&envelope(vec![], statuses)).await);
}

fn assert_received(reply: &e2e::Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json(), json!({"received": true}));
}

// ---------- The story ----------

#[tokio::test]
async fn button_reply_activates_the_session_for_seven_days() {
    let env = env_accepting().await;
    let (key, id, wamid, payload) = pending(&env, "u1", SPAIN).await;
    assert_eq!(payload, format!("activate:{id}"));
    env.clock.advance(60);
    let reply = env
        .deliver(&envelope(
            vec![button_reply(SPAIN, &payload, &wamid, 1)],
            vec![],
        ))
        .await;
    assert_received(&reply);
    let s = session_of(&env, &key).await;
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
    assert_eq!(session_of(&env, &key).await["status"], "active");
    env.clock.advance(1);
    assert_eq!(env.list(Some(&key)).await.json()["sessions"], json!([]));
}

#[tokio::test]
async fn text_reply_quoting_the_template_activates() {
    let env = env_accepting().await;
    let (key, _, wamid, _) = pending(&env, "u1", SPAIN).await;
    // Another user's pending session for the same phone: context.id still picks ours.
    pending(&env, "u2", SPAIN).await;
    let reply = env
        .deliver(&envelope(
            vec![text_reply(SPAIN, "yes, activate", Some(&wamid), 1)],
            vec![],
        ))
        .await;
    assert_received(&reply);
    assert_eq!(session_of(&env, &key).await["status"], "active");
}

#[tokio::test]
async fn bare_text_activates_the_only_pending_session_of_the_phone() {
    let env = env_accepting().await;
    let (key, _, _, _) = pending(&env, "u1", SPAIN).await;
    assert_received(
        &env.deliver(&envelope(vec![text_reply(SPAIN, "hi", None, 1)], vec![]))
            .await,
    );
    assert_eq!(session_of(&env, &key).await["status"], "active");
}

#[tokio::test]
async fn bare_text_with_two_users_pending_for_the_phone_activates_neither() {
    let env = env_accepting().await;
    let (k1, _, _, _) = pending(&env, "u1", SPAIN).await;
    let (k2, _, _, _) = pending(&env, "u2", SPAIN).await;
    let before = env.snapshot().await;
    assert_received(
        &env.deliver(&envelope(vec![text_reply(SPAIN, "hi", None, 1)], vec![]))
            .await,
    );
    assert_eq!(session_of(&env, &k1).await["status"], "pending");
    assert_eq!(session_of(&env, &k2).await["status"], "pending");
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn reply_to_an_expired_pending_session_does_not_activate() {
    let env = env_accepting().await;
    let (key, _, wamid, payload) = pending(&env, "u1", SPAIN).await;
    env.clock.advance(DAY);
    let before = env.snapshot().await;
    assert_received(
        &env.deliver(&envelope(
            vec![button_reply(SPAIN, &payload, &wamid, 1)],
            vec![],
        ))
        .await,
    );
    assert_eq!(env.snapshot().await, before);
    assert_eq!(env.list(Some(&key)).await.json()["sessions"], json!([]));
}

#[tokio::test]
async fn reply_from_a_phone_with_no_session_is_acknowledged_and_changes_nothing() {
    let env = env_accepting().await;
    pending(&env, "u1", SPAIN).await;
    let before = env.snapshot().await;
    assert_received(
        &env.deliver(&envelope(
            vec![text_reply("447400123456", "hi", None, 1)],
            vec![],
        ))
        .await,
    );
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn payload_naming_a_session_of_another_phone_does_not_activate_it() {
    let env = env_accepting().await;
    let (key, _, wamid, payload) = pending(&env, "u1", SPAIN).await;
    assert_received(
        &env.deliver(&envelope(
            vec![button_reply("447400123456", &payload, &wamid, 1)],
            vec![],
        ))
        .await,
    );
    assert_eq!(session_of(&env, &key).await["status"], "pending");
}

#[tokio::test]
async fn events_for_another_phone_number_id_are_ignored() {
    let env = env_accepting().await;
    let (key, _, wamid, payload) = pending(&env, "u1", SPAIN).await;
    let before = env.snapshot().await;
    let payload = envelope_for(
        "999999999999999",
        vec![button_reply(SPAIN, &payload, &wamid, 1)],
        vec![status(&wamid, "delivered", SPAIN, T0 + 5)],
    );
    assert_received(&env.deliver(&payload).await);
    assert_eq!(env.snapshot().await, before);
    assert_eq!(session_of(&env, &key).await["status"], "pending");
}

#[tokio::test]
async fn duplicate_delivery_changes_nothing_the_second_time() {
    let env = env_accepting().await;
    let (_, _, wamid, payload) = pending(&env, "u1", SPAIN).await;
    let delivery = envelope(
        vec![button_reply(SPAIN, &payload, &wamid, 1)],
        vec![status(&wamid, "read", SPAIN, T0 + 20)],
    );
    assert_received(&env.deliver(&delivery).await);
    let after_first = env.snapshot().await;
    env.clock.advance(300);
    assert_received(&env.deliver(&delivery).await);
    assert_eq!(env.snapshot().await, after_first);
}

// ---------- Brazil and Mexico: Meta's wa_id differs from the number we sent to ----------

#[tokio::test]
async fn brazilian_reply_from_the_reported_wa_id_activates() {
    let env = TestEnv::new().await;
    // Sent to +55 11 98765-4321; Meta reports (and replies from) the number without the 9.
    meta::accept_with(&env.meta, Some("551187654321"), None).await;
    let (key, _, _, _) = pending(&env, "br", "5511987654321").await;
    assert_received(
        &env.deliver(&envelope(
            vec![text_reply("551187654321", "ok", None, 1)],
            vec![],
        ))
        .await,
    );
    assert_eq!(session_of(&env, &key).await["status"], "active");
}

#[tokio::test]
async fn mexican_reply_from_the_reported_wa_id_activates() {
    let env = TestEnv::new().await;
    // Sent to +52 55 1234 5678; Meta reports the old mobile form with the extra 1.
    meta::accept_with(&env.meta, Some("5215512345678"), None).await;
    let (key, _, wamid, payload) = pending(&env, "mx", "525512345678").await;
    assert_received(
        &env.deliver(&envelope(
            vec![button_reply("5215512345678", &payload, &wamid, 1)],
            vec![],
        ))
        .await,
    );
    assert_eq!(session_of(&env, &key).await["status"], "active");
}

// ---------- Batches ----------

#[tokio::test]
async fn every_entry_change_message_and_status_of_a_batch_is_processed() {
    let env = env_accepting().await;
    let (k1, _, w1, p1) = pending(&env, "u1", SPAIN).await;
    let (k2, _, w2, _) = pending(&env, "u2", "447400123456").await;
    let (k3, _, w3, _) = pending(&env, "u3", "12025550143").await;
    let first = envelope(
        vec![button_reply(SPAIN, &p1, &w1, 1)],
        vec![status(&w3, "delivered", "12025550143", T0 + 3)],
    );
    let second = envelope(
        vec![text_reply("447400123456", "ok", Some(&w2), 2)],
        vec![status(&w1, "read", SPAIN, T0 + 4)],
    );
    let mut batch = first.clone();
    let second_entry = second["entry"][0].clone();
    batch["entry"].as_array_mut().unwrap().push(second_entry);
    // And a second change inside the first entry.
    let extra_change = envelope(vec![], vec![status(&w2, "sent", "447400123456", T0 + 2)])["entry"]
        [0]["changes"][0]
        .clone();
    batch["entry"][0]["changes"]
        .as_array_mut()
        .unwrap()
        .push(extra_change);
    assert_received(&env.deliver(&batch).await);
    let s1 = session_of(&env, &k1).await;
    assert_eq!(s1["status"], "active");
    assert_eq!(s1["delivery"]["status"], "read");
    let s2 = session_of(&env, &k2).await;
    assert_eq!(s2["status"], "active");
    assert_eq!(s2["delivery"]["status"], "sent");
    let s3 = session_of(&env, &k3).await;
    assert_eq!(s3["status"], "pending");
    assert_eq!(s3["delivery"]["status"], "delivered");
}

// ---------- Signatures ----------

#[tokio::test]
async fn wrong_missing_or_truncated_signature_is_401_and_changes_nothing() {
    let env = env_accepting().await;
    let (key, _, wamid, payload) = pending(&env, "u1", SPAIN).await;
    let body = envelope(vec![button_reply(SPAIN, &payload, &wamid, 1)], vec![]).to_string();
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
    assert_eq!(session_of(&env, &key).await["status"], "pending");
}

#[tokio::test]
async fn base64_encoded_body_from_api_gateway_is_verified_on_its_decoded_bytes() {
    let env = env_accepting().await;
    let (key, _, wamid, payload) = pending(&env, "u1", SPAIN).await;
    // Non-ASCII as Meta sends it (escaped), then base64 as API Gateway may deliver it.
    let body = envelope(vec![button_reply(SPAIN, &payload, &wamid, 1)], vec![])
        .to_string()
        .replace("\"Ana\"", "\"Ana \\u00e9\"");
    let sig = sign(&body);
    let encoded = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let reply = env.webhook_raw(Body::Binary(decoded), Some(&sig)).await;
    assert_received(&reply);
    assert_eq!(session_of(&env, &key).await["status"], "active");
}

#[tokio::test]
async fn signed_malformed_json_is_acknowledged_and_changes_nothing() {
    let env = env_accepting().await;
    pending(&env, "u1", SPAIN).await;
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
    let env = env_accepting().await;
    let (key, _, _, _) = pending(&env, "u1", SPAIN).await;
    let mut payload = envelope(
        vec![
            json!({"from": SPAIN, "id": "wamid.S", "type": "system", "system": {"body": "changed number"}}),
        ],
        vec![],
    );
    payload["entry"][0]["changes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"field": "account_update", "value": {"event": "X"}}));
    assert_received(&env.deliver(&payload).await);
    assert_eq!(session_of(&env, &key).await["status"], "pending");
}

#[tokio::test]
async fn transient_storage_failure_is_503_so_meta_retries() {
    let env = env_accepting().await;
    let app = env.app_with_unreachable_dynamodb();
    let body = envelope(vec![text_reply(SPAIN, "hi", None, 1)], vec![]).to_string();
    let mut req = e2e::request(
        lambda_http::http::Method::POST,
        "/v1/whatsapp/webhook",
        None,
        Body::Text(body.clone()),
    );
    req.headers_mut()
        .insert("x-hub-signature-256", sign(&body).parse().unwrap());
    let reply = e2e::finish(
        "POST",
        "/v1/whatsapp/webhook",
        sandbox::api::webhook::handle(&app, req).await,
    );
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["code"], "service_unavailable");
}

// ---------- Handshake ----------

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

// ---------- Opt-out ----------

#[tokio::test]
async fn stop_deletes_every_session_of_the_phone_and_start_lifts_the_block() {
    let env = env_accepting().await;
    let (k1, _, _, _) = pending(&env, "u1", SPAIN).await;
    let (k2, _, _, _) = pending(&env, "u2", SPAIN).await;
    let (k3, _, _, _) = pending(&env, "u3", "447400123456").await;
    assert_received(
        &env.deliver(&envelope(
            vec![text_at(SPAIN, "  Stop ", T0 + 100, 1)],
            vec![],
        ))
        .await,
    );
    assert_eq!(env.list(Some(&k1)).await.json()["sessions"], json!([]));
    assert_eq!(env.list(Some(&k2)).await.json()["sessions"], json!([]));
    assert_eq!(
        session_of(&env, &k3).await["status"],
        "pending",
        "other phones untouched"
    );
    let record = env.app.store.opt_out(SPAIN).await.unwrap().unwrap();
    assert!(record.opted_out);

    assert_received(
        &env.deliver(&envelope(
            vec![text_at(SPAIN, "start", T0 + 200, 2)],
            vec![],
        ))
        .await,
    );
    assert!(
        !env.app
            .store
            .opt_out(SPAIN)
            .await
            .unwrap()
            .unwrap()
            .opted_out
    );

    // A new session after START survives a replay of the old STOP, and the block stays lifted.
    env.clock.set(T0 + 300);
    let (k4, _, _, _) = pending(&env, "u4", SPAIN).await;
    assert_received(
        &env.deliver(&envelope(vec![text_at(SPAIN, "STOP", T0 + 100, 1)], vec![]))
            .await,
    );
    assert_eq!(session_of(&env, &k4).await["status"], "pending");
    assert!(
        !env.app
            .store
            .opt_out(SPAIN)
            .await
            .unwrap()
            .unwrap()
            .opted_out
    );
}

#[tokio::test]
async fn every_opt_out_keyword_is_honoured() {
    let env = env_accepting().await;
    for (i, word) in ["STOP", "stop all", "UNSUBSCRIBE", "cancel", "End", "QUIT"]
        .iter()
        .enumerate()
    {
        let t = T0 + 10 * (i as i64 + 1);
        env.clock.set(t);
        let (key, _, _, _) = pending(&env, &format!("u{i}"), SPAIN).await;
        assert_received(
            &env.deliver(&envelope(
                vec![text_at(SPAIN, word, t + 1, i as u32)],
                vec![],
            ))
            .await,
        );
        assert_eq!(
            env.list(Some(&key)).await.json()["sessions"],
            json!([]),
            "{word}"
        );
        assert!(
            env.app
                .store
                .opt_out(SPAIN)
                .await
                .unwrap()
                .unwrap()
                .opted_out,
            "{word}"
        );
        assert_received(
            &env.deliver(&envelope(
                vec![text_at(SPAIN, "UNSTOP", t + 2, 100 + i as u32)],
                vec![],
            ))
            .await,
        );
    }
}

// ---------- Delivery statuses ----------

#[tokio::test]
async fn statuses_in_order_are_recorded_and_visible_in_list_and_create() {
    let env = env_accepting().await;
    let (key, _, wamid, _) = pending(&env, "u1", SPAIN).await;
    for (i, st) in ["sent", "delivered", "read"].iter().enumerate() {
        let t = T0 + 10 + i as i64;
        deliver_statuses(&env, vec![status(&wamid, st, SPAIN, t)]).await;
        let s = session_of(&env, &key).await;
        assert_eq!(s["delivery"]["status"], *st);
        assert_eq!(s["delivery"]["updatedAt"], sandbox::session::rfc3339(t));
    }
}

#[tokio::test]
async fn out_of_order_statuses_never_move_backwards() {
    let env = env_accepting().await;
    let (key, _, wamid, _) = pending(&env, "u1", SPAIN).await;
    deliver_statuses(&env, vec![status(&wamid, "read", SPAIN, T0 + 12)]).await;
    deliver_statuses(&env, vec![status(&wamid, "delivered", SPAIN, T0 + 11)]).await;
    deliver_statuses(&env, vec![status(&wamid, "sent", SPAIN, T0 + 10)]).await;
    let s = session_of(&env, &key).await;
    assert_eq!(s["delivery"]["status"], "read");
    assert_eq!(
        s["delivery"]["updatedAt"],
        sandbox::session::rfc3339(T0 + 12)
    );
}

#[tokio::test]
async fn failed_status_with_metas_error_is_visible_in_list() {
    let env = env_accepting().await;
    let (key, _, wamid, _) = pending(&env, "u1", SPAIN).await;
    deliver_statuses(&env, vec![status(&wamid, "sent", SPAIN, T0 + 5)]).await;
    deliver_statuses(&env, vec![failed_status(&wamid, SPAIN, T0 + 9)]).await;
    let s = session_of(&env, &key).await;
    assert_eq!(s["status"], "pending");
    assert_eq!(
        s["delivery"],
        json!({"status": "failed", "updatedAt": sandbox::session::rfc3339(T0 + 9),
               "error": {"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                         "details": "Message Undeliverable."}})
    );
    // A refresh sends a new template and starts a fresh delivery report.
    let again = env.create(&key, "+34688246216").await.json();
    assert!(again["session"].get("delivery").is_none(), "{again}");
}

#[tokio::test]
async fn status_for_an_older_activation_message_is_not_recorded() {
    let env = env_accepting().await;
    let (key, _, first_wamid, _) = pending(&env, "u1", SPAIN).await;
    env.create(&key, "+34688246216").await; // refresh: a new message id
    deliver_statuses(&env, vec![failed_status(&first_wamid, SPAIN, T0 + 9)]).await;
    assert!(session_of(&env, &key).await.get("delivery").is_none());
}
