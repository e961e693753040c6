//! An Intel SGX/TDX quote with its collateral (see `src/ra_tls.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shroud_fuzz::ra_tls::dcap_quote(data);
});
