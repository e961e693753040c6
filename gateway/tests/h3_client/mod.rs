//! An HTTP/3 test client for the gateway's `[listen] h3` listener: quinn + h3 with the RA-TLS
//! verifier pinned to the gateway's measurement, and counters for what a client could be
//! handed to link its connections (TLS session tickets, QUIC NEW_TOKEN tokens).
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::NamedGroup;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use shroud_gateway::{Config, Gateway};

/// Bounds every wait of these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A `--dev` config on loopback port 0 with `[listen] h3` on a loopback UDP port 0.
pub fn h3_config(upstreams: Vec<(String, String)>) -> Config {
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = Config::dev(upstreams, loopback, loopback);
    config.listen.h3 = Some(loopback);
    config
}

/// Binds `config`; the gateway and its h3 address.
pub async fn bind_h3(config: Config) -> (Gateway, SocketAddr) {
    let gateway = Gateway::bind(config).await.unwrap();
    let h3 = gateway.h3_addr().expect("[listen] h3 is bound");
    (gateway, h3)
}

/// Counts the TLS 1.3 session tickets a server hands this client, and keeps the last few so
/// that a later connection could resume and send 0-RTT data, as an ordinary client would.
#[derive(Debug, Default)]
pub struct CountingSessions {
    pub tickets: AtomicUsize,
    kept: Mutex<Vec<Tls13ClientSessionValue>>,
}

impl ClientSessionStore for CountingSessions {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }
    fn set_tls12_session(&self, _: ServerName<'static>, _: Tls12ClientSessionValue) {}
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {}
    fn insert_tls13_ticket(&self, _: ServerName<'static>, ticket: Tls13ClientSessionValue) {
        self.tickets.fetch_add(1, Ordering::SeqCst);
        let mut kept = self.kept.lock().unwrap();
        if kept.len() < 8 {
            kept.push(ticket);
        }
    }
    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.kept.lock().unwrap().pop()
    }
}

/// Counts the QUIC address validation tokens (NEW_TOKEN frames) a server hands this client,
/// keeping the last few to present on a later connection, as quinn's default store would.
#[derive(Debug, Default)]
pub struct CountingTokens {
    pub tokens: AtomicUsize,
    kept: Mutex<Vec<Bytes>>,
}

impl quinn::TokenStore for CountingTokens {
    fn insert(&self, _: &str, token: Bytes) {
        self.tokens.fetch_add(1, Ordering::SeqCst);
        let mut kept = self.kept.lock().unwrap();
        if kept.len() < 8 {
            kept.push(token);
        }
    }
    fn take(&self, _: &str) -> Option<Bytes> {
        self.kept.lock().unwrap().pop()
    }
}

/// What a test client asks for beyond the attested defaults.
#[derive(Clone, Default)]
pub struct Knobs {
    /// Offer 0-RTT (`enable_early_data`) and keep tickets in this store.
    pub sessions: Option<Arc<CountingSessions>>,
    /// Keep NEW_TOKEN tokens in this store.
    pub tokens: Option<Arc<CountingTokens>>,
    /// The local address to send from.
    pub local_ip: Option<&'static str>,
}

/// A quinn client endpoint and config trusting `pin` (simulated allowed), ALPN `h3` then
/// `shroud-ra-tls/1`.
pub fn client(pin: &str, knobs: &Knobs) -> (quinn::Endpoint, quinn::ClientConfig) {
    let verifier = Arc::new(
        shroud_ra_tls::tls::AttestedServerVerifier::new(
            shroud_ra_tls::Policy::from_pins([pin]).unwrap(),
        )
        .danger_allow_simulated(true),
    );
    let mut tls = shroud_ra_tls::tls::client_config(verifier, &[b"h3"]).unwrap();
    if let Some(sessions) = &knobs.sessions {
        tls.resumption = rustls::client::Resumption::store(Arc::clone(sessions) as _);
        tls.enable_early_data = true;
    }
    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    if let Some(tokens) = &knobs.tokens {
        config.token_store(Arc::clone(tokens) as _);
    }
    let local: SocketAddr = format!("{}:0", knobs.local_ip.unwrap_or("127.0.0.1"))
        .parse()
        .unwrap();
    let endpoint = quinn::Endpoint::client(local).unwrap();
    (endpoint, config)
}

/// An attested QUIC connection to `addr`.
pub async fn connect(addr: SocketAddr, pin: &str, knobs: &Knobs) -> quinn::Connection {
    let (endpoint, config) = client(pin, knobs);
    let connecting = endpoint.connect_with(config, addr, "localhost").unwrap();
    tokio::time::timeout(WAIT, connecting)
        .await
        .expect("handshake in time")
        .expect("attested handshake")
}

/// HTTP/3 on `connection`: the sender; the connection is driven by a task.
pub async fn h3(
    connection: quinn::Connection,
) -> h3::client::SendRequest<h3_quinn::OpenStreams, Bytes> {
    let (mut driver, sender) = h3::client::new(h3_quinn::Connection::new(connection))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = driver.wait_idle().await;
    });
    sender
}

/// The status, headers and body of one HTTP/3 exchange.
pub struct H3Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl H3Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` (an absolute `https://` URI) and reads the whole answer, within [`WAIT`].
pub async fn send(
    sender: &mut h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    request: Request<Bytes>,
) -> H3Reply {
    let exchange = async {
        let (parts, body) = request.into_parts();
        let mut stream = sender
            .send_request(Request::from_parts(parts, ()))
            .await
            .unwrap();
        // A server that refuses early (413) stops reading the body: sending may then fail,
        // and the answer is still there to read.
        let sent = async {
            if !body.is_empty() {
                stream.send_data(body).await?;
            }
            stream.finish().await
        };
        let _ = sent.await;
        let response = stream.recv_response().await.unwrap();
        let mut body = BytesMut::new();
        while let Some(mut chunk) = stream.recv_data().await.unwrap() {
            let len = chunk.remaining();
            body.extend_from_slice(&chunk.copy_to_bytes(len));
        }
        H3Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: body.freeze(),
        }
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("an answer in time")
}

/// `POST https://localhost/eth` with a JSON body.
pub fn post_json(body: &str) -> Request<Bytes> {
    Request::post("https://localhost/eth")
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_owned()))
        .unwrap()
}

/// `GET https://localhost{path}`.
pub fn get(path: &str) -> Request<Bytes> {
    Request::get(format!("https://localhost{path}"))
        .body(Bytes::new())
        .unwrap()
}
