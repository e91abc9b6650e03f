//! An exact token bucket for `max_rate_pps` (MESH2.md §7 item 8).
//!
//! Tokens are kept in units of 1/10⁹ of a token in a `u128`, so a refill of
//! `elapsed_ns × rate` is exact integer arithmetic that cannot overflow
//! (`Duration` holds < 2⁹⁴ ns and the rate < 2³²). The burst is one
//! second's worth of tokens. A clock that goes backwards refills nothing.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

const UNITS_PER_TOKEN: u128 = 1_000_000_000;

/// A refused take: when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit reached; next token in {retry_after:?}")]
pub struct RateLimited {
    /// Time until one more token is available.
    pub retry_after: Duration,
}

/// A token bucket refilling at `rate` tokens per second, holding at most
/// `rate` tokens.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u128,
    capacity: u128,
    level: u128,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate` per second.
    pub fn new(rate: NonZeroU32, now: Instant) -> Self {
        let rate = u128::from(rate.get());
        let capacity = rate * UNITS_PER_TOKEN;
        Self {
            rate,
            capacity,
            level: capacity,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        if elapsed == 0 {
            return;
        }
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.capacity);
        self.last = now;
    }

    /// The refill rate per second.
    pub fn rate(&self) -> NonZeroU32 {
        NonZeroU32::new(u32::try_from(self.rate).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
    }

    /// Takes one token at `now`.
    ///
    /// # Errors
    /// [`RateLimited`] with the wait until a token is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), RateLimited> {
        self.refill(now);
        if self.level >= UNITS_PER_TOKEN {
            self.level -= UNITS_PER_TOKEN;
            return Ok(());
        }
        let missing = UNITS_PER_TOKEN - self.level;
        let wait_ns = missing.div_ceil(self.rate);
        Err(RateLimited {
            retry_after: Duration::from_nanos(u64::try_from(wait_ns).unwrap_or(u64::MAX)),
        })
    }

    /// Whole tokens available at `now` (refills first).
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        u64::try_from(self.level / UNITS_PER_TOKEN).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rate(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn burst_then_exact_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(rate(3), t0);
        for _ in 0..3 {
            b.try_take(t0).unwrap();
        }
        let err = b.try_take(t0).unwrap_err();
        assert_eq!(err.retry_after, Duration::from_nanos(333_333_334));
        assert!(b.try_take(t0 + Duration::from_nanos(333_333_333)).is_err());
        b.try_take(t0 + Duration::from_nanos(333_333_334)).unwrap();
        // A backwards clock refills nothing and does not panic.
        assert!(b.try_take(t0).is_err());
    }

    #[test]
    fn extreme_rates_and_gaps_never_overflow() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(rate(u32::MAX), t0);
        assert_eq!(b.available(t0), u64::from(u32::MAX));
        let far = t0 + Duration::from_secs(u64::MAX / 4);
        assert_eq!(b.available(far), u64::from(u32::MAX));
        let mut slow = TokenBucket::new(rate(1), t0);
        slow.try_take(t0).unwrap();
        assert_eq!(
            slow.try_take(t0).unwrap_err().retry_after,
            Duration::from_secs(1)
        );
    }

    proptest! {
        /// Over any schedule, takes never exceed the burst plus what the
        /// elapsed time refills.
        #[test]
        fn never_more_than_burst_plus_refill(
            pps in 1u32..1000,
            steps in proptest::collection::vec(0u64..50_000_000, 1..200),
        ) {
            let t0 = Instant::now();
            let mut b = TokenBucket::new(rate(pps), t0);
            let mut now = t0;
            let mut taken: u128 = 0;
            for step in steps {
                now += Duration::from_nanos(step);
                if b.try_take(now).is_ok() {
                    taken += 1;
                }
            }
            let elapsed = now.duration_since(t0).as_nanos();
            let allowed = u128::from(pps) + elapsed * u128::from(pps) / UNITS_PER_TOKEN;
            prop_assert!(taken <= allowed);
        }
    }
}
