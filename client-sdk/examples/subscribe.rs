//! Follows new blocks of a Shroud gateway through the SDK: `eth_subscribe` over an attested
//! WebSocket, three heads, then `eth_unsubscribe`.
//!
//! ```sh
//! # a development gateway (simulated TEE) in front of a node on 127.0.0.1:8545:
//! shroud-gateway --dev --upstream eth=http://127.0.0.1:8545
//! # copy the `measurement: simulated HEX` line it prints, then:
//! cargo run -p shroud-client --example subscribe -- https://127.0.0.1:8443/eth simulated:measurement=HEX
//! ```
//!
//! Against a node that mines only on demand (ganache), mine a few blocks meanwhile, e.g. with
//! `shroud call URL evm_mine --pin ... --allow-simulated`.

use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use shroud_client::{Client, ClientError};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = args.next();
    let pins: Vec<String> = args.collect();
    let (Some(url), false) = (url, pins.is_empty()) else {
        eprintln!(
            "usage: subscribe GATEWAY_URL PIN...   (e.g. https://127.0.0.1:8443/eth simulated:measurement=HEX)"
        );
        return ExitCode::from(2);
    };
    match run(&url, &pins).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error ({}): {error}", error.kind());
            ExitCode::FAILURE
        }
    }
}

async fn run(url: &str, pins: &[String]) -> Result<(), ClientError> {
    let simulated = pins.iter().all(|pin| pin.starts_with("simulated:"));
    let client = pins
        .iter()
        .fold(Client::builder(url), |builder, pin| builder.pin(pin))
        .danger_allow_simulated(simulated)
        .timeout(Duration::from_secs(10))
        .build()?;

    // A WebSocket of its own, attested before the upgrade request is written.
    let mut heads = client.subscribe("newHeads", Value::Null).await?;
    println!("subscribed: {}", heads.id());
    for _ in 0..3 {
        // The stream's last item, if it ends, is the error that ended it (a close by the
        // gateway, a broken connection, silence).
        let Some(head) = heads.next().await else {
            break;
        };
        let head = head?;
        let field = |name| head.get(name).unwrap_or(&Value::Null);
        println!("block {} {}", field("number"), field("hash"));
    }
    heads.unsubscribe().await
}
