//! The event bus end to end over the in-memory and RedEX adapters:
//! ingest, batching, dispatch retries, backpressure, scaling, shutdown and
//! merged polling — with the v0.9/v0.11 bus regressions named.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use net::bus::*;
use net::redex::{Redex, RedexFileConfig};

fn config(json: &str) -> BusConfig {
    BusConfig::from_json(json).unwrap()
}

fn memory_bus(json: &str) -> (EventBus, Arc<MemoryAdapter>) {
    let adapter = Arc::new(MemoryAdapter::new());
    let bus = EventBus::new(config(json), adapter.clone()).unwrap();
    (bus, adapter)
}

fn poll_all(bus: &EventBus, limit: usize) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let r = bus
            .poll(&PollRequest {
                cursor: cursor.clone(),
                limit,
                ..PollRequest::default()
            })
            .unwrap();
        assert!(!r.next_cursor.is_empty());
        let n = r.events.len();
        out.extend(r.events);
        cursor = Some(r.next_cursor);
        if !r.has_more && n == 0 {
            return out;
        }
    }
}

const FAST: &str =
    r#""batch":{"min_size":16,"max_size":256,"max_delay_ms":2},"retry_base_ms":1,"retry_max_ms":5"#;

#[test]
fn ingest_flush_and_poll_back_every_event_once_in_shard_order() {
    let (bus, adapter) = memory_bus(&format!(r#"{{"num_shards":4,{FAST}}}"#));
    for i in 0..10_000u32 {
        bus.ingest(i.to_le_bytes().to_vec()).unwrap();
    }
    bus.flush().unwrap();
    assert_eq!(adapter.all_payloads().len(), 10_000);
    let events = poll_all(&bus, 777);
    let seen: HashSet<Vec<u8>> = events.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(events.len(), 10_000, "no duplicates across pages");
    assert_eq!(seen.len(), 10_000);
    // Within a shard, ids and timestamps ascend.
    let mut last: HashMap<u16, (u64, u64)> = HashMap::new();
    for e in &events {
        let id: u64 = e.id.parse().unwrap();
        if let Some(&(pid, pts)) = last.get(&e.shard_id) {
            assert!(id > pid && e.timestamp_ns > pts);
        }
        last.insert(e.shard_id, (id, e.timestamp_ns));
    }
    let stats = bus.stats();
    assert_eq!(stats.events_ingested, 10_000);
    assert_eq!(stats.events_dispatched, 10_000);
    assert_eq!(stats.events_dropped, 0);
    let report = bus.shutdown();
    assert!(!report.shutdown_was_lossy);
}

#[test]
fn batch_ingest_lands_on_one_shard_and_reports_counts() {
    let (bus, adapter) = memory_bus(&format!(r#"{{"num_shards":2,{FAST}}}"#));
    let events: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i]).collect();
    let r = bus.ingest_batch(&events).unwrap();
    assert_eq!(
        (r.queued, r.taken, r.sampled, r.refused),
        (100, 100, 0, None)
    );
    assert_eq!(bus.ingest_batch(&Vec::<Vec<u8>>::new()).unwrap().taken, 0);
    bus.flush().unwrap();
    let per_shard: Vec<usize> = [0, 1].iter().map(|&s| adapter.payloads(s).len()).collect();
    assert!(per_shard.contains(&100), "{per_shard:?}");
}

#[test]
fn chunked_batches_are_split_into_bounded_adapter_batches_in_order() {
    let (bus, adapter) = memory_bus(
        r#"{"num_shards":1,"batch":{"min_size":10,"max_size":100,"max_delay_ms":1,"adaptive":false}}"#,
    );
    let events: Vec<Vec<u8>> = (0..5000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let r = bus.ingest_batch(&events).unwrap();
    assert_eq!((r.queued, r.taken, r.refused), (5000, 5000, None));
    bus.flush().unwrap();
    assert_eq!(adapter.payloads(0), events, "every event, in order");
    let batches = adapter.batches();
    assert!(
        batches.iter().all(|&(_, _, len)| len <= 100),
        "max_size holds across chunks"
    );
    let mut next = 0;
    for (_, start, len) in batches {
        assert_eq!(start, next);
        next += len as u64;
    }
}

#[test]
fn sequence_start_is_per_shard_monotonic_and_gap_free() {
    let (bus, adapter) = memory_bus(&format!(r#"{{"num_shards":3,{FAST}}}"#));
    for i in 0..5_000u32 {
        bus.ingest(i.to_le_bytes().to_vec()).unwrap();
        if i % 700 == 0 {
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    bus.flush().unwrap();
    let mut next: HashMap<u16, u64> = HashMap::new();
    let batches = adapter.batches();
    assert!(batches.len() > 3);
    for (shard, start, len) in batches {
        let expected = next.entry(shard).or_insert(0);
        assert_eq!(start, *expected, "shard {shard}: gap or overlap");
        *expected += len as u64;
    }
    assert_eq!(bus.sequences(), next);
}

#[test]
fn sequences_continue_across_a_restart() {
    let adapter = Arc::new(MemoryAdapter::new());
    let cfg = config(&format!(r#"{{"num_shards":2,{FAST}}}"#));
    let bus = EventBus::new(cfg.clone(), adapter.clone()).unwrap();
    for i in 0..300u32 {
        bus.ingest(i.to_le_bytes().to_vec()).unwrap();
    }
    bus.shutdown();
    let saved = bus.sequences();
    drop(bus);
    let before = adapter.batches().len();
    let bus = EventBus::with_sequences(cfg, adapter.clone(), saved.clone()).unwrap();
    for i in 0..300u32 {
        bus.ingest(i.to_le_bytes().to_vec()).unwrap();
    }
    bus.flush().unwrap();
    for (shard, start, _) in &adapter.batches()[before..] {
        assert!(
            *start >= saved[shard],
            "restarted shard {shard} reused sequence {start}"
        );
    }
}

#[test]
fn the_producer_state_keeps_the_nonce_and_never_reuses_a_sequence_after_a_restart() {
    use net::bus::dedup_state::DedupStateFile;
    use net::redex::storage::FsStorage;
    let dir = std::env::temp_dir().join(format!("net-bus-producer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = DedupStateFile::new(Arc::new(FsStorage), &dir);
    let adapter = Arc::new(MemoryAdapter::new());
    let cfg = config(&format!(r#"{{"num_shards":2,{FAST}}}"#));
    let mut nonce = None;
    let mut highest: HashMap<u16, u64> = HashMap::new();
    for round in 0..3 {
        let before = adapter.batches().len();
        let bus =
            EventBus::with_producer_state(cfg.clone(), adapter.clone(), file.clone()).unwrap();
        assert_eq!(
            *nonce.get_or_insert(bus.producer_nonce()),
            bus.producer_nonce(),
            "round {round}"
        );
        for i in 0..500u32 {
            bus.ingest(i.to_le_bytes().to_vec()).unwrap();
        }
        bus.flush().unwrap();
        for &(shard, start, len) in &adapter.batches()[before..] {
            if round > 0 {
                assert!(
                    start >= highest[&shard],
                    "round {round}: shard {shard} reused {start}"
                );
            }
            let end = highest.entry(shard).or_insert(0);
            *end = (*end).max(start + len as u64);
        }
        assert_eq!(bus.stats().reservation_failures, 0);
        // The durable reservation already covers every sequence used, so
        // a crash here (instead of the drop) would restart above them too.
        let saved = file.load().unwrap().unwrap();
        for (shard, end) in &highest {
            assert!(saved.reserved[shard] >= *end);
        }
        drop(bus);
    }
    assert_eq!(adapter.nonces(), vec![nonce.unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_reservation_is_counted_and_loses_no_event() {
    use net::bus::dedup_state::DedupStateFile;
    use net::redex::fault::{Fault, FaultyStorage, OpKind};
    let fs = FaultyStorage::new();
    let file = DedupStateFile::new(Arc::new(fs.clone()), "/producer");
    let adapter = Arc::new(MemoryAdapter::new());
    let bus = EventBus::with_producer_state(
        config(&format!(r#"{{"num_shards":1,{FAST}}}"#)),
        adapter.clone(),
        file,
    )
    .unwrap();
    fs.inject_next(OpKind::Sync, None, Fault::Error);
    for i in 0..100u8 {
        bus.ingest(vec![i]).unwrap();
    }
    bus.flush().unwrap();
    assert_eq!(adapter.payloads(0).len(), 100);
    assert_eq!(bus.stats().reservation_failures, 1);
}

#[test]
fn transient_failures_and_timeouts_are_retried_with_reasons() {
    let (bus, adapter) = memory_bus(&format!(
        r#"{{"num_shards":1,"adapter_timeout_ms":50,"max_attempts":4,{FAST}}}"#
    ));
    adapter.inject([
        FaultKind::Transient,
        FaultKind::Stall(Duration::from_millis(200)),
    ]);
    for i in 0..50u8 {
        bus.ingest(vec![i]).unwrap();
    }
    bus.flush().unwrap();
    assert_eq!(adapter.payloads(0).len(), 50, "delivered after retries");
    let stats = bus.stats();
    assert_eq!(stats.failed_attempts, 2);
    assert_eq!(stats.dispatch_failures, 0);
    assert_eq!(stats.events_dropped, 0);
}

#[test]
fn a_batch_failing_every_attempt_is_counted_lost_with_each_reason() {
    let (bus, adapter) = memory_bus(
        r#"{"num_shards":1,"max_attempts":3,"adapter_timeout_ms":50,"batch":{"min_size":1000,"max_size":1000,"max_delay_ms":2},"retry_base_ms":1,"retry_max_ms":2}"#,
    );
    adapter.inject([
        FaultKind::Transient,
        FaultKind::Stall(Duration::from_millis(200)),
        FaultKind::Transient,
    ]);
    for i in 0..10u8 {
        bus.ingest(vec![i]).unwrap();
    }
    bus.flush().unwrap();
    let stats = bus.stats();
    assert_eq!(stats.dispatch_failures, 1);
    assert_eq!(stats.events_dropped, 10);
    let failure = stats.last_failure.unwrap();
    assert!(
        failure.contains("attempt 0: memory: transient"),
        "{failure}"
    );
    assert!(failure.contains("attempt 1: timed out"), "{failure}");
    assert!(
        failure.contains("attempt 2: memory: transient"),
        "{failure}"
    );
    // A fatal error is not retried.
    adapter.inject([FaultKind::Fatal]);
    let calls = adapter.calls();
    bus.ingest(vec![1]).unwrap();
    bus.flush().unwrap();
    assert_eq!(adapter.calls() - calls, 1);
    assert_eq!(bus.stats().events_dropped, 11);
    // A later shutdown that loses nothing itself is not lossy, and still
    // reports the lifetime drops.
    let report = bus.shutdown();
    assert_eq!(report.events_dropped, 11);
    assert!(!report.shutdown_was_lossy);
}

#[test]
fn backpressure_modes_at_the_bus() {
    // A stalled adapter keeps the 8-event shard full.
    let stall = |mode: &str| {
        let (bus, adapter) = memory_bus(&format!(
            r#"{{"num_shards":1,"shard_capacity":8,"backpressure":{mode},"adapter_timeout_ms":2000,"shutdown_timeout_ms":100,"batch":{{"min_size":1,"max_size":1,"max_delay_ms":1}}}}"#
        ));
        adapter.inject([FaultKind::Stall(Duration::from_secs(2))]);
        bus.ingest(vec![0]).unwrap();
        // The worker has taken it and is stalled inside the adapter.
        let deadline = Instant::now() + Duration::from_secs(5);
        while adapter.calls() == 0 || bus.stats().events_buffered > 1 {
            assert!(Instant::now() < deadline, "worker never took the event");
            std::thread::sleep(Duration::from_millis(1));
        }
        (bus, adapter)
    };
    let (bus, _a) = stall(r#"{"mode":"fail_producer"}"#);
    let results: Vec<_> = (0..20u8).map(|i| bus.ingest(vec![i])).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 8);
    assert!(matches!(
        results[8],
        Err(BusError::Backpressure { shard: 0 })
    ));
    assert_eq!(bus.stats().events_dropped, 0, "the producer kept them");

    let (bus, _a) = stall(r#"{"mode":"drop_newest"}"#);
    for i in 0..20u8 {
        let _ = bus.ingest(vec![i]);
    }
    assert_eq!(bus.stats().events_dropped, 12);

    let (bus, _a) = stall(r#"{"mode":"drop_oldest"}"#);
    for i in 0..20u8 {
        bus.ingest(vec![i]).unwrap();
    }
    assert_eq!(bus.stats().events_dropped, 12);

    let (bus, _a) = stall(r#"{"mode":"sample","keep_one_in":2,"high_water":0.5}"#);
    let mut sampled = 0;
    for i in 0..8u8 {
        if let Err(BusError::Sampled) = bus.ingest(vec![i]) {
            sampled += 1;
        }
    }
    assert!(sampled >= 2, "{sampled}");
    assert_eq!(bus.stats().events_sampled, sampled);
}

#[test]
fn shutdown_under_racing_producers_loses_nothing_accepted() {
    let (bus, adapter) = memory_bus(&format!(r#"{{"num_shards":4,{FAST}}}"#));
    let bus = Arc::new(bus);
    let accepted = Arc::new(AtomicU64::new(0));
    let go = Arc::new(AtomicBool::new(true));
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let (bus, accepted, go) = (bus.clone(), accepted.clone(), go.clone());
            std::thread::spawn(move || {
                let mut i = 0u32;
                while go.load(Ordering::Relaxed) {
                    match bus.ingest([p as u8, (i >> 16) as u8, (i >> 8) as u8, i as u8].to_vec()) {
                        Ok(()) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(BusError::ShuttingDown) => return,
                        Err(BusError::Backpressure { .. }) => std::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                    i = i.wrapping_add(1);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let report = bus.shutdown();
    go.store(false, Ordering::Relaxed);
    for p in producers {
        p.join().unwrap();
    }
    assert!(!report.shutdown_was_lossy, "{report:?}");
    assert_eq!(
        adapter.all_payloads().len() as u64,
        accepted.load(Ordering::SeqCst),
        "every accepted event reached the adapter"
    );
    assert!(matches!(bus.ingest(vec![1]), Err(BusError::ShuttingDown)));
    assert_eq!(bus.shutdown(), report, "idempotent");
}

#[test]
fn a_shutdown_past_its_deadline_is_lossy_and_says_so() {
    let (bus, adapter) = memory_bus(
        r#"{"num_shards":1,"shutdown_timeout_ms":100,"adapter_timeout_ms":5000,"batch":{"min_size":1,"max_size":1,"max_delay_ms":1}}"#,
    );
    adapter.inject([FaultKind::Stall(Duration::from_secs(3))]);
    for i in 0..10u8 {
        bus.ingest(vec![i]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    let report = bus.shutdown();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(report.shutdown_was_lossy);
    assert!(report.events_stranded >= 9, "{report:?}");
    assert!(report.events_dropped >= report.events_stranded);
}

#[test]
fn add_and_activate_are_idempotent_and_failed_activation_rolls_back_exactly() {
    let (bus, adapter) = memory_bus(&format!(r#"{{"num_shards":2,"max_shards":4,{FAST}}}"#));
    assert_eq!(bus.num_shards(), 2);
    let id = bus.add_shard().unwrap();
    assert_eq!(id, 2);
    assert_eq!(bus.num_shards(), 3);
    assert!(
        !bus.activate_shard(id).unwrap(),
        "second activation is a no-op"
    );
    assert_eq!(bus.num_shards(), 3);
    // num_shards rollback: a failed init never counted the shard.
    adapter.fail_next_init(AdapterError::transient("memory", Reason("boom".into())));
    assert!(matches!(bus.add_shard(), Err(BusError::Adapter(_))));
    assert_eq!(bus.num_shards(), 3);
    assert_eq!(bus.shard_ids(), vec![0, 1, 2]);
    bus.add_shard().unwrap();
    assert!(matches!(bus.add_shard(), Err(BusError::ScalingLimit(_))));
    assert_eq!(bus.num_shards(), 4);
}

#[test]
fn removing_a_shard_drains_it_and_the_poll_merger_uses_the_live_set() {
    let (bus, adapter) = memory_bus(
        r#"{"num_shards":3,"batch":{"min_size":100000,"max_size":100000,"max_delay_ms":60000}}"#,
    );
    for i in 0..3000u32 {
        bus.ingest(i.to_le_bytes().to_vec()).unwrap();
    }
    // Nothing is due yet (huge batches, a minute's delay): removal itself
    // must dispatch shard 1's buffered events.
    bus.remove_shard(1).unwrap();
    assert_eq!(adapter.payloads(1).len(), 1000, "drained, not dropped");
    assert_eq!(bus.shard_ids(), vec![0, 2]);
    assert!(matches!(
        bus.remove_shard(1),
        Err(BusError::UnknownShard(1))
    ));
    let id = bus.add_shard().unwrap();
    assert_eq!(id, 3, "ids are never reused");
    bus.ingest(b"after".to_vec()).unwrap();
    bus.scale_down(5).unwrap();
    assert_eq!(bus.num_shards(), 1, "stops at min_shards");
    assert_eq!(bus.stats().events_dropped, 0);
    let report = bus.shutdown();
    assert!(!report.shutdown_was_lossy);
    // Every shard that ever existed is polled: nothing became invisible.
    let events = poll_all(&bus, 500);
    assert_eq!(events.len(), 3001);
    let shards: HashSet<u16> = events.iter().map(|e| e.shard_id).collect();
    assert!(shards.contains(&1));
}

#[test]
fn poll_merger_does_not_stall_on_single_shard_filter_under_cap() {
    let (bus, _adapter) = memory_bus(&format!(r#"{{"num_shards":2,{FAST}}}"#));
    // Only a few events match, spread through many that do not.
    for i in 0..2000u32 {
        let kind = if i % 500 == 7 { "hit" } else { "miss" };
        bus.ingest(format!(r#"{{"kind":"{kind}","i":{i}}}"#).into_bytes())
            .unwrap();
    }
    bus.flush().unwrap();
    let filter =
        Filter::parse(&serde_json::json!({"field":"kind","op":"eq","value":"hit"})).unwrap();
    let mut cursor = None;
    let mut hits = 0;
    for _ in 0..100 {
        let r = bus
            .poll(&PollRequest {
                cursor: cursor.clone(),
                limit: 10,
                per_shard_limit: Some(50),
                filter: Some(filter.clone()),
                ..PollRequest::default()
            })
            .unwrap();
        hits += r.events.len();
        cursor = Some(r.next_cursor);
        if !r.has_more {
            break;
        }
    }
    assert_eq!(
        hits, 4,
        "every match found, the cursor advanced over misses"
    );
}

#[test]
fn poll_limits_truncation_and_bad_requests() {
    let (bus, _adapter) = memory_bus(&format!(r#"{{"num_shards":1,{FAST}}}"#));
    for i in 0..30u8 {
        bus.ingest(vec![i]).unwrap();
    }
    bus.flush().unwrap();
    let r = bus
        .poll(&PollRequest {
            limit: 10,
            per_shard_limit: Some(PER_SHARD_FETCH_CAP + 1),
            ..PollRequest::default()
        })
        .unwrap();
    assert_eq!(r.events.len(), 10);
    assert!(r.has_more && r.truncated_at_per_shard_cap);
    let bad = |json: &str| PollRequest::from_json(json).unwrap_err();
    assert!(matches!(
        bad(r#"{"limit":"x"}"#),
        BusError::InvalidRequest(_)
    ));
    assert!(matches!(bad(r#"{"bogus":1}"#), BusError::InvalidRequest(_)));
    for cursor in ["%%%", "eyJhIjoiMSJ9"] {
        let e = bus
            .poll(&PollRequest {
                cursor: Some(cursor.into()),
                ..PollRequest::default()
            })
            .unwrap_err();
        assert!(matches!(e, BusError::InvalidRequest(_)), "{e}");
    }
    let zero = PollRequest {
        limit: 0,
        ..PollRequest::default()
    };
    assert!(bus.poll(&zero).is_err());
    let parsed =
        PollRequest::from_json(r#"{"limit":5,"shards":[0],"filter":{"field":"a","op":"exists"}}"#)
            .unwrap();
    assert_eq!(parsed.limit, 5);
}

/// An adapter that claims more events but returns none for shard 1.
struct Stalling(MemoryAdapter);

#[async_trait]
impl Adapter for Stalling {
    async fn init(&self, shards: &[u16]) -> Result<(), AdapterError> {
        self.0.init(shards).await
    }
    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        self.0.on_batch(batch).await
    }
    async fn flush(&self) -> Result<(), AdapterError> {
        Ok(())
    }
    async fn shutdown(&self) -> Result<(), AdapterError> {
        Ok(())
    }
    async fn poll_shard(
        &self,
        shard: u16,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ShardPage, AdapterError> {
        if shard == 1 {
            return Ok(ShardPage {
                events: Vec::new(),
                has_more: true,
            });
        }
        self.0.poll_shard(shard, after, limit).await
    }
    fn name(&self) -> &'static str {
        "stalling"
    }
    async fn is_healthy(&self) -> bool {
        true
    }
}

#[test]
fn stalled_shards_are_reported() {
    let bus = EventBus::new(
        config(&format!(r#"{{"num_shards":2,{FAST}}}"#)),
        Arc::new(Stalling(MemoryAdapter::new())),
    )
    .unwrap();
    let r = bus.poll(&PollRequest::default()).unwrap();
    assert_eq!(r.stalled_shards, vec![1]);
    assert!(r.has_more);
}

#[test]
fn embedded_redex_adapter_persists_and_polls_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("net-bus-redex-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let open = || {
        let adapter = Arc::new(RedexAdapter::new(
            Redex::with_persistent_dir(&dir),
            "bus/test",
            RedexFileConfig::persistent(),
        ));
        EventBus::new(config(&format!(r#"{{"num_shards":2,{FAST}}}"#)), adapter).unwrap()
    };
    let bus = open();
    for i in 0..1000u32 {
        bus.ingest(i.to_le_bytes().to_vec()).unwrap();
    }
    let report = bus.shutdown();
    assert!(!report.shutdown_was_lossy, "{report:?}");
    drop(bus);
    let bus = open();
    let events = poll_all(&bus, 333);
    let mut got: Vec<u32> = events
        .iter()
        .map(|e| u32::from_le_bytes(e.payload.clone().try_into().unwrap()))
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    // A cursor from the first poll continues on the reopened bus.
    let first = bus
        .poll(&PollRequest {
            limit: 600,
            ..PollRequest::default()
        })
        .unwrap();
    let rest = bus
        .poll(&PollRequest {
            cursor: Some(first.next_cursor),
            limit: 10_000,
            ..PollRequest::default()
        })
        .unwrap();
    assert_eq!(first.events.len() + rest.events.len(), 1000);
    drop(bus);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn automatic_scaling_adds_a_shard_under_load_and_removes_it_when_idle() {
    let (bus, adapter) = memory_bus(
        r#"{"num_shards":1,"max_shards":3,"shard_capacity":100,"backpressure":{"mode":"fail_producer"},
            "batch":{"min_size":1,"max_size":1,"max_delay_ms":1},
            "scaling":{"scale_up_fill":0.5,"scale_down_fill":0.01,"cooldown_ms":50,"interval_ms":20,"scale_up_latency_ms":10000}}"#,
    );
    adapter.inject([FaultKind::Stall(Duration::from_millis(300))]);
    for i in 0..80u8 {
        let _ = bus.ingest(vec![i]);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while bus.num_shards() < 2 {
        assert!(Instant::now() < deadline, "never scaled up");
        std::thread::sleep(Duration::from_millis(10));
    }
    while bus.num_shards() > 1 {
        assert!(Instant::now() < deadline, "never scaled back down");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(bus.stats().events_dropped, 0);
}
