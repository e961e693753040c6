//! Intel TDX and AMD SEV-SNP evidence through Linux configfs-tsm
//! (`/sys/kernel/config/tsm/report`, Documentation/ABI/testing/configfs-tsm).
//!
//! One report is one directory: `mkdir report/NAME`, write the 64 bytes of report data to
//! `inblob`, read `outblob` (the TDX quote or the SNP report), `auxblob` (SNP: the host's
//! certificate table, when it provides one), `provider` (`tdx_guest`, `sev_guest`) and
//! `generation` (the number of writes to the entry: anything but 1 means another writer raced
//! us), then `rmdir`. The root is injectable so that tests run against a directory tree in a
//! tempdir playing the kernel's part.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Attester, report_data};
use crate::cmw::Evidence;
use crate::verify::unverified;
use crate::{Error, Measurements, Platform};

/// Where the kernel mounts the report interface.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";
/// Upper bound on any blob read back: a TDX quote is about 5 KiB, an SNP report 1184 bytes plus
/// a certificate table of a few KiB.
const MAX_BLOB: u64 = 128 * 1024;

/// Distinguishes the entries of one process.
static NEXT_ENTRY: AtomicU64 = AtomicU64::new(0);

/// A configfs-tsm report interface rooted at a directory.
#[derive(Debug, Clone)]
pub struct ConfigFsTsm {
    root: PathBuf,
}

/// What one report request returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsmReport {
    /// The evidence: a TDX quote or an SEV-SNP report.
    pub outblob: Vec<u8>,
    /// Auxiliary data (SNP: the certificate table with the VCEK/VLEK), when provided.
    pub auxblob: Option<Vec<u8>>,
    /// The provider, e.g. `tdx_guest` or `sev_guest`.
    pub provider: String,
}

/// One report entry (a directory), removed when dropped.
#[derive(Debug)]
pub struct TsmEntry {
    path: PathBuf,
}

impl ConfigFsTsm {
    /// The interface at `root` (normally [`DEFAULT_ROOT`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a fresh report entry.
    pub fn create_entry(&self) -> Result<TsmEntry, Error> {
        let n = NEXT_ENTRY.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join(format!("shroud-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).map_err(|e| io_error("creating", &path, &e))?;
        Ok(TsmEntry { path })
    }

    /// One report over `inblob` (64 bytes of report data).
    pub fn report(&self, inblob: &[u8; 64]) -> Result<TsmReport, Error> {
        self.create_entry()?.request(inblob)
    }
}

impl TsmEntry {
    /// The entry's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `inblob`, then reads the report and checks that nobody else wrote to the entry.
    pub fn request(&self, inblob: &[u8; 64]) -> Result<TsmReport, Error> {
        let inblob_path = self.path.join("inblob");
        std::fs::write(&inblob_path, inblob).map_err(|e| io_error("writing", &inblob_path, &e))?;
        let outblob = self.read("outblob")?;
        if outblob.is_empty() {
            return Err(Error::Attestation(format!(
                "{} is empty",
                self.path.join("outblob").display()
            )));
        }
        let auxblob = match self.read("auxblob") {
            Ok(blob) if !blob.is_empty() => Some(blob),
            _ => None,
        };
        let provider = self.read_text("provider")?;
        let generation = self.read_text("generation")?;
        if generation != "1" {
            return Err(Error::Attestation(format!(
                "configfs-tsm entry {} was written {generation} times: another writer raced this request",
                self.path.display()
            )));
        }
        Ok(TsmReport {
            outblob,
            auxblob,
            provider,
        })
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, Error> {
        let path = self.path.join(name);
        let file = std::fs::File::open(&path).map_err(|e| io_error("opening", &path, &e))?;
        let mut bytes = Vec::new();
        file.take(MAX_BLOB.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| io_error("reading", &path, &e))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_BLOB {
            return Err(Error::Attestation(format!(
                "{} is larger than {MAX_BLOB} bytes",
                path.display()
            )));
        }
        Ok(bytes)
    }

    fn read_text(&self, name: &str) -> Result<String, Error> {
        let bytes = self.read(name)?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
    }
}

impl Drop for TsmEntry {
    fn drop(&mut self) {
        // configfs removes the attribute files with the directory; a failure leaves one stale
        // entry behind, which is harmless.
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// The configfs-tsm provider name of `platform`.
pub fn provider_of(platform: Platform) -> Option<&'static str> {
    match platform {
        Platform::Tdx => Some("tdx_guest"),
        Platform::SevSnp => Some("sev_guest"),
        _ => None,
    }
}

/// TDX or SEV-SNP evidence from configfs-tsm.
#[derive(Debug)]
pub struct ConfigFsTsmAttester {
    tsm: ConfigFsTsm,
    platform: Platform,
    measurements: Measurements,
}

impl ConfigFsTsmAttester {
    /// An attester for `platform` (TDX or SEV-SNP): asks for one report to check the provider
    /// and learn the measurements it reports.
    pub fn new(tsm: ConfigFsTsm, platform: Platform) -> Result<Self, Error> {
        let expected = expected_provider(platform)?;
        let probe = tsm.report(&report_data(&[]))?;
        check_provider(&probe, expected, platform)?;
        Self::from_probe(tsm, platform, &probe)
    }

    /// The attester, given one report already obtained from `tsm`.
    fn from_probe(tsm: ConfigFsTsm, platform: Platform, probe: &TsmReport) -> Result<Self, Error> {
        let measurements = match platform {
            Platform::SevSnp => unverified::sev_snp_report(&probe.outblob)?,
            _ => {
                let (quoted, measurements) = unverified::intel_quote(&probe.outblob)?;
                if quoted != platform {
                    return Err(Error::Attestation(format!(
                        "configfs-tsm returned a {quoted} quote, expected {platform}"
                    )));
                }
                measurements
            }
        };
        Ok(Self {
            tsm,
            platform,
            measurements,
        })
    }

    /// One report over `claims`, from the expected provider.
    pub fn request(&self, claims: &[u8]) -> Result<TsmReport, Error> {
        let expected = expected_provider(self.platform)?;
        let report = self.tsm.report(&report_data(claims))?;
        check_provider(&report, expected, self.platform)?;
        Ok(report)
    }

    fn evidence(&self, report: TsmReport, claims: &[u8]) -> Evidence {
        let claims = claims.to_vec();
        match self.platform {
            Platform::SevSnp => Evidence::SevSnp {
                report: report.outblob,
                claims,
            },
            _ => Evidence::Intel {
                quote: report.outblob,
                claims,
            },
        }
    }
}

fn expected_provider(platform: Platform) -> Result<&'static str, Error> {
    provider_of(platform).ok_or_else(|| {
        Error::Attestation(format!(
            "configfs-tsm provides TDX and SEV-SNP evidence, not {platform}"
        ))
    })
}

fn check_provider(report: &TsmReport, expected: &str, platform: Platform) -> Result<(), Error> {
    if report.provider == expected {
        Ok(())
    } else {
        Err(Error::Attestation(format!(
            "configfs-tsm provider is {:?}, expected {expected:?} for {platform}",
            report.provider
        )))
    }
}

impl Attester for ConfigFsTsmAttester {
    fn platform(&self) -> Platform {
        self.platform
    }

    fn measurements(&self) -> Measurements {
        self.measurements.clone()
    }

    fn attest(&self, claims: &[u8]) -> Result<Evidence, Error> {
        let report = self.request(claims)?;
        Ok(self.evidence(report, claims))
    }
}

fn io_error(action: &str, path: &Path, error: &std::io::Error) -> Error {
    Error::Attestation(format!(
        "configfs-tsm: {action} {}: {error}",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "test code: a failed assumption is a failed test"
    )]

    use super::*;

    /// Plays the kernel's part in an entry the client created: the attribute files configfs
    /// would show.
    fn kernel_answers(entry: &TsmEntry, outblob: &[u8], provider: &str, generation: &str) {
        std::fs::write(entry.path().join("outblob"), outblob).unwrap();
        std::fs::write(entry.path().join("provider"), format!("{provider}\n")).unwrap();
        std::fs::write(entry.path().join("generation"), format!("{generation}\n")).unwrap();
    }

    #[test]
    fn a_report_writes_the_inblob_and_reads_the_answer() {
        let root = tempfile::tempdir().unwrap();
        let tsm = ConfigFsTsm::new(root.path());
        let entry = tsm.create_entry().unwrap();
        assert!(entry.path().starts_with(root.path()) && entry.path().is_dir());
        kernel_answers(&entry, b"QUOTE", "tdx_guest", "1");
        let inblob = report_data(b"claims");
        let report = entry.request(&inblob).unwrap();
        assert_eq!(report.outblob, b"QUOTE");
        assert_eq!(report.provider, "tdx_guest");
        assert_eq!(report.auxblob, None);
        // What the kernel received: SHA-256(claims) and 32 zero bytes.
        let written = std::fs::read(entry.path().join("inblob")).unwrap();
        assert_eq!(written[..32], crate::sha256(b"claims"));
        assert_eq!(written[32..], [0; 32]);
    }

    #[test]
    fn races_missing_and_empty_answers_fail() {
        let root = tempfile::tempdir().unwrap();
        let tsm = ConfigFsTsm::new(root.path());
        let inblob = report_data(b"claims");

        let raced = tsm.create_entry().unwrap();
        kernel_answers(&raced, b"QUOTE", "tdx_guest", "2");
        let error = raced.request(&inblob).unwrap_err().to_string();
        assert!(error.contains("raced"), "{error}");

        let empty = tsm.create_entry().unwrap();
        kernel_answers(&empty, b"", "tdx_guest", "1");
        assert!(empty.request(&inblob).is_err());

        // Without the kernel (a plain directory), the report cannot be read.
        let error = tsm.report(&inblob).unwrap_err().to_string();
        assert!(error.contains("outblob"), "{error}");
        // A root that does not exist: no configfs-tsm here.
        let missing = ConfigFsTsm::new(root.path().join("absent"));
        assert!(missing.report(&inblob).is_err());
    }

    #[test]
    fn snp_auxblob_is_returned_and_entries_are_distinct() {
        let root = tempfile::tempdir().unwrap();
        let tsm = ConfigFsTsm::new(root.path());
        let (a, b) = (tsm.create_entry().unwrap(), tsm.create_entry().unwrap());
        assert_ne!(a.path(), b.path());
        kernel_answers(&a, b"REPORT", "sev_guest", "1");
        std::fs::write(a.path().join("auxblob"), b"CERTS").unwrap();
        let report = a.request(&[0; 64]).unwrap();
        assert_eq!(report.auxblob.as_deref(), Some(&b"CERTS"[..]));
        assert_eq!(report.provider, "sev_guest");
    }

    #[test]
    fn the_attester_reports_real_evidence_as_the_kernel_returns_it() {
        let Some(dir) = shroud_testkit::vectors::attestation_vectors() else {
            return;
        };
        let root = tempfile::tempdir().unwrap();
        let tsm = ConfigFsTsm::new(root.path());
        for (platform, file, provider, field, prefix) in [
            (
                Platform::Tdx,
                "intel/tdx_quote.bin",
                "tdx_guest",
                "mrtd",
                "91eb2b44",
            ),
            (
                Platform::SevSnp,
                "sev-snp/report_milan.bin",
                "sev_guest",
                "measurement",
                "7a1e5c26",
            ),
        ] {
            let outblob = std::fs::read(dir.join(file)).unwrap();
            let entry = tsm.create_entry().unwrap();
            kernel_answers(&entry, &outblob, provider, "1");
            let probe = entry.request(&[0; 64]).unwrap();
            check_provider(&probe, provider, platform).unwrap();
            let attester = ConfigFsTsmAttester::from_probe(tsm.clone(), platform, &probe).unwrap();
            assert_eq!(attester.platform(), platform);
            let measured = hex::encode(attester.measurements().get(field).unwrap());
            assert!(
                measured.starts_with(prefix),
                "{platform} {field} {measured}"
            );
            let evidence = attester.evidence(probe, b"claims");
            assert_eq!(evidence.platform().unwrap(), platform);
            assert_eq!(evidence.platform_evidence(), outblob.as_slice());
            assert_eq!(evidence.claims_buffer(), b"claims");
        }
        // The wrong provider, or a TDX quote where SEV-SNP was asked for, is refused.
        let quote = std::fs::read(dir.join("intel/tdx_quote.bin")).unwrap();
        let entry = tsm.create_entry().unwrap();
        kernel_answers(&entry, &quote, "tdx_guest", "1");
        let probe = entry.request(&[0; 64]).unwrap();
        assert!(check_provider(&probe, "sev_guest", Platform::SevSnp).is_err());
        assert!(ConfigFsTsmAttester::from_probe(tsm.clone(), Platform::SevSnp, &probe).is_err());
        assert!(ConfigFsTsmAttester::new(tsm, Platform::Nitro).is_err());
    }
}
