//! `shroud-subs`: the subscription benchmark of DESIGN §8. N WebSocket clients on the release
//! gateway (RA-TLS, simulated TEE) subscribe to `newHeads`; a loopback stand-in node makes a
//! block every interval; the figure is the time from the follower seeing a head (the stand-in
//! answering `latest` with it for the first time) to each client receiving it: p50, p99, max,
//! plus delivered/expected and the gateway's RSS. One process, one clock.
//!
//! `cargo build --release -p shroud-gateway -p shroud-benches --bin shroud-subs && \
//!  target/release/shroud-subs --clients 10000 --blocks 20`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use shroud_benches::harness::error::LoadError;
use shroud_benches::harness::gateway::Gateway;
use shroud_ra_tls::Policy;
use shroud_ra_tls::tls::{AttestedServerVerifier, client_config};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(about = "WebSocket newHeads fan-out latency through the gateway (DESIGN §8)")]
struct Args {
    /// Subscribed clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Blocks made after every client subscribed.
    #[arg(long, default_value_t = 10)]
    blocks: u64,
    /// Milliseconds between blocks.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// The gateway binary (default: `shroud-gateway` next to this program).
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
}

/// The stand-in node: the chain's tip, and when each block was first served as `latest`.
#[derive(Default)]
struct Chain {
    tip: u64,
    seen: Vec<Option<Instant>>,
}

fn block_hash(n: u64) -> String {
    format!("0x{n:064x}")
}

fn block(n: u64) -> Value {
    json!({
        "number": format!("0x{n:x}"), "hash": block_hash(n + 1), "parentHash": block_hash(n),
        "miner": format!("0x{}", "00".repeat(20)), "timestamp": format!("0x{n:x}"),
        "gasLimit": "0x1c9c380", "gasUsed": "0x0", "baseFeePerGas": "0x7",
        "logsBloom": format!("0x{}", "00".repeat(256)), "extraData": "0x",
        "stateRoot": block_hash(7), "receiptsRoot": block_hash(8), "transactionsRoot": block_hash(9),
        "transactions": [],
    })
}

fn answer(chain: &Mutex<Chain>, call: &Value) -> Value {
    let mut chain = chain.lock().unwrap_or_else(PoisonError::into_inner);
    let result = match call.get("method").and_then(Value::as_str) {
        Some("eth_getBlockByNumber") => {
            let tip = chain.tip;
            if let Some(seen) = chain
                .seen
                .get_mut(usize::try_from(tip).unwrap_or(usize::MAX))
            {
                seen.get_or_insert_with(Instant::now);
            }
            block(tip)
        }
        Some("eth_getBlockByHash") => {
            let n = call
                .pointer("/params/0")
                .unwrap_or(&Value::Null)
                .as_str()
                .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0);
            if n >= 1 && n <= chain.tip + 1 {
                block(n - 1)
            } else {
                Value::Null
            }
        }
        Some("eth_chainId") => json!("0x1"),
        _ => json!([]),
    };
    json!({ "jsonrpc": "2.0", "id": call.get("id").cloned().unwrap_or(Value::Null), "result": result })
}

async fn serve_node(listener: TcpListener, chain: Arc<Mutex<Chain>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let chain = Arc::clone(&chain);
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let chain = Arc::clone(&chain);
                async move {
                    let body = request
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let text = answer(&chain, &call).to_string();
                    let mut response = hyper::Response::new(Full::new(Bytes::from(text)));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn gateway_config(node: SocketAddr, clients: usize) -> String {
    let connections = clients + 100;
    format!(
        r#"[listen]
https = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[tee]
platform = "simulated"

[limits]
rate_limit_per_second = 0
max_connections = {connections}
max_connections_per_client = {connections}
max_websocket_connections = {connections}

[[chain]]
name = "eth"
upstreams = ["http://{node}/"]
[chain.subscriptions]
poll_interval_ms = 100
"#
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shroud-subs: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shroud-subs: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), LoadError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| LoadError::Usage(format!("{what}: {e}"));
    let (soft, hard) = rlimit::Resource::NOFILE
        .get()
        .map_err(|e| LoadError::io("RLIMIT_NOFILE", e))?;
    if soft < hard {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
    let blocks = args.blocks;
    let chain = Arc::new(Mutex::new(Chain {
        tip: 0,
        seen: vec![None; usize::try_from(blocks + 2).unwrap_or(2)],
    }));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| LoadError::io("binding the node", e))?;
    let node = listener
        .local_addr()
        .map_err(|e| LoadError::io("node address", e))?;
    tokio::spawn(serve_node(listener, Arc::clone(&chain)));

    let binary = match &args.gateway_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| LoadError::io("finding this program", e))?
            .with_file_name("shroud-gateway"),
    };
    let gateway = Gateway::start(&binary, &gateway_config(node, args.clients)).await?;
    let rss_before = gateway.rss_kib();
    let policy = Policy::from_pins([format!("simulated:measurement={}", gateway.measurement())])
        .map_err(|e| fail("pin", &e))?;
    let verifier = AttestedServerVerifier::new(policy).danger_allow_simulated(true);
    let tls =
        Arc::new(client_config(Arc::new(verifier), &[b"http/1.1"]).map_err(|e| fail("tls", &e))?);
    let connector = tokio_rustls::TlsConnector::from(tls);
    let addr = gateway.addr();

    // Subscribe every client (64 at a time), each then reading into its own latency list.
    let started = Instant::now();
    let latencies: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let (subscribed_tx, mut subscribed_rx) =
        tokio::sync::mpsc::channel::<Result<(), String>>(args.clients.max(1));
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    for _ in 0..args.clients {
        let connector = connector.clone();
        let latencies = Arc::clone(&latencies);
        let subscribed = subscribed_tx.clone();
        let permits = Arc::clone(&permits);
        tokio::spawn(async move {
            let setup = async {
                let _permit = permits.acquire().await.map_err(|e| e.to_string())?;
                let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
                let tls = connector
                    .connect(ServerName::from(addr.ip()), tcp)
                    .await
                    .map_err(|e| e.to_string())?;
                let (mut ws, _) = tokio_tungstenite::client_async("ws://localhost/eth", tls)
                    .await
                    .map_err(|e| e.to_string())?;
                ws.send(Message::text(
                    r#"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}"#,
                ))
                .await
                .map_err(|e| e.to_string())?;
                match ws.next().await {
                    Some(Ok(Message::Text(text))) if text.contains("\"result\":\"0x") => Ok(ws),
                    other => Err(format!("subscribe answered {other:?}")),
                }
            };
            let mut ws = match setup.await {
                Ok(ws) => {
                    let _ = subscribed.send(Ok(())).await;
                    ws
                }
                Err(e) => {
                    let _ = subscribed.send(Err(e)).await;
                    return;
                }
            };
            let mut mine = Vec::new();
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    let at = Instant::now();
                    let number = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
                        v.pointer("/params/result/number")
                            .unwrap_or(&Value::Null)
                            .as_str()
                            .and_then(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).ok())
                    });
                    if let Some(number) = number {
                        mine.push((number, at));
                        if number >= blocks {
                            break;
                        }
                    }
                }
            }
            latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(mine);
        });
    }
    drop(subscribed_tx);
    let mut ok = 0usize;
    let mut first_error = None;
    // Each client's task keeps its sender while it reads, so count the answers rather than
    // wait for the channel to close.
    for _ in 0..args.clients {
        let Some(result) = subscribed_rx.recv().await else {
            break;
        };
        match result {
            Ok(()) => ok += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let setup = started.elapsed();
    let rss_subscribed = gateway.rss_kib();
    println!(
        "subscribed {ok} of {} clients in {:.1} s{}",
        args.clients,
        setup.as_secs_f64(),
        first_error
            .map(|e| format!(" (first failure: {e})"))
            .unwrap_or_default()
    );

    for _ in 0..blocks {
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        chain.lock().unwrap_or_else(PoisonError::into_inner).tip += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let expected = ok * usize::try_from(blocks).unwrap_or(0);
    while latencies
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
        < expected
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = chain
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .seen
        .clone();
    let mut histogram = Histogram::<u64>::new(3).map_err(|e| fail("histogram", &e))?;
    let received = latencies
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for (number, at) in &received {
        if let Some(Some(seen)) = seen.get(usize::try_from(*number).unwrap_or(usize::MAX)) {
            let micros = at.saturating_duration_since(*seen).as_micros();
            let _ = histogram.record(u64::try_from(micros).unwrap_or(u64::MAX));
        }
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "clients {ok}, blocks {blocks}, notifications {} of {expected}",
        received.len()
    );
    println!(
        "head latency (follower sees it -> client has it): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(0.5),
        ms(0.99),
        histogram.max() as f64 / 1000.0
    );
    let kib =
        |v: Option<u64>| v.map_or("?".to_owned(), |v| format!("{:.1} MiB", v as f64 / 1024.0));
    println!(
        "gateway RSS: {} before, {} with every client subscribed, {} after the blocks",
        kib(rss_before),
        kib(rss_subscribed),
        kib(gateway.rss_kib())
    );
    if let (Some(before), Some(during)) = (rss_before, rss_subscribed)
        && ok > 0
    {
        println!(
            "per subscribed client: {:.1} KiB",
            during.saturating_sub(before) as f64 / ok as f64
        );
    }
    if received.len() < expected {
        return Err(LoadError::Usage(format!(
            "only {} of {expected} notifications arrived",
            received.len()
        )));
    }
    Ok(())
}
