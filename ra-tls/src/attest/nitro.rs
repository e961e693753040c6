//! AWS Nitro Enclaves evidence from the Nitro Secure Module (`/dev/nsm`), through AWS's
//! `aws-nitro-enclaves-nsm-api` crate, which owns the device's ioctl. This module only builds the
//! request (`user_data` = SHA-256 of the claims buffer, DESIGN §3) and reads the answer.

use aws_nitro_enclaves_nsm_api::api::{Request, Response};
use aws_nitro_enclaves_nsm_api::driver;
use serde_bytes::ByteBuf;

use super::Attester;
use crate::cmw::Evidence;
use crate::verify::unverified;
use crate::{Error, Measurements, Platform};

/// The NSM device the driver opens.
pub const NSM_DEVICE: &str = "/dev/nsm";

/// Nitro evidence from the NSM.
#[derive(Debug)]
pub struct NsmAttester {
    measurements: Measurements,
}

impl NsmAttester {
    /// Opens the NSM and asks for one document to learn the enclave's PCRs.
    pub fn new() -> Result<Self, Error> {
        let document = request_document(attestation_request(&[]))?;
        Ok(Self {
            measurements: unverified::nitro_document(&document)?,
        })
    }
}

impl Attester for NsmAttester {
    fn platform(&self) -> Platform {
        Platform::Nitro
    }

    fn measurements(&self) -> Measurements {
        self.measurements.clone()
    }

    fn attest(&self, claims: &[u8]) -> Result<Evidence, Error> {
        Ok(Evidence::Nitro {
            document: request_document(attestation_request(claims))?,
            claims: claims.to_vec(),
        })
    }
}

/// The NSM request for a document whose `user_data` binds `claims`; no nonce, no public key
/// (the TLS key is bound through the claims).
fn attestation_request(claims: &[u8]) -> Request {
    Request::Attestation {
        user_data: Some(ByteBuf::from(crate::sha256(claims).to_vec())),
        nonce: None,
        public_key: None,
    }
}

/// The COSE_Sign1 document of an attestation response.
fn document_from(response: Response) -> Result<Vec<u8>, Error> {
    match response {
        Response::Attestation { document } if !document.is_empty() => Ok(document),
        Response::Error(code) => Err(Error::Attestation(format!(
            "the NSM refused the attestation request: {code:?}"
        ))),
        other => Err(Error::Attestation(format!(
            "unexpected NSM response to an attestation request: {other:?}"
        ))),
    }
}

fn request_document(request: Request) -> Result<Vec<u8>, Error> {
    let fd = driver::nsm_init();
    if fd < 0 {
        return Err(Error::Attestation(format!(
            "cannot open {NSM_DEVICE}: not inside a Nitro enclave (or the nsm driver is missing)"
        )));
    }
    let response = driver::nsm_process_request(fd, request);
    driver::nsm_exit(fd);
    document_from(response)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::panic,
        reason = "test code: a failed assumption is a failed test"
    )]

    use aws_nitro_enclaves_nsm_api::api::ErrorCode;
    use ciborium::Value;

    use super::*;

    /// The request as the driver sends it: serde's externally tagged enum in CBOR,
    /// `{"Attestation": {"user_data": h'…', "nonce": null, "public_key": null}}`.
    #[test]
    fn the_request_binds_the_claims_hash_in_user_data() {
        let mut cbor = Vec::new();
        ciborium::into_writer(&attestation_request(b"claims"), &mut cbor).unwrap();
        let value: Value = ciborium::from_reader(cbor.as_slice()).unwrap();
        let Value::Map(outer) = value else {
            panic!("not a map: {value:?}")
        };
        let [(Value::Text(tag), Value::Map(fields))] = outer.as_slice() else {
            panic!("not one tagged variant: {outer:?}")
        };
        assert_eq!(tag, "Attestation");
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.as_text() == Some(name))
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            field("user_data"),
            Value::Bytes(crate::sha256(b"claims").to_vec())
        );
        assert_eq!(field("nonce"), Value::Null);
        assert_eq!(field("public_key"), Value::Null);
    }

    #[test]
    fn responses_become_documents_or_errors() {
        assert_eq!(
            document_from(Response::Attestation {
                document: vec![0xd2, 0x84]
            })
            .unwrap(),
            vec![0xd2, 0x84]
        );
        assert!(document_from(Response::Attestation { document: vec![] }).is_err());
        let error = document_from(Response::Error(ErrorCode::InvalidArgument)).unwrap_err();
        assert!(error.to_string().contains("InvalidArgument"), "{error}");
    }

    #[test]
    fn outside_an_enclave_the_nsm_is_missing() {
        if std::path::Path::new(NSM_DEVICE).exists() {
            return;
        }
        let error = NsmAttester::new().unwrap_err().to_string();
        assert!(error.contains("/dev/nsm"), "{error}");
    }
}
