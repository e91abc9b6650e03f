//! The (node_id, version) dedup record of the receive pipeline (MESH2.md
//! §3.2 step 9): kept for a retention period (600 s, twice the default
//! TTL), bounded in entries. When full, the oldest record goes first;
//! losing one early only costs a repeated signature check, because the
//! index accepts each version once.

use std::collections::{HashMap, VecDeque};

/// Default retention of a dedup record (2 × the default TTL).
pub const DEFAULT_SEEN_RETENTION_NS: u64 = 600 * 1_000_000_000;
/// Default cap on dedup records.
pub const DEFAULT_MAX_SEEN: usize = 65_536;

type Key = (u64, u64);

/// Recently seen (node_id, version) pairs.
#[derive(Debug, Clone)]
pub struct SeenSet {
    retention_ns: u64,
    max_entries: usize,
    expiry_by_key: HashMap<Key, u64>,
    /// Insertion order (= expiry order: retention is constant). Entries
    /// whose key was forgotten or re-inserted are skipped when popped.
    order: VecDeque<(Key, u64)>,
}

impl SeenSet {
    /// An empty set keeping records `retention_ns`, at most `max_entries`
    /// (at least 1).
    pub fn new(retention_ns: u64, max_entries: usize) -> Self {
        Self {
            retention_ns,
            max_entries: max_entries.max(1),
            expiry_by_key: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `(node_id, version)` was seen and its record is live.
    pub fn contains(&self, node_id: u64, version: u64, now_unix_ns: u64) -> bool {
        self.expiry_by_key
            .get(&(node_id, version))
            .is_some_and(|expires| *expires > now_unix_ns)
    }

    /// Records `(node_id, version)` as seen at `now_unix_ns`.
    pub fn insert(&mut self, node_id: u64, version: u64, now_unix_ns: u64) {
        let key = (node_id, version);
        let expires = now_unix_ns.saturating_add(self.retention_ns);
        while self.expiry_by_key.len() >= self.max_entries
            || self.order.len() >= self.max_entries.saturating_mul(2)
        {
            if !self.pop_oldest() {
                break;
            }
        }
        self.expiry_by_key.insert(key, expires);
        self.order.push_back((key, expires));
    }

    /// Drops every record expired at `now_unix_ns` (the GC tick).
    pub fn purge(&mut self, now_unix_ns: u64) {
        while self
            .order
            .front()
            .is_some_and(|(_, expires)| *expires <= now_unix_ns)
        {
            self.pop_oldest();
        }
    }

    /// Forgets every record of `node_id` (its index entry was removed, so
    /// a re-pushed copy must be accepted again).
    pub fn forget_node(&mut self, node_id: u64) {
        self.expiry_by_key.retain(|(node, _), _| *node != node_id);
    }

    /// Live and stale records held.
    pub fn len(&self) -> usize {
        self.expiry_by_key.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.expiry_by_key.is_empty()
    }

    fn pop_oldest(&mut self) -> bool {
        let Some((key, expires)) = self.order.pop_front() else {
            return false;
        };
        if self.expiry_by_key.get(&key) == Some(&expires) {
            self.expiry_by_key.remove(&key);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_expire_after_the_retention() {
        let mut seen = SeenSet::new(600, 16);
        seen.insert(1, 1, 1000);
        assert!(seen.contains(1, 1, 1599));
        assert!(!seen.contains(1, 1, 1600));
        assert!(!seen.contains(1, 2, 1000));
        seen.purge(1600);
        assert!(seen.is_empty());
    }

    #[test]
    fn bounded_oldest_first() {
        let mut seen = SeenSet::new(600, 3);
        for v in 0..10 {
            seen.insert(1, v, v);
            assert!(seen.len() <= 3);
        }
        assert!(seen.contains(1, 9, 10) && seen.contains(1, 7, 10));
        assert!(!seen.contains(1, 6, 10));
        assert!(seen.order.len() <= 6);
    }

    #[test]
    fn forgetting_a_node_keeps_the_others_and_stays_bounded() {
        let mut seen = SeenSet::new(600, 4);
        seen.insert(1, 1, 0);
        seen.insert(2, 1, 0);
        seen.forget_node(1);
        assert!(!seen.contains(1, 1, 0));
        assert!(seen.contains(2, 1, 0));
        for round in 0..100 {
            seen.insert(1, round, 0);
            seen.forget_node(1);
            assert!(seen.order.len() <= 8);
        }
        assert!(seen.len() <= 4);
    }
}
