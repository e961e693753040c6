//! Carrying bytes both ways between two streams, with bounded buffers and an idle timeout: a
//! pipe where neither side sent anything for `idle` is closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::io::Stream;

/// Bytes read at once in each direction.
const BUFFER: usize = 16 * 1024;

/// Copies `a` to `b` and `b` to `a` until both ends are done, either fails, or both are idle for
/// `idle`. Returns the bytes carried each way.
pub(crate) async fn pipe(a: Stream, b: Stream, idle: Duration) -> (u64, u64) {
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let (a_read, a_write) = tokio::io::split(a);
    let (b_read, b_write) = tokio::io::split(b);
    let forward = one_way(a_read, b_write, idle, started, Arc::clone(&last));
    let backward = one_way(b_read, a_write, idle, started, last);
    // Whichever direction ends first (closed, failed or idle), the other is given the rest of
    // the idle time to drain, then both are dropped.
    tokio::pin!(forward, backward);
    tokio::select! {
        sent = &mut forward => {
            let received = tokio::time::timeout(idle, backward).await.unwrap_or(0);
            (sent, received)
        }
        received = &mut backward => {
            let sent = tokio::time::timeout(idle, forward).await.unwrap_or(0);
            (sent, received)
        }
    }
}

async fn one_way(
    mut from: tokio::io::ReadHalf<Stream>,
    mut to: tokio::io::WriteHalf<Stream>,
    idle: Duration,
    started: Instant,
    last: Arc<AtomicU64>,
) -> u64 {
    let mut buffer = vec![0_u8; BUFFER];
    let mut carried = 0_u64;
    loop {
        let read = match tokio::time::timeout(idle, from.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => n,
            Err(_) => {
                // Idle this way: keep going only if the other way was active meanwhile.
                let now = millis(started);
                let other = last.load(Ordering::Relaxed);
                if now.saturating_sub(other) >= u64::try_from(idle.as_millis()).unwrap_or(u64::MAX)
                {
                    break;
                }
                continue;
            }
        };
        let Some(chunk) = buffer.get(..read) else {
            break;
        };
        if to.write_all(chunk).await.is_err() {
            break;
        }
        carried = carried.saturating_add(read as u64);
        last.store(millis(started), Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
    carried
}

fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
