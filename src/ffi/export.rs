//! The export macro every `extern "C"` entry point runs its body through, and
//! the argument checks it applies.
//!
//! ```text
//! #[unsafe(no_mangle)]
//! pub unsafe extern "C" fn net_identity_sign(
//!     identity: *const net_identity_t,
//!     message: *const u8,
//!     message_len: usize,
//!     signature_out: *mut net_bytes_t,
//! ) -> net_status_t {
//!     ffi_export!(handle identity; bytes message[message_len]; out signature_out; {
//!         let signature = identity.sign(message)?;
//!         signature_out.write(net_bytes_t::from_slice(&signature.0));
//!         Ok(())
//!     })
//! }
//! ```
//!
//! Each clause before the body rebinds a raw argument to a checked one:
//!
//! * `error_out e;` (first, blocking calls only) also writes a failure's
//!   status and message to the `net_error_t` at `e` (NULL: not wanted);
//! * `handle h;` enters the handle's guard (NULL, foreign pointers, type and
//!   generation checked against the handle table; `NET_ERR_SHUTTING_DOWN`
//!   once freed) and rebinds `h` to the inner value for the rest of the call;
//! * `cancel c;` enters the caller's `net_cancel_t` (NULL: none) for the
//!   call and rebinds `c` to a [`super::cancel::CallCancel`]; a token already
//!   cancelled fails the call with `NET_ERR_CANCELLED` before it starts;
//! * `bytes p[len];` rebinds `p` to `&[u8]` (NULL allowed only when `len` is 0);
//! * `array p[len] N;` rebinds `p` to `&[u8; N]`, refusing any other length;
//! * `opt_array p[len] N;` like `array`, but NULL means `None`;
//! * `str p[len];` rebinds `p` to a UTF-8 `&str`; `opt_str` likewise, NULL
//!   meaning `None`;
//! * `slices p[count];` rebinds an array of `net_slice_t` to `Vec<&[u8]>`;
//! * `out p;` rebinds `p` to an [`Out`] (NULL and alignment checked) whose
//!   `write` is the only way to set it, so outputs are written at the end of a
//!   successful body and never on failure.
//!
//! The whole call runs inside `catch_unwind`: a panic becomes `NET_ERR_PANIC`
//! with its message in `net_last_error_message()`, never an unwind across the
//! C boundary. A body returns `Ok(())` for `NET_OK`, `Ok(status)` for a
//! non-error outcome, or `Err(FfiError)` (usually via `?`).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::error::{FfiError, set_last_error};
use super::status::net_status_t;

/// A successful body's result, as a status.
pub(crate) trait IntoStatus {
    fn into_status(self) -> net_status_t;
}

impl IntoStatus for () {
    fn into_status(self) -> net_status_t {
        net_status_t::NET_OK
    }
}

impl IntoStatus for net_status_t {
    fn into_status(self) -> net_status_t {
        self
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    format!("libnet panicked (this is a bug): {detail}")
}

/// Runs an entry point's body: errors are recorded and mapped to their
/// status, panics are caught and become `NET_ERR_PANIC`.
pub(crate) fn run<R: IntoStatus>(body: impl FnOnce() -> Result<R, FfiError>) -> net_status_t {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(result)) => result.into_status(),
        Ok(Err(err)) => {
            set_last_error(&err.message);
            err.status
        }
        Err(payload) => {
            set_last_error(&panic_message(payload.as_ref()));
            net_status_t::NET_ERR_PANIC
        }
    }
}

/// [`run`] for a blocking call: on failure the status and message also go to
/// `*error_out` (when it is not NULL and aligned), for callers that made the
/// call on another thread than the one that reads the result.
pub(crate) fn run_reporting<R: IntoStatus>(
    error_out: *mut super::cancel::net_error_t,
    body: impl FnOnce() -> Result<R, FfiError>,
) -> net_status_t {
    let status = run(body);
    if !status.is_ok() && !error_out.is_null() && error_out.is_aligned() {
        let message = super::error::last_error_text();
        // SAFETY: non-NULL and aligned; the caller passes a pointer valid for
        // one write (documented contract). The previous contents are
        // overwritten, not dropped (the caller zeroes the struct).
        unsafe {
            error_out.write(super::cancel::net_error_t {
                status,
                message: super::bytes::net_bytes_t::from_vec(message.into_bytes()),
            });
        }
    }
    status
}

/// For the few entry points that return a value instead of a status
/// (`net_version`, `_free`, ...): a panic yields `fallback`.
pub(crate) fn guarded<R>(fallback: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            set_last_error(&panic_message(payload.as_ref()));
            fallback
        }
    }
}

/// A checked output pointer: non-NULL and aligned. Written only through
/// [`Out::write`].
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// # Safety
    /// If non-NULL, `ptr` must be valid for a write of `T`.
    pub(crate) unsafe fn new(ptr: *mut T, name: &str) -> Result<Self, FfiError> {
        if ptr.is_null() {
            return Err(FfiError::invalid_argument(format!(
                "output `{name}` is NULL"
            )));
        }
        if !ptr.is_aligned() {
            return Err(FfiError::invalid_argument(format!(
                "output `{name}` is misaligned"
            )));
        }
        Ok(Self(ptr))
    }

    /// Stores what a call that fails from here on reports; a later
    /// [`write`](Self::write) replaces it.
    pub(crate) fn preset(&self, value: T) {
        // SAFETY: as for `write`.
        unsafe { self.0.write(value) };
    }

    /// Stores the result. Previous contents are overwritten, not dropped.
    pub(crate) fn write(self, value: T) {
        // SAFETY: checked non-NULL and aligned in `new`, whose caller vouched
        // for validity.
        unsafe { self.0.write(value) };
    }
}

/// # Safety
/// If `len > 0`, `ptr` must be valid for reads of `len` bytes for the call.
pub(crate) unsafe fn input_bytes<'a>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<&'a [u8], FfiError> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::invalid_argument(format!(
            "`{name}` is NULL but its length is {len}"
        )));
    }
    if len > isize::MAX as usize {
        return Err(FfiError::invalid_argument(format!(
            "`{name}` length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, u8 needs no alignment, and the caller vouches for
    // `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// # Safety
/// As [`input_bytes`].
pub(crate) unsafe fn input_array<'a, const N: usize>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<&'a [u8; N], FfiError> {
    if len != N {
        return Err(FfiError::invalid_argument(format!(
            "`{name}` must be {N} bytes, got {len}"
        )));
    }
    // SAFETY: forwarded contract.
    let bytes = unsafe { input_bytes(ptr, len, name) }?;
    bytes
        .try_into()
        .map_err(|_| FfiError::invalid_argument(format!("`{name}` must be {N} bytes")))
}

/// # Safety
/// As [`input_bytes`]; NULL (with length 0) means absent.
pub(crate) unsafe fn input_opt_array<'a, const N: usize>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<Option<&'a [u8; N]>, FfiError> {
    if ptr.is_null() {
        if len != 0 {
            return Err(FfiError::invalid_argument(format!(
                "`{name}` is NULL (absent) but its length is {len}"
            )));
        }
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { input_array(ptr, len, name) }.map(Some)
}

/// `count` values of `T` at `ptr` (NULL allowed when `count` is 0).
///
/// # Safety
/// If `count > 0`, `ptr` must be valid for reads of `count` values.
pub(crate) unsafe fn input_values<'a, T>(
    ptr: *const T,
    count: usize,
    name: &str,
) -> Result<&'a [T], FfiError> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::invalid_argument(format!(
            "`{name}` is NULL but its count is {count}"
        )));
    }
    if !ptr.is_aligned() {
        return Err(FfiError::invalid_argument(format!(
            "`{name}` is misaligned"
        )));
    }
    // SAFETY: non-NULL, aligned, and the caller vouches for `count` values.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// `count` writable values of `T` at `ptr`; `None` for NULL (the caller
/// does not want them).
///
/// # Safety
/// If `ptr` is not NULL and `count > 0`, it must be valid for writes of
/// `count` values and not aliased during the call.
pub(crate) unsafe fn output_values<'a, T>(
    ptr: *mut T,
    count: usize,
    name: &str,
) -> Result<Option<&'a mut [T]>, FfiError> {
    if ptr.is_null() {
        return Ok(None);
    }
    if count == 0 {
        return Ok(Some(&mut []));
    }
    if !ptr.is_aligned() {
        return Err(FfiError::invalid_argument(format!(
            "`{name}` is misaligned"
        )));
    }
    // SAFETY: non-NULL, aligned, and the caller vouches for `count`
    // writable values nobody else touches during the call.
    Ok(Some(unsafe { std::slice::from_raw_parts_mut(ptr, count) }))
}

/// # Safety
/// If `count > 0`, `ptr` must be valid for reads of `count` slices, each of
/// which is valid as for [`input_bytes`].
pub(crate) unsafe fn input_slices<'a>(
    ptr: *const super::bytes::net_slice_t,
    count: usize,
    name: &str,
) -> Result<Vec<&'a [u8]>, FfiError> {
    // SAFETY: forwarded contract.
    let slices = unsafe { input_values(ptr, count, name) }?;
    let mut out = Vec::with_capacity(count);
    for (i, s) in slices.iter().enumerate() {
        // The element's name is formatted only for an error: batches of
        // thousands of slices must not pay for it on success.
        if s.len != 0 && s.ptr.is_null() {
            return Err(FfiError::invalid_argument(format!(
                "`{name}[{i}]` is NULL but its length is {}",
                s.len
            )));
        }
        if s.len > isize::MAX as usize {
            return Err(FfiError::invalid_argument(format!(
                "`{name}[{i}]` length {} is too large",
                s.len
            )));
        }
        // SAFETY: each slice is valid per the caller's contract; an empty
        // one is not dereferenced, a non-empty one is non-NULL (checked).
        out.push(if s.len == 0 {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(s.ptr, s.len) }
        });
    }
    Ok(out)
}

/// # Safety
/// As [`input_bytes`]; NULL (with length 0) means absent.
pub(crate) unsafe fn input_opt_str<'a>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<Option<&'a str>, FfiError> {
    if ptr.is_null() {
        if len != 0 {
            return Err(FfiError::invalid_argument(format!(
                "`{name}` is NULL (absent) but its length is {len}"
            )));
        }
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { input_str(ptr, len, name) }.map(Some)
}

/// # Safety
/// As [`input_bytes`].
pub(crate) unsafe fn input_str<'a>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<&'a str, FfiError> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { input_bytes(ptr, len, name) }?;
    std::str::from_utf8(bytes)
        .map_err(|e| FfiError::invalid_argument(format!("`{name}` is not UTF-8: {e}")))
}

/// See the module documentation.
macro_rules! ffi_export {
    (@bind handle $h:ident; $($rest:tt)*) => {{
        // Any pointer value is checked against the handle table before use.
        let $h = $crate::ffi::handle::enter($h)?;
        let $h = &*$h;
        $crate::ffi::export::ffi_export!(@bind $($rest)*)
    }};
    (@bind cancel $c:ident; $($rest:tt)*) => {{
        let $c = $crate::ffi::cancel::CallCancel::enter($c)?;
        $c.check()?;
        $crate::ffi::export::ffi_export!(@bind $($rest)*)
    }};
    (@bind bytes $p:ident[$len:ident]; $($rest:tt)*) => {{
        let (raw, len) = ($p, $len);
        // SAFETY: the caller passes `len` readable bytes at `raw` (documented contract).
        let $p = unsafe { $crate::ffi::export::input_bytes(raw, len, stringify!($p)) }?;
        $crate::ffi::export::ffi_export!(@bind $($rest)*)
    }};
    (@bind array $p:ident[$len:ident] $n:expr; $($rest:tt)*) => {{
        let (raw, len) = ($p, $len);
        // SAFETY: as for `bytes`.
        let $p = unsafe { $crate::ffi::export::input_array::<{ $n }>(raw, len, stringify!($p)) }?;
        $crate::ffi::export::ffi_export!(@bind $($rest)*)
    }};
    (@bind opt_array $p:ident[$len:ident] $n:expr; $($rest:tt)*) => {{
        let (raw, len) = ($p, $len);
        // SAFETY: as for `bytes`; NULL is accepted as "absent".
        let $p = unsafe { $crate::ffi::export::input_opt_array::<{ $n }>(raw, len, stringify!($p)) }?;
        $crate::ffi::export::ffi_export!(@bind $($rest)*)
    }};
    (@bind str $p:ident[$len:ident]; $($rest:tt)*) => {{
        let (raw, len) = ($p, $len);
        // SAFETY: as for `bytes`.
        let $p = unsafe { $crate::ffi::export::input_str(raw, len, stringify!($p)) }?;
        $crate::ffi::export::ffi_export!(@bind $($rest)*)
    }};
    (@bind opt_str $p:ident[$len:ident]; $($rest:tt)*) => {{
        let (raw, len) = ($p, $len);
        // SAFETY: as for `bytes`; NULL is accepted as "absent".
        let $p = unsafe { $crate::ffi::export::input_opt_str(raw, len, stringify!($p)) }?;
        $crate::ffi::export::ffi_export!(@bind $($rest)*)
    }};
    (@bind slices $p:ident[$count:ident]; $($rest:tt)*) => {{
        let (raw, count) = ($p, $count);
        // SAFETY: the caller passes `count` valid slices at `raw` (documented contract).
        let $p = unsafe { $crate::ffi::export::input_slices(raw, count, stringify!($p)) }?;
        $crate::ffi::export::ffi_export!(@bind $($rest)*)
    }};
    (@bind out $p:ident; $($rest:tt)*) => {{
        let raw = $p;
        // SAFETY: the caller passes NULL or a pointer valid for one write
        // (documented contract); NULL and misalignment are refused.
        let $p = unsafe { $crate::ffi::export::Out::new(raw, stringify!($p)) }?;
        $crate::ffi::export::ffi_export!(@bind $($rest)*)
    }};
    (@bind $body:block) => { $body };
    (error_out $e:ident; $($clauses:tt)*) => {
        $crate::ffi::export::run_reporting($e, || $crate::ffi::export::ffi_export!(@bind $($clauses)*))
    };
    ($($clauses:tt)*) => {
        $crate::ffi::export::run(|| $crate::ffi::export::ffi_export!(@bind $($clauses)*))
    };
}
pub(crate) use ffi_export;
