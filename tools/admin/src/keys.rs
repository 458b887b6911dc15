//! API keys: issue, list, disable. Keys are stored only as SHA-256 hashes (`KEY#<hex>`) in the
//! layout `sandbox::store::ApiKeyRecord` fixes; the key itself exists only in `create-key`'s
//! output. Listing and prefix lookup scan the table: fine for an operator tool run by hand,
//! and the reason these operations live here rather than in the functions' store.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sandbox::auth::{bearer_key, key_hash};
use sandbox::ids::RandomError;
use sandbox::session::{rfc3339, UserId};
use sandbox::store::{ApiKeyRecord, Item, ItemKind, Key, Store, StoreError};

/// Every issued key starts with this, so a leaked key says what it is (to people and to
/// secret scanners) and can never be mistaken for a session id (`wss_`).
pub const KEY_PREFIX: &str = "wsk_";
/// 256 bits of randomness per key.
const KEY_RANDOM_BYTES: usize = 32;
/// How much of a hash `list-keys` shows: enough to tell keys apart and to disable one.
pub const HASH_SHOWN: usize = 12;

/// What went wrong, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A store operation of the shared library failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// One of this tool's own DynamoDB requests failed.
    #[error("DynamoDB {operation} failed: {detail}")]
    Sdk {
        /// The request.
        operation: &'static str,
        /// The SDK's full error chain.
        detail: String,
    },
    /// The operating system's random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Refused(String),
}

impl AdminError {
    /// Wraps an SDK error with its whole chain: the SDK's own `Display` is often just
    /// "dispatch failure", which names neither the endpoint nor the cause.
    pub fn sdk(operation: &'static str, error: impl std::error::Error) -> Self {
        Self::Sdk {
            operation,
            detail: DisplayErrorContext(error).to_string(),
        }
    }
}

/// A fresh key: `wsk_` and 32 random bytes, base64url without padding (43 characters).
pub fn generate_key() -> Result<String, RandomError> {
    let mut bytes = [0u8; KEY_RANDOM_BYTES];
    sandbox::ids::fill_random(&mut bytes)?;
    Ok(format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Stores an active key for `user`; fails if that exact key already exists.
pub async fn create_key(
    store: &Store,
    key: &str,
    user: &str,
    label: Option<String>,
    now: i64,
) -> Result<ApiKeyRecord, AdminError> {
    // A key the functions could never accept as a bearer token would be a silent dud.
    if bearer_key(Some(&format!("Bearer {key}"))) != Some(key) {
        return Err(AdminError::Refused(
            "a key must be 1-256 printable ASCII characters without spaces".into(),
        ));
    }
    let record = ApiKeyRecord::active(&key_hash(key), UserId::new(user), rfc3339(now), label);
    store.put_api_key(&record).await?;
    Ok(record)
}

/// Every key whose hash starts with `hash_prefix` (all keys for an empty prefix), oldest first.
pub async fn keys_with_prefix(
    store: &Store,
    hash_prefix: &str,
) -> Result<Vec<ApiKeyRecord>, AdminError> {
    let mut pages = store
        .client()
        .scan()
        .table_name(store.table())
        .filter_expression("begins_with(pk, :pk) AND sk = :sk")
        .expression_attribute_values(":pk", s(&Key::api_key(hash_prefix).pk))
        .expression_attribute_values(":sk", s(ItemKind::ApiKey.sort_key()))
        .into_paginator()
        .items()
        .send();
    let mut keys = Vec::new();
    while let Some(item) = pages
        .try_next()
        .await
        .map_err(|e| AdminError::sdk("Scan(keys)", e))?
    {
        keys.push(decode(item)?);
    }
    keys.sort_by(|a, b| (&a.created_at, &a.pk).cmp(&(&b.created_at, &b.pk)));
    Ok(keys)
}

/// The one key whose hash starts with `hash_prefix` (hex, any case).
pub async fn find_key(store: &Store, hash_prefix: &str) -> Result<ApiKeyRecord, AdminError> {
    let prefix = hash_prefix.trim().to_ascii_lowercase();
    if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AdminError::Refused(format!(
            "{hash_prefix:?} is not a key hash: expected up to 64 hex characters, as list-keys shows"
        )));
    }
    let mut found = keys_with_prefix(store, &prefix).await?;
    match found.len() {
        0 => Err(AdminError::Refused(format!(
            "no key hash starts with {prefix}"
        ))),
        1 => Ok(found.remove(0)),
        n => Err(AdminError::Refused(format!(
            "{n} key hashes start with {prefix}; give more of the hash"
        ))),
    }
}

/// Marks a key disabled (the record stays, so the history of who had which key remains).
pub async fn disable_key(store: &Store, record: &ApiKeyRecord) -> Result<(), AdminError> {
    store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(Key::api_key(record.hash()).item()))
        .update_expression("SET #status = :disabled")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":disabled", s("disabled"))
        .send()
        .await
        .map_err(|e| AdminError::sdk("UpdateItem(disable key)", e))?;
    Ok(())
}

/// `list-keys` output: one aligned row per key, never the key itself (it is not stored).
pub fn table(keys: &[ApiKeyRecord]) -> String {
    let user_width = keys
        .iter()
        .map(|k| k.user_id.as_str().len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut out = format!(
        "{:HASH_SHOWN$}  {:user_width$}  {:8}  {:20}  LABEL\n",
        "HASH", "USER", "STATUS", "CREATED"
    );
    for k in keys {
        let hash = k.hash();
        out.push_str(&format!(
            "{:HASH_SHOWN$}  {:user_width$}  {:8}  {:20}  {}\n",
            &hash[..hash.len().min(HASH_SHOWN)],
            k.user_id,
            k.status,
            k.created_at,
            k.label.as_deref().unwrap_or("")
        ));
    }
    out
}

fn decode(item: Item) -> Result<ApiKeyRecord, AdminError> {
    serde_dynamo::from_item(item)
        .map_err(|e| AdminError::Refused(format!("an API-key item is not an API key record: {e}")))
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_prefixed_256_bit_base64url() {
        let key = generate_key().unwrap();
        let random = key.strip_prefix(KEY_PREFIX).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(random).unwrap().len(), 32);
        assert_eq!(
            bearer_key(Some(&format!("Bearer {key}"))),
            Some(key.as_str())
        );
        assert_ne!(generate_key().unwrap(), key);
    }

    #[test]
    fn listing_shows_hash_prefixes_not_keys() {
        let record = ApiKeyRecord::active(
            &key_hash("wsk_secret"),
            UserId::new("dev-user"),
            "2026-11-24T16:00:00Z".into(),
            Some("make dev".into()),
        );
        let text = table(&[record]);
        let hash = key_hash("wsk_secret");
        assert!(text.contains(&hash[..HASH_SHOWN]), "{text}");
        assert!(!text.contains(&hash), "{text}");
        assert!(!text.contains("wsk_secret"), "{text}");
        assert!(text.contains("dev-user  active    2026-11-24T16:00:00Z  make dev"));
    }
}
