//! Configuration parsing and validation, and what `Gateway::bind` does with a refused one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use shroud_gateway::config::{DEFAULT_METRICS_LISTEN, TeePlatform};
use shroud_gateway::{Config, ConfigError, Gateway, GatewayError};

const DESIGN_EXAMPLE: &str = r#"
[listen]
https = "0.0.0.0:8443"        # RA-TLS over TCP
h3 = "0.0.0.0:8443"           # RA-TLS over QUIC (optional)
metrics = "127.0.0.1:9464"
[tee]
platform = "auto"             # auto | nitro | tdx | sev-snp | sgx | simulated
[[chain]]
name = "eth"
chain_id = 1                  # checked against eth_chainId of every upstream at start
upstreams = ["https://node-a.example/v1/KEY", "https://node-b.example/"]
"#;

#[test]
fn the_design_example_parses() {
    let config = Config::from_toml_str(DESIGN_EXAMPLE).unwrap();
    assert_eq!(config.listen.https.to_string(), "0.0.0.0:8443");
    assert_eq!(config.listen.h3.unwrap().to_string(), "0.0.0.0:8443");
    assert_eq!(config.tee.platform, TeePlatform::Auto);
    assert_eq!(config.chains.len(), 1);
    assert_eq!(config.chains[0].chain_id, Some(1));
    assert_eq!(config.chains[0].upstreams.len(), 2);
    assert_eq!(config.tls.hosts, ["localhost", "127.0.0.1"]);
}

#[test]
fn defaults_apply() {
    let config = Config::from_toml_str("[tee]\nplatform = \"simulated\"\n").unwrap();
    assert_eq!(config.listen.https.to_string(), "127.0.0.1:8443");
    assert_eq!(config.listen.metrics, DEFAULT_METRICS_LISTEN);
    assert!(config.chains.is_empty());
    let config =
        Config::from_toml_str("[tee]\nplatform = \"sev-snp\"\n[tls]\nhosts = [\"rpc.example\"]\n")
            .unwrap();
    assert_eq!(config.tee.platform, TeePlatform::SevSnp);
    assert_eq!(config.tls.hosts, ["rpc.example"]);
}

#[test]
fn unknown_keys_are_rejected_everywhere() {
    for text in [
        "typo = 1\n",
        "[listen]\nhttps = \"127.0.0.1:1\"\nhttp = \"127.0.0.1:2\"\n",
        "[tee]\nplatfrom = \"simulated\"\n",
        "[tls]\nhost = [\"x\"]\n",
        "[[chain]]\nname = \"eth\"\nupstreams = [\"https://a.example\"]\nchainid = 1\n",
        "[unknown]\n",
    ] {
        let error = Config::from_toml_str(text).unwrap_err();
        assert!(matches!(error, ConfigError::Parse(_)), "{text}: {error}");
        assert!(error.to_string().contains("unknown"), "{text}: {error}");
    }
}

#[test]
fn wrong_types_and_values_are_rejected() {
    for text in [
        "[tee]\nplatform = \"sgx2\"\n",
        "[listen]\nhttps = \"not an address\"\n",
        "[[chain]]\nname = \"eth\"\nchain_id = \"one\"\nupstreams = [\"https://a.example\"]\n",
        "[[chain]]\nname = \"eth\"\n",
    ] {
        assert!(
            matches!(Config::from_toml_str(text), Err(ConfigError::Parse(_))),
            "{text}"
        );
    }
}

fn chain(name: &str, upstreams: &str, extra: &str) -> String {
    format!("[[chain]]\nname = \"{name}\"\nupstreams = [{upstreams}]\n{extra}")
}

#[test]
fn plain_http_only_to_loopback_unless_allowed() {
    for upstream in [
        "http://127.0.0.1:8545",
        "http://127.1.2.3:8545/path",
        "http://localhost:8545",
        "http://[::1]:8545",
        "https://node.example/v1/KEY",
    ] {
        Config::from_toml_str(&chain("eth", &format!("\"{upstream}\""), "")).unwrap();
    }
    for upstream in [
        "http://node.example/",
        "http://10.0.0.1:8545",
        "http://[::2]:8545",
    ] {
        let error =
            Config::from_toml_str(&chain("eth", &format!("\"{upstream}\""), "")).unwrap_err();
        assert!(
            matches!(error, ConfigError::InsecureUpstream { .. }),
            "{upstream}: {error}"
        );
        assert!(error.to_string().contains("allow_insecure_upstream"));
        Config::from_toml_str(&chain(
            "eth",
            &format!("\"{upstream}\""),
            "allow_insecure_upstream = true\n",
        ))
        .unwrap();
    }
}

#[test]
fn bad_upstreams_are_rejected_without_echoing_the_url() {
    for upstream in [
        "ftp://node.example/",
        "ws://node.example/",
        "node.example",
        "https://user:SECRETKEY@node.example/",
        "",
        "/relative/SECRETKEY",
    ] {
        let error =
            Config::from_toml_str(&chain("eth", &format!("\"{upstream}\""), "")).unwrap_err();
        assert!(
            matches!(error, ConfigError::InvalidUpstream { .. }),
            "{upstream}: {error}"
        );
        assert!(!error.to_string().contains("SECRETKEY"), "{error}");
    }
    let error = Config::from_toml_str(&chain("eth", "", "")).unwrap_err();
    assert!(matches!(error, ConfigError::NoUpstreams(_)), "{error}");
}

#[test]
fn chain_names_are_path_safe_and_unique() {
    for name in [
        "Eth", "eth/main", "eth.main", "", "healthz", "eth main", "%65th",
    ] {
        let error = Config::from_toml_str(&chain(name, "\"https://a.example\"", "")).unwrap_err();
        assert!(
            matches!(error, ConfigError::InvalidChainName(_)),
            "{name}: {error}"
        );
    }
    let twice = format!(
        "{}{}",
        chain("eth", "\"https://a.example\"", ""),
        chain("eth", "\"https://b.example\"", "")
    );
    assert!(matches!(
        Config::from_toml_str(&twice),
        Err(ConfigError::DuplicateChain(_))
    ));
}

/// Off TEE hardware every hardware platform, and `auto`, refuses to start with a message that
/// says what was looked for; only the simulated TEE, asked for by name, starts.
#[tokio::test]
async fn bind_refuses_to_start_without_a_tee() {
    for (platform, names) in [
        ("auto", "no TEE found"),
        ("nitro", "/dev/nsm"),
        ("tdx", "/sys/kernel/config/tsm/report"),
        ("sev-snp", "/sys/kernel/config/tsm/report"),
        ("sgx", "/dev/attestation"),
    ] {
        let text = format!(
            "[listen]\nhttps = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n[tee]\nplatform = \"{platform}\"\n"
        );
        let error = Gateway::bind(Config::from_toml_str(&text).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(error, GatewayError::Attestation(_)), "{error}");
        assert!(!error.is_usage_error());
        assert!(error.to_string().contains(names), "{platform}: {error}");
    }
}

#[test]
fn collateral_urls_must_be_https_or_loopback() {
    let config = |tee: &str| Config::from_toml_str(&format!("[tee]\n{tee}\n"));
    assert!(config("intel_collateral_url = \"https://pccs.example:8081\"").is_ok());
    assert!(config("amd_kds_url = \"http://127.0.0.1:8080\"").is_ok());
    let error = config("intel_collateral_url = \"http://pccs.example\"").unwrap_err();
    assert!(error.to_string().contains("loopback"), "{error}");
    let error = config("amd_product = \"Naples\"").unwrap_err();
    assert!(error.to_string().contains("Milan"), "{error}");
}

#[tokio::test]
async fn bind_validates_a_dev_config() {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let config = Config::dev(
        vec![("eth".into(), "http://node.example/".into())],
        loopback,
        loopback,
    );
    let error = Gateway::bind(config).await.unwrap_err();
    assert!(
        matches!(
            error,
            GatewayError::Config(ConfigError::InsecureUpstream { .. })
        ),
        "{error}"
    );
}

/// DESIGN §6's `[acme]` table parses; every malformed value is refused at start, naming the key.
#[test]
fn acme_tables_are_checked_at_start() {
    let acme = |body: &str| format!("[tee]\nplatform = \"simulated\"\n[acme]\n{body}\n");
    let good = acme(
        "directory = \"https://acme-v02.api.letsencrypt.org/directory\"\ncontact = \"mailto:ops@example.org\"\nhosts = [\"rpc.example.org\", \"RPC2.example.org\"]",
    );
    let config = Config::from_toml_str(&good).unwrap();
    let table = config.acme.unwrap();
    assert_eq!(table.hosts, ["rpc.example.org", "RPC2.example.org"]);
    assert_eq!(table.ca, None);

    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), "no certificate here").unwrap();
    for (body, expected) in [
        (
            "directory = \"http://ca.example/dir\"\nhosts = [\"rpc.example.org\"]".to_owned(),
            "directory must be an https:// URL",
        ),
        (
            "directory = \"https://ca.example/dir\"\nhosts = []".to_owned(),
            "hosts is empty",
        ),
        (
            "directory = \"https://ca.example/dir\"\nhosts = [\"10.0.0.1\"]".to_owned(),
            "not a DNS name",
        ),
        (
            "directory = \"https://ca.example/dir\"\nhosts = [\"*.example.org\"]".to_owned(),
            "not a DNS name",
        ),
        (
            "directory = \"https://ca.example/dir\"\nhosts = [\"localhost\"]".to_owned(),
            "not a DNS name",
        ),
        (
            "directory = \"https://ca.example/dir\"\nhosts = [\"a.example\", \"A.example\"]"
                .to_owned(),
            "listed twice",
        ),
        (
            "directory = \"https://ca.example/dir\"\ncontact = \"ops@example.org\"\nhosts = [\"a.example\"]".to_owned(),
            "contact must be a mailto: URL",
        ),
        (
            format!(
                "directory = \"https://ca.example/dir\"\nhosts = [\"a.example\"]\nca = {:?}",
                ca.path()
            ),
            "holds no PEM certificate",
        ),
        (
            "directory = \"https://ca.example/dir\"\nhosts = [\"a.example\"]\nca = \"/nonexistent/ca.pem\"".to_owned(),
            "/nonexistent/ca.pem",
        ),
    ] {
        let error = Config::from_toml_str(&acme(&body))
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{body}: {error}");
    }
    // Unknown keys and a missing directory are parse errors.
    for body in [
        "directory = \"https://ca.example/dir\"\nhosts = [\"a.example\"]\nhost = \"x\"",
        "hosts = [\"a.example\"]",
    ] {
        assert!(matches!(
            Config::from_toml_str(&acme(body)),
            Err(ConfigError::Parse(_))
        ));
    }
}

/// DESIGN §6's `[cluster]` table parses; every malformed value is refused at start, naming the
/// key and what is expected.
#[test]
fn cluster_tables_are_checked_at_start() {
    let measurement = "ab".repeat(48);
    let cluster = |platform: &str, body: &str| {
        format!("[tee]\nplatform = \"{platform}\"\n[cluster]\nlisten = \"0.0.0.0:7443\"\n{body}\n")
    };
    // The design's example, and the one form of each key.
    let good = cluster(
        "tdx",
        "peers = [\"shroud-0.shroud:7443\", \"shroud-1.shroud:7443\", \"10.0.0.7:7443\", \"[fd00::7]:7443\", \"shroud-peers:7443\"]\nfound = false\nallow_measurements = [\"tdx:mrtd=00 tdx:rtmr0=00 tdx:rtmr1=00 tdx:rtmr2=00\"]\nkey_epoch_secs = 3600\ntimeout_ms = 2000"
            .replace("=00", &format!("={measurement}"))
            .as_str(),
    );
    let table = Config::from_toml_str(&good).unwrap().cluster.unwrap();
    // The example of docs/configuration.md parses as it is written there.
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/configuration.md"
    ))
    .unwrap();
    let example = docs
        .split("## `[cluster]`")
        .nth(1)
        .and_then(|section| section.split("```toml\n").nth(1))
        .and_then(|block| block.split("```").next())
        .unwrap();
    let documented = Config::from_toml_str(example).unwrap().cluster.unwrap();
    assert_eq!(documented.timeout_ms, 5_000);
    assert!(!documented.found);
    assert_eq!(table.listen.to_string(), "0.0.0.0:7443");
    assert_eq!(table.peers.len(), 5);
    assert!(!table.found && !table.danger_allow_simulated);
    Config::from_toml_str(&cluster(
        "simulated",
        "found = true\ndanger_allow_simulated = true",
    ))
    .unwrap();

    for (platform, body, expected) in [
        (
            "simulated",
            "found = true".to_owned(),
            "set danger_allow_simulated = true",
        ),
        (
            "auto",
            "found = false".to_owned(),
            "needs peers to get the secret from",
        ),
        (
            "auto",
            "peers = [\"shroud-peers\"]".to_owned(),
            "expected HOST:PORT",
        ),
        (
            "auto",
            "peers = [\"shroud-peers:0\"]".to_owned(),
            "expected HOST:PORT",
        ),
        (
            "auto",
            "peers = [\"::1:7443\"]".to_owned(),
            "expected HOST:PORT",
        ),
        (
            "auto",
            "peers = [\"a:7443\", \"A:7443\"]".to_owned(),
            "listed twice",
        ),
        (
            "auto",
            format!("found = true\nallow_measurements = [\"tdx:mrtd={measurement}\"]"),
            "complete identity",
        ),
        (
            "auto",
            format!(
                "found = true\nallow_measurements = [\"sev-snp:measurement={measurement} simulated:measurement={measurement}\"]"
            ),
            "one entry names one build",
        ),
        (
            "auto",
            format!("found = true\nallow_measurements = [\"simulated:measurement={measurement}\"]"),
            "needs danger_allow_simulated = true",
        ),
        (
            "auto",
            "found = true\nkey_epoch_secs = 1".to_owned(),
            "key_epoch_secs 1 must be between",
        ),
        (
            "auto",
            "found = true\ntimeout_ms = 0".to_owned(),
            "timeout_ms must be positive",
        ),
    ] {
        let error = Config::from_toml_str(&cluster(platform, &body))
            .unwrap_err()
            .to_string();
        assert!(error.contains("[cluster]"), "{body}: {error}");
        assert!(error.contains(expected), "{body}: {error}");
    }
    // Unknown keys, a missing or malformed listen address are parse errors.
    for text in [
        cluster("auto", "found = true\npeer = [\"a:1\"]"),
        "[cluster]\nfound = true\n".to_owned(),
        "[cluster]\nlisten = \"shroud:7443\"\nfound = true\n".to_owned(),
    ] {
        assert!(
            matches!(Config::from_toml_str(&text), Err(ConfigError::Parse(_))),
            "{text}"
        );
    }
}

/// Every TOML example of docs/configuration.md is a configuration the gateway accepts (the page
/// says so).
#[test]
fn every_example_of_the_configuration_page_is_accepted() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/configuration.md"
    ))
    .unwrap();
    let examples: Vec<&str> = docs
        .split("```toml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    assert!(examples.len() >= 5, "{} examples", examples.len());
    for example in examples {
        if let Err(error) = Config::from_toml_str(example) {
            panic!("docs/configuration.md example refused: {error}\n{example}");
        }
    }
}
