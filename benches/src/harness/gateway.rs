//! The gateway under test: the release `shroud-gateway` binary as an operator runs it, from a
//! configuration file, with the simulated TEE (no enclave on a benchmark machine; the RA-TLS
//! handshake, the verification and the relay path are the real ones).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::error::LoadError;

/// How long the gateway may take to print its address and measurement.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running gateway; killed when dropped.
pub struct Gateway {
    child: Child,
    addr: SocketAddr,
    measurement: String,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts `binary` with the TOML `config` (its listeners on loopback port 0).
    pub async fn start(binary: &Path, config: &str) -> Result<Self, LoadError> {
        if !binary.is_file() {
            return Err(target_error(format!(
                "no gateway binary at {}; build it first: cargo build --release -p shroud-gateway",
                binary.display()
            )));
        }
        let dir = tempfile::tempdir().map_err(|e| LoadError::io("creating a temp dir", e))?;
        let config_text = config;
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, config_text)
            .map_err(|e| LoadError::io("writing the gateway's configuration", e))?;
        let log = std::fs::File::create(dir.path().join("gateway.log"))
            .map_err(|e| LoadError::io("creating the gateway's log", e))?;
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| LoadError::io(format!("starting {}", binary.display()), e))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| target_error("no stdout to read the address from".into()))?;
        let banner = match tokio::time::timeout(START_TIMEOUT, read_banner(stdout)).await {
            Ok(banner) => banner,
            Err(_) => Err(format!(
                "did not print its address within {START_TIMEOUT:?}"
            )),
        };
        // The log lives in the temp dir, gone with it: a failed start shows it here.
        let (addr, measurement) = banner.map_err(|reason| {
            let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
            target_error(format!("{reason}; its log:\n{log}"))
        })?;
        Ok(Self {
            child,
            addr,
            measurement,
            _dir: dir,
        })
    }

    /// The RA-TLS listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The simulated measurement, in hex, to pin.
    pub fn measurement(&self) -> &str {
        &self.measurement
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Open file descriptors of the gateway (Linux `/proc`), when they can be counted.
    pub fn open_descriptors(&self) -> Option<usize> {
        let pid = self.child.id()?;
        Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The gateway's resident set size in KiB (Linux `/proc`), when it can be read.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

/// Reads `shroud-gateway listening on https://ADDR` and `measurement: simulated HEX`.
/// Reads the address and measurement lines, then keeps reading stdout in the background: the
/// gateway prints more after them (the `pin:` line), and a closed pipe would make its next
/// write fail.
async fn read_banner(stdout: tokio::process::ChildStdout) -> Result<(SocketAddr, String), String> {
    let mut lines = BufReader::new(stdout).lines();
    let mut addr = None;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| format!("reading its stdout: {e}"))?
    {
        if let Some(rest) = line.strip_prefix("shroud-gateway listening on https://") {
            addr = Some(
                rest.trim()
                    .parse()
                    .map_err(|_| format!("unexpected address line {line:?}"))?,
            );
        } else if let Some(rest) = line.strip_prefix("measurement: simulated ") {
            let addr = addr.ok_or("measurement before address")?;
            let measurement = rest.trim().to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((addr, measurement));
        }
    }
    Err("exited before printing its address and measurement".into())
}

fn target_error(reason: String) -> LoadError {
    LoadError::Target {
        target: "gateway",
        reason,
    }
}
