//! HTTPS for the tests and the bench: a test CA, server certificates signed by it (a good one
//! for 127.0.0.1/localhost, and one of each kind a client must refuse), and a TLS proxy in front
//! of a plain-HTTP server (DynamoDB Local, the Graph API stand-in), so the functions' HTTPS
//! clients are exercised as on AWS (README, "Benchmark").

// The bench includes this file too and uses only `make_tls` and `https_proxy`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A test CA and a certificate for 127.0.0.1/localhost signed by it; the CA's PEM file is what
/// the functions trust (`EXTRA_CA_CERTS`).
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    /// The CA's certificate (PEM), the file a client trusts.
    pub ca_file: PathBuf,
    /// The server's certificate (DER), for checking a verifier directly.
    pub server_cert: CertificateDer<'static>,
}

pub fn make_tls(dir: &Path) -> Tls {
    // A name of its own for each CA: a CA named like the trusted one would be looked up as it,
    // and refused for its signature (BadSignature), not as an unknown issuer.
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let ca = TestCa::new(&format!(
        "sandbox test CA {}",
        MADE.fetch_add(1, Ordering::Relaxed)
    ));
    let identity = ca.identity(Presented::Good);
    let ca_file = dir.join("test-ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write the CA file");
    let config = server_config(&identity, rustls::DEFAULT_VERSIONS);
    Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_file,
        server_cert: identity.chain[0].clone(),
    }
}

/// Terminates TLS on a free port and forwards the bytes to `backend` (`http://host:port`).
pub async fn https_proxy(tls: &Tls, backend: &str) -> String {
    proxy(tls.acceptor.clone(), backend, Arc::default()).await
}

/// A certificate authority made for one test run, which a client may or may not trust.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert: rcgen::Certificate,
}

/// What a server presents: a good certificate, or one with the fault a client must refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// From the CA, for 127.0.0.1 and localhost, valid now, usable by any server.
    Good,
    /// Its validity ended yesterday (`not_after` in the past).
    Expired,
    /// Its validity starts tomorrow (`not_before` in the future).
    NotYetValid,
    /// Signed by its own key, not by the CA.
    SelfSigned,
    /// Its extended key usage is client authentication only, not server authentication.
    ClientAuthOnly,
    /// Signed by an intermediate that the CA signed but marked as not a CA
    /// (BasicConstraints CA:FALSE); the server sends both.
    ThroughNonCaIntermediate,
    /// For another server's name only.
    OtherName,
    /// From another CA, one the client does not trust.
    UnknownCa,
    /// The good certificate, but the server signs its handshake with another key.
    WrongKey,
}

/// A server's certificate chain (its own first) and the key it signs its handshake with.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// The names every test server certificate is for: the address the tests connect to.
fn for_this_host() -> CertificateParams {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "sandbox test server");
    params
}

fn private_key(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(key.serialize_der().into())
}

impl TestCa {
    /// A new CA, named `name`.
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            issuer: Issuer::new(params, key),
            cert,
        }
    }

    /// The CA's certificate as PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Trust roots holding this CA alone.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).expect("a CA root");
        roots
    }

    /// A server identity of the `kind` asked for, from this CA unless `kind` says otherwise.
    pub fn identity(&self, kind: Presented) -> Identity {
        let day = time::Duration::days(1);
        let now = time::OffsetDateTime::now_utc();
        let mut params = for_this_host();
        let key = KeyPair::generate().expect("server key");
        let signed = |params: &CertificateParams| -> Identity {
            let cert = params.signed_by(&key, &self.issuer).expect("certificate");
            Identity {
                chain: vec![cert.der().clone()],
                key: private_key(&key),
            }
        };
        match kind {
            Presented::Good => signed(&params),
            Presented::Expired => {
                params.not_before = now - 30 * day;
                params.not_after = now - day;
                signed(&params)
            }
            Presented::NotYetValid => {
                params.not_before = now + day;
                params.not_after = now + 30 * day;
                signed(&params)
            }
            Presented::SelfSigned => Identity {
                chain: vec![params.self_signed(&key).expect("certificate").der().clone()],
                key: private_key(&key),
            },
            Presented::ClientAuthOnly => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                signed(&params)
            }
            Presented::ThroughNonCaIntermediate => {
                let middle_key = KeyPair::generate().expect("intermediate key");
                let mut middle = CertificateParams::new(Vec::<String>::new()).expect("params");
                middle
                    .distinguished_name
                    .push(DnType::CommonName, "sandbox test intermediate, not a CA");
                middle.is_ca = IsCa::ExplicitNoCa;
                let middle_cert = middle
                    .signed_by(&middle_key, &self.issuer)
                    .expect("intermediate certificate");
                let middle = Issuer::new(middle, middle_key);
                let cert = params.signed_by(&key, &middle).expect("certificate");
                Identity {
                    chain: vec![cert.der().clone(), middle_cert.der().clone()],
                    key: private_key(&key),
                }
            }
            Presented::OtherName => {
                let mut params =
                    CertificateParams::new(vec!["dynamodb.us-east-1.amazonaws.com".to_owned()])
                        .expect("params");
                params
                    .distinguished_name
                    .push(DnType::CommonName, "sandbox test server");
                signed(&params)
            }
            Presented::UnknownCa => TestCa::new("another test CA").identity(Presented::Good),
            Presented::WrongKey => {
                let mut identity = signed(&params);
                identity.key = private_key(&KeyPair::generate().expect("another key"));
                identity
            }
        }
    }
}

/// Server settings presenting `identity` over `versions` only, with aws-lc-rs's crypto. The
/// key is not matched to the certificate, so a server can sign with the wrong one.
fn server_config(
    identity: &Identity,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = provider
        .key_provider
        .load_private_key(identity.key.clone_key())
        .expect("a signing key");
    let certified = rustls::sign::CertifiedKey::new(identity.chain.clone(), key);
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("TLS versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)))
}

/// The rustls error in `error`'s chain (an `SdkError`'s, a `reqwest::Error`'s). tokio-rustls
/// hands it on inside an `std::io::Error`, whose `source()` skips it: it is its `get_ref()`.
pub fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    std::iter::successors(Some(error), |&e| e.source()).find_map(|e| {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
        rustls_error(inner)
    })
}

/// A TLS server in front of a plain-HTTP backend, speaking one TLS version only.
pub struct TlsServer {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    versions: Arc<Mutex<Vec<rustls::ProtocolVersion>>>,
}

impl TlsServer {
    /// Presents `identity` over `version` alone, and forwards each connection to `backend`
    /// (`http://host:port`).
    pub async fn start(
        identity: &Identity,
        version: &'static rustls::SupportedProtocolVersion,
        backend: &str,
    ) -> Self {
        let acceptor =
            tokio_rustls::TlsAcceptor::from(Arc::new(server_config(identity, &[version])));
        let versions = Arc::default();
        let url = proxy(acceptor, backend, Arc::clone(&versions)).await;
        Self { url, versions }
    }

    /// The TLS version of each handshake that completed, in order.
    pub fn negotiated(&self) -> Vec<rustls::ProtocolVersion> {
        self.versions.lock().expect("versions").clone()
    }
}

/// Terminates TLS on a free port, notes each completed handshake's version in `versions`, and
/// forwards the bytes to `backend` (`http://host:port`).
async fn proxy(
    acceptor: tokio_rustls::TlsAcceptor,
    backend: &str,
    versions: Arc<Mutex<Vec<rustls::ProtocolVersion>>>,
) -> String {
    let backend: SocketAddr = backend
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("backend address");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let port = listener.local_addr().expect("proxy address").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let versions = Arc::clone(&versions);
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                if let Some(version) = tls.get_ref().1.protocol_version() {
                    versions.lock().expect("versions").push(version);
                }
                let Ok(mut upstream) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = upstream.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    format!("https://127.0.0.1:{port}")
}
