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

/// Lets a call just started on another thread reach its wait, without a
/// clock: yields the processor a number of times. Whether it got there is
/// not assumed; [`until_won`] checks it from the call's outcome.
pub fn let_it_block() {
    for _ in 0..2_000 {
        std::thread::yield_now();
    }
}

/// Runs `attempt` until `wanted` rounds have shown the race was really won
/// (the blocked call was interrupted *while it waited*, which `attempt`
/// reports by returning true), at most `rounds` times; panics if none was.
/// A round where the interruption came before the call waited proves
/// nothing, so it does not count.
pub fn until_won(rounds: usize, wanted: usize, mut attempt: impl FnMut(usize) -> bool) {
    let mut won = 0;
    for round in 0..rounds {
        if attempt(round) {
            won += 1;
            if won == wanted {
                return;
            }
        }
    }
    panic!("the call was interrupted while waiting in only {won} of {rounds} rounds");
}

/// A new cancellation token.
pub fn cancel_token() -> *mut net_cancel_t {
    let mut token = std::ptr::null_mut();
    assert_eq!(unsafe { net_cancel_new(&mut token) }, net_status_t::NET_OK);
    token
}

/// A zeroed `net_error_t` for a blocking call, read back as (status, message).
pub fn error_slot() -> net_error_t {
    net_error_t {
        status: net_status_t::NET_OK,
        message: net_bytes_t::EMPTY,
    }
}

/// The status and message a blocking call wrote to its `net_error_t`
/// (cleared afterwards).
pub fn error_of(mut error: net_error_t) -> (net_status_t, String) {
    let text = if error.message.ptr.is_null() {
        String::new()
    } else {
        String::from_utf8_lossy(unsafe {
            std::slice::from_raw_parts(error.message.ptr, error.message.len)
        })
        .into_owned()
    };
    let status = error.status;
    unsafe { net_error_clear(&mut error) };
    (status, text)
}

/// Whether a call's error says it was interrupted while it waited (by a
/// cancel or a free), as opposed to before it started.
pub fn interrupted_while_waiting(message: &str) -> bool {
    message.contains("while the call waited") || message.contains("while it waited")
}

/// Waits until a call on `handle` is in flight (true), or until `done` says
/// the call already returned (false: the round proves nothing; retry).
pub fn wait_in_flight<T>(handle: *const T, done: &std::sync::atomic::AtomicBool) -> bool {
    use std::sync::atomic::Ordering;
    loop {
        if net::ffi::calls_in_flight(handle) > 0 {
            return true;
        }
        if done.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::yield_now();
    }
}

/// The node_id of a mesh node.
pub fn node_id(m: *mut net_mesh_t) -> u64 {
    let mut id = 0;
    assert_eq!(
        unsafe { net_mesh_node_id(m, &mut id) },
        net_status_t::NET_OK
    );
    id
}

/// `a` handshakes with `b` directly (the routed form, b needs no accept).
pub fn connect(a: *mut net_mesh_t, b: *mut net_mesh_t) {
    let mut key = net_bytes_t::EMPTY;
    let mut addr = net_bytes_t::EMPTY;
    unsafe {
        assert_eq!(net_mesh_public_key(b, &mut key), net_status_t::NET_OK);
        assert_eq!(net_mesh_local_addr(b, &mut addr), net_status_t::NET_OK);
    }
    let key = take(key);
    let addr = take(addr);
    let st = unsafe {
        net_mesh_connect(
            a,
            addr.as_ptr(),
            addr.len(),
            key.as_ptr(),
            key.len(),
            node_id(b),
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(st, net_status_t::NET_OK, "{}", last_error());
}

/// Polls `f` every 5 ms until it holds; panics after 20 s.
pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
