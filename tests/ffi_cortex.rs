//! The CortEX C ABI from Rust: tasks and memories models, queries and
//! watches as JSON, snapshots, and the three handle races for each of the
//! four handle types.

use std::ptr;
use std::thread;
use std::time::{Duration, Instant};

mod ffi_common;

use ffi_common::*;
use net::ffi::*;
use serde_json::Value;

fn redex() -> *mut net_redex_t {
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { net_redex_open(ptr::null(), 0, &mut out) },
        net_status_t::NET_OK
    );
    out
}

fn tasks(redex: *mut net_redex_t, config: &str) -> *mut net_tasks_adapter_t {
    let mut out = ptr::null_mut();
    let status = unsafe { net_tasks_open(redex, 7, config.as_ptr(), config.len(), &mut out) };
    assert_eq!(status, net_status_t::NET_OK, "{}", last_error());
    out
}

fn create(t: *mut net_tasks_adapter_t, id: u64, title: &str) -> Result<u64, net_status_t> {
    let mut seq = 0;
    match unsafe { net_tasks_create(t, id, title.as_ptr(), title.len(), &mut seq) } {
        net_status_t::NET_OK => Ok(seq),
        other => Err(other),
    }
}

fn find_many(t: *mut net_tasks_adapter_t, filter: &str) -> Result<Value, net_status_t> {
    let mut out = net_bytes_t::EMPTY;
    match unsafe { net_tasks_find_many(t, filter.as_ptr(), filter.len(), &mut out) } {
        net_status_t::NET_OK => Ok(json(out)),
        other => Err(other),
    }
}

fn watch_next(w: *mut net_tasks_watch_t, timeout_ms: u32) -> (net_status_t, Option<Value>, u64) {
    let (mut rows, mut missed) = (net_bytes_t::EMPTY, 0);
    let status = unsafe { net_tasks_watch_next(w, timeout_ms, &mut rows, &mut missed) };
    let rows = (status == net_status_t::NET_OK).then(|| json(rows));
    (status, rows, missed)
}

#[test]
fn tasks_write_query_watch_snapshot_restore() {
    let r = redex();
    let t = tasks(r, "");
    let mut watch = ptr::null_mut();
    let filter = r#"{"status": "pending"}"#;
    assert_eq!(
        unsafe { net_tasks_watch(t, filter.as_ptr(), filter.len(), &mut watch) },
        net_status_t::NET_OK
    );
    let (status, rows, _) = watch_next(watch, 1000);
    assert_eq!(
        (status, rows),
        (net_status_t::NET_OK, Some(Value::Array(vec![])))
    );

    create(t, 1, "write spec").unwrap();
    create(t, u64::MAX, "big id").unwrap();
    let mut seq = 0;
    assert_eq!(
        unsafe { net_tasks_complete(t, 1, &mut seq) },
        net_status_t::NET_OK
    );
    assert_eq!(
        unsafe { net_tasks_wait_for_seq(t, seq, 5000) },
        net_status_t::NET_OK
    );

    let all = find_many(t, "").unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(
        all[1]["id"].as_u64(),
        Some(u64::MAX),
        "u64 ids survive JSON exactly"
    );
    assert_eq!(all[0]["status"], "completed");
    let pending = find_many(
        t,
        r#"{"status": "pending", "order_by": "id_desc", "limit": 5}"#,
    )
    .unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(
        find_many(t, r#"{"stauts": "pending"}"#),
        Err(net_status_t::NET_ERR_CORTEX_INVALID_QUERY)
    );
    assert!(last_error().contains("stauts"), "{}", last_error());

    let (mut one, mut found) = (net_bytes_t::EMPTY, false);
    assert_eq!(
        unsafe { net_tasks_find_unique(t, 1, &mut one, &mut found) },
        net_status_t::NET_OK
    );
    assert!(found);
    assert_eq!(json(one)["title"], "write spec");
    let mut count = 0;
    assert_eq!(
        unsafe { net_tasks_count_where(t, ptr::null(), 0, &mut count) },
        net_status_t::NET_OK
    );
    assert_eq!(count, 2);

    // The watch saw the pending set change (possibly coalesced).
    let mut last_rows = None;
    loop {
        match watch_next(watch, 200) {
            (net_status_t::NET_OK, rows, _) => last_rows = rows,
            (net_status_t::NET_TIMEOUT, _, _) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(last_rows.unwrap().as_array().unwrap().len(), 1);

    let (mut bytes, mut last_seq, mut has) = (net_bytes_t::EMPTY, 0, false);
    assert_eq!(
        unsafe { net_tasks_snapshot(t, &mut bytes, &mut last_seq, &mut has) },
        net_status_t::NET_OK
    );
    assert!(has);
    assert_eq!(last_seq, seq);
    let bytes = take(bytes);
    let mut progress = net_bytes_t::EMPTY;
    unsafe { net_tasks_progress(t, &mut progress) };
    let progress = json(progress);
    assert_eq!(progress["applied_through_seq"].as_u64(), Some(seq));
    assert_eq!(progress["running"], true);
    unsafe {
        net_tasks_watch_free(watch);
        net_tasks_free(t);
    }

    let mut restored = ptr::null_mut();
    let status = unsafe {
        net_tasks_restore(
            r,
            7,
            ptr::null(),
            0,
            bytes.as_ptr(),
            bytes.len(),
            last_seq,
            true,
            &mut restored,
        )
    };
    assert_eq!(status, net_status_t::NET_OK, "{}", last_error());
    assert_eq!(find_many(restored, "").unwrap(), all);
    let garbage = [0xffu8; 3];
    let mut bad = ptr::null_mut();
    let status = unsafe {
        net_tasks_restore(
            r,
            7,
            ptr::null(),
            0,
            garbage.as_ptr(),
            3,
            0,
            false,
            &mut bad,
        )
    };
    assert_eq!(status, net_status_t::NET_ERR_CORTEX_SNAPSHOT);
    unsafe {
        net_tasks_free(restored);
        net_redex_free(r);
    }
}

#[test]
fn memories_store_retag_pin_and_query() {
    let r = redex();
    let mut m = ptr::null_mut();
    assert_eq!(
        unsafe { net_memories_open(r, 9, ptr::null(), 0, &mut m) },
        net_status_t::NET_OK
    );
    let tags = [b"fact".as_slice(), b"color"];
    let slices: Vec<net_slice_t> = tags
        .iter()
        .map(|t| net_slice_t {
            ptr: t.as_ptr(),
            len: t.len(),
        })
        .collect();
    let (content, source) = ("the sky is blue", "obs");
    let mut seq = 0;
    let status = unsafe {
        net_memories_store(
            m,
            7,
            content.as_ptr(),
            content.len(),
            slices.as_ptr(),
            2,
            source.as_ptr(),
            source.len(),
            &mut seq,
        )
    };
    assert_eq!(status, net_status_t::NET_OK);
    unsafe { net_memories_retag(m, 7, slices.as_ptr(), 1, &mut seq) };
    unsafe { net_memories_pin(m, 7, &mut seq) };
    assert_eq!(
        unsafe { net_memories_wait_for_seq(m, seq, 5000) },
        net_status_t::NET_OK
    );
    let (mut one, mut found) = (net_bytes_t::EMPTY, false);
    unsafe { net_memories_find_unique(m, 7, &mut one, &mut found) };
    let one = json(one);
    assert_eq!(one["tags"], serde_json::json!(["fact"]));
    assert_eq!(one["pinned"], true);
    let filter = r#"{"tags_any": ["fact"], "pinned": true}"#;
    let mut exists = false;
    unsafe { net_memories_exists_where(m, filter.as_ptr(), filter.len(), &mut exists) };
    assert!(exists);
    let bad = [0xffu8];
    let bad_slice = [net_slice_t {
        ptr: bad.as_ptr(),
        len: 1,
    }];
    assert_eq!(
        unsafe { net_memories_retag(m, 7, bad_slice.as_ptr(), 1, &mut seq) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    unsafe {
        net_memories_free(m);
        net_redex_free(r);
    }
}

#[test]
fn halted_fold_refuses_writes_and_never_hangs_a_wait() {
    let r = redex();
    let t = tasks(r, r#"{"policy": "stop"}"#);
    create(t, 1, "ok").unwrap();
    // A corrupt record appended behind the model's back halts the fold.
    let mut file = ptr::null_mut();
    let name = "cortex/tasks";
    assert_eq!(
        unsafe { net_redex_open_file(r, name.as_ptr(), name.len(), ptr::null(), 0, &mut file) },
        net_status_t::NET_OK
    );
    let mut bad_seq = 0;
    let garbage = [0u8; 30];
    unsafe { net_redex_file_append(file, garbage.as_ptr(), garbage.len(), &mut bad_seq) };
    let started = Instant::now();
    assert_eq!(
        unsafe { net_tasks_wait_for_seq(t, bad_seq, NET_WAIT_FOREVER) },
        net_status_t::NET_ERR_CORTEX_HALTED
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        create(t, 2, "refused"),
        Err(net_status_t::NET_ERR_CORTEX_HALTED)
    );
    let config = r#"{"polcy": "stop"}"#;
    let mut other = ptr::null_mut();
    assert_eq!(
        unsafe { net_tasks_open(r, 1, config.as_ptr(), config.len(), &mut other) },
        net_status_t::NET_ERR_CORTEX_INVALID_CONFIG
    );
    unsafe {
        net_redex_file_free(file);
        net_tasks_free(t);
        net_redex_free(r);
    }
}

// ---- the three races, for each of the four handle types --------------------

#[test]
fn race_op_after_free_returns_shutting_down() {
    let r = redex();
    let t = tasks(r, "");
    let mut m = ptr::null_mut();
    unsafe { net_memories_open(r, 1, ptr::null(), 0, &mut m) };
    let (mut tw, mut mw) = (ptr::null_mut(), ptr::null_mut());
    unsafe {
        net_tasks_watch(t, ptr::null(), 0, &mut tw);
        net_memories_watch(m, ptr::null(), 0, &mut mw);
        net_tasks_watch_free(tw);
        net_memories_watch_free(mw);
        net_tasks_free(t);
        net_memories_free(m);
    }
    assert_eq!(create(t, 1, "x"), Err(net_status_t::NET_ERR_SHUTTING_DOWN));
    let mut seq = 0;
    assert_eq!(
        unsafe { net_memories_pin(m, 1, &mut seq) },
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
    assert_eq!(watch_next(tw, 0).0, net_status_t::NET_ERR_SHUTTING_DOWN);
    let (mut rows, mut missed) = (net_bytes_t::EMPTY, 0);
    assert_eq!(
        unsafe { net_memories_watch_next(mw, 0, &mut rows, &mut missed) },
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
    unsafe { net_redex_free(r) };
}

#[test]
fn race_concurrent_frees_are_idempotent() {
    for round in 0..30 {
        let r = redex();
        let t = tasks(r, "");
        let mut m = ptr::null_mut();
        unsafe { net_memories_open(r, 1, ptr::null(), 0, &mut m) };
        let (mut tw, mut mw) = (ptr::null_mut(), ptr::null_mut());
        unsafe {
            net_tasks_watch(t, ptr::null(), 0, &mut tw);
            net_memories_watch(m, ptr::null(), 0, &mut mw);
        }
        let (t, m, tw, mw) = (P(t), P(m), P(tw), P(mw));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                thread::spawn(move || {
                    let (t, m, tw, mw) = (t, m, tw, mw);
                    match i % 4 {
                        0 => unsafe {
                            let _ = create(t.0, round, "x");
                            net_tasks_free(t.0);
                        },
                        1 => unsafe {
                            let mut seq = 0;
                            let _ = net_memories_pin(m.0, 1, &mut seq);
                            net_memories_free(m.0);
                        },
                        2 => unsafe {
                            let _ = watch_next(tw.0, 1);
                            net_tasks_watch_free(tw.0);
                        },
                        _ => unsafe {
                            let (mut rows, mut missed) = (net_bytes_t::EMPTY, 0);
                            if net_memories_watch_next(mw.0, 1, &mut rows, &mut missed)
                                == net_status_t::NET_OK
                            {
                                take(rows);
                            }
                            net_memories_watch_free(mw.0);
                        },
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert_eq!(
            create(t.0, 1, "x"),
            Err(net_status_t::NET_ERR_SHUTTING_DOWN)
        );
        unsafe { net_redex_free(r) };
    }
}

#[test]
fn race_watch_free_wakes_and_waits_for_a_blocked_next() {
    let r = redex();
    let t = tasks(r, "");
    let mut m = ptr::null_mut();
    unsafe { net_memories_open(r, 1, ptr::null(), 0, &mut m) };
    for _ in 0..10 {
        let (mut tw, mut mw) = (ptr::null_mut(), ptr::null_mut());
        let mut current = net_bytes_t::EMPTY;
        unsafe { net_tasks_snapshot_and_watch(t, ptr::null(), 0, &mut current, &mut tw) };
        take(current);
        let mut current = net_bytes_t::EMPTY;
        unsafe { net_memories_snapshot_and_watch(m, ptr::null(), 0, &mut current, &mut mw) };
        take(current);
        let (ptw, pmw) = (P(tw), P(mw));
        let tasks_waiter = thread::spawn(move || {
            let w = ptw;
            (watch_next(w.0, NET_WAIT_FOREVER).0, Instant::now())
        });
        let memories_waiter = thread::spawn(move || {
            let w = pmw;
            let (mut rows, mut missed) = (net_bytes_t::EMPTY, 0);
            (
                unsafe { net_memories_watch_next(w.0, NET_WAIT_FOREVER, &mut rows, &mut missed) },
                Instant::now(),
            )
        });
        thread::sleep(Duration::from_millis(20));
        unsafe {
            net_tasks_watch_free(tw);
            net_memories_watch_free(mw);
        }
        let freed = Instant::now();
        for (status, returned) in [
            tasks_waiter.join().unwrap(),
            memories_waiter.join().unwrap(),
        ] {
            assert_eq!(status, net_status_t::NET_END);
            assert!(freed + Duration::from_millis(20) >= returned);
        }
    }
    unsafe {
        net_tasks_free(t);
        net_memories_free(m);
        net_redex_free(r);
    }
}

#[test]
fn race_model_free_waits_for_an_in_flight_write_and_open() {
    // An in-flight write: a huge title makes the append take a while.
    let r = redex();
    let title = "t".repeat(32 << 20);
    for _ in 0..5 {
        let t = tasks(r, "");
        let pt = P(t);
        let title = title.clone();
        let writer = thread::spawn(move || {
            let t = pt;
            (create(t.0, 1, &title), Instant::now())
        });
        thread::sleep(Duration::from_millis(2));
        unsafe { net_tasks_free(t) };
        let freed = Instant::now();
        let (result, returned) = writer.join().unwrap();
        if result.is_ok() {
            assert!(
                freed + Duration::from_millis(20) >= returned,
                "free returned before the write finished"
            );
            break;
        }
        assert!(matches!(
            result,
            Err(net_status_t::NET_ERR_SHUTTING_DOWN
                | net_status_t::NET_ERR_REDEX_CLOSED
                | net_status_t::NET_ERR_CORTEX_HALTED)
        ));
    }
    // An in-flight open (recovering the app sequence over many events) of
    // the memories model, racing the manager's free.
    {
        let mut m = ptr::null_mut();
        unsafe { net_memories_open(r, 3, ptr::null(), 0, &mut m) };
        let tags: [net_slice_t; 0] = [];
        let mut seq = 0;
        for id in 0..20_000u64 {
            unsafe {
                net_memories_store(
                    m,
                    id,
                    b"x".as_ptr(),
                    1,
                    tags.as_ptr(),
                    0,
                    b"s".as_ptr(),
                    1,
                    &mut seq,
                )
            };
        }
        // Keep the file open through another handle; free the model.
        unsafe { net_memories_free(m) };
    }
    let pr = P(r);
    let opener = thread::spawn(move || {
        let r = pr;
        let mut m = ptr::null_mut();
        let status = unsafe { net_memories_open(r.0, 3, ptr::null(), 0, &mut m) };
        (status, P(m), Instant::now())
    });
    thread::sleep(Duration::from_millis(1));
    unsafe { net_redex_free(r) };
    let freed = Instant::now();
    let (status, m, returned) = opener.join().unwrap();
    if status == net_status_t::NET_OK {
        assert!(freed + Duration::from_millis(20) >= returned);
        unsafe { net_memories_free(m.0) };
    } else {
        assert_eq!(status, net_status_t::NET_ERR_SHUTTING_DOWN);
    }
}
