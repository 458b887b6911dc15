//! HTTPS egress and its trust (`sandbox::https`, README "Benchmark"): the DynamoDB client (the
//! SDK's own HTTP client) verifies TLS against the configured roots, the platform's plus
//! `EXTRA_CA_CERTS`, and retries a dropped connection; the reqwest clients' roots (Mozilla's,
//! plus `EXTRA_CA_CERTS`) load beside the first handshake.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::list_tables::{ListTablesError, ListTablesOutput};
use aws_sdk_dynamodb::Client;
use aws_smithy_http_client::tls::TrustStore;
use sandbox::app::https_client_trusting;
use sandbox::https::{deferred, roots_with, sdk_trust_store_with, DeferredRoots};
use sandbox::store::MAX_ATTEMPTS;
use tokio::net::TcpListener;
use tokio_rustls::rustls;

use crate::tls::{https_proxy, make_tls, rustls_error, Tls};

fn client(http: SharedHttpClient, endpoint: &str) -> Client {
    e2e::dynamo::client_with(http, endpoint, None)
}

/// One ListTables through `http` to `endpoint`.
async fn list_tables(
    http: SharedHttpClient,
    endpoint: &str,
) -> Result<ListTablesOutput, SdkError<ListTablesError>> {
    client(http, endpoint).list_tables().limit(1).send().await
}

/// Exactly the certificates of `file`.
fn roots_in(file: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(
        rustls_native_certs::load_certs_from_paths(Some(file), None).certs,
    );
    roots
}

/// A folder of its own (`name`) holding a test CA's files, and DynamoDB Local behind a TLS
/// proxy that presents the CA's certificate for 127.0.0.1.
async fn dynamodb_behind_tls(name: &str) -> (PathBuf, Tls, String) {
    let dir = std::env::temp_dir().join(format!("sandbox-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tls = make_tls(&dir);
    let endpoint = https_proxy(&tls, &e2e::dynamo::local().endpoint).await;
    (dir, tls, endpoint)
}

/// The request failed on the server's certificate: its issuer is not trusted.
fn assert_refused_certificate<T: std::fmt::Debug, E>(result: Result<T, SdkError<E>>)
where
    E: std::error::Error + 'static,
{
    let error = result.expect_err("an unknown issuer must not be trusted");
    let refusal = rustls_error(&error);
    assert!(
        matches!(
            refusal,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{refusal:?} in {}",
        aws_sdk_dynamodb::error::DisplayErrorContext(&error)
    );
}

#[tokio::test]
async fn dynamodb_over_https_trusts_the_configured_roots_and_only_them() {
    let (dir, tls, endpoint) = dynamodb_behind_tls("https").await;
    let pem = std::fs::read(&tls.ca_file).expect("the test CA");

    let trusted = https_client_trusting(TrustStore::empty().with_pem_certificate(pem));
    list_tables(trusted, &endpoint)
        .await
        .expect("DynamoDB Local through TLS, with the test CA trusted");

    // The same server with no roots that vouch for it: the handshake fails, nothing is sent.
    let untrusted = https_client_trusting(TrustStore::empty());
    assert_refused_certificate(list_tables(untrusted, &endpoint).await);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_dynamodb_client_trusts_the_platforms_roots_plus_the_extra_ca_file() {
    let (dir, tls, endpoint) = dynamodb_behind_tls("sdk-roots").await;
    // As `EXTRA_CA_CERTS` names it: the test CA, beside the platform's roots.
    let with_test_ca = https_client_trusting(sdk_trust_store_with(Some(&tls.ca_file)));
    list_tables(with_test_ca, &endpoint)
        .await
        .expect("the test CA's server, trusted through the extra file");
    // The platform's roots alone do not vouch for it.
    let platform = https_client_trusting(sdk_trust_store_with(None));
    assert_refused_certificate(list_tables(platform, &endpoint).await);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_extra_ca_file_with_a_certificate_that_does_not_parse_trusts_the_others_and_fails_nothing(
) {
    // The SDK's client panics on a certificate it cannot parse when it builds a connector (at
    // the client's build, so at init): only the ones a root store takes are handed to it.
    let (dir, tls, endpoint) = dynamodb_behind_tls("bad-extra").await;
    let test_ca = std::fs::read_to_string(&tls.ca_file).expect("the test CA");
    // Good base64, but not a certificate: webpki refuses it as a trust anchor.
    let not_a_certificate = "-----BEGIN CERTIFICATE-----\naGVsbG8sIG5vdCBhIGNlcnRpZmljYXRl\n-----END CERTIFICATE-----\n";
    let mixed = dir.join("mixed.pem");
    std::fs::write(&mixed, format!("{not_a_certificate}{test_ca}")).expect("write");
    let broken = dir.join("broken.pem");
    std::fs::write(&broken, not_a_certificate).expect("write");

    let mixed = https_client_trusting(sdk_trust_store_with(Some(&mixed)));
    list_tables(mixed, &endpoint)
        .await
        .expect("the test CA, trusted beside the certificate that does not parse");
    for nothing_usable in [broken, dir.join("missing.pem")] {
        let client = https_client_trusting(sdk_trust_store_with(Some(&nothing_usable)));
        assert_refused_certificate(list_tables(client, &endpoint).await);
    }
    // The reqwest clients' roots take the same certificates from the same file.
    let mozilla = webpki_roots::TLS_SERVER_ROOTS.len();
    assert_eq!(roots_with(Some(&dir.join("mixed.pem"))).len(), mozilla + 1);
    assert_eq!(roots_with(Some(&dir.join("broken.pem"))).len(), mozilla);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn roots_loaded_beside_the_handshake_trust_the_configured_roots_and_only_them() {
    // The reqwest clients' settings (`tls_config`): the Graph client's and the webhooks'.
    let (dir, tls, endpoint) = dynamodb_behind_tls("deferred").await;
    std::fs::create_dir_all(dir.join("other")).expect("temp dir");
    let other = make_tls(&dir.join("other"));
    let get = |roots: Arc<DeferredRoots>| {
        let endpoint = endpoint.clone();
        async move {
            // Any answer at all means the server was accepted.
            reqwest::Client::builder()
                .tls_backend_preconfigured(deferred(roots))
                .build()
                .expect("a client")
                .get(&endpoint)
                .send()
                .await
        }
    };

    // As a first send runs it: the roots load slowly on another thread while the handshake
    // starts; the handshake waits for them, and they load once.
    let loads = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&loads);
    let ca_file = tls.ca_file.clone();
    let roots = Arc::new(DeferredRoots::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(300));
        roots_in(&ca_file)
    }));
    let loader = {
        let roots = Arc::clone(&roots);
        std::thread::spawn(move || roots.load())
    };
    get(Arc::clone(&roots))
        .await
        .expect("DynamoDB Local through TLS, once the test CA is loaded");
    get(Arc::clone(&roots)).await.expect("a second connection");
    loader.join().expect("the loading thread");
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    // Another CA's roots, or none: the server is refused.
    for roots in [
        DeferredRoots::new(move || roots_in(&other.ca_file)),
        DeferredRoots::new(rustls::RootCertStore::empty),
    ] {
        let error = get(Arc::new(roots))
            .await
            .expect_err("an unknown issuer must not be trusted");
        assert!(
            matches!(
                rustls_error(&error),
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            "{error:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn roots_loaded_beside_the_handshake_check_the_servers_name() {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    let dir = std::env::temp_dir().join(format!("sandbox-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tls = make_tls(&dir);
    let ca_file = tls.ca_file.clone();
    let roots = DeferredRoots::new(move || roots_in(&ca_file));
    let verify = |name: &'static str| {
        let name = ServerName::try_from(name).expect("a server name");
        roots.verify_server_cert(&tls.server_cert, &[], &name, &[], UnixTime::now())
    };
    // The certificate is for localhost and 127.0.0.1, from the trusted CA.
    verify("localhost").expect("its own name");
    verify("127.0.0.1").expect("its own address");
    for other in ["dynamodb.us-east-1.amazonaws.com", "127.0.0.2"] {
        assert!(
            matches!(
                verify(other),
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. }
                        | rustls::CertificateError::NotValidForName
                ))
            ),
            "{other}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_connection_dropped_before_the_answer_is_retried() {
    // A server that accepts each connection and closes it without a word: an I/O error, which
    // the SDK retries. Classified as an unknown error, the request would be tried once.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });

    let result = client(sandbox::app::https_client(), &endpoint)
        .list_tables()
        .send()
        .await;
    assert!(result.is_err());
    assert_eq!(accepted.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);
}

#[test]
fn the_trust_roots_are_mozillas_plus_the_extra_ca_file() {
    let dir = std::env::temp_dir().join(format!("sandbox-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tls = make_tls(&dir);
    let mozilla = webpki_roots::TLS_SERVER_ROOTS.len();
    assert!(mozilla > 100, "webpki-roots carries Mozilla's set");
    assert_eq!(roots_with(None).len(), mozilla);
    // The extra file's certificates are trusted beside them, and they vouch for its server.
    let with_test_ca = roots_with(Some(&tls.ca_file));
    assert_eq!(with_test_ca.len(), mozilla + 1);
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(with_test_ca),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("a verifier");
    use rustls::client::danger::ServerCertVerifier;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    verifier
        .verify_server_cert(
            &tls.server_cert,
            &[],
            &name,
            &[],
            rustls::pki_types::UnixTime::now(),
        )
        .expect("the test CA's server, trusted through the extra file");
    // A file that is not there adds nothing (and is logged), and takes nothing away.
    assert_eq!(roots_with(Some(&dir.join("missing.pem"))).len(), mozilla);
    let _ = std::fs::remove_dir_all(&dir);
}
