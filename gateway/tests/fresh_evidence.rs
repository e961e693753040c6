//! Nonce-bound attestation bundles (DESIGN §4.2) and the certificate a listener without `[acme]`
//! serves: real sockets on loopback, real TLS. Issuance through a real ACME CA (pebble) is
//! tested end to end by `client-sdk/tests/wallets/acme.mjs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::sync::Arc;

use base64::Engine as _;
use common::{StartGateway, TestGateway, get, peer_certificate};
use http::StatusCode;
use rustls::pki_types::ServerName;
use shroud_ra_tls::{Policy, UnixTime, Verdict, VerifyOptions, verify_certificate};
use shroud_testkit::upstream::RecordingUpstream;
use x509_parser::prelude::{FromDer as _, X509Certificate};

const BUNDLE: &str = "/.well-known/shroud/attestation";

fn verify(gateway: &TestGateway, der: &[u8]) -> Verdict {
    let policy = Policy::from_pins([gateway.pin()]).unwrap();
    let options = VerifyOptions {
        danger_allow_simulated: true,
        ..VerifyOptions::at(UnixTime::now())
    };
    verify_certificate(der, &policy, &options).unwrap()
}

fn spki(der: &[u8]) -> Vec<u8> {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.public_key().raw.to_vec()
}

fn certificate_of(bundle: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(bundle["certificate"].as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn a_nonce_bound_bundle_carries_exactly_the_nonce_for_the_serving_key() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::with_eth(upstream.url()).await;
    let served = peer_certificate(&gateway.connect(b"http/1.1").await);
    let plain = gateway.http1(get(BUNDLE)).await.json();

    for nonce in [vec![0x5a; 16], (0..64).collect::<Vec<u8>>()] {
        let reply = gateway
            .http2(get(&format!("{BUNDLE}?nonce={}", hex::encode(&nonce))))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers["content-type"], "application/json");
        let bundle = reply.json();
        let fresh = certificate_of(&bundle);
        assert_ne!(fresh, served.as_ref(), "a certificate issued for the nonce");
        let verdict = verify(&gateway, &fresh);
        assert_eq!(verdict.claims().nonce.as_deref(), Some(&nonce[..]));
        // The same key as the certificate the connection was served, bound by the claims.
        assert_eq!(spki(&fresh), spki(&served));
        assert!(verdict.claims().binds_spki(&spki(&served)));
        // The same OHTTP keys as the plain bundle, bound by the fresh claims too.
        assert_eq!(bundle["ohttp_keys"], plain["ohttp_keys"]);
        assert!(verdict.claims().ohttp_keys.is_some());
    }
    // The plain bundle is still the served certificate, without a nonce.
    let plain = certificate_of(&gateway.http1(get(BUNDLE)).await.json());
    assert_eq!(plain, served.as_ref());
    assert_eq!(verify(&gateway, &plain).claims().nonce, None);
}

#[tokio::test]
async fn malformed_nonces_get_400_problem_json() {
    let gateway = TestGateway::start(Vec::new()).await;
    for query in [
        "nonce=zz".to_owned(),
        format!("nonce={}", "ab".repeat(4)),
        format!("nonce={}", "ab".repeat(65)),
        format!("nonce={}", "xy".repeat(16)),
        format!("other={}", "ab".repeat(16)),
        format!("nonce={0}&nonce={0}", "ab".repeat(16)),
    ] {
        let reply = gateway.http1(get(&format!("{BUNDLE}?{query}"))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            reply.headers["content-type"], "application/problem+json",
            "{query}"
        );
        let problem = reply.json();
        assert_eq!(problem["status"], 400);
        assert!(
            problem["title"]
                .as_str()
                .unwrap()
                .starts_with("invalid nonce"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn nonce_bound_bundles_are_rate_limited_gateway_wide() {
    let mut config = common::dev_config(Vec::new());
    config.limits.fresh_evidence_per_minute = 1;
    config.limits.fresh_evidence_burst = 2;
    let gateway = TestGateway::start_config(config).await;
    let ask = || get(&format!("{BUNDLE}?nonce={}", "cd".repeat(32)));
    assert_eq!(gateway.http1(ask()).await.status, StatusCode::OK);
    assert_eq!(gateway.http2(ask()).await.status, StatusCode::OK);
    let refused = gateway.http1(ask()).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers["content-type"], "application/problem+json");
    assert_eq!(refused.headers["retry-after"], "60");
    // The plain bundle costs no evidence and is not limited.
    assert_eq!(gateway.http1(get(BUNDLE)).await.status, StatusCode::OK);

    // Turned off: every nonce is refused.
    let mut config = common::dev_config(Vec::new());
    config.limits.fresh_evidence_per_minute = 0;
    let off = TestGateway::start_config(config).await;
    assert_eq!(off.http1(ask()).await.status, StatusCode::TOO_MANY_REQUESTS);
}

/// Without `[acme]` there is no public certificate: a ClientHello that does not offer
/// `shroud-ra-tls/1` gets the RA-TLS certificate, which verifies, and so does one that does.
#[tokio::test]
async fn without_acme_every_client_hello_gets_the_ra_tls_certificate() {
    let gateway = TestGateway::start(Vec::new()).await;
    let verifier = common::verifier(&gateway.pin());
    for alpn in [
        vec![b"http/1.1".to_vec()],
        vec![],
        vec![b"h2".to_vec(), shroud_ra_tls::tls::RA_TLS_ALPN.to_vec()],
    ] {
        // Built by hand: `client_config` always adds `shroud-ra-tls/1`.
        let mut tls =
            rustls::ClientConfig::builder_with_provider(shroud_ra_tls::tls::crypto_provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::clone(&verifier) as _)
                .with_no_client_auth();
        tls.alpn_protocols.clone_from(&alpn);
        let tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap_or_else(|e| panic!("ALPN {alpn:?}: {e}"));
        // The server never selects the steering id.
        assert_ne!(
            stream.get_ref().1.alpn_protocol(),
            Some(shroud_ra_tls::tls::RA_TLS_ALPN)
        );
        let served = peer_certificate(&stream);
        verify(&gateway, served.as_ref());
    }
}
