//! The gateway configuration (DESIGN §6): a TOML file, or [`Config::dev`] for `--dev`.
//!
//! Every table rejects unknown keys, so a typo is a start-up error rather than a silently ignored
//! setting. [`Config::validate`] checks what serde cannot: chain names, upstream URLs and the
//! plain-HTTP rule.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use http::Uri;
use serde::Deserialize;

/// Default address of the RA-TLS listener.
pub const DEFAULT_HTTPS_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);
/// Default address of the metrics listener.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);
/// Longest chain name accepted; it is a URL path segment and a metric label.
pub const MAX_CHAIN_NAME_LEN: usize = 64;
/// Paths that are routes of their own and so cannot be chain names.
const RESERVED_CHAIN_NAMES: [&str; 4] = ["healthz", "readyz", "ohttp", "metrics"];

/// The whole gateway configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener addresses.
    #[serde(default)]
    pub listen: ListenConfig,
    /// The trusted execution environment to attest with.
    #[serde(default)]
    pub tee: TeeConfig,
    /// The certificate's subject alternative names.
    #[serde(default)]
    pub tls: TlsConfig,
    /// The chains served, each at `POST /{name}`.
    #[serde(default, rename = "chain")]
    pub chains: Vec<ChainConfig>,
}

/// `[listen]`: where the gateway accepts connections.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// RA-TLS over TCP (HTTP/1.1 and HTTP/2).
    #[serde(default = "default_https")]
    pub https: SocketAddr,
    /// RA-TLS over QUIC (HTTP/3). Parsed, but not served by this build yet.
    #[serde(default)]
    pub h3: Option<SocketAddr>,
    /// Prometheus metrics (plain HTTP; keep it on a private interface).
    #[serde(default = "default_metrics")]
    pub metrics: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            https: DEFAULT_HTTPS_LISTEN,
            h3: None,
            metrics: DEFAULT_METRICS_LISTEN,
        }
    }
}

fn default_https() -> SocketAddr {
    DEFAULT_HTTPS_LISTEN
}

fn default_metrics() -> SocketAddr {
    DEFAULT_METRICS_LISTEN
}

/// `[tee]`: which attester produces the certificate's evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeeConfig {
    /// The platform; `auto` detects it at start.
    #[serde(default)]
    pub platform: TeePlatform,
}

/// The `[tee] platform` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeePlatform {
    /// Detect the platform at start.
    #[default]
    Auto,
    /// AWS Nitro Enclaves.
    Nitro,
    /// Intel TDX.
    Tdx,
    /// AMD SEV-SNP.
    SevSnp,
    /// Intel SGX (Gramine).
    Sgx,
    /// Development only: evidence signed by a per-process key, which proves nothing.
    Simulated,
}

impl TeePlatform {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Nitro => "nitro",
            Self::Tdx => "tdx",
            Self::SevSnp => "sev-snp",
            Self::Sgx => "sgx",
            Self::Simulated => "simulated",
        }
    }
}

impl std::fmt::Display for TeePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[tls]`: what the RA-TLS certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Subject alternative names: DNS names or IP addresses. RA-TLS clients do not check them,
    /// but browsers and generic tools want to see the host they asked for.
    #[serde(default = "default_hosts")]
    pub hosts: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            hosts: default_hosts(),
        }
    }
}

fn default_hosts() -> Vec<String> {
    vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
}

/// One `[[chain]]`: a name served at `POST /{name}` and the upstreams behind it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// URL-path-safe name (`[a-z0-9_-]`), also the `chain` metric label.
    pub name: String,
    /// The chain id every upstream must report (checked at start by a later release; `None` in
    /// `--dev`, where it is unknown).
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// Upstream JSON-RPC endpoints (`https://`, or `http://` to loopback). They may carry
    /// credentials in the path, so they are never logged or exported.
    pub upstreams: Vec<String>,
    /// Allows plain `http://` upstreams on non-loopback hosts for this chain.
    #[serde(default)]
    pub allow_insecure_upstream: bool,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A chain name is empty, too long, reserved or not URL-path-safe.
    #[error(
        "chain name {0:?} is invalid: use 1 to {MAX_CHAIN_NAME_LEN} characters of [a-z0-9_-], not healthz, readyz, ohttp or metrics"
    )]
    InvalidChainName(String),
    /// Two chains share a name.
    #[error("chain {0:?} is configured twice")]
    DuplicateChain(String),
    /// A chain has no upstream.
    #[error("chain {0:?} has no upstreams")]
    NoUpstreams(String),
    /// An upstream URL is not a usable `http(s)://` URL. The URL itself is not repeated (it may
    /// hold credentials).
    #[error("chain {chain:?}: upstream #{index} is invalid: {reason}")]
    InvalidUpstream {
        /// The chain.
        chain: String,
        /// The upstream's position in the chain's list, from 0.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A plain `http://` upstream on a non-loopback host without `allow_insecure_upstream`.
    #[error(
        "chain {chain:?}: upstream #{index} (host {host}) uses plain http:// to a non-loopback host; use https:// or set allow_insecure_upstream = true for this chain"
    )]
    InsecureUpstream {
        /// The chain.
        chain: String,
        /// The upstream's position in the chain's list, from 0.
        index: usize,
        /// The upstream's host.
        host: String,
    },
    /// A `--upstream` argument is not `NAME=URL`.
    #[error("--upstream {0:?}: expected NAME=URL")]
    InvalidDevUpstream(String),
}

impl Config {
    /// Parses and validates a TOML configuration.
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(s).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// The `--dev` configuration: simulated TEE, default TLS hosts, one chain per distinct name
    /// in `upstreams` (`(name, url)` pairs, several URLs per name allowed), chain ids unknown.
    /// Not validated here; [`Config::validate`] (and [`crate::Gateway::bind`]) do that.
    pub fn dev(upstreams: Vec<(String, String)>, listen: SocketAddr, metrics: SocketAddr) -> Self {
        let mut chains: Vec<ChainConfig> = Vec::new();
        for (name, url) in upstreams {
            match chains.iter_mut().find(|c| c.name == name) {
                Some(chain) => chain.upstreams.push(url),
                None => chains.push(ChainConfig {
                    name,
                    chain_id: None,
                    upstreams: vec![url],
                    allow_insecure_upstream: false,
                }),
            }
        }
        Self {
            listen: ListenConfig {
                https: listen,
                h3: None,
                metrics,
            },
            tee: TeeConfig {
                platform: TeePlatform::Simulated,
            },
            tls: TlsConfig::default(),
            chains,
        }
    }

    /// Parses one `--upstream NAME=URL` argument.
    pub fn parse_dev_upstream(arg: &str) -> Result<(String, String), ConfigError> {
        match arg.split_once('=') {
            Some((name, url)) if !name.is_empty() && !url.is_empty() => {
                Ok((name.to_owned(), url.to_owned()))
            }
            _ => Err(ConfigError::InvalidDevUpstream(arg.to_owned())),
        }
    }

    /// Checks chain names and upstream URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for chain in &self.chains {
            if !is_valid_chain_name(&chain.name) {
                return Err(ConfigError::InvalidChainName(chain.name.clone()));
            }
            if !seen.insert(chain.name.as_str()) {
                return Err(ConfigError::DuplicateChain(chain.name.clone()));
            }
            if chain.upstreams.is_empty() {
                return Err(ConfigError::NoUpstreams(chain.name.clone()));
            }
            for index in 0..chain.upstreams.len() {
                chain.upstream_uri(index)?;
            }
        }
        Ok(())
    }
}

impl ChainConfig {
    /// The parsed and checked URI of upstream `index`.
    pub fn upstream_uri(&self, index: usize) -> Result<Uri, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidUpstream {
            chain: self.name.clone(),
            index,
            reason: reason.to_owned(),
        };
        let url = self
            .upstreams
            .get(index)
            .ok_or_else(|| invalid("no such upstream"))?;
        let uri: Uri = url
            .parse()
            .map_err(|_| invalid("not a URL (expected http:// or https://)"))?;
        let secure = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("the URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid(
                "user:password@ in the URL is not supported; put API keys in the path",
            ));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(invalid("the URL has no host"));
        }
        if !secure && !self.allow_insecure_upstream && !is_loopback_host(host) {
            return Err(ConfigError::InsecureUpstream {
                chain: self.name.clone(),
                index,
                host: host.to_owned(),
            });
        }
        Ok(uri)
    }
}

/// `[a-z0-9_-]{1,64}`, and not the name of another route.
pub fn is_valid_chain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHAIN_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !RESERVED_CHAIN_NAMES.contains(&name)
}

/// `localhost`, 127.0.0.0/8 or ::1 (with or without brackets).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.10",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "[::2]",
            "localhost.example.com",
            "128.0.0.1",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn chain_names() {
        for name in ["eth", "base-sepolia", "op_main", "1"] {
            assert!(is_valid_chain_name(name), "{name}");
        }
        for name in [
            "",
            "Eth",
            "eth/x",
            "eth.x",
            "healthz",
            "ohttp",
            "ä",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_chain_name(name), "{name}");
        }
    }

    #[test]
    fn dev_groups_upstreams_by_name() {
        let config = Config::dev(
            vec![
                ("eth".into(), "http://127.0.0.1:1".into()),
                ("base".into(), "http://127.0.0.1:2".into()),
                ("eth".into(), "http://127.0.0.1:3".into()),
            ],
            DEFAULT_HTTPS_LISTEN,
            DEFAULT_METRICS_LISTEN,
        );
        assert_eq!(config.chains.len(), 2);
        assert_eq!(config.chains[0].upstreams.len(), 2);
        assert_eq!(config.tee.platform, TeePlatform::Simulated);
        config.validate().unwrap();
    }

    #[test]
    fn dev_upstream_argument() {
        assert_eq!(
            Config::parse_dev_upstream("eth=http://127.0.0.1:8545").unwrap(),
            ("eth".to_owned(), "http://127.0.0.1:8545".to_owned())
        );
        assert!(Config::parse_dev_upstream("eth").is_err());
        assert!(Config::parse_dev_upstream("=http://x").is_err());
    }
}
