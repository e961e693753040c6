//! The gateway's request parser on adversarial and ordinary bodies:
//! `cargo bench -p shroud-benches --bench pipeline`.
//!
//! * `deep_1mb_refused`: the hardening finding's body, 2 500 levels around 500 000 numbers
//!   (1 MB), which used to cost ~4.9 s of CPU; it is now refused by the depth check before
//!   anything else reads it.
//! * `wide_1mb_at_depth_limit`: 1 MB just inside the limit (63 levels around 250 000 numbers,
//!   object keys in reverse order so every object is rewritten): the canonicaliser's worst case,
//!   linear in the body.
//! * `eth_call`: an ordinary call with a state override.
//!
//! And DESIGN §8's cache hit "in process": `cache_hit/net_version_in_process`, one `net_version`
//! answered from the response cache by the gateway's routes and relay pipeline
//! (`Gateway::answer_in_process`: HTTP request in, HTTP response out, no socket or TLS), after a
//! first call filled the cache from a loopback upstream that is checked to see no other call.
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]
#![expect(
    clippy::expect_used,
    reason = "a bench whose setup fails has nothing to measure"
)]

use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shroud_gateway::pipeline::parse::{ParseLimits, parse};
use shroud_gateway::{Config, Gateway};
use shroud_testkit::gateway::post_json;
use shroud_testkit::upstream::RecordingUpstream;

const LIMITS: ParseLimits = ParseLimits {
    max_batch_len: 100,
    max_depth: 64,
};

fn deep(levels: usize, numbers: usize) -> Vec<u8> {
    let inner = vec!["1"; numbers].join(",");
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_call","params":{}{inner}{}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
    .into_bytes()
}

/// `levels` objects, each `{"z":[numbers],"a":{...}}`: keys out of order at every level.
fn wide_objects(levels: usize, numbers: usize) -> Vec<u8> {
    let leaf = format!("[{}]", vec!["12345"; numbers].join(","));
    let mut value = leaf.clone();
    for _ in 0..levels {
        value = format!(r#"{{"z":{leaf},"a":{value}}}"#);
    }
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{value}]}}"#).into_bytes()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let refused = deep(2_500, 500_000);
    assert!(parse(&refused, LIMITS).is_err());
    group.throughput(Throughput::Bytes(refused.len() as u64));
    group.bench_function("deep_1mb_refused", |b| b.iter(|| parse(&refused, LIMITS)));

    let wide = wide_objects(60, 2_700);
    assert!(parse(&wide, LIMITS).is_ok());
    group.throughput(Throughput::Bytes(wide.len() as u64));
    group.bench_function("wide_1mb_at_depth_limit", |b| {
        b.iter(|| parse(&wide, LIMITS))
    });

    let call = br#"{"jsonrpc":"2.0","id":7,"method":"eth_call","params":[{"to":"0x00000000219ab540356cbb839cbe05303d7705fa","data":"0x70a08231000000000000000000000000d8da6bf26964af9d7eed9e03e53415d37aa96045"},"latest",{"0x00000000219ab540356cbb839cbe05303d7705fa":{"balance":"0x1"}}]}"#;
    group.throughput(Throughput::Bytes(call.len() as u64));
    group.bench_function("eth_call", |b| b.iter(|| parse(call, LIMITS)));
    group.finish();
}

/// A cacheable call (`eth_chainId` is too, but the gateway's health probe sends that on its own,
/// and the check below could not tell the two apart).
const NET_VERSION: &str = r#"{"jsonrpc":"2.0","id":7,"method":"net_version","params":[]}"#;

fn cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (upstream, gateway) = runtime.block_on(async {
        let upstream = RecordingUpstream::start().await;
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        let mut config = Config::dev(vec![("eth".into(), upstream.url())], loopback, loopback);
        // The bench is one client asking as fast as it can; a rate limit would answer 429.
        config.limits.rate_limit_per_second = 0;
        let gateway = Gateway::bind(config).await.expect("the gateway binds");
        (upstream, gateway)
    });
    let answer = |gateway: &Gateway| {
        runtime.block_on(gateway.answer_in_process(post_json("/eth", NET_VERSION)))
    };
    let first = answer(&gateway);
    assert_eq!(first.status(), http::StatusCode::OK);
    let reply: serde_json::Value = serde_json::from_slice(first.body()).expect("a JSON answer");
    assert_eq!(reply.get("id"), Some(&serde_json::json!(7)), "{reply}");
    assert!(
        reply
            .get("result")
            .is_some_and(serde_json::Value::is_string),
        "{reply}"
    );

    let mut group = c.benchmark_group("cache_hit");
    group.bench_function("net_version_in_process", |b| b.iter(|| answer(&gateway)));
    group.finish();

    let hit = answer(&gateway);
    assert_eq!(
        hit.body(),
        first.body(),
        "a hit answers what the upstream did"
    );
    let asked = upstream
        .calls()
        .iter()
        .filter(|call| {
            call.get("method").and_then(serde_json::Value::as_str) == Some("net_version")
        })
        .count();
    assert_eq!(asked, 1, "every answer after the first came from the cache");
}

criterion_group!(benches, bench, cache_hit);
criterion_main!(benches);
