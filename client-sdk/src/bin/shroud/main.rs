//! `shroud`: attest a Shroud gateway and call it, refusing any gateway whose enclave does not
//! run a pinned build.
//!
//! Exit codes: 0 success; 1 the gateway was refused, unreachable, or the call failed; 2 the
//! command line (arguments, pins, policy file, URL, params) is wrong.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use shroud_client::{Client, ClientError, Verdict};

const USAGE_EXIT: u8 = 2;

/// Verify a Shroud gateway's enclave before sending it a byte.
#[derive(Debug, Parser)]
#[command(name = "shroud", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Attest the gateway (TLS handshake only, nothing sent) and print what it proved.
    Attest {
        #[arg(help = "The gateway, e.g. https://gateway.example:8443/eth")]
        url: String,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Call a JSON-RPC method through an attested connection and print the result.
    Call {
        #[arg(help = "The gateway and chain, e.g. https://gateway.example:8443/eth")]
        url: String,
        /// The JSON-RPC method, e.g. eth_blockNumber
        method: String,
        /// The params as JSON (default: [])
        #[arg(value_name = "PARAMS_JSON")]
        params: Option<String>,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print the result on one line instead of pretty-printed.
        #[arg(long)]
        compact: bool,
    },
}

#[derive(Debug, Args)]
struct TrustArgs {
    /// Trust a build with this measurement, e.g. tdx:mrtd=HEX; pins of one platform form one build.
    #[arg(long = "pin", value_name = "P:FIELD=HEX")]
    pins: Vec<String>,
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "pins",
        help = "Trust the builds of a TOML policy file (one [[accept]] table per build)"
    )]
    policy: Option<PathBuf>,
    /// DEVELOPMENT ONLY: accept the simulated TEE of `shroud-gateway --dev`, which proves nothing.
    #[arg(long)]
    allow_simulated: bool,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
}

/// A failure: the user's input (exit 2) or the gateway's side (exit 1).
enum Failure {
    Usage(String),
    Client(ClientError),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_)
            | Self::Client(ClientError::InvalidUrl { .. } | ClientError::Policy(_)) => USAGE_EXIT,
            Self::Client(_) => 1,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(message) => f.write_str(message),
            Self::Client(error) => error.fmt(f),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Self::Client(error)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Attest { url, trust, json } => attest(&url, &trust, json).await,
        Command::Call {
            url,
            method,
            params,
            trust,
            compact,
        } => call(&url, &method, params.as_deref(), &trust, compact).await,
    }
}

fn client(url: &str, trust: &TrustArgs) -> Result<Client, ClientError> {
    let policy = shroud_client::policy::policy_from_args(&trust.pins, trust.policy.as_deref())?;
    let client = Client::builder(url)
        .policy(policy)
        .danger_allow_simulated(trust.allow_simulated)
        .timeout(Duration::from_secs(trust.timeout))
        .build()?;
    if trust.allow_simulated {
        eprintln!(
            "warning: --allow-simulated: a gateway with SIMULATED attestation will be trusted; simulated evidence proves nothing about the code it runs (local development only)"
        );
    }
    Ok(client)
}

async fn attest(url: &str, trust: &TrustArgs, as_json: bool) -> Result<(), Failure> {
    let client = client(url, trust)?;
    match client.attest().await {
        Ok(verdict) if as_json => println!("{}", verdict_json(url, &verdict)),
        Ok(verdict) => print!("{}", verdict_text(url, &verdict)),
        Err(error) => {
            if as_json && let Some(reason) = error.attestation() {
                println!(
                    "{}",
                    json!({"url": url, "verdict": "rejected", "reason": reason.to_string()})
                );
            }
            return Err(error.into());
        }
    }
    Ok(())
}

async fn call(
    url: &str,
    method: &str,
    params: Option<&str>,
    trust: &TrustArgs,
    compact: bool,
) -> Result<(), Failure> {
    let params: Value = match params {
        None => json!([]),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| Failure::Usage(format!("PARAMS_JSON is not valid JSON: {e}")))?,
    };
    let client = client(url, trust)?;
    let result = client.request(method, params).await?;
    let printed = if compact {
        serde_json::to_string(&result)
    } else {
        serde_json::to_string_pretty(&result)
    };
    match printed {
        Ok(text) => println!("{text}"),
        Err(e) => return Err(ClientError::InvalidResponse(e.to_string()).into()),
    }
    Ok(())
}

fn verdict_json(url: &str, verdict: &Verdict) -> Value {
    let measurements: serde_json::Map<String, Value> = verdict
        .measurements
        .iter()
        .map(|(field, value)| (field.to_owned(), Value::from(hex::encode(value))))
        .collect();
    json!({
        "url": url,
        "verdict": "trusted",
        "platform": verdict.platform.as_str(),
        "measurements": measurements,
        "tcb_status": verdict.tcb_status.as_str(),
        "not_before": rfc3339(verdict.not_before),
        "not_after": rfc3339(verdict.not_after),
        "not_before_unix": verdict.not_before,
        "not_after_unix": verdict.not_after,
        "issued_at_unix": verdict.claims.iat,
        "spki_sha256": hex::encode(verdict.spki_sha256),
        "cert_sha256": hex::encode(verdict.cert_sha256),
    })
}

fn verdict_text(url: &str, verdict: &Verdict) -> String {
    let mut lines = vec![
        format!("gateway      {url}"),
        "verdict      trusted (the policy accepts this enclave)".to_owned(),
        format!("platform     {}", verdict.platform),
    ];
    lines.extend(
        verdict
            .measurements
            .iter()
            .map(|(field, value)| format!("{field:<12} {}", hex::encode(value))),
    );
    lines.push(format!("tcb_status   {}", verdict.tcb_status));
    lines.push(format!(
        "not_before   {} ({})",
        rfc3339(verdict.not_before),
        verdict.not_before
    ));
    lines.push(format!(
        "not_after    {} ({})",
        rfc3339(verdict.not_after),
        verdict.not_after
    ));
    if let Some(iat) = verdict.claims.iat {
        lines.push(format!("issued_at    {} ({iat})", rfc3339(iat)));
    }
    lines.push(format!("spki_sha256  {}", hex::encode(verdict.spki_sha256)));
    lines.push(format!("cert_sha256  {}", hex::encode(verdict.cert_sha256)));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Unix seconds as an RFC 3339 UTC timestamp.
fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
