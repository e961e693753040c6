//! Access to the shared test data of DESIGN §7 (`SHROUD_VECTORS_DIR`, `SHROUD_FIXTURES_DIR`).
//!
//! The data lives outside the repository. When it is absent (a user's fresh clone) a test prints
//! `skipped: no vectors at PATH` and passes; with `SHROUD_REQUIRE_VECTORS=1` (set by `.ci/run`)
//! it fails instead.

use std::path::PathBuf;

fn workspace_root() -> PathBuf {
    // testkit/ lives directly under the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn shared_dir(var: &str, default: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default));
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var("SHROUD_REQUIRE_VECTORS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "SHROUD_REQUIRE_VECTORS=1 but there is no test data at {} (set {var})",
        dir.display()
    );
    println!("skipped: no vectors at {}", dir.display());
    None
}

/// The attestation vectors folder, or `None` (after printing why) when it is absent.
pub fn attestation_vectors() -> Option<PathBuf> {
    shared_dir("SHROUD_VECTORS_DIR", "../shared/attestation-vectors")
}

/// The JSON-RPC fixtures folder, or `None` (after printing why) when it is absent.
pub fn jsonrpc_fixtures() -> Option<PathBuf> {
    shared_dir("SHROUD_FIXTURES_DIR", "../shared/jsonrpc-fixtures")
}
