//! `shroud-load`: the end-to-end load harness of DESIGN §8.
//!
//! One run on one machine, everything on loopback: a JSON-RPC upstream (in process, on its own
//! runtime), the release `shroud-gateway` in front of it (simulated TEE, real RA-TLS), and nginx
//! in front of it as a TLS-terminating reverse proxy. The same closed-loop generator drives
//!
//! * `direct`: the client calling the upstream itself (plain HTTP, the baseline);
//! * `gateway`: through the gateway over RA-TLS, attestation verified and pinned once per
//!   connection, keep-alive, `eth_getBalance` (never cached: every call reaches the upstream);
//! * `gateway-cached`: the same with `eth_chainId`, which the gateway answers from its cache;
//! * `nginx`: through nginx over TLS 1.3;
//! * `gateway-h3`: `gateway` over HTTP/3 (QUIC, the `[listen] h3` listener), same verifier,
//!
//! and, for the gateway, the cost of a new connection over TCP (TCP + TLS 1.3 + verification)
//! and over QUIC (QUIC's handshake + verification + HTTP/3's control streams), each with a fresh
//! verifier so that every handshake verifies the evidence in full,
//!
//! first on one connection (latency), then on many (throughput), and prints a Markdown report:
//! p50/p90/p99/p99.9 latency, requests per second, the relay overhead and the throughput ratio
//! against DESIGN §8's targets, and optionally the gateway's memory with many idle connections.
//!
//! ```sh
//! cargo build --release -p shroud-gateway -p shroud-benches --bin shroud-gateway --bin shroud-load
//! target/release/shroud-load
//! ```
#![forbid(unsafe_code)]

mod cpu;
mod drive;
mod nginx;
mod report;
mod upstream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rustls_pki_types::ServerName;
use shroud_ra_tls::Policy;
use shroud_ra_tls::tls::{AttestedServerVerifier, client_config, crypto_provider};

use shroud_benches::harness::error::LoadError;
use shroud_benches::harness::gateway;

use crate::drive::{Call, Endpoint, Phase, Target};
use crate::report::{IdleMemory, Report, Row};

/// What every request asks, unless cached: the balance of one account.
const GET_BALANCE: Call = Call {
    method: "eth_getBalance",
    params: r#"["0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1","latest"]"#,
};
/// What the gateway answers from its cache.
const CHAIN_ID: Call = Call {
    method: "eth_chainId",
    params: "[]",
};

/// The end-to-end load harness: direct upstream vs the gateway over RA-TLS vs nginx.
#[derive(Debug, Parser)]
#[command(name = "shroud-load", version)]
struct Args {
    /// The gateway binary (default: `shroud-gateway` beside this program, i.e. the same
    /// `target/release`).
    #[arg(long, value_name = "PATH")]
    gateway_bin: Option<PathBuf>,
    /// The nginx binary.
    #[arg(long, value_name = "PATH", default_value = "nginx")]
    nginx_bin: PathBuf,
    /// Targets to drive, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "direct,gateway,gateway-cached,nginx,gateway-h3"
    )]
    targets: Vec<TargetName>,
    /// Connections of the throughput phase (the latency phase uses one).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of load before each measured window.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Seconds of each measured window.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Times every target is driven in turn; its rounds are pooled.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Worker threads of the in-process upstream.
    #[arg(long, default_value_t = 2)]
    upstream_threads: usize,
    /// After the load phases, hold this many idle RA-TLS connections to the gateway and report
    /// its resident memory (needs `ulimit -n` above twice this number).
    #[arg(long, default_value_t = 0)]
    idle_connections: usize,
    /// New connections to the gateway, one after the other, timed over TCP and over QUIC.
    #[arg(long, default_value_t = 50)]
    handshakes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TargetName {
    Direct,
    Gateway,
    GatewayCached,
    Nginx,
    GatewayH3,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shroud-load: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            print!("{report}");
            // Figures with failed requests in them measure something else: say so, and fail.
            match report.failures() {
                0 => ExitCode::SUCCESS,
                failed => {
                    eprintln!(
                        "shroud-load: {failed} requests failed or targets answered nothing; the figures are not valid"
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            eprintln!("shroud-load: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<Report, LoadError> {
    if args.connections == 0 || args.duration == 0 || args.rounds == 0 || args.targets.is_empty() {
        return Err(LoadError::Usage(
            "--connections, --duration, --rounds and --targets must not be zero or empty".into(),
        ));
    }
    let wants = |name| args.targets.contains(&name);
    let upstream = upstream::Upstream::start(args.upstream_threads)?;
    // The h3 listener's UDP port is picked here (the gateway prints it after the lines the
    // harness reads): a port the OS just handed out and released, free for the gateway to bind.
    let h3_port = if wants(TargetName::GatewayH3) || args.handshakes > 0 {
        Some(free_udp_port()?)
    } else {
        None
    };
    let gateway = if wants(TargetName::Gateway)
        || wants(TargetName::GatewayCached)
        || wants(TargetName::GatewayH3)
        || args.idle_connections > 0
    {
        Some(
            gateway::Gateway::start(
                &gateway_binary(args)?,
                &gateway_config(upstream.addr(), h3_port),
            )
            .await?,
        )
    } else {
        None
    };
    let nginx = if wants(TargetName::Nginx) {
        Some(nginx::Nginx::start(&args.nginx_bin, upstream.addr())?)
    } else {
        None
    };

    let attested = match &gateway {
        Some(gateway) => Some(attested_endpoint(gateway)?),
        None => None,
    };
    let mut targets = Vec::new();
    for name in &args.targets {
        let target = match (name, &attested, &nginx) {
            (TargetName::Direct, _, _) => Target {
                name: "direct",
                endpoint: Endpoint::Plain {
                    addr: upstream.addr(),
                },
                path: "/",
                call: GET_BALANCE,
            },
            (TargetName::Gateway, Some(endpoint), _) => Target {
                name: "gateway",
                endpoint: endpoint.clone(),
                path: "/eth",
                call: GET_BALANCE,
            },
            (TargetName::GatewayCached, Some(endpoint), _) => Target {
                name: "gateway-cached",
                endpoint: endpoint.clone(),
                path: "/eth",
                call: CHAIN_ID,
            },
            (TargetName::GatewayH3, Some(_), _) => match (&gateway, h3_port) {
                (Some(gateway), Some(port)) => Target {
                    name: "gateway-h3",
                    endpoint: quic_endpoint(gateway, port)?,
                    path: "/eth",
                    call: GET_BALANCE,
                },
                _ => continue,
            },
            (TargetName::Nginx, _, Some(nginx)) => Target {
                name: "nginx",
                endpoint: tls_endpoint(nginx)?,
                path: "/eth",
                call: GET_BALANCE,
            },
            _ => continue,
        };
        targets.push(target);
    }

    let mut report = Report::new(args.connections, std::env::args().collect());
    // Rounds go over every target in turn, so that a slow spell of the machine (another
    // process, a noisy neighbour) falls on all of them rather than on one; a target's rounds
    // are pooled into its row.
    for (round, connections) in (1..=args.rounds)
        .flat_map(|round| [1, args.connections].map(|connections| (round, connections)))
    {
        let phase = Phase {
            connections,
            warmup: Duration::from_secs(args.warmup),
            measure: Duration::from_secs(args.duration),
        };
        for target in &targets {
            eprintln!(
                "shroud-load: round {round}/{}: {} on {connections} connection(s): {} s warm-up, {} s measured",
                args.rounds, target.name, args.warmup, args.duration
            );
            let proxy = match target.name {
                "gateway" | "gateway-cached" | "gateway-h3" => {
                    gateway.as_ref().and_then(gateway::Gateway::pid)
                }
                "nginx" => nginx.as_ref().map(nginx::Nginx::pid),
                _ => None,
            };
            let cpu_before = proxy.and_then(cpu::process_tree);
            let outcome = drive::run(target, phase).await?;
            let proxy_cpu = match (cpu_before, proxy.and_then(cpu::process_tree)) {
                (Some(before), Some(after)) => Some(after.saturating_sub(before)),
                _ => None,
            };
            report.add(Row {
                target: target.name,
                call: target.call.method,
                connections,
                outcome,
                proxy_cpu,
            })?;
        }
    }

    if let (Some(gateway), Some(port)) = (&gateway, h3_port)
        && args.handshakes > 0
    {
        eprintln!(
            "shroud-load: {} new connections to the gateway over TCP, then over QUIC",
            args.handshakes
        );
        let tcp =
            drive::handshakes("gateway", args.handshakes, || attested_endpoint(gateway)).await?;
        let quic = drive::handshakes("gateway-h3", args.handshakes, || {
            quic_endpoint(gateway, port)
        })
        .await?;
        report.handshakes = vec![
            ("TCP + TLS 1.3 (RA-TLS verified)", tcp),
            ("QUIC + TLS 1.3 (RA-TLS verified) + HTTP/3 set-up", quic),
        ];
    }

    if let (Some(gateway), Some(endpoint)) = (&gateway, &attested)
        && args.idle_connections > 0
    {
        eprintln!(
            "shroud-load: opening {} idle RA-TLS connections to the gateway",
            args.idle_connections
        );
        let before = gateway.rss_kib();
        let idle = drive::open_idle(endpoint, args.idle_connections, 64).await?;
        // Let the gateway's tasks settle into their idle state before reading its memory.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = gateway.rss_kib();
        report.idle = Some(IdleMemory {
            connections: idle.len(),
            before_kib: before,
            after_kib: after,
        });
        drop(idle);
    }
    Ok(report)
}

/// Chain `eth` in front of the upstream. Rate limiting is off (one client makes all the calls)
/// and the connection and idle limits leave room for the idle-connection measurement (10 000
/// idle plus the load's connections; more would not fit a 20 000-descriptor limit, which the
/// gateway checks at start);
/// everything else is at its default.
fn gateway_config(upstream: std::net::SocketAddr, h3_port: Option<u16>) -> String {
    let h3 = h3_port.map_or_else(String::new, |port| format!("h3 = \"127.0.0.1:{port}\"\n"));
    format!(
        r#"[listen]
https = "127.0.0.1:0"
metrics = "127.0.0.1:0"
{h3}
[tee]
platform = "simulated"

[limits]
rate_limit_per_second = 0
max_connections = 12000
max_connections_per_client = 12000
header_read_timeout_ms = 600000

[[chain]]
name = "eth"
upstreams = [{{ url = "http://{upstream}/", max_concurrent = 1024 }}]
"#
    )
}

fn gateway_binary(args: &Args) -> Result<PathBuf, LoadError> {
    if let Some(path) = &args.gateway_bin {
        return Ok(path.clone());
    }
    let me = std::env::current_exe()
        .map_err(|e| LoadError::io("finding this program's directory", e))?;
    Ok(me.with_file_name("shroud-gateway"))
}

/// The SDK's RA-TLS client configuration (attestation verified in the handshake, pinned to the
/// gateway's simulated measurement), offering only HTTP/1.1 like the other targets.
fn attested_endpoint(gateway: &gateway::Gateway) -> Result<Endpoint, LoadError> {
    let usage = |e: &dyn std::fmt::Display| LoadError::Usage(e.to_string());
    let policy = Policy::from_pins([format!("simulated:measurement={}", gateway.measurement())])
        .map_err(|e| usage(&e))?;
    let verifier = AttestedServerVerifier::new(policy).danger_allow_simulated(true);
    let config = client_config(Arc::new(verifier), &[b"http/1.1"]).map_err(|e| usage(&e))?;
    Ok(Endpoint::Tls {
        addr: gateway.addr(),
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        server_name: ServerName::from(gateway.addr().ip()),
    })
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_udp_port() -> Result<u16, LoadError> {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| LoadError::io("finding a free UDP port for the h3 listener", e))
}

/// The SDK's attested verifier (a new one, so no cached verdict) inside a QUIC handshake to the
/// gateway's h3 listener on `port`, ALPN `h3`; resumption and 0-RTT off as in the SDK.
fn quic_endpoint(gateway: &gateway::Gateway, port: u16) -> Result<Endpoint, LoadError> {
    let usage = |e: &dyn std::fmt::Display| LoadError::Usage(e.to_string());
    let policy = Policy::from_pins([format!("simulated:measurement={}", gateway.measurement())])
        .map_err(|e| usage(&e))?;
    let verifier = AttestedServerVerifier::new(policy).danger_allow_simulated(true);
    let tls = client_config(Arc::new(verifier), &[b"h3"]).map_err(|e| usage(&e))?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| usage(&e))?;
    let config = quinn::ClientConfig::new(Arc::new(crypto));
    let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into())
        .map_err(|e| LoadError::io("binding the QUIC client", e))?;
    Ok(Endpoint::Quic {
        addr: std::net::SocketAddr::new(gateway.addr().ip(), port),
        endpoint,
        config,
    })
}

/// rustls (the same provider as the SDK) trusting nginx's self-signed certificate.
fn tls_endpoint(nginx: &nginx::Nginx) -> Result<Endpoint, LoadError> {
    let usage = |e: &dyn std::fmt::Display| LoadError::Usage(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(nginx.certificate().clone())
        .map_err(|e| usage(&e))?;
    let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| usage(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Endpoint::Tls {
        addr: nginx.addr(),
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        server_name: ServerName::try_from("localhost").map_err(|e| usage(&e))?,
    })
}
