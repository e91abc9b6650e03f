//! The capability index (MESH2.md §3.3): the latest announcement of every
//! node, with its local expiry, bounded in entries and bytes.
//!
//! Rules (v0.11 unless marked):
//! - an announcement with ttl > 0 whose age (local clock − origin
//!   timestamp) is ≥ ttl is rejected;
//! - only strictly greater versions per node replace an entry;
//! - local lifetime = min(ttl, the origin's remaining lifetime); ttl 0 is
//!   accepted and dropped at the next [`CapabilityIndex::sweep`];
//! - a sweep removes expired entries and with them their version record;
//! - **bounded** (new): at most `max_nodes` entries and `max_bytes` of
//!   announcements; when full, the entry that expires soonest makes room
//!   (or the newcomer is refused, per [`FullPolicy`]). The local node's
//!   entry is never evicted;
//! - **queries skip expired entries** (new) instead of serving them until
//!   the next sweep.

use std::collections::{BTreeSet, HashMap};

use super::announcement::Announcement;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Default cap on indexed nodes.
pub const DEFAULT_MAX_NODES: usize = 4096;
/// Default cap on the summed wire size of indexed announcements (16 MiB).
pub const DEFAULT_MAX_BYTES: usize = 16 << 20;

/// What to do with a new node's announcement when the index is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FullPolicy {
    /// Evict the entry that expires soonest (never the local node); if the
    /// newcomer would expire before every candidate, refuse it instead.
    /// Stale entries make way for fresh ones.
    #[default]
    EvictSoonestExpiring,
    /// Refuse new nodes until sweeps or evictions make room; entries
    /// already indexed keep being updated.
    RejectNew,
}

/// Limits of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLimits {
    /// Most nodes indexed at once (the local node included).
    pub max_nodes: usize,
    /// Most bytes of announcements (their wire length) indexed at once.
    pub max_bytes: usize,
    /// What happens when either limit would be exceeded.
    pub when_full: FullPolicy,
}

impl Default for IndexLimits {
    fn default() -> Self {
        Self {
            max_nodes: DEFAULT_MAX_NODES,
            max_bytes: DEFAULT_MAX_BYTES,
            when_full: FullPolicy::default(),
        }
    }
}

/// Why the index refused an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexRejection {
    /// ttl > 0 and its age is ≥ ttl. The origin must re-announce.
    #[error("announcement has expired")]
    Expired,
    /// Its version is not greater than the indexed one (a replay, or a
    /// copy that arrived late).
    #[error("version {offered} is not newer than the indexed {indexed}")]
    Stale {
        /// The offered version.
        offered: u64,
        /// The version already indexed.
        indexed: u64,
    },
    /// The index is full and the policy refused a new node.
    #[error("capability index is full")]
    Full,
}

/// How an accepted announcement changed the index.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexChange {
    /// A node not indexed before.
    Added,
    /// A newer version replaced `previous_version`.
    Updated {
        /// The version replaced.
        previous_version: u64,
    },
}

/// One indexed node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedNode {
    /// Its latest announcement (capabilities, version, reflex_addr, …).
    pub announcement: Announcement,
    /// When it was indexed, UNIX ns (local clock).
    pub indexed_at_ns: u64,
    /// When it expires locally, UNIX ns.
    pub expires_at_ns: u64,
    wire_len: usize,
}

impl IndexedNode {
    /// Whether queries see it at `now_unix_ns`: not yet expired (ttl 0
    /// entries stay until the next sweep, as in v0.11).
    pub fn is_live(&self, now_unix_ns: u64) -> bool {
        self.announcement.ttl_secs == 0 || self.expires_at_ns > now_unix_ns
    }
}

#[cfg(test)]
impl IndexedNode {
    pub(crate) fn for_tests(announcement: Announcement) -> Self {
        Self {
            expires_at_ns: u64::MAX,
            indexed_at_ns: 0,
            wire_len: 0,
            announcement,
        }
    }
}

/// Per-node latest announcements.
#[derive(Debug, Clone)]
pub struct CapabilityIndex {
    local_node_id: u64,
    limits: IndexLimits,
    nodes: HashMap<u64, IndexedNode>,
    /// (expires_at_ns, node_id) of every entry: sweeps and evictions.
    by_expiry: BTreeSet<(u64, u64)>,
    total_bytes: usize,
}

impl CapabilityIndex {
    /// An empty index for the node `local_node_id` (whose own entry is
    /// never evicted).
    pub fn new(local_node_id: u64, limits: IndexLimits) -> Self {
        Self {
            local_node_id,
            limits,
            nodes: HashMap::new(),
            by_expiry: BTreeSet::new(),
            total_bytes: 0,
        }
    }

    /// Whether `announcement` would be accepted on its own merits at
    /// `now_unix_ns` (expiry and version; not capacity). The receive
    /// pipeline asks this before forwarding.
    ///
    /// # Errors
    /// [`IndexRejection::Expired`] or [`IndexRejection::Stale`].
    pub fn check(
        &self,
        announcement: &Announcement,
        now_unix_ns: u64,
    ) -> Result<(), IndexRejection> {
        let ttl_ns = u64::from(announcement.ttl_secs).saturating_mul(NANOS_PER_SEC);
        let age_ns = now_unix_ns.saturating_sub(announcement.timestamp_ns);
        if announcement.ttl_secs > 0 && age_ns >= ttl_ns {
            return Err(IndexRejection::Expired);
        }
        match self.nodes.get(&announcement.node_id) {
            Some(entry) if announcement.version <= entry.announcement.version => {
                Err(IndexRejection::Stale {
                    offered: announcement.version,
                    indexed: entry.announcement.version,
                })
            }
            _ => Ok(()),
        }
    }

    /// Indexes `announcement` (already verified by the caller) at
    /// `now_unix_ns`.
    ///
    /// # Errors
    /// [`IndexRejection::Expired`], [`IndexRejection::Stale`], or
    /// [`IndexRejection::Full`] under [`FullPolicy::RejectNew`] (or when
    /// the newcomer would be the first to expire).
    pub fn insert(
        &mut self,
        announcement: Announcement,
        now_unix_ns: u64,
    ) -> Result<IndexChange, IndexRejection> {
        self.check(&announcement, now_unix_ns)?;
        let ttl_ns = u64::from(announcement.ttl_secs).saturating_mul(NANOS_PER_SEC);
        let expires_at_ns = now_unix_ns
            .saturating_add(ttl_ns)
            .min(announcement.timestamp_ns.saturating_add(ttl_ns));
        let wire_len = announcement.encode().len();
        let node_id = announcement.node_id;
        // The old entry makes way for its replacement before any eviction.
        let previous = self.remove(node_id);
        if let Err(rejection) = self.make_room(node_id, expires_at_ns, wire_len) {
            if let Some(previous) = previous {
                self.put(previous);
            }
            return Err(rejection);
        }
        self.put(IndexedNode {
            announcement,
            indexed_at_ns: now_unix_ns,
            expires_at_ns,
            wire_len,
        });
        Ok(match previous {
            Some(previous) => IndexChange::Updated {
                previous_version: previous.announcement.version,
            },
            None => IndexChange::Added,
        })
    }

    fn over_limits(&self, extra_bytes: usize) -> bool {
        self.nodes.len() >= self.limits.max_nodes
            || self.total_bytes.saturating_add(extra_bytes) > self.limits.max_bytes
    }

    /// Evicts until one more entry of `wire_len` bytes fits.
    fn make_room(
        &mut self,
        node_id: u64,
        expires_at_ns: u64,
        wire_len: usize,
    ) -> Result<(), IndexRejection> {
        let is_local = node_id == self.local_node_id;
        let may_evict = self.limits.when_full == FullPolicy::EvictSoonestExpiring;
        while self.over_limits(wire_len) {
            let victim = self
                .by_expiry
                .iter()
                .find(|(_, id)| *id != self.local_node_id)
                .copied();
            match victim {
                // The local node always fits: whoever expires first goes.
                Some((_, victim_id)) if is_local => {
                    self.remove(victim_id);
                }
                None if is_local => break,
                Some((victim_expiry, victim_id)) if may_evict && victim_expiry <= expires_at_ns => {
                    self.remove(victim_id);
                }
                _ => return Err(IndexRejection::Full),
            }
        }
        Ok(())
    }

    fn put(&mut self, entry: IndexedNode) {
        let node_id = entry.announcement.node_id;
        self.by_expiry.insert((entry.expires_at_ns, node_id));
        self.total_bytes += entry.wire_len;
        self.nodes.insert(node_id, entry);
    }

    /// Removes a node's entry (and so its version record): the node was
    /// declared Failed or evicted.
    pub fn remove(&mut self, node_id: u64) -> Option<IndexedNode> {
        let entry = self.nodes.remove(&node_id)?;
        self.by_expiry.remove(&(entry.expires_at_ns, node_id));
        self.total_bytes -= entry.wire_len;
        Some(entry)
    }

    /// Removes every entry expired at `now_unix_ns` (ttl 0 entries
    /// included); returns the node ids removed. Call every
    /// `capability_gc_interval` (60 s).
    pub fn sweep(&mut self, now_unix_ns: u64) -> Vec<u64> {
        let expired: Vec<u64> = self
            .by_expiry
            .iter()
            .take_while(|(expires, _)| *expires <= now_unix_ns)
            .map(|(_, id)| *id)
            .collect();
        for id in &expired {
            self.remove(*id);
        }
        expired
    }

    /// The entry of `node_id`, expired or not.
    pub fn get(&self, node_id: u64) -> Option<&IndexedNode> {
        self.nodes.get(&node_id)
    }

    /// The indexed version of `node_id`.
    pub fn version_of(&self, node_id: u64) -> Option<u64> {
        self.nodes.get(&node_id).map(|e| e.announcement.version)
    }

    /// Entries live at `now_unix_ns`, in no particular order.
    pub fn live(&self, now_unix_ns: u64) -> impl Iterator<Item = &IndexedNode> {
        self.nodes.values().filter(move |e| e.is_live(now_unix_ns))
    }

    /// Number of entries (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Summed wire length of the indexed announcements.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// The node whose entry is never evicted.
    pub fn local_node_id(&self) -> u64 {
        self.local_node_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::EntityKeypair;
    use crate::mesh::capability::CapabilitySet;

    const S: u64 = NANOS_PER_SEC;
    const NOW: u64 = 1_700_000_000 * S;

    fn ann(seed: u8, version: u64, timestamp_ns: u64, ttl_secs: u32) -> Announcement {
        let kp = EntityKeypair::from_seed(&[seed; 32]);
        Announcement::new(
            *kp.entity_id(),
            version,
            timestamp_ns,
            ttl_secs,
            CapabilitySet::default(),
        )
    }

    fn index(limits: IndexLimits) -> CapabilityIndex {
        CapabilityIndex::new(ann(0, 1, 0, 0).node_id, limits)
    }

    #[test]
    fn expired_and_stale_are_rejected() {
        let mut idx = index(IndexLimits::default());
        assert_eq!(
            idx.insert(ann(1, 1, NOW - 300 * S, 300), NOW),
            Err(IndexRejection::Expired)
        );
        assert_eq!(
            idx.insert(ann(1, 2, NOW - 10 * S, 300), NOW),
            Ok(IndexChange::Added)
        );
        assert_eq!(
            idx.insert(ann(1, 2, NOW, 300), NOW),
            Err(IndexRejection::Stale {
                offered: 2,
                indexed: 2
            })
        );
        assert_eq!(
            idx.insert(ann(1, 1, NOW, 300), NOW),
            Err(IndexRejection::Stale {
                offered: 1,
                indexed: 2
            })
        );
        assert_eq!(
            idx.insert(ann(1, 3, NOW, 300), NOW),
            Ok(IndexChange::Updated {
                previous_version: 2
            })
        );
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn local_lifetime_is_the_origins_remaining_lifetime() {
        let mut idx = index(IndexLimits::default());
        idx.insert(ann(1, 1, NOW - 100 * S, 300), NOW).unwrap();
        let node = ann(1, 1, 0, 0).node_id;
        assert_eq!(idx.get(node).unwrap().expires_at_ns, NOW + 200 * S);
        assert!(idx.live(NOW + 199 * S).next().is_some());
        assert!(idx.live(NOW + 200 * S).next().is_none());
        assert_eq!(idx.sweep(NOW + 199 * S), Vec::<u64>::new());
        assert_eq!(idx.sweep(NOW + 200 * S), vec![node]);
        // The version record went with it.
        assert_eq!(
            idx.insert(ann(1, 1, NOW + 150 * S, 300), NOW + 200 * S),
            Ok(IndexChange::Added)
        );
    }

    #[test]
    fn future_timestamps_live_at_most_ttl_from_now() {
        let mut idx = index(IndexLimits::default());
        idx.insert(ann(1, 1, NOW + 1000 * S, 300), NOW).unwrap();
        assert_eq!(
            idx.get(ann(1, 1, 0, 0).node_id).unwrap().expires_at_ns,
            NOW + 300 * S
        );
    }

    #[test]
    fn ttl_zero_is_visible_until_the_next_sweep() {
        let mut idx = index(IndexLimits::default());
        idx.insert(ann(1, 1, NOW - 1000 * S, 0), NOW).unwrap();
        assert_eq!(idx.live(NOW + 5 * S).count(), 1);
        assert_eq!(idx.sweep(NOW).len(), 1);
        assert!(idx.is_empty());
    }

    #[test]
    fn full_index_evicts_the_soonest_expiring_but_never_the_local_node() {
        let mut idx = index(IndexLimits {
            max_nodes: 3,
            ..IndexLimits::default()
        });
        idx.insert(ann(0, 1, NOW - 299 * S, 300), NOW).unwrap(); // local, expires first
        idx.insert(ann(1, 1, NOW - 200 * S, 300), NOW).unwrap();
        idx.insert(ann(2, 1, NOW - 100 * S, 300), NOW).unwrap();
        // A newcomer that would expire before everyone is refused.
        assert_eq!(
            idx.insert(ann(3, 1, NOW - 250 * S, 300), NOW),
            Err(IndexRejection::Full)
        );
        // A fresh one evicts node 1 (soonest among non-local).
        assert_eq!(idx.insert(ann(3, 1, NOW, 300), NOW), Ok(IndexChange::Added));
        assert_eq!(idx.len(), 3);
        assert!(idx.get(ann(1, 1, 0, 0).node_id).is_none());
        assert!(idx.get(idx.local_node_id()).is_some());
        // Updating an indexed node needs no room.
        assert!(idx.insert(ann(2, 2, NOW - 290 * S, 300), NOW).is_ok());
    }

    #[test]
    fn reject_new_policy_keeps_updating_known_nodes() {
        let mut idx = index(IndexLimits {
            max_nodes: 1,
            when_full: FullPolicy::RejectNew,
            ..IndexLimits::default()
        });
        idx.insert(ann(1, 1, NOW, 300), NOW).unwrap();
        assert_eq!(
            idx.insert(ann(2, 1, NOW, 300), NOW),
            Err(IndexRejection::Full)
        );
        assert!(idx.insert(ann(1, 2, NOW, 300), NOW).is_ok());
        // The local node always fits.
        assert!(idx.insert(ann(0, 1, NOW, 300), NOW).is_ok());
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn byte_budget_is_enforced() {
        let one = ann(1, 1, NOW, 300).encode().len();
        let mut idx = index(IndexLimits {
            max_bytes: one * 2,
            ..IndexLimits::default()
        });
        for seed in 1..=5 {
            idx.insert(ann(seed, 1, NOW + u64::from(seed), 300), NOW)
                .unwrap();
            assert!(idx.total_bytes() <= one * 2);
        }
        assert_eq!(idx.len(), 2);
        idx.remove(ann(5, 1, 0, 0).node_id).unwrap();
        assert_eq!(idx.total_bytes(), one);
    }
}
