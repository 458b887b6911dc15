//! `createWhatsAppSandboxSession` (`POST /v1/whatsapp/sandbox/sessions` in `openapi.yaml`):
//! body validation, phone normalization, and what a new, pending, active, other-phone or
//! expired session makes of a create.

use e2e::meta::payload_of;
use e2e::{assert_error, TestEnv, DAY, NOT_FOUND, SANDBOX_NUMBER, SPAIN, SPAIN_DIGITS, T0, UK};
use lambda_http::http::StatusCode;
use sandbox::session::SessionId;
use sandbox::store::ItemKind;
use serde_json::{json, Value};

#[tokio::test]
async fn create_body_not_json_or_not_object_is_invalid_json() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    for body in [
        "",
        "not json",
        "[1,2]",
        "\"+34688246216\"",
        "{\"phone\":",
        "null",
    ] {
        let reply = env.create_raw(Some(&key), body.to_owned()).await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
        );
    }
    assert!(env.sent_templates().await.is_empty());
    assert!(env
        .snapshot()
        .await
        .iter()
        .all(|i| ItemKind::ApiKey.owns(i["pk"].as_s().unwrap())));
}

#[tokio::test]
async fn create_body_over_8_kib_is_413_payload_too_large() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let big = json!({"phone": SPAIN, "pad": "x".repeat(8 * 1024)}).to_string();
    let reply = env.create_raw(Some(&key), big).await;
    assert_error(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "payload_too_large",
    );
    // Exactly 8 KiB is still accepted.
    let mut body = json!({"phone": SPAIN, "pad": ""}).to_string();
    let pad = 8 * 1024 - body.len();
    body = json!({"phone": SPAIN, "pad": "x".repeat(pad)}).to_string();
    assert_eq!(body.len(), 8 * 1024);
    assert_eq!(
        env.create_raw(Some(&key), body).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn create_phone_missing_not_a_string_or_invalid_is_invalid_field_value() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let cases = [
        (json!({}), "required"),
        (json!({"phone": null}), "required"),
        (json!({"phone": 34688246216u64}), "must be a string"),
        (json!({"phone": ["+34688246216"]}), "must be a string"),
        (json!({"phone": "+34 68a 246 216"}), "'a'"),
        (json!({"phone": "++34688246216"}), "single +"),
        (json!({"phone": "+34+688246216"}), "single +"),
        (json!({"phone": "+٣٤٦٨٨٢٤٦٢١٦"}), "only digits"),
        (json!({"phone": "+３４６８８２４６２１６"}), "only digits"),
        (json!({"phone": "+34 6"}), "too short"),
        (json!({"phone": "+346882462161234567"}), "too long"),
        (json!({"phone": "+999 123 456 789"}), "not a valid"),
        (json!({"phone": "+1 555 0100"}), "not a valid"),
        (json!({"phone": ""}), "empty"),
        // The shape openapi.yaml's `PhoneInput` declares: only spaces around, 32 characters.
        (json!({"phone": "\t+34688246216"}), "only digits"),
        (json!({"phone": "+34688246216\n"}), "only digits"),
        (
            json!({"phone": format!("+34 688 246 216{}", " ".repeat(18))}),
            "at most 32 characters",
        ),
    ];
    for (body, says) in cases {
        let reply = env.create_raw(Some(&key), body.to_string()).await;
        let err = assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_field_value",
        );
        assert_eq!(err["param"], "phone", "{body}");
        let msg = err["error"].as_str().unwrap();
        assert!(msg.contains(says), "{body}: {msg:?} should say {says:?}");
    }
    assert!(env.sent_templates().await.is_empty());
}

#[tokio::test]
async fn phones_from_many_countries_and_spellings_normalize_to_e164_digits() {
    let env = TestEnv::accepting().await;
    let cases: &[(&[&str], &str)] = &[
        (
            &["+34 688-246-216", "34688246216", "+34 (688) 24.62.16"],
            "34688246216",
        ), // Spain
        (
            &["+44 7400 123456", "447400123456", "+44 (7400) 123-456"],
            "447400123456",
        ), // UK
        (
            &["+1 (202) 555-0243", "12025550243", "+1.202.555.0243"],
            "12025550243",
        ), // USA
        (&["+49 1512 3456789", "+49-151-23456789"], "4915123456789"), // Germany
        (&["+33 6 12 34 56 78", "33612345678"], "33612345678"),       // France
        (&["+55 11 98765-4321", "5511987654321"], "5511987654321"),   // Brazil
        (
            &["+52 55 1234 5678", "525512345678", "+52 (55) 1234-5678"],
            "525512345678",
        ), // Mexico
        (&["+91 98765 43210", "919876543210"], "919876543210"),       // India
        (&["+81 90-1234-5678", "819012345678"], "819012345678"),      // Japan
        (&["+234 803 123 4567", "2348031234567"], "2348031234567"),   // Nigeria
        (&["+61 412 345 678", "61412345678"], "61412345678"),         // Australia
        (&["+54 9 11 2345-6789", "5491123456789"], "5491123456789"),  // Argentina
        (&["+39 312 345 6789", "393123456789"], "393123456789"),      // Italy
        (&["+971 50 123 4567", "971501234567"], "971501234567"),      // UAE
    ];
    for (i, (spellings, digits)) in cases.iter().enumerate() {
        for (j, spelling) in spellings.iter().enumerate() {
            // A user per spelling, so each create is a fresh session.
            let key = env.api_key(&format!("u{i}-{j}")).await;
            let reply = env.create(&key, spelling).await;
            assert_eq!(reply.status, StatusCode::OK, "{spelling}: {}", reply.text);
            assert_eq!(reply.json()["session"]["phoneE164"], *digits, "{spelling}");
        }
    }
    let sent = env.sent_templates().await;
    assert!(
        sent.iter()
            .all(|t| t["to"].as_str().unwrap().starts_with('+')),
        "sent as + and digits"
    );
}

#[tokio::test]
async fn no_live_session_creates_pending_session_and_sends_template() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let reply = env.create(&key, SPAIN).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let s = &body["session"];
    let id = s["id"].as_str().unwrap();
    assert!(SessionId::parse(id).is_some(), "{id}");
    assert_eq!(s["phoneE164"], SPAIN_DIGITS);
    assert_eq!(s["status"], "pending");
    assert_eq!(s["createdAt"], "2036-11-24T14:15:22Z");
    assert_eq!(s["expiresAt"], "2036-11-25T14:15:22Z");
    assert_eq!(s["activatedAt"], Value::Null);
    assert_eq!(body["sandboxNumber"], SANDBOX_NUMBER);

    let sent = env.sent_templates().await;
    assert_eq!(sent.len(), 1);
    let t = &sent[0];
    assert_eq!(t["messaging_product"], "whatsapp");
    assert_eq!(t["to"], "+34688246216");
    assert_eq!(t["type"], "template");
    assert_eq!(t["template"]["name"], "sandbox_start");
    assert_eq!(t["template"]["language"]["code"], "en_US");
    assert_eq!(payload_of(t), format!("activate:{id}"));

    // Meta's message id and wa_id are stored for the webhook.
    let item = env.session_item("u1").await;
    assert_eq!(
        item["activationMessageId"].as_s().unwrap(),
        "wamid.TEST000000"
    );
    assert_eq!(item["waId"].as_s().unwrap(), SPAIN_DIGITS);
    assert_eq!(item["expiresAt"].as_n().unwrap(), &(T0 + DAY).to_string());

    let list = env.list(Some(&key)).await.json();
    assert_eq!(list["sessions"][0]["id"], id);
}

#[tokio::test]
async fn live_pending_same_phone_keeps_id_and_created_at_refreshes_expiry_and_resends() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let first = env.create(&key, SPAIN).await.json()["session"].clone();
    env.clock.advance(3_600);
    // Another spelling of the same number.
    let reply = env.create(&key, "+34688246216").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let second = &reply.json()["session"];
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["createdAt"], first["createdAt"]);
    assert_eq!(second["status"], "pending");
    assert_eq!(second["expiresAt"], "2036-11-25T15:15:22Z");
    let sent = env.sent_templates().await;
    assert_eq!(sent.len(), 2);
    assert_eq!(payload_of(&sent[1]), payload_of(&sent[0]));
    // The new message id replaces the old one, and list agrees.
    let item = env.session_item("u1").await;
    assert_eq!(
        item["activationMessageId"].as_s().unwrap(),
        "wamid.TEST000001"
    );
    assert_eq!(
        env.sessions(&key).await[0]["expiresAt"],
        "2036-11-25T15:15:22Z"
    );
}

#[tokio::test]
async fn live_active_same_phone_is_returned_unchanged_and_nothing_is_sent() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    env.create(&key, SPAIN).await;
    env.activate("u1", T0 + 60).await;
    env.clock.advance(3_600);
    let before = env.sessions(&key).await[0].clone();
    assert_eq!(before["status"], "active");
    env.counter.reset();
    let reply = env.create(&key, SPAIN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["session"], before);
    assert_eq!(
        reply.json()["session"]["activatedAt"],
        "2036-11-24T14:16:22Z"
    );
    assert_eq!(
        env.sent_templates().await.len(),
        1,
        "only the first create sent"
    );
    assert_eq!(
        env.counter.operations(),
        ["GetItem", "TransactWriteItems"],
        "auth + the failed claim"
    );
}

#[tokio::test]
async fn live_session_for_different_phone_is_rejected_naming_it_and_nothing_is_sent() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let id = env.create(&key, SPAIN).await.json()["session"]["id"].clone();
    let before = env.snapshot().await;
    let reply = env.create(&key, UK).await;
    let err = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_field_value",
    );
    assert_eq!(err["param"], "phone");
    let msg = err["error"].as_str().unwrap();
    assert!(msg.contains("+34688246216"), "{msg}");
    assert!(msg.contains("revoke"), "{msg}");
    assert_eq!(err["details"]["existingSessionId"], id);
    assert_eq!(err["details"]["existingPhoneE164"], SPAIN_DIGITS);
    assert_eq!(env.sent_templates().await.len(), 1);
    assert_eq!(env.snapshot().await, before);

    // Also when the existing one is active.
    env.activate("u1", T0).await;
    let reply = env.create(&key, UK).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(env.sent_templates().await.len(), 1);
}

#[tokio::test]
async fn expired_session_does_not_block_a_new_phone_and_is_invisible() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let old = env.create_id(&key, SPAIN).await;
    env.clock.advance(DAY); // expiresAt == now: expired
    assert_eq!(env.sessions(&key).await, json!([]));
    assert_eq!(env.revoke(Some(&key), &old).await.text, NOT_FOUND);
    let reply = env.create(&key, UK).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_ne!(reply.json()["session"]["id"], old.as_str());
    // Same phone after expiry: a brand-new session, not the old id.
    env.clock.advance(DAY);
    let again = env.create(&key, UK).await.json();
    assert_eq!(
        again["session"]["createdAt"],
        sandbox::session::rfc3339(T0 + 2 * DAY)
    );
    // Active sessions expire too.
    env.activate("u1", T0 + 2 * DAY).await;
    env.clock.advance(7 * DAY);
    assert_eq!(env.sessions(&key).await, json!([]));
}
