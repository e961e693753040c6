//! The claims buffer (see `src/ra_tls.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shroud_fuzz::ra_tls::claims_cbor(data);
});
