//! The gateway's TOML configuration, parsed and validated (see `src/gateway.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shroud_fuzz::gateway::config(data);
});
