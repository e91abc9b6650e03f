//! The failure detector of one peer (WIRE.md §6.3): refreshed only by
//! verified heartbeats; Suspected after 2 missed periods of the session
//! timeout T, Failed after 3; a Failed peer idle for more than 30 T is
//! evicted.

use std::time::{Duration, Instant};

/// Missed periods at which a peer is Suspected.
pub const SUSPECT_AFTER: u64 = 2;
/// Missed periods at which a peer is Failed.
pub const FAIL_AFTER: u64 = 3;
/// A Failed peer idle for this many periods is evicted.
pub const EVICT_AFTER: u32 = 30;

/// What the detector thinks of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Health {
    /// Heartbeats arrive.
    Alive,
    /// Two periods without a heartbeat.
    Suspected,
    /// Three or more.
    Failed,
}

impl Health {
    /// Lower-case name (used in the peers JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Alive => "alive",
            Health::Suspected => "suspected",
            Health::Failed => "failed",
        }
    }
}

/// One peer's detector.
#[derive(Debug, Clone, Copy)]
pub struct FailureDetector {
    last_heartbeat: Instant,
    timeout: Duration,
}

impl FailureDetector {
    /// A detector created with the session (counts as a heartbeat).
    pub fn new(now: Instant, timeout: Duration) -> Self {
        Self {
            last_heartbeat: now,
            timeout: timeout.max(Duration::from_millis(1)),
        }
    }

    /// A verified heartbeat arrived.
    pub fn heartbeat(&mut self, now: Instant) {
        self.last_heartbeat = self.last_heartbeat.max(now);
    }

    /// Whole timeout periods since the last heartbeat (0 until one passed).
    pub fn missed(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.last_heartbeat);
        if elapsed <= self.timeout {
            return 0;
        }
        (elapsed.as_nanos() / self.timeout.as_nanos()) as u64
    }

    /// The peer's health at `now`.
    pub fn health(&self, now: Instant) -> Health {
        match self.missed(now) {
            m if m >= FAIL_AFTER => Health::Failed,
            m if m >= SUSPECT_AFTER => Health::Suspected,
            _ => Health::Alive,
        }
    }

    /// Whether a peer whose session was last active at `last_activity`
    /// should be evicted now: Failed and idle for more than 30 T.
    pub fn should_evict(&self, now: Instant, last_activity: Instant) -> bool {
        self.health(now) == Health::Failed
            && now.saturating_duration_since(last_activity) > self.timeout * EVICT_AFTER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspected_at_two_failed_at_three_evicted_after_thirty() {
        let t0 = Instant::now();
        let t = Duration::from_secs(30);
        let mut d = FailureDetector::new(t0, t);
        assert_eq!(d.health(t0 + t), Health::Alive);
        assert_eq!(
            d.health(t0 + t * 2 - Duration::from_millis(1)),
            Health::Alive
        );
        assert_eq!(d.health(t0 + t * 2), Health::Suspected);
        assert_eq!(d.health(t0 + t * 3), Health::Failed);
        assert!(!d.should_evict(t0 + t * 30, t0));
        assert!(d.should_evict(t0 + t * 30 + Duration::from_millis(1), t0));
        // Not Failed → never evicted, however idle.
        d.heartbeat(t0 + t * 100);
        assert_eq!(d.health(t0 + t * 100), Health::Alive);
        assert!(!d.should_evict(t0 + t * 100, t0));
        // A heartbeat never moves the clock backwards.
        d.heartbeat(t0);
        assert_eq!(d.health(t0 + t * 101), Health::Alive);
    }
}
