//! Shutdown and accept loops, below everything that serves: the stop signal every task waits
//! on, and the back-off of a listener whose accepts fail. No module of the gateway is below it.

use std::time::Duration;

use tokio::sync::watch;

/// Backs off after failed accepts (`EMFILE` and friends) instead of spinning: 10 ms, doubling
/// to a second, logged once per episode.
#[derive(Debug, Default)]
pub(crate) struct AcceptBackoff {
    delay: Option<Duration>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    /// Sleeps before the next accept.
    pub(crate) async fn wait(&mut self, listener: &str, error: &std::io::Error) {
        let delay = match self.delay {
            None => {
                tracing::warn!(listener, %error, "accept failed; backing off until it works again");
                Self::FIRST
            }
            Some(delay) => delay.saturating_mul(2).min(Self::MAX),
        };
        self.delay = Some(delay);
        tokio::time::sleep(delay).await;
    }

    /// An accept worked.
    pub(crate) fn reset(&mut self) {
        if self.delay.take().is_some() {
            tracing::info!("accepting connections again");
        }
    }
}

/// Completes once shutdown is requested (or the signal is gone). Drops the watch guard before
/// returning, so callers stay `Send`.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}
