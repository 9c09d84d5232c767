//! Per-caller rate limits on commands (docs/contract.md §5): a keyed GCRA limiter by
//! `sub`, checked in [`crate::idempotency::admit`] before anything is stored, so a
//! refused command leaves its `Idempotency-Key` free. The limit is per process: a fleet
//! of N ingress tasks admits up to N times it, and the global limit belongs in front of
//! them (the load balancer's WAF rule, see terraform).

use crate::problem::ApiError;
use domain::ids::UserId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many checks pass between two prunings of callers that are back to a full bucket.
const PRUNE_EVERY: u64 = 4096;

/// The command rate limit of one ingress process.
pub struct RateLimit {
    /// `None`: unlimited (`USHER_RATE_LIMIT=0`).
    limiter: Option<DefaultKeyedRateLimiter<UserId>>,
    checks: AtomicU64,
}

impl RateLimit {
    /// `per_second` commands per caller, in bursts of up to `burst`; 0 per second means
    /// no limit (benchmarks, fuzzing).
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { limiter, checks: AtomicU64::new(0) }
    }

    /// Takes one command from `caller`'s allowance, or says how long to wait.
    pub fn check(&self, caller: &UserId) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(caller).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Whole seconds, rounded up, and at least one: `Retry-After` has no fractions.
            ApiError::RateLimited { retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_caller_waits_and_others_do_not() {
        let limit = RateLimit::new(1, 3);
        let alice = UserId::new("alice");
        for _ in 0..3 {
            limit.check(&alice).expect("within the burst");
        }
        match limit.check(&alice) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!((1..=2).contains(&retry_after_secs)),
            other => panic!("{other:?}"),
        }
        limit.check(&UserId::new("bob")).expect("bob has his own allowance");
    }

    #[test]
    fn zero_means_unlimited() {
        let limit = RateLimit::new(0, 0);
        let alice = UserId::new("alice");
        for _ in 0..10_000 {
            limit.check(&alice).unwrap();
        }
    }
}
