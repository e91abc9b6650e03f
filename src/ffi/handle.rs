//! The handle table: where every FFI handle lives, and how a pointer from C
//! is turned back into it.
//!
//! A handle is a *slot* in a process-wide table: a [`HandleGuard`] (the
//! lifetime protocol), a type tag, and the boxed inner value. Slots live in
//! chunks that are allocated as the number of live handles grows and are
//! never deallocated, so a pointer to a slot always points at valid memory,
//! however late a call races a free. A freed slot goes back to the table
//! once no call can be inside it and carries a new handle later, so memory
//! follows the number of handles alive at once, not the number ever created.
//!
//! What C holds (`net_identity_t *`) is the slot's address with the slot's
//! *generation* folded into bits the address does not use: the low 6 bits
//! (slots are 64-byte aligned) and bits 48–63 (user-space addresses of the
//! 64-bit targets we build for stay below 2^48; chunk allocation checks).
//! Every call checks that the address is a slot of ours, that the slot is
//! still at the pointer's generation, and that the slot holds the right type:
//! a pointer freed long ago gets `NET_ERR_SHUTTING_DOWN` even after its slot
//! was reused, and a pointer to another handle type or to nothing of ours
//! gets `NET_ERR_INVALID_ARGUMENT`. A slot whose generation would wrap
//! (after 2^22 reuses) is retired instead of reused.
//!
//! The encoded value is never dereferenced by C and is never an address in a
//! garbage-collected heap (Go's GC and cgo pointer checks ignore it).

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::error::FfiError;
use super::handle_guard::{
    FFI_HANDLE_FREE_DEADLINE, FreeOutcome, GENERATION_BITS, HandleGuard, HandleOp,
};
use super::status::net_status_t;

/// What an inner value needs to live behind a handle.
pub(crate) trait HandleInner: Send + Sync + Sized + 'static {
    /// Called once a free has begun and before it waits for in-flight
    /// operations: wake everything blocked inside this value (a `_next`
    /// waiting for data, a wait for a sequence number, a flush) so the drain
    /// is quick. No new operation can enter by then.
    fn wake_blocked(&self) {}

    /// Releases the value once no operation is inside it. The default drops
    /// it; values whose release can fail (a final fsync, a fold that does not
    /// stop) report that, and `_free` returns the error's status.
    fn close(self) -> Result<(), FfiError> {
        drop(self);
        Ok(())
    }
}

/// Ties an opaque C handle type (`net_identity_t`) to its inner Rust type.
pub(crate) trait Opaque {
    /// The value the handle owns.
    type Inner: HandleInner;
    /// A tag unique to this handle type, checked on every entry so that a
    /// handle passed to another family's function is refused, not misread.
    const KIND: u32;
    /// The C type name, for error messages.
    const NAME: &'static str;
}

/// Implements [`Opaque`] for a C handle marker type.
macro_rules! opaque_handle {
    ($opaque:ty => $inner:ty, kind = $kind:expr) => {
        impl $crate::ffi::handle::Opaque for $opaque {
            type Inner = $inner;
            const KIND: u32 = u32::from_be_bytes(*$kind);
            const NAME: &'static str = stringify!($opaque);
        }
    };
}
pub(crate) use opaque_handle;

/// A type-erased inner value: the `Box<T>` as a raw pointer and what can be
/// done with it, chosen when the handle is made.
#[derive(Clone, Copy)]
struct Erased {
    ptr: *mut (),
    wake: unsafe fn(*const ()),
    close: unsafe fn(*mut ()) -> Result<(), FfiError>,
}

/// # Safety
/// `ptr` came from `Box::<T>::into_raw` and the value is alive.
unsafe fn wake_erased<T: HandleInner>(ptr: *const ()) {
    // SAFETY: forwarded contract; only `&T` is formed.
    unsafe { &*ptr.cast::<T>() }.wake_blocked();
}

/// # Safety
/// `ptr` came from `Box::<T>::into_raw`, no reference to the value is alive,
/// and this is called once.
unsafe fn close_erased<T: HandleInner>(ptr: *mut ()) -> Result<(), FfiError> {
    // SAFETY: forwarded contract.
    let value = unsafe { Box::from_raw(ptr.cast::<T>()) };
    value.close()
}

/// One handle's place in the table.
#[repr(C, align(64))]
struct Slot {
    guard: HandleGuard,
    kind: AtomicU32,
    /// Written while the slot is vacant (by the allocator) or after a drained
    /// free (by the single freer); read by operations holding a `HandleOp`.
    inner: UnsafeCell<Option<Erased>>,
}

// SAFETY: `inner` is written only by the one thread that owns a vacant slot
// (allocation) or that won and drained the free (no HandleOp exists), and
// read only under a HandleOp; the guard's acquire/release edges order those
// accesses. The values it points to are Send + Sync (HandleInner).
unsafe impl Sync for Slot {}
// SAFETY: as above.
unsafe impl Send for Slot {}

impl Slot {
    fn new() -> Self {
        Self {
            guard: HandleGuard::new(),
            kind: AtomicU32::new(0),
            inner: UnsafeCell::new(None),
        }
    }
}

const SLOT_ALIGN: usize = align_of::<Slot>();
const LOW_GENERATION_BITS: u32 = SLOT_ALIGN.trailing_zeros();
const LOW_GENERATION_MASK: usize = SLOT_ALIGN - 1;
const ADDRESS_BITS: u32 = 48;
const ADDRESS_MASK: usize = ((1usize << ADDRESS_BITS) - 1) & !LOW_GENERATION_MASK;
const MAX_CHUNKS: usize = 40;
const FIRST_CHUNK_SLOTS: usize = 64;

const _: () = assert!(LOW_GENERATION_BITS == 6);
const _: () = assert!(GENERATION_BITS <= LOW_GENERATION_BITS + (64 - ADDRESS_BITS));

/// The table: chunks of slots (chunk `k` holds `64 << k` slots, never
/// freed) and the vacant slots, reused first-in first-out so that a freed
/// slot is reused as late as possible.
struct Table {
    chunks: [AtomicPtr<Slot>; MAX_CHUNKS],
    chunk_count: AtomicUsize,
    vacant: Mutex<VecDeque<&'static Slot>>,
    live: AtomicU64,
    retired: AtomicU64,
}

static TABLE: Table = Table {
    chunks: [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_CHUNKS],
    chunk_count: AtomicUsize::new(0),
    vacant: Mutex::new(VecDeque::new()),
    live: AtomicU64::new(0),
    retired: AtomicU64::new(0),
};

fn chunk_len(index: usize) -> usize {
    FIRST_CHUNK_SLOTS << index
}

impl Table {
    fn vacant(&self) -> MutexGuard<'_, VecDeque<&'static Slot>> {
        self.vacant.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A vacant slot, growing the table when none is left.
    fn take_vacant(&'static self) -> &'static Slot {
        let mut vacant = self.vacant();
        if let Some(slot) = vacant.pop_front() {
            return slot;
        }
        let index = self.chunk_count.load(Ordering::Acquire);
        assert!(index < MAX_CHUNKS, "the FFI handle table is full");
        let chunk: &'static mut [Slot] = Box::leak(
            (0..chunk_len(index))
                .map(|_| Slot::new())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let base = chunk.as_ptr() as usize;
        assert!(
            (base + size_of_val(chunk)) >> ADDRESS_BITS == 0,
            "handle memory above 2^48 cannot carry a generation"
        );
        self.chunks[index].store(chunk.as_mut_ptr(), Ordering::Release);
        self.chunk_count.store(index + 1, Ordering::Release);
        let (first, rest) = chunk.split_first().expect("chunks are not empty");
        vacant.extend(rest.iter());
        first
    }

    fn give_back(&self, slot: &'static Slot) {
        self.vacant().push_back(slot);
    }

    /// The slot at `address`, if it is the start of one of ours.
    fn slot_at(&self, address: usize) -> Option<&'static Slot> {
        let count = self.chunk_count.load(Ordering::Acquire);
        for index in 0..count {
            let base = self.chunks[index].load(Ordering::Acquire) as usize;
            let end = base + chunk_len(index) * size_of::<Slot>();
            if (base..end).contains(&address) && (address - base).is_multiple_of(size_of::<Slot>())
            {
                // SAFETY: the address is the start of a slot inside a chunk
                // that is never deallocated.
                return Some(unsafe { &*(address as *const Slot) });
            }
        }
        None
    }
}

/// Handles alive now, in this process.
pub fn live_handle_count() -> u64 {
    TABLE.live.load(Ordering::Relaxed)
}

/// Calls in flight on the handle behind `ptr` right now (0 for a pointer that
/// is not a live handle). Test builds only: tests use it to know a call is
/// really inside a handle before they race a free against it.
#[cfg(feature = "test-util")]
pub fn calls_in_flight<T>(ptr: *const T) -> u32 {
    let (address, generation) = decode(ptr as usize);
    TABLE
        .slot_at(address)
        .filter(|slot| slot.guard.generation() == generation)
        .map_or(0, |slot| slot.guard.active_ops())
}

/// Slots the handle table holds (live, vacant and retired): what its memory
/// is proportional to.
pub fn handle_slot_count() -> u64 {
    let chunks = TABLE.chunk_count.load(Ordering::Acquire);
    (0..chunks).map(|i| chunk_len(i) as u64).sum()
}

fn encode(slot: &'static Slot, generation: u32) -> usize {
    let address = std::ptr::from_ref(slot) as usize;
    let generation = generation as usize;
    address
        | (generation & LOW_GENERATION_MASK)
        | ((generation >> LOW_GENERATION_BITS) << ADDRESS_BITS)
}

fn decode(value: usize) -> (usize, u32) {
    let generation =
        (value & LOW_GENERATION_MASK) | ((value >> ADDRESS_BITS) << LOW_GENERATION_BITS);
    (value & ADDRESS_MASK, generation as u32)
}

/// An operation in flight on a live handle; derefs to the inner value.
pub(crate) struct Entered<T: 'static> {
    _op: HandleOp<'static>,
    inner: &'static T,
}

impl<T> std::ops::Deref for Entered<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner
    }
}

/// Moves `inner` into a new handle and returns the pointer C will hold.
pub(crate) fn into_raw<O: Opaque>(inner: O::Inner) -> *mut O {
    let slot = TABLE.take_vacant();
    let erased = Erased {
        ptr: Box::into_raw(Box::new(inner)).cast::<()>(),
        wake: wake_erased::<O::Inner>,
        close: close_erased::<O::Inner>,
    };
    slot.kind.store(O::KIND, Ordering::Relaxed);
    // SAFETY: the slot is vacant and ours alone until published below.
    unsafe { *slot.inner.get() = Some(erased) };
    let generation = slot.guard.publish();
    TABLE.live.fetch_add(1, Ordering::Relaxed);
    encode(slot, generation) as *mut O
}

/// The slot and generation behind a handle pointer from C.
fn locate<O: Opaque>(ptr: *const O) -> Result<(&'static Slot, u32), FfiError> {
    if ptr.is_null() {
        return Err(FfiError::invalid_argument(format!(
            "{} handle is NULL",
            O::NAME
        )));
    }
    let (address, generation) = decode(ptr as usize);
    let slot = TABLE.slot_at(address).ok_or_else(|| {
        FfiError::invalid_argument(format!("pointer is not a {} handle", O::NAME))
    })?;
    Ok((slot, generation))
}

fn freed<O: Opaque>() -> FfiError {
    FfiError::new(
        net_status_t::NET_ERR_SHUTTING_DOWN,
        format!("{} has been freed", O::NAME),
    )
}

fn wrong_type<O: Opaque>() -> FfiError {
    FfiError::invalid_argument(format!("pointer is not a {} handle", O::NAME))
}

/// Enters an operation on the handle behind `ptr`.
///
/// # Errors
/// `NET_ERR_INVALID_ARGUMENT` for NULL pointers, pointers that are not our
/// handles and handles of another type; `NET_ERR_SHUTTING_DOWN` once the
/// handle is being (or has been) freed.
pub(crate) fn enter<O: Opaque>(ptr: *const O) -> Result<Entered<O::Inner>, FfiError> {
    let (slot, generation) = locate(ptr)?;
    let op = slot.guard.try_enter(generation).ok_or_else(freed::<O>)?;
    if slot.kind.load(Ordering::Relaxed) != O::KIND {
        return Err(wrong_type::<O>());
    }
    // SAFETY: we hold a HandleOp on the handle's generation, so the slot's
    // inner value was published before the guard let us in and cannot be
    // taken until `op` is dropped; the kind tag says it is an `O::Inner`.
    let inner: &'static O::Inner = unsafe {
        let erased = (*slot.inner.get()).expect("a live handle has a value");
        &*erased.ptr.cast::<O::Inner>()
    };
    Ok(Entered { _op: op, inner })
}

/// The `_free` of every handle type: NULL-safe, idempotent, wakes every call
/// blocked on the handle, waits up to [`FFI_HANDLE_FREE_DEADLINE`] for calls
/// in flight, then releases the value. Returns `NET_OK` (also for NULL and
/// for a handle already freed), the value's close error, or
/// `NET_ERR_BUSY` when calls were still inside at the deadline (the value is
/// then leaked, never freed under them); failures are also logged.
pub(crate) fn free<O: Opaque>(ptr: *mut O) -> Result<(), FfiError> {
    free_with_deadline(ptr, FFI_HANDLE_FREE_DEADLINE).map(|_| ())
}

/// [`free`] with an explicit drain deadline (tests use a short one); on
/// success, what the guard concluded (`None` for NULL).
pub(crate) fn free_with_deadline<O: Opaque>(
    ptr: *mut O,
    deadline: Duration,
) -> Result<Option<FreeOutcome>, FfiError> {
    if ptr.is_null() {
        return Ok(None);
    }
    let (slot, generation) = locate(ptr.cast_const())?;
    {
        // A wrong-type pointer is refused, never freed: check the kind of the
        // handle this generation names while holding it.
        let Some(op) = slot.guard.try_enter(generation) else {
            return Ok(Some(FreeOutcome::AlreadyFreeing));
        };
        if slot.kind.load(Ordering::Relaxed) != O::KIND {
            return Err(wrong_type::<O>());
        }
        drop(op);
    }
    if !slot.guard.mark_freeing(generation) {
        return Ok(Some(FreeOutcome::AlreadyFreeing));
    }
    // SAFETY: we won mark_freeing for this generation, so the value is still
    // there and only shared access happens here, as in any in-flight call.
    let erased = unsafe { (*slot.inner.get()).expect("a live handle has a value") };
    // SAFETY: the value is alive (not taken yet); only `&T` is formed.
    unsafe { (erased.wake)(erased.ptr) };
    if !slot.guard.wait_drained(deadline) {
        TABLE.live.fetch_sub(1, Ordering::Relaxed);
        let message = format!(
            "{} freed while calls on it were still running after {deadline:?}; its \
             resources are leaked rather than freed under them",
            O::NAME
        );
        super::log::warn(&message);
        return Err(FfiError::new(net_status_t::NET_ERR_BUSY, message));
    }
    // SAFETY: we are the single freer and no operation is in flight or can
    // enter again, so we have exclusive access and take the value once.
    let erased = unsafe { (*slot.inner.get()).take() }.expect("a live handle has a value");
    // SAFETY: taken out of the slot just now, so this is its only release.
    let closed = unsafe { (erased.close)(erased.ptr) };
    TABLE.live.fetch_sub(1, Ordering::Relaxed);
    match slot.guard.recycle() {
        Some(_) => TABLE.give_back(slot),
        None => {
            TABLE.retired.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Err(e) = &closed {
        super::log::warn(&format!("{}: {}", O::NAME, e.message));
    }
    closed.map(|()| Some(FreeOutcome::Drained))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::thread;

    /// Tracks whether it has been dropped.
    struct Probe(Arc<AtomicBool>);
    impl HandleInner for Probe {}
    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    struct ProbeHandle;
    opaque_handle!(ProbeHandle => Probe, kind = b"TPRB");

    struct OtherHandle;
    opaque_handle!(OtherHandle => Probe, kind = b"TOTH");

    fn new_probe() -> (*mut ProbeHandle, Arc<AtomicBool>) {
        let dropped = Arc::new(AtomicBool::new(false));
        (into_raw::<ProbeHandle>(Probe(dropped.clone())), dropped)
    }

    fn status<T>(r: Result<T, FfiError>) -> net_status_t {
        r.err().map_or(net_status_t::NET_OK, |e| e.status)
    }

    #[test]
    fn enter_then_free_drops_inner_once() {
        let (h, dropped) = new_probe();
        {
            let _op = enter(h).unwrap();
            assert!(!dropped.load(Ordering::SeqCst));
        }
        assert_eq!(
            free_with_deadline(h, Duration::from_secs(1)).unwrap(),
            Some(FreeOutcome::Drained)
        );
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(
            free_with_deadline(h, Duration::from_secs(1)).unwrap(),
            Some(FreeOutcome::AlreadyFreeing)
        );
        assert_eq!(status(enter(h)), net_status_t::NET_ERR_SHUTTING_DOWN);
    }

    #[test]
    fn a_reused_slot_refuses_the_old_pointer() {
        // Free and re-create until the old slot carries a new handle.
        let (old, _) = new_probe();
        free(old).unwrap();
        let mut fresh = Vec::new();
        let reused = loop {
            let (h, _) = new_probe();
            let same_slot = decode(h as usize).0 == decode(old as usize).0;
            fresh.push(h);
            if same_slot {
                break h;
            }
            assert!(fresh.len() < 1_000_000, "the slot was never reused");
        };
        assert_ne!(reused, old);
        assert_eq!(status(enter(old)), net_status_t::NET_ERR_SHUTTING_DOWN);
        assert_eq!(
            free_with_deadline(old, Duration::ZERO).unwrap(),
            Some(FreeOutcome::AlreadyFreeing),
            "freeing the old pointer leaves the new handle alone"
        );
        assert!(enter(reused).is_ok());
        for h in fresh {
            free(h).unwrap();
        }
    }

    #[test]
    fn null_foreign_and_wrong_type_are_refused() {
        assert_eq!(
            status(enter::<ProbeHandle>(std::ptr::null())),
            net_status_t::NET_ERR_INVALID_ARGUMENT
        );
        let local = 0u64;
        let foreign = std::ptr::from_ref(&local).cast::<ProbeHandle>();
        assert_eq!(
            status(enter(foreign)),
            net_status_t::NET_ERR_INVALID_ARGUMENT
        );
        let (h, dropped) = new_probe();
        let err = enter(h.cast::<OtherHandle>()).err().unwrap();
        assert_eq!(err.status, net_status_t::NET_ERR_INVALID_ARGUMENT);
        assert!(err.message.contains("OtherHandle"));
        assert_eq!(
            status(free_with_deadline(h.cast::<OtherHandle>(), Duration::ZERO)),
            net_status_t::NET_ERR_INVALID_ARGUMENT
        );
        assert!(!dropped.load(Ordering::SeqCst));
        free(h).unwrap();
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(
            free_with_deadline::<ProbeHandle>(std::ptr::null_mut(), Duration::ZERO).unwrap(),
            None
        );
    }

    #[test]
    fn free_timeout_leaks_inner_still_in_use() {
        let (h, dropped) = new_probe();
        let op = enter(h).unwrap();
        let err = free_with_deadline(h, Duration::from_millis(20)).unwrap_err();
        assert_eq!(err.status, net_status_t::NET_ERR_BUSY);
        // The in-flight op still reads a live value.
        assert!(!op.0.load(Ordering::SeqCst));
        drop(op);
        assert!(
            !dropped.load(Ordering::SeqCst),
            "timed-out free must leak, not drop later"
        );
        assert_eq!(status(enter(h)), net_status_t::NET_ERR_SHUTTING_DOWN);
    }

    #[test]
    fn free_waits_for_in_flight_op() {
        let (h, dropped) = new_probe();
        let addr = h as usize;
        let entered = Arc::new(std::sync::Barrier::new(2));
        let release = Arc::new(std::sync::Barrier::new(2));
        let op_done = Arc::new(AtomicBool::new(false));
        let worker = {
            let (entered, release, op_done, dropped) = (
                entered.clone(),
                release.clone(),
                op_done.clone(),
                dropped.clone(),
            );
            thread::spawn(move || {
                let op = enter(addr as *const ProbeHandle).unwrap();
                entered.wait();
                release.wait();
                assert!(!dropped.load(Ordering::SeqCst), "inner dropped under an op");
                op_done.store(true, Ordering::SeqCst);
                drop(op);
            })
        };
        entered.wait();
        let freer = thread::spawn(move || {
            free_with_deadline(addr as *mut ProbeHandle, Duration::from_secs(30))
        });
        // The free has begun once new calls are refused; it cannot finish
        // while the op is inside.
        while enter(h).is_ok() {
            thread::yield_now();
        }
        assert!(!dropped.load(Ordering::SeqCst));
        release.wait();
        assert_eq!(freer.join().unwrap().unwrap(), Some(FreeOutcome::Drained));
        assert!(
            op_done.load(Ordering::SeqCst),
            "free returned before the op ended"
        );
        assert!(dropped.load(Ordering::SeqCst));
        worker.join().unwrap();
    }

    #[test]
    fn memory_follows_live_handles_not_handles_ever_made() {
        let (first, _) = new_probe();
        free(first).unwrap();
        let slots = handle_slot_count();
        for _ in 0..200_000 {
            let (h, _) = new_probe();
            free(h).unwrap();
        }
        assert!(
            handle_slot_count() <= slots + chunk_len(0) as u64 * 4,
            "{} slots after 200k handles (was {slots})",
            handle_slot_count()
        );
    }

    #[test]
    fn pointers_round_trip_every_generation() {
        let slot = TABLE.take_vacant();
        for generation in [0u32, 1, 63, 64, 65, 1 << 21, (1 << GENERATION_BITS) - 1] {
            let value = encode(slot, generation);
            assert_eq!(
                decode(value),
                (std::ptr::from_ref(slot) as usize, generation)
            );
        }
        TABLE.give_back(slot);
    }
}
