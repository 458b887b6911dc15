//! README "Virtual phones": each row of the behaviour table, played the way the phone function
//! plays it (the table's stream records, handed to `sandbox::virtual_phones::handle_batch` as
//! Lambda's event source mapping hands them over), asserting what a client sees: the session,
//! the conversation, the events the stream makes. In every test the Graph API stand-in receives
//! nothing, except where `VIRTUAL_PHONES=false` makes the range ordinary numbers.

use e2e::phones::{Phones, REACHABLE, TAPS, TAPS_DIGITS};
use e2e::stream::{events_in, TableStream};
use e2e::{assert_error, Options, TestEnv, T0};
use lambda_http::http::StatusCode;
use sandbox::events::StreamRecord;
use sandbox::graph::virtual_phone::{cue_of, deliveries};
use sandbox::message::Outbound;
use sandbox::meta::callback::message_tag;
use sandbox::session::UserId;
use sandbox::virtual_phones::business;
use serde_json::{json, Value};

/// The names of the events of `records`, in order.
fn event_names(records: &[Value]) -> Vec<String> {
    events_in(records)
        .iter()
        .map(|e| e.event.as_str().to_owned())
        .collect()
}

#[tokio::test]
async fn a_reachable_phone_reports_its_template_sent_delivered_and_read_and_answers_nothing() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    let mut stream = TableStream::open(&env).await;
    let (key, id) = env.virtual_session("u1", REACHABLE).await;

    let played = phones.play(&env).await;
    assert_eq!((played.cues, played.deliveries), (1, 3), "{played:?}");
    assert!(played.failed.is_empty());

    let session = env.session_of(&key).await;
    assert_eq!(session["id"], id);
    assert_eq!(session["status"], "pending", "it answers only when told");
    assert_eq!(session["delivery"]["status"], "read");
    assert_eq!(
        session["delivery"]["updatedAt"],
        sandbox::session::rfc3339(T0)
    );
    assert_eq!(env.conversation_messages(&key).await, Vec::<Value>::new());
    let names = event_names(&stream.new_records());
    assert_eq!(names, ["message.sent", "message.delivered", "message.read"]);
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_tapping_phone_activates_its_session_as_soon_as_its_template_is_delivered() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    let mut stream = TableStream::open(&env).await;
    let (key, id) = env.virtual_session("u1", TAPS).await;
    assert_eq!(env.session_of(&key).await["status"], "pending");

    phones.play(&env).await;

    let session = env.session_of(&key).await;
    assert_eq!(session["status"], "active");
    let conversation = env.conversation_messages(&key).await;
    assert_eq!(conversation.len(), 1, "{conversation:?}");
    let tap = &conversation[0];
    assert_eq!(tap["direction"], "inbound");
    assert_eq!(tap["phoneE164"], TAPS_DIGITS);
    assert_eq!(tap["type"], "button");
    assert_eq!(tap["button"]["payload"], format!("activate:{id}"));
    assert_eq!(tap["button"]["text"], "Activate");
    let item = env.session_item("u1").await;
    let template = item["activationMessageId"].as_s().unwrap();
    assert_eq!(tap["context"]["id"], template.as_str());
    let mut names = event_names(&stream.new_records());
    names.sort();
    assert_eq!(
        names,
        [
            "message.delivered",
            "message.read",
            "message.received",
            "message.sent",
            "whatsapp.sandbox.session.activated"
        ]
    );
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn an_unreachable_phone_accepts_each_send_then_reports_it_failed_with_131026() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    let (key, _) = env.virtual_session("u1", "+1 201 555 0160").await;

    phones.play(&env).await;

    let session = env.session_of(&key).await;
    assert_eq!(session["status"], "pending");
    assert_eq!(session["delivery"]["status"], "failed");
    assert_eq!(session["delivery"]["error"]["code"], 131026);
    assert_eq!(
        session["delivery"]["error"]["title"],
        "Message undeliverable"
    );
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_refusing_phone_makes_create_answer_metas_131030_and_leave_the_table_as_it_was() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let before = env.snapshot().await;

    let reply = env.create(&key, "+1 201 555 0170").await;

    let body = assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "platform_error",
        "whatsapp_send_failed",
    );
    assert_eq!(
        body["error"],
        "(#131030) Recipient phone number not in allowed list"
    );
    assert_eq!(body["platform"], "meta");
    assert_eq!(body["platformError"]["code"], 131030);
    assert_eq!(body["platformError"]["type"], "OAuthException");
    assert_eq!(
        body["platformError"]["error_data"]["messaging_product"],
        "whatsapp"
    );
    assert!(body["platformError"]["fbtrace_id"].is_string());
    assert_eq!(
        env.snapshot().await,
        before,
        "the claim and its unit undone"
    );
    assert_eq!(env.sessions(&key).await, json!([]));
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_stopping_phone_answers_its_first_template_with_stop_which_ends_the_session() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    let mut stream = TableStream::open(&env).await;
    let (key, _) = env.virtual_session("u1", "+1 201 555 0180").await;

    phones.play(&env).await;

    assert_eq!(env.sessions(&key).await, json!([]));
    let events = events_in(&stream.new_records());
    let ended: Vec<&Value> = events
        .iter()
        .filter(|e| e.event.as_str() == "whatsapp.sandbox.session.ended")
        .map(|e| &e.body)
        .collect();
    assert_eq!(ended.len(), 1, "{events:?}");
    assert_eq!(ended[0]["reason"], "opted_out", "{}", ended[0]);
    let again = env.create(&key, "+1 201 555 0180").await;
    assert_error(
        &again,
        StatusCode::FORBIDDEN,
        "permission_error",
        "recipient_opted_out",
    );
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_sandbox_message_to_a_virtual_phone_is_reported_read_and_to_an_unreachable_one_failed() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    let (k1, _) = env.virtual_session("u1", TAPS).await;
    let (k2, _) = env.virtual_session("u2", "+1 201 555 0160").await;
    phones.play(&env).await;
    // The unreachable phone never answered its template: its session is activated by hand.
    env.activate("u2", T0).await;
    for k in [&k1, &k2] {
        let sent = env.send_text(k, "Hello, phone").await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
        assert_eq!(sent.json()["message"]["status"], "accepted");
    }

    let played = phones.play(&env).await;
    assert_eq!(played.cues, 2, "{played:?}");

    let outbound = |messages: Vec<Value>| {
        messages
            .into_iter()
            .find(|m| m["direction"] == "outbound")
            .expect("the sent message")
    };
    let read = outbound(env.conversation_messages(&k1).await);
    assert_eq!(read["status"], "read");
    let failed = outbound(env.conversation_messages(&k2).await);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], 131026);
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn the_phones_statuses_carry_the_tag_the_send_built_so_they_find_their_item() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    let (key, _) = env.virtual_session("u1", REACHABLE).await;
    env.activate("u1", T0).await;
    let sent = env.send_text(&key, "tagged").await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);

    let user = UserId::new("u1");
    let session = env
        .app
        .store
        .live_session(&user, T0)
        .await
        .unwrap()
        .expect("the session");
    let graph = env.app.graph_client().expect("create's and send's client");
    // The bodies the sends built: the activation template's, and the message's, whose tag the
    // send made from the conversation item's key (its time and suffix).
    let template_tag = graph.template_body(&session)["biz_opaque_callback_data"].clone();
    let item = env
        .app
        .store
        .client()
        .query()
        .table_name(&env.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S("CONV#u1".into()),
        )
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
        .remove(0);
    let sk = item["sk"].as_s().unwrap();
    let (time, suffix) = sk
        .trim_start_matches("MSG#")
        .split_once('#')
        .expect("MSG#<time>#<suffix>");
    let tag = message_tag(&user, time.parse().unwrap(), suffix);
    let message = Outbound::Text("tagged".into());
    let message_tag =
        graph.message_body(&session, &message, tag.as_deref())["biz_opaque_callback_data"].clone();
    assert!(template_tag.is_string() && message_tag.is_string());

    // What the phone echoes, status by status, for each record of the stream.
    let batch = phones.next_batch();
    let mut echoed = Vec::new();
    for record in batch["Records"].as_array().unwrap() {
        let record = StreamRecord::from_lambda_json(record).unwrap();
        if let Some(cue) = cue_of(&record, &env.app.config).unwrap() {
            for delivery in deliveries(&cue, business(&env.app)) {
                let value = &delivery["entry"][0]["changes"][0]["value"];
                if let Some(status) = value["statuses"].get(0) {
                    echoed.push(status["biz_opaque_callback_data"].clone());
                }
            }
        }
    }
    assert_eq!(echoed.len(), 6, "{echoed:?}");
    assert!(echoed[..3].iter().all(|t| *t == template_tag), "{echoed:?}");
    assert!(echoed[3..].iter().all(|t| *t == message_tag), "{echoed:?}");

    // And so they land: the template's on the session, the message's on its item.
    sandbox::virtual_phones::handle_batch(&env.app, &batch).await;
    assert_eq!(env.session_of(&key).await["delivery"]["status"], "read");
    let outbound = env.conversation_messages(&key).await;
    assert_eq!(outbound[0]["status"], "read", "{outbound:?}");
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_stream_record_handed_over_again_changes_nothing() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    env.virtual_session("u1", TAPS).await;
    let (stopped, _) = env.virtual_session("u2", "+1 201 555 0181").await;
    let batch = phones.next_batch();
    let first = sandbox::virtual_phones::handle_batch(&env.app, &batch).await;
    assert!(first.failed.is_empty() && first.cues == 2, "{first:?}");
    // After the STOP lifted, u2 starts over; its new session is younger than the STOP.
    env.clock.advance(61);
    env.create_id(&stopped, "+1 201 555 0182").await;
    let after = env.snapshot().await;

    let again = sandbox::virtual_phones::handle_batch(&env.app, &batch).await;

    assert_eq!(again.cues, 2);
    assert!(again.failed.is_empty());
    assert_eq!(
        env.snapshot().await,
        after,
        "the same deliveries changed nothing"
    );
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn with_virtual_phones_off_the_range_is_sent_to_the_graph_api_like_any_number() {
    let env = TestEnv::with(Options {
        virtual_phones: false,
        ..Options::default()
    })
    .await;
    e2e::meta::accept(&env.meta).await;
    let mut phones = Phones::open(&env).await;
    let (key, id) = env.virtual_session("u1", TAPS).await;

    let sent = env.sent_templates().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], format!("+{TAPS_DIGITS}"));
    assert_eq!(e2e::meta::payload_of(&sent[0]), format!("activate:{id}"));
    let played = phones.play(&env).await;
    assert_eq!(played.cues, 0, "nothing plays the phone: {played:?}");
    assert_eq!(env.session_of(&key).await["status"], "pending");
}

#[tokio::test]
async fn two_users_of_one_tapping_phone_each_get_their_own_session_activated() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    let (k1, id1) = env.virtual_session("u1", TAPS).await;
    let (k2, id2) = env.virtual_session("u2", TAPS).await;

    phones.play(&env).await;

    for (key, id) in [(&k1, &id1), (&k2, &id2)] {
        assert_eq!(env.session_of(key).await["status"], "active");
        let conversation = env.conversation_messages(key).await;
        assert_eq!(conversation.len(), 1, "{conversation:?}");
        assert_eq!(
            conversation[0]["button"]["payload"],
            format!("activate:{id}")
        );
    }
    env.assert_graph_untouched().await;
}

#[tokio::test]
async fn a_storage_failure_reports_the_record_and_the_ones_after_it_and_the_retry_plays_them() {
    let env = TestEnv::new().await;
    let mut phones = Phones::open(&env).await;
    let (k1, _) = env.virtual_session("u1", TAPS).await;
    let (k2, _) = env.virtual_session("u2", "+1 201 555 0151").await;
    let batch = phones.next_batch();
    let sequence = |r: &Value| r["dynamodb"]["SequenceNumber"].as_str().map(str::to_owned);
    let records = batch["Records"].as_array().cloned().unwrap_or_default();
    // The first record that cues the phone: u1's template (the claim's put before it cues
    // nothing).
    let first_cue = records
        .iter()
        .position(|r| {
            let record = StreamRecord::from_lambda_json(r).unwrap();
            cue_of(&record, &env.app.config).unwrap().is_some()
        })
        .expect("a cue");

    let down = env.app_with_unreachable_dynamodb();
    let failed = sandbox::virtual_phones::handle_batch(&down, &batch).await;

    let expected: Vec<String> = records[first_cue..].iter().filter_map(sequence).collect();
    assert_eq!(failed.failed, expected);
    assert_eq!(
        failed.response(),
        json!({ "batchItemFailures": expected
            .iter()
            .map(|s| json!({ "itemIdentifier": s }))
            .collect::<Vec<_>>() })
    );
    assert_eq!(env.session_of(&k1).await["status"], "pending");

    // Lambda hands the batch over again from the first failed record: it plays in full.
    let retry = json!({ "Records": records[first_cue..] });
    let played = sandbox::virtual_phones::handle_batch(&env.app, &retry).await;
    assert!(played.failed.is_empty(), "{played:?}");
    for key in [&k1, &k2] {
        assert_eq!(env.session_of(key).await["status"], "active");
    }
    env.assert_graph_untouched().await;
}
