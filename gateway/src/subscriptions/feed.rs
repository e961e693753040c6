//! One chain's subscriptions: every client subscription of the chain, the follower that serves
//! them (started by the first, stopped when the last has been gone a while), and the fan-out
//! of what the follower sees to each matching subscriber's queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::{IntCounter, IntGauge};
use tokio::sync::watch;

use super::filter::{Kind, Request};
use super::outbox::{Outbox, Outgoing, SubscriptionId};
use super::window::Change;
use crate::egress::{HttpClient, WebSocketConnector};
use crate::metrics::Metrics;
use crate::pipeline::PipelineError;
use crate::settings::FollowerSettings;
use crate::upstream::Chain;

/// What a feed's follower uses besides the chain.
pub(crate) struct FeedContext {
    /// The shared upstream client.
    pub(crate) client: HttpClient,
    /// Where outcomes are counted.
    pub(crate) metrics: Arc<Metrics>,
    /// Largest upstream answer the follower reads.
    pub(crate) max_answer: usize,
    /// How long a first subscription waits for the follower's first view of the chain.
    pub(crate) sync_timeout: Duration,
    /// Shutdown.
    pub(crate) stop: watch::Receiver<bool>,
    /// Opens the follower's `newHeads` socket, when an upstream of the chain has `ws`.
    pub(crate) websocket: Option<WebSocketConnector>,
}

/// One chain's subscriptions and follower.
pub(crate) struct Feed {
    pub(crate) chain: Arc<Chain>,
    pub(crate) settings: FollowerSettings,
    pub(crate) context: FeedContext,
    state: Mutex<FeedState>,
    /// True once the running follower has read the chain's head.
    synced: watch::Sender<bool>,
    counters: [(IntGauge, IntCounter); 3],
}

#[derive(Default)]
struct FeedState {
    subscribers: HashMap<SubscriptionId, Subscriber>,
    following: bool,
    /// When the last subscriber left.
    empty_since: Option<Instant>,
}

struct Subscriber {
    request: Request,
    outbox: Outbox,
}

/// Index of a kind in [`Feed::counters`].
fn slot(kind: Kind) -> usize {
    match kind {
        Kind::NewHeads => 0,
        Kind::Logs => 1,
        Kind::NewPendingTransactions => 2,
    }
}

impl Feed {
    /// The feed of `chain`, with no subscription and no follower yet.
    pub(crate) fn new(
        chain: Arc<Chain>,
        settings: FollowerSettings,
        context: FeedContext,
    ) -> Arc<Self> {
        let counters = [Kind::NewHeads, Kind::Logs, Kind::NewPendingTransactions].map(|kind| {
            (
                context
                    .metrics
                    .subscriptions_active(&chain.name, kind.label()),
                context
                    .metrics
                    .subscription_notifications(&chain.name, kind.label()),
            )
        });
        Arc::new(Self {
            chain,
            settings,
            context,
            state: Mutex::new(FeedState::default()),
            synced: watch::Sender::new(false),
            counters,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the follower as running; `true` when it was not, and the caller must start it.
    /// A follower started for a subscription that never comes stops after the idle time.
    pub(crate) fn start_following(&self) -> bool {
        let mut state = self.lock();
        if state.subscribers.is_empty() {
            state.empty_since.get_or_insert_with(Instant::now);
        }
        let start = !std::mem::replace(&mut state.following, true);
        if start {
            self.synced.send_replace(false);
        }
        start
    }

    /// Waits (at most the sync timeout) until the follower knows the chain's head, so that
    /// a subscription made now gets every block after this moment.
    pub(crate) async fn synced(&self) {
        let mut synced = self.synced.subscribe();
        let _ = tokio::time::timeout(self.context.sync_timeout, synced.wait_for(|s| *s)).await;
    }

    /// Adds a subscription delivering to `outbox`, under a new id of the gateway's own.
    /// `answer(id)` is queued first, under the same lock the follower publishes under, so the
    /// client reads the id before any notification of it.
    pub(crate) fn add(
        &self,
        request: Request,
        outbox: &Outbox,
        answer: impl FnOnce(&str) -> Bytes,
    ) -> Result<SubscriptionId, PipelineError> {
        if request.kind() == Kind::NewPendingTransactions && !self.settings.new_pending_transactions
        {
            return Err(PipelineError::PendingTransactionsDisabled);
        }
        let id: SubscriptionId =
            Arc::from(format!("0x{}", hex::encode(rand::random::<[u8; 16]>())));
        let kind = request.kind();
        {
            let mut state = self.lock();
            // A slow client's answer is dropped with it; its connection is closing.
            outbox.push(Outgoing::Text(answer(&id)));
            state.subscribers.insert(
                Arc::clone(&id),
                Subscriber {
                    request,
                    outbox: outbox.clone(),
                },
            );
            state.empty_since = None;
        }
        if let Some((gauge, _)) = self.counters.get(slot(kind)) {
            gauge.inc();
        }
        Ok(id)
    }

    /// Removes subscription `id`; `false` when there is none.
    pub(crate) fn unsubscribe(&self, id: &str) -> bool {
        let removed = {
            let mut state = self.lock();
            let removed = state.subscribers.remove(id);
            if state.subscribers.is_empty() && state.empty_since.is_none() {
                state.empty_since = Some(Instant::now());
            }
            removed
        };
        match removed {
            Some(subscriber) => {
                self.count_removed(subscriber.request.kind());
                true
            }
            None => false,
        }
    }

    fn count_removed(&self, kind: Kind) {
        if let Some((gauge, _)) = self.counters.get(slot(kind)) {
            gauge.dec();
        }
    }

    /// Called by the follower on each turn: `true` when it should stop (no subscription for
    /// the idle time, or never one), in which case the next subscription starts a new one.
    pub(crate) fn follower_should_stop(&self) -> bool {
        let mut state = self.lock();
        let idle = state.subscribers.is_empty()
            && state
                .empty_since
                .is_none_or(|since| since.elapsed() >= self.settings.idle_stop);
        if idle {
            state.following = false;
            self.synced.send_replace(false);
        }
        idle
    }

    /// The follower read the chain's head.
    pub(crate) fn mark_synced(&self) {
        self.synced
            .send_if_modified(|synced| !std::mem::replace(synced, true));
    }

    /// Whether any subscription wants `kind`.
    pub(crate) fn wants(&self, kind: Kind) -> bool {
        self.lock()
            .subscribers
            .values()
            .any(|s| s.request.kind() == kind)
    }

    /// Delivers a change of the canonical chain: first the logs of orphaned blocks with
    /// `"removed": true` (newest block first), then for each new block its head (unless
    /// delivered before) and its logs.
    pub(crate) fn publish(&self, change: &Change) {
        let removed_logs = change
            .removed
            .iter()
            .flat_map(|block| block.logs.iter().flat_map(|logs| logs.iter()));
        let mut slow: Vec<SubscriptionId> = Vec::new();
        let mut sent = [0u64; 3];
        {
            let state = self.lock();
            for log in removed_logs {
                let mut json: Option<Bytes> = None;
                for (id, subscriber) in &state.subscribers {
                    if let Request::Logs(filter) = &subscriber.request
                        && filter.matches(log)
                    {
                        let result = json.get_or_insert_with(|| log.removed_json()).clone();
                        deliver(id, subscriber, result, &mut slow, &mut sent);
                    }
                }
            }
            for (n, block) in change.added.iter().enumerate() {
                if change.new_heads.contains(&n) {
                    for (id, subscriber) in &state.subscribers {
                        if subscriber.request == Request::NewHeads {
                            deliver(id, subscriber, block.header.clone(), &mut slow, &mut sent);
                        }
                    }
                }
                for log in block.logs.iter().flat_map(|logs| logs.iter()) {
                    for (id, subscriber) in &state.subscribers {
                        if let Request::Logs(filter) = &subscriber.request
                            && filter.matches(log)
                        {
                            deliver(id, subscriber, log.json.clone(), &mut slow, &mut sent);
                        }
                    }
                }
            }
        }
        self.finish(sent, slow);
    }

    /// Delivers pending transaction hashes (each a JSON string).
    pub(crate) fn publish_pending(&self, hashes: &[Bytes]) {
        let mut slow = Vec::new();
        let mut sent = [0u64; 3];
        {
            let state = self.lock();
            for hash in hashes {
                for (id, subscriber) in &state.subscribers {
                    if subscriber.request == Request::NewPendingTransactions {
                        deliver(id, subscriber, hash.clone(), &mut slow, &mut sent);
                    }
                }
            }
        }
        self.finish(sent, slow);
    }

    /// Counts what was sent and drops the subscriptions of clients found slow (their
    /// connections close themselves with 1013).
    fn finish(&self, sent: [u64; 3], slow: Vec<SubscriptionId>) {
        for (count, (_, counter)) in sent.iter().zip(&self.counters) {
            counter.inc_by(*count);
        }
        for id in slow {
            self.unsubscribe(&id);
        }
    }
}

/// Queues one notification; a subscriber whose queue is full is noted as slow.
fn deliver(
    id: &SubscriptionId,
    subscriber: &Subscriber,
    result: Bytes,
    slow: &mut Vec<SubscriptionId>,
    sent: &mut [u64; 3],
) {
    let pushed = subscriber.outbox.push(Outgoing::Notification {
        subscription: Arc::clone(id),
        result,
    });
    if pushed {
        if let Some(count) = sent.get_mut(slot(subscriber.request.kind())) {
            *count += 1;
        }
    } else if !slow.contains(id) {
        slow.push(Arc::clone(id));
    }
}
