//! AWS Nitro Enclaves attestation documents: COSE_Sign1 (ES384) over a CBOR payload, signed by
//! a short-lived leaf certificate that chains through the document's `cabundle` to the AWS Nitro
//! Enclaves Root-G1, which is pinned here by its SHA-256 fingerprint (the bundle's own root is
//! only compared with it, never trusted).
//!
//! Checks, in order: COSE structure and algorithm; payload fields; root fingerprint; every
//! certificate valid at the verifier's clock; each certificate signed by the one above
//! (ECDSA P-384/SHA-384), each bundle certificate a CA within its path length and the leaf an
//! end entity allowed to sign (keyUsage digitalSignature); the COSE signature by the leaf key; then debug (PCR0, PCR1 and PCR2 all
//! zero, which is what the NSM reports for an enclave started with `--debug-mode`).

use ciborium::Value;
use coset::{CborSerializable, CoseSign1, TaggedCborSerializable, iana};
use rustls_pki_types::UnixTime;

use super::pki::{self, rejected};
use super::report::PlatformReport;
use crate::{Error, Measurements, Platform, TcbStatus};

/// The AWS Nitro Enclaves Root-G1 certificate (PEM), the one trust anchor of Nitro evidence.
pub const AWS_NITRO_ROOT_G1_PEM: &str = include_str!("roots/aws_nitro_root_g1.pem");

/// SHA-256 of the DER of [`AWS_NITRO_ROOT_G1_PEM`], as AWS publishes it.
pub const AWS_NITRO_ROOT_G1_SHA256: [u8; 32] = [
    0x64, 0x1a, 0x03, 0x21, 0xa3, 0xe2, 0x44, 0xef, 0xe4, 0x56, 0x46, 0x31, 0x95, 0xd6, 0x06, 0x31,
    0x7e, 0xd7, 0xcd, 0xcc, 0x3c, 0x17, 0x56, 0xe0, 0x98, 0x93, 0xf3, 0xc6, 0x8f, 0x79, 0xbb, 0x5b,
];

/// The PCRs reported, by index, and their names (DESIGN §6).
const PCRS: [(i128, &str); 6] = [
    (0, "pcr0"),
    (1, "pcr1"),
    (2, "pcr2"),
    (3, "pcr3"),
    (4, "pcr4"),
    (8, "pcr8"),
];
const PCR_LEN: usize = 48;
/// Bounds on the document, far above what the NSM produces (about 4.5 KiB).
const MAX_CABUNDLE: usize = 8;

const PLATFORM: Platform = Platform::Nitro;

/// The fields of the attestation document payload this verifier uses.
struct Payload {
    digest: String,
    pcrs: Vec<(i128, Vec<u8>)>,
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    /// Milliseconds since the Unix epoch, when the NSM produced the document.
    timestamp_ms: u64,
}

/// The PCRs a document states, without verifying it: what an attester reports about itself at
/// start-up (the verifier never uses this).
#[cfg(feature = "attest")]
pub(crate) fn unverified_measurements(document: &[u8]) -> Result<Measurements, Error> {
    let sign1 = CoseSign1::from_slice(document)
        .or_else(|_| CoseSign1::from_tagged_slice(document))
        .map_err(|e| malformed(format!("not a COSE_Sign1: {e}")))?;
    let payload = sign1
        .payload
        .as_deref()
        .ok_or_else(|| malformed("COSE_Sign1 without payload".into()))?;
    pcr_measurements(&parse_payload(payload)?)
}

fn pcr_measurements(payload: &Payload) -> Result<Measurements, Error> {
    let mut measurements = Measurements::new();
    for (index, name) in PCRS {
        let value = payload
            .pcrs
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, v)| v)
            .ok_or_else(|| malformed(format!("PCR{index} missing")))?;
        if value.len() != PCR_LEN {
            return Err(malformed(format!(
                "PCR{index} is {} bytes, expected {PCR_LEN}",
                value.len()
            )));
        }
        measurements.insert(name, value.clone());
    }
    Ok(measurements)
}

/// Verifies a Nitro attestation document at `now`.
pub(crate) fn verify(document: &[u8], now: UnixTime) -> Result<PlatformReport, Error> {
    let sign1 = CoseSign1::from_slice(document)
        .or_else(|_| CoseSign1::from_tagged_slice(document))
        .map_err(|e| malformed(format!("not a COSE_Sign1: {e}")))?;
    let alg = sign1.protected.header.alg.as_ref();
    if alg
        != Some(&coset::RegisteredLabelWithPrivate::Assigned(
            iana::Algorithm::ES384,
        ))
    {
        return Err(malformed(format!("COSE algorithm {alg:?}, expected ES384")));
    }
    let payload = sign1
        .payload
        .as_deref()
        .ok_or_else(|| malformed("COSE_Sign1 without payload".into()))?;
    let payload = parse_payload(payload)?;
    if payload.digest != "SHA384" {
        return Err(malformed(format!(
            "digest {:?}, expected SHA384",
            payload.digest
        )));
    }

    // The chain: pinned root, then cabundle[1..], then the leaf.
    let (bundle_root, intermediates) = payload
        .cabundle
        .split_first()
        .ok_or_else(|| malformed("empty cabundle".into()))?;
    if crate::sha256(bundle_root) != AWS_NITRO_ROOT_G1_SHA256 {
        return Err(rejected(
            PLATFORM,
            "the document's cabundle does not start with the AWS Nitro Enclaves Root-G1 (fingerprint mismatch)".into(),
        ));
    }
    let root_der = root_der()?;
    let root = pki::parse(PLATFORM, "pinned AWS Nitro root", &root_der)?;
    pki::check_validity(PLATFORM, "AWS Nitro root", &root, now)?;
    let mut valid_until = pki::not_after(&root);
    let mut issuer = root;
    for (i, der) in intermediates.iter().enumerate() {
        let what = format!("cabundle[{}]", i.saturating_add(1));
        let cert = pki::parse(PLATFORM, &what, der)?;
        pki::check_validity(PLATFORM, &what, &cert, now)?;
        pki::chain::check_issued_by_p384(PLATFORM, &what, &cert, &issuer)?;
        // Each bundle certificate must be a CA allowed to issue what hangs below it.
        let below = intermediates.len().saturating_sub(i).saturating_sub(1);
        pki::chain::check_ca_for(PLATFORM, &what, &cert, below)?;
        valid_until = valid_until.min(pki::not_after(&cert));
        issuer = cert;
    }
    let leaf = pki::parse(PLATFORM, "signing certificate", &payload.certificate)?;
    pki::check_validity(PLATFORM, "signing certificate", &leaf, now)?;
    pki::chain::check_issued_by_p384(PLATFORM, "signing certificate", &leaf, &issuer)?;
    pki::chain::check_signing_leaf(PLATFORM, "signing certificate", &leaf)?;

    // The document signature, by the leaf key.
    let key = {
        use p384::pkcs8::DecodePublicKey;
        p384::ecdsa::VerifyingKey::from_public_key_der(leaf.spki_der())
            .map_err(|e| rejected(PLATFORM, format!("signing key is not P-384: {e}")))?
    };
    sign1.verify_signature(b"", |signature, signed| {
        use p384::ecdsa::signature::Verifier;
        let signature = p384::ecdsa::Signature::from_slice(signature)
            .map_err(|_| Error::BadEvidenceSignature { platform: PLATFORM })?;
        key.verify(signed, &signature)
            .map_err(|_| Error::BadEvidenceSignature { platform: PLATFORM })
    })?;

    let measurements = pcr_measurements(&payload)?;
    let debug = ["pcr0", "pcr1", "pcr2"].iter().all(|f| {
        measurements
            .get(f)
            .is_some_and(|v| v.iter().all(|b| *b == 0))
    });
    if debug {
        return Err(Error::DebugEnclave { platform: PLATFORM });
    }
    Ok(PlatformReport {
        platform: PLATFORM,
        measurements,
        report_data: payload.user_data.unwrap_or_default(),
        debug,
        tcb_status: TcbStatus::NotApplicable,
        tcb_eval_data_number: None,
        snp_tcb: None,
        snp_vmpl: None,
        issued_at: Some(payload.timestamp_ms / 1000),
        valid_until: Some(valid_until.min(pki::not_after(&leaf))),
    })
}

/// The pinned root as DER, checked against its fingerprint.
fn root_der() -> Result<Vec<u8>, Error> {
    let pem = crate::pem::decode_all(AWS_NITRO_ROOT_G1_PEM.as_bytes())
        .ok()
        .and_then(|blocks| blocks.into_iter().next())
        .map(|block| block.der)
        .ok_or_else(|| rejected(PLATFORM, "pinned root does not parse".into()))?;
    if crate::sha256(&pem) != AWS_NITRO_ROOT_G1_SHA256 {
        return Err(rejected(
            PLATFORM,
            "pinned root does not match its fingerprint".into(),
        ));
    }
    Ok(pem)
}

fn parse_payload(bytes: &[u8]) -> Result<Payload, Error> {
    let value: Value =
        ciborium::from_reader(bytes).map_err(|e| malformed(format!("payload: {e}")))?;
    let Value::Map(entries) = value else {
        return Err(malformed("payload is not a CBOR map".into()));
    };
    let field = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, v)| v)
    };
    let required = |name: &str| field(name).ok_or_else(|| malformed(format!("no {name}")));
    let bytes_of = |name: &str, v: &Value| {
        v.as_bytes()
            .cloned()
            .ok_or_else(|| malformed(format!("{name} is not a byte string")))
    };
    let digest = required("digest")?
        .as_text()
        .ok_or_else(|| malformed("digest is not text".into()))?
        .to_owned();
    let pcrs = required("pcrs")?
        .as_map()
        .ok_or_else(|| malformed("pcrs is not a map".into()))?
        .iter()
        .map(|(k, v)| {
            let index = k
                .as_integer()
                .map(i128::from)
                .ok_or_else(|| malformed("PCR index is not an integer".into()))?;
            Ok((index, bytes_of("PCR", v)?))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let certificate = bytes_of("certificate", required("certificate")?)?;
    let cabundle = required("cabundle")?
        .as_array()
        .ok_or_else(|| malformed("cabundle is not an array".into()))?;
    if cabundle.len() > MAX_CABUNDLE {
        return Err(malformed(format!(
            "cabundle has {} certificates",
            cabundle.len()
        )));
    }
    let cabundle = cabundle
        .iter()
        .map(|v| bytes_of("cabundle entry", v))
        .collect::<Result<Vec<_>, Error>>()?;
    let user_data = match field("user_data") {
        None | Some(Value::Null) => None,
        Some(v) => Some(bytes_of("user_data", v)?),
    };
    let timestamp_ms = required("timestamp")?
        .as_integer()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| malformed("timestamp is not an unsigned integer".into()))?;
    Ok(Payload {
        timestamp_ms,
        digest,
        pcrs,
        certificate,
        cabundle,
        user_data,
    })
}

fn malformed(reason: String) -> Error {
    Error::MalformedEvidence(format!("nitro attestation document: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_root_matches_its_fingerprint() {
        let der = root_der();
        assert!(der.is_ok(), "{der:?}");
    }
}
