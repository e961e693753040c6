//! The gateway's half of the test harness (`shroud_testkit::gateway`): how to start a gateway,
//! in process or the binary, and the RA-TLS client that pins its simulated measurement.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::SocketAddr;
use std::sync::Arc;

use shroud_gateway::{Config, Gateway};
use shroud_ra_tls::Policy;
use shroud_ra_tls::tls::{AttestedServerVerifier, RotatingCertResolver, client_config};
#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub use shroud_testkit::gateway::{Reply, eventually, get, peer_certificate, post_json};
use shroud_testkit::gateway::{Started, simulated_pin};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A gateway under test; `resolver` is `None` for the binary.
pub type TestGateway = shroud_testkit::gateway::TestGateway<Option<Arc<RotatingCertResolver>>>;

/// `shroud-gateway`, built by Cargo for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_shroud-gateway");

/// How the gateway's tests start a [`TestGateway`].
pub trait StartGateway: Sized {
    /// Starts a `--dev` gateway on loopback port 0 with `upstreams` (`(chain, url)`).
    async fn start(upstreams: Vec<(String, String)>) -> Self;
    /// Starts a gateway with `config` (whose listeners should be on loopback port 0).
    async fn start_config(config: Config) -> Self;
    /// Starts a gateway with one chain `eth` served by `url`.
    async fn with_eth(url: String) -> Self;
    /// Starts the binary with the TOML `config`, `shell` run first (see `TestGateway::spawn`).
    async fn spawn_binary(config: &str, shell: &str) -> Self;
}

impl StartGateway for TestGateway {
    async fn start(upstreams: Vec<(String, String)>) -> Self {
        Self::start_config(dev_config(upstreams)).await
    }

    async fn start_config(config: Config) -> Self {
        let gateway = Gateway::bind(config).await.expect("gateway binds");
        let started = Started {
            addr: gateway.https_addr(),
            metrics_addr: gateway.metrics_addr(),
            measurement: gateway.measurement_hex(),
            resolver: Some(gateway.resolver()),
            client_tls,
        };
        Self::in_process(started, |stop| gateway.run(stop))
    }

    async fn with_eth(url: String) -> Self {
        Self::start(vec![("eth".to_owned(), url)]).await
    }

    async fn spawn_binary(config: &str, shell: &str) -> Self {
        Self::spawn(BIN, config, shell, client_tls).await
    }
}

/// The `--dev` configuration on loopback port 0.
pub fn dev_config(upstreams: Vec<(String, String)>) -> Config {
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Config::dev(upstreams, loopback, loopback)
}

/// The RA-TLS verifier pinned to `pin`, simulated evidence allowed.
pub fn verifier(pin: &str) -> Arc<AttestedServerVerifier> {
    Arc::new(
        AttestedServerVerifier::new(Policy::from_pins([pin]).unwrap()).danger_allow_simulated(true),
    )
}

/// The RA-TLS client configuration pinned to the simulated `measurement` (hex).
fn client_tls(measurement: &str) -> rustls::ClientConfig {
    client_config(verifier(&simulated_pin(measurement)), &[]).unwrap()
}

/// Connects to `addr` over RA-TLS pinned to `pin`.
pub async fn connect(addr: SocketAddr, pin: &str, alpn: &[u8]) -> TlsStream<TcpStream> {
    let tls = client_config(verifier(pin), &[]).unwrap();
    shroud_testkit::gateway::connect(addr, tls, alpn).await
}
