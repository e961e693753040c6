//! HTTP/3 to the gateway (`ClientBuilder::http3`): QUIC whose TLS 1.3 handshake runs the same
//! [`AttestedServerVerifier`] as TCP (DESIGN §4.1).
//!
//! Attestation runs inside the QUIC handshake; when it fails, quinn aborts the handshake with
//! the TLS alert and no stream is ever opened, so not one request byte (not even HTTP/3's
//! control stream) reaches an unverified gateway. Nothing links two connections of this client:
//! every connection has a fresh UDP socket (a new source port), resumption and 0-RTT are off
//! (ra-tls's `client_config`), and no NEW_TOKEN token is kept (`NoneTokenStore`).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Endpoint, IdleTimeout, NoneTokenStore, TransportConfig, VarInt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use shroud_ra_tls::tls::{self, AttestedServerVerifier};
use shroud_ra_tls::{Error as RaTlsError, Verdict};

use crate::ClientError;
use crate::connect::GatewayUrl;

/// The ALPN protocol of HTTP/3; `shroud-ra-tls/1` is offered after it, as on TCP.
pub const H3_ALPN: &[u8] = b"h3";

/// How long a QUIC connection may stay silent before either side drops it. A pooled
/// connection idle for longer is gone; the pool's own idle timeout is usually shorter.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest header section the client accepts in a response.
const MAX_FIELD_SECTION: u64 = 16 * 1024;

/// What a QUIC connection's stream windows let the gateway send before the client reads.
const STREAM_WINDOW: u32 = 1024 * 1024;
const CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;

/// The sending half of an HTTP/3 connection: request streams are opened on it. Clones share
/// the connection.
#[derive(Clone)]
pub(crate) struct H3Sender(h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>);

impl std::fmt::Debug for H3Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("H3Sender")
    }
}

/// A QUIC connection whose peer passed attestation.
#[derive(Debug)]
pub struct AttestedQuicConnection {
    /// The QUIC connection, no stream opened yet.
    pub connection: quinn::Connection,
    /// What the verifier established about the gateway.
    pub verdict: Verdict,
    /// The UDP endpoint of this connection alone (its own socket).
    pub endpoint: Endpoint,
}

/// Opens QUIC connections that only complete when the peer's evidence satisfies the policy.
#[derive(Clone)]
pub struct QuicConnector {
    verifier: Arc<AttestedServerVerifier>,
    /// The TLS configuration of every connection: ra-tls's `client_config` (TLS 1.3 only, no
    /// resumption, no early data), ALPN `h3` then `shroud-ra-tls/1`.
    tls: Arc<rustls::ClientConfig>,
    address: Option<SocketAddr>,
}

impl std::fmt::Debug for QuicConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicConnector")
            .field("verifier", &self.verifier)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl QuicConnector {
    /// A connector enforcing `verifier`, offering `h3` (and `shroud-ra-tls/1`).
    pub fn new(verifier: Arc<AttestedServerVerifier>) -> Result<Self, ClientError> {
        let tls =
            tls::client_config(Arc::clone(&verifier), &[H3_ALPN]).map_err(ClientError::Policy)?;
        Ok(Self {
            verifier,
            tls: Arc::new(tls),
            address: None,
        })
    }

    /// Connects to `address` instead of resolving the URL's host (curl's `--resolve`).
    #[must_use]
    pub fn connect_to(mut self, address: Option<SocketAddr>) -> Self {
        self.address = address;
        self
    }

    /// The verifier this connector enforces.
    pub fn verifier(&self) -> &AttestedServerVerifier {
        &self.verifier
    }

    /// Connects over QUIC (UDP) to `url`'s host and port and completes an attested handshake.
    /// No stream is opened.
    pub async fn connect(&self, url: &GatewayUrl) -> Result<AttestedQuicConnection, ClientError> {
        let connect_error = |source: std::io::Error| ClientError::Connect {
            authority: url.authority().to_owned(),
            source,
        };
        let address = match self.address {
            Some(address) => address,
            None => tokio::net::lookup_host((url.host(), url.port()))
                .await
                .map_err(connect_error)?
                .next()
                .ok_or_else(|| {
                    connect_error(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the host has no address",
                    ))
                })?,
        };
        // A socket of its own per connection: no source port shared by two connections.
        let local: SocketAddr = if address.is_ipv6() {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = Endpoint::client(local).map_err(connect_error)?;
        // The refusal is kept by a verifier of this connection only: quinn reports a failed
        // handshake as a transport error with the alert, and the typed reason (which check
        // failed, both sides of a pin mismatch) would be lost.
        let refusal = Arc::new(Mutex::new(None));
        let mut tls = rustls::ClientConfig::clone(&self.tls);
        tls.dangerous()
            .set_certificate_verifier(Arc::new(RecordingVerifier {
                inner: Arc::clone(&self.verifier),
                refusal: Arc::clone(&refusal),
            }));
        let crypto = QuicClientConfig::try_from(tls).map_err(|e| ClientError::InvalidOption {
            option: "http3",
            reason: e.to_string(),
        })?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(transport()?));
        config.token_store(Arc::new(NoneTokenStore));
        // Checked here for the error message; quinn parses the same host as the name (SNI).
        url.server_name()?;
        let connecting = endpoint
            .connect_with(config, address, url.host())
            .map_err(|e| connect_error(std::io::Error::other(e)))?;
        let connection = match connecting.await {
            Ok(connection) => connection,
            Err(error) => {
                let refused = refusal
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                return Err(match refused {
                    Some(refusal) => ClientError::from_refusal(refusal),
                    None => ClientError::Tls {
                        authority: url.authority().to_owned(),
                        source: std::io::Error::other(error),
                    },
                });
            }
        };
        let cert = connection
            .peer_identity()
            .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
            .and_then(|chain| chain.first().cloned())
            .ok_or_else(|| {
                ClientError::InvalidResponse("the gateway presented no certificate".into())
            })?;
        // The verifier accepted this certificate moments ago and cached its verdict.
        let verdict = match self.verifier.verdict_for(&cert) {
            Some(verdict) => verdict,
            None => self
                .verifier
                .verify(&cert, UnixTime::now())
                .map_err(ClientError::from_refusal)?,
        };
        Ok(AttestedQuicConnection {
            connection,
            verdict,
            endpoint,
        })
    }
}

fn transport() -> Result<TransportConfig, ClientError> {
    let mut transport = TransportConfig::default();
    transport
        .max_idle_timeout(Some(IdleTimeout::try_from(IDLE_TIMEOUT).map_err(|e| {
            ClientError::InvalidOption {
                option: "http3",
                reason: e.to_string(),
            }
        })?))
        .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_WINDOW))
        // The gateway opens no request streams towards us; HTTP/3's three uni streams suffice.
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(8))
        .datagram_receive_buffer_size(None);
    Ok(transport)
}

/// The attested verifier of one connection, keeping its refusal for the error the caller sees.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<AttestedServerVerifier>,
    refusal: Arc<Mutex<Option<RaTlsError>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Err(error) = &result
            && let Some(refusal) = tls::attestation_error(error)
        {
            *self.refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some(refusal.clone());
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The handshake signature by the attested key: what binds this connection to it.
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The HTTP/3 connection state to drive (its control stream) until the connection closes.
pub(crate) type H3Driver = h3::client::Connection<h3_quinn::Connection, Bytes>;

/// Starts HTTP/3 on an attested QUIC connection: the sender, and the connection to drive.
pub(crate) async fn h3_handshake(
    connection: quinn::Connection,
) -> Result<(H3Sender, H3Driver), ClientError> {
    let mut builder = h3::client::builder();
    builder.max_field_section_size(MAX_FIELD_SECTION);
    let (driver, sender) = builder
        .build::<_, _, Bytes>(h3_quinn::Connection::new(connection))
        .await
        .map_err(|e| ClientError::Transport(Box::new(e)))?;
    Ok((H3Sender(sender), driver))
}

/// Why one HTTP/3 exchange failed.
pub(crate) enum H3Failure {
    /// The request stream could not be opened: nothing of the request was sent.
    NotSent(ClientError),
    /// It failed after (part of) the request was sent.
    Failed(ClientError),
}

/// POSTs `body` as JSON to `url` on `sender` and reads the answer, at most `max_len` bytes.
pub(crate) async fn post(
    sender: &mut H3Sender,
    url: &GatewayUrl,
    body: Bytes,
    max_len: usize,
) -> Result<(http::StatusCode, Bytes), H3Failure> {
    let transport = |e: h3::error::StreamError| ClientError::Transport(Box::new(e));
    let uri = format!("https://{}{}", url.authority(), url.path_and_query());
    let request = http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(())
        .map_err(|e| {
            H3Failure::Failed(ClientError::InvalidUrl {
                url: url.as_str().to_owned(),
                reason: format!("cannot form an HTTP request: {e}"),
            })
        })?;
    let mut stream = sender
        .0
        .send_request(request)
        .await
        .map_err(|e| H3Failure::NotSent(transport(e)))?;
    let sent = async {
        stream.send_data(body).await?;
        stream.finish().await
    };
    sent.await.map_err(|e| H3Failure::Failed(transport(e)))?;
    let response = stream
        .recv_response()
        .await
        .map_err(|e| H3Failure::Failed(transport(e)))?;
    let mut answer = BytesMut::new();
    while let Some(mut chunk) = stream
        .recv_data()
        .await
        .map_err(|e| H3Failure::Failed(transport(e)))?
    {
        if answer.len().saturating_add(chunk.remaining()) > max_len {
            stream.stop_sending(h3::error::Code::H3_REQUEST_CANCELLED);
            return Err(H3Failure::Failed(ClientError::Transport(
                format!("the answer is larger than {max_len} bytes").into(),
            )));
        }
        let len = chunk.remaining();
        answer.extend_from_slice(&chunk.copy_to_bytes(len));
    }
    Ok((response.status(), answer.freeze()))
}
