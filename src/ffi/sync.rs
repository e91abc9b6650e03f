//! The synchronisation primitives [`super::handle_guard`] is written against.
//!
//! `tests/handle_guard_loom.rs` compiles `handle_guard.rs` a second time with
//! its own `sync` module that swaps these for loom's model-checked versions, so
//! the model checks the very code that ships.

use std::time::{Duration, Instant};

pub(crate) use std::sync::atomic::{AtomicU64, Ordering};

/// A point in time after which waiting gives up.
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    pub(crate) fn after(timeout: Duration) -> Self {
        Self(Instant::now().checked_add(timeout))
    }

    pub(crate) fn expired(&self) -> bool {
        self.0.is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// Waits a little before the `round`-th re-check of a condition: spin first,
/// then yield, then sleep, so a short drain costs nothing and a long one does
/// not burn a core.
pub(crate) fn backoff(round: u32) {
    if round < 64 {
        std::hint::spin_loop();
    } else if round < 128 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(200));
    }
}
