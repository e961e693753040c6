//! The command line: `shroud-host ingress ...` and `shroud-host egress ...`, parsed into typed
//! values at the edge (addresses, destinations, limits).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::io::VsockAddr;
use crate::preamble::Destination;
use crate::timeouts::Timeouts;

/// Shroud's side of a Nitro Enclave on the parent instance (not measured, not trusted).
#[derive(Debug, Parser)]
#[command(name = "shroud-host", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
        /// A destination the enclave may reach, HOST:PORT or [IPV6]:PORT (repeat for each;
        /// host names match whatever their case).
        #[arg(long = "allow", value_name = "HOST:PORT", required = true)]
        allow: Vec<Destination>,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct LimitArgs {
    /// Most connections carried at once; more are closed at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub(crate) max_connections: u32,
    /// Close a connection when neither end sent anything for this many seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 600,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub(crate) idle_timeout: u64,
}

impl LimitArgs {
    pub(crate) fn timeouts(&self) -> Timeouts {
        Timeouts::with_idle(Duration::from_secs(self.idle_timeout))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exactly_one_enclave_side_is_given() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["shroud-host"], args].concat());
        assert!(parse(&["ingress", "--listen", "127.0.0.1:1", "--vsock", "16:5000"]).is_ok());
        assert!(parse(&["ingress", "--listen", "127.0.0.1:1", "--unix", "/s"]).is_ok());
        assert!(parse(&["ingress", "--listen", "127.0.0.1:1"]).is_err());
        assert!(
            parse(&[
                "ingress",
                "--listen",
                "127.0.0.1:1",
                "--vsock",
                "16:5000",
                "--unix",
                "/s"
            ])
            .is_err()
        );
        assert!(parse(&["ingress", "--listen", "127.0.0.1:1", "--vsock", "16"]).is_err());
        assert!(parse(&["egress", "--vsock-port", "8001", "--allow", "a.example:443"]).is_ok());
        assert!(parse(&["egress", "--vsock-port", "8001"]).is_err());
        assert!(parse(&["egress", "--unix", "/s", "--allow", "a.example"]).is_err());
        assert!(
            parse(&[
                "egress",
                "--unix",
                "/s",
                "--allow",
                "a:1",
                "--max-connections",
                "0"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "egress",
                "--unix",
                "/s",
                "--allow",
                "a:1",
                "--idle-timeout",
                "0"
            ])
            .is_err()
        );
    }
}
