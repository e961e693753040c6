//! What the yardsticks (nginx, HAProxy) share: a reverse proxy run from a configuration the
//! harness writes into a temp dir, terminating TLS 1.3 with a fresh self-signed ECDSA P-256
//! certificate for `localhost` (the gateway's key type) on a loopback port, in front of the
//! same upstream; ready once it accepts connections, stopped when dropped. Each proxy's own
//! module says only how to configure, start and stop it.

use std::ffi::OsString;
use std::fs::File;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;

use shroud_benches::harness::error::LoadError;

/// How long a proxy may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a proxy's configuration points: files in its temp dir and its two addresses.
pub struct Layout {
    /// The temp dir (prefix, pid file, temp paths).
    pub dir: PathBuf,
    /// The TLS listener to configure (a loopback port free a moment ago).
    pub listen: SocketAddr,
    /// The upstream to proxy to, plain HTTP/1.1.
    pub upstream: SocketAddr,
    /// The certificate, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// Certificate then key in one PEM (HAProxy's `crt`).
    pub cert_and_key: PathBuf,
    /// The configuration file the harness writes.
    pub config: PathBuf,
}

/// How to run one kind of proxy, given its [`Layout`].
pub struct Recipe {
    /// The configuration file's contents.
    pub config: String,
    /// Arguments that run it in the foreground, logging to stderr.
    pub run: Vec<OsString>,
    /// Arguments of a second invocation that stops it gracefully (nginx's master stops its
    /// workers; killing only the master would leave them holding the port); `None`: kill it.
    pub stop: Option<Vec<OsString>>,
}

/// A running proxy; stopped when dropped.
pub struct Proxy {
    name: &'static str,
    binary: PathBuf,
    child: Child,
    addr: SocketAddr,
    cert: CertificateDer<'static>,
    stop: Option<Vec<OsString>>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts the proxy `name` (also its Debian package) from `binary` in front of `upstream`,
    /// configured by `recipe`, and waits until it accepts connections.
    pub fn start(
        name: &'static str,
        binary: &Path,
        upstream: SocketAddr,
        recipe: impl FnOnce(&Layout) -> Recipe,
    ) -> Result<Self, LoadError> {
        let error = |reason: String| LoadError::Target {
            target: name,
            reason,
        };
        let binary = locate(binary).ok_or_else(|| {
            error(format!(
                "{} not found (install it: apt-get install {name}; or pass --{name}-bin PATH; \
                 or leave the {name} targets out of --targets)",
                binary.display()
            ))
        })?;
        let dir = tempfile::tempdir().map_err(|e| LoadError::io("creating a temp dir", e))?;
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| error(format!("generating its certificate: {e}")))?;
        let (cert_pem, key_pem) = (key.cert.pem(), key.signing_key.serialize_pem());
        let layout = Layout {
            dir: dir.path().to_owned(),
            listen: free_port(name)?,
            upstream,
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            cert_and_key: dir.path().join("cert-and-key.pem"),
            config: dir.path().join(format!("{name}.conf")),
        };
        write(&layout.cert, &cert_pem)?;
        write(&layout.key, &key_pem)?;
        write(&layout.cert_and_key, &format!("{cert_pem}{key_pem}"))?;
        let recipe = recipe(&layout);
        write(&layout.config, &recipe.config)?;
        let log = dir.path().join(format!("{name}.log"));
        let stderr = File::create(&log).map_err(|e| LoadError::io("creating a proxy's log", e))?;
        let child = Command::new(&binary)
            .args(&recipe.run)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| error(format!("starting {}: {e}", binary.display())))?;
        let mut proxy = Self {
            name,
            binary,
            child,
            addr: layout.listen,
            cert: key.cert.der().clone(),
            stop: recipe.stop,
            log,
            _dir: dir,
        };
        proxy.wait_ready()?;
        Ok(proxy)
    }

    /// The TLS listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process to account CPU to (with its direct children: nginx's workers).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The certificate to trust.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    fn wait_ready(&mut self) -> Result<(), LoadError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.error(format!("exited with {status}; its log:\n{}", self.log())));
            }
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.error(format!(
                    "not accepting connections on {} after {START_TIMEOUT:?}; its log:\n{}",
                    self.addr,
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn error(&self, reason: String) -> LoadError {
        LoadError::Target {
            target: self.name,
            reason,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let stopped = self.stop.as_ref().is_some_and(|stop| {
            Command::new(&self.binary)
                .args(stop)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        });
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `binary` as given when it names a path, else the first match on `PATH` and then in the
/// sbin directories (where Debian puts nginx and HAProxy, not on every user's `PATH`).
pub fn locate(binary: &Path) -> Option<PathBuf> {
    if binary.components().count() > 1 {
        return binary.is_file().then(|| binary.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

/// A loopback port free right now (the proxy needs it in its configuration, so the kernel
/// cannot pick it at bind time; the window for a clash is the few milliseconds until it binds).
fn free_port(name: &str) -> Result<SocketAddr, LoadError> {
    StdListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map_err(|e| LoadError::io(format!("finding a free port for {name}"), e))
}

fn write(path: &Path, contents: &str) -> Result<(), LoadError> {
    std::fs::write(path, contents)
        .map_err(|e| LoadError::io(format!("writing {}", path.display()), e))
}
