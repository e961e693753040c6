//! Every policy a reader can copy from the documentation loads: each fenced code block of the
//! Markdown documents and of the Rust doc comments is searched for pins (`tdx:mrtd=…`) and for
//! TOML policies (`[[accept]]`), and each is loaded with [`Policy::from_pins`] or
//! [`Policy::from_toml`]. A block that pins only part of an identity fails here, so no example
//! can teach a pin that trusts code nobody meant to trust.
//!
//! Placeholders (`…`, `...`, `<96 hex>`) stand for a value of the right length and are
//! replaced by one; anything else must be a valid value as written.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption is a failed test"
)]

use std::path::{Path, PathBuf};

use shroud_ra_tls::{Platform, Policy};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The documents: Markdown at the root and in docs/, and the Rust sources of every crate.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    files.extend(files_with(&root.join("docs"), "md"));
    for krate in [
        "ra-tls",
        "client-sdk",
        "gateway",
        "wasm-client",
        "testkit",
        "benches",
    ] {
        files.extend(files_with(&root.join(krate).join("src"), "rs"));
        files.extend(files_with(&root.join(krate).join("examples"), "rs"));
    }
    files.push(root.join("wasm-client/examples/index.html"));
    files.retain(|f| f.is_file());
    files.sort();
    files
}

fn files_with(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_with(&path, extension));
        } else if path.extension().is_some_and(|e| e == extension) {
            found.push(path);
        }
    }
    found
}

/// The fenced code blocks of a document, as (language, text). In Rust sources only doc
/// comments count, with their `//!`/`///` markers removed. An HTML page is one block.
fn code_blocks(path: &Path, text: &str) -> Vec<(String, String)> {
    if path.extension().is_some_and(|e| e == "html") {
        return vec![("html".into(), text.replace("&#10;", "\n"))];
    }
    let lines: Vec<String> = if path.extension().is_some_and(|e| e == "rs") {
        text.lines()
            .filter_map(|l| {
                let l = l.trim_start();
                l.strip_prefix("//!")
                    .or_else(|| l.strip_prefix("///"))
                    .map(|rest| rest.strip_prefix(' ').unwrap_or(rest).to_owned())
            })
            .collect()
    } else {
        text.lines().map(str::to_owned).collect()
    };
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in lines {
        let trimmed = line.trim_start();
        if let Some(fence) = trimmed.strip_prefix("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some((fence.trim().to_owned(), String::new())),
            }
        } else if let Some((_, body)) = &mut current {
            body.push_str(&line);
            body.push('\n');
        }
    }
    blocks
}

fn is_placeholder(value: &str) -> bool {
    value.is_empty()
        || value.contains('…')
        || value.contains("...")
        || value.contains('<')
        || value.chars().all(|c| c.is_ascii_uppercase() || c == '_')
}

fn field_len(platform: Platform, field: &str) -> Option<usize> {
    platform
        .measurement_fields()
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, len)| *len)
}

/// The pins in a block: `platform:field=value`, with placeholders replaced.
fn pins(block: &str) -> Vec<String> {
    let mut pins = Vec::new();
    for platform in Platform::ALL {
        let prefix = format!("{}:", platform.as_str());
        let mut rest = block;
        while let Some(at) = rest.find(&prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-') {
                continue;
            }
            let Some((field, tail)) = rest.split_once('=') else {
                continue;
            };
            if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let end = tail
                .find(|c: char| c.is_whitespace() || "\"'`),]\\".contains(c))
                .unwrap_or(tail.len());
            let value = &tail[..end];
            let value = if !is_placeholder(value) {
                value.to_owned()
            } else if field == "min_isvsvn" {
                "1".to_owned()
            } else {
                "00".repeat(field_len(platform, field).unwrap_or(1))
            };
            pins.push(format!("{}:{field}={value}", platform.as_str()));
        }
    }
    pins
}

/// The commands of a block whose pins form one policy: in a shell block each command line
/// (joined over trailing backslashes), elsewhere the whole block (a Rust builder chain).
fn commands(language: &str, block: &str) -> Vec<String> {
    if !matches!(language, "sh" | "bash" | "console" | "shell" | "text" | "") {
        return vec![block.to_owned()];
    }
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        match line.trim_end().strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                commands.push(std::mem::take(&mut current));
            }
        }
    }
    commands.push(current);
    commands
}

/// The TOML policies in a block: from each `[[accept]]` on, with placeholder values replaced.
fn toml_policy(block: &str) -> Option<String> {
    // A policy written inside a string literal, with `\n` escapes.
    let block = block.replace("\\n", "\n");
    let start = block.find("[[accept]]")?;
    // The end of a JavaScript template literal or of an HTML attribute ends the policy.
    let policy = &block[start..];
    let end = [policy.find('`'), policy.find("'>")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(policy.len());
    let mut platform = None;
    let mut out = String::new();
    for line in policy[..end].lines() {
        let Some((key, value)) = line.split_once('=') else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let key = key.trim();
        let value_text = value.split('#').next().unwrap_or_default().trim();
        let quoted = value_text.trim_matches('"');
        if key == "platform" {
            platform = quoted.parse::<Platform>().ok();
        }
        let replaced = match platform.and_then(|p| field_len(p, key)) {
            Some(len) if value_text.starts_with('"') && is_placeholder(quoted) => {
                format!("{key} = \"{}\"", "00".repeat(len))
            }
            _ => line.to_owned(),
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    Some(out)
}

#[test]
fn every_policy_in_the_documentation_loads() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in documents() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        for (language, block) in code_blocks(&path, &text) {
            for command in commands(&language, &block) {
                let pins = pins(&command);
                if !pins.is_empty() {
                    checked += 1;
                    if let Err(e) = Policy::from_pins(&pins) {
                        failures.push(format!("{name}: pins {pins:?}: {e}"));
                    }
                }
            }
            if let Some(policy) = toml_policy(&block) {
                checked += 1;
                if let Err(e) = Policy::from_toml(&policy) {
                    failures.push(format!("{name} ({language}): policy\n{policy}: {e}"));
                }
            }
        }
    }
    println!("{checked} policies and pin sets checked");
    assert!(
        checked >= 10,
        "only {checked} policies found: is the scan broken?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_scan_finds_pins_and_replaces_placeholders() {
    assert_eq!(
        pins("shroud attest URL --pin tdx:mrtd=… --pin sgx:min_isvsvn=3 x-tdx:rtmr0=1"),
        vec![
            format!("tdx:mrtd={}", "00".repeat(48)),
            "sgx:min_isvsvn=3".into()
        ]
    );
    let policy = toml_policy("[[accept]]\nplatform = \"nitro\"\npcr0 = \"…\"\n").unwrap();
    assert!(policy.contains(&"00".repeat(48)), "{policy}");
    // A partial identity in a block is what the main test catches.
    assert!(Policy::from_pins(pins("--pin tdx:mrtd=<96 hex>")).is_err());
}
