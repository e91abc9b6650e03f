//! The memory layout and lifetime of every FFI handle.
//!
//! A handle is a [`Handle<T>`] on the heap: a [`HandleHeader`] (the
//! [`HandleGuard`], a type tag, and a link used once the handle is retired)
//! followed by a pointer to the separately boxed inner value. C sees an opaque
//! `net_<thing>_t *`.
//!
//! The outer allocation (a few dozen bytes) is **never** deallocated. `_free`
//! drains in-flight operations through the guard, then takes the inner box out
//! and drops it; the header stays behind so that a call racing the free (or a
//! call after it) reads valid memory, sees the handle is freeing, and returns
//! `NET_ERR_SHUTTING_DOWN`. If the drain times out the inner value is leaked
//! too, because an operation is still using it.
//!
//! Retired headers are pushed onto a global list. The list is never read for
//! anything but a count; it exists so that leak checkers (LeakSanitizer in the
//! C tests) see the deliberately kept headers as reachable, and report only
//! real leaks.

use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::time::Duration;

use super::error::FfiError;
use super::handle_guard::{FFI_HANDLE_FREE_DEADLINE, FreeOutcome, HandleGuard, HandleOp};
use super::status::net_status_t;

/// What an inner value needs to live behind a handle.
pub(crate) trait HandleInner: Send + Sync + 'static {
    /// Called once a free has begun and before it waits for in-flight
    /// operations: wake anything blocked inside this value (a `_next` waiting
    /// for data) so the drain is quick. No new operation can enter by then.
    fn wake_blocked(&self) {}
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

/// The part of every handle that outlives its inner value.
#[repr(C)]
pub(crate) struct HandleHeader {
    guard: HandleGuard,
    kind: u32,
    retired_next: AtomicPtr<HandleHeader>,
}

/// A handle: header first (so any handle can be read as a header), then the
/// boxed inner value, taken out exactly once by the free that drains it. The
/// inner value has its own allocation so that only the header outlives a free.
#[repr(C)]
pub(crate) struct Handle<T> {
    header: HandleHeader,
    inner: UnsafeCell<ManuallyDrop<Box<T>>>,
}

// SAFETY: the inner value is only reached as `&T` by operations holding a
// HandleOp, or moved out by the single freer after every such operation has
// ended (the guard's drain). T is Send + Sync, so sharing `&T` across threads
// and dropping it on the freeing thread are both fine.
unsafe impl<T: HandleInner> Sync for Handle<T> {}
// SAFETY: as above; the handle owns a T, which is Send.
unsafe impl<T: HandleInner> Send for Handle<T> {}

static RETIRED_HANDLES: AtomicPtr<HandleHeader> = AtomicPtr::new(ptr::null_mut());
static RETIRED_COUNT: AtomicU64 = AtomicU64::new(0);

/// How many handles have been retired (freed or leaked on timeout) in this
/// process. Their headers stay allocated by design.
pub fn retired_handle_count() -> u64 {
    RETIRED_COUNT.load(Ordering::Relaxed)
}

fn retire(header: &'static HandleHeader) {
    let node = ptr::from_ref(header).cast_mut();
    let mut head = RETIRED_HANDLES.load(Ordering::Relaxed);
    loop {
        header.retired_next.store(head, Ordering::Relaxed);
        match RETIRED_HANDLES.compare_exchange_weak(
            head,
            node,
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => break,
            Err(current) => head = current,
        }
    }
    RETIRED_COUNT.fetch_add(1, Ordering::Relaxed);
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
    let handle = Box::new(Handle {
        header: HandleHeader {
            guard: HandleGuard::new(),
            kind: O::KIND,
            retired_next: AtomicPtr::new(ptr::null_mut()),
        },
        inner: UnsafeCell::new(ManuallyDrop::new(Box::new(inner))),
    });
    Box::into_raw(handle).cast::<O>()
}

/// Checks a handle pointer from C and returns its header.
///
/// # Safety
/// `ptr` is NULL or was returned by [`into_raw`] for some handle type (the
/// allocation is never freed, so that stays true forever).
unsafe fn header<O: Opaque>(ptr: *const O) -> Result<&'static HandleHeader, FfiError> {
    if ptr.is_null() {
        return Err(FfiError::invalid_argument(format!(
            "{} handle is NULL",
            O::NAME
        )));
    }
    if ptr.align_offset(align_of::<Handle<O::Inner>>()) != 0 {
        return Err(FfiError::invalid_argument(format!(
            "{} handle is misaligned",
            O::NAME
        )));
    }
    // SAFETY: every handle starts with a HandleHeader (repr(C), first field)
    // and is never deallocated (contract above), so reading the header of any
    // of our handles is valid whatever its type.
    let header = unsafe { &*ptr.cast::<HandleHeader>() };
    if header.kind != O::KIND {
        return Err(FfiError::invalid_argument(format!(
            "pointer is not a {} handle",
            O::NAME
        )));
    }
    Ok(header)
}

/// Enters an operation on the handle behind `ptr`.
///
/// # Errors
/// `NET_ERR_INVALID_ARGUMENT` for NULL, misaligned or wrong-type pointers;
/// `NET_ERR_SHUTTING_DOWN` once the handle is being freed.
///
/// # Safety
/// As for [`header`].
pub(crate) unsafe fn enter<O: Opaque>(ptr: *const O) -> Result<Entered<O::Inner>, FfiError> {
    // SAFETY: forwarded contract.
    let header = unsafe { header(ptr) }?;
    let op = header.guard.try_enter().ok_or_else(|| {
        FfiError::new(
            net_status_t::NET_ERR_SHUTTING_DOWN,
            format!("{} has been freed", O::NAME),
        )
    })?;
    // SAFETY: the kind tag matched, so the allocation is a Handle<O::Inner>.
    let handle = unsafe { &*ptr.cast::<Handle<O::Inner>>() };
    // SAFETY: we hold a HandleOp, so no free has drained this handle and the
    // inner value is initialised and will stay so until `op` is dropped.
    let inner: &O::Inner = unsafe { Box::as_ref(&*handle.inner.get()) };
    Ok(Entered { _op: op, inner })
}

/// The `_free` of every handle type: NULL-safe, idempotent, waits up to
/// [`FFI_HANDLE_FREE_DEADLINE`] for in-flight operations.
///
/// # Safety
/// As for [`header`].
pub(crate) unsafe fn free<O: Opaque>(ptr: *mut O) {
    // SAFETY: forwarded contract.
    unsafe { free_with_deadline(ptr, FFI_HANDLE_FREE_DEADLINE) };
}

/// [`free`] with an explicit drain deadline (tests use a short one).
///
/// # Safety
/// As for [`header`].
pub(crate) unsafe fn free_with_deadline<O: Opaque>(
    ptr: *mut O,
    deadline: Duration,
) -> Option<FreeOutcome> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: forwarded contract. A wrong-type pointer is refused, not freed.
    let header = unsafe { header(ptr.cast_const()) }.ok()?;
    if !header.guard.mark_freeing() {
        return Some(FreeOutcome::AlreadyFreeing);
    }
    // SAFETY: the kind tag matched, so the allocation is a Handle<O::Inner>.
    let handle = unsafe { &*ptr.cast_const().cast::<Handle<O::Inner>>() };
    // SAFETY: we won mark_freeing and have not taken the inner value; only
    // `&T` access happens here, as in any in-flight operation.
    unsafe { (**handle.inner.get()).wake_blocked() };
    let outcome = if header.guard.wait_drained(deadline) {
        // SAFETY: we are the single freer (mark_freeing returned true once) and
        // no operation is in flight or can enter again, so we have exclusive
        // access and take the value exactly once.
        let inner = unsafe { ManuallyDrop::take(&mut *handle.inner.get()) };
        drop(inner);
        FreeOutcome::Drained
    } else {
        FreeOutcome::TimedOut
    };
    retire(header);
    Some(outcome)
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

    #[test]
    fn enter_then_free_drops_inner_once() {
        let (h, dropped) = new_probe();
        {
            let _op = unsafe { enter(h) }.unwrap();
            assert!(!dropped.load(Ordering::SeqCst));
        }
        assert_eq!(
            unsafe { free_with_deadline(h, Duration::from_secs(1)) },
            Some(FreeOutcome::Drained)
        );
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(
            unsafe { free_with_deadline(h, Duration::from_secs(1)) },
            Some(FreeOutcome::AlreadyFreeing)
        );
        let err = unsafe { enter(h) }.err().unwrap();
        assert_eq!(err.status, net_status_t::NET_ERR_SHUTTING_DOWN);
    }

    #[test]
    fn null_and_wrong_type_are_refused() {
        let err = unsafe { enter::<ProbeHandle>(ptr::null()) }.err().unwrap();
        assert_eq!(err.status, net_status_t::NET_ERR_INVALID_ARGUMENT);
        let (h, dropped) = new_probe();
        let err = unsafe { enter(h.cast::<OtherHandle>()) }.err().unwrap();
        assert_eq!(err.status, net_status_t::NET_ERR_INVALID_ARGUMENT);
        assert!(err.message.contains("OtherHandle"));
        assert_eq!(
            unsafe { free_with_deadline(h.cast::<OtherHandle>(), Duration::ZERO) },
            None
        );
        assert!(!dropped.load(Ordering::SeqCst));
        unsafe { free(h) };
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(
            unsafe { free_with_deadline::<ProbeHandle>(ptr::null_mut(), Duration::ZERO) },
            None
        );
    }

    #[test]
    fn free_timeout_leaks_inner_still_in_use() {
        let (h, dropped) = new_probe();
        let op = unsafe { enter(h) }.unwrap();
        let outcome = unsafe { free_with_deadline(h, Duration::from_millis(20)) };
        assert_eq!(outcome, Some(FreeOutcome::TimedOut));
        // The in-flight op still reads a live value.
        assert!(!op.0.load(Ordering::SeqCst));
        drop(op);
        assert!(
            !dropped.load(Ordering::SeqCst),
            "timed-out free must leak, not drop later"
        );
    }

    #[test]
    fn free_waits_for_in_flight_op() {
        let (h, dropped) = new_probe();
        let addr = h as usize;
        let entered = Arc::new(std::sync::Barrier::new(2));
        let op_done = Arc::new(AtomicBool::new(false));
        let worker = {
            let entered = entered.clone();
            let op_done = op_done.clone();
            let dropped = dropped.clone();
            thread::spawn(move || {
                let op = unsafe { enter(addr as *const ProbeHandle) }.unwrap();
                entered.wait();
                thread::sleep(Duration::from_millis(100));
                assert!(!dropped.load(Ordering::SeqCst), "inner dropped under an op");
                op_done.store(true, Ordering::SeqCst);
                drop(op);
            })
        };
        entered.wait();
        let outcome = unsafe { free_with_deadline(h, Duration::from_secs(5)) };
        assert_eq!(outcome, Some(FreeOutcome::Drained));
        assert!(
            op_done.load(Ordering::SeqCst),
            "free returned before the op ended"
        );
        assert!(dropped.load(Ordering::SeqCst));
        worker.join().unwrap();
    }

    #[test]
    fn retired_headers_are_counted() {
        let before = retired_handle_count();
        let (h, _) = new_probe();
        unsafe { free(h) };
        assert!(retired_handle_count() > before);
    }
}
