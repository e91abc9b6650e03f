//! The pull-based log of the C ABI: records at the level asked for reach
//! `net_log_next`, a cancel wakes a blocked pull, and nothing is queued
//! while logging is off. One test: the collector is process-wide.

use std::ptr;
use std::thread;

mod ffi_common;

use ffi_common::*;
use net::ffi::*;

fn next(timeout_ms: u32, cancel: *const net_cancel_t) -> (net_status_t, u32, String) {
    let (mut level, mut text) = (0u32, net_bytes_t::EMPTY);
    let status =
        unsafe { net_log_next(timeout_ms, &mut level, &mut text, cancel, ptr::null_mut()) };
    (status, level, String::from_utf8(take(text)).unwrap())
}

/// Opens a persistent channel whose manifest is garbage: recovery rewrites
/// it and logs a warning.
fn provoke_a_recovery_warning(base: &std::path::Path) {
    let channel = base.join("log/chan");
    std::fs::create_dir_all(&channel).unwrap();
    std::fs::write(channel.join("manifest"), b"not a manifest at all").unwrap();
    let mut redex = ptr::null_mut();
    let dir = base.to_str().unwrap();
    assert_eq!(
        unsafe { net_redex_open(dir.as_ptr(), dir.len(), &mut redex) },
        net_status_t::NET_OK
    );
    let (name, config) = ("log/chan", r#"{"persistent": true}"#);
    let mut file = ptr::null_mut();
    assert_eq!(
        unsafe {
            net_redex_open_file(
                redex,
                name.as_ptr(),
                name.len(),
                config.as_ptr(),
                config.len(),
                &mut file,
            )
        },
        net_status_t::NET_OK,
        "{}",
        last_error()
    );
    unsafe {
        net_redex_file_free(file);
        net_redex_free(redex);
    }
}

#[test]
fn records_are_pulled_at_the_level_asked_for_and_a_cancel_wakes_the_pull() {
    let base = std::env::temp_dir().join(format!("net-ffi-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    // Off (the default): nothing is queued.
    provoke_a_recovery_warning(&base.join("off"));
    assert_eq!(net_log_set_level(NET_LOG_WARN), net_status_t::NET_OK);
    assert_eq!(next(0, ptr::null()).0, net_status_t::NET_TIMEOUT);

    provoke_a_recovery_warning(&base.join("on"));
    let (status, level, text) = next(5_000, ptr::null());
    assert_eq!(status, net_status_t::NET_OK);
    assert_eq!(level, NET_LOG_WARN);
    assert!(text.contains("recovery"), "{text}");

    assert_eq!(
        net_log_set_level(NET_LOG_TRACE + 1),
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );

    until_won(200, 3, |_| {
        let token = P(cancel_token());
        let puller = thread::spawn(move || {
            let token = token;
            let (mut level, mut text, mut error) = (0u32, net_bytes_t::EMPTY, error_slot());
            let status = unsafe {
                net_log_next(NET_WAIT_FOREVER, &mut level, &mut text, token.0, &mut error)
            };
            (status, error_of(error).1)
        });
        let_it_block();
        unsafe { net_cancel_cancel(token.0) };
        let (status, message) = puller.join().unwrap();
        assert_eq!(status, net_status_t::NET_ERR_CANCELLED);
        unsafe { net_cancel_free(token.0) };
        interrupted_while_waiting(&message)
    });
    assert_eq!(net_log_set_level(NET_LOG_OFF), net_status_t::NET_OK);
    let _ = std::fs::remove_dir_all(&base);
}
