//! [`ClusterStatus`]: whether this replica serves the cluster's keys yet, and if not, why; what
//! `/readyz` reports (DESIGN §10: "a replica ... stays not ready rather than making keys of its
//! own").

use std::sync::{PoisonError, RwLock};

/// Longest reason kept (a round over many peers says a lot).
const MAX_REASON_LEN: usize = 2_000;

/// Readiness of the cluster part of a replica.
#[derive(Debug)]
pub(crate) struct ClusterStatus {
    /// `None` once the keys derived from the root secret are served; else why not.
    waiting: RwLock<Option<String>>,
}

impl ClusterStatus {
    /// Not ready: nothing asked yet.
    pub(crate) fn new() -> ClusterStatus {
        ClusterStatus {
            waiting: RwLock::new(Some(
                "waiting for the cluster secret: no peer asked yet".to_owned(),
            )),
        }
    }

    /// Not ready, because of `reason` (bounded here).
    pub(crate) fn set_waiting(&self, reason: String) {
        let mut reason = reason;
        if reason.len() > MAX_REASON_LEN {
            let mut end = MAX_REASON_LEN;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push_str(" …");
        }
        *self.waiting.write().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// Ready: the derived keys are served.
    pub(crate) fn set_ready(&self) {
        *self.waiting.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Why this replica is not ready, if it is not.
    pub(crate) fn not_ready(&self) -> Option<String> {
        self.waiting
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_kept_bounded_until_ready() {
        let status = ClusterStatus::new();
        assert!(status.not_ready().unwrap().contains("waiting"));
        status.set_waiting("é".repeat(MAX_REASON_LEN));
        assert!(status.not_ready().unwrap().len() <= MAX_REASON_LEN + 4);
        status.set_ready();
        assert_eq!(status.not_ready(), None);
    }
}
