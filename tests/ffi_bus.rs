//! The bus C ABI from Rust: configuration (errors name the key), raw and
//! batch ingest, polls decoded from the record buffer, stats, the shutdown
//! report, the Redis dedup helper, and the three handle races for
//! `net_bus_t` and `net_redis_dedup_t` (op after free, concurrent
//! idempotent frees with racing ops, free waits for the op in flight).

use std::collections::HashSet;
use std::ptr;
use std::thread;
use std::time::Duration;

mod ffi_common;

use ffi_common::*;
use net::ffi::*;

fn try_bus(config: &str) -> Result<*mut net_bus_t, (net_status_t, String)> {
    let mut out = ptr::null_mut();
    let st = unsafe { net_bus_new(config.as_ptr(), config.len(), &mut out) };
    if st == net_status_t::NET_OK {
        Ok(out)
    } else {
        Err((st, last_error()))
    }
}

fn bus(config: &str) -> *mut net_bus_t {
    try_bus(config).unwrap_or_else(|e| panic!("{e:?}"))
}

const MEMORY: &str = r#"{"num_shards":3,"adapter":{"type":"memory"},
    "batch":{"min_size":16,"max_size":256,"max_delay_ms":1}}"#;

fn ingest_batch(b: *mut net_bus_t, events: &[Vec<u8>]) -> (net_status_t, net_bus_ingest_report_t) {
    let slices: Vec<net_slice_t> = events
        .iter()
        .map(|e| net_slice_t {
            ptr: e.as_ptr(),
            len: e.len(),
        })
        .collect();
    let mut report = net_bus_ingest_report_t::default();
    let st = unsafe { net_bus_ingest_raw_batch(b, slices.as_ptr(), slices.len(), &mut report) };
    (st, report)
}

#[derive(Debug)]
struct Event {
    shard: u16,
    ts: u64,
    id: String,
    dedup: Option<String>,
    payload: Vec<u8>,
}

fn decode(mut buf: &[u8]) -> Vec<Event> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> &'a [u8] {
        let (head, rest) = buf.split_at(n);
        *buf = rest;
        head
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let shard = u16::from_le_bytes(take(&mut buf, 2).try_into().unwrap());
        let ts = u64::from_le_bytes(take(&mut buf, 8).try_into().unwrap());
        let n = u16::from_le_bytes(take(&mut buf, 2).try_into().unwrap()) as usize;
        let id = String::from_utf8(take(&mut buf, n).to_vec()).unwrap();
        let n = u16::from_le_bytes(take(&mut buf, 2).try_into().unwrap()) as usize;
        let dedup = (n > 0).then(|| String::from_utf8(take(&mut buf, n).to_vec()).unwrap());
        let n = u32::from_le_bytes(take(&mut buf, 4).try_into().unwrap()) as usize;
        let payload = take(&mut buf, n).to_vec();
        out.push(Event {
            shard,
            ts,
            id,
            dedup,
            payload,
        });
    }
    out
}

fn poll(b: *mut net_bus_t, request: &str) -> Result<(Vec<Event>, serde_json::Value), net_status_t> {
    let (mut events, mut meta) = (net_bytes_t::EMPTY, net_bytes_t::EMPTY);
    let st = unsafe {
        net_bus_poll(
            b,
            request.as_ptr(),
            request.len(),
            &mut events,
            &mut meta,
            ptr::null(),
            ptr::null_mut(),
        )
    };
    if st != net_status_t::NET_OK {
        return Err(st);
    }
    Ok((decode(&take(events)), json(meta)))
}

fn poll_all(b: *mut net_bus_t) -> Vec<Event> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let request = match &cursor {
            Some(c) => format!(r#"{{"cursor":"{c}","limit":500}}"#),
            None => r#"{"limit":500}"#.to_owned(),
        };
        let (events, meta) = poll(b, &request).unwrap();
        assert_eq!(meta["count"].as_u64().unwrap() as usize, events.len());
        let n = events.len();
        all.extend(events);
        let next = meta["next_cursor"].as_str().unwrap().to_owned();
        assert!(!next.is_empty());
        cursor = Some(next);
        if n == 0 && !meta["has_more"].as_bool().unwrap() {
            return all;
        }
    }
}

#[test]
fn raw_and_batch_ingest_poll_back_through_the_record_buffer() {
    let b = bus(MEMORY);
    let mut n = 0u16;
    assert_eq!(
        unsafe { net_bus_num_shards(b, &mut n) },
        net_status_t::NET_OK
    );
    assert_eq!(n, 3);
    for i in 0..1_000u32 {
        let e = i.to_le_bytes();
        assert_eq!(
            unsafe { net_bus_ingest_raw(b, e.as_ptr(), e.len()) },
            net_status_t::NET_OK
        );
    }
    let batch: Vec<Vec<u8>> = (1_000..5_000u32)
        .map(|i| i.to_le_bytes().to_vec())
        .collect();
    let (st, report) = ingest_batch(b, &batch);
    assert_eq!(st, net_status_t::NET_OK, "{}", last_error());
    assert_eq!(
        (report.queued, report.taken, report.sampled),
        (4_000, 4_000, 0)
    );
    // Packed: one buffer and the lengths.
    let data: Vec<u8> = (5_000..6_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let lengths = vec![4u32; 1_000];
    let mut report = net_bus_ingest_report_t::default();
    let st = unsafe {
        net_bus_ingest_raw_packed(
            b,
            data.as_ptr(),
            data.len(),
            lengths.as_ptr(),
            1_000,
            &mut report,
        )
    };
    assert_eq!(st, net_status_t::NET_OK, "{}", last_error());
    assert_eq!(report.taken, 1_000);
    for (lens, needle) in [(vec![4u32; 999], "less"), (vec![5u32; 1_000], "more")] {
        let st = unsafe {
            net_bus_ingest_raw_packed(
                b,
                data.as_ptr(),
                data.len(),
                lens.as_ptr(),
                lens.len(),
                &mut report,
            )
        };
        assert_eq!(st, net_status_t::NET_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains(needle), "{}", last_error());
    }
    assert_eq!(
        unsafe { net_bus_flush(b, ptr::null(), ptr::null_mut()) },
        net_status_t::NET_OK
    );
    let events = poll_all(b);
    let got: HashSet<u32> = events
        .iter()
        .map(|e| u32::from_le_bytes(e.payload[..].try_into().unwrap()))
        .collect();
    assert_eq!(events.len(), 6_000);
    assert_eq!(got, (0..6_000).collect());
    for e in &events {
        assert!(e.shard < 3 && e.ts > 0 && !e.id.is_empty());
        assert!(e.dedup.as_deref().unwrap().split(':').count() == 4);
    }
    let mut stats = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_bus_stats(b, &mut stats) },
        net_status_t::NET_OK
    );
    let stats = json(stats);
    assert_eq!(stats["events_dispatched"], 6_000);
    assert_eq!(stats["adapter"], "memory");
    assert_eq!(stats["producer_nonce"].as_str().unwrap().len(), 16);
    let mut report = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_bus_close(b, &mut report) },
        net_status_t::NET_OK
    );
    let report = json(report);
    assert_eq!(report["shutdown_was_lossy"], false);
    assert_eq!(report["events_dropped"], 0);
    // After shutdown: refused, but stats still answer.
    let e = [1u8];
    assert_eq!(
        unsafe { net_bus_ingest_raw(b, e.as_ptr(), 1) },
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
    let mut stats = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_bus_stats(b, &mut stats) },
        net_status_t::NET_OK
    );
    take(stats);
    unsafe { net_bus_free(b) };
}

#[test]
fn the_embedded_adapter_persists_across_buses() {
    let dir = std::env::temp_dir().join(format!("net-ffi-bus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = format!(
        r#"{{"num_shards":2,"adapter":{{"type":"redex","dir":"{}"}},"producer_state_dir":"{}"}}"#,
        dir.join("redex").display(),
        dir.join("producer").display()
    );
    let b = bus(&config);
    let batch: Vec<Vec<u8>> = (0..3_000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    assert_eq!(ingest_batch(b, &batch).0, net_status_t::NET_OK);
    unsafe { net_bus_free(b) }; // drains and closes
    let b = bus(&config);
    let events = poll_all(b);
    assert_eq!(events.len(), 3_000);
    assert!(
        events.iter().all(|e| e.dedup.is_none()),
        "RedEX keeps no dedup id"
    );
    unsafe { net_bus_free(b) };
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_discard_adapter_counts_and_stores_nothing() {
    let b = bus(r#"{"num_shards":2,"adapter":{"type":"discard"}}"#);
    let batch: Vec<Vec<u8>> = (0..1_000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    assert_eq!(ingest_batch(b, &batch).1.taken, 1_000);
    assert_eq!(
        unsafe { net_bus_flush(b, ptr::null(), ptr::null_mut()) },
        net_status_t::NET_OK
    );
    let mut stats = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_bus_stats(b, &mut stats) },
        net_status_t::NET_OK
    );
    let stats = json(stats);
    assert_eq!(
        (
            stats["adapter"].as_str(),
            stats["events_dispatched"].as_u64()
        ),
        (Some("discard"), Some(1_000))
    );
    assert!(poll_all(b).is_empty());
    unsafe { net_bus_free(b) };
}

#[test]
fn configuration_and_request_errors_name_the_problem() {
    for (config, status, needle) in [
        (
            r#"{"num_shards":0}"#,
            net_status_t::NET_ERR_BUS_CONFIG,
            "num_shards",
        ),
        (
            r#"{"shards":2}"#,
            net_status_t::NET_ERR_BUS_CONFIG,
            "shards",
        ),
        (
            r#"{"adapter":{"type":"kafka"}}"#,
            net_status_t::NET_ERR_BUS_CONFIG,
            "adapter",
        ),
        (
            r#"{"adapter":{"type":"redis","port":1}}"#,
            net_status_t::NET_ERR_BUS_CONFIG,
            "port",
        ),
        (
            r#"{"adapter":{"type":"jetstream","prefix":"a.b"}}"#,
            net_status_t::NET_ERR_BUS_CONFIG,
            "prefix",
        ),
        (
            r#"{"producer_state_dir":5}"#,
            net_status_t::NET_ERR_BUS_CONFIG,
            "producer_state_dir",
        ),
        ("[1]", net_status_t::NET_ERR_BUS_CONFIG, "object"),
        ("{", net_status_t::NET_ERR_BUS_CONFIG, "JSON"),
    ] {
        let (st, msg) = try_bus(config).map(|_| ()).unwrap_err();
        assert_eq!(st, status, "{config}: {msg}");
        assert!(msg.contains(needle), "{config}: {msg}");
    }
    // A server that is not there: the adapter cannot start.
    let (st, msg) = try_bus(
        r#"{"adapter":{"type":"redis","url":"redis://127.0.0.1:1","command_timeout_ms":300},"adapter_timeout_ms":500}"#,
    )
    .map(|_| ())
    .unwrap_err();
    assert_eq!(st, net_status_t::NET_ERR_BUS_ADAPTER, "{msg}");

    let b = bus(MEMORY);
    for request in [
        r#"{"limit":0}"#,
        r#"{"cursor":"%%%"}"#,
        r#"{"filter":{"x":1}}"#,
        "{",
    ] {
        assert_eq!(
            poll(b, request).map(|_| ()).unwrap_err(),
            net_status_t::NET_ERR_BUS_INVALID_REQUEST,
            "{request}"
        );
    }
    let e = [0u8];
    assert_eq!(
        unsafe { net_bus_ingest_raw(b, ptr::null(), 1) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { net_bus_ingest_raw(b, e.as_ptr(), 0) },
        net_status_t::NET_OK
    );
    unsafe { net_bus_free(b) };
}

#[test]
fn backpressure_is_reported_per_event_and_per_batch() {
    let b = bus(
        r#"{"num_shards":1,"shard_capacity":8,"backpressure":{"mode":"fail_producer"},
            "adapter":{"type":"memory"},"batch":{"min_size":8,"max_size":8,"max_delay_ms":1000}}"#,
    );
    let batch: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i]).collect();
    let (st, report) = ingest_batch(b, &batch);
    assert_eq!(st, net_status_t::NET_OK);
    assert!(report.taken < 100, "{report:?}");
    assert_eq!(report.queued, report.taken);
    let mut refused = false;
    for i in 0..1_000u32 {
        let e = i.to_le_bytes();
        match unsafe { net_bus_ingest_raw(b, e.as_ptr(), e.len()) } {
            net_status_t::NET_OK => {}
            net_status_t::NET_ERR_BUS_BACKPRESSURE => refused = true,
            other => panic!("{other:?}"),
        }
    }
    assert!(refused);
    assert!(last_error().contains("full"));
    unsafe { net_bus_free(b) };
}

#[test]
fn the_redis_dedup_helper_is_fifo_and_clamped() {
    let mut d = ptr::null_mut();
    assert_eq!(
        unsafe { net_redis_dedup_new(2, &mut d) },
        net_status_t::NET_OK
    );
    let check = |id: &str| {
        let mut dup = false;
        assert_eq!(
            unsafe { net_redis_dedup_is_duplicate(d, id.as_ptr(), id.len(), &mut dup) },
            net_status_t::NET_OK
        );
        dup
    };
    assert!(!check("a"));
    assert!(!check("b"));
    assert!(check("a"));
    assert!(!check("c")); // evicts "a" (first seen), not "b"
    assert!(!check("a"));
    let ids = ["x", "y", "x", "a"];
    let slices: Vec<net_slice_t> = ids
        .iter()
        .map(|s| net_slice_t {
            ptr: s.as_ptr(),
            len: s.len(),
        })
        .collect();
    let mut out = [false; 4];
    assert_eq!(
        unsafe { net_redis_dedup_check_batch(d, slices.as_ptr(), 4, out.as_mut_ptr()) },
        net_status_t::NET_OK
    );
    assert_eq!(out, [false, false, true, false]);
    let (mut len, mut cap, mut dups) = (0, 0, 0);
    assert_eq!(
        unsafe { net_redis_dedup_info(d, &mut len, &mut cap, &mut dups) },
        net_status_t::NET_OK
    );
    assert_eq!((len, cap, dups), (2, 2, 2));
    assert_eq!(unsafe { net_redis_dedup_clear(d) }, net_status_t::NET_OK);
    assert!(!check("x"));
    let bad = [0xffu8];
    let mut dup = false;
    assert_eq!(
        unsafe { net_redis_dedup_is_duplicate(d, bad.as_ptr(), 1, &mut dup) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    unsafe { net_redis_dedup_free(d) };
    let mut big = ptr::null_mut();
    assert_eq!(
        unsafe { net_redis_dedup_new(usize::MAX, &mut big) },
        net_status_t::NET_OK
    );
    assert_eq!(
        unsafe { net_redis_dedup_info(big, &mut len, &mut cap, &mut dups) },
        net_status_t::NET_OK
    );
    assert_eq!(cap, 1 << 24);
    unsafe { net_redis_dedup_free(big) };
}

// ---- race 1: op after free -------------------------------------------------

#[test]
fn race_op_after_free_is_refused() {
    let b = bus(MEMORY);
    let mut d = ptr::null_mut();
    assert_eq!(
        unsafe { net_redis_dedup_new(8, &mut d) },
        net_status_t::NET_OK
    );
    unsafe {
        net_bus_free(b);
        net_redis_dedup_free(d);
        let e = [1u8];
        assert_eq!(
            net_bus_ingest_raw(b, e.as_ptr(), 1),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        assert_eq!(
            net_bus_flush(b, ptr::null(), ptr::null_mut()),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        let mut n = 0;
        assert_eq!(
            net_bus_num_shards(b, &mut n),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        assert_eq!(
            poll(b, "").map(|_| ()).unwrap_err(),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        let mut dup = false;
        assert_eq!(
            net_redis_dedup_is_duplicate(d, e.as_ptr(), 1, &mut dup),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        net_bus_free(b); // idempotent
        net_redis_dedup_free(d);
    }
}

// ---- race 2: concurrent frees with racing ops --------------------------------

#[test]
fn race_concurrent_frees_are_idempotent_with_ops_racing() {
    for round in 0..8 {
        let b = P(bus(MEMORY));
        let mut d = ptr::null_mut();
        assert_eq!(
            unsafe { net_redis_dedup_new(64, &mut d) },
            net_status_t::NET_OK
        );
        let d = P(d);
        let mut threads = Vec::new();
        for t in 0..3 {
            threads.push(thread::spawn(move || {
                let (b, d) = (b, d);
                for i in 0..300u32 {
                    let e = i.to_le_bytes();
                    let st = match t {
                        0 => unsafe { net_bus_ingest_raw(b.0, e.as_ptr(), e.len()) },
                        1 => poll(b.0, r#"{"limit":10}"#)
                            .map_or_else(|s| s, |_| net_status_t::NET_OK),
                        _ => {
                            let mut dup = false;
                            unsafe { net_redis_dedup_is_duplicate(d.0, e.as_ptr(), 4, &mut dup) }
                        }
                    };
                    assert!(
                        matches!(
                            st,
                            net_status_t::NET_OK
                                | net_status_t::NET_ERR_SHUTTING_DOWN
                                | net_status_t::NET_ERR_INVALID_ARGUMENT // non-UTF-8 id bytes
                        ),
                        "round {round}: {st:?}"
                    );
                }
            }));
        }
        for _ in 0..2 {
            threads.push(thread::spawn(move || {
                let (b, d) = (b, d);
                thread::sleep(Duration::from_millis(1));
                unsafe {
                    net_bus_free(b.0);
                    net_redis_dedup_free(d.0);
                }
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
    }
}

// ---- race 3: free waits for the op in flight ----------------------------------

#[test]
fn race_free_waits_for_an_ingest_in_flight() {
    for _ in 0..20 {
        let b = P(bus(
            r#"{"num_shards":1,"shard_capacity":4194304,"adapter":{"type":"memory"}}"#,
        ));
        let batch: Vec<Vec<u8>> = (0..1_000_000u32)
            .map(|i| i.to_le_bytes().to_vec())
            .collect();
        let slices: Vec<net_slice_t> = batch
            .iter()
            .map(|e| net_slice_t {
                ptr: e.as_ptr(),
                len: e.len(),
            })
            .collect();
        let slices = P(slices.as_ptr() as *mut net_slice_t);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = {
            let done = done.clone();
            thread::spawn(move || {
                let (b, slices) = (b, slices);
                let mut report = net_bus_ingest_report_t::default();
                let st = unsafe { net_bus_ingest_raw_batch(b.0, slices.0, 1_000_000, &mut report) };
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                (st, report)
            })
        };
        let in_flight = wait_in_flight(b.0, &done);
        // The free waits for the ingest, then shuts the bus down losslessly.
        assert_eq!(
            unsafe { net_bus_free(b.0) },
            net_status_t::NET_OK,
            "{}",
            last_error()
        );
        let (st, report) = worker.join().unwrap();
        drop(batch);
        if in_flight {
            assert_eq!(st, net_status_t::NET_OK);
            assert_eq!(report.taken, 1_000_000);
            return;
        }
    }
    panic!("no free ever met an ingest in flight in 20 rounds");
}

// ---- free and cancel wake a blocked flush ------------------------------------

/// A bus whose flush waits far longer than any test round: its one event
/// sits in the batcher (a minute's delay, a batch of a thousand) and the
/// flush may wait ten minutes.
const PATIENT: &str = r#"{"num_shards":1,"adapter":{"type":"redex"},
    "batch":{"min_size":1000,"max_size":1000,"max_delay_ms":60000},
    "shutdown_timeout_ms":600000}"#;

fn flush(b: P<net_bus_t>, cancel: P<net_cancel_t>) -> (net_status_t, String) {
    let mut error = error_slot();
    let status = unsafe { net_bus_flush(b.0, cancel.0, &mut error) };
    (status, error_of(error).1)
}

#[test]
fn race_free_wakes_a_flush_blocked_forever() {
    until_won(200, 3, |_| {
        let b = P(bus(PATIENT));
        let e = [1u8; 8];
        assert_eq!(
            unsafe { net_bus_ingest_raw(b.0, e.as_ptr(), e.len()) },
            net_status_t::NET_OK
        );
        let blocked = thread::spawn(move || flush(b, P(ptr::null_mut())));
        let_it_block();
        // The free wakes the flush, then shuts the bus down losslessly (the
        // event is dispatched by the shutdown's drain).
        assert_eq!(
            unsafe { net_bus_free(b.0) },
            net_status_t::NET_OK,
            "{}",
            last_error()
        );
        let (status, message) = blocked.join().unwrap();
        assert_eq!(status, net_status_t::NET_ERR_SHUTTING_DOWN, "{message}");
        interrupted_while_waiting(&message)
    });
}

#[test]
fn race_cancel_wakes_a_blocked_flush() {
    let b = P(bus(PATIENT));
    let e = [1u8; 8];
    assert_eq!(
        unsafe { net_bus_ingest_raw(b.0, e.as_ptr(), e.len()) },
        net_status_t::NET_OK
    );
    until_won(200, 3, |_| {
        let token = P(cancel_token());
        let blocked = thread::spawn(move || flush(b, token));
        let_it_block();
        unsafe { net_cancel_cancel(token.0) };
        let (status, message) = blocked.join().unwrap();
        assert_eq!(status, net_status_t::NET_ERR_CANCELLED, "{message}");
        unsafe { net_cancel_free(token.0) };
        !message.contains("already cancelled")
    });
    // Nothing was lost by the cancelled flushes: close drains the event.
    let mut report = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_bus_close(b.0, &mut report) },
        net_status_t::NET_OK
    );
    assert_eq!(json(report)["shutdown_was_lossy"], false);
    assert_eq!(unsafe { net_bus_free(b.0) }, net_status_t::NET_OK);
}
