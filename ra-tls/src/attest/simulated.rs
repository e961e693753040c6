//! The simulated attester: development only, and refused by every verifier unless the caller
//! opts in explicitly.
//!
//! It signs a report with a key generated at process start, so the report proves nothing about
//! the code that produced it: anyone can run this attester with any "measurement". Its only
//! purpose is to exercise the whole RA-TLS path on a laptop.

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

use super::Attester;
use crate::cmw::Evidence;
use crate::verify::simulated::SimulatedReport;
use crate::{Error, Measurements, Platform};

/// Signs simulated reports with a per-process P-256 key.
pub struct SimulatedAttester {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    measurement: [u8; 48],
}

impl std::fmt::Debug for SimulatedAttester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedAttester")
            .field("measurement", &hex::encode(self.measurement))
            .finish_non_exhaustive()
    }
}

impl SimulatedAttester {
    /// An attester whose measurement is SHA-384 of the running executable.
    pub fn for_current_executable() -> Result<Self, Error> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::Attestation(format!("locating the running executable: {e}")))?;
        // Hashed as a stream: a debug build of the gateway is hundreds of megabytes, which
        // would otherwise stay in the process's peak memory for its whole life.
        let measurement = sha384_of_file(&exe)
            .map_err(|e| Error::Attestation(format!("reading {}: {e}", exe.display())))?;
        Self::with_measurement(measurement)
    }

    /// An attester reporting an arbitrary measurement (tests).
    pub fn with_measurement(measurement: [u8; 48]) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| Error::Attestation("generating the simulated signing key".into()))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| Error::Attestation("loading the simulated signing key".into()))?;
        Ok(Self {
            key,
            rng,
            measurement,
        })
    }

    /// The simulated measurement.
    pub fn measurement(&self) -> [u8; 48] {
        self.measurement
    }
}

impl Attester for SimulatedAttester {
    fn platform(&self) -> Platform {
        Platform::Simulated
    }

    fn measurements(&self) -> Measurements {
        let mut m = Measurements::new();
        m.insert("measurement", self.measurement);
        m
    }

    fn attest(&self, claims: &[u8]) -> Result<Evidence, Error> {
        let mut report_data = [0u8; 64];
        report_data[..32].copy_from_slice(&crate::sha256(claims));
        let mut report = SimulatedReport {
            measurement: self.measurement,
            report_data,
            public_key: self.key.public_key().as_ref().to_vec(),
            signature: Vec::new(),
        };
        report.signature = self
            .key
            .sign(&self.rng, &report.signed_bytes())
            .map_err(|_| Error::Attestation("signing the simulated report".into()))?
            .as_ref()
            .to_vec();
        Ok(Evidence::Simulated {
            report: report.to_cbor(),
            claims: claims.to_vec(),
        })
    }
}

/// SHA-384 of a file, read in 64 KiB chunks.
fn sha384_of_file(path: &std::path::Path) -> std::io::Result<[u8; 48]> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha384::new();
    let mut chunk = vec![0_u8; 64 * 1024];
    loop {
        let read = file.read(&mut chunk)?;
        match chunk.get(..read) {
            Some([]) | None => break,
            Some(bytes) => hasher.update(bytes),
        }
    }
    Ok(hasher.finalize().into())
}
