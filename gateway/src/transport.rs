//! The byte streams the gateway serves and dials: TCP, Unix sockets and (on Linux) vsock, the
//! only way into and out of a Nitro enclave. One [`Stream`] type for all three, so the TLS,
//! HTTP and egress code above is written once; Unix sockets stand in for vsock where vsock has
//! no loopback (tests, sidecars).

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connected, Connection};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A vsock address: context id and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsockAddr {
    /// The context id (3 and up: an enclave's or the parent's; 1: the local machine; 2: the host).
    pub cid: u32,
    /// The port.
    pub port: u32,
}

impl std::fmt::Display for VsockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "vsock:{}:{}", self.cid, self.port)
    }
}

impl std::str::FromStr for VsockAddr {
    type Err = String;

    /// `CID:PORT`, both decimal.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (cid, port) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not CID:PORT"))?;
        let cid = cid
            .parse()
            .map_err(|_| format!("{s:?}: the context id is not a number"))?;
        let port = port
            .parse()
            .map_err(|_| format!("{s:?}: the port is not a number"))?;
        Ok(Self { cid, port })
    }
}

/// The longest answer head accepted from the egress proxy.
const MAX_PROXY_ANSWER: usize = 4096;

/// A connected stream of any of the transports.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// A Unix socket.
    Unix(UnixStream),
    /// vsock.
    #[cfg(target_os = "linux")]
    Vsock(tokio_vsock::VsockStream),
}

impl Stream {
    /// Connects to a Unix socket.
    pub async fn connect_unix(path: &Path) -> io::Result<Self> {
        UnixStream::connect(path).await.map(Self::Unix)
    }

    /// Connects to a vsock address.
    #[cfg(target_os = "linux")]
    pub async fn connect_vsock(addr: VsockAddr) -> io::Result<Self> {
        tokio_vsock::VsockStream::connect(tokio_vsock::VsockAddr::new(addr.cid, addr.port))
            .await
            .map(Self::Vsock)
    }

    /// vsock exists only on Linux.
    #[cfg(not(target_os = "linux"))]
    pub async fn connect_vsock(_addr: VsockAddr) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "vsock exists only on Linux",
        ))
    }
}

/// A TCP or Unix stream taken off the runtime that accepted it, to be served on another one (a
/// serving worker's, `workers.rs`), which registers it with its own reactor.
#[derive(Debug)]
pub(crate) enum Detached {
    /// TCP.
    Tcp(std::net::TcpStream),
    /// A Unix socket.
    Unix(std::os::unix::net::UnixStream),
}

impl Stream {
    /// Takes the stream off the current runtime: `Ok(Err(self))` for a vsock stream, which
    /// cannot be and stays where it is; `Err` when the socket cannot be deregistered (it is
    /// broken, and gone).
    pub(crate) fn detach(self) -> io::Result<Result<Detached, Self>> {
        match self {
            Self::Tcp(s) => s.into_std().map(|s| Ok(Detached::Tcp(s))),
            Self::Unix(s) => s.into_std().map(|s| Ok(Detached::Unix(s))),
            #[cfg(target_os = "linux")]
            other @ Self::Vsock(_) => Ok(Err(other)),
        }
    }
}

impl Detached {
    /// The stream again, registered with the runtime this is called on.
    pub(crate) fn attach(self) -> io::Result<Stream> {
        match self {
            Self::Tcp(s) => TcpStream::from_std(s).map(Stream::Tcp),
            Self::Unix(s) => UnixStream::from_std(s).map(Stream::Unix),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(target_os = "linux")]
            Self::Vsock(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(target_os = "linux")]
            Self::Vsock(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
            #[cfg(target_os = "linux")]
            Self::Vsock(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(target_os = "linux")]
            Self::Vsock(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// Where the host's egress proxy listens (`[egress]`, `shroud-host egress`).
///
/// Each connection through it starts with an HTTP `CONNECT host:port` preamble; the proxy dials
/// the destination if its allow list names it and answers `200`, and from then on carries
/// bytes. The host sees the name it must dial and ciphertext, never a request; names are
/// resolved by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressProxy {
    /// A Unix socket (sidecars, and tests standing in for vsock).
    Unix(PathBuf),
    /// vsock: the parent instance's context id and port.
    Vsock(VsockAddr),
}

impl EgressProxy {
    /// Opens a connection to `host:port` through the proxy: dial it, send the `CONNECT`
    /// preamble, read its answer; the stream carries the destination's bytes from then on.
    pub(crate) async fn connect(&self, host: &str, port: u16) -> io::Result<Stream> {
        let mut stream = match self {
            Self::Unix(path) => Stream::connect_unix(path).await?,
            Self::Vsock(addr) => Stream::connect_vsock(*addr).await?,
        };
        let authority = format!("{host}:{port}");
        let preamble = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        stream.write_all(preamble.as_bytes()).await?;
        let head = read_head(&mut stream).await?;
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| head.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3));
        if status != Some("200") {
            let line = head.lines().next().unwrap_or_default().to_owned();
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("the egress proxy refused {authority}: {line}"),
            ));
        }
        Ok(stream)
    }
}

/// Reads the proxy's answer head up to its blank line, one byte at a time so that not a byte
/// of the destination's stream is taken with it; at most [`MAX_PROXY_ANSWER`] bytes.
async fn read_head(stream: &mut Stream) -> io::Result<String> {
    let mut head = Vec::with_capacity(64);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_PROXY_ANSWER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the egress proxy's answer is too long",
            ));
        }
        head.push(stream.read_u8().await?);
    }
    String::from_utf8(head)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the answer is not text"))
}

/// A client-facing listener of any of the transports.
#[derive(Debug)]
pub(crate) enum Listener {
    /// RA-TLS over TCP.
    Tcp(TcpListener),
    /// A Unix socket, removed again when the listener is dropped.
    Unix(UnixListener, PathBuf),
    /// vsock.
    #[cfg(target_os = "linux")]
    Vsock(tokio_vsock::VsockListener),
}

impl Listener {
    /// Binds a Unix socket at `path`, replacing a stale socket file left by an earlier run (and
    /// nothing else: any other file at `path` is an error).
    pub(crate) fn bind_unix(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::FileTypeExt as _;
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way",
                ));
            }
            std::fs::remove_file(path)?;
        }
        UnixListener::bind(path).map(|l| Self::Unix(l, path.to_owned()))
    }

    /// Binds vsock `port` on every context id of this machine.
    #[cfg(target_os = "linux")]
    pub(crate) fn bind_vsock(port: u32) -> io::Result<Self> {
        let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, port);
        tokio_vsock::VsockListener::bind(addr).map(Self::Vsock)
    }

    /// vsock exists only on Linux.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn bind_vsock(_port: u32) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "vsock exists only on Linux",
        ))
    }

    /// The listener's name in logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Tcp(_) => "https",
            Self::Unix(..) => "unix",
            #[cfg(target_os = "linux")]
            Self::Vsock(_) => "vsock",
        }
    }

    /// The next connection, with the peer's IP address for TCP (`None` for Unix sockets and
    /// vsock, whose peers are local forwarders: the client is then known only from a PROXY
    /// header).
    pub(crate) async fn accept(&self) -> io::Result<(Stream, Option<IpAddr>)> {
        match self {
            Self::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                // Small writes (TLS records, HTTP/2 frames) go out at once.
                let _ = stream.set_nodelay(true);
                Ok((Stream::Tcp(stream), Some(peer.ip())))
            }
            Self::Unix(l, _) => Ok((Stream::Unix(l.accept().await?.0), None)),
            #[cfg(target_os = "linux")]
            Self::Vsock(l) => Ok((Stream::Vsock(l.accept().await?.0), None)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt as _;

    /// A one-shot egress proxy on a Unix socket answering `answer` to the first `CONNECT`, then
    /// echoing; returns the preamble it read.
    async fn proxy(answer: &'static str) -> (tempfile::TempDir, tokio::task::JoinHandle<String>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::UnixListener::bind(dir.path().join("egress")).unwrap();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = tokio::io::BufReader::new(stream);
            let mut preamble = String::new();
            loop {
                let mut line = String::new();
                stream.read_line(&mut line).await.unwrap();
                preamble.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            stream.get_mut().write_all(answer.as_bytes()).await.unwrap();
            let mut echo = [0_u8; 5];
            if stream.read_exact(&mut echo).await.is_ok() {
                stream.get_mut().write_all(&echo).await.unwrap();
            }
            preamble
        });
        (dir, task)
    }

    #[tokio::test]
    async fn connect_names_the_destination_and_then_carries_bytes() {
        let (dir, task) = proxy("HTTP/1.1 200 Connection established\r\n\r\n").await;
        let egress = EgressProxy::Unix(dir.path().join("egress"));
        let mut stream = egress.connect("node.example", 443).await.unwrap();
        stream.write_all(b"hello").await.unwrap();
        let mut echo = [0_u8; 5];
        stream.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"hello");
        assert_eq!(
            task.await.unwrap(),
            "CONNECT node.example:443 HTTP/1.1\r\nHost: node.example:443\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_refusal_is_an_error_naming_the_destination() {
        let (dir, _task) = proxy("HTTP/1.1 403 Forbidden\r\n\r\n").await;
        let egress = EgressProxy::Unix(dir.path().join("egress"));
        let error = egress.connect("evil.example", 443).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        assert!(error.to_string().contains("evil.example:443"), "{error}");
        assert!(error.to_string().contains("403"), "{error}");
    }
}
