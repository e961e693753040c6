//! The entry points of Shroud's fuzz targets: one function per parser that untrusted bytes
//! reach, each calling the product's own parser and asserting what must hold of its answer.
//!
//! Each target in `fuzz_targets/` is a one-line call of one of these functions. The two
//! modules are also compiled into the crates' regression tests (`#[path]` includes in
//! `gateway/tests/fuzz_regressions.rs` and `ra-tls/tests/fuzz_regressions.rs`), which call the
//! same function on every file of `fuzz/regressions/<target>/`; so they use nothing but the
//! product crates and `serde_json`, and never `crate::`.

pub mod gateway;
pub mod ra_tls;
