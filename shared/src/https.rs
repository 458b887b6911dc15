//! The HTTPS connection under the DynamoDB client (and the TLS settings the Graph client
//! shares): HTTP/1.1 on hyper, the HTTP stack `lambda_runtime` already links, over rustls
//! with ring.
//!
//! The SDK's own client (`aws-smithy-http-client`) always links HTTP/2 and an HTTP-proxy
//! matcher, which a function calling DynamoDB from Lambda never uses: replacing it took about
//! 0.8 MB off every binary (README, "Benchmark"). This is the SDK's documented extension point for an
//! HTTP client ([`HttpClient`]), with the same error classes as the SDK's own, so its retries
//! behave the same.

use std::error::Error;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::ErrorKind;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The process's TLS client settings: ring's crypto, TLS 1.2 and 1.3, and the platform's
/// trust roots ([`trust_roots`]), which load apart from the settings ([`DeferredRoots`]): init
/// starts loading them on a thread of its own ([`preload_trust_roots`]) while it builds the
/// clients and opens the warm-up connection. Shared by both clients.
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: LazyLock<Arc<rustls::ClientConfig>> =
        LazyLock::new(|| Arc::new(deferred(Arc::clone(&PLATFORM_ROOTS))));
    Arc::clone(&CONFIG)
}

/// The platform's trust roots, behind [`tls_config`].
static PLATFORM_ROOTS: LazyLock<Arc<DeferredRoots>> =
    LazyLock::new(|| Arc::new(DeferredRoots::new(trust_roots)));

/// Loads the platform's trust roots on the calling thread, unless they are loaded already. A
/// handshake that needs them meanwhile waits for this load rather than starting another.
pub fn preload_trust_roots() {
    PLATFORM_ROOTS.load();
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

/// rustls's own certificate verification (webpki, the verifier [`trusting`] builds), over trust
/// roots that load once, when first needed or when [`DeferredRoots::load`] is called, not when
/// the settings are built.
///
/// Loading a platform bundle (about 145 roots, 220 KB of PEM on Amazon Linux 2023) takes about
/// a millisecond and a half of init, and nothing before a server's certificate arrives needs it:
/// so init loads it beside its other work instead of before it (README, "Benchmark"). Every
/// check is rustls's: the chain and the name by its `WebPkiServerVerifier`, the handshake
/// signatures by the functions that verifier calls, with ring's algorithms.
pub struct DeferredRoots {
    verifier: LazyLock<Option<Arc<WebPkiServerVerifier>>, LoadRoots>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

type LoadRoots = Box<dyn FnOnce() -> Option<Arc<WebPkiServerVerifier>> + Send>;

impl DeferredRoots {
    /// Roots that `load` yields, when first needed.
    pub fn new(load: impl FnOnce() -> rustls::RootCertStore + Send + 'static) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let build: LoadRoots = Box::new(move || {
            // No roots (logged where they were looked for): every certificate is refused, as
            // with an empty root store.
            WebPkiServerVerifier::builder_with_provider(Arc::new(load()), provider)
                .build()
                .ok()
        });
        Self {
            verifier: LazyLock::new(build),
            algorithms,
        }
    }

    /// Loads the roots now, on this thread, unless they are loaded already.
    pub fn load(&self) {
        LazyLock::force(&self.verifier);
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
        match &*self.verifier {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Where the CA bundle is on the Linux layouts we know, tried in order when `SSL_CERT_FILE`
/// (or, without it, the platform's own lookup) yields no certificate: Amazon Linux 2023 and
/// Fedora, then Debian and Ubuntu.
pub const KNOWN_BUNDLES: [&str; 2] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// The trust roots: the file `SSL_CERT_FILE` names (the template sets it on Lambda, so no
/// certificate folder is scanned), else the platform's. A wrong `SSL_CERT_FILE` does not
/// leave the function unable to reach DynamoDB: the first of [`KNOWN_BUNDLES`] that has
/// certificates is used instead, with a warning.
pub fn trust_roots() -> rustls::RootCertStore {
    let bundles = KNOWN_BUNDLES.map(std::path::Path::new);
    roots_from(rustls_native_certs::load_native_certs(), &bundles)
}

/// The roots `configured` yielded, else those of the first of `fallbacks` that has any.
pub fn roots_from(
    configured: rustls_native_certs::CertificateResult,
    fallbacks: &[&std::path::Path],
) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(configured.certs);
    if !roots.is_empty() {
        if !configured.errors.is_empty() {
            tracing::warn!(errors = ?configured.errors, "some trust roots could not be loaded");
        }
        return roots;
    }
    for bundle in fallbacks {
        let found = rustls_native_certs::load_certs_from_paths(Some(bundle), None);
        roots.add_parsable_certificates(found.certs);
        if !roots.is_empty() {
            tracing::warn!(
                errors = ?configured.errors,
                bundle = %bundle.display(),
                "no trust roots where SSL_CERT_FILE points; using a known CA bundle"
            );
            return roots;
        }
    }
    tracing::error!(errors = ?configured.errors, "no trust roots found: HTTPS connections will fail");
    roots
}

/// The SDK's HTTP client: one connection pool per timeout setting (the DynamoDB client has
/// one), HTTP/1.1, `https://` or, for DynamoDB Local, `http://`, with [`tls_config`].
pub fn sdk_client() -> SharedHttpClient {
    sdk_client_with(tls_config())
}

/// [`sdk_client`] with other TLS settings (tests trust a test CA with it).
pub fn sdk_client_with(tls: Arc<rustls::ClientConfig>) -> SharedHttpClient {
    SharedHttpClient::new(Https {
        tls,
        connectors: Mutex::default(),
    })
}

#[derive(Debug)]
struct Https {
    tls: Arc<rustls::ClientConfig>,
    /// (connect timeout, read timeout) → the connector built for them.
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

impl HttpClient for Https {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        // A poisoned lock only means another thread panicked while pushing: the list is intact.
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, connector)) = connectors.iter().find(|(k, _)| *k == key) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(Connector::new(&self.tls, key));
        connectors.push((key, connector.clone()));
        connector
    }
}

type Pool = Client<hyper_rustls::HttpsConnector<TcpConnector>, SdkBody>;

#[derive(Debug, Clone)]
struct Connector {
    pool: Pool,
    read_timeout: Option<Duration>,
}

impl Connector {
    fn new(tls: &rustls::ClientConfig, (connect_timeout, read_timeout): Timeouts) -> Self {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(connect_timeout);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let pool = Client::builder(TokioExecutor::new()).build(https);
        Self { pool, read_timeout }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let response = self.pool.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, response)
                    .await
                    .map_err(|e| ConnectorError::timeout(e.into()))?,
                None => response.await,
            };
            let response = response.map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The SDK's error classes, as its own client assigns them: connection failures, resets and
/// closed connections are I/O (retried), a timeout is a timeout (retried), a truncated
/// response is transient (retried), a malformed request is the caller's, anything else is
/// not retried.
fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    if error.is_connect() {
        return ConnectorError::io(error.into());
    }
    let kind = match find::<hyper::Error>(&error) {
        Some(e) if e.is_timeout() => Class::Timeout,
        Some(e) if e.is_user() => Class::User,
        Some(e) if e.is_closed() || e.is_canceled() => Class::Io,
        Some(e) if e.is_incomplete_message() => Class::Transient,
        _ if find::<std::io::Error>(&error).is_some() => Class::Io,
        _ => Class::Other,
    };
    let error: BoxError = error.into();
    match kind {
        Class::Timeout => ConnectorError::timeout(error),
        Class::User => ConnectorError::user(error),
        Class::Io => ConnectorError::io(error),
        Class::Transient => ConnectorError::other(error, Some(ErrorKind::TransientError)),
        Class::Other => ConnectorError::other(error, None),
    }
}

enum Class {
    Timeout,
    User,
    Io,
    Transient,
    Other,
}

/// The first error of type `E` in `error`'s chain.
fn find<'a, E: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a E> {
    std::iter::successors(Some(error), |&e| e.source()).find_map(|e| e.downcast_ref::<E>())
}
