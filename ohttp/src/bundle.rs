//! The attestation bundle (DESIGN §4.2): what a client that cannot see the TLS certificate (a
//! browser, a client behind a TLS-terminating proxy) verifies before it seals a request.
//!
//! `GET /.well-known/shroud/attestation` answers
//! `{"certificate": base64 DER, "endorsements": base64 | null, "ohttp_keys": base64}`. The
//! certificate is verified exactly as in a handshake ([`shroud_ra_tls::verify_certificate`] and
//! the policy); then the served `ohttp_keys` must be byte for byte the `ohttp-keys` claim the
//! evidence binds. Only keys that pass both are ever used to seal.

use base64::Engine as _;
use shroud_ra_tls::{Policy, Verdict, VerifyOptions};

use crate::{KeyConfig, OhttpError};

/// Where a gateway serves its attestation bundle.
pub const BUNDLE_PATH: &str = "/.well-known/shroud/attestation";

/// Why a bundle was refused. Nothing is sealed to a refused bundle's keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bundle is not the JSON object of DESIGN §4.2.
    #[error("malformed attestation bundle: {0}")]
    Malformed(String),
    /// The certificate failed verification; the inner error names the check.
    #[error("attestation failed: {0}")]
    Attestation(#[from] shroud_ra_tls::Error),
    /// The attested claims bind no OHTTP keys: this gateway does not serve OHTTP.
    #[error("the attested claims bind no OHTTP keys")]
    NoOhttpKeysClaim,
    /// The served OHTTP keys are not the attested ones (substituted by something in between).
    #[error("the served OHTTP keys differ from the ones the enclave attested")]
    OhttpKeysMismatch,
    /// The attested key list is malformed or offers nothing usable.
    #[error(transparent)]
    Keys(#[from] OhttpError),
}

/// The bundle as served, decoded from its JSON form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationBundle {
    /// The RA-TLS certificate, DER.
    pub certificate: Vec<u8>,
    /// Collateral for offline verification, when the gateway sends it.
    pub endorsements: Option<Vec<u8>>,
    /// The `application/ohttp-keys` bytes served, when the gateway serves OHTTP.
    pub ohttp_keys: Option<Vec<u8>>,
}

impl AttestationBundle {
    /// The JSON body of `GET /.well-known/shroud/attestation`, as the gateway serves it: the
    /// one writer of the format [`AttestationBundle::from_json`] reads.
    pub fn to_json(&self) -> serde_json::Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        serde_json::json!({
            "certificate": b64.encode(&self.certificate),
            "endorsements": self.endorsements.as_ref().map(|e| b64.encode(e)),
            "ohttp_keys": self.ohttp_keys.as_ref().map(|k| b64.encode(k)),
        })
    }

    /// Decodes the JSON body of `GET /.well-known/shroud/attestation`.
    pub fn from_json(body: &[u8]) -> Result<AttestationBundle, BundleError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| BundleError::Malformed(e.to_string()))?;
        let field = |name: &str| -> Result<Option<Vec<u8>>, BundleError> {
            match value.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map(Some)
                    .map_err(|e| BundleError::Malformed(format!("{name}: {e}"))),
                Some(_) => Err(BundleError::Malformed(format!("{name}: not a string"))),
            }
        };
        Ok(AttestationBundle {
            certificate: field("certificate")?
                .ok_or_else(|| BundleError::Malformed("certificate missing".into()))?,
            endorsements: field("endorsements")?,
            ohttp_keys: field("ohttp_keys")?,
        })
    }

    /// Verifies the certificate against `policy`, then checks that the served OHTTP keys are the
    /// attested ones, and returns the verdict with the usable key configurations.
    pub fn verify(
        &self,
        policy: &Policy,
        options: &VerifyOptions<'_>,
    ) -> Result<VerifiedBundle, BundleError> {
        let options = VerifyOptions {
            collateral: options.collateral.or(self.endorsements.as_deref()),
            ..*options
        };
        let verdict = shroud_ra_tls::verify_certificate(&self.certificate, policy, &options)?;
        let attested = verdict
            .claims()
            .ohttp_keys
            .clone()
            .ok_or(BundleError::NoOhttpKeysClaim)?;
        check_served_keys(&attested, self.ohttp_keys.as_deref())?;
        let key_configs = KeyConfig::decode_list(&attested)?;
        Ok(VerifiedBundle {
            verdict,
            ohttp_keys: attested,
            key_configs,
        })
    }
}

/// A bundle that verified: the verdict, the attested key list and its usable configurations.
/// Only [`AttestationBundle::verify`] makes one, so holding it means the checks ran.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    verdict: Verdict,
    ohttp_keys: Vec<u8>,
    key_configs: Vec<KeyConfig>,
}

impl VerifiedBundle {
    /// What the certificate's evidence established.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// The attested `application/ohttp-keys` bytes.
    pub fn ohttp_keys(&self) -> &[u8] {
        &self.ohttp_keys
    }

    /// The configurations of that list this client can seal to, in the gateway's order.
    pub fn key_configs(&self) -> &[KeyConfig] {
        &self.key_configs
    }

    /// Checks keys fetched separately (from `GET /.well-known/ohttp-gateway`) against the
    /// attested ones.
    pub fn check_served_keys(&self, served: &[u8]) -> Result<(), BundleError> {
        check_served_keys(&self.ohttp_keys, Some(served))
    }
}

fn check_served_keys(attested: &[u8], served: Option<&[u8]>) -> Result<(), BundleError> {
    match served {
        Some(served) if served == attested => Ok(()),
        _ => Err(BundleError::OhttpKeysMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_form_round_trips() {
        for bundle in [
            AttestationBundle {
                certificate: vec![0x30, 1, 2],
                endorsements: Some(vec![9; 40]),
                ohttp_keys: Some(vec![0, 1, 2, 3]),
            },
            AttestationBundle {
                certificate: vec![0x30],
                endorsements: None,
                ohttp_keys: None,
            },
        ] {
            let json = bundle.to_json().to_string();
            assert_eq!(
                AttestationBundle::from_json(json.as_bytes()).ok(),
                Some(bundle)
            );
        }
        assert!(matches!(
            AttestationBundle::from_json(br#"{"endorsements":null}"#),
            Err(BundleError::Malformed(_))
        ));
    }
}
