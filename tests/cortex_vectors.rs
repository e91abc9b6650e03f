//! CortEX against Net v0.11's vectors (tests/vectors/eventmeta.json,
//! cortex.json): EventMeta bytes and both checksums; the tasks and memories
//! records written by the reference, reproduced byte for byte, folded to the
//! documented state, and snapshotted to the documented bytes.

use std::fs;
use std::time::Duration;

use net::cortex::*;
use net::redex::Redex;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn num(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap(),
        other => panic!("not a number: {other}"),
    }
}

fn hex_of(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("{key}"))).unwrap()
}

fn temp_base(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("net-cortex-vec-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[test]
fn event_meta_vectors() {
    let doc = load("eventmeta.json");
    for v in doc["vectors"].as_array().unwrap() {
        let tail = hex_of(v, "tail");
        let meta = EventMeta {
            dispatch: num(&v["dispatch"]) as u8,
            flags: num(&v["flags"]) as u8,
            origin_hash: num(&v["origin_hash"]),
            seq_or_ts: num(&v["seq_or_ts"]),
            checksum: 0,
        };
        assert_eq!(
            meta.to_bytes().to_vec(),
            hex_of(v, "meta_24_with_checksum_zeroed (v2 hash input prefix)")
        );
        assert_eq!(u64::from(compute_checksum(&tail)), num(&v["checksum_v1"]));
        assert_eq!(
            u64::from(compute_checksum_with_meta(&meta, &tail)),
            num(&v["checksum_v2"])
        );
        let stamped = meta.stamped(&tail);
        assert_eq!(stamped.to_bytes().to_vec(), hex_of(v, "meta_24_with_v2"));
        let record = meta.encode_record(&tail);
        assert_eq!(record, hex_of(v, "redex_payload = meta||tail"));
        let (parsed, parsed_tail, _) = EventMeta::parse_record(&record).unwrap();
        assert_eq!((parsed, parsed_tail), (stamped, &tail[..]));
    }
    let pad = &doc["pad_bytes_ignored"];
    let meta = EventMeta {
        dispatch: 0x42,
        flags: 0x03,
        origin_hash: 1,
        seq_or_ts: 2,
        checksum: 0,
    };
    assert_eq!(meta.to_bytes().to_vec(), hex_of(pad, "to_bytes"));
    assert_eq!(
        u64::from(compute_checksum_with_meta(&meta, b"x")),
        num(&pad["checksum_v2"])
    );
}

#[test]
fn tasks_records_state_and_snapshot() {
    let doc = load("cortex.json");
    let v = &doc["tasks"];
    let origin = 0x0102_0304_0506_0708;
    let t0 = num(&v["T0"]);
    let base = temp_base("tasks");
    let redex = Redex::with_persistent_dir(&base);
    let tasks = TasksAdapter::open(&redex, origin, ModelConfig::persistent()).unwrap();
    tasks.create_at(1, "write spec", t0).unwrap();
    tasks.rename_at(1, "write the spec", t0 + 1).unwrap();
    tasks.create_at(2, "temp", t0 + 2).unwrap();
    tasks.complete_at(1, t0 + 3).unwrap();
    let last = tasks.delete(2).unwrap();
    assert!(tasks.wait_for_seq(last, Duration::from_secs(5)));

    // Every stored record, byte for byte.
    let stored = tasks.file().read_range(..).unwrap();
    let expected = v["disk"]["records"].as_array().unwrap();
    assert_eq!(stored.len(), expected.len());
    for ((seq, bytes), r) in stored.iter().zip(expected) {
        assert_eq!(*seq, num(&r["redex_seq"]));
        let mut want = hex_of(r, "meta_24");
        want.extend(hex_of(r, "postcard_tail"));
        assert_eq!(hex::encode(bytes), hex::encode(&want), "record {seq}");
    }
    // The fold.
    let task = tasks.find_unique(1).unwrap();
    assert_eq!(
        task,
        Task {
            id: 1,
            title: "write the spec".into(),
            status: TaskStatus::Completed,
            created_ns: t0,
            updated_ns: t0 + 3,
        }
    );
    assert_eq!(tasks.find_unique(2), None);
    // The snapshot.
    let snapshot = tasks.snapshot().unwrap();
    assert_eq!(
        hex::encode(&snapshot.bytes),
        v["snapshot_bytes (TasksSnapshotPayload)"].as_str().unwrap()
    );
    assert_eq!(snapshot.last_seq, Some(num(&v["snapshot_last_seq"])));
    assert_eq!(tasks.app_seq(), num(&v["snapshot_outer_app_seq"]));
    tasks.close().unwrap();

    // The files on disk are v0.11's.
    let dir = base.join("cortex/tasks/v0000000001");
    assert_eq!(
        hex::encode(fs::read(dir.join("idx")).unwrap()),
        v["disk"]["idx"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(fs::read(dir.join("dat")).unwrap()),
        v["disk"]["dat"].as_str().unwrap()
    );

    // Reopening recovers the state and the app sequence; so does a restore.
    let again = TasksAdapter::open(&redex, origin, ModelConfig::persistent()).unwrap();
    assert!(again.wait_for_seq(last, Duration::from_secs(5)));
    assert_eq!(again.find_unique(1), Some(task.clone()));
    assert_eq!(again.app_seq(), 5);
    again.close().unwrap();
    let restored =
        TasksAdapter::restore(&redex, origin, ModelConfig::persistent(), &snapshot).unwrap();
    assert_eq!(restored.find_unique(1), Some(task));
    assert_eq!(restored.app_seq(), 5);
    restored.close().unwrap();
    let _ = fs::remove_dir_all(base);
}

#[test]
fn memories_records_state_and_snapshot() {
    let doc = load("cortex.json");
    let v = &doc["memories"];
    let origin = 0x0102_0304_0506_0708;
    let t0 = num(&doc["tasks"]["T0"]);
    let base = temp_base("memories");
    let redex = Redex::with_persistent_dir(&base);
    let memories = MemoriesAdapter::open(&redex, origin, ModelConfig::persistent()).unwrap();
    memories
        .store_at(7, "the sky is blue", &["fact", "color"], "obs", t0)
        .unwrap();
    memories.retag_at(7, &["fact"], t0 + 1).unwrap();
    memories.pin_at(7, t0 + 2).unwrap();
    memories.store_at(8, "scratch", &[], "", t0 + 3).unwrap();
    memories.unpin_at(7, t0 + 4).unwrap();
    let last = memories.delete(8).unwrap();
    assert!(memories.wait_for_seq(last, Duration::from_secs(5)));

    let stored = memories.file().read_range(..).unwrap();
    for ((seq, bytes), r) in stored.iter().zip(v["disk"]["records"].as_array().unwrap()) {
        let mut want = hex_of(r, "meta_24");
        want.extend(hex_of(r, "postcard_tail"));
        assert_eq!(hex::encode(bytes), hex::encode(&want), "record {seq}");
    }
    assert_eq!(
        memories.find_unique(7).unwrap(),
        Memory {
            id: 7,
            content: "the sky is blue".into(),
            tags: vec!["fact".into()],
            source: "obs".into(),
            created_ns: t0,
            updated_ns: t0 + 4,
            pinned: false,
        }
    );
    assert_eq!(memories.find_unique(8), None);
    let snapshot = memories.snapshot().unwrap();
    assert_eq!(
        hex::encode(&snapshot.bytes),
        v["snapshot_bytes (MemoriesSnapshotPayload)"]
            .as_str()
            .unwrap()
    );
    assert_eq!(snapshot.last_seq, Some(num(&v["snapshot_last_seq"])));
    assert_eq!(memories.app_seq(), num(&v["snapshot_outer_app_seq"]));
    memories.close().unwrap();
    let dir = base.join("cortex/memories/v0000000001");
    assert_eq!(
        hex::encode(fs::read(dir.join("idx")).unwrap()),
        v["disk"]["idx"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(fs::read(dir.join("dat")).unwrap()),
        v["disk"]["dat"].as_str().unwrap()
    );
    let _ = fs::remove_dir_all(base);
}

#[test]
fn reference_directories_fold_to_the_documented_state() {
    // Their files, our reader.
    let doc = load("cortex.json");
    let base = temp_base("theirs");
    for (model, channel) in [("tasks", "cortex/tasks"), ("memories", "cortex/memories")] {
        let dir = base.join(channel).join("v0000000001");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("idx"), hex_of(&doc[model]["disk"], "idx")).unwrap();
        fs::write(dir.join("dat"), hex_of(&doc[model]["disk"], "dat")).unwrap();
        fs::write(dir.join("ts"), []).unwrap();
    }
    let redex = Redex::with_persistent_dir(&base);
    let tasks = TasksAdapter::open(&redex, 42, ModelConfig::persistent()).unwrap();
    assert!(tasks.wait_for_seq(4, Duration::from_secs(5)));
    assert_eq!(
        format!("{:?}", tasks.find_unique(1)),
        doc["tasks"]["final_task_1"].as_str().unwrap()
    );
    assert_eq!(tasks.find_many(&TaskQuery::new()).len(), 1);
    // Another origin wrote those records, so our app sequence starts at 0.
    assert_eq!(tasks.app_seq(), 0);
    let memories =
        MemoriesAdapter::open(&redex, 0x0102_0304_0506_0708, ModelConfig::persistent()).unwrap();
    assert!(memories.wait_for_seq(5, Duration::from_secs(5)));
    assert_eq!(memories.find_many(&MemoryQuery::new()).len(), 1);
    assert_eq!(
        memories.app_seq(),
        6,
        "our own origin's records set the app sequence"
    );
    tasks.close().unwrap();
    memories.close().unwrap();
    let _ = fs::remove_dir_all(base);
}
