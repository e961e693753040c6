//! `shroud-host`: what runs on a Nitro Enclave's parent instance, outside the trust boundary
//! (DESIGN §2, §6, §9). `ingress` pipes public TCP to the enclave with PROXY v2 headers;
//! `egress` is the enclave's allow-listed way out. Neither sees a request: TLS ends inside the
//! enclave both ways. Both take `--unix PATH` in place of vsock (sidecars and tests).
#![forbid(unsafe_code)]

mod egress;
mod ingress;
mod io;
mod pipe;
mod preamble;
mod slots;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::sync::watch;

use crate::io::{Enclave, Listener, VsockAddr};
use crate::preamble::Destination;
use crate::slots::Slots;

/// Shroud's side of a Nitro Enclave on the parent instance (not measured, not trusted).
#[derive(Debug, Parser)]
#[command(name = "shroud-host", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pipe TCP connections to the enclave, each prefixed with a PROXY v2 header.
    Ingress {
        /// The public TCP address, e.g. 0.0.0.0:443.
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// The enclave's vsock address.
        #[arg(
            long,
            value_name = "CID:PORT",
            required_unless_present = "unix",
            conflicts_with = "unix"
        )]
        vsock: Option<VsockAddr>,
        /// The enclave's Unix socket, in place of vsock.
        #[arg(long, value_name = "PATH")]
        unix: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Let the enclave reach allow-listed destinations, and nothing else.
    Egress {
        /// The vsock port to listen on (every context id).
        #[arg(
            long,
            value_name = "PORT",
            required_unless_present = "unix",
            conflicts_with = "unix"
        )]
        vsock_port: Option<u32>,
        /// A Unix socket to listen on, in place of vsock.
        #[arg(long, value_name = "PATH")]
        unix: Option<PathBuf>,
        /// A destination the enclave may reach, HOST:PORT (repeat for each).
        #[arg(long = "allow", value_name = "HOST:PORT", required = true)]
        allow: Vec<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Debug, Args)]
struct LimitArgs {
    /// Most connections carried at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_connections: u32,
    /// Close a connection when neither side sent anything for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    idle_timeout: u64,
}

/// The timeouts of one side.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// Dialing (and, for egress, the preamble).
    connect: Duration,
    /// Neither way carried a byte.
    idle: Duration,
    /// Open connections may finish after a stop was asked.
    grace: Duration,
}

/// Resolves when a stop was asked (SIGINT or SIGTERM).
#[derive(Clone)]
struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Why `shroud-host` could not run.
#[derive(Debug, thiserror::Error)]
enum HostError {
    #[error("{0}")]
    Usage(String),
    #[error("listening on {what}: {source}")]
    Listen {
        what: String,
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into a journal or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ HostError::Usage(_)) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), HostError> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop.send(true);
    });
    let shutdown = Shutdown(stopped);
    match command {
        Command::Ingress {
            listen,
            vsock,
            unix,
            limits,
        } => {
            let enclave = match (vsock, unix) {
                (Some(addr), None) => Enclave::Vsock(addr),
                (None, Some(path)) => Enclave::Unix(path),
                _ => return Err(HostError::Usage("give --vsock or --unix".into())),
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|source| HostError::Listen {
                    what: listen.to_string(),
                    source,
                })?;
            tracing::info!(%listen, to = %enclave, "ingress ready");
            ingress::run(
                listener,
                enclave,
                Slots::new(limits.max_connections),
                timeouts(&limits),
                shutdown,
            )
            .await;
        }
        Command::Egress {
            vsock_port,
            unix,
            allow,
            limits,
        } => {
            let allow = allow
                .iter()
                .map(|target| {
                    target
                        .parse::<Destination>()
                        .map_err(|e| HostError::Usage(format!("--allow {target:?}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (listener, what) = match (vsock_port, &unix) {
                (Some(port), None) => (Listener::vsock(port), format!("vsock port {port}")),
                (None, Some(path)) => (Listener::unix(path), path.display().to_string()),
                _ => return Err(HostError::Usage("give --vsock-port or --unix".into())),
            };
            let listener = listener.map_err(|source| HostError::Listen {
                what: what.clone(),
                source,
            })?;
            tracing::info!(listen = %what, allowed = allow.len(), "egress ready");
            egress::run(
                listener,
                allow,
                Slots::new(limits.max_connections),
                timeouts(&limits),
                shutdown,
            )
            .await;
        }
    }
    Ok(())
}

fn timeouts(limits: &LimitArgs) -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        idle: Duration::from_secs(limits.idle_timeout.max(1)),
        grace: Duration::from_secs(10),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
