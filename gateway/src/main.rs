//! `shroud-gateway`: parse arguments, load the configuration, bind, serve.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use shroud_gateway::config::{DEFAULT_HTTPS_LISTEN, DEFAULT_METRICS_LISTEN};
use shroud_gateway::{Config, Gateway, GatewayError};

/// `EX_USAGE`: bad arguments or configuration.
const EXIT_USAGE: u8 = 64;

/// Shroud gateway: an end-to-end encrypted JSON-RPC relay terminating RA-TLS inside a TEE.
#[derive(Debug, Parser)]
#[command(name = "shroud-gateway", version)]
struct Args {
    /// The TOML configuration file.
    #[arg(
        long,
        env = "SHROUD_CONFIG",
        value_name = "FILE",
        required_unless_present = "dev"
    )]
    config: Option<PathBuf>,
    /// Development mode: simulated TEE (INSECURE, not attested), configuration from the flags.
    #[arg(long)]
    dev: bool,
    /// A chain upstream in --dev mode, NAME=URL; repeat for more upstreams or chains.
    #[arg(long = "upstream", value_name = "NAME=URL", requires = "dev")]
    upstreams: Vec<String>,
    /// The RA-TLS listen address in --dev mode, IP:PORT.
    #[arg(long, value_name = "ADDR", requires = "dev", value_parser = ip_port)]
    listen: Option<SocketAddr>,
    /// In --dev mode, also serve HTTP/3 over QUIC on this UDP address, IP:PORT (`[listen] h3`).
    #[arg(long = "h3-listen", value_name = "ADDR", requires = "dev", value_parser = ip_port)]
    h3_listen: Option<SocketAddr>,
    /// The metrics listen address in --dev mode, IP:PORT.
    #[arg(long = "metrics-listen", value_name = "ADDR", requires = "dev", value_parser = ip_port)]
    metrics_listen: Option<SocketAddr>,
    /// JSON-RPC calls per second per client in --dev mode (bursts of twice that); 0 turns
    /// rate limiting off.
    #[arg(long = "rate-limit", value_name = "PER_SEC", requires = "dev")]
    rate_limit: Option<u32>,
}

fn main() -> ExitCode {
    shroud_ra_tls::tls::install_process_default();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            if error.kind() == clap::error::ErrorKind::MissingRequiredArgument {
                eprintln!(
                    "\nTo try it without a TEE: shroud-gateway --dev --upstream eth=https://NODE_URL \
                     (simulated attestation, INSECURE, development only)."
                );
            }
            return if error.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: not in journald, files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let config = match load_config(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("shroud-gateway: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shroud-gateway: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shroud-gateway: {error}");
            if error.is_usage_error() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn load_config(args: &Args) -> Result<Config, shroud_gateway::ConfigError> {
    if args.dev {
        if args.config.is_some() {
            tracing::warn!("--dev given: ignoring --config / SHROUD_CONFIG");
        }
        let upstreams = args
            .upstreams
            .iter()
            .map(|arg| Config::parse_dev_upstream(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let mut config = Config::dev(
            upstreams,
            args.listen.unwrap_or(DEFAULT_HTTPS_LISTEN),
            args.metrics_listen.unwrap_or(DEFAULT_METRICS_LISTEN),
        );
        config.listen.h3 = args.h3_listen;
        if let Some(rate) = args.rate_limit {
            config.limits.rate_limit_per_second = rate;
            config.limits.rate_limit_burst = rate.saturating_mul(2);
        }
        config.validate()?;
        return Ok(config);
    }
    match &args.config {
        Some(path) => Config::from_file(path),
        // clap enforces `--config` unless `--dev`; this is the belt to its braces.
        None => Err(shroud_gateway::ConfigError::Parse(
            "no configuration: give --config FILE (or SHROUD_CONFIG) or --dev".to_owned(),
        )),
    }
}

async fn serve(config: Config) -> Result<(), GatewayError> {
    let gateway = Gateway::bind(config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "shroud-gateway listening on https://{}",
        gateway.https_addr()
    )?;
    writeln!(
        stdout,
        "measurement: {} {}",
        gateway.platform(),
        gateway.measurement_hex()
    )?;
    // Ready to paste into `shroud attest|call|proxy` (after the two lines DESIGN §6 fixes).
    let pins = gateway.pins();
    if !pins.is_empty() {
        let pins: Vec<String> = pins.iter().map(|pin| format!("--pin {pin}")).collect();
        writeln!(stdout, "pin: {}", pins.join(" "))?;
    }
    // The UDP port may differ from the TCP one (port 0): say where QUIC clients go.
    if let Some(h3) = gateway.h3_addr() {
        writeln!(stdout, "h3 listening on https://{h3} (QUIC, UDP)")?;
    }
    stdout.flush()?;
    drop(stdout);
    tracing::info!(metrics = %gateway.metrics_addr(), "metrics listening");
    if let Some(cluster) = gateway.cluster_addr() {
        tracing::info!(%cluster, "cluster listening (mutual RA-TLS between replicas)");
    }
    gateway.run(shutdown_signal()).await
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
}

/// An `IP:PORT` argument; a host name is refused with a message that says what is expected.
fn ip_port(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("expected IP:PORT, e.g. 127.0.0.1:8443 or [::1]:8443 (not a host name): {text:?}")
    })
}
