//! A JSON-RPC request body through `pipeline::parse` and the canonical form (see `src/gateway.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shroud_fuzz::gateway::jsonrpc_parse(data);
});
