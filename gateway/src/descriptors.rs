//! File descriptors: the gateway raises its soft `RLIMIT_NOFILE` to the hard limit at start and
//! refuses a configuration whose connections could not all be open at once with descriptors to
//! spare for upstream, health and metrics traffic. Otherwise a flood of client connections
//! would starve the health probes, and `/readyz` would report a healthy instance unready.

use crate::config::ConfigError;
use crate::settings::Limits;

/// Descriptors kept for everything that is not a client or upstream connection: listeners, the
/// runtime, collateral fetches, log files.
pub(crate) const BASE_RESERVE: u64 = 64;

/// The descriptors the configuration may use at once: every client connection, every upstream
/// request in flight plus one health probe per upstream, the metrics listener's connections and
/// [`BASE_RESERVE`].
pub(crate) fn needed(limits: &Limits, upstream_reserve: u64, metrics_connections: u64) -> u64 {
    (limits.max_connections as u64)
        .saturating_add(upstream_reserve)
        .saturating_add(metrics_connections)
        .saturating_add(BASE_RESERVE)
}

/// Raises the soft limit as far as the hard limit allows and checks that `needed` fit.
#[cfg(unix)]
pub(crate) fn ensure(needed: u64) -> Result<u64, ConfigError> {
    let available = rlimit::increase_nofile_limit(u64::MAX)
        .map_err(|e| ConfigError::Invalid(format!("reading RLIMIT_NOFILE: {e}")))?;
    check(needed, available)
}

/// Nothing to raise on platforms without `RLIMIT_NOFILE`.
#[cfg(not(unix))]
pub(crate) fn ensure(needed: u64) -> Result<u64, ConfigError> {
    Ok(needed)
}

fn check(needed: u64, available: u64) -> Result<u64, ConfigError> {
    if available < needed {
        return Err(ConfigError::Invalid(format!(
            "[limits] max_connections needs about {needed} file descriptors with the upstream, \
             health and metrics reserve, but this process may open only {available} \
             (RLIMIT_NOFILE); lower max_connections or raise the limit (ulimit -n, LimitNOFILE=)"
        )));
    }
    Ok(available)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_kind_of_connection_and_says_what_to_do() {
        let limits = crate::config::LimitsConfig {
            max_connections: 1000,
            ..crate::config::LimitsConfig::default()
        }
        .settings()
        .unwrap();
        let needed = needed(&limits, 257, 32);
        assert_eq!(needed, 1000 + 257 + 32 + BASE_RESERVE);
        assert_eq!(check(needed, needed).unwrap(), needed);
        let refused = check(needed, 512).unwrap_err().to_string();
        assert!(refused.contains("max_connections"), "{refused}");
        assert!(refused.contains("512"), "{refused}");
    }
}
