//! The CortEX fold driver and models: watermarks under Stop and
//! LogAndContinue, the change broadcast, snapshot/restore re-attempting a
//! skipped event, corruption caught and reported, caught panics, concurrent
//! origins, watches under a burst, and a 100,000-event replay.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use net::cortex::broadcast::Recv;
use net::cortex::*;
use net::redex::{Redex, RedexFile, RedexFileConfig};

const WAIT: Duration = Duration::from_secs(10);

fn temp_base(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("net-cortex-fold-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn heap_config(policy: ErrorPolicy) -> ModelConfig {
    ModelConfig {
        file: RedexFileConfig::heap(),
        fold: FoldConfig {
            policy,
            ..Default::default()
        },
    }
}

/// A record with a wrong checksum, as a producer bug or a bit-flip would leave.
fn corrupt_record() -> Vec<u8> {
    let mut record = EventMeta::new(TASK_CREATED, 9, 0).encode_record(b"\x05\x03bad\x00");
    record[20] ^= 0xff;
    record
}

fn drain(rx: &mut net::cortex::broadcast::Receiver<u64>) -> Vec<Recv<u64>> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Some(Duration::from_millis(200))) {
            Recv::Timeout => return seen,
            Recv::Closed => {
                seen.push(Recv::Closed);
                return seen;
            }
            other => seen.push(other),
        }
    }
}

#[test]
fn stop_policy_halts_at_the_failing_event() {
    let redex = Redex::new();
    let tasks = TasksAdapter::open(&redex, 1, heap_config(ErrorPolicy::Stop)).unwrap();
    let mut changes = tasks.adapter().changes();
    tasks.create(1, "one").unwrap();
    tasks.create(2, "two").unwrap();
    let bad = tasks.file().append(&corrupt_record()).unwrap();
    assert_eq!(bad, 2);
    // The writer notices the halt only once the fold reaches the bad record.
    let started = Instant::now();
    assert!(
        !tasks.wait_for_seq(bad, WAIT),
        "a halted fold must not report the failing seq as folded"
    );
    assert!(started.elapsed() < WAIT, "wait_for_seq hung past the halt");
    assert!(!tasks.adapter().is_running());
    assert_eq!(tasks.adapter().applied_through_seq(), Some(1));
    assert_eq!(tasks.adapter().folded_through_seq(), Some(1));
    assert!(matches!(
        tasks.adapter().last_error(),
        Some(FoldError::Corrupt { seq: 2, .. })
    ));
    // Later events are not applied; writes are refused.
    assert!(matches!(
        tasks.create(3, "three"),
        Err(CortexError::NotRunning)
    ));
    assert_eq!(tasks.find_many(&TaskQuery::new()).len(), 2);
    // Changes: the successful seqs only, then the end. Never the failing seq.
    assert_eq!(
        drain(&mut changes),
        vec![Recv::Value(0), Recv::Value(1), Recv::Closed]
    );
    // wait_for_seq on a halted fold returns at once, whatever the timeout.
    let started = Instant::now();
    assert!(!tasks.wait_for_seq(50, Duration::from_secs(30)));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn log_and_continue_skips_but_the_applied_watermark_stays() {
    let redex = Redex::new();
    let tasks = TasksAdapter::open(&redex, 1, heap_config(ErrorPolicy::LogAndContinue)).unwrap();
    let mut changes = tasks.adapter().changes();
    tasks.create(1, "one").unwrap();
    tasks.create(2, "two").unwrap();
    tasks.file().append(&corrupt_record()).unwrap();
    let last = tasks.create(3, "three").unwrap();
    assert!(tasks.wait_for_seq(last, WAIT));
    assert!(tasks.adapter().is_running());
    assert_eq!(tasks.adapter().folded_through_seq(), Some(3));
    assert_eq!(
        tasks.adapter().applied_through_seq(),
        Some(1),
        "strict prefix stops at the skip"
    );
    assert_eq!(tasks.adapter().error_count(), 1);
    assert_eq!(tasks.find_many(&TaskQuery::new()).len(), 3);
    assert_eq!(
        drain(&mut changes),
        vec![Recv::Value(0), Recv::Value(1), Recv::Value(3)]
    );
    // The snapshot records the strict prefix.
    assert_eq!(tasks.snapshot().unwrap().last_seq, Some(1));
}

/// A fold over plain seqs that fails the first attempt at `fail_once`, and
/// can be told to panic at `panic_at`.
struct Flaky {
    fail_once: Option<u64>,
    failed: AtomicBool,
    panic_at: Option<u64>,
}

impl Fold for Flaky {
    type State = Vec<u64>;

    fn apply(&self, state: &mut Vec<u64>, seq: u64, _record: &[u8]) -> Result<(), FoldError> {
        if self.panic_at == Some(seq) {
            panic!("fold bug at {seq}");
        }
        if self.fail_once == Some(seq) && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(FoldError::Rejected {
                seq,
                reason: "transient".into(),
            });
        }
        state.push(seq);
        Ok(())
    }
}

fn flaky(fail_once: Option<u64>, panic_at: Option<u64>) -> Flaky {
    Flaky {
        fail_once,
        failed: AtomicBool::new(false),
        panic_at,
    }
}

fn file_with(n: u64) -> RedexFile {
    let file = RedexFile::new_heap("fold/flaky", RedexFileConfig::heap()).unwrap();
    for i in 0..n {
        file.append(&i.to_le_bytes()).unwrap();
    }
    file
}

/// The state and `applied_through_seq` are published as one: a reader
/// racing the fold through many batches never sees an event in the state
/// that the watermark does not claim (a snapshot taken then would be
/// restored with that event applied twice), nor the reverse.
#[test]
fn with_state_never_sees_state_ahead_of_the_watermark() {
    const EVENTS: u64 = 50_000;
    let file = RedexFile::new_heap("fold/race", RedexFileConfig::heap()).unwrap();
    let adapter = Arc::new(CortexAdapter::start(
        file.clone(),
        flaky(None, None),
        Vec::new(),
        None,
        FoldConfig::default(),
    ));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (adapter, done) = (adapter.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !done.load(Ordering::Acquire) {
                let (len, applied) = adapter.with_state(|s, a| (s.len() as u64, a));
                assert_eq!(
                    len,
                    applied.map_or(0, |a| a + 1),
                    "state holds {len} events but applied_through_seq is {applied:?}"
                );
                reads += 1;
            }
            reads
        })
    };
    for chunk in 0..EVENTS / 100 {
        let payloads: Vec<[u8; 8]> = (0..100).map(|i| (chunk * 100 + i).to_le_bytes()).collect();
        file.append_batch(&payloads).unwrap();
    }
    assert!(adapter.wait_for_seq(EVENTS - 1, WAIT));
    done.store(true, Ordering::Release);
    let reads = reader.join().expect("the reader saw an inconsistent pair");
    assert!(reads > 0);
    assert_eq!(
        adapter.with_state(|s, a| (s.len() as u64, a)),
        (EVENTS, Some(EVENTS - 1))
    );
}

#[test]
fn restore_re_attempts_the_skipped_event() {
    let file = file_with(6);
    let config = FoldConfig {
        policy: ErrorPolicy::LogAndContinue,
        ..Default::default()
    };
    let adapter =
        CortexAdapter::start(file.clone(), flaky(Some(2), None), Vec::new(), None, config);
    assert!(adapter.wait_for_seq(5, WAIT));
    assert_eq!(
        *adapter.state(),
        vec![0, 1, 3, 4, 5],
        "seq 2 failed and was skipped"
    );
    // Snapshot: the state and the strict-prefix watermark, read together.
    let (state, applied) = adapter.with_state(|s, a| (s.clone(), a));
    assert_eq!(applied, Some(1));
    adapter.stop();
    // Restore: replay resumes after the watermark, so seq 2 is tried again
    // (and this time it folds).
    let restored = CortexAdapter::start(
        file,
        flaky(None, None),
        state,
        applied,
        FoldConfig {
            start: StartPosition::FromSeq(applied.unwrap() + 1),
            ..config
        },
    );
    assert!(restored.wait_for_seq(5, WAIT));
    assert!(
        restored.state().contains(&2),
        "the re-attempted event is in the restored state"
    );
    assert_eq!(restored.applied_through_seq(), Some(5));
}

#[test]
fn a_fold_panic_is_caught_and_treated_as_a_fold_error() {
    for policy in [ErrorPolicy::Stop, ErrorPolicy::LogAndContinue] {
        let file = file_with(5);
        let config = FoldConfig {
            policy,
            ..Default::default()
        };
        let adapter = CortexAdapter::start(file, flaky(None, Some(2)), Vec::new(), None, config);
        let reached = adapter.wait_for_seq(4, Duration::from_secs(5));
        assert!(
            matches!(
                adapter.last_error(),
                Some(FoldError::Panicked { seq: 2, .. })
            ),
            "{policy:?}"
        );
        match policy {
            ErrorPolicy::Stop => {
                assert!(!reached);
                assert!(!adapter.is_running());
                assert_eq!(*adapter.state(), vec![0, 1]);
            }
            _ => {
                assert!(reached);
                assert_eq!(*adapter.state(), vec![0, 1, 3, 4]);
            }
        }
    }
}

#[test]
fn snapshot_restore_of_a_model_after_a_skipped_event() {
    let redex = Redex::new();
    let config = heap_config(ErrorPolicy::LogAndContinue);
    let tasks = TasksAdapter::open(&redex, 1, config).unwrap();
    tasks.create(1, "one").unwrap();
    tasks.file().append(&corrupt_record()).unwrap();
    let last = tasks.create(2, "two").unwrap();
    assert!(tasks.wait_for_seq(last, WAIT));
    let snapshot = tasks.snapshot().unwrap();
    assert_eq!(snapshot.last_seq, Some(0));
    tasks.adapter().stop();
    let restored = TasksAdapter::restore(&redex, 1, config, &snapshot).unwrap();
    assert!(restored.wait_for_seq(last, WAIT));
    let ids: Vec<u64> = restored
        .find_many(&TaskQuery::new())
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, vec![1, 2]);
    // The corrupt record was re-attempted (and failed again, reported).
    assert_eq!(restored.adapter().error_count(), 1);
    assert_eq!(restored.app_seq(), 2);
}

#[test]
fn a_bit_flip_on_disk_is_caught_and_reported_not_folded() {
    let base = temp_base("bitflip");
    let redex = Redex::with_persistent_dir(&base);
    let tasks = TasksAdapter::open(&redex, 1, ModelConfig::persistent()).unwrap();
    for id in 0..3 {
        tasks.create(id, "task").unwrap();
    }
    tasks.close().unwrap();
    drop(tasks);
    // Flip the dispatch byte of record 1 (Created -> Renamed), and repair the
    // RedEX index checksum so only CortEX's header-covering checksum can tell.
    let dir = base.join("cortex/tasks/v0000000001");
    let mut dat = std::fs::read(dir.join("dat")).unwrap();
    let mut idx = std::fs::read(dir.join("idx")).unwrap();
    let offset = u32::from_le_bytes(idx[28..32].try_into().unwrap()) as usize;
    let len = u32::from_le_bytes(idx[32..36].try_into().unwrap()) as usize;
    dat[offset] ^= TASK_CREATED ^ TASK_RENAMED;
    let checksum = net::redex::format::checksum28(&dat[offset..offset + len]);
    idx[36..40].copy_from_slice(&checksum.to_le_bytes());
    std::fs::write(dir.join("dat"), &dat).unwrap();
    std::fs::write(dir.join("idx"), &idx).unwrap();

    let tasks = TasksAdapter::open(&redex, 1, ModelConfig::persistent()).unwrap();
    assert!(!tasks.wait_for_seq(2, Duration::from_secs(5)));
    assert!(matches!(
        tasks.adapter().last_error(),
        Some(FoldError::Corrupt { seq: 1, .. })
    ));
    assert_eq!(
        tasks.find_many(&TaskQuery::new()).len(),
        1,
        "nothing at or after the flip was folded"
    );
    tasks.close().unwrap();

    // A flip RedEX's own checksum catches: the record is dropped at recovery
    // and the fold reports the hole instead of folding past it silently.
    dat[offset] ^= 0x40;
    std::fs::write(dir.join("dat"), &dat).unwrap();
    let tasks = TasksAdapter::open(&redex, 1, ModelConfig::persistent()).unwrap();
    assert!(!tasks.wait_for_seq(2, Duration::from_secs(5)));
    assert!(matches!(
        tasks.adapter().last_error(),
        Some(FoldError::Gap {
            missed_from: 1,
            missed_to: 2
        })
    ));
    tasks.close().unwrap();
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn concurrent_writers_with_different_origins_recover_after_reopen() {
    let base = temp_base("origins");
    let redex = Redex::with_persistent_dir(&base);
    let a = Arc::new(TasksAdapter::open(&redex, 0xaaaa, ModelConfig::persistent()).unwrap());
    let b = Arc::new(TasksAdapter::open(&redex, 0xbbbb, ModelConfig::persistent()).unwrap());
    let writers: Vec<_> = [(a.clone(), 0u64), (b.clone(), 10_000u64)]
        .into_iter()
        .map(|(adapter, base_id)| {
            std::thread::spawn(move || {
                let mut last = 0;
                for i in 0..500 {
                    last = adapter.create(base_id + i, &format!("task {i}")).unwrap();
                    if i % 50 == 0 {
                        adapter.complete(base_id + i).unwrap();
                    }
                }
                last
            })
        })
        .collect();
    let last = writers
        .into_iter()
        .map(|w| w.join().unwrap())
        .max()
        .unwrap();
    assert!(a.wait_for_seq(last, WAIT) && b.wait_for_seq(last, WAIT));
    let before = a.find_many(&TaskQuery::new());
    assert_eq!(
        before,
        b.find_many(&TaskQuery::new()),
        "both folds see the same interleaving"
    );
    assert_eq!(before.len(), 1000);
    a.close().unwrap();
    drop((a, b));

    let a = TasksAdapter::open(&redex, 0xaaaa, ModelConfig::persistent()).unwrap();
    let b = TasksAdapter::open(&redex, 0xbbbb, ModelConfig::persistent()).unwrap();
    assert!(a.wait_for_seq(last, WAIT) && b.wait_for_seq(last, WAIT));
    assert_eq!(a.find_many(&TaskQuery::new()), before);
    assert_eq!(
        (a.app_seq(), b.app_seq()),
        (510, 510),
        "each origin recovers its own app sequence"
    );
    a.close().unwrap();
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn a_watch_under_a_burst_sees_every_change_or_a_lag() {
    // A fast watcher sees the final state; a slow one with a tiny change
    // buffer is told it lagged, then still sees the final state.
    for (capacity, slow) in [(4096usize, false), (8, true)] {
        let redex = Redex::new();
        let config = ModelConfig {
            file: RedexFileConfig::heap(),
            fold: FoldConfig {
                changes_capacity: capacity,
                ..Default::default()
            },
        };
        let tasks = TasksAdapter::open(&redex, 1, config).unwrap();
        let mut watch = tasks.watch(TaskQuery::new().status(TaskStatus::Pending));
        assert_eq!(
            watch.next_timeout(Some(WAIT)),
            WatchPoll::Event(WatchEvent::Update(vec![]))
        );
        let mut last = 0;
        for id in 0..2_000 {
            last = tasks.create(id, "burst").unwrap();
        }
        assert!(tasks.wait_for_seq(last, WAIT));
        let mut lagged = 0u64;
        let mut final_ids = BTreeSet::new();
        loop {
            if slow {
                std::thread::sleep(Duration::from_millis(1));
            }
            match watch.next_timeout(Some(Duration::from_millis(300))) {
                WatchPoll::Event(WatchEvent::Update(tasks)) => {
                    final_ids = tasks.iter().map(|t| t.id).collect()
                }
                WatchPoll::Event(WatchEvent::Lagged(n)) => lagged += n,
                WatchPoll::Timeout => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            final_ids.len(),
            2_000,
            "the watch converges on every change"
        );
        if slow {
            assert!(lagged > 0, "a slow watcher must be told it lagged");
        }
    }
}

#[test]
fn snapshot_and_watch_loses_nothing_in_between() {
    let redex = Redex::new();
    let tasks = TasksAdapter::open(&redex, 1, heap_config(ErrorPolicy::Stop)).unwrap();
    let seq = tasks.create(1, "before").unwrap();
    assert!(tasks.wait_for_seq(seq, WAIT));
    let (current, mut watch) = tasks.snapshot_and_watch(TaskQuery::new());
    assert_eq!(current.len(), 1);
    tasks.create(2, "after").unwrap();
    match watch.next_timeout(Some(WAIT)) {
        WatchPoll::Event(WatchEvent::Update(rows)) => assert_eq!(rows.len(), 2),
        other => panic!("{other:?}"),
    }
    // A closer ends a blocked watch.
    let closer = watch.closer();
    let waiter = std::thread::spawn(move || watch.next_timeout(None));
    wait_until(|| closer.waiting() == 1);
    closer.close();
    assert_eq!(waiter.join().unwrap(), WatchPoll::End);
}

#[test]
fn queries() {
    let redex = Redex::new();
    let tasks = TasksAdapter::open(&redex, 1, heap_config(ErrorPolicy::Stop)).unwrap();
    for id in 0..10u64 {
        tasks
            .create_at(id, &format!("task {}", 9 - id), 1000 + id)
            .unwrap();
    }
    tasks.complete_at(3, 2000).unwrap();
    let last = tasks.rename_at(4, "special", 3000).unwrap();
    assert!(tasks.wait_for_seq(last, WAIT));
    let ids = |q: &TaskQuery| tasks.find_many(q).iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(&TaskQuery::new().limit(3)), vec![0, 1, 2]);
    assert_eq!(
        ids(&TaskQuery::new()
            .order_by(TaskOrder::IdDesc)
            .offset(2)
            .limit(2)),
        vec![7, 6]
    );
    assert_eq!(
        ids(&TaskQuery::new().status(TaskStatus::Completed)),
        vec![3]
    );
    assert_eq!(ids(&TaskQuery::new().title_contains("special")), vec![4]);
    // Case-insensitive (COMPUTE.md §6), ASCII and beyond.
    assert_eq!(ids(&TaskQuery::new().title_contains("SPECIAL")), vec![4]);
    assert_eq!(ids(&TaskQuery::new().title_contains("Ecia")), vec![4]);
    assert_eq!(
        ids(&TaskQuery::new().order_by(TaskOrder::UpdatedDesc).limit(2)),
        vec![4, 3]
    );
    assert_eq!(
        ids(&TaskQuery::new().order_by(TaskOrder::TitleAsc).limit(2)),
        vec![4, 9]
    );
    assert_eq!(
        ids(&TaskQuery::new().created_between(Some(1005), Some(1007))),
        vec![5, 6]
    );
    assert_eq!(ids(&TaskQuery::new().ids([8, 2, 77])), vec![2, 8]);
    assert_eq!(
        tasks.count_where(&TaskQuery::new().status(TaskStatus::Pending)),
        9
    );
    assert!(tasks.exists_where(&TaskQuery::new().title_contains("task 0")));
    assert!(!tasks.exists_where(&TaskQuery::new().title_contains("nope")));
    let last = tasks.rename_at(5, "Größe ÄNDERN", 3001).unwrap();
    assert!(tasks.wait_for_seq(last, WAIT));
    assert_eq!(ids(&TaskQuery::new().title_contains("größe änd")), vec![5]);
    assert!(ids(&TaskQuery::new().title_contains("grösse")).is_empty());

    let memories = MemoriesAdapter::open(&redex, 1, heap_config(ErrorPolicy::Stop)).unwrap();
    memories
        .store(1, "cats purr", &["animal", "fact"], "book")
        .unwrap();
    memories.store(2, "dogs bark", &["animal"], "walk").unwrap();
    memories
        .store(3, "pi is 3.14", &["math", "fact"], "book")
        .unwrap();
    let last = memories.pin(3).unwrap();
    assert!(memories.wait_for_seq(last, WAIT));
    let mids = |q: &MemoryQuery| {
        memories
            .find_many(q)
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        mids(&MemoryQuery::new().tags_any(["math", "animal"])),
        vec![1, 2, 3]
    );
    assert_eq!(
        mids(&MemoryQuery::new().tags_all(["animal", "fact"])),
        vec![1]
    );
    assert_eq!(
        mids(&MemoryQuery::new().source("book").pinned(false)),
        vec![1]
    );
    assert_eq!(mids(&MemoryQuery::new().content_contains("bark")), vec![2]);
    assert_eq!(
        mids(
            &MemoryQuery::new()
                .order_by(MemoryOrder::UpdatedDesc)
                .limit(1)
        ),
        vec![3]
    );
    assert_eq!(memories.count_where(&MemoryQuery::new().pinned(true)), 1);
}

#[test]
fn replay_of_100_000_events() {
    let base = temp_base("replay");
    let redex = Redex::with_persistent_dir(&base);
    let file = redex
        .open_file(TASKS_CHANNEL, RedexFileConfig::persistent())
        .unwrap();
    // Write the records directly in batches (the models write one at a time).
    let records: Vec<Vec<u8>> = (0..100_000u64)
        .map(|id| {
            let tail = postcard_task_created(id);
            EventMeta::new(TASK_CREATED, 7, id).encode_record(&tail)
        })
        .collect();
    for chunk in records.chunks(10_000) {
        file.append_batch(chunk).unwrap();
    }
    file.close().unwrap();
    drop(file);

    let started = Instant::now();
    let tasks = TasksAdapter::open(&redex, 7, ModelConfig::persistent()).unwrap();
    assert!(tasks.wait_for_seq(99_999, Duration::from_secs(60)));
    let elapsed = started.elapsed();
    assert_eq!(tasks.count_where(&TaskQuery::new()), 100_000);
    assert_eq!(tasks.app_seq(), 100_000);
    assert_eq!(tasks.adapter().applied_through_seq(), Some(99_999));
    eprintln!("replayed 100,000 events in {elapsed:?}");
    tasks.close().unwrap();
    let _ = std::fs::remove_dir_all(base);
}

/// postcard(TaskCreated{id, "t", 1}), written by hand from STORAGE.md §13.
fn postcard_task_created(id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut v = id;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&[1, b't', 1]);
    out
}

/// Polls `condition` until it holds (panics after a minute).
fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "condition never held");
        std::thread::yield_now();
    }
}
