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
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::ErrorKind;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use hyper::Uri;
use hyper_util::client::legacy::connect::{
    capture_connection, CaptureConnection, HttpConnector as TcpConnector, HttpInfo,
};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
#[cfg(not(feature = "bench-own-verifier"))]
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tower_service::Service;

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

/// rustls's own certificate verifier ([`WebPkiServerVerifier`], as [`trusting`] builds it),
/// built when first needed over trust roots that load then, or when [`DeferredRoots::load`] is
/// called, not when the settings are built.
///
/// Loading a platform bundle (about 145 roots, 220 KB of PEM on Amazon Linux 2023) takes about
/// a millisecond and a half of init, and nothing before a server's certificate arrives needs it:
/// so init loads it beside its other work instead of before it (README, "Benchmark"). Every
/// check is the verifier's: this type only decides when it is built. The signature schemes a
/// handshake offers are ring's, the ones the verifier supports, so the first message of a
/// handshake does not wait for the roots.
pub struct DeferredRoots {
    verifier: LazyLock<Verifier, LoadVerifier>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

type LoadVerifier = Box<dyn FnOnce() -> Verifier + Send>;

#[cfg(not(feature = "bench-own-verifier"))]
type Verifier = Result<Arc<WebPkiServerVerifier>, rustls::client::VerifierBuilderError>;

#[cfg(not(feature = "bench-own-verifier"))]
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
    #[cfg(not(feature = "bench-own-verifier"))]
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

#[cfg(not(feature = "bench-own-verifier"))]
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

/// `make bench`'s comparison (feature `bench-own-verifier`): the checks of
/// rustls's verifier assembled by hand from the functions rustls exports, as before
/// issue 18. `rustls::client::WebPkiServerVerifier`'s builder links the revocation-list parser, which this does not.
#[cfg(feature = "bench-own-verifier")]
mod own_verifier {
    use super::*;
    use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
    use rustls::server::ParsedCertificate;

    pub(super) type Verifier = rustls::RootCertStore;

    pub(super) fn verifier(roots: rustls::RootCertStore) -> Verifier {
        roots
    }

    impl ServerCertVerifier for DeferredRoots {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                &self.verifier,
                intermediates,
                now,
                self.algorithms.all,
            )?;
            verify_server_name(&cert, server_name)?;
            Ok(ServerCertVerified::assertion())
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
}
#[cfg(feature = "bench-own-verifier")]
use own_verifier::{verifier, Verifier};

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
#[cfg(not(feature = "bench-webpki-roots"))]
pub fn trust_roots() -> rustls::RootCertStore {
    let bundles = KNOWN_BUNDLES.map(std::path::Path::new);
    roots_from(rustls_native_certs::load_native_certs(), &bundles)
}

/// `make bench`'s comparison (feature `bench-webpki-roots`): Mozilla's roots compiled in, plus
/// the certificates of `BENCH_EXTRA_CA_FILE` (the bench's test CA, one certificate), so the
/// bench's servers are trusted without reading a platform bundle.
#[cfg(feature = "bench-webpki-roots")]
pub fn trust_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(extra) = std::env::var_os("BENCH_EXTRA_CA_FILE") {
        let found = rustls_native_certs::load_certs_from_paths(Some(extra.as_ref()), None);
        roots.add_parsable_certificates(found.certs);
    }
    roots
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

/// The request header that marks init's warm-up ([`crate::app::warm_up`]): the connector opens
/// the connection that request would use, keeps it for the next request to the same server, and
/// fails the request with [`OpenedAhead`] instead of sending it. The first request then finds
/// its TCP connection and TLS session ready, and init waits for no round trip to DynamoDB. The
/// request never succeeds: had the header reached a write, the write would fail, not be reported
/// as made.
pub(crate) const WARM_UP: &str = "x-sandbox-warm-up";

/// The interceptor that adds the [`WARM_UP`] header to every request of the client it is given
/// to: only [`crate::app::warm_up`] gives it to one, a copy of the DynamoDB client for one read.
#[derive(Debug)]
pub(crate) struct OpenAhead;

impl Intercept for OpenAhead {
    fn name(&self) -> &'static str {
        "OpenAhead"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context.request_mut().headers_mut().insert(WARM_UP, "open");
        Ok(())
    }
}

/// How a [`WARM_UP`] request ends when its connection was opened and kept: an error of the
/// SDK's "other" class, which it does not retry.
#[derive(Debug, thiserror::Error)]
#[error("connection opened ahead and kept for the next request; the request was not sent")]
pub(crate) struct OpenedAhead;

/// Whether `error` (a warm-up's) says the connection was opened ahead.
pub(crate) fn opened_ahead(error: &(dyn Error + 'static)) -> bool {
    find::<OpenedAhead>(error).is_some()
}

/// How long an idle connection stays in use: hyper-util's default for its pool (and reqwest's),
/// given to the pool explicitly, and the limit for a connection opened ahead ([`WARM_UP`],
/// [`Ahead`]).
const IDLE: Duration = Duration::from_secs(90);

/// Whether a connection opened ahead at `opened` may still be handed over: a server may have
/// closed one idle longer than [`IDLE`], so a new one is opened instead.
fn still_fresh(opened: Instant) -> bool {
    opened.elapsed() < IDLE
}

type Pool = Client<Opener, SdkBody>;
type Tls = hyper_rustls::HttpsConnector<TcpConnector>;
type Stream = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;

#[derive(Debug, Clone)]
struct Connector {
    pool: Pool,
    opener: Opener,
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
            ahead: Arc::default(),
        };
        let pool = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .build(opener.clone());
        Self {
            pool,
            opener,
            read_timeout,
        }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let read_timeout = self.read_timeout;
        if request.headers().contains_key(WARM_UP) {
            let opened = self.opener.clone().open_ahead(request.uri().clone());
            return HttpConnectorFuture::new(async move {
                opened.await.map_err(classify_connect)?;
                Err(ConnectorError::other(OpenedAhead.into(), None))
            });
        }
        // Connection poisoning, as the SDK's own client does it: its interceptor asks for the
        // connection after a transient error (a 500, a throttle, a timeout) and poisons it, so
        // the pool drops it and the retry opens a new one.
        let captured = capture_connection(&mut request);
        if let Some(smithy) = request.extensions().get::<CaptureSmithyConnection>() {
            smithy.set_connection_retriever(move || connection_metadata(&captured));
        }
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

/// The pool's way to a server: TCP, then TLS for `https://`; or the connection the warm-up
/// opened ahead, once, if it is to the same server and has not been idle longer than [`IDLE`]
/// (after that, a server may have closed it: a new one is opened instead).
#[derive(Clone)]
struct Opener {
    tls: Tls,
    /// The bound on opening a connection: TCP and the TLS handshake together, as the SDK's
    /// own client bounds it.
    connect_timeout: Option<Duration>,
    ahead: Arc<Mutex<Option<KeptStream>>>,
}

struct KeptStream {
    origin: String,
    stream: Stream,
    opened: Instant,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener").finish_non_exhaustive()
    }
}

/// The server a URI names, as the pool tells servers apart: scheme and authority.
fn origin(uri: &Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or_default(),
        uri.authority().map(|a| a.as_str()).unwrap_or_default()
    )
}

impl Opener {
    /// Opens a connection to `uri`'s server and keeps it for the next request there.
    async fn open_ahead(mut self, uri: Uri) -> Result<(), BoxError> {
        std::future::poll_fn(|cx| self.tls.poll_ready(cx)).await?;
        let stream = self.open(uri.clone()).await?;
        *self.ahead() = Some(KeptStream {
            origin: origin(&uri),
            stream,
            opened: Instant::now(),
        });
        Ok(())
    }

    /// The connection opened ahead to `uri`'s server, if it is still fresh; it is given once.
    fn take_ahead(&self, uri: &Uri) -> Option<Stream> {
        let ahead = self.ahead().take()?;
        (ahead.origin == origin(uri) && still_fresh(ahead.opened)).then_some(ahead.stream)
    }

    /// A new connection to `uri`'s server (TCP, then TLS for `https://`), within the connect
    /// timeout.
    fn open(&mut self, uri: Uri) -> impl std::future::Future<Output = Result<Stream, BoxError>> {
        let opening = self.tls.call(uri);
        let limit = self.connect_timeout;
        async move {
            match limit {
                Some(limit) => tokio::time::timeout(limit, opening)
                    .await
                    .map_err(|_| BoxError::from(ConnectTimedOut(limit)))?,
                None => opening.await,
            }
        }
    }

    fn ahead(&self) -> std::sync::MutexGuard<'_, Option<KeptStream>> {
        // A poisoned lock only means a thread panicked while swapping the slot: it is whole.
        self.ahead.lock().unwrap_or_else(|e| e.into_inner())
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
        match self.take_ahead(&uri) {
            Some(stream) => Box::pin(std::future::ready(Ok(stream))),
            None => Box::pin(self.open(uri)),
        }
    }
}

/// A connector layer for reqwest (`ClientBuilder::connector_layer`) that can open one connection
/// ahead of the request that will use it, as [`WARM_UP`] does for the DynamoDB client: the Graph
/// client's init opens its connection to Meta (TCP, the TLS handshake) without sending Meta a
/// request. [`Ahead::open`] arms it and makes one request; the connector opens that request's
/// connection, keeps it, and fails the request instead of handing the connection over. The next
/// connection the client asks for is the kept one, if it has not been idle longer than [`IDLE`].
///
/// The client using it must talk to one server only (the Graph client: `META_GRAPH_BASE_URL`):
/// reqwest does not show its connector the server it connects to, so the kept connection is not
/// matched to one.
#[derive(Clone, Default)]
pub struct Ahead {
    armed: Arc<std::sync::atomic::AtomicBool>,
    kept: Arc<Mutex<Option<Kept>>>,
}

/// A connection of the wrapped connector's type, and when it was opened.
type Kept = (Box<dyn std::any::Any + Send>, Instant);

impl std::fmt::Debug for Ahead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ahead").finish_non_exhaustive()
    }
}

/// The error the armed connector fails its request with: the connection was opened and kept.
#[derive(Debug, thiserror::Error)]
#[error("connection opened ahead and kept for the next request")]
pub struct KeptAhead;

impl Ahead {
    /// Opens the connection `request` would use and keeps it; `request` itself is not sent.
    /// Whether a connection is kept.
    pub async fn open<F, T, E>(&self, request: F) -> bool
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        // Disarmed however this ends, cancelled (dropped) too: an armed connector would keep the
        // connection of the next real request and fail it.
        let disarm = Disarm(&self.armed);
        // It fails (KeptAhead) once the connection is kept, or as the connection failed.
        let _ = request.await;
        drop(disarm);
        self.slot().is_some()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<(Box<dyn std::any::Any + Send>, Instant)>> {
        // A poisoned lock only means a thread panicked while swapping the slot: it is whole.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept connection, if it is still fresh; it is given once.
    fn take<T: 'static>(&self) -> Option<T> {
        let (conn, opened) = self.slot().take()?;
        if !still_fresh(opened) {
            return None;
        }
        conn.downcast::<T>().ok().map(|conn| *conn)
    }
}

/// Disarms an [`Ahead`] when dropped.
struct Disarm<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Disarm<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl<S> tower_layer::Layer<S> for Ahead {
    type Service = AheadConnector<S>;

    fn layer(&self, inner: S) -> AheadConnector<S> {
        AheadConnector {
            inner,
            ahead: self.clone(),
        }
    }
}

/// The service [`Ahead`] wraps a connector in.
#[derive(Clone)]
pub struct AheadConnector<S> {
    inner: S,
    ahead: Ahead,
}

impl<S, R> Service<R> for AheadConnector<S>
where
    S: Service<R, Error = BoxError> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, target: R) -> Self::Future {
        if self
            .ahead
            .armed
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            let opening = self.inner.call(target);
            let ahead = self.ahead.clone();
            return Box::pin(async move {
                let conn = opening.await?;
                *ahead.slot() = Some((Box::new(conn), Instant::now()));
                Err(KeptAhead.into())
            });
        }
        match self.ahead.take::<S::Response>() {
            Some(conn) => Box::pin(std::future::ready(Ok(conn))),
            None => Box::pin(self.inner.call(target)),
        }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use super::*;

    /// An opener that keeps (connection, opened-at) for `server`'s origin.
    async fn opened_ahead(server: &Uri, age: Duration) -> Opener {
        let connector = Connector::new(&deferred_nothing(), (None, None));
        let opener = connector.opener;
        opener
            .clone()
            .open_ahead(server.clone())
            .await
            .expect("a connection to the local listener");
        let mut ahead = opener.ahead();
        if let Some(ahead) = ahead.as_mut() {
            ahead.opened = Instant::now().checked_sub(age).expect("a past instant");
        }
        drop(ahead);
        opener
    }

    fn deferred_nothing() -> rustls::ClientConfig {
        deferred(Arc::new(DeferredRoots::new(rustls::RootCertStore::empty)))
    }

    #[tokio::test]
    async fn a_connection_opened_ahead_serves_one_request_to_its_server_while_fresh() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let server: Uri = format!("http://{address}/").parse().expect("uri");
        let same_server: Uri = format!("http://{address}/other/path").parse().expect("uri");
        let other_server: Uri = format!("http://localhost:{}/", address.port())
            .parse()
            .expect("uri");

        let opener = opened_ahead(&server, Duration::ZERO).await;
        assert!(opener.take_ahead(&same_server).is_some());
        assert!(opener.take_ahead(&server).is_none(), "given once");

        let opener = opened_ahead(&server, Duration::ZERO).await;
        assert!(opener.take_ahead(&other_server).is_none());
        assert!(opener.take_ahead(&server).is_none(), "dropped, not kept");

        let opener = opened_ahead(&server, IDLE - Duration::from_secs(1)).await;
        assert!(opener.take_ahead(&server).is_some());
        let opener = opened_ahead(&server, IDLE).await;
        assert!(opener.take_ahead(&server).is_none(), "idle too long");
    }

    /// A local server that answers every request on every connection `200 ok`, counting the
    /// connections it accepted and the bytes it read.
    async fn answering_server() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (connections, bytes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (accepted, read) = (Arc::clone(&connections), Arc::clone(&bytes));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                accepted.fetch_add(1, SeqCst);
                let read = Arc::clone(&read);
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = stream.read(&mut buffer).await {
                        read.fetch_add(n, SeqCst);
                        if !buffer[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            continue;
                        }
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, connections, bytes)
    }

    /// `counter` once it has not moved for 50 ms (the server counts on its own tasks).
    async fn settles(counter: &AtomicUsize) -> usize {
        let mut last = counter.load(SeqCst);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = counter.load(SeqCst);
            if now == last {
                return now;
            }
            last = now;
        }
    }

    fn dynamodb_at(endpoint: &str) -> aws_sdk_dynamodb::Client {
        use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(sdk_client_with(Arc::new(deferred_nothing())))
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("a", "b", None, None, "test"))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    #[tokio::test]
    async fn a_write_carrying_the_warm_up_header_fails_unsent_instead_of_being_reported_made() {
        use aws_sdk_dynamodb::types::AttributeValue;
        let (endpoint, connections, bytes) = answering_server().await;
        let client = dynamodb_at(&endpoint);
        let warm = aws_sdk_dynamodb::Client::from_conf(
            client.config().to_builder().interceptor(OpenAhead).build(),
        );
        let written = warm
            .put_item()
            .table_name("t")
            .item("pk", AttributeValue::S("k".into()))
            .send()
            .await;
        let error = written.expect_err("a write the connector did not send must not succeed");
        assert!(super::opened_ahead(&error), "{error:?}");
        // Not retried, and nothing sent on the connection it opened, which the next request uses.
        assert_eq!(settles(&connections).await, 1);
        assert_eq!(bytes.load(SeqCst), 0);
        client
            .list_tables()
            .send()
            .await
            .expect("the next request, on the kept connection");
        assert_eq!(connections.load(SeqCst), 1);
    }

    #[tokio::test]
    async fn an_open_ahead_cancelled_before_it_connects_leaves_the_next_request_alone() {
        let (url, connections, _) = answering_server().await;
        let ahead = Ahead::default();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(deferred_nothing())
            .connector_layer(ahead.clone())
            .build()
            .expect("a client");
        // The opening request never reaches the connector: init's time limit drops it first.
        let never = std::future::pending::<Result<(), ()>>();
        let opening = tokio::time::timeout(Duration::from_millis(20), ahead.open(never));
        assert!(opening.await.is_err(), "cancelled");
        let response = client
            .get(&url)
            .send()
            .await
            .expect("the next request is sent, not kept ahead");
        assert_eq!(response.status(), 200);
        assert_eq!(settles(&connections).await, 1);
    }

    #[test]
    fn a_connection_kept_ahead_for_reqwest_is_given_once_while_fresh() {
        let ahead = Ahead::default();
        let keep = |age: Duration| {
            let opened = Instant::now().checked_sub(age).expect("a past instant");
            *ahead.slot() = Some((Box::new(7u32), opened));
        };
        keep(Duration::ZERO);
        assert_eq!(ahead.take::<u32>(), Some(7));
        assert_eq!(ahead.take::<u32>(), None, "given once");
        keep(IDLE - Duration::from_secs(1));
        assert_eq!(ahead.take::<u32>(), Some(7));
        keep(IDLE);
        assert_eq!(ahead.take::<u32>(), None, "idle too long");
        keep(Duration::ZERO);
        assert_eq!(
            ahead.take::<u64>(),
            None,
            "not a connection of this connector"
        );
    }
}
