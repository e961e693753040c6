//! The chain follower: one task per chain with subscriptions. Every poll interval it reads the
//! latest block from an upstream; a block it does not know is linked to what it knows by
//! walking `parentHash` back (which also catches up blocks missed during a pause or a failover,
//! up to a bound), each new block's logs are fetched once, unfiltered, and the change is
//! handed to the feed, which matches every client's filter here in the enclave.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::block::{self, Block, Malformed, hash_hex};
use super::feed::Feed;
use super::filter::Kind;
use super::source::{Source, SourceError};
use super::window::Window;
use crate::shutdown::stopped;

/// Most pending transaction hashes delivered per poll: a bound on one turn's work.
const MAX_PENDING_PER_POLL: usize = 10_000;

/// Why one turn failed.
#[derive(Debug, thiserror::Error)]
enum TurnError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Malformed(#[from] Malformed),
    #[error("the upstream's blocks do not link: block {0} is not its child's parent")]
    Unlinked(u64),
}

/// Follows the feed's chain until it has had no subscription for its idle time, or shutdown.
pub(crate) async fn follow(feed: Arc<Feed>) {
    let mut source = Source::new(
        feed.context.client.clone(),
        Arc::clone(&feed.context.metrics),
        Arc::clone(&feed.chain),
        feed.context.max_answer,
    );
    // With an upstream `ws` endpoint, its newHeads notifications wake the loop early.
    let wake = Arc::new(Notify::new());
    let listener = feed.context.websocket.clone().map(|connector| {
        tokio::spawn(super::heads_ws::listen(
            Arc::clone(&feed),
            connector,
            Arc::clone(&wake),
        ))
    });
    let mut window = Window::new(feed.settings.reorg_depth);
    let mut pending_filter: Option<String> = None;
    let mut stop = feed.context.stop.clone();
    let mut failing = false;
    tracing::info!(chain = %feed.chain.name, "chain follower started");
    loop {
        if feed.follower_should_stop() {
            break;
        }
        match turn(&feed, &mut source, &mut window).await {
            Ok(()) => {
                feed.mark_synced();
                if std::mem::replace(&mut failing, false) {
                    tracing::info!(chain = %feed.chain.name, upstream = %source.current_label(), "chain follower recovered");
                }
            }
            Err(error) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(chain = %feed.chain.name, %error, "chain follower could not read the chain; retrying every poll interval");
                }
            }
        }
        if feed.settings.new_pending_transactions && feed.wants(Kind::NewPendingTransactions) {
            pending(&feed, &mut source, &mut pending_filter).await;
        }
        tokio::select! {
            () = tokio::time::sleep(feed.settings.poll_interval) => {}
            () = wake.notified() => {}
            () = stopped(&mut stop) => break,
        }
    }
    if let Some(listener) = listener {
        listener.abort();
    }
    if let Some(filter) = pending_filter {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            source.call("eth_uninstallFilter", &json!([filter])),
        )
        .await;
    }
    tracing::info!(chain = %feed.chain.name, "chain follower stopped");
}

/// One turn: the latest block, linked to the window, with logs when anyone wants them.
async fn turn(feed: &Feed, source: &mut Source, window: &mut Window) -> Result<(), TurnError> {
    let latest = fetch_block(source, "eth_getBlockByNumber", json!(["latest", false])).await?;
    if window.contains(&latest.hash) {
        return Ok(());
    }
    let first = window.is_empty();
    let limit = feed.settings.max_catch_up.max(feed.settings.reorg_depth);
    let mut branch = std::collections::VecDeque::from([latest]);
    // The first head ever seen is only recorded: there is nothing to link it to.
    loop {
        if first {
            break;
        }
        let Some(oldest) = branch.front() else { break };
        if window.contains(&oldest.parent) {
            break;
        }
        let below_window = window
            .oldest_number()
            .is_some_and(|oldest_known| oldest.number <= oldest_known);
        if branch.len() >= limit || below_window || oldest.number == 0 {
            tracing::warn!(
                chain = %feed.chain.name,
                blocks = branch.len(),
                "chain follower could not link the new head to the blocks it knows (a gap or reorganisation deeper than it follows); resuming from here"
            );
            break;
        }
        let (number, parent) = (oldest.number, oldest.parent);
        let block = fetch_block(
            source,
            "eth_getBlockByHash",
            json!([hash_hex(&parent), false]),
        )
        .await?;
        if block.number.checked_add(1) != Some(number) {
            return Err(TurnError::Unlinked(block.number));
        }
        branch.push_front(block);
    }
    let mut branch: Vec<Block> = branch.into();
    if feed.wants(Kind::Logs) {
        for block in &mut branch {
            let result = source
                .call(
                    "eth_getLogs",
                    &json!([{ "blockHash": hash_hex(&block.hash) }]),
                )
                .await?;
            block.logs = Some(block::logs(&result, &block.hash)?.into());
        }
    }
    let change = window.apply(branch);
    if !first {
        feed.publish(&change);
    }
    Ok(())
}

async fn fetch_block(
    source: &mut Source,
    method: &'static str,
    params: Value,
) -> Result<Block, TurnError> {
    let result = source.call(method, &params).await?;
    let value: Value = serde_json::from_str(result.get()).map_err(|_| Malformed::Shape)?;
    Ok(block::block(value)?)
}

/// Polls the follower's one pending-transaction filter (created on first use, and again when
/// the upstream forgot it or another upstream took over).
async fn pending(feed: &Feed, source: &mut Source, filter: &mut Option<String>) {
    let id = match filter {
        Some(id) => id.clone(),
        None => match source
            .call("eth_newPendingTransactionFilter", &json!([]))
            .await
        {
            Ok(result) => match serde_json::from_str::<String>(result.get()) {
                Ok(id) => filter.insert(id).clone(),
                Err(_) => return,
            },
            Err(error) => {
                tracing::debug!(chain = %feed.chain.name, %error, "pending transaction filter not created");
                return;
            }
        },
    };
    let hashes = match source.call("eth_getFilterChanges", &json!([id])).await {
        Ok(result) => serde_json::from_str::<Vec<String>>(result.get()).unwrap_or_default(),
        Err(_) => {
            *filter = None;
            return;
        }
    };
    let hashes: Vec<Bytes> = hashes
        .into_iter()
        .filter(|hash| block::parse_hex::<32>(hash).is_some())
        .take(MAX_PENDING_PER_POLL)
        .map(|hash| Bytes::from(format!("\"{hash}\"")))
        .collect();
    if !hashes.is_empty() {
        feed.publish_pending(&hashes);
    }
}
