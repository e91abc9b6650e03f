//! The CortEX C ABI from Rust: one `net_model_t` for every model kind (tasks
//! and memories), the writes particular to each kind, queries and watches
//! as JSON, snapshots, and the handle races for both handle types
//! (`net_model_t`, `net_model_watch_t`) and both kinds.

use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

mod ffi_common;

use ffi_common::*;
use net::ffi::*;
use serde_json::{Value, json};

const KINDS: [u32; 2] = [NET_MODEL_TASKS, NET_MODEL_MEMORIES];

fn redex() -> *mut net_redex_t {
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { net_redex_open(ptr::null(), 0, &mut out) },
        net_status_t::NET_OK
    );
    out
}

fn open(redex: *mut net_redex_t, kind: u32, origin: u64, config: &str) -> *mut net_model_t {
    let mut out = ptr::null_mut();
    let status =
        unsafe { net_model_open(redex, kind, origin, config.as_ptr(), config.len(), &mut out) };
    assert_eq!(status, net_status_t::NET_OK, "{}", last_error());
    out
}

fn tasks(redex: *mut net_redex_t, config: &str) -> *mut net_model_t {
    open(redex, NET_MODEL_TASKS, 7, config)
}

fn memories(redex: *mut net_redex_t, origin: u64) -> *mut net_model_t {
    open(redex, NET_MODEL_MEMORIES, origin, "")
}

fn kind_of(m: *mut net_model_t) -> u32 {
    let mut kind = 0;
    assert_eq!(
        unsafe { net_model_kind(m, &mut kind) },
        net_status_t::NET_OK
    );
    kind
}

fn create(t: *mut net_model_t, id: u64, title: &str) -> Result<u64, net_status_t> {
    let mut seq = 0;
    match unsafe { net_tasks_create(t, id, title.as_ptr(), title.len(), &mut seq) } {
        net_status_t::NET_OK => Ok(seq),
        other => Err(other),
    }
}

fn slices(strings: &[&str]) -> Vec<net_slice_t> {
    strings
        .iter()
        .map(|s| net_slice_t {
            ptr: s.as_ptr(),
            len: s.len(),
        })
        .collect()
}

fn store(m: *mut net_model_t, id: u64, content: &str, tags: &[&str]) -> Result<u64, net_status_t> {
    let tags = slices(tags);
    let source = "obs";
    let mut seq = 0;
    let status = unsafe {
        net_memories_store(
            m,
            id,
            content.as_ptr(),
            content.len(),
            tags.as_ptr(),
            tags.len(),
            source.as_ptr(),
            source.len(),
            &mut seq,
        )
    };
    match status {
        net_status_t::NET_OK => Ok(seq),
        other => Err(other),
    }
}

/// A write of any kind: a task or a memory with id `id`.
fn write_row(m: *mut net_model_t, id: u64) -> Result<u64, net_status_t> {
    match kind_of(m) {
        NET_MODEL_TASKS => create(m, id, "row"),
        _ => store(m, id, "row", &[]),
    }
}

fn wait_for_seq(m: *mut net_model_t, seq: u64, timeout_ms: u32) -> net_status_t {
    unsafe { net_model_wait_for_seq(m, seq, timeout_ms, ptr::null(), ptr::null_mut()) }
}

fn find_many(m: *mut net_model_t, filter: &str) -> Result<Value, net_status_t> {
    let mut out = net_bytes_t::EMPTY;
    match unsafe { net_model_find_many(m, filter.as_ptr(), filter.len(), &mut out) } {
        net_status_t::NET_OK => Ok(json(out)),
        other => Err(other),
    }
}

fn find_unique(m: *mut net_model_t, id: u64) -> Option<Value> {
    let (mut one, mut found) = (net_bytes_t::EMPTY, false);
    assert_eq!(
        unsafe { net_model_find_unique(m, id, &mut one, &mut found) },
        net_status_t::NET_OK
    );
    if found {
        Some(json(one))
    } else {
        assert!(one.ptr.is_null() && one.len == 0);
        None
    }
}

fn count_where(m: *mut net_model_t, filter: &str) -> u64 {
    let mut count = u64::MAX;
    assert_eq!(
        unsafe { net_model_count_where(m, filter.as_ptr(), filter.len(), &mut count) },
        net_status_t::NET_OK
    );
    count
}

fn exists_where(m: *mut net_model_t, filter: &str) -> bool {
    let mut exists = false;
    assert_eq!(
        unsafe { net_model_exists_where(m, filter.as_ptr(), filter.len(), &mut exists) },
        net_status_t::NET_OK
    );
    exists
}

fn watch(m: *mut net_model_t, filter: &str) -> *mut net_model_watch_t {
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { net_model_watch(m, filter.as_ptr(), filter.len(), &mut out) },
        net_status_t::NET_OK
    );
    out
}

/// A watch whose next `_next` blocks until something changes.
fn later_changes(m: *mut net_model_t) -> *mut net_model_watch_t {
    let (mut current, mut out) = (net_bytes_t::EMPTY, ptr::null_mut());
    assert_eq!(
        unsafe { net_model_snapshot_and_watch(m, ptr::null(), 0, &mut current, &mut out) },
        net_status_t::NET_OK
    );
    take(current);
    out
}

fn watch_next(w: *mut net_model_watch_t, timeout_ms: u32) -> (net_status_t, Option<Value>, u64) {
    let (mut rows, mut missed) = (net_bytes_t::EMPTY, 0);
    let status = unsafe {
        net_model_watch_next(
            w,
            timeout_ms,
            &mut rows,
            &mut missed,
            ptr::null(),
            ptr::null_mut(),
        )
    };
    let rows = (status == net_status_t::NET_OK).then(|| json(rows));
    (status, rows, missed)
}

fn snapshot(m: *mut net_model_t) -> (Vec<u8>, Option<u64>) {
    let (mut bytes, mut last_seq, mut has) = (net_bytes_t::EMPTY, 0, false);
    assert_eq!(
        unsafe { net_model_snapshot(m, &mut bytes, &mut last_seq, &mut has) },
        net_status_t::NET_OK
    );
    (take(bytes), has.then_some(last_seq))
}

fn restore(
    r: *mut net_redex_t,
    kind: u32,
    origin: u64,
    (bytes, last_seq): &(Vec<u8>, Option<u64>),
) -> Result<*mut net_model_t, net_status_t> {
    let mut out = ptr::null_mut();
    let status = unsafe {
        net_model_restore(
            r,
            kind,
            origin,
            ptr::null(),
            0,
            bytes.as_ptr(),
            bytes.len(),
            last_seq.unwrap_or(0),
            last_seq.is_some(),
            &mut out,
        )
    };
    match status {
        net_status_t::NET_OK => Ok(out),
        other => {
            assert!(out.is_null(), "out written on failure");
            Err(other)
        }
    }
}

fn progress(m: *mut net_model_t) -> Value {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_model_progress(m, &mut out) },
        net_status_t::NET_OK
    );
    json(out)
}

#[test]
fn tasks_write_query_watch_snapshot_restore() {
    let r = redex();
    let t = tasks(r, "");
    let w = watch(t, r#"{"status": "pending"}"#);
    let (status, rows, _) = watch_next(w, 1000);
    assert_eq!((status, rows), (net_status_t::NET_OK, Some(json!([]))));

    create(t, 1, "write spec").unwrap();
    create(t, u64::MAX, "big id").unwrap();
    let title = "write the spec";
    let mut seq = 0;
    assert_eq!(
        unsafe { net_tasks_rename(t, 1, title.as_ptr(), title.len(), &mut seq) },
        net_status_t::NET_OK
    );
    assert_eq!(
        unsafe { net_tasks_complete(t, 1, &mut seq) },
        net_status_t::NET_OK
    );
    assert_eq!(wait_for_seq(t, seq, 5000), net_status_t::NET_OK);

    let all = find_many(t, "").unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(
        all[1]["id"].as_u64(),
        Some(u64::MAX),
        "u64 ids survive JSON exactly"
    );
    assert_eq!(all[0]["status"], "completed");
    assert_eq!(
        all[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["created_ns", "id", "status", "title", "updated_ns"],
        "the row keys SDKs read"
    );
    let pending = find_many(
        t,
        r#"{"status": "pending", "order_by": "id_desc", "limit": 5}"#,
    )
    .unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(
        find_many(t, r#"{"ids": [1, 1, 2], "title_contains": "spec"}"#).unwrap(),
        json!([all[0]]),
        "a row is returned once however often its id is listed"
    );
    assert_eq!(
        find_many(t, r#"{"stauts": "pending"}"#),
        Err(net_status_t::NET_ERR_CORTEX_INVALID_QUERY)
    );
    assert!(last_error().contains("stauts"), "{}", last_error());

    assert_eq!(find_unique(t, 1).unwrap()["title"], "write the spec");
    assert_eq!(find_unique(t, 2), None);
    assert_eq!(count_where(t, ""), 2);
    assert_eq!(count_where(t, r#"{"status": "completed"}"#), 1);
    assert!(exists_where(t, r#"{"title_contains": "big"}"#));
    assert!(!exists_where(t, r#"{"title_contains": "small"}"#));

    // The watch saw the pending set change (possibly coalesced).
    let mut last_rows = None;
    loop {
        match watch_next(w, 200) {
            (net_status_t::NET_OK, rows, _) => last_rows = rows,
            (net_status_t::NET_TIMEOUT, _, _) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(last_rows.unwrap().as_array().unwrap().len(), 1);

    let snap = snapshot(t);
    assert_eq!(snap.1, Some(seq));
    let progress = progress(t);
    assert_eq!(progress["applied_through_seq"].as_u64(), Some(seq));
    assert_eq!(progress["folded_through_seq"].as_u64(), Some(seq));
    assert_eq!(progress["running"], true);
    assert_eq!(progress["errors"], 0);
    assert_eq!(progress["last_error"], Value::Null);
    assert_eq!(progress["app_seq"], 4);
    unsafe {
        assert_eq!(net_model_watch_free(w), net_status_t::NET_OK);
        assert_eq!(net_model_free(t), net_status_t::NET_OK);
    }

    let restored = restore(r, NET_MODEL_TASKS, 7, &snap).unwrap();
    assert_eq!(kind_of(restored), NET_MODEL_TASKS);
    assert_eq!(find_many(restored, "").unwrap(), all);
    assert_eq!(
        restore(r, NET_MODEL_TASKS, 7, &(vec![0xff; 3], None)),
        Err(net_status_t::NET_ERR_CORTEX_SNAPSHOT)
    );
    unsafe {
        assert_eq!(net_model_free(restored), net_status_t::NET_OK);
        net_redex_free(r);
    }
}

#[test]
fn memories_store_retag_pin_and_query() {
    let r = redex();
    let m = memories(r, 9);
    store(m, 7, "the sky is blue", &["fact", "color"]).unwrap();
    store(m, 8, "grass is green", &["fact"]).unwrap();
    let tags = slices(&["fact"]);
    let mut seq = 0;
    assert_eq!(
        unsafe { net_memories_retag(m, 7, tags.as_ptr(), 1, &mut seq) },
        net_status_t::NET_OK
    );
    assert_eq!(
        unsafe { net_memories_pin(m, 7, &mut seq) },
        net_status_t::NET_OK
    );
    assert_eq!(
        unsafe { net_memories_pin(m, 8, &mut seq) },
        net_status_t::NET_OK
    );
    assert_eq!(
        unsafe { net_memories_unpin(m, 8, &mut seq) },
        net_status_t::NET_OK
    );
    assert_eq!(wait_for_seq(m, seq, 5000), net_status_t::NET_OK);

    let one = find_unique(m, 7).unwrap();
    assert_eq!(one["tags"], json!(["fact"]));
    assert_eq!(one["pinned"], true);
    assert_eq!(
        one.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "content",
            "created_ns",
            "id",
            "pinned",
            "source",
            "tags",
            "updated_ns"
        ],
        "the row keys SDKs read"
    );
    assert_eq!(find_unique(m, 8).unwrap()["pinned"], false);
    assert!(exists_where(m, r#"{"tags_any": ["fact"], "pinned": true}"#));
    assert_eq!(count_where(m, r#"{"tags_all": ["fact"]}"#), 2);
    let newest = find_many(m, r#"{"order_by": "created_desc", "limit": 1}"#).unwrap();
    assert_eq!(newest[0]["id"], 8);
    // A key of the tasks filter is not a memories key.
    assert_eq!(
        find_many(m, r#"{"status": "pending"}"#),
        Err(net_status_t::NET_ERR_CORTEX_INVALID_QUERY)
    );
    assert!(last_error().contains("status"), "{}", last_error());

    let bad = [0xffu8];
    let bad_slice = [net_slice_t {
        ptr: bad.as_ptr(),
        len: 1,
    }];
    assert_eq!(
        unsafe { net_memories_retag(m, 7, bad_slice.as_ptr(), 1, &mut seq) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("tags[0]"), "{}", last_error());

    // The generic delete and snapshot/restore serve memories as well.
    assert_eq!(
        unsafe { net_model_delete(m, 8, &mut seq) },
        net_status_t::NET_OK
    );
    assert_eq!(wait_for_seq(m, seq, 5000), net_status_t::NET_OK);
    assert_eq!(find_unique(m, 8), None);
    let snap = snapshot(m);
    let all = find_many(m, "").unwrap();
    unsafe { assert_eq!(net_model_free(m), net_status_t::NET_OK) };
    let restored = restore(r, NET_MODEL_MEMORIES, 9, &snap).unwrap();
    assert_eq!(kind_of(restored), NET_MODEL_MEMORIES);
    assert_eq!(find_many(restored, "").unwrap(), all);
    unsafe {
        assert_eq!(net_model_free(restored), net_status_t::NET_OK);
        net_redex_free(r);
    }
}

#[test]
fn kinds_round_trip_and_unknown_kinds_are_refused() {
    let r = redex();
    for kind in KINDS {
        let m = open(r, kind, 1, "");
        assert_eq!(kind_of(m), kind);
        let restored = restore(r, kind, 1, &snapshot(m)).unwrap();
        assert_eq!(kind_of(restored), kind);
        unsafe {
            net_model_free(restored);
            net_model_free(m);
        }
    }
    assert_ne!(NET_MODEL_TASKS, NET_MODEL_MEMORIES);
    for bad in [0, 3, u32::MAX] {
        let mut out = ptr::null_mut();
        assert_eq!(
            unsafe { net_model_open(r, bad, 1, ptr::null(), 0, &mut out) },
            net_status_t::NET_ERR_INVALID_ARGUMENT
        );
        assert!(out.is_null());
        let message = last_error();
        assert!(
            message.contains(&format!("`kind` {bad}")) && message.contains("NET_MODEL_TASKS"),
            "{message}"
        );
        assert_eq!(
            restore(r, bad, 1, &(Vec::new(), None)),
            Err(net_status_t::NET_ERR_INVALID_ARGUMENT)
        );
    }
    let mut kind = 0;
    assert_eq!(
        unsafe { net_model_kind(ptr::null(), &mut kind) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    unsafe { net_redex_free(r) };
}

#[test]
fn a_write_of_one_kind_refuses_a_model_of_the_other() {
    let r = redex();
    let t = tasks(r, "");
    let m = memories(r, 1);
    let tags = slices(&["x"]);
    let mut seq = 12345;

    // Tasks writes on a memories model.
    let refused = [
        unsafe { net_tasks_create(m, 1, b"x".as_ptr(), 1, &mut seq) },
        unsafe { net_tasks_rename(m, 1, b"x".as_ptr(), 1, &mut seq) },
        unsafe { net_tasks_complete(m, 1, &mut seq) },
    ];
    for (status, call) in refused.into_iter().zip(["create", "rename", "complete"]) {
        assert_eq!(status, net_status_t::NET_ERR_INVALID_ARGUMENT, "{call}");
    }
    assert_eq!(
        last_error(),
        "this net_model_t is a memories model; net_tasks_complete needs a tasks model \
         (opened with NET_MODEL_TASKS)"
    );
    // Memories writes on a tasks model.
    let refused = [
        unsafe {
            net_memories_store(
                t,
                1,
                b"x".as_ptr(),
                1,
                tags.as_ptr(),
                1,
                b"s".as_ptr(),
                1,
                &mut seq,
            )
        },
        unsafe { net_memories_retag(t, 1, tags.as_ptr(), 1, &mut seq) },
        unsafe { net_memories_pin(t, 1, &mut seq) },
        unsafe { net_memories_unpin(t, 1, &mut seq) },
    ];
    for (status, call) in refused.into_iter().zip(["store", "retag", "pin", "unpin"]) {
        assert_eq!(status, net_status_t::NET_ERR_INVALID_ARGUMENT, "{call}");
    }
    assert!(
        last_error().starts_with("this net_model_t is a tasks model; net_memories_unpin"),
        "{}",
        last_error()
    );
    assert_eq!(seq, 12345, "outputs are not written on failure");

    // Nothing was written, and both models still work.
    for model in [t, m] {
        assert_eq!(count_where(model, ""), 0);
        assert_eq!(progress(model)["app_seq"], 0);
        let seq = write_row(model, 5).unwrap();
        assert_eq!(wait_for_seq(model, seq, 5000), net_status_t::NET_OK);
        assert_eq!(find_unique(model, 5).unwrap()["id"], 5);
    }

    // A watch is not a model, nor a model a watch.
    let w = watch(t, "");
    assert_eq!(
        unsafe { net_model_delete(w.cast::<net_model_t>(), 1, &mut seq) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("net_model_t"), "{}", last_error());
    assert_eq!(
        watch_next(t.cast::<net_model_watch_t>(), 0).0,
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    unsafe {
        assert_eq!(
            net_model_free(w.cast::<net_model_t>()),
            net_status_t::NET_ERR_INVALID_ARGUMENT
        );
        assert_eq!(net_model_watch_free(w), net_status_t::NET_OK);
        net_model_free(t);
        net_model_free(m);
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
        wait_for_seq(t, bad_seq, NET_WAIT_FOREVER),
        net_status_t::NET_ERR_CORTEX_HALTED
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        create(t, 2, "refused"),
        Err(net_status_t::NET_ERR_CORTEX_HALTED)
    );
    let mut seq = 0;
    assert_eq!(
        unsafe { net_model_delete(t, 1, &mut seq) },
        net_status_t::NET_ERR_CORTEX_HALTED
    );
    let progress = progress(t);
    assert_eq!(progress["running"], false);
    assert_eq!(progress["errors"], 1);
    assert!(progress["last_error"].is_string());
    let config = r#"{"polcy": "stop"}"#;
    let mut other = ptr::null_mut();
    assert_eq!(
        unsafe {
            net_model_open(
                r,
                NET_MODEL_TASKS,
                1,
                config.as_ptr(),
                config.len(),
                &mut other,
            )
        },
        net_status_t::NET_ERR_CORTEX_INVALID_CONFIG
    );
    assert!(last_error().contains("polcy"), "{}", last_error());
    unsafe {
        net_redex_file_free(file);
        net_model_free(t);
        net_redex_free(r);
    }
}

#[test]
fn close_ends_waits_and_watches_while_queries_still_answer() {
    let r = redex();
    for kind in KINDS {
        let m = open(r, kind, 1, "");
        let seq = write_row(m, 1).unwrap();
        assert_eq!(wait_for_seq(m, seq, 5000), net_status_t::NET_OK);
        let w = later_changes(m);
        assert_eq!(unsafe { net_model_close(m) }, net_status_t::NET_OK);
        assert_eq!(
            wait_for_seq(m, seq + 100, NET_WAIT_FOREVER),
            net_status_t::NET_ERR_CORTEX_HALTED
        );
        assert_eq!(watch_next(w, NET_WAIT_FOREVER).0, net_status_t::NET_END);
        assert!(matches!(
            write_row(m, 2),
            Err(net_status_t::NET_ERR_CORTEX_HALTED | net_status_t::NET_ERR_REDEX_CLOSED)
        ));
        assert_eq!(find_unique(m, 1).unwrap()["id"], 1);
        unsafe {
            assert_eq!(net_model_watch_free(w), net_status_t::NET_OK);
            assert_eq!(net_model_free(m), net_status_t::NET_OK);
        }
    }
    unsafe { net_redex_free(r) };
}

// ---- the races, for both handle types and both kinds ------------------------

#[test]
fn race_op_after_free_returns_shutting_down() {
    let r = redex();
    for kind in KINDS {
        let m = open(r, kind, 1, "");
        let w = watch(m, "");
        unsafe {
            assert_eq!(net_model_watch_free(w), net_status_t::NET_OK);
            assert_eq!(net_model_free(m), net_status_t::NET_OK);
        }
        let mut seq = 0;
        assert_eq!(
            unsafe { net_model_delete(m, 1, &mut seq) },
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        assert_eq!(
            wait_for_seq(m, 0, NET_WAIT_FOREVER),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        let mut kind_out = 0;
        assert_eq!(
            unsafe { net_model_kind(m, &mut kind_out) },
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        assert_eq!(
            watch_next(w, NET_WAIT_FOREVER).0,
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        // The kind-specific writes see the free before the kind.
        assert_eq!(create(m, 1, "x"), Err(net_status_t::NET_ERR_SHUTTING_DOWN));
        assert_eq!(
            unsafe { net_memories_pin(m, 1, &mut seq) },
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        unsafe {
            assert_eq!(net_model_free(m), net_status_t::NET_OK, "idempotent");
            assert_eq!(net_model_watch_free(w), net_status_t::NET_OK, "idempotent");
            assert_eq!(net_model_free(ptr::null_mut()), net_status_t::NET_OK);
            assert_eq!(net_model_watch_free(ptr::null_mut()), net_status_t::NET_OK);
        }
    }
    unsafe { net_redex_free(r) };
}

#[test]
fn race_concurrent_frees_are_idempotent() {
    for round in 0..30 {
        let r = redex();
        let t = tasks(r, "");
        let m = memories(r, 1);
        let (tw, mw) = (watch(t, ""), watch(m, ""));
        let (t, m, tw, mw) = (P(t), P(m), P(tw), P(mw));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                thread::spawn(move || {
                    let (t, m, tw, mw) = (t, m, tw, mw);
                    match i % 4 {
                        0 => unsafe {
                            let _ = create(t.0, round, "x");
                            net_model_free(t.0)
                        },
                        1 => unsafe {
                            let mut seq = 0;
                            let _ = net_memories_pin(m.0, 1, &mut seq);
                            net_model_free(m.0)
                        },
                        2 => unsafe {
                            let _ = watch_next(tw.0, 1);
                            net_model_watch_free(tw.0)
                        },
                        _ => unsafe {
                            let _ = watch_next(mw.0, 1);
                            net_model_watch_free(mw.0)
                        },
                    }
                })
            })
            .collect();
        for th in threads {
            assert_eq!(th.join().unwrap(), net_status_t::NET_OK);
        }
        assert_eq!(
            create(t.0, 1, "x"),
            Err(net_status_t::NET_ERR_SHUTTING_DOWN)
        );
        assert_eq!(watch_next(mw.0, 0).0, net_status_t::NET_ERR_SHUTTING_DOWN);
        unsafe { net_redex_free(r) };
    }
}

#[test]
fn race_watch_free_wakes_a_next_blocked_forever() {
    let r = redex();
    let t = tasks(r, "");
    let m = memories(r, 1);
    until_won(200, 5, |_| {
        let watches = [P(later_changes(t)), P(later_changes(m))];
        let waiters = watches.map(|w| {
            thread::spawn(move || {
                let w = w;
                watch_next(w.0, NET_WAIT_FOREVER).0
            })
        });
        let_it_block();
        for w in watches {
            assert_eq!(unsafe { net_model_watch_free(w.0) }, net_status_t::NET_OK);
        }
        // NET_END: woken in the wait; SHUTTING_DOWN: freed before it began.
        let outcomes = waiters.map(|w| w.join().unwrap());
        for status in outcomes {
            assert!(
                matches!(
                    status,
                    net_status_t::NET_END | net_status_t::NET_ERR_SHUTTING_DOWN
                ),
                "{status:?}"
            );
        }
        outcomes.iter().all(|s| *s == net_status_t::NET_END)
    });
    unsafe {
        net_model_free(t);
        net_model_free(m);
        net_redex_free(r);
    }
}

#[test]
fn race_model_free_ends_its_watches_blocked_forever() {
    let r = redex();
    until_won(200, 5, |_| {
        let models = KINDS.map(|kind| P(open(r, kind, 1, "")));
        let watches = models.map(|m| P(later_changes(m.0)));
        let waiters = watches.map(|w| {
            let inside = Arc::new(AtomicBool::new(false));
            let flag = inside.clone();
            let waiter = thread::spawn(move || {
                let w = w;
                flag.store(true, Ordering::SeqCst);
                watch_next(w.0, NET_WAIT_FOREVER).0
            });
            (waiter, inside)
        });
        let_it_block();
        // The round proves something only if each call was under way (and
        // not over) when its model was freed.
        let under_way = waiters
            .iter()
            .all(|(waiter, inside)| inside.load(Ordering::SeqCst) && !waiter.is_finished());
        for m in models {
            assert_eq!(unsafe { net_model_free(m.0) }, net_status_t::NET_OK);
        }
        for (waiter, _) in waiters {
            assert_eq!(waiter.join().unwrap(), net_status_t::NET_END);
        }
        for w in watches {
            // The watch outlives its model: it stays ended, and frees cleanly.
            assert_eq!(watch_next(w.0, NET_WAIT_FOREVER).0, net_status_t::NET_END);
            assert_eq!(unsafe { net_model_watch_free(w.0) }, net_status_t::NET_OK);
        }
        under_way
    });
    // A watch that has not delivered its first result yet ends too.
    let m = memories(r, 1);
    let w = watch(m, "");
    unsafe { net_model_free(m) };
    assert_eq!(watch_next(w, NET_WAIT_FOREVER).0, net_status_t::NET_END);
    unsafe {
        net_model_watch_free(w);
        net_redex_free(r);
    }
}

#[test]
fn race_cancel_wakes_a_blocked_watch_next() {
    let r = redex();
    for kind in KINDS {
        let m = open(r, kind, 1, "");
        let w = P(later_changes(m));
        until_won(200, 5, |_| {
            let token = P(cancel_token());
            let waiter = thread::spawn(move || {
                let (w, token) = (w, token);
                let (mut rows, mut missed, mut error) = (net_bytes_t::EMPTY, 0, error_slot());
                let status = unsafe {
                    net_model_watch_next(
                        w.0,
                        NET_WAIT_FOREVER,
                        &mut rows,
                        &mut missed,
                        token.0,
                        &mut error,
                    )
                };
                (status, error_of(error))
            });
            let_it_block();
            unsafe { net_cancel_cancel(token.0) };
            let (status, (error_status, message)) = waiter.join().unwrap();
            assert_eq!(
                (status, error_status),
                (net_status_t::NET_ERR_CANCELLED, status)
            );
            unsafe { net_cancel_free(token.0) };
            interrupted_while_waiting(&message)
        });
        // The watch still works after cancelled calls.
        write_row(m, 9).unwrap();
        let (status, rows, _) = watch_next(w.0, 5_000);
        assert_eq!(status, net_status_t::NET_OK);
        assert_eq!(rows.unwrap()[0]["id"], 9);
        unsafe {
            net_model_watch_free(w.0);
            net_model_free(m);
        }
    }
    unsafe { net_redex_free(r) };
}

#[test]
fn race_model_free_wakes_a_wait_for_seq_blocked_forever() {
    let r = redex();
    until_won(200, 5, |_| {
        let models = KINDS.map(|kind| P(open(r, kind, 2, "")));
        let waiters = models.map(|m| {
            thread::spawn(move || {
                let m = m;
                let mut error = error_slot();
                let status = unsafe {
                    net_model_wait_for_seq(
                        m.0,
                        1_000_000,
                        NET_WAIT_FOREVER,
                        ptr::null(),
                        &mut error,
                    )
                };
                (status, error_of(error))
            })
        });
        let_it_block();
        for m in models {
            assert_eq!(unsafe { net_model_free(m.0) }, net_status_t::NET_OK);
        }
        let outcomes = waiters.map(|w| w.join().unwrap());
        for (status, (error_status, _)) in &outcomes {
            assert_eq!(
                (*status, *error_status),
                (
                    net_status_t::NET_ERR_SHUTTING_DOWN,
                    net_status_t::NET_ERR_SHUTTING_DOWN
                )
            );
        }
        outcomes
            .iter()
            .all(|(_, (_, message))| interrupted_while_waiting(message))
    });
    unsafe { net_redex_free(r) };
}

#[test]
fn race_cancel_wakes_a_blocked_wait_for_seq() {
    let r = redex();
    for kind in KINDS {
        let m = P(open(r, kind, 1, ""));
        until_won(200, 5, |_| {
            let token = P(cancel_token());
            let waiter = thread::spawn(move || {
                let (m, token) = (m, token);
                let mut error = error_slot();
                let status = unsafe {
                    net_model_wait_for_seq(m.0, 1_000_000, NET_WAIT_FOREVER, token.0, &mut error)
                };
                (status, error_of(error))
            });
            let_it_block();
            unsafe { net_cancel_cancel(token.0) };
            let (status, (error_status, message)) = waiter.join().unwrap();
            assert_eq!(
                (status, error_status),
                (net_status_t::NET_ERR_CANCELLED, status)
            );
            unsafe { net_cancel_free(token.0) };
            interrupted_while_waiting(&message)
        });
        // Waiting still works after cancelled waits.
        let seq = write_row(m.0, 1).unwrap();
        assert_eq!(wait_for_seq(m.0, seq, 5_000), net_status_t::NET_OK);
        unsafe { net_model_free(m.0) };
    }
    unsafe { net_redex_free(r) };
}

/// How long to let a racing call run before the free, in yields of the
/// processor (no clock): doubled when the free came too early (the call was
/// refused) and halved when it came too late (the call was over), so the
/// race is found whatever the machine's speed and load.
struct Delay(u32);

impl Delay {
    fn new() -> Self {
        Self(2_000)
    }

    fn run(&self) {
        for _ in 0..self.0 {
            thread::yield_now();
        }
    }

    fn too_early(&mut self) {
        self.0 = (self.0 * 2).clamp(1, 1 << 24);
    }

    fn too_late(&mut self) {
        self.0 /= 2;
    }
}

#[test]
fn race_model_free_waits_for_an_in_flight_write() {
    // A huge title makes the write take a while. A round counts when the
    // write succeeded and returned after the free began: it was in flight,
    // so the free had to wait for it (up to the time the writer takes to
    // read the clock after returning).
    let r = redex();
    let title = Arc::new("t".repeat(32 << 20));
    let mut delay = Delay::new();
    until_won(40, 1, |_| {
        let t = P(tasks(r, ""));
        let title = title.clone();
        let writer = thread::spawn(move || {
            let t = t;
            (create(t.0, 1, &title), Instant::now())
        });
        delay.run();
        let free_began = Instant::now();
        assert_eq!(unsafe { net_model_free(t.0) }, net_status_t::NET_OK);
        let freed = Instant::now();
        let (result, returned) = writer.join().unwrap();
        match result {
            Ok(_) if returned > free_began => {
                assert!(
                    freed + Duration::from_millis(20) >= returned,
                    "free returned before the write finished"
                );
                true
            }
            Ok(_) => {
                delay.too_late();
                false
            }
            Err(status) => {
                assert!(
                    matches!(
                        status,
                        net_status_t::NET_ERR_SHUTTING_DOWN
                            | net_status_t::NET_ERR_REDEX_CLOSED
                            | net_status_t::NET_ERR_CORTEX_HALTED
                    ),
                    "{status:?}"
                );
                delay.too_early();
                false
            }
        }
    });
    unsafe { net_redex_free(r) };
}

#[test]
fn race_manager_free_waits_for_an_in_flight_open() {
    // A model opening on a disk channel of 20 000 events (recovery, then the
    // app-sequence scan over all of them) races its manager's free: it
    // finishes (and the free waited for it) or is refused.
    let base = std::env::temp_dir().join(format!("net-ffi-cortex-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let base = base.to_str().unwrap().to_owned();
    let manager = || {
        let mut out = ptr::null_mut();
        assert_eq!(
            unsafe { net_redex_open(base.as_ptr(), base.len(), &mut out) },
            net_status_t::NET_OK
        );
        out
    };
    let config = r#"{"persistent": true}"#;
    let last = {
        let r = manager();
        let m = open(r, NET_MODEL_MEMORIES, 3, config);
        let mut last = 0;
        for id in 0..20_000u64 {
            last = store(m, id, "x", &[]).unwrap();
        }
        unsafe {
            assert_eq!(net_model_free(m), net_status_t::NET_OK);
            net_redex_free(r);
        }
        last
    };
    let mut delay = Delay::new();
    until_won(40, 1, |_| {
        let r = P(manager());
        let opener = thread::spawn(move || {
            let r = r;
            let mut m = ptr::null_mut();
            let status = unsafe {
                net_model_open(
                    r.0,
                    NET_MODEL_MEMORIES,
                    3,
                    config.as_ptr(),
                    config.len(),
                    &mut m,
                )
            };
            (status, P(m), Instant::now())
        });
        delay.run();
        let free_began = Instant::now();
        assert_eq!(unsafe { net_redex_free(r.0) }, net_status_t::NET_OK);
        let freed = Instant::now();
        let (status, m, returned) = opener.join().unwrap();
        if status != net_status_t::NET_OK {
            assert_eq!(status, net_status_t::NET_ERR_SHUTTING_DOWN);
            delay.too_early();
            return false;
        }
        // The model opened completely: it recovered the app sequence and
        // folds every event, its manager gone.
        assert_eq!(progress(m.0)["app_seq"], 20_000);
        assert_eq!(wait_for_seq(m.0, last, 60_000), net_status_t::NET_OK);
        assert_eq!(count_where(m.0, ""), 20_000);
        assert_eq!(unsafe { net_model_free(m.0) }, net_status_t::NET_OK);
        if returned > free_began {
            assert!(freed + Duration::from_millis(20) >= returned);
            true
        } else {
            delay.too_late();
            false
        }
    });
    std::fs::remove_dir_all(&base).unwrap();
}
