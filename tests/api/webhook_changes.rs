//! README, "Outbound webhooks" (the webhook as it is now; issue 25, defect 2): once `PUT` or
//! `DELETE /v1/webhooks/settings` has answered, no delivery attempt starts with the webhook's
//! old settings, in a stream batch or in the sweep. Each change is made through the route while
//! a queue of three deliveries to the webhook runs: its first attempt is in flight at the old
//! receiver (which answers after a while), the route answers the change, and the queue's other
//! two deliveries must then end unattempted (deleted, turned off, unsubscribed) or go out with
//! the new URL or secret, never the old.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::pipeline::{header, Pipeline};
use e2e::webhooks::{
    hook_url, received, standard_signature, zernio_signature, HOOK_SECRET, SETTINGS,
};
use e2e::SPAIN_DIGITS;
use lambda_http::http::{Method, StatusCode};
use sandbox::delivery::stream::handle_batch;
use sandbox::delivery::sweep::sweep;
use sandbox::delivery::Tally;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

/// A `whsec_` secret other than [`HOOK_SECRET`] (24 bytes).
const NEW_SECRET: &str = "whsec_YSBuZXcgc2VjcmV0IG9mIDI0IGJ5dGVz";

/// How long the old receiver takes to answer: the change is made meanwhile.
const SLOW_ANSWER: Duration = Duration::from_millis(700);

/// A receiver's answer: 500 at once while the flag is up, else 200 after [`SLOW_ANSWER`].
struct SlowUnless(Arc<AtomicBool>);

impl Respond for SlowUnless {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        if self.0.load(Ordering::SeqCst) {
            ResponseTemplate::new(500)
        } else {
            ResponseTemplate::new(200).set_delay(SLOW_ANSWER)
        }
    }
}

/// Where the queue runs.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// A stream batch's claims, attempted at once.
    Batch,
    /// The sweep of the same deliveries, due again after a failed first attempt.
    Sweep,
}

/// What is changed while the first attempt is in flight.
#[derive(Debug, Clone, Copy)]
enum Change {
    Delete,
    TurnOff,
    Unsubscribe,
    NewUrl,
    NewSecret,
}

/// What the receivers got while the queue ran (the old one, the new one), and its tally.
struct Seen {
    old: Vec<wiremock::Request>,
    new: Vec<wiremock::Request>,
    tally: Tally,
}

/// Three deliveries to one webhook of a user's, run as `run` says; `change` made through the
/// route once the first attempt reached the old receiver.
async fn change_mid_queue(run: Run, change: Change) -> Seen {
    let (old, new) = (MockServer::start().await, MockServer::start().await);
    let failing = Arc::new(AtomicBool::new(false));
    for server in [&old, &new] {
        Mock::given(method("POST"))
            .respond_with(SlowUnless(Arc::clone(&failing)))
            .mount(server)
            .await;
    }
    let Pipeline {
        env,
        session: s,
        webhook_id: id,
        mut stream,
        deliverer,
    } = Pipeline::start(&old, "10", Duration::from_secs(5)).await;
    for n in 1..=3 {
        env.text_from(SPAIN_DIGITS, "queued", n).await;
    }
    let before = if let Run::Sweep = run {
        // The first attempts fail at once; the three are due again after the wait.
        failing.store(true, Ordering::SeqCst);
        stream.pump(&env, &deliverer).await;
        failing.store(false, Ordering::SeqCst);
        env.clock.advance(10);
        received(&old).await.len()
    } else {
        0
    };
    assert_eq!(before, if let Run::Sweep = run { 3 } else { 0 });

    let apply = async {
        while received(&old).await.len() == before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let field = match change {
            Change::Delete => None,
            Change::TurnOff => Some(("isActive", json!(false))),
            Change::Unsubscribe => Some(("events", json!(["message.sent"]))),
            Change::NewUrl => Some(("url", json!(hook_url(&new)))),
            Change::NewSecret => Some(("secret", json!(NEW_SECRET))),
        };
        let reply = match field {
            None => {
                let query = [("webhookId", id.as_str())];
                env.webhooks(Method::DELETE, SETTINGS, &s.key, None, &query)
                    .await
            }
            Some((name, value)) => {
                let body = json!({ "webhookId": id, name: value });
                env.webhooks(Method::PUT, SETTINGS, &s.key, Some(&body), &[])
                    .await
            }
        };
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        // Still in flight: the route answered before the first attempt ended.
        assert!(received(&new).await.is_empty());
    };
    let tally = match run {
        Run::Batch => {
            let batch = stream.new_batch();
            let (report, ()) = tokio::join!(handle_batch(&env.app, &deliverer, &batch), apply);
            assert_eq!(report.claimed, 3, "{report:?}");
            report.tally
        }
        Run::Sweep => {
            let (report, ()) = tokio::join!(sweep(&env.app, &deliverer), apply);
            report.expect("sweep").tally
        }
    };
    Seen {
        old: received(&old).await.split_off(before),
        new: received(&new).await,
        tally,
    }
}

/// Only the attempt in flight reached the old receiver; the two after it ended unattempted.
fn ended_after_the_first(seen: &Seen) {
    assert_eq!(
        seen.old.len(),
        1,
        "the old settings were used after the change"
    );
    assert!(seen.new.is_empty());
    assert_eq!(seen.tally.delivered, 1, "{:?}", seen.tally);
    assert_eq!(seen.tally.cancelled, 2, "{:?}", seen.tally);
}

/// The two deliveries after the change went to the new URL, none to the old.
fn retargeted_after_the_first(seen: &Seen) {
    assert_eq!(seen.old.len(), 1, "the old URL was used after the change");
    assert_eq!(seen.new.len(), 2);
    for request in &seen.new {
        assert_eq!(
            header(request, "x-zernio-signature"),
            zernio_signature(HOOK_SECRET, &request.body)
        );
    }
    assert_eq!(seen.tally.delivered, 3, "{:?}", seen.tally);
}

/// The first attempt was signed with the old secret; the two after the change with the new
/// one: `X-Zernio-Signature` is the new secret's, and `webhook-signature` carries it.
fn resigned_after_the_first(seen: &Seen) {
    assert_eq!(seen.old.len(), 3);
    let (first, rest) = seen.old.split_first().expect("three requests");
    assert_eq!(
        header(first, "x-zernio-signature"),
        zernio_signature(HOOK_SECRET, &first.body)
    );
    for request in rest {
        let signature = header(request, "x-zernio-signature");
        assert_ne!(
            signature,
            zernio_signature(HOOK_SECRET, &request.body),
            "signed with the old secret after the change"
        );
        assert_eq!(signature, zernio_signature(NEW_SECRET, &request.body));
        let standard = standard_signature(
            NEW_SECRET,
            &header(request, "webhook-id"),
            &header(request, "webhook-timestamp"),
            &request.body,
        );
        assert!(
            header(request, "webhook-signature")
                .split(' ')
                .any(|s| s == standard),
            "{}",
            header(request, "webhook-signature")
        );
    }
    let events: Vec<Value> = seen
        .old
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("JSON"))
        .collect();
    assert!(events.iter().all(|e| e["event"] == "message.received"));
}

#[tokio::test]
async fn a_webhook_deleted_while_a_batch_runs_gets_no_further_attempt() {
    ended_after_the_first(&change_mid_queue(Run::Batch, Change::Delete).await);
}

#[tokio::test]
async fn a_webhook_deleted_while_the_sweep_runs_gets_no_further_attempt() {
    ended_after_the_first(&change_mid_queue(Run::Sweep, Change::Delete).await);
}

#[tokio::test]
async fn a_webhook_turned_off_while_a_batch_runs_gets_no_further_attempt() {
    ended_after_the_first(&change_mid_queue(Run::Batch, Change::TurnOff).await);
}

#[tokio::test]
async fn a_webhook_turned_off_while_the_sweep_runs_gets_no_further_attempt() {
    ended_after_the_first(&change_mid_queue(Run::Sweep, Change::TurnOff).await);
}

#[tokio::test]
async fn a_webhook_unsubscribed_from_the_event_while_the_sweep_runs_gets_no_further_attempt() {
    ended_after_the_first(&change_mid_queue(Run::Sweep, Change::Unsubscribe).await);
}

#[tokio::test]
async fn a_url_changed_while_a_batch_runs_gets_the_rest_of_the_queue_and_the_old_url_nothing() {
    retargeted_after_the_first(&change_mid_queue(Run::Batch, Change::NewUrl).await);
}

#[tokio::test]
async fn a_url_changed_while_the_sweep_runs_gets_the_rest_of_the_queue_and_the_old_url_nothing() {
    retargeted_after_the_first(&change_mid_queue(Run::Sweep, Change::NewUrl).await);
}

#[tokio::test]
async fn a_secret_changed_while_a_batch_runs_signs_the_rest_of_the_queue() {
    resigned_after_the_first(&change_mid_queue(Run::Batch, Change::NewSecret).await);
}

#[tokio::test]
async fn a_secret_changed_while_the_sweep_runs_signs_the_rest_of_the_queue() {
    resigned_after_the_first(&change_mid_queue(Run::Sweep, Change::NewSecret).await);
}

#[tokio::test]
async fn a_url_changed_away_from_an_endpoint_that_hung_gets_the_next_event_at_once() {
    let (dead, alive) = (
        MockServer::start().await,
        e2e::webhooks::receiver(200).await,
    );
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&dead)
        .await;
    let mut p = Pipeline::start(&dead, "10", Duration::from_millis(300)).await;
    p.text("into the void", 1).await;
    assert_eq!(received(&dead).await.len(), 1, "the attempt that hung");

    // Within the hold on the endpoint that hung, the webhook moves to one that answers.
    let body = json!({ "webhookId": p.webhook_id, "url": hook_url(&alive) });
    let reply = p
        .env
        .webhooks(Method::PUT, SETTINGS, &p.session.key, Some(&body), &[])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let answer = p.text("to the new url", 2).await;
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    assert_eq!(
        received(&alive).await.len(),
        1,
        "held off for the old URL's silence"
    );
    assert_eq!(received(&dead).await.len(), 1);
}
