//! Unit tests of [`super::handle_guard::HandleGuard`] itself. (They live
//! outside `handle_guard.rs` because the loom model compiles that file with
//! loom's atomics, which only work inside `loom::model`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use super::handle_guard::{FFI_HANDLE_FREE_DEADLINE, FreeOutcome, GENERATION_BITS, HandleGuard};

/// A live guard and its generation.
fn live() -> (HandleGuard, u32) {
    let guard = HandleGuard::new();
    let generation = guard.publish();
    (guard, generation)
}

#[test]
fn deadline_is_five_seconds() {
    assert_eq!(FFI_HANDLE_FREE_DEADLINE, Duration::from_secs(5));
}

#[test]
fn a_new_slot_is_not_enterable_until_published() {
    let guard = HandleGuard::new();
    assert!(guard.try_enter(guard.generation()).is_none());
    let generation = guard.publish();
    assert!(guard.try_enter(generation).is_some());
}

#[test]
fn try_enter_succeeds_and_counts() {
    let (guard, generation) = live();
    let a = guard.try_enter(generation).expect("live handle");
    let b = guard.try_enter(generation).expect("live handle");
    assert_eq!(guard.active_ops(), 2);
    drop(a);
    drop(b);
    assert_eq!(guard.active_ops(), 0);
    assert!(!guard.is_freeing());
}

#[test]
fn another_generation_is_refused() {
    let (guard, generation) = live();
    assert!(guard.try_enter(generation + 1).is_none());
    assert_eq!(
        guard.begin_free(generation + 1, Duration::ZERO),
        FreeOutcome::AlreadyFreeing
    );
    assert!(
        !guard.is_freeing(),
        "a wrong-generation free changes nothing"
    );
}

#[test]
fn op_after_free_bails() {
    let (guard, generation) = live();
    assert_eq!(
        guard.begin_free(generation, Duration::from_secs(1)),
        FreeOutcome::Drained
    );
    assert!(guard.try_enter(generation).is_none());
    assert_eq!(guard.active_ops(), 0, "a bailed op leaves no count behind");
}

#[test]
fn recycle_moves_to_the_next_generation_and_refuses_the_old_one() {
    let (guard, generation) = live();
    assert_eq!(
        guard.begin_free(generation, Duration::ZERO),
        FreeOutcome::Drained
    );
    let next = guard.recycle().unwrap();
    assert_eq!(next, generation + 1);
    assert!(guard.try_enter(next).is_none(), "vacant until published");
    assert_eq!(guard.publish(), next);
    assert!(guard.try_enter(generation).is_none());
    assert!(guard.try_enter(next).is_some());
}

#[test]
fn the_last_generation_cannot_be_recycled() {
    let (guard, mut generation) = live();
    // Walk to the last generation quickly: free + recycle + publish.
    while generation < (1 << GENERATION_BITS) - 1 {
        assert_eq!(
            guard.begin_free(generation, Duration::ZERO),
            FreeOutcome::Drained
        );
        generation = guard.recycle().unwrap();
        assert_eq!(guard.publish(), generation);
    }
    assert_eq!(
        guard.begin_free(generation, Duration::ZERO),
        FreeOutcome::Drained
    );
    assert_eq!(guard.recycle(), None, "the slot is retired");
    assert!(guard.try_enter(generation).is_none());
}

#[test]
fn free_waits_for_in_flight_op() {
    let (guard, generation) = live();
    let guard = Arc::new(guard);
    let entered = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let op_finished = Arc::new(AtomicBool::new(false));
    let worker = {
        let (guard, entered, release, op_finished) = (
            guard.clone(),
            entered.clone(),
            release.clone(),
            op_finished.clone(),
        );
        thread::spawn(move || {
            let op = guard.try_enter(generation).unwrap();
            entered.wait();
            release.wait();
            op_finished.store(true, Ordering::SeqCst);
            drop(op);
        })
    };
    entered.wait();
    assert!(guard.mark_freeing(generation));
    // The free has begun and cannot drain while the op is inside.
    assert!(!guard.wait_drained(Duration::ZERO));
    release.wait();
    assert!(guard.wait_drained(Duration::from_secs(60)));
    assert!(
        op_finished.load(Ordering::SeqCst),
        "drained while the op was in flight"
    );
    worker.join().unwrap();
}

#[test]
fn free_times_out_when_an_op_never_ends() {
    let (guard, generation) = live();
    let op = guard.try_enter(generation).unwrap();
    let started = Instant::now();
    assert_eq!(
        guard.begin_free(generation, Duration::from_millis(50)),
        FreeOutcome::TimedOut
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    // The op still holds its place; the caller must leak the inner value.
    assert_eq!(guard.active_ops(), 1);
    drop(op);
    assert!(guard.try_enter(generation).is_none());
}

#[test]
fn concurrent_frees_are_idempotent() {
    for _ in 0..50 {
        let (guard, generation) = live();
        let guard = Arc::new(guard);
        let start = Arc::new(Barrier::new(8));
        let outcomes: Vec<FreeOutcome> = (0..8)
            .map(|_| {
                let (guard, start) = (guard.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    guard.begin_free(generation, Duration::from_secs(60))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let winners = outcomes
            .iter()
            .filter(|o| **o == FreeOutcome::Drained)
            .count();
        let others = outcomes
            .iter()
            .filter(|o| **o == FreeOutcome::AlreadyFreeing)
            .count();
        assert_eq!((winners, others), (1, 7), "{outcomes:?}");
    }
}

#[test]
fn racing_ops_and_free_never_overlap_a_drained_free() {
    // Many threads hammer try_enter while one frees; after Drained, no op may
    // still be inside and no new op may get in.
    for _ in 0..20 {
        let (guard, generation) = live();
        let guard = Arc::new(guard);
        let freed = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(5));
        let ops: Vec<_> = (0..4)
            .map(|_| {
                let (guard, freed, start) = (guard.clone(), freed.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for _ in 0..2_000 {
                        if let Some(op) = guard.try_enter(generation) {
                            assert!(!freed.load(Ordering::SeqCst), "op entered after drain");
                            std::hint::spin_loop();
                            assert!(!freed.load(Ordering::SeqCst), "drain completed under an op");
                            drop(op);
                        }
                    }
                })
            })
            .collect();
        start.wait();
        assert_eq!(
            guard.begin_free(generation, Duration::from_secs(60)),
            FreeOutcome::Drained
        );
        freed.store(true, Ordering::SeqCst);
        for op in ops {
            op.join().unwrap();
        }
    }
}
