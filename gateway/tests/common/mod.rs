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

/// Debian's `haproxy`, if installed; `None` (with a "skipped" line) otherwise, unless
/// `SHROUD_REQUIRE_HAPROXY=1` (which `.ci/run` sets), which makes its absence a failure.
pub fn haproxy() -> Option<String> {
    let found = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .map(str::to_owned);
    if found.is_none() {
        assert!(
            std::env::var("SHROUD_REQUIRE_HAPROXY").as_deref() != Ok("1"),
            "SHROUD_REQUIRE_HAPROXY=1 but haproxy is not installed"
        );
        println!("skipped: haproxy not installed (apt-get install haproxy)");
    }
    found
}

/// A running haproxy: TCP mode, round robin over `servers`, each connection preceded by a
/// PROXY v2 header. Killed on drop.
pub struct Haproxy {
    /// The frontend's address.
    pub front: SocketAddr,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts `haproxy` (the binary) in front of `servers`; returns once it accepts.
    pub async fn start(haproxy: &str, servers: &[SocketAddr]) -> Haproxy {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let front: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("haproxy.cfg");
        let backends: String = servers
            .iter()
            .enumerate()
            .map(|(i, server)| format!("  server gw{i} {server} send-proxy-v2\n"))
            .collect();
        std::fs::write(
            &config,
            format!(
                "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
                 frontend shroud\n  bind {front}\n  default_backend gateways\n\
                 backend gateways\n  balance roundrobin\n{backends}"
            ),
        )
        .unwrap();
        let child = tokio::process::Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let up = eventually(std::time::Duration::from_secs(10), || async {
            TcpStream::connect(front).await.is_ok()
        })
        .await;
        assert!(up, "haproxy listens on {front}");
        Haproxy {
            front,
            _child: child,
            _dir: dir,
        }
    }
}
