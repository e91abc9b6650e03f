//! [`DaemonRegistry`]: a node's daemons by origin hash (COMPUTE.md §1.3).
//! Different daemons run concurrently; one daemon strictly serially (each
//! host has its own lock; the map lock is only held for look-ups).
//!
//! **Stale guard** (as v0.11): a per-daemon call looks the host up,
//! releases the map, takes the host lock, then checks the map again; if
//! the entry is gone or is another host (a `replace` or `unregister` ran
//! meanwhile), it returns [`DaemonError::Stale`] without touching anything.
//!
//! **No orphan writes** (fixes §8 item 10): in v0.11 a call already inside
//! the host lock when `replace`/`unregister` runs finishes on the removed
//! host and its write is lost. Here `replace` and `unregister` take the old
//! host's lock **before** changing the map, so they wait for the call in
//! flight, and they hand back the removed host with every write that call
//! made. Lock order is always host, then map. One exception: called from
//! inside the same origin's `with_host` closure (a watchdog unregistering
//! its own daemon) they cannot wait for themselves; they change the map,
//! return no host, and the closure finishes on the host it holds.
//!
//! Because a mutator waits for the host lock, a `with_host` closure that
//! replaces or unregisters *another* origin can deadlock with a closure on
//! that origin doing the same to it; closures must not do that.
//!
//! Other departures: re-locking an origin from inside its own `with_host`
//! is [`DaemonError::Reentrant`] instead of a deadlock; `list` reads the
//! name recorded at registration, so it never waits for a busy daemon.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use crate::compute::daemon::{BatchWait, CausalEvent, DaemonError};
use crate::compute::host::{BatchDelivered, DaemonHost, DaemonSnapshot, DaemonStats};
use crate::compute::snapshot::{NetSnapshotExt, StateSnapshot};
use crate::identity::EntityKeypair;

/// The registry's map, looked up on every delivery: foldhash, seeded per
/// registry (as the mesh's stream tables), not SipHash.
type SlotMap = HashMap<u64, Arc<Slot>, foldhash::fast::RandomState>;

/// One registered host. `host` is `None` once a mutator has taken it out.
#[derive(Debug)]
struct Slot {
    name: String,
    host: Mutex<Option<DaemonHost>>,
    /// Set (under the map lock, by whoever holds `host`'s lock) once the
    /// slot left the map: a call that looked it up before then finds it
    /// retired when it gets the lock, without looking the map up again.
    retired: AtomicBool,
    /// The [`thread_mark`] of the thread holding `host`'s lock, 0 when
    /// none: written only by the holder, so a thread reading its own mark
    /// here holds the lock (re-entry), and any other value means it does
    /// not. While the host is lent ([`HostLease`]), the borrower's mark.
    owner: AtomicU64,
    /// The host is lent out ([`DaemonRegistry::try_lend`]): `host` is
    /// empty until the lease gives it back. Written under `host`'s lock.
    lent: AtomicBool,
    /// Notified (under `host`'s lock) when a lent host comes back.
    returned: Condvar,
}

thread_local! {
    /// The slot this thread looked up last: (registry id, origin, slot).
    /// A thread delivering to one daemon skips the map's lock and lookup,
    /// and takes the slot out and puts it back rather than counting
    /// references. A retired slot is never used (looked up again); its host
    /// was taken out by whoever retired it, so what stays here is a shell.
    static LAST: Cell<Option<(u64, u64, Arc<Slot>)>> = const { Cell::new(None) };
    /// This thread's mark for [`Slot::owner`] (0 until first asked).
    static MARK: Cell<u64> = const { Cell::new(0) };
}

/// Registry ids for `LAST` (an address could be reused by a later registry).
static NEXT_REGISTRY_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_THREAD_MARK: AtomicU64 = AtomicU64::new(1);

/// A number unique to this thread in the process, never 0.
fn thread_mark() -> u64 {
    MARK.with(|mark| {
        if mark.get() == 0 {
            mark.set(NEXT_THREAD_MARK.fetch_add(1, Ordering::Relaxed));
        }
        mark.get()
    })
}

fn held_here(slot: &Slot) -> bool {
    slot.owner.load(Ordering::Relaxed) == thread_mark()
}

/// `slot`'s host lock if no thread holds it (this one included) and the
/// host is not lent; the owner mark left as it is.
fn try_lock_host(slot: &Slot) -> Option<MutexGuard<'_, Option<DaemonHost>>> {
    if held_here(slot) {
        return None;
    }
    let guard = match slot.host.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return None,
    };
    (!slot.lent.load(Ordering::Relaxed)).then_some(guard)
}

/// A held slot lock, marked with its holder in [`Slot::owner`] until
/// dropped.
struct SlotGuard<'a> {
    slot: &'a Slot,
    guard: MutexGuard<'a, Option<DaemonHost>>,
}

impl<'a> SlotGuard<'a> {
    /// Waits for the lock, and for a lent host to come back.
    fn lock(slot: &'a Slot) -> Self {
        let mut guard = slot.host.lock().unwrap_or_else(PoisonError::into_inner);
        while slot.lent.load(Ordering::Relaxed) {
            guard = slot
                .returned
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
        slot.owner.store(thread_mark(), Ordering::Relaxed);
        Self { slot, guard }
    }

    /// [`lock`](Self::lock) unless this thread holds it already (`None`).
    fn lock_unless_held(slot: &'a Slot) -> Option<Self> {
        (!held_here(slot)).then(|| Self::lock(slot))
    }

    /// [`lock`](Self::lock) if no thread holds it and its host is not
    /// lent (`None` otherwise, this thread included).
    fn try_lock(slot: &'a Slot) -> Option<Self> {
        let guard = try_lock_host(slot)?;
        slot.owner.store(thread_mark(), Ordering::Relaxed);
        Some(Self { slot, guard })
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        // Before the lock is released (the guard field drops after this).
        self.slot.owner.store(0, Ordering::Relaxed);
    }
}

/// A daemon's host lent out of its registry ([`DaemonRegistry::try_lend`]);
/// given back when dropped (or dropped with it, if the registry is gone).
pub(crate) struct HostLease {
    slot: Arc<Slot>,
    host: Option<DaemonHost>,
}

impl std::fmt::Debug for HostLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostLease")
            .field("daemon", &self.slot.name)
            .finish_non_exhaustive()
    }
}

impl HostLease {
    /// The lent host.
    pub(crate) fn host(&mut self) -> &mut DaemonHost {
        self.host
            .as_mut()
            .expect("a lease holds its host until dropped")
    }
}

impl Drop for HostLease {
    fn drop(&mut self) {
        let mut guard = self
            .slot
            .host
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A slot retired meanwhile (its registry dropped) takes nothing back.
        let gone = if self.slot.retired.load(Ordering::Acquire) {
            self.host.take()
        } else {
            *guard = self.host.take();
            None
        };
        self.slot.lent.store(false, Ordering::Relaxed);
        self.slot.owner.store(0, Ordering::Relaxed);
        self.slot.returned.notify_all();
        drop(guard);
        drop(gone);
    }
}

/// Interest in a registry's changes ([`DaemonRegistry::watch`]): while
/// one lives, deliveries count themselves in the change counter.
///
/// Why the order is enough: a watcher registers, reads the counter, then
/// looks at a host under its lock. A delivery it did not see took that
/// lock after it, so it finds the watcher registered and moves the
/// counter past what the watcher read; [`wait`](Self::wait) then returns.
#[derive(Debug)]
pub struct ChangeWatch<'a> {
    registry: &'a DaemonRegistry,
}

impl ChangeWatch<'_> {
    /// The change counter.
    pub fn changes(&self) -> u64 {
        self.registry.changes()
    }

    /// Waits up to `timeout` until the change counter differs from `seen`
    /// (a delivery, registration or removal happened, or someone called
    /// [`DaemonRegistry::bump`]); returns the counter.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let registry = self.registry;
        let lock = registry
            .wait_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (lock, _) = registry
            .changed
            .wait_timeout_while(lock, timeout, |()| {
                registry.changes.load(Ordering::SeqCst) == seen
            })
            .unwrap_or_else(PoisonError::into_inner);
        drop(lock);
        registry.changes()
    }
}

impl Drop for ChangeWatch<'_> {
    fn drop(&mut self) {
        self.registry.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A node's daemons; see the module doc.
#[derive(Debug)]
pub struct DaemonRegistry {
    /// Unique in the process (`LAST`).
    id: u64,
    map: Mutex<SlotMap>,
    /// Changes so far (deliveries, registrations, removals, wake-ups):
    /// waiters sleep on `changed` until it moves. A delivery only bumps
    /// the atomic unless someone waits (`waiters`).
    changes: AtomicU64,
    waiters: AtomicUsize,
    wait_lock: Mutex<()>,
    changed: Condvar,
    /// Mutators about to wait for a host lock (lets tests order threads
    /// without sleeping).
    #[cfg(test)]
    mutators_waiting: std::sync::atomic::AtomicUsize,
}

impl Default for DaemonRegistry {
    fn default() -> Self {
        Self {
            id: NEXT_REGISTRY_ID.fetch_add(1, Ordering::Relaxed),
            map: Mutex::default(),
            changes: AtomicU64::new(0),
            waiters: AtomicUsize::new(0),
            wait_lock: Mutex::new(()),
            changed: Condvar::new(),
            #[cfg(test)]
            mutators_waiting: AtomicUsize::new(0),
        }
    }
}

impl Drop for DaemonRegistry {
    /// Drops the hosts now: a thread may keep one of the slots (its last
    /// look-up) past the registry, and only the empty shell may outlive it.
    fn drop(&mut self) {
        let map = std::mem::take(self.map.get_mut().unwrap_or_else(PoisonError::into_inner));
        for slot in map.into_values() {
            slot.retired.store(true, Ordering::Release);
            // Dropped from inside one of its own daemon's calls: that host
            // is in use; it goes when the thread's slot does. A lent host
            // is dropped by its lease, which finds the slot retired.
            if !held_here(&slot) {
                let mut guard = slot.host.lock().unwrap_or_else(PoisonError::into_inner);
                let host = guard.take();
                drop(guard);
                drop(host);
            }
        }
    }
}

impl DaemonRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> MutexGuard<'_, SlotMap> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on `origin`'s slot: the one this thread used last when it
    /// is that (taken out of `LAST` and put back: no reference counting),
    /// else the map's.
    fn with_slot<R>(
        &self,
        origin: u64,
        f: impl FnOnce(&Arc<Slot>) -> Result<R, DaemonError>,
    ) -> Result<R, DaemonError> {
        let cached = LAST.try_with(Cell::take).ok().flatten();
        // A slot retired before this check is looked up again; one retired
        // after it is as if looked up just before (`run_locked` sees it).
        let slot = match cached {
            Some((id, at, slot))
                if id == self.id && at == origin && !slot.retired.load(Ordering::Acquire) =>
            {
                slot
            }
            _ => self
                .map()
                .get(&origin)
                .cloned()
                .ok_or(DaemonError::NotFound(origin))?,
        };
        let result = f(&slot);
        // A call nested in `f` may have left its own slot here: this one,
        // the outer call's, takes its place.
        let _ = LAST.try_with(|last| last.set(Some((self.id, origin, slot))));
        result
    }

    fn new_slot(host: DaemonHost) -> Arc<Slot> {
        Arc::new(Slot {
            name: host.name().to_owned(),
            host: Mutex::new(Some(host)),
            retired: AtomicBool::new(false),
            owner: AtomicU64::new(0),
            lent: AtomicBool::new(false),
            returned: Condvar::new(),
        })
    }

    /// Adds a host.
    ///
    /// # Errors
    /// [`DaemonError::AlreadyRegistered`] if its origin is taken (the
    /// existing host is kept; `host` is dropped).
    pub fn register(&self, host: DaemonHost) -> Result<(), DaemonError> {
        let origin = host.origin_hash();
        let mut map = self.map();
        if map.contains_key(&origin) {
            return Err(DaemonError::AlreadyRegistered(origin));
        }
        map.insert(origin, Self::new_slot(host));
        drop(map);
        self.bump();
        Ok(())
    }

    /// Counts a change and wakes every [`ChangeWatch::wait`].
    pub fn bump(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            // Under the lock: a waiter between its check and its sleep
            // holds it, so the notification cannot fall in that gap.
            let _lock = self
                .wait_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.changed.notify_all();
        }
    }

    /// [`bump`](Self::bump) for a delivery: only while someone watches
    /// (one atomic add less per event otherwise).
    pub(crate) fn bump_if_watched(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.bump();
        }
    }

    /// The change counter: registrations, removals and [`bump`]s, and
    /// deliveries while a [`ChangeWatch`] lives.
    ///
    /// [`bump`]: Self::bump
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// Registers interest in changes; take it **before** reading the
    /// counter and looking at what to wait for, so every delivery after
    /// that look moves the counter.
    pub fn watch(&self) -> ChangeWatch<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        ChangeWatch { registry: self }
    }

    /// Installs `host`, replacing any host of its origin (the slot is
    /// never empty). Waits for a call in flight on the old host and returns
    /// it (`None` if there was none, or when called from inside its own
    /// `with_host`).
    pub fn replace(&self, host: DaemonHost) -> Option<DaemonHost> {
        let origin = host.origin_hash();
        let new = Self::new_slot(host);
        // Only a removal can find nothing to remove.
        let old = self.swap(origin, Some(new)).unwrap_or_default();
        self.bump();
        old
    }

    /// Removes `origin`'s host. Waits for a call in flight and returns the
    /// host (`None` when called from inside its own `with_host`).
    ///
    /// # Errors
    /// [`DaemonError::NotFound`].
    pub fn unregister(&self, origin: u64) -> Result<Option<DaemonHost>, DaemonError> {
        let old = self.swap(origin, None);
        self.bump();
        old
    }

    /// Replaces (`new` = Some) or removes (`new` = None) `origin`'s slot
    /// after waiting for its host lock; returns the old host.
    fn swap(&self, origin: u64, new: Option<Arc<Slot>>) -> Result<Option<DaemonHost>, DaemonError> {
        loop {
            let old = self.map().get(&origin).cloned();
            let Some(old) = old else {
                let mut map = self.map();
                if map.contains_key(&origin) {
                    continue; // registered meanwhile: wait for its lock first
                }
                return match new {
                    Some(slot) => {
                        map.insert(origin, slot);
                        Ok(None)
                    }
                    None => Err(DaemonError::NotFound(origin)),
                };
            };
            let mut guard = if held_here(&old) {
                None
            } else {
                #[cfg(test)]
                self.mutators_waiting
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Some(SlotGuard::lock(&old))
            };
            {
                let mut map = self.map();
                if !map.get(&origin).is_some_and(|c| Arc::ptr_eq(c, &old)) {
                    continue; // replaced while we waited: start over
                }
                match &new {
                    Some(slot) => map.insert(origin, Arc::clone(slot)),
                    None => map.remove(&origin),
                };
                old.retired.store(true, Ordering::Release);
            }
            return Ok(guard.as_mut().and_then(|g| g.guard.take()));
        }
    }

    /// Runs `f` on `origin`'s host under its lock. `f` may call any
    /// registry operation, including `unregister`/`replace` of its own
    /// origin, but not a per-daemon call on its own origin.
    ///
    /// # Errors
    /// [`DaemonError::NotFound`], [`DaemonError::Stale`] (the host was
    /// replaced or removed while waiting; `f` did not run), or
    /// [`DaemonError::Reentrant`].
    pub fn with_host<R>(
        &self,
        origin: u64,
        f: impl FnOnce(&mut DaemonHost) -> R,
    ) -> Result<R, DaemonError> {
        self.with_slot(origin, |slot| self.run_locked(origin, slot, f))
    }

    fn run_locked<R>(
        &self,
        origin: u64,
        slot: &Arc<Slot>,
        f: impl FnOnce(&mut DaemonHost) -> R,
    ) -> Result<R, DaemonError> {
        let Some(mut guard) = SlotGuard::lock_unless_held(slot) else {
            return Err(DaemonError::Reentrant(origin));
        };
        if slot.retired.load(Ordering::Acquire) {
            return Err(DaemonError::Stale(origin));
        }
        let host = guard.guard.as_mut().ok_or(DaemonError::Stale(origin))?;
        Ok(f(host))
    }

    /// Delivers an event to `origin`'s daemon; returns its chained outputs.
    ///
    /// # Errors
    /// As [`with_host`](Self::with_host), or the host's
    /// [`deliver`](DaemonHost::deliver) error.
    pub fn deliver(
        &self,
        origin: u64,
        event: &CausalEvent,
    ) -> Result<Vec<CausalEvent>, DaemonError> {
        let outputs = self.with_host(origin, |host| host.deliver(event));
        self.bump_if_watched();
        outputs?
    }

    /// [`deliver`](Self::deliver) if `proceed` still holds once the
    /// daemon's lock is taken (`None`, nothing done, otherwise): a caller
    /// that skips its own lock reads its condition where no snapshot can
    /// interleave.
    ///
    /// # Errors
    /// As [`deliver`](Self::deliver).
    pub fn deliver_when(
        &self,
        origin: u64,
        event: &CausalEvent,
        proceed: impl FnOnce() -> bool,
    ) -> Result<Option<Vec<CausalEvent>>, DaemonError> {
        let delivered = self.with_slot(origin, |slot| {
            self.run_locked(origin, slot, |host| proceed().then(|| host.deliver(event)))
        })?;
        let Some(outputs) = delivered else {
            return Ok(None);
        };
        self.bump_if_watched();
        outputs.map(Some)
    }

    /// Delivers `events` in order to `origin`'s daemon in one
    /// [`DaemonHost::deliver_batch_at`] under one host lock; waiters see
    /// the counts after the whole batch.
    ///
    /// # Errors
    /// As [`with_host`](Self::with_host) (nothing delivered); a failure
    /// partway is in the returned [`BatchDelivered`].
    pub fn deliver_batch(
        &self,
        origin: u64,
        events: &[CausalEvent],
        wait: &BatchWait,
    ) -> Result<BatchDelivered, DaemonError> {
        let delivered = self.with_host(origin, |host| {
            host.deliver_batch_at(events, wait, crate::redex::now_ns())
        });
        self.bump_if_watched();
        delivered
    }

    /// [`deliver_batch`](Self::deliver_batch) if `proceed()`, asked once
    /// the daemon's lock is held, says so; `Ok(None)` (nothing delivered)
    /// if not. The batch counterpart of [`deliver_when`](Self::deliver_when).
    ///
    /// # Errors
    /// As [`deliver_batch`](Self::deliver_batch).
    pub fn deliver_batch_when(
        &self,
        origin: u64,
        events: &[CausalEvent],
        wait: &BatchWait,
        proceed: impl FnOnce() -> bool,
    ) -> Result<Option<BatchDelivered>, DaemonError> {
        let delivered = self.with_host(origin, |host| {
            proceed().then(|| host.deliver_batch_at(events, wait, crate::redex::now_ns()))
        })?;
        if delivered.is_some() {
            self.bump_if_watched();
        }
        Ok(delivered)
    }

    /// `f` on `origin`'s host if no thread holds its lock now; `Ok(None)`
    /// (`f` dropped uncalled) if one does.
    fn try_with_host<R>(
        &self,
        origin: u64,
        f: impl FnOnce(&mut DaemonHost) -> R,
    ) -> Result<Option<R>, DaemonError> {
        self.with_slot(origin, |slot| {
            let Some(mut guard) = SlotGuard::try_lock(slot) else {
                return Ok(None);
            };
            if slot.retired.load(Ordering::Acquire) {
                return Err(DaemonError::Stale(origin));
            }
            let host = guard.guard.as_mut().ok_or(DaemonError::Stale(origin))?;
            Ok(Some(f(host)))
        })
    }

    /// [`deliver`](Self::deliver) if the daemon is free now, calling
    /// `locked` once its lock is held (a caller hands its own lock over
    /// there); `Ok(None)` if another thread holds the daemon (nothing done;
    /// `locked` dropped uncalled).
    ///
    /// # Errors
    /// As [`deliver`](Self::deliver).
    pub(crate) fn try_deliver(
        &self,
        origin: u64,
        event: &CausalEvent,
        locked: impl FnOnce(),
    ) -> Result<Option<Vec<CausalEvent>>, DaemonError> {
        let delivered = self.try_with_host(origin, |host| {
            locked();
            host.deliver(event)
        })?;
        let Some(outputs) = delivered else {
            return Ok(None);
        };
        self.bump_if_watched();
        outputs.map(Some)
    }

    /// [`deliver_batch`](Self::deliver_batch) as
    /// [`try_deliver`](Self::try_deliver) delivers one event.
    ///
    /// # Errors
    /// As [`deliver_batch`](Self::deliver_batch).
    pub(crate) fn try_deliver_batch(
        &self,
        origin: u64,
        events: &[CausalEvent],
        wait: &BatchWait,
        locked: impl FnOnce(),
    ) -> Result<Option<BatchDelivered>, DaemonError> {
        let delivered = self.try_with_host(origin, |host| {
            locked();
            host.deliver_batch_at(events, wait, crate::redex::now_ns())
        })?;
        if delivered.is_some() {
            self.bump_if_watched();
        }
        Ok(delivered)
    }

    /// Waits until no other thread holds `origin`'s lock (one may take it
    /// again at once).
    ///
    /// # Errors
    /// As [`with_host`](Self::with_host) ([`DaemonError::Reentrant`] if
    /// this thread holds it).
    pub(crate) fn wait_idle(&self, origin: u64) -> Result<(), DaemonError> {
        self.with_host(origin, |_| ())
    }

    /// Lends `origin`'s host out if no thread holds it now and `lend`,
    /// asked with the host under its lock, agrees: until the
    /// [`HostLease`] is dropped every other call on the daemon waits (or,
    /// trying, finds it busy) as if the lease's holder held its lock, and
    /// the borrowing thread's own calls on it fail with
    /// [`DaemonError::Reentrant`]. `Ok(None)`, nothing lent, when it is
    /// busy or `lend` refuses. This is how a daemon's lock is held across
    /// calls into the library (a batch an SDK applies on its own thread).
    ///
    /// # Errors
    /// [`DaemonError::NotFound`], [`DaemonError::Stale`].
    pub(crate) fn try_lend(
        &self,
        origin: u64,
        lend: impl FnOnce(&mut DaemonHost) -> bool,
    ) -> Result<Option<HostLease>, DaemonError> {
        self.with_slot(origin, |slot| {
            let Some(mut guard) = try_lock_host(slot) else {
                return Ok(None);
            };
            if slot.retired.load(Ordering::Acquire) {
                return Err(DaemonError::Stale(origin));
            }
            let host = guard.as_mut().ok_or(DaemonError::Stale(origin))?;
            if !lend(host) {
                return Ok(None);
            }
            let host = guard.take();
            slot.lent.store(true, Ordering::Relaxed);
            slot.owner.store(thread_mark(), Ordering::Relaxed);
            drop(guard);
            Ok(Some(HostLease {
                slot: Arc::clone(slot),
                host,
            }))
        })
    }

    /// Snapshots `origin`'s daemon.
    ///
    /// # Errors
    /// As [`with_host`](Self::with_host), or the snapshot error.
    pub fn snapshot(&self, origin: u64) -> Result<DaemonSnapshot, DaemonError> {
        self.with_host(origin, DaemonHost::take_snapshot)?
    }

    /// Restores a snapshot into `origin`'s host in place.
    ///
    /// # Errors
    /// As [`with_host`](Self::with_host), or the restore error.
    pub fn restore_from_snapshot(
        &self,
        origin: u64,
        snapshot: &StateSnapshot,
        ext: Option<&NetSnapshotExt>,
    ) -> Result<(), DaemonError> {
        self.with_host(origin, |host| host.restore_from_snapshot(snapshot, ext))?
    }

    /// `origin`'s counters.
    ///
    /// # Errors
    /// As [`with_host`](Self::with_host).
    pub fn stats(&self, origin: u64) -> Result<DaemonStats, DaemonError> {
        self.with_host(origin, |host| host.stats())
    }

    /// A copy of `origin`'s keypair; `None` if absent or stale.
    pub fn daemon_keypair(&self, origin: u64) -> Option<EntityKeypair> {
        self.with_host(origin, |host| host.keypair().clone()).ok()
    }

    /// (origin, name) of every daemon, in no particular order.
    pub fn list(&self) -> Vec<(u64, String)> {
        self.map()
            .iter()
            .map(|(&origin, slot)| (origin, slot.name.clone()))
            .collect()
    }

    /// Number of daemons.
    pub fn count(&self) -> usize {
        self.map().len()
    }

    /// Whether `origin` is registered.
    pub fn contains(&self, origin: u64) -> bool {
        self.map().contains_key(&origin)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::{Barrier, mpsc};
    use std::thread;

    use super::*;
    use crate::compute::daemon::test_daemons::{Counter, Echo};

    /// A daemon that holds a reference: counted, it says whether the
    /// daemon was dropped.
    struct Holds(#[allow(dead_code)] Arc<()>);

    impl crate::compute::MeshDaemon for Holds {
        fn name(&self) -> &str {
            "holds"
        }
        fn process(&mut self, _: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
            Ok(Vec::new())
        }
    }

    /// A host (seed 9) of a daemon holding `kept`.
    fn holder_of(kept: &Arc<()>) -> DaemonHost {
        DaemonHost::new(
            Box::new(Holds(Arc::clone(kept))),
            EntityKeypair::from_seed(&[9; 32]),
        )
    }

    fn host(seed: u8) -> DaemonHost {
        DaemonHost::new(
            Box::new(Counter::default()),
            EntityKeypair::from_seed(&[seed; 32]),
        )
    }

    fn ev(seq: u64) -> CausalEvent {
        CausalEvent::bare(42, seq, b"e".to_vec())
    }

    /// The thread's last-slot shortcut never delivers to a replaced or
    /// removed host, or to another registry's host of the same origin, and
    /// does not keep a dropped registry's daemons alive.
    #[test]
    fn the_last_slot_shortcut_follows_replacements_and_registries() {
        let processed = |registry: &DaemonRegistry, origin| {
            registry
                .with_host(origin, |h| h.stats().events_processed)
                .unwrap()
        };
        let registry = DaemonRegistry::new();
        let origin = host(1).origin_hash();
        registry.register(host(1)).unwrap();
        registry.deliver(origin, &ev(1)).unwrap();
        registry.deliver(origin, &ev(2)).unwrap();
        assert_eq!(processed(&registry, origin), 2);
        // Replaced: the next delivery reaches the new host.
        registry.unregister(origin).unwrap();
        assert_eq!(
            registry.deliver(origin, &ev(3)),
            Err(DaemonError::NotFound(origin))
        );
        registry.register(host(1)).unwrap();
        registry.deliver(origin, &ev(1)).unwrap();
        assert_eq!(processed(&registry, origin), 1);
        // Another registry with the same origin, used in turns.
        let other = DaemonRegistry::new();
        other.register(host(1)).unwrap();
        for seq in 1..=3 {
            other.deliver(origin, &ev(seq)).unwrap();
            if seq < 3 {
                registry.deliver(origin, &ev(seq + 1)).unwrap();
            }
        }
        assert_eq!(processed(&other, origin), 3);
        assert_eq!(processed(&registry, origin), 3);
        // A dropped registry's host is dropped, shortcut or not.
        let kept = Arc::new(());
        let dropped = DaemonRegistry::new();
        let holder = holder_of(&kept);
        let holder_origin = holder.origin_hash();
        dropped.register(holder).unwrap();
        dropped.deliver(holder_origin, &ev(1)).unwrap();
        drop(dropped);
        assert_eq!(
            Arc::strong_count(&kept),
            1,
            "the host outlived its registry"
        );
    }

    #[test]
    fn deliveries_and_membership_changes_wake_change_waiters() {
        let registry = Arc::new(DaemonRegistry::new());
        let a = host(1);
        let origin = a.origin_hash();
        let before = registry.changes();
        registry.register(a).unwrap();
        assert_eq!(registry.changes(), before + 1);
        // Unwatched deliveries do not count.
        registry.deliver(origin, &ev(1)).unwrap();
        assert_eq!(registry.changes(), before + 1);
        // Nothing changes: the wait ends at its timeout with the same count.
        let watch = registry.watch();
        let now = watch.changes();
        assert_eq!(watch.wait(now, Duration::from_millis(10)), now);
        // A delivery on another thread wakes a waiter (or, if it came
        // first, the wait returns at once): never a lost wake-up.
        let waiter = {
            let registry = Arc::clone(&registry);
            thread::spawn(move || registry.watch().wait(now, Duration::from_secs(30)))
        };
        registry.deliver(origin, &ev(2)).unwrap();
        assert_eq!(waiter.join().unwrap(), now + 1);
        registry.unregister(origin).unwrap();
        assert_eq!(registry.changes(), now + 2);
        drop(watch);
        assert_eq!(registry.waiters.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn register_deliver_duplicate_list() {
        let registry = DaemonRegistry::new();
        let a = host(1);
        let origin = a.origin_hash();
        registry.register(a).unwrap();
        assert_eq!(
            registry.register(host(1)),
            Err(DaemonError::AlreadyRegistered(origin))
        );
        let echo = DaemonHost::new(Box::new(Echo), EntityKeypair::from_seed(&[2; 32]));
        let echo_origin = echo.origin_hash();
        registry.register(echo).unwrap();
        let out = registry.deliver(origin, &ev(1)).unwrap();
        assert_eq!(out[0].payload, 1u64.to_le_bytes());
        assert_eq!(registry.stats(origin).unwrap().events_processed, 1);
        let mut list = registry.list();
        list.sort();
        let mut expected = vec![
            (origin, "counter".to_owned()),
            (echo_origin, "echo".to_owned()),
        ];
        expected.sort();
        assert_eq!(list, expected);
        assert_eq!(registry.count(), 2);
        assert!(registry.contains(origin));
        assert_eq!(
            registry.daemon_keypair(origin).unwrap().entity_id(),
            EntityKeypair::from_seed(&[1; 32]).entity_id()
        );
        assert_eq!(registry.deliver(7, &ev(1)), Err(DaemonError::NotFound(7)));
        assert_eq!(
            registry.unregister(7).unwrap_err(),
            DaemonError::NotFound(7)
        );
        let removed = registry.unregister(origin).unwrap().unwrap();
        assert_eq!(removed.stats().events_processed, 1);
        assert!(registry.daemon_keypair(origin).is_none());
        assert_eq!(registry.replace(host(1)).map(|h| h.origin_hash()), None);
        assert!(registry.contains(origin));
    }

    #[test]
    fn with_host_may_unregister_its_own_origin() {
        let registry = DaemonRegistry::new();
        let a = host(1);
        let origin = a.origin_hash();
        registry.register(a).unwrap();
        let outcome = registry
            .with_host(origin, |h| {
                let removed = registry.unregister(origin);
                // The closure still owns the host it was given.
                h.deliver(&ev(1)).unwrap();
                removed
            })
            .unwrap();
        assert!(matches!(outcome, Ok(None)));
        assert!(!registry.contains(origin));
        assert_eq!(registry.stats(origin), Err(DaemonError::NotFound(origin)));
    }

    #[test]
    fn relocking_the_same_origin_is_an_error_not_a_deadlock() {
        let registry = DaemonRegistry::new();
        let (a, b) = (host(1), host(2));
        let (origin, other) = (a.origin_hash(), b.origin_hash());
        registry.register(a).unwrap();
        registry.register(b).unwrap();
        let inner = registry
            .with_host(origin, |_| {
                (
                    registry.deliver(origin, &ev(1)),
                    registry.deliver(other, &ev(1)),
                )
            })
            .unwrap();
        assert_eq!(inner.0, Err(DaemonError::Reentrant(origin)));
        assert!(inner.1.is_ok());
    }

    #[test]
    fn a_slow_closure_does_not_block_other_daemons() {
        let registry = DaemonRegistry::new();
        let (a, b) = (host(1), host(2));
        let (slow, fast) = (a.origin_hash(), b.origin_hash());
        registry.register(a).unwrap();
        registry.register(b).unwrap();
        let entered = Barrier::new(2);
        let (release, wait) = mpsc::channel::<()>();
        thread::scope(|s| {
            let (registry, entered) = (&registry, &entered);
            let worker = s.spawn(move || {
                registry.with_host(slow, |_| {
                    entered.wait();
                    wait.recv().unwrap()
                })
            });
            entered.wait();
            // `slow` is held until released; `fast` is independent.
            registry.deliver(fast, &ev(1)).unwrap();
            assert_eq!(registry.stats(fast).unwrap().events_processed, 1);
            release.send(()).unwrap();
            worker.join().unwrap().unwrap();
        });
    }

    #[test]
    fn a_lent_host_holds_off_every_other_call_until_it_comes_back() {
        let registry = DaemonRegistry::new();
        let a = host(1);
        let origin = a.origin_hash();
        registry.register(a).unwrap();
        // Refused by its lender: nothing lent, the daemon free.
        assert!(registry.try_lend(origin, |_| false).unwrap().is_none());
        let mut lease = registry.try_lend(origin, |_| true).unwrap().unwrap();
        // The borrower's own calls on it are re-entrant; trying is refused.
        assert_eq!(
            registry.with_host(origin, |_| ()),
            Err(DaemonError::Reentrant(origin))
        );
        assert!(registry.try_lend(origin, |_| true).unwrap().is_none());
        let started = Barrier::new(2);
        thread::scope(|s| {
            let (registry, started) = (&registry, &started);
            let other = s.spawn(move || {
                // Another thread finds it busy, then waits for it.
                assert!(registry.try_lend(origin, |_| true).unwrap().is_none());
                assert!(
                    registry
                        .try_deliver(origin, &ev(1), || ())
                        .unwrap()
                        .is_none()
                );
                started.wait();
                registry.deliver(origin, &ev(2)).unwrap();
                registry.stats(origin).unwrap()
            });
            started.wait();
            // What the borrower does with the host is what the waiter sees.
            lease.host().deliver(&ev(1)).unwrap();
            drop(lease);
            let stats = other.join().unwrap();
            assert_eq!(stats.events_processed, 2);
        });
        // Given back: lent again at once, and unregister waits for it.
        let lease = registry.try_lend(origin, |_| true).unwrap().unwrap();
        thread::scope(|s| {
            let registry = &registry;
            let removal = s.spawn(move || registry.unregister(origin));
            drop(lease);
            let host = removal.join().unwrap().unwrap().unwrap();
            assert_eq!(host.stats().events_processed, 2);
        });
        assert!(matches!(
            registry.try_lend(origin, |_| true),
            Ok(None) | Err(DaemonError::NotFound(_))
        ));
    }

    #[test]
    fn a_registry_dropped_while_a_host_is_lent_leaves_the_host_to_the_lease() {
        let kept = Arc::new(());
        let registry = DaemonRegistry::new();
        let holder = holder_of(&kept);
        let origin = holder.origin_hash();
        registry.register(holder).unwrap();
        let lease = thread::scope(|s| {
            s.spawn(|| registry.try_lend(origin, |_| true).unwrap().unwrap())
                .join()
                .unwrap()
        });
        // Dropped on another thread than the borrower's, without waiting.
        drop(registry);
        assert_eq!(Arc::strong_count(&kept), 2, "the lease still has it");
        drop(lease);
        assert_eq!(Arc::strong_count(&kept), 1, "dropped with the lease");
    }

    #[test]
    fn replace_or_unregister_between_lookup_and_lock_is_stale() {
        for unregister in [false, true] {
            let registry = DaemonRegistry::new();
            let a = host(1);
            let origin = a.origin_hash();
            registry.register(a).unwrap();
            registry
                .with_slot(origin, |looked_up| {
                    if unregister {
                        registry.unregister(origin).unwrap().unwrap();
                    } else {
                        registry.replace(host(1)).unwrap();
                    }
                    let mut ran = false;
                    let result = registry.run_locked(origin, looked_up, |_| ran = true);
                    assert_eq!(result, Err(DaemonError::Stale(origin)));
                    assert!(!ran);
                    Ok(())
                })
                .unwrap();
            // The retired slot this thread kept is not used again.
            if unregister {
                assert_eq!(
                    registry.with_host(origin, |_| ()),
                    Err(DaemonError::NotFound(origin))
                );
            } else {
                registry.with_host(origin, |_| ()).unwrap();
            }
        }
    }

    /// §8 item 10: a call already inside the host lock when `replace` runs
    /// must not write to an orphan. `replace` waits for it and returns the
    /// old host *with* that call's write.
    #[test]
    fn replace_waits_for_the_call_in_flight_and_keeps_its_write() {
        for unregister in [false, true] {
            let registry = DaemonRegistry::new();
            let a = host(1);
            let origin = a.origin_hash();
            registry.register(a).unwrap();
            let entered = Barrier::new(2);
            let (release, wait) = mpsc::channel::<()>();
            thread::scope(|s| {
                let (registry, entered) = (&registry, &entered);
                let in_flight = s.spawn(move || {
                    registry.with_host(origin, |h| {
                        entered.wait();
                        wait.recv().unwrap();
                        h.deliver(&ev(1)).unwrap()
                    })
                });
                entered.wait();
                let mutator = s.spawn(|| {
                    if unregister {
                        registry.unregister(origin).unwrap()
                    } else {
                        registry.replace(host(1))
                    }
                });
                while registry.mutators_waiting.load(Ordering::SeqCst) == 0 {
                    thread::yield_now();
                }
                release.send(()).unwrap();
                let out = in_flight.join().unwrap().unwrap();
                assert_eq!(out.len(), 1);
                let old = mutator
                    .join()
                    .unwrap()
                    .expect("the old host is handed back");
                assert_eq!(old.stats().events_processed, 1);
            });
            if unregister {
                assert!(!registry.contains(origin));
            } else {
                assert_eq!(registry.stats(origin).unwrap().events_processed, 0);
            }
        }
    }

    /// Delivers race replaces: every successful deliver is counted in
    /// exactly one host (a replaced one handed back, or the last one), and
    /// every Stale one in none.
    #[test]
    fn racing_delivers_and_replaces_lose_no_write() {
        const DELIVERERS: usize = 3;
        const PER_THREAD: usize = 200;
        const REPLACES: usize = 50;
        let registry = DaemonRegistry::new();
        let first = host(1);
        let origin = first.origin_hash();
        registry.register(first).unwrap();
        let start = Barrier::new(DELIVERERS + 1);
        let (ok, replaced) = thread::scope(|s| {
            let deliverers: Vec<_> = (0..DELIVERERS)
                .map(|_| {
                    let (registry, start) = (&registry, &start);
                    s.spawn(move || {
                        start.wait();
                        let mut ok = 0u64;
                        for seq in 1..=PER_THREAD as u64 {
                            match registry.deliver(origin, &ev(seq)) {
                                Ok(_) => ok += 1,
                                Err(DaemonError::Stale(_)) => {}
                                Err(other) => panic!("{other}"),
                            }
                        }
                        ok
                    })
                })
                .collect();
            start.wait();
            let mut replaced = 0u64;
            for _ in 0..REPLACES {
                let old = registry.replace(host(1)).expect("a host was registered");
                replaced += old.stats().events_processed;
                thread::yield_now();
            }
            let ok: u64 = deliverers.into_iter().map(|d| d.join().unwrap()).sum();
            (ok, replaced)
        });
        let last = registry.stats(origin).unwrap().events_processed;
        assert_eq!(replaced + last, ok);
    }

    #[test]
    fn restore_and_snapshot_through_the_registry() {
        let registry = DaemonRegistry::new();
        let a = host(1);
        let origin = a.origin_hash();
        registry.register(a).unwrap();
        for s in 1..=3 {
            registry.deliver(origin, &ev(s)).unwrap();
        }
        let taken = registry.snapshot(origin).unwrap();
        assert_eq!(taken.snapshot.state, 3u64.to_le_bytes());
        registry.replace(host(1));
        registry
            .restore_from_snapshot(origin, &taken.snapshot, Some(&taken.ext))
            .unwrap();
        let out = registry.deliver(origin, &ev(4)).unwrap();
        assert_eq!(out[0].payload, 4u64.to_le_bytes());
        assert_eq!(out[0].link.sequence, 4);
    }
}
