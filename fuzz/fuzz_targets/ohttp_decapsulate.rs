//! A `message/ohttp-req` body through the gateway's opening steps (see `src/gateway.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shroud_fuzz::gateway::ohttp_decapsulate(data);
});
