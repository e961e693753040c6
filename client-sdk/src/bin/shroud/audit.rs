//! `shroud audit`: checks that the certificate a web-PKI-only wallet sees on a URL has the key
//! the enclave attests (DESIGN §4.1, §6). It attests as `shroud attest` does (offering
//! `shroud-ra-tls/1`, so the gateway serves its RA-TLS certificate), then connects again as a
//! plain web-PKI client (not offering it: ALPN `h2`, `http/1.1`, SNI the URL's host) verifying
//! the public chain against the system's roots or `--ca`, and compares the two leaves' keys.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use shroud_client::connect::{ALPN, AttestedConnector, GatewayUrl};
use shroud_client::{ClientError, Verdict};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

use crate::attest::rfc3339;
use crate::{Failure, TrustArgs, client, resolve_address};

/// The largest `--ca` file read.
const MAX_CA_FILE_LEN: u64 = 4 * 1024 * 1024;

/// What is shown of one leaf certificate.
struct Leaf {
    issuer: String,
    names: Vec<String>,
    not_after: Option<u64>,
    spki_sha256: [u8; 32],
}

impl Leaf {
    fn parse(der: &[u8], which: &str) -> Result<Leaf, Failure> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| {
            Failure::Runtime(format!("the {which} certificate does not parse: {e}"))
        })?;
        let names = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .map(|name| match name {
                        GeneralName::DNSName(dns) => (*dns).to_owned(),
                        GeneralName::IPAddress(ip) => match ip.len() {
                            4 => <[u8; 4]>::try_from(*ip)
                                .map(|ip| std::net::IpAddr::from(ip).to_string())
                                .unwrap_or_default(),
                            16 => <[u8; 16]>::try_from(*ip)
                                .map(|ip| std::net::IpAddr::from(ip).to_string())
                                .unwrap_or_default(),
                            _ => hex::encode(ip),
                        },
                        other => other.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Leaf {
            issuer: cert.issuer().to_string(),
            names,
            not_after: u64::try_from(cert.validity().not_after.timestamp()).ok(),
            spki_sha256: shroud_ra_tls::sha256(cert.public_key().raw),
        })
    }

    fn text(&self, title: &str) -> String {
        format!(
            "{title}\n  issuer       {}\n  names        {}\n  not_after    {}\n  spki_sha256  {}\n",
            self.issuer,
            if self.names.is_empty() {
                "(none)".to_owned()
            } else {
                self.names.join(", ")
            },
            self.not_after.map_or_else(|| "?".to_owned(), rfc3339),
            hex::encode(self.spki_sha256)
        )
    }

    fn json(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "names": self.names,
            "not_after": self.not_after.map(rfc3339),
            "not_after_unix": self.not_after,
            "spki_sha256": hex::encode(self.spki_sha256),
        })
    }
}

/// Audits `url`: exit 0 only when the attestation verifies, the public chain verifies and both
/// leaves have the same key.
pub async fn audit(
    url: &str,
    trust: &TrustArgs,
    ca: Option<&Path>,
    as_json: bool,
) -> Result<(), Failure> {
    let client = client(url, trust, false)?;
    let gateway = client.url().clone();
    let address = resolve_address(&gateway, trust)?;
    let timeout = Duration::from_secs(trust.timeout);
    // The roots first: a bad --ca is a usage error, found before any connection.
    let roots = roots(ca)?;

    let connector = AttestedConnector::new(Arc::clone(client.verifier()))?.connect_to(address);
    let (verdict, attested_der) = bounded(timeout, attested_leaf(&connector, &gateway)).await??;
    let attested = Leaf::parse(&attested_der, "attested")?;

    let public = bounded(timeout, public_leaf(&gateway, address, roots)).await?;
    let public = match public {
        Ok(der) => Leaf::parse(&der, "public")?,
        Err(reason) => {
            print_report(url, &verdict, &attested, None, as_json);
            return Err(Failure::Runtime(reason));
        }
    };
    print_report(url, &verdict, &attested, Some(&public), as_json);
    if public.spki_sha256 != attested.spki_sha256 {
        return Err(Failure::Runtime(format!(
            "key mismatch: the public certificate's key {} is not the attested key {}",
            hex::encode(public.spki_sha256),
            hex::encode(attested.spki_sha256)
        )));
    }
    if !as_json {
        println!("audit        ok: the public certificate has the attested key");
    }
    Ok(())
}

fn print_report(
    url: &str,
    verdict: &Verdict,
    attested: &Leaf,
    public: Option<&Leaf>,
    as_json: bool,
) {
    let keys_match = public.map(|p| p.spki_sha256 == attested.spki_sha256);
    if as_json {
        println!(
            "{}",
            json!({
                "url": url,
                "attestation": {
                    "verdict": "trusted",
                    "platform": verdict.platform().as_str(),
                    "certificate": attested.json(),
                },
                "public": public.map(Leaf::json),
                "keys_match": keys_match,
                "verdict": if keys_match == Some(true) { "ok" } else { "failed" },
            })
        );
    } else {
        print!(
            "gateway      {url}\nattestation  trusted ({})\n{}",
            verdict.platform(),
            attested.text("attested certificate (RA-TLS)")
        );
        match public {
            Some(public) => print!("{}", public.text("public certificate (web PKI, verified)")),
            None => println!("public certificate (web PKI): does not verify"),
        }
    }
}

async fn bounded<T>(timeout: Duration, work: impl Future<Output = T>) -> Result<T, Failure> {
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Failure::Client(ClientError::Timeout(timeout)))
}

/// The attested handshake, nothing sent: the verdict and the leaf certificate.
async fn attested_leaf(
    connector: &AttestedConnector,
    url: &GatewayUrl,
) -> Result<(Verdict, Vec<u8>), Failure> {
    let connection = connector.connect(url).await?;
    let der = connection
        .stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.as_ref().to_vec())
        .ok_or_else(|| Failure::Runtime("the gateway presented no certificate".into()))?;
    let mut stream = connection.stream;
    tokio::io::AsyncWriteExt::shutdown(&mut stream).await.ok();
    Ok((connection.verdict, der))
}

/// The trusted roots: the `--ca` file's certificates, else the system's.
fn roots(ca: Option<&Path>) -> Result<RootCertStore, Failure> {
    let mut store = RootCertStore::empty();
    match ca {
        Some(path) => {
            let shown = path.display();
            let len = std::fs::metadata(path)
                .map_err(|e| Failure::Usage(format!("--ca {shown}: {e}")))?
                .len();
            if len > MAX_CA_FILE_LEN {
                return Err(Failure::Usage(format!(
                    "--ca {shown}: larger than {MAX_CA_FILE_LEN} bytes"
                )));
            }
            let pem =
                std::fs::read(path).map_err(|e| Failure::Usage(format!("--ca {shown}: {e}")))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert =
                    cert.map_err(|e| Failure::Usage(format!("--ca {shown}: not PEM: {e}")))?;
                store
                    .add(cert)
                    .map_err(|e| Failure::Usage(format!("--ca {shown}: {e}")))?;
            }
            if store.is_empty() {
                return Err(Failure::Usage(format!(
                    "--ca {shown}: no PEM certificate in it"
                )));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(native.certs);
            if store.is_empty() {
                return Err(Failure::Runtime(
                    "no system root certificates found (give the roots with --ca FILE)".into(),
                ));
            }
        }
    }
    Ok(store)
}

/// A plain web-PKI handshake (no `shroud-ra-tls/1` offered); the leaf, or why the chain does not
/// verify.
async fn public_leaf(
    url: &GatewayUrl,
    address: Option<SocketAddr>,
    roots: RootCertStore,
) -> Result<Vec<u8>, String> {
    let mut config =
        rustls::ClientConfig::builder_with_provider(shroud_ra_tls::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("web PKI: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    let server_name = url.server_name().map_err(|e| e.to_string())?;
    let tcp = match address {
        Some(address) => TcpStream::connect(address).await,
        None => TcpStream::connect((url.host(), url.port())).await,
    }
    .map_err(|e| format!("web PKI: cannot connect to {}: {e}", url.authority()))?;
    let mut stream = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| {
            format!(
                "web PKI: the public certificate of {} does not verify: {e}",
                url.authority()
            )
        })?;
    let der = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.as_ref().to_vec())
        .ok_or_else(|| "web PKI: the server presented no certificate".to_owned())?;
    tokio::io::AsyncWriteExt::shutdown(&mut stream).await.ok();
    Ok(der)
}
