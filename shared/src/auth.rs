//! API-key authentication: `Authorization: Bearer <key>`, keys stored only as SHA-256 hashes.
//!
//! Lookups are cached per container for `AUTH_CACHE_SECONDS` (default 60), so a warm container
//! does no auth read. Consequence for operators: a disabled key keeps working for at most that
//! long in containers that have seen it.
//!
//! Unknown (or disabled) key hashes are remembered separately for `AUTH_NEGATIVE_CACHE_SECONDS`
//! (default 5), so a client repeating a bad key costs one read per that time, not one per
//! request. That cache holds at most [`MAX_NEGATIVE_KEYS`] hashes and evicts the oldest first:
//! a flood of distinct random keys costs one read each (API Gateway's throttle bounds their
//! rate) and a fixed amount of memory, and never pushes a valid key out of the positive cache.
//! A key provisioned after a client tried it starts working within the negative time.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::session::UserId;
use crate::store::{Store, StoreError};

/// At most this many keys are cached per container; past it the cache starts over.
const MAX_CACHED_KEYS: usize = 1024;

/// At most this many unknown-key hashes are remembered per container; the oldest goes first.
pub const MAX_NEGATIVE_KEYS: usize = 4096;

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
    negative: Mutex<NegativeCache>,
}

impl Authenticator {
    /// An authenticator that trusts a lookup for `ttl_seconds` (0 disables the cache) and
    /// does not remember unknown keys.
    pub fn new(ttl_seconds: i64) -> Self {
        Self {
            ttl_seconds,
            cache: Mutex::new(HashMap::new()),
            negative: Mutex::new(NegativeCache::new(0, MAX_NEGATIVE_KEYS)),
        }
    }

    /// Also remembers unknown or disabled key hashes for `seconds` (0 turns that off), in a
    /// cache of at most `capacity` hashes.
    pub fn with_negative_cache(mut self, seconds: i64, capacity: usize) -> Self {
        self.negative = Mutex::new(NegativeCache::new(seconds, capacity));
        self
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
        if self.known_unknown(&hash, now) {
            return Err(AuthError::Unauthorized);
        }
        let record = store.api_key(&hash).await?;
        match record {
            Some(r) if r.is_active() => {
                self.remember(hash, r.user_id.clone(), now);
                Ok(r.user_id)
            }
            _ => {
                if let Ok(mut negative) = self.negative.lock() {
                    negative.insert(hash, now);
                }
                Err(AuthError::Unauthorized)
            }
        }
    }

    fn known_unknown(&self, hash: &str, now: i64) -> bool {
        self.negative
            .lock()
            .map(|n| n.contains(hash, now))
            .unwrap_or(false)
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

/// Unknown key hashes and when they were looked up: fixed capacity, oldest evicted first.
#[derive(Debug)]
struct NegativeCache {
    ttl_seconds: i64,
    capacity: usize,
    seen: HashMap<String, i64>,
    /// Insertion order; may hold a stale copy of a re-inserted hash, which only makes that
    /// hash leave early. Its length bounds `seen`'s.
    order: VecDeque<String>,
}

impl NegativeCache {
    fn new(ttl_seconds: i64, capacity: usize) -> Self {
        Self {
            ttl_seconds,
            capacity,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn contains(&self, hash: &str, now: i64) -> bool {
        self.seen
            .get(hash)
            .is_some_and(|at| now - at < self.ttl_seconds)
    }

    fn insert(&mut self, hash: String, now: i64) {
        if self.ttl_seconds <= 0 || self.capacity == 0 {
            return;
        }
        while self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(hash.clone(), now);
        self.order.push_back(hash);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_cache_is_bounded_expires_and_evicts_oldest() {
        let mut n = NegativeCache::new(5, 3);
        for i in 0..1000 {
            n.insert(format!("h{i}"), 100);
            assert!(n.len() <= 3 && n.order.len() <= 3);
        }
        assert!(n.contains("h999", 100) && n.contains("h997", 100));
        assert!(!n.contains("h996", 100), "evicted");
        assert!(n.contains("h999", 104));
        assert!(!n.contains("h999", 105), "expired after 5 s");
        // Re-inserting keeps the bound.
        n.insert("h999".into(), 105);
        n.insert("h999".into(), 106);
        assert!(n.len() <= 3 && n.order.len() <= 3);
        assert!(n.contains("h999", 106));
        let mut off = NegativeCache::new(0, 3);
        off.insert("h".into(), 1);
        assert!(!off.contains("h", 1));
    }

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
