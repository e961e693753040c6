//! Test-only helpers for Shroud's integration tests: real servers on loopback sockets bound to
//! port 0 (so tests never fight over ports) that record what they receive, and [`gateway`], the
//! one harness through which the gateway's and the SDK's tests run and talk to a gateway.
//!
//! This crate depends on no Shroud crate: `shroud-ra-tls` and `shroud-gateway` dev-depend on it.
#![forbid(unsafe_code)]

pub mod gateway;
pub mod hosts;
pub mod quic_counter;
pub mod tls_counter;
pub mod upstream;
pub mod vectors;
