//! Per-shard timestamps and id counters.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Strictly increasing nanosecond timestamps for one shard: wall-clock time
/// captured once at construction, advanced by the monotonic clock (so a
/// wall-clock step never reorders a shard), and bumped by one when two
/// events land in the same nanosecond. Saturates at `u64::MAX` (the year
/// 2554) instead of wrapping.
#[derive(Debug)]
pub struct TimestampGenerator {
    base_wall_ns: u64,
    base: Instant,
    last: u64,
}

impl Default for TimestampGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl TimestampGenerator {
    /// A generator whose baseline is now.
    pub fn new() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self {
            base_wall_ns: wall,
            base: Instant::now(),
            last: 0,
        }
    }

    /// The next timestamp: greater than every earlier one (until
    /// saturation).
    pub fn next_timestamp(&mut self) -> u64 {
        let elapsed = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let now = self.base_wall_ns.saturating_add(elapsed);
        self.last = now.max(self.last.saturating_add(1));
        self.last
    }
}

/// A counter handing out ids that never repeat: at the end of its range it
/// reports exhaustion instead of wrapping back to reused ids.
#[derive(Debug, Clone)]
pub struct IdCounter {
    next: Option<u64>,
    max: u64,
}

impl IdCounter {
    /// Ids `first..=max`.
    pub fn new(first: u64, max: u64) -> Self {
        Self {
            next: (first <= max).then_some(first),
            max,
        }
    }

    /// The next id, or `None` once the range is used up.
    pub fn next_id(&mut self) -> Option<u64> {
        let id = self.next?;
        self.next = id.checked_add(1).filter(|n| *n <= self.max);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_strictly_increasing_from_a_real_baseline() {
        let mut g = TimestampGenerator::new();
        let first = g.next_timestamp();
        assert!(
            first > 1_600_000_000_000_000_000,
            "baseline is wall-clock time"
        );
        let mut last = first;
        for _ in 0..10_000 {
            let t = g.next_timestamp();
            assert!(t > last);
            last = t;
        }
    }

    #[test]
    fn timestamps_saturate_instead_of_wrapping() {
        let mut g = TimestampGenerator::new();
        g.last = u64::MAX - 1;
        assert_eq!(g.next_timestamp(), u64::MAX);
        assert_eq!(g.next_timestamp(), u64::MAX);
    }

    #[test]
    fn ids_saturate_instead_of_reusing() {
        let mut c = IdCounter::new(u64::MAX - 1, u64::MAX);
        assert_eq!(c.next_id(), Some(u64::MAX - 1));
        assert_eq!(c.next_id(), Some(u64::MAX));
        assert_eq!(c.next_id(), None);
        assert_eq!(c.next_id(), None);
        let mut small = IdCounter::new(0, 2);
        assert_eq!(
            (0..4).map(|_| small.next_id()).collect::<Vec<_>>(),
            vec![Some(0), Some(1), Some(2), None]
        );
    }
}
