//! `disabledResourceGroups` (`createWebhookSettings`, `updateWebhookSettings`, README "Outbound
//! webhooks"): Zernio's vocabulary accepted, stored, returned and replaced; an unknown group
//! refused; `messages` stops the `message.*` events and `accounts` the session events, live,
//! in the sweep and on redeliver; `webhook.test` belongs to no group, so a test always goes.

use std::time::Duration;

use e2e::stream::TableStream;
use e2e::webhooks::{assert_invalid, deliverer, hook_url, new_webhook, received, receiver, Hooked};
use e2e::{assert_error, TestEnv, SPAIN_DIGITS};
use lambda_http::http::StatusCode;
use sandbox::delivery::sweep::sweep;
use serde_json::{json, Value};

const URL: &str = "https://hooks.example.com/zernio";

/// The events a phone's activation and reply report, as a webhook of both kinds receives them.
const BOTH_KINDS: [&str; 2] = ["message.received", "whatsapp.sandbox.session.activated"];

#[tokio::test]
async fn disabled_resource_groups_are_stored_returned_and_replaced_without_repeats() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let mut body = new_webhook("groups", URL);
    body["disabledResourceGroups"] = json!(["messages", "billing", "messages"]);
    let reply = env.create_webhook(&key, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let hook = reply.json()["webhook"].clone();
    assert_eq!(
        hook["disabledResourceGroups"],
        json!(["messages", "billing"])
    );
    assert_eq!(
        env.list_webhooks(&key).await[0]["disabledResourceGroups"],
        json!(["messages", "billing"])
    );

    // Absent from an update: left as it is; given: replaced; empty: cleared.
    let id = hook["_id"].clone();
    for (change, expected) in [
        (
            json!({ "webhookId": id, "name": "renamed" }),
            json!(["messages", "billing"]),
        ),
        (
            json!({ "webhookId": id, "disabledResourceGroups": ["accounts"] }),
            json!(["accounts"]),
        ),
        (
            json!({ "webhookId": id, "disabledResourceGroups": [] }),
            json!([]),
        ),
    ] {
        let reply = env.update_webhook(&key, &change).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.json()["webhook"]["disabledResourceGroups"], expected);
        assert_eq!(
            env.list_webhooks(&key).await[0]["disabledResourceGroups"],
            expected
        );
    }
    // Created without it: none.
    let plain = env.webhook_to(&key, URL).await;
    assert_eq!(plain["disabledResourceGroups"], json!([]));
}

#[tokio::test]
async fn an_unknown_resource_group_is_refused_with_its_param_and_nothing_changes() {
    let env = TestEnv::new().await;
    let key = env.api_key("u1").await;
    let hook = env.webhook_to(&key, URL).await;
    for groups in [
        json!(["sms"]),
        json!(["Messages"]),
        json!("messages"),
        json!([1]),
        json!(["messages", null]),
    ] {
        let mut body = new_webhook("bad", URL);
        body["disabledResourceGroups"] = groups.clone();
        assert_invalid(
            &env.create_webhook(&key, &body).await,
            "disabledResourceGroups",
        );
        let change = json!({ "webhookId": hook["_id"], "disabledResourceGroups": groups });
        assert_invalid(
            &env.update_webhook(&key, &change).await,
            "disabledResourceGroups",
        );
    }
    let listed = env.list_webhooks(&key).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["disabledResourceGroups"], json!([]));
}

/// The events `server` received, by name.
async fn events_at(server: &wiremock::MockServer) -> Vec<String> {
    received(server)
        .await
        .iter()
        .map(|r| {
            let event: Value = serde_json::from_slice(&r.body).expect("JSON");
            event["event"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn each_group_stops_exactly_its_own_events_on_live_delivery() {
    let env = TestEnv::accepting().await;
    let key = env.api_key("u1").await;
    let (no_messages, no_accounts, all) = (
        receiver(200).await,
        receiver(200).await,
        receiver(200).await,
    );
    for (server, groups) in [
        (&no_messages, json!(["messages"])),
        (&no_accounts, json!(["accounts"])),
        (&all, json!(["billing", "webhooks"])),
    ] {
        let body = json!({
            "name": "h", "url": hook_url(server), "events": BOTH_KINDS,
            "disabledResourceGroups": groups,
        });
        let reply = env.create_webhook(&key, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let mut stream = TableStream::open(&env).await;
    // The activation (a session event) and the tap that made it (a message).
    env.active("u1", SPAIN_DIGITS).await;
    stream
        .pump(&env, &deliverer("10", Duration::from_secs(5)))
        .await;

    assert_eq!(
        events_at(&no_messages).await,
        ["whatsapp.sandbox.session.activated"]
    );
    assert_eq!(events_at(&no_accounts).await, ["message.received"]);
    let mut both = events_at(&all).await;
    both.sort();
    assert_eq!(both, BOTH_KINDS, "other groups stop nothing here");
}

#[tokio::test]
async fn a_group_disabled_after_a_failure_ends_the_retry_unsent_refuses_redeliver_and_not_test() {
    let env = TestEnv::new().await;
    let server = receiver(500).await;
    let Hooked {
        key,
        id,
        mut stream,
        ..
    } = env.hooked("u1", &server, &["message.received"]).await;
    let deliverer = deliverer("10", Duration::from_secs(5));
    env.text_from(SPAIN_DIGITS, "retry me", 1).await;
    stream.pump(&env, &deliverer).await;
    assert_eq!(received(&server).await.len(), 1, "the first attempt failed");
    let event_id = env.logged(&key).await[0]["eventId"]
        .as_str()
        .unwrap()
        .to_owned();

    let change = json!({ "webhookId": id, "disabledResourceGroups": ["messages"] });
    assert_eq!(
        env.update_webhook(&key, &change).await.status,
        StatusCode::OK
    );
    // The retry is due: the sweep ends it unattempted.
    env.clock.advance(10);
    let report = sweep(&env.app, &deliverer).await.expect("sweep");
    assert_eq!(report.tally.cancelled, 1, "{:?}", report.tally);
    assert_eq!(received(&server).await.len(), 1);

    // Redeliver: refused, nothing sent, nothing of the rate taken.
    let reply = env.redeliver(&key, &id, &event_id).await;
    let (kind, code) = ("invalid_request_error", "resource_group_disabled");
    let body = assert_error(&reply, StatusCode::CONFLICT, kind, code);
    assert_eq!(body["param"], "eventId");
    assert_eq!(body["details"], json!({ "group": "messages" }));
    assert!(reply.header("x-ratelimit-remaining").is_none());
    assert_eq!(received(&server).await.len(), 1);

    // A test belongs to no group: it goes, whichever groups are disabled.
    let every =
        json!({ "webhookId": id, "disabledResourceGroups": sandbox::webhooks::RESOURCE_GROUPS });
    assert_eq!(
        env.update_webhook(&key, &every).await.status,
        StatusCode::OK
    );
    let reply = env.test_webhook(&key, &id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(events_at(&server).await.last().unwrap(), "webhook.test");
    assert_eq!(
        reply.header("x-ratelimit-remaining"),
        Some("29"),
        "the refused redelivery took none"
    );
}
