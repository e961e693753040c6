//! X.509 certificates as the verifiers read them, over `x509-cert`: the RustCrypto `der` stack
//! that `p256`/`p384` (SubjectPublicKeyInfo) and `dcap-qvl` (PCK certificates, CRLs) already
//! link, so that the browser bundle carries one ASN.1 decoder rather than three
//! (docs/BENCHMARKS.md, "wasm bundle size").
//!
//! A [`Certificate`] keeps, next to the decoded fields, the bytes that signatures and bindings
//! are computed over, exactly as received: the TBSCertificate that the issuer signed and the
//! SubjectPublicKeyInfo that the `pubkey-hash` claim hashes. Re-encoding the decoded fields
//! would not always give them back (an explicit `critical FALSE`, which DER forbids and some
//! issuers write, is decoded and then left out).

use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Reader, SliceReader, Tag, TagNumber};
use x509_cert::ext::Extension;

pub(crate) use x509_cert::der::Error;

/// A decoded certificate and the bytes it was decoded from.
#[derive(Debug, Clone)]
pub(crate) struct Certificate<'a> {
    /// The decoded fields.
    pub(crate) decoded: x509_cert::Certificate,
    tbs: &'a [u8],
    spki: &'a [u8],
}

impl<'a> Certificate<'a> {
    /// Decodes one DER certificate; trailing bytes are an error.
    pub(crate) fn from_der(der: &'a [u8]) -> Result<Self, Error> {
        let decoded = x509_cert::Certificate::from_der(der)?;
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
        let mut reader = SliceReader::new(der)?;
        let tbs = reader.sequence(|r| {
            let tbs = r.tlv_bytes()?;
            skip_rest(r)?;
            Ok::<_, Error>(tbs)
        })?;
        reader.finish()?;
        // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
        //   validity, subject, subjectPublicKeyInfo, ... }
        let mut reader = SliceReader::new(tbs)?;
        let spki = reader.sequence(|r| {
            let version = Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            };
            if Tag::peek(r)? == version {
                r.tlv_bytes()?;
            }
            for _ in 0..5 {
                r.tlv_bytes()?;
            }
            let spki = r.tlv_bytes()?;
            skip_rest(r)?;
            Ok::<_, Error>(spki)
        })?;
        reader.finish()?;
        Ok(Self { decoded, tbs, spki })
    }

    /// The TBSCertificate DER, as signed.
    pub(crate) fn tbs_der(&self) -> &'a [u8] {
        self.tbs
    }

    /// The SubjectPublicKeyInfo DER, as received.
    pub(crate) fn spki_der(&self) -> &'a [u8] {
        self.spki
    }

    /// notBefore, unix seconds.
    pub(crate) fn not_before(&self) -> u64 {
        let validity = self.decoded.tbs_certificate().validity();
        validity.not_before.to_unix_duration().as_secs()
    }

    /// notAfter, unix seconds.
    pub(crate) fn not_after(&self) -> u64 {
        let validity = self.decoded.tbs_certificate().validity();
        validity.not_after.to_unix_duration().as_secs()
    }

    /// The algorithm of the certificate key and its parameter when that is an OID (the curve
    /// of an EC key).
    pub(crate) fn key_algorithm(&self) -> (ObjectIdentifier, Option<ObjectIdentifier>) {
        let algorithm = &self
            .decoded
            .tbs_certificate()
            .subject_public_key_info()
            .algorithm;
        let parameter = algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        (algorithm.oid, parameter)
    }

    /// The algorithm the issuer signed with.
    pub(crate) fn signature_algorithm(&self) -> ObjectIdentifier {
        self.decoded.signature_algorithm().oid
    }

    /// The signature's bytes (empty when the BIT STRING has unused bits, which no signature
    /// has).
    pub(crate) fn signature(&self) -> &[u8] {
        self.decoded.signature().as_bytes().unwrap_or_default()
    }

    /// Every extension, in order.
    pub(crate) fn extensions(&self) -> &[Extension] {
        self.decoded
            .tbs_certificate()
            .extensions()
            .map_or(&[], Vec::as_slice)
    }
}

/// The rest of a SEQUENCE's elements, unread.
fn skip_rest<'a>(reader: &mut impl Reader<'a>) -> Result<(), Error> {
    while !reader.is_finished() {
        reader.tlv_bytes()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::FromDer;

    use super::*;

    /// The vendor roots this crate pins, as DER.
    fn roots() -> Vec<Vec<u8>> {
        let pem: [&[u8]; 7] = [
            include_bytes!("verify/roots/aws_nitro_root_g1.pem"),
            include_bytes!("verify/amd/ark_milan.pem"),
            include_bytes!("verify/amd/ask_milan.pem"),
            include_bytes!("verify/amd/ark_genoa.pem"),
            include_bytes!("verify/amd/ask_genoa.pem"),
            include_bytes!("verify/amd/ark_turin.pem"),
            include_bytes!("verify/amd/ask_turin.pem"),
        ];
        let mut roots: Vec<Vec<u8>> = pem
            .iter()
            .map(|pem| crate::pem::decode_all(pem).unwrap().remove(0).der)
            .collect();
        roots.push(include_bytes!("verify/roots/intel_sgx_root_ca.der").to_vec());
        roots
    }

    #[test]
    fn signed_bytes_and_key_are_those_received() {
        for der in roots() {
            let ours = Certificate::from_der(&der).unwrap();
            let (rest, theirs) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
            assert!(rest.is_empty());
            assert_eq!(ours.tbs_der(), theirs.tbs_certificate.as_ref());
            assert_eq!(ours.spki_der(), theirs.tbs_certificate.subject_pki.raw);
            assert_eq!(ours.signature(), theirs.signature_value.data.as_ref());
            let validity = theirs.validity();
            assert_eq!(
                ours.not_before(),
                u64::try_from(validity.not_before.timestamp()).unwrap()
            );
            assert_eq!(
                ours.not_after(),
                u64::try_from(validity.not_after.timestamp()).unwrap()
            );
            assert_eq!(ours.extensions().len(), theirs.extensions().len());
        }
    }

    #[test]
    fn trailing_bytes_and_truncation_are_refused() {
        let der = roots().remove(0);
        let mut longer = der.clone();
        longer.push(0);
        assert!(Certificate::from_der(&longer).is_err());
        assert!(Certificate::from_der(der.get(..der.len() - 1).unwrap()).is_err());
    }
}
