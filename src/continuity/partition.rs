//! Partition records (COMPUTE.md §5 "Partition", §7 defaults): created
//! when a mass failure is judged, confirmed, healed as the other side's
//! peers return, and the identity both sides of a split agree on.
//!
//! Departures from v0.11 (§8 item 13):
//! - A mass failure that overlaps an open record extends it instead of
//!   opening a duplicate; a failure of a peer that had returned takes it
//!   out of the healing count again.
//! - Records are driven: [`PartitionTracker::tick`] confirms a suspected
//!   record once it has held for `confirm_after_ms` with nobody back
//!   ([`PartitionTracker::confirm`] is still there for a caller that knows
//!   better).
//! - Every mass failure opens a record, not only one confined to a subnet:
//!   in a mesh without subnets v0.11 never sees a partition. The cause is
//!   kept on the record.
//! - Local record ids count from 1 as v0.11's do, but the identity the two
//!   sides share is [`partition_key`], derived from both sides' member
//!   sets once they have exchanged them on heal.
//! - Records are bounded: at most [`MAX_RECORDS`] open, the oldest healed
//!   dropped first.

use std::collections::BTreeSet;

use xxhash_rust::xxh3::Xxh3;

use super::correlation::{FailureCause, Verdict};

/// Open records kept at once.
pub const MAX_RECORDS: usize = 256;

/// Share of the other side that must return for a record to heal (0.50).
pub const DEFAULT_HEALING_THRESHOLD: f64 = 0.50;

/// How long a record stays Suspected before [`PartitionTracker::tick`]
/// confirms it: one correlation window (2 000 ms).
pub const DEFAULT_CONFIRM_AFTER_MS: u64 = 2_000;

/// Where a record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionPhase {
    /// Judged from a mass failure; may still be a transient.
    Suspected,
    /// Held long enough (or confirmed by the caller).
    Confirmed,
    /// Some of the other side is back, fewer than the threshold.
    Healing,
    /// Enough of the other side is back.
    Healed,
}

/// One split as this node sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionRecord {
    /// Local id, from 1 (saturating).
    pub id: u64,
    /// The peers still reachable when the split was judged, and this node.
    pub our_side: BTreeSet<u64>,
    /// The peers that failed together.
    pub other_side: BTreeSet<u64>,
    /// Where the failures concentrated.
    pub cause: FailureCause,
    /// The phase.
    pub phase: PartitionPhase,
    /// The other side's peers that are back.
    pub returned: BTreeSet<u64>,
    /// The caller's exact horizon at the split: (origin, highest sequence
    /// observed), ascending — the divergence points chains reconcile from.
    pub horizon_at_split: Vec<(u64, u64)>,
    /// When it was opened (caller's milliseconds).
    pub detected_at_ms: u64,
    /// When it was confirmed.
    pub confirmed_at_ms: Option<u64>,
    /// When it healed.
    pub healed_at_ms: Option<u64>,
}

impl PartitionRecord {
    /// Returned / other side.
    pub fn healing_progress(&self) -> f64 {
        if self.other_side.is_empty() {
            return 1.0;
        }
        self.returned.len() as f64 / self.other_side.len() as f64
    }
}

/// What a call did to the records.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PartitionEvent {
    /// A record was opened.
    Detected(u64),
    /// An open record took in more failed peers.
    Extended(u64),
    /// A record was confirmed.
    Confirmed(u64),
    /// A peer of the other side returned; the record is healing.
    Healing {
        /// The record.
        id: u64,
        /// Returned / other side.
        progress: f64,
    },
    /// Enough of the other side is back.
    Healed(u64),
}

/// Thresholds for the tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionConfig {
    /// Share of the other side that heals a record (0.50).
    pub healing_threshold: f64,
    /// Suspected → Confirmed after this long without a return.
    pub confirm_after_ms: u64,
}

impl Default for PartitionConfig {
    fn default() -> Self {
        Self {
            healing_threshold: DEFAULT_HEALING_THRESHOLD,
            confirm_after_ms: DEFAULT_CONFIRM_AFTER_MS,
        }
    }
}

/// The records of one node.
#[derive(Debug, Clone, Default)]
pub struct PartitionTracker {
    config: PartitionConfig,
    records: Vec<PartitionRecord>,
    next_id: u64,
}

impl PartitionTracker {
    /// A tracker with `config`.
    pub fn new(config: PartitionConfig) -> Self {
        Self {
            config,
            records: Vec::new(),
            next_id: 1,
        }
    }

    /// Opens or extends a record for a mass failure; nothing for an
    /// independent verdict. `our_side` is this node and the peers still
    /// healthy; `horizon` the exact horizon now.
    pub fn detect(
        &mut self,
        verdict: &Verdict,
        our_side: &BTreeSet<u64>,
        horizon: &[(u64, u64)],
        now_ms: u64,
    ) -> Option<PartitionEvent> {
        let Verdict::MassFailure { failed, cause, .. } = verdict else {
            return None;
        };
        let failed: BTreeSet<u64> = failed.iter().copied().collect();
        if let Some(record) = self
            .records
            .iter_mut()
            .filter(|r| r.phase != PartitionPhase::Healed)
            .find(|r| !r.other_side.is_disjoint(&failed))
        {
            let before = (record.other_side.len(), record.returned.len());
            record.other_side.extend(failed.iter().copied());
            record.returned.retain(|peer| !failed.contains(peer));
            record.our_side.retain(|peer| !failed.contains(peer));
            record.cause = *cause;
            if record.phase == PartitionPhase::Healing && record.returned.is_empty() {
                record.phase = PartitionPhase::Confirmed;
            }
            let after = (record.other_side.len(), record.returned.len());
            return (before != after).then_some(PartitionEvent::Extended(record.id));
        }
        let id = self.next_id();
        let mut horizon_at_split = horizon.to_vec();
        horizon_at_split.sort_unstable();
        self.records.push(PartitionRecord {
            id,
            our_side: our_side.difference(&failed).copied().collect(),
            other_side: failed,
            cause: *cause,
            phase: PartitionPhase::Suspected,
            returned: BTreeSet::new(),
            horizon_at_split,
            detected_at_ms: now_ms,
            confirmed_at_ms: None,
            healed_at_ms: None,
        });
        Some(PartitionEvent::Detected(id))
    }

    /// A split this node never saw, learned from a returning peer that
    /// did (its HealHello names this node on its other side): recorded as
    /// already healed, with the sides as that peer reported them mirrored,
    /// cause unknown and no horizon (the peer knows where the chains
    /// parted). Returns the record's id.
    pub fn adopt_healed(
        &mut self,
        our_side: BTreeSet<u64>,
        other_side: BTreeSet<u64>,
        now_ms: u64,
    ) -> u64 {
        let id = self.next_id();
        self.records.push(PartitionRecord {
            id,
            our_side,
            returned: other_side.clone(),
            other_side,
            cause: FailureCause::Unknown,
            phase: PartitionPhase::Healed,
            horizon_at_split: Vec::new(),
            detected_at_ms: now_ms,
            confirmed_at_ms: Some(now_ms),
            healed_at_ms: Some(now_ms),
        });
        id
    }

    /// A fresh record id, making room for its record first (the oldest
    /// healed record goes, else the oldest).
    fn next_id(&mut self) -> u64 {
        if self.records.len() == MAX_RECORDS {
            let oldest_healed = self
                .records
                .iter()
                .position(|r| r.phase == PartitionPhase::Healed)
                .unwrap_or(0);
            self.records.remove(oldest_healed);
        }
        let id = self.next_id.max(1);
        self.next_id = id.saturating_add(1);
        id
    }

    /// Confirms a suspected record; false if there is none by that id or
    /// it is past Suspected.
    pub fn confirm(&mut self, id: u64, now_ms: u64) -> bool {
        match self.records.iter_mut().find(|r| r.id == id) {
            Some(record) if record.phase == PartitionPhase::Suspected => {
                record.phase = PartitionPhase::Confirmed;
                record.confirmed_at_ms = Some(now_ms);
                true
            }
            _ => false,
        }
    }

    /// Confirms the suspected records that have held long enough.
    pub fn tick(&mut self, now_ms: u64) -> Vec<PartitionEvent> {
        let after = self.config.confirm_after_ms;
        let due: Vec<u64> = self
            .records
            .iter()
            .filter(|r| {
                r.phase == PartitionPhase::Suspected
                    && now_ms.saturating_sub(r.detected_at_ms) >= after
            })
            .map(|r| r.id)
            .collect();
        due.into_iter()
            .filter(|&id| self.confirm(id, now_ms))
            .map(PartitionEvent::Confirmed)
            .collect()
    }

    /// `peer` is reachable again: every open record whose other side holds
    /// it counts it (once); a record whose returned share reaches the
    /// threshold heals.
    pub fn on_node_recovery(&mut self, peer: u64, now_ms: u64) -> Vec<PartitionEvent> {
        let threshold = self.config.healing_threshold;
        let mut events = Vec::new();
        for record in self.records.iter_mut() {
            if record.phase == PartitionPhase::Healed
                || !record.other_side.contains(&peer)
                || !record.returned.insert(peer)
            {
                continue;
            }
            let progress = record.healing_progress();
            if progress >= threshold {
                record.phase = PartitionPhase::Healed;
                record.healed_at_ms = Some(now_ms);
                events.push(PartitionEvent::Healed(record.id));
            } else {
                record.phase = PartitionPhase::Healing;
                events.push(PartitionEvent::Healing {
                    id: record.id,
                    progress,
                });
            }
        }
        events
    }

    /// `peer` failed again on its own (an independent verdict): it no
    /// longer counts as returned in any record still healing.
    pub fn on_node_failure(&mut self, peer: u64) {
        for record in self.records.iter_mut() {
            if record.phase == PartitionPhase::Healing
                && record.returned.remove(&peer)
                && record.returned.is_empty()
            {
                record.phase = PartitionPhase::Confirmed;
            }
        }
    }

    /// Every record, oldest first.
    pub fn records(&self) -> &[PartitionRecord] {
        &self.records
    }

    /// The record with `id`.
    pub fn get(&self, id: u64) -> Option<&PartitionRecord> {
        self.records.iter().find(|r| r.id == id)
    }

    /// Removes and returns the healed records.
    pub fn take_healed(&mut self) -> Vec<PartitionRecord> {
        let (healed, open) = std::mem::take(&mut self.records)
            .into_iter()
            .partition(|r| r.phase == PartitionPhase::Healed);
        self.records = open;
        healed
    }
}

/// The identity both sides of a split compute once each holds the other's
/// view: `mine` is (our side, other side) of this node's record, `theirs`
/// the same pair as the other node reported it.
///
/// Side X = our side ∪ their other side, side Y = our other side ∪ their
/// side; a peer both sides claim (their views differ) is left out of both.
/// The key is `xxh3_64("net-partition-v1" ‖ smaller side ‖ larger side)`,
/// each side as a u32 count and its ids ascending, the sides ordered by
/// their encodings — so swapping `mine` and `theirs` gives the same key.
pub fn partition_key(
    mine: (&BTreeSet<u64>, &BTreeSet<u64>),
    theirs: (&BTreeSet<u64>, &BTreeSet<u64>),
) -> u64 {
    let x: BTreeSet<u64> = mine.0.union(theirs.1).copied().collect();
    let y: BTreeSet<u64> = mine.1.union(theirs.0).copied().collect();
    let both: BTreeSet<u64> = x.intersection(&y).copied().collect();
    let encode = |side: &BTreeSet<u64>| {
        let members: Vec<u64> = side.difference(&both).copied().collect();
        let mut bytes = Vec::with_capacity(4 + 8 * members.len());
        bytes.extend_from_slice(&(members.len() as u32).to_le_bytes());
        members
            .iter()
            .for_each(|id| bytes.extend_from_slice(&id.to_le_bytes()));
        bytes
    };
    let (a, b) = (encode(&x), encode(&y));
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut hasher = Xxh3::new();
    hasher.update(b"net-partition-v1");
    hasher.update(&low);
    hasher.update(&high);
    hasher.digest()
}
