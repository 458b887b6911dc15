//! The negative API-key cache: a flood of bad keys costs a bounded number of DynamoDB reads,
//! the cache's memory is bounded, and a key provisioned after a miss works once the negative
//! time (`AUTH_NEGATIVE_CACHE_SECONDS`, default 5) has passed (README "Operations" and
//! "Configuration"; the 401 of every operation in `openapi.yaml`).

use e2e::TestEnv;
use lambda_http::http::StatusCode;
use sandbox::auth::{key_hash, Authenticator};
use sandbox::session::UserId;
use sandbox::store::ApiKeyRecord;

fn random_key() -> String {
    format!("sk_flood_{}", sandbox::ids::random_base62(24).unwrap())
}

#[tokio::test]
async fn a_flood_of_bad_keys_costs_one_read_per_distinct_key_per_negative_time() {
    let env = TestEnv::new().await;
    let good = env.api_key("u1").await;

    // 1,000 distinct random keys: one GetItem each, never more.
    let distinct: Vec<String> = (0..1_000).map(|_| random_key()).collect();
    for key in &distinct {
        assert_eq!(env.list(Some(key)).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(env.counter.count(), 1_000);
    assert!(env.counter.operations().iter().all(|op| op == "GetItem"));

    // The same 1,000 again within the negative time: no read at all.
    env.counter.reset();
    for key in &distinct {
        assert_eq!(env.list(Some(key)).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(env.counter.count(), 0);

    // 1,000 requests repeating 10 bad keys: 10 reads; after the negative time, 10 more.
    env.counter.reset();
    let repeated: Vec<String> = (0..10).map(|_| random_key()).collect();
    for i in 0..1_000 {
        let reply = env.list(Some(&repeated[i % 10])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(env.counter.count(), 10);
    env.clock.advance(5);
    env.counter.reset();
    for i in 0..100 {
        env.list(Some(&repeated[i % 10])).await;
    }
    assert_eq!(env.counter.count(), 10, "entries expire after 5 s");

    // The flood did not lock out a valid key.
    assert_eq!(env.list(Some(&good)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_negative_cache_is_bounded_and_evicts_the_oldest() {
    let mut env = TestEnv::new().await;
    env.app.auth = Authenticator::new(0).with_negative_cache(5, 100);
    let keys: Vec<String> = (0..1_000).map(|_| random_key()).collect();
    for key in &keys {
        env.list(Some(key)).await;
    }
    assert_eq!(env.counter.count(), 1_000);

    // Only the newest 100 are remembered.
    env.counter.reset();
    for key in &keys[900..] {
        env.list(Some(key)).await;
    }
    assert_eq!(env.counter.count(), 0, "the newest 100 are cached");
    for key in &keys[..10] {
        env.list(Some(key)).await;
    }
    assert_eq!(env.counter.count(), 10, "the oldest were evicted");
}

#[tokio::test]
async fn a_key_provisioned_after_a_miss_works_within_the_negative_time() {
    let env = TestEnv::new().await;
    assert_eq!(env.app.config.auth_negative_cache_seconds, 5, "the default");
    let key = random_key();
    assert_eq!(env.list(Some(&key)).await.status, StatusCode::UNAUTHORIZED);

    let record = ApiKeyRecord::active(
        &key_hash(&key),
        UserId::new("u-new"),
        "2036-11-24T14:15:22Z".into(),
        Some("provisioned after a miss".into()),
    );
    env.app.store.put_api_key(&record).await.expect("put key");
    env.counter.reset();

    // Still remembered as unknown, without a read, until 5 s have passed.
    env.clock.advance(4);
    assert_eq!(env.list(Some(&key)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(env.counter.count(), 0);
    env.clock.advance(1);
    assert_eq!(env.list(Some(&key)).await.status, StatusCode::OK);
}
