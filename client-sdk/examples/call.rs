//! Calls a Shroud gateway through the SDK: attest, one call, a batch.
//!
//! ```sh
//! # a development gateway (simulated TEE) in front of a node on 127.0.0.1:8545:
//! shroud-gateway --dev --upstream eth=http://127.0.0.1:8545
//! # copy the `measurement: simulated HEX` line it prints, then:
//! cargo run -p shroud-client --example call -- https://127.0.0.1:8443/eth simulated:measurement=HEX
//! ```
//!
//! Simulated attestation is accepted only when the pin is a `simulated:` one: this example is
//! for local development. Against a real enclave, pass every pin of its identity, e.g.
//! `tdx:mrtd=HEX tdx:rtmr0=HEX tdx:rtmr1=HEX tdx:rtmr2=HEX`.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use shroud_client::{Client, ClientError};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = args.next();
    let pins: Vec<String> = args.collect();
    let (Some(url), false) = (url, pins.is_empty()) else {
        eprintln!(
            "usage: call GATEWAY_URL PIN...   (e.g. https://127.0.0.1:8443/eth simulated:measurement=HEX)"
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
        .retries(2)
        .build()?;

    // Optional: the handshake alone proves what the gateway runs; nothing is sent.
    let verdict = client.attest().await?;
    println!(
        "attested: {} {} (TCB {})",
        verdict.platform(),
        verdict.measurements().describe(),
        verdict.tcb_status()
    );

    let chain_id = client.request("eth_chainId", json!([])).await?;
    println!("eth_chainId = {chain_id}");

    let answers = client
        .batch([("eth_blockNumber", json!([])), ("eth_gasPrice", json!([]))])
        .await?;
    for (method, answer) in ["eth_blockNumber", "eth_gasPrice"].iter().zip(answers) {
        match answer {
            Ok(value) => println!("{method} = {value}"),
            Err(error) => println!("{method} failed: {error}"),
        }
    }
    Ok(())
}
