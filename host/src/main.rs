//! `shroud-host`: what runs on a Nitro Enclave's parent instance, outside the trust boundary
//! (DESIGN §2, §6, §9). `ingress` pipes public TCP to the enclave with PROXY v2 headers;
//! `egress` is the enclave's allow-listed way out. Neither sees a request: TLS ends inside the
//! enclave both ways. Both take `--unix PATH` in place of vsock (sidecars and tests).
#![forbid(unsafe_code)]

mod cli;
mod egress;
mod ingress;
mod io;
mod pipe;
mod preamble;
mod shutdown;
mod slots;
mod timeouts;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::io::{Enclave, Listener};
use crate::shutdown::Shutdown;
use crate::slots::Slots;

/// Why `shroud-host` could not run.
#[derive(Debug, thiserror::Error)]
enum HostError {
    #[error("{0}")]
    Usage(&'static str),
    #[error("the async runtime did not start: {0}")]
    Runtime(std::io::Error),
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
    let ran = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(HostError::Runtime)
        .and_then(|runtime| runtime.block_on(run(cli.command)));
    match ran {
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
    let shutdown = Shutdown::on_signal();
    match command {
        Command::Ingress {
            listen,
            vsock,
            unix,
            limits,
        } => {
            let enclave = match (vsock, unix) {
                (None, Some(path)) => Enclave::Unix(path),
                (Some(addr), None) => Enclave::Vsock(addr),
                _ => return Err(HostError::Usage("give one of --vsock and --unix")),
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|source| HostError::Listen {
                    what: listen.to_string(),
                    source,
                })?;
            tracing::info!(%listen, to = %enclave, "ingress ready");
            let slots = Slots::new(limits.max_connections);
            ingress::run(listener, enclave, slots, limits.timeouts(), shutdown).await;
        }
        Command::Egress {
            vsock_port,
            unix,
            allow,
            limits,
        } => {
            let (listener, what) = match (vsock_port, &unix) {
                (None, Some(path)) => (Listener::unix(path), path.display().to_string()),
                (Some(port), None) => (Listener::vsock(port), format!("vsock port {port}")),
                _ => return Err(HostError::Usage("give one of --vsock-port and --unix")),
            };
            let listener = listener.map_err(|source| HostError::Listen {
                what: what.clone(),
                source,
            })?;
            tracing::info!(listen = %what, allowed = allow.len(), "egress ready");
            let slots = Slots::new(limits.max_connections);
            egress::run(listener, allow, slots, limits.timeouts(), shutdown).await;
        }
    }
    Ok(())
}
