//! The evidence extension's conceptual message wrapper and the evidence inside (see `src/ra_tls.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shroud_fuzz::ra_tls::cmw(data);
});
