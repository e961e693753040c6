//! PROXY protocol v2 (`[listen] proxy_protocol = true`): the header a forwarder (`shroud-host
//! ingress`, an L4 balancer) puts before the client's bytes, naming the client's address.
//!
//! The address is used for one thing: the in-enclave rate-limit and connection keys, which are
//! keyed hashes ([`crate::ratelimit::ClientKey`]). It is never logged, exported or kept. The
//! header is read strictly: exactly its declared length (never a byte of the TLS handshake
//! after it), at most [`MAX_HEADER`] bytes, version 2 only (the text form v1 is refused).
//! Parsing is `ppp`'s.

use std::net::IpAddr;

use ppp::v2::{Addresses, Command, Header};
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// The fixed part: 12-byte signature, version and command, family and protocol, length.
const FIXED: usize = 16;

/// The longest header accepted: the fixed part, the largest address block (two Unix paths) and
/// room for a few TLVs. A forwarder sending more is not one we speak to.
pub(crate) const MAX_HEADER: usize = FIXED + 216 + 256;

/// The v2 signature.
const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Why a connection's PROXY header was refused (the connection is then closed, unanswered).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    /// The stream ended or failed before the whole header arrived.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
    /// The first bytes are not a PROXY v2 signature.
    #[error("no PROXY v2 header")]
    Missing,
    /// The declared length is over [`MAX_HEADER`].
    #[error("PROXY header longer than {MAX_HEADER} bytes")]
    TooLong,
    /// `ppp` refused the header.
    #[error("invalid PROXY header: {0}")]
    Invalid(String),
}

/// Reads one PROXY v2 header from `stream`: the client's IP address for a proxied TCP
/// connection, `None` for a `LOCAL` one (the forwarder's own health check) or an address family
/// without an IP.
pub(crate) async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<IpAddr>, ProxyHeaderError> {
    let mut header = [0_u8; MAX_HEADER];
    let (fixed, rest) = header.split_at_mut(FIXED);
    stream.read_exact(fixed).await?;
    if fixed.get(..SIGNATURE.len()) != Some(&SIGNATURE[..]) {
        return Err(ProxyHeaderError::Missing);
    }
    let declared = match fixed.get(14..16) {
        Some(&[high, low]) => usize::from(u16::from_be_bytes([high, low])),
        _ => return Err(ProxyHeaderError::Missing),
    };
    let body = rest.get_mut(..declared).ok_or(ProxyHeaderError::TooLong)?;
    stream.read_exact(body).await?;
    let whole = header
        .get(..FIXED + declared)
        .ok_or(ProxyHeaderError::TooLong)?;
    parse(whole)
}

/// Parses a complete header (exactly its bytes).
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<IpAddr>, ProxyHeaderError> {
    let header = Header::try_from(bytes).map_err(|e| ProxyHeaderError::Invalid(e.to_string()))?;
    if header.command == Command::Local {
        return Ok(None);
    }
    Ok(match header.addresses {
        Addresses::IPv4(ip) => Some(IpAddr::V4(ip.source_address)),
        Addresses::IPv6(ip) => Some(IpAddr::V6(ip.source_address)),
        Addresses::Unix(_) | Addresses::Unspecified => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, Protocol, Version};

    fn header(source: &str) -> Vec<u8> {
        let source: std::net::SocketAddr = source.parse().unwrap();
        let destination: std::net::SocketAddr = if source.is_ipv4() {
            "127.0.0.1:443".parse().unwrap()
        } else {
            "[::1]:443".parse().unwrap()
        };
        Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            (source, destination),
        )
        .build()
        .unwrap()
    }

    #[tokio::test]
    async fn reads_exactly_the_header_and_keeps_what_follows() {
        let mut bytes = header("127.0.0.2:5000");
        bytes.extend_from_slice(b"\x16\x03\x01 client hello");
        let mut stream = &bytes[..];
        let ip = read(&mut stream).await.unwrap();
        assert_eq!(ip, Some("127.0.0.2".parse().unwrap()));
        assert_eq!(stream, b"\x16\x03\x01 client hello");
        let v6 = header("[2001:db8::7]:5000");
        assert_eq!(
            read(&mut &v6[..]).await.unwrap(),
            Some("2001:db8::7".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_v2_header() {
        let tls = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 a TLS client hello";
        assert!(matches!(
            read(&mut &tls[..]).await,
            Err(ProxyHeaderError::Missing)
        ));
        let v1 = b"PROXY TCP4 127.0.0.2 127.0.0.1 5000 443\r\n";
        assert!(matches!(
            read(&mut &v1[..]).await,
            Err(ProxyHeaderError::Missing)
        ));
        // A declared length past the bound is refused before anything more is read.
        let mut long = header("127.0.0.2:5000");
        long[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            read(&mut &long[..]).await,
            Err(ProxyHeaderError::TooLong)
        ));
        // A header cut short is an I/O error, not a guess.
        let short = header("127.0.0.2:5000");
        assert!(matches!(
            read(&mut &short[..20]).await,
            Err(ProxyHeaderError::Io(_))
        ));
        // Version 1 in the v2 framing.
        let mut wrong_version = header("127.0.0.2:5000");
        wrong_version[12] = 0x11;
        assert!(matches!(
            read(&mut &wrong_version[..]).await,
            Err(ProxyHeaderError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn a_local_header_names_no_client() {
        let local = Builder::with_addresses(
            Version::Two | Command::Local,
            Protocol::Unspecified,
            Addresses::Unspecified,
        )
        .build()
        .unwrap();
        assert_eq!(read(&mut &local[..]).await.unwrap(), None);
    }
}
