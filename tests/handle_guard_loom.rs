//! Loom model of the FFI handle lifetime protocol.
//!
//! This compiles `src/ffi/handle_guard.rs` itself (not a copy) against loom's
//! atomics through the `sync` module below, and explores every interleaving
//! of operations racing a free. The inner value is a loom `UnsafeCell`, so
//! loom also proves that an operation's reads happen-before the free's drop:
//! a missing edge in the SeqCst handshake would be reported as a data race.

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

mod sync {
    pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

    /// Loom has no clock: the drain deadline never expires in the model (the
    /// timeout path is covered by the std unit tests).
    pub(crate) struct Deadline;

    impl Deadline {
        pub(crate) fn after(_timeout: std::time::Duration) -> Self {
            Deadline
        }

        pub(crate) fn expired(&self) -> bool {
            false
        }
    }

    pub(crate) fn backoff(_round: u32) {
        loom::thread::yield_now();
    }
}

#[path = "../src/ffi/handle_guard.rs"]
#[allow(dead_code)]
mod handle_guard;

use handle_guard::{FreeOutcome, HandleGuard};

/// What a handle holds in the model: a guard, the generation its pointer
/// carries, and a value that the free "drops" by writing a tombstone.
struct ModelHandle {
    guard: HandleGuard,
    generation: u32,
    inner: UnsafeCell<u64>,
}

const LIVE: u64 = 0x11;
const DROPPED: u64 = 0xdead;

impl ModelHandle {
    fn new() -> Self {
        let guard = HandleGuard::new();
        let generation = guard.publish();
        Self {
            guard,
            generation,
            inner: UnsafeCell::new(LIVE),
        }
    }

    /// An FFI operation: enter, read the inner value, leave.
    fn op(&self) -> bool {
        match self.guard.try_enter(self.generation) {
            Some(_op) => {
                let value = self.inner.with(|p| unsafe { *p });
                assert_eq!(value, LIVE, "operation saw a dropped inner value");
                true
            }
            None => false,
        }
    }

    /// `_free`: begin_free, then drop the inner value only if drained.
    fn free(&self) -> FreeOutcome {
        let outcome = self
            .guard
            .begin_free(self.generation, std::time::Duration::from_secs(5));
        if outcome == FreeOutcome::Drained {
            self.inner.with_mut(|p| unsafe { *p = DROPPED });
        }
        outcome
    }
}

#[test]
fn op_racing_free_never_sees_a_dropped_value() {
    loom::model(|| {
        let handle = Arc::new(ModelHandle::new());
        let op = {
            let handle = handle.clone();
            thread::spawn(move || handle.op())
        };
        assert_eq!(handle.free(), FreeOutcome::Drained);
        op.join().unwrap();
        // Whatever the interleaving, nothing enters after the free.
        assert!(!handle.op());
    });
}

#[test]
fn two_ops_racing_free() {
    loom::model(|| {
        let handle = Arc::new(ModelHandle::new());
        let ops: Vec<_> = (0..2)
            .map(|_| {
                let handle = handle.clone();
                thread::spawn(move || handle.op())
            })
            .collect();
        assert_eq!(handle.free(), FreeOutcome::Drained);
        for op in ops {
            op.join().unwrap();
        }
    });
}

#[test]
fn concurrent_frees_drop_exactly_once() {
    loom::model(|| {
        let handle = Arc::new(ModelHandle::new());
        let drained = Arc::new(AtomicUsize::new(0));
        let frees: Vec<_> = (0..2)
            .map(|_| {
                let (handle, drained) = (handle.clone(), drained.clone());
                thread::spawn(move || match handle.free() {
                    FreeOutcome::Drained => {
                        drained.fetch_add(1, Ordering::SeqCst);
                    }
                    FreeOutcome::AlreadyFreeing => {}
                    other => panic!("unexpected {other:?}"),
                })
            })
            .collect();
        let entered = handle.op();
        for f in frees {
            f.join().unwrap();
        }
        assert_eq!(drained.load(Ordering::SeqCst), 1);
        let _ = entered;
    });
}

#[test]
fn op_after_free_bails() {
    loom::model(|| {
        let handle = ModelHandle::new();
        assert_eq!(handle.free(), FreeOutcome::Drained);
        assert!(!handle.op());
        assert_eq!(handle.free(), FreeOutcome::AlreadyFreeing);
        assert_eq!(handle.guard.active_ops(), 0);
    });
}

#[test]
fn an_old_pointer_racing_a_recycle_never_enters_the_new_handle() {
    loom::model(|| {
        let handle = Arc::new(ModelHandle::new());
        let old_generation = handle.generation;
        let stale = {
            let handle = handle.clone();
            thread::spawn(move || handle.guard.try_enter(old_generation).is_some())
        };
        assert_eq!(handle.free(), FreeOutcome::Drained);
        let next = handle.guard.recycle().expect("generations left");
        assert_eq!(handle.guard.publish(), next);
        // The old generation's op either got in before the free (and the free
        // waited for it) or is refused; after the recycle it is always refused.
        let _ = stale.join().unwrap();
        assert!(handle.guard.try_enter(old_generation).is_none());
        assert!(handle.guard.try_enter(next).is_some());
    });
}
