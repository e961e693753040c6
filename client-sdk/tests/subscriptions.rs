//! Subscriptions (`eth_subscribe` over WebSocket, issue 16) on the client side: the SDK's
//! `Client::subscribe` and `shroud proxy`'s WebSocket upgrades.
//!
//! Against a scripted WebSocket stand-in (`common::ws_stand_in`): notifications arrive in order
//! and only those of the subscription, over `http/1.1` on `GET /eth`; `eth_unsubscribe` and a
//! normal close end it; the gateway's close code reaches the stream (1013) and the proxy's local
//! client; a local close code reaches the gateway; a wrong pin refuses both the subscription and
//! the proxy's upgrade (502 with the JSON-RPC error -32001) with zero application bytes sent; a
//! foreign `Origin` is refused.
//!
//! Against the in-process `--dev` gateway in front of ganache (`common::dev_node`; skipped without
//! `tests/wallets/node_modules`, unless `SHROUD_REQUIRE_DEV_NODE=1`): heads of mined blocks arrive
//! in order and linked by `parentHash`, the log of a contract deployed here arrives with its
//! fields, through the SDK and through the proxy, and `eth_unsubscribe` stops delivery while
//! another subscription on the same connection keeps receiving. With a wrong pin the proxy
//! refuses the upgrade and the gateway's upstream sees nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration test: a failed setup or assumption is a failed test"
)]

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use shroud_client::proxy::CODE_UNTRUSTED_GATEWAY;
use shroud_client::{Client, ClientError, ErrorKind, Subscription};
use shroud_testkit::tls_counter::CountingTlsServer;
use shroud_testkit::upstream::RecordingUpstream;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use common::dev_node::DevNode;
use common::ws_stand_in::{HEADS_ID, WsStandIn};
use common::{
    ALPN_BOTH, MEASUREMENT, RunningProxy, SETTLE, StartGateway, TestGateway, ra_tls_config,
    simulated_cert,
};

/// How long any one notification or answer may take (the dev gateway polls every 250 ms).
const WAIT: Duration = Duration::from_secs(10);

/// How long a test listens to be sure nothing more arrives: several poll intervals.
const QUIET: Duration = Duration::from_millis(1500);

/// The next item of `subscription`, within [`WAIT`].
async fn next(subscription: &mut Subscription) -> Value {
    tokio::time::timeout(WAIT, subscription.next())
        .await
        .unwrap_or_else(|_| panic!("no notification within {WAIT:?}"))
        .expect("the subscription ended")
        .unwrap_or_else(|e| panic!("the subscription failed: {e}"))
}

/// A wrong pin's client (the stand-ins report [`MEASUREMENT`]).
fn wrong_pin_client(url: String) -> Client {
    Client::builder(url)
        .policy(common::policy(&[4; 48]))
        .danger_allow_simulated(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

// ---- the SDK against the stand-in ----

#[tokio::test]
async fn sdk_subscription_streams_its_notifications_in_order() {
    let server = WsStandIn::start().await;
    let client = common::client(&server.url("eth"), &MEASUREMENT, true);
    let mut heads = client.subscribe("newHeads", Value::Null).await.unwrap();
    assert_eq!(heads.id(), HEADS_ID);
    let mut numbers = Vec::new();
    for _ in 0..3 {
        numbers.push(next(&mut heads).await["number"].clone());
    }
    // The notification for another subscription id, sent in between, is not ours.
    assert_eq!(numbers, [json!("0x1"), json!("0x2"), json!("0x3")]);
    heads.unsubscribe().await.unwrap();

    let seen = server.seen();
    assert_eq!(
        seen.alpn,
        [Some("http/1.1".to_owned())],
        "no h2 for an upgrade"
    );
    assert_eq!(seen.paths, ["/eth"]);
    assert_eq!(
        seen.calls,
        [
            json!({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "eth_unsubscribe", "params": [HEADS_ID]}),
        ]
    );
    assert!(
        shroud_testkit::gateway::eventually(SETTLE, || async {
            server.seen().closes == [(1000, String::new())]
        })
        .await,
        "no normal close after unsubscribing: {:?}",
        server.seen().closes
    );
}

#[tokio::test]
async fn the_filter_is_the_second_parameter_and_refusals_are_json_rpc_errors() {
    let server = WsStandIn::start().await;
    let client = common::client(&server.url("eth"), &MEASUREMENT, true);
    let filter = json!({"address": "0x1111111111111111111111111111111111111111", "topics": [null]});
    // The stand-in knows only newHeads (and "slow"): a logs subscription is refused as an
    // unknown gateway would refuse it.
    let error = client.subscribe("logs", filter.clone()).await.unwrap_err();
    assert!(
        matches!(&error, ClientError::JsonRpc { code: -32602, message, .. } if message == "unknown subscription kind"),
        "{error}"
    );
    assert_eq!(server.seen().calls[0]["params"], json!(["logs", filter]));
}

#[tokio::test]
async fn a_close_by_the_gateway_ends_the_stream_with_its_code() {
    let server = WsStandIn::start().await;
    let client = common::client(&server.url("eth"), &MEASUREMENT, true);
    let mut slow = client.subscribe("slow", Value::Null).await.unwrap();
    let item = tokio::time::timeout(WAIT, slow.next())
        .await
        .unwrap()
        .unwrap();
    let error = item.unwrap_err();
    assert!(
        matches!(&error, ClientError::WebSocketClosed { code: 1013, reason } if reason == "slow consumer"),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::Transport);
    assert!(
        tokio::time::timeout(WAIT, slow.next())
            .await
            .unwrap()
            .is_none(),
        "the stream ends after the error"
    );
    // Already closed by the gateway: nothing left to stop.
    slow.unsubscribe().await.unwrap();
}

#[tokio::test]
async fn a_wrong_pin_refuses_the_subscription_before_a_byte_is_sent() {
    let server = CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), &ALPN_BOTH))
        .await
        .unwrap();
    let client = wrong_pin_client(format!("https://{}/eth", server.addr()));
    let error = client.subscribe("newHeads", Value::Null).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PinMismatch, "{error}");
    assert!(error.nothing_sent());
    assert!(server.wait_until_closed(1, SETTLE).await);
    assert_eq!(server.handshakes_completed(), 0);
    assert_eq!(
        server.app_bytes_received(),
        0,
        "no upgrade request was written"
    );
}

// ---- the proxy against the stand-in ----

/// A WebSocket client of the proxy, as a wallet would be.
struct Wallet {
    socket: WebSocketStream<TcpStream>,
    next_id: u64,
    /// Notifications read while waiting for an answer.
    notes: VecDeque<Value>,
}

impl Wallet {
    /// Connects to the proxy's `ws_url`, with `origin` as the `Origin` header when given.
    async fn connect(ws_url: &str, origin: Option<&str>) -> Result<Self, tungstenite::Error> {
        let mut request = ws_url.into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert(http::header::ORIGIN, origin.parse().unwrap());
        }
        let authority = request.uri().authority().unwrap().as_str().to_owned();
        let tcp = TcpStream::connect(authority).await.unwrap();
        let (socket, _) = tokio_tungstenite::client_async(request, tcp).await?;
        Ok(Self {
            socket,
            next_id: 1,
            notes: VecDeque::new(),
        })
    }

    /// The next message of the socket other than pings and pongs, within [`WAIT`].
    async fn message(&mut self) -> Message {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("nothing within {WAIT:?}"))
                .expect("the connection ended")
                .unwrap();
            if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
                return message;
            }
        }
    }

    /// Calls `method` and returns the whole answer; notifications read meanwhile are kept.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let call = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.socket
            .send(Message::text(call.to_string()))
            .await
            .unwrap();
        loop {
            let Message::Text(text) = self.message().await else {
                panic!("not a text message while waiting for the answer to {method}");
            };
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
            self.notes.push_back(message);
        }
    }

    /// The `result` of the next notification for `subscription`, within [`WAIT`]; notifications
    /// for other subscriptions are kept.
    async fn notification(&mut self, subscription: &str) -> Value {
        self.try_notification(subscription, WAIT)
            .await
            .unwrap_or_else(|| panic!("no notification for {subscription} within {WAIT:?}"))
    }

    /// As [`notification`](Self::notification), `None` when none came within `wait`.
    async fn try_notification(&mut self, subscription: &str, wait: Duration) -> Option<Value> {
        let is_ours = |note: &Value| note["params"]["subscription"] == subscription;
        if let Some(index) = self.notes.iter().position(is_ours) {
            return self
                .notes
                .remove(index)
                .map(|note| note["params"]["result"].clone());
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?
                .expect("the connection ended")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let note: Value = serde_json::from_str(text.as_str()).unwrap();
            assert_eq!(note["method"], "eth_subscription", "{note}");
            if is_ours(&note) {
                return Some(note["params"]["result"].clone());
            }
            self.notes.push_back(note);
        }
    }

    /// Closes with `code` and `reason` and reads to the end of the connection.
    async fn close(mut self, code: u16, reason: &str) {
        self.socket
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.to_owned().into(),
            })))
            .await
            .unwrap();
        tokio::time::timeout(WAIT, async { while self.socket.next().await.is_some() {} })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn proxy_relays_a_websocket_to_the_gateway_both_ways() {
    let server = WsStandIn::start().await;
    let proxy = RunningProxy::start(common::client(&server.url("eth"), &MEASUREMENT, true)).await;
    let mut wallet = Wallet::connect(&proxy.ws_url(), None).await.unwrap();

    let answer = wallet.call("eth_subscribe", json!(["newHeads"])).await;
    assert_eq!(answer["result"], HEADS_ID, "{answer}");
    for number in ["0x1", "0x2", "0x3"] {
        assert_eq!(wallet.notification(HEADS_ID).await["number"], number);
    }
    // The proxy passes messages as they are, the other subscription's too.
    assert_eq!(wallet.notification("0xother").await["number"], "0x9");
    let echoed = wallet.call("echo", json!([1, "two"])).await;
    assert_eq!(echoed["result"], json!([1, "two"]));

    // A close code and reason of the wallet's own reach the gateway.
    wallet.close(4000, "wallet done").await;
    assert!(
        shroud_testkit::gateway::eventually(SETTLE, || async {
            server.seen().closes == [(4000, "wallet done".to_owned())]
        })
        .await,
        "{:?}",
        server.seen().closes
    );
    let seen = server.seen();
    assert_eq!(seen.alpn, [Some("http/1.1".to_owned())]);
    assert_eq!(seen.paths, ["/eth"]);
    assert_eq!(seen.calls.len(), 2, "{:?}", seen.calls);
}

#[tokio::test]
async fn proxy_passes_the_gateways_close_code_on() {
    let server = WsStandIn::start().await;
    let proxy = RunningProxy::start(common::client(&server.url("eth"), &MEASUREMENT, true)).await;
    let mut wallet = Wallet::connect(&proxy.ws_url(), None).await.unwrap();
    let answer = wallet.call("eth_subscribe", json!(["slow"])).await;
    assert_eq!(answer["result"], "0x5105");
    let Message::Close(Some(frame)) = wallet.message().await else {
        panic!("no close frame");
    };
    assert_eq!(u16::from(frame.code), 1013);
    assert_eq!(frame.reason.as_str(), "slow consumer");
}

#[tokio::test]
async fn proxy_refuses_the_upgrade_on_a_wrong_pin_and_sends_nothing() {
    let server = CountingTlsServer::start(ra_tls_config(&simulated_cert(MEASUREMENT), &ALPN_BOTH))
        .await
        .unwrap();
    let proxy =
        RunningProxy::start(wrong_pin_client(format!("https://{}/eth", server.addr()))).await;
    let refused = Wallet::connect(&proxy.ws_url(), None).await.err().unwrap();
    let tungstenite::Error::Http(response) = refused else {
        panic!("not an HTTP refusal: {refused}");
    };
    assert_eq!(response.status(), http::StatusCode::BAD_GATEWAY);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], CODE_UNTRUSTED_GATEWAY, "{body}");
    assert_eq!(body["error"]["data"]["kind"], "pin-mismatch");
    assert_eq!(body["error"]["data"]["forwarded"], false);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("pin mismatch"), "{message}");

    assert!(server.wait_until_closed(1, SETTLE).await);
    assert_eq!(server.handshakes_failed(), 1);
    assert_eq!(
        server.app_bytes_received(),
        0,
        "no upgrade request was written"
    );
}

#[tokio::test]
async fn proxy_refuses_upgrades_from_pages_of_other_origins() {
    let server = WsStandIn::start().await;
    let proxy = RunningProxy::start(common::client(&server.url("eth"), &MEASUREMENT, true)).await;
    let refused = Wallet::connect(&proxy.ws_url(), Some("https://evil.example"))
        .await
        .err()
        .unwrap();
    let tungstenite::Error::Http(response) = refused else {
        panic!("not an HTTP refusal: {refused}");
    };
    assert_eq!(response.status(), http::StatusCode::FORBIDDEN);
    // A page served from this machine may.
    let wallet = Wallet::connect(&proxy.ws_url(), Some("http://localhost:3000")).await;
    assert!(wallet.is_ok());
    // The refused one never reached the gateway.
    assert!(
        shroud_testkit::gateway::eventually(SETTLE, || async { server.seen().paths.len() == 1 })
            .await
    );
    assert_eq!(server.seen().alpn.len(), 1);
}

// ---- the real gateway in front of ganache ----

/// Account 0 of ganache's deterministic wallet (unlocked in ganache: `eth_sendTransaction`).
const FUNDED: &str = "0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1";

/// keccak256("Ping(uint256)"): the topic the contract below logs.
const PING_TOPIC: &str = "0x48257dc961b6f792c2b78a080dacfed693b660960a702de21cee364e20270e2f";

/// Creation code of a contract whose every call logs `LOG1(topic = PING_TOPIC, data = calldata)`,
/// i.e. the event `Ping(uint256)` for 32 bytes of calldata. Init (11 bytes): `PUSH1 44 DUP1 PUSH1
/// 11 PUSH1 0 CODECOPY PUSH1 0 RETURN`; runtime (44 bytes): `CALLDATASIZE PUSH1 0 PUSH1 0
/// CALLDATACOPY PUSH32 topic CALLDATASIZE PUSH1 0 LOG1 STOP`.
fn ping_contract() -> String {
    format!(
        "0x602c80600b6000396000f3366000600037 7f{}366000a100",
        PING_TOPIC.trim_start_matches("0x")
    )
    .replace(' ', "")
}

/// The value logged: 42.
const PING_DATA: &str = "0x000000000000000000000000000000000000000000000000000000000000002a";

async fn call(client: &Client, method: &str, params: Value) -> Value {
    client
        .request(method, params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Sends a transaction from [`FUNDED`] and returns its receipt (ganache mines at once).
async fn transact(client: &Client, tx: Value) -> Value {
    let mut tx = tx;
    tx["from"] = json!(FUNDED);
    let hash = call(client, "eth_sendTransaction", json!([tx])).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let receipt = call(client, "eth_getTransactionReceipt", json!([hash])).await;
        if !receipt.is_null() {
            assert_eq!(receipt["status"], "0x1", "{receipt}");
            return receipt;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no receipt for {hash}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn number(head: &Value) -> u64 {
    let hex = head["number"].as_str().unwrap();
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap()
}

/// Mines a block every half second until `heads` delivers one, so that the gateway's follower
/// is known to be following before blocks are counted; that head.
async fn first_head(client: &Client, heads: &mut Subscription) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        call(client, "evm_mine", json!([])).await;
        if let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(500), heads.next()).await
        {
            return item.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no head within {WAIT:?} of mining"
        );
    }
}

async fn dev_gateway(node: &DevNode) -> (TestGateway, Client) {
    let gateway = TestGateway::start(node.url.clone()).await;
    let client = Client::builder(gateway.url())
        .pin(gateway.pin())
        .danger_allow_simulated(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    (gateway, client)
}

#[tokio::test]
async fn sdk_follows_ganache_heads_and_logs_through_the_gateway() {
    let Some(node) = DevNode::start().await else {
        return;
    };
    let (_gateway, client) = dev_gateway(&node).await;

    let mut heads = client.subscribe("newHeads", Value::Null).await.unwrap();
    let mut previous = first_head(&client, &mut heads).await;
    for _ in 0..3 {
        call(&client, "evm_mine", json!([])).await;
    }
    for _ in 0..3 {
        let head = next(&mut heads).await;
        assert_eq!(number(&head), number(&previous) + 1, "{head}");
        assert_eq!(head["parentHash"], previous["hash"], "{head}");
        previous = head;
    }
    println!(
        "newHeads: blocks {} .. {} in order",
        number(&previous) - 2,
        number(&previous)
    );

    let deployed = transact(&client, json!({"data": ping_contract(), "gas": "0x30000"})).await;
    let contract = deployed["contractAddress"].as_str().unwrap().to_owned();
    let mut logs = client
        .subscribe("logs", json!({"address": contract, "topics": [PING_TOPIC]}))
        .await
        .unwrap();
    let ping = transact(
        &client,
        json!({"to": contract, "data": PING_DATA, "gas": "0x10000"}),
    )
    .await;
    let log = next(&mut logs).await;
    println!("logs: {log}");
    assert_eq!(
        log["address"].as_str().unwrap().to_lowercase(),
        contract.to_lowercase()
    );
    assert_eq!(log["topics"], json!([PING_TOPIC]));
    assert_eq!(log["data"], PING_DATA);
    assert_eq!(log["blockNumber"], ping["blockNumber"]);
    assert_eq!(log["blockHash"], ping["blockHash"]);
    assert_eq!(log["transactionHash"], ping["transactionHash"]);
    assert_ne!(log["removed"], true);

    logs.unsubscribe().await.unwrap();
    heads.unsubscribe().await.unwrap();
}

#[tokio::test]
async fn proxy_carries_subscriptions_to_ganache_and_unsubscribe_stops_delivery() {
    let Some(node) = DevNode::start().await else {
        return;
    };
    let (_gateway, client) = dev_gateway(&node).await;
    let proxy = RunningProxy::start(client.clone()).await;
    let mut wallet = Wallet::connect(&proxy.ws_url(), None).await.unwrap();

    let first = wallet.call("eth_subscribe", json!(["newHeads"])).await;
    let first = first["result"].as_str().unwrap().to_owned();
    let second = wallet.call("eth_subscribe", json!(["newHeads"])).await;
    let second = second["result"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    // Calls work on the same connection.
    let chain_id = wallet.call("eth_chainId", json!([])).await;
    assert_eq!(chain_id["result"], "0x539");

    // Warm up: mine until the follower delivers, then count three blocks on both.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut previous = loop {
        call(&client, "evm_mine", json!([])).await;
        if let Some(head) = wallet
            .try_notification(&first, Duration::from_millis(500))
            .await
        {
            break head;
        }
        assert!(tokio::time::Instant::now() < deadline, "no head");
    };
    while wallet
        .try_notification(&second, Duration::from_millis(300))
        .await
        .is_some()
    {}
    for _ in 0..3 {
        call(&client, "evm_mine", json!([])).await;
    }
    for _ in 0..3 {
        let head = wallet.notification(&first).await;
        assert_eq!(number(&head), number(&previous) + 1, "{head}");
        assert_eq!(head["parentHash"], previous["hash"]);
        assert_eq!(wallet.notification(&second).await["hash"], head["hash"]);
        previous = head;
    }

    let unsubscribed = wallet.call("eth_unsubscribe", json!([first])).await;
    assert_eq!(unsubscribed["result"], true, "{unsubscribed}");
    for _ in 0..2 {
        call(&client, "evm_mine", json!([])).await;
    }
    // The other subscription on the same connection gets both blocks; the first gets nothing.
    for _ in 0..2 {
        let head = wallet.notification(&second).await;
        assert_eq!(number(&head), number(&previous) + 1);
        previous = head;
    }
    assert_eq!(
        wallet.try_notification(&first, QUIET).await,
        None,
        "a notification after eth_unsubscribe"
    );
    wallet.close(1000, "").await;
}

#[tokio::test]
async fn proxy_with_a_wrong_pin_refuses_the_upgrade_and_the_upstream_sees_nothing() {
    let upstream = RecordingUpstream::start().await;
    let gateway = TestGateway::start(upstream.url()).await;
    let proxy = RunningProxy::start(wrong_pin_client(gateway.url())).await;
    let before = upstream.calls().len();
    let refused = Wallet::connect(&proxy.ws_url(), None).await.err().unwrap();
    let tungstenite::Error::Http(response) = refused else {
        panic!("not an HTTP refusal: {refused}");
    };
    assert_eq!(response.status(), http::StatusCode::BAD_GATEWAY);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], CODE_UNTRUSTED_GATEWAY, "{body}");
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        upstream.calls().len(),
        before,
        "the upstream saw calls: {:?}",
        upstream.calls()
    );
}
