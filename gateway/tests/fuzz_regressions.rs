//! Replays `fuzz/regressions/<target>/` (inputs that once failed a fuzz target) through the
//! function the target calls, `fuzz/src/gateway.rs` included as it is: no input may panic, and
//! the crash inputs of finding 1 (10 000 and 1 450 levels of `params`) must get the too-deep
//! refusal. Run `fuzz/run.sh` for the fuzzing itself (docs/security.md, "Fuzzing").
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code, and the fuzz entry points assert by panicking"
)]

#[path = "../../fuzz/src/gateway.rs"]
mod targets;

use std::path::{Path, PathBuf};

use shroud_gateway::pipeline::PipelineError;

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

/// The inputs of `target`, by name. The regression folder must exist and hold something, so
/// that moving it fails this test instead of replaying nothing.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = regressions();
    let entries = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .count();
    assert!(entries > 0, "{} is empty", root.display());
    let dir = root.join(target);
    let Ok(files) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut inputs: Vec<(String, Vec<u8>)> = files
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn jsonrpc_parse_regressions() {
    let inputs = inputs("jsonrpc_parse");
    let finding1 = inputs
        .iter()
        .filter(|(name, _)| name.starts_with("finding1-"))
        .count();
    assert_eq!(finding1, 3, "the three crash inputs of finding 1");
    let max = targets::default_limits().max_depth;
    for (name, body) in &inputs {
        let result = targets::jsonrpc_parse(body);
        if name.starts_with("finding1-") {
            assert_eq!(result, Err(PipelineError::TooDeep { max }), "{name}");
        }
    }
}

/// Finding 1 through the nesting check, at both ends of the configurable limit.
#[test]
fn jsonrpc_nesting_regressions() {
    for (name, body) in inputs("jsonrpc_parse") {
        if !name.starts_with("finding1-") {
            continue;
        }
        // The request object, then one level per `[` or `{"a":` of `params`.
        let levels: usize = name.rsplit('-').next().unwrap().parse().unwrap();
        for max_depth in [3, 64, 256] {
            targets::jsonrpc_nesting(&body, max_depth, levels + 1);
        }
    }
    // A failure of the structure-aware target is saved as the body it generated, named
    // `<depth>-<limit>-<anything>` (its raw input only means something to `arbitrary`).
    for (name, body) in inputs("jsonrpc_nesting") {
        let mut fields = name.split('-').map(str::parse::<usize>);
        let (Some(Ok(depth)), Some(Ok(limit))) = (fields.next(), fields.next()) else {
            panic!("{name}: expected <depth>-<limit>-<anything>");
        };
        targets::jsonrpc_nesting(&body, limit, depth);
    }
}

#[test]
fn bhttp_regressions() {
    for (_, bytes) in inputs("bhttp") {
        let _ = targets::bhttp(&bytes);
    }
}

#[test]
fn ohttp_regressions() {
    for (_, bytes) in inputs("ohttp_decapsulate") {
        let _ = targets::ohttp_decapsulate(&bytes);
    }
    for (_, bytes) in inputs("ohttp_response") {
        let _ = targets::ohttp_response(&bytes);
    }
}

#[test]
fn config_regressions() {
    for (_, text) in inputs("config") {
        let _ = targets::config(&text);
    }
}
