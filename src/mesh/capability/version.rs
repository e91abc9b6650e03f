//! Announcement versions that survive a restart (MESH2.md §7 item 15).
//!
//! v0.11 counts from 1 in every process, so after a restart its peers
//! ignore it until the old version record expires (up to ~11 min). We use
//! **time-based** versions: `version = max(previous + 1, now in UNIX
//! milliseconds)`. A restarted node therefore starts above anything it
//! announced before (unless its wall clock went back), needs no disk, and
//! still emits a plain u64 that v0.11 receivers compare as before. A node
//! that must also survive a clock step backwards persists
//! [`VersionClock::last`] and passes it to [`VersionClock::resume`].

/// Hands out strictly increasing, restart-surviving announcement versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionClock {
    last: u64,
}

impl VersionClock {
    /// A clock for a fresh process (no persisted state).
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock continuing from a persisted `last` version.
    pub fn resume(last: u64) -> Self {
        Self { last }
    }

    /// The next version at wall-clock time `now_unix_ns`: strictly greater
    /// than every version handed out before and at least `now` in
    /// milliseconds. Saturates at `u64::MAX` (never reached in practice).
    pub fn next(&mut self, now_unix_ns: u64) -> u64 {
        let now_ms = now_unix_ns / 1_000_000;
        self.last = self.last.saturating_add(1).max(now_ms);
        self.last
    }

    /// The last version handed out (0 before the first).
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn strictly_increasing_even_within_one_millisecond() {
        let mut clock = VersionClock::new();
        let t = 1_700_000_000 * SECOND;
        let a = clock.next(t);
        let b = clock.next(t);
        let c = clock.next(t + 1);
        assert_eq!(a, 1_700_000_000_000);
        assert!(a < b && b < c);
    }

    #[test]
    fn a_restarted_process_starts_above_its_previous_life() {
        let mut before = VersionClock::new();
        let t = 1_700_000_000 * SECOND;
        let mut last = 0;
        for i in 0..100 {
            last = before.next(t + i);
        }
        // The restart happens at least a second later.
        let mut after = VersionClock::new();
        assert!(after.next(t + SECOND) > last);
    }

    #[test]
    fn resume_survives_a_clock_step_backwards() {
        let mut clock = VersionClock::resume(5_000_000_000_000);
        assert_eq!(clock.next(SECOND), 5_000_000_000_001);
        assert_eq!(VersionClock::resume(u64::MAX).next(0), u64::MAX);
    }
}
