//! Retry delays: exponential from the base, doubling per receive, capped, full jitter.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The capped delay before receive number `receive_count + 1`, without jitter.
    pub fn ceiling(&self, receive_count: u32) -> Duration {
        let steps = receive_count.saturating_sub(1) as usize;
        ExponentialBuilder::new()
            .with_min_delay(self.base)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(steps)
            .unwrap_or(self.max)
    }

    /// Full jitter: uniformly anywhere from zero to the ceiling.
    pub fn delay(&self, receive_count: u32) -> Duration {
        let ceiling = self.ceiling(receive_count).as_millis() as u64;
        Duration::from_millis(fastrand::u64(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_receive_and_caps() {
        let b = Backoff { base: Duration::from_millis(1000), max: Duration::from_millis(60_000) };
        assert_eq!(b.ceiling(1), Duration::from_millis(1000));
        assert_eq!(b.ceiling(2), Duration::from_millis(2000));
        assert_eq!(b.ceiling(4), Duration::from_millis(8000));
        assert_eq!(b.ceiling(7), Duration::from_millis(60_000));
        assert_eq!(b.ceiling(40), Duration::from_millis(60_000));
    }

    #[test]
    fn jitter_stays_within_the_ceiling_and_varies() {
        let b = Backoff { base: Duration::from_millis(1000), max: Duration::from_millis(60_000) };
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(4000)));
        assert!(delays.iter().any(|d| *d < Duration::from_millis(2000)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(2000)));
    }
}
