//! Where a client's measurement policy comes from: `--pin` arguments or a policy file.
//!
//! The policy itself ([`Policy`]) lives in `shroud-ra-tls`, next to the verifier that enforces
//! it. This module only gathers it from the user's inputs, and refuses the two ways of trusting
//! something the user did not mean: an empty policy, and a mix of pins and a file (it would be
//! unclear whether the pins narrow the file or add builds to it).

use std::path::Path;

pub use shroud_ra_tls::Policy;
pub use shroud_ra_tls::policy::AcceptRule;

use crate::ClientError;

/// Reads a TOML policy file with one `[[accept]]` table per acceptable build.
pub fn load_policy_file(path: &Path) -> Result<Policy, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ClientError::Policy(shroud_ra_tls::Error::InvalidPolicy(format!(
            "cannot read policy file {}: {e}",
            path.display()
        )))
    })?;
    let policy = Policy::from_toml(&text).map_err(|e| {
        ClientError::Policy(match e {
            shroud_ra_tls::Error::InvalidPolicy(reason) => {
                shroud_ra_tls::Error::InvalidPolicy(format!("{}: {reason}", path.display()))
            }
            other => other,
        })
    })?;
    if policy.is_empty() {
        // Said of the file, so the user does not look for a missing --pin.
        return Err(ClientError::Policy(shroud_ra_tls::Error::InvalidPolicy(
            format!(
                "{}: the policy file is empty (no [[accept]] table), so it would trust nothing; add one [[accept]] table per build to trust",
                path.display()
            ),
        )));
    }
    Ok(policy)
}

/// The policy given by `--pin P:FIELD=HEX` arguments or by a policy file (not both), refusing
/// an empty one.
pub fn policy_from_args<S: AsRef<str>>(
    pins: &[S],
    file: Option<&Path>,
) -> Result<Policy, ClientError> {
    let policy = match (pins.is_empty(), file) {
        (false, Some(_)) => {
            return Err(ClientError::Policy(shroud_ra_tls::Error::InvalidPolicy(
                "--pin and --policy cannot be combined; put every acceptable build in the policy file as its own [[accept]] entry"
                    .into(),
            )));
        }
        (true, Some(path)) => load_policy_file(path)?,
        (_, None) => Policy::from_pins(pins).map_err(ClientError::Policy)?,
    };
    require_non_empty(policy)
}

/// Refuses a policy that pins nothing: there is no wildcard.
pub fn require_non_empty(policy: Policy) -> Result<Policy, ClientError> {
    if policy.is_empty() {
        Err(ClientError::Policy(shroud_ra_tls::Error::EmptyPolicy))
    } else {
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin() -> String {
        format!("simulated:measurement={}", "ab".repeat(48))
    }

    #[test]
    fn pins_build_a_policy() {
        let policy = policy_from_args(&[pin()], None).unwrap();
        assert_eq!(policy.rules().len(), 1);
    }

    #[test]
    fn nothing_pinned_is_refused() {
        let err = policy_from_args::<String>(&[], None).unwrap_err();
        assert!(
            matches!(err, ClientError::Policy(shroud_ra_tls::Error::EmptyPolicy)),
            "{err}"
        );
        assert!(err.to_string().contains("pins no measurements"), "{err}");
    }

    #[test]
    fn pins_and_file_together_are_refused() {
        let err = policy_from_args(&[pin()], Some(Path::new("policy.toml"))).unwrap_err();
        assert!(err.to_string().contains("cannot be combined"), "{err}");
    }

    #[test]
    fn policy_file_errors_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            format!(
                "[[accept]]\nplatform = \"simulated\"\nmeasurement = \"{}\"\n",
                "cd".repeat(48)
            ),
        )
        .unwrap();
        assert_eq!(
            policy_from_args::<String>(&[], Some(&good))
                .unwrap()
                .rules()
                .len(),
            1
        );

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "wildcard = true\n").unwrap();
        let err = policy_from_args::<String>(&[], Some(&bad)).unwrap_err();
        assert!(err.to_string().contains("bad.toml"), "{err}");

        let empty = dir.join("empty.toml");
        std::fs::write(&empty, "").unwrap();
        let err = policy_from_args::<String>(&[], Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("empty.toml"), "{err}");
        assert!(
            err.to_string().contains("the policy file is empty"),
            "{err}"
        );

        let err = policy_from_args::<String>(&[], Some(&dir.join("missing.toml"))).unwrap_err();
        assert!(err.to_string().contains("cannot read policy file"), "{err}");
    }
}
