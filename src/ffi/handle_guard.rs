//! `HandleGuard`: the lifetime protocol every FFI handle embeds.
//!
//! Foreign callers (Go goroutines, Python threads, Node workers, C threads) may
//! call `net_<thing>_free` while another thread is inside an operation on the
//! same handle, or call with a handle freed long ago. The guard makes both
//! safe:
//!
//! * every operation calls [`HandleGuard::try_enter`] with the generation its
//!   handle pointer carries and holds the returned [`HandleOp`] for its whole
//!   duration;
//! * `_free` calls [`HandleGuard::begin_free`], which marks the handle as
//!   freeing and then waits (up to a deadline) for in-flight operations to
//!   drain. Only when it returns [`FreeOutcome::Drained`] may the inner value
//!   be dropped; on [`FreeOutcome::TimedOut`] it must be leaked;
//! * once the inner value is gone, [`HandleGuard::recycle`] moves the guard to
//!   the next generation, so the slot can carry a new handle while every
//!   pointer to the old one keeps being refused.
//!
//! All state is one atomic word — the generation, a "freeing" bit and the
//! count of operations in flight — changed only by compare-and-swap, so an
//! operation enters only if, in one indivisible step, the generation still
//! matches and no free has begun; a free sees every operation that got in.
//! The successful enter is an acquire (it sees the value the handle was
//! published with) and leaving is a release that the drain's acquire load
//! pairs with (the operation's reads of the value happen before the free
//! drops it).
//!
//! This file is also compiled by `tests/handle_guard_loom.rs` against loom's
//! atomics; keep its imports going through `super::sync`.

use std::time::Duration;

use super::sync::{
    AtomicU64, Deadline, Ordering::AcqRel, Ordering::Acquire, Ordering::Release, backoff,
};

/// How long `_free` waits for in-flight operations before leaking the inner
/// value instead of freeing memory that is still in use.
pub const FFI_HANDLE_FREE_DEADLINE: Duration = Duration::from_secs(5);

/// Bits of generation a handle carries (see `ffi::handle` for where they sit
/// in the pointer). A slot whose generation would wrap is retired.
pub(crate) const GENERATION_BITS: u32 = 22;

const OPS_MASK: u64 = 0xFFFF_FFFF;
const FREEING: u64 = 1 << 32;
const GENERATION_SHIFT: u32 = 33;
const GENERATION_MASK: u64 = (1 << GENERATION_BITS) - 1;

fn generation_of(state: u64) -> u32 {
    ((state >> GENERATION_SHIFT) & GENERATION_MASK) as u32
}

fn vacant(generation: u32) -> u64 {
    (u64::from(generation) << GENERATION_SHIFT) | FREEING
}

/// The per-handle lifetime state: generation, "freeing" flag, operations in
/// flight.
#[derive(Debug)]
pub struct HandleGuard {
    state: AtomicU64,
}

/// Proof that an operation is in flight on a live handle. Dropping it ends the
/// operation.
#[derive(Debug)]
#[must_use = "the operation ends when the HandleOp is dropped"]
pub struct HandleOp<'a> {
    guard: &'a HandleGuard,
}

impl Drop for HandleOp<'_> {
    fn drop(&mut self) {
        self.guard.state.fetch_sub(1, Release);
    }
}

/// What [`HandleGuard::begin_free`] concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum FreeOutcome {
    /// This caller won the free and every in-flight operation has finished:
    /// the inner value may now be taken out and dropped.
    Drained,
    /// This caller won the free but operations were still in flight at the
    /// deadline: the inner value must be leaked.
    TimedOut,
    /// Another caller already freed (or is freeing) the handle, or the handle
    /// is from an older generation: do nothing.
    AlreadyFreeing,
}

impl Default for HandleGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl HandleGuard {
    /// A guard for an empty slot: generation 0, not enterable until
    /// [`publish`](Self::publish).
    pub fn new() -> Self {
        Self {
            state: AtomicU64::new(vacant(0)),
        }
    }

    /// The generation the guard is at.
    pub fn generation(&self) -> u32 {
        generation_of(self.state.load(Acquire))
    }

    /// Makes a vacant slot live: operations carrying its current generation
    /// may enter from now on. Everything written to the slot before this is
    /// visible to them. Returns that generation.
    pub fn publish(&self) -> u32 {
        let previous = self.state.fetch_and(!FREEING, Release);
        debug_assert_eq!(previous & OPS_MASK, 0, "published a slot in use");
        generation_of(previous)
    }

    /// Enters an operation on the handle of `generation`, or returns `None`
    /// if that handle is being (or has been) freed.
    pub fn try_enter(&self, generation: u32) -> Option<HandleOp<'_>> {
        let mut current = self.state.load(Acquire);
        loop {
            if generation_of(current) != generation
                || current & FREEING != 0
                || current & OPS_MASK == OPS_MASK
            {
                return None;
            }
            match self
                .state
                .compare_exchange_weak(current, current + 1, AcqRel, Acquire)
            {
                Ok(_) => return Some(HandleOp { guard: self }),
                Err(seen) => current = seen,
            }
        }
    }

    /// Marks the handle of `generation` as freeing. Returns `true` for the one
    /// caller that made the transition; every later or concurrent caller, and
    /// any caller with another generation, gets `false`.
    ///
    /// After this returns `true`, no new operation can enter. Operations
    /// already in flight keep running; [`wait_drained`](Self::wait_drained)
    /// waits for them.
    pub fn mark_freeing(&self, generation: u32) -> bool {
        let mut current = self.state.load(Acquire);
        loop {
            if generation_of(current) != generation || current & FREEING != 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(current, current | FREEING, AcqRel, Acquire)
            {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// Waits until no operation is in flight, up to `timeout`. Returns `true`
    /// when drained. Only meaningful after [`mark_freeing`](Self::mark_freeing).
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = Deadline::after(timeout);
        let mut round = 0u32;
        while self.state.load(Acquire) & OPS_MASK != 0 {
            if deadline.expired() {
                return false;
            }
            backoff(round);
            round = round.saturating_add(1);
        }
        true
    }

    /// [`mark_freeing`](Self::mark_freeing) then
    /// [`wait_drained`](Self::wait_drained): the whole free handshake.
    pub fn begin_free(&self, generation: u32, timeout: Duration) -> FreeOutcome {
        if !self.mark_freeing(generation) {
            return FreeOutcome::AlreadyFreeing;
        }
        if self.wait_drained(timeout) {
            FreeOutcome::Drained
        } else {
            FreeOutcome::TimedOut
        }
    }

    /// After a [`FreeOutcome::Drained`] free has dropped the inner value:
    /// moves the slot to the next generation, still vacant. Returns that
    /// generation, or `None` when the generations are used up (the slot must
    /// then never be reused, so that no old pointer can reach a new handle).
    pub fn recycle(&self) -> Option<u32> {
        let current = self.state.load(Acquire);
        debug_assert_eq!(current & OPS_MASK, 0, "recycled a slot in use");
        debug_assert_ne!(current & FREEING, 0, "recycled a live slot");
        let next = generation_of(current).checked_add(1)?;
        if u64::from(next) > GENERATION_MASK {
            return None;
        }
        self.state.store(vacant(next), Release);
        Some(next)
    }

    /// True once a free has begun (or the slot is vacant).
    pub fn is_freeing(&self) -> bool {
        self.state.load(Acquire) & FREEING != 0
    }

    /// Operations currently in flight (a snapshot).
    pub fn active_ops(&self) -> u32 {
        (self.state.load(Acquire) & OPS_MASK) as u32
    }
}
