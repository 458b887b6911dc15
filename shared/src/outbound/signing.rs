//! The webhook secret and the two signatures every delivery carries (pure).
//!
//! - `X-Zernio-Signature`: lowercase hex HMAC-SHA256 of the raw body, keyed with the secret's
//!   text as the user gave it (UTF-8 bytes, `whsec_` prefix included), as Zernio signs.
//! - `webhook-signature` (Standard Webhooks 1.0): `v1,<base64 HMAC-SHA256>` of
//!   `<webhook-id>.<webhook-timestamp>.<body>`. A `whsec_<base64>` secret is keyed with the
//!   bytes the base64 decodes to, as the spec and its libraries do (`Webhook::new`). Any other
//!   secret is keyed with its raw UTF-8 bytes, which receivers verify with the libraries'
//!   raw-bytes constructor (`Webhook::from_bytes`). A `whsec_` secret that is not valid base64
//!   is refused when it is set, so no secret is ambiguous. The Standard Webhooks signature is
//!   made by the spec's own Rust library (`standardwebhooks`, `Webhook::sign`), the maintained
//!   code, not by ours.
//!
//! For a day after a rotation ([`SigningSecrets`]), `webhook-signature` carries a signature
//! with each secret, the new one first (`v1,<new> v1,<old>`, as the spec describes rotation),
//! and a receiver with either secret verifies the delivery; `X-Zernio-Signature` holds one
//! value, so it is made with the new secret alone.

use std::fmt;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::{fill_random, RandomError};

/// The prefix of a Standard Webhooks secret.
pub const WHSEC_PREFIX: &str = "whsec_";

/// Random bytes in a generated secret (the spec asks for 24 to 64).
pub const GENERATED_SECRET_BYTES: usize = 32;

/// A webhook's signing secret; its `Debug` never prints it.
#[derive(Clone)]
pub struct WebhookSecret {
    /// The secret as the user set it (or as generated), returned to no one.
    text: String,
    /// HMAC keyed with `text` (`X-Zernio-Signature`).
    zernio_mac: Hmac<Sha256>,
    /// The Standard Webhooks key (see the module's doc).
    standard_key: Vec<u8>,
}

/// The secrets a delivery is signed with: the webhook's, and for a day after a rotation the
/// one it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSecrets {
    /// The webhook's secret: both signatures.
    pub current: WebhookSecret,
    /// The secret a rotation replaced, while it still signs: a second `webhook-signature`.
    pub previous: Option<WebhookSecret>,
}

impl From<WebhookSecret> for SigningSecrets {
    fn from(current: WebhookSecret) -> Self {
        Self {
            current,
            previous: None,
        }
    }
}

/// A secret that cannot sign.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret is empty.
    #[error("the secret is empty")]
    Empty,
    /// `whsec_` followed by something that is not standard base64 of at least one byte.
    #[error("a secret starting with whsec_ must continue with standard base64")]
    MalformedWhsec,
    /// HMAC refused the key (HMAC takes keys of any length: not expected).
    #[error("the secret cannot key HMAC-SHA256")]
    Unusable,
    /// Generating a secret found no randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The Standard Webhooks library signs only UTF-8 bodies (every event is JSON).
    #[error("the body is not UTF-8 and cannot be signed the Standard Webhooks way")]
    NotUtf8,
}

impl WebhookSecret {
    /// A new secret: `whsec_` and the base64 of 32 random bytes.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = [0u8; GENERATED_SECRET_BYTES];
        fill_random(&mut key)?;
        Self::parse(format!(
            "{WHSEC_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        ))
    }

    /// A user-supplied secret: any non-empty text; a `whsec_` one must carry valid base64.
    pub fn parse(text: impl Into<String>) -> Result<Self, SecretError> {
        let text = text.into();
        if text.is_empty() {
            return Err(SecretError::Empty);
        }
        let standard_key = match text.strip_prefix(WHSEC_PREFIX) {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .filter(|key| !key.is_empty())
                .ok_or(SecretError::MalformedWhsec)?,
            None => text.as_bytes().to_vec(),
        };
        let mac =
            |key: &[u8]| Hmac::<Sha256>::new_from_slice(key).map_err(|_| SecretError::Unusable);
        Ok(Self {
            zernio_mac: mac(text.as_bytes())?,
            standard_key,
            text,
        })
    }

    /// The secret's text, for the one place that stores it.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for WebhookSecret {}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// `X-Zernio-Signature`: lowercase hex HMAC-SHA256 of `body`, keyed with the secret's text.
pub fn zernio_signature(secret: &WebhookSecret, body: &[u8]) -> String {
    let mut mac = secret.zernio_mac.clone();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `<id>.<timestamp>.<body>`, by
/// the `standardwebhooks` library.
pub fn standard_signature(
    secret: &WebhookSecret,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SecretError> {
    standardwebhooks::Webhook::from_bytes(secret.standard_key.clone())
        .and_then(|hook| hook.sign(webhook_id, timestamp, body))
        .map_err(|_| SecretError::NotUtf8)
}

/// `webhook-signature` with every secret of `secrets`, the current one first, separated by a
/// space (a previous secret equal to the current one signs once).
pub fn standard_signatures(
    secrets: &SigningSecrets,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SecretError> {
    let mut header = standard_signature(&secrets.current, webhook_id, timestamp, body)?;
    if let Some(previous) = secrets.previous.as_ref().filter(|p| **p != secrets.current) {
        header.push(' ');
        header.push_str(&standard_signature(previous, webhook_id, timestamp, body)?);
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard Webhooks' own test vector (the spec's example secret, id, timestamp, body):
    /// the `whsec_` secret's key is the base64 it carries.
    #[test]
    fn the_standard_signature_is_the_specs_test_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let ours = standard_signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(
            ours.unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    /// Checked with a plain HMAC, not the library that signs.
    #[test]
    fn a_secret_without_whsec_keys_the_standard_signature_with_its_utf8_bytes() {
        let secret = WebhookSecret::parse("my plain secret ✓").unwrap();
        let ours = standard_signature(&secret, "evt_1", 1_700_000_000, b"{}").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice("my plain secret ✓".as_bytes()).unwrap();
        mac.update(b"evt_1.1700000000.{}");
        let expected = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(ours, expected);
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_not_signed() {
        let secret = WebhookSecret::parse("whsec_SmVmZQ==").unwrap();
        assert!(matches!(
            standard_signature(&secret, "evt_1", 1, &[0xff, 0xfe]),
            Err(SecretError::NotUtf8)
        ));
    }

    #[test]
    fn the_zernio_signature_is_hex_hmac_of_the_body_keyed_with_the_secret_text() {
        // RFC 4231 test case 2: key "Jefe".
        let secret = WebhookSecret::parse("Jefe").unwrap();
        assert_eq!(
            zernio_signature(&secret, b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A whsec_ secret keys it with the whole text, prefix included, as Zernio does.
        let whsec = WebhookSecret::parse("whsec_SmVmZQ==").unwrap();
        assert_ne!(
            zernio_signature(&whsec, b"what do ya want for nothing?"),
            zernio_signature(&secret, b"what do ya want for nothing?")
        );
    }

    #[test]
    fn a_generated_secret_is_whsec_and_32_random_bytes() {
        let a = WebhookSecret::generate().unwrap();
        let b = WebhookSecret::generate().unwrap();
        assert_ne!(a, b);
        let encoded = a.expose().strip_prefix("whsec_").unwrap();
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(WebhookSecret::parse(a.expose()).unwrap(), a);
    }

    #[test]
    fn empty_and_malformed_whsec_secrets_are_refused() {
        assert!(matches!(WebhookSecret::parse(""), Err(SecretError::Empty)));
        for malformed in ["whsec_", "whsec_not base64!"] {
            assert!(matches!(
                WebhookSecret::parse(malformed),
                Err(SecretError::MalformedWhsec)
            ));
        }
    }

    #[test]
    fn a_rotation_signs_with_the_new_secret_then_the_previous_one() {
        let new = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let old = WebhookSecret::parse("an old plain secret").unwrap();
        let both = SigningSecrets {
            current: new.clone(),
            previous: Some(old.clone()),
        };
        let header = standard_signatures(&both, "evt_1", 1_700_000_000, b"{}").unwrap();
        let each = |s: &WebhookSecret| standard_signature(s, "evt_1", 1_700_000_000, b"{}");
        assert_eq!(
            header,
            format!("{} {}", each(&new).unwrap(), each(&old).unwrap())
        );
        let alone = SigningSecrets::from(new.clone());
        assert_eq!(
            standard_signatures(&alone, "evt_1", 1_700_000_000, b"{}").unwrap(),
            each(&new).unwrap()
        );
        let same = SigningSecrets {
            current: new.clone(),
            previous: Some(new.clone()),
        };
        assert_eq!(
            standard_signatures(&same, "evt_1", 1_700_000_000, b"{}").unwrap(),
            each(&new).unwrap(),
            "one secret signs once"
        );
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let secret = WebhookSecret::parse("hunter2").unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
    }
}
