//! Runs the wallet proxy in process: a plain-HTTP JSON-RPC endpoint on loopback that relays to
//! the gateway over attested connections (what `shroud proxy` does).
//!
//! ```sh
//! cargo run -p shroud-client --example proxy -- https://127.0.0.1:8443/eth simulated:measurement=HEX
//! # then point a wallet's custom RPC URL at the printed address
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use shroud_client::Client;
use shroud_client::proxy::{Proxy, ProxyOptions};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(pin)) = (args.next(), args.next()) else {
        eprintln!("usage: proxy GATEWAY_URL PIN");
        return ExitCode::from(2);
    };
    let client = match Client::builder(&url)
        .pin(&pin)
        .danger_allow_simulated(pin.starts_with("simulated:"))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let listen = SocketAddr::from(([127, 0, 0, 1], 8545));
    let proxy = match Proxy::bind(listen, client, &ProxyOptions::new()).await {
        Ok(proxy) => proxy,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("wallet RPC URL: {}", proxy.url());
    proxy
        .run(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await;
    ExitCode::SUCCESS
}
