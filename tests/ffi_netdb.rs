//! NetDB over the C ABI: open (failure-atomic), the models lent as
//! `net_model_t`, bundles, close, configuration errors, and the three
//! handle races (op after free, concurrent frees, free waits for an
//! in-flight call).

mod ffi_common;

use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ffi_common::{P, last_error, take, wait_in_flight};
use net::ffi::*;

fn redex(base: Option<&str>) -> *mut net_redex_t {
    let mut out = ptr::null_mut();
    let (p, n) = base.map_or((ptr::null(), 0), |b| (b.as_ptr(), b.len()));
    assert_eq!(
        unsafe { net_redex_open(p, n, &mut out) },
        net_status_t::NET_OK
    );
    out
}

fn open(r: *mut net_redex_t, config: &str) -> Result<*mut net_netdb_t, (net_status_t, String)> {
    let mut out = ptr::null_mut();
    match unsafe { net_netdb_open(r, 7, config.as_ptr(), config.len(), &mut out) } {
        net_status_t::NET_OK => Ok(out),
        status => {
            assert!(out.is_null(), "an output written by a failing call");
            Err((status, last_error()))
        }
    }
}

fn open_from(
    r: *mut net_redex_t,
    config: &str,
    bundle: &[u8],
) -> Result<*mut net_netdb_t, (net_status_t, String)> {
    let mut out = ptr::null_mut();
    let status = unsafe {
        net_netdb_open_from_bundle(
            r,
            7,
            config.as_ptr(),
            config.len(),
            bundle.as_ptr(),
            bundle.len(),
            &mut out,
        )
    };
    match status {
        net_status_t::NET_OK => Ok(out),
        status => Err((status, last_error())),
    }
}

const BOTH: &str = r#"{"with_tasks": true, "with_memories": true}"#;

fn model(db: *mut net_netdb_t, kind: u32) -> Result<*mut net_model_t, net_status_t> {
    let mut out = ptr::null_mut();
    match unsafe { net_netdb_model(db, kind, &mut out) } {
        net_status_t::NET_OK => Ok(out),
        status => Err(status),
    }
}

fn create(t: *mut net_model_t, id: u64, title: &str) -> u64 {
    let mut seq = 0;
    let status = unsafe { net_tasks_create(t, id, title.as_ptr(), title.len(), &mut seq) };
    assert_eq!(status, net_status_t::NET_OK, "{}", last_error());
    seq
}

fn store(m: *mut net_model_t, id: u64, content: &str) -> u64 {
    let mut seq = 0;
    let source = "src";
    let status = unsafe {
        net_memories_store(
            m,
            id,
            content.as_ptr(),
            content.len(),
            ptr::null(),
            0,
            source.as_ptr(),
            source.len(),
            &mut seq,
        )
    };
    assert_eq!(status, net_status_t::NET_OK, "{}", last_error());
    seq
}

fn count(m: *mut net_model_t) -> u64 {
    let mut n = 0;
    let status = unsafe { net_model_count_where(m, ptr::null(), 0, &mut n) };
    assert_eq!(status, net_status_t::NET_OK);
    n
}

fn snapshot(db: *mut net_netdb_t) -> Result<Vec<u8>, net_status_t> {
    let mut out = net_bytes_t::EMPTY;
    match unsafe { net_netdb_snapshot(db, &mut out) } {
        net_status_t::NET_OK => Ok(take(out)),
        status => Err(status),
    }
}

#[test]
fn models_are_lent_as_model_handles_and_bundled_together() {
    let r = redex(None);
    let db = open(r, BOTH).unwrap();
    let tasks = model(db, NET_MODEL_TASKS).unwrap();
    let memories = model(db, NET_MODEL_MEMORIES).unwrap();
    // Lent, not copied: the same handle every time.
    assert_eq!(model(db, NET_MODEL_TASKS).unwrap(), tasks);
    let mut kind = 0;
    assert_eq!(
        unsafe { net_model_kind(memories, &mut kind) },
        net_status_t::NET_OK
    );
    assert_eq!(kind, NET_MODEL_MEMORIES);
    create(tasks, 1, "one");
    store(memories, 2, "two");
    let bundle = snapshot(db).unwrap();
    assert_eq!(unsafe { net_netdb_close(db) }, net_status_t::NET_OK);
    assert_eq!(unsafe { net_netdb_close(db) }, net_status_t::NET_OK);
    assert_eq!(unsafe { net_netdb_free(db) }, net_status_t::NET_OK);
    // Its models went with it.
    assert_eq!(
        unsafe { net_model_count_where(tasks, ptr::null(), 0, &mut 0) },
        net_status_t::NET_ERR_SHUTTING_DOWN
    );

    let fresh = redex(None);
    let db = open_from(fresh, BOTH, &bundle).unwrap();
    let tasks = model(db, NET_MODEL_TASKS).unwrap();
    assert_eq!(count(tasks), 1);
    assert_eq!(count(model(db, NET_MODEL_MEMORIES).unwrap()), 1);
    // New events of the fresh log fold on top of the bundle.
    let seq = create(tasks, 3, "three");
    let status = unsafe { net_model_wait_for_seq(tasks, seq, 5_000, ptr::null(), ptr::null_mut()) };
    assert_eq!(status, net_status_t::NET_OK);
    assert_eq!(count(tasks), 2);
    assert_eq!(unsafe { net_netdb_free(db) }, net_status_t::NET_OK);
    unsafe {
        net_redex_free(r);
        net_redex_free(fresh);
    }
}

#[test]
fn a_model_not_enabled_is_refused() {
    let r = redex(None);
    let db = open(r, r#"{"with_tasks": true}"#).unwrap();
    assert_eq!(
        model(db, NET_MODEL_MEMORIES),
        Err(net_status_t::NET_ERR_INVALID_ARGUMENT)
    );
    assert!(
        last_error().contains("without the memories model"),
        "{}",
        last_error()
    );
    assert_eq!(model(db, 9), Err(net_status_t::NET_ERR_INVALID_ARGUMENT));
    unsafe { net_netdb_free(db) };
    unsafe { net_redex_free(r) };
}

#[test]
fn bundles_naming_disabled_models_and_corrupt_bundles_fail() {
    let r = redex(None);
    let db = open(r, BOTH).unwrap();
    store(model(db, NET_MODEL_MEMORIES).unwrap(), 1, "x");
    let bundle = snapshot(db).unwrap();
    unsafe { net_netdb_free(db) };

    let fresh = redex(None);
    let (status, message) = open_from(fresh, r#"{"with_tasks": true}"#, &bundle).unwrap_err();
    assert_eq!(status, net_status_t::NET_ERR_CORTEX_SNAPSHOT);
    assert!(message.contains("memories"), "{message}");
    for bad in [&b""[..], b"\x01\x07ab", b"\x00\x00junk"] {
        let (status, _) = open_from(fresh, BOTH, bad).unwrap_err();
        assert_eq!(status, net_status_t::NET_ERR_CORTEX_SNAPSHOT, "{bad:?}");
    }
    // An empty bundle is a fresh open.
    let db = open_from(fresh, BOTH, b"\x00\x00").unwrap();
    assert_eq!(count(model(db, NET_MODEL_TASKS).unwrap()), 0);
    unsafe {
        net_netdb_free(db);
        net_redex_free(r);
        net_redex_free(fresh);
    }
}

#[test]
fn configuration_errors_name_the_key_and_persistent_needs_a_dir() {
    let r = redex(None);
    let (status, message) = open(r, r#"{"with_memory": true}"#).unwrap_err();
    assert_eq!(status, net_status_t::NET_ERR_CORTEX_INVALID_CONFIG);
    assert!(message.contains("with_memory"), "{message}");
    let (status, _) = open(r, r#"{"with_tasks": true, "persistent": true}"#).unwrap_err();
    assert_eq!(status, net_status_t::NET_ERR_REDEX_NO_PERSISTENT_DIR);
    // No model at all is a valid (empty) NetDB.
    let db = open(r, "").unwrap();
    assert_eq!(snapshot(db).unwrap(), [0, 0]);
    unsafe {
        net_netdb_free(db);
        net_redex_free(r);
    }
}

#[test]
fn a_failed_open_leaves_nothing_open() {
    // Memories' channel is held by another manager on the same directory:
    // the tasks model opened first must be closed before the error.
    let base = std::env::temp_dir().join(format!("net-ffi-netdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let base = base.to_str().unwrap().to_owned();
    let (r, holder) = (redex(Some(&base)), redex(Some(&base)));
    let mut held = ptr::null_mut();
    let config = r#"{"persistent": true}"#;
    let status = unsafe {
        net_model_open(
            holder,
            NET_MODEL_MEMORIES,
            1,
            config.as_ptr(),
            config.len(),
            &mut held,
        )
    };
    assert_eq!(status, net_status_t::NET_OK);
    let persistent = r#"{"with_tasks": true, "with_memories": true, "persistent": true}"#;
    let (status, _) = open(r, persistent).unwrap_err();
    assert_eq!(status, net_status_t::NET_ERR_REDEX_LOCKED);
    assert_eq!(unsafe { net_model_free(held) }, net_status_t::NET_OK);
    // The tasks directory is free for the other manager.
    let mut tasks = ptr::null_mut();
    let status = unsafe {
        net_model_open(
            holder,
            NET_MODEL_TASKS,
            1,
            config.as_ptr(),
            config.len(),
            &mut tasks,
        )
    };
    assert_eq!(status, net_status_t::NET_OK, "{}", last_error());
    unsafe { net_model_free(tasks) };
    let db = open(r, persistent).unwrap();
    unsafe {
        net_netdb_free(db);
        net_redex_free(r);
        net_redex_free(holder);
    }
    let _ = std::fs::remove_dir_all(&base);
}

// ---- the races ----------------------------------------------------------------

#[test]
fn race_op_after_free_returns_shutting_down() {
    let r = redex(None);
    for _ in 0..20 {
        let db = P(open(r, BOTH).unwrap());
        let racer = thread::spawn(move || {
            let db = db;
            for _ in 0..200 {
                match snapshot(db.0) {
                    Ok(_) => {}
                    Err(status) => {
                        assert_eq!(status, net_status_t::NET_ERR_SHUTTING_DOWN);
                        return true;
                    }
                }
            }
            false
        });
        thread::yield_now();
        assert_eq!(unsafe { net_netdb_free(db.0) }, net_status_t::NET_OK);
        racer.join().unwrap();
        assert_eq!(snapshot(db.0), Err(net_status_t::NET_ERR_SHUTTING_DOWN));
        assert_eq!(
            model(db.0, NET_MODEL_TASKS),
            Err(net_status_t::NET_ERR_SHUTTING_DOWN)
        );
        assert_eq!(
            unsafe { net_netdb_close(db.0) },
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
    }
    unsafe { net_redex_free(r) };
}

#[test]
fn race_concurrent_frees_are_idempotent() {
    let r = redex(None);
    for _ in 0..20 {
        let db = P(open(r, BOTH).unwrap());
        let frees: Vec<_> = (0..4)
            .map(|_| {
                thread::spawn(move || {
                    let db = db;
                    unsafe { net_netdb_free(db.0) }
                })
            })
            .collect();
        for f in frees {
            assert_eq!(f.join().unwrap(), net_status_t::NET_OK);
        }
    }
    assert_eq!(
        unsafe { net_netdb_free(ptr::null_mut()) },
        net_status_t::NET_OK
    );
    unsafe { net_redex_free(r) };
}

#[test]
fn race_free_waits_for_an_in_flight_snapshot() {
    // A large state makes the snapshot take a while; the free begins while
    // it is in flight and must return after it.
    let r = redex(None);
    let db = P(open(r, BOTH).unwrap());
    let tasks = model(db.0, NET_MODEL_TASKS).unwrap();
    let title = "t".repeat(4096);
    for id in 0..4_000 {
        create(tasks, id, &title);
    }
    let mut won = false;
    for _ in 0..20 {
        let done = Arc::new(AtomicBool::new(false));
        let snap = {
            let done = done.clone();
            thread::spawn(move || {
                let db = db;
                let mut out = net_bytes_t::EMPTY;
                let status = unsafe { net_netdb_snapshot(db.0, &mut out) };
                let returned = Instant::now();
                done.store(true, Ordering::SeqCst);
                (take(out), status, returned)
            })
        };
        if !wait_in_flight(db.0, &done) {
            assert_eq!(snap.join().unwrap().1, net_status_t::NET_OK);
            continue;
        }
        assert_eq!(unsafe { net_netdb_free(db.0) }, net_status_t::NET_OK);
        let freed = Instant::now();
        let (bundle, status, returned) = snap.join().unwrap();
        assert_eq!(
            status,
            net_status_t::NET_OK,
            "an admitted snapshot was cut short"
        );
        assert!(bundle.len() > 4_000 * 4_096);
        // Up to the time the snapshotting thread takes to read the clock.
        assert!(
            returned <= freed + Duration::from_millis(20),
            "free returned before the snapshot did"
        );
        won = true;
        break;
    }
    assert!(won, "the snapshot never was in flight when the free began");
    unsafe { net_redex_free(r) };
}
