//! The table's stream as the outbox (issue 19; `sandbox::events`): the records DynamoDB Local
//! writes for the real handlers' writes become exactly the events they report, with ids that
//! depend on the change only.

use e2e::deliveries::{status, tagged, text_at};
use e2e::stream::{events_in, TableStream};
use e2e::{TestEnv, SPAIN_DIGITS, T0};
use sandbox::events::Event;
use serde_json::json;

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

#[tokio::test]
async fn a_sessions_life_makes_exactly_its_events() {
    let env = TestEnv::accepting().await;
    let mut stream = TableStream::open(&env).await;

    // Create: the claim, the counters, the recorded send. No event.
    let s = env.pending("u1", SPAIN_DIGITS).await;
    assert_eq!(names(&stream.new_events()), Vec::<&str>::new());

    // The template's statuses; a replayed one changes nothing.
    env.deliver_statuses(vec![s.status("sent", SPAIN_DIGITS, T0 + 5)])
        .await;
    env.deliver_statuses(vec![s.status("sent", SPAIN_DIGITS, T0 + 5)])
        .await;
    env.deliver_statuses(vec![s.failed_status(SPAIN_DIGITS, T0 + 6)])
        .await;
    let events = stream.new_events();
    assert_eq!(names(&events), ["message.sent", "message.failed"]);
    assert_eq!(events[0].body["message"]["platformMessageId"], s.wamid);
    assert_eq!(events[1].body["error"]["code"], 131026);

    // The tap: the activation and the reply it records.
    let mut tap = s.button_reply(SPAIN_DIGITS);
    tap["timestamp"] = json!((T0 + 30).to_string());
    env.deliver_messages(vec![tap]).await;
    env.clock.set(T0 + 30);
    let mut events = stream.new_events();
    events.sort_by_key(|e| e.event.as_str());
    assert_eq!(
        names(&events),
        ["message.received", "whatsapp.sandbox.session.activated"]
    );
    assert_eq!(events[0].body["message"]["sender"]["id"], SPAIN_DIGITS);
    assert_eq!(events[1].body["session"]["id"], s.id.as_str());

    // A sandbox message: accepted is no event, its statuses are.
    let id = env.send_text_id(&s.key, "hello").await;
    assert_eq!(names(&stream.new_events()), Vec::<&str>::new());
    let tag = env.sent_messages().await[0]["biz_opaque_callback_data"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = |st: &str, at: i64| tagged(status(&id, st, SPAIN_DIGITS, T0 + at), &tag);
    env.deliver_statuses(vec![mine("delivered", 41)]).await;
    env.deliver_statuses(vec![mine("sent", 40)]).await; // late: refused, no write
    env.deliver_statuses(vec![mine("read", 42)]).await;
    let events = stream.new_events();
    assert_eq!(names(&events), ["message.delivered", "message.read"]);
    assert_eq!(events[1].body["message"]["id"], id.as_str());
    assert_eq!(events[1].body["message"]["text"], "hello");
    assert_eq!(
        events[1].body["statusAt"],
        sandbox::session::rfc3339(T0 + 42)
    );

    // The phone writes again: received; the window it moves is no event.
    env.deliver_messages(vec![text_at(SPAIN_DIGITS, "thanks", T0 + 50, 7)])
        .await;
    assert_eq!(names(&stream.new_events()), ["message.received"]);

    // Revoke.
    let reply = env.revoke(Some(&s.key), &s.id).await;
    assert!(reply.status.is_success(), "{}", reply.text);
    let events = stream.new_events();
    assert_eq!(names(&events), ["whatsapp.sandbox.session.ended"]);
    assert_eq!(events[0].body["reason"], "revoked");

    // Processing the whole stream again gives the very same events, ids and bodies.
    let all = events_in(&stream.records());
    assert_eq!(events_in(&stream.records()), all);
    assert_eq!(all.len(), 8);
}

#[tokio::test]
async fn a_stop_ends_every_session_of_the_phone_as_opted_out_at_its_time() {
    let env = TestEnv::accepting().await;
    let mut stream = TableStream::open(&env).await;
    let first = env.pending("u1", SPAIN_DIGITS).await;
    let second = env.active("u2", SPAIN_DIGITS).await;
    let _ = stream.new_events();

    env.deliver_messages(vec![text_at(SPAIN_DIGITS, "STOP", T0 + 100, 9)])
        .await;
    let mut ended: Vec<Event> = stream
        .new_events()
        .into_iter()
        .filter(|e| e.event.as_str() == "whatsapp.sandbox.session.ended")
        .collect();
    ended.sort_by_key(|e| e.user_id.as_str().to_owned());
    assert_eq!(ended.len(), 2, "{ended:#?}");
    for (e, s) in ended.iter().zip([&first, &second]) {
        assert_eq!(e.body["reason"], "opted_out");
        assert_eq!(e.body["session"]["id"], s.id.as_str());
        assert_eq!(e.timestamp, T0 + 100);
    }
    assert_eq!(ended[1].body["session"]["status"], "active");
}

/// A status Meta reports before the send's record lands leaves a bare item: the conversation
/// still answers (the item is not shown) and no event is made until the record lands.
#[tokio::test]
async fn a_status_that_beats_its_sends_record_breaks_nothing_and_waits_for_it() {
    let env = TestEnv::accepting().await;
    let s = env.active("u1", SPAIN_DIGITS).await;
    let mut stream = TableStream::open(&env).await;
    let user = sandbox::session::UserId::new("u1");
    let tag = sandbox::meta::callback::message_tag(&user, T0 + 31, "oEarly").unwrap();
    env.deliver_statuses(vec![tagged(
        status("wamid.EARLY", "delivered", SPAIN_DIGITS, T0 + 32),
        &tag,
    )])
    .await;
    let page = env.conversation(&s.key).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(names(&stream.new_events()), Vec::<&str>::new());
}
