//! `[listen] h3` (DESIGN §4.1, issue 17): HTTP/3 over QUIC with the same RA-TLS certificate,
//! routes and limits as TCP; `Alt-Svc` only when configured; nothing that links connections
//! (no session ticket, no NEW_TOKEN, no 0-RTT); a graceful close at shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;
mod h3_client;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{StartGateway, TestGateway, dev_config};
use h3_client::{
    CountingSessions, CountingTokens, H3Reply, Knobs, WAIT, bind_h3, connect, get, h3, h3_config,
    post_json, send,
};
use http::StatusCode;
use shroud_testkit::gateway::{Started, simulated_pin};
use shroud_testkit::upstream::RecordingUpstream;

/// Runs a bound gateway in process (the TCP harness for metrics and HTTP/1.1 requests).
fn run(gateway: shroud_gateway::Gateway) -> TestGateway {
    let started = Started {
        addr: gateway.https_addr(),
        metrics_addr: gateway.metrics_addr(),
        measurement: gateway.measurement_hex(),
        resolver: Some(gateway.resolver()),
        client_tls: |measurement| {
            let verifier = common::verifier(&simulated_pin(measurement));
            shroud_ra_tls::tls::client_config(verifier, &[]).unwrap()
        },
    };
    TestGateway::in_process(started, |stop| gateway.run(stop))
}

fn metric(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn every_route_is_served_over_h3() {
    let upstream = RecordingUpstream::start().await;
    let (gateway, addr) = bind_h3(h3_config(vec![("eth".into(), upstream.url())])).await;
    let gateway = run(gateway);
    let connection = connect(addr, &gateway.pin(), &Knobs::default()).await;
    assert_eq!(
        connection
            .handshake_data()
            .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|data| data.protocol),
        Some(b"h3".to_vec()),
        "the gateway selects h3, never shroud-ra-tls/1"
    );
    let mut sender = h3(connection.clone()).await;

    // JSON-RPC, single and batch, through the same pipeline.
    let reply = send(
        &mut sender,
        post_json(r#"{"jsonrpc":"2.0","id":7,"method":"eth_blockNumber"}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), r#"{"jsonrpc":"2.0","id":7,"result":"0x10"}"#);
    assert_eq!(
        reply.headers["content-length"],
        reply.body.len().to_string()
    );
    let reply = send(
        &mut sender,
        post_json(
            r#"[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]"#,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.text().starts_with(r#"[{"jsonrpc":"2.0","id":1,"#),
        "{}",
        reply.text()
    );

    // Health, readiness, the attestation bundle and the OHTTP keys.
    let reply = send(&mut sender, get("/healthz")).await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (StatusCode::OK, "ok")
    );
    let reply = send(&mut sender, get("/.well-known/shroud/attestation")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let bundle: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(bundle.get("certificate").is_some(), "{bundle}");
    let reply = send(&mut sender, get("/.well-known/ohttp-gateway")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.body.is_empty());

    // Refusals as over TCP: wrong media type, a body over the limit.
    let mut wrong = post_json("{}");
    wrong
        .headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(
        send(&mut sender, wrong).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_call","params":["{}"]}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    assert_eq!(
        send(&mut sender, post_json(&huge)).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // A WebSocket upgrade cannot happen over HTTP/3: a clear refusal, at once.
    let upgrade = http::Request::get("https://localhost/eth")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(bytes::Bytes::new())
        .unwrap();
    let reply: H3Reply = send(&mut sender, upgrade).await;
    println!(
        "GET /eth with Upgrade over h3: {} {}",
        reply.status,
        reply.text()
    );
    assert!(
        reply.text().contains("WebSocket needs HTTP/1.1"),
        "{}",
        reply.text()
    );
    let reply = send(&mut sender, get("/eth")).await;
    assert_eq!(reply.status, StatusCode::UPGRADE_REQUIRED);

    // Counted: one open h3 connection, one QUIC handshake.
    let metrics = gateway.metrics_text().await;
    assert_eq!(
        metric(&metrics, "shroud_connections_active{protocol=\"h3\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "shroud_tls_handshakes_total{outcome=\"ok\",protocol=\"quic\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    connection.close(0u32.into(), b"");
    let closed = common::eventually(WAIT, || async {
        let metrics = gateway.metrics_text().await;
        metric(&metrics, "shroud_connections_active{protocol=\"h3\"}") == Some(0.0)
    })
    .await;
    assert!(closed, "the h3 gauge went back to 0");
}

#[tokio::test]
async fn alt_svc_only_when_h3_is_configured() {
    let upstream = RecordingUpstream::start().await;
    let (gateway, addr) = bind_h3(h3_config(vec![("eth".into(), upstream.url())])).await;
    let gateway = run(gateway);
    let reply = gateway.http1(common::get("/healthz")).await;
    assert_eq!(
        reply.headers.get("alt-svc").map(|v| v.to_str().unwrap()),
        Some(format!("h3=\":{}\"", addr.port()).as_str())
    );
    // JSON-RPC answers carry it too (every TCP response does).
    let reply = gateway
        .http1(common::post_json(
            "/eth",
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#,
        ))
        .await;
    assert!(reply.headers.contains_key("alt-svc"));

    let plain = TestGateway::start_config(dev_config(vec![("eth".into(), upstream.url())])).await;
    let reply = plain.http1(common::get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        !reply.headers.contains_key("alt-svc"),
        "{:?}",
        reply.headers
    );
}

/// A quinn server that hands out what the gateway must not: TLS 1.3 tickets (rustls' default)
/// and NEW_TOKEN tokens. It proves the counters count.
async fn linkable_server() -> (quinn::Endpoint, std::net::SocketAddr) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let mut tls =
        rustls::ServerConfig::builder_with_provider(shroud_ra_tls::tls::crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    tls.max_early_data_size = u32::MAX;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap(),
    ));
    let mut tokens = quinn::ValidationTokenConfig::default();
    tokens.sent(2);
    server.validation_token_config(tokens);
    let endpoint = quinn::Endpoint::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            tokio::spawn(async move {
                if let Ok(connection) = incoming.await {
                    let _ = connection.closed().await;
                }
            });
        }
    });
    (endpoint, addr)
}

/// Connects with a client that would keep tickets and tokens and offer 0-RTT, waits for what
/// the server sends after the handshake, and returns (tickets, tokens, whether a second
/// connection could send 0-RTT data).
async fn what_a_client_is_handed(
    addr: std::net::SocketAddr,
    verify: bool,
    pin: &str,
) -> (usize, usize, bool) {
    let sessions = Arc::new(CountingSessions::default());
    let tokens = Arc::new(CountingTokens::default());
    let knobs = Knobs {
        sessions: Some(Arc::clone(&sessions)),
        tokens: Some(Arc::clone(&tokens)),
        local_ip: None,
    };
    let (endpoint, mut config) = h3_client::client(pin, &knobs);
    if !verify {
        // The linkable control server has an ordinary certificate; trust it for this count.
        let mut tls =
            rustls::ClientConfig::builder_with_provider(shroud_ra_tls::tls::crypto_provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCert))
                .with_no_client_auth();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        tls.resumption = rustls::client::Resumption::store(Arc::clone(&sessions) as _);
        tls.enable_early_data = true;
        config = quinn::ClientConfig::new(Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
        ));
        config.token_store(Arc::clone(&tokens) as _);
    }
    for _ in 0..2 {
        let connecting = endpoint
            .connect_with(config.clone(), addr, "localhost")
            .unwrap();
        // 0-RTT needs a ticket from an earlier connection; only then does `into_0rtt` succeed.
        let connection = match connecting.into_0rtt() {
            Ok((connection, _accepted)) => {
                connection.close(0u32.into(), b"");
                return (
                    sessions.tickets.load(Ordering::SeqCst),
                    tokens.tokens.load(Ordering::SeqCst),
                    true,
                );
            }
            Err(connecting) => tokio::time::timeout(WAIT, connecting)
                .await
                .unwrap()
                .unwrap(),
        };
        // Tickets and NEW_TOKEN frames follow the handshake; give them time to arrive.
        if verify {
            // A request too, as a real client would make (the control server speaks no HTTP).
            let mut sender = h3(connection.clone()).await;
            assert_eq!(
                send(&mut sender, get("/healthz")).await.status,
                StatusCode::OK
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        connection.close(0u32.into(), b"");
    }
    (
        sessions.tickets.load(Ordering::SeqCst),
        tokens.tokens.load(Ordering::SeqCst),
        false,
    )
}

#[derive(Debug)]
struct AnyCert;

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        shroud_ra_tls::tls::crypto_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[tokio::test]
async fn no_ticket_no_token_and_no_0rtt_from_the_gateway() {
    // Control: a server that does hand them out is seen doing so.
    let (_control, control) = linkable_server().await;
    let (tickets, tokens, zero_rtt) =
        what_a_client_is_handed(control, false, &simulated_pin(&"00".repeat(48))).await;
    println!("control server: {tickets} tickets, {tokens} tokens, 0-RTT possible: {zero_rtt}");
    assert!(tickets > 0 && tokens > 0 && zero_rtt, "the counters count");

    let upstream = RecordingUpstream::start().await;
    let (gateway, addr) = bind_h3(h3_config(vec![("eth".into(), upstream.url())])).await;
    let gateway = run(gateway);
    let (tickets, tokens, zero_rtt) = what_a_client_is_handed(addr, true, &gateway.pin()).await;
    println!("gateway: {tickets} tickets, {tokens} tokens, 0-RTT possible: {zero_rtt}");
    assert_eq!((tickets, tokens, zero_rtt), (0, 0, false));
}

#[tokio::test]
async fn shutdown_closes_h3_connections_gracefully() {
    let upstream = RecordingUpstream::start().await;
    let (gateway, addr) = bind_h3(h3_config(vec![("eth".into(), upstream.url())])).await;
    let gateway = run(gateway);
    let connection = connect(addr, &gateway.pin(), &Knobs::default()).await;
    let mut sender = h3(connection.clone()).await;
    assert_eq!(
        send(&mut sender, get("/healthz")).await.status,
        StatusCode::OK
    );

    // A request in flight when the gateway stops still gets its answer.
    upstream.set_delay(Some(Duration::from_millis(500)));
    // Held, so that the client does not close the connection itself when the task is done.
    let _kept = sender.clone();
    let in_flight = tokio::spawn(async move {
        send(
            &mut sender,
            post_json(
                r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x00","latest"]}"#,
            ),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = tokio::time::timeout(WAIT, gateway.stop()).await;
    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
    let answered = in_flight.await.unwrap();
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    assert!(
        answered.text().contains("\"result\""),
        "{}",
        answered.text()
    );
    let closed = tokio::time::timeout(WAIT, connection.closed())
        .await
        .unwrap();
    println!("client saw: {closed}");
    assert!(
        matches!(
            &closed,
            quinn::ConnectionError::ApplicationClosed(close) if close.error_code == 0x100u32.into()
        ),
        "closed with H3_NO_ERROR, not timed out: {closed:?}"
    );
}
