//! The `[listen] h3` listener: HTTP/3 over QUIC (quinn + h3), terminated in the enclave with the
//! same RA-TLS certificate, connection limits and routes as the TCP listener (DESIGN §4.1).
//!
//! A QUIC connection is admitted like a TCP one (the shared `Admission`: `max_connections`, the
//! per-client cap keyed by a hash of the address, shedding of unfinished handshakes), its
//! handshake bounded by `handshake_timeout`; each HTTP/3 request stream is then served by
//! `routes::handle`, whose body reader applies the same size limit and timeout. There are no
//! WebSocket upgrades over HTTP/3 (RFC 6455 needs HTTP/1.1): `GET /{chain}` with `Upgrade` gets
//! the same refusal as over HTTP/2.

pub(crate) mod body;
pub(crate) mod config;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderName, HeaderValue, Response};
use http_body_util::BodyExt as _;
use hyper::body::Body as _;
use quinn::{Endpoint, EndpointConfig, Incoming, VarInt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::Dispatch;
use tracing::instrument::WithSubscriber as _;

use crate::admission::{Admission, Admitted};
use crate::body::Body;
use crate::certs::ServedCertificates;
use crate::error::GatewayError;
use crate::ratelimit::ClientKey;
use crate::routes;
use crate::settings::Limits;
use crate::shutdown::stopped;
use crate::state::AppState;
use crate::subscriptions::session::Upgrades;

use self::body::RequestBody;

/// HTTP/3's "no error" (RFC 9114 §8.1), the code of a connection closed at shutdown.
const H3_NO_ERROR: u32 = 0x100;

/// How long the endpoint waits at shutdown for its CONNECTION_CLOSE frames to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Why the QUIC listener did not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QuicError {
    /// Its configuration was refused.
    #[error(transparent)]
    Config(#[from] config::QuicConfigError),
    /// The UDP socket could not be bound.
    #[error("binding the h3 listener on udp {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl From<QuicError> for GatewayError {
    fn from(error: QuicError) -> Self {
        match error {
            QuicError::Bind { addr, source } => GatewayError::Bind {
                what: "h3 (UDP)",
                addr,
                source,
            },
            QuicError::Config(error) => GatewayError::Quic(error.to_string()),
        }
    }
}

/// A bound QUIC endpoint, serving nothing yet.
#[derive(Debug)]
pub(crate) struct QuicListener {
    endpoint: Endpoint,
    addr: SocketAddr,
}

impl QuicListener {
    /// Binds `addr` (UDP) with the QUIC configuration of `config::server`.
    pub(crate) fn bind(
        addr: SocketAddr,
        certs: Arc<ServedCertificates>,
        limits: &Limits,
    ) -> Result<Self, QuicError> {
        let server = config::server(certs, limits)?;
        let socket =
            std::net::UdpSocket::bind(addr).map_err(|source| QuicError::Bind { addr, source })?;
        let endpoint = Endpoint::new(
            EndpointConfig::default(),
            Some(server),
            socket,
            Arc::new(Unlogged(quinn::default_runtime().ok_or_else(|| {
                QuicError::Bind {
                    addr,
                    source: std::io::Error::other("no async runtime for the QUIC endpoint"),
                }
            })?)),
        )
        .map_err(|source| QuicError::Bind { addr, source })?;
        let addr = endpoint
            .local_addr()
            .map_err(|source| QuicError::Bind { addr, source })?;
        Ok(Self { endpoint, addr })
    }

    /// The bound address (the real port when bound to port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// quinn's runtime for the gateway's endpoint: tokio's, except that quinn's own tasks (the
/// endpoint driver and every connection driver, where packets are received, sent and
/// processed) log into nothing. At debug and trace level quinn names the peer's address
/// ("got Initial packet from ADDR", "sending stateless reset to ADDR"), and a client's address
/// must never reach a log (DESIGN §5), whatever `RUST_LOG` says. The gateway's own lines about
/// QUIC (handshake failed, timed out) are logged by its own tasks, without the address.
#[derive(Debug)]
struct Unlogged(Arc<dyn quinn::Runtime>);

impl quinn::Runtime for Unlogged {
    fn new_timer(&self, at: std::time::Instant) -> std::pin::Pin<Box<dyn quinn::AsyncTimer>> {
        self.0.new_timer(at)
    }

    fn spawn(&self, future: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) {
        self.0
            .spawn(Box::pin(future.with_subscriber(Dispatch::none())));
    }

    fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> std::io::Result<Arc<dyn quinn::AsyncUdpSocket>> {
        self.0.wrap_udp_socket(socket)
    }

    fn now(&self) -> std::time::Instant {
        self.0.now()
    }
}

/// Runs `f`, a quinn call that processes a client's packets on the caller's task (accepting,
/// retrying or refusing an incoming connection), with quinn's logging off, as [`Unlogged`] does
/// for quinn's own tasks.
fn unlogged<T>(f: impl FnOnce() -> T) -> T {
    tracing::dispatcher::with_default(&Dispatch::none(), f)
}

/// What the QUIC listener shares with the TCP listeners.
pub(crate) struct QuicServing {
    /// The same connection limits as every other listener.
    pub(crate) admission: Arc<Admission>,
    pub(crate) state: Arc<AppState>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) header_read_timeout: Duration,
    /// How long connections may take to finish their requests once the gateway stops (the
    /// grace the TCP listeners get).
    pub(crate) shutdown_grace: Duration,
}

/// Accepts QUIC connections until `stop`, then closes every connection gracefully (HTTP/3
/// GOAWAY, requests in flight finish within `shutdown_grace`) and waits briefly for the closes
/// to be sent.
pub(crate) async fn serve(
    listener: QuicListener,
    serving: Arc<QuicServing>,
    alive: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) {
    let endpoint = listener.endpoint;
    let limiter = &serving.state.relay.limiter;
    let mut connections = JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => break,
            },
            () = stopped(&mut stop) => break,
        };
        // Under pressure, make the client prove its address (a Retry round trip) before it
        // counts against that address's connection cap: UDP source addresses are forgeable.
        // The retry token is only valid for this one connection attempt; no NEW_TOKEN is sent.
        if !incoming.remote_address_validated()
            && endpoint.open_connections() >= serving.state.limits.max_connections / 2
        {
            let _ = unlogged(|| incoming.retry());
            continue;
        }
        // The address becomes an opaque rate-limit key here and goes no further.
        let client = limiter.key(incoming.remote_address().ip());
        let admitted = match serving.admission.admit(client).await {
            Ok(admitted) => admitted,
            Err(refused) => {
                tracing::debug!("{}; refusing a new QUIC connection", refused.reason());
                unlogged(|| incoming.refuse());
                continue;
            }
        };
        // Finished connection tasks are reaped as we go: the set holds the open connections,
        // which admission bounds.
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(
            incoming,
            client,
            admitted,
            Arc::clone(&serving),
            alive.clone(),
            stop.clone(),
        ));
    }
    drop(alive);
    // Each connection sends GOAWAY at the stop signal, lets its requests finish and closes
    // itself; the endpoint is closed only after that (closing it closes every connection at
    // once), or after the grace period.
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(serving.shutdown_grace, drained)
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing the remaining QUIC connections");
    }
    // This also covers connections still in their handshake.
    endpoint.close(VarInt::from_u32(H3_NO_ERROR), b"shutting down");
    let _ = tokio::time::timeout(CLOSE_WAIT, endpoint.wait_idle()).await;
}

/// One QUIC connection: handshake, then HTTP/3 requests until the client leaves, the
/// connection idles out or the gateway stops.
async fn connection(
    incoming: Incoming,
    client: ClientKey,
    mut admitted: Admitted,
    serving: Arc<QuicServing>,
    // Shutdown waits until every clone is dropped.
    _alive: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) {
    let metrics = Arc::clone(&serving.state.relay.metrics);
    let mut shed = admitted.handshaking();
    let connecting = match unlogged(|| incoming.accept()) {
        Ok(connecting) => connecting,
        Err(error) => {
            metrics.quic_handshake("failed");
            tracing::debug!(%error, "QUIC connection refused before its handshake");
            return;
        }
    };
    let handshake = tokio::time::timeout(serving.handshake_timeout, connecting);
    let quic = tokio::select! {
        result = handshake => match result {
            Ok(Ok(quic)) => quic,
            Ok(Err(error)) => {
                metrics.quic_handshake("failed");
                tracing::debug!(%error, "QUIC handshake failed");
                return;
            }
            Err(_) => {
                metrics.quic_handshake("timeout");
                tracing::debug!("QUIC handshake timed out");
                return;
            }
        },
        _ = &mut shed => {
            metrics.quic_handshake("shed");
            tracing::debug!("connection full: closed the oldest unfinished handshake");
            return;
        }
        () = stopped(&mut stop) => return,
    };
    admitted.handshaken();
    metrics.quic_handshake("ok");
    let _open = metrics.connection("h3");
    // Nothing to upgrade to over HTTP/3; the hold keeps the admission slot (and the shutdown's
    // count) exactly as long as this connection task.
    let upgrades = Upgrades {
        hold: Arc::new(()),
        stop: stop.clone(),
    };
    let mut builder = h3::server::builder();
    builder.max_field_section_size(config::MAX_FIELD_SECTION);
    let build = builder.build::<_, Bytes>(h3_quinn::Connection::new(quic.clone()));
    let mut h3 = match tokio::time::timeout(serving.header_read_timeout, build).await {
        Ok(Ok(h3)) => h3,
        Ok(Err(error)) => {
            tracing::debug!(%error, "HTTP/3 connection setup failed");
            return;
        }
        Err(_) => {
            tracing::debug!("HTTP/3 connection setup timed out");
            quic.close(VarInt::from_u32(H3_NO_ERROR), b"");
            return;
        }
    };
    let mut requests = JoinSet::new();
    loop {
        // Finished request tasks are reaped as we go, so the set holds at most the stream
        // limit's worth.
        while requests.try_join_next().is_some() {}
        tokio::select! {
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    requests.spawn(request(
                        resolver,
                        Arc::clone(&serving.state),
                        client,
                        upgrades.clone(),
                        serving.header_read_timeout,
                    ));
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(%error, "HTTP/3 connection ended");
                    break;
                }
            },
            () = stopped(&mut stop) => {
                // GOAWAY: the client opens no new requests here; those in flight finish
                // (the gateway's grace period bounds them through `alive`).
                let _ = tokio::time::timeout(
                    serving.header_read_timeout,
                    h3.shutdown(0),
                )
                .await;
                break;
            }
        }
    }
    while requests.join_next().await.is_some() {}
    quic.close(VarInt::from_u32(H3_NO_ERROR), b"");
}

/// One request stream: its headers within the header read timeout, `routes::handle`, then the
/// response within the request timeout (a client that stops reading does not hold it forever).
async fn request(
    resolver: h3::server::RequestResolver<h3_quinn::Connection, Bytes>,
    state: Arc<AppState>,
    client: ClientKey,
    upgrades: Upgrades,
    header_read: Duration,
) {
    let (request, stream) =
        match tokio::time::timeout(header_read, resolver.resolve_request()).await {
            Ok(Ok(resolved)) => resolved,
            Ok(Err(error)) => {
                tracing::debug!(%error, "HTTP/3 request refused");
                return;
            }
            Err(_) => {
                tracing::debug!("HTTP/3 request headers not received in time");
                return;
            }
        };
    let (mut send, recv) = stream.split();
    let request = request.map(|()| RequestBody::new(recv));
    let send_timeout = state.limits.request_timeout;
    let response = routes::handle(state, client, &upgrades, request).await;
    let (head, mut body) = h3_response(response);
    let write = async {
        send.send_response(head).await?;
        // `Body` never fails and has no trailers: every frame is data.
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                send.send_data(data).await?;
            }
        }
        send.finish().await
    };
    match tokio::time::timeout(send_timeout, write).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "HTTP/3 response not sent"),
        Err(_) => tracing::debug!("HTTP/3 response not taken by the client in time"),
    }
}

/// The response head for HTTP/3: no connection-specific fields (RFC 9114 §4.2 makes them
/// malformed), and `content-length` from the body's exact length, as hyper adds it over TCP.
fn h3_response(response: Response<Body>) -> (Response<()>, Body) {
    let (mut parts, body) = response.into_parts();
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        parts.headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        parts.headers.remove(HeaderName::from_static(name));
    }
    if let Some(len) = body.size_hint().exact() {
        parts
            .headers
            .entry(CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(len));
    }
    parts.version = http::Version::HTTP_3;
    (Response::from_parts(parts, ()), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_lose_connection_fields_and_gain_a_length() {
        let response = Response::builder()
            .header(CONNECTION, "close")
            .header("keep-alive", "timeout=5")
            .header("x-kept", "1")
            .body(Body::from("hello"))
            .unwrap();
        let (head, _) = h3_response(response);
        assert!(head.headers().get(CONNECTION).is_none());
        assert!(head.headers().get("keep-alive").is_none());
        assert_eq!(head.headers()["x-kept"], "1");
        assert_eq!(head.headers()[CONTENT_LENGTH], "5");
    }
}
