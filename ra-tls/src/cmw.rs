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
