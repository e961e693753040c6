//! `shroud`: attest a Shroud gateway, call it, or serve it to wallets on a local port, refusing
//! any gateway whose enclave does not run a pinned build.
//!
//! Exit codes: 0 success; 1 the gateway was refused, unreachable, or the call failed; 2 the
//! command line (arguments, pins, policy file, URL, params) is wrong.
#![forbid(unsafe_code)]

mod attest;
mod audit;
mod policy;
mod proxy;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use shroud_client::{Client, ClientError};

const USAGE_EXIT: u8 = 2;

/// Printed whenever `--allow-simulated` is given.
const SIMULATED_WARNING: &str = "warning: --allow-simulated: SIMULATED attestation will be trusted; simulated evidence proves nothing about the code it runs (local development only)";

/// Verify a Shroud gateway's enclave before sending it a byte.
#[derive(Debug, Parser)]
#[command(name = "shroud", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify an RA-TLS certificate or raw platform evidence offline (nothing is sent anywhere).
    Verify(verify::VerifyArgs),
    /// Attest the gateway (TLS handshake only, nothing sent) and print what it proved.
    Attest {
        #[arg(help = "The gateway, e.g. https://gateway.example:8443/eth")]
        url: String,
        #[command(flatten)]
        trust: TrustArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Also ask the attested gateway for fresh evidence: a certificate issued now for the same key whose claims carry a random 32-byte nonce (GET /.well-known/shroud/attestation?nonce=); fails unless the nonce and the key are bound.
        #[arg(long, conflicts_with = "http3")]
        fresh: bool,
        /// Use HTTP/3 over QUIC (UDP) to the URL's host and port: the gateway's [listen] h3 listener, attested in the QUIC handshake exactly as over TCP.
        #[arg(long)]
        http3: bool,
    },
    /// Check that the certificate a web-PKI-only wallet sees on URL has the attested key: attest (RA-TLS), then verify the public certificate chain like a browser and compare the keys. Exit 0 only when the attestation verifies, the public chain verifies and the keys match.
    Audit {
        #[arg(help = "The gateway, e.g. https://rpc.example.org/eth")]
        url: String,
        #[command(flatten)]
        trust: TrustArgs,
        /// Verify the public certificate against the PEM root certificates in FILE instead of the system's roots (the default: the platform's trust store, via rustls-native-certs; SSL_CERT_FILE / SSL_CERT_DIR are honoured).
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
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
        /// Use HTTP/3 over QUIC (UDP) to the URL's host and port: the gateway's [listen] h3 listener, attested in the QUIC handshake exactly as over TCP.
        #[arg(long)]
        http3: bool,
    },
    /// Serve a local plain-HTTP JSON-RPC endpoint for wallets, and WebSocket upgrades on the same
    /// port for subscriptions (ws://ADDR/CHAIN); every gateway connection is attested before
    /// anything is forwarded.
    Proxy {
        /// The local address to listen on (loopback only, unless --allow-non-loopback).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8545")]
        listen: SocketAddr,
        #[arg(
            long,
            value_name = "URL",
            help = "The gateway and chain, e.g. https://gateway.example:8443/eth"
        )]
        gateway: String,
        #[command(flatten)]
        trust: TrustArgs,
        /// Listen on a non-loopback address: the proxy serves PLAIN HTTP to anyone who can reach it.
        #[arg(long)]
        allow_non_loopback: bool,
        /// Use HTTP/3 over QUIC (UDP) to the gateway's host and port for JSON-RPC calls (the gateway's [listen] h3 listener, attested in the QUIC handshake); WebSocket upgrades still go over TCP to the same host and port.
        #[arg(long)]
        http3: bool,
    },
    /// Make policy files (what --policy takes).
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
}

#[derive(Debug, Args)]
struct TrustArgs {
    /// Trust a build with this measurement, e.g. tdx:mrtd=HEX; pins of one platform form one build, which must identify the code completely (tdx: mrtd and rtmr0..rtmr2).
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
    /// Connect to ADDR for HOST:PORT instead of resolving HOST, which stays the name sent (SNI) and checked (curl's --resolve); HOST:PORT must be the URL's.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    resolve: Option<String>,
}

/// A failure: the user's input (exit 2) or the gateway's side or the local system (exit 1).
enum Failure {
    Usage(String),
    Client(ClientError),
    Runtime(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => USAGE_EXIT,
            Self::Client(error) if error.kind() == shroud_client::ErrorKind::Config => USAGE_EXIT,
            Self::Client(_) | Self::Runtime(_) => 1,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(message) | Self::Runtime(message) => f.write_str(message),
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
    shroud_ra_tls::tls::install_process_default();
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
        Command::Verify(args) => verify::verify(&args),
        Command::Attest {
            url,
            trust,
            json,
            fresh,
            http3,
        } => attest::attest(&url, &trust, json, fresh, http3).await,
        Command::Audit {
            url,
            trust,
            ca,
            json,
        } => audit::audit(&url, &trust, ca.as_deref(), json).await,
        Command::Call {
            url,
            method,
            params,
            trust,
            compact,
            http3,
        } => call(&url, &method, params.as_deref(), &trust, compact, http3).await,
        Command::Proxy {
            listen,
            gateway,
            trust,
            allow_non_loopback,
            http3,
        } => proxy::proxy(listen, &gateway, &trust, allow_non_loopback, http3).await,
        Command::Policy { command } => policy::policy(&command),
    }
}

/// The client for `url`; over HTTP/3 (QUIC) when `http3`.
fn client(url: &str, trust: &TrustArgs, http3: bool) -> Result<Client, Failure> {
    let policy = shroud_client::policy::policy_from_args(&trust.pins, trust.policy.as_deref())?;
    let mut builder = Client::builder(url)
        .policy(policy)
        .danger_allow_simulated(trust.allow_simulated)
        .timeout(Duration::from_secs(trust.timeout))
        .http3(http3);
    if trust.resolve.is_some() {
        let gateway = shroud_client::connect::GatewayUrl::parse(url)?;
        if let Some(address) = resolve_address(&gateway, trust)? {
            builder = builder.connect_to(address);
        }
    }
    let client = builder.build()?;
    if trust.allow_simulated {
        eprintln!("{SIMULATED_WARNING}");
    }
    Ok(client)
}

/// The address `--resolve HOST:PORT:ADDR` gives for `url`; `None` without the option. HOST:PORT
/// must be the URL's (a usage error otherwise: with one URL, anything else is a typo).
fn resolve_address(
    url: &shroud_client::connect::GatewayUrl,
    trust: &TrustArgs,
) -> Result<Option<SocketAddr>, Failure> {
    let Some(spec) = trust.resolve.as_deref() else {
        return Ok(None);
    };
    let usage = |why: &str| Failure::Usage(format!("--resolve {spec:?}: {why}"));
    let mut parts = spec.splitn(3, ':');
    let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(usage("expected HOST:PORT:ADDR"));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| usage("PORT is not a port number"))?;
    let bare = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: std::net::IpAddr = bare
        .parse()
        .map_err(|_| usage("ADDR is not an IP address"))?;
    if !host.eq_ignore_ascii_case(url.host()) || port != url.port() {
        return Err(usage(&format!(
            "HOST:PORT is not the URL's {}:{}",
            url.host(),
            url.port()
        )));
    }
    Ok(Some(SocketAddr::new(ip, port)))
}

async fn call(
    url: &str,
    method: &str,
    params: Option<&str>,
    trust: &TrustArgs,
    compact: bool,
    http3: bool,
) -> Result<(), Failure> {
    let params: Value = match params {
        None => json!([]),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| Failure::Usage(format!("PARAMS_JSON is not valid JSON: {e}")))?,
    };
    let client = client(url, trust, http3)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(resolve: &str) -> TrustArgs {
        TrustArgs {
            pins: Vec::new(),
            policy: None,
            allow_simulated: false,
            timeout: 30,
            resolve: Some(resolve.to_owned()),
        }
    }

    #[test]
    fn resolve_takes_curls_form() {
        let url = shroud_client::connect::GatewayUrl::parse("https://rpc.shroud.test:8443/eth")
            .map_err(|e| e.to_string());
        let Ok(url) = url else {
            panic!("{url:?}");
        };
        for (spec, expected) in [
            ("rpc.shroud.test:8443:127.0.0.1", Some("127.0.0.1:8443")),
            ("RPC.shroud.test:8443:[::1]", Some("[::1]:8443")),
            ("rpc.shroud.test:8443:::1", Some("[::1]:8443")),
            ("rpc.shroud.test:443:127.0.0.1", None),
            ("other:8443:127.0.0.1", None),
            ("rpc.shroud.test:8443:localhost", None),
            ("rpc.shroud.test:8443", None),
        ] {
            let got = resolve_address(&url, &trust(spec)).ok().flatten();
            let expected = expected.and_then(|e| e.parse::<SocketAddr>().ok());
            assert_eq!(got, expected, "{spec}");
        }
        let no_option = TrustArgs {
            resolve: None,
            ..trust("")
        };
        assert!(matches!(resolve_address(&url, &no_option), Ok(None)));
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
