//! Shroud gateway: terminates RA-TLS inside the TEE and relays JSON-RPC to upstream node
//! providers without anything that identifies the client (DESIGN §5).
//!
//! Shape of the crate:
//!
//! * [`config`]: the TOML configuration and `--dev`;
//! * [`Gateway`]: issues the attested certificate, binds the RA-TLS and metrics listeners and
//!   serves them until shut down;
//! * `routes`: the HTTP routes; `pipeline/{parse,forward,respond}`: the relay, where only a
//!   canonical `SanitizedCall` can reach `forward`;
//! * `upstream`: the pooled client shared by every user; `tls`: attester, issuing and rotation.
#![forbid(unsafe_code)]

pub mod config;
mod error;
mod gateway;
mod metrics;
mod pipeline;
mod routes;
mod tls;
mod upstream;

pub use config::{Config, ConfigError};
pub use error::GatewayError;
pub use gateway::Gateway;
pub use tls::INSECURE_WARNING;
