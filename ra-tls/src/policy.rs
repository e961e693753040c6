//! The measurement policy: which builds a client trusts.
//!
//! A policy is a list of `[[accept]]` entries; an entry names a platform, pins a **complete
//! identity** of the code ([`Platform::complete_identities`]), and may allow TCB statuses beyond
//! `UpToDate` and set further conditions. There is no wildcard: an empty policy trusts nothing,
//! and a rule that pins only part of an identity is refused when it is loaded.
//!
//! ```toml
//! [[accept]]
//! platform = "tdx"
//! mrtd = "…96 hex digits…"
//! rtmr0 = "…"
//! rtmr1 = "…"
//! rtmr2 = "…"
//! allow_tcb = ["SWHardeningNeeded"]
//! min_tcb_eval_data_number = 17     # Intel: no TCB info from before this TCB recovery
//! max_evidence_age_secs = 86400     # evidence older than a day is refused
//! ```
//!
//! On the command line, `--pin P:FIELD=HEX` pins of the same platform form one entry
//! (`sgx:min_isvsvn=N` takes a decimal number).

use std::collections::BTreeMap;

use rustls_pki_types::UnixTime;

use crate::policy_file::{self, Table, Value};
use crate::{Error, Measurements, Platform, TcbStatus};

/// SEV-SNP guest policy bit 18: a migration agent, chosen by the host at launch and not part of
/// the measurement, may export the guest's memory.
pub const SNP_POLICY_MIGRATE_MA: u64 = 1 << 18;

/// Evidence issued this far in the verifier's future still counts as issued now (clock skew).
const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// An SEV-SNP TCB version: the security patch levels AMD's firmware reports and signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnpTcb {
    /// The PSP bootloader's SPL.
    pub bootloader: u8,
    /// The PSP operating system's SPL.
    pub tee: u8,
    /// The SNP firmware's SPL.
    pub snp: u8,
    /// The lowest microcode SPL of all cores.
    pub microcode: u8,
}

impl SnpTcb {
    /// The components of `self` below those of `minimum`, as `name have < want` phrases.
    pub fn below(&self, minimum: &Self) -> Vec<String> {
        [
            ("bootloader", self.bootloader, minimum.bootloader),
            ("tee", self.tee, minimum.tee),
            ("snp", self.snp, minimum.snp),
            ("microcode", self.microcode, minimum.microcode),
        ]
        .into_iter()
        .filter(|(_, have, want)| have < want)
        .map(|(name, have, want)| format!("{name} {have} < {want}"))
        .collect()
    }
}

/// What authentic evidence states, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The platform of the evidence.
    pub platform: Platform,
    /// The measurements it reports.
    pub measurements: &'a Measurements,
    /// The TCB status the verifier established.
    pub tcb_status: TcbStatus,
    /// Intel: the lower `tcbEvaluationDataNumber` of the TCB info and QE identity used.
    pub tcb_eval_data_number: Option<u32>,
    /// SEV-SNP: the TCB the report was signed at.
    pub snp_tcb: Option<SnpTcb>,
    /// SEV-SNP: the VMPL the report was requested from.
    pub snp_vmpl: Option<u8>,
    /// When the evidence was produced, unix seconds (Nitro: the document's timestamp; else the
    /// `iat` claim the evidence signs).
    pub issued_at: Option<u64>,
}

/// What a rule requires besides its pins. `Default` requires nothing more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// SGX: the lowest ISV SVN accepted; with `mrsigner` and `isvprodid` a complete identity.
    pub min_isvsvn: Option<u16>,
    /// SGX/TDX: the lowest TCB evaluation data number of the collateral accepted, so that a
    /// gateway cannot keep serving TCB info from before a TCB recovery.
    pub min_tcb_eval_data_number: Option<u32>,
    /// SEV-SNP: the lowest TCB accepted, on top of the shipped per-product minimums.
    pub min_snp_tcb: Option<SnpTcb>,
    /// The oldest evidence accepted, in seconds.
    pub max_evidence_age_secs: Option<u64>,
    /// SEV-SNP: accept a guest policy with MIGRATE_MA set.
    pub allow_migration_agent: bool,
    /// SEV-SNP: the VMPL the gateway's reports come from (`None`: 0, a guest without an SVSM).
    pub vmpl: Option<u8>,
    /// Research only: accept a rule that pins only part of an identity. Never the default; a
    /// client with such a rule may trust code that was never meant to be trusted.
    pub danger_allow_partial_identity: bool,
}

/// One acceptable build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptRule {
    platform: Platform,
    measurements: Measurements,
    /// The TCB statuses allowed, one bit each ([`tcb_bit`]).
    allow_tcb: u16,
    conditions: Conditions,
}

/// `status`'s bit in [`AcceptRule`]'s set of allowed TCB statuses.
fn tcb_bit(status: TcbStatus) -> u16 {
    1 << (status as u16)
}

impl AcceptRule {
    /// A rule for `platform` pinning `measurements` (`field -> value`), which must form a
    /// complete identity of the code.
    pub fn new(platform: Platform, measurements: BTreeMap<String, Vec<u8>>) -> Result<Self, Error> {
        Self::with_conditions(platform, measurements, Conditions::default())
    }

    /// A rule with conditions besides its pins.
    ///
    /// A rule for a platform whose verifier this build lacks ([`Platform::has_verifier`]) is
    /// refused with [`Error::UnsupportedPlatform`]: such a policy could never accept what it
    /// pins, and saying so when it is loaded names the cause (e.g. a browser module of another
    /// platform) before any gateway is contacted.
    pub fn with_conditions(
        platform: Platform,
        measurements: BTreeMap<String, Vec<u8>>,
        conditions: Conditions,
    ) -> Result<Self, Error> {
        Self::build(platform, measurements.into_iter().collect(), conditions)
    }

    fn build(
        platform: Platform,
        measurements: Measurements,
        conditions: Conditions,
    ) -> Result<Self, Error> {
        if !platform.has_verifier() {
            return Err(Error::UnsupportedPlatform { platform });
        }
        for (field, value) in measurements.iter() {
            let Some((_, len)) = platform
                .measurement_fields()
                .iter()
                .find(|(f, _)| *f == field)
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
        check_conditions_apply(platform, &conditions)?;
        if !conditions.danger_allow_partial_identity {
            check_complete_identity(platform, &measurements, &conditions)?;
        }
        Ok(Self {
            platform,
            measurements,
            allow_tcb: tcb_bit(TcbStatus::UpToDate) | tcb_bit(TcbStatus::NotApplicable),
            conditions,
        })
    }

    /// Also accepts `status` (never `Revoked`).
    pub fn allow_tcb(&mut self, status: TcbStatus) -> Result<(), Error> {
        if status == TcbStatus::Revoked {
            return Err(Error::InvalidPolicy(
                "a Revoked TCB can never be allowed".into(),
            ));
        }
        self.allow_tcb |= tcb_bit(status);
        Ok(())
    }

    /// The platform of the rule.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The conditions besides the pins.
    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    /// When evidence issued at `issued_at` becomes too old for this rule, unix seconds: a
    /// verdict it accepted must not be reused past that (`None`: no maximum age).
    pub fn evidence_deadline(&self, issued_at: Option<u64>) -> Option<u64> {
        let max_age = self.conditions.max_evidence_age_secs?;
        Some(issued_at.map_or(0, |at| at.saturating_add(max_age)))
    }

    fn pins_match(&self, observed: &Observed<'_>) -> bool {
        self.platform == observed.platform
            && self
                .measurements
                .iter()
                .all(|(field, pinned)| observed.measurements.get(field) == Some(pinned))
    }

    /// Why evidence whose pins match still fails this rule, if it does.
    fn unmet_condition(&self, observed: &Observed<'_>, now: UnixTime) -> Option<String> {
        let c = &self.conditions;
        if self.allow_tcb & tcb_bit(observed.tcb_status) == 0 {
            return Some(format!(
                "its TCB status {} is not allowed by this rule (allow_tcb)",
                observed.tcb_status
            ));
        }
        if let Some(min) = c.min_isvsvn {
            let svn = observed
                .measurements
                .get("isvsvn")
                .and_then(|b| <[u8; 2]>::try_from(b).ok())
                .map(u16::from_le_bytes);
            match svn {
                Some(svn) if svn >= min => {}
                Some(svn) => return Some(format!("its ISV SVN {svn} is below min_isvsvn {min}")),
                None => return Some("the evidence reports no ISV SVN".into()),
            }
        }
        if observed.platform == Platform::SevSnp && !c.allow_migration_agent {
            let policy = observed
                .measurements
                .get("policy")
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes);
            match policy {
                Some(p) if p & SNP_POLICY_MIGRATE_MA == 0 => {}
                Some(_) => {
                    return Some(
                        "its guest policy allows a migration agent (MIGRATE_MA, bit 18), which the host chose and which can export the guest's memory; a rule must set allow_migration_agent = true to accept that".into(),
                    );
                }
                None => return Some("the evidence reports no SEV-SNP guest policy".into()),
            }
        }
        if observed.platform == Platform::SevSnp {
            let expected = c.vmpl.unwrap_or(0);
            match observed.snp_vmpl {
                Some(vmpl) if vmpl == expected => {}
                Some(vmpl) => {
                    return Some(format!(
                        "its report was requested from VMPL {vmpl}, the rule expects VMPL {expected} (set vmpl = {vmpl} in the rule if the gateway runs there, e.g. under an SVSM)"
                    ));
                }
                None => return Some("the evidence reports no VMPL".into()),
            }
        }
        if let Some(min) = c.min_tcb_eval_data_number {
            match observed.tcb_eval_data_number {
                Some(n) if n >= min => {}
                Some(n) => {
                    return Some(format!(
                        "its collateral's tcbEvaluationDataNumber {n} is below min_tcb_eval_data_number {min} (TCB info from before a TCB recovery)"
                    ));
                }
                None => return Some("the evidence carries no TCB evaluation data number".into()),
            }
        }
        if let Some(min) = c.min_snp_tcb {
            match observed.snp_tcb {
                Some(tcb) => {
                    let below = tcb.below(&min);
                    if !below.is_empty() {
                        return Some(format!(
                            "its TCB is below the rule's min_snp_tcb ({})",
                            below.join(", ")
                        ));
                    }
                }
                None => return Some("the evidence reports no SEV-SNP TCB".into()),
            }
        }
        if let Some(max_age) = c.max_evidence_age_secs {
            let now = now.as_secs();
            match observed.issued_at {
                Some(at) if at > now.saturating_add(MAX_CLOCK_SKEW_SECS) => {
                    return Some(format!(
                        "its evidence was issued at {at}, after the verifier's clock {now}"
                    ));
                }
                Some(at) if now.saturating_sub(at) > max_age => {
                    return Some(format!(
                        "its evidence is {} s old, more than max_evidence_age_secs {max_age}",
                        now.saturating_sub(at)
                    ));
                }
                Some(_) => {}
                None => return Some("the evidence states no issue time (iat)".into()),
            }
        }
        None
    }

    fn describe(&self) -> String {
        let pins: Vec<String> = self
            .measurements
            .iter()
            .map(|(k, v)| format!("{k}={}", hex::encode(v)))
            .chain(
                self.conditions
                    .min_isvsvn
                    .map(|v| format!("min_isvsvn={v}")),
            )
            .collect();
        format!("[{} {}]", self.platform, pins.join(" "))
    }
}

/// Refuses conditions that mean nothing on `platform`: a key that is silently ignored would
/// let a user believe in a check that never runs.
fn check_conditions_apply(platform: Platform, c: &Conditions) -> Result<(), Error> {
    let only = |set: bool, key: &str, platforms: &[Platform]| {
        if set && !platforms.contains(&platform) {
            let names: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
            Err(Error::InvalidPolicy(format!(
                "{key} applies to {} evidence only, not {platform}",
                names.join(" and ")
            )))
        } else {
            Ok(())
        }
    };
    only(c.min_isvsvn.is_some(), "min_isvsvn", &[Platform::Sgx])?;
    only(
        c.min_tcb_eval_data_number.is_some(),
        "min_tcb_eval_data_number",
        &[Platform::Sgx, Platform::Tdx],
    )?;
    only(c.min_snp_tcb.is_some(), "min_snp_tcb", &[Platform::SevSnp])?;
    only(c.vmpl.is_some(), "vmpl", &[Platform::SevSnp])?;
    only(
        c.allow_migration_agent,
        "allow_migration_agent",
        &[Platform::SevSnp],
    )
}

/// A rule must pin every field of one of the platform's complete identities.
fn check_complete_identity(
    platform: Platform,
    measurements: &Measurements,
    c: &Conditions,
) -> Result<(), Error> {
    // An exact `isvsvn` pin is stronger than a minimum.
    let has = |field: &str| match field {
        "min_isvsvn" => c.min_isvsvn.is_some() || measurements.get("isvsvn").is_some(),
        _ => measurements.get(field).is_some(),
    };
    let identities = platform.complete_identities();
    // The identity the rule went for: the one with most fields pinned, then fewest missing.
    let closest = identities
        .iter()
        .min_by_key(|fields| {
            let pinned = fields.iter().filter(|f| has(f)).count();
            (
                std::cmp::Reverse(pinned),
                fields.len().saturating_sub(pinned),
            )
        })
        .map(|fields| {
            fields
                .iter()
                .filter(|f| !has(f))
                .copied()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if closest.is_empty() {
        return Ok(());
    }
    let options: Vec<String> = identities.iter().map(|fields| fields.join(" + ")).collect();
    Err(Error::InvalidPolicy(format!(
        "a {platform} rule must pin a complete identity of the code ({}); missing: {} (a partial pin trusts code you never meant to trust)",
        options.join(", or "),
        closest.join(", ")
    )))
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
    /// `sgx:min_isvsvn=N` (decimal) sets the rule's minimum ISV SVN.
    pub fn from_pins<I, S>(pins: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        type Entry = (BTreeMap<String, Vec<u8>>, Conditions);
        let mut by_platform: BTreeMap<Platform, Entry> = BTreeMap::new();
        for pin in pins {
            let pin = pin.as_ref();
            let (platform, rest) = pin.split_once(':').ok_or_else(|| bad_pin(pin))?;
            let (field, value) = rest.split_once('=').ok_or_else(|| bad_pin(pin))?;
            let platform: Platform = platform.parse()?;
            let (fields, conditions) = by_platform.entry(platform).or_default();
            let twice = if field == "min_isvsvn" {
                conditions
                    .min_isvsvn
                    .replace(parse_svn(pin, value)?)
                    .is_some()
            } else {
                fields
                    .insert(field.to_owned(), parse_hex(pin, value)?)
                    .is_some()
            };
            if twice {
                return Err(Error::InvalidPolicy(format!(
                    "{platform}:{field} is pinned twice; write one policy file with several [[accept]] entries to accept several builds"
                )));
            }
        }
        let rules = by_platform
            .into_iter()
            .map(|(platform, (fields, conditions))| {
                AcceptRule::with_conditions(platform, fields, conditions)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self::new(rules))
    }

    /// Parses a TOML policy file with one `[[accept]]` table per acceptable build, the rules in
    /// document order (floats, dates and times, which no key takes, are refused).
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        Self::from_document(policy_file::toml(text).map_err(Error::InvalidPolicy)?)
    }

    /// Parses the JSON form of a policy file: the document [`Policy::from_toml`] reads, as JSON
    /// (`{"accept": [{"platform": "tdx", "mrtd": "…", …}, …]}`), what the browser package hands
    /// its wasm module after reading the dapp's TOML.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        Self::from_document(policy_file::json(text).map_err(Error::InvalidPolicy)?)
    }

    fn from_document(table: Table) -> Result<Self, Error> {
        let mut policy = Self::default();
        for (key, value) in table {
            if key != "accept" {
                return Err(Error::InvalidPolicy(format!(
                    "unknown key {key:?} (expected [[accept]] tables)"
                )));
            }
            let Value::Array(entries) = value else {
                return Err(Error::InvalidPolicy(
                    "accept must be an array of tables ([[accept]])".into(),
                ));
            };
            for entry in entries {
                let Value::Table(entry) = entry else {
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
            .any(|r| r.platform == platform && r.allow_tcb & tcb_bit(status) != 0);
        if allowed || status == TcbStatus::NotApplicable {
            Ok(())
        } else {
            Err(Error::TcbNotAllowed { platform, status })
        }
    }

    /// Step 5: some rule matches all of its pins, allows the TCB status and holds every one of
    /// its conditions at `now`.
    pub fn check_measurements(&self, observed: &Observed<'_>, now: UnixTime) -> Result<(), Error> {
        self.accepting_rule(observed, now).map(|_| ())
    }

    /// [`Policy::check_measurements`], returning the first rule that accepts.
    pub fn accepting_rule(
        &self,
        observed: &Observed<'_>,
        now: UnixTime,
    ) -> Result<&AcceptRule, Error> {
        if self.is_empty() {
            return Err(Error::EmptyPolicy);
        }
        let mut unmet = None;
        for rule in self.accept.iter().filter(|r| r.pins_match(observed)) {
            match rule.unmet_condition(observed, now) {
                None => return Ok(rule),
                Some(reason) => {
                    unmet.get_or_insert((rule, reason));
                }
            }
        }
        if let Some((rule, reason)) = unmet {
            return Err(Error::RuleNotMet {
                rule: rule.describe(),
                reason,
            });
        }
        Err(Error::MeasurementMismatch {
            actual: format!(
                "[{} {}]",
                observed.platform,
                observed.measurements.describe()
            ),
            expected: self.describe(),
        })
    }

    /// The rules, as `[platform field=hex …], …`, for messages.
    pub(crate) fn describe(&self) -> String {
        let rules: Vec<String> = self.accept.iter().map(AcceptRule::describe).collect();
        rules.join(", ")
    }
}

fn parse_rule(entry: Table) -> Result<AcceptRule, Error> {
    let mut platform = None;
    let mut allow = Vec::new();
    let mut fields = Measurements::new();
    let mut conditions = Conditions::default();
    for (key, value) in entry {
        match (key.as_str(), value) {
            ("platform", Value::String(p)) => platform = Some(p.parse::<Platform>()?),
            ("allow_tcb", Value::Array(statuses)) => {
                for status in statuses {
                    let Value::String(s) = status else {
                        return Err(Error::InvalidPolicy(
                            "allow_tcb must be a list of strings".into(),
                        ));
                    };
                    allow.push(s.parse::<TcbStatus>()?);
                }
            }
            ("min_isvsvn", value) => conditions.min_isvsvn = Some(toml_int(&key, &value)?),
            ("min_tcb_eval_data_number", value) => {
                conditions.min_tcb_eval_data_number = Some(toml_int(&key, &value)?);
            }
            ("vmpl", value) => conditions.vmpl = Some(toml_int(&key, &value)?),
            ("max_evidence_age_secs", value) => {
                conditions.max_evidence_age_secs = Some(toml_int(&key, &value)?);
            }
            ("min_snp_tcb", Value::Table(levels)) => {
                conditions.min_snp_tcb = Some(parse_snp_tcb(levels)?);
            }
            ("allow_migration_agent", Value::Boolean(b)) => {
                conditions.allow_migration_agent = b;
            }
            ("danger_allow_partial_identity", Value::Boolean(b)) => {
                conditions.danger_allow_partial_identity = b;
            }
            ("allow_migration_agent" | "danger_allow_partial_identity", _) => {
                return Err(Error::InvalidPolicy(format!("{key} must be true or false")));
            }
            ("min_snp_tcb", _) => {
                return Err(Error::InvalidPolicy(
                    "min_snp_tcb must be a table { bootloader, tee, snp, microcode }".into(),
                ));
            }
            (field, Value::String(hex_value)) => {
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
    let mut rule = AcceptRule::build(platform, fields, conditions)?;
    for status in allow {
        rule.allow_tcb(status)?;
    }
    Ok(rule)
}

fn parse_snp_tcb(levels: Table) -> Result<SnpTcb, Error> {
    let mut tcb = SnpTcb::default();
    for (key, value) in levels {
        let level: u8 = toml_int(&format!("min_snp_tcb.{key}"), &value)?;
        match key.as_str() {
            "bootloader" => tcb.bootloader = level,
            "tee" => tcb.tee = level,
            "snp" => tcb.snp = level,
            "microcode" => tcb.microcode = level,
            _ => {
                return Err(Error::InvalidPolicy(format!(
                    "min_snp_tcb has no component {key:?} (bootloader, tee, snp, microcode)"
                )));
            }
        }
    }
    Ok(tcb)
}

/// A non-negative TOML integer that fits `T`.
fn toml_int<T: TryFrom<i64>>(key: &str, value: &Value) -> Result<T, Error> {
    match value {
        Value::Integer(i) => T::try_from(*i).ok(),
        _ => None,
    }
    .ok_or_else(|| Error::InvalidPolicy(format!("{key} must be a non-negative integer in range")))
}

fn parse_svn(pin: &str, value: &str) -> Result<u16, Error> {
    value.parse().map_err(|_| {
        Error::InvalidPolicy(format!(
            "{pin}: min_isvsvn is a decimal number from 0 to 65535"
        ))
    })
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

    const NOW: u64 = 1_800_000_000;

    fn now() -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW))
    }

    fn observed(platform: Platform, measurements: &Measurements) -> Observed<'_> {
        Observed {
            platform,
            measurements,
            tcb_status: TcbStatus::UpToDate,
            tcb_eval_data_number: None,
            snp_tcb: None,
            snp_vmpl: (platform == Platform::SevSnp).then_some(0),
            issued_at: None,
        }
    }

    fn tdx(byte: u8) -> Measurements {
        let mut m = Measurements::new();
        for field in ["mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"] {
            m.insert(field, vec![byte; 48]);
        }
        m
    }

    fn tdx_pins(byte: u8) -> Vec<String> {
        ["mrtd", "rtmr0", "rtmr1", "rtmr2"]
            .iter()
            .map(|f| format!("tdx:{f}={}", hex::encode([byte; 48])))
            .collect()
    }

    fn sgx(svn: u16) -> Measurements {
        let mut m = Measurements::new();
        m.insert("mrenclave", vec![1; 32]);
        m.insert("mrsigner", vec![2; 32]);
        m.insert("isvprodid", 7u16.to_le_bytes());
        m.insert("isvsvn", svn.to_le_bytes());
        m
    }

    fn refusal(result: Result<Policy, Error>) -> String {
        match result {
            Err(Error::InvalidPolicy(message)) => message,
            other => panic!("expected an invalid policy, got {other:?}"),
        }
    }

    #[test]
    fn a_policy_pinning_a_platform_without_its_verifier_is_refused() {
        // Under the default features every platform loads; in a build without a platform's
        // feature (e.g. `--no-default-features --features tdx`) its rules are refused, naming it.
        for platform in Platform::ALL {
            let [identity, ..] = platform.complete_identities() else {
                panic!("{platform} has no identity");
            };
            let pins: Vec<String> = identity
                .iter()
                .map(|field| match *field {
                    "min_isvsvn" => "sgx:min_isvsvn=1".to_owned(),
                    field => {
                        let (_, len) = platform
                            .measurement_fields()
                            .iter()
                            .find(|(f, _)| *f == field)
                            .unwrap();
                        format!("{platform}:{field}={}", "ab".repeat(*len))
                    }
                })
                .collect();
            match Policy::from_pins(&pins) {
                Ok(policy) => {
                    assert!(platform.has_verifier(), "{platform}");
                    assert_eq!(policy.rules().len(), 1);
                }
                Err(error) => {
                    assert!(!platform.has_verifier(), "{platform}: {error}");
                    assert_eq!(error, Error::UnsupportedPlatform { platform });
                    let message = error.to_string();
                    assert!(
                        message.contains(&format!("no verifier for {platform} evidence")),
                        "{message}"
                    );
                }
            }
        }
    }

    #[test]
    fn pins_of_one_platform_form_one_rule() {
        let mut pins = tdx_pins(0xaa);
        pins.push(format!("simulated:measurement={}", "cc".repeat(48)));
        let policy = Policy::from_pins(&pins).unwrap();
        assert_eq!(policy.rules().len(), 2);
        let mut reported = tdx(0xaa);
        policy
            .check_measurements(&observed(Platform::Tdx, &reported), now())
            .unwrap();
        // One of the pinned RTMRs differs: no match.
        reported.insert("rtmr2", vec![0xbb; 48]);
        assert!(matches!(
            policy.check_measurements(&observed(Platform::Tdx, &reported), now()),
            Err(Error::MeasurementMismatch { .. })
        ));
        // The right values under another platform do not match.
        assert!(
            policy
                .check_measurements(&observed(Platform::Simulated, &tdx(0xaa)), now())
                .is_err()
        );
    }

    #[test]
    fn a_partial_identity_is_refused_naming_what_is_missing() {
        let mrtd_only = refusal(Policy::from_pins([format!("tdx:mrtd={}", "aa".repeat(48))]));
        assert!(
            mrtd_only.contains("missing: rtmr0, rtmr1, rtmr2"),
            "{mrtd_only}"
        );
        let signer_only = refusal(Policy::from_pins([format!(
            "sgx:mrsigner={}",
            "aa".repeat(32)
        )]));
        assert!(
            signer_only.contains("missing: isvprodid, min_isvsvn"),
            "{signer_only}"
        );
        let pcr0_only = refusal(Policy::from_pins([format!(
            "nitro:pcr0={}",
            "aa".repeat(48)
        )]));
        assert!(pcr0_only.contains("missing: pcr1, pcr2"), "{pcr0_only}");
        let host_data_only = refusal(Policy::from_pins([format!(
            "sev-snp:host_data={}",
            "aa".repeat(32)
        )]));
        assert!(
            host_data_only.contains("missing: measurement"),
            "{host_data_only}"
        );
        // The same through a policy file, and the research opt-out that lets it load.
        let file = format!(
            "[[accept]]\nplatform = \"tdx\"\nmrtd = \"{}\"\n",
            "aa".repeat(48)
        );
        assert!(refusal(Policy::from_toml(&file)).contains("rtmr0"));
        let opted_out = format!("{file}danger_allow_partial_identity = true\n");
        assert_eq!(Policy::from_toml(&opted_out).unwrap().rules().len(), 1);
    }

    #[test]
    fn sgx_signer_rules_need_a_product_and_a_minimum_svn() {
        let pins = [
            format!("sgx:mrsigner={}", "02".repeat(32)),
            format!("sgx:isvprodid={}", hex::encode(7u16.to_le_bytes())),
            "sgx:min_isvsvn=5".to_owned(),
        ];
        let policy = Policy::from_pins(&pins).unwrap();
        policy
            .check_measurements(&observed(Platform::Sgx, &sgx(5)), now())
            .unwrap();
        policy
            .check_measurements(&observed(Platform::Sgx, &sgx(9)), now())
            .unwrap();
        let old = sgx(4);
        let Err(Error::RuleNotMet { reason, .. }) =
            policy.check_measurements(&observed(Platform::Sgx, &old), now())
        else {
            panic!("an ISV SVN below the minimum must be refused");
        };
        assert!(
            reason.contains("ISV SVN 4 is below min_isvsvn 5"),
            "{reason}"
        );
        assert!(refusal(Policy::from_pins(["sgx:min_isvsvn=x"])).contains("decimal"));
        // min_isvsvn means nothing on TDX: refused rather than silently ignored.
        let mut tdx = tdx_pins(1);
        tdx.push("tdx:min_isvsvn=1".into());
        assert!(refusal(Policy::from_pins(&tdx)).contains("sgx evidence only"));
    }

    #[test]
    fn snp_migration_agent_is_refused_unless_allowed() {
        let mut report = Measurements::new();
        report.insert("measurement", vec![3; 48]);
        report.insert("host_data", vec![0; 32]);
        // Bit 17 (reserved, one) and MIGRATE_MA.
        let policy_bits: u64 = (1 << 17) | SNP_POLICY_MIGRATE_MA;
        report.insert("policy", policy_bits.to_le_bytes());
        let rule = format!(
            "[[accept]]\nplatform = \"sev-snp\"\nmeasurement = \"{}\"\n",
            "03".repeat(48)
        );
        let strict = Policy::from_toml(&rule).unwrap();
        let Err(Error::RuleNotMet { reason, .. }) =
            strict.check_measurements(&observed(Platform::SevSnp, &report), now())
        else {
            panic!("MIGRATE_MA must be refused by default");
        };
        assert!(reason.contains("MIGRATE_MA"), "{reason}");
        let allowing = Policy::from_toml(&format!("{rule}allow_migration_agent = true\n")).unwrap();
        allowing
            .check_measurements(&observed(Platform::SevSnp, &report), now())
            .unwrap();
        report.insert("policy", (1u64 << 17).to_le_bytes());
        strict
            .check_measurements(&observed(Platform::SevSnp, &report), now())
            .unwrap();
        // A report from VMPL 2 is refused by default, accepted by a rule that expects VMPL 2.
        let mut from_vmpl2 = observed(Platform::SevSnp, &report);
        from_vmpl2.snp_vmpl = Some(2);
        assert!(matches!(
            strict.check_measurements(&from_vmpl2, now()),
            Err(Error::RuleNotMet { reason, .. }) if reason.contains("VMPL 2")
        ));
        Policy::from_toml(&format!("{rule}vmpl = 2\n"))
            .unwrap()
            .check_measurements(&from_vmpl2, now())
            .unwrap();
    }

    #[test]
    fn conditions_on_collateral_tcb_and_evidence_age() {
        let pins = tdx_pins(1)
            .iter()
            .map(|p| {
                let (field, value) = p.trim_start_matches("tdx:").split_once('=').unwrap();
                format!("{field} = \"{value}\"\n")
            })
            .collect::<String>();
        let text = format!(
            "[[accept]]\nplatform = \"tdx\"\n{pins}min_tcb_eval_data_number = 17\nmax_evidence_age_secs = 3600\n"
        );
        let policy = Policy::from_toml(&text).unwrap();
        let reported = tdx(1);
        let mut seen = observed(Platform::Tdx, &reported);
        seen.tcb_eval_data_number = Some(17);
        seen.issued_at = Some(NOW - 60);
        policy.check_measurements(&seen, now()).unwrap();
        let refused = |seen: &Observed<'_>| match policy.check_measurements(seen, now()) {
            Err(Error::RuleNotMet { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let mut stale_collateral = seen;
        stale_collateral.tcb_eval_data_number = Some(16);
        assert!(refused(&stale_collateral).contains("tcbEvaluationDataNumber 16"));
        let mut old = seen;
        old.issued_at = Some(NOW - 3601);
        assert!(refused(&old).contains("3601 s old"));
        let mut future = seen;
        future.issued_at = Some(NOW + 3600);
        assert!(refused(&future).contains("after the verifier's clock"));
        let mut undated = seen;
        undated.issued_at = None;
        assert!(refused(&undated).contains("no issue time"));
    }

    #[test]
    fn snp_minimum_tcb_is_per_component() {
        let rule = format!(
            "[[accept]]\nplatform = \"sev-snp\"\nmeasurement = \"{}\"\nmin_snp_tcb = {{ snp = 22, microcode = 213 }}\n",
            "03".repeat(48)
        );
        let policy = Policy::from_toml(&rule).unwrap();
        let mut report = Measurements::new();
        report.insert("measurement", vec![3; 48]);
        report.insert("policy", (1u64 << 17).to_le_bytes());
        let mut seen = observed(Platform::SevSnp, &report);
        let tcb = |snp, microcode| SnpTcb {
            bootloader: 3,
            tee: 0,
            snp,
            microcode,
        };
        seen.snp_tcb = Some(tcb(22, 213));
        policy.check_measurements(&seen, now()).unwrap();
        seen.snp_tcb = Some(tcb(8, 213));
        assert!(matches!(
            policy.check_measurements(&seen, now()),
            Err(Error::RuleNotMet { reason, .. }) if reason.contains("snp 8 < 22")
        ));
        assert!(Policy::from_toml(&rule.replace("microcode", "firmware")).is_err());
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
            "[[accept]]\nplatform = \"sgx\"\nmrenclave = \"{}\"\nallow_tcb = [\"SWHardeningNeeded\"]\n\n[[accept]]\nplatform = \"nitro\"\npcr0 = \"{}\"\npcr1 = \"{}\"\npcr2 = \"{}\"\n",
            "11".repeat(32),
            "22".repeat(48),
            "33".repeat(48),
            "44".repeat(48)
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
        let mut m = Measurements::new();
        m.insert("measurement", vec![0; 48]);
        let mut seen = observed(Platform::Simulated, &m);
        seen.tcb_status = TcbStatus::NotApplicable;
        assert_eq!(
            Policy::default().check_measurements(&seen, now()),
            Err(Error::EmptyPolicy)
        );
    }
}
