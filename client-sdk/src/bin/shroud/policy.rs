//! `shroud policy from-measurements FILE`: a published `measurements.json` (DESIGN §9, written
//! by `deploy/nitro/build-eif`) becomes a policy file for `--policy`. The policy is loaded
//! before it is written, so a file with a partial identity (a Nitro build without PCR0/PCR1)
//! is refused naming what is missing, never turned into a policy that trusts too much.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Map, Value};
use shroud_client::Policy;

use crate::Failure;

/// The largest `measurements.json` read: a handful of hex strings.
const MAX_FILE: u64 = 64 * 1024;

/// Keys of `measurements.json` that describe the build rather than measure it.
const DESCRIPTIVE: [&str; 3] = ["platform", "gateway_sha256", "commit"];

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Turn a published measurements.json into a policy file (printed, or written with --out).
    FromMeasurements {
        /// The measurements.json, e.g. from deploy/nitro/build-eif.
        file: PathBuf,
        /// Write the policy here instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub(crate) fn policy(command: &PolicyCommand) -> Result<(), Failure> {
    match command {
        PolicyCommand::FromMeasurements { file, out } => {
            let measurements = read(file)?;
            let text = from_measurements(&measurements)
                .map_err(|reason| Failure::Usage(format!("{}: {reason}", file.display())))?;
            match out {
                None => print!("{text}"),
                Some(path) => std::fs::write(path, &text)
                    .map_err(|e| Failure::Runtime(format!("writing {}: {e}", path.display())))?,
            }
            Ok(())
        }
    }
}

fn read(path: &Path) -> Result<Map<String, Value>, Failure> {
    let unreadable = |e: std::io::Error| Failure::Usage(format!("reading {}: {e}", path.display()));
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    if text.len() as u64 > MAX_FILE {
        return Err(Failure::Usage(format!(
            "{}: larger than {MAX_FILE} bytes, not a measurements.json",
            path.display()
        )));
    }
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::Usage(format!(
            "{}: not a JSON object",
            path.display()
        ))),
        Err(e) => Err(Failure::Usage(format!("{}: not JSON: {e}", path.display()))),
    }
}

/// The policy text for `measurements`: one `[[accept]]` rule with the platform and every
/// measured value, checked by loading it.
fn from_measurements(measurements: &Map<String, Value>) -> Result<String, String> {
    let platform = measurements
        .get("platform")
        .and_then(Value::as_str)
        .ok_or("no \"platform\"")?;
    let mut text = String::from("# shroud attest --policy FILE: the build of measurements.json");
    for key in ["commit", "gateway_sha256"] {
        // Only hex goes into the comment: nothing of the file can start a TOML line.
        if let Some(value) = measurements.get(key).and_then(Value::as_str)
            && is_hex(value)
        {
            text.push_str(&format!("\n# {key} {value}"));
        }
    }
    text.push_str(&format!("\n[[accept]]\nplatform = {}\n", quoted(platform)));
    let mut missing = Vec::new();
    for (key, value) in measurements {
        if DESCRIPTIVE.contains(&key.as_str()) {
            continue;
        }
        match value {
            Value::String(hex) if is_hex(hex) => {
                if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("{key:?} is not a measurement name"));
                }
                text.push_str(&format!("{key} = \"{}\"\n", hex.to_ascii_lowercase()));
            }
            Value::Null => missing.push(key.as_str()),
            _ => return Err(format!("{key:?} is not a hex string")),
        }
    }
    Policy::from_toml(&text).map_err(|e| {
        if missing.is_empty() {
            e.to_string()
        } else {
            format!(
                "{e} ({} null in the file: the build did not compute them)",
                missing.join(", ")
            )
        }
    })?;
    Ok(text)
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `text` as a TOML basic string.
fn quoted(text: &str) -> String {
    // serde_json's string escaping is valid TOML basic-string escaping for these characters.
    Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: &str) -> Map<String, Value> {
        match serde_json::from_str(json) {
            Ok(Value::Object(map)) => map,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_complete_nitro_build_becomes_one_rule() {
        let (a, b, c) = ("AA".repeat(48), "bb".repeat(48), "cc".repeat(48));
        let text = from_measurements(&map(&format!(
            r#"{{"platform":"nitro","pcr0":"{a}","pcr1":"{b}","pcr2":"{c}","gateway_sha256":"{}","commit":"0123abc"}}"#,
            "dd".repeat(32)
        )))
        .unwrap();
        assert!(
            text.contains(&format!("pcr0 = \"{}\"", "aa".repeat(48))),
            "{text}"
        );
        assert!(text.contains("# commit 0123abc"), "{text}");
        assert_eq!(Policy::from_toml(&text).unwrap().rules().len(), 1);
    }

    #[test]
    fn a_build_without_pcr0_and_pcr1_is_refused_naming_them() {
        let error = from_measurements(&map(&format!(
            r#"{{"platform":"nitro","pcr0":null,"pcr1":null,"pcr2":"{}"}}"#,
            "cc".repeat(48)
        )))
        .unwrap_err();
        assert!(error.contains("pcr0"), "{error}");
        assert!(error.contains("null in the file"), "{error}");
    }

    #[test]
    fn nothing_of_the_file_escapes_into_the_toml() {
        let error = from_measurements(&map(&format!(
            r#"{{"platform":"nitro","pcr0":"{0}","pcr1":"{0}","pcr2":"{0}","x\"]\n[[accept]]":"00"}}"#,
            "aa".repeat(48)
        )))
        .unwrap_err();
        assert!(error.contains("not a measurement name"), "{error}");
        let text = from_measurements(&map(&format!(
            r#"{{"platform":"nitro","pcr0":"{0}","pcr1":"{0}","pcr2":"{0}","commit":"x\n[[accept]]"}}"#,
            "aa".repeat(48)
        )))
        .unwrap();
        assert!(!text.contains("# commit"), "{text}");
        assert!(from_measurements(&map(r#"{"pcr0":"00"}"#)).is_err());
        assert!(from_measurements(&map(r#"{"platform":"nitro","pcr0":7}"#)).is_err());
    }
}
