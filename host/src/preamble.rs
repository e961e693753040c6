//! The `CONNECT host:port HTTP/1.1` preamble that opens each egress connection: read strictly
//! (bounded, up to the blank line and not a byte further) and parsed without I/O.

use std::io;

use tokio::io::AsyncReadExt as _;

use crate::io::Stream;

/// The longest preamble read.
pub(crate) const MAX_PREAMBLE: usize = 4096;

/// The destination a preamble names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    /// Lower case; an IPv6 literal keeps its brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl std::str::FromStr for Destination {
    type Err = PreambleError;

    /// `host:port` or `[v6]:port`.
    fn from_str(target: &str) -> Result<Self, Self::Err> {
        let invalid = || PreambleError::Target(target.chars().take(300).collect());
        let (host, port) = target.rsplit_once(':').ok_or_else(invalid)?;
        let port: u16 = port.parse().map_err(|_| invalid())?;
        let valid_host = if let Some(inner) = host.strip_prefix('[') {
            inner
                .strip_suffix(']')
                .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        if !valid_host || port == 0 {
            return Err(invalid());
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// Why a preamble was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PreambleError {
    #[error("reading the preamble: {0}")]
    Io(#[from] io::Error),
    #[error("the preamble is longer than {MAX_PREAMBLE} bytes")]
    TooLong,
    #[error("the preamble is not text")]
    NotText,
    #[error("not a CONNECT request: {0:?}")]
    NotConnect(String),
    #[error("the destination {0:?} is not HOST:PORT")]
    Target(String),
}

/// Reads the preamble up to its blank line, one byte at a time so that nothing after it is
/// taken (the TLS bytes that follow belong to the destination).
pub(crate) async fn read(stream: &mut Stream) -> Result<Vec<u8>, PreambleError> {
    let mut head = Vec::with_capacity(128);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_PREAMBLE {
            return Err(PreambleError::TooLong);
        }
        head.push(stream.read_u8().await?);
    }
    Ok(head)
}

/// The destination of a complete preamble: `CONNECT host:port HTTP/1.x`, header lines ignored.
pub(crate) fn parse(head: &[u8]) -> Result<Destination, PreambleError> {
    let text = std::str::from_utf8(head).map_err(|_| PreambleError::NotText)?;
    let line = text.split("\r\n").next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PreambleError::NotConnect(line.chars().take(300).collect()));
    };
    if method != "CONNECT" || !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(PreambleError::NotConnect(line.chars().take(300).collect()));
    }
    target.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_gateways_preamble() {
        let head = b"CONNECT Node.Example:443 HTTP/1.1\r\nHost: node.example:443\r\n\r\n";
        assert_eq!(
            parse(head).unwrap(),
            Destination {
                host: "node.example".into(),
                port: 443
            }
        );
        let v6 = parse(b"CONNECT [::1]:8545 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(v6.to_string(), "[::1]:8545");
    }

    #[test]
    fn refuses_anything_else() {
        for head in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"connect node.example:443 HTTP/1.1\r\n\r\n",
            b"CONNECT node.example HTTP/1.1\r\n\r\n",
            b"CONNECT node.example:0 HTTP/1.1\r\n\r\n",
            b"CONNECT node.example:99999 HTTP/1.1\r\n\r\n",
            b"CONNECT user@node.example:443 HTTP/1.1\r\n\r\n",
            b"CONNECT [not-v6]:443 HTTP/1.1\r\n\r\n",
            b"CONNECT  node.example:443 HTTP/1.1\r\n\r\n",
            b"CONNECT node.example:443 HTTP/2\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
            b"",
        ] {
            assert!(parse(head).is_err(), "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[tokio::test]
    async fn reads_up_to_the_blank_line_only_and_is_bounded() {
        let (client, server) = tokio::io::duplex(8192);
        let mut server: Stream = Box::new(server);
        let mut client = client;
        tokio::io::AsyncWriteExt::write_all(
            &mut client,
            b"CONNECT a.example:443 HTTP/1.1\r\n\r\n\x16\x03\x01",
        )
        .await
        .unwrap();
        let head = read(&mut server).await.unwrap();
        assert!(head.ends_with(b"\r\n\r\n"));
        let mut rest = [0_u8; 3];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"\x16\x03\x01");

        let (mut client, server) = tokio::io::duplex(8192);
        let mut server: Stream = Box::new(server);
        tokio::io::AsyncWriteExt::write_all(&mut client, &[b'a'; MAX_PREAMBLE + 10])
            .await
            .unwrap();
        assert!(matches!(
            read(&mut server).await,
            Err(PreambleError::TooLong)
        ));
    }
}
