//! Unit tests of [`super::handle_guard::HandleGuard`] itself. (They live
//! outside `handle_guard.rs` because the loom model compiles that file with
//! loom's atomics, which only work inside `loom::model`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use super::handle_guard::{FFI_HANDLE_FREE_DEADLINE, FreeOutcome, HandleGuard};

#[test]
fn deadline_is_five_seconds() {
    assert_eq!(FFI_HANDLE_FREE_DEADLINE, Duration::from_secs(5));
}

#[test]
fn try_enter_succeeds_and_counts() {
    let guard = HandleGuard::new();
    let a = guard.try_enter().expect("live handle");
    let b = guard.try_enter().expect("live handle");
    assert_eq!(guard.active_ops(), 2);
    drop(a);
    drop(b);
    assert_eq!(guard.active_ops(), 0);
    assert!(!guard.is_freeing());
}

#[test]
fn op_after_free_bails() {
    let guard = HandleGuard::new();
    assert_eq!(
        guard.begin_free(Duration::from_secs(1)),
        FreeOutcome::Drained
    );
    assert!(guard.try_enter().is_none());
    assert_eq!(guard.active_ops(), 0, "a bailed op must undo its increment");
}

#[test]
fn free_waits_for_in_flight_op() {
    let guard = Arc::new(HandleGuard::new());
    let entered = Arc::new(Barrier::new(2));
    let op_finished = Arc::new(AtomicBool::new(false));
    let worker = {
        let (guard, entered, op_finished) = (guard.clone(), entered.clone(), op_finished.clone());
        thread::spawn(move || {
            let op = guard.try_enter().unwrap();
            entered.wait();
            thread::sleep(Duration::from_millis(150));
            op_finished.store(true, Ordering::SeqCst);
            drop(op);
        })
    };
    entered.wait();
    let started = Instant::now();
    assert_eq!(
        guard.begin_free(Duration::from_secs(5)),
        FreeOutcome::Drained
    );
    assert!(
        op_finished.load(Ordering::SeqCst),
        "free returned while the op was in flight"
    );
    assert!(started.elapsed() >= Duration::from_millis(100));
    worker.join().unwrap();
}

#[test]
fn free_times_out_when_an_op_never_ends() {
    let guard = HandleGuard::new();
    let op = guard.try_enter().unwrap();
    let started = Instant::now();
    assert_eq!(
        guard.begin_free(Duration::from_millis(50)),
        FreeOutcome::TimedOut
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    // The op still holds its place; the caller must leak the inner value.
    assert_eq!(guard.active_ops(), 1);
    drop(op);
    assert!(guard.try_enter().is_none());
}

#[test]
fn concurrent_frees_are_idempotent() {
    for _ in 0..50 {
        let guard = Arc::new(HandleGuard::new());
        let start = Arc::new(Barrier::new(8));
        let outcomes: Vec<FreeOutcome> = (0..8)
            .map(|_| {
                let (guard, start) = (guard.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    guard.begin_free(Duration::from_secs(1))
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
        let guard = Arc::new(HandleGuard::new());
        let freed = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(5));
        let ops: Vec<_> = (0..4)
            .map(|_| {
                let (guard, freed, start) = (guard.clone(), freed.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for _ in 0..2_000 {
                        if let Some(op) = guard.try_enter() {
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
            guard.begin_free(Duration::from_secs(5)),
            FreeOutcome::Drained
        );
        freed.store(true, Ordering::SeqCst);
        for op in ops {
            op.join().unwrap();
        }
    }
}
