//! The simulated report: `{measurement, report-data, public-key, signature}` in CBOR.
//!
//! The signature only shows the report was not edited after the per-process key signed it; it
//! says nothing about who ran what. That is why [`verify`] refuses it without an explicit opt-in.

use ciborium::Value;
use p256::ecdsa::signature::Verifier;

use super::report::PlatformReport;
use crate::claims::{decode, encode};
use crate::{Error, Measurements, Platform, TcbStatus};

const SIGNING_CONTEXT: &[u8] = b"shroud-simulated-report-v1";

/// A simulated attestation report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedReport {
    /// SHA-384 of the executable that produced the report.
    pub measurement: [u8; 48],
    /// SHA-256(claims-buffer) followed by 32 zero bytes.
    pub report_data: [u8; 64],
    /// The per-process P-256 public key, SEC1 uncompressed.
    pub public_key: Vec<u8>,
    /// ECDSA P-256/SHA-256 over [`SimulatedReport::signed_bytes`], fixed-width `r || s`.
    pub signature: Vec<u8>,
}

impl SimulatedReport {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        [SIGNING_CONTEXT, &self.measurement, &self.report_data].concat()
    }

    /// Encodes the report.
    pub fn to_cbor(&self) -> Vec<u8> {
        let field = |k: &str, v: &[u8]| (Value::Text(k.into()), Value::Bytes(v.to_vec()));
        encode(&Value::Map(vec![
            field("measurement", &self.measurement),
            field("report-data", &self.report_data),
            field("public-key", &self.public_key),
            field("signature", &self.signature),
        ]))
    }

    /// Decodes a report.
    pub fn from_cbor(buf: &[u8]) -> Result<Self, Error> {
        let Value::Map(mut entries) = decode(buf)? else {
            return Err(malformed("not a map"));
        };
        let mut get = |name: &str| -> Result<Vec<u8>, Error> {
            match entries.iter().position(|(k, _)| k.as_text() == Some(name)) {
                Some(i) => match entries.swap_remove(i).1 {
                    Value::Bytes(b) => Ok(b),
                    _ => Err(malformed(&format!("{name} is not a byte string"))),
                },
                None => Err(malformed(&format!("{name} is missing"))),
            }
        };
        Ok(Self {
            measurement: get("measurement")?
                .try_into()
                .map_err(|_| malformed("measurement is not 48 bytes"))?,
            report_data: get("report-data")?
                .try_into()
                .map_err(|_| malformed("report-data is not 64 bytes"))?,
            public_key: get("public-key")?,
            signature: get("signature")?,
        })
    }
}

fn malformed(what: &str) -> Error {
    Error::MalformedEvidence(format!("simulated report: {what}"))
}

/// Checks the report's own signature and returns what it claims.
pub(crate) fn verify(report: &[u8]) -> Result<PlatformReport, Error> {
    let report = SimulatedReport::from_cbor(report)?;
    let bad = || Error::BadEvidenceSignature {
        platform: Platform::Simulated,
    };
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&report.public_key).map_err(|_| bad())?;
    let signature = p256::ecdsa::Signature::from_slice(&report.signature).map_err(|_| bad())?;
    key.verify(&report.signed_bytes(), &signature)
        .map_err(|_| bad())?;
    let mut measurements = Measurements::new();
    measurements.insert("measurement", report.measurement);
    Ok(PlatformReport {
        platform: Platform::Simulated,
        measurements,
        report_data: report.report_data.to_vec(),
        debug: false,
        tcb_status: TcbStatus::NotApplicable,
        tcb_eval_data_number: None,
        snp_tcb: None,
        snp_vmpl: None,
        issued_at: None,
        valid_until: None,
    })
}
