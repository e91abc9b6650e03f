//! The per-peer auth-failure throttle (MESH2.md §1.3): failures are
//! counted in a window that opens at the first failure and restarts once
//! it has passed; reaching the limit throttles the peer for a while; a
//! success clears the record. Bounded: at most `max_records` peers are
//! remembered, the stalest record going first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The limit that disables throttling.
pub const THROTTLE_DISABLED: u16 = u16::MAX;

#[derive(Debug, Clone, Copy)]
struct Record {
    window_start: Instant,
    failures: u16,
    throttled_until: Option<Instant>,
}

/// Auth-failure records of the peers that failed recently.
#[derive(Debug)]
pub struct AuthThrottle {
    max_failures: u16,
    window: Duration,
    throttle_for: Duration,
    max_records: usize,
    records: HashMap<u64, Record>,
}

impl AuthThrottle {
    /// `max_failures` within `window` throttle a peer for `throttle_for`;
    /// [`THROTTLE_DISABLED`] turns it off.
    pub fn new(
        max_failures: u16,
        window: Duration,
        throttle_for: Duration,
        max_records: usize,
    ) -> Self {
        Self {
            max_failures,
            window,
            throttle_for,
            max_records,
            records: HashMap::new(),
        }
    }

    /// Whether `peer` is throttled at `now`. An elapsed throttle resets the
    /// peer's record.
    pub fn is_throttled(&mut self, peer: u64, now: Instant) -> bool {
        let Some(record) = self.records.get(&peer) else {
            return false;
        };
        match record.throttled_until {
            Some(until) if now < until => true,
            Some(_) => {
                self.records.remove(&peer);
                false
            }
            None => false,
        }
    }

    /// Counts a failure of `peer`.
    pub fn record_failure(&mut self, peer: u64, now: Instant) {
        if self.max_failures == THROTTLE_DISABLED || self.max_records == 0 {
            return;
        }
        if !self.records.contains_key(&peer) && self.records.len() >= self.max_records {
            self.evict_stalest();
        }
        let record = self.records.entry(peer).or_insert(Record {
            window_start: now,
            failures: 0,
            throttled_until: None,
        });
        if now.saturating_duration_since(record.window_start) >= self.window {
            record.window_start = now;
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        if record.failures >= self.max_failures {
            record.throttled_until = Some(now + self.throttle_for);
        }
    }

    /// A success clears `peer`'s record.
    pub fn record_success(&mut self, peer: u64) {
        self.records.remove(&peer);
    }

    /// Forgets `peer` (its session is gone).
    pub fn forget(&mut self, peer: u64) {
        self.records.remove(&peer);
    }

    /// Peers currently remembered.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no peer is remembered.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn evict_stalest(&mut self) {
        // A throttled peer is never the one forgotten while others exist.
        let victim = self
            .records
            .iter()
            .min_by_key(|(_, r)| (r.throttled_until.is_some(), r.window_start))
            .map(|(peer, _)| *peer);
        if let Some(peer) = victim {
            self.records.remove(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> AuthThrottle {
        AuthThrottle::new(16, Duration::from_secs(60), Duration::from_secs(30), 8)
    }

    #[test]
    fn sixteen_failures_throttle_for_thirty_seconds() {
        let t0 = Instant::now();
        let mut t = throttle();
        for _ in 0..15 {
            t.record_failure(1, t0);
        }
        assert!(!t.is_throttled(1, t0));
        t.record_failure(1, t0);
        assert!(t.is_throttled(1, t0));
        assert!(t.is_throttled(1, t0 + Duration::from_secs(29)));
        assert!(!t.is_throttled(1, t0 + Duration::from_secs(30)));
        // The elapsed throttle reset the record: one failure is not enough.
        t.record_failure(1, t0 + Duration::from_secs(31));
        assert!(!t.is_throttled(1, t0 + Duration::from_secs(31)));
    }

    #[test]
    fn the_window_restarts_and_success_clears() {
        let t0 = Instant::now();
        let mut t = throttle();
        for _ in 0..15 {
            t.record_failure(1, t0);
        }
        t.record_failure(1, t0 + Duration::from_secs(60));
        assert!(!t.is_throttled(1, t0 + Duration::from_secs(60)));
        for _ in 0..14 {
            t.record_failure(2, t0);
        }
        t.record_success(2);
        t.record_failure(2, t0);
        t.record_failure(2, t0);
        assert!(!t.is_throttled(2, t0));
    }

    #[test]
    fn disabled_and_bounded() {
        let t0 = Instant::now();
        let mut off = AuthThrottle::new(THROTTLE_DISABLED, Duration::ZERO, Duration::ZERO, 8);
        for _ in 0..100_000 {
            off.record_failure(1, t0);
        }
        assert!(!off.is_throttled(1, t0));
        let mut t = throttle();
        for peer in 0..100 {
            t.record_failure(peer, t0);
        }
        assert_eq!(t.len(), 8);
        // Zero durations do not crash.
        let mut zero = AuthThrottle::new(1, Duration::ZERO, Duration::ZERO, 8);
        zero.record_failure(1, t0);
        assert!(!zero.is_throttled(1, t0));
    }
}
