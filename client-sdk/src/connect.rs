//! The attested connector: TCP, then a TLS 1.3 handshake in which the gateway's RA-TLS
//! certificate is verified against the policy.
//!
//! Attestation runs inside the handshake (in [`AttestedServerVerifier`]), before the client sends
//! its Finished message. When it fails, rustls aborts the handshake with an alert, so the caller
//! never gets a stream to write to: no request byte can reach an unverified gateway.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use shroud_ra_tls::tls::{self, AttestedServerVerifier};
use shroud_ra_tls::{UnixTime, Verdict};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::ClientError;

/// The ALPN protocols the client offers, HTTP/2 first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A parsed gateway URL: `https://HOST[:PORT]/CHAIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUrl {
    url: String,
    host: String,
    port: u16,
    authority: String,
    path_and_query: String,
}

impl GatewayUrl {
    /// Parses `url`, which must use `https` (RA-TLS is the point; there is no plain-HTTP mode).
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| {
            invalid(&format!("{e} (expected https://HOST:PORT/CHAIN)"))
        })?;
        match uri.scheme_str() {
            Some("https") => {}
            Some(scheme) => {
                return Err(invalid(&format!(
                    "scheme {scheme:?} is not supported: a Shroud gateway is reached over attested TLS, use https://"
                )));
            }
            None => return Err(invalid("no scheme: expected https://HOST:PORT/CHAIN")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("no host: expected https://HOST:PORT/CHAIN"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user information in the URL is not supported"));
        }
        let host = authority.host();
        // IPv6 literals come bracketed; sockets and SNI want them bare.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        let path_and_query = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Self {
            url: url.to_owned(),
            port: authority.port_u16().unwrap_or(443),
            authority: authority.as_str().to_owned(),
            host,
            path_and_query,
        })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host (IPv6 literals without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (443 when the URL has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host[:port]` as written in the URL, for the `Host` header and messages.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The request target, e.g. `/eth`.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The host as a TLS server name (SNI).
    pub fn server_name(&self) -> Result<ServerName<'static>, ClientError> {
        ServerName::try_from(self.host.clone()).map_err(|e| ClientError::InvalidUrl {
            url: self.url.clone(),
            reason: format!("host {:?} is not a DNS name or IP address: {e}", self.host),
        })
    }
}

/// The HTTP version negotiated by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// `http/1.1`, or no ALPN at all.
    Http1,
    /// `h2`.
    Http2,
}

/// A TLS connection whose peer passed attestation.
#[derive(Debug)]
pub struct AttestedConnection {
    /// The TLS stream, ready for application data.
    pub stream: TlsStream<TcpStream>,
    /// What the verifier established about the gateway.
    pub verdict: Verdict,
    /// The negotiated HTTP version.
    pub http_version: HttpVersion,
}

/// Opens TLS connections that only complete when the peer's evidence satisfies the policy.
#[derive(Clone)]
pub struct AttestedConnector {
    verifier: Arc<AttestedServerVerifier>,
    tls: TlsConnector,
    /// Where to connect instead of resolving the URL's host (curl's `--resolve`).
    address: Option<SocketAddr>,
}

impl std::fmt::Debug for AttestedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestedConnector")
            .field("verifier", &self.verifier)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl AttestedConnector {
    /// A connector enforcing `verifier`, offering [`ALPN`].
    pub fn new(verifier: Arc<AttestedServerVerifier>) -> Result<Self, ClientError> {
        Self::with_alpn(verifier, &ALPN)
    }

    /// A connector enforcing `verifier` that offers `alpn` instead of [`ALPN`] (and
    /// `shroud-ra-tls/1`, always): `[b"http/1.1"]` for a WebSocket upgrade, which HTTP/2 does
    /// not carry.
    pub fn with_alpn(
        verifier: Arc<AttestedServerVerifier>,
        alpn: &[&[u8]],
    ) -> Result<Self, ClientError> {
        let config =
            tls::client_config(Arc::clone(&verifier), alpn).map_err(ClientError::Policy)?;
        Ok(Self {
            verifier,
            tls: TlsConnector::from(Arc::new(config)),
            address: None,
        })
    }

    /// Connects to `address` instead of resolving the URL's host, which is still the name sent
    /// (SNI) and checked: curl's `--resolve HOST:PORT:ADDR`. `None` resolves the host.
    #[must_use]
    pub fn connect_to(mut self, address: Option<SocketAddr>) -> Self {
        self.address = address;
        self
    }

    /// The verifier this connector enforces.
    pub fn verifier(&self) -> &AttestedServerVerifier {
        &self.verifier
    }

    /// Connects to `url`'s host and port and completes an attested handshake. Nothing is written
    /// after the handshake.
    pub async fn connect(&self, url: &GatewayUrl) -> Result<AttestedConnection, ClientError> {
        let server_name = url.server_name()?;
        let tcp = match self.address {
            Some(address) => TcpStream::connect(address).await,
            None => TcpStream::connect((url.host(), url.port())).await,
        }
        .map_err(|source| ClientError::Connect {
            authority: url.authority().to_owned(),
            source,
        })?;
        // Best effort: a JSON-RPC call is one small write; Nagle would only delay it.
        tcp.set_nodelay(true).ok();
        let stream = self
            .tls
            .connect(server_name, tcp)
            .await
            .map_err(|e| handshake_error(url.authority(), e))?;
        let (_, session) = stream.get_ref();
        let cert = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| {
                ClientError::InvalidResponse("the gateway presented no certificate".into())
            })?;
        // The verifier accepted this certificate moments ago and cached its verdict; verifying
        // again only happens if the cache was flushed in between.
        let verdict = match self.verifier.verdict_for(cert) {
            Some(verdict) => verdict,
            None => self
                .verifier
                .verify(cert, UnixTime::now())
                .map_err(ClientError::from_refusal)?,
        };
        let http_version = match session.alpn_protocol() {
            Some(b"h2") => HttpVersion::Http2,
            _ => HttpVersion::Http1,
        };
        Ok(AttestedConnection {
            stream,
            verdict,
            http_version,
        })
    }
}

/// Sorts a failed handshake into an attestation refusal (with the verifier's reason) or any
/// other TLS failure. tokio-rustls carries the `rustls::Error` inside the `io::Error`.
/// `localhost`, 127.0.0.0/8 or ::1, with or without brackets: the hosts plain HTTP may reach
/// (the proxy's listener, a local OHTTP relay).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn handshake_error(authority: &str, error: std::io::Error) -> ClientError {
    let attestation = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(tls::attestation_error)
        .cloned();
    match attestation {
        Some(refusal) => ClientError::from_refusal(refusal),
        None => ClientError::Tls {
            authority: authority.to_owned(),
            source: error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        // The table the gateway's is_loopback_host is tested against too.
        for (host, loopback) in shroud_testkit::hosts::LOOPBACK_CASES {
            assert_eq!(is_loopback_host(host), *loopback, "{host:?}");
        }
    }

    #[test]
    fn parses_gateway_urls() {
        let url = GatewayUrl::parse("https://127.0.0.1:8443/eth").unwrap();
        assert_eq!(
            (
                url.host(),
                url.port(),
                url.authority(),
                url.path_and_query()
            ),
            ("127.0.0.1", 8443, "127.0.0.1:8443", "/eth")
        );
        let url = GatewayUrl::parse("https://gw.example").unwrap();
        assert_eq!(
            (url.host(), url.port(), url.path_and_query()),
            ("gw.example", 443, "/")
        );
        let url = GatewayUrl::parse("https://[::1]:9/eth").unwrap();
        assert_eq!((url.host(), url.authority()), ("::1", "[::1]:9"));
        url.server_name().unwrap();
    }

    #[test]
    fn refuses_anything_but_https() {
        for bad in [
            "http://127.0.0.1:8443/eth",
            "127.0.0.1:8443",
            "/eth",
            "ws://x/eth",
            "https://u:p@x/eth",
            "not a url",
        ] {
            let err = GatewayUrl::parse(bad).unwrap_err();
            assert!(
                matches!(err, ClientError::InvalidUrl { .. }),
                "{bad}: {err}"
            );
        }
        let err = GatewayUrl::parse("http://127.0.0.1:8443/eth").unwrap_err();
        assert!(err.to_string().contains("use https://"), "{err}");
    }
}
