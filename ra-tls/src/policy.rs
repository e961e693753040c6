//! The measurement policy: which builds a client trusts.
//!
//! A policy is a list of `[[accept]]` entries; an entry names a platform, pins at least one of
//! the measurements that identify its code, and may allow TCB statuses beyond `UpToDate`. There
//! is no wildcard: an empty policy trusts nothing.
//!
//! ```toml
//! [[accept]]
//! platform = "tdx"
//! mrtd = "…96 hex digits…"
//! rtmr1 = "…"
//! allow_tcb = ["SWHardeningNeeded"]
//! ```
//!
//! On the command line, `--pin P:FIELD=HEX` pins of the same platform form one entry.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Error, Measurements, Platform, TcbStatus};

/// One acceptable build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptRule {
    platform: Platform,
    measurements: BTreeMap<String, Vec<u8>>,
    allow_tcb: BTreeSet<TcbStatus>,
}

impl AcceptRule {
    /// A rule for `platform` pinning `measurements` (`field -> value`).
    pub fn new(platform: Platform, measurements: BTreeMap<String, Vec<u8>>) -> Result<Self, Error> {
        for (field, value) in &measurements {
            let Some((_, len)) = platform
                .measurement_fields()
                .iter()
                .find(|(f, _)| f == field)
            else {
                return Err(Error::InvalidPolicy(format!(
                    "{platform} has no measurement {field:?} (known: {})",
                    field_names(platform)
                )));
            };
            if value.len() != *len {
                return Err(Error::InvalidPolicy(format!(
                    "{platform}:{field} must be {len} bytes ({} hex digits), got {} bytes",
                    len * 2,
                    value.len()
                )));
            }
        }
        if !platform
            .identity_fields()
            .iter()
            .any(|f| measurements.contains_key(*f))
        {
            return Err(Error::InvalidPolicy(format!(
                "an entry for {platform} must pin {} (what identifies the code)",
                platform.identity_fields().join(" or ")
            )));
        }
        let mut allow_tcb = BTreeSet::new();
        allow_tcb.insert(TcbStatus::UpToDate);
        allow_tcb.insert(TcbStatus::NotApplicable);
        Ok(Self {
            platform,
            measurements,
            allow_tcb,
        })
    }

    /// Also accepts `status` (never `Revoked`).
    pub fn allow_tcb(&mut self, status: TcbStatus) -> Result<(), Error> {
        if status == TcbStatus::Revoked {
            return Err(Error::InvalidPolicy(
                "a Revoked TCB can never be allowed".into(),
            ));
        }
        self.allow_tcb.insert(status);
        Ok(())
    }

    fn matches(&self, platform: Platform, measurements: &Measurements) -> bool {
        self.platform == platform
            && self
                .measurements
                .iter()
                .all(|(field, pinned)| measurements.get(field) == Some(pinned.as_slice()))
    }

    fn describe(&self) -> String {
        let pins: Vec<String> = self
            .measurements
            .iter()
            .map(|(k, v)| format!("{k}={}", hex::encode(v)))
            .collect();
        format!("[{} {}]", self.platform, pins.join(" "))
    }
}

/// The set of builds a client accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    accept: Vec<AcceptRule>,
}

impl Policy {
    /// A policy of explicit rules.
    pub fn new(accept: Vec<AcceptRule>) -> Self {
        Self { accept }
    }

    /// Whether the policy accepts nothing.
    pub fn is_empty(&self) -> bool {
        self.accept.is_empty()
    }

    /// The rules.
    pub fn rules(&self) -> &[AcceptRule] {
        &self.accept
    }

    /// Adds a rule.
    pub fn push(&mut self, rule: AcceptRule) {
        self.accept.push(rule);
    }

    /// Builds a policy from `platform:field=hex` pins; pins of one platform form one entry.
    pub fn from_pins<I, S>(pins: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut by_platform: BTreeMap<Platform, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        for pin in pins {
            let pin = pin.as_ref();
            let (platform, rest) = pin.split_once(':').ok_or_else(|| bad_pin(pin))?;
            let (field, value) = rest.split_once('=').ok_or_else(|| bad_pin(pin))?;
            let platform: Platform = platform.parse()?;
            let value = parse_hex(pin, value)?;
            let fields = by_platform.entry(platform).or_default();
            if fields.insert(field.to_owned(), value).is_some() {
                return Err(Error::InvalidPolicy(format!(
                    "{platform}:{field} is pinned twice; write one policy file with several [[accept]] entries to accept several builds"
                )));
            }
        }
        let rules = by_platform
            .into_iter()
            .map(|(platform, fields)| AcceptRule::new(platform, fields))
            .collect::<Result<_, _>>()?;
        Ok(Self::new(rules))
    }

    /// Parses a TOML policy file with one `[[accept]]` table per acceptable build.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::InvalidPolicy(e.to_string()))?;
        let mut policy = Self::default();
        for (key, value) in table {
            if key != "accept" {
                return Err(Error::InvalidPolicy(format!(
                    "unknown key {key:?} (expected [[accept]] tables)"
                )));
            }
            let toml::Value::Array(entries) = value else {
                return Err(Error::InvalidPolicy(
                    "accept must be an array of tables ([[accept]])".into(),
                ));
            };
            for entry in entries {
                let toml::Value::Table(entry) = entry else {
                    return Err(Error::InvalidPolicy(
                        "accept must be an array of tables ([[accept]])".into(),
                    ));
                };
                policy.push(parse_rule(entry)?);
            }
        }
        Ok(policy)
    }

    /// Adds `status` to the TCB statuses every rule allows (`--allow-tcb`).
    pub fn allow_tcb(&mut self, status: TcbStatus) -> Result<(), Error> {
        self.accept
            .iter_mut()
            .try_for_each(|rule| rule.allow_tcb(status))
    }

    /// Step 3: some rule for `platform` allows `status`.
    pub fn check_tcb(&self, platform: Platform, status: TcbStatus) -> Result<(), Error> {
        let allowed = self
            .accept
            .iter()
            .any(|r| r.platform == platform && r.allow_tcb.contains(&status));
        if allowed || status == TcbStatus::NotApplicable {
            Ok(())
        } else {
            Err(Error::TcbNotAllowed { platform, status })
        }
    }

    /// Step 5: some rule matches all of its pins and allows `status`.
    pub fn check_measurements(
        &self,
        platform: Platform,
        measurements: &Measurements,
        status: TcbStatus,
    ) -> Result<(), Error> {
        if self.is_empty() {
            return Err(Error::EmptyPolicy);
        }
        let accepted = self
            .accept
            .iter()
            .any(|r| r.matches(platform, measurements) && r.allow_tcb.contains(&status));
        if accepted {
            return Ok(());
        }
        let expected: Vec<String> = self.accept.iter().map(AcceptRule::describe).collect();
        Err(Error::MeasurementMismatch {
            actual: format!("[{platform} {}]", measurements.describe()),
            expected: expected.join(", "),
        })
    }
}

fn parse_rule(entry: toml::Table) -> Result<AcceptRule, Error> {
    let mut platform = None;
    let mut allow = Vec::new();
    let mut fields = BTreeMap::new();
    for (key, value) in entry {
        match (key.as_str(), value) {
            ("platform", toml::Value::String(p)) => platform = Some(p.parse::<Platform>()?),
            ("allow_tcb", toml::Value::Array(statuses)) => {
                for status in statuses {
                    let toml::Value::String(s) = status else {
                        return Err(Error::InvalidPolicy(
                            "allow_tcb must be a list of strings".into(),
                        ));
                    };
                    allow.push(s.parse::<TcbStatus>()?);
                }
            }
            (field, toml::Value::String(hex_value)) => {
                fields.insert(field.to_owned(), parse_hex(field, &hex_value)?);
            }
            (field, _) => {
                return Err(Error::InvalidPolicy(format!(
                    "{field} must be a hex string"
                )));
            }
        }
    }
    let platform = platform
        .ok_or_else(|| Error::InvalidPolicy("an [[accept]] entry has no platform".into()))?;
    let mut rule = AcceptRule::new(platform, fields)?;
    for status in allow {
        rule.allow_tcb(status)?;
    }
    Ok(rule)
}

fn parse_hex(what: &str, value: &str) -> Result<Vec<u8>, Error> {
    hex::decode(value).map_err(|e| Error::InvalidPolicy(format!("{what}: value is not hex: {e}")))
}

fn bad_pin(pin: &str) -> Error {
    Error::InvalidPolicy(format!(
        "pin {pin:?} is not of the form PLATFORM:FIELD=HEX (e.g. tdx:mrtd=ab12…)"
    ))
}

fn field_names(platform: Platform) -> String {
    platform
        .measurement_fields()
        .iter()
        .map(|(f, _)| *f)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(field: &str, byte: u8, len: usize) -> Measurements {
        let mut m = Measurements::new();
        m.insert(field, vec![byte; len]);
        m
    }

    #[test]
    fn pins_of_one_platform_form_one_rule() {
        let policy = Policy::from_pins([
            format!("tdx:mrtd={}", "aa".repeat(48)),
            format!("tdx:rtmr0={}", "bb".repeat(48)),
            format!("simulated:measurement={}", "cc".repeat(48)),
        ])
        .unwrap();
        assert_eq!(policy.rules().len(), 2);
        let mut tdx = m("mrtd", 0xaa, 48);
        // rtmr0 missing: the tdx rule needs both.
        assert!(
            policy
                .check_measurements(Platform::Tdx, &tdx, TcbStatus::UpToDate)
                .is_err()
        );
        tdx.insert("rtmr0", vec![0xbb; 48]);
        policy
            .check_measurements(Platform::Tdx, &tdx, TcbStatus::UpToDate)
            .unwrap();
        // The right values under another platform do not match.
        assert!(
            policy
                .check_measurements(Platform::Simulated, &tdx, TcbStatus::NotApplicable)
                .is_err()
        );
    }

    #[test]
    fn rejects_bad_pins() {
        for pin in [
            "tdx",
            "tdx:mrtd",
            "mars:mrtd=00",
            "tdx:pcr0=00",
            "tdx:mrtd=zz",
            "tdx:mrtd=00",
            // rtmr alone identifies no code
            &format!("tdx:rtmr1={}", "00".repeat(48)),
        ] {
            assert!(
                matches!(Policy::from_pins([pin]), Err(Error::InvalidPolicy(_))),
                "{pin}"
            );
        }
    }

    #[test]
    fn toml_policy_with_tcb_allowances() {
        let text = format!(
            "[[accept]]\nplatform = \"sgx\"\nmrenclave = \"{}\"\nallow_tcb = [\"SWHardeningNeeded\"]\n\n[[accept]]\nplatform = \"nitro\"\npcr0 = \"{}\"\n",
            "11".repeat(32),
            "22".repeat(48)
        );
        let policy = Policy::from_toml(&text).unwrap();
        assert_eq!(policy.rules().len(), 2);
        policy
            .check_tcb(Platform::Sgx, TcbStatus::SwHardeningNeeded)
            .unwrap();
        assert!(
            policy
                .check_tcb(Platform::Sgx, TcbStatus::OutOfDate)
                .is_err()
        );
        assert!(
            policy
                .check_tcb(Platform::Tdx, TcbStatus::SwHardeningNeeded)
                .is_err()
        );
        assert!(Policy::from_toml("[[accept]]\nplatform = \"sgx\"\nbogus = \"00\"\n").is_err());
        assert!(Policy::from_toml("wildcard = true\n").is_err());
        assert!(Policy::from_toml("").unwrap().is_empty());
    }

    #[test]
    fn empty_policy_refuses_everything() {
        assert_eq!(
            Policy::default().check_measurements(
                Platform::Simulated,
                &m("measurement", 0, 48),
                TcbStatus::NotApplicable
            ),
            Err(Error::EmptyPolicy)
        );
    }
}
