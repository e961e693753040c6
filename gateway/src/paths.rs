//! The paths the gateway serves itself, in one table: the routers match on these constants, and
//! a chain (served at `/{name}`) may not take one of their names.

/// Liveness, on both listeners.
pub(crate) const HEALTHZ: &str = "/healthz";
/// Readiness, on both listeners.
pub(crate) const READYZ: &str = "/readyz";
/// Prometheus metrics, on the metrics listener.
pub(crate) const METRICS: &str = "/metrics";
/// Encapsulated requests naming their chain inside (DESIGN §4.3).
pub(crate) const OHTTP: &str = "/ohttp";
/// The attestation bundle (DESIGN §4.2), where clients fetch it.
pub(crate) const ATTESTATION: &str = shroud_ohttp::bundle::BUNDLE_PATH;
/// The OHTTP key list (RFC 9540).
pub(crate) const OHTTP_KEYS: &str = "/.well-known/ohttp-gateway";

/// Every path above.
pub(crate) const ALL: [&str; 6] = [HEALTHZ, READYZ, METRICS, OHTTP, ATTESTATION, OHTTP_KEYS];

/// Whether `/{name}` is one of the gateway's own paths.
pub(crate) fn is_reserved(name: &str) -> bool {
    ALL.iter().any(|path| path.strip_prefix('/') == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_own_path_is_reserved_and_chains_are_not() {
        for path in ALL {
            assert!(is_reserved(path.trim_start_matches('/')), "{path}");
        }
        assert!(!is_reserved("eth"));
        assert!(!is_reserved("well-known"));
    }
}
