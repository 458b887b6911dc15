//! API-key authentication: `Authorization: Bearer <key>`, keys stored only as SHA-256 hashes.
//!
//! Lookups are cached per container for `AUTH_CACHE_SECONDS` (default 60), so a warm container
//! does no auth read. Consequence for operators: a disabled key keeps working for at most that
//! long in containers that have seen it. Only successful lookups are cached, so random keys
//! cannot fill the cache, and a newly provisioned key works at once.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::session::UserId;
use crate::store::{Store, StoreError};

/// At most this many keys are cached per container; past it the cache starts over.
const MAX_CACHED_KEYS: usize = 1024;

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing, malformed, unknown or disabled key (all the same 401).
    #[error("unauthorized")]
    Unauthorized,
    /// The key table could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The lowercase SHA-256 hex of the whole key string, as stored in `pk = KEY#<hash>`.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Extracts the key from an `Authorization` header value (scheme case-insensitive).
pub fn bearer_key(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = rest.trim();
    let well_formed =
        !key.is_empty() && key.len() <= 256 && key.bytes().all(|b| b.is_ascii_graphic());
    well_formed.then_some(key)
}

/// Resolves API keys to user ids, with a short per-container cache.
#[derive(Debug)]
pub struct Authenticator {
    ttl_seconds: i64,
    cache: Mutex<HashMap<String, (UserId, i64)>>,
}

impl Authenticator {
    /// An authenticator that trusts a lookup for `ttl_seconds` (0 disables the cache).
    pub fn new(ttl_seconds: i64) -> Self {
        Self {
            ttl_seconds,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The user id of an active key, reading the store only on a cache miss.
    pub async fn user_for(
        &self,
        store: &Store,
        header: Option<&str>,
        now: i64,
    ) -> Result<UserId, AuthError> {
        let key = bearer_key(header).ok_or(AuthError::Unauthorized)?;
        let hash = key_hash(key);
        if let Some(user) = self.cached(&hash, now) {
            return Ok(user);
        }
        let record = store.api_key(&hash).await?;
        match record {
            Some(r) if r.is_active() => {
                self.remember(hash, r.user_id.clone(), now);
                Ok(r.user_id)
            }
            _ => Err(AuthError::Unauthorized),
        }
    }

    fn cached(&self, hash: &str, now: i64) -> Option<UserId> {
        let cache = self.cache.lock().ok()?;
        let (user, at) = cache.get(hash)?;
        (now - at < self.ttl_seconds).then(|| user.clone())
    }

    fn remember(&self, hash: String, user: UserId, now: i64) {
        if self.ttl_seconds <= 0 {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED_KEYS {
                cache.clear();
            }
            cache.insert(hash, (user, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_key(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_key(Some("bearer   abc ")), Some("abc"));
        assert_eq!(bearer_key(Some("BEARER abc")), Some("abc"));
        assert_eq!(bearer_key(Some("Basic abc")), None);
        assert_eq!(bearer_key(Some("Bearer")), None);
        assert_eq!(bearer_key(Some("Bearer a b")), None);
        assert_eq!(bearer_key(None), None);
    }

    #[test]
    fn hash_is_lowercase_sha256_hex() {
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
