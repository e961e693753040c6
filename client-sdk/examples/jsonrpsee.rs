//! Hands a jsonrpsee client (its `ClientT` API) to code that already uses jsonrpsee; every
//! connection it opens is attested first.
//!
//! ```sh
//! cargo run -p shroud-client --example jsonrpsee -- https://127.0.0.1:8443/eth simulated:measurement=HEX
//! ```

use std::process::ExitCode;

use shroud_client::Client;
use shroud_client::jsonrpsee::core::client::ClientT;
use shroud_client::jsonrpsee::rpc_params;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(pin)) = (args.next(), args.next()) else {
        eprintln!("usage: jsonrpsee GATEWAY_URL PIN");
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
    let rpc = match client.jsonrpsee_client() {
        Ok(rpc) => rpc,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Existing jsonrpsee code takes `rpc` as any `impl ClientT`.
    match block_number(&rpc).await {
        Ok(block) => {
            println!("eth_blockNumber = {block}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn block_number(
    rpc: &impl ClientT,
) -> Result<String, shroud_client::jsonrpsee::core::ClientError> {
    rpc.request("eth_blockNumber", rpc_params![]).await
}
