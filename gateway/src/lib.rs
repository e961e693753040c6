//! Shroud gateway: terminates RA-TLS inside the TEE and relays JSON-RPC to upstream node
//! providers without anything that identifies the client (DESIGN §5).
//!
//! Shape of the crate:
//!
//! * [`config`]: the TOML configuration and `--dev`;
//! * [`Gateway`]: issues the attested certificate, binds the RA-TLS and metrics listeners and
//!   serves them until shut down;
//! * `routes`: the HTTP routes; `pipeline/{parse,policy,strip,cache,select,forward,restore,
//!   respond}`: the relay, where only a canonical `SanitizedCall` can reach the cache and
//!   `forward`;
//! * `upstream`: the pooled client shared by every user, upstream health and the health
//!   checker; `ratelimit`: per-client limits on a keyed hash of the address; `metrics`: the
//!   Prometheus families and the metrics listener; `tls`: attester, issuing and rotation;
//! * `subscriptions`: WebSocket connections and `eth_subscribe`, served by one chain follower
//!   per chain.
#![forbid(unsafe_code)]

mod acme;
mod admin;
mod admission;
mod attestation;
mod body;
mod certs;
mod cluster;
mod collateral;
pub mod config;
mod descriptors;
mod egress;
mod error;
mod first_byte;
mod gateway;
mod metrics;
mod ohttp;
mod paths;
#[doc(hidden)]
pub mod pipeline;
mod proxy_header;
mod quic;
mod ratelimit;
mod request_body;
mod routes;
mod settings;
mod shutdown;
mod state;
mod subscriptions;
mod tls;
mod transport;
mod upstream;
mod workers;

pub use config::{Config, ConfigError};
pub use error::GatewayError;
pub use gateway::Gateway;
pub use tls::INSECURE_WARNING;
