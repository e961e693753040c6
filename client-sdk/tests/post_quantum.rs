//! Post-quantum key exchange: the SDK and the gateway agree on the hybrid group X25519MLKEM768,
//! so traffic recorded today stays confidential against a future quantum computer, and a client
//! that only knows classical groups still connects (and gets X25519).

mod common;

use std::sync::Arc;

use rustls::NamedGroup;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use shroud_client::connect::{AttestedConnector, GatewayUrl};
use shroud_ra_tls::tls::{AttestedServerVerifier, client_config, crypto_provider};
use shroud_testkit::upstream::RecordingUpstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use common::{StartGateway, TestGateway};

fn verifier(gateway: &TestGateway) -> Arc<AttestedServerVerifier> {
    Arc::new(
        AttestedServerVerifier::new(common::policy(&gateway.measurement_bytes()))
            .danger_allow_simulated(true),
    )
}

#[tokio::test]
async fn the_sdk_and_the_gateway_negotiate_x25519mlkem768() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let connector = AttestedConnector::new(verifier(&gateway)).expect("connector");
    let url = GatewayUrl::parse(&gateway.url()).expect("gateway URL");

    let connection = connector.connect(&url).await.expect("attested handshake");

    let (_, session) = connection.stream.get_ref();
    let group = session
        .negotiated_key_exchange_group()
        .expect("a TLS 1.3 handshake has a key exchange group")
        .name();
    assert_eq!(group, NamedGroup::X25519MLKEM768);
    // And the SDK's provider offers it first, so this is not a lucky server preference.
    let offered: Vec<NamedGroup> = crypto_provider()
        .kx_groups
        .iter()
        .map(|g| g.name())
        .collect();
    assert_eq!(
        offered.first(),
        Some(&NamedGroup::X25519MLKEM768),
        "{offered:?}"
    );
}

#[tokio::test]
async fn a_classical_only_client_still_connects_with_x25519() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;

    // The same provider with every post-quantum group removed: what an older TLS stack offers.
    let mut classical: CryptoProvider = Arc::unwrap_or_clone(crypto_provider());
    classical.kx_groups.retain(|g| {
        matches!(
            g.name(),
            NamedGroup::X25519 | NamedGroup::secp256r1 | NamedGroup::secp384r1
        )
    });
    assert!(!classical.kx_groups.is_empty());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(classical))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier(&gateway))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // The attested client config (the SDK's) still builds with the same verifier: both differ
    // only in the groups offered.
    client_config(verifier(&gateway), &[]).expect("attested client config");

    let tcp = TcpStream::connect(gateway.addr).await.expect("connect");
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("a classical-only handshake is accepted");
    let group = tls
        .get_ref()
        .1
        .negotiated_key_exchange_group()
        .expect("key exchange group")
        .name();
    assert_eq!(group, NamedGroup::X25519);

    // And the connection carries a JSON-RPC call through to the upstream.
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
    let request = format!(
        "POST /eth HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.ok();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""result":"0x10""#), "{response}");
}
