//! The `CONNECT host:port HTTP/1.1` preamble that opens each egress connection, parsed without
//! I/O: bounded, complete up to its blank line, the request line strict (the reading, one byte
//! at a time so that nothing after the blank line is taken, is `egress::read_preamble`).

/// The longest preamble accepted, blank line included.
pub(crate) const MAX_PREAMBLE: usize = 4096;

/// The end of a preamble.
pub(crate) const BLANK_LINE: &[u8] = b"\r\n\r\n";

/// A destination: from a preamble, or from `--allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    /// Lower case (host names match case-insensitively); an IPv6 literal keeps its brackets.
    host: String,
    port: u16,
}

impl Destination {
    /// The host to resolve and dial: a name, an IPv4 literal, or an IPv6 literal without its
    /// brackets.
    pub(crate) fn dial_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl std::str::FromStr for Destination {
    type Err = PreambleError;

    /// `host:port` or `[v6]:port`; the port is 1 to 65535.
    fn from_str(target: &str) -> Result<Self, Self::Err> {
        let invalid = || PreambleError::Target(shortened(target));
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

/// Why a preamble was refused (each a `400`, except `Incomplete` when the peer went away).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PreambleError {
    #[error("the preamble is longer than {MAX_PREAMBLE} bytes")]
    TooLong,
    #[error("the preamble does not end with a blank line")]
    Incomplete,
    #[error("the preamble is not text")]
    NotText,
    #[error("not a CONNECT request: {0:?}")]
    NotConnect(String),
    #[error("a header line is not NAME: VALUE: {0:?}")]
    Header(String),
    #[error("the destination {0:?} is not HOST:PORT")]
    Target(String),
}

/// The destination of a whole preamble: `CONNECT host:port HTTP/1.1` (or `HTTP/1.0`), header
/// lines of the form `Name: value` (not interpreted), then the blank line and nothing after it.
pub(crate) fn parse(head: &[u8]) -> Result<Destination, PreambleError> {
    if head.len() > MAX_PREAMBLE {
        return Err(PreambleError::TooLong);
    }
    let lines = head
        .strip_suffix(BLANK_LINE)
        .ok_or(PreambleError::Incomplete)?;
    let text = std::str::from_utf8(lines).map_err(|_| PreambleError::NotText)?;
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or_default();
    for header in lines {
        let well_formed = header.split_once(':').is_some_and(|(name, _)| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic())
        }) && !header.bytes().any(|b| b.is_ascii_control() && b != b'\t');
        if !well_formed {
            return Err(PreambleError::Header(shortened(header)));
        }
    }
    let mut parts = request.split(' ');
    let (Some("CONNECT"), Some(target), Some("HTTP/1.1" | "HTTP/1.0"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PreambleError::NotConnect(shortened(request)));
    };
    target.parse()
}

/// At most 300 characters of untrusted text, for an error message.
fn shortened(text: &str) -> String {
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(host: &str, port: u16) -> Destination {
        Destination {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_the_gateways_preamble() {
        let head = b"CONNECT node.example:443 HTTP/1.1\r\nHost: node.example:443\r\n\r\n";
        assert_eq!(parse(head), Ok(destination("node.example", 443)));
        assert_eq!(
            parse(b"CONNECT 10.0.0.1:8545 HTTP/1.0\r\n\r\n"),
            Ok(destination("10.0.0.1", 8545))
        );
    }

    #[test]
    fn parses_an_ipv6_literal() {
        let v6 = parse(b"CONNECT [::1]:8545 HTTP/1.1\r\nHost: [::1]:8545\r\n\r\n").unwrap();
        assert_eq!(v6.to_string(), "[::1]:8545");
        assert_eq!(v6.dial_host(), "::1");
        assert_eq!(
            parse(b"CONNECT [2001:DB8::1]:443 HTTP/1.1\r\n\r\n"),
            Ok(destination("[2001:db8::1]", 443))
        );
    }

    #[test]
    fn host_names_match_whatever_their_case() {
        let upper = parse(b"CONNECT NODE.Example:443 HTTP/1.1\r\n\r\n").unwrap();
        let lower = parse(b"CONNECT node.example:443 HTTP/1.1\r\n\r\n").unwrap();
        let allowed: Destination = "Node.EXAMPLE:443".parse().unwrap();
        assert_eq!(upper, allowed);
        assert_eq!(lower, allowed);
        assert_ne!(lower, "node.example:8443".parse().unwrap());
    }

    #[test]
    fn refuses_a_preamble_without_its_blank_line() {
        for head in [
            &b"CONNECT node.example:443 HTTP/1.1\r\n"[..],
            b"CONNECT node.example:443 HTTP/1.1\r\nHost: node.example:443\r\n",
            b"CONNECT node.example:443 HTTP/1.1\n\n",
            b"CONNECT node.example:443 HTTP/1.1\r\n\r\n\x16\x03\x01",
            b"",
        ] {
            assert_eq!(parse(head), Err(PreambleError::Incomplete), "{head:?}");
        }
    }

    #[test]
    fn refuses_a_preamble_over_the_bound() {
        let mut head = b"CONNECT node.example:443 HTTP/1.1\r\nX-Pad: ".to_vec();
        head.resize(MAX_PREAMBLE - BLANK_LINE.len(), b'a');
        head.extend_from_slice(BLANK_LINE);
        assert!(parse(&head).is_ok(), "exactly at the bound");
        head.insert(head.len() - BLANK_LINE.len(), b'a');
        assert_eq!(parse(&head), Err(PreambleError::TooLong));
    }

    #[test]
    fn refuses_another_method_or_version() {
        for head in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"GET node.example:443 HTTP/1.1\r\n\r\n",
            b"connect node.example:443 HTTP/1.1\r\n\r\n",
            b"CONNECT node.example:443 HTTP/2\r\n\r\n",
            b"CONNECT node.example:443\r\n\r\n",
            b"CONNECT  node.example:443 HTTP/1.1\r\n\r\n",
            b"CONNECT node.example:443 HTTP/1.1 extra\r\n\r\n",
        ] {
            assert!(
                matches!(parse(head), Err(PreambleError::NotConnect(_))),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn refuses_a_target_that_is_not_host_and_port() {
        for head in [
            &b"CONNECT node.example HTTP/1.1\r\n\r\n"[..],
            b"CONNECT node.example:0 HTTP/1.1\r\n\r\n",
            b"CONNECT node.example:99999 HTTP/1.1\r\n\r\n",
            b"CONNECT node.example:https HTTP/1.1\r\n\r\n",
            b"CONNECT user@node.example:443 HTTP/1.1\r\n\r\n",
            b"CONNECT http://node.example:443 HTTP/1.1\r\n\r\n",
            b"CONNECT [not-v6]:443 HTTP/1.1\r\n\r\n",
            b"CONNECT ::1:443 HTTP/1.1\r\n\r\n",
            b"CONNECT :443 HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse(head), Err(PreambleError::Target(_))),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(parse(b"\xff\xfe\r\n\r\n"), Err(PreambleError::NotText));
        assert!(matches!(
            parse(b"CONNECT node.example:443 HTTP/1.1\r\nno colon\r\n\r\n"),
            Err(PreambleError::Header(_))
        ));
        assert!(matches!(
            parse(b"CONNECT node.example:443 HTTP/1.1\r\nHost: a\0b\r\n\r\n"),
            Err(PreambleError::Header(_))
        ));
        assert!(matches!(
            parse(b"CONNECT node.example:443 HTTP/1.1\r\n\r\n\r\n\r\n"),
            Err(PreambleError::Header(_))
        ));
        assert!(parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n").is_err());
    }
}
