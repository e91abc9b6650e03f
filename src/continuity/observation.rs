//! Observation windows and propagation estimates (COMPUTE.md §5
//! "Observation window", "Propagation"; §7 defaults).
//!
//! An [`ObservationWindow`] is what a node has seen of each origin: the
//! highest sequence, when it last heard from it and how long events take
//! to arrive from there. [`PropagationModel`] estimates that delay from the
//! hop count and how many subnet levels a path crosses, calibrated by
//! measured round trips.
//!
//! Departure from v0.11 (§8 item 18): the horizon is bounded along with
//! the timing data — at most [`MAX_TRACKED_ORIGINS`] origins, the one heard
//! from longest ago evicted first — where v0.11 caps only the timing data
//! and lets the horizon grow with every origin ever seen.

use std::collections::{BTreeMap, BTreeSet};

use crate::mesh::channels::SubnetId;

/// Origins tracked at once (§7 "Continuity: tracked origins").
pub const MAX_TRACKED_ORIGINS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    seq: u64,
    last_seen_ms: u64,
    delay_ms: u64,
}

/// How two windows differ.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HorizonDivergence {
    /// Origins only this window has seen, ascending.
    pub only_here: Vec<u64>,
    /// Origins only the other window has seen, ascending.
    pub only_there: Vec<u64>,
    /// Origins both have seen.
    pub common: usize,
    /// Σ |seq here − seq there| over the common origins (saturating).
    pub seq_distance: u64,
}

/// The highest sequence seen per origin, with when and how late.
#[derive(Debug, Clone, Default)]
pub struct ObservationWindow {
    seen: BTreeMap<u64, Seen>,
    by_age: BTreeSet<(u64, u64)>,
}

impl ObservationWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `origin`'s event `seq` seen at `now_ms`, with the delay
    /// estimated for events from there. The sequence only moves up.
    pub fn observe(&mut self, origin: u64, seq: u64, now_ms: u64, estimated_delay_ms: u64) {
        let previous = self.seen.get(&origin).copied();
        if let Some(old) = previous {
            self.by_age.remove(&(old.last_seen_ms, origin));
        } else if self.seen.len() == MAX_TRACKED_ORIGINS
            && let Some((_, oldest)) = self.by_age.pop_first()
        {
            self.seen.remove(&oldest);
        }
        let entry = Seen {
            seq: previous.map_or(seq, |old| old.seq.max(seq)),
            last_seen_ms: previous.map_or(now_ms, |old| old.last_seen_ms.max(now_ms)),
            delay_ms: estimated_delay_ms,
        };
        self.by_age.insert((entry.last_seen_ms, origin));
        self.seen.insert(origin, entry);
    }

    /// The highest sequence seen from `origin`.
    pub fn seq(&self, origin: u64) -> Option<u64> {
        self.seen.get(&origin).map(|s| s.seq)
    }

    /// Origins tracked.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Whether what we know of `origin` is fresh enough to trust at
    /// `now_ms`: staleness ≤ `max_delay_ms` + its estimated delay. An
    /// origin never seen is not.
    pub fn within_cone(&self, origin: u64, now_ms: u64, max_delay_ms: u64) -> bool {
        self.seen.get(&origin).is_some_and(|s| {
            now_ms.saturating_sub(s.last_seen_ms) <= max_delay_ms.saturating_add(s.delay_ms)
        })
    }

    /// How this window differs from `other`.
    pub fn divergence(&self, other: &ObservationWindow) -> HorizonDivergence {
        let mut out = HorizonDivergence::default();
        for (&origin, here) in &self.seen {
            match other.seen.get(&origin) {
                Some(there) => {
                    out.common += 1;
                    out.seq_distance = out
                        .seq_distance
                        .saturating_add(here.seq.abs_diff(there.seq));
                }
                None => out.only_here.push(origin),
            }
        }
        out.only_there = other
            .seen
            .keys()
            .filter(|origin| !self.seen.contains_key(origin))
            .copied()
            .collect();
        out
    }

    /// (origin, highest sequence), ascending: the exact horizon a
    /// partition record keeps.
    pub fn horizon(&self) -> Vec<(u64, u64)> {
        self.seen.iter().map(|(&o, s)| (o, s.seq)).collect()
    }
}

/// Per-hop delay multipliers by subnet levels crossed (1, 5, 50, 500; the
/// last reused beyond).
pub const CROSSING_MULTIPLIERS: [f64; 4] = [1.0, 5.0, 50.0, 500.0];
/// The per-hop base before any calibration: 100 µs.
pub const DEFAULT_BASE_US: f64 = 100.0;
/// A calibrated per-hop base never exceeds one second.
pub const MAX_BASE_US: f64 = 1_000_000.0;
/// Samples blended at α = 0.5 before α drops to 0.1.
pub const FAST_SAMPLES: u32 = 10;

/// How many subnet levels a path between `a` and `b` crosses: 0 within
/// one subnet; the deeper of the two when either is GLOBAL; otherwise the
/// deeper depth less the levels they share.
pub fn crossing_depth(a: SubnetId, b: SubnetId) -> u32 {
    if a == b {
        return 0;
    }
    let deeper = a.depth().max(b.depth());
    if a == SubnetId::GLOBAL || b == SubnetId::GLOBAL {
        return deeper;
    }
    deeper.saturating_sub(a.common_ancestor(b).depth())
}

/// Delay estimates: base × max(hops, 1) × the multiplier for the levels
/// crossed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PropagationModel {
    base_us: f64,
    samples: u32,
}

impl Default for PropagationModel {
    fn default() -> Self {
        Self {
            base_us: DEFAULT_BASE_US,
            samples: 0,
        }
    }
}

impl PropagationModel {
    /// The current per-hop base, in microseconds.
    pub fn base_us(&self) -> f64 {
        self.base_us
    }

    fn multiplier(depth: u32) -> f64 {
        let last = CROSSING_MULTIPLIERS.len() - 1;
        CROSSING_MULTIPLIERS[(depth as usize).min(last)]
    }

    /// The estimated one-way delay over `hops` crossing `depth` levels, in
    /// microseconds.
    pub fn estimate_us(&self, hops: u32, depth: u32) -> f64 {
        self.base_us * f64::from(hops.max(1)) * Self::multiplier(depth)
    }

    /// Blends a measured round trip into the base: per hop = rtt /
    /// (2 · hops · multiplier), capped at one second; α 0.5 for the first
    /// ten samples, 0.1 after. Non-finite or negative samples are ignored.
    pub fn calibrate(&mut self, rtt_us: f64, hops: u32, depth: u32) {
        if !rtt_us.is_finite() || rtt_us < 0.0 {
            return;
        }
        let per_hop =
            (rtt_us / (2.0 * f64::from(hops.max(1)) * Self::multiplier(depth))).min(MAX_BASE_US);
        let alpha = if self.samples < FAST_SAMPLES {
            0.5
        } else {
            0.1
        };
        self.base_us += alpha * (per_hop - self.base_us);
        self.samples = self.samples.saturating_add(1);
    }
}
