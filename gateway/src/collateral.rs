//! Collateral for the endorsements extension (DESIGN §3): the Intel PCK CRL, TCB info and QE
//! identity from Intel's PCS (or a PCCS) for SGX and TDX, the VCEK from AMD's KDS for SEV-SNP.
//! Fetched at start and before every rotation, so that clients verify certificates offline,
//! without a network call during the handshake.
//!
//! What to fetch and how to assemble the answers is pure code in
//! `shroud_ra_tls::attest::collateral`; this module does the HTTP and keeps the result.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use shroud_ra_tls::attest::Attester;
use shroud_ra_tls::attest::collateral::{self, Fetched, IntelAnswers};
use shroud_ra_tls::cmw::{Endorsements, Evidence};
use shroud_ra_tls::{Measurements, Platform, UnixTime};

use crate::config::TeeConfig;
use crate::egress::{HttpClient, https_client};
use crate::error::GatewayError;
use crate::transport::EgressProxy;
use crate::upstream::USER_AGENT;

/// How long one collateral request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest collateral answer read (a PCK CRL is a few KiB, TCB info tens of KiB).
const MAX_ANSWER: usize = 1024 * 1024;

/// Fetches collateral over HTTPS (plain HTTP only to a loopback PCCS, as the config allows).
pub(crate) struct CollateralFetcher {
    client: HttpClient,
    intel_url: String,
    kds_url: String,
    amd_product: Option<String>,
}

impl CollateralFetcher {
    /// A fetcher for the services named in `[tee]`, reached through `egress` when there is one.
    pub(crate) fn new(
        tee: &TeeConfig,
        egress: Option<&Arc<EgressProxy>>,
    ) -> Result<Self, GatewayError> {
        let plain = [&tee.intel_collateral_url, &tee.amd_kds_url]
            .iter()
            .any(|url| url.starts_with("http://"));
        Ok(Self {
            // Fetches are hours apart: nothing is worth keeping open between them.
            client: https_client(plain, std::time::Duration::from_secs(30), egress)?,
            intel_url: tee.intel_collateral_url.clone(),
            kds_url: tee.amd_kds_url.clone(),
            amd_product: tee.amd_product.clone(),
        })
    }

    /// The endorsements that let a verifier check `evidence` offline; `None` for platforms that
    /// need none (Nitro carries its chain in the document).
    pub(crate) async fn fetch(
        &self,
        evidence: &Evidence,
    ) -> Result<Option<Endorsements>, GatewayError> {
        match evidence {
            Evidence::Intel { quote, .. } => {
                let request = collateral::intel_request(quote, &self.intel_url)?;
                let (pck_crl, tcb_info, qe_identity, root_ca_crl) = tokio::try_join!(
                    self.get(&request.pck_crl),
                    self.get(&request.tcb_info),
                    self.get(&request.qe_identity),
                    self.get(&request.root_ca_crl),
                )?;
                let answers = IntelAnswers {
                    pck_crl,
                    tcb_info,
                    qe_identity,
                    root_ca_crl,
                };
                Ok(Some(request.assemble(&answers)?))
            }
            Evidence::SevSnp { report, .. } => {
                let url =
                    collateral::amd_vcek_url(report, &self.kds_url, self.amd_product.as_deref())?;
                let vcek = self.get(&url).await?;
                Ok(Some(collateral::sev_snp_endorsements(vcek.body)))
            }
            _ => Ok(None),
        }
    }

    /// `GET url`: a 200 answer within the time and size bounds, with its headers.
    async fn get(&self, url: &str) -> Result<Fetched, GatewayError> {
        let failed = |reason: String| GatewayError::Collateral(format!("GET {url}: {reason}"));
        let uri: Uri = url.parse().map_err(|_| failed("not a URL".into()))?;
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header(http::header::USER_AGENT, USER_AGENT)
            .body(Full::new(Bytes::new()))
            .map_err(|e| failed(e.to_string()))?;
        let response = tokio::time::timeout(FETCH_TIMEOUT, async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let status = response.status();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| failed(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, GatewayError>((status, headers, body))
        })
        .await
        .map_err(|_| failed(format!("no answer within {FETCH_TIMEOUT:?}")))??;
        let (status, headers, body) = response;
        if status != StatusCode::OK {
            return Err(failed(format!("HTTP {status}")));
        }
        Ok(Fetched {
            body: body.to_vec(),
            headers,
        })
    }
}

/// The platform attester, with the collateral its certificates carry kept up to date.
pub(crate) struct EndorsedAttester {
    inner: Box<dyn Attester>,
    fetcher: Option<CollateralFetcher>,
    endorsements: RwLock<Option<Vec<u8>>>,
}

impl EndorsedAttester {
    /// Wraps `inner`; collateral is fetched only for platforms that need it.
    pub(crate) fn new(
        inner: Box<dyn Attester>,
        tee: &TeeConfig,
        egress: Option<&Arc<EgressProxy>>,
    ) -> Result<Self, GatewayError> {
        let fetcher = collateral::needs_endorsements(inner.platform())
            .then(|| CollateralFetcher::new(tee, egress))
            .transpose()?;
        Ok(Self {
            inner,
            fetcher,
            endorsements: RwLock::new(None),
        })
    }

    /// Fetches fresh collateral for this machine's evidence and checks that it verifies that
    /// evidence now; on success, certificates issued from now on carry it. Does nothing for
    /// platforms without collateral.
    pub(crate) async fn refresh(self: &Arc<Self>) -> Result<(), GatewayError> {
        let Some(fetcher) = &self.fetcher else {
            return Ok(());
        };
        // Evidence over empty claims: only its platform identity (FMSPC, chip id, TCB) is used.
        let this = Arc::clone(self);
        let evidence = tokio::task::spawn_blocking(move || this.inner.attest(&[]))
            .await
            .map_err(|e| GatewayError::Task(e.to_string()))??;
        let Some(endorsements) = fetcher.fetch(&evidence).await? else {
            return Ok(());
        };
        let (platform, raw) = match &evidence {
            Evidence::Intel { quote, .. } => (evidence.platform()?, quote),
            Evidence::SevSnp { report, .. } => (Platform::SevSnp, report),
            _ => return Ok(()),
        };
        let report = shroud_ra_tls::verify::verify_raw_evidence(
            platform,
            raw,
            Some(&endorsements.verifier_collateral()),
            UnixTime::now(),
        )
        .map_err(|e| {
            GatewayError::Collateral(format!(
                "the fetched collateral does not verify this machine's evidence: {e}"
            ))
        })?;
        tracing::info!(
            platform = %platform,
            tcb_status = %report.tcb_status,
            "collateral fetched; certificates carry it in the endorsements extension"
        );
        let mut slot = self
            .endorsements
            .write()
            .map_err(|_| GatewayError::Task("collateral lock poisoned".into()))?;
        *slot = Some(endorsements.to_cbor());
        Ok(())
    }
}

impl Attester for EndorsedAttester {
    fn platform(&self) -> Platform {
        self.inner.platform()
    }

    fn measurements(&self) -> Measurements {
        self.inner.measurements()
    }

    fn attest(&self, claims: &[u8]) -> Result<Evidence, shroud_ra_tls::Error> {
        self.inner.attest(claims)
    }

    fn endorsements(&self) -> Option<Vec<u8>> {
        self.endorsements.read().ok().and_then(|e| e.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "test code: a failed assumption is a failed test"
    )]

    use std::convert::Infallible;
    use std::net::SocketAddr;

    use dcap_qvl::QuoteCollateralV3;
    use hyper::body::Incoming;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use shroud_ra_tls::attest::simulated::SimulatedAttester;
    use shroud_ra_tls::cert::{IssueParams, ParsedCertificate, issue_certificate};

    use super::*;

    /// One canned answer: path prefix, headers, body.
    type Route = (&'static str, Vec<(&'static str, String)>, Vec<u8>);

    /// A loopback stand-in for the PCS/PCCS or KDS: answers GETs whose path starts with a
    /// route's prefix, 404 otherwise.
    async fn serve(routes: Vec<Route>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = Arc::new(routes);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let routes = Arc::clone(&routes);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let routes = Arc::clone(&routes);
                        async move {
                            let path = request.uri().path().to_owned();
                            let mut response = http::Response::builder();
                            let body = match routes.iter().find(|(p, _, _)| path.starts_with(p)) {
                                Some((_, headers, body)) => {
                                    for (name, value) in headers {
                                        response = response.header(*name, value);
                                    }
                                    body.clone()
                                }
                                None => {
                                    response = response.status(404);
                                    Vec::new()
                                }
                            };
                            Ok::<_, Infallible>(
                                response.body(Full::new(Bytes::from(body))).unwrap(),
                            )
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        addr
    }

    fn tee(intel: &str, kds: &str, product: Option<&str>) -> TeeConfig {
        TeeConfig {
            intel_collateral_url: intel.to_owned(),
            amd_kds_url: kds.to_owned(),
            amd_product: product.map(str::to_owned),
            ..TeeConfig::default()
        }
    }

    /// A PCCS answering with the vector's own collateral, split back into PCS v4 answers.
    fn pccs_routes(original: &QuoteCollateralV3) -> Vec<Route> {
        let chain = |pem: &str| urlencoding::encode(pem).into_owned();
        vec![
            (
                "/sgx/certification/v4/pckcrl",
                vec![(
                    "SGX-PCK-CRL-Issuer-Chain",
                    chain(&original.pck_crl_issuer_chain),
                )],
                original.pck_crl.clone(),
            ),
            (
                "/tdx/certification/v4/tcb",
                vec![(
                    "TCB-Info-Issuer-Chain",
                    chain(&original.tcb_info_issuer_chain),
                )],
                format!(
                    "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
                    original.tcb_info,
                    hex::encode(&original.tcb_info_signature)
                )
                .into_bytes(),
            ),
            (
                "/tdx/certification/v4/qe/identity",
                vec![(
                    "SGX-Enclave-Identity-Issuer-Chain",
                    chain(&original.qe_identity_issuer_chain),
                )],
                format!(
                    "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
                    original.qe_identity,
                    hex::encode(&original.qe_identity_signature)
                )
                .into_bytes(),
            ),
            // A PCCS serves the root CA CRL as hex text.
            (
                "/sgx/certification/v4/rootcacrl",
                vec![],
                hex::encode(&original.root_ca_crl).into_bytes(),
            ),
        ]
    }

    #[tokio::test]
    async fn tdx_collateral_from_a_pccs_verifies_the_quote() {
        let Some(dir) = shroud_testkit::vectors::attestation_vectors() else {
            return;
        };
        let quote = std::fs::read(dir.join("intel/tdx_quote.bin")).unwrap();
        let original: QuoteCollateralV3 = serde_json::from_slice(
            &std::fs::read(dir.join("intel/tdx_quote_collateral.json")).unwrap(),
        )
        .unwrap();
        let addr = serve(pccs_routes(&original)).await;
        let fetcher = CollateralFetcher::new(
            &tee(&format!("http://{addr}"), collateral::AMD_KDS_URL, None),
            None,
        )
        .unwrap();
        let evidence = Evidence::Intel {
            quote: quote.clone(),
            claims: Vec::new(),
        };
        let endorsements = fetcher.fetch(&evidence).await.unwrap().unwrap();
        assert!(endorsements.is_for(Platform::Tdx));
        // The vector's pinned instant, 2025-07-04T00:00:00Z.
        let at = UnixTime::since_unix_epoch(Duration::from_secs(1_751_587_200));
        let report = shroud_ra_tls::verify::verify_raw_evidence(
            Platform::Tdx,
            &quote,
            Some(&endorsements.verifier_collateral()),
            at,
        )
        .unwrap();
        assert_eq!(report.tcb_status, shroud_ra_tls::TcbStatus::UpToDate);
    }

    #[tokio::test]
    async fn sev_snp_vcek_from_the_kds_verifies_the_report() {
        let Some(dir) = shroud_testkit::vectors::attestation_vectors() else {
            return;
        };
        let report = std::fs::read(dir.join("sev-snp/report_milan.bin")).unwrap();
        let vcek = std::fs::read(dir.join("sev-snp/vcek_milan.der")).unwrap();
        let addr = serve(vec![(
            "/vcek/v1/Milan/d49554ec717f4e5b",
            vec![],
            vcek.clone(),
        )])
        .await;
        let fetcher = CollateralFetcher::new(
            &tee(
                collateral::INTEL_PCS_URL,
                &format!("http://{addr}"),
                Some("Milan"),
            ),
            None,
        )
        .unwrap();
        let evidence = Evidence::SevSnp {
            report: report.clone(),
            claims: Vec::new(),
        };
        let endorsements = fetcher.fetch(&evidence).await.unwrap().unwrap();
        assert_eq!(endorsements, collateral::sev_snp_endorsements(vcek));
        // The vector's pinned instant, 2025-01-01T00:00:00Z.
        let at = UnixTime::since_unix_epoch(Duration::from_secs(1_735_689_600));
        shroud_ra_tls::verify::verify_raw_evidence(
            Platform::SevSnp,
            &report,
            Some(&endorsements.verifier_collateral()),
            at,
        )
        .unwrap();
    }

    #[tokio::test]
    async fn a_failed_fetch_names_the_url_and_status() {
        let Some(dir) = shroud_testkit::vectors::attestation_vectors() else {
            return;
        };
        let report = std::fs::read(dir.join("sev-snp/report_milan.bin")).unwrap();
        let addr = serve(Vec::new()).await;
        let kds = format!("http://{addr}");
        let fetcher =
            CollateralFetcher::new(&tee(collateral::INTEL_PCS_URL, &kds, Some("Milan")), None)
                .unwrap();
        let error = fetcher
            .fetch(&Evidence::SevSnp {
                report,
                claims: Vec::new(),
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("GET {kds}/vcek/v1/Milan/")),
            "{error}"
        );
        assert!(error.contains("HTTP 404"), "{error}");
    }

    /// Certificates issued through the wrapper carry the collateral it holds; simulated evidence
    /// needs none and gets none.
    #[test]
    fn issued_certificates_carry_the_held_collateral() {
        let inner = SimulatedAttester::with_measurement([7; 48]).unwrap();
        let attester = EndorsedAttester::new(Box::new(inner), &TeeConfig::default(), None).unwrap();
        assert!(attester.fetcher.is_none());
        let params = IssueParams::new(vec!["localhost".into()], UnixTime::now());
        let plain = issue_certificate(&attester, &params).unwrap();
        assert!(
            ParsedCertificate::parse(&plain.certificate)
                .unwrap()
                .endorsements
                .is_none()
        );

        let held = collateral::sev_snp_endorsements(b"VCEK".to_vec());
        *attester.endorsements.write().unwrap() = Some(held.to_cbor());
        let carried = issue_certificate(&attester, &params).unwrap();
        let parsed = ParsedCertificate::parse(&carried.certificate).unwrap();
        assert_eq!(parsed.endorsements, Some(held.to_cbor()));
    }
}
