//! Producing evidence: the [`Attester`] trait that each platform implements.
//!
//! Hardware attesters (Nitro NSM, configfs-tsm for TDX and SEV-SNP, Gramine `/dev/attestation`)
//! plug in behind feature `attest`; [`simulated`] is the development stand-in.

use crate::cmw::Evidence;
use crate::{Error, Measurements, Platform};

#[cfg(feature = "attest")]
pub mod collateral;
#[cfg(feature = "attest")]
pub mod configfs_tsm;
#[cfg(feature = "attest")]
pub mod detect;
#[cfg(feature = "attest")]
pub mod gramine;
#[cfg(feature = "attest")]
pub mod nitro;
#[cfg(feature = "server")]
pub mod simulated;

/// Something that can produce platform evidence binding a claims buffer.
pub trait Attester: Send + Sync {
    /// The platform this attester runs on.
    fn platform(&self) -> Platform;

    /// The measurements a verifier will see for this process, for the start-up line and docs.
    fn measurements(&self) -> Measurements;

    /// Produces evidence whose report data is SHA-256(`claims`) followed by zeros.
    fn attest(&self, claims: &[u8]) -> Result<Evidence, Error>;

    /// The endorsements extension value (collateral) certificates should carry, when the
    /// platform needs one and it is at hand ([`crate::cmw::Endorsements::to_cbor`]).
    fn endorsements(&self) -> Option<Vec<u8>> {
        None
    }
}

/// The 64 bytes of report data that bind `claims`: SHA-256(claims) followed by 32 zero bytes
/// (DESIGN §3).
pub fn report_data(claims: &[u8]) -> [u8; 64] {
    let mut data = [0u8; 64];
    let (hash, _) = data.split_at_mut(32);
    hash.copy_from_slice(&crate::sha256(claims));
    data
}
