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
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shroud_gateway::pipeline::parse::{ParseLimits, parse};

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

criterion_group!(benches, bench);
criterion_main!(benches);
