//! The byte streams `shroud-host` moves: TCP on the outside, and vsock or a Unix socket on the
//! enclave's side (Unix sockets stand in for vsock where vsock has no loopback, in tests).

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{UnixListener, UnixStream};

/// Any stream both ways.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed stream of any transport.
pub(crate) type Stream = Box<dyn Io>;

/// A vsock address, `CID:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VsockAddr {
    pub(crate) cid: u32,
    pub(crate) port: u32,
}

/// Why a `CID:PORT` did not parse.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VsockAddrError {
    #[error("expected CID:PORT")]
    Shape,
    #[error("the context id {0:?} is not a number")]
    Cid(String),
    #[error("the port {0:?} is not a number")]
    Port(String),
}

impl std::str::FromStr for VsockAddr {
    type Err = VsockAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (cid, port) = s.split_once(':').ok_or(VsockAddrError::Shape)?;
        Ok(Self {
            cid: cid
                .parse()
                .map_err(|_| VsockAddrError::Cid(cid.chars().take(20).collect()))?,
            port: port
                .parse()
                .map_err(|_| VsockAddrError::Port(port.chars().take(20).collect()))?,
        })
    }
}

/// Where the enclave side is: a vsock address or a Unix socket.
#[derive(Debug, Clone)]
pub(crate) enum Enclave {
    Vsock(VsockAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for Enclave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Vsock(addr) => write!(f, "vsock {}:{}", addr.cid, addr.port),
            Self::Unix(path) => write!(f, "unix {}", path.display()),
        }
    }
}

impl Enclave {
    /// Connects to the enclave.
    pub(crate) async fn connect(&self) -> io::Result<Stream> {
        match self {
            Self::Unix(path) => Ok(Box::new(UnixStream::connect(path).await?)),
            Self::Vsock(addr) => connect_vsock(*addr).await,
        }
    }
}

#[cfg(target_os = "linux")]
async fn connect_vsock(addr: VsockAddr) -> io::Result<Stream> {
    let stream =
        tokio_vsock::VsockStream::connect(tokio_vsock::VsockAddr::new(addr.cid, addr.port)).await?;
    Ok(Box::new(stream))
}

#[cfg(not(target_os = "linux"))]
async fn connect_vsock(_addr: VsockAddr) -> io::Result<Stream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "vsock exists only on Linux",
    ))
}

/// A listener on the enclave's side: vsock (every context id) or a Unix socket.
pub(crate) enum Listener {
    Unix(UnixListener, PathBuf),
    #[cfg(target_os = "linux")]
    Vsock(tokio_vsock::VsockListener),
}

impl Listener {
    /// Binds a Unix socket, replacing a stale socket file (one nobody listens on), and nothing
    /// else.
    pub(crate) fn unix(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::FileTypeExt as _;
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way",
                ));
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process listens on this socket",
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(Self::Unix(UnixListener::bind(path)?, path.to_owned()))
    }

    /// Binds vsock `port` on every context id.
    #[cfg(target_os = "linux")]
    pub(crate) fn vsock(port: u32) -> io::Result<Self> {
        let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, port);
        Ok(Self::Vsock(tokio_vsock::VsockListener::bind(addr)?))
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn vsock(_port: u32) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "vsock exists only on Linux",
        ))
    }

    /// The next connection.
    pub(crate) async fn accept(&self) -> io::Result<Stream> {
        match self {
            Self::Unix(listener, _) => Ok(Box::new(listener.accept().await?.0)),
            #[cfg(target_os = "linux")]
            Self::Vsock(listener) => Ok(Box::new(listener.accept().await?.0)),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Self::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}
