//! Intel SGX and TDX DCAP quotes, verified with dcap-qvl to the pinned Intel SGX Root CA.
//!
//! The collateral is dcap-qvl's [`QuoteCollateralV3`] as JSON (PCK CRL and chain, root CA CRL,
//! TCB info, QE identity, with their signatures). dcap-qvl checks the quote signature, the QE
//! report, the PCK chain, the collateral signatures and CRLs at the verifier's clock, and matches
//! the platform's TCB level. Its TCB-status *policy* is not used: the status is mapped explicitly
//! to [`TcbStatus`] and [`crate::Policy::check_tcb`] decides. The only policy handed to dcap-qvl
//! is [`FreshCollateral`], which refuses collateral outside its validity window.

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::quote::{Quote, Report};
use dcap_qvl::verify::QuoteVerifier;
use rustls_pki_types::UnixTime;

use super::report::PlatformReport;
use crate::{Error, Measurements, Platform, TcbStatus};

/// The Intel SGX Root CA (DER), the one trust anchor of DCAP. Pinned here rather than taken
/// from the quote or the collateral, which only carry intermediates signed by it.
/// SHA-256 `44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3`.
pub const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("roots/intel_sgx_root_ca.der");

/// SGX `ATTRIBUTES.FLAGS` bit 1: the enclave was launched in debug mode.
const SGX_FLAG_DEBUG: u8 = 0x02;
/// TDX `TD_ATTRIBUTES` bit 0 (`TUD.DEBUG`): the TD runs in debug mode.
const TDX_ATTR_DEBUG: u8 = 0x01;

/// Verifies an SGX (`platform` = [`Platform::Sgx`]) or TDX quote with its collateral at `now`.
///
/// Without collateral nothing can be checked, so that is the first thing said. A debug enclave
/// or TD is then refused before the collateral is verified: refusing on the not yet
/// authenticated debug bit can only turn an answer into a refusal, never the other way round.
pub(crate) fn verify(
    platform: Platform,
    quote: &[u8],
    collateral: Option<&[u8]>,
    now: UnixTime,
) -> Result<PlatformReport, Error> {
    let collateral = collateral.ok_or(Error::MissingCollateral { platform })?;
    let parsed = Quote::parse(quote)
        .map_err(|e| Error::MalformedEvidence(format!("{platform} quote: {e:#}")))?;
    let (quote_platform, debug) = describe(&parsed.report);
    if quote_platform != platform {
        return Err(Error::MalformedEvidence(format!(
            "expected a {platform} quote, the quote header says {quote_platform}"
        )));
    }
    if debug {
        return Err(Error::DebugEnclave { platform });
    }
    let collateral =
        collateral_from_json(collateral).map_err(|reason| Error::MalformedCollateral {
            platform,
            reason: format!("expected dcap-qvl QuoteCollateralV3 JSON: {reason}"),
        })?;
    let now_secs = now.as_secs();
    let claims = QuoteVerifier::new(INTEL_SGX_ROOT_CA_DER.to_vec())
        .verify_with_policy(quote, collateral, now_secs, &FreshCollateral { now_secs })
        .map_err(|e| Error::EvidenceRejected {
            platform,
            reason: format!("{e:#}"),
        })?;
    let tcb_status = map_tcb_status(claims.tcb.status);
    // What is reported from here on is the authenticated report dcap-qvl returned.
    let (verified_platform, verified_debug) = describe(&claims.report);
    if verified_platform != platform || verified_debug {
        return Err(Error::EvidenceRejected {
            platform,
            reason: "verified report differs from the parsed quote".into(),
        });
    }
    let (measurements, report_data) = measurements(&claims.report);
    Ok(PlatformReport {
        platform,
        measurements,
        report_data,
        debug: verified_debug,
        tcb_status,
        tcb_eval_data_number: Some(claims.tcb.eval_data_number),
        snp_tcb: None,
        snp_vmpl: None,
        issued_at: None,
        valid_until: Some(claims.earliest_expiration_date),
    })
}

/// dcap-qvl's `QuoteCollateralV3` from its JSON form (strings, and hex for the CRLs and
/// signatures), read through `serde_json::Value` rather than its derived `Deserialize`, whose
/// code was 2.5 KB of the gzipped browser module. Unknown keys are ignored, as the derived
/// reader does; of a key given twice the last counts (every piece is verified on its own).
fn collateral_from_json(json: &[u8]) -> Result<QuoteCollateralV3, String> {
    let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(fields) = value else {
        return Err("not a JSON object".into());
    };
    let text = |key: &str| match fields.get(key) {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(format!("{key} is not a string")),
        None => Err(format!("missing field `{key}`")),
    };
    let bytes = |key: &str| hex::decode(text(key)?).map_err(|e| format!("{key}: {e}"));
    Ok(QuoteCollateralV3 {
        pck_crl_issuer_chain: text("pck_crl_issuer_chain")?,
        root_ca_crl: bytes("root_ca_crl")?,
        pck_crl: bytes("pck_crl")?,
        tcb_info_issuer_chain: text("tcb_info_issuer_chain")?,
        tcb_info: text("tcb_info")?,
        tcb_info_signature: bytes("tcb_info_signature")?,
        qe_identity_issuer_chain: text("qe_identity_issuer_chain")?,
        qe_identity: text("qe_identity")?,
        qe_identity_signature: bytes("qe_identity_signature")?,
        pck_certificate_chain: match fields.get("pck_certificate_chain") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(chain)) => Some(chain.clone()),
            Some(_) => return Err("pck_certificate_chain is not a string".into()),
        },
    })
}

/// The platform and measurements a quote states, without verifying it: what an attester reports
/// about itself at start-up (the verifier never uses this).
#[cfg(feature = "attest")]
pub(crate) fn unverified_measurements(quote: &[u8]) -> Result<(Platform, Measurements), Error> {
    let parsed =
        Quote::parse(quote).map_err(|e| Error::MalformedEvidence(format!("quote: {e:#}")))?;
    let (platform, _) = describe(&parsed.report);
    Ok((platform, measurements(&parsed.report).0))
}

/// The platform of a quote body and whether it is a debug build.
fn describe(report: &Report) -> (Platform, bool) {
    match report {
        Report::SgxEnclave(r) => (Platform::Sgx, flag(&r.attributes, SGX_FLAG_DEBUG)),
        Report::TD10(r) => (Platform::Tdx, flag(&r.td_attributes, TDX_ATTR_DEBUG)),
        Report::TD15(r) => (Platform::Tdx, flag(&r.base.td_attributes, TDX_ATTR_DEBUG)),
        Report::TD15Ex(r) => (
            Platform::Tdx,
            flag(&r.base.base.td_attributes, TDX_ATTR_DEBUG),
        ),
    }
}

fn flag(attributes: &[u8], mask: u8) -> bool {
    attributes.first().is_some_and(|b| b & mask != 0)
}

/// The measurements of DESIGN §6 and the 64 bytes of report data.
fn measurements(report: &Report) -> (Measurements, Vec<u8>) {
    let mut m = Measurements::new();
    let td = match report {
        Report::SgxEnclave(r) => {
            m.insert("mrenclave", r.mr_enclave);
            m.insert("mrsigner", r.mr_signer);
            m.insert("isvprodid", r.isv_prod_id.to_le_bytes());
            m.insert("isvsvn", r.isv_svn.to_le_bytes());
            return (m, r.report_data.to_vec());
        }
        Report::TD10(r) => r,
        Report::TD15(r) => &r.base,
        Report::TD15Ex(r) => &r.base.base,
    };
    m.insert("mrtd", td.mr_td);
    m.insert("rtmr0", td.rt_mr0);
    m.insert("rtmr1", td.rt_mr1);
    m.insert("rtmr2", td.rt_mr2);
    m.insert("rtmr3", td.rt_mr3);
    (m, td.report_data.to_vec())
}

/// Intel's TCB status in our vocabulary, spelled out so that a new dcap-qvl status cannot
/// slip through as acceptable.
fn map_tcb_status(status: dcap_qvl::TcbStatus) -> TcbStatus {
    use dcap_qvl::TcbStatus as Intel;
    match status {
        Intel::UpToDate => TcbStatus::UpToDate,
        Intel::SWHardeningNeeded => TcbStatus::SwHardeningNeeded,
        Intel::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
        Intel::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSwHardeningNeeded,
        Intel::OutOfDate => TcbStatus::OutOfDate,
        Intel::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
        Intel::Revoked => TcbStatus::Revoked,
        // A TD 1.5 that launched on an out-of-date TCB and was updated in place: its launch-time
        // measurements were taken on vulnerable firmware, so it counts as out of date.
        Intel::TDRelaunchAdvised => TcbStatus::OutOfDate,
        Intel::TDRelaunchAdvisedConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
    }
}

/// The one dcap-qvl policy we apply: every piece of collateral (TCB info, QE identity, CRLs,
/// certificates) must be valid at the verifier's clock. TCB status is left to our policy.
struct FreshCollateral {
    now_secs: u64,
}

impl dcap_qvl::Policy for FreshCollateral {
    fn validate(&self, claims: &dcap_qvl::QuoteClaims) -> anyhow::Result<()> {
        if claims.earliest_expiration_date < self.now_secs {
            anyhow::bail!(
                "collateral expired: earliest nextUpdate/notAfter {} < now {}",
                claims.earliest_expiration_date,
                self.now_secs
            );
        }
        if claims.latest_issue_date > self.now_secs {
            anyhow::bail!(
                "collateral not yet valid: latest issueDate/notBefore {} > now {}",
                claims.latest_issue_date,
                self.now_secs
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collateral_reads_as_dcap_qvl_reads_it() {
        let json = serde_json::json!({
            "pck_crl_issuer_chain": "chain", "root_ca_crl": "00ff", "pck_crl": "AB",
            "tcb_info_issuer_chain": "t", "tcb_info": "{}", "tcb_info_signature": "01",
            "qe_identity_issuer_chain": "q", "qe_identity": "{}", "qe_identity_signature": "",
            "unknown": 1,
        });
        let mut with_chain = json.clone();
        with_chain["pck_certificate_chain"] = "pem".into();
        for json in [json, with_chain] {
            let bytes = json.to_string().into_bytes();
            let derived: QuoteCollateralV3 = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(collateral_from_json(&bytes).unwrap(), derived);
        }
        for bad in [
            r#"{"pck_crl_issuer_chain": 1}"#,
            r#"{"root_ca_crl": "zz"}"#,
            "[]",
            "{",
        ] {
            assert!(collateral_from_json(bad.as_bytes()).is_err(), "{bad}");
            assert!(
                serde_json::from_str::<QuoteCollateralV3>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn pinned_root_is_the_intel_sgx_root_ca() {
        assert_eq!(
            hex::encode(crate::sha256(INTEL_SGX_ROOT_CA_DER)),
            "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
        );
    }
}
