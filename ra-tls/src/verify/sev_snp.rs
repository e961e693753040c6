//! AMD SEV-SNP attestation reports, verified with the `sev` crate to the pinned AMD root key
//! (ARK) of the report's product (Milan, Genoa, Turin).
//!
//! The chain is VCEK (or VLEK) → ASK (or ASVK) → ARK. The ARKs and ASKs are compiled in; the
//! endorsements supply the VCEK/VLEK and, optionally, an intermediate (an ASVK for a VLEK), which
//! is only trusted when the pinned ARK signed it. An ARK in the endorsements is ignored: the root
//! is never taken from the data being verified.
//!
//! Checks, in order: the report parses (sev); debug policy (bit 19) refused; every certificate
//! valid at the verifier's clock; ARK → intermediate → VEK signatures (RSA-PSS, sev); the VEK
//! names the product of its issuer; the report signature (ECDSA P-384/SHA-384 over the raw bytes
//! as received, not a re-encoding); the report's `reported_tcb` equals the TCB the VEK was issued
//! for; a VCEK's `hwID` equals the report's `chip_id`.
//!
//! Before any of that, the report's own invariants: reserved guest-policy bits as specified, a
//! VCEK or VLEK as signing key (and the endorsement of that kind), a VMPL that exists.
//!
//! AMD publishes no TCB status: a report is [`TcbStatus::OutOfDate`] when its `reported_tcb` is
//! below the platform's `committed_tcb` (the key of an older, superseded firmware), below the
//! product's minimum from AMD's security bulletins, or above its `launch_tcb`; otherwise
//! [`TcbStatus::UpToDate`].

use rustls_pki_types::UnixTime;
use sev::certs::snp::{Certificate, Chain, Verifiable, ca};
use sev::firmware::guest::AttestationReport;
use sev::firmware::host::TcbVersion;
use sev::parser::ByteParser;
use x509_cert::der::asn1::ObjectIdentifier;

use super::pki::{self, rejected};
use super::report::PlatformReport;
use crate::policy::SnpTcb;
use crate::x509::Certificate as X509Certificate;
use crate::{Error, Measurements, Platform, TcbStatus};

const PLATFORM: Platform = Platform::SevSnp;

/// Length of an attestation report (versions 2 to 5).
pub const REPORT_LEN: usize = 1184;
/// The report signature covers bytes `0..0x2a0`; the signature follows.
const SIGNED_LEN: usize = 0x2a0;
/// `SIGNATURE_ALGO` 1: ECDSA P-384 with SHA-384.
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// Where the guest policy sits in a report.
const POLICY_OFFSET: usize = 0x08;
/// Guest policy bit 17 is reserved and must be one; bits 26 to 63 are reserved and must be zero.
const POLICY_RESERVED_ONE: u64 = 1 << 17;
const POLICY_RESERVED_ZERO: u64 = !((1 << 26) - 1);
/// `KEY_INFO.SIGNING_KEY`: the report is signed by a VCEK (0) or a VLEK (1); 7 is "none".
const SIGNING_KEY_VCEK: u32 = 0;
const SIGNING_KEY_VLEK: u32 = 1;
/// The highest virtual machine privilege level.
const MAX_VMPL: u32 = 3;
/// Largest number of certificates accepted in the endorsements (VEK, intermediate, ARK).
const MAX_CERTIFICATES: usize = 4;

/// One AMD product line: its pinned root and intermediate (PEM, from AMD's KDS).
struct Product {
    name: &'static str,
    ark_pem: &'static [u8],
    ask_pem: &'static [u8],
    /// The lowest TCB that is not known to be vulnerable (docs/platforms.md cites the AMD
    /// security bulletins these come from); below it the status is `OutOfDate`.
    minimum_tcb: SnpTcb,
}

/// The products whose roots are pinned.
const PRODUCTS: [Product; 3] = [
    Product {
        name: "Milan",
        ark_pem: include_bytes!("amd/ark_milan.pem"),
        ask_pem: include_bytes!("amd/ask_milan.pem"),
        minimum_tcb: SnpTcb {
            bootloader: 0,
            tee: 0,
            snp: 21,
            microcode: 0xd5,
        },
    },
    Product {
        name: "Genoa",
        ark_pem: include_bytes!("amd/ark_genoa.pem"),
        ask_pem: include_bytes!("amd/ask_genoa.pem"),
        minimum_tcb: SnpTcb {
            bootloader: 0,
            tee: 0,
            snp: 21,
            microcode: 0x54,
        },
    },
    Product {
        name: "Turin",
        ark_pem: include_bytes!("amd/ark_turin.pem"),
        ask_pem: include_bytes!("amd/ask_turin.pem"),
        minimum_tcb: SnpTcb {
            bootloader: 0,
            tee: 0,
            snp: 0,
            microcode: 0,
        },
    },
];

/// AMD's VCEK/VLEK extensions (VCEK specification, chapter 3).
const OID_PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
const OID_FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
const OID_HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");

/// Verifies an SEV-SNP report with its endorsements at `now`.
///
/// `endorsements` holds the VCEK or VLEK and optionally an intermediate: one DER certificate,
/// PEM text with one or more certificates, or the CBOR array of DER certificates carried in the
/// RA-TLS endorsements extension ([`crate::cmw::Endorsements::SevSnp`]).
pub(crate) fn verify(
    report_bytes: &[u8],
    endorsements: Option<&[u8]>,
    now: UnixTime,
) -> Result<PlatformReport, Error> {
    if report_bytes.len() != REPORT_LEN {
        return Err(malformed(format!(
            "{} bytes, expected {REPORT_LEN}",
            report_bytes.len()
        )));
    }
    let report =
        AttestationReport::from_bytes(report_bytes).map_err(|e| malformed(e.to_string()))?;
    // As for Intel: refusing on the not yet authenticated debug bit can only turn an answer into
    // a refusal, never the other way round.
    if report.policy.debug_allowed() {
        return Err(Error::DebugEnclave { platform: PLATFORM });
    }
    let policy = raw_policy(report_bytes)?;
    check_report_invariants(&report, policy)?;
    let endorsements = endorsements.ok_or(Error::MissingCollateral { platform: PLATFORM })?;
    let certificates = decode_certificates(endorsements)?;
    let (vek_der, supplied_intermediates) = split_vek(&certificates)?;
    let vek = pki::parse(PLATFORM, "VCEK/VLEK", vek_der)?;
    let product = product_of(&vek)?;

    // The pinned root and the intermediate that issued the VEK.
    let ark_der = pem_to_der(product.ark_pem)?;
    let ark = pki::parse(PLATFORM, "pinned ARK", &ark_der)?;
    let pinned_ask = pem_to_der(product.ask_pem)?;
    let intermediate_der = std::iter::once(pinned_ask.as_slice())
        .chain(supplied_intermediates.iter().copied())
        .find(|der| {
            pki::parse(PLATFORM, "intermediate", der)
                .is_ok_and(|c| pki::subject(&c) == pki::issuer(&vek))
        })
        .ok_or_else(|| {
            rejected(
                PLATFORM,
                format!(
                    "no {} intermediate (ASK/ASVK) named {}, the issuer of the VCEK/VLEK",
                    product.name,
                    pki::name(pki::issuer(&vek))
                ),
            )
        })?;
    let intermediate = pki::parse(PLATFORM, "ASK/ASVK", intermediate_der)?;
    if pki::issuer(&intermediate) != pki::subject(&ark) {
        return Err(rejected(
            PLATFORM,
            format!(
                "intermediate {} is not issued by the pinned {}",
                pki::name(pki::subject(&intermediate)),
                pki::name(pki::subject(&ark))
            ),
        ));
    }
    pki::check_validity(PLATFORM, "ARK", &ark, now)?;
    pki::check_validity(PLATFORM, "ASK/ASVK", &intermediate, now)?;
    pki::check_validity(PLATFORM, "VCEK/VLEK", &vek, now)?;
    let valid_until = [&ark, &intermediate, &vek]
        .into_iter()
        .map(pki::not_after)
        .min();

    // Signatures ARK → ARK, ARK → intermediate → VEK (RSA-PSS/SHA-384), by sev.
    let sev_cert = |what: &str, der: &[u8]| {
        Certificate::from_der(der).map_err(|e| rejected(PLATFORM, format!("{what}: {e}")))
    };
    let chain = Chain {
        ca: ca::Chain {
            ark: sev_cert("ARK", &ark_der)?,
            ask: sev_cert("ASK/ASVK", intermediate_der)?,
        },
        vek: sev_cert("VCEK/VLEK", vek_der)?,
    };
    (&chain).verify().map_err(|e| {
        rejected(
            PLATFORM,
            format!("certificate chain to the pinned {} ARK: {e}", product.name),
        )
    })?;

    // The report signature, by the VEK, over the bytes as received.
    if report.sig_algo != SIG_ALGO_ECDSA_P384_SHA384 {
        return Err(malformed(format!(
            "signature algorithm {}, expected 1 (ECDSA P-384/SHA-384)",
            report.sig_algo
        )));
    }
    check_report_signature(&report, report_bytes, &chain.vek)?;

    // The VEK was issued for exactly the TCB the report claims, and (VCEK) for this chip.
    let vek_tcb = vek_tcb(&vek)?;
    if !same_tcb(&vek_tcb, &report.reported_tcb) {
        return Err(rejected(
            PLATFORM,
            format!(
                "reported TCB {} differs from the TCB {} the VCEK/VLEK was issued for",
                describe_tcb(&report.reported_tcb),
                describe_tcb(&vek_tcb)
            ),
        ));
    }
    let hw_id = extension(&vek, OID_HW_ID);
    // A VCEK names its chip; a VLEK (loaded by the cloud provider) names none. The report says
    // which of the two signed it, and the certificate must be that kind.
    let signing_key = report.key_info.signing_key();
    if (signing_key == SIGNING_KEY_VCEK) != hw_id.is_some() {
        return Err(rejected(
            PLATFORM,
            format!(
                "the report says it is signed by a {}, the endorsement is a {}",
                if signing_key == SIGNING_KEY_VCEK {
                    "VCEK"
                } else {
                    "VLEK"
                },
                if hw_id.is_some() { "VCEK" } else { "VLEK" }
            ),
        ));
    }
    if let Some(hw_id) = hw_id
        && !same_chip(hw_id, &report.chip_id)
    {
        return Err(rejected(
            PLATFORM,
            "the VCEK was issued for another chip (hwID differs from the report's chip_id)".into(),
        ));
    }
    let tcb_status = tcb_status(&report, product);

    Ok(PlatformReport {
        platform: PLATFORM,
        measurements: measurements(&report, policy),
        report_data: report.report_data.to_vec(),
        debug: false,
        tcb_status,
        tcb_eval_data_number: None,
        snp_tcb: Some(snp_tcb(&report.reported_tcb)),
        // At most MAX_VMPL (3), checked with the invariants.
        snp_vmpl: u8::try_from(report.vmpl).ok(),
        issued_at: None,
        valid_until,
    })
}

/// What the report itself must say, whoever signed it: reserved guest policy bits as the
/// specification fixes them, a real signing key, a VMPL that exists.
fn check_report_invariants(report: &AttestationReport, policy: u64) -> Result<(), Error> {
    if policy & POLICY_RESERVED_ONE == 0 || policy & POLICY_RESERVED_ZERO != 0 {
        return Err(malformed(format!(
            "guest policy {policy:#x} has reserved bits set wrongly (bit 17 must be 1, bits 26-63 must be 0)"
        )));
    }
    let signing_key = report.key_info.signing_key();
    if report.key_info.mask_chip_key()
        || !matches!(signing_key, SIGNING_KEY_VCEK | SIGNING_KEY_VLEK)
    {
        return Err(rejected(
            PLATFORM,
            format!(
                "the report is not signed by a VCEK or VLEK (SIGNING_KEY {signing_key}, MASK_CHIP_KEY {})",
                report.key_info.mask_chip_key()
            ),
        ));
    }
    if report.vmpl > MAX_VMPL {
        return Err(malformed(format!("VMPL {} does not exist", report.vmpl)));
    }
    Ok(())
}

/// AMD publishes no TCB status, so it is derived: `OutOfDate` when the report was signed at a
/// TCB below the platform's committed TCB (an older, superseded firmware's key), below the
/// product's minimum from AMD's security bulletins, or when the guest was launched on a TCB
/// below the one it reports now (its launch measurement was taken on older firmware, as Intel's
/// TD relaunch advice).
fn tcb_status(report: &AttestationReport, product: &Product) -> TcbStatus {
    let reported = snp_tcb(&report.reported_tcb);
    if below(&report.reported_tcb, &report.committed_tcb)
        || !reported.below(&product.minimum_tcb).is_empty()
        || below(&report.launch_tcb, &report.reported_tcb)
    {
        TcbStatus::OutOfDate
    } else {
        TcbStatus::UpToDate
    }
}

fn snp_tcb(tcb: &TcbVersion) -> SnpTcb {
    SnpTcb {
        bootloader: tcb.bootloader,
        tee: tcb.tee,
        snp: tcb.snp,
        microcode: tcb.microcode,
    }
}

/// The measurements of DESIGN §6.
/// The guest policy as the report's bytes state it (the `sev` crate's parsed policy normalises
/// reserved bits, which are exactly what must be checked).
fn raw_policy(report_bytes: &[u8]) -> Result<u64, Error> {
    report_bytes
        .get(POLICY_OFFSET..POLICY_OFFSET + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| malformed("shorter than its guest policy".into()))
}

fn measurements(report: &AttestationReport, policy: u64) -> Measurements {
    let mut measurements = Measurements::new();
    measurements.insert("measurement", report.measurement);
    measurements.insert("host_data", report.host_data);
    // The policy as it is in the report: a little-endian u64.
    measurements.insert("policy", policy.to_le_bytes());
    measurements
}

/// The measurements a report states, without verifying it: what an attester reports about
/// itself at start-up (the verifier never uses this).
#[cfg(feature = "attest")]
pub(crate) fn unverified_measurements(report_bytes: &[u8]) -> Result<Measurements, Error> {
    let report =
        AttestationReport::from_bytes(report_bytes).map_err(|e| malformed(e.to_string()))?;
    Ok(measurements(&report, raw_policy(report_bytes)?))
}

fn check_report_signature(
    report: &AttestationReport,
    report_bytes: &[u8],
    vek: &Certificate,
) -> Result<(), Error> {
    use p384::ecdsa::signature::Verifier;

    let signed = report_bytes
        .get(..SIGNED_LEN)
        .ok_or_else(|| malformed("shorter than its signed part".into()))?;
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(vek.public_key_sec1())
        .map_err(|e| rejected(PLATFORM, format!("VCEK/VLEK key is not P-384: {e}")))?;
    let signature = p384_signature(&report.signature)
        .ok_or(Error::BadEvidenceSignature { platform: PLATFORM })?;
    key.verify(signed, &signature)
        .map_err(|_| Error::BadEvidenceSignature { platform: PLATFORM })
}

/// The report's signature: `r` and `s` as 72-byte little-endian fields of which only the low 48
/// bytes may be set.
fn p384_signature(signature: &sev::certs::snp::ecdsa::Signature) -> Option<p384::ecdsa::Signature> {
    let big_endian = |field: &[u8; 72]| {
        let (value, padding) = field.split_at(48);
        padding
            .iter()
            .all(|b| *b == 0)
            .then(|| value.iter().rev().copied().collect::<Vec<u8>>())
    };
    let bytes = [big_endian(signature.r())?, big_endian(signature.s())?].concat();
    p384::ecdsa::Signature::from_slice(&bytes).ok()
}

/// The certificates of the endorsements, as DER: one DER certificate, PEM text, or a CBOR array
/// of DER certificates.
fn decode_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let certificates = match bytes.first() {
        // A DER SEQUENCE.
        Some(0x30) => vec![bytes.to_vec()],
        // A CBOR array (major type 4).
        Some(0x80..=0x9f) => {
            crate::cmw::decode_certificate_list(bytes).map_err(|e| Error::MalformedCollateral {
                platform: PLATFORM,
                reason: e.to_string(),
            })?
        }
        _ => crate::pem::decode_all(bytes)
            .map(|blocks| blocks.into_iter().map(|b| b.der).collect())
            .map_err(|e| Error::MalformedCollateral {
                platform: PLATFORM,
                reason: format!("expected a DER or PEM VCEK/VLEK: {e}"),
            })?,
    };
    if certificates.is_empty() || certificates.len() > MAX_CERTIFICATES {
        return Err(Error::MalformedCollateral {
            platform: PLATFORM,
            reason: format!(
                "{} certificates, expected the VCEK/VLEK and at most {} more",
                certificates.len(),
                MAX_CERTIFICATES.saturating_sub(1)
            ),
        });
    }
    Ok(certificates)
}

/// The VEK (the one certificate that is not a CA) and the other certificates.
fn split_vek(certificates: &[Vec<u8>]) -> Result<(&[u8], Vec<&[u8]>), Error> {
    let mut vek = None;
    let mut others = Vec::new();
    for (i, der) in certificates.iter().enumerate() {
        let cert = pki::parse(PLATFORM, &format!("endorsement certificate {i}"), der)?;
        if pki::is_ca(&cert) {
            others.push(der.as_slice());
        } else if vek.replace(der.as_slice()).is_some() {
            return Err(Error::MalformedCollateral {
                platform: PLATFORM,
                reason: "more than one VCEK/VLEK".into(),
            });
        }
    }
    let vek = vek.ok_or_else(|| Error::MalformedCollateral {
        platform: PLATFORM,
        reason: "no VCEK/VLEK (only CA certificates)".into(),
    })?;
    Ok((vek, others))
}

/// The product whose pinned ASK or ARK issued `vek`: by the VEK's issuer name, cross-checked with
/// its productName extension when present.
fn product_of(vek: &X509Certificate<'_>) -> Result<&'static Product, Error> {
    let issuer = pki::name(pki::issuer(vek));
    let product = PRODUCTS
        .iter()
        .find(|p| issuer.contains(&format!("-{}", p.name)))
        .ok_or_else(|| {
            rejected(
                PLATFORM,
                format!("VCEK/VLEK issuer {issuer} names no known product (Milan, Genoa, Turin)"),
            )
        })?;
    if let Some(name) = extension(vek, OID_PRODUCT_NAME) {
        // An IA5String: tag 0x16, length, then the name, e.g. "Milan-B0".
        let name = name.get(2..).unwrap_or_default();
        if !name.starts_with(product.name.as_bytes()) {
            return Err(rejected(
                PLATFORM,
                format!(
                    "VCEK/VLEK productName {:?} does not match its issuer's product {}",
                    String::from_utf8_lossy(name),
                    product.name
                ),
            ));
        }
    }
    Ok(product)
}

/// The TCB the VEK was issued for, from its SPL extensions.
fn vek_tcb(vek: &X509Certificate<'_>) -> Result<TcbVersion, Error> {
    let spl = |oid: ObjectIdentifier, name: &str| -> Result<Option<u8>, Error> {
        let Some(value) = extension(vek, oid) else {
            return Ok(None);
        };
        // A DER INTEGER from 0 to 255.
        let value = <u8 as x509_cert::der::Decode>::from_der(value)
            .map_err(|e| rejected(PLATFORM, format!("VCEK/VLEK {name}: {e}")))?;
        Ok(Some(value))
    };
    let required = |oid: ObjectIdentifier, name: &str| {
        spl(oid, name)?.ok_or_else(|| rejected(PLATFORM, format!("VCEK/VLEK has no {name}")))
    };
    Ok(TcbVersion {
        fmc: spl(OID_FMC_SPL, "fmcSPL")?,
        bootloader: required(OID_BL_SPL, "blSPL")?,
        tee: required(OID_TEE_SPL, "teeSPL")?,
        snp: required(OID_SNP_SPL, "snpSPL")?,
        microcode: required(OID_UCODE_SPL, "ucodeSPL")?,
    })
}

/// A VCEK's hwID is the chip ID (64 bytes; Turin VCEKs carry the 8 significant bytes, the
/// report zero-pads them).
fn same_chip(hw_id: &[u8], chip_id: &[u8]) -> bool {
    chip_id
        .split_at_checked(hw_id.len())
        .is_some_and(|(id, rest)| !id.is_empty() && id == hw_id && rest.iter().all(|b| *b == 0))
}

fn tcb_fields(tcb: &TcbVersion) -> [u8; 5] {
    [
        tcb.fmc.unwrap_or(0),
        tcb.bootloader,
        tcb.tee,
        tcb.snp,
        tcb.microcode,
    ]
}

fn same_tcb(a: &TcbVersion, b: &TcbVersion) -> bool {
    tcb_fields(a) == tcb_fields(b)
}

/// Some component of `a` is below the same component of `b`.
fn below(a: &TcbVersion, b: &TcbVersion) -> bool {
    tcb_fields(a).iter().zip(tcb_fields(b)).any(|(x, y)| *x < y)
}

fn describe_tcb(tcb: &TcbVersion) -> String {
    let [fmc, bl, tee, snp, ucode] = tcb_fields(tcb);
    format!("(fmc {fmc}, bootloader {bl}, tee {tee}, snp {snp}, microcode {ucode})")
}

/// The value of `vek`'s extension `oid`.
fn extension<'a>(cert: &'a X509Certificate<'_>, oid: ObjectIdentifier) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, Error> {
    crate::pem::decode_all(pem)
        .ok()
        .and_then(|blocks| blocks.into_iter().next())
        .map(|block| block.der)
        .ok_or_else(|| rejected(PLATFORM, "pinned AMD key does not parse".into()))
}

fn malformed(reason: String) -> Error {
    Error::MalformedEvidence(format!("sev-snp attestation report: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_arks_are_self_signed_roots_and_sign_their_asks() {
        for product in &PRODUCTS {
            let ark = Certificate::from_der(&pem_to_der(product.ark_pem).unwrap()).unwrap();
            let ask = Certificate::from_der(&pem_to_der(product.ask_pem).unwrap()).unwrap();
            let chain = ca::Chain { ark, ask };
            assert!((&chain).verify().is_ok(), "{}", product.name);
        }
    }

    #[test]
    fn endorsement_formats_are_told_apart() {
        assert!(matches!(
            decode_certificates(b"not a certificate"),
            Err(Error::MalformedCollateral { .. })
        ));
        assert!(matches!(
            decode_certificates(&[0x80]),
            Err(Error::MalformedCollateral { .. })
        ));
        let ask = pem_to_der(PRODUCTS[0].ask_pem).unwrap();
        assert_eq!(decode_certificates(&ask).unwrap(), vec![ask.clone()]);
        assert_eq!(
            decode_certificates(PRODUCTS[0].ask_pem).unwrap(),
            vec![ask.clone()]
        );
        // Only CA certificates: no VEK.
        assert!(matches!(
            split_vek(&[ask]),
            Err(Error::MalformedCollateral { .. })
        ));
    }

    #[test]
    fn chip_ids_compare_with_zero_padding() {
        let mut chip = [0u8; 64];
        chip[..8].copy_from_slice(&[7; 8]);
        assert!(same_chip(&chip, &chip));
        assert!(same_chip(&[7; 8], &chip));
        assert!(!same_chip(&[7; 7], &chip));
        assert!(!same_chip(&[], &chip));
        assert!(!same_chip(&[8; 8], &chip));
    }

    #[test]
    fn tcb_comparison_is_per_component() {
        let tcb = |bl, snp| TcbVersion {
            fmc: None,
            bootloader: bl,
            tee: 0,
            snp,
            microcode: 0x73,
        };
        assert!(same_tcb(&tcb(3, 8), &tcb(3, 8)));
        assert!(below(&tcb(3, 7), &tcb(3, 8)));
        assert!(below(&tcb(9, 7), &tcb(3, 8)));
        assert!(!below(&tcb(3, 8), &tcb(3, 8)));
    }
}
