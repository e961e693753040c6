use crate::Platform;

/// Why an attested certificate, a piece of evidence or a policy was refused.
///
/// Every variant names the check that failed, so that a user (or the `shroud` CLI, or a JSON-RPC
/// error of `shroud proxy`) can say exactly why a gateway is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The certificate is not valid DER X.509.
    #[error("certificate does not parse: {0}")]
    CertificateParse(String),
    /// The certificate has no `tcg-dice-conceptual-message-wrapper` (2.23.133.5.4.9) extension.
    #[error(
        "certificate carries no attestation evidence extension (OID 2.23.133.5.4.9): not an RA-TLS certificate"
    )]
    MissingEvidence,
    /// More than one extension of a kind that must appear once.
    #[error("certificate carries {count} extensions with OID {oid}; exactly one is allowed")]
    DuplicateExtension {
        /// The duplicated OID.
        oid: &'static str,
        /// How many were present.
        count: usize,
    },
    /// An extension is larger than the verifier accepts.
    #[error("{what} is {len} bytes, more than the {max} bytes accepted")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The conceptual message wrapper is not one of the formats of DESIGN §3.
    #[error("malformed evidence: {0}")]
    MalformedEvidence(String),
    /// The claims buffer does not decode or lacks a required claim.
    #[error("malformed claims buffer: {0}")]
    MalformedClaims(String),
    /// The certificate is signed by an algorithm or key type this verifier does not support.
    #[error("unsupported certificate key or signature algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The certificate's self-signature does not verify with its own key.
    #[error(
        "certificate signature does not verify with the certificate's key (tampered certificate)"
    )]
    BadCertificateSignature,
    /// The certificate is not valid yet at the verifier's clock.
    #[error("certificate is not valid before {not_before} (unix seconds), verifier clock is {now}")]
    CertificateNotYetValid {
        /// notBefore, unix seconds.
        not_before: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// The certificate has expired at the verifier's clock.
    #[error("certificate expired at {not_after} (unix seconds), verifier clock is {now}")]
    CertificateExpired {
        /// notAfter, unix seconds.
        not_after: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// Simulated evidence met a verifier that did not opt in to it.
    #[error(
        "the gateway presents SIMULATED attestation (development mode), which proves nothing; refused (opt in explicitly with --allow-simulated / danger_allow_simulated for local development only)"
    )]
    SimulatedRefused,
    /// The evidence's signature does not verify.
    #[error("{platform} evidence signature does not verify")]
    BadEvidenceSignature {
        /// The platform whose evidence failed.
        platform: Platform,
    },
    /// Evidence needs collateral (endorsements) that neither the certificate nor the caller supplied.
    #[error(
        "{platform} evidence cannot be verified: no collateral (the certificate carries no endorsements extension and none was supplied)"
    )]
    MissingCollateral {
        /// The platform whose evidence lacks collateral.
        platform: Platform,
    },
    /// The collateral (endorsements) supplied for the evidence does not decode.
    #[error("{platform} collateral does not parse: {reason}")]
    MalformedCollateral {
        /// The platform whose collateral is malformed.
        platform: Platform,
        /// What the decoder said.
        reason: String,
    },
    /// The evidence failed verification to the pinned vendor root: a broken or expired
    /// certificate chain, stale or badly signed collateral, a revoked key, a TCB level the
    /// collateral does not know, or a report that does not match its endorsements.
    #[error("{platform} evidence rejected: {reason}")]
    EvidenceRejected {
        /// The platform whose evidence was rejected.
        platform: Platform,
        /// The verifier's reason (for Intel, dcap-qvl's error chain).
        reason: String,
    },
    /// No verifier for this platform is compiled in (the `shroud-ra-tls` feature named like
    /// the platform was off): its evidence, and a policy that pins it, are refused.
    #[error(
        "this build has no verifier for {platform} evidence (shroud-ra-tls was built without feature \"{platform}\"); in the browser, load the @shroud-rpc/client module for {platform} or the all-platform one"
    )]
    UnsupportedPlatform {
        /// The platform.
        platform: Platform,
    },
    /// The enclave, TD or guest runs in debug mode, so its memory is open to the host.
    #[error(
        "{platform} evidence comes from a DEBUG enclave/guest, whose memory the host can read; refused"
    )]
    DebugEnclave {
        /// The platform.
        platform: Platform,
    },
    /// The platform's TCB status is not allowed by the policy.
    #[error(
        "{platform} TCB status {status} is not allowed by the policy (allow it explicitly: allow_tcb = [\"{status}\"] in the policy's [[accept]] table, or shroud verify --allow-tcb {status})"
    )]
    TcbNotAllowed {
        /// The platform.
        platform: Platform,
        /// The status reported.
        status: crate::TcbStatus,
    },
    /// SHA-256(claims-buffer) is not in the report data.
    #[error("report data does not bind the claims buffer (SHA-256 mismatch)")]
    ReportDataMismatch,
    /// The `pubkey-hash` claim does not match the certificate's SubjectPublicKeyInfo.
    #[error(
        "pubkey-hash claim does not match the certificate's public key: the evidence was made for another key"
    )]
    PubkeyHashMismatch,
    /// The policy has no `[[accept]]` entry at all.
    #[error(
        "the policy pins no measurements; refusing to trust any enclave (there is no wildcard): pass --pin or --policy"
    )]
    EmptyPolicy,
    /// The measurements match no `[[accept]]` entry.
    #[error("measurement mismatch: the gateway reports {actual}; the policy accepts {expected}")]
    MeasurementMismatch {
        /// What the evidence reported, as `platform field=hex ...`.
        actual: String,
        /// What the policy accepts.
        expected: String,
    },
    /// The measurements match a rule, but the evidence fails one of its other conditions
    /// (minimum ISV SVN, SEV-SNP migration agent, TCB evaluation number, evidence age).
    #[error("the gateway's measurements match {rule}, but {reason}")]
    RuleNotMet {
        /// The rule, as `[platform field=hex …]`.
        rule: String,
        /// What the evidence lacks.
        reason: String,
    },

    /// A pin or policy file is invalid.
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    /// Producing evidence or a certificate failed (issuing side).
    #[error("attestation failed: {0}")]
    Attestation(String),
}

impl From<crate::platform::UnknownName> for Error {
    fn from(name: crate::platform::UnknownName) -> Self {
        Error::InvalidPolicy(name.0)
    }
}
