//! `shroud-host` as a process: ingress prefixes each connection with a PROXY v2 header naming
//! the client, egress dials only allow-listed destinations, and vsock is tried for real where the
//! machine has a vsock loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, UnixListener, UnixStream};
use tokio::process::{Child, Command};

const HOST: &str = env!("CARGO_BIN_EXE_shroud-host");

/// `shroud-host ARGS`, logging everything (every level) to `log`.
fn host(args: &[&str], log: &Path) -> Child {
    Command::new(HOST)
        .args(args)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn until(mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn ingress_names_the_client_in_a_proxy_header_then_pipes_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("enclave.sock");
    let enclave = UnixListener::bind(&socket).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let _ingress = host(
        &[
            "ingress",
            "--listen",
            &listen,
            "--unix",
            socket.to_str().unwrap(),
        ],
        &dir.path().join("ingress.log"),
    );
    until(|| std::net::TcpStream::connect(&listen).is_ok()).await;
    // That probe connection reached the enclave side too: take it out of the way.
    let (probe, _) = enclave.accept().await.unwrap();
    drop(probe);

    let client = TcpSocket::new_v4().unwrap();
    client.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut client = client.connect(listen.parse().unwrap()).await.unwrap();
    client.write_all(b"client hello").await.unwrap();

    let (mut inside, _) = enclave.accept().await.unwrap();
    let mut fixed = [0_u8; 16];
    inside.read_exact(&mut fixed).await.unwrap();
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let mut rest = vec![0_u8; len];
    inside.read_exact(&mut rest).await.unwrap();
    let header = [&fixed[..], &rest[..]].concat();
    let parsed = ppp::v2::Header::try_from(&header[..]).unwrap();
    let ppp::v2::Addresses::IPv4(addresses) = parsed.addresses else {
        panic!("{:?}", parsed.addresses);
    };
    assert_eq!(addresses.source_address.to_string(), "127.0.0.2");
    assert_eq!(addresses.source_port, client.local_addr().unwrap().port());
    assert_eq!(
        std::net::SocketAddr::from((addresses.destination_address, addresses.destination_port))
            .to_string(),
        listen
    );
    let mut bytes = [0_u8; 12];
    inside.read_exact(&mut bytes).await.unwrap();
    assert_eq!(&bytes, b"client hello");
    inside.write_all(b"server hello").await.unwrap();
    client.read_exact(&mut bytes).await.unwrap();
    assert_eq!(&bytes, b"server hello");

    drop((client, inside));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(dir.path().join("ingress.log")).unwrap();
    assert!(log.contains("connection closed"), "logged at TRACE: {log}");
    assert!(
        !log.contains("127.0.0.2"),
        "no client address in the log, at any level: {log}"
    );
}

/// A TCP server that counts connections and echoes.
async fn echo_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, accepted)
}

async fn connect_through(socket: &Path, target: &str) -> (UnixStream, String) {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    stream
        .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0_u8; 1];
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (stream, String::from_utf8(head).unwrap())
}

/// `shroud-host egress --unix SOCKET ARGS`, ready; its log in `log`.
async fn egress(socket: &Path, log: &Path, args: &[&str]) -> Child {
    let child = host(
        &[&["egress", "--unix", socket.to_str().unwrap()], args].concat(),
        log,
    );
    until(|| std::os::unix::net::UnixStream::connect(socket).is_ok()).await;
    child
}

#[tokio::test]
async fn egress_dials_allowed_destinations_only_and_logs_refusals() {
    let (allowed, allowed_accepts) = echo_server().await;
    let (forbidden, forbidden_accepts) = echo_server().await;
    let unreachable = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("egress.sock");
    let log = dir.path().join("egress.log");
    let by_name = format!("LocalHost:{}", allowed.port());
    let _egress = egress(
        &socket,
        &log,
        &[
            "--allow",
            &allowed.to_string(),
            "--allow",
            &by_name,
            "--allow",
            &unreachable,
        ],
    )
    .await;

    let (mut stream, head) = connect_through(&socket, &allowed.to_string()).await;
    assert_eq!(head, "HTTP/1.1 200 Connection established\r\n\r\n");
    stream.write_all(b"ping").await.unwrap();
    let mut echo = [0_u8; 4];
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");

    // A name, matched whatever its case, resolved by the host.
    let (mut stream, head) =
        connect_through(&socket, &format!("localhost:{}", allowed.port())).await;
    assert_eq!(head, "HTTP/1.1 200 Connection established\r\n\r\n");
    stream.write_all(b"pong").await.unwrap();
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"pong");
    assert_eq!(allowed_accepts.load(Ordering::SeqCst), 2);

    let (mut refused, head) = connect_through(&socket, &forbidden.to_string()).await;
    assert_eq!(head, "HTTP/1.1 403 Forbidden\r\n\r\n");
    assert_eq!(
        refused.read(&mut echo).await.unwrap(),
        0,
        "closed after the 403"
    );
    let (_, head) = connect_through(&socket, "not a target").await;
    assert_eq!(head, "HTTP/1.1 400 Bad Request\r\n\r\n");
    let (_, head) = connect_through(&socket, &unreachable).await;
    assert_eq!(head, "HTTP/1.1 502 Bad Gateway\r\n\r\n");

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        forbidden_accepts.load(Ordering::SeqCst),
        0,
        "nothing reached it"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!(
            "destination refused: {forbidden} not on the allow list"
        )),
        "the refusal names the destination: {text}"
    );
}

#[tokio::test]
async fn egress_closes_connections_over_its_limit() {
    let (allowed, _) = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("egress.sock");
    let log = dir.path().join("egress.log");
    let _egress = egress(
        &socket,
        &log,
        &["--allow", &allowed.to_string(), "--max-connections", "1"],
    )
    .await;
    // The readiness probe held the one slot for a moment: wait for it to be given back.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (mut first, head) = connect_through(&socket, &allowed.to_string()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut over = UnixStream::connect(&socket).await.unwrap();
    // Closed at once: the preamble may not even be taken, and the close may come as a reset.
    let _ = over
        .write_all(b"CONNECT x.example:1 HTTP/1.1\r\n\r\n")
        .await;
    let mut byte = [0_u8; 1];
    assert!(
        matches!(over.read(&mut byte).await, Ok(0) | Err(_)),
        "over the limit: closed without an answer"
    );
    first.write_all(b"still").await.unwrap();
    let mut echo = [0_u8; 5];
    first.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"still");
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, head) = connect_through(&socket, &allowed.to_string()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "a slot again: {head}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("connection limit reached"), "{text}");
}

#[tokio::test]
async fn egress_replaces_a_stale_socket_file_and_nothing_else() {
    let (allowed, _) = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("egress.sock");
    // A socket file nobody listens on any more (std's listener leaves its file behind).
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let _egress = egress(
        &socket,
        &dir.path().join("egress.log"),
        &["--allow", &allowed.to_string()],
    )
    .await;

    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, b"keep me").unwrap();
    let output = Command::new(HOST)
        .args(["egress", "--unix", file.to_str().unwrap(), "--allow"])
        .arg(allowed.to_string())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a socket"));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    // Nor a socket a live egress listens on.
    let output = Command::new(HOST)
        .args(["egress", "--unix", socket.to_str().unwrap(), "--allow"])
        .arg(allowed.to_string())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("another process listens"));
}

#[tokio::test]
async fn ingress_stops_accepting_on_sigterm_and_lets_open_pipes_finish() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("enclave.sock");
    let enclave = UnixListener::bind(&socket).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("ingress.log");
    let mut ingress = host(
        &[
            "ingress",
            "--listen",
            &listen,
            "--unix",
            socket.to_str().unwrap(),
        ],
        &log,
    );
    until(|| std::net::TcpStream::connect(&listen).is_ok()).await;
    drop(enclave.accept().await.unwrap());

    let mut client = tokio::net::TcpStream::connect(&listen).await.unwrap();
    let (mut inside, _) = enclave.accept().await.unwrap();
    let pid = ingress.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    // No longer accepting (a probe before that would be carried, and hold the drain)...
    until(|| std::fs::read_to_string(&log).is_ok_and(|text| text.contains("no longer accepting")))
        .await;
    assert!(std::net::TcpStream::connect(&listen).is_err());
    // ...but the open pipe still carries bytes both ways.
    client.write_all(b"late").await.unwrap();
    // The PROXY header (16 bytes, then its address block), then the client's bytes.
    let mut fixed = [0_u8; 16];
    inside.read_exact(&mut fixed).await.unwrap();
    let mut rest = vec![0_u8; usize::from(u16::from_be_bytes([fixed[14], fixed[15]]))];
    inside.read_exact(&mut rest).await.unwrap();
    let mut received = vec![0_u8; 4];
    inside.read_exact(&mut received).await.unwrap();
    assert_eq!(received, b"late");
    inside.write_all(b"back").await.unwrap();
    client.read_exact(&mut received).await.unwrap();
    assert_eq!(received, b"back");
    assert!(
        ingress.try_wait().unwrap().is_none(),
        "waits for the open pipe"
    );
    drop((client, inside));
    let status = tokio::time::timeout(Duration::from_secs(5), ingress.wait())
        .await
        .expect("exits once the pipe is closed")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn egress_refuses_to_start_without_an_allow_list_or_with_a_bad_one() {
    let output = Command::new(HOST)
        .args(["egress", "--unix", "/tmp/unused.sock", "--allow", "no-port"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no-port"));
    let output = Command::new(HOST)
        .args(["egress", "--unix", "/tmp/unused.sock"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// vsock for real: CID 1 is this machine (the `vsock_loopback` module). Where it is missing, as
/// on most CI machines, the test says so and skips.
#[tokio::test]
async fn vsock_for_real_where_the_machine_has_a_vsock_loopback() {
    let port = 50_000 + u32::from(free_port() % 10_000);
    let probe = tokio_vsock::VsockListener::bind(tokio_vsock::VsockAddr::new(1, port));
    let listener = match probe {
        Ok(listener) => listener,
        Err(error) => {
            println!("skipped: vsock loopback (CID 1) unreachable here: {error}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let _ingress = host(
        &[
            "ingress",
            "--listen",
            &listen,
            "--vsock",
            &format!("1:{port}"),
        ],
        &dir.path().join("ingress.log"),
    );
    until(|| std::net::TcpStream::connect(&listen).is_ok()).await;
    let (probe, _) = match tokio::time::timeout(Duration::from_secs(5), listener.accept()).await {
        Ok(Ok(accepted)) => accepted,
        other => {
            println!("skipped: vsock loopback (CID 1) does not carry connections here: {other:?}");
            return;
        }
    };
    drop(probe);
    let mut client = tokio::net::TcpStream::connect(&listen).await.unwrap();
    client.write_all(b"hello").await.unwrap();
    let (mut inside, _) = listener.accept().await.unwrap();
    let mut fixed = [0_u8; 16];
    inside.read_exact(&mut fixed).await.unwrap();
    assert_eq!(&fixed[..12], b"\r\n\r\n\0\r\nQUIT\n");
    let mut rest = vec![0_u8; usize::from(u16::from_be_bytes([fixed[14], fixed[15]]))];
    inside.read_exact(&mut rest).await.unwrap();
    let mut hello = [0_u8; 5];
    inside.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello, b"hello");

    // Egress on vsock (every context id), reached over CID 1.
    let (allowed, _) = echo_server().await;
    let egress_port = port + 1;
    let _egress = host(
        &[
            "egress",
            "--vsock-port",
            &egress_port.to_string(),
            "--allow",
            &allowed.to_string(),
        ],
        &dir.path().join("egress.log"),
    );
    let mut stream = None;
    for _ in 0..250 {
        let addr = tokio_vsock::VsockAddr::new(1, egress_port);
        if let Ok(connected) = tokio_vsock::VsockStream::connect(addr).await {
            stream = Some(connected);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut stream = stream.expect("egress listens on vsock");
    stream
        .write_all(format!("CONNECT {allowed} HTTP/1.1\r\nHost: {allowed}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = [0_u8; 39];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 Connection established\r\n\r\n");
    stream.write_all(b"ping").await.unwrap();
    let mut echo = [0_u8; 4];
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
}
