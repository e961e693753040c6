//! The binary HTTP request inside an opened OHTTP request (see `src/gateway.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shroud_fuzz::gateway::bhttp(data);
});
