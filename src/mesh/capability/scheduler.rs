//! The broadcast limiter for our own announcements (MESH2.md §3.1 step 2,
//! §7 item 16): at most one broadcast per `min_interval`, and an update
//! that arrives inside the interval is **deferred**, not dropped as v0.11
//! does. Only the latest deferred update is kept (it supersedes the
//! others), and it goes out as soon as the interval has passed.
//!
//! Pure: the node calls [`AnnounceScheduler::offer`] when the application
//! announces, arms a timer for [`AnnounceScheduler::next_due`], and calls
//! [`AnnounceScheduler::due`] when it fires.

use std::time::{Duration, Instant};

/// Default `min_announce_interval` (MESH2.md §6).
pub const DEFAULT_MIN_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(10);

/// Rate-limits broadcasts of `T` (an announcement, or its encoded bytes).
#[derive(Debug, Clone)]
pub struct AnnounceScheduler<T> {
    min_interval: Duration,
    last_broadcast: Option<Instant>,
    pending: Option<T>,
}

impl<T> AnnounceScheduler<T> {
    /// A limiter allowing one broadcast per `min_interval` (zero allows
    /// every offer through at once).
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            last_broadcast: None,
            pending: None,
        }
    }

    /// The application announced `update` at `now`. Returns it when it may
    /// be broadcast now (the caller broadcasts it); otherwise keeps it as
    /// the pending update, replacing any older pending one, and returns
    /// `None`.
    pub fn offer(&mut self, update: T, now: Instant) -> Option<T> {
        if self.may_broadcast(now) {
            self.pending = None;
            self.last_broadcast = Some(now);
            Some(update)
        } else {
            self.pending = Some(update);
            None
        }
    }

    /// The deferred update, once its interval has passed (the caller
    /// broadcasts it). `None` when nothing is pending or it is too early.
    pub fn due(&mut self, now: Instant) -> Option<T> {
        if self.pending.is_some() && self.may_broadcast(now) {
            self.last_broadcast = Some(now);
            self.pending.take()
        } else {
            None
        }
    }

    /// When [`due`](Self::due) will next return something (`now` if it
    /// already would); `None` when nothing is pending (no timer needed).
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        self.pending.as_ref()?;
        Some(
            self.last_broadcast
                .map_or(now, |last| (last + self.min_interval).max(now)),
        )
    }

    /// Whether an update is waiting.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Forgets the last broadcast time, so the next offer (or the pending
    /// update) goes out at once. v0.11 does this when the reflex override
    /// is set or cleared.
    pub fn reset(&mut self) {
        self.last_broadcast = None;
    }

    fn may_broadcast(&self, now: Instant) -> bool {
        self.last_broadcast
            .is_none_or(|last| now.saturating_duration_since(last) >= self.min_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_the_interval_the_latest_update_is_deferred_not_dropped() {
        let t0 = Instant::now();
        let ten = DEFAULT_MIN_ANNOUNCE_INTERVAL;
        let mut s = AnnounceScheduler::new(ten);
        assert_eq!(s.offer(1, t0), Some(1));
        assert_eq!(s.next_due(t0), None);
        // A burst of updates within the interval: only the last survives.
        for v in 2..=10 {
            assert_eq!(s.offer(v, t0 + Duration::from_millis(v)), None);
        }
        assert_eq!(s.next_due(t0), Some(t0 + ten));
        assert_eq!(s.due(t0 + ten - Duration::from_millis(1)), None);
        assert_eq!(s.due(t0 + ten), Some(10));
        assert_eq!(s.due(t0 + ten * 5), None);
        // The deferred broadcast restarted the interval.
        assert_eq!(s.offer(11, t0 + ten + Duration::from_secs(1)), None);
        assert_eq!(s.next_due(t0 + ten), Some(t0 + ten * 2));
    }

    #[test]
    fn reset_releases_the_pending_update() {
        let t0 = Instant::now();
        let mut s = AnnounceScheduler::new(Duration::from_secs(10));
        assert_eq!(s.offer("a", t0), Some("a"));
        assert_eq!(s.offer("b", t0), None);
        s.reset();
        assert_eq!(s.due(t0), Some("b"));
        assert!(!s.has_pending());
    }

    #[test]
    fn zero_interval_never_defers() {
        let t0 = Instant::now();
        let mut s = AnnounceScheduler::new(Duration::ZERO);
        assert_eq!(s.offer(1, t0), Some(1));
        assert_eq!(s.offer(2, t0), Some(2));
    }
}
