//! Helpers shared by the C ABI suites: a raw pointer that threads may
//! share, the calling thread's last error, and `net_bytes_t` taken into a
//! `Vec` (freed) or parsed as JSON.

#![allow(dead_code)]

use std::ffi::CStr;

use net::ffi::*;

/// A raw handle pointer that test threads may share (the races under test
/// are what libnet's HandleGuard must make safe).
pub struct P<T>(pub *mut T);
impl<T> Clone for P<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for P<T> {}
unsafe impl<T> Send for P<T> {}
unsafe impl<T> Sync for P<T> {}

/// The calling thread's `net_last_error_message()`.
pub fn last_error() -> String {
    unsafe { CStr::from_ptr(net_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

/// Copies a libnet buffer out and frees it.
pub fn take(mut b: net_bytes_t) -> Vec<u8> {
    let v = if b.ptr.is_null() {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(b.ptr, b.len) }.to_vec()
    };
    unsafe { net_bytes_free(&mut b) };
    v
}

/// A libnet buffer holding JSON, parsed (and freed).
pub fn json(b: net_bytes_t) -> serde_json::Value {
    serde_json::from_slice(&take(b)).unwrap()
}
