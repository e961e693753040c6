//! WebSocket subscriptions end to end (DESIGN §4.5): clients on the RA-TLS listener, the chain
//! follower reading scripted stand-in upstreams that record every call. What upstreams see,
//! reorganisations, failover, slow consumers and limits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{StartGateway as _, TestGateway, dev_config, eventually};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use shroud_testkit::upstream::{RecordingUpstream, default_response};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// A chain the stand-in upstreams serve: blocks by number on the canonical branch, every block
/// ever made by hash (orphans too, as nodes keep them a while), logs by block hash.
#[derive(Default)]
struct Script {
    canonical: Vec<Block>,
    all: Vec<Block>,
    next_id: u16,
}

#[derive(Clone)]
struct Block {
    number: u64,
    hash: String,
    parent: String,
    logs: Vec<(u8, u8)>,
    /// Bytes of `data` in each log.
    data_len: usize,
}

fn hash(id: u16, salt: u8) -> String {
    format!("0x{}{id:04x}", format!("{salt:02x}").repeat(30))
}

fn address(n: u8) -> String {
    format!("0x{}", format!("{n:02x}").repeat(20))
}

fn topic(n: u8) -> String {
    format!("0x{}", format!("{n:02x}").repeat(32))
}

impl Script {
    fn new() -> Arc<Mutex<Self>> {
        let mut script = Self::default();
        script.mine_on(None, Vec::new(), 0);
        Arc::new(Mutex::new(script))
    }

    /// A block on top of `parent` (default: the tip) with logs `(address, topic)`.
    fn mine_on(
        &mut self,
        parent_number: Option<u64>,
        logs: Vec<(u8, u8)>,
        data_len: usize,
    ) -> Block {
        let keep = parent_number.map_or(self.canonical.len(), |n| n as usize + 1);
        self.canonical.truncate(keep);
        let parent = self
            .canonical
            .last()
            .map_or(hash(0, 0xee), |b| b.hash.clone());
        self.next_id += 1;
        let block = Block {
            number: self.canonical.len() as u64,
            hash: hash(self.next_id, 0xbb),
            parent,
            logs,
            data_len,
        };
        self.canonical.push(block.clone());
        self.all.push(block.clone());
        block
    }

    fn mine(&mut self, logs: Vec<(u8, u8)>) -> Block {
        self.mine_on(None, logs, 0)
    }

    fn block_json(block: &Block) -> Value {
        json!({
            "number": format!("0x{:x}", block.number),
            "hash": block.hash,
            "parentHash": block.parent,
            "miner": address(0),
            "timestamp": "0x1",
            "transactions": [],
            "uncles": [],
        })
    }

    fn answer(&self, call: &Value) -> Value {
        let params = &call["params"];
        let result = match call["method"].as_str().unwrap_or_default() {
            "eth_getBlockByNumber" => self.canonical.last().map_or(Value::Null, Self::block_json),
            "eth_getBlockByHash" => self
                .all
                .iter()
                .find(|b| params[0] == b.hash)
                .map_or(Value::Null, Self::block_json),
            "eth_getLogs" => {
                let block = self.all.iter().find(|b| params[0]["blockHash"] == b.hash);
                Value::Array(block.map_or(Vec::new(), |b| {
                    b.logs
                        .iter()
                        .enumerate()
                        .map(|(i, (a, t))| {
                            json!({
                                "address": address(*a), "topics": [topic(*t)],
                                "data": format!("0x{}", "ab".repeat(b.data_len)),
                                "blockHash": b.hash, "blockNumber": format!("0x{:x}", b.number),
                                "transactionHash": hash(i as u16, 0xcc), "logIndex": format!("0x{i:x}"),
                                "transactionIndex": "0x0", "removed": false,
                            })
                        })
                        .collect()
                }))
            }
            _ => return default_response(call),
        };
        json!({ "jsonrpc": "2.0", "id": call["id"], "result": result })
    }
}

async fn upstream(script: &Arc<Mutex<Script>>) -> RecordingUpstream {
    let script = Arc::clone(script);
    RecordingUpstream::start_with(move |call| script.lock().unwrap().answer(call)).await
}

/// A gateway for `upstreams` following every 50 ms, with `limits` applied to its config.
async fn gateway(
    upstreams: &[&RecordingUpstream],
    limits: impl FnOnce(&mut shroud_gateway::Config),
) -> TestGateway {
    let mut config = dev_config(
        upstreams
            .iter()
            .map(|u| ("eth".to_owned(), u.url()))
            .collect(),
    );
    for chain in &mut config.chains {
        chain.subscriptions.poll_interval_ms = 50;
    }
    limits(&mut config);
    TestGateway::start_config(config).await
}

async fn open(gateway: &TestGateway) -> Ws {
    let tls = gateway.connect(b"http/1.1").await;
    let (ws, response) = tokio_tungstenite::client_async("ws://localhost/eth", tls)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    ws
}

/// Sends `method(params)` with id 1 and returns the answer (notifications before it are kept
/// in `pending`).
async fn call(ws: &mut Ws, method: &str, params: Value) -> Value {
    ws.send(Message::text(
        json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}).to_string(),
    ))
    .await
    .unwrap();
    loop {
        let message = next_json(ws).await.expect("an answer");
        if message.get("id").is_some() {
            return message;
        }
    }
}

async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .ok()??
        {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The next `n` notification results.
async fn notifications(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let message = next_json(ws)
            .await
            .unwrap_or_else(|| panic!("notification {} of {n}", out.len() + 1));
        assert_eq!(message["method"], "eth_subscription", "{message}");
        out.push(message["params"]["result"].clone());
    }
    out
}

/// Whether no notification comes within `wait`.
async fn quiet(ws: &mut Ws, wait: Duration) -> bool {
    tokio::time::timeout(wait, ws.next()).await.is_err()
}

async fn subscribe(ws: &mut Ws, params: Value) -> String {
    let answer = call(ws, "eth_subscribe", params).await;
    answer["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

#[tokio::test]
async fn fifty_clients_with_their_own_filters_and_upstreams_see_none_of_them() {
    let script = Script::new();
    let (a, b) = (upstream(&script).await, upstream(&script).await);
    let gateway = gateway(&[&a, &b], |_| {}).await;

    // Clients 0..25 watch heads; 25..50 each the logs of their own address (and topic 7 or 8).
    let mut clients = Vec::new();
    for n in 0..50u8 {
        let mut ws = open(&gateway).await;
        let params = if n < 25 {
            json!(["newHeads"])
        } else {
            json!(["logs", { "address": address(n), "topics": [[topic(7), topic(8)]] }])
        };
        subscribe(&mut ws, params).await;
        clients.push(ws);
    }
    let mut mined = Vec::new();
    for round in 0..3u8 {
        // Logs of addresses 25..50 with topic 7 or 8 (and 9, which nobody asked for).
        let logs = (25..50u8).map(|n| (n, 7 + (n + round) % 3)).collect();
        mined.push(script.lock().unwrap().mine(logs));
    }
    for (n, ws) in clients.iter_mut().enumerate() {
        let n = n as u8;
        if n < 25 {
            let heads = notifications(ws, 3).await;
            let numbers: Vec<&str> = heads
                .iter()
                .map(|h| h["number"].as_str().unwrap())
                .collect();
            assert_eq!(numbers, ["0x1", "0x2", "0x3"], "client {n}: in order");
            assert!(heads.iter().all(|h| h.get("transactions").is_none()));
        } else {
            let wanted = (0..3u8).filter(|round| (n + round) % 3 != 2).count();
            let logs = notifications(ws, wanted).await;
            for log in &logs {
                assert_eq!(log["address"], address(n));
                assert_eq!(log["removed"], false);
                assert!(log["topics"][0] == topic(7) || log["topics"][0] == topic(8));
            }
            assert!(
                quiet(ws, Duration::from_millis(100)).await,
                "client {n}: nothing else"
            );
        }
    }
    // Unsubscribing stops delivery.
    let first = &mut clients[0];
    let id = subscribe(first, json!(["newHeads"])).await;
    assert_eq!(
        call(first, "eth_unsubscribe", json!([id])).await["result"],
        true
    );
    assert_eq!(
        call(first, "eth_unsubscribe", json!([id])).await["result"],
        false
    );

    // What the upstreams saw: the follower's own calls, none with a client's filter.
    let mut calls = a.calls();
    calls.extend(b.calls());
    let methods: HashSet<&str> = calls.iter().filter_map(|c| c["method"].as_str()).collect();
    assert!(
        methods.is_subset(&HashSet::from([
            "eth_getBlockByNumber",
            "eth_getBlockByHash",
            "eth_getLogs"
        ])),
        "{methods:?}"
    );
    let hashes: HashSet<String> = mined.iter().map(|b| b.hash.clone()).collect();
    for call in calls.iter().filter(|c| c["method"] == "eth_getLogs") {
        let filter = call["params"][0].as_object().unwrap();
        assert_eq!(filter.len(), 1, "only blockHash: {call}");
        assert!(
            hashes.contains(filter["blockHash"].as_str().unwrap()),
            "{call}"
        );
    }
    for call in &calls {
        let text = call.to_string();
        assert!(
            !text.contains(&topic(7)) && !text.contains(&address(30)),
            "{text}"
        );
    }
    let logs_fetched = calls
        .iter()
        .filter(|c| c["method"] == "eth_getLogs")
        .count();
    assert_eq!(logs_fetched, 3, "each block's logs fetched once");
    assert!(
        a.open_connections() + b.open_connections() <= 4,
        "pooled, not per client"
    );
    let metrics = gateway.metrics_text().await;
    assert!(
        metrics.contains("shroud_websocket_connections_active 50"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"shroud_subscriptions_active{chain="eth",kind="logs"} 25"#));
    assert!(
        metrics
            .contains(r#"shroud_subscription_notifications_total{chain="eth",kind="newHeads"} 75"#)
    );
}

#[tokio::test]
async fn a_reorganisation_removes_logs_and_never_repeats_a_head() {
    let script = Script::new();
    let a = upstream(&script).await;
    let gateway = gateway(&[&a], |_| {}).await;
    let mut heads = open(&gateway).await;
    subscribe(&mut heads, json!(["newHeads"])).await;
    let mut logs = open(&gateway).await;
    subscribe(&mut logs, json!(["logs"])).await;

    let n = script.lock().unwrap().mine(vec![(1, 1)]);
    assert_eq!(notifications(&mut heads, 1).await[0]["hash"], n.hash);
    assert_eq!(notifications(&mut logs, 1).await[0]["blockHash"], n.hash);

    // Block N replaced by N' (another log), then N'+1.
    let (n2, next) = {
        let mut script = script.lock().unwrap();
        let n2 = script.mine_on(Some(n.number - 1), vec![(2, 2)], 0);
        (n2, script.mine(Vec::new()))
    };
    let got = notifications(&mut logs, 2).await;
    assert_eq!(
        (got[0]["blockHash"].as_str(), got[0]["removed"].as_bool()),
        (Some(n.hash.as_str()), Some(true))
    );
    assert_eq!(got[0]["address"], address(1));
    assert_eq!(
        (got[1]["blockHash"].as_str(), got[1]["removed"].as_bool()),
        (Some(n2.hash.as_str()), Some(false))
    );
    let got = notifications(&mut heads, 2).await;
    assert_eq!(
        [&got[0]["hash"], &got[1]["hash"]],
        [&json!(n2.hash), &json!(next.hash)]
    );

    // Back to the first branch (N again, then two blocks on it): N's log is back, N's head is
    // not delivered again.
    {
        let mut script = script.lock().unwrap();
        script.canonical.truncate(n.number as usize);
        script.canonical.push(n.clone());
        script.mine(Vec::new());
        script.mine(Vec::new());
    }
    let got = notifications(&mut logs, 2).await;
    assert_eq!(
        (got[0]["address"].clone(), got[0]["removed"].clone()),
        (json!(address(2)), json!(true))
    );
    assert_eq!(
        (got[1]["blockHash"].clone(), got[1]["removed"].clone()),
        (json!(n.hash), json!(false))
    );
    let got = notifications(&mut heads, 2).await;
    let numbers: Vec<&str> = got.iter().map(|h| h["number"].as_str().unwrap()).collect();
    assert_eq!(numbers, ["0x2", "0x3"], "N (0x1) was delivered before");
    assert!(quiet(&mut heads, Duration::from_millis(200)).await);
}

#[tokio::test]
async fn killing_the_upstream_that_feeds_the_follower_loses_no_block() {
    let script = Script::new();
    let (a, b) = (upstream(&script).await, upstream(&script).await);
    let gateway = gateway(&[&a, &b], |_| {}).await;
    let mut ws = open(&gateway).await;
    subscribe(&mut ws, json!(["newHeads"])).await;
    script.lock().unwrap().mine(Vec::new());
    assert_eq!(notifications(&mut ws, 1).await[0]["number"], "0x1");

    let reads = |u: &RecordingUpstream| {
        u.calls()
            .iter()
            .filter(|c| c["method"] == "eth_getBlockByNumber")
            .count()
    };
    let before = (reads(&a), reads(&b));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let feeding_a = reads(&a) - before.0 > reads(&b) - before.1;
    let (feeding, other) = if feeding_a { (&a, &b) } else { (&b, &a) };
    feeding.kill();
    for _ in 0..4 {
        script.lock().unwrap().mine(Vec::new());
    }
    let heads = notifications(&mut ws, 4).await;
    let numbers: Vec<&str> = heads
        .iter()
        .map(|h| h["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["0x2", "0x3", "0x4", "0x5"], "no gap, no repeat");
    assert!(reads(other) > 0);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_1013_and_the_others_keep_receiving() {
    let script = Script::new();
    let a = upstream(&script).await;
    let gateway = gateway(&[&a], |config| {
        config.limits.websocket_queue_len = 64;
        config.limits.websocket_queue_bytes = 512 * 1024;
    })
    .await;
    let mut reader = open(&gateway).await;
    subscribe(&mut reader, json!(["logs"])).await;
    let mut sleeper = open(&gateway).await;
    subscribe(&mut sleeper, json!(["logs"])).await;
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    let reading = tokio::spawn(async move {
        while let Some(message) = next_json(&mut reader).await {
            assert_eq!(message["method"], "eth_subscription");
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });

    // 16 logs of 16 KiB per block: the sleeper's socket buffers fill, then its queue.
    let mut blocks = 0;
    let closed = eventually(Duration::from_secs(60), || {
        blocks += 1;
        script
            .lock()
            .unwrap()
            .mine_on(None, (0..16).map(|n| (n, 1)).collect(), 8 * 1024);
        let gateway = &gateway;
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            gateway
                .metrics_text()
                .await
                .contains(r#"shroud_subscriptions_active{chain="eth",kind="logs"} 1"#)
        }
    })
    .await;
    assert!(closed, "the sleeper was dropped from the feed");
    let all = 16 * blocks;
    let delivered = eventually(Duration::from_secs(20), || {
        let received = Arc::clone(&received);
        async move { received.load(std::sync::atomic::Ordering::Relaxed) >= all }
    })
    .await;
    assert!(
        delivered,
        "the reader got every log: {} of {all}",
        received.load(std::sync::atomic::Ordering::Relaxed)
    );
    reading.abort();

    // Now read the sleeper: what was queued, then the close.
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), sleeper.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame.unwrap(),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Again);
    assert!(close.reason.contains("slow consumer"), "{}", close.reason);
}

#[tokio::test]
async fn limits_and_bad_calls_get_clear_json_rpc_errors() {
    let script = Script::new();
    let a = upstream(&script).await;
    let gateway = gateway(&[&a], |config| {
        config.limits.max_subscriptions_per_connection = 2;
        config.limits.max_websocket_connections = 1;
        config.limits.max_request_bytes = 4096;
    })
    .await;
    let mut ws = open(&gateway).await;
    // Any other call goes through the relay pipeline, like over HTTP.
    assert_eq!(
        call(&mut ws, "eth_blockNumber", json!([])).await["result"],
        "0x10"
    );
    assert_eq!(
        call(&mut ws, "admin_peers", json!([])).await["error"]["code"],
        -32601
    );
    for (params, code, words) in [
        (
            json!(["logs", { "address": "0x12" }]),
            -32602,
            "40 hex digits",
        ),
        (json!(["syncing"]), -32602, "unsupported subscription kind"),
        (json!(["newPendingTransactions"]), -32602, "not enabled"),
    ] {
        let answer = call(&mut ws, "eth_subscribe", params).await;
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(words),
            "{answer}"
        );
    }
    subscribe(&mut ws, json!(["newHeads"])).await;
    subscribe(&mut ws, json!(["logs"])).await;
    let answer = call(&mut ws, "eth_subscribe", json!(["newHeads"])).await;
    assert_eq!(answer["error"]["code"], -32005, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 subscriptions")
    );

    // One WebSocket at most: the second upgrade is refused with 503 and -32005.
    let tls = gateway.connect(b"http/1.1").await;
    let refused = tokio_tungstenite::client_async("ws://localhost/eth", tls)
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(response.status(), 503);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], -32005);

    // A message over the size limit closes the connection with 1009.
    ws.send(Message::text("x".repeat(5000))).await.unwrap();
    let close = loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => break frame.unwrap(),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Size);

    // Over HTTP, eth_subscribe points to WebSocket.
    let reply = gateway
        .http1(common::post_json(
            "/eth",
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}"#,
        ))
        .await;
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("WebSocket"), "{message}");
    assert!(!a.calls().iter().any(|c| c["method"] == "eth_subscribe"));
}

/// A WebSocket stand-in for an upstream's `ws` endpoint: counts `eth_subscribe` calls and,
/// on each `tick`, sends every subscriber a `newHeads` notification.
struct WsStandIn {
    url: String,
    subscribes: Arc<std::sync::atomic::AtomicUsize>,
    tick: tokio::sync::broadcast::Sender<()>,
}

async fn ws_stand_in() -> WsStandIn {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let subscribes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (tick, _) = tokio::sync::broadcast::channel(16);
    let (count, ticks) = (Arc::clone(&subscribes), tick.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (count, mut ticks) = (Arc::clone(&count), ticks.subscribe());
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                loop {
                    tokio::select! {
                        message = ws.next() => match message {
                            Some(Ok(Message::Text(text))) if text.contains("eth_subscribe") => {
                                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let answer = json!({"jsonrpc":"2.0","id":1,"result":"0x1"}).to_string();
                                ws.send(Message::text(answer)).await.unwrap();
                            }
                            Some(Ok(_)) => {}
                            _ => return,
                        },
                        Ok(()) = ticks.recv() => {
                            let note = json!({"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{}}});
                            if ws.send(Message::text(note.to_string())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    WsStandIn {
        url,
        subscribes,
        tick,
    }
}

#[tokio::test]
async fn an_upstream_websocket_wakes_the_follower_with_one_subscription_of_its_own() {
    let script = Script::new();
    let a = upstream(&script).await;
    let stand_in = ws_stand_in().await;
    let mut config = dev_config(Vec::new());
    config.chains.push(
        toml::from_str(&format!(
            r#"name = "eth"
               upstreams = [{{ url = "{}", ws = "{}" }}]
               [subscriptions]
               poll_interval_ms = 20000"#,
            a.url(),
            stand_in.url
        ))
        .unwrap(),
    );
    let gateway = TestGateway::start_config(config).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut ws = open(&gateway).await;
        subscribe(&mut ws, json!(["newHeads"])).await;
        clients.push(ws);
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            stand_in
                .subscribes
                .load(std::sync::atomic::Ordering::Relaxed)
                == 1
        })
        .await
    );
    // Polling every 20 s: a head within 5 s came by the socket.
    script.lock().unwrap().mine(Vec::new());
    stand_in.tick.send(()).unwrap();
    for ws in &mut clients {
        let heads = tokio::time::timeout(Duration::from_secs(5), notifications(ws, 1))
            .await
            .expect("woken by the upstream socket");
        assert_eq!(heads[0]["number"], "0x1");
    }
    assert_eq!(
        stand_in
            .subscribes
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "one subscription of the gateway's own, not one per client"
    );
}
