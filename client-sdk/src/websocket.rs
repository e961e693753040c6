//! WebSocket (RFC 6455) to the gateway's `GET /{chain}` over an attested connection: what
//! [`Client::subscribe`](crate::Client::subscribe) and the proxy's WebSocket relay are built on.
//!
//! The TLS connection comes from an [`AttestedConnector`] sharing the client's verifier, so the
//! gateway's evidence is checked in the TLS handshake exactly as for an HTTP call, and the
//! upgrade request is written only once that handshake has completed. That connector offers
//! `http/1.1` (with `shroud-ra-tls/1`) and not `h2`: the upgrade is an HTTP/1.1 exchange, and a
//! gateway that chose HTTP/2 could not answer it.
//!
//! Both sides of every WebSocket here get small read buffers and bounded messages
//! ([`socket_config`]): a connection costs little memory while idle, and one peer cannot make us
//! buffer more than one message of the bound.

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::ClientError;
use crate::connect::{AttestedConnector, GatewayUrl};

/// The ALPN protocols a WebSocket connection offers (before `shroud-ra-tls/1`).
pub(crate) const ALPN: [&[u8]; 1] = [b"http/1.1"];

/// An open WebSocket to the gateway, over attested TLS.
pub(crate) type GatewaySocket = WebSocketStream<TlsStream<TcpStream>>;

/// The largest message the client accepts from the gateway: the bound on an HTTP answer.
pub const MAX_GATEWAY_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// The largest message sent to the gateway: the bound on a request body of the proxy.
pub const MAX_CLIENT_MESSAGE_LEN: usize = 16 * 1024 * 1024;

/// The read buffer of each socket. Notifications and calls are small; a larger message just
/// takes more reads.
const READ_BUFFER_LEN: usize = 8 * 1024;

/// Room for a frame header (at most 14 bytes) on top of a message in the write buffer.
const FRAME_HEADER_ROOM: usize = 64;

/// The configuration of one socket that reads messages of at most `max_incoming` bytes and
/// sends messages of at most `max_outgoing` bytes. Writes go out as soon as they are made (no
/// coalescing buffer: a notification is worth its latency), and the write buffer holds at most
/// one message, so a peer that stops reading holds up its sender instead of filling memory.
pub(crate) fn socket_config(
    max_incoming: usize,
    max_outgoing: usize,
) -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_LEN)
        .write_buffer_size(0)
        .max_write_buffer_size(max_outgoing.saturating_add(FRAME_HEADER_ROOM))
        .max_message_size(Some(max_incoming))
        .max_frame_size(Some(max_incoming))
}

/// Connects to `url` with `connector` (which must offer [`ALPN`]), completes the attested TLS
/// handshake and then the WebSocket handshake on `GET` of the URL's path. A refused attestation
/// fails in the TLS handshake, before the upgrade request exists. The caller bounds the time.
pub(crate) async fn open(
    connector: &AttestedConnector,
    url: &GatewayUrl,
) -> Result<GatewaySocket, ClientError> {
    let connection = connector.connect(url).await?;
    // `wss://` only tells tungstenite the stream is already secured; the request line carries the
    // path and `Host` the authority, as for an HTTP call.
    let target = format!("wss://{}{}", url.authority(), url.path_and_query());
    let request = target
        .as_str()
        .into_client_request()
        .map_err(|e| ClientError::InvalidUrl {
            url: url.as_str().to_owned(),
            reason: format!("cannot form a WebSocket request: {e}"),
        })?;
    let config = socket_config(MAX_GATEWAY_MESSAGE_LEN, MAX_CLIENT_MESSAGE_LEN);
    let (socket, _response) =
        tokio_tungstenite::client_async_with_config(request, connection.stream, Some(config))
            .await
            .map_err(handshake_error)?;
    Ok(socket)
}

/// A failed WebSocket handshake: the gateway's refusal (an HTTP status other than 101, with the
/// start of its body) or a broken connection.
fn handshake_error(error: tungstenite::Error) -> ClientError {
    match error {
        tungstenite::Error::Http(response) => ClientError::Http {
            status: response.status(),
            body: response
                .body()
                .as_deref()
                .map(crate::jsonrpc::quote)
                .unwrap_or_default(),
        },
        other => transport(other),
    }
}

/// A WebSocket failure after the handshake.
pub(crate) fn transport(error: tungstenite::Error) -> ClientError {
    ClientError::Transport(Box::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_upgrade_keeps_the_status_and_the_body() {
        let response = http::Response::builder()
            .status(http::StatusCode::NOT_FOUND)
            .body(Some(b"no chain sol".to_vec()))
            .unwrap();
        let error = handshake_error(tungstenite::Error::Http(Box::new(response)));
        assert_eq!(
            error.to_string(),
            "gateway answered HTTP 404 Not Found: no chain sol"
        );
    }

    #[test]
    fn the_write_buffer_takes_one_largest_message() {
        let config = socket_config(10, 1000);
        assert_eq!(config.max_message_size, Some(10));
        assert!(config.max_write_buffer_size > 1000);
        assert!(config.max_write_buffer_size > config.write_buffer_size);
    }
}
