//! An RA-TLS certificate through `verify_certificate` (see `src/ra_tls.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shroud_fuzz::ra_tls::ratls_certificate(data);
});
