//! Key epochs: the wall clock cut into equal lengths from the Unix epoch, so every replica
//! knows the current epoch without asking another (DESIGN §10: they "rotate in lockstep
//! without further coordination"). Pure arithmetic; the clock is the caller's.

use std::time::Duration;

/// Key ids per epoch: two (X25519, P-256), cycling through 1..=254 so that the previous, the
/// current and the next epoch never share one.
const EPOCHS_PER_ID_CYCLE: u64 = 127;

/// The epoch length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Epochs {
    length_secs: u64,
}

impl Epochs {
    /// Epochs of `length` (whole seconds, at least one).
    pub(crate) fn new(length: Duration) -> Epochs {
        Epochs {
            length_secs: length.as_secs().max(1),
        }
    }

    /// The epoch length.
    pub(crate) fn length(self) -> Duration {
        Duration::from_secs(self.length_secs)
    }

    /// The epoch at `since_unix` (the time since 1970-01-01T00:00:00Z).
    pub(crate) fn at(self, since_unix: Duration) -> u64 {
        since_unix.as_secs() / self.length_secs
    }

    /// How long from `since_unix` until the next epoch starts.
    pub(crate) fn until_next(self, since_unix: Duration) -> Duration {
        let next = self
            .at(since_unix)
            .saturating_add(1)
            .saturating_mul(self.length_secs);
        Duration::from_secs(next).saturating_sub(since_unix)
    }
}

/// The key ids of `epoch`'s X25519 and P-256 keys: every replica derives the same ones.
pub(crate) fn key_ids(epoch: u64) -> (u8, u8) {
    // `epoch % 127` is below 127, so `2 * it + 2` is at most 254.
    let slot = u8::try_from(epoch % EPOCHS_PER_ID_CYCLE).unwrap_or(0);
    let first = slot * 2 + 1;
    (first, first + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_follow_the_wall_clock() {
        let epochs = Epochs::new(Duration::from_secs(10));
        assert_eq!(epochs.at(Duration::from_secs(0)), 0);
        assert_eq!(epochs.at(Duration::from_millis(9_999)), 0);
        assert_eq!(epochs.at(Duration::from_secs(10)), 1);
        assert_eq!(
            epochs.until_next(Duration::from_millis(12_500)),
            Duration::from_millis(7_500)
        );
        assert_eq!(
            epochs.until_next(Duration::from_secs(20)),
            Duration::from_secs(10)
        );
        assert_eq!(Epochs::new(Duration::ZERO).length(), Duration::from_secs(1));
    }

    #[test]
    fn neighbouring_epochs_never_share_a_key_id() {
        for epoch in 0..1_000_u64 {
            let (a, b) = key_ids(epoch);
            assert!((1..=254).contains(&a) && b == a + 1, "{epoch}");
            for other in [epoch + 1, epoch + 2] {
                let (c, d) = key_ids(other);
                assert!(
                    ![a, b].contains(&c) && ![a, b].contains(&d),
                    "{epoch} {other}"
                );
            }
        }
        assert_eq!(key_ids(u64::MAX).0 % 2, 1);
    }
}
