//! STOP and START replies to `receiveWhatsAppWebhook` (`openapi.yaml`; README, "Data model":
//! the opt-out item): every session of the phone goes, and a later START lifts the block.

use e2e::deliveries::text_at;
use e2e::{TestEnv, SPAIN_DIGITS, T0, UK_DIGITS};
use serde_json::json;

#[tokio::test]
async fn stop_deletes_every_session_of_the_phone_and_start_lifts_the_block() {
    let env = TestEnv::accepting().await;
    let k1 = env.pending("u1", SPAIN_DIGITS).await.key;
    let k2 = env.pending("u2", SPAIN_DIGITS).await.key;
    let k3 = env.pending("u3", UK_DIGITS).await.key;
    env.deliver_messages(vec![text_at(SPAIN_DIGITS, "  Stop ", T0 + 100, 1)])
        .await;
    assert_eq!(env.sessions(&k1).await, json!([]));
    assert_eq!(env.sessions(&k2).await, json!([]));
    assert_eq!(
        env.session_of(&k3).await["status"],
        "pending",
        "other phones untouched"
    );
    let record = env.app.store.opt_out(SPAIN_DIGITS).await.unwrap().unwrap();
    assert!(record.opted_out);

    env.deliver_messages(vec![text_at(SPAIN_DIGITS, "start", T0 + 200, 2)])
        .await;
    assert!(!env.opted_out(SPAIN_DIGITS).await);

    // A new session after START survives a replay of the old STOP, and the block stays lifted.
    env.clock.set(T0 + 300);
    let k4 = env.pending("u4", SPAIN_DIGITS).await.key;
    env.deliver_messages(vec![text_at(SPAIN_DIGITS, "STOP", T0 + 100, 1)])
        .await;
    assert_eq!(env.session_of(&k4).await["status"], "pending");
    assert!(!env.opted_out(SPAIN_DIGITS).await);
}

#[tokio::test]
async fn every_opt_out_keyword_is_honoured() {
    // Six sessions for one phone in a day: a recipient cap that allows them.
    let env = TestEnv::accepting_with_limits(10, 10).await;
    for (i, word) in ["STOP", "stop all", "UNSUBSCRIBE", "cancel", "End", "QUIT"]
        .iter()
        .enumerate()
    {
        let t = T0 + 10 * (i as i64 + 1);
        env.clock.set(t);
        let key = env.pending(&format!("u{i}"), SPAIN_DIGITS).await.key;
        env.deliver_messages(vec![text_at(SPAIN_DIGITS, word, t + 1, i as u32)])
            .await;
        assert_eq!(env.sessions(&key).await, json!([]), "{word}");
        assert!(env.opted_out(SPAIN_DIGITS).await, "{word}");
        env.deliver_messages(vec![text_at(SPAIN_DIGITS, "UNSTOP", t + 2, 100 + i as u32)])
            .await;
    }
}
