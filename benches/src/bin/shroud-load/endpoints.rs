//! How the generator reaches each target: the client side of TLS (the SDK's attested verifier
//! for the gateway, a root store holding the self-signed certificate for nginx and HAProxy)
//! and of QUIC, with the ALPN id of the HTTP version the target is driven with.

use std::sync::Arc;

use rustls_pki_types::ServerName;
use shroud_ra_tls::Policy;
use shroud_ra_tls::tls::{AttestedServerVerifier, client_config, crypto_provider};

use shroud_benches::harness::error::LoadError;
use shroud_benches::harness::gateway::Gateway;

use crate::drive::{Endpoint, Http};
use crate::proxy::Proxy;

/// The SDK's RA-TLS client configuration (attestation verified in the handshake, pinned to the
/// gateway's simulated measurement), offering only `http`'s ALPN id. The verifier is shared by
/// every connection to the endpoint, as the SDK's is: the first handshake verifies the evidence
/// in full, the later ones find its verdict cached, and every one checks the certificate.
pub fn attested(gateway: &Gateway, http: Http) -> Result<Endpoint, LoadError> {
    let config = client_config(Arc::new(verifier(gateway)?), &[alpn(http)]).map_err(usage)?;
    Ok(Endpoint::Tls {
        addr: gateway.addr(),
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        server_name: ServerName::from(gateway.addr().ip()),
        http,
    })
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> Result<u16, LoadError> {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| LoadError::io("finding a free UDP port for the h3 listener", e))
}

/// The SDK's attested verifier (a new one, so no cached verdict) inside a QUIC handshake to the
/// gateway's h3 listener on `port`, ALPN `h3`; resumption and 0-RTT off as in the SDK.
pub fn quic(gateway: &Gateway, port: u16) -> Result<Endpoint, LoadError> {
    let tls = client_config(Arc::new(verifier(gateway)?), &[b"h3"]).map_err(usage)?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(usage)?;
    let config = quinn::ClientConfig::new(Arc::new(crypto));
    let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into())
        .map_err(|e| LoadError::io("binding the QUIC client", e))?;
    Ok(Endpoint::Quic {
        addr: std::net::SocketAddr::new(gateway.addr().ip(), port),
        endpoint,
        config,
    })
}

/// rustls (the same provider as the SDK) trusting `proxy`'s self-signed certificate, TLS 1.3,
/// offering only `http`'s ALPN id.
pub fn proxy(proxy: &Proxy, http: Http) -> Result<Endpoint, LoadError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(proxy.certificate().clone()).map_err(usage)?;
    let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(usage)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn(http).to_vec()];
    Ok(Endpoint::Tls {
        addr: proxy.addr(),
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        server_name: ServerName::try_from("localhost").map_err(usage)?,
        http,
    })
}

fn verifier(gateway: &Gateway) -> Result<AttestedServerVerifier, LoadError> {
    let policy = Policy::from_pins([format!("simulated:measurement={}", gateway.measurement())])
        .map_err(usage)?;
    Ok(AttestedServerVerifier::new(policy).danger_allow_simulated(true))
}

fn alpn(http: Http) -> &'static [u8] {
    match http {
        Http::One => b"http/1.1",
        Http::Two => b"h2",
    }
}

fn usage(error: impl std::fmt::Display) -> LoadError {
    LoadError::Usage(error.to_string())
}
