//! `shroud-load`: the end-to-end load harness of DESIGN §8.
//!
//! One run on one machine, everything on loopback: a JSON-RPC upstream (in process, on its own
//! runtime), the release `shroud-gateway` in front of it (simulated TEE, real RA-TLS), and two
//! yardsticks in front of it as TLS-terminating reverse proxies, nginx and HAProxy. The same
//! closed-loop generator drives
//!
//! * `direct`: the client calling the upstream itself (plain HTTP, the baseline);
//! * `gateway`: through the gateway over RA-TLS, attestation verified and pinned once per
//!   connection, keep-alive, `eth_getBalance` (never cached: every call reaches the upstream);
//! * `gateway-cached`: the same with `eth_chainId`, which the gateway answers from its cache;
//! * `nginx`, `haproxy`: through nginx, through HAProxy, over TLS 1.3;
//! * `gateway-h3`: `gateway` over HTTP/3 (QUIC, the `[listen] h3` listener), same verifier;
//! * `direct-h2`, `gateway-h2`, `nginx-h2`, `haproxy-h2`: the same over HTTP/2 (ALPN `h2`;
//!   cleartext with prior knowledge for `direct-h2`), several streams on each connection,
//!
//! and, for the gateway, the cost of a new connection over TCP (TCP + TLS 1.3 + verification)
//! and over QUIC (QUIC's handshake + verification + HTTP/3's control streams), each with a fresh
//! verifier so that every handshake verifies the evidence in full,
//!
//! first on one connection (latency; not the HTTP/2 targets), then on many (throughput: 32
//! connections, or 4 HTTP/2 connections × 8 streams, the same 32 requests in flight), and
//! prints a Markdown report: p50/p90/p99/p99.9 latency, requests per second, the proxies' CPU
//! per request, the relay overhead and the throughput ratios against DESIGN §8's targets, and
//! optionally the gateway's memory with many idle connections.
//!
//! ```sh
//! cargo build --release -p shroud-gateway -p shroud-benches --bin shroud-gateway --bin shroud-load
//! target/release/shroud-load
//! ```
#![forbid(unsafe_code)]

mod cpu;
mod drive;
mod endpoints;
mod haproxy;
mod nginx;
mod proxy;
mod report;
mod upstream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use shroud_benches::harness::error::LoadError;
use shroud_benches::harness::gateway::Gateway;

use crate::drive::{Call, Endpoint, Http, Phase, Target};
use crate::proxy::Proxy;
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

/// The end-to-end load harness: direct upstream vs the gateway over RA-TLS vs nginx and
/// HAProxy, over HTTP/1.1 and HTTP/2.
#[derive(Debug, Parser)]
#[command(name = "shroud-load", version)]
struct Args {
    /// The gateway binary (default: `shroud-gateway` beside this program, i.e. the same
    /// `target/release`).
    #[arg(long, value_name = "PATH")]
    gateway_bin: Option<PathBuf>,
    /// The nginx binary (looked up on PATH, then in /usr/sbin).
    #[arg(long, value_name = "PATH", default_value = "nginx")]
    nginx_bin: PathBuf,
    /// The HAProxy binary (looked up on PATH, then in /usr/sbin).
    #[arg(long, value_name = "PATH", default_value = "haproxy")]
    haproxy_bin: PathBuf,
    /// Targets to drive, comma-separated, in this order [default: all, in the order listed
    /// below, leaving out nginx's or HAProxy's when its binary is not found; named here, a
    /// missing one is an error].
    #[arg(long, value_delimiter = ',', value_name = "TARGETS")]
    targets: Option<Vec<TargetName>>,
    /// Connections of the HTTP/1.1 and HTTP/3 throughput phase (the latency phase uses one).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Connections of the HTTP/2 throughput phase.
    #[arg(long, default_value_t = 4)]
    h2_connections: usize,
    /// Concurrent streams on each HTTP/2 connection, one request in flight on each (HAProxy
    /// allows 100 per connection, nginx 128).
    #[arg(long, default_value_t = 8)]
    h2_streams: usize,
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

/// The targets, in their default order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetName {
    /// The upstream itself, plain HTTP/1.1: the baseline.
    Direct,
    /// The gateway over RA-TLS, HTTP/1.1, `eth_getBalance` (never cached).
    Gateway,
    /// The gateway over RA-TLS, HTTP/1.1, `eth_chainId` (answered from its cache).
    GatewayCached,
    /// nginx over TLS 1.3, HTTP/1.1.
    Nginx,
    /// HAProxy over TLS 1.3, HTTP/1.1.
    Haproxy,
    /// The gateway over HTTP/3 on QUIC (its `[listen] h3` listener).
    GatewayH3,
    /// The upstream itself over cleartext HTTP/2 (prior knowledge), multiplexed.
    DirectH2,
    /// The gateway over RA-TLS, HTTP/2, multiplexed.
    GatewayH2,
    /// nginx over TLS 1.3, HTTP/2, multiplexed.
    NginxH2,
    /// HAProxy over TLS 1.3, HTTP/2, multiplexed.
    HaproxyH2,
}

/// The reverse proxies the gateway is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Yardstick {
    Nginx,
    Haproxy,
}

impl TargetName {
    /// Its name in the report.
    fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Gateway => "gateway",
            Self::GatewayCached => "gateway-cached",
            Self::Nginx => "nginx",
            Self::Haproxy => "haproxy",
            Self::GatewayH3 => "gateway-h3",
            Self::DirectH2 => "direct-h2",
            Self::GatewayH2 => "gateway-h2",
            Self::NginxH2 => "nginx-h2",
            Self::HaproxyH2 => "haproxy-h2",
        }
    }

    /// Over HTTP/2, driven multiplexed in the throughput phase only.
    fn http2(self) -> bool {
        matches!(
            self,
            Self::DirectH2 | Self::GatewayH2 | Self::NginxH2 | Self::HaproxyH2
        )
    }

    fn yardstick(self) -> Option<Yardstick> {
        match self {
            Self::Nginx | Self::NginxH2 => Some(Yardstick::Nginx),
            Self::Haproxy | Self::HaproxyH2 => Some(Yardstick::Haproxy),
            _ => None,
        }
    }

    fn gateway(self) -> bool {
        matches!(
            self,
            Self::Gateway | Self::GatewayCached | Self::GatewayH3 | Self::GatewayH2
        )
    }
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

/// What a run started, for building its targets; the proxies stop before their upstream.
struct Running {
    gateway: Option<Gateway>,
    h3_port: Option<u16>,
    nginx: Option<Proxy>,
    haproxy: Option<Proxy>,
    upstream: upstream::Upstream,
}

async fn run(args: &Args) -> Result<Report, LoadError> {
    if args.connections == 0
        || args.h2_connections == 0
        || args.h2_streams == 0
        || args.duration == 0
        || args.rounds == 0
    {
        return Err(LoadError::Usage(
            "--connections, --h2-connections, --h2-streams, --duration and --rounds must not be zero"
                .into(),
        ));
    }
    let names = target_names(args)?;
    let wants = |check: fn(TargetName) -> bool| names.iter().any(|name| check(*name));
    let upstream = upstream::Upstream::start(args.upstream_threads)?;
    // The yardsticks first: a missing binary ends the run before the gateway is started.
    let nginx = if wants(|name| name.yardstick() == Some(Yardstick::Nginx)) {
        Some(nginx::start(&args.nginx_bin, upstream.addr())?)
    } else {
        None
    };
    let haproxy = if wants(|name| name.yardstick() == Some(Yardstick::Haproxy)) {
        Some(haproxy::start(&args.haproxy_bin, upstream.addr())?)
    } else {
        None
    };
    // The h3 listener's UDP port is picked here (the gateway prints it after the lines the
    // harness reads): a port the OS just handed out and released, free for the gateway to bind.
    let h3_port = if wants(|name| name == TargetName::GatewayH3) || args.handshakes > 0 {
        Some(endpoints::free_udp_port()?)
    } else {
        None
    };
    let gateway = if wants(TargetName::gateway) || args.idle_connections > 0 {
        Some(
            Gateway::start(
                &gateway_binary(args)?,
                &gateway_config(upstream.addr(), h3_port),
            )
            .await?,
        )
    } else {
        None
    };
    let running = Running {
        gateway,
        h3_port,
        nginx,
        haproxy,
        upstream,
    };
    let mut targets = Vec::new();
    for name in names {
        if let Some(target) = target(name, &running)? {
            targets.push((name, target));
        }
    }

    let mut report = Report::new(
        args.connections,
        (args.h2_connections, args.h2_streams),
        std::env::args().collect(),
    );
    // Rounds go over every target in turn, so that a slow spell of the machine (another
    // process, a noisy neighbour) falls on all of them rather than on one; a target's rounds
    // are pooled into its row. HTTP/2 is measured multiplexed only (one stream on one
    // connection is HTTP/1.1's latency phase with other framing).
    for round in 1..=args.rounds {
        for throughput in [false, true] {
            for (name, target) in &targets {
                let (connections, streams) = match (throughput, name.http2()) {
                    (false, false) => (1, 1),
                    (false, true) => continue,
                    (true, false) => (args.connections, 1),
                    (true, true) => (args.h2_connections, args.h2_streams),
                };
                let phase = Phase {
                    connections,
                    streams,
                    warmup: Duration::from_secs(args.warmup),
                    measure: Duration::from_secs(args.duration),
                };
                let streams_note = if streams > 1 {
                    format!(" × {streams} streams")
                } else {
                    String::new()
                };
                eprintln!(
                    "shroud-load: round {round}/{}: {} on {connections} connection(s){streams_note}: {} s warm-up, {} s measured",
                    args.rounds, target.name, args.warmup, args.duration
                );
                let meter = cpu::Meter::start(target.proxy);
                let outcome = drive::run(target, phase).await?;
                report.add(Row {
                    target: target.name,
                    call: target.call.method,
                    connections,
                    streams,
                    outcome,
                    proxy_cpu: meter.stop(),
                })?;
            }
        }
    }

    if let (Some(gateway), Some(port)) = (&running.gateway, running.h3_port)
        && args.handshakes > 0
    {
        eprintln!(
            "shroud-load: {} new connections to the gateway over TCP, then over QUIC",
            args.handshakes
        );
        let tcp = drive::handshakes("gateway", args.handshakes, || {
            endpoints::attested(gateway, Http::One)
        })
        .await?;
        let quic = drive::handshakes("gateway-h3", args.handshakes, || {
            endpoints::quic(gateway, port)
        })
        .await?;
        report.handshakes = vec![
            ("TCP + TLS 1.3 (RA-TLS verified)", tcp),
            ("QUIC + TLS 1.3 (RA-TLS verified) + HTTP/3 set-up", quic),
        ];
    }

    if let Some(gateway) = &running.gateway
        && args.idle_connections > 0
    {
        eprintln!(
            "shroud-load: opening {} idle RA-TLS connections to the gateway",
            args.idle_connections
        );
        let endpoint = endpoints::attested(gateway, Http::One)?;
        let before = gateway.rss_kib();
        let mut idle = drive::open_idle(&endpoint, args.idle_connections, 64).await?;
        // Let the gateway's tasks settle into their idle state before reading its memory.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = gateway.rss_kib();
        // The same connections once each has made a call (answered from the cache) and waits
        // for its next one, as a wallet's keep-alive connection does.
        drive::call_each(&endpoint, CHAIN_ID, &mut idle).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after_call = gateway.rss_kib();
        report.idle = Some(IdleMemory {
            connections: idle.len(),
            before_kib: before,
            after_kib: after,
            after_call_kib: after_call,
        });
        drop(idle);
    }
    Ok(report)
}

/// `--targets`, or every target whose binaries are there.
fn target_names(args: &Args) -> Result<Vec<TargetName>, LoadError> {
    if let Some(names) = &args.targets {
        if names.is_empty() {
            return Err(LoadError::Usage("--targets must not be empty".into()));
        }
        return Ok(names.clone());
    }
    let mut names = TargetName::value_variants().to_vec();
    for (yardstick, binary, name) in [
        (Yardstick::Nginx, &args.nginx_bin, "nginx"),
        (Yardstick::Haproxy, &args.haproxy_bin, "haproxy"),
    ] {
        if proxy::locate(binary).is_none() {
            eprintln!(
                "shroud-load: {} not found: leaving out the {name} targets (install it: apt-get install {name}; or pass --{name}-bin PATH)",
                binary.display()
            );
            names.retain(|name| name.yardstick() != Some(yardstick));
        }
    }
    Ok(names)
}

/// How to reach `name` in this run, and whose CPU it is charged; `None` when what it needs was
/// not started.
fn target(name: TargetName, running: &Running) -> Result<Option<Target>, LoadError> {
    let http = if name.http2() { Http::Two } else { Http::One };
    let yardstick = |proxy: &Option<Proxy>| -> Result<Option<(Endpoint, Option<u32>)>, LoadError> {
        proxy
            .as_ref()
            .map(|proxy| Ok((endpoints::proxy(proxy, http)?, Some(proxy.pid()))))
            .transpose()
    };
    let reached = match name {
        TargetName::Direct => Some((
            Endpoint::Plain {
                addr: running.upstream.addr(),
                http,
            },
            None,
        )),
        TargetName::DirectH2 => Some((
            Endpoint::Plain {
                addr: running.upstream.h2c_addr(),
                http,
            },
            None,
        )),
        TargetName::Gateway | TargetName::GatewayCached | TargetName::GatewayH2 => running
            .gateway
            .as_ref()
            .map(|gateway| Ok((endpoints::attested(gateway, http)?, gateway.pid())))
            .transpose()?,
        TargetName::GatewayH3 => match (&running.gateway, running.h3_port) {
            (Some(gateway), Some(port)) => Some((endpoints::quic(gateway, port)?, gateway.pid())),
            _ => None,
        },
        TargetName::Nginx | TargetName::NginxH2 => yardstick(&running.nginx)?,
        TargetName::Haproxy | TargetName::HaproxyH2 => yardstick(&running.haproxy)?,
    };
    Ok(reached.map(|(endpoint, proxy)| Target {
        name: name.name(),
        endpoint,
        path: if matches!(name, TargetName::Direct | TargetName::DirectH2) {
            "/"
        } else {
            "/eth"
        },
        call: if name == TargetName::GatewayCached {
            CHAIN_ID
        } else {
            GET_BALANCE
        },
        proxy,
    }))
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
