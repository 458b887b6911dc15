//! TLS refusals (README, "Benchmark", TLS and HTTP): a server certificate with any fault is refused,
//! with rustls's own error for that fault, by both clients that talk TLS (DynamoDB's, the SDK's
//! own HTTP client as `app::https_client_trusting` builds it; the Graph API's, over reqwest, with
//! the settings production uses, `DeferredRoots`, and with rustls's own verifier, `trusting`),
//! over TLS 1.2 and over TLS 1.3. A good certificate is accepted over each version, so the TLS
//! 1.2 handshake, with its own signature check, really runs.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use aws_smithy_http_client::tls::TrustStore;
use sandbox::app::https_client_trusting;
use sandbox::config::{Config, Role, Secret};
use sandbox::graph::GraphClient;
use sandbox::https::{deferred, trusting, DeferredRoots};
use sandbox::phone::PhoneE164;
use sandbox::session::{Session, SessionId, UserId};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{
    CertificateError, ExtendedKeyPurpose, ProtocolVersion, SupportedProtocolVersion,
};
use wiremock::MockServer;

use crate::tls::{rustls_error, Presented, TestCa, TlsServer};

/// Each test runs over both.
const VERSIONS: [&SupportedProtocolVersion; 2] = [&rustls::version::TLS12, &rustls::version::TLS13];

/// A client that talks TLS, with the TLS settings it is built with.
#[derive(Debug, Clone, Copy)]
enum Client {
    /// The DynamoDB client: the SDK's own HTTP client and its verifier (rustls's), as in
    /// production.
    DynamoDb,
    /// The Graph API client, over reqwest with these TLS settings.
    Graph(Roots),
}

/// The reqwest clients' TLS settings.
#[derive(Debug, Clone, Copy)]
enum Roots {
    /// The roots loaded beside the handshake, as in production.
    Deferred,
    /// rustls's own verifier, the roots given up front.
    Trusting,
}

const CLIENTS: [Client; 3] = [
    Client::DynamoDb,
    Client::Graph(Roots::Deferred),
    Client::Graph(Roots::Trusting),
];

/// The TLS servers one test talks to: one in front of DynamoDB Local, one in front of a Graph
/// API that accepts every send.
struct Servers {
    dynamodb: TlsServer,
    graph: TlsServer,
    _meta: MockServer,
}

impl Servers {
    /// Both servers, presenting what `ca` makes of `kind`, over `version` only.
    async fn start(
        ca: &TestCa,
        kind: Presented,
        version: &'static SupportedProtocolVersion,
    ) -> Self {
        let identity = ca.identity(kind);
        let meta = MockServer::start().await;
        e2e::meta::accept(&meta).await;
        Self {
            dynamodb: TlsServer::start(&identity, version, &e2e::dynamo::local().endpoint).await,
            graph: TlsServer::start(&identity, version, &meta.uri()).await,
            _meta: meta,
        }
    }
}

/// The Graph client's TLS settings, trusting `ca` alone.
fn graph_tls(kind: Roots, ca: &TestCa) -> Arc<rustls::ClientConfig> {
    let roots = ca.roots();
    Arc::new(match kind {
        Roots::Deferred => deferred(Arc::new(DeferredRoots::new(move || roots))),
        Roots::Trusting => trusting(roots),
    })
}

/// The DynamoDB client's HTTP client, trusting `ca` alone.
fn dynamodb_http(ca: &TestCa) -> aws_sdk_dynamodb::config::SharedHttpClient {
    https_client_trusting(TrustStore::empty().with_pem_certificate(ca.pem()))
}

/// The Graph client the functions build, sending to `base_url`, with `tls`.
fn graph_client(base_url: &str, tls: Arc<rustls::ClientConfig>) -> GraphClient {
    let vars: HashMap<&str, String> = HashMap::from([
        ("TABLE_NAME", "unused".to_owned()),
        ("SANDBOX_DISPLAY_NUMBER", e2e::SANDBOX_NUMBER.to_owned()),
        ("SANDBOX_PHONE_NUMBER_ID", e2e::PHONE_NUMBER_ID.to_owned()),
        ("META_GRAPH_BASE_URL", base_url.to_owned()),
        ("META_ACCESS_TOKEN", "test-token".to_owned()),
        ("META_APP_SECRET", e2e::APP_SECRET.to_owned()),
        ("META_WEBHOOK_VERIFY_TOKEN", e2e::VERIFY_TOKEN.to_owned()),
    ]);
    let config = Config::from_lookup(Role::Create, |k| vars.get(k).cloned())
        .expect("test configuration is complete");
    GraphClient::with_tls(&config, Secret::new("test-token"), tls).expect("http client")
}

/// One request of `client` through `servers`: a ListTables to DynamoDB, or a POST through the
/// Graph client's HTTP client.
async fn request(client: Client, ca: &TestCa, servers: &Servers) -> Result<(), Box<dyn Error>> {
    match client {
        Client::DynamoDb => {
            e2e::dynamo::client_with(dynamodb_http(ca), &servers.dynamodb.url, None)
                .list_tables()
                .limit(1)
                .send()
                .await?;
        }
        Client::Graph(roots) => {
            let graph = graph_client(&servers.graph.url, graph_tls(roots, ca));
            // A send reports a failed handshake as "could not connect" only: the error with
            // rustls's reason comes from the client under it, which the send uses. Any answer
            // at all (this path's is a 404) means the server was accepted.
            graph.http().post(&servers.graph.url).send().await?;
        }
    }
    Ok(())
}

/// Every client refuses the server presenting `kind`, over each TLS version, with the rustls
/// error `expected` describes and `is_expected` recognises. Every case runs, and every wrong
/// outcome is reported.
async fn assert_refused(
    kind: Presented,
    expected: &str,
    is_expected: impl Fn(&rustls::Error) -> bool,
) {
    let ca = TestCa::new("sandbox test CA");
    let mut wrong = Vec::new();
    for version in VERSIONS {
        let servers = Servers::start(&ca, kind, version).await;
        for client in CLIENTS {
            let case = format!("{:?}, {client:?}", version.version);
            match request(client, &ca, &servers).await {
                Ok(()) => wrong.push(format!("{case}: accepted")),
                Err(error) => match rustls_error(&*error) {
                    Some(refusal) if is_expected(refusal) => {}
                    Some(refusal) => wrong.push(format!("{case}: refused with {refusal:?}")),
                    None => wrong.push(format!("{case}: no rustls error in {error:?}")),
                },
            }
        }
        // The refusal is the client's: no handshake completed, nothing was forwarded.
        for (server, negotiated) in [
            ("DynamoDB", servers.dynamodb.negotiated()),
            ("Graph", servers.graph.negotiated()),
        ] {
            if !negotiated.is_empty() {
                wrong.push(format!(
                    "{server} server completed handshakes: {negotiated:?}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{kind:?} must be refused with {expected} by every client over each version:\n{}",
        wrong.join("\n")
    );
}

/// Whether `name` is the one the clients connect to (`https://127.0.0.1:<port>`).
fn the_address_connected_to(name: &ServerName<'_>) -> bool {
    *name == ServerName::try_from("127.0.0.1").expect("an address")
}

#[tokio::test]
async fn a_good_certificate_is_accepted_over_tls_1_2_and_over_tls_1_3() {
    let ca = TestCa::new("sandbox test CA");
    for (version, negotiated) in [
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
    ] {
        let servers = Servers::start(&ca, Presented::Good, version).await;
        for client in CLIENTS {
            match client {
                Client::DynamoDb => {
                    request(client, &ca, &servers).await.unwrap_or_else(|e| {
                        panic!("{negotiated:?}, {client:?}: {e:?}");
                    });
                }
                // The whole send, as create makes it.
                Client::Graph(roots) => {
                    let graph = graph_client(&servers.graph.url, graph_tls(roots, &ca));
                    let session = Session::new_pending(
                        SessionId::generate().expect("an id"),
                        &UserId::new("u_tls"),
                        PhoneE164::parse(e2e::SPAIN).expect("a phone"),
                        e2e::T0,
                        600,
                    );
                    graph.send_activation(&session).await.unwrap_or_else(|e| {
                        panic!("{negotiated:?}, {client:?}: {e:?}");
                    });
                }
            }
        }
        // Each client's connection, in the one version the server speaks.
        assert_eq!(servers.dynamodb.negotiated(), [negotiated]);
        assert_eq!(servers.graph.negotiated(), [negotiated, negotiated]);
    }
}

#[tokio::test]
async fn an_expired_certificate_is_refused_as_expired() {
    assert_refused(Presented::Expired, "ExpiredContext", |e| {
        matches!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { time, not_after })
                if time > not_after
        )
    })
    .await;
}

#[tokio::test]
async fn a_certificate_not_yet_valid_is_refused_as_not_valid_yet() {
    assert_refused(Presented::NotYetValid, "NotValidYetContext", |e| {
        matches!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext { time, not_before })
                if time < not_before
        )
    })
    .await;
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_as_from_an_unknown_issuer() {
    assert_refused(Presented::SelfSigned, "UnknownIssuer", |e| {
        matches!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        )
    })
    .await;
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused_as_from_an_unknown_issuer() {
    assert_refused(Presented::UnknownCa, "UnknownIssuer", |e| {
        matches!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        )
    })
    .await;
}

#[tokio::test]
async fn a_certificate_for_client_authentication_only_is_refused_as_for_another_purpose() {
    assert_refused(
        Presented::ClientAuthOnly,
        "InvalidPurposeContext, serverAuth required, clientAuth presented",
        |e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::InvalidPurposeContext {
                    required: ExtendedKeyPurpose::ServerAuth,
                    presented,
                }) if presented == &[ExtendedKeyPurpose::ClientAuth]
            )
        },
    )
    .await;
}

#[tokio::test]
async fn a_chain_through_a_non_ca_intermediate_is_refused_as_an_end_entity_used_as_a_ca() {
    // rustls has no error of its own for it: it hands on webpki's, as `Other`.
    assert_refused(
        Presented::ThroughNonCaIntermediate,
        "Other(webpki EndEntityUsedAsCa)",
        |e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::Other(other))
                    if matches!(
                        other.0.downcast_ref::<webpki::Error>(),
                        Some(webpki::Error::EndEntityUsedAsCa)
                    )
            )
        },
    )
    .await;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_as_not_valid_for_the_name() {
    assert_refused(
        Presented::OtherName,
        "NotValidForNameContext, 127.0.0.1 expected",
        |e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                }) if the_address_connected_to(expected)
                    && presented == &["DnsName(\"dynamodb.us-east-1.amazonaws.com\")"]
            )
        },
    )
    .await;
}

#[tokio::test]
async fn a_handshake_signed_with_another_key_than_the_certificates_is_refused_as_a_bad_signature() {
    // The certificate is good: the TLS 1.2 key exchange's signature, or TLS 1.3's
    // CertificateVerify, is what fails.
    assert_refused(Presented::WrongKey, "BadSignature", |e| {
        matches!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::BadSignature)
        )
    })
    .await;
}
