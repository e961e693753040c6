//! The client against a real RA-TLS JSON-RPC server on loopback: both HTTP versions, results,
//! JSON-RPC and HTTP errors, and the failures before any request (URL, policy, connect, timeout).

mod common;

use std::time::Duration;

use serde_json::json;
use shroud_client::{Client, ClientError, Platform, Policy, TcbStatus};
use tokio::net::TcpListener;

use common::{ALPN_BOTH, JsonRpcServer, MEASUREMENT, client};

#[tokio::test]
async fn calls_over_http2_and_http1() {
    for (alpn, version) in [
        (&ALPN_BOTH[..], http::Version::HTTP_2),
        (&[b"http/1.1".as_slice()][..], http::Version::HTTP_11),
        // No ALPN at all: HTTP/1.1.
        (&[][..], http::Version::HTTP_11),
    ] {
        let server = JsonRpcServer::start(alpn).await;
        let client = client(&server.url("eth"), &MEASUREMENT, true);

        assert_eq!(
            client.request("eth_blockNumber", json!([])).await.unwrap(),
            json!("0x10")
        );
        let params = json!([{"to": "0x00", "data": "0x"}, "latest"]);
        assert_eq!(
            client.request("echo", params.clone()).await.unwrap(),
            params
        );
        assert_eq!(server.versions(), vec![version, version], "ALPN {alpn:?}");
    }
}

#[tokio::test]
async fn json_rpc_errors_are_typed() {
    let server = JsonRpcServer::start(&ALPN_BOTH).await;
    let client = client(&server.url("eth"), &MEASUREMENT, true);

    match client.request("fail", json!([])).await.unwrap_err() {
        ClientError::JsonRpc {
            code,
            message,
            data,
        } => {
            assert_eq!(
                (code, message.as_str(), data),
                (-32000, "execution reverted", Some(json!("0xdead")))
            );
        }
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    let err = client.request("http_500", json!([])).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Http { status, body } if *status == 500 && body == "internal failure"),
        "{err:?}"
    );
    // The wrong chain path reaches the server as such.
    let other = common::client(&server.url("btc"), &MEASUREMENT, true);
    let err = other
        .request("eth_blockNumber", json!([]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Http { status, .. } if *status == 400),
        "{err:?}"
    );
}

#[tokio::test]
async fn attest_returns_the_verdict() {
    let server = JsonRpcServer::start(&ALPN_BOTH).await;
    let client = client(&server.url("eth"), &MEASUREMENT, true);

    let verdict = client.attest().await.unwrap();

    assert_eq!(verdict.platform(), Platform::Simulated);
    assert_eq!(
        verdict.measurements().get("measurement"),
        Some(&MEASUREMENT[..])
    );
    assert_eq!(verdict.tcb_status(), TcbStatus::NotApplicable);
    assert!(verdict.not_before() < verdict.not_after());
    // Attesting sends no request.
    assert!(server.versions().is_empty());
}

#[test]
fn build_refuses_bad_urls_and_empty_policies() {
    let policy = common::policy(&MEASUREMENT);
    for url in [
        "http://127.0.0.1:8443/eth",
        "127.0.0.1:8443/eth",
        "https:///eth",
    ] {
        let err = Client::builder(url)
            .policy(policy.clone())
            .build()
            .unwrap_err();
        assert!(
            matches!(err, ClientError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
    }
    for builder in [
        Client::builder("https://127.0.0.1:8443/eth"),
        Client::builder("https://127.0.0.1:8443/eth").policy(Policy::default()),
    ] {
        let err = builder.danger_allow_simulated(true).build().unwrap_err();
        assert!(
            matches!(err, ClientError::Policy(shroud_ra_tls::Error::EmptyPolicy)),
            "{err:?}"
        );
        assert!(err.to_string().contains("pins no measurements"), "{err}");
    }
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    // Bind and drop to get a port that is very likely closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let client = client(&format!("https://{addr}/eth"), &MEASUREMENT, true);

    let err = client
        .request("eth_blockNumber", json!([]))
        .await
        .unwrap_err();

    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts TCP and never speaks TLS.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = Client::builder(format!("https://{addr}/eth"))
        .policy(common::policy(&MEASUREMENT))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();

    let err = client.attest().await.unwrap_err();

    assert!(
        matches!(err, ClientError::Timeout(t) if t == Duration::from_millis(300)),
        "{err:?}"
    );
    holder.abort();
}

#[tokio::test]
async fn a_non_tls_server_is_a_tls_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut stream, _) = listener.accept().await.unwrap();
        stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .ok();
    });
    let client = client(&format!("https://{addr}/eth"), &MEASUREMENT, true);

    let err = client.attest().await.unwrap_err();

    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    server.abort();
}
