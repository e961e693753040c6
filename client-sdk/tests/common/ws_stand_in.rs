//! A WebSocket stand-in for the gateway: RA-TLS with the simulated attester (offering `h2` and
//! `http/1.1`, as the gateway does), WebSocket upgrades on any path, and a scripted
//! `eth_subscribe`:
//!
//! - `["newHeads"]` answers id [`HEADS_ID`], then sends three notifications for it (`number`
//!   `0x1`..`0x3`) with one for another subscription in between;
//! - `["slow"]` answers, then closes the connection with 1013 `slow consumer`;
//! - anything else is a JSON-RPC error -32602.
//!
//! `eth_unsubscribe` answers `true`; any other call is answered with its params. It records
//! the negotiated ALPN, the upgrade paths, every call and the close frames it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{ALPN_BOTH, MEASUREMENT, ra_tls_config, simulated_cert};

/// The subscription id the stand-in gives `newHeads`.
pub const HEADS_ID: &str = "0xfeed";

/// What the stand-in saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// The ALPN protocol negotiated on each connection.
    pub alpn: Vec<Option<String>>,
    /// The path of each upgrade request.
    pub paths: Vec<String>,
    /// Every JSON-RPC call received.
    pub calls: Vec<Value>,
    /// The close frames received: `(code, reason)`.
    pub closes: Vec<(u16, String)>,
}

/// The running stand-in; stops when dropped.
pub struct WsStandIn {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl WsStandIn {
    pub async fn start() -> Self {
        let acceptor = tokio_rustls::TlsAcceptor::from(ra_tls_config(
            &simulated_cert(MEASUREMENT),
            &ALPN_BOTH,
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let alpn = tls
                        .get_ref()
                        .1
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned());
                    record.lock().unwrap().alpn.push(alpn);
                    let paths = Arc::clone(&record);
                    #[expect(
                        clippy::result_large_err,
                        reason = "the signature of tungstenite's accept callback"
                    )]
                    let callback = move |request: &Request, response: Response| {
                        paths
                            .lock()
                            .unwrap()
                            .paths
                            .push(request.uri().path().to_owned());
                        Ok(response)
                    };
                    let Ok(socket) = tokio_tungstenite::accept_hdr_async(tls, callback).await
                    else {
                        return;
                    };
                    serve(socket, &record).await;
                });
            }
        });
        Self { addr, seen, task }
    }

    /// `https://ADDR/CHAIN`.
    pub fn url(&self, chain: &str) -> String {
        format!("https://{}/{chain}", self.addr)
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for WsStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<S>(mut socket: tokio_tungstenite::WebSocketStream<S>, record: &Mutex<Seen>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = socket.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => {
                if let Some(frame) = frame {
                    record
                        .lock()
                        .unwrap()
                        .closes
                        .push((frame.code.into(), frame.reason.as_str().to_owned()));
                }
                continue;
            }
            _ => continue,
        };
        let call: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
        record.lock().unwrap().calls.push(call.clone());
        let id = call.get("id").cloned().unwrap_or(Value::Null);
        let params = call.get("params").cloned().unwrap_or(Value::Null);
        let reply = |result: Value| {
            Message::text(json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
        };
        match call.get("method").and_then(Value::as_str) {
            Some("eth_subscribe") => match params.get(0).and_then(Value::as_str) {
                Some("newHeads") => {
                    socket.send(reply(json!(HEADS_ID))).await.ok();
                    for (number, subscription) in [
                        ("0x1", HEADS_ID),
                        ("0x9", "0xother"),
                        ("0x2", HEADS_ID),
                        ("0x3", HEADS_ID),
                    ] {
                        let note = json!({
                            "jsonrpc": "2.0",
                            "method": "eth_subscription",
                            "params": {"subscription": subscription, "result": {"number": number}}
                        });
                        socket.send(Message::text(note.to_string())).await.ok();
                    }
                }
                Some("slow") => {
                    socket.send(reply(json!("0x5105"))).await.ok();
                    let frame = CloseFrame {
                        code: CloseCode::Again,
                        reason: "slow consumer".into(),
                    };
                    socket.send(Message::Close(Some(frame))).await.ok();
                }
                _ => {
                    let error = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "unknown subscription kind"}});
                    socket.send(Message::text(error.to_string())).await.ok();
                }
            },
            Some("eth_unsubscribe") => {
                socket.send(reply(json!(true))).await.ok();
            }
            _ => {
                socket.send(reply(params)).await.ok();
            }
        }
    }
}
