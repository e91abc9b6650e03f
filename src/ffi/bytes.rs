//! `net_bytes_t`: variable-size results owned by libnet until `net_bytes_free`.

use zeroize::Zeroize;

/// A byte buffer allocated by libnet. Release it with `net_bytes_free`, never
/// with `free()`. An empty result has `ptr == NULL` and `len == 0`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct net_bytes_t {
    /// First byte, or NULL when `len` is 0.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
}

impl net_bytes_t {
    /// The empty buffer.
    ///
    /// cbindgen:ignore
    pub const EMPTY: Self = Self {
        ptr: std::ptr::null_mut(),
        len: 0,
    };

    /// Hands `bytes` to the caller.
    pub(crate) fn from_vec(bytes: Vec<u8>) -> Self {
        if bytes.is_empty() {
            return Self::EMPTY;
        }
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        Self {
            ptr: Box::into_raw(boxed).cast::<u8>(),
            len,
        }
    }

    /// Copies `bytes` for the caller.
    pub(crate) fn from_slice(bytes: &[u8]) -> Self {
        Self::from_vec(bytes.to_vec())
    }
}

/// A borrowed byte range passed into libnet (for example one payload of a
/// batch). libnet reads it during the call and keeps no reference.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct net_slice_t {
    /// First byte; may be NULL only when `len` is 0.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

/// Releases a buffer returned by libnet and resets it to `{NULL, 0}`.
///
/// NULL-safe and idempotent: passing NULL, or a buffer already released (or
/// never filled), does nothing. The bytes are zeroed before release, so
/// buffers that held keys or seeds leave nothing behind.
///
/// # Safety
/// `bytes` is NULL or points to a `net_bytes_t` that is either `{NULL, 0}` or
/// was filled by libnet and not modified since.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bytes_free(bytes: *mut net_bytes_t) {
    super::export::guarded((), || {
        // SAFETY: the caller passes NULL or a valid, exclusively owned
        // net_bytes_t (contract above); `as_mut` handles NULL.
        let Some(bytes) = (unsafe { bytes.as_mut() }) else {
            return;
        };
        if bytes.ptr.is_null() {
            bytes.len = 0;
            return;
        }
        let slice = std::ptr::slice_from_raw_parts_mut(bytes.ptr, bytes.len);
        // SAFETY: ptr/len came from `Box::<[u8]>::into_raw` in `from_vec`
        // (contract above) and have not been released: we reset them below,
        // so a second call sees NULL.
        let mut owned = unsafe { Box::from_raw(slice) };
        owned.zeroize();
        drop(owned);
        *bytes = net_bytes_t::EMPTY;
    })
}
