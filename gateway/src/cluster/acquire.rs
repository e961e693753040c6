//! How a replica comes to hold the root secret, and what it watches afterwards.
//!
//! * A founder (`found = true`) asks its peers once: when a verified peer already holds a
//!   secret (the founder restarted), it takes that one; otherwise it creates the secret.
//! * Any other replica asks its peers in rounds, backing off, until a verified peer sends the
//!   secret. It never makes one of its own, so it stays not ready meanwhile, and `/readyz` says
//!   why (DESIGN §10).
//! * A replica holding the secret probes its peers now and then: `shroud_cluster_peers` stays
//!   current, and a peer holding another secret (two founders) is reported.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::dial::{Dialer, Outcome};
use super::error::PeerState;
use super::secret::RootSecret;
use super::status::ClusterStatus;
use super::wire::{Answer, Request};
use crate::metrics::{CLUSTER_PEER_STATES, Metrics};
use crate::shutdown::stopped;

/// The first wait between rounds of asking for the secret; doubled after each round.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between rounds of asking for the secret.
const MAX_RETRY: Duration = Duration::from_secs(5);
/// How often a replica holding the secret probes its peers.
const PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// What the membership task needs.
pub(crate) struct Membership {
    /// Dials the peers.
    pub(crate) dialer: Dialer,
    /// Whether this replica founds the cluster.
    pub(crate) found: bool,
    /// Where the secret goes once held (the listener and the key rotation watch it).
    pub(crate) secret: watch::Sender<Option<Arc<RootSecret>>>,
    /// Readiness.
    pub(crate) status: Arc<ClusterStatus>,
    /// `shroud_cluster_peers`.
    pub(crate) metrics: Arc<Metrics>,
}

/// The last state logged per peer address, so that a peer's log line is written when its
/// state changes, not every round.
type Seen = HashMap<String, (PeerState, String)>;

/// Obtains the secret (founding, or from a peer), then probes the peers, until `stop`.
pub(crate) async fn run(membership: Membership, mut stop: watch::Receiver<bool>) {
    let mut seen = Seen::new();
    let mut held = None;
    if membership.found {
        if !membership.dialer.peers.is_empty() {
            held = ask_round(&membership, &mut seen).await;
        }
        if held.is_none() {
            match RootSecret::generate() {
                Ok(secret) => {
                    tracing::info!(
                        fingerprint = %hex::encode(secret.fingerprint()),
                        "cluster: founded: no peer holds a secret, so this replica created the root secret"
                    );
                    held = Some(Arc::new(secret));
                }
                Err(error) => {
                    tracing::error!("cluster: {error}");
                    membership
                        .status
                        .set_waiting(format!("cannot found the cluster: {error}"));
                }
            }
        }
    }
    let mut retry = FIRST_RETRY;
    let fingerprint = loop {
        if let Some(secret) = held.take() {
            let fingerprint = secret.fingerprint();
            membership.status.set_waiting(
                "holding the cluster secret; issuing the certificate for its keys".to_owned(),
            );
            let _ = membership.secret.send(Some(secret));
            break fingerprint;
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = stopped(&mut stop) => return,
        }
        retry = retry.saturating_mul(2).min(MAX_RETRY);
        held = ask_round(&membership, &mut seen).await;
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(PROBE_INTERVAL) => {}
            () = stopped(&mut stop) => return,
        }
        let outcomes = membership.dialer.round(Request::Probe).await;
        let mut counts = [0_i64; CLUSTER_PEER_STATES.len()];
        for (peer, outcome) in &outcomes {
            let state = match outcome {
                Outcome::Answered(Answer::Holding(theirs)) if *theirs != fingerprint => {
                    PeerState::Conflict
                }
                Outcome::Answered(_) => PeerState::Verified,
                Outcome::Myself => continue,
                Outcome::Failed(error) => error.peer_state(),
            };
            if let Some(count) = counts.get_mut(state.index()) {
                *count += 1;
            }
            note(&mut seen, peer, state, || describe(outcome));
        }
        membership.metrics.cluster_peers(counts);
    }
}

/// One round of asking every peer for the secret: the gauge, the logs and the readiness
/// reason follow its outcomes; the secret, if a verified peer sent it.
async fn ask_round(membership: &Membership, seen: &mut Seen) -> Option<Arc<RootSecret>> {
    let outcomes = membership.dialer.round(Request::Secret).await;
    let mut counts = [0_i64; CLUSTER_PEER_STATES.len()];
    let mut reasons = Vec::new();
    let mut received = None;
    for (peer, outcome) in outcomes {
        let state = match &outcome {
            Outcome::Answered(_) => PeerState::Verified,
            Outcome::Myself => continue,
            Outcome::Failed(error) => error.peer_state(),
        };
        if let Some(count) = counts.get_mut(state.index()) {
            *count += 1;
        }
        note(seen, &peer, state, || describe(&outcome));
        match outcome {
            Outcome::Answered(Answer::Secret(secret)) if received.is_none() => {
                tracing::info!(
                    fingerprint = %hex::encode(secret.fingerprint()),
                    "cluster: received the root secret from the verified replica at {peer}"
                );
                received = Some(secret);
            }
            Outcome::Answered(Answer::Secret(_)) => {}
            Outcome::Failed(error) => reasons.push(error.to_string()),
            other => reasons.push(format!("{peer}: {}", describe(&other))),
        }
    }
    membership.metrics.cluster_peers(counts);
    if received.is_none() {
        let reason = if reasons.is_empty() {
            "no peer answered".to_owned()
        } else {
            reasons.join("; ")
        };
        membership.status.set_waiting(format!(
            "waiting for the cluster secret from a peer (this replica does not found the \
             cluster, and makes no secret of its own): {reason}"
        ));
    }
    received
}

/// An outcome in words, for logs and `/readyz` (a failure names its peer itself).
fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Answered(Answer::NotHolding) => "verified; it holds no secret yet".to_owned(),
        Outcome::Answered(Answer::Holding(fingerprint)) => {
            format!("verified; it holds the secret {}", hex::encode(fingerprint))
        }
        Outcome::Answered(Answer::Secret(_)) => "verified; it sent the secret".to_owned(),
        Outcome::Myself => "this replica itself".to_owned(),
        Outcome::Failed(error) => error.to_string(),
    }
}

/// Logs `peer`'s outcome when its state or words changed since the last round.
fn note(seen: &mut Seen, peer: &str, state: PeerState, words: impl FnOnce() -> String) {
    let words = words();
    if seen
        .get(peer)
        .is_some_and(|(last, last_words)| *last == state && *last_words == words)
    {
        return;
    }
    match state {
        PeerState::Verified => tracing::info!("cluster: peer {peer}: {words}"),
        PeerState::Refused => tracing::warn!("cluster: refused: {words}"),
        PeerState::Unreachable => tracing::warn!("cluster: unreachable: {words}"),
        PeerState::Conflict => tracing::error!(
            "cluster: peer {peer} holds another root secret than this replica ({words}): two \
             replicas founded the cluster, and clients see different OHTTP keys; keep found = \
             true on one replica, restart the others"
        ),
    }
    seen.insert(peer.to_owned(), (state, words));
}
