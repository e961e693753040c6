//! One HTTP exchange on an attested connection: from the [`Pool`] when it holds one bound to
//! the verified key, else freshly connected, attested and driven by hyper's connection API.
//!
//! Connections are driven by hand rather than through hyper-util's pooled client because that
//! pool cannot tell which verified key a connection belongs to, and ours reuses only connections
//! bound to the key of the last verified handshake.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use shroud_ra_tls::UnixTime;

use crate::ClientError;
use crate::connect::{AttestedConnector, GatewayUrl, HttpVersion};
use crate::exchange::Answer;
use crate::pool::{AbortOnDrop, Pool, PooledConnection, Sender};
use crate::quic::{self, H3Failure, QuicConnector};

/// The largest response body the client reads.
const MAX_RESPONSE_LEN: usize = 64 * 1024 * 1024;

/// How many closed pooled connections one attempt skips before it opens a fresh one.
const MAX_STALE: u32 = 4;

/// Posts JSON-RPC bodies to one gateway URL over attested, pooled connections.
#[derive(Debug)]
pub(crate) struct AttestedHttp {
    /// Where every body is posted.
    pub(crate) url: GatewayUrl,
    /// Opens connections whose handshake verified the gateway's evidence.
    pub(crate) connector: AttestedConnector,
    /// The connections kept for reuse, bound to the last verified key.
    pub(crate) pool: Pool,
    /// With HTTP/3 on: every connection is QUIC, attested by the same verifier.
    pub(crate) quic: Option<QuicConnector>,
}

impl AttestedHttp {
    /// One attempt: a pooled connection bound to the verified key, or a freshly attested one.
    pub(crate) async fn attempt(&self, body: Bytes) -> Result<Answer, ClientError> {
        let mut stale = 0;
        loop {
            let now = UnixTime::now().as_secs();
            let pooled = if stale < MAX_STALE {
                self.pool.checkout(now)
            } else {
                None
            };
            let connection = match pooled {
                Some(connection) => connection,
                None => self.open().await?,
            };
            match self.send(connection, body.clone()).await {
                Outcome::Answer(answer) => return Ok(answer),
                // A pooled connection closed under us before the request went out: nothing was
                // sent, so trying another connection is safe even for a write.
                Outcome::NotSent => stale += 1,
                Outcome::Failed(error) => return Err(error),
            }
        }
    }

    /// Opens and attests a new connection and binds the pool to its key.
    async fn open(&self) -> Result<PooledConnection, ClientError> {
        if let Some(quic) = &self.quic {
            let attested = quic.connect(&self.url).await?;
            let connection = attested.connection.clone();
            let (sender, mut h3) = quic::h3_handshake(attested.connection).await?;
            // The endpoint (this connection's own socket) lives as long as the driver.
            let endpoint = attested.endpoint;
            let driver = tokio::spawn(async move {
                let _ = h3.wait_idle().await;
                drop(endpoint);
            });
            return Ok(self.pool.opened(PooledConnection {
                sender: Sender::Http3 { sender, connection },
                verdict: Arc::new(attested.verdict),
                driver: Arc::new(AbortOnDrop(driver)),
                reused: false,
            }));
        }
        let connection = self.connector.connect(&self.url).await?;
        let verdict = Arc::new(connection.verdict);
        let io = TokioIo::new(connection.stream);
        let (sender, driver) = match connection.http_version {
            HttpVersion::Http1 => {
                let (sender, driver) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(transport)?;
                let driver = tokio::spawn(async move {
                    driver.await.ok();
                });
                (Sender::Http1(sender), driver)
            }
            HttpVersion::Http2 => {
                let (sender, driver) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .map_err(transport)?;
                let driver = tokio::spawn(async move {
                    driver.await.ok();
                });
                (Sender::Http2(sender), driver)
            }
        };
        Ok(self.pool.opened(PooledConnection {
            sender,
            verdict,
            driver: Arc::new(AbortOnDrop(driver)),
            reused: false,
        }))
    }

    /// Posts `body` on `connection`, reads the answer and returns an HTTP/1.1 connection to the
    /// pool.
    async fn send(&self, mut connection: PooledConnection, body: Bytes) -> Outcome {
        let url = &self.url;
        let builder = http::Request::post(url.path_and_query())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json");
        let reused = connection.reused;
        let response = match &mut connection.sender {
            Sender::Http1(sender) => {
                if sender.ready().await.is_err() {
                    return not_sent(reused);
                }
                let request = match builder
                    .header(http::header::HOST, url.authority())
                    .body(Full::new(body))
                {
                    Ok(request) => request,
                    Err(e) => return Outcome::Failed(invalid_request(url, e)),
                };
                sender.try_send_request(request).await
            }
            Sender::Http2(sender) => {
                if sender.ready().await.is_err() {
                    return not_sent(reused);
                }
                // HTTP/2 takes :scheme and :authority from an absolute URI.
                let uri = format!("https://{}{}", url.authority(), url.path_and_query());
                let request = match builder.uri(uri).body(Full::new(body)) {
                    Ok(request) => request,
                    Err(e) => return Outcome::Failed(invalid_request(url, e)),
                };
                sender.try_send_request(request).await
            }
            Sender::Http3 { sender, .. } => {
                return match quic::post(sender, url, body, MAX_RESPONSE_LEN).await {
                    Ok(answer) => Outcome::Answer(answer),
                    Err(H3Failure::NotSent(_)) if reused => Outcome::NotSent,
                    Err(H3Failure::NotSent(error) | H3Failure::Failed(error)) => {
                        Outcome::Failed(error)
                    }
                };
            }
        };
        let response = match response {
            Ok(response) => response,
            Err(mut error) => {
                let unsent = error.take_message().is_some();
                return if unsent && reused {
                    Outcome::NotSent
                } else {
                    Outcome::Failed(transport(error.into_error()))
                };
            }
        };
        let status = response.status();
        let body = match Limited::new(response.into_body(), MAX_RESPONSE_LEN)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(e) => return Outcome::Failed(ClientError::Transport(e)),
        };
        self.pool.checkin(connection);
        Outcome::Answer((status, body))
    }
}

/// What became of one request on one connection.
enum Outcome {
    /// The gateway answered.
    Answer(Answer),
    /// A reused connection turned out closed before the request was written.
    NotSent,
    /// The request failed, possibly after (part of) it was written.
    Failed(ClientError),
}

/// A connection that fails before anything was written: another one may be tried if this one
/// came from the pool; a fresh one failing this way is a real failure.
fn not_sent(reused: bool) -> Outcome {
    if reused {
        Outcome::NotSent
    } else {
        Outcome::Failed(ClientError::Transport(
            "the connection closed before the request was sent".into(),
        ))
    }
}

fn transport(error: hyper::Error) -> ClientError {
    ClientError::Transport(Box::new(error))
}

fn invalid_request(url: &GatewayUrl, error: http::Error) -> ClientError {
    ClientError::InvalidUrl {
        url: url.as_str().to_owned(),
        reason: format!("cannot form an HTTP request: {error}"),
    }
}
