//! An AMD SEV-SNP report with its VCEK endorsements (see `src/ra_tls.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shroud_fuzz::ra_tls::snp_report(data);
});
