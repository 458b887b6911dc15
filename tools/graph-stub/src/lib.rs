//! A local stand-in for Meta's Graph API, for development only (never deployed).
//!
//! It answers `POST /{version}/{phone_number_id}/messages` the way Meta does (templates, text
//! and interactive messages), prints every send, and then plays the phone: it reports each
//! message `sent`, `delivered` and `read` (echoing the send's `biz_opaque_callback_data`), and
//! answers it (taps a template's quick-reply button, echoes a text, picks an interactive
//! message's first choice), each by posting a correctly signed webhook delivery to the local
//! webhook. With it, the whole
//! activation flow runs on one machine without a Meta account. Sends to the reject range
//! ([`meta::REJECT_RANGE`]) fail like a recipient missing from a test number's allow list, so
//! the create function's rollback can be watched too.
//!
//! The signing here is written independently of the service's verifier on purpose: the stub is
//! Meta's side of the contract, and a shared helper would hide a bug common to both.

pub mod meta;
pub mod server;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `X-Hub-Signature-256` header value Meta sends with a webhook delivery: `sha256=` and the
/// lowercase hex HMAC-SHA256 of the exact body bytes, keyed with the app secret.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    // `new_from_slice` is fallible only for fixed-length keys; HMAC takes any length, so the
    // error arm is unreachable and an empty value (a signature no verifier accepts) is safe.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_lowercase_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_service_accepts_the_stubs_signatures() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let header = sign(b"dev-app-secret", body);
        assert!(sandbox::meta::signature::signature_ok(
            b"dev-app-secret",
            body,
            Some(&header)
        ));
        assert!(!sandbox::meta::signature::signature_ok(
            b"another-secret",
            body,
            Some(&header)
        ));
    }
}
