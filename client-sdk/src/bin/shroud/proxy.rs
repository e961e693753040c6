//! `shroud proxy`: a local plain-HTTP JSON-RPC endpoint for wallets, relaying over attested
//! connections (the library side is `shroud_client::proxy`).

use std::io::Write as _;
use std::net::SocketAddr;

use shroud_client::proxy::{Proxy, ProxyError, ProxyOptions};

use crate::{Failure, TrustArgs, client};

/// Binds the proxy, prints `shroud proxy listening on http://ADDR`, attests the gateway once to
/// report its state, then serves until Ctrl-C.
pub async fn proxy(
    listen: SocketAddr,
    gateway: &str,
    trust: &TrustArgs,
    allow_non_loopback: bool,
    http3: bool,
) -> Result<(), Failure> {
    let client = client(gateway, trust, http3)?;
    let options = ProxyOptions::new().allow_non_loopback(allow_non_loopback);
    let proxy = Proxy::bind(listen, client.clone(), &options)
        .await
        .map_err(|e| match e {
            ProxyError::NonLoopback(_) => Failure::Usage(e.to_string()),
            other => Failure::Runtime(other.to_string()),
        })?;
    if !proxy.local_addr().ip().is_loopback() {
        eprintln!(
            "warning: --allow-non-loopback: the proxy listens on {} and serves PLAIN HTTP; anyone who can reach this address can use it and read the answers",
            proxy.local_addr()
        );
    }
    if client.url().path_and_query().trim_matches('/').is_empty() {
        eprintln!(
            "warning: gateway URL {gateway} names no chain; the gateway serves JSON-RPC at /CHAIN (e.g. {}/eth), so every call through this proxy will be refused",
            gateway.trim_end_matches('/')
        );
    }
    println!("shroud proxy listening on {}", proxy.url());
    // Scripts read the line above to find the port; do not leave it in a buffer.
    std::io::stdout().flush().ok();
    match client.attest().await {
        Ok(verdict) => eprintln!(
            "gateway {gateway} attested: {} {}",
            verdict.platform(),
            verdict.measurements().describe()
        ),
        Err(error) => eprintln!(
            "warning: gateway {gateway} is not usable now: {error}; requests are answered with this error and nothing is forwarded until it is"
        ),
    }
    proxy
        .run(async {
            // Without a signal handler, serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await;
    Ok(())
}
