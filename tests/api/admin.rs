//! `sandbox-admin`'s key operations against a real table and the real authenticator (README
//! "Local development", API keys; the `bearerAuth` scheme of `openapi.yaml`).

use e2e::TestEnv;
use lambda_http::http::StatusCode;
use sandbox::auth::key_hash;
use sandbox::store::Key;
use sandbox_admin::keys;

#[tokio::test]
async fn a_new_key_is_stored_only_as_its_hash_works_and_stops_working_when_disabled() {
    let env = TestEnv::new().await;
    let key = keys::generate_key().unwrap();
    assert!(key.starts_with("wsk_") && key.len() >= 4 + 43, "{key}");
    keys::create_key(
        &env.app.store,
        &key,
        "alice",
        Some("laptop".into()),
        e2e::T0,
    )
    .await
    .unwrap();

    let items = env.snapshot().await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(
        item["pk"].as_s().unwrap(),
        &Key::api_key(&key_hash(&key)).pk
    );
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["createdAt", "label", "pk", "sk", "status", "userId"]
    );
    assert!(
        !format!("{item:?}").contains(&key[4..]),
        "the key itself is never stored"
    );
    assert_eq!(item["createdAt"].as_s().unwrap(), "2036-11-24T14:15:22Z");

    assert_eq!(env.list(Some(&key)).await.status, StatusCode::OK);

    let record = keys::find_key(&env.app.store, &key_hash(&key)[..8])
        .await
        .unwrap();
    keys::disable_key(&env.app.store, &record).await.unwrap();
    assert_eq!(env.list(Some(&key)).await.status, StatusCode::UNAUTHORIZED);
    let listing = keys::table(&keys::keys_with_prefix(&env.app.store, "").await.unwrap());
    assert!(
        listing.contains("disabled") && !listing.contains(&key[4..]),
        "{listing}"
    );
}
