//! NetDB (COMPUTE.md §6): the §9 NetDB scenarios, the bundle bytes of
//! STORAGE.md §12 over the `cortex.json` vectors, and where this NetDB is
//! better than v0.11 (failure-atomic open, one snapshot point for both
//! models, a bundle naming a disabled model refused, fresh-log restores).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use net::cortex::*;
use net::netdb::{NetDb, NetDbBundle, NetDbError};
use net::redex::{Redex, RedexError};

const WAIT: Duration = Duration::from_secs(5);

fn temp_base(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("net-netdb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn both(redex: &Redex) -> NetDb {
    NetDb::builder(redex)
        .origin(7)
        .with_tasks()
        .with_memories()
        .build()
        .unwrap()
}

fn vector(model: &str, key: &str) -> serde_json::Value {
    let text = std::fs::read_to_string("tests/vectors/cortex.json").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc[model]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with(key))
        .unwrap()
        .1
        .clone()
}

#[test]
fn both_one_or_neither_model() {
    let redex = Redex::new();
    let db = both(&redex);
    assert!(db.tasks().is_ok() && db.memories().is_ok());
    db.close().unwrap();

    let redex = Redex::new();
    let tasks_only = NetDb::builder(&redex).with_tasks().build().unwrap();
    assert!(tasks_only.try_tasks().is_some());
    assert!(tasks_only.try_memories().is_none());
    // The disabled accessor is an error naming the model, not a panic.
    let err = tasks_only.memories().unwrap_err();
    assert!(
        matches!(err, NetDbError::ModelNotIncluded("memories")),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "netdb: the memories model is not enabled on this NetDB (enable it on the builder)"
    );

    let neither = NetDb::builder(&redex).build().unwrap();
    assert!(neither.try_tasks().is_none() && neither.try_memories().is_none());
    assert!(matches!(
        neither.tasks(),
        Err(NetDbError::ModelNotIncluded("tasks"))
    ));
    assert_eq!(neither.snapshot().unwrap(), NetDbBundle::default());
    assert!(neither.is_running());
}

#[test]
fn crud_and_filters_through_the_models() {
    let redex = Redex::new();
    let db = both(&redex);
    let tasks = db.tasks().unwrap();
    tasks.create_at(1, "Write the spec", 10).unwrap();
    tasks.create_at(2, "review", 20).unwrap();
    tasks.rename_at(2, "Review the SPEC", 30).unwrap();
    tasks.complete_at(1, 40).unwrap();
    tasks.create_at(3, "temp", 50).unwrap();
    let seq = tasks.delete(3).unwrap();
    assert!(tasks.wait_for_seq(seq, WAIT));
    assert_eq!(tasks.find_unique(2).unwrap().title, "Review the SPEC");
    let done = tasks.find_many(&TaskQuery::new().status(TaskStatus::Completed));
    assert_eq!(done.iter().map(|t| t.id).collect::<Vec<_>>(), [1]);
    let spec = TaskQuery::new()
        .title_contains("the ")
        .order_by(TaskOrder::UpdatedDesc);
    assert_eq!(
        tasks
            .find_many(&spec)
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(tasks.count_where(&TaskQuery::new()), 2);
    assert!(!tasks.exists_where(&TaskQuery::new().ids([3])));

    let memories = db.memories().unwrap();
    memories
        .store_at(7, "the sky is blue", &["fact", "color"], "obs", 1)
        .unwrap();
    memories.store_at(8, "scratch", &[], "", 2).unwrap();
    memories.pin(7).unwrap();
    let seq = memories.retag(8, &["draft"]).unwrap();
    assert!(memories.wait_for_seq(seq, WAIT));
    let pinned = memories.find_many(&MemoryQuery::new().pinned(true));
    assert_eq!(pinned.iter().map(|m| m.id).collect::<Vec<_>>(), [7]);
    assert_eq!(
        memories.count_where(&MemoryQuery::new().tags_any(["draft", "color"])),
        2
    );
    assert!(memories.exists_where(&MemoryQuery::new().source("obs")));
    db.close().unwrap();
}

#[test]
fn snapshot_encode_decode_restore_into_a_fresh_redex() {
    let redex = Redex::new();
    let db = both(&redex);
    db.tasks().unwrap().create_at(1, "write", 5).unwrap();
    db.tasks().unwrap().complete_at(1, 6).unwrap();
    db.memories()
        .unwrap()
        .store_at(9, "note", &["a"], "me", 7)
        .unwrap();
    // No wait: the snapshot itself includes every write that returned.
    let bytes = db.snapshot().unwrap().encode();
    let app_seq = db.tasks().unwrap().app_seq();
    db.close().unwrap();

    let fresh = Redex::new();
    let restored = NetDb::builder(&fresh)
        .origin(7)
        .with_tasks()
        .with_memories()
        .build_from_bundle(&bytes)
        .unwrap();
    let tasks = restored.tasks().unwrap();
    let task = tasks.find_unique(1).unwrap();
    assert_eq!((task.status, task.updated_ns), (TaskStatus::Completed, 6));
    assert_eq!(
        restored.memories().unwrap().find_unique(9).unwrap().tags,
        ["a"]
    );
    // The writer's app seq carries over: no duplicate after a restore.
    assert_eq!(tasks.app_seq(), app_seq);
    // The fresh log's own events fold on top of the bundle (v0.11 would
    // wait for seqs past the bundle's).
    let seq = tasks.create_at(2, "after", 8).unwrap();
    assert_eq!(seq, 0);
    assert!(tasks.wait_for_seq(seq, WAIT));
    assert_eq!(tasks.count_where(&TaskQuery::new()), 2);
    restored.close().unwrap();
}

#[test]
fn restore_into_the_same_log_replays_what_came_after() {
    let base = temp_base("same-log");
    let redex = Redex::with_persistent_dir(&base);
    let db = NetDb::builder(&redex)
        .persistent(true)
        .with_tasks()
        .build()
        .unwrap();
    db.tasks().unwrap().create(1, "one").unwrap();
    let bundle = db.snapshot().unwrap();
    assert_eq!(bundle.tasks.as_ref().unwrap().last_seq, Some(0));
    db.tasks().unwrap().create(2, "two").unwrap();
    db.close().unwrap();

    let restored = NetDb::builder(&redex)
        .persistent(true)
        .with_tasks()
        .build_from(bundle)
        .unwrap();
    // Opening waited until the fold replayed the log after the bundle.
    assert_eq!(restored.tasks().unwrap().count_where(&TaskQuery::new()), 2);
    restored.close().unwrap();
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn an_empty_bundle_opens_fresh_models() {
    let redex = Redex::new();
    let db = NetDb::builder(&redex)
        .with_tasks()
        .with_memories()
        .build_from_bundle(&NetDbBundle::default().encode())
        .unwrap();
    assert_eq!(db.tasks().unwrap().count_where(&TaskQuery::new()), 0);
    let seq = db.memories().unwrap().store(1, "x", &[], "").unwrap();
    assert!(db.memories().unwrap().wait_for_seq(seq, WAIT));
    db.close().unwrap();
}

#[test]
fn a_bundle_with_a_model_not_enabled_is_refused() {
    let redex = Redex::new();
    let db = both(&redex);
    db.memories().unwrap().store(1, "x", &[], "").unwrap();
    let bytes = db.snapshot().unwrap().encode();
    db.close().unwrap();

    let fresh = Redex::new();
    let err = NetDb::builder(&fresh)
        .with_tasks()
        .build_from_bundle(&bytes)
        .unwrap_err();
    assert!(
        matches!(err, NetDbError::ModelNotIncluded("memories")),
        "{err}"
    );
    // Nothing was opened: the tasks channel is free for a model of its own.
    let tasks = TasksAdapter::open(&fresh, 1, ModelConfig::default()).unwrap();
    assert_eq!(tasks.file().next_seq(), 0);
}

#[test]
fn close_is_idempotent_and_writes_after_it_fail() {
    let redex = Redex::new();
    let db = both(&redex);
    db.close().unwrap();
    db.close().unwrap();
    assert!(!db.is_running());
    assert!(db.tasks().unwrap().create(1, "late").is_err());
}

#[test]
fn persistent_without_a_directory_is_an_error() {
    let redex = Redex::new();
    let err = NetDb::builder(&redex)
        .persistent(true)
        .with_tasks()
        .build()
        .unwrap_err();
    assert!(matches!(err, NetDbError::NoPersistentDir), "{err}");
}

#[test]
fn a_corrupt_bundle_is_a_snapshot_error() {
    let redex = Redex::new();
    for bad in [&b""[..], b"\x02", b"\x01\x05abc", b"\x00\x00\x00"] {
        let err = NetDb::builder(&redex)
            .with_tasks()
            .with_memories()
            .build_from_bundle(bad)
            .unwrap_err();
        assert!(
            matches!(err, NetDbError::Cortex(CortexError::Snapshot(_))),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn a_failing_restore_leaves_no_orphan() {
    // Tasks restores, memories' snapshot bytes are garbage: the opened
    // tasks model (and its persistent file's lock) must be released.
    let base = temp_base("orphan");
    let redex = Redex::with_persistent_dir(&base);
    let good = {
        let db = NetDb::builder(&redex)
            .persistent(true)
            .with_tasks()
            .build()
            .unwrap();
        db.tasks().unwrap().create(1, "kept").unwrap();
        let bundle = db.snapshot().unwrap();
        db.close().unwrap();
        bundle
    };
    let bad = NetDbBundle {
        tasks: good.tasks.clone(),
        memories: Some(ModelSnapshot {
            bytes: vec![0xff; 3],
            last_seq: None,
        }),
    };
    let err = NetDb::builder(&redex)
        .persistent(true)
        .with_tasks()
        .with_memories()
        .build_from_bundle(&bad.encode())
        .unwrap_err();
    assert!(
        matches!(err, NetDbError::Cortex(CortexError::Snapshot(_))),
        "{err}"
    );
    // The same redex opens again at once, from another manager too (the
    // channel directory's lock was released).
    let other = Redex::with_persistent_dir(&base);
    let db = NetDb::builder(&other)
        .persistent(true)
        .with_tasks()
        .with_memories()
        .build()
        .unwrap();
    assert_eq!(db.tasks().unwrap().find_unique(1).unwrap().title, "kept");
    db.close().unwrap();
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_memories_open_failure_closes_the_opened_tasks() {
    let base = temp_base("atomic");
    let redex = Redex::with_persistent_dir(&base);
    // Another writer holds the memories channel.
    let holder = Redex::with_persistent_dir(&base);
    let held = MemoriesAdapter::open(&holder, 1, ModelConfig::persistent()).unwrap();
    let err = NetDb::builder(&redex)
        .persistent(true)
        .with_tasks()
        .with_memories()
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            NetDbError::Cortex(CortexError::Redex(RedexError::Locked(_)))
        ),
        "{err}"
    );
    held.close().unwrap();
    // Tasks was closed before the error returned: its directory is free.
    let tasks = TasksAdapter::open(&holder, 1, ModelConfig::persistent()).unwrap();
    tasks.close().unwrap();
    let db = NetDb::builder(&redex)
        .persistent(true)
        .with_tasks()
        .with_memories()
        .build()
        .unwrap();
    db.close().unwrap();
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn alternating_and_concurrent_ingests_never_duplicate_app_seq() {
    let redex = Redex::new();
    let db = Arc::new(both(&redex));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let id = t * 1000 + i;
                    db.tasks().unwrap().create(id, "t").unwrap();
                    db.memories().unwrap().store(id, "m", &[], "").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for file in [db.tasks().unwrap().file(), db.memories().unwrap().file()] {
        let mut seen: Vec<u64> = file
            .read_range(..)
            .unwrap()
            .iter()
            .map(|(_, record)| EventMeta::parse_record(record).unwrap().0.seq_or_ts)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..400).collect::<Vec<_>>());
    }
}

#[test]
fn a_bundle_is_one_point_for_both_models() {
    // A writer stores memory k only after task k returned; every bundle
    // taken meanwhile must hold task k whenever it holds memory k, and both
    // parts must be exactly at their logs' tails of one instant.
    let redex = Redex::new();
    let db = Arc::new(both(&redex));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) && k < 20_000 {
                db.tasks().unwrap().create(k, "t").unwrap();
                db.memories().unwrap().store(k, "m", &[], "").unwrap();
                k += 1;
            }
        })
    };
    for _ in 0..50 {
        let bundle = db.snapshot().unwrap();
        let (tasks, tasks_app) = bundle
            .tasks
            .as_ref()
            .unwrap()
            .decode_state::<TasksState>()
            .unwrap();
        let (memories, _) = bundle
            .memories
            .as_ref()
            .unwrap()
            .decode_state::<MemoriesState>()
            .unwrap();
        let task_ids = tasks.tasks.len() as u64;
        let memory_ids = memories.memories.len() as u64;
        // Memory k implies task k; task k+1 can only be there with memory k.
        assert!(
            memory_ids == task_ids || memory_ids + 1 == task_ids,
            "{task_ids} tasks, {memory_ids} memories"
        );
        assert!(
            memories
                .memories
                .keys()
                .all(|k| tasks.tasks.contains_key(k))
        );
        // Each part is exactly at its last_seq: one event per row here.
        assert_eq!(
            bundle.tasks.as_ref().unwrap().last_seq,
            task_ids.checked_sub(1)
        );
        assert_eq!(
            bundle.memories.as_ref().unwrap().last_seq,
            memory_ids.checked_sub(1)
        );
        assert!(tasks_app >= task_ids);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // Quiet: the bundle has every write.
    let bundle = db.snapshot().unwrap();
    let n = db.tasks().unwrap().file().next_seq();
    assert_eq!(bundle.tasks.unwrap().last_seq, n.checked_sub(1));
    db.close().unwrap();
}

#[test]
fn bundle_bytes_over_the_cortex_vectors() {
    let snapshot = |model: &str| ModelSnapshot {
        bytes: hex::decode(vector(model, "snapshot_bytes").as_str().unwrap()).unwrap(),
        last_seq: vector(model, "snapshot_last_seq").as_u64(),
    };
    let bundle = NetDbBundle {
        tasks: Some(snapshot("tasks")),
        memories: Some(snapshot("memories")),
    };
    let bytes = bundle.encode();
    // Option tag, bytes (varint length), Option<u64> last_seq; twice.
    let tasks = &bundle.tasks.as_ref().unwrap().bytes;
    let mut expected = vec![1, tasks.len() as u8];
    expected.extend_from_slice(tasks);
    expected.extend_from_slice(&[1, 4, 1]);
    assert_eq!(&bytes[..expected.len()], &expected[..]);
    assert_eq!(NetDbBundle::decode(&bytes).unwrap(), bundle);

    // Restored into a fresh redex, the vectors' final states come back.
    let redex = Redex::new();
    let db = NetDb::builder(&redex)
        .origin(0x0102030405060708)
        .with_tasks()
        .with_memories()
        .build_from_bundle(&bytes)
        .unwrap();
    let task = db.tasks().unwrap().find_unique(1).unwrap();
    assert_eq!(
        format!("Some({task:?})"),
        vector("tasks", "final_task_1").as_str().unwrap()
    );
    assert_eq!(db.tasks().unwrap().app_seq(), 5);
    let memory = db.memories().unwrap().find_unique(7).unwrap();
    assert_eq!(
        (memory.tags, memory.pinned),
        (vec!["fact".to_owned()], false)
    );
    assert_eq!(db.memories().unwrap().app_seq(), 6);
    db.close().unwrap();
}

#[test]
fn a_log_that_does_not_replay_fails_the_open() {
    let redex = Redex::new();
    let file = redex.open_file(TASKS_CHANNEL, Default::default()).unwrap();
    file.append(b"not a cortex record").unwrap();
    let err = NetDb::builder(&redex)
        .with_tasks()
        .with_memories()
        .build()
        .unwrap_err();
    assert!(
        matches!(err, NetDbError::Replay { model: "tasks", .. }),
        "{err}"
    );
    // Under log_and_continue the bad record is skipped instead.
    let db = NetDb::builder(&redex)
        .with_tasks()
        .policy(ErrorPolicy::LogAndContinue)
        .build()
        .unwrap();
    assert!(db.is_running());
    db.close().unwrap();
}
