//! WebSocket subscriptions (DESIGN §4.5): `eth_subscribe` for `newHeads`, `logs` and (where a
//! chain enables it) `newPendingTransactions`, served from one chain follower per chain.
//!
//! Privacy: upstreams see the follower's own calls only (the latest block, blocks by hash, one
//! block's logs unfiltered, one pending-transaction filter), whatever the number of clients and
//! their filters; filters are matched here. Reliability: blocks are linked by `parentHash`, so a
//! reorganisation re-sends orphaned logs with `"removed": true` and no head twice, and a failed
//! upstream is replaced by the next without a gap and without clients noticing.
//!
//! Modules: [`filter`] (what a client asks for) and [`block`] (what upstreams answer) are
//! parsers; [`window`] decides what a new branch changes; [`outbox`] is a client's bounded
//! queue; [`source`] the follower's upstream exchanges; [`feed`] a chain's subscribers and
//! fan-out; [`follower`] the task; [`session`] one WebSocket connection.

pub(crate) mod block;
pub(crate) mod feed;
pub(crate) mod filter;
pub(crate) mod follower;
pub(crate) mod heads_ws;
pub(crate) mod outbox;
pub(crate) mod session;
pub(crate) mod source;
pub(crate) mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, watch};

use self::feed::{Feed, FeedContext};
use self::filter::Request;
use self::outbox::{Outbox, SubscriptionId};
use crate::config::Settings;
use crate::egress::{self, HttpClient};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::pipeline::PipelineError;
use crate::settings::UpstreamSettings;
use crate::upstream::Chain;

/// Every chain's feed, and the gateway's WebSocket slots.
pub(crate) struct Subscriptions {
    feeds: HashMap<String, Arc<Feed>>,
    /// One permit per open WebSocket connection.
    pub(crate) slots: Arc<Semaphore>,
}

impl Subscriptions {
    /// A feed per chain (no follower runs until a first subscription).
    pub(crate) fn new(
        chains: &HashMap<String, Arc<Chain>>,
        settings: &Settings,
        client: &HttpClient,
        metrics: &Arc<Metrics>,
        stop: &watch::Receiver<bool>,
    ) -> Result<Self, GatewayError> {
        let limits = &settings.limits;
        let mut feeds = HashMap::new();
        for chain_settings in &settings.chains {
            let Some(chain) = chains.get(&chain_settings.name) else {
                continue;
            };
            let websocket = if chain_settings.upstreams.iter().any(|u| u.ws.is_some()) {
                let plain = chain_settings
                    .upstreams
                    .iter()
                    .any(UpstreamSettings::is_plain_http);
                Some(egress::websocket_connector(
                    plain,
                    settings.egress.as_ref(),
                )?)
            } else {
                None
            };
            let context = FeedContext {
                client: client.clone(),
                metrics: Arc::clone(metrics),
                max_answer: limits.max_response_bytes,
                sync_timeout: chain
                    .upstreams
                    .iter()
                    .map(|u| u.timeout)
                    .max()
                    .unwrap_or(Duration::from_secs(10)),
                stop: stop.clone(),
                websocket,
            };
            let feed = Feed::new(Arc::clone(chain), chain_settings.follower.clone(), context);
            feeds.insert(chain_settings.name.clone(), feed);
        }
        Ok(Self {
            feeds,
            slots: Arc::new(Semaphore::new(limits.max_websocket_connections)),
        })
    }

    /// The feed of chain `name`.
    pub(crate) fn feed(&self, name: &str) -> Option<Arc<Feed>> {
        self.feeds.get(name).cloned()
    }
}

/// Subscribes `outbox` to `request` on `feed`: starts the chain's follower if it is not
/// running, waits (bounded) for its view of the head, then adds the subscription with its
/// answer `answer(id)` queued first.
pub(crate) async fn subscribe(
    feed: &Arc<Feed>,
    request: Request,
    outbox: &Outbox,
    answer: impl FnOnce(&str) -> Bytes,
) -> Result<SubscriptionId, PipelineError> {
    if feed.start_following() {
        tokio::spawn(follower::follow(Arc::clone(feed)));
    }
    feed.synced().await;
    feed.add(request, outbox, answer)
}
