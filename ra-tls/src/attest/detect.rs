//! Which TEE this process runs in, from the devices each platform exposes, and the attester for
//! it. Every path is injectable so that the logic is tested against directory trees in a tempdir.

use std::path::PathBuf;

use super::Attester;
use super::configfs_tsm::{self, ConfigFsTsm, ConfigFsTsmAttester};
use super::gramine::{self, GramineAttestation, GramineSgxAttester};
use super::nitro::{self, NsmAttester};
use crate::{Error, Platform};

/// The paths detection looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectPaths {
    /// The Nitro Secure Module device (`/dev/nsm`).
    pub nsm: PathBuf,
    /// Gramine's attestation interface (`/dev/attestation`).
    pub gramine: PathBuf,
    /// The configfs-tsm report directory (`/sys/kernel/config/tsm/report`).
    pub tsm_report: PathBuf,
    /// The TDX guest device (`/dev/tdx_guest`).
    pub tdx_guest: PathBuf,
    /// The SEV-SNP guest device (`/dev/sev-guest`).
    pub sev_guest: PathBuf,
}

impl Default for DetectPaths {
    fn default() -> Self {
        Self {
            nsm: nitro::NSM_DEVICE.into(),
            gramine: gramine::DEFAULT_ROOT.into(),
            tsm_report: configfs_tsm::DEFAULT_ROOT.into(),
            tdx_guest: "/dev/tdx_guest".into(),
            sev_guest: "/dev/sev-guest".into(),
        }
    }
}

impl DetectPaths {
    /// The TEE whose interface is present, if any. A Gramine enclave is SGX whatever the host;
    /// a confidential VM needs configfs-tsm and its guest device.
    pub fn detect(&self) -> Option<Platform> {
        if self.nsm.exists() {
            Some(Platform::Nitro)
        } else if self.gramine.join("attestation_type").exists() {
            Some(Platform::Sgx)
        } else if self.tsm_report.is_dir() && self.tdx_guest.exists() {
            Some(Platform::Tdx)
        } else if self.tsm_report.is_dir() && self.sev_guest.exists() {
            Some(Platform::SevSnp)
        } else {
            None
        }
    }

    /// What was looked at, for the error that says no TEE was found.
    pub fn describe(&self) -> String {
        format!(
            "{} (nitro), {}/attestation_type (sgx, Gramine), {} with {} (tdx) or {} (sev-snp)",
            self.nsm.display(),
            self.gramine.display(),
            self.tsm_report.display(),
            self.tdx_guest.display(),
            self.sev_guest.display()
        )
    }

    /// The attester for `platform`, or for the detected one when `platform` is `None` (`auto`).
    /// The simulated attester is not a hardware one and is never returned.
    pub fn hardware_attester(
        &self,
        platform: Option<Platform>,
    ) -> Result<Box<dyn Attester>, Error> {
        let platform = match platform {
            Some(platform) => platform,
            None => self.detect().ok_or_else(|| {
                Error::Attestation(format!(
                    "no TEE found (looked for {}); run inside one, or use the simulated TEE for development only",
                    self.describe()
                ))
            })?,
        };
        let attester: Box<dyn Attester> = match platform {
            Platform::Nitro => Box::new(NsmAttester::new()?),
            Platform::Tdx | Platform::SevSnp => Box::new(ConfigFsTsmAttester::new(
                ConfigFsTsm::new(&self.tsm_report),
                platform,
            )?),
            Platform::Sgx => Box::new(GramineSgxAttester::new(GramineAttestation::new(
                &self.gramine,
            ))?),
            Platform::Simulated => {
                return Err(Error::Attestation(
                    "the simulated TEE is not hardware; it is chosen explicitly (platform = \"simulated\" or --dev)".into(),
                ));
            }
        };
        Ok(attester)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::panic,
        reason = "test code: a failed assumption is a failed test"
    )]

    use super::*;

    fn paths(root: &std::path::Path) -> DetectPaths {
        DetectPaths {
            nsm: root.join("dev/nsm"),
            gramine: root.join("dev/attestation"),
            tsm_report: root.join("sys/kernel/config/tsm/report"),
            tdx_guest: root.join("dev/tdx_guest"),
            sev_guest: root.join("dev/sev-guest"),
        }
    }

    fn touch(path: &std::path::Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn each_platform_is_told_by_its_interface() {
        let cases: [(&[&str], &[&str], Option<Platform>); 7] = [
            (&[], &[], None),
            (&["dev/nsm"], &[], Some(Platform::Nitro)),
            (
                &["dev/attestation/attestation_type"],
                &[],
                Some(Platform::Sgx),
            ),
            (
                &["dev/tdx_guest"],
                &["sys/kernel/config/tsm/report"],
                Some(Platform::Tdx),
            ),
            (
                &["dev/sev-guest"],
                &["sys/kernel/config/tsm/report"],
                Some(Platform::SevSnp),
            ),
            // A guest device without configfs-tsm (an old kernel) is not enough.
            (&["dev/tdx_guest"], &[], None),
            // configfs-tsm without a guest device says nothing about the platform.
            (&[], &["sys/kernel/config/tsm/report"], None),
        ];
        for (files, dirs, expected) in cases {
            let root = tempfile::tempdir().unwrap();
            files.iter().for_each(|f| touch(&root.path().join(f)));
            dirs.iter()
                .for_each(|d| std::fs::create_dir_all(root.path().join(d)).unwrap());
            assert_eq!(paths(root.path()).detect(), expected, "{files:?} {dirs:?}");
        }
    }

    #[test]
    fn without_a_tee_the_error_says_where_it_looked() {
        let root = tempfile::tempdir().unwrap();
        let paths = paths(root.path());
        let error = |platform| match paths.hardware_attester(platform) {
            Ok(_) => panic!("an attester without a TEE"),
            Err(e) => e.to_string(),
        };
        let none = error(None);
        assert!(
            none.contains("no TEE found") && none.contains("dev/nsm"),
            "{none}"
        );
        // Asking for a platform that is not there fails on its interface.
        let tdx = error(Some(Platform::Tdx));
        assert!(tdx.contains("configfs-tsm"), "{tdx}");
        let sgx = error(Some(Platform::Sgx));
        assert!(sgx.contains("attestation_type"), "{sgx}");
        let simulated = error(Some(Platform::Simulated));
        assert!(simulated.contains("not hardware"), "{simulated}");
    }
}
