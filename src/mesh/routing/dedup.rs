//! Pingwave dedup by (origin, seq) (MESH2.md §2.2 step 5), one small
//! window per origin instead of v0.11's ever-growing set (§7 item 14), and
//! able to tell a restarted origin from a replay.

use std::time::{Duration, Instant};

/// Sequence numbers remembered below the highest one seen.
pub const SEQ_WINDOW: u64 = 64;

/// How a pingwave's sequence number relates to what we saw from its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeqVerdict {
    /// First copy of this (origin, seq): process and relay.
    New,
    /// Another copy of the newest (or the previous) sequence: it may
    /// refresh the route through its sender, but is not relayed again.
    RecentDuplicate,
    /// An old sequence (a late copy or a replay): ignored entirely.
    Stale,
}

/// The sequence numbers seen from one origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqWindow {
    highest: u64,
    /// Bit i set = `highest - i` seen (bit 0 is `highest`).
    seen: u64,
    highest_advanced_at: Instant,
}

impl SeqWindow {
    /// A window whose first sequence is `seq`, seen at `now`.
    pub fn new(seq: u64, now: Instant) -> Self {
        Self {
            highest: seq,
            seen: 1,
            highest_advanced_at: now,
        }
    }

    /// The highest sequence accepted so far.
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Records `seq` and says whether it is new. A sequence below the
    /// window is a restart of the origin (accepted, window reset) once the
    /// highest sequence has not advanced for `restart_after`; before that it
    /// is stale.
    pub fn observe(&mut self, seq: u64, now: Instant, restart_after: Duration) -> SeqVerdict {
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= SEQ_WINDOW {
                1
            } else {
                (self.seen << shift) | 1
            };
            self.highest = seq;
            self.highest_advanced_at = now;
            return SeqVerdict::New;
        }
        let behind = self.highest - seq;
        if behind < SEQ_WINDOW {
            let bit = 1u64 << behind;
            if self.seen & bit == 0 {
                self.seen |= bit;
                return if behind <= 1 {
                    SeqVerdict::New
                } else {
                    // A copy so late that its news is older than what we
                    // already relayed: do not flood it again.
                    SeqVerdict::Stale
                };
            }
            return if behind <= 1 {
                SeqVerdict::RecentDuplicate
            } else {
                SeqVerdict::Stale
            };
        }
        if now.saturating_duration_since(self.highest_advanced_at) >= restart_after {
            *self = Self::new(seq, now);
            return SeqVerdict::New;
        }
        SeqVerdict::Stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H2: Duration = Duration::from_secs(10);

    #[test]
    fn new_duplicate_and_stale() {
        let t0 = Instant::now();
        let mut w = SeqWindow::new(1, t0);
        assert_eq!(w.observe(1, t0, H2), SeqVerdict::RecentDuplicate);
        assert_eq!(w.observe(2, t0, H2), SeqVerdict::New);
        assert_eq!(w.observe(2, t0, H2), SeqVerdict::RecentDuplicate);
        assert_eq!(w.observe(1, t0, H2), SeqVerdict::RecentDuplicate);
        assert_eq!(w.observe(10, t0, H2), SeqVerdict::New);
        // 9 was never seen and is one behind: still news.
        assert_eq!(w.observe(9, t0, H2), SeqVerdict::New);
        assert_eq!(w.observe(5, t0, H2), SeqVerdict::Stale);
        assert_eq!(w.observe(2, t0, H2), SeqVerdict::Stale);
        assert_eq!(w.highest(), 10);
    }

    #[test]
    fn a_restarted_origin_is_accepted_after_two_quiet_intervals() {
        let t0 = Instant::now();
        let mut w = SeqWindow::new(500, t0);
        // Right after: a low sequence looks like a replay.
        assert_eq!(
            w.observe(1, t0 + Duration::from_secs(5), H2),
            SeqVerdict::Stale
        );
        // The old counter has been silent for 2 H: the origin restarted.
        assert_eq!(w.observe(1, t0 + H2, H2), SeqVerdict::New);
        assert_eq!(w.observe(2, t0 + H2, H2), SeqVerdict::New);
        assert_eq!(w.highest(), 2);
    }

    proptest! {
        /// Each sequence is New at most once while the window is not
        /// reset, whatever the order.
        #[test]
        fn each_sequence_is_new_at_most_once(seqs in proptest::collection::vec(0u64..200, 1..300)) {
            let t0 = Instant::now();
            let mut w = SeqWindow::new(seqs[0], t0);
            let mut news = std::collections::HashSet::new();
            news.insert(seqs[0]);
            for &s in &seqs[1..] {
                if w.observe(s, t0, H2) == SeqVerdict::New {
                    prop_assert!(news.insert(s), "{s} was New twice");
                }
            }
        }
    }
}
