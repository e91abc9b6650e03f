//! RedEX recovery after deliberate corruption of a closed channel: the
//! findings of issue 11 as regression tests, missing files, repair, holes
//! through compaction, crash injection in the index rewrite, and a random
//! corruption campaign (`REDEX_CAMPAIGN_TRIALS`, default 260; `make fuzz`
//! runs a long one).
//!
//! The contract checked everywhere: an entry read back is byte-identical to
//! what was appended under that seq, or it is missing and the recovery
//! report says so; nothing appended after a reopen is lost by a later one;
//! `next_seq` never goes backwards unless `idx` itself lost records.

#[path = "redex_common/mod.rs"]
mod redex_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use net::redex::fault::{CrashMode, FaultyStorage};
use net::redex::format::{IdxRecord, checksum28};
use net::redex::{
    DropReason, Redex, RedexError, RedexFile, RedexFileConfig, RetentionPolicy, SEQ_LIMIT,
};

const BASE: &str = "/r";
const CHANNEL: &str = "rec/chan";

fn channel_dir() -> PathBuf {
    Path::new(BASE).join(CHANNEL)
}

fn gen_file(generation: u32, name: &str) -> PathBuf {
    channel_dir().join(format!("v{generation:010}")).join(name)
}

fn open(storage: &FaultyStorage) -> Result<RedexFile, RedexError> {
    open_with(storage, RedexFileConfig::persistent())
}

fn open_with(storage: &FaultyStorage, config: RedexFileConfig) -> Result<RedexFile, RedexError> {
    Redex::with_storage(BASE, Arc::new(storage.clone())).open_file(CHANNEL, config)
}

fn payload(i: u64) -> Vec<u8> {
    format!("entry-{i}-{}", "y".repeat((i % 11) as usize)).into_bytes()
}

/// A closed channel of `n` heap entries; returns them by seq.
fn written(storage: &FaultyStorage, n: u64) -> BTreeMap<u64, Vec<u8>> {
    let file = open(storage).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..n {
        let seq = file.append(&payload(i)).unwrap();
        model.insert(seq, payload(i));
    }
    file.close().unwrap();
    model
}

fn edit_record(
    storage: &FaultyStorage,
    generation: u32,
    index: usize,
    edit: impl FnOnce(&mut [u8]),
) {
    let path = gen_file(generation, "idx");
    let mut idx = storage.read_file(&path).unwrap();
    edit(&mut idx[index * 20..index * 20 + 20]);
    storage.write_file(&path, idx).unwrap();
}

/// Every entry the file returns is the one appended under that seq.
fn assert_only_true_payloads(file: &RedexFile, model: &BTreeMap<u64, Vec<u8>>) -> usize {
    let entries = file.read_range(..).unwrap();
    for (seq, bytes) in &entries {
        assert_eq!(
            model.get(seq),
            Some(bytes),
            "seq {seq} reads bytes that were never appended under it"
        );
    }
    entries.len()
}

// ---- finding 1: stale index records come back ----

#[test]
fn a_dropped_record_never_comes_back_over_a_later_append() {
    // Finding 1 as reported: a zero-length heap record pointing past dat is
    // dropped; v0.11 left it in idx and reused its seq, and once dat grew past
    // its offset it passed its (empty) checksum and replaced the append.
    let storage = FaultyStorage::new();
    storage
        .write_file(
            gen_file(1, "idx"),
            IdxRecord::heap(0, 10, 0, checksum28(b"")).encode(),
        )
        .unwrap();
    storage.write_file(gen_file(1, "dat"), b"").unwrap();
    storage
        .write_file(gen_file(1, "ts"), 7u64.to_le_bytes())
        .unwrap();
    let file = open(&storage).unwrap();
    assert!(file.read_range(..).unwrap().is_empty());
    let report = file.recovery_report().unwrap();
    assert_eq!(report.dropped.len(), 1);
    assert_eq!(report.dropped[0].reason, DropReason::PayloadOutOfRange);
    let seq = file.append(b"after recovery").unwrap();
    assert_eq!(seq, 1, "the dropped record's seq is never reused");
    file.close().unwrap();
    for _ in 0..2 {
        let again = open(&storage).unwrap();
        assert_eq!(
            again.read(seq).unwrap().as_deref(),
            Some(&b"after recovery"[..])
        );
        assert_eq!(again.read(0).unwrap(), None);
        assert_eq!(again.read_range(..).unwrap().len(), 1);
        assert!(again.recovery_report().unwrap().dropped.is_empty());
        again.close().unwrap();
    }
}

#[test]
fn a_dropped_record_in_the_middle_stays_dropped() {
    let storage = FaultyStorage::new();
    let mut model = written(&storage, 10);
    // Corrupt entry 4's payload in dat: dropped at the next open.
    let dat_path = gen_file(1, "dat");
    let mut dat = storage.read_file(&dat_path).unwrap();
    let offset: usize = (0..4).map(|i| payload(i).len()).sum();
    dat[offset] ^= 0xff;
    storage.write_file(&dat_path, &dat).unwrap();
    let file = open(&storage).unwrap();
    assert_eq!(file.read(4).unwrap(), None);
    model.remove(&4);
    assert_eq!(assert_only_true_payloads(&file, &model), 9);
    // Restore the byte: the record must not come back, it is a hole now.
    file.close().unwrap();
    dat[offset] ^= 0xff;
    storage.write_file(&dat_path, &dat).unwrap();
    let file = open(&storage).unwrap();
    assert_eq!(file.read(4).unwrap(), None);
    assert_eq!(file.next_seq(), 10);
    file.close().unwrap();
}

// ---- finding 2: one flipped bit in a seq ----

#[test]
fn a_flipped_seq_never_returns_another_entrys_payload() {
    let storage = FaultyStorage::new();
    let model = written(&storage, 300);
    edit_record(&storage, 1, 22, |r| {
        r[0..8].copy_from_slice(&54u64.to_le_bytes())
    });
    let file = open(&storage).unwrap();
    assert_eq!(file.read(54).unwrap(), Some(payload(54)));
    assert_eq!(file.read(22).unwrap(), None);
    for seq in 23..54 {
        assert_eq!(file.read(seq).unwrap(), Some(payload(seq)), "seq {seq}");
    }
    assert_eq!(assert_only_true_payloads(&file, &model), 299);
    assert_eq!(file.next_seq(), 300);
    let report = file.recovery_report().unwrap();
    assert_eq!(report.dropped.len(), 1);
    assert_eq!(report.dropped[0].seq, Some(22));
    assert_eq!(report.dropped[0].stored_seq, 54);
    assert_eq!(report.dropped[0].reason, DropReason::SeqBreaksRun);
    file.close().unwrap();
}

#[test]
fn a_high_bit_in_a_seq_drops_one_entry_not_the_rest() {
    let storage = FaultyStorage::new();
    let model = written(&storage, 300);
    edit_record(&storage, 1, 100, |r| r[5] ^= 0x01); // bit 40
    let file = open(&storage).unwrap();
    assert_eq!(assert_only_true_payloads(&file, &model), 299);
    assert_eq!(file.read(100).unwrap(), None);
    assert_eq!(file.next_seq(), 300, "not 1_099_511_627_877");
    file.close().unwrap();
    // The last record too, and the first.
    for index in [299, 0] {
        let storage = FaultyStorage::new();
        let model = written(&storage, 300);
        edit_record(&storage, 1, index, |r| r[5] ^= 0x01);
        let file = open(&storage).unwrap();
        assert_eq!(
            assert_only_true_payloads(&file, &model),
            299,
            "record {index}"
        );
        assert_eq!(file.next_seq(), 300);
        file.close().unwrap();
    }
}

#[test]
fn a_lone_entry_with_a_flipped_seq_is_not_believed() {
    let storage = FaultyStorage::new();
    let model = written(&storage, 1);
    edit_record(&storage, 1, 0, |r| r[3] ^= 0x10);
    let file = open(&storage).unwrap();
    assert_eq!(assert_only_true_payloads(&file, &model), 0);
    assert_eq!(file.next_seq(), 1);
    file.close().unwrap();
}

// ---- finding 3: seqs at u64::MAX ----

#[test]
fn a_seq_of_u64_max_is_corruption_not_a_wrap() {
    let storage = FaultyStorage::new();
    let model = written(&storage, 10);
    edit_record(&storage, 1, 9, |r| {
        r[0..8].copy_from_slice(&u64::MAX.to_le_bytes())
    });
    let file = open(&storage).unwrap();
    assert_eq!(assert_only_true_payloads(&file, &model), 9);
    let report = file.recovery_report().unwrap();
    assert_eq!(report.dropped[0].reason, DropReason::SeqOutOfRange);
    let seq = file.append(b"after").unwrap();
    assert_eq!(seq, 10);
    file.close().unwrap();
    let again = open(&storage).unwrap();
    assert_eq!(again.read(10).unwrap().as_deref(), Some(&b"after"[..]));
    assert_eq!(again.next_seq(), 11);
    again.close().unwrap();
}

#[test]
fn appends_past_the_seq_limit_are_refused_not_wrapped() {
    let storage = FaultyStorage::new();
    // A (compacted) generation whose entries sit just below the limit.
    let records: Vec<u8> = [SEQ_LIMIT - 3, SEQ_LIMIT - 2]
        .iter()
        .flat_map(|&seq| IdxRecord::inline(seq, *b"nearedge").encode())
        .collect();
    storage.write_file(gen_file(2, "idx"), records).unwrap();
    storage.write_file(gen_file(2, "dat"), b"").unwrap();
    storage.write_file(gen_file(2, "ts"), [0u8; 16]).unwrap();
    let file = open(&storage).unwrap();
    assert_eq!(file.next_seq(), SEQ_LIMIT - 1);
    assert!(matches!(
        file.append_batch(&[b"a", b"b"]),
        Err(RedexError::SeqExhausted { next_seq }) if next_seq == SEQ_LIMIT - 1
    ));
    assert_eq!(file.next_seq(), SEQ_LIMIT - 1, "nothing was appended");
    assert_eq!(file.append(b"last").unwrap(), SEQ_LIMIT - 1);
    assert!(matches!(
        file.append(b"one more"),
        Err(RedexError::SeqExhausted { .. })
    ));
    assert!(matches!(
        file.append_inline(b"12345678"),
        Err(RedexError::SeqExhausted { .. })
    ));
    file.close().unwrap();
    let again = open(&storage).unwrap();
    assert_eq!(
        again.read(SEQ_LIMIT - 1).unwrap().as_deref(),
        Some(&b"last"[..])
    );
    again.close().unwrap();
}

// ---- finding 4: missing files ----

fn snapshot(storage: &FaultyStorage) -> BTreeMap<PathBuf, Vec<u8>> {
    storage.files()
}

#[test]
fn a_missing_dat_is_an_error_that_changes_nothing() {
    let storage = FaultyStorage::new();
    let file = open(&storage).unwrap();
    for i in 0..300 {
        file.append(&payload(i)).unwrap();
    }
    file.append_inline(b"inline!!").unwrap();
    file.close().unwrap();
    storage.remove(gen_file(1, "dat")).unwrap();
    let before = snapshot(&storage);
    match open(&storage) {
        Err(RedexError::Corrupt { path, reason }) => {
            assert_eq!(path, gen_file(1, "dat"));
            assert!(reason.contains("repair"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(snapshot(&storage), before, "every file is left in place");
    // Repair keeps what can be proven: the inline entry; every seq stays used.
    let file = open_with(&storage, RedexFileConfig::persistent().with_repair(true)).unwrap();
    assert_eq!(
        file.read_range(..).unwrap(),
        vec![(300, b"inline!!".to_vec())]
    );
    assert_eq!(file.next_seq(), 301);
    let report = file.recovery_report().unwrap();
    assert!(report.repaired);
    assert_eq!(report.dropped.len(), 300);
    assert!(
        report
            .dropped
            .iter()
            .all(|d| d.reason == DropReason::PayloadOutOfRange)
    );
    file.close().unwrap();
    let again = open(&storage).unwrap();
    assert!(again.recovery_report().unwrap().is_clean());
    assert_eq!(again.next_seq(), 301);
    again.close().unwrap();
}

#[test]
fn a_missing_idx_is_an_error_that_changes_nothing() {
    let storage = FaultyStorage::new();
    written(&storage, 300);
    storage.remove(gen_file(1, "idx")).unwrap();
    let before = snapshot(&storage);
    match open(&storage) {
        Err(RedexError::Corrupt { path, .. }) => assert_eq!(path, gen_file(1, "idx")),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(snapshot(&storage), before);
    let file = open_with(&storage, RedexFileConfig::persistent().with_repair(true)).unwrap();
    assert!(file.read_range(..).unwrap().is_empty());
    let report = file.recovery_report().unwrap();
    assert!(report.repaired);
    assert!(
        report.notes.iter().any(|n| n.contains("idx was missing")),
        "{report:?}"
    );
    file.close().unwrap();
}

#[test]
fn a_missing_idx_or_dat_in_a_later_generation_is_an_error_too() {
    for lost in ["idx", "dat"] {
        let storage = FaultyStorage::new();
        let config = RedexFileConfig::persistent().with_retention(RetentionPolicy {
            max_events: Some(5),
            ..Default::default()
        });
        let file = open_with(&storage, config).unwrap();
        for i in 0..20 {
            file.append(&payload(i)).unwrap();
        }
        file.sweep_retention().unwrap();
        assert_eq!(file.generation(), Some(2));
        file.close().unwrap();
        storage.remove(gen_file(2, lost)).unwrap();
        let before = snapshot(&storage);
        assert!(
            matches!(open(&storage), Err(RedexError::Corrupt { .. })),
            "{lost}"
        );
        assert_eq!(snapshot(&storage), before);
        // Without the manifest too: still refused, never replaced by an empty generation.
        storage.remove(channel_dir().join("manifest")).unwrap();
        let before = snapshot(&storage);
        assert!(
            matches!(open(&storage), Err(RedexError::Corrupt { .. })),
            "{lost}"
        );
        assert_eq!(snapshot(&storage), before);
    }
}

#[test]
fn a_missing_ts_only_loses_timestamps() {
    let storage = FaultyStorage::new();
    let model = written(&storage, 50);
    storage.remove(gen_file(1, "ts")).unwrap();
    let file = open(&storage).unwrap();
    assert_eq!(assert_only_true_payloads(&file, &model), 50);
    let report = file.recovery_report().unwrap();
    assert_eq!(report.timestamps_restored, 50);
    assert!(report.notes.iter().any(|n| n.contains("ts was missing")));
    file.close().unwrap();
    assert_eq!(storage.read_file(gen_file(1, "ts")).unwrap().len(), 50 * 8);
}

#[test]
fn a_manifest_naming_a_missing_generation_is_an_error() {
    let storage = FaultyStorage::new();
    let model = written(&storage, 5);
    storage.remove(gen_file(1, "idx")).unwrap();
    storage.remove(gen_file(1, "dat")).unwrap();
    storage.remove(gen_file(1, "ts")).unwrap();
    storage.remove(channel_dir().join("v0000000001")).unwrap();
    assert!(
        matches!(open(&storage), Err(RedexError::Corrupt { path, .. }) if path == channel_dir().join("v0000000001"))
    );
    // Repair falls back to what is there (nothing): an empty channel, reported.
    let file = open_with(&storage, RedexFileConfig::persistent().with_repair(true)).unwrap();
    assert_eq!(assert_only_true_payloads(&file, &model), 0);
    assert!(file.recovery_report().unwrap().repaired);
    file.close().unwrap();
}

#[test]
fn an_interrupted_creation_is_completed_not_refused() {
    // Generation 1 with an empty idx and no dat/ts, no manifest: the crash
    // happened while the channel was being created.
    let storage = FaultyStorage::new();
    storage.write_file(gen_file(1, "idx"), b"").unwrap();
    let file = open(&storage).unwrap();
    assert_eq!(file.append(b"x").unwrap(), 0);
    file.close().unwrap();
}

// ---- holes through compaction and retention ----

#[test]
fn retention_that_removes_every_entry_keeps_next_seq() {
    let storage = FaultyStorage::new();
    let config = RedexFileConfig::persistent().with_retention(RetentionPolicy {
        max_events: Some(0),
        ..Default::default()
    });
    let file = open_with(&storage, config).unwrap();
    for i in 0..7 {
        file.append(&payload(i)).unwrap();
    }
    assert_eq!(file.sweep_retention().unwrap(), 7);
    file.close().unwrap();
    let file = open(&storage).unwrap();
    assert!(file.read_range(..).unwrap().is_empty());
    assert_eq!(file.next_seq(), 7, "v0.11 restarts at 0 here");
    assert!(file.recovery_report().unwrap().is_clean());
    file.close().unwrap();
}

#[test]
fn compaction_keeps_holes_so_nothing_moves_or_comes_back() {
    let storage = FaultyStorage::new();
    let mut model = written(&storage, 12);
    // Damage entries 3, 4 and 11 (the last): they become holes.
    for index in [3usize, 4, 11] {
        edit_record(&storage, 1, index, |r| r[16] ^= 0x01);
        model.remove(&(index as u64));
    }
    let file = open(&storage).unwrap();
    assert_eq!(file.recovery_report().unwrap().dropped.len(), 3);
    assert_eq!(file.next_seq(), 12);
    file.compact().unwrap();
    assert_eq!(file.generation(), Some(2));
    file.close().unwrap();
    let file = open(&storage).unwrap();
    assert_eq!(assert_only_true_payloads(&file, &model), 9);
    assert_eq!(file.next_seq(), 12);
    assert!(
        file.recovery_report().unwrap().is_clean(),
        "{:?}",
        file.recovery_report()
    );
    file.close().unwrap();
    // v0.11 reads the compacted generation as the same entries.
    let (theirs, _) = redex_common::v011_open(
        &storage.read_file(gen_file(2, "idx")).unwrap(),
        &storage.read_file(gen_file(2, "dat")).unwrap(),
    );
    assert_eq!(theirs, model.into_iter().collect::<Vec<_>>());
}

#[test]
fn a_compacted_generation_catches_a_flipped_seq_in_its_only_entry() {
    let storage = FaultyStorage::new();
    let config = RedexFileConfig::persistent().with_retention(RetentionPolicy {
        max_events: Some(1),
        ..Default::default()
    });
    let file = open_with(&storage, config).unwrap();
    for i in 0..5 {
        file.append(&payload(i)).unwrap();
    }
    file.sweep_retention().unwrap();
    file.close().unwrap();
    // idx: the leading holes (seqs 2 and 3), then entry 4.
    edit_record(&storage, 2, 2, |r| r[2] ^= 0x40);
    let file = open(&storage).unwrap();
    assert!(file.read_range(..).unwrap().is_empty());
    assert_eq!(file.next_seq(), 5);
    file.close().unwrap();
}

// ---- crash injection in the index rewrite ----

#[test]
fn crash_at_every_step_of_the_index_rewrite() {
    let setup = || {
        let storage = FaultyStorage::new();
        let mut model = written(&storage, 8);
        edit_record(&storage, 1, 2, |r| r[16] ^= 0x01);
        edit_record(&storage, 1, 7, |r| r[16] ^= 0x01);
        model.remove(&2);
        model.remove(&7);
        (storage, model)
    };
    let (storage, _) = setup();
    let start = storage.op_count();
    open(&storage).unwrap().close().unwrap();
    let end = storage.op_count();
    assert!(end - start >= 10, "the rewrite took {} steps", end - start);
    let modes = [
        CrashMode::PowerLoss,
        CrashMode::TornPowerLoss { seed: 3 },
        CrashMode::TornPowerLoss { seed: 11 },
        CrashMode::ProcessCrash,
    ];
    for crash_at in start..end {
        for mode in modes {
            let (storage, model) = setup();
            storage.inject(crash_at, net::redex::fault::Fault::Crash);
            let _ = open(&storage).map(|f| f.close());
            storage.crash(mode);
            let file = open(&storage).expect("reopen after a crash in recovery");
            let what = format!("crash before op {crash_at} ({mode:?})");
            assert_eq!(assert_only_true_payloads(&file, &model), 6, "{what}");
            assert_eq!(file.next_seq(), 8, "{what}");
            let seq = file.append(b"after").unwrap();
            assert_eq!(seq, 8, "{what}");
            file.close().unwrap();
            let again = open(&storage).unwrap();
            assert!(
                again.recovery_report().unwrap().dropped.is_empty(),
                "{what}"
            );
            assert_eq!(
                again.read(8).unwrap().as_deref(),
                Some(&b"after"[..]),
                "{what}"
            );
            again.close().unwrap();
            assert!(
                storage.read_file(gen_file(1, "idx.tmp")).is_none(),
                "{what}: a stale idx.tmp is removed"
            );
        }
    }
}

// ---- the random corruption campaign ----

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    FlipIdx,
    FlipDat,
    FlipTs,
    FlipManifest,
    Truncate(&'static str),
    Delete(&'static str),
}

fn campaign_trial(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let storage = FaultyStorage::new();
    let retention = (rng.below(4) == 0).then(|| 1 + rng.below(40));
    let config = RedexFileConfig::persistent().with_retention(RetentionPolicy {
        max_events: retention,
        ..Default::default()
    });
    let file = open_with(&storage, config).unwrap();
    let mut model = BTreeMap::new();
    let n = 1 + rng.below(200);
    let mut i = 0u64;
    while i < n {
        match rng.below(6) {
            0 => {
                let bytes = (rng.next()).to_le_bytes();
                model.insert(file.append_inline(&bytes).unwrap(), bytes.to_vec());
                i += 1;
            }
            1 => {
                let batch: Vec<Vec<u8>> = (0..2 + rng.below(4)).map(|k| payload(i + k)).collect();
                let first = file.append_batch(&batch).unwrap().unwrap();
                for (k, p) in batch.into_iter().enumerate() {
                    model.insert(first + k as u64, p);
                }
                i += 2;
            }
            _ => {
                let len = rng.below(40) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                model.insert(file.append(&bytes).unwrap(), bytes);
                i += 1;
            }
        }
    }
    if retention.is_some() {
        file.sweep_retention().unwrap();
        let first = file.first_seq();
        model.retain(|seq, _| first.is_some_and(|f| *seq >= f));
    }
    let next_before = file.next_seq();
    let generation = file.generation().unwrap();
    file.close().unwrap();

    let damage = match rng.below(12) {
        0..=3 => Damage::FlipIdx,
        4..=5 => Damage::FlipDat,
        6 => Damage::FlipTs,
        7 => Damage::FlipManifest,
        8..=9 => Damage::Truncate(["idx", "dat", "ts"][rng.below(3) as usize]),
        _ => Damage::Delete(["idx", "dat", "ts", "manifest"][rng.below(4) as usize]),
    };
    let path_of = |name: &str| {
        if name == "manifest" {
            channel_dir().join("manifest")
        } else {
            gen_file(generation, name)
        }
    };
    let what = format!(
        "seed {seed}: {damage:?}, {} entries, generation {generation}",
        model.len()
    );
    match damage {
        Damage::FlipIdx | Damage::FlipDat | Damage::FlipTs | Damage::FlipManifest => {
            let name = match damage {
                Damage::FlipIdx => "idx",
                Damage::FlipDat => "dat",
                Damage::FlipTs => "ts",
                _ => "manifest",
            };
            let path = path_of(name);
            let mut bytes = storage.read_file(&path).unwrap();
            if bytes.is_empty() {
                return;
            }
            // One flipped bit, or one byte overwritten with anything.
            let at = rng.below(bytes.len() as u64) as usize;
            if rng.below(2) == 0 {
                bytes[at] ^= 1 << rng.below(8);
            } else {
                bytes[at] = rng.next() as u8;
            }
            storage.write_file(&path, bytes).unwrap();
        }
        Damage::Truncate(name) => {
            let path = path_of(name);
            let bytes = storage.read_file(&path).unwrap();
            let keep = rng.below(bytes.len() as u64 + 1) as usize;
            storage.write_file(&path, &bytes[..keep]).unwrap();
        }
        Damage::Delete(name) => storage.remove(path_of(name)).unwrap(),
    }

    let before = snapshot(&storage);
    let file = match open(&storage) {
        Ok(file) => file,
        Err(RedexError::Corrupt { .. }) => {
            assert!(
                matches!(damage, Damage::Delete("idx" | "dat")),
                "{what}: only a lost idx or dat is refused"
            );
            assert_eq!(
                snapshot(&storage),
                before,
                "{what}: a refused open changes nothing"
            );
            open_with(&storage, RedexFileConfig::persistent().with_repair(true)).unwrap()
        }
        Err(e) => panic!("{what}: {e}"),
    };
    let kept = assert_only_true_payloads(&file, &model);
    let lost = model.len() - kept;
    let report = file.recovery_report().unwrap().clone();
    match damage {
        Damage::FlipIdx | Damage::FlipDat => {
            assert!(
                lost <= 1,
                "{what}: one damaged byte lost {lost} entries: {report:?}"
            );
            assert!(report.dropped.len() >= lost, "{what}: a loss is reported");
            assert!(report.dropped.len() <= 1, "{what}: {report:?}");
            assert_eq!(file.next_seq(), next_before, "{what}");
        }
        Damage::FlipTs | Damage::FlipManifest | Damage::Delete("ts" | "manifest") => {
            assert_eq!(lost, 0, "{what}: {report:?}");
            assert_eq!(file.next_seq(), next_before, "{what}");
        }
        Damage::Truncate("dat" | "ts") => {
            assert!(report.dropped.len() >= lost, "{what}: a loss is reported");
            assert_eq!(file.next_seq(), next_before, "{what}");
        }
        _ => {}
    }

    // What is appended now survives every later open, and next_seq holds.
    let mut after = BTreeMap::new();
    for k in 0..1 + rng.below(5) {
        after.insert(file.append(&payload(1000 + k)).unwrap(), payload(1000 + k));
    }
    let survivors: Vec<(u64, Vec<u8>)> = file.read_range(..).unwrap();
    let next_after = file.next_seq();
    file.close().unwrap();
    for round in 0..2 {
        let again = open(&storage).unwrap();
        assert_eq!(
            again.read_range(..).unwrap(),
            survivors,
            "{what}, reopen {round}"
        );
        assert_eq!(again.next_seq(), next_after, "{what}, reopen {round}");
        assert!(
            again.recovery_report().unwrap().dropped.is_empty(),
            "{what}, reopen {round}: {:?}",
            again.recovery_report()
        );
        again.close().unwrap();
    }
    for (seq, bytes) in &after {
        assert!(
            survivors.contains(&(*seq, bytes.clone())),
            "{what}: append {seq} lost"
        );
    }
    // And v0.11 reads the recovered generation as the same entries.
    let live = open(&storage).unwrap();
    let live_generation = live.generation().unwrap();
    live.close().unwrap();
    let (theirs, _) = redex_common::v011_open(
        &storage.read_file(gen_file(live_generation, "idx")).unwrap(),
        &storage.read_file(gen_file(live_generation, "dat")).unwrap(),
    );
    assert_eq!(theirs, survivors, "{what}: v0.11 reads what we read");
}

#[test]
fn random_corruption_campaign() {
    let trials: u64 = std::env::var("REDEX_CAMPAIGN_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(260);
    let first: u64 = std::env::var("REDEX_CAMPAIGN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for seed in first..first + trials {
        campaign_trial(seed);
    }
}
