//! What to fetch for the endorsements extension, and how to assemble the answers: Intel PCS or
//! a PCCS (PCS API v4) for SGX and TDX quotes, AMD KDS for the SEV-SNP VCEK. Pure functions over
//! bytes: the gateway does the HTTP GETs and calls these.

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::quote::Quote;
use serde::Deserialize;

use crate::cmw::Endorsements;
use crate::{Error, Platform};

/// Intel's Provisioning Certification Service.
pub const INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com";
/// Where Intel publishes the SGX Root CA's CRL (DER), for collateral from the PCS.
pub const INTEL_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// AMD's Key Distribution Service.
pub const AMD_KDS_URL: &str = "https://kdsintf.amd.com";

/// One HTTP answer: the body and the response headers.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The body.
    pub body: Vec<u8>,
    /// The headers, as received.
    pub headers: Vec<(String, String)>,
}

impl Fetched {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The issuer chain of a PCS answer: a URL-encoded PEM header.
    fn issuer_chain(&self, names: &[&str]) -> Result<String, Error> {
        let value = names
            .iter()
            .find_map(|n| self.header(n))
            .ok_or_else(|| malformed(format!("PCS answer without {}", names.join(" or "))))?;
        urlencoding::decode(value)
            .map(std::borrow::Cow::into_owned)
            .map_err(|e| malformed(format!("{}: {e}", names.join("/"))))
    }
}

/// The URLs to fetch for one Intel quote's collateral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelRequest {
    /// The PCK CRL (DER) of the quote's PCK CA.
    pub pck_crl: String,
    /// The TCB info of the quote's FMSPC (SGX or TDX).
    pub tcb_info: String,
    /// The QE (SGX) or TD-QE (TDX) identity.
    pub qe_identity: String,
    /// The Intel SGX Root CA CRL: DER from Intel, hex text from a PCCS.
    pub root_ca_crl: String,
    root_ca_crl_is_hex: bool,
    pck_chain: Option<String>,
}

/// The answers to an [`IntelRequest`], in the same order.
#[derive(Debug, Clone, Default)]
pub struct IntelAnswers {
    /// The PCK CRL answer.
    pub pck_crl: Fetched,
    /// The TCB info answer.
    pub tcb_info: Fetched,
    /// The QE identity answer.
    pub qe_identity: Fetched,
    /// The root CA CRL answer.
    pub root_ca_crl: Fetched,
}

/// The URLs for `quote`'s collateral at `base_url` (the Intel PCS or a PCCS).
pub fn intel_request(quote: &[u8], base_url: &str) -> Result<IntelRequest, Error> {
    let parsed = Quote::parse(quote).map_err(|e| malformed(format!("quote: {e:#}")))?;
    let fmspc = dcap_qvl::intel::quote_fmspc(&parsed)
        .map_err(|e| malformed(format!("FMSPC of the PCK certificate: {e:#}")))?;
    let ca = dcap_qvl::intel::quote_ca(&parsed)
        .map_err(|e| malformed(format!("PCK CA of the PCK certificate: {e:#}")))?;
    let tee = if parsed.header.is_sgx() { "sgx" } else { "tdx" };
    let base = base_url
        .trim_end_matches('/')
        .trim_end_matches("/sgx/certification/v4")
        .trim_end_matches("/tdx/certification/v4");
    let url = |tee: &str, path: &str| format!("{base}/{tee}/certification/v4/{path}");
    let is_pcs = base.starts_with(INTEL_PCS_URL);
    // Certification data type 5: the PCK chain is in the quote.
    let pck_chain = (parsed.inner_cert_type() == 5)
        .then(|| String::from_utf8_lossy(parsed.inner_cert_data()).into_owned());
    Ok(IntelRequest {
        pck_crl: url("sgx", &format!("pckcrl?ca={}&encoding=der", ca.as_id_str())),
        tcb_info: url(
            tee,
            &format!("tcb?fmspc={}&update=standard", hex::encode_upper(fmspc)),
        ),
        qe_identity: url(tee, "qe/identity?update=standard"),
        root_ca_crl: if is_pcs {
            INTEL_ROOT_CA_CRL_URL.to_owned()
        } else {
            url("sgx", "rootcacrl")
        },
        root_ca_crl_is_hex: !is_pcs,
        pck_chain,
    })
}

#[derive(Deserialize)]
struct TcbInfoAnswer {
    #[serde(rename = "tcbInfo")]
    tcb_info: Box<serde_json::value::RawValue>,
    signature: String,
}

#[derive(Deserialize)]
struct QeIdentityAnswer {
    #[serde(rename = "enclaveIdentity")]
    enclave_identity: Box<serde_json::value::RawValue>,
    signature: String,
}

impl IntelRequest {
    /// The endorsements (dcap-qvl `QuoteCollateralV3` JSON) from the answers.
    pub fn assemble(&self, answers: &IntelAnswers) -> Result<Endorsements, Error> {
        let tcb: TcbInfoAnswer = serde_json::from_slice(&answers.tcb_info.body)
            .map_err(|e| malformed(format!("TCB info: {e}")))?;
        let qe: QeIdentityAnswer = serde_json::from_slice(&answers.qe_identity.body)
            .map_err(|e| malformed(format!("QE identity: {e}")))?;
        let root_ca_crl = if self.root_ca_crl_is_hex {
            let text = String::from_utf8_lossy(&answers.root_ca_crl.body);
            hex::decode(text.trim()).map_err(|e| malformed(format!("root CA CRL hex: {e}")))?
        } else {
            answers.root_ca_crl.body.clone()
        };
        let signature = |what: &str, hex_text: &str| {
            hex::decode(hex_text).map_err(|e| malformed(format!("{what} signature: {e}")))
        };
        let collateral = QuoteCollateralV3 {
            pck_crl_issuer_chain: answers
                .pck_crl
                .issuer_chain(&["SGX-PCK-CRL-Issuer-Chain"])?,
            root_ca_crl,
            pck_crl: answers.pck_crl.body.clone(),
            tcb_info_issuer_chain: answers
                .tcb_info
                .issuer_chain(&["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"])?,
            tcb_info: tcb.tcb_info.get().to_owned(),
            tcb_info_signature: signature("TCB info", &tcb.signature)?,
            qe_identity_issuer_chain: answers
                .qe_identity
                .issuer_chain(&["SGX-Enclave-Identity-Issuer-Chain"])?,
            qe_identity: qe.enclave_identity.get().to_owned(),
            qe_identity_signature: signature("QE identity", &qe.signature)?,
            pck_certificate_chain: self.pck_chain.clone(),
        };
        let json = serde_json::to_vec(&collateral)
            .map_err(|e| malformed(format!("encoding the collateral: {e}")))?;
        Ok(Endorsements::Intel { collateral: json })
    }
}

/// The KDS URL of the VCEK that signed `report`: `/vcek/v1/{product}/{hwid}?blSPL=…`.
///
/// `product` is `Milan`, `Genoa` or `Turin`; reports of version 3 and later name it through
/// their CPUID fields, older ones need it from the operator (`product`).
pub fn amd_vcek_url(report: &[u8], kds_url: &str, product: Option<&str>) -> Result<String, Error> {
    use sev::firmware::guest::AttestationReport;
    use sev::parser::ByteParser;

    let parsed = AttestationReport::from_bytes(report)
        .map_err(|e| malformed(format!("SEV-SNP report: {e}")))?;
    let product = match (parsed.cpuid_fam_id, parsed.cpuid_mod_id, product) {
        (_, _, Some(product)) => product.to_owned(),
        (Some(family), Some(model), None) => match sev::Generation::identify_cpu(family, model) {
            Ok(sev::Generation::Milan) => "Milan".to_owned(),
            Ok(sev::Generation::Genoa) => "Genoa".to_owned(),
            Ok(sev::Generation::Turin) => "Turin".to_owned(),
            _ => {
                return Err(malformed(format!(
                    "unknown AMD product (family {family:#x}, model {model:#x})"
                )));
            }
        },
        _ => {
            return Err(malformed(
                "the report (version 2) does not name the AMD product; configure it".into(),
            ));
        }
    };
    let tcb = parsed.reported_tcb;
    let turin = product == "Turin";
    // Turin VCEKs are keyed by the 8 significant bytes of the chip ID and carry an FMC SPL.
    let hwid = if turin {
        parsed.chip_id.get(..8).unwrap_or_default()
    } else {
        parsed.chip_id.as_slice()
    };
    let fmc = match (turin, tcb.fmc) {
        (true, Some(fmc)) => format!("fmcSPL={fmc}&"),
        _ => String::new(),
    };
    Ok(format!(
        "{}/vcek/v1/{product}/{}?{fmc}blSPL={}&teeSPL={}&snpSPL={}&ucodeSPL={}",
        kds_url.trim_end_matches('/'),
        hex::encode(hwid),
        tcb.bootloader,
        tcb.tee,
        tcb.snp,
        tcb.microcode
    ))
}

/// The endorsements for an SEV-SNP report signed by the VCEK (or VLEK) `vek_der`.
pub fn sev_snp_endorsements(vek_der: Vec<u8>) -> Endorsements {
    Endorsements::SevSnp {
        certificates: vec![vek_der],
    }
}

/// The VCEK or VLEK from a configfs-tsm `auxblob` (the GHCB certificate table the host supplied):
/// entries of GUID (16 bytes), offset and length (u32 little endian), up to an all-zero entry.
pub fn vek_from_auxblob(auxblob: &[u8]) -> Option<Vec<u8>> {
    // GUIDs of the VLEK and VCEK entries (GHCB specification), in table byte order.
    const VLEK: [u8; 16] = guid(
        0xa807_4bc2,
        0xa25a,
        0x483e,
        *b"\xaa\xe6\x39\xc0\x45\xa0\xb8\xa1",
    );
    const VCEK: [u8; 16] = guid(
        0x63da_758d,
        0xe664,
        0x4564,
        *b"\xad\xc5\xf4\xb9\x3b\xe8\xac\xcd",
    );
    let entries: Vec<([u8; 16], &[u8])> = auxblob
        .chunks_exact(24)
        .map_while(|entry| {
            let (id, rest) = entry.split_first_chunk::<16>()?;
            if id.iter().all(|b| *b == 0) {
                return None;
            }
            let (offset, rest) = rest.split_first_chunk::<4>()?;
            let (length, _) = rest.split_first_chunk::<4>()?;
            let start = usize::try_from(u32::from_le_bytes(*offset)).ok()?;
            let len = usize::try_from(u32::from_le_bytes(*length)).ok()?;
            let data = auxblob.get(start..start.checked_add(len)?)?;
            Some((*id, data))
        })
        .collect();
    [VLEK, VCEK]
        .iter()
        .find_map(|wanted| entries.iter().find(|(id, _)| id == wanted))
        .map(|(_, data)| data.to_vec())
}

/// A GUID in RFC 4122 byte order, as the host tools (the `sev` crate) write the table.
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_be_bytes();
    let b = b.to_be_bytes();
    let c = c.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// Whether `platform` needs collateral in its certificates.
pub fn needs_endorsements(platform: Platform) -> bool {
    matches!(platform, Platform::Sgx | Platform::Tdx | Platform::SevSnp)
}

fn malformed(reason: String) -> Error {
    Error::Attestation(format!("collateral: {reason}"))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed assumption is a failed test"
    )]

    use super::*;

    #[test]
    fn intel_urls_follow_the_pcs_v4_api() {
        let Some(dir) = shroud_testkit::vectors::attestation_vectors() else {
            return;
        };
        let tdx = std::fs::read(dir.join("intel/tdx_quote.bin")).unwrap();
        let request = intel_request(&tdx, INTEL_PCS_URL).unwrap();
        assert!(
            request.pck_crl.starts_with(
                "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca="
            )
        );
        assert!(
            request.tcb_info.starts_with(
                "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc="
            ),
            "{}",
            request.tcb_info
        );
        assert_eq!(request.root_ca_crl, INTEL_ROOT_CA_CRL_URL);
        let sgx = std::fs::read(dir.join("intel/sgx_quote.bin")).unwrap();
        let request =
            intel_request(&sgx, "https://pccs.example:8081/sgx/certification/v4/").unwrap();
        assert_eq!(
            request.qe_identity,
            "https://pccs.example:8081/sgx/certification/v4/qe/identity?update=standard"
        );
        assert_eq!(
            request.root_ca_crl,
            "https://pccs.example:8081/sgx/certification/v4/rootcacrl"
        );
    }

    /// Answers rebuilt from the vector's own collateral assemble into collateral that verifies
    /// the quote: the assembly loses nothing.
    #[test]
    fn assembled_collateral_verifies_the_quote() {
        let Some(dir) = shroud_testkit::vectors::attestation_vectors() else {
            return;
        };
        let quote = std::fs::read(dir.join("intel/tdx_quote.bin")).unwrap();
        let original: QuoteCollateralV3 = serde_json::from_slice(
            &std::fs::read(dir.join("intel/tdx_quote_collateral.json")).unwrap(),
        )
        .unwrap();
        let chain = |name: &str, pem: &str| Fetched {
            body: Vec::new(),
            headers: vec![(name.to_owned(), urlencoding::encode(pem).into_owned())],
        };
        let mut pck_crl = chain("SGX-PCK-CRL-Issuer-Chain", &original.pck_crl_issuer_chain);
        pck_crl.body = original.pck_crl.clone();
        let mut tcb_info = chain("tcb-info-issuer-chain", &original.tcb_info_issuer_chain);
        tcb_info.body = format!(
            "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
            original.tcb_info,
            hex::encode(&original.tcb_info_signature)
        )
        .into_bytes();
        let mut qe_identity = chain(
            "SGX-Enclave-Identity-Issuer-Chain",
            &original.qe_identity_issuer_chain,
        );
        qe_identity.body = format!(
            "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
            original.qe_identity,
            hex::encode(&original.qe_identity_signature)
        )
        .into_bytes();
        let answers = IntelAnswers {
            pck_crl,
            tcb_info,
            qe_identity,
            root_ca_crl: Fetched {
                body: original.root_ca_crl.clone(),
                headers: vec![],
            },
        };
        let request = intel_request(&quote, INTEL_PCS_URL).unwrap();
        let endorsements = request.assemble(&answers).unwrap();
        assert!(endorsements.is_for(Platform::Tdx));
        let report = crate::verify::verify_raw_evidence(
            Platform::Tdx,
            &quote,
            Some(&endorsements.verifier_collateral()),
            rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                1_751_587_200,
            )),
        )
        .unwrap();
        assert_eq!(report.tcb_status, crate::TcbStatus::UpToDate);
        // A missing issuer chain is an error, not empty collateral.
        let mut broken = answers;
        broken.pck_crl.headers.clear();
        assert!(request.assemble(&broken).is_err());
    }

    #[test]
    fn vcek_url_names_chip_and_tcb() {
        let Some(dir) = shroud_testkit::vectors::attestation_vectors() else {
            return;
        };
        let report = std::fs::read(dir.join("sev-snp/report_milan.bin")).unwrap();
        // Version 2: the product must be configured.
        assert!(amd_vcek_url(&report, AMD_KDS_URL, None).is_err());
        let url = amd_vcek_url(&report, AMD_KDS_URL, Some("Milan")).unwrap();
        assert!(
            url.starts_with("https://kdsintf.amd.com/vcek/v1/Milan/d49554ec717f4e5b"),
            "{url}"
        );
        assert!(
            url.ends_with("?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"),
            "{url}"
        );
    }

    #[test]
    fn auxblob_certificate_table_yields_the_vcek() {
        const VCEK: [u8; 16] = guid(
            0x63da_758d,
            0xe664,
            0x4564,
            *b"\xad\xc5\xf4\xb9\x3b\xe8\xac\xcd",
        );
        let mut table = Vec::new();
        table.extend_from_slice(&VCEK);
        table.extend_from_slice(&48u32.to_le_bytes());
        table.extend_from_slice(&3u32.to_le_bytes());
        table.extend_from_slice(&[0; 24]);
        table.extend_from_slice(b"DER");
        assert_eq!(vek_from_auxblob(&table), Some(b"DER".to_vec()));
        // Out-of-bounds entries and empty tables give nothing.
        let mut bad = table.clone();
        bad[16] = 0xff;
        assert_eq!(vek_from_auxblob(&bad), None);
        assert_eq!(vek_from_auxblob(&[0; 24]), None);
        assert_eq!(vek_from_auxblob(&[]), None);
    }
}
