//! The RedEX C ABI from Rust: manager, file and tail handles, the batch and
//! range encodings, tail statuses, and the three handle races for each of the
//! three handle types.

use std::ffi::CStr;
use std::path::PathBuf;
use std::ptr;
use std::sync::{Arc, Barrier};
use std::thread;

mod ffi_common;

use ffi_common::{
    P, cancel_token, error_of, error_slot, interrupted_while_waiting, let_it_block, until_won,
};

use net::ffi::*;

struct Send<T>(*mut T);
impl<T> Clone for Send<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Send<T> {}
unsafe impl<T> std::marker::Send for Send<T> {}
unsafe impl<T> Sync for Send<T> {}

fn last_error() -> String {
    unsafe { CStr::from_ptr(net_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("net-ffi-redex-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn manager(base: Option<&PathBuf>) -> *mut net_redex_t {
    let mut out = ptr::null_mut();
    let base = base.map(|b| b.to_str().unwrap().to_owned());
    let (p, n) = base
        .as_ref()
        .map_or((ptr::null(), 0), |b| (b.as_ptr(), b.len()));
    assert_eq!(
        unsafe { net_redex_open(p, n, &mut out) },
        net_status_t::NET_OK
    );
    out
}

fn open_file(
    redex: *mut net_redex_t,
    name: &str,
    config: &str,
) -> Result<*mut net_redex_file_t, net_status_t> {
    let mut out = ptr::null_mut();
    match unsafe {
        net_redex_open_file(
            redex,
            name.as_ptr(),
            name.len(),
            config.as_ptr(),
            config.len(),
            &mut out,
        )
    } {
        net_status_t::NET_OK => Ok(out),
        other => Err(other),
    }
}

fn append(file: *mut net_redex_file_t, payload: &[u8]) -> Result<u64, net_status_t> {
    let mut seq = 0;
    match unsafe { net_redex_file_append(file, payload.as_ptr(), payload.len(), &mut seq) } {
        net_status_t::NET_OK => Ok(seq),
        other => Err(other),
    }
}

fn take(mut b: net_bytes_t) -> Vec<u8> {
    let v = if b.ptr.is_null() {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(b.ptr, b.len) }.to_vec()
    };
    unsafe { net_bytes_free(&mut b) };
    v
}

fn next(tail: *mut net_redex_tail_t, timeout_ms: u32) -> (net_status_t, u64, Vec<u8>) {
    let mut seq = u64::MAX;
    let mut payload = net_bytes_t::EMPTY;
    let status = unsafe {
        net_redex_tail_next(
            tail,
            timeout_ms,
            &mut seq,
            &mut payload,
            ptr::null(),
            ptr::null_mut(),
        )
    };
    (status, seq, take(payload))
}

#[test]
fn append_read_batch_range_and_tail() {
    let redex = manager(None);
    let file = open_file(redex, "ffi/basic", "").unwrap();
    assert_eq!(append(file, b"zero"), Ok(0));
    let mut seq = 0;
    assert_eq!(
        unsafe { net_redex_file_append_inline(file, b"8 bytes!".as_ptr(), 8, &mut seq) },
        net_status_t::NET_OK
    );
    assert_eq!(seq, 1);
    assert_eq!(
        unsafe { net_redex_file_append_inline(file, b"seven!!".as_ptr(), 7, &mut seq) },
        net_status_t::NET_ERR_REDEX_INLINE_LENGTH
    );

    let payloads = [b"a".as_slice(), b"", b"ccc"];
    let slices: Vec<net_slice_t> = payloads
        .iter()
        .map(|p| net_slice_t {
            ptr: p.as_ptr(),
            len: p.len(),
        })
        .collect();
    let (mut first, mut appended) = (99, false);
    assert_eq!(
        unsafe { net_redex_file_append_batch(file, slices.as_ptr(), 3, &mut first, &mut appended) },
        net_status_t::NET_OK
    );
    assert_eq!((first, appended), (2, true));
    assert_eq!(
        unsafe { net_redex_file_append_batch(file, ptr::null(), 0, &mut first, &mut appended) },
        net_status_t::NET_OK
    );
    assert!(!appended, "an empty batch is an explicit none");

    let mut n = 0;
    unsafe { net_redex_file_next_seq(file, &mut n) };
    assert_eq!(n, 5);
    unsafe { net_redex_file_len(file, &mut n) };
    assert_eq!(n, 5);

    let (mut payload, mut found) = (net_bytes_t::EMPTY, false);
    assert_eq!(
        unsafe { net_redex_file_read(file, 4, &mut payload, &mut found) },
        net_status_t::NET_OK
    );
    assert!(found);
    assert_eq!(take(payload), b"ccc");
    let mut payload = net_bytes_t::EMPTY;
    unsafe { net_redex_file_read(file, 77, &mut payload, &mut found) };
    assert!(!found);

    let mut range = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_redex_file_read_range(file, 1, 4, &mut range) },
        net_status_t::NET_OK
    );
    let bytes = take(range);
    let mut decoded = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let seq = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        decoded.push((seq, bytes[at + 12..at + 12 + len].to_vec()));
        at += 12 + len;
    }
    assert_eq!(
        decoded,
        vec![
            (1, b"8 bytes!".to_vec()),
            (2, b"a".to_vec()),
            (3, Vec::new())
        ]
    );

    let mut tail = ptr::null_mut();
    assert_eq!(
        unsafe { net_redex_file_tail(file, 3, &mut tail) },
        net_status_t::NET_OK
    );
    assert_eq!(next(tail, 0), (net_status_t::NET_OK, 3, Vec::new()));
    assert_eq!(next(tail, 0), (net_status_t::NET_OK, 4, b"ccc".to_vec()));
    assert_eq!(next(tail, 0).0, net_status_t::NET_TIMEOUT);
    assert_eq!(next(tail, 20).0, net_status_t::NET_TIMEOUT);
    assert_eq!(append(file, b"live"), Ok(5));
    assert_eq!(
        next(tail, NET_WAIT_FOREVER),
        (net_status_t::NET_OK, 5, b"live".to_vec())
    );

    assert_eq!(unsafe { net_redex_file_close(file) }, net_status_t::NET_OK);
    assert_eq!(next(tail, 0).0, net_status_t::NET_END);
    assert_eq!(append(file, b"x"), Err(net_status_t::NET_ERR_REDEX_CLOSED));
    unsafe {
        net_redex_tail_free(tail);
        net_redex_file_free(file);
        net_redex_free(redex);
    }
}

#[test]
fn lagged_is_reported_with_the_resume_point() {
    let redex = manager(None);
    let file = open_file(redex, "ffi/lag", r#"{"retention": {"max_events": 2}}"#).unwrap();
    let mut tail = ptr::null_mut();
    unsafe { net_redex_file_tail(file, 0, &mut tail) };
    for i in 0..5u8 {
        append(file, &[i]).unwrap();
    }
    let mut removed = 0;
    assert_eq!(
        unsafe { net_redex_file_sweep_retention(file, &mut removed) },
        net_status_t::NET_OK
    );
    assert_eq!(removed, 3);
    assert_eq!(next(tail, 0), (net_status_t::NET_LAGGED, 3, Vec::new()));
    assert_eq!(next(tail, 0), (net_status_t::NET_OK, 3, vec![3]));
    unsafe {
        net_redex_tail_free(tail);
        net_redex_file_free(file);
        net_redex_free(redex);
    }
}

#[test]
fn configuration_and_lock_errors() {
    let base = temp_dir("errors");
    let redex = manager(Some(&base));
    assert_eq!(
        open_file(redex, "bad//name", ""),
        Err(net_status_t::NET_ERR_CHANNEL_INVALID_NAME)
    );
    assert_eq!(
        open_file(redex, "ok", r#"{"persistant": true}"#),
        Err(net_status_t::NET_ERR_REDEX_INVALID_CONFIG)
    );
    assert!(last_error().contains("persistant"), "{}", last_error());
    let heap_only = manager(None);
    assert_eq!(
        open_file(heap_only, "ok", r#"{"persistent": true}"#),
        Err(net_status_t::NET_ERR_REDEX_NO_PERSISTENT_DIR)
    );
    let first = open_file(redex, "locked", r#"{"persistent": true}"#).unwrap();
    let other = manager(Some(&base));
    assert_eq!(
        open_file(other, "locked", r#"{"persistent": true}"#),
        Err(net_status_t::NET_ERR_REDEX_LOCKED)
    );
    assert!(last_error().contains("locked"), "{}", last_error());
    unsafe { net_redex_file_free(first) };
    let second = open_file(other, "locked", r#"{"persistent": true}"#).unwrap();
    unsafe {
        net_redex_file_free(second);
        net_redex_free(other);
        net_redex_free(heap_only);
        net_redex_free(redex);
    }
    std::fs::remove_dir_all(base).unwrap();
}

// ---- the three races, per handle type --------------------------------------

#[test]
fn race_op_after_free_returns_shutting_down_for_every_handle() {
    let redex = manager(None);
    let file = open_file(redex, "race/after", "").unwrap();
    let mut tail = ptr::null_mut();
    unsafe { net_redex_file_tail(file, 0, &mut tail) };
    unsafe {
        net_redex_tail_free(tail);
        net_redex_file_free(file);
        net_redex_free(redex);
    }
    assert_eq!(next(tail, 0).0, net_status_t::NET_ERR_SHUTTING_DOWN);
    assert_eq!(append(file, b"x"), Err(net_status_t::NET_ERR_SHUTTING_DOWN));
    assert_eq!(
        open_file(redex, "race/other", ""),
        Err(net_status_t::NET_ERR_SHUTTING_DOWN)
    );
}

#[test]
fn race_concurrent_frees_are_idempotent_for_every_handle() {
    for _ in 0..50 {
        let redex = manager(None);
        let file = open_file(redex, "race/free", "").unwrap();
        let mut tail = ptr::null_mut();
        unsafe { net_redex_file_tail(file, 0, &mut tail) };
        let (r, f, t) = (Send(redex), Send(file), Send(tail));
        let start = Arc::new(Barrier::new(6));
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let start = start.clone();
                thread::spawn(move || {
                    let (r, f, t) = (r, f, t);
                    start.wait();
                    match i % 3 {
                        0 => unsafe {
                            let _ = append(f.0, b"x");
                            net_redex_file_free(f.0);
                        },
                        1 => unsafe {
                            let _ = next(t.0, 1);
                            net_redex_tail_free(t.0);
                        },
                        _ => unsafe {
                            let _ = open_file(r.0, "race/free2", "");
                            net_redex_free(r.0);
                        },
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(append(file, b"x"), Err(net_status_t::NET_ERR_SHUTTING_DOWN));
        assert_eq!(next(tail, 0).0, net_status_t::NET_ERR_SHUTTING_DOWN);
    }
}

#[test]
fn race_tail_free_wakes_a_next_blocked_forever() {
    let redex = manager(None);
    let file = open_file(redex, "race/tail", "").unwrap();
    until_won(200, 5, |_| {
        let mut tail = ptr::null_mut();
        unsafe { net_redex_file_tail(file, u64::MAX, &mut tail) };
        let t = P(tail);
        let blocked = thread::spawn(move || {
            let t = t;
            next(t.0, NET_WAIT_FOREVER).0
        });
        let_it_block();
        assert_eq!(unsafe { net_redex_tail_free(tail) }, net_status_t::NET_OK);
        // NET_END: the free woke it in its wait (and waited for it to leave);
        // SHUTTING_DOWN: the free came first, which proves nothing.
        match blocked.join().unwrap() {
            net_status_t::NET_END => true,
            net_status_t::NET_ERR_SHUTTING_DOWN => false,
            other => panic!("{other:?}"),
        }
    });
    unsafe {
        net_redex_file_free(file);
        net_redex_free(redex);
    }
}

#[test]
fn race_cancel_wakes_a_blocked_tail_next_and_the_tail_reads_on() {
    let redex = manager(None);
    let file = open_file(redex, "race/cancel", "").unwrap();
    let mut tail = ptr::null_mut();
    unsafe { net_redex_file_tail(file, 0, &mut tail) };
    let t = P(tail);
    until_won(200, 5, |_| {
        let token = P(cancel_token());
        let blocked = thread::spawn(move || {
            let (t, token) = (t, token);
            let (mut seq, mut payload, mut error) = (0, net_bytes_t::EMPTY, error_slot());
            let status = unsafe {
                net_redex_tail_next(
                    t.0,
                    NET_WAIT_FOREVER,
                    &mut seq,
                    &mut payload,
                    token.0,
                    &mut error,
                )
            };
            (status, error_of(error))
        });
        let_it_block();
        assert_eq!(unsafe { net_cancel_cancel(token.0) }, net_status_t::NET_OK);
        let (status, (error_status, message)) = blocked.join().unwrap();
        assert_eq!(status, net_status_t::NET_ERR_CANCELLED);
        assert_eq!(error_status, status, "the error comes back with the call");
        assert_eq!(unsafe { net_cancel_free(token.0) }, net_status_t::NET_OK);
        interrupted_while_waiting(&message)
    });
    // A cancelled next consumed nothing.
    append(file, b"after").unwrap();
    let (status, seq, payload) = next(tail, 5_000);
    assert_eq!(
        (status, seq, payload.as_slice()),
        (net_status_t::NET_OK, 0, &b"after"[..])
    );
    unsafe {
        net_redex_tail_free(tail);
        net_redex_file_free(file);
        net_redex_free(redex);
    }
}

#[test]
fn race_file_free_waits_for_an_in_flight_append() {
    let base = temp_dir("inflight");
    let redex = manager(Some(&base));
    let big = Arc::new(vec![0x5au8; 48 << 20]);
    for attempt in 0..20 {
        let name = format!("race/big{attempt}");
        let file = open_file(redex, &name, r#"{"persistent": true}"#).unwrap();
        let f = Send(file);
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (big, done) = (big.clone(), done.clone());
            thread::spawn(move || {
                let f = f;
                let result = append(f.0, &big);
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                result
            })
        };
        let in_flight = ffi_common::wait_in_flight(file, &done);
        assert_eq!(unsafe { net_redex_file_free(file) }, net_status_t::NET_OK);
        let result = writer.join().unwrap();
        if in_flight {
            // The free waited for the append, then closed (and synced) the
            // file: the entry is on disk.
            assert_eq!(result, Ok(0));
            let reopened = open_file(redex, &name, r#"{"persistent": true}"#).unwrap();
            let mut len = 0;
            unsafe { net_redex_file_len(reopened, &mut len) };
            assert_eq!(len, 1);
            unsafe { net_redex_file_free(reopened) };
            unsafe { net_redex_free(redex) };
            std::fs::remove_dir_all(base).unwrap();
            return;
        }
    }
    panic!("the append was never seen in flight in 20 rounds");
}

#[test]
fn race_manager_free_waits_for_an_in_flight_open() {
    let base = temp_dir("mgr");
    {
        // A channel big enough that recovery (checksumming every payload) takes a while.
        let redex = manager(Some(&base));
        let file = open_file(redex, "slow/open", r#"{"persistent": true}"#).unwrap();
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..48 {
            append(file, &chunk).unwrap();
        }
        unsafe {
            net_redex_file_free(file);
            net_redex_free(redex);
        }
    }
    for _ in 0..20 {
        let redex = manager(Some(&base));
        let r = Send(redex);
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let opener = {
            let done = done.clone();
            thread::spawn(move || {
                let r = r;
                let result = open_file(r.0, "slow/open", r#"{"persistent": true}"#).map(Send);
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                result
            })
        };
        let in_flight = ffi_common::wait_in_flight(redex, &done);
        assert_eq!(unsafe { net_redex_free(redex) }, net_status_t::NET_OK);
        let result = opener.join().unwrap();
        if in_flight {
            // The free waited for the open, which completed on a live manager.
            let file = result.expect("the open was inside before the free");
            let mut len = 0;
            unsafe { net_redex_file_len(file.0, &mut len) };
            assert_eq!(len, 48);
            unsafe { net_redex_file_free(file.0) };
            std::fs::remove_dir_all(base).unwrap();
            return;
        }
    }
    panic!("the open was never seen in flight in 20 rounds");
}
