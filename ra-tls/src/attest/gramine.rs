//! Intel SGX evidence through Gramine's `/dev/attestation` pseudo-filesystem: write the 64 bytes
//! of report data to `user_report_data`, read the DCAP quote from `quote`. `attestation_type`
//! says `dcap` when Gramine was configured for DCAP (`sgx.remote_attestation = "dcap"`).
//!
//! The root is injectable so that tests run against a directory tree in a tempdir.

use std::path::{Path, PathBuf};

use super::{Attester, report_data};
use crate::cmw::Evidence;
use crate::verify::unverified;
use crate::{Error, Measurements, Platform};

/// Where Gramine mounts the attestation interface inside the enclave.
pub const DEFAULT_ROOT: &str = "/dev/attestation";
/// Upper bound on a quote read back (an SGX DCAP quote is about 4.5 KiB).
const MAX_QUOTE: usize = 64 * 1024;

/// Gramine's `/dev/attestation` interface rooted at a directory.
#[derive(Debug, Clone)]
pub struct GramineAttestation {
    root: PathBuf,
}

impl GramineAttestation {
    /// The interface at `root` (normally [`DEFAULT_ROOT`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `attestation_type`: `dcap`, `epid` or `none`.
    pub fn attestation_type(&self) -> Result<String, Error> {
        let path = self.root.join("attestation_type");
        let text = std::fs::read_to_string(&path).map_err(|e| io_error("reading", &path, &e))?;
        Ok(text.trim().to_owned())
    }

    /// One DCAP quote over `user_report_data`.
    pub fn quote(&self, user_report_data: &[u8; 64]) -> Result<Vec<u8>, Error> {
        let data_path = self.root.join("user_report_data");
        std::fs::write(&data_path, user_report_data)
            .map_err(|e| io_error("writing", &data_path, &e))?;
        let quote_path = self.root.join("quote");
        let quote = std::fs::read(&quote_path).map_err(|e| io_error("reading", &quote_path, &e))?;
        if quote.is_empty() || quote.len() > MAX_QUOTE {
            return Err(Error::Attestation(format!(
                "{} returned {} bytes, not a DCAP quote",
                quote_path.display(),
                quote.len()
            )));
        }
        Ok(quote)
    }
}

/// SGX evidence from Gramine.
#[derive(Debug)]
pub struct GramineSgxAttester {
    device: GramineAttestation,
    measurements: Measurements,
}

impl GramineSgxAttester {
    /// An attester over `device`: requires DCAP, and asks for one quote to learn the enclave's
    /// measurements.
    pub fn new(device: GramineAttestation) -> Result<Self, Error> {
        let kind = device.attestation_type()?;
        if kind != "dcap" {
            return Err(Error::Attestation(format!(
                "Gramine attestation type is {kind:?}; Shroud needs \"dcap\" (sgx.remote_attestation = \"dcap\" in the manifest)"
            )));
        }
        let quote = device.quote(&report_data(&[]))?;
        let (platform, measurements) = unverified::intel_quote(&quote)?;
        if platform != Platform::Sgx {
            return Err(Error::Attestation(format!(
                "Gramine returned a {platform} quote, expected sgx"
            )));
        }
        Ok(Self {
            device,
            measurements,
        })
    }
}

impl Attester for GramineSgxAttester {
    fn platform(&self) -> Platform {
        Platform::Sgx
    }

    fn measurements(&self) -> Measurements {
        self.measurements.clone()
    }

    fn attest(&self, claims: &[u8]) -> Result<Evidence, Error> {
        Ok(Evidence::Intel {
            quote: self.device.quote(&report_data(claims))?,
            claims: claims.to_vec(),
        })
    }
}

fn io_error(action: &str, path: &Path, error: &std::io::Error) -> Error {
    Error::Attestation(format!("gramine: {action} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "test code: a failed assumption is a failed test"
    )]

    use super::*;

    /// A tempdir laid out like Gramine's `/dev/attestation` with `quote` already answered.
    fn fake_device(kind: &str, quote: &[u8]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("attestation_type"), format!("{kind}\n")).unwrap();
        std::fs::write(root.path().join("quote"), quote).unwrap();
        root
    }

    #[test]
    fn quotes_are_requested_over_the_report_data() {
        let Some(dir) = shroud_testkit::vectors::attestation_vectors() else {
            return;
        };
        let quote = std::fs::read(dir.join("intel/sgx_quote.bin")).unwrap();
        let root = fake_device("dcap", &quote);
        let attester = GramineSgxAttester::new(GramineAttestation::new(root.path())).unwrap();
        assert_eq!(attester.platform(), Platform::Sgx);
        assert_eq!(
            hex::encode(attester.measurements().get("mrenclave").unwrap()),
            "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
        );
        let evidence = attester.attest(b"claims").unwrap();
        assert_eq!(evidence.platform().unwrap(), Platform::Sgx);
        assert_eq!(evidence.platform_evidence(), quote.as_slice());
        let written = std::fs::read(root.path().join("user_report_data")).unwrap();
        assert_eq!(written[..32], crate::sha256(b"claims"));
        assert_eq!(written[32..], [0; 32]);
    }

    #[test]
    fn non_dcap_and_non_sgx_quotes_are_refused() {
        let error =
            GramineSgxAttester::new(GramineAttestation::new(fake_device("epid", b"x").path()))
                .unwrap_err();
        assert!(error.to_string().contains("dcap"), "{error}");
        let empty = fake_device("dcap", b"");
        assert!(GramineSgxAttester::new(GramineAttestation::new(empty.path())).is_err());
        let absent = tempfile::tempdir().unwrap();
        assert!(GramineSgxAttester::new(GramineAttestation::new(absent.path())).is_err());
        if let Some(dir) = shroud_testkit::vectors::attestation_vectors() {
            let tdx = std::fs::read(dir.join("intel/tdx_quote.bin")).unwrap();
            let root = fake_device("dcap", &tdx);
            assert!(GramineSgxAttester::new(GramineAttestation::new(root.path())).is_err());
        }
    }
}
