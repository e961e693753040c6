//! The fidelity corpus of DESIGN §7: every recorded request/response pair of the JSON-RPC
//! fixtures (`SHROUD_FIXTURES_DIR`, `{method}/{name}.io`) is replayed through the gateway to an
//! upstream that answers with the recorded `result` or `error`, byte for byte, under the id the
//! gateway sent. The client must receive exactly the recorded response line, with its own id;
//! methods the default policy denies must get -32601 and never reach the upstream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{StartGateway, TestGateway, dev_config, post_json};
use http::StatusCode;
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use serde_json::value::RawValue;
use shroud_testkit::upstream::RecordingUpstream;
use shroud_testkit::vectors::jsonrpc_fixtures;

/// The default deny list of DESIGN §5.
const DENIED_PREFIXES: [&str; 6] = [
    "admin_",
    "debug_",
    "personal_",
    "miner_",
    "txpool_",
    "engine_",
];

/// One `>>` / `<<` pair.
struct Pair {
    file: String,
    request: String,
    response: String,
}

fn pairs(dir: &Path) -> Vec<Pair> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.extension().is_some_and(|e| e == "io"))
        .collect();
    files.sort();
    let mut pairs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(dir).unwrap().display().to_string();
        let mut request = None;
        for line in text.lines() {
            if let Some(r) = line.strip_prefix(">> ") {
                request = Some(r.trim().to_owned());
            } else if let Some(r) = line.strip_prefix("<< ") {
                pairs.push(Pair {
                    file: name.clone(),
                    request: request.take().expect("a response follows a request"),
                    response: r.trim().to_owned(),
                });
            }
        }
    }
    pairs
}

/// What the upstream expects next and answers: (method, params, member, raw value).
type Expected = Arc<Mutex<Option<(Value, Value, String, String)>>>;

fn answer(expected: &Expected, body: &[u8]) -> Vec<u8> {
    let call: Value = serde_json::from_slice(body).unwrap();
    let id = call["id"].to_string();
    let current = expected.lock().unwrap().clone();
    match current {
        Some((method, params, member, raw)) if call["method"] == method && call["params"] == params => {
            format!(r#"{{"jsonrpc":"2.0","id":{id},"{member}":{raw}}}"#).into_bytes()
        }
        _ => format!(
            r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32099,"message":"replay: unexpected call {}"}}}}"#,
            serde_json::to_string(&call["method"]).unwrap()
        )
        .into_bytes(),
    }
}

#[tokio::test]
async fn every_recorded_exchange_is_relayed_exactly() {
    let Some(dir) = jsonrpc_fixtures() else {
        return;
    };
    let pairs = pairs(&dir);
    assert!(
        pairs.len() > 100,
        "only {} pairs in {}",
        pairs.len(),
        dir.display()
    );

    let expected: Expected = Arc::new(Mutex::new(None));
    let upstream = {
        let expected = Arc::clone(&expected);
        RecordingUpstream::start_raw(move |body| answer(&expected, body)).await
    };
    let mut config = dev_config(vec![("eth".into(), upstream.url())]);
    config.limits.rate_limit_per_second = 0;
    // Every answer comes from the upstream, so a repeated request with another recorded
    // answer is not served from the cache; no health probes interleave.
    config.cache.enabled = false;
    config.chains[0].health_check_interval_ms = 3_600_000;
    let gateway = TestGateway::start_config(config).await;

    // One keep-alive connection for the whole corpus, as a wallet would use.
    let tls = gateway.connect(b"http/1.1").await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);

    let (mut relayed, mut denied) = (0, 0);
    for pair in &pairs {
        let request: Value = serde_json::from_str(&pair.request).unwrap();
        let method = request["method"].as_str().unwrap().to_owned();
        let is_denied = DENIED_PREFIXES.iter().any(|p| method.starts_with(p));
        let members: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(&pair.response).unwrap();
        let (member, raw) = match (members.get("result"), members.get("error")) {
            (_, Some(error)) => ("error", error.get().to_owned()),
            (Some(result), None) => ("result", result.get().to_owned()),
            (None, None) => panic!("{}: no result or error", pair.file),
        };
        *expected.lock().unwrap() = Some((
            request["method"].clone(),
            request
                .get("params")
                .cloned()
                .unwrap_or_else(|| Value::Array(Vec::new())),
            member.to_owned(),
            raw,
        ));
        let calls_before = upstream.calls().len();

        let response = sender
            .send_request(post_json("/eth", &pair.request))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", pair.file);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = std::str::from_utf8(&body).unwrap();
        if is_denied {
            let id = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(&pair.request)
                .unwrap()["id"]
                .get()
                .to_owned();
            assert_eq!(
                body,
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"method not found or not allowed by this gateway"}}}}"#
                ),
                "{}",
                pair.file
            );
            assert_eq!(
                upstream.calls().len(),
                calls_before,
                "{}: a denied call was relayed",
                pair.file
            );
            denied += 1;
        } else {
            assert_eq!(body, pair.response, "{}: not relayed exactly", pair.file);
            relayed += 1;
        }
    }
    println!("replayed {relayed} exchanges exactly, {denied} denied with -32601");
    assert!(relayed > 0 && denied > 0);
}
