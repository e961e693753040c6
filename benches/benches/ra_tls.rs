//! Micro benchmarks of the RA-TLS certificate path (simulated platform).
//!
//! `cargo bench -p shroud-benches --bench ra_tls`; figures in `docs/BENCHMARKS.md`.
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
use shroud_benches::{
    full_claims, issue_params, now, simulated_attester, simulated_certificate, simulated_policy,
};
use shroud_ra_tls::claims::Claims;
use shroud_ra_tls::tls::AttestedServerVerifier;
use shroud_ra_tls::{VerifyOptions, verify_certificate};

/// Issuing: a fresh P-256 key, the claims buffer, a signed simulated report, the self-signed
/// certificate. The gateway does this at start and every 12 h (and per nonce request, §4.2).
fn issue(c: &mut Criterion) {
    let attester = simulated_attester().expect("simulated attester");
    let params = issue_params();
    c.bench_function("issue_certificate/simulated", |b| {
        b.iter(|| {
            shroud_ra_tls::cert::issue_certificate(&attester, black_box(&params)).expect("issue")
        });
    });
}

/// Verifying: the full sequence of DESIGN §3 (parse, self-signature, evidence signature, report
/// data, pubkey-hash, pins), and the cached verdict a connection pool sees on reconnects.
fn verify(c: &mut Criterion) {
    let attester = simulated_attester().expect("simulated attester");
    let cert = simulated_certificate(&attester).expect("certificate");
    let der = cert.certificate.as_ref();
    let policy = simulated_policy().expect("policy");
    let options = VerifyOptions {
        danger_allow_simulated: true,
        ..VerifyOptions::at(now())
    };
    c.bench_function("verify_certificate/simulated", |b| {
        b.iter(|| verify_certificate(black_box(der), &policy, &options).expect("verify"));
    });

    let verifier = AttestedServerVerifier::new(policy).danger_allow_simulated(true);
    verifier.verify(der, now()).expect("first verification");
    c.bench_function("verify_certificate/simulated_cached", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(der), now())
                .expect("cached verdict")
        });
    });
}

/// The claims buffer: deterministic CBOR out, bounded and strict CBOR in.
fn claims(c: &mut Criterion) {
    let claims = full_claims();
    let cbor = claims.to_cbor();
    c.bench_function("claims/to_cbor", |b| {
        b.iter(|| black_box(&claims).to_cbor())
    });
    c.bench_function("claims/from_cbor", |b| {
        b.iter(|| Claims::from_cbor(black_box(&cbor)).expect("decode"));
    });
}

criterion_group!(benches, issue, verify, claims);
criterion_main!(benches);
