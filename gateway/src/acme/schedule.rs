//! When the certificate is renewed, and how failures back off: pure arithmetic on unix seconds,
//! so that it is tested without waiting.

use std::time::Duration;

/// Deadline of one whole order: account, authorizations, validation, issuance.
pub(super) const ORDER_TIMEOUT: Duration = Duration::from_secs(300);
/// First wait after a failed order.
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// Longest wait between failed orders.
const MAX_RETRY: Duration = Duration::from_secs(3600);
/// Shortest wait before a renewal, so that a certificate already past two thirds of its life
/// (or a CA's clock ahead of ours) cannot make the loop spin.
const MIN_WAIT: Duration = Duration::from_secs(1);
/// Longest wait before a renewal (public certificates live at most 398 days).
const MAX_WAIT: Duration = Duration::from_secs(400 * 86_400);

/// How long from `now` until a certificate valid from `not_before` to `not_after` is renewed:
/// at two thirds of its lifetime (DESIGN §4.4).
pub(super) fn renew_in(not_before: u64, not_after: u64, now: u64) -> Duration {
    let lifetime = not_after.saturating_sub(not_before);
    let renew_at = not_before.saturating_add(lifetime / 3 * 2 + lifetime % 3 * 2 / 3);
    Duration::from_secs(renew_at.saturating_sub(now)).clamp(MIN_WAIT, MAX_WAIT)
}

/// Exponential backoff between failed orders: 10 s, doubling, at most an hour.
#[derive(Debug)]
pub(super) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST_RETRY }
    }
}

impl Backoff {
    /// The wait before the next attempt, doubling the one after.
    pub(super) fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(MAX_RETRY);
        wait
    }

    /// Back to the first wait, after a success.
    pub(super) fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_at_two_thirds_of_the_lifetime() {
        // 90 days from t=1000: renew 60 days in.
        let day = 86_400;
        assert_eq!(
            renew_in(1000, 1000 + 90 * day, 1000),
            Duration::from_secs(60 * day)
        );
        // Asked later, the wait is shorter.
        assert_eq!(
            renew_in(1000, 1000 + 90 * day, 1000 + 59 * day),
            Duration::from_secs(day)
        );
        // A 60-second certificate: 40 s.
        assert_eq!(renew_in(0, 60, 0), Duration::from_secs(40));
        assert_eq!(renew_in(0, 61, 0), Duration::from_secs(40));
    }

    #[test]
    fn never_waits_less_than_a_second() {
        assert_eq!(renew_in(0, 60, 59), MIN_WAIT);
        assert_eq!(renew_in(0, 60, 10_000), MIN_WAIT);
        // Nonsense validity (notAfter before notBefore): renew at notBefore; no overflow.
        assert_eq!(renew_in(100, 50, 0), Duration::from_secs(100));
        assert_eq!(renew_in(u64::MAX, u64::MAX, 0), MAX_WAIT);
    }

    #[test]
    fn backs_off_exponentially_to_an_hour() {
        let mut backoff = Backoff::default();
        let waits: Vec<u64> = (0..12).map(|_| backoff.next().as_secs()).collect();
        assert_eq!(
            waits,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]
        );
        backoff.reset();
        assert_eq!(backoff.next(), FIRST_RETRY);
    }
}
