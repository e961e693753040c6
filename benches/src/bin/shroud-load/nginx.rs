//! The yardstick: nginx as a TLS-terminating reverse proxy to the same upstream, configured the
//! way one would for a fair fight: one worker per core, TLS 1.3 with an ECDSA P-256 key like the
//! gateway's, keep-alive on both sides, no access log.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;

use shroud_benches::harness::error::LoadError;

/// How long nginx may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running nginx (master and workers); stopped when dropped.
pub struct Nginx {
    binary: PathBuf,
    child: Child,
    addr: SocketAddr,
    cert: CertificateDer<'static>,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts `binary` in front of `upstream` with a fresh self-signed certificate for
    /// `localhost`.
    pub fn start(binary: &Path, upstream: SocketAddr) -> Result<Self, LoadError> {
        let dir = tempfile::tempdir().map_err(|e| LoadError::io("creating a temp dir", e))?;
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| target_error(format!("generating its certificate: {e}")))?;
        write(&dir.path().join("cert.pem"), &key.cert.pem())?;
        write(
            &dir.path().join("key.pem"),
            &key.signing_key.serialize_pem(),
        )?;
        let binary = &resolve(binary);
        let addr = free_port()?;
        let conf = dir.path().join("nginx.conf");
        write(&conf, &config(dir.path(), addr, upstream))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                target_error(format!(
                    "starting {}: {e} (install it: apt-get install nginx)",
                    binary.display()
                ))
            })?;
        let mut nginx = Self {
            binary: binary.to_owned(),
            child,
            addr,
            cert: key.cert.der().clone(),
            dir,
        };
        nginx.wait_ready()?;
        Ok(nginx)
    }

    /// The TLS listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The master's process id (the workers are its children).
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
                return Err(target_error(format!(
                    "exited with {status}; its log:\n{}",
                    self.log()
                )));
            }
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(target_error(format!(
                    "not accepting connections on {} after {START_TIMEOUT:?}; its log:\n{}",
                    self.addr,
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// `nginx -s stop` signals the master through its pid file, and the master stops its
    /// workers; killing only the master would leave the workers holding the port.
    fn drop(&mut self) {
        let stopped = Command::new(&self.binary)
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(self.dir.path().join("error.log"))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, listen: SocketAddr, upstream: SocketAddr) -> String {
    let dir = dir.display();
    format!(
        r#"daemon off;
master_process on;
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections 16384;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream shroud_load_upstream {{
        server {upstream};
        keepalive 256;
    }}

    server {{
        listen {listen} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        ssl_protocols TLSv1.3;
        keepalive_requests 10000000;
        keepalive_timeout 600s;

        location / {{
            proxy_pass http://shroud_load_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#
    )
}

/// `nginx` lives in /usr/sbin, which is not on every user's PATH.
fn resolve(binary: &Path) -> PathBuf {
    let sbin = Path::new("/usr/sbin/nginx");
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(binary).is_file()));
    if binary == Path::new("nginx") && !on_path && sbin.is_file() {
        sbin.to_owned()
    } else {
        binary.to_owned()
    }
}

/// A loopback port free right now (nginx needs it in its configuration, so the kernel cannot
/// pick it at bind time; the window for a clash is the few milliseconds until nginx binds).
fn free_port() -> Result<SocketAddr, LoadError> {
    StdListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map_err(|e| LoadError::io("finding a free port for nginx", e))
}

fn write(path: &Path, contents: &str) -> Result<(), LoadError> {
    std::fs::write(path, contents)
        .map_err(|e| LoadError::io(format!("writing {}", path.display()), e))
}

fn target_error(reason: String) -> LoadError {
    LoadError::Target {
        target: "nginx",
        reason,
    }
}
