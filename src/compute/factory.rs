//! [`DaemonFactoryRegistry`]: how a migration target builds a daemon
//! locally (COMPUTE.md §1.4).
//!
//! Entries are keyed by origin hash. [`DaemonFactoryRegistry::register`]
//! keys by a keypair's origin and keeps the keypair (the target can run the
//! daemon without an identity envelope);
//! [`DaemonFactoryRegistry::register_placeholder`] has no keypair (the
//! migration's envelope must supply it). Both refuse an occupied key
//! without overwriting. [`DaemonFactoryRegistry::construct`] builds a fresh
//! daemon **without removing** the entry, so a failed restore can be
//! retried; the target removes the entry only after a successful
//! activation. `remove` and `take` are idempotent.
//!
//! Departures from v0.11: a factory may fail (typed error, entry kept);
//! v0.11's inert host config is not carried (see
//! [`crate::compute::host`]); the factory runs outside the registry lock,
//! so a slow factory never blocks other origins; duplicates are
//! [`DaemonError::AlreadyRegistered`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::compute::daemon::{DaemonError, MeshDaemon};
use crate::identity::EntityKeypair;

/// Builds a fresh daemon of one kind. It may fail (a foreign-language
/// factory can raise); a migration target then answers StateFailed.
pub type DaemonFactory = Arc<dyn Fn() -> Result<Box<dyn MeshDaemon>, DaemonError> + Send + Sync>;

/// One registered factory.
#[derive(Clone)]
pub struct FactoryEntry {
    /// Builds the daemon.
    pub factory: DaemonFactory,
    /// The daemon's keypair, unless this is a placeholder.
    pub keypair: Option<EntityKeypair>,
}

impl std::fmt::Debug for FactoryEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactoryEntry")
            .field("keypair", &self.keypair)
            .finish_non_exhaustive()
    }
}

/// A node's daemon factories by origin hash; see the module doc.
#[derive(Debug, Default)]
pub struct DaemonFactoryRegistry {
    entries: Mutex<HashMap<u64, FactoryEntry>>,
}

impl DaemonFactoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<u64, FactoryEntry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, origin: u64, entry: FactoryEntry) -> Result<(), DaemonError> {
        let mut entries = self.entries();
        if entries.contains_key(&origin) {
            return Err(DaemonError::AlreadyRegistered(origin));
        }
        entries.insert(origin, entry);
        Ok(())
    }

    /// Registers a factory for `keypair`'s origin, with the keypair.
    ///
    /// # Errors
    /// [`DaemonError::AlreadyRegistered`]; the existing entry is kept.
    pub fn register(
        &self,
        keypair: EntityKeypair,
        factory: DaemonFactory,
    ) -> Result<(), DaemonError> {
        let origin = keypair.origin_hash();
        self.insert(
            origin,
            FactoryEntry {
                factory,
                keypair: Some(keypair),
            },
        )
    }

    /// Registers a factory for `origin` without a keypair.
    ///
    /// # Errors
    /// [`DaemonError::AlreadyRegistered`]; the existing entry is kept.
    pub fn register_placeholder(
        &self,
        origin: u64,
        factory: DaemonFactory,
    ) -> Result<(), DaemonError> {
        self.insert(
            origin,
            FactoryEntry {
                factory,
                keypair: None,
            },
        )
    }

    /// Builds a fresh daemon for `origin`, with the entry's keypair if it
    /// has one. The entry stays.
    ///
    /// # Errors
    /// [`DaemonError::NotFound`] without an entry; the factory's own error
    /// (the entry stays, so a retry can succeed).
    pub fn construct(
        &self,
        origin: u64,
    ) -> Result<(Box<dyn MeshDaemon>, Option<EntityKeypair>), DaemonError> {
        let entry = self
            .entries()
            .get(&origin)
            .cloned()
            .ok_or(DaemonError::NotFound(origin))?;
        Ok(((entry.factory)()?, entry.keypair))
    }

    /// Removes `origin`'s entry; returns whether there was one.
    pub fn remove(&self, origin: u64) -> bool {
        self.take(origin).is_some()
    }

    /// Removes and returns `origin`'s entry.
    pub fn take(&self, origin: u64) -> Option<FactoryEntry> {
        self.entries().remove(&origin)
    }

    /// Whether `origin` has an entry.
    pub fn contains(&self, origin: u64) -> bool {
        self.entries().contains_key(&origin)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::compute::daemon::test_daemons::{Counter, Echo};

    fn counter_factory(built: Arc<AtomicUsize>) -> DaemonFactory {
        Arc::new(move || {
            built.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(Counter::default()))
        })
    }

    #[test]
    fn construct_keeps_the_entry_and_occupied_keys_are_refused() {
        let factories = DaemonFactoryRegistry::new();
        let keypair = EntityKeypair::from_seed(&[1; 32]);
        let origin = keypair.origin_hash();
        let built = Arc::new(AtomicUsize::new(0));
        factories
            .register(keypair.clone(), counter_factory(built.clone()))
            .unwrap();
        assert_eq!(
            factories.register(keypair.clone(), Arc::new(|| Ok(Box::new(Echo)))),
            Err(DaemonError::AlreadyRegistered(origin))
        );
        assert_eq!(
            factories.register_placeholder(origin, Arc::new(|| Ok(Box::new(Echo)))),
            Err(DaemonError::AlreadyRegistered(origin))
        );
        for _ in 0..2 {
            let (daemon, kp) = factories.construct(origin).unwrap();
            assert_eq!(daemon.name(), "counter");
            assert_eq!(kp.unwrap().entity_id(), keypair.entity_id());
        }
        assert_eq!(built.load(Ordering::SeqCst), 2);
        assert!(factories.contains(origin));
        assert!(factories.remove(origin));
        assert!(!factories.remove(origin));
        assert!(factories.take(origin).is_none());
        assert!(matches!(
            factories.construct(origin),
            Err(DaemonError::NotFound(o)) if o == origin
        ));
    }

    #[test]
    fn placeholders_have_no_keypair() {
        let factories = DaemonFactoryRegistry::new();
        factories
            .register_placeholder(9, Arc::new(|| Ok(Box::new(Echo))))
            .unwrap();
        let (daemon, keypair) = factories.construct(9).unwrap();
        assert_eq!(daemon.name(), "echo");
        assert!(keypair.is_none());
        assert_eq!(factories.len(), 1);
    }

    #[test]
    fn a_failing_factory_keeps_its_entry() {
        let factories = DaemonFactoryRegistry::new();
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = attempts.clone();
        factories
            .register_placeholder(
                5,
                Arc::new(move || {
                    if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(DaemonError::ProcessFailed("not yet".into()))
                    } else {
                        Ok(Box::new(Echo))
                    }
                }),
            )
            .unwrap();
        assert!(factories.construct(5).is_err());
        assert!(factories.contains(5));
        assert_eq!(factories.construct(5).unwrap().0.name(), "echo");
    }
}
