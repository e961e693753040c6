//! A `message/ohttp-res` answer through the client's opening and decoding (see `src/gateway.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shroud_fuzz::gateway::ohttp_response(data);
});
