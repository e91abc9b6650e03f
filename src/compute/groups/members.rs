//! The pure parts every group shares (COMPUTE.md §3.1): member identities,
//! member records, group health, and the standby replay log.
//!
//! Identities (§3.2, §3.4, and §8 item 8's fixes):
//! - a replica's seed is `BLAKE2s-256-MAC(key = "net-replica-v1", group
//!   seed ‖ index byte)` — v0.11's bytes — for its first generation; a
//!   member re-created after its node failed (its state and chain lost)
//!   is generation g ≥ 1 and appends `g` as 4 LE bytes, so an identity's
//!   chain never restarts from genesis under the same origin;
//! - a standby group has **one** identity, `BLAKE2s-256-MAC(key =
//!   "net-standby-v1", group seed)`, shared by every member: the standbys
//!   are copies of the active daemon, and a promoted standby continues
//!   the active's origin and chain. Replica and standby groups built from
//!   the same seed never share an identity (v0.11's do).

use std::collections::BTreeMap;

use crate::compute::daemon::CausalEvent;
use crate::identity::{EntityKeypair, keyed_blake2s};

/// BLAKE2s key of replica member seeds (v0.11).
pub const REPLICA_KEY: &[u8] = b"net-replica-v1";
/// BLAKE2s key of a standby group's identity (Net).
pub const STANDBY_KEY: &[u8] = b"net-standby-v1";
/// Most members a group may have (§7).
pub const MAX_MEMBERS: usize = 255;

/// The keypair of replica `index`, generation `generation`, of the group
/// seeded with `group_seed`.
pub fn replica_keypair(group_seed: &[u8; 32], index: u8, generation: u32) -> EntityKeypair {
    let seed = if generation == 0 {
        keyed_blake2s(REPLICA_KEY, &[group_seed, &[index]])
    } else {
        keyed_blake2s(
            REPLICA_KEY,
            &[group_seed, &[index], &generation.to_le_bytes()],
        )
    };
    EntityKeypair::from_seed(&seed)
}

/// The one keypair of the standby group seeded with `group_seed`.
pub fn standby_keypair(group_seed: &[u8; 32]) -> EntityKeypair {
    EntityKeypair::from_seed(&keyed_blake2s(STANDBY_KEY, &[group_seed]))
}

/// A group's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupHealth {
    /// Every member is healthy.
    Healthy,
    /// Some members are unhealthy.
    Degraded {
        /// Healthy members.
        healthy: usize,
        /// All members.
        total: usize,
    },
    /// No member is healthy (or there are none).
    Dead,
}

impl GroupHealth {
    /// The health of a group with `healthy` of `total` members healthy.
    pub fn of(healthy: usize, total: usize) -> Self {
        if healthy == 0 {
            Self::Dead
        } else if healthy == total {
            Self::Healthy
        } else {
            Self::Degraded { healthy, total }
        }
    }
}

/// One member of a group, as its coordinator records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its index in the group.
    pub index: u8,
    /// Its daemon's origin.
    pub origin_hash: u64,
    /// The node it runs on.
    pub node_id: u64,
    /// Whether it is taking traffic (its node is not known to have failed).
    pub healthy: bool,
    /// Replicas and forks: times it was re-created after a node failure.
    pub generation: u32,
}

/// Counts healthy members.
pub fn health_of(members: &[MemberInfo]) -> GroupHealth {
    GroupHealth::of(members.iter().filter(|m| m.healthy).count(), members.len())
}

/// The events a standby group's active applied since the standbys' last
/// sync, keyed by (producer, sequence): what a promoted standby replays.
///
/// Each standby has its own applied watermarks (those of the snapshot it
/// last restored); [`ReplayLog::after`] returns only the events above
/// them, in order, so nothing is applied twice. [`ReplayLog::trim`] drops
/// what every standby already has.
#[derive(Debug, Default, Clone)]
pub struct ReplayLog {
    events: BTreeMap<(u64, u64), CausalEvent>,
}

impl ReplayLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an event the active applied. A repeated (producer,
    /// sequence) replaces the earlier copy.
    pub fn record(&mut self, event: CausalEvent) {
        self.events
            .insert((event.producer(), event.sequence()), event);
    }

    /// Drops every event at or below `watermarks` (producer → highest
    /// applied sequence).
    pub fn trim(&mut self, watermarks: &BTreeMap<u64, u64>) {
        self.events.retain(|(producer, seq), _| {
            watermarks.get(producer).is_none_or(|applied| seq > applied)
        });
    }

    /// The events above `watermarks`, by producer then sequence.
    pub fn after(&self, watermarks: &BTreeMap<u64, u64>) -> Vec<CausalEvent> {
        self.events
            .iter()
            .filter(|((producer, seq), _)| {
                watermarks.get(producer).is_none_or(|applied| seq > applied)
            })
            .map(|(_, event)| event.clone())
            .collect()
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(producer: u64, sequence: u64) -> CausalEvent {
        CausalEvent::bare(producer, sequence, vec![])
    }

    #[test]
    fn replica_identity_is_v011s_for_generation_zero() {
        let seed = [3u8; 32];
        let expected = keyed_blake2s(REPLICA_KEY, &[&seed, &[2]]);
        assert_eq!(
            replica_keypair(&seed, 2, 0).entity_id(),
            EntityKeypair::from_seed(&expected).entity_id()
        );
        assert_ne!(
            replica_keypair(&seed, 2, 0).origin_hash(),
            replica_keypair(&seed, 2, 1).origin_hash()
        );
    }

    #[test]
    fn standby_and_replica_identities_differ_for_one_seed() {
        let seed = [9u8; 32];
        let standby = standby_keypair(&seed).origin_hash();
        assert!((0..=255u8).all(|i| replica_keypair(&seed, i, 0).origin_hash() != standby));
    }

    #[test]
    fn health_counts() {
        assert_eq!(GroupHealth::of(0, 0), GroupHealth::Dead);
        assert_eq!(GroupHealth::of(3, 3), GroupHealth::Healthy);
        assert_eq!(
            GroupHealth::of(1, 3),
            GroupHealth::Degraded {
                healthy: 1,
                total: 3
            }
        );
    }

    #[test]
    fn replay_log_is_keyed_by_producer_and_sequence() {
        let mut log = ReplayLog::new();
        for (producer, seq) in [(1, 1), (2, 1), (1, 2), (2, 2), (1, 3)] {
            log.record(event(producer, seq));
        }
        log.record(event(1, 2));
        assert_eq!(log.len(), 5);
        let marks = BTreeMap::from([(1, 2)]);
        let keys: Vec<_> = log
            .after(&marks)
            .iter()
            .map(|e| (e.producer(), e.sequence()))
            .collect();
        assert_eq!(keys, [(1, 3), (2, 1), (2, 2)]);
        log.trim(&BTreeMap::from([(1, 3), (2, 1)]));
        assert_eq!(log.len(), 1);
    }
}
