//! A ganache dev node for the tests that need a real Ethereum node: `tests/wallets/ganache-node.mjs`
//! (from `tests/wallets/node_modules`) on a loopback port the OS picks; deterministic wallet,
//! chain id 1337, instant mining.
//!
//! Without `tests/wallets/node_modules/ganache`, [`DevNode::start`] prints `skipped: no ganache at
//! PATH (npm ci --prefix client-sdk/tests/wallets)` and returns `None`, unless
//! `SHROUD_REQUIRE_DEV_NODE=1`, which makes it fail.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// How long ganache may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn wallets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/wallets")
}

/// A ganache process, killed on drop.
pub struct DevNode {
    child: Child,
    /// Held open: `--exit-with-stdin` makes ganache exit when it closes, so the node does not
    /// outlive a test process that dies without running this drop.
    _stdin: Option<ChildStdin>,
    pub url: String,
}

impl DevNode {
    /// Starts ganache, or returns `None` (after printing why) when it is not installed.
    pub async fn start() -> Option<Self> {
        let dir = wallets_dir();
        let ganache = dir.join("node_modules/ganache");
        if !ganache.is_dir() {
            let required = std::env::var("SHROUD_REQUIRE_DEV_NODE").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "SHROUD_REQUIRE_DEV_NODE=1 but there is no ganache at {} (npm ci --prefix client-sdk/tests/wallets)",
                ganache.display()
            );
            println!(
                "skipped: no ganache at {} (npm ci --prefix client-sdk/tests/wallets)",
                ganache.display()
            );
            return None;
        }
        let mut child = Command::new("node")
            .arg(dir.join("ganache-node.mjs"))
            .arg("--exit-with-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node for {}: {e}", ganache.display()));
        let stdout = child.stdout.take().unwrap();
        let mut node = Self {
            _stdin: child.stdin.take(),
            child,
            url: String::new(),
        };
        // If the line never comes, dropping `node` kills ganache, which ends the blocked read.
        let line = tokio::time::timeout(
            START_TIMEOUT,
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await
        .unwrap_or_else(|_| panic!("ganache printed no address within {START_TIMEOUT:?}"))
        .unwrap()
        .unwrap();
        node.url = line
            .trim()
            .strip_prefix("ganache listening on ")
            .unwrap_or_else(|| panic!("unexpected ganache start-up line {line:?}"))
            .to_owned();
        assert!(node.url.starts_with("http://127.0.0.1:"), "{}", node.url);
        Some(node)
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
