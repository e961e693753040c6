//! The QUIC endpoint's configuration (DESIGN §4.1): the TCP listener's TLS 1.3 configuration and
//! certificate resolver with ALPN `h3`, and every QUIC feature that would let the gateway (or
//! anyone on the path) link two connections of one client turned off.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicServerConfig;
use quinn::{IdleTimeout, ServerConfig, TransportConfig, ValidationTokenConfig, VarInt};
use shroud_ra_tls::tls::server_config;

use crate::certs::ServedCertificates;
use crate::settings::Limits;

/// The only protocol the QUIC listener negotiates. ACME's TLS-ALPN-01 runs on TCP only.
pub(crate) const H3_ALPN: &[u8] = b"h3";

/// Requests in flight on one connection (HTTP/3 request streams); more wait for credit.
pub(crate) const MAX_STREAMS_PER_CONNECTION: u32 = 100;

/// Unidirectional streams a client may open: HTTP/3's control stream and QPACK's two, with
/// room for the reserved (grease) stream types clients send.
const MAX_UNI_STREAMS: u32 = 8;

/// What one request stream may have in flight towards the gateway before it reads: bodies are
/// read as they come (`request_body::read_body` enforces the size limit), so this bounds memory,
/// not request size.
const STREAM_RECEIVE_WINDOW: u32 = 256 * 1024;

/// The same for the whole connection, and what the gateway keeps unacknowledged towards a client.
const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// Initial packets buffered for one connection that is not accepted yet, and for all of them.
const INCOMING_BUFFER: u64 = 64 * 1024;
const INCOMING_BUFFER_TOTAL: u64 = 4 * 1024 * 1024;

/// The largest header section (QPACK-decoded) of one request, as HTTP/2's default list size.
pub(crate) const MAX_FIELD_SECTION: u64 = 16 * 1024;

/// Why the QUIC listener could not be configured.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QuicConfigError {
    /// The TLS configuration (ra-tls's `server_config`) was refused.
    #[error("TLS configuration for QUIC: {0}")]
    Tls(#[from] shroud_ra_tls::Error),
    /// rustls offers no cipher suite QUIC can protect its Initial packets with.
    #[error("TLS configuration for QUIC: {0}")]
    CipherSuite(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// The idle timeout does not fit QUIC's encoding.
    #[error("the QUIC idle timeout {0:?} is out of range")]
    IdleTimeout(Duration),
}

/// The quinn server configuration of the `[listen] h3` listener.
///
/// - TLS: ra-tls's `server_config` (TLS 1.3 only, no session storage, no tickets,
///   `max_early_data_size = 0`: no 0-RTT) over the same `ServedCertificates` as TCP, so a
///   ClientHello offering `shroud-ra-tls/1` gets the RA-TLS certificate and rotation applies to
///   both listeners at once.
/// - No NEW_TOKEN frames (`ValidationTokenConfig::sent(0)`): a token handed to a client is
///   presented on its next connection, which links the two.
/// - No connection migration: a connection whose client address changes is not carried over,
///   so no connection spans two networks of a client.
/// - Bounded streams, windows, incoming buffers and an idle timeout.
pub(crate) fn server(
    certs: Arc<ServedCertificates>,
    limits: &Limits,
) -> Result<ServerConfig, QuicConfigError> {
    let tls = server_config(certs as _, &[H3_ALPN])?;
    let crypto = QuicServerConfig::try_from(tls)?;
    let mut config = ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport(limits)?));
    let mut tokens = ValidationTokenConfig::default();
    tokens.sent(0);
    config.validation_token_config(tokens);
    config.migration(false);
    config.max_incoming(limits.max_connections.clamp(1, 1 << 16));
    config.incoming_buffer_size(INCOMING_BUFFER);
    config.incoming_buffer_size_total(INCOMING_BUFFER_TOTAL);
    Ok(config)
}

/// How long a connection may stay silent: long enough for a request's whole life (reading its
/// body, the upstream's answer) plus the wait for the next request, as the TCP listener allows.
pub(crate) fn idle_timeout(limits: &Limits) -> Duration {
    limits
        .request_timeout
        .saturating_add(limits.body_read_timeout)
        .saturating_add(limits.header_read_timeout)
}

fn transport(limits: &Limits) -> Result<TransportConfig, QuicConfigError> {
    let idle = idle_timeout(limits);
    let mut transport = TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS_PER_CONNECTION))
        .max_concurrent_uni_streams(VarInt::from_u32(MAX_UNI_STREAMS))
        .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_WINDOW))
        .send_window(u64::from(CONNECTION_WINDOW))
        .max_idle_timeout(Some(
            IdleTimeout::try_from(idle).map_err(|_| QuicConfigError::IdleTimeout(idle))?,
        ))
        // The server never pings: an idle client is let go rather than kept alive.
        .keep_alive_interval(None)
        // HTTP/3 here carries no datagrams (no WebTransport, no MASQUE).
        .datagram_receive_buffer_size(None);
    Ok(transport)
}
