//! Correlated-failure detection (COMPUTE.md §5 "Correlated failures", §7
//! defaults): whether the peers that failed within a window failed
//! together (a mass failure, maybe confined to one subnet) or each on its
//! own.
//!
//! Fed by the mesh's failure detector through
//! [`CorrelationDetector::record_failure`]; time is the caller's
//! milliseconds. Departures from v0.11: the failure list is bounded
//! ([`MAX_TRACKED_FAILURES`], oldest dropped), and a peer that recovers
//! leaves the window ([`CorrelationDetector::record_recovery`]) instead of
//! counting as failed until its entry ages out.

use std::collections::{BTreeMap, VecDeque};

use crate::mesh::channels::SubnetId;

/// Failures kept at once; beyond it the oldest are dropped.
pub const MAX_TRACKED_FAILURES: usize = 65_536;

/// Thresholds (§7 "Correlation").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CorrelationConfig {
    /// How long a failure counts, in milliseconds (2 000).
    pub window_ms: u64,
    /// Share of the mesh that must fail within the window for a mass
    /// failure (0.30).
    pub mass_ratio: f64,
    /// Share of the failures with a known subnet that one subnet must hold
    /// to be named the cause (0.80).
    pub subnet_ratio: f64,
    /// Recoveries allowed at once during a mass failure (3).
    pub recovery_budget: u32,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            window_ms: 2_000,
            mass_ratio: 0.30,
            subnet_ratio: 0.80,
            recovery_budget: 3,
        }
    }
}

/// What the failures in the window amount to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Verdict {
    /// Too few failed to call it correlated; the failed peers, ascending.
    Independent(Vec<u64>),
    /// Enough failed together.
    MassFailure {
        /// The failed peers, ascending.
        failed: Vec<u64>,
        /// Failed / total.
        ratio: f64,
        /// Where the failures concentrate.
        cause: FailureCause,
    },
}

/// Where a mass failure concentrates.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum FailureCause {
    /// One subnet (or an ancestor) holds at least the subnet share of the
    /// failures whose subnet is known: the deepest such, ties to the
    /// lower id.
    SubnetFailure {
        /// The subnet.
        subnet: SubnetId,
        /// Its share of the failures with a known subnet.
        share: f64,
    },
    /// Failures with known subnets, spread over several.
    BroadOutage,
    /// No failed peer has a known subnet.
    Unknown,
}

/// Timestamped failures in a sliding window.
#[derive(Debug, Clone)]
pub struct CorrelationDetector {
    config: CorrelationConfig,
    failures: VecDeque<(u64, u64, Option<SubnetId>)>,
    mass_failure: bool,
}

impl CorrelationDetector {
    /// A detector with `config`.
    pub fn new(config: CorrelationConfig) -> Self {
        Self {
            config,
            failures: VecDeque::new(),
            mass_failure: false,
        }
    }

    /// The thresholds in force.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }

    /// Records that `peer` (in `subnet`, if known) failed at `now_ms`.
    pub fn record_failure(&mut self, peer: u64, subnet: Option<SubnetId>, now_ms: u64) {
        if self.failures.len() == MAX_TRACKED_FAILURES {
            self.failures.pop_front();
        }
        self.failures.push_back((now_ms, peer, subnet));
    }

    /// Forgets `peer`'s failures: it is back.
    pub fn record_recovery(&mut self, peer: u64) {
        self.failures.retain(|&(_, failed, _)| failed != peer);
    }

    /// Drops failures older than the window at `now_ms` (a clock earlier
    /// than the window's length drops nothing).
    fn expire(&mut self, now_ms: u64) {
        let since = now_ms.saturating_sub(self.config.window_ms);
        while self.failures.front().is_some_and(|&(at, _, _)| at < since) {
            self.failures.pop_front();
        }
    }

    /// Judges the failures of the window ending at `now_ms` against a mesh
    /// of `total_nodes` (failed included).
    pub fn evaluate(&mut self, total_nodes: usize, now_ms: u64) -> Verdict {
        self.expire(now_ms);
        let mut subnets: BTreeMap<u64, Option<SubnetId>> = BTreeMap::new();
        for &(_, peer, subnet) in &self.failures {
            let known = subnets.entry(peer).or_insert(subnet);
            if subnet.is_some() {
                *known = subnet;
            }
        }
        let failed: Vec<u64> = subnets.keys().copied().collect();
        if total_nodes == 0 {
            return Verdict::Independent(failed);
        }
        let ratio = failed.len() as f64 / total_nodes as f64;
        if ratio < self.config.mass_ratio {
            self.mass_failure = false;
            return Verdict::Independent(failed);
        }
        self.mass_failure = true;
        let cause = self.cause(subnets.values().flatten().copied());
        Verdict::MassFailure {
            failed,
            ratio,
            cause,
        }
    }

    fn cause(&self, known: impl Iterator<Item = SubnetId>) -> FailureCause {
        let mut counts: BTreeMap<SubnetId, usize> = BTreeMap::new();
        let mut total = 0usize;
        for subnet in known.filter(|s| *s != SubnetId::GLOBAL) {
            total += 1;
            for ancestor in ancestors(subnet) {
                *counts.entry(ancestor).or_default() += 1;
            }
        }
        if total == 0 {
            return FailureCause::Unknown;
        }
        let threshold = (total as f64 * self.config.subnet_ratio).ceil() as usize;
        let mut candidates: Vec<(SubnetId, usize)> = counts.into_iter().collect();
        candidates.sort_by_key(|&(subnet, _)| (std::cmp::Reverse(subnet.depth()), subnet));
        candidates
            .into_iter()
            .find(|&(_, count)| count >= threshold.max(1))
            .map_or(FailureCause::BroadOutage, |(subnet, count)| {
                FailureCause::SubnetFailure {
                    subnet,
                    share: count as f64 / total as f64,
                }
            })
    }

    /// Whether the last evaluation found a mass failure.
    pub fn in_mass_failure(&self) -> bool {
        self.mass_failure
    }

    /// Recoveries to allow at once: the budget during a mass failure, none
    /// (unlimited) otherwise.
    pub fn recovery_budget(&self) -> Option<u32> {
        self.mass_failure.then_some(self.config.recovery_budget)
    }
}

impl Default for CorrelationDetector {
    fn default() -> Self {
        Self::new(CorrelationConfig::default())
    }
}

/// `subnet` and each ancestor below GLOBAL, deepest first.
fn ancestors(subnet: SubnetId) -> impl Iterator<Item = SubnetId> {
    (1..=subnet.depth()).rev().map(move |depth| {
        let mask = u32::MAX << (8 * (4 - depth));
        SubnetId(subnet.0 & mask)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(levels: &[u8]) -> Option<SubnetId> {
        SubnetId::from_levels(levels)
    }

    #[test]
    fn independent_below_mass_ratio_clears_the_flag() {
        let mut detector = CorrelationDetector::default();
        for peer in [5, 1, 3] {
            detector.record_failure(peer, None, 100);
        }
        assert!(matches!(
            detector.evaluate(10, 100),
            Verdict::MassFailure { .. }
        ));
        assert_eq!(detector.recovery_budget(), Some(3));
        assert_eq!(
            detector.evaluate(100, 100),
            Verdict::Independent(vec![1, 3, 5])
        );
        assert!(!detector.in_mass_failure());
        assert_eq!(detector.recovery_budget(), None);
    }

    #[test]
    fn empty_mesh_is_independent_and_leaves_the_flag() {
        let mut detector = CorrelationDetector::default();
        detector.record_failure(1, None, 0);
        assert!(matches!(
            detector.evaluate(2, 0),
            Verdict::MassFailure { .. }
        ));
        assert_eq!(detector.evaluate(0, 0), Verdict::Independent(vec![1]));
        assert!(detector.in_mass_failure());
    }

    #[test]
    fn mass_failure_in_one_subnet_names_the_deepest() {
        let mut detector = CorrelationDetector::default();
        for peer in 0..4 {
            detector.record_failure(peer, subnet(&[1, 2]), 10);
        }
        detector.record_failure(9, subnet(&[1, 3]), 10);
        let Verdict::MassFailure {
            failed,
            cause,
            ratio,
        } = detector.evaluate(10, 10)
        else {
            panic!("expected a mass failure");
        };
        assert_eq!(failed, vec![0, 1, 2, 3, 9]);
        assert_eq!(ratio, 0.5);
        // 4 of 5 in 1.2 = 0.8 ≥ ceil(5 × 0.8) = 4: the deeper subnet wins
        // over 1 (5 of 5).
        assert_eq!(
            cause,
            FailureCause::SubnetFailure {
                subnet: subnet(&[1, 2]).unwrap(),
                share: 0.8
            }
        );
    }

    #[test]
    fn spread_failures_are_a_broad_outage_and_ties_go_to_the_lower_id() {
        let mut detector = CorrelationDetector::default();
        detector.record_failure(1, subnet(&[1]), 0);
        detector.record_failure(2, subnet(&[2]), 0);
        assert!(matches!(
            detector.evaluate(4, 0),
            Verdict::MassFailure {
                cause: FailureCause::BroadOutage,
                ..
            }
        ));
        let tie = CorrelationConfig {
            subnet_ratio: 0.5,
            ..CorrelationConfig::default()
        };
        let mut detector = CorrelationDetector::new(tie);
        detector.record_failure(1, subnet(&[2]), 0);
        detector.record_failure(2, subnet(&[1]), 0);
        let Verdict::MassFailure { cause, .. } = detector.evaluate(4, 0) else {
            panic!("expected a mass failure");
        };
        assert_eq!(
            cause,
            FailureCause::SubnetFailure {
                subnet: subnet(&[1]).unwrap(),
                share: 0.5
            }
        );
    }

    #[test]
    fn no_known_subnet_is_unknown() {
        let mut detector = CorrelationDetector::default();
        detector.record_failure(1, None, 0);
        detector.record_failure(2, Some(SubnetId::GLOBAL), 0);
        assert!(matches!(
            detector.evaluate(2, 0),
            Verdict::MassFailure {
                cause: FailureCause::Unknown,
                ..
            }
        ));
    }

    #[test]
    fn window_expires_old_failures_and_a_clock_near_zero_does_not_underflow() {
        let mut detector = CorrelationDetector::default();
        detector.record_failure(1, None, 0);
        assert_eq!(detector.evaluate(100, 1_000), Verdict::Independent(vec![1]));
        assert_eq!(detector.evaluate(100, 2_000), Verdict::Independent(vec![1]));
        assert_eq!(detector.evaluate(100, 2_001), Verdict::Independent(vec![]));
    }

    #[test]
    fn recovery_leaves_the_window() {
        let mut detector = CorrelationDetector::default();
        detector.record_failure(1, None, 0);
        detector.record_failure(2, None, 0);
        detector.record_recovery(1);
        assert_eq!(detector.evaluate(100, 0), Verdict::Independent(vec![2]));
    }
}
