//! README "Virtual phones", "Shared numbers, separate tenants": the two rules that change for
//! a virtual phone, which every user of a deployment shares. Its `STOP` blocks only the user
//! whose session it answered and lifts by itself 60 s later; no per-recipient cap applies,
//! and the per-user caps have their own counters and limits (`VIRTUAL_DAILY_SEND_LIMIT`,
//! `VIRTUAL_DAILY_MESSAGE_LIMIT`), with the usual 429. And since a message the phone writes
//! reaches one user only, it opens that user's customer-service window alone.

use e2e::deliveries::{envelope, text_reply};
use e2e::phones::{Phones, REACHABLE, REACHABLE_DIGITS};
use e2e::{assert_error, Reply, TestEnv, DAY, SPAIN, T0};
use lambda_http::http::StatusCode;
use sandbox::limits::VIRTUAL_OPT_OUT_SECONDS;
use sandbox::session::UserId;
use sandbox::store::Key;
use serde_json::json;

/// A phone that answers its first template with STOP.
const STOPS: &str = "+1 201 555 0180";

fn assert_opted_out(reply: &Reply) {
    assert_error(
        reply,
        StatusCode::FORBIDDEN,
        "permission_error",
        "recipient_opted_out",
    );
}

/// A 429 with `details.scope: "user"` and the three headers for `limit`.
fn assert_user_limited(reply: &Reply, limit: i64) {
    let body = assert_error(
        reply,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        "rate_limit_exceeded",
    );
    assert_eq!(body["details"], json!({ "scope": "user" }));
    assert_eq!(reply.header("x-ratelimit-limit"), Some(&*limit.to_string()));
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
    assert!(reply.header("x-ratelimit-reset").is_some());
}

#[tokio::test]
async fn a_virtual_phones_stop_blocks_and_ends_only_the_session_it_answered() {
    let env = TestEnv::new().await;
    let (k1, _) = env.virtual_session("u1", REACHABLE).await;
    let (k2, id2) = env.virtual_session("u2", REACHABLE).await;
    let template = env.session_item("u1").await["activationMessageId"]
        .as_s()
        .unwrap()
        .clone();

    // The phone writes STOP quoting u1's template.
    let stop = text_reply(REACHABLE_DIGITS, "STOP", Some(&template), 1);
    env.deliver(&envelope(vec![stop], vec![])).await;

    assert_eq!(env.sessions(&k1).await, json!([]), "u1's session ended");
    assert_opted_out(&env.create(&k1, REACHABLE).await);
    // u2's session of the same phone lives on, and u2 and a newcomer may still send to it.
    assert_eq!(env.session_of(&k2).await["id"], id2);
    let refresh = env.create(&k2, REACHABLE).await;
    assert_eq!(refresh.status, StatusCode::OK, "{}", refresh.text);
    assert_eq!(refresh.json()["session"]["id"], id2);
    let (k3, _) = env.virtual_session("u3", REACHABLE).await;
    assert_eq!(env.session_of(&k3).await["status"], "pending");
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_virtual_phones_stop_lifts_by_itself_60_seconds_after_it() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    let (key, _) = env.virtual_session("u1", STOPS).await;
    // The phone answers at the template's time, T0.
    phones.play(&env).await;
    let (other, _) = env.virtual_session("u2", STOPS).await;
    assert_eq!(
        env.session_of(&other).await["status"],
        "pending",
        "u2 unaffected"
    );

    env.clock.set(T0 + VIRTUAL_OPT_OUT_SECONDS - 1);
    assert_opted_out(&env.create(&key, STOPS).await);
    env.clock.set(T0 + VIRTUAL_OPT_OUT_SECONDS);
    let lifted = env.create(&key, STOPS).await;
    assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.text);
    assert_eq!(lifted.json()["session"]["status"], "pending");
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_real_phones_opt_out_item_is_untouched_by_a_virtual_phones_stop() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    env.virtual_session("u1", STOPS).await;
    phones.play(&env).await;

    let digits = "12015550180";
    assert_eq!(env.app.store.opt_out(digits).await.unwrap(), None);
    let item = env
        .item(&Key::user_opt_out(digits, &UserId::new("u1")))
        .await
        .expect("u1's opt-out of the virtual phone");
    assert_eq!(item["updatedAt"].as_n().unwrap(), &T0.to_string());
    assert_eq!(
        item["expiresAt"].as_n().unwrap(),
        &(T0 + VIRTUAL_OPT_OUT_SECONDS).to_string(),
        "the TTL cleans up once it lifted"
    );
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_virtual_phone_has_no_per_recipient_cap() {
    // The per-recipient cap is 3 a day (a person's phone would refuse the fourth user).
    let env = TestEnv::accepting_with_limits(10, 3).await;
    for n in 0..6 {
        let key = env.api_key(&format!("u{n}")).await;
        let reply = env.create(&key, REACHABLE).await;
        assert_eq!(reply.status, StatusCode::OK, "user {n}: {}", reply.text);
        assert_eq!(reply.header("x-ratelimit-limit"), Some("1000"));
        assert_eq!(reply.header("x-ratelimit-remaining"), Some("999"));
    }
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn templates_to_virtual_phones_never_take_from_the_real_quota() {
    let env = TestEnv::accepting_with_limits(2, 3).await;
    let key = env.api_key("u1").await;
    let real = env.create(&key, SPAIN).await;
    assert_eq!(real.header("x-ratelimit-remaining"), Some("1"));
    env.revoke(Some(&key), real.json()["session"]["id"].as_str().unwrap())
        .await;
    for n in 0..3 {
        let phone = format!("+1 201 555 01{n:02}");
        let id = env.create_id(&key, &phone).await;
        env.revoke(Some(&key), &id).await;
    }

    let again = env.create(&key, SPAIN).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.header("x-ratelimit-remaining"), Some("0"), "2 of 2");
}

#[tokio::test]
async fn lowering_the_virtual_send_limit_gives_the_usual_429_for_the_user() {
    let mut env = TestEnv::new().await;
    env.app.config.virtual_daily_send_limit = 1;
    let key = env.api_key("u1").await;
    let first = env.create(&key, REACHABLE).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.header("x-ratelimit-limit"), Some("1"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("0"));
    env.revoke(Some(&key), first.json()["session"]["id"].as_str().unwrap())
        .await;
    let before = env.snapshot().await;

    let second = env.create(&key, "+1 202 555 0101").await;

    assert_user_limited(&second, 1);
    assert_eq!(env.snapshot().await, before, "nothing written");
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn sandbox_messages_to_a_virtual_phone_count_against_the_users_own_virtual_cap() {
    let mut env = TestEnv::new().await;
    env.app.config.user_daily_message_limit = 1;
    env.app.config.virtual_daily_message_limit = 2;
    let (key, _) = env.virtual_session("u1", REACHABLE).await;
    env.activate("u1", T0).await;

    for n in 0..2 {
        let sent = env.send_text(&key, &format!("message {n}")).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    }
    let third = env.send_text(&key, "one too many").await;

    assert_user_limited(&third, 2);
    let user = UserId::new("u1");
    let real_counter = env.item(&Key::message_counter(&user, T0)).await;
    assert_eq!(real_counter, None, "the real message quota is untouched");
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_virtual_phones_message_opens_the_window_of_the_user_it_reached_only() {
    let env = TestEnv::new().await;
    let (k1, id1) = env.virtual_session("u1", REACHABLE).await;
    let (k2, _) = env.virtual_session("u2", REACHABLE).await;
    env.activate("u1", T0).await;
    env.activate("u2", T0).await;
    // A day later both windows have closed.
    env.clock.set(T0 + DAY + 10);
    for key in [&k1, &k2] {
        assert_outside_window(&env.send_text(key, "too late").await);
    }

    // u1 makes the phone write: the phone's window opens for u1, and only for u1 (a real
    // phone's message opens every active session's window: messaging_send.rs).
    let replied = env
        .reply(&k1, &id1, &json!({ "type": "text", "text": "back" }))
        .await;
    assert_eq!(replied.status, StatusCode::OK, "{}", replied.text);

    let open = env.send_text(&k1, "welcome back").await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.text);
    assert_outside_window(&env.send_text(&k2, "still closed").await);
    env.assert_graph_untouched().await;
}

/// The 400 of a free-form message outside the customer-service window.
fn assert_outside_window(reply: &Reply) {
    assert_error(
        reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "outside_customer_service_window",
    );
}
