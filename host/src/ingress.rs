//! `shroud-host ingress`: public TCP connections piped, byte for byte, to the enclave (vsock, or
//! a Unix socket), each prefixed with a PROXY v2 header naming the client so that the enclave
//! can rate-limit per client. It carries TLS that ends inside the enclave: it sees ciphertext,
//! sizes and timing, and the client's address, which it never logs.

use std::net::SocketAddr;
use std::time::Duration;

use ppp::v2::{Builder, Command, Protocol, Version};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};

use crate::io::{Enclave, Stream};
use crate::pipe::{Ended, pipe};
use crate::shutdown::Shutdown;
use crate::slots::Slots;
use crate::timeouts::Timeouts;

/// Serves `listener` until `shutdown`, then waits up to the grace period for open pipes.
///
/// Nothing here logs the client's address, at any level: the operator's promise is that it is
/// never logged, and the host is where it would be easiest to break.
pub(crate) async fn run(
    listener: TcpListener,
    enclave: Enclave,
    slots: Slots,
    timeouts: Timeouts,
    mut shutdown: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.requested() => break,
        };
        let (tcp, client) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, usually: wait instead of spinning.
                tracing::warn!(%error, "accept failed; retrying shortly");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = slots.take() else {
            // Over the limit (logged by `Slots`, not per connection): closed by the drop.
            continue;
        };
        let enclave = enclave.clone();
        tokio::spawn(async move {
            match carry(tcp, client, &enclave, timeouts).await {
                Ok(Ended::Closed { a_to_b, b_to_a }) => {
                    tracing::debug!(
                        to_enclave = a_to_b,
                        from_enclave = b_to_a,
                        "connection closed"
                    );
                }
                Ok(Ended::Idle) => tracing::debug!("connection closed: idle"),
                Ok(Ended::Failed(error)) => tracing::debug!(%error, "connection failed"),
                Err(error) => tracing::warn!(%error, "the enclave could not be reached"),
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("ingress stopping: no longer accepting");
    if !slots.drain(timeouts.grace).await {
        tracing::warn!("grace period over; closing the remaining connections");
    }
}

/// One client connection: dial the enclave, send the PROXY header, then pipe. An error is about
/// reaching the enclave (it names no client); how the pipe ended is the `Ended`.
async fn carry(
    tcp: TcpStream,
    client: SocketAddr,
    enclave: &Enclave,
    timeouts: Timeouts,
) -> std::io::Result<Ended> {
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr()?;
    let mut inside = tokio::time::timeout(timeouts.connect, enclave.connect())
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the enclave did not accept in time",
            )
        })??;
    inside.write_all(&proxy_header(client, local)?).await?;
    let outside: Stream = Box::new(tcp);
    Ok(pipe(outside, inside, timeouts.idle).await)
}

/// The PROXY v2 header for a TCP client at `peer` that reached us at `local`.
pub(crate) fn proxy_header(peer: SocketAddr, local: SocketAddr) -> std::io::Result<Vec<u8>> {
    // Both of one family: an IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
    let (peer, local) = match (peer, local) {
        (SocketAddr::V6(p), SocketAddr::V6(l)) => {
            match (p.ip().to_ipv4_mapped(), l.ip().to_ipv4_mapped()) {
                (Some(p4), Some(l4)) => (
                    SocketAddr::new(p4.into(), p.port()),
                    SocketAddr::new(l4.into(), l.port()),
                ),
                _ => (SocketAddr::V6(p), SocketAddr::V6(l)),
            }
        }
        pair => pair,
    };
    let local = match (peer, local) {
        (SocketAddr::V4(_), SocketAddr::V6(l)) => {
            SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), l.port())
        }
        (SocketAddr::V6(_), SocketAddr::V4(l)) => {
            SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), l.port())
        }
        _ => local,
    };
    Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Stream,
        (peer, local),
    )
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_client() {
        let header = proxy_header(
            "127.0.0.2:40000".parse().unwrap(),
            "127.0.0.1:443".parse().unwrap(),
        )
        .unwrap();
        let parsed = ppp::v2::Header::try_from(&header[..]).unwrap();
        match parsed.addresses {
            ppp::v2::Addresses::IPv4(ip) => {
                assert_eq!(ip.source_address, std::net::Ipv4Addr::new(127, 0, 0, 2));
                assert_eq!(ip.source_port, 40000);
            }
            other => panic!("{other:?}"),
        }
        let mapped = proxy_header(
            "[::ffff:127.0.0.3]:1".parse().unwrap(),
            "[::ffff:127.0.0.1]:443".parse().unwrap(),
        )
        .unwrap();
        assert!(matches!(
            ppp::v2::Header::try_from(&mapped[..]).unwrap().addresses,
            ppp::v2::Addresses::IPv4(_)
        ));
    }
}
