//! Shroud client: talk to a Shroud gateway only after its enclave proved what code it runs.
//!
//! The gateway terminates RA-TLS: its TLS certificate carries attestation evidence that binds
//! the certificate key to measured code. A [`Client`] verifies that evidence **during the TLS
//! handshake**, against a [`Policy`] of pinned measurements, and aborts the handshake when it does
//! not verify, so not one byte of a request is ever written to an unverified gateway.
//!
//! ```no_run
//! # async fn example() -> Result<(), shroud_client::ClientError> {
//! use shroud_client::{Client, Policy};
//!
//! // A complete identity: the TD firmware (mrtd) and what it booted (rtmr0..rtmr2).
//! let pins = ["tdx:mrtd=…96 hex digits…", "tdx:rtmr0=…", "tdx:rtmr1=…", "tdx:rtmr2=…"];
//! let policy = Policy::from_pins(pins).map_err(shroud_client::ClientError::Policy)?;
//! let client = Client::builder("https://gateway.example:8443/eth").policy(policy).build()?;
//! let verdict = client.attest().await?; // optional: the handshake alone, nothing sent
//! println!("{} {}", verdict.platform(), verdict.measurements().describe());
//! let block = client.request("eth_blockNumber", serde_json::json!([])).await?;
//! # Ok(()) }
//! ```
//!
//! [`Client::subscribe`] sends `eth_subscribe` over a WebSocket of its own to the gateway, on a
//! connection attested the same way before the upgrade request is written, and returns a
//! [`Subscription`]: a `Stream` of the notifications.
//!
//! Where the TLS certificate cannot be seen (a TLS-terminating front, an OHTTP relay that hides
//! the client's address), [`ObliviousClient`] verifies the gateway's attestation bundle instead
//! and seals every call with Oblivious HTTP to the keys the enclave attested.
//!
//! Features: `transport` (default) adds the tokio/hyper/rustls connector, [`Client`] and
//! [`ObliviousClient`]; `cli` (default) builds the `shroud` command. Without them the crate is
//! the transport-free core ([`policy`], [`bundle`], [`ohttp`], [`jsonrpc`], [`ClientError`])
//! that the wasm client builds on.
#![forbid(unsafe_code)]

/// The attestation bundle (DESIGN §4.2), from [`shroud_ohttp`].
pub use shroud_ohttp::bundle;
#[cfg(feature = "transport")]
mod attested_http;
#[cfg(feature = "transport")]
mod client;
#[cfg(feature = "transport")]
pub mod connect;
mod error;
#[cfg(feature = "transport")]
mod exchange;
#[cfg(feature = "transport")]
pub mod fresh;
pub mod jsonrpc;
#[cfg(feature = "jsonrpsee")]
pub mod jsonrpsee_transport;
#[cfg(feature = "transport")]
mod oblivious;
/// Oblivious HTTP (RFC 9458): the crate [`shroud_ohttp`], which the gateway shares.
pub use shroud_ohttp as ohttp;
#[cfg(feature = "transport")]
mod options;
pub mod policy;
#[cfg(feature = "transport")]
mod pool;
#[cfg(feature = "transport")]
pub mod proxy;
#[cfg(feature = "transport")]
pub mod quic;
pub mod retry;
#[cfg(feature = "transport")]
mod subscription;
#[cfg(feature = "transport")]
mod websocket;
#[cfg(feature = "transport")]
mod websocket_relay;

#[cfg(feature = "transport")]
pub use client::{Client, ClientBuilder, DEFAULT_POOL_IDLE_TIMEOUT};
pub use error::{ClientError, ErrorKind};
/// The jsonrpsee version [`Client::jsonrpsee_client`] builds on, so callers use the matching
/// `ClientT` trait and `rpc_params!` macro.
#[cfg(feature = "jsonrpsee")]
pub use jsonrpsee;
#[cfg(feature = "transport")]
pub use oblivious::{ObliviousClient, ObliviousClientBuilder};
#[cfg(feature = "transport")]
pub use options::{DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_RETRIES};
pub use policy::Policy;
#[cfg(feature = "transport")]
pub use pool::PoolStats;
pub use shroud_ra_tls::{Measurements, Platform, TcbStatus, Verdict};
#[cfg(feature = "transport")]
pub use subscription::Subscription;
