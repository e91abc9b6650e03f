//! The compute C ABI from Rust, as an SDK uses it: daemons whose code lives
//! "outside" (here, a pull loop in a test thread answering work items), a
//! counter daemon migrating between nodes of a three-node mesh while a
//! producer keeps delivering (exactly once: the final count is the number
//! of events sent), work items that are never answered failing cleanly,
//! batched delivery (one work item per batch, a failure partway, timeout
//! and cancel before the SDK takes it), and the three handle races for
//! `net_compute_t`.

use std::collections::HashMap;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

mod ffi_common;

use ffi_common::*;
use net::ffi::*;

const OK: net_status_t = net_status_t::NET_OK;
const CONFIG: &str = r#"{"psk_hex":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","heartbeat_interval_ms":50,"session_timeout_ms":5000,"hello_timeout_ms":500}"#;
const RUNTIME: &str = r#"{"retry_interval_ms": 50, "step_timeout_ms": 3000, "source_timeout_ms": 6000, "work_timeout_ms": 5000}"#;
const PRODUCER: u64 = 0xfeed_0000_0000_0001;
const SEED: [u8; 32] = [7; 32];

fn node() -> *mut net_mesh_t {
    let mut out = ptr::null_mut();
    let st = unsafe { net_mesh_new(CONFIG.as_ptr(), CONFIG.len(), &mut out) };
    assert_eq!(st, OK, "{}", last_error());
    out
}

fn runtime(mesh: *mut net_mesh_t, config: &str) -> *mut net_compute_t {
    let mut out = ptr::null_mut();
    let st = unsafe { net_compute_new(mesh, config.as_ptr(), config.len(), &mut out) };
    assert_eq!(st, OK, "{}", last_error());
    let kind = "counter";
    assert_eq!(
        unsafe { net_compute_register_kind(out, kind.as_ptr(), kind.len(), true) },
        OK
    );
    out
}

/// The counter an SDK would implement: counts events, refusing any that is
/// not its producer's next sequence; state = count ‖ last sequence.
#[derive(Default, Clone, Copy)]
struct Counter {
    count: u64,
    last: u64,
}

/// `net_compute_spawn` of SDK object `instance` of `kind` under `seed`:
/// the status and the origin.
fn spawn_raw(
    rt: *mut net_compute_t,
    kind: &str,
    seed: &[u8],
    instance: u64,
) -> (net_status_t, u64) {
    let mut origin = 0;
    let st = unsafe {
        net_compute_spawn(
            rt,
            kind.as_ptr(),
            kind.len(),
            seed.as_ptr(),
            seed.len(),
            instance,
            &mut origin,
        )
    };
    (st, origin)
}

/// A work item as `net_compute_next` hands it out.
#[derive(Debug, Default)]
struct Work {
    id: u64,
    kind: u32,
    instance: u64,
    daemon: u64,
    producer: u64,
    sequence: u64,
    payload: Vec<u8>,
}

/// `net_compute_next`: the status, and the item when it is `NET_OK`.
fn next_work(
    rt: *mut net_compute_t,
    timeout_ms: u32,
    cancel: *const net_cancel_t,
) -> (net_status_t, Work) {
    let mut w = Work::default();
    let mut payload = net_bytes_t::EMPTY;
    let st = unsafe {
        net_compute_next(
            rt,
            timeout_ms,
            &mut w.id,
            &mut w.kind,
            &mut w.instance,
            &mut w.daemon,
            &mut w.producer,
            &mut w.sequence,
            &mut payload,
            cancel,
            ptr::null_mut(),
        )
    };
    w.payload = take(payload);
    (st, w)
}

/// An SDK's side of one runtime: objects by instance id, and a thread
/// pulling work until the runtime is freed.
struct Sdk {
    objects: Arc<Mutex<HashMap<u64, Counter>>>,
    /// Work kinds (bit `1 << kind`) the SDK answers with a failure.
    failing: Arc<AtomicU32>,
    puller: Option<thread::JoinHandle<u64>>,
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

impl Sdk {
    fn serve(rt: *mut net_compute_t) -> Self {
        let objects: Arc<Mutex<HashMap<u64, Counter>>> = Arc::default();
        let rt = P(rt);
        let objs = Arc::clone(&objects);
        let failing = Arc::new(AtomicU32::new(0));
        let fails = Arc::clone(&failing);
        let puller = thread::spawn(move || {
            let rt = rt;
            let mut handled = 0;
            loop {
                let (st, w) = next_work(rt.0, NET_WAIT_FOREVER, ptr::null());
                if st == net_status_t::NET_END || st == net_status_t::NET_ERR_SHUTTING_DOWN {
                    return handled;
                }
                assert_eq!(st, OK, "{}", last_error());
                let Work {
                    id,
                    kind,
                    instance,
                    daemon,
                    sequence: seq,
                    payload,
                    ..
                } = w;
                handled += 1;
                if kind != NET_COMPUTE_WORK_DROP && fails.load(Ordering::SeqCst) & (1 << kind) != 0
                {
                    let msg = "refused by the test";
                    let st = unsafe { net_compute_fail(rt.0, id, msg.as_ptr(), msg.len()) };
                    assert_eq!(st, OK);
                    continue;
                }
                let mut objects = objs.lock().unwrap();
                let st = match kind {
                    NET_COMPUTE_WORK_PROCESS => {
                        let c = objects.get_mut(&instance).unwrap();
                        if seq != c.last + 1 {
                            let msg = format!("sequence {seq} after {}", c.last);
                            unsafe { net_compute_fail(rt.0, id, msg.as_ptr(), msg.len()) }
                        } else {
                            c.last = seq;
                            c.count += 1;
                            let out = c.count.to_le_bytes();
                            let slice = net_slice_t {
                                ptr: out.as_ptr(),
                                len: out.len(),
                            };
                            unsafe { net_compute_complete_process(rt.0, id, &slice, 1) }
                        }
                    }
                    NET_COMPUTE_WORK_PROCESS_BATCH => {
                        let c = objects.get_mut(&instance).unwrap();
                        answer_batch(rt.0, id, c, &payload)
                    }
                    NET_COMPUTE_WORK_SNAPSHOT => {
                        let c = objects[&instance];
                        let mut state = c.count.to_le_bytes().to_vec();
                        state.extend_from_slice(&c.last.to_le_bytes());
                        unsafe {
                            net_compute_complete_snapshot(rt.0, id, state.as_ptr(), state.len())
                        }
                    }
                    NET_COMPUTE_WORK_RESTORE => {
                        let c = objects.get_mut(&instance).unwrap();
                        c.count = u64::from_le_bytes(payload[..8].try_into().unwrap());
                        c.last = u64::from_le_bytes(payload[8..16].try_into().unwrap());
                        unsafe { net_compute_complete_restore(rt.0, id) }
                    }
                    NET_COMPUTE_WORK_CREATE => {
                        assert_eq!(payload, b"counter");
                        let instance = NEXT_INSTANCE.fetch_add(1, Ordering::SeqCst);
                        objects.insert(instance, Counter::default());
                        unsafe { net_compute_complete_create(rt.0, id, instance) }
                    }
                    NET_COMPUTE_WORK_DROP => {
                        objects.remove(&instance);
                        OK
                    }
                    other => panic!("work kind {other}"),
                };
                assert_ne!(daemon, 0);
                assert!(
                    st == OK || st == net_status_t::NET_ERR_SHUTTING_DOWN,
                    "{st:?} {}",
                    last_error()
                );
            }
        });
        Self {
            objects,
            failing,
            puller: Some(puller),
        }
    }

    /// Spawns a counter on `rt` under `SEED`.
    fn spawn(&self, rt: *mut net_compute_t) -> u64 {
        let instance = NEXT_INSTANCE.fetch_add(1, Ordering::SeqCst);
        self.objects
            .lock()
            .unwrap()
            .insert(instance, Counter::default());
        let (st, origin) = spawn_raw(rt, "counter", &SEED, instance);
        assert_eq!(st, OK, "{}", last_error());
        origin
    }

    /// The counts of the objects alive here.
    fn counts(&self) -> Vec<u64> {
        self.objects
            .lock()
            .unwrap()
            .values()
            .map(|c| c.count)
            .collect()
    }

    fn join(mut self) -> u64 {
        self.puller.take().unwrap().join().unwrap()
    }
}

/// The events of a ProcessBatch payload: (producer, sequence, bytes).
fn unpack_batch(mut packed: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    let mut events = Vec::new();
    while !packed.is_empty() {
        let (head, rest) = packed.split_at(NET_COMPUTE_BATCH_RECORD_HEADER);
        let producer = u64::from_le_bytes(head[..8].try_into().unwrap());
        let sequence = u64::from_le_bytes(head[8..16].try_into().unwrap());
        let len = u32::from_le_bytes(head[16..].try_into().unwrap()) as usize;
        events.push((producer, sequence, rest[..len].to_vec()));
        packed = &rest[len..];
    }
    events
}

/// The counter over a batch, as an SDK loops over it: applies events until
/// one is refused (a payload `fail`, or not the next sequence) and answers
/// once.
fn answer_batch(rt: *mut net_compute_t, id: u64, c: &mut Counter, packed: &[u8]) -> net_status_t {
    let (mut outputs, mut lengths, mut per_event) = (Vec::new(), Vec::new(), Vec::new());
    let mut failure = None;
    for (producer, seq, payload) in unpack_batch(packed) {
        assert_eq!(producer, PRODUCER);
        if payload == b"fail" || seq != c.last + 1 {
            failure = Some(format!("refused sequence {seq} after {}", c.last));
            break;
        }
        c.last = seq;
        c.count += 1;
        outputs.extend_from_slice(&c.count.to_le_bytes());
        lengths.push(8u32);
        per_event.push(1u32);
    }
    let (fail_ptr, fail_len) = failure
        .as_ref()
        .map_or((ptr::null(), 0), |f| (f.as_ptr(), f.len()));
    unsafe {
        net_compute_complete_batch(
            rt,
            id,
            per_event.len(),
            outputs.as_ptr(),
            outputs.len(),
            lengths.as_ptr(),
            lengths.len(),
            per_event.as_ptr(),
            fail_ptr,
            fail_len,
        )
    }
}

/// `net_compute_deliver_batch` of `payloads` from `first`: the status, how
/// many were delivered, their outcomes and the error message.
fn deliver_batch(
    rt: *mut net_compute_t,
    origin: u64,
    first: u64,
    payloads: &[Vec<u8>],
    timeout_ms: u32,
    cancel: *const net_cancel_t,
) -> (net_status_t, usize, Vec<u32>, String) {
    let data: Vec<u8> = payloads.concat();
    let lengths: Vec<u32> = payloads.iter().map(|p| p.len() as u32).collect();
    let mut outcomes = vec![u32::MAX; payloads.len()];
    let mut delivered = usize::MAX;
    let mut error = error_slot();
    let st = unsafe {
        net_compute_deliver_batch(
            rt,
            origin,
            PRODUCER,
            first,
            data.as_ptr(),
            data.len(),
            lengths.as_ptr(),
            lengths.len(),
            timeout_ms,
            outcomes.as_mut_ptr(),
            &mut delivered,
            cancel,
            &mut error,
        )
    };
    let (_, message) = error_of(error);
    if delivered != usize::MAX {
        outcomes.truncate(delivered);
    }
    (st, delivered, outcomes, message)
}

/// The next outputs are daemon `origin`'s, its chain's sequences `range`,
/// each the counter's value at that event (applied in order).
fn expect_outputs(rt: *mut net_compute_t, origin: u64, range: std::ops::RangeInclusive<u64>) {
    for expected in range {
        let (mut o, mut seq) = (0, 0);
        let mut payload = net_bytes_t::EMPTY;
        let st = unsafe {
            net_compute_next_output(
                rt,
                5_000,
                &mut o,
                &mut seq,
                &mut payload,
                ptr::null(),
                ptr::null_mut(),
            )
        };
        assert_eq!(st, OK);
        assert_eq!((o, seq), (origin, expected), "chained in order");
        assert_eq!(take(payload), expected.to_le_bytes(), "applied in order");
    }
}

fn payloads(range: std::ops::RangeInclusive<u64>) -> Vec<Vec<u8>> {
    range.map(|s| s.to_le_bytes().to_vec()).collect()
}

fn expect(rt: *mut net_compute_t) -> u64 {
    let mut origin = 0;
    let kind = "counter";
    let st = unsafe {
        net_compute_expect(
            rt,
            kind.as_ptr(),
            kind.len(),
            SEED.as_ptr(),
            SEED.len(),
            &mut origin,
        )
    };
    assert_eq!(st, OK, "{}", last_error());
    origin
}

fn deliver(rt: *mut net_compute_t, origin: u64, seq: u64) -> Result<u32, net_status_t> {
    let mut outcome = u32::MAX;
    let payload = seq.to_le_bytes();
    let st = unsafe {
        net_compute_deliver(
            rt,
            origin,
            PRODUCER,
            seq,
            payload.as_ptr(),
            payload.len(),
            &mut outcome,
            ptr::null_mut(),
        )
    };
    if st == OK { Ok(outcome) } else { Err(st) }
}

fn stats(rt: *mut net_compute_t, origin: u64) -> Option<serde_json::Value> {
    let mut out = net_bytes_t::EMPTY;
    let st = unsafe { net_compute_stats(rt, origin, &mut out) };
    (st == OK).then(|| json(out))
}

fn migration_status(rt: *mut net_compute_t, origin: u64) -> serde_json::Value {
    let mut out = net_bytes_t::EMPTY;
    let st = unsafe { net_compute_migration_status(rt, origin, &mut out) };
    assert_eq!(st, OK, "{}", last_error());
    json(out)
}

#[test]
fn a_foreign_counter_migrates_under_load_exactly_once() {
    let meshes = [node(), node(), node()];
    connect(meshes[0], meshes[1]);
    connect(meshes[0], meshes[2]);
    connect(meshes[1], meshes[2]);
    let rts = meshes.map(|m| runtime(m, RUNTIME));
    let sdks = rts.map(Sdk::serve);
    let origin = sdks[0].spawn(rts[0]);
    assert_eq!(expect(rts[1]), origin);

    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_compute_daemons(rts[0], &mut out) }, OK);
    assert_eq!(
        json(out),
        serde_json::json!([{"origin": origin, "name": "counter"}])
    );

    // The producer keeps delivering to the source node while the daemon
    // moves (orchestrated by the third node); every outcome but Duplicate
    // is fine, and afterwards events are forwarded.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let producer = {
        let (stop, sent, rt) = (Arc::clone(&stop), Arc::clone(&sent), P(rts[0]));
        thread::spawn(move || {
            let rt = rt;
            let mut outcomes = [0u64; 4];
            let mut seq = 0;
            let mut round = 0u64;
            while !stop.load(Ordering::SeqCst) || seq < 200 {
                // Single deliveries and batches of 5 in turn: a batch meets
                // every migration state a single event does.
                round += 1;
                if round.is_multiple_of(2) {
                    let (st, delivered, batch, message) = deliver_batch(
                        rt.0,
                        origin,
                        seq + 1,
                        &payloads(seq + 1..=seq + 5),
                        NET_WAIT_FOREVER,
                        ptr::null(),
                    );
                    // A full forwarder (the new node behind by
                    // `max_forwarded` events) refuses: back off and deliver
                    // the rest again.
                    assert!(
                        st == OK || st == net_status_t::NET_ERR_COMPUTE_BUFFER_FULL,
                        "batch from {}: {st:?} {message}",
                        seq + 1
                    );
                    for outcome in batch {
                        assert_ne!(outcome, NET_COMPUTE_DUPLICATE);
                        outcomes[outcome as usize] += 1;
                    }
                    seq += delivered as u64;
                    if st != OK {
                        thread::sleep(Duration::from_millis(1));
                    }
                } else {
                    match deliver(rt.0, origin, seq + 1) {
                        Ok(outcome) => {
                            seq += 1;
                            assert_ne!(outcome, NET_COMPUTE_DUPLICATE);
                            outcomes[outcome as usize] += 1;
                        }
                        Err(net_status_t::NET_ERR_COMPUTE_BUFFER_FULL) => {
                            thread::sleep(Duration::from_millis(1));
                        }
                        Err(st) => panic!("event {}: {st:?} {}", seq + 1, last_error()),
                    }
                }
                sent.store(seq, Ordering::SeqCst);
                if round.is_multiple_of(64) {
                    // Continuous, not unbounded: the target applies every
                    // event before the test ends.
                    thread::sleep(Duration::from_millis(1));
                }
            }
            outcomes
        })
    };
    wait_for("events before the move", || {
        sent.load(Ordering::SeqCst) >= 50
    });
    let [a, b, _] = meshes.map(node_id);
    assert_eq!(
        unsafe { net_compute_start_migration(rts[2], origin, a, b) },
        OK
    );
    let mut phases = Vec::new();
    let mut json_out = net_bytes_t::EMPTY;
    loop {
        let status = migration_status(rts[2], origin);
        let phase = status["phase"].as_str().unwrap().to_owned();
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
        let st = unsafe {
            net_compute_wait_migration(
                rts[2],
                origin,
                5,
                &mut json_out,
                ptr::null(),
                ptr::null_mut(),
            )
        };
        if st == OK {
            break;
        }
        assert_eq!(st, net_status_t::NET_TIMEOUT, "{}", last_error());
    }
    let done = json(std::mem::replace(&mut json_out, net_bytes_t::EMPTY));
    assert_eq!(done["state"], "completed", "{done}");
    assert!(
        phases.first().is_some_and(|p| p == "snapshot"),
        "{phases:?}"
    );
    // Some events after the move (forwarded from A): the producer may not
    // have run at all between cut-over and here on a loaded machine.
    let at_done = sent.load(Ordering::SeqCst);
    wait_for("events after the move", || {
        sent.load(Ordering::SeqCst) >= at_done + 50
    });
    stop.store(true, Ordering::SeqCst);
    let outcomes = producer.join().unwrap();
    let total = sent.load(Ordering::SeqCst);
    assert!(outcomes[NET_COMPUTE_FORWARDED as usize] > 0, "{outcomes:?}");

    // Every event reaches the daemon on B exactly once (its host's stats
    // count only what it applied since the restore).
    // As `wait_for`, saying where each side stands if it times out.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sdks[1].counts() != vec![total] {
        assert!(
            std::time::Instant::now() < deadline,
            "every event applied at the target: {total} sent; the target's objects count {:?}; \
             target stats {:?}; source stats {:?}; migration {}",
            sdks[1].counts(),
            stats(rts[1], origin),
            stats(rts[0], origin),
            migration_status(rts[2], origin)
        );
        thread::sleep(Duration::from_millis(5));
    }
    let at_target = stats(rts[1], origin).unwrap();
    assert_eq!(at_target["errors"], 0);
    assert!(at_target["events_processed"].as_u64().unwrap() <= total);
    assert!(stats(rts[0], origin).is_none());
    // The source's object was dropped (a Drop work item) once it left.
    wait_for("the source's object dropped", || {
        sdks[0].counts().is_empty()
    });

    // Outputs come out where the events were applied: the last one on B
    // carries the final count.
    let mut last = 0;
    loop {
        let (mut o, mut seq) = (0, 0);
        let mut payload = net_bytes_t::EMPTY;
        let st = unsafe {
            net_compute_next_output(
                rts[1],
                0,
                &mut o,
                &mut seq,
                &mut payload,
                ptr::null(),
                ptr::null_mut(),
            )
        };
        if st == net_status_t::NET_TIMEOUT {
            break;
        }
        assert_eq!(st, OK);
        assert_eq!(o, origin);
        last = u64::from_le_bytes(take(payload)[..].try_into().unwrap());
    }
    assert_eq!(last, total);

    // And it can move back (B is the source, A the target, B orchestrates).
    expect_again(rts[0]);
    assert_eq!(
        unsafe { net_compute_start_migration(rts[1], origin, b, a) },
        OK
    );
    let st = unsafe {
        net_compute_wait_migration(
            rts[1],
            origin,
            20_000,
            &mut json_out,
            ptr::null(),
            ptr::null_mut(),
        )
    };
    assert_eq!(st, OK, "{}", last_error());
    assert_eq!(json(json_out)["state"], "completed");
    assert_eq!(
        deliver(rts[0], origin, total + 1),
        Ok(NET_COMPUTE_PROCESSED)
    );
    assert_eq!(sdks[0].counts(), vec![total + 1]);

    for rt in rts {
        assert_eq!(unsafe { net_compute_free(rt) }, OK);
    }
    // The orchestrator's SDK never got work: it runs no daemon.
    let handled = sdks.map(Sdk::join);
    assert!(
        handled[0] > 0 && handled[1] > 0 && handled[2] == 0,
        "{handled:?}"
    );
    for m in meshes {
        assert_eq!(unsafe { net_mesh_free(m) }, OK);
    }
}

/// A foreign daemon whose SDK refuses the snapshot, or whose target SDK
/// refuses to build the object, fails the migration cleanly: the status
/// says why, the daemon keeps running at the source with nothing lost,
/// and a retry once the SDK cooperates succeeds.
#[test]
fn refused_snapshot_or_construction_fails_the_migration_and_a_retry_succeeds() {
    let meshes = [node(), node()];
    connect(meshes[0], meshes[1]);
    let rts = meshes.map(|m| runtime(m, RUNTIME));
    let sdks = rts.map(Sdk::serve);
    let origin = sdks[0].spawn(rts[0]);
    assert_eq!(expect(rts[1]), origin);
    let [a, b] = meshes.map(node_id);
    let seq = AtomicU64::new(0);
    // Right after a failure the source may still be leaving its capture
    // (it hears the abort through its own queue): a buffered event is
    // applied there when it does.
    let send = |n: u64| {
        for _ in 0..n {
            let next = seq.fetch_add(1, Ordering::SeqCst) + 1;
            let outcome = deliver(rts[0], origin, next);
            assert!(
                outcome == Ok(NET_COMPUTE_PROCESSED) || outcome == Ok(NET_COMPUTE_BUFFERED),
                "{outcome:?}"
            );
        }
    };
    send(5);
    let wait = |rt| {
        let mut out = net_bytes_t::EMPTY;
        let st = unsafe {
            net_compute_wait_migration(rt, origin, 20_000, &mut out, ptr::null(), ptr::null_mut())
        };
        assert_eq!(st, OK, "{}", last_error());
        json(out)
    };
    for (sdk, kind) in [
        (&sdks[0], NET_COMPUTE_WORK_SNAPSHOT),
        (&sdks[1], NET_COMPUTE_WORK_CREATE),
    ] {
        sdk.failing.store(1 << kind, Ordering::SeqCst);
        assert_eq!(
            unsafe { net_compute_start_migration(rts[0], origin, a, b) },
            OK
        );
        let status = wait(rts[0]);
        assert_eq!(status["state"], "failed", "{status}");
        let reason = status["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("state-failed") && reason.contains("refused by the test"),
            "{reason}"
        );
        sdk.failing.store(0, Ordering::SeqCst);
        // Still at the source, still counting.
        send(5);
        let sent = seq.load(Ordering::SeqCst);
        wait_for("the count at the source", || sdks[0].counts() == vec![sent]);
    }
    // v0.11's migration messages carry no attempt id: under load the
    // orchestrator re-sends a restore the target is still refusing, and
    // each further refusal can reach a later attempt and fail it with the
    // old reason (there are as many as re-sends, a few). Such a retry is
    // retried; any other failure fails here.
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert_eq!(
            unsafe { net_compute_start_migration(rts[0], origin, a, b) },
            OK
        );
        let status = wait(rts[0]);
        if status["state"] == "completed" {
            break;
        }
        let stale = status["reason"]
            .as_str()
            .is_some_and(|r| r.contains("refused by the test"));
        assert!(stale && attempts < 10, "{status}");
    }
    let total = seq.load(Ordering::SeqCst);
    wait_for("the count on the target", || {
        sdks[1].counts() == vec![total]
    });
    for rt in rts {
        assert_eq!(unsafe { net_compute_free(rt) }, OK);
    }
    for sdk in sdks {
        sdk.join();
    }
    for m in meshes {
        assert_eq!(unsafe { net_mesh_free(m) }, OK);
    }
}

/// A node the daemon left keeps its factory entry; registering it again
/// says so, and the entry serves the return trip.
fn expect_again(rt: *mut net_compute_t) {
    let kind = "counter";
    let mut origin = 0;
    let st = unsafe {
        net_compute_expect(
            rt,
            kind.as_ptr(),
            kind.len(),
            SEED.as_ptr(),
            SEED.len(),
            &mut origin,
        )
    };
    assert!(
        st == OK || st == net_status_t::NET_ERR_COMPUTE_ALREADY_REGISTERED,
        "{st:?}"
    );
}

#[test]
fn an_unanswered_work_item_fails_the_call_and_a_late_answer_is_refused() {
    let mesh = node();
    let rt = runtime(mesh, r#"{"work_timeout_ms": 100}"#);
    let (st, origin) = spawn_raw(rt, "counter", &SEED, 1);
    assert_eq!(st, OK);
    // Nobody pulls: the delivery fails after the work timeout.
    let mut error = error_slot();
    let mut outcome = 0;
    let st = unsafe {
        net_compute_deliver(
            rt,
            origin,
            PRODUCER,
            1,
            ptr::null(),
            0,
            &mut outcome,
            &mut error,
        )
    };
    assert_eq!(st, net_status_t::NET_ERR_COMPUTE_DAEMON);
    let (status, message) = error_of(error);
    assert_eq!(status, st);
    assert!(message.contains("did not answer"), "{message}");
    // A puller takes the next item but answers only after its caller gave
    // up: the answer is refused.
    let puller = {
        let rt = P(rt);
        thread::spawn(move || {
            let rt = rt;
            let (st, w) = next_work(rt.0, 10_000, ptr::null());
            assert_eq!(st, OK);
            assert_eq!(
                (w.kind, w.instance, w.daemon, w.producer, w.sequence),
                (NET_COMPUTE_WORK_PROCESS, 1, origin, PRODUCER, 2)
            );
            assert_eq!(w.payload, b"late");
            w.id
        })
    };
    let st = unsafe {
        net_compute_deliver(
            rt,
            origin,
            PRODUCER,
            2,
            b"late".as_ptr(),
            4,
            &mut outcome,
            ptr::null_mut(),
        )
    };
    assert_eq!(st, net_status_t::NET_ERR_COMPUTE_DAEMON);
    let id = puller.join().unwrap();
    assert_eq!(
        unsafe { net_compute_complete_process(rt, id, ptr::null(), 0) },
        net_status_t::NET_ERR_COMPUTE_WORK_EXPIRED
    );
    assert_eq!(
        unsafe { net_compute_complete_restore(rt, 999) },
        net_status_t::NET_ERR_COMPUTE_WORK_EXPIRED
    );
    // The object may have applied that event: its state is in doubt, and
    // the next delivery is refused at once, without a work item.
    let mut error = error_slot();
    let st = unsafe {
        net_compute_deliver(
            rt,
            origin,
            PRODUCER,
            2,
            b"again".as_ptr(),
            5,
            &mut outcome,
            &mut error,
        )
    };
    assert_eq!(st, net_status_t::NET_ERR_COMPUTE_DAEMON);
    let (_, message) = error_of(error);
    assert!(message.contains("in doubt"), "{message}");
    assert_eq!(next_work(rt, 0, ptr::null()).0, net_status_t::NET_TIMEOUT);
    assert_eq!(stats(rt, origin).unwrap()["errors"], 3);
    assert_eq!(unsafe { net_compute_free(rt) }, OK);
    assert_eq!(unsafe { net_mesh_free(mesh) }, OK);
}

/// A batch is applied in order through one work item, each event counted,
/// chained and queued as an output; a daemon failure partway stops the
/// batch there, and the rest can be delivered again.
#[test]
fn a_batch_is_delivered_in_order_and_stops_at_a_failing_event() {
    let mesh = node();
    let rt = runtime(mesh, RUNTIME);
    let sdk = Sdk::serve(rt);
    let origin = sdk.spawn(rt);
    let (st, delivered, outcomes, message) = deliver_batch(
        rt,
        origin,
        1,
        &payloads(1..=64),
        NET_WAIT_FOREVER,
        ptr::null(),
    );
    assert_eq!(st, OK, "{message}");
    assert_eq!(delivered, 64);
    assert!(outcomes.iter().all(|o| *o == NET_COMPUTE_PROCESSED));
    expect_outputs(rt, origin, 1..=64);
    // Event 69 fails: 65..=68 are applied, 70.. are not attempted.
    let mut batch = payloads(65..=72);
    batch[4] = b"fail".to_vec();
    let (st, delivered, outcomes, message) =
        deliver_batch(rt, origin, 65, &batch, NET_WAIT_FOREVER, ptr::null());
    assert_eq!(st, net_status_t::NET_ERR_COMPUTE_DAEMON);
    assert!(message.contains("refused sequence 69"), "{message}");
    assert_eq!(delivered, 4);
    assert_eq!(outcomes, [NET_COMPUTE_PROCESSED; 4]);
    let s = stats(rt, origin).unwrap();
    assert_eq!(
        (
            s["events_processed"].as_u64(),
            s["errors"].as_u64(),
            s["head_sequence"].as_u64()
        ),
        (Some(68), Some(1), Some(68))
    );
    let (st, delivered, _, message) = deliver_batch(
        rt,
        origin,
        69,
        &payloads(69..=72),
        NET_WAIT_FOREVER,
        ptr::null(),
    );
    assert_eq!((st, delivered), (OK, 4), "{message}");
    assert_eq!(sdk.counts(), [72]);
    // A batch of one, and an empty one.
    assert_eq!(
        deliver_batch(rt, origin, 73, &payloads(73..=73), 1_000, ptr::null()).1,
        1
    );
    assert_eq!(deliver_batch(rt, origin, 74, &[], 1_000, ptr::null()).0, OK);
    assert_eq!(stats(rt, origin).unwrap()["events_processed"], 73);
    assert_eq!(unsafe { net_compute_free(rt) }, OK);
    sdk.join();
    assert_eq!(unsafe { net_mesh_free(mesh) }, OK);
}

/// `net_compute_lend_batch`: the lease and the instance (0, 0: not lent).
fn lend(rt: *mut net_compute_t, origin: u64, first: u64, count: usize) -> (u64, u64) {
    let (mut lease, mut instance) = (u64::MAX, 0);
    let st = unsafe {
        net_compute_lend_batch(
            rt,
            origin,
            PRODUCER,
            first,
            count,
            &mut lease,
            &mut instance,
            ptr::null_mut(),
        )
    };
    assert_eq!(st, OK, "{}", last_error());
    (lease, instance)
}

/// The counter over a lent batch, as an SDK applies one on its own
/// thread: events `first`.. until one is refused (sequence `fail_at`, or
/// not the next one); the answer's outputs, lengths, counts and failure.
fn apply_lent(
    c: &mut Counter,
    first: u64,
    count: usize,
    fail_at: Option<u64>,
) -> (Vec<u8>, Vec<u32>, Vec<u32>, Option<String>) {
    let (mut outputs, mut lengths, mut per_event) = (Vec::new(), Vec::new(), Vec::new());
    for seq in (first..).take(count) {
        if Some(seq) == fail_at || seq != c.last + 1 {
            return (
                outputs,
                lengths,
                per_event,
                Some(format!("refused sequence {seq}")),
            );
        }
        c.last = seq;
        c.count += 1;
        outputs.extend_from_slice(&c.count.to_le_bytes());
        lengths.push(8);
        per_event.push(1);
    }
    (outputs, lengths, per_event, None)
}

/// `net_compute_finish_batch` with an answer: the status, how many were
/// delivered, and the error message.
fn finish(
    rt: *mut net_compute_t,
    lease: u64,
    answer: &(Vec<u8>, Vec<u32>, Vec<u32>, Option<String>),
) -> (net_status_t, usize, String) {
    let (outputs, lengths, per_event, failure) = answer;
    let (fail_ptr, fail_len) = failure
        .as_ref()
        .map_or((ptr::null(), 0), |f| (f.as_ptr(), f.len()));
    let mut delivered = usize::MAX;
    let mut error = error_slot();
    let st = unsafe {
        net_compute_finish_batch(
            rt,
            lease,
            per_event.len(),
            outputs.as_ptr(),
            outputs.len(),
            lengths.as_ptr(),
            lengths.len(),
            per_event.as_ptr(),
            fail_ptr,
            fail_len,
            &mut delivered,
            &mut error,
        )
    };
    (st, delivered, error_of(error).1)
}

/// A lent batch is applied by its caller and recorded as a delivered one
/// (outputs chained in order, stats), holds off every other call on the
/// daemon until it is answered, stops at a failing event; an answer that
/// does not fit keeps the lease open, a second answer is refused; and
/// what cannot be lent gets lease 0.
#[test]
fn a_lent_batch_is_applied_by_its_caller_and_recorded_as_delivered() {
    let mesh = node();
    let rt = runtime(mesh, RUNTIME);
    let sdk = Sdk::serve(rt);
    let origin = sdk.spawn(rt);
    let (lease, instance) = lend(rt, origin, 1, 64);
    assert_ne!(lease, 0);
    assert_eq!(lend(rt, origin, 65, 1), (0, 0), "busy while lent");
    // Another thread's delivery waits for the lease: event 65 comes after 1..=64.
    let rt_p = P(rt);
    let later = thread::spawn(move || {
        let rt_p = rt_p;
        deliver(rt_p.0, origin, 65)
    });
    let mut counter = sdk.objects.lock().unwrap()[&instance];
    let answer = apply_lent(&mut counter, 1, 64, None);
    let (st, delivered, message) = finish(rt, lease, &answer);
    assert_eq!((st, delivered), (OK, 64), "{message}");
    // The SDK's object is the one the test applied the batch to.
    sdk.objects.lock().unwrap().insert(instance, counter);
    assert_eq!(later.join().unwrap(), Ok(NET_COMPUTE_PROCESSED));
    let (st, _, _) = finish(rt, lease, &answer);
    assert_eq!(
        st,
        net_status_t::NET_ERR_COMPUTE_WORK_EXPIRED,
        "answered once"
    );
    expect_outputs(rt, origin, 1..=65);
    // Event 69 fails: 66..=68 are delivered; an answer that does not fit
    // (all 8 applied, with a failure) is refused and the lease kept.
    let (lease, _) = lend(rt, origin, 66, 8);
    let mut counter = sdk.objects.lock().unwrap()[&instance];
    let mut misfit = apply_lent(&mut counter.clone(), 66, 8, None);
    misfit.3 = Some("stray".into());
    let (st, _, message) = finish(rt, lease, &misfit);
    assert_eq!(st, net_status_t::NET_ERR_INVALID_ARGUMENT);
    assert!(message.contains("does not fit"), "{message}");
    let answer = apply_lent(&mut counter, 66, 8, Some(69));
    sdk.objects.lock().unwrap().insert(instance, counter);
    let (st, delivered, message) = finish(rt, lease, &answer);
    assert_eq!((st, delivered), (net_status_t::NET_ERR_COMPUTE_DAEMON, 3));
    assert!(message.contains("refused sequence 69"), "{message}");
    let s = stats(rt, origin).unwrap();
    assert_eq!(
        (
            s["events_processed"].as_u64(),
            s["errors"].as_u64(),
            s["head_sequence"].as_u64()
        ),
        (Some(68), Some(1), Some(68))
    );
    // Not lent: an empty batch, sequences past 2^64-1, a daemon not here.
    assert_eq!(lend(rt, origin, 69, 0), (0, 0));
    assert_eq!(lend(rt, origin, u64::MAX, 2), (0, 0));
    assert_eq!(lend(rt, 42, 1, 1), (0, 0));
    assert_eq!(unsafe { net_compute_free(rt) }, OK);
    sdk.join();
    assert_eq!(unsafe { net_mesh_free(mesh) }, OK);
}

/// A migration started while a batch is lent waits for it (the snapshot
/// holds the batch); freeing the runtime with a batch lent does not wait
/// for its answer, and the answer is then refused.
#[test]
fn a_migration_waits_for_a_lent_batch_and_a_free_does_not() {
    let meshes = [node(), node()];
    connect(meshes[0], meshes[1]);
    let rts = meshes.map(|m| runtime(m, RUNTIME));
    let sdks = rts.map(Sdk::serve);
    let origin = sdks[0].spawn(rts[0]);
    assert_eq!(expect(rts[1]), origin);
    let [a, b] = meshes.map(node_id);
    let (lease, instance) = lend(rts[0], origin, 1, 32);
    assert_ne!(lease, 0);
    assert_eq!(
        unsafe { net_compute_start_migration(rts[0], origin, a, b) },
        OK
    );
    let mut counter = sdks[0].objects.lock().unwrap()[&instance];
    let answer = apply_lent(&mut counter, 1, 32, None);
    sdks[0].objects.lock().unwrap().insert(instance, counter);
    let (st, delivered, message) = finish(rts[0], lease, &answer);
    assert_eq!((st, delivered), (OK, 32), "{message}");
    let mut out = net_bytes_t::EMPTY;
    let st = unsafe {
        net_compute_wait_migration(
            rts[0],
            origin,
            20_000,
            &mut out,
            ptr::null(),
            ptr::null_mut(),
        )
    };
    assert_eq!(st, OK, "{}", last_error());
    let status = json(out);
    assert_eq!(status["state"], "completed", "{status}");
    // The snapshot held the whole batch: the target continues from 32.
    assert_eq!(deliver(rts[1], origin, 33), Ok(NET_COMPUTE_PROCESSED));
    wait_for("the count on the target", || sdks[1].counts() == vec![33]);
    // Lent on the target, then the runtime is freed unanswered.
    let (lease, instance) = lend(rts[1], origin, 34, 4);
    assert_ne!(lease, 0);
    let mut counter = sdks[1].objects.lock().unwrap()[&instance];
    let answer = apply_lent(&mut counter, 34, 4, None);
    assert_eq!(unsafe { net_compute_free(rts[1]) }, OK);
    let (st, _, _) = finish(rts[1], lease, &answer);
    assert_eq!(
        st,
        net_status_t::NET_ERR_SHUTTING_DOWN,
        "the runtime is gone"
    );
    assert_eq!(unsafe { net_compute_free(rts[0]) }, OK);
    for sdk in sdks {
        sdk.join();
    }
    for m in meshes {
        assert_eq!(unsafe { net_mesh_free(m) }, OK);
    }
}

/// With nobody pulling, the batch's timeout and cancel give up before the
/// work item is taken: nothing delivered, nothing counted, the item gone.
#[test]
fn a_batch_not_taken_up_times_out_or_is_cancelled_with_nothing_applied() {
    let mesh = node();
    let rt = runtime(mesh, RUNTIME);
    let (st, origin) = spawn_raw(rt, "counter", &SEED, 1);
    assert_eq!(st, OK);
    let (st, delivered, _, _) = deliver_batch(rt, origin, 1, &payloads(1..=3), 50, ptr::null());
    assert_eq!((st, delivered), (net_status_t::NET_TIMEOUT, 0));
    assert_eq!(
        next_work(rt, 0, ptr::null()).0,
        net_status_t::NET_TIMEOUT,
        "withdrawn"
    );
    // Cancelled before the call: nothing delivered, and it says so.
    let cancelled = cancel_token();
    unsafe { net_cancel_cancel(cancelled) };
    let (st, delivered, _, _) = deliver_batch(rt, origin, 1, &payloads(1..=3), 50, cancelled);
    assert_eq!((st, delivered), (net_status_t::NET_ERR_CANCELLED, 0));
    unsafe { net_cancel_free(cancelled) };
    let token = P(cancel_token());
    let done = Arc::new(AtomicBool::new(false));
    let caller = {
        let (rt, done) = (P(rt), Arc::clone(&done));
        thread::spawn(move || {
            let (rt, token) = (rt, token);
            let r = deliver_batch(rt.0, origin, 1, &payloads(1..=3), NET_WAIT_FOREVER, token.0);
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    wait_in_flight(rt, &done);
    unsafe { net_cancel_cancel(token.0) };
    let (st, delivered, _, _) = caller.join().unwrap();
    assert_eq!((st, delivered), (net_status_t::NET_ERR_CANCELLED, 0));
    unsafe { net_cancel_free(token.0) };
    let s = stats(rt, origin).unwrap();
    assert_eq!(
        (s["events_processed"].as_u64(), s["errors"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(next_work(rt, 0, ptr::null()).0, net_status_t::NET_TIMEOUT);
    assert_eq!(unsafe { net_compute_free(rt) }, OK);
    assert_eq!(unsafe { net_mesh_free(mesh) }, OK);
}

/// Bad packing is refused with nothing delivered, and a batch answer that
/// does not add up is refused with the item left open.
#[test]
fn batch_arguments_and_answers_are_checked() {
    let mesh = node();
    let rt = runtime(mesh, RUNTIME);
    let (st, origin) = spawn_raw(rt, "counter", &SEED, 1);
    assert_eq!(st, OK);
    let lengths = [4u32, 4];
    let mut delivered = 0usize;
    let st = unsafe {
        net_compute_deliver_batch(
            rt,
            origin,
            PRODUCER,
            1,
            b"abc".as_ptr(),
            3,
            lengths.as_ptr(),
            2,
            0,
            ptr::null_mut(),
            &mut delivered,
            ptr::null(),
            ptr::null_mut(),
        )
    };
    assert_eq!(st, net_status_t::NET_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("lengths"), "{}", last_error());
    let st = unsafe {
        net_compute_deliver_batch(
            rt,
            origin,
            PRODUCER,
            u64::MAX,
            b"ab".as_ptr(),
            2,
            [1u32, 1].as_ptr(),
            2,
            0,
            ptr::null_mut(),
            &mut delivered,
            ptr::null(),
            ptr::null_mut(),
        )
    };
    assert_eq!(st, net_status_t::NET_ERR_INVALID_ARGUMENT);
    let caller = {
        let rt = P(rt);
        thread::spawn(move || {
            let rt = rt;
            deliver_batch(
                rt.0,
                origin,
                1,
                &payloads(1..=2),
                NET_WAIT_FOREVER,
                ptr::null(),
            )
        })
    };
    let (st, w) = next_work(rt, 10_000, ptr::null());
    assert_eq!(st, OK);
    assert_eq!(
        (w.kind, w.instance, w.daemon, w.producer, w.sequence),
        (NET_COMPUTE_WORK_PROCESS_BATCH, 1, origin, PRODUCER, 1)
    );
    assert_eq!(
        unpack_batch(&w.payload),
        [
            (PRODUCER, 1, 1u64.to_le_bytes().to_vec()),
            (PRODUCER, 2, 2u64.to_le_bytes().to_vec())
        ]
    );
    let complete = |applied: usize, counts: &[u32], failure: Option<&str>| unsafe {
        let out = [0u8; 2];
        let lengths = [1u32, 1];
        let (f, fl) = failure.map_or((ptr::null(), 0), |f| (f.as_ptr(), f.len()));
        net_compute_complete_batch(
            rt,
            w.id,
            applied,
            out.as_ptr(),
            2,
            lengths.as_ptr(),
            2,
            counts.as_ptr(),
            f,
            fl,
        )
    };
    let invalid = net_status_t::NET_ERR_INVALID_ARGUMENT;
    assert_eq!(complete(2, &[1, 2], None), invalid, "counts add up to more");
    assert_eq!(complete(2, &[1, 0], None), invalid, "counts add up to less");
    assert_eq!(complete(1, &[2], None), invalid, "short without a failure");
    assert_eq!(
        complete(2, &[1, 1], Some("x")),
        invalid,
        "a failure after all"
    );
    assert_eq!(
        unsafe { net_compute_complete_process(rt, w.id, ptr::null(), 0) },
        invalid,
        "not a Process"
    );
    assert_eq!(complete(1, &[2], Some("")), OK);
    let (st, delivered, _, message) = caller.join().unwrap();
    assert_eq!((st, delivered), (net_status_t::NET_ERR_COMPUTE_DAEMON, 1));
    assert!(message.contains("the daemon failed"), "{message}");
    assert_eq!(
        complete(1, &[2], Some("")),
        net_status_t::NET_ERR_COMPUTE_WORK_EXPIRED
    );
    assert_eq!(stats(rt, origin).unwrap()["events_emitted"], 2);
    assert_eq!(unsafe { net_compute_free(rt) }, OK);
    assert_eq!(unsafe { net_mesh_free(mesh) }, OK);
}

#[test]
fn bad_arguments_get_typed_errors() {
    let mesh = node();
    let bad = r#"{"work_timeout_ms": "soon"}"#;
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { net_compute_new(mesh, bad.as_ptr(), bad.len(), &mut out) },
        net_status_t::NET_ERR_COMPUTE_CONFIG
    );
    assert!(last_error().contains("work_timeout_ms"), "{}", last_error());
    let rt = runtime(mesh, "");
    // One runtime per node.
    assert_eq!(
        unsafe { net_compute_new(mesh, ptr::null(), 0, &mut out) },
        net_status_t::NET_ERR_COMPUTE_TRANSPORT
    );
    let kind = "counter";
    assert_eq!(
        unsafe { net_compute_register_kind(rt, kind.as_ptr(), kind.len(), true) },
        net_status_t::NET_ERR_COMPUTE_ALREADY_REGISTERED
    );
    assert_eq!(
        unsafe { net_compute_register_kind(rt, ptr::null(), 0, true) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        spawn_raw(rt, "nope", &SEED, 1).0,
        net_status_t::NET_ERR_COMPUTE_UNKNOWN_KIND
    );
    assert_eq!(
        spawn_raw(rt, kind, &SEED[..31], 1).0,
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    let (st, origin) = spawn_raw(rt, kind, &SEED, 1);
    assert_eq!(st, OK);
    assert_eq!(
        spawn_raw(rt, kind, &SEED, 2).0,
        net_status_t::NET_ERR_COMPUTE_ALREADY_REGISTERED
    );
    let mut outcome = 0;
    assert_eq!(
        unsafe { net_compute_deliver(rt, 42, 1, 1, ptr::null(), 0, &mut outcome, ptr::null_mut()) },
        net_status_t::NET_ERR_COMPUTE_NOT_FOUND
    );
    assert_eq!(
        unsafe { net_compute_stop(rt, 42) },
        net_status_t::NET_ERR_COMPUTE_NOT_FOUND
    );
    // Placement: no node announced that it takes migrations; not here.
    let mut target = 0;
    assert_eq!(
        unsafe { net_compute_place_migration(rt, origin, &mut target) },
        net_status_t::NET_ERR_COMPUTE_NO_TARGET
    );
    assert_eq!(
        unsafe { net_compute_place_migration(rt, 42, &mut target) },
        net_status_t::NET_ERR_COMPUTE_NOT_FOUND
    );
    assert_eq!(
        unsafe { net_compute_place_migration(rt, origin, ptr::null_mut()) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    let mut json_out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_compute_migration_status(rt, origin, &mut json_out) },
        net_status_t::NET_ERR_COMPUTE_NO_MIGRATION
    );
    assert_eq!(
        unsafe {
            net_compute_wait_migration(rt, origin, 0, &mut json_out, ptr::null(), ptr::null_mut())
        },
        net_status_t::NET_ERR_COMPUTE_NO_MIGRATION
    );
    let me = node_id(mesh);
    assert_eq!(
        unsafe { net_compute_start_migration(rt, origin, me, me) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    // A source we have no session with cannot be asked for a snapshot.
    assert_eq!(
        unsafe { net_compute_start_migration(rt, origin, 12345, me) },
        net_status_t::NET_ERR_COMPUTE_TRANSPORT
    );
    // Leaving from here to a node whose static key is unknown: the
    // daemon's identity cannot be sealed to it, so nothing starts; bad
    // options are refused by name.
    assert_eq!(
        unsafe { net_compute_start_migration(rt, origin, me, 12345) },
        net_status_t::NET_ERR_COMPUTE_IDENTITY_TRANSPORT
    );
    for (options, status) in [
        (
            &br#"{"transport_identity": "yes"}"#[..],
            net_status_t::NET_ERR_COMPUTE_CONFIG,
        ),
        (br#"{"sealed": true}"#, net_status_t::NET_ERR_COMPUTE_CONFIG),
        (br#"[true]"#, net_status_t::NET_ERR_COMPUTE_CONFIG),
        (
            br#"{"transport_identity": true}"#,
            net_status_t::NET_ERR_COMPUTE_IDENTITY_TRANSPORT,
        ),
    ] {
        assert_eq!(
            unsafe {
                net_compute_start_migration_opts(
                    rt,
                    origin,
                    me,
                    12345,
                    options.as_ptr(),
                    options.len(),
                )
            },
            status,
            "{}",
            String::from_utf8_lossy(options)
        );
    }
    assert_eq!(
        unsafe { net_compute_expect_origin(rt, b"nope".as_ptr(), 4, 77) },
        net_status_t::NET_ERR_COMPUTE_UNKNOWN_KIND
    );
    assert_eq!(unsafe { net_compute_stop(rt, origin) }, OK);
    // The stopped daemon's object is released through a Drop item.
    let (st, w) = next_work(rt, 0, ptr::null());
    assert_eq!(st, OK);
    assert_eq!(
        (w.kind, w.instance, w.daemon),
        (NET_COMPUTE_WORK_DROP, 1, origin)
    );
    // A Drop needs no answer (answering one is refused).
    assert_eq!(
        unsafe { net_compute_complete_restore(rt, w.id) },
        net_status_t::NET_ERR_COMPUTE_WORK_EXPIRED
    );
    // A cancelled next returns at once.
    let token = cancel_token();
    unsafe { net_cancel_cancel(token) };
    assert_eq!(
        next_work(rt, NET_WAIT_FOREVER, token).0,
        net_status_t::NET_ERR_CANCELLED
    );
    unsafe { net_cancel_free(token) };
    assert_eq!(unsafe { net_compute_free(rt) }, OK);
    assert_eq!(unsafe { net_mesh_free(mesh) }, OK);
}

// --- the three handle races -------------------------------------------

fn race_runtime() -> (P<net_mesh_t>, P<net_compute_t>) {
    let mesh = node();
    let mut rt = ptr::null_mut();
    assert_eq!(
        unsafe { net_compute_new(mesh, ptr::null(), 0, &mut rt) },
        OK
    );
    (P(mesh), P(rt))
}

/// A quick call, or (slow) a `next` that waits for work.
fn call(rt: *mut net_compute_t, slow: bool) -> net_status_t {
    if slow {
        next_work(rt, 2_000, ptr::null()).0
    } else {
        let mut out = net_bytes_t::EMPTY;
        let st = unsafe { net_compute_daemons(rt, &mut out) };
        take(out);
        st
    }
}

#[test]
fn race_op_after_free_is_refused() {
    for _ in 0..10 {
        let (mesh, rt) = race_runtime();
        assert_eq!(unsafe { net_compute_free(rt.0) }, OK);
        assert_eq!(call(rt.0, false), net_status_t::NET_ERR_SHUTTING_DOWN);
        assert!(last_error().contains("freed"), "{}", last_error());
        unsafe { net_mesh_free(mesh.0) };
    }
    for _ in 0..10 {
        let (mesh, rt) = race_runtime();
        let start = Arc::new(Barrier::new(4));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let start = start.clone();
                thread::spawn(move || {
                    let rt = rt;
                    start.wait();
                    for _ in 0..100 {
                        let st = call(rt.0, false);
                        assert!(
                            st == OK || st == net_status_t::NET_ERR_SHUTTING_DOWN,
                            "{st:?}"
                        );
                    }
                })
            })
            .collect();
        start.wait();
        assert_eq!(unsafe { net_compute_free(rt.0) }, OK);
        for w in workers {
            w.join().unwrap();
        }
        unsafe { net_mesh_free(mesh.0) };
    }
}

#[test]
fn race_concurrent_frees_are_idempotent() {
    for _ in 0..10 {
        let (mesh, rt) = race_runtime();
        let start = Arc::new(Barrier::new(6));
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let start = start.clone();
                thread::spawn(move || {
                    let rt = rt;
                    start.wait();
                    if i % 2 == 1 {
                        let _ = call(rt.0, false);
                    }
                    unsafe { net_compute_free(rt.0) }
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), OK);
        }
        assert_eq!(call(rt.0, false), net_status_t::NET_ERR_SHUTTING_DOWN);
        unsafe { net_mesh_free(mesh.0) };
    }
}

/// The free wakes a `next` waiting for work (it returns `NET_END`, never
/// `NET_ERR_SHUTTING_DOWN` once inside) and returns only after it.
#[test]
fn race_free_waits_for_in_flight_call() {
    for _ in 0..50 {
        let (mesh, rt) = race_runtime();
        let done = Arc::new(AtomicBool::new(false));
        let worker = {
            let done = done.clone();
            thread::spawn(move || {
                let rt = rt;
                let st = call(rt.0, true);
                done.store(true, Ordering::SeqCst);
                st
            })
        };
        let in_flight = wait_in_flight(rt.0, &done);
        assert_eq!(unsafe { net_compute_free(rt.0) }, OK);
        // The property itself: once the free returned, no call is inside.
        // (`done` is set after the call returned, so it may still be false
        // here: it only says whether the call ended before it was seen.)
        let inside_after_free = net::ffi::calls_in_flight(rt.0);
        let st = worker.join().unwrap();
        unsafe { net_mesh_free(mesh.0) };
        if in_flight {
            assert!(
                inside_after_free == 0,
                "the free returned before the call it waited for"
            );
            assert_eq!(st, net_status_t::NET_END);
            return;
        }
    }
    panic!("the call was never seen in flight in 50 rounds");
}

/// `net_compute_deliver_batch` and `net_compute_complete_batch` after the
/// free are refused; a free wakes a batch delivery waiting for its answer
/// (it fails with `NET_ERR_SHUTTING_DOWN`) and returns only after it.
#[test]
fn race_batch_calls_after_free_and_free_waits_for_a_batch() {
    let (mesh, rt) = race_runtime();
    assert_eq!(unsafe { net_compute_free(rt.0) }, OK);
    assert_eq!(
        deliver_batch(rt.0, 1, 1, &payloads(1..=2), 0, ptr::null()).0,
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
    assert_eq!(
        unsafe {
            net_compute_complete_batch(
                rt.0,
                1,
                0,
                ptr::null(),
                0,
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                0,
            )
        },
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
    unsafe { net_mesh_free(mesh.0) };
    for _ in 0..50 {
        let (mesh, rt) = race_runtime();
        let kind = "counter";
        assert_eq!(
            unsafe { net_compute_register_kind(rt.0, kind.as_ptr(), kind.len(), true) },
            OK
        );
        let (st, origin) = spawn_raw(rt.0, kind, &SEED, 1);
        assert_eq!(st, OK);
        let done = Arc::new(AtomicBool::new(false));
        let worker = {
            let done = done.clone();
            thread::spawn(move || {
                let rt = rt;
                let r = deliver_batch(
                    rt.0,
                    origin,
                    1,
                    &payloads(1..=2),
                    NET_WAIT_FOREVER,
                    ptr::null(),
                );
                done.store(true, Ordering::SeqCst);
                r
            })
        };
        let in_flight = wait_in_flight(rt.0, &done);
        assert_eq!(unsafe { net_compute_free(rt.0) }, OK);
        let inside_after_free = net::ffi::calls_in_flight(rt.0);
        let (st, delivered, _, _) = worker.join().unwrap();
        unsafe { net_mesh_free(mesh.0) };
        if in_flight {
            assert_eq!(inside_after_free, 0, "the free returned before the batch");
            assert_eq!(st, net_status_t::NET_ERR_SHUTTING_DOWN);
            assert!(delivered == 0 || delivered == usize::MAX);
            return;
        }
    }
    panic!("the batch was never seen in flight in 50 rounds");
}

/// A cancel wakes `net_compute_next_output` and `net_compute_wait_migration`
/// waiting without limit (`NET_ERR_CANCELLED`, in the call's `net_error_t`).
#[test]
fn cancel_wakes_the_waits() {
    let meshes = [node(), node()];
    connect(meshes[0], meshes[1]);
    // Nobody pulls work at B: the object for the arriving daemon is never
    // built, so the migration stays in its Transfer phase while we wait
    // for it at A (whose state is free: the wait is on B).
    let rts = meshes.map(|m| runtime(m, r#"{"work_timeout_ms": 30000}"#));
    let sdk = Sdk::serve(rts[0]);
    let origin = sdk.spawn(rts[0]);
    expect(rts[1]);
    let [a, b] = meshes.map(node_id);
    assert_eq!(
        unsafe { net_compute_start_migration(rts[0], origin, a, b) },
        OK
    );
    type Wait = fn(P<net_compute_t>, u64, *const net_cancel_t) -> net_error_t;
    let waits: [Wait; 2] = [
        |rt, _, cancel| {
            let (mut o, mut seq) = (0, 0);
            let mut payload = net_bytes_t::EMPTY;
            let mut error = error_slot();
            unsafe {
                net_compute_next_output(
                    rt.0,
                    NET_WAIT_FOREVER,
                    &mut o,
                    &mut seq,
                    &mut payload,
                    cancel,
                    &mut error,
                )
            };
            error
        },
        |rt, origin, cancel| {
            let mut out = net_bytes_t::EMPTY;
            let mut error = error_slot();
            unsafe {
                net_compute_wait_migration(
                    rt.0,
                    origin,
                    NET_WAIT_FOREVER,
                    &mut out,
                    cancel,
                    &mut error,
                )
            };
            error
        },
    ];
    for wait in waits {
        let token = P(cancel_token());
        let done = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (rt, done) = (P(rts[0]), Arc::clone(&done));
            thread::spawn(move || {
                let (rt, token) = (rt, token);
                let error = wait(rt, origin, token.0);
                done.store(true, Ordering::SeqCst);
                error_of(error)
            })
        };
        wait_in_flight(rts[0], &done);
        unsafe { net_cancel_cancel(token.0) };
        let (status, message) = waiter.join().unwrap();
        assert_eq!(status, net_status_t::NET_ERR_CANCELLED, "{message}");
        unsafe { net_cancel_free(token.0) };
    }
    for rt in rts {
        assert_eq!(unsafe { net_compute_free(rt) }, OK);
    }
    sdk.join();
    for m in meshes {
        assert_eq!(unsafe { net_mesh_free(m) }, OK);
    }
}
