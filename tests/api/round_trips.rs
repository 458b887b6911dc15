//! DynamoDB round trips and Graph API calls per operation (README, "Benchmark"): create 2 +
//! 1 send (the claim, the daily counters and the opt-out checks are one transaction), a
//! refresh 3 + 1 send, list 1, revoke 1, and one more auth read on a cold container.

use e2e::meta;
use e2e::{TestEnv, SPAIN};

#[tokio::test]
async fn every_operation_stays_within_its_round_trip_budget() {
    let env = TestEnv::with_auth_cache(60).await;
    meta::accept(&env.meta).await;
    let key = env.api_key("u1").await;
    env.list(Some(&key)).await; // warm the auth cache
    env.counter.reset();

    let id = env.create_id(&key, SPAIN).await;
    assert_eq!(
        env.counter.take(),
        ["TransactWriteItems", "UpdateItem"],
        "create: claim with counters and opt-out checks + record send"
    );
    assert_eq!(
        env.sent_templates().await.len(),
        1,
        "create: one Graph API call"
    );

    env.create(&key, SPAIN).await;
    assert_eq!(
        env.counter.take(),
        ["TransactWriteItems", "TransactWriteItems", "UpdateItem"],
        "refresh: the failed claim + reserve units + update"
    );

    env.list(Some(&key)).await;
    assert_eq!(env.counter.take(), ["GetItem"], "list");

    env.revoke(Some(&key), &id).await;
    assert_eq!(env.counter.take(), ["DeleteItem"], "revoke");

    // A cold container adds exactly the one auth read.
    let cold = TestEnv::new().await;
    meta::accept(&cold.meta).await;
    let key = cold.api_key("u1").await;
    cold.list(Some(&key)).await;
    assert_eq!(cold.counter.operations(), ["GetItem", "GetItem"]);
}
