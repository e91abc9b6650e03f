//! A sliding-window sum: the rate limiter under every safety limit
//! (COMPUTE.md §4.6, fixing §8 item 11).
//!
//! v0.11 counts in fixed 60 s windows reset by the first caller after
//! expiry (a burst of twice the limit fits across a boundary), packs a
//! per-source count and window floor into one atomic (a new window admits
//! one request even with limit 0), and rolls back with a raw subtraction
//! that wraps. This window instead keeps the amounts admitted per time
//! bucket of `granularity_ms` and sums every bucket that may hold an
//! admission inside `(now − window, now]`, so the total admitted in
//! **any** window-long interval never exceeds the limit: exact with a
//! 1 ms granularity, conservative (a bucket counts until all of it has
//! left) with coarser ones. Memory is bounded by the number of non-empty
//! buckets, at most `window / granularity + 1`. Refunds find their bucket
//! and subtract saturating; a refund for a bucket that already left the
//! window does nothing, so nothing ever wraps.

use std::collections::VecDeque;

/// A window's admission bookkeeping. Not synchronized: the envelope keeps
/// it under its lock.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    window_ms: u64,
    granularity_ms: u64,
    /// (bucket index = t / granularity, amount), increasing indices.
    buckets: VecDeque<(u64, u64)>,
    total: u64,
}

/// Where an admission was recorded, for a later refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    bucket: u64,
    amount: u64,
}

impl Receipt {
    /// The amount recorded.
    pub fn amount(&self) -> u64 {
        self.amount
    }
}

impl SlidingWindow {
    /// A window of `window_ms` (≥ 1) counted in buckets of
    /// `granularity_ms` (clamped to 1..=window_ms).
    pub fn new(window_ms: u64, granularity_ms: u64) -> Self {
        let window_ms = window_ms.max(1);
        Self {
            window_ms,
            granularity_ms: granularity_ms.clamp(1, window_ms),
            buckets: VecDeque::new(),
            total: 0,
        }
    }

    /// Drops buckets wholly outside `(now − window, now]`.
    pub fn evict(&mut self, now_ms: u64) {
        // An admission at t is outside once now − t ≥ window, i.e.
        // t ≤ now − window; a bucket is wholly outside once its last
        // millisecond is.
        let Some(oldest_inside) = now_ms.checked_sub(self.window_ms - 1) else {
            return;
        };
        let g = self.granularity_ms;
        while let Some(&(bucket, amount)) = self.buckets.front() {
            let last_ms = bucket.saturating_mul(g).saturating_add(g - 1);
            if last_ms >= oldest_inside {
                break;
            }
            self.total = self.total.saturating_sub(amount);
            self.buckets.pop_front();
        }
    }

    /// Total admitted inside the window (call [`SlidingWindow::evict`]
    /// first).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether `amount` more fits under `limit` (after evicting).
    pub fn fits(&self, amount: u64, limit: u64) -> bool {
        self.total.checked_add(amount).is_some_and(|t| t <= limit)
    }

    /// Records `amount` at `now_ms` (saturating). A time earlier than the
    /// newest bucket is recorded in the newest one, which leaves last.
    pub fn record(&mut self, now_ms: u64, amount: u64) -> Receipt {
        let mut bucket = now_ms / self.granularity_ms;
        match self.buckets.back_mut() {
            Some((last, sum)) if *last >= bucket => {
                bucket = *last;
                *sum = sum.saturating_add(amount);
            }
            _ => self.buckets.push_back((bucket, amount)),
        }
        self.total = self.total.saturating_add(amount);
        Receipt { bucket, amount }
    }

    /// Gives back up to `amount` of an earlier admission, if its bucket is
    /// still in the window. Never wraps.
    pub fn refund(&mut self, receipt: Receipt, amount: u64) {
        let amount = amount.min(receipt.amount);
        if let Ok(at) = self
            .buckets
            .binary_search_by_key(&receipt.bucket, |&(b, _)| b)
        {
            let sum = &mut self.buckets[at].1;
            let taken = amount.min(*sum);
            *sum -= taken;
            self.total = self.total.saturating_sub(taken);
        }
    }

    /// Nothing inside the window.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_at_the_window_edge() {
        let mut w = SlidingWindow::new(1_000, 1);
        for t in [100, 500, 999] {
            w.evict(t);
            assert!(w.fits(1, 3));
            w.record(t, 1);
        }
        w.evict(1_099);
        assert!(!w.fits(1, 3), "t=100 is still inside at 1099");
        w.evict(1_100);
        assert!(w.fits(1, 3), "t=100 leaves exactly at 1100");
        assert_eq!(w.total(), 2);
    }

    #[test]
    fn refunds_never_wrap() {
        let mut w = SlidingWindow::new(60_000, 1);
        let r = w.record(10, 5);
        w.refund(r, 3);
        assert_eq!(w.total(), 2);
        w.refund(r, 100); // capped by the receipt and the bucket
        assert_eq!(w.total(), 0);
        let r2 = w.record(20, 4);
        w.evict(100_000); // gone
        assert_eq!(w.total(), 0);
        w.refund(r2, 4);
        assert_eq!(w.total(), 0);
        w.record(100_000, 1);
        w.refund(r2, 4);
        assert_eq!(w.total(), 1);
    }

    #[test]
    fn limit_zero_admits_nothing() {
        let w = SlidingWindow::new(60_000, 1);
        assert!(!w.fits(1, 0));
        assert!(w.fits(0, 0));
    }

    #[test]
    fn early_times_and_extremes() {
        let mut w = SlidingWindow::new(u64::MAX, 1_000);
        w.record(0, u64::MAX);
        w.record(u64::MAX, u64::MAX);
        w.evict(u64::MAX);
        assert_eq!(w.total(), u64::MAX);
        let mut w = SlidingWindow::new(10, 1);
        w.record(50, 1);
        w.record(40, 1); // backwards: joins the newest bucket
        w.evict(59);
        assert_eq!(w.total(), 2);
        w.evict(60);
        assert_eq!(w.total(), 0);
    }

    proptest! {
        // Admit whatever fits at random increasing times; the model checks
        // every window-long interval ending at an admission.
        #[test]
        fn never_over_the_limit_in_any_window(
            gaps in prop::collection::vec(0u64..400, 1..300),
            amounts in prop::collection::vec(1u64..4, 300),
            limit in 0u64..12,
            window in 1u64..2_000,
            granularity in prop::sample::select(vec![1u64, 7, 100]),
        ) {
            let mut w = SlidingWindow::new(window, granularity);
            let mut admitted: Vec<(u64, u64)> = Vec::new();
            let mut now = 0u64;
            for (gap, amount) in gaps.iter().zip(&amounts) {
                now += gap;
                w.evict(now);
                if w.fits(*amount, limit) {
                    w.record(now, *amount);
                    admitted.push((now, *amount));
                }
            }
            for &(end, _) in &admitted {
                let inside: u64 = admitted
                    .iter()
                    .filter(|&&(t, _)| t <= end && end - t < window)
                    .map(|&(_, a)| a)
                    .sum();
                prop_assert!(inside <= limit, "{inside} > {limit} in the window ending at {end}");
            }
            // With 1 ms buckets the window is exact: a request is refused
            // only when it truly would not fit.
            if granularity == 1 {
                let mut w = SlidingWindow::new(window, 1);
                let mut log: Vec<(u64, u64)> = Vec::new();
                let mut now = 0u64;
                for (gap, amount) in gaps.iter().zip(&amounts) {
                    now += gap;
                    let inside: u64 = log.iter().filter(|&&(t, _)| now - t < window).map(|&(_, a)| a).sum();
                    w.evict(now);
                    prop_assert_eq!(w.total(), inside);
                    let fits = inside + amount <= limit;
                    prop_assert_eq!(w.fits(*amount, limit), fits);
                    if fits {
                        w.record(now, *amount);
                        log.push((now, *amount));
                    }
                }
            }
        }
    }
}
