//! The conceptual message wrapper (CMW) carried in the evidence and endorsements extensions.
//!
//! Intel quotes use the registered CBOR tag 60000 around `[quote, claims-buffer]`; the other
//! platforms use the array form `[media-type, bstr(cbor [evidence, claims-buffer])]` (DESIGN §3).

use ciborium::Value;

use crate::claims::{decode, encode};
use crate::{Error, Platform};

/// CBOR tag registered for `[quote, claims]` of Intel SGX/TDX quotes (CCC interoperable RA-TLS).
pub const TAG_INTEL_QUOTE: u64 = 60000;
/// Media type of AWS Nitro evidence.
pub const MEDIA_NITRO: &str = "application/vnd.shroud.nitro-evidence+cbor";
/// Media type of AMD SEV-SNP evidence.
pub const MEDIA_SEV_SNP: &str = "application/vnd.shroud.sev-snp-evidence+cbor";
/// Media type of simulated (development) evidence.
pub const MEDIA_SIMULATED: &str = "application/vnd.shroud.simulated-evidence+cbor";

/// Platform evidence together with the claims buffer it binds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Evidence {
    /// An Intel SGX or TDX DCAP quote (which one is in the quote header).
    Intel {
        /// The raw quote.
        quote: Vec<u8>,
        /// The claims buffer whose SHA-256 is in `report_data[0..32]`.
        claims: Vec<u8>,
    },
    /// An AWS Nitro attestation document (COSE_Sign1).
    Nitro {
        /// The raw COSE_Sign1 document.
        document: Vec<u8>,
        /// The claims buffer whose SHA-256 is the document's `user_data`.
        claims: Vec<u8>,
    },
    /// An AMD SEV-SNP attestation report.
    SevSnp {
        /// The raw 1184-byte report.
        report: Vec<u8>,
        /// The claims buffer whose SHA-256 is in `report_data[0..32]`.
        claims: Vec<u8>,
    },
    /// A simulated report (development only).
    Simulated {
        /// The simulated report (see [`crate::attest::simulated`]).
        report: Vec<u8>,
        /// The claims buffer whose SHA-256 is in the report's report data.
        claims: Vec<u8>,
    },
}

impl Evidence {
    /// The platform that produced this evidence. For Intel quotes the header decides.
    pub fn platform(&self) -> Result<Platform, Error> {
        match self {
            Self::Intel { quote, .. } => intel_quote_platform(quote),
            Self::Nitro { .. } => Ok(Platform::Nitro),
            Self::SevSnp { .. } => Ok(Platform::SevSnp),
            Self::Simulated { .. } => Ok(Platform::Simulated),
        }
    }

    /// The claims buffer, as the evidence carries it (its hash is what the report binds).
    pub fn claims_buffer(&self) -> &[u8] {
        match self {
            Self::Intel { claims, .. }
            | Self::Nitro { claims, .. }
            | Self::SevSnp { claims, .. }
            | Self::Simulated { claims, .. } => claims,
        }
    }

    /// The raw platform evidence (quote, document or report).
    pub fn platform_evidence(&self) -> &[u8] {
        match self {
            Self::Intel { quote: e, .. }
            | Self::Nitro { document: e, .. }
            | Self::SevSnp { report: e, .. }
            | Self::Simulated { report: e, .. } => e,
        }
    }

    /// Encodes the extension value.
    pub fn to_cbor(&self) -> Vec<u8> {
        let pair = |e: &[u8], c: &[u8]| {
            Value::Array(vec![Value::Bytes(e.to_vec()), Value::Bytes(c.to_vec())])
        };
        let wrapped = |media: &str, e: &[u8], c: &[u8]| {
            Value::Array(vec![
                Value::Text(media.to_owned()),
                Value::Bytes(encode(&pair(e, c))),
            ])
        };
        let value = match self {
            Self::Intel { quote, claims } => {
                Value::Tag(TAG_INTEL_QUOTE, Box::new(pair(quote, claims)))
            }
            Self::Nitro { document, claims } => wrapped(MEDIA_NITRO, document, claims),
            Self::SevSnp { report, claims } => wrapped(MEDIA_SEV_SNP, report, claims),
            Self::Simulated { report, claims } => wrapped(MEDIA_SIMULATED, report, claims),
        };
        encode(&value)
    }

    /// Decodes an evidence extension value.
    pub fn from_cbor(buf: &[u8]) -> Result<Self, Error> {
        match decode(buf)? {
            Value::Tag(TAG_INTEL_QUOTE, inner) => {
                let (quote, claims) = evidence_pair(*inner)?;
                Ok(Self::Intel { quote, claims })
            }
            Value::Tag(tag, _) => Err(malformed(format!("unknown CBOR tag {tag}"))),
            Value::Array(items) => {
                let mut items = items.into_iter();
                let (Some(Value::Text(media)), Some(Value::Bytes(body)), None) =
                    (items.next(), items.next(), items.next())
                else {
                    return Err(malformed("expected [media-type, bstr]".into()));
                };
                let (evidence, claims) = evidence_pair(decode(&body)?)?;
                match media.as_str() {
                    MEDIA_NITRO => Ok(Self::Nitro {
                        document: evidence,
                        claims,
                    }),
                    MEDIA_SEV_SNP => Ok(Self::SevSnp {
                        report: evidence,
                        claims,
                    }),
                    MEDIA_SIMULATED => Ok(Self::Simulated {
                        report: evidence,
                        claims,
                    }),
                    other => Err(malformed(format!("unknown evidence media type {other:?}"))),
                }
            }
            _ => Err(malformed("not a CBOR tag or array".into())),
        }
    }
}

/// Media type of Intel SGX/TDX collateral in the endorsements extension: dcap-qvl's
/// `QuoteCollateralV3` as JSON (PCK CRL and chain, root CA CRL, TCB info, QE identity).
pub const MEDIA_INTEL_COLLATERAL: &str = "application/vnd.shroud.intel-collateral+json";
/// Media type of SEV-SNP endorsements: `cbor [* bstr DER certificate]`, the VCEK or VLEK first,
/// then optionally the ASK/ASVK and ARK (the ARK is never trusted from here: it is pinned).
pub const MEDIA_SEV_SNP_ENDORSEMENTS: &str = "application/vnd.shroud.sev-snp-endorsements+cbor";
/// Most certificates accepted in SEV-SNP endorsements.
const MAX_ENDORSEMENT_CERTIFICATES: usize = 4;

/// The collateral in the endorsements extension (OID 2.23.133.5.4.2), wrapped like the evidence:
/// `[media-type, bstr]`. It lets a verifier check Intel and SEV-SNP evidence offline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endorsements {
    /// Intel SGX/TDX collateral: dcap-qvl `QuoteCollateralV3` JSON.
    Intel {
        /// The JSON bytes.
        collateral: Vec<u8>,
    },
    /// SEV-SNP certificates (DER), the VCEK or VLEK first.
    SevSnp {
        /// The DER certificates.
        certificates: Vec<Vec<u8>>,
    },
}

impl Endorsements {
    /// Whether this collateral is for evidence of `platform`.
    pub fn is_for(&self, platform: Platform) -> bool {
        match self {
            Self::Intel { .. } => matches!(platform, Platform::Sgx | Platform::Tdx),
            Self::SevSnp { .. } => platform == Platform::SevSnp,
        }
    }

    /// The bytes the platform verifier takes as collateral: the JSON for Intel, the CBOR array
    /// of DER certificates for SEV-SNP.
    pub fn verifier_collateral(&self) -> Vec<u8> {
        match self {
            Self::Intel { collateral } => collateral.clone(),
            Self::SevSnp { certificates } => encode_certificate_list(certificates),
        }
    }

    /// Encodes the extension value.
    pub fn to_cbor(&self) -> Vec<u8> {
        let (media, body) = match self {
            Self::Intel { collateral } => (MEDIA_INTEL_COLLATERAL, collateral.clone()),
            Self::SevSnp { certificates } => (
                MEDIA_SEV_SNP_ENDORSEMENTS,
                encode_certificate_list(certificates),
            ),
        };
        encode(&Value::Array(vec![
            Value::Text(media.to_owned()),
            Value::Bytes(body),
        ]))
    }

    /// Decodes an endorsements extension value.
    pub fn from_cbor(buf: &[u8]) -> Result<Self, Error> {
        let Value::Array(items) = decode(buf)? else {
            return Err(malformed(
                "endorsements: expected [media-type, bstr]".into(),
            ));
        };
        let mut items = items.into_iter();
        let (Some(Value::Text(media)), Some(Value::Bytes(body)), None) =
            (items.next(), items.next(), items.next())
        else {
            return Err(malformed(
                "endorsements: expected [media-type, bstr]".into(),
            ));
        };
        match media.as_str() {
            MEDIA_INTEL_COLLATERAL => Ok(Self::Intel { collateral: body }),
            MEDIA_SEV_SNP_ENDORSEMENTS => Ok(Self::SevSnp {
                certificates: decode_certificate_list(&body)?,
            }),
            other => Err(malformed(format!(
                "unknown endorsements media type {other:?}"
            ))),
        }
    }
}

fn encode_certificate_list(certificates: &[Vec<u8>]) -> Vec<u8> {
    encode(&Value::Array(
        certificates.iter().cloned().map(Value::Bytes).collect(),
    ))
}

/// Decodes `cbor [* bstr]`, the SEV-SNP certificate list, bounded.
pub(crate) fn decode_certificate_list(buf: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let Value::Array(items) = decode(buf)? else {
        return Err(malformed("expected a CBOR array of certificates".into()));
    };
    if items.is_empty() || items.len() > MAX_ENDORSEMENT_CERTIFICATES {
        return Err(malformed(format!(
            "{} certificates in the endorsements, expected 1 to {MAX_ENDORSEMENT_CERTIFICATES}",
            items.len()
        )));
    }
    items
        .into_iter()
        .map(|item| match item {
            Value::Bytes(der) => Ok(der),
            _ => Err(malformed("a certificate is not a byte string".into())),
        })
        .collect()
}

fn evidence_pair(value: Value) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let Value::Array(items) = value else {
        return Err(malformed("expected [evidence, claims-buffer]".into()));
    };
    let mut items = items.into_iter();
    match (items.next(), items.next(), items.next()) {
        (Some(Value::Bytes(evidence)), Some(Value::Bytes(claims)), None) => Ok((evidence, claims)),
        _ => Err(malformed(
            "expected [bstr evidence, bstr claims-buffer]".into(),
        )),
    }
}

/// SGX or TDX, from the DCAP quote header: `version: u16le`, then (v4+) `tee_type: u32le` at 4.
fn intel_quote_platform(quote: &[u8]) -> Result<Platform, Error> {
    let u16_at = |at: usize| {
        quote
            .get(at..at + 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
    };
    let tee_type = quote
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes);
    match (u16_at(0), tee_type) {
        (Some(3), Some(_)) => Ok(Platform::Sgx),
        (Some(4 | 5), Some(0x0000_0000)) => Ok(Platform::Sgx),
        (Some(4 | 5), Some(0x0000_0081)) => Ok(Platform::Tdx),
        (Some(v), _) => Err(malformed(format!(
            "unsupported Intel quote version {v} or TEE type"
        ))),
        (None, _) => Err(malformed("Intel quote shorter than its header".into())),
    }
}

fn malformed(what: String) -> Error {
    Error::MalformedEvidence(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let sgx_quote = [&3u16.to_le_bytes()[..], &[0; 46]].concat();
        let tdx_quote = [
            &4u16.to_le_bytes()[..],
            &[0, 0],
            &0x81u32.to_le_bytes()[..],
            &[0; 40],
        ]
        .concat();
        for (evidence, platform) in [
            (
                Evidence::Intel {
                    quote: sgx_quote,
                    claims: vec![1],
                },
                Platform::Sgx,
            ),
            (
                Evidence::Intel {
                    quote: tdx_quote,
                    claims: vec![1],
                },
                Platform::Tdx,
            ),
            (
                Evidence::Nitro {
                    document: vec![2],
                    claims: vec![3],
                },
                Platform::Nitro,
            ),
            (
                Evidence::SevSnp {
                    report: vec![4],
                    claims: vec![5],
                },
                Platform::SevSnp,
            ),
            (
                Evidence::Simulated {
                    report: vec![6],
                    claims: vec![7],
                },
                Platform::Simulated,
            ),
        ] {
            let decoded = Evidence::from_cbor(&evidence.to_cbor()).unwrap();
            assert_eq!(decoded, evidence);
            assert_eq!(decoded.platform().unwrap(), platform);
        }
    }

    #[test]
    fn endorsements_round_trip_and_name_their_platform() {
        let intel = Endorsements::Intel {
            collateral: b"{}".to_vec(),
        };
        let snp = Endorsements::SevSnp {
            certificates: vec![vec![0x30, 1], vec![0x30, 2]],
        };
        for e in [&intel, &snp] {
            assert_eq!(&Endorsements::from_cbor(&e.to_cbor()).unwrap(), e);
        }
        assert!(intel.is_for(Platform::Sgx) && intel.is_for(Platform::Tdx));
        assert!(!intel.is_for(Platform::SevSnp) && !snp.is_for(Platform::Tdx));
        assert_eq!(intel.verifier_collateral(), b"{}");
        assert_eq!(
            decode_certificate_list(&snp.verifier_collateral()).unwrap(),
            vec![vec![0x30, 1], vec![0x30, 2]]
        );
        // Evidence is not endorsements, and empty or oversized lists are refused.
        let evidence = Evidence::SevSnp {
            report: vec![1],
            claims: vec![2],
        };
        assert!(Endorsements::from_cbor(&evidence.to_cbor()).is_err());
        assert!(decode_certificate_list(&encode(&Value::Array(vec![]))).is_err());
        assert!(
            decode_certificate_list(&encode(&Value::Array(vec![Value::Bytes(vec![]); 5]))).is_err()
        );
    }

    #[test]
    fn rejects_unknown_media_types_and_shapes() {
        let unknown = encode(&Value::Array(vec![
            Value::Text("application/x-other".into()),
            Value::Bytes(encode(&Value::Array(vec![
                Value::Bytes(vec![]),
                Value::Bytes(vec![]),
            ]))),
        ]));
        assert!(matches!(
            Evidence::from_cbor(&unknown),
            Err(Error::MalformedEvidence(_))
        ));
        assert!(Evidence::from_cbor(&encode(&Value::Tag(1, Box::new(Value::Null)))).is_err());
        assert!(Evidence::from_cbor(&[0xff]).is_err());
        let short = Evidence::Intel {
            quote: vec![3],
            claims: vec![],
        };
        assert!(short.platform().is_err());
    }
}
