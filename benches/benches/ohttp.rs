//! Oblivious HTTP round trip (DESIGN §8: seal + open < 100 µs native): the client seals a
//! request, the gateway opens it and seals the answer, the client opens the answer; per suite.
//!
//! `cargo bench -p shroud-benches --bench ohttp`; figures in `docs/BENCHMARKS.md`.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]
#![expect(
    clippy::expect_used,
    reason = "a bench whose setup fails has nothing to measure"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shroud_ohttp::message::{decode_response, encode_request, encode_response};
use shroud_ohttp::{Aead, Kem, ServerKey, seal_request};

/// A typical call: `eth_getBalance` of one address.
const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1","latest"]}"#;

fn round_trip(c: &mut Criterion) {
    let bhttp = encode_request("/eth", CALL, 1_764_000_000).expect("binary HTTP request");
    // What the gateway answers inside: a small JSON-RPC result, padded to the first bucket.
    let answer = encode_response(
        200,
        "application/json",
        br#"{"jsonrpc":"2.0","id":1,"result":"0x3635c9adc5dea00000"}"#,
        &[1024],
    )
    .expect("binary HTTP response");
    for (kem, aead, name) in [
        (Kem::X25519Sha256, Aead::Aes128Gcm, "x25519/aes128gcm"),
        (
            Kem::X25519Sha256,
            Aead::ChaCha20Poly1305,
            "x25519/chacha20poly1305",
        ),
        (Kem::P256Sha256, Aead::Aes128Gcm, "p256/aes128gcm"),
    ] {
        let key = ServerKey::generate(1, kem).expect("server key");
        let config = key.config().clone();
        c.bench_function(&format!("ohttp_round_trip/{name}"), |b| {
            b.iter(|| {
                let sealed = seal_request(&config, aead, black_box(&bhttp)).expect("seal");
                let opened = key.open_request(&sealed.bytes).expect("open request");
                let response = opened.sealer.seal(&answer).expect("seal response");
                let plain = sealed.opener.open(&response).expect("open response");
                decode_response(&plain).expect("decode response")
            });
        });
    }
}

/// The round trip split by who pays: the client (seal the request, open the answer) and the
/// gateway (open the request, seal the answer), per KEM.
fn stages(c: &mut Criterion) {
    let bhttp = encode_request("/eth", CALL, 1_764_000_000).expect("binary HTTP request");
    let answer = encode_response(
        200,
        "application/json",
        br#"{"jsonrpc":"2.0","id":1,"result":"0x3635c9adc5dea00000"}"#,
        &[1024],
    )
    .expect("binary HTTP response");
    for (kem, name) in [(Kem::X25519Sha256, "x25519"), (Kem::P256Sha256, "p256")] {
        let key = ServerKey::generate(1, kem).expect("server key");
        let config = key.config().clone();
        let aead = Aead::Aes128Gcm;
        c.bench_function(
            &format!("ohttp_client_seal_request/{name}/aes128gcm"),
            |b| {
                b.iter(|| seal_request(&config, aead, black_box(&bhttp)).expect("seal"));
            },
        );
        let sealed = seal_request(&config, aead, &bhttp).expect("seal");
        c.bench_function(
            &format!("ohttp_gateway_open_request_seal_response/{name}/aes128gcm"),
            |b| {
                b.iter(|| {
                    let opened = key.open_request(black_box(&sealed.bytes)).expect("open");
                    opened.sealer.seal(&answer).expect("seal response")
                });
            },
        );
        let response = key
            .open_request(&sealed.bytes)
            .expect("open")
            .sealer
            .seal(&answer)
            .expect("seal response");
        c.bench_function(
            &format!("ohttp_client_open_response/{name}/aes128gcm"),
            |b| {
                b.iter(|| {
                    let plain = sealed
                        .opener
                        .open(black_box(&response))
                        .expect("open response");
                    decode_response(&plain).expect("decode response")
                });
            },
        );
    }
}

criterion_group!(benches, round_trip, stages);
criterion_main!(benches);
