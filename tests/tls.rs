//! HTTPS for the tests and the bench: a test CA, a certificate for 127.0.0.1 signed by it, and
//! a TLS proxy in front of a plain-HTTP server (DynamoDB Local, the Graph API stand-in), so the
//! functions' HTTPS client is exercised as on AWS (README, "Benchmark").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// A test CA and a certificate for 127.0.0.1/localhost signed by it; the CA's PEM file is what
/// the functions trust (`SSL_CERT_FILE`).
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    /// The CA's certificate (PEM), the file a client trusts.
    pub ca_file: PathBuf,
    /// The server's certificate (DER), for checking a verifier directly.
    #[allow(dead_code)] // The API tests read it; the bench includes this file too.
    pub server_cert: rustls::pki_types::CertificateDer<'static>,
}

pub fn make_tls(dir: &Path) -> Tls {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sandbox test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.signed_by(&key, &issuer).expect("server certificate");

    let ca_file = dir.join("test-ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).expect("write the CA file");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server TLS config");
    Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_file,
        server_cert: cert.der().clone(),
    }
}

/// Terminates TLS on a free port and forwards the bytes to `backend` (`http://host:port`).
pub async fn https_proxy(tls: &Tls, backend: &str) -> String {
    let backend: SocketAddr = backend
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("backend address");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let port = listener.local_addr().expect("proxy address").port();
    let acceptor = tls.acceptor.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
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
