use std::fmt;
use std::str::FromStr;

/// A platform or TCB status name that is not one Shroud knows. Converts into
/// [`crate::Error::InvalidPolicy`]; its own type so that this module, below the error type,
/// imports nothing of the crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownName(pub String);

/// A kind of trusted execution environment whose evidence Shroud understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Platform {
    /// AWS Nitro Enclaves (NSM attestation document, COSE_Sign1).
    Nitro,
    /// Intel TDX (DCAP quote v4/v5).
    Tdx,
    /// Intel SGX (DCAP quote v3/v4).
    Sgx,
    /// AMD SEV-SNP (attestation report).
    SevSnp,
    /// Development only: a report signed by a per-process key. Proves nothing.
    Simulated,
}

impl Platform {
    /// Every platform, in a fixed order.
    pub const ALL: [Self; 5] = [
        Self::Nitro,
        Self::Tdx,
        Self::Sgx,
        Self::SevSnp,
        Self::Simulated,
    ];

    /// The name used in pins, policies, JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nitro => "nitro",
            Self::Tdx => "tdx",
            Self::Sgx => "sgx",
            Self::SevSnp => "sev-snp",
            Self::Simulated => "simulated",
        }
    }

    /// The measurement fields of this platform (DESIGN §6) and their lengths in bytes.
    pub fn measurement_fields(self) -> &'static [(&'static str, usize)] {
        match self {
            Self::Nitro => &[
                ("pcr0", 48),
                ("pcr1", 48),
                ("pcr2", 48),
                ("pcr3", 48),
                ("pcr4", 48),
                ("pcr8", 48),
            ],
            Self::Tdx => &[
                ("mrtd", 48),
                ("rtmr0", 48),
                ("rtmr1", 48),
                ("rtmr2", 48),
                ("rtmr3", 48),
            ],
            Self::Sgx => &[
                ("mrenclave", 32),
                ("mrsigner", 32),
                ("isvprodid", 2),
                ("isvsvn", 2),
            ],
            Self::SevSnp => &[("measurement", 48), ("host_data", 32), ("policy", 8)],
            Self::Simulated => &[("measurement", 48)],
        }
    }

    /// The sets of fields that together identify the code on this platform: a policy rule must
    /// pin every field of at least one set (DESIGN §6). A field alone names only part of the
    /// code: TDX's `mrtd` is the TD firmware every tenant of a cloud's VM type shares (the
    /// kernel, command line and gateway are in RTMR0–2); SGX's `mrsigner` is every product and
    /// version of a signer; Nitro's `pcr0` without PCR1–2 leaves the kernel or application
    /// open. `min_isvsvn` is the rule's minimum ISV SVN, not a measurement.
    pub fn complete_identities(self) -> &'static [&'static [&'static str]] {
        match self {
            Self::Nitro => &[&["pcr0", "pcr1", "pcr2"]],
            Self::Tdx => &[&["mrtd", "rtmr0", "rtmr1", "rtmr2"]],
            Self::Sgx => &[&["mrenclave"], &["mrsigner", "isvprodid", "min_isvsvn"]],
            Self::SevSnp | Self::Simulated => &[&["measurement"]],
        }
    }

    /// Whether this build can verify evidence of this platform: its verifier's feature (named
    /// like the platform) was on when `shroud-ra-tls` was compiled. Always true for
    /// [`Platform::Simulated`], which is refused by default instead.
    pub fn has_verifier(self) -> bool {
        match self {
            Self::Nitro => cfg!(feature = "nitro"),
            Self::Tdx => cfg!(feature = "tdx"),
            Self::Sgx => cfg!(feature = "sgx"),
            Self::SevSnp => cfg!(feature = "sev-snp"),
            Self::Simulated => true,
        }
    }

    /// The field printed in the gateway's `measurement:` start-up line.
    pub fn primary_field(self) -> &'static str {
        match self {
            Self::Nitro => "pcr0",
            Self::Tdx => "mrtd",
            Self::Sgx => "mrenclave",
            Self::SevSnp | Self::Simulated => "measurement",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                UnknownName(format!(
                    "unknown platform {s:?} (expected one of nitro, tdx, sgx, sev-snp, simulated)"
                ))
            })
    }
}

/// The TCB (trusted computing base) status of a platform, in Intel's vocabulary, which AMD's
/// checks map onto. Default policy accepts [`TcbStatus::UpToDate`] only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TcbStatus {
    /// Fully patched.
    UpToDate,
    /// Patched, but software mitigations are needed.
    SwHardeningNeeded,
    /// Patched, but the platform configuration needs changes.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSwHardeningNeeded,
    /// Known vulnerable firmware or microcode.
    OutOfDate,
    /// Out of date, and configuration changes needed.
    OutOfDateConfigurationNeeded,
    /// The platform's key was revoked. Never acceptable.
    Revoked,
    /// The platform has no TCB status (Nitro, simulated).
    NotApplicable,
}

impl TcbStatus {
    const NAMES: [(Self, &'static str); 8] = [
        (Self::UpToDate, "UpToDate"),
        (Self::SwHardeningNeeded, "SWHardeningNeeded"),
        (Self::ConfigurationNeeded, "ConfigurationNeeded"),
        (
            Self::ConfigurationAndSwHardeningNeeded,
            "ConfigurationAndSWHardeningNeeded",
        ),
        (Self::OutOfDate, "OutOfDate"),
        (
            Self::OutOfDateConfigurationNeeded,
            "OutOfDateConfigurationNeeded",
        ),
        (Self::Revoked, "Revoked"),
        (Self::NotApplicable, "NotApplicable"),
    ];

    /// The vendor's name of the status.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("Unknown", |(_, n)| n)
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TcbStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s))
            .map(|(status, _)| *status)
            .ok_or_else(|| UnknownName(format!("unknown TCB status {s:?}")))
    }
}

/// Measurements reported by verified evidence, by the vendor's field name (lower case).
///
/// A list sorted by field rather than a `BTreeMap`: a handful of fields, and the map's code was
/// a few KB of the browser bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measurements(Vec<(String, Vec<u8>)>);

impl Measurements {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a field.
    pub fn insert(&mut self, field: impl Into<String>, value: impl Into<Vec<u8>>) {
        let (field, value) = (field.into(), value.into());
        match self.0.binary_search_by(|(f, _)| f.as_str().cmp(&field)) {
            Ok(at) => {
                if let Some((_, old)) = self.0.get_mut(at) {
                    *old = value;
                }
            }
            Err(at) => self.0.insert(at, (field, value)),
        }
    }

    /// The value of a field.
    pub fn get(&self, field: &str) -> Option<&[u8]> {
        let at = self
            .0
            .binary_search_by(|(f, _)| f.as_str().cmp(field))
            .ok()?;
        self.0.get(at).map(|(_, v)| v.as_slice())
    }

    /// Fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `field=hex` pairs separated by spaces, for messages.
    pub fn describe(&self) -> String {
        self.iter()
            .map(|(k, v)| format!("{k}={}", hex::encode(v)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl<K: Into<String>, V: Into<Vec<u8>>> FromIterator<(K, V)> for Measurements {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(fields: I) -> Self {
        let mut measurements = Self::new();
        for (field, value) in fields {
            measurements.insert(field, value);
        }
        measurements
    }
}
