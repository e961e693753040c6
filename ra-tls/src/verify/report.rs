//! [`PlatformReport`]: what a platform verifier established, the one type every verifier
//! returns and the policy reads. A leaf, so that `verify/mod.rs` dispatches to the verifiers
//! without them importing it back.

use crate::policy::{Observed, SnpTcb};
use crate::{Measurements, Platform, TcbStatus};

/// What a platform verifier established about authentic evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformReport {
    /// The platform.
    pub platform: Platform,
    /// The measurements, by the vendor's field names.
    pub measurements: Measurements,
    /// The report data (Nitro: `user_data`) the evidence signs.
    pub report_data: Vec<u8>,
    /// Whether the enclave, TD or guest is a debug build.
    pub debug: bool,
    /// The TCB status established with the collateral.
    pub tcb_status: TcbStatus,
    /// Intel: the lower `tcbEvaluationDataNumber` of the collateral's TCB info and QE identity.
    pub tcb_eval_data_number: Option<u32>,
    /// SEV-SNP: the TCB the report was signed at.
    pub snp_tcb: Option<SnpTcb>,
    /// SEV-SNP: the VMPL the report was requested from.
    pub snp_vmpl: Option<u8>,
    /// When the platform says the evidence was produced, unix seconds (Nitro's timestamp).
    pub issued_at: Option<u64>,
    /// Until when the evidence verifies: the earliest notAfter or nextUpdate of its chain and
    /// collateral, unix seconds (`None`: nothing in it expires).
    pub valid_until: Option<u64>,
}

impl PlatformReport {
    /// What the policy sees of this report; `iat` is the claims' issue time, used when the
    /// platform states none of its own.
    pub fn observed(&self, iat: Option<u64>) -> Observed<'_> {
        Observed {
            platform: self.platform,
            measurements: &self.measurements,
            tcb_status: self.tcb_status,
            tcb_eval_data_number: self.tcb_eval_data_number,
            snp_tcb: self.snp_tcb,
            snp_vmpl: self.snp_vmpl,
            issued_at: self.issued_at.or(iat),
        }
    }
}
