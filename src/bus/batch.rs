//! Adaptive batch sizing: the target grows with the ingest rate so that a
//! batch fills in about `max_delay`, between `min_size` and `max_size`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::config::BatchConfig;

/// How far back velocity samples reach.
const SAMPLE_WINDOW: Duration = Duration::from_secs(1);

/// Tracks a shard's ingest velocity and derives its batch target.
#[derive(Debug)]
pub struct BatchSizer {
    config: BatchConfig,
    /// (when, events drained then): bounded by count and by age.
    samples: VecDeque<(Instant, usize)>,
    target: usize,
}

impl BatchSizer {
    /// A sizer starting at `min_size`.
    pub fn new(config: BatchConfig) -> Self {
        Self {
            config,
            samples: VecDeque::with_capacity(config.max_velocity_samples),
            target: config.min_size,
        }
    }

    /// The current target batch size.
    pub fn target(&self) -> usize {
        self.target
    }

    /// Samples kept (for tests: never above the count cap).
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Records that `events` were drained at `now` and recomputes the
    /// target.
    pub fn record(&mut self, now: Instant, events: usize) {
        if !self.config.adaptive {
            return;
        }
        self.samples.push_back((now, events));
        while self.samples.len() > self.config.max_velocity_samples {
            self.samples.pop_front();
        }
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > SAMPLE_WINDOW)
        {
            self.samples.pop_front();
        }
        let Some(&(oldest, _)) = self.samples.front() else {
            return;
        };
        let span = now.saturating_duration_since(oldest).as_secs_f64();
        if span <= 0.0 {
            return;
        }
        let total: usize = self.samples.iter().map(|(_, n)| n).sum();
        let per_sec = total as f64 / span;
        let wanted = per_sec * self.config.max_delay().as_secs_f64();
        self.target = (wanted as usize).clamp(self.config.min_size, self.config.max_size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_follows_velocity_within_bounds_and_samples_are_capped() {
        let config = BatchConfig {
            min_size: 10,
            max_size: 1000,
            max_delay_ms: 10,
            adaptive: true,
            max_velocity_samples: 16,
        };
        let mut s = BatchSizer::new(config);
        let t0 = Instant::now();
        // 50 000 events/s for 10 ms batches: target 500.
        for i in 0..100u64 {
            s.record(t0 + Duration::from_millis(i), 50);
        }
        assert!(s.sample_count() <= 16, "count cap holds under a burst");
        assert!((400..=600).contains(&s.target()), "target {}", s.target());
        // A flood saturates at max_size; a trickle falls to min_size.
        for i in 0..100u64 {
            s.record(t0 + Duration::from_millis(100 + i), 100_000);
        }
        assert_eq!(s.target(), 1000);
        for i in 0..20u64 {
            s.record(t0 + Duration::from_secs(5 + i), 1);
        }
        assert_eq!(s.target(), 10);
    }

    #[test]
    fn fixed_when_not_adaptive() {
        let mut s = BatchSizer::new(BatchConfig {
            adaptive: false,
            ..BatchConfig::default()
        });
        s.record(Instant::now(), 1_000_000);
        assert_eq!(s.target(), BatchConfig::default().min_size);
    }
}
