//! `SnapshotStore`: keeps the latest snapshot per entity and refuses to go
//! back in time.
//!
//! Each entity has a high-water mark: the highest `last_seq` ever stored for
//! it. A snapshot older than that is refused, even after the entity's
//! snapshot was removed, so a stale producer (a slow migration, a retried
//! job) can never re-stage an older state over a newer one. Only the crate
//! can forget a high-water mark (`forget` is `pub(crate)`), because doing so
//! defeats the guarantee.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The RedEX seq of the last event the snapshot contains (None: none).
    pub last_seq: Option<u64>,
    /// The snapshot bytes.
    pub bytes: Vec<u8>,
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A snapshot at least as new is (or was) stored for this entity.
    #[error(
        "stale snapshot: last_seq {offered:?} is older than the high-water mark {high_water:?}"
    )]
    Stale {
        /// The refused snapshot's last_seq.
        offered: Option<u64>,
        /// The newest last_seq ever stored for the entity.
        high_water: Option<u64>,
    },
}

#[derive(Debug)]
struct Inner<K> {
    snapshots: HashMap<K, StoredSnapshot>,
    high_water: HashMap<K, Option<u64>>,
}

/// Latest snapshot per entity, with a high-water mark that survives removal.
#[derive(Debug)]
pub struct SnapshotStore<K> {
    inner: Mutex<Inner<K>>,
}

impl<K: Eq + Hash + Clone> Default for SnapshotStore<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone> SnapshotStore<K> {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                snapshots: HashMap::new(),
                high_water: HashMap::new(),
            }),
        }
    }

    /// Stores `snapshot` for `entity` if it is at least as new as anything
    /// stored for it before. Stores of the same `last_seq` replace each other
    /// (the last one wins, linearized on the store's lock).
    ///
    /// # Errors
    /// [`SnapshotError::Stale`] if an older snapshot is offered.
    pub fn store(&self, entity: K, snapshot: StoredSnapshot) -> Result<(), SnapshotError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&high_water) = inner.high_water.get(&entity)
            && snapshot.last_seq < high_water
        {
            return Err(SnapshotError::Stale {
                offered: snapshot.last_seq,
                high_water,
            });
        }
        inner.high_water.insert(entity.clone(), snapshot.last_seq);
        inner.snapshots.insert(entity, snapshot);
        Ok(())
    }

    /// The latest snapshot of `entity`.
    pub fn get(&self, entity: &K) -> Option<StoredSnapshot> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshots
            .get(entity)
            .cloned()
    }

    /// Removes `entity`'s snapshot. Its high-water mark stays.
    pub fn remove(&self, entity: &K) -> Option<StoredSnapshot> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshots
            .remove(entity)
    }

    /// The newest `last_seq` ever stored for `entity`.
    pub fn high_water(&self, entity: &K) -> Option<Option<u64>> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .high_water
            .get(entity)
            .copied()
    }

    /// Forgets everything about `entity`, high-water mark included.
    #[allow(dead_code)]
    pub(crate) fn forget(&self, entity: &K) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.snapshots.remove(entity);
        inner.high_water.remove(entity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(seq: Option<u64>, byte: u8) -> StoredSnapshot {
        StoredSnapshot {
            last_seq: seq,
            bytes: vec![byte],
        }
    }

    #[test]
    fn stale_snapshots_are_refused_even_after_removal() {
        let store = SnapshotStore::new();
        store.store("a", snap(Some(5), 1)).unwrap();
        store.store("a", snap(Some(5), 2)).unwrap();
        assert_eq!(store.get(&"a").unwrap().bytes, vec![2]);
        assert!(matches!(
            store.store("a", snap(Some(4), 3)),
            Err(SnapshotError::Stale { .. })
        ));
        assert_eq!(store.remove(&"a").unwrap().bytes, vec![2]);
        assert!(store.get(&"a").is_none());
        assert!(matches!(
            store.store("a", snap(Some(3), 4)),
            Err(SnapshotError::Stale { .. })
        ));
        assert!(matches!(
            store.store("a", snap(None, 4)),
            Err(SnapshotError::Stale { .. })
        ));
        store.store("a", snap(Some(9), 5)).unwrap();
        store.store("b", snap(None, 6)).unwrap();
        assert_eq!(store.high_water(&"a"), Some(Some(9)));
        store.forget(&"a");
        store.store("a", snap(Some(1), 7)).unwrap();
    }
}
