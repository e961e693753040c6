//! Test-only helpers for Shroud's integration tests. Every helper is a real server on a
//! loopback socket bound to port 0, so tests never fight over ports.
#![forbid(unsafe_code)]

pub mod hosts;
pub mod tls_counter;
pub mod upstream;
pub mod vectors;
