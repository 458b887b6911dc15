//! TLS for HTTPS egress: what the maintained clients do not do for us. The DynamoDB client's
//! HTTP client is the SDK's own (`aws-smithy-http-client`, rustls with ring:
//! [`crate::app::https_client`]), which trusts the platform's roots; the Graph API's and the
//! outbound webhooks' clients are reqwest, which takes a rustls configuration. Here:
//!
//! - the certificates of [`EXTRA_CA_CERTS`] (a private CA; the bench's and the tests' test CA),
//!   which the SDK's client takes only as PEM and panics on if one does not parse
//!   ([`sdk_trust_store`]), and which the reqwest clients trust beside Mozilla's roots;
//! - the one TLS configuration the reqwest clients share ([`tls_config`]): ring, TLS 1.2 and
//!   1.3, rustls's own `WebPkiServerVerifier` built on the first handshake ([`DeferredRoots`])
//!   over Mozilla's roots (webpki-roots, compiled in) plus [`EXTRA_CA_CERTS`].
//!
//! Each piece was decided by `make bench` against the maintained code it could be (README,
//! "Benchmark", "Decisions").

use std::path::Path;
use std::sync::{Arc, LazyLock};

use aws_smithy_http_client::tls::TrustStore;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The process's TLS client settings for reqwest: ring's crypto, TLS 1.2 and 1.3, and
/// [`trust_roots`], through rustls's own verifier, built on the first handshake
/// ([`DeferredRoots`]). Shared by the Graph client and the outbound webhooks' client.
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: LazyLock<Arc<rustls::ClientConfig>> =
        LazyLock::new(|| Arc::new(deferred(Arc::new(DeferredRoots::new(trust_roots)))));
    Arc::clone(&CONFIG)
}

/// TLS client settings that trust exactly `roots`.
pub fn trusting(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    // The process's default provider: ring (already installed is fine).
    let _ = rustls::crypto::ring::default_provider().install_default();
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// TLS client settings whose server certificates `roots` verifies.
pub fn deferred(roots: Arc<DeferredRoots>) -> rustls::ClientConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(roots)
        .with_no_client_auth()
}

/// rustls's own certificate verifier ([`WebPkiServerVerifier`], as [`trusting`] builds it),
/// built when a handshake first needs it, or when [`DeferredRoots::load`] is called, over the
/// roots `load` yields then: nothing before a server's certificate needs them, so building the
/// settings costs no root loading. Every check is the verifier's; this type only decides when
/// it is built. The signature schemes a handshake offers are ring's, the ones the verifier
/// supports, so a handshake's first message does not wait for the roots.
pub struct DeferredRoots {
    verifier: LazyLock<Verifier, LoadVerifier>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

type LoadVerifier = Box<dyn FnOnce() -> Verifier + Send>;

type Verifier = Result<Arc<WebPkiServerVerifier>, rustls::client::VerifierBuilderError>;

fn verifier(roots: rustls::RootCertStore) -> Verifier {
    WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
}

impl DeferredRoots {
    /// Roots that `load` yields, when first needed.
    pub fn new(load: impl FnOnce() -> rustls::RootCertStore + Send + 'static) -> Self {
        Self {
            verifier: LazyLock::new(Box::new(move || verifier(load()))),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    /// Loads the roots now, on this thread, unless they are loaded already.
    pub fn load(&self) {
        LazyLock::force(&self.verifier);
    }

    /// The verifier; without roots (logged where they were looked for) none can be built, and
    /// every certificate is refused as one whose issuer is unknown.
    fn verifier(&self) -> Result<&WebPkiServerVerifier, rustls::Error> {
        match &*self.verifier {
            Ok(verifier) => Ok(verifier),
            Err(_) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }
}

impl std::fmt::Debug for DeferredRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeferredRoots").finish_non_exhaustive()
    }
}

impl ServerCertVerifier for DeferredRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // The verifier's own answer (ring's schemes), without waiting for the roots.
        self.algorithms.supported_schemes()
    }
}

/// The variable naming a PEM file whose certificates are trusted beside the platform's roots
/// (DynamoDB) and Mozilla's (the reqwest clients): a private CA, or the bench's and tests' test
/// CA. Unset on Lambda.
pub const EXTRA_CA_CERTS: &str = "EXTRA_CA_CERTS";

/// The file [`EXTRA_CA_CERTS`] names, when it is set.
fn extra_file() -> Option<std::ffi::OsString> {
    std::env::var_os(EXTRA_CA_CERTS).filter(|v| !v.is_empty())
}

/// The reqwest clients' trust roots: Mozilla's (webpki-roots, compiled in: no file to find or
/// read on Lambda), plus the certificates of the file [`EXTRA_CA_CERTS`] names, when it is set.
pub fn trust_roots() -> rustls::RootCertStore {
    roots_with(extra_file().as_deref().map(Path::new))
}

/// Mozilla's roots, plus the certificates in `extra` (a PEM file; see `extra_certs`).
pub fn roots_with(extra: Option<&Path>) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(file) = extra {
        roots.add_parsable_certificates(extra_certs(file));
    }
    roots
}

/// The DynamoDB client's trust (the SDK's [`TrustStore`]): the platform's roots, the SDK's
/// default (rustls-native-certs: `SSL_CERT_FILE`, else the platform's bundle and certificate
/// directories), plus the certificates of the file [`EXTRA_CA_CERTS`] names, when it is set.
pub fn sdk_trust_store() -> TrustStore {
    sdk_trust_store_with(extra_file().as_deref().map(Path::new))
}

/// The platform's roots, plus the certificates in `extra` (a PEM file; see `extra_certs`).
/// The SDK's client takes certificates as PEM and panics when it builds a connector over one
/// that does not parse, so only those a root store takes are handed over, each as PEM again.
pub fn sdk_trust_store_with(extra: Option<&Path>) -> TrustStore {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let certs = extra.map(extra_certs).unwrap_or_default();
    certs.iter().fold(TrustStore::default(), |trust, cert| {
        trust.with_pem_certificate(format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            STANDARD.encode(cert)
        ))
    })
}

/// The certificates in `file` (PEM) that a root store takes as trust anchors. A file that
/// cannot be read, holds no certificate, or holds one that is not a usable anchor is logged;
/// the rest is trusted.
fn extra_certs(file: &Path) -> Vec<CertificateDer<'static>> {
    let found = rustls_native_certs::load_certs_from_paths(Some(file), None);
    let total = found.certs.len();
    let usable: Vec<_> = found
        .certs
        .into_iter()
        .filter(|cert| rustls::RootCertStore::empty().add(cert.clone()).is_ok())
        .collect();
    if usable.is_empty() || usable.len() < total || !found.errors.is_empty() {
        tracing::warn!(
            file = %file.display(),
            added = usable.len(),
            refused = total - usable.len(),
            errors = ?found.errors,
            "extra CA certificates not (all) loaded"
        );
    }
    usable
}
