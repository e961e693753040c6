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

/// 48 zero bytes, hex: an unused PCR or RTMR.
pub const ZERO_48: &str = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

/// The measurements `intel/sgx_quote.bin` reports, hex (as `shroud verify --json` prints them): what
/// the tests that verify or pin the vector expect.
pub const SGX_MEASUREMENTS: &[(&str, &str)] = &[
    (
        "mrenclave",
        "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
    ),
    (
        "mrsigner",
        "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6",
    ),
    ("isvprodid", "0000"),
    ("isvsvn", "0000"),
];

/// The measurements `intel/tdx_quote.bin` reports, hex (as `shroud verify --json` prints them): what
/// the tests that verify or pin the vector expect.
pub const TDX_MEASUREMENTS: &[(&str, &str)] = &[
    (
        "mrtd",
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7",
    ),
    (
        "rtmr0",
        "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
    ),
    (
        "rtmr1",
        "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378",
    ),
    (
        "rtmr2",
        "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132",
    ),
    ("rtmr3", ZERO_48),
];

/// The measurements `nitro/attestation_doc.cose` reports, hex (as `shroud verify --json` prints them): what
/// the tests that verify or pin the vector expect.
pub const NITRO_MEASUREMENTS: &[(&str, &str)] = &[
    (
        "pcr0",
        "5cb702954321826d7939d6da829a940d787fcf32357beb8eae1ddf33c28c17d36f3ac3ba6828fdf7edeed02889702da6",
    ),
    (
        "pcr1",
        "0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa",
    ),
    (
        "pcr2",
        "743ea12db9aba9440a8197f7ac9aeda43cfbb1587473ff7577415ac5be116bc026dfa836db6713930474d1aa0d06b049",
    ),
    ("pcr3", ZERO_48),
    (
        "pcr4",
        "7b3574ad9b7e88ec8335e8ce967315fac77218441e97eea9795de704d7f2678d0b298ecda39b544c1689669f48cba5e8",
    ),
    ("pcr8", ZERO_48),
];

/// The measurements `sev-snp/report_milan.bin` reports, hex (as `shroud verify --json` prints them): what
/// the tests that verify or pin the vector expect.
pub const SNP_MEASUREMENTS: &[(&str, &str)] = &[
    (
        "measurement",
        "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f",
    ),
    (
        "host_data",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
    // 0x30000 as the report stores it (little endian): SMT allowed, reserved bit 17, no debug.
    ("policy", "0000030000000000"),
];

/// The value of `field` in one of the tables above (tests only: panics on an unknown field).
#[expect(
    clippy::panic,
    reason = "test helper: an unknown field is a broken test"
)]
pub fn measurement(table: &[(&'static str, &'static str)], field: &str) -> &'static str {
    table
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, value)| *value)
        .unwrap_or_else(|| panic!("no measurement {field:?} in the table"))
}
