//! [`AppState`]: what the request handlers read (chains, limits, the relay pipeline, the OHTTP
//! keys, the served certificate). Its own module, below `routes.rs` and the OHTTP handler, so
//! that neither imports the other to reach it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::certs::ServedCertificates;
use crate::cluster::status::ClusterStatus;
use crate::ohttp::OhttpState;
use crate::pipeline::{PipelineError, Relay};
use crate::ratelimit::SharedBucket;
use crate::settings::Limits;
use crate::subscriptions::Subscriptions;
use crate::tls::Issuer;
use crate::upstream::Chain;

/// What nonce-bound bundles (`?nonce=`) need: the issuer of the serving key, and their
/// gateway-wide rate.
pub(crate) struct FreshEvidence {
    pub(crate) issuer: Arc<Issuer>,
    pub(crate) limit: SharedBucket,
}

/// What every connection shares.
pub(crate) struct AppState {
    /// The chains, by name.
    pub(crate) chains: HashMap<String, Arc<Chain>>,
    /// The same chains, for readiness and health checks.
    pub(crate) chain_list: Arc<[Arc<Chain>]>,
    /// The certificates served, for the attestation bundle.
    pub(crate) certs: Arc<ServedCertificates>,
    /// Nonce-bound bundles: the issuer and their rate.
    pub(crate) fresh: FreshEvidence,
    /// The checked limits.
    pub(crate) limits: Limits,
    /// What the relay pipeline needs.
    pub(crate) relay: Relay,
    /// The OHTTP keys and replay cache.
    pub(crate) ohttp: Arc<OhttpState>,
    /// With `[cluster]`: whether this replica serves the cluster's keys yet.
    pub(crate) cluster: Option<Arc<ClusterStatus>>,
    /// WebSocket subscriptions: every chain's feed and the WebSocket slots.
    pub(crate) subscriptions: Subscriptions,
}

impl AppState {
    /// The chain served at `path` (`/{name}`): [`PipelineError::NotFound`] for a path of
    /// another shape, [`PipelineError::UnknownChain`] for a name no chain has. For plain and
    /// encapsulated requests alike.
    pub(crate) fn chain_at(&self, path: &str) -> Result<Arc<Chain>, PipelineError> {
        let name = path
            .strip_prefix('/')
            .filter(|name| !name.contains('/'))
            .ok_or(PipelineError::NotFound)?;
        self.chains.get(name).cloned().ok_or_else(|| {
            // The client's own path, echoed to it only: bounded, and only when it could be a
            // chain name at all.
            let asked = if crate::config::is_valid_chain_name(name) {
                format!("{name:?}")
            } else {
                "(not a chain name)".to_owned()
            };
            let served: Vec<String> = self
                .chain_list
                .iter()
                .map(|chain| format!("/{}", chain.name))
                .collect();
            PipelineError::UnknownChain {
                asked,
                served: served.join(", "),
            }
        })
    }
}
