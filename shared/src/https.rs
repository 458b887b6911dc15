//! HTTPS egress: the HTTP client under the DynamoDB client, and the TLS settings it shares
//! with the Graph client: HTTP/1.1 on hyper, the HTTP stack `lambda_runtime` already links, over
//! rustls with ring, trusting Mozilla's roots (webpki-roots) through rustls's own verifier.
//!
//! Each piece was decided by `make bench` against the maintained code it could be (README,
//! "Benchmark", "Decisions"). The HTTP client is ours: the SDK's `aws-smithy-http-client` links
//! HTTP/2 and an HTTP-proxy matcher a function calling DynamoDB from Lambda never uses, which put
//! create over its 5 MB budget. It is the SDK's documented extension point for an HTTP client
//! ([`HttpClient`]) and behaves as the SDK's own client does where it matters to retries: the
//! same error classes, connection poisoning after a transient error (the SDK's interceptor
//! reaches the connection through hyper-util's `capture_connection`), and a connect timeout that
//! bounds the TLS handshake as well as TCP. Everything else is maintained code: rustls's
//! `WebPkiServerVerifier`, webpki-roots, no warm-up connection at init.

use std::error::Error;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::ErrorKind;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper::Uri;
use hyper_util::client::legacy::connect::{
    capture_connection, CaptureConnection, HttpConnector as TcpConnector, HttpInfo,
};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The process's TLS client settings: ring's crypto, TLS 1.2 and 1.3, and [`trust_roots`],
/// through rustls's own verifier, built on the first handshake ([`DeferredRoots`]). Shared by
/// both clients.
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

/// The variable naming a PEM file whose certificates are trusted beside Mozilla's roots: a
/// private CA, or the bench's and tests' test CA. Unset on Lambda.
pub const EXTRA_CA_CERTS: &str = "EXTRA_CA_CERTS";

/// The trust roots: Mozilla's (webpki-roots, compiled in: no file to find or read on Lambda),
/// plus the certificates of the file [`EXTRA_CA_CERTS`] names, when it is set.
pub fn trust_roots() -> rustls::RootCertStore {
    let extra = std::env::var_os(EXTRA_CA_CERTS).filter(|v| !v.is_empty());
    roots_with(extra.as_deref().map(std::path::Path::new))
}

/// Mozilla's roots, plus the certificates in `extra` (a PEM file). A file that cannot be read
/// or holds no certificate is logged and adds nothing.
pub fn roots_with(extra: Option<&std::path::Path>) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(file) = extra {
        let found = rustls_native_certs::load_certs_from_paths(Some(file), None);
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 || !found.errors.is_empty() {
            tracing::warn!(
                file = %file.display(),
                added,
                errors = ?found.errors,
                "extra CA certificates not (all) loaded"
            );
        }
    }
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

/// How long an idle connection stays in the pool: hyper-util's default (and reqwest's), given
/// to the pool explicitly.
const IDLE: Duration = Duration::from_secs(90);

type Pool = Client<Opener, SdkBody>;
type Tls = hyper_rustls::HttpsConnector<TcpConnector>;
type Stream = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;

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
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let opener = Opener {
            tls: https,
            connect_timeout,
        };
        let pool = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .build(opener);
        Self { pool, read_timeout }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        // Connection poisoning, as the SDK's own client does it: its interceptor asks for the
        // connection after a transient error (a 500, a throttle, a timeout) and poisons it, so
        // the pool drops it and the retry opens a new one.
        let captured = capture_connection(&mut request);
        if let Some(smithy) = request.extensions().get::<CaptureSmithyConnection>() {
            smithy.set_connection_retriever(move || connection_metadata(&captured));
        }
        let read_timeout = self.read_timeout;
        let response = self.pool.request(request);
        HttpConnectorFuture::new(async move {
            let response = within(read_timeout, response).await?.map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// `work`, bounded by the read timeout when there is one.
async fn within<T>(
    limit: Option<Duration>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, ConnectorError> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|e| ConnectorError::timeout(e.into())),
        None => Ok(work.await),
    }
}

/// The pool's way to a server: TCP, then TLS for `https://`, both within the connect timeout,
/// as the SDK's own client bounds them.
#[derive(Clone)]
struct Opener {
    tls: Tls,
    connect_timeout: Option<Duration>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener").finish_non_exhaustive()
    }
}

impl tower_service::Service<Uri> for Opener {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tls.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let opening = self.tls.call(uri);
        let limit = self.connect_timeout;
        Box::pin(async move {
            match limit {
                Some(limit) => tokio::time::timeout(limit, opening)
                    .await
                    .map_err(|_| BoxError::from(ConnectTimedOut(limit)))?,
                None => opening.await,
            }
        })
    }
}

/// The SDK's error classes, as its own client assigns them: connection failures, resets and
/// closed connections are I/O (retried), a timeout is a timeout (retried), a truncated
/// response is transient (retried), a malformed request is the caller's, anything else is
/// not retried.
fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    if error.is_connect() {
        return classify_connect(error.into());
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

/// A failure to open a connection: a timeout if it took longer than the connect timeout,
/// otherwise I/O (both retried).
fn classify_connect(error: BoxError) -> ConnectorError {
    if find::<ConnectTimedOut>(error.as_ref()).is_some() {
        ConnectorError::timeout(error)
    } else {
        ConnectorError::io(error)
    }
}

/// Opening a connection (TCP and the TLS handshake) took longer than the connect timeout.
#[derive(Debug, thiserror::Error)]
#[error("no connection within the connect timeout ({0:?}): TCP and TLS handshake")]
struct ConnectTimedOut(Duration);

/// What the SDK's retry machinery may know of the connection a request used: where it went,
/// and how to poison it (the pool then drops it instead of reusing it).
fn connection_metadata(captured: &CaptureConnection) -> Option<ConnectionMetadata> {
    let connected = captured.connection_metadata();
    let connected = connected.as_ref()?;
    let mut extras = hyper::http::Extensions::new();
    connected.get_extras(&mut extras);
    let info = extras.get::<HttpInfo>();
    let captured = captured.clone();
    let mut builder = ConnectionMetadata::builder()
        .proxied(connected.is_proxied())
        .poison_fn(move || {
            if let Some(connected) = captured.connection_metadata().as_ref() {
                connected.poison();
            }
        });
    builder
        .set_local_addr(info.map(HttpInfo::local_addr))
        .set_remote_addr(info.map(HttpInfo::remote_addr));
    Some(builder.build())
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
