//! Crash injection for every durability step of RedEX, on the fault-injecting
//! storage: a crash before each storage operation of `compact_to` and of the
//! legacy migration (under power loss, torn power loss and process crash),
//! torn writes at every byte of a final batch, fsync failures, and rollback.
//!
//! After every crash the channel is reopened and must have converged to
//! exactly one complete generation, lost no entry that was fsynced (and not
//! legitimately removed by the interrupted compaction), and hold no entry twice.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use net::redex::fault::{CrashMode, Fault, FaultyStorage, OpKind};
use net::redex::format::{Generation, Manifest};
use net::redex::{FsyncPolicy, Redex, RedexError, RedexFile, RedexFileConfig, RetentionPolicy};

const BASE: &str = "/base";
const CHANNEL: &str = "crash/chan";

fn channel_dir() -> PathBuf {
    Path::new(BASE).join(CHANNEL)
}

fn redex(storage: &FaultyStorage) -> Redex {
    Redex::with_storage(BASE, Arc::new(storage.clone()))
}

fn config() -> RedexFileConfig {
    RedexFileConfig::persistent().with_retention(RetentionPolicy {
        max_events: Some(3),
        ..Default::default()
    })
}

fn payload(i: u64) -> Vec<u8> {
    format!("payload-{i}-{}", "x".repeat(i as usize % 7)).into_bytes()
}

/// Six entries (one inline), all fsynced.
fn populate(file: &RedexFile) -> Vec<(u64, Vec<u8>)> {
    let mut expected = Vec::new();
    for i in 0..6u64 {
        let seq = if i == 2 {
            file.append_inline(b"inline!!").unwrap()
        } else {
            file.append(&payload(i)).unwrap()
        };
        let bytes = if i == 2 {
            b"inline!!".to_vec()
        } else {
            payload(i)
        };
        expected.push((seq, bytes));
    }
    file.sync().unwrap();
    expected
}

/// The state a reopened channel must be in: exactly one complete generation,
/// the manifest pointing at it, no manifest.tmp, seqs strictly increasing.
fn assert_converged(storage: &FaultyStorage) -> Vec<(u64, Vec<u8>)> {
    let file = redex(storage)
        .open_file(CHANNEL, config())
        .expect("reopen after crash");
    let entries = file.read_range(..).unwrap();
    file.close().unwrap();
    let dir = channel_dir();
    let generations: Vec<PathBuf> = storage
        .dirs()
        .into_iter()
        .filter(|d| d.parent() == Some(dir.as_path()))
        .filter(|d| Generation::from_dir_name(d.file_name().unwrap().to_str().unwrap()).is_some())
        .collect();
    assert_eq!(generations.len(), 1, "generations left: {generations:?}");
    let live = &generations[0];
    for name in ["idx", "dat", "ts"] {
        assert!(
            storage.read_file(live.join(name)).is_some(),
            "{name} missing in {live:?}"
        );
    }
    let manifest = Manifest::decode(&storage.read_file(dir.join("manifest")).unwrap()).unwrap();
    assert_eq!(
        live.file_name().unwrap().to_str().unwrap(),
        manifest.generation.dir_name()
    );
    assert!(storage.read_file(dir.join("manifest.tmp")).is_none());
    let seqs: Vec<u64> = entries.iter().map(|(s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "duplicate or reordered seqs: {seqs:?}"
    );
    entries
}

/// The storage operations one run of `action` performs after `setup`.
fn ops_of(setup: impl Fn(&FaultyStorage) -> RedexFile, action: impl Fn(&RedexFile)) -> (u64, u64) {
    let storage = FaultyStorage::new();
    let file = setup(&storage);
    let start = storage.op_count();
    action(&file);
    let end = storage.op_count();
    file.close().unwrap();
    (start, end)
}

const MODES: [CrashMode; 4] = [
    CrashMode::PowerLoss,
    CrashMode::TornPowerLoss { seed: 1 },
    CrashMode::TornPowerLoss { seed: 7 },
    CrashMode::ProcessCrash,
];

#[test]
fn crash_at_every_step_of_compact_to() {
    let setup = |storage: &FaultyStorage| {
        let file = redex(storage).open_file(CHANNEL, config()).unwrap();
        populate(&file);
        file
    };
    let (start, end) = ops_of(setup, |file| {
        assert_eq!(file.sweep_retention().unwrap(), 3);
    });
    let reference = FaultyStorage::new();
    let full = populate(&redex(&reference).open_file(CHANNEL, config()).unwrap());
    let survivors: Vec<(u64, Vec<u8>)> = full[3..].to_vec();
    // The compaction's steps, for the record: mkdir, 3 × (create, write,
    // fsync), 2 × fsync dir, manifest.tmp (create, write, fsync), rename +
    // fsync dir, remove old generation.
    assert!(
        end - start >= 16,
        "compaction took only {} storage steps",
        end - start
    );

    let mut outcomes = BTreeSet::new();
    for crash_at in start..=end {
        for mode in MODES {
            let storage = FaultyStorage::new();
            let file = setup(&storage);
            storage.inject(crash_at, Fault::Crash);
            let _ = file.sweep_retention();
            drop(file);
            storage.crash(mode);
            let entries = assert_converged(&storage);
            assert!(
                entries == full || entries == survivors,
                "crash before op {crash_at} ({mode:?}): {:?}",
                entries.iter().map(|e| e.0).collect::<Vec<_>>()
            );
            outcomes.insert(entries.len());
        }
    }
    // Both sides of the manifest flip were exercised.
    assert_eq!(outcomes, BTreeSet::from([3, 6]));
}

#[test]
fn a_failure_at_any_step_before_the_flip_changes_nothing() {
    let setup = |storage: &FaultyStorage| {
        let file = redex(storage).open_file(CHANNEL, config()).unwrap();
        populate(&file);
        file
    };
    let (start, end) = ops_of(setup, |file| {
        file.sweep_retention().unwrap();
    });
    for fail_at in start..end {
        let storage = FaultyStorage::new();
        let file = setup(&storage);
        let before = file.read_range(..).unwrap();
        storage.inject(fail_at, Fault::Error);
        match file.sweep_retention() {
            // Failed before the flip: still the old generation, all entries.
            Err(_) => {
                assert_eq!(file.generation(), Some(1));
                assert_eq!(file.read_range(..).unwrap(), before);
            }
            // Failures after the flip are best effort (dir fsync, old
            // generation removal): the compaction stands.
            Ok(removed) => {
                assert_eq!(removed, 3);
                assert_eq!(file.generation(), Some(2));
            }
        }
        // Appends keep working either way, and survive a reopen.
        let seq = file.append(b"after").unwrap();
        file.close().unwrap();
        let entries = assert_converged(&storage);
        assert_eq!(entries.last().unwrap(), &(seq, b"after".to_vec()));
    }
}

#[test]
fn crash_at_every_step_of_the_legacy_migration() {
    // A pre-v0.11 flat channel: idx/dat/ts directly in the channel directory.
    let legacy = |storage: &FaultyStorage| -> Vec<(u64, Vec<u8>)> {
        let other = FaultyStorage::new();
        let expected = populate(
            &redex(&other)
                .open_file(CHANNEL, RedexFileConfig::persistent())
                .unwrap(),
        );
        let generation = channel_dir().join("v0000000001");
        for name in ["idx", "dat", "ts"] {
            storage
                .write_file(
                    channel_dir().join(name),
                    other.read_file(generation.join(name)).unwrap(),
                )
                .unwrap();
        }
        expected
    };
    let probe = FaultyStorage::new();
    let expected = legacy(&probe);
    let start = probe.op_count();
    redex(&probe)
        .open_file(CHANNEL, RedexFileConfig::persistent())
        .unwrap()
        .close()
        .unwrap();
    let end = probe.op_count();
    assert!(
        probe.ops()[start as usize..end as usize]
            .iter()
            .filter(|op| op.kind == OpKind::Rename)
            .count()
            >= 3
    );

    for crash_at in start..=end {
        for mode in MODES {
            let storage = FaultyStorage::new();
            legacy(&storage);
            storage.inject(crash_at, Fault::Crash);
            let _ = redex(&storage).open_file(CHANNEL, RedexFileConfig::persistent());
            storage.crash(mode);
            let entries = assert_converged(&storage);
            assert_eq!(entries, expected, "crash before op {crash_at} ({mode:?})");
            for name in ["idx", "dat", "ts"] {
                assert!(
                    storage.read_file(channel_dir().join(name)).is_none(),
                    "legacy {name} left behind"
                );
            }
        }
    }
}

#[test]
fn torn_final_batch_at_every_byte() {
    // Entries before the batch are fsynced; then the batch is written (dat,
    // then idx, then ts) and power is cut with every possible prefix of those
    // bytes on disk.
    let storage = FaultyStorage::new();
    let file = redex(&storage)
        .open_file(CHANNEL, RedexFileConfig::persistent())
        .unwrap();
    let prior = populate(&file);
    let synced = storage.files();
    let batch: Vec<Vec<u8>> = (10..14).map(payload).collect();
    file.append_batch(&batch).unwrap();
    let written = storage.files();
    file.close().unwrap();

    let generation = channel_dir().join("v0000000001");
    let grown = |name: &str| -> (Vec<u8>, Vec<u8>) {
        let path = generation.join(name);
        let before = synced[&path].clone();
        let after = written[&path].clone();
        assert!(after.starts_with(&before));
        (before.clone(), after[before.len()..].to_vec())
    };
    let (dat0, dat_new) = grown("dat");
    let (idx0, idx_new) = grown("idx");
    let (ts0, ts_new) = grown("ts");
    let total = dat_new.len() + idx_new.len() + ts_new.len();

    for cut in 0..=total {
        let storage = FaultyStorage::new();
        let take = |from: usize, bytes: &[u8]| -> Vec<u8> {
            bytes[..cut.saturating_sub(from).min(bytes.len())].to_vec()
        };
        let dat_part = take(0, &dat_new);
        let idx_part = take(dat_new.len(), &idx_new);
        let ts_part = take(dat_new.len() + idx_new.len(), &ts_new);
        for (path, content) in &synced {
            storage.write_file(path, content).unwrap();
        }
        storage
            .write_file(
                generation.join("dat"),
                [dat0.as_slice(), &dat_part].concat(),
            )
            .unwrap();
        storage
            .write_file(
                generation.join("idx"),
                [idx0.as_slice(), &idx_part].concat(),
            )
            .unwrap();
        storage
            .write_file(generation.join("ts"), [ts0.as_slice(), &ts_part].concat())
            .unwrap();

        let entries = assert_converged(&storage);
        // Whole index records survive (their payloads were written first);
        // a torn record is trimmed.
        let whole_records = idx_part.len() / 20;
        let mut expected = prior.clone();
        for (i, p) in batch.iter().take(whole_records).enumerate() {
            expected.push((prior.len() as u64 + i as u64, p.clone()));
        }
        assert_eq!(entries, expected, "cut at byte {cut} of {total}");
        let reopened = redex(&storage)
            .open_file(CHANNEL, RedexFileConfig::persistent())
            .unwrap();
        assert_eq!(reopened.next_seq(), expected.len() as u64);
        reopened.close().unwrap();
    }
}

#[test]
fn torn_write_is_rolled_back_and_leaves_no_trace() {
    for (target, keep) in [("/dat", 3usize), ("/idx", 7), ("/ts", 5), ("/dat", 0)] {
        let storage = FaultyStorage::new();
        let file = redex(&storage)
            .open_file(CHANNEL, RedexFileConfig::persistent())
            .unwrap();
        let prior = populate(&file);
        let files_before = storage.files();
        storage.inject_next(OpKind::Append, Some(target), Fault::Torn { keep });
        // Timestamps are written in groups; a batch this size makes the
        // append write its group to ts, so a fault there has something to hit.
        let batch: Vec<Vec<u8>> = (0..130u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let err = file.append_batch(&batch).unwrap_err();
        assert!(matches!(err, RedexError::Io { .. }), "{err:?}");
        // Memory and disk both show the batch never happened.
        assert_eq!(file.read_range(..).unwrap(), prior);
        assert_eq!(file.next_seq(), prior.len() as u64);
        assert_eq!(
            storage.files(),
            files_before,
            "rollback left bytes behind ({target})"
        );
        // And the next append takes the next seq.
        assert_eq!(file.append(b"next").unwrap(), prior.len() as u64);
        file.close().unwrap();
    }
}

#[test]
fn failed_rollback_poisons_the_file() {
    let storage = FaultyStorage::new();
    let file = redex(&storage)
        .open_file(CHANNEL, RedexFileConfig::persistent())
        .unwrap();
    populate(&file);
    storage.inject_next(OpKind::Append, Some("/idx"), Fault::Torn { keep: 4 });
    storage.inject_next(OpKind::Truncate, Some("/idx"), Fault::Error);
    let err = file.append(b"doomed").unwrap_err();
    match err {
        RedexError::Poisoned(reason) => {
            assert!(reason.contains("partial-write rollback"), "{reason}")
        }
        other => panic!("expected Poisoned, got {other:?}"),
    }
    let err = file.append(b"refused").unwrap_err();
    assert!(matches!(err, RedexError::Poisoned(_)), "{err:?}");
    assert!(file.poison_reason().is_some());
    // Reads still work; a reopen recovers a consistent file.
    assert_eq!(file.len(), 6);
    drop(file);
    let entries = assert_converged(&storage);
    assert_eq!(entries.len(), 6);
}

#[test]
fn a_failed_fsync_poisons_and_is_never_retried_as_success() {
    let storage = FaultyStorage::new();
    let file = redex(&storage)
        .open_file(
            CHANNEL,
            RedexFileConfig::persistent().with_fsync(FsyncPolicy::EveryN(1)),
        )
        .unwrap();
    assert_eq!(file.append(b"durable").unwrap(), 0);
    storage.inject_next(OpKind::Sync, Some("/dat"), Fault::Error);
    match file.append(b"not durable") {
        Err(RedexError::SyncFailed { seq, .. }) => assert_eq!(seq, 1),
        other => panic!("expected SyncFailed, got {other:?}"),
    }
    assert!(matches!(
        file.append(b"refused"),
        Err(RedexError::Poisoned(_))
    ));
    assert!(matches!(file.sync(), Err(RedexError::Io { .. }) | Ok(())));
    // With EveryN(1), every append that returned Ok survives a power cut.
    drop(file);
    storage.crash(CrashMode::PowerLoss);
    let entries = assert_converged(&storage);
    assert_eq!(entries[0], (0, b"durable".to_vec()));
}

#[test]
fn every_n_makes_returned_appends_durable() {
    for n in [1u64, 3] {
        let storage = FaultyStorage::new();
        let file = redex(&storage)
            .open_file(
                CHANNEL,
                RedexFileConfig::persistent().with_fsync(FsyncPolicy::EveryN(n)),
            )
            .unwrap();
        for i in 0..7u64 {
            file.append(&payload(i)).unwrap();
        }
        storage.crash(CrashMode::PowerLoss);
        drop(file);
        let entries = assert_converged(&storage);
        // Everything up to the last multiple of n was synced.
        let synced = 7 - 7 % n;
        assert!(
            entries.len() as u64 >= synced,
            "n={n}: {} < {synced}",
            entries.len()
        );
        for (i, (seq, bytes)) in entries.iter().enumerate() {
            assert_eq!((*seq, bytes.clone()), (i as u64, payload(i as u64)));
        }
    }
}

#[test]
fn explicit_sync_failure_poisons() {
    let storage = FaultyStorage::new();
    let file = redex(&storage)
        .open_file(CHANNEL, RedexFileConfig::persistent())
        .unwrap();
    file.append(b"x").unwrap();
    storage.inject_next(OpKind::Sync, None, Fault::Error);
    assert!(matches!(file.sync(), Err(RedexError::Io { .. })));
    assert!(matches!(file.append(b"y"), Err(RedexError::Poisoned(_))));
}

#[test]
fn background_fsync_failure_poisons() {
    let storage = FaultyStorage::new();
    let config = RedexFileConfig::persistent()
        .with_fsync(FsyncPolicy::Interval(std::time::Duration::from_millis(5)));
    let file = redex(&storage).open_file(CHANNEL, config).unwrap();
    file.append(b"x").unwrap();
    storage.inject_next(OpKind::Sync, None, Fault::Error);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while file.poison_reason().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "background fsync never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(file.poison_reason().unwrap().contains("fsync"));
    assert!(matches!(file.append(b"y"), Err(RedexError::Poisoned(_))));
}

#[test]
fn interval_policy_syncs_in_the_background() {
    let storage = FaultyStorage::new();
    let config = RedexFileConfig::persistent()
        .with_fsync(FsyncPolicy::Interval(std::time::Duration::from_millis(5)));
    let file = redex(&storage).open_file(CHANNEL, config).unwrap();
    file.append(b"background").unwrap();
    let dat = channel_dir().join("v0000000001/dat");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while storage.durable_files().get(&dat).map(Vec::len) != Some(10) {
        assert!(std::time::Instant::now() < deadline, "never synced");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    file.close().unwrap();
}

#[test]
fn close_syncs_whatever_the_policy() {
    let storage = FaultyStorage::new();
    let file = redex(&storage)
        .open_file(CHANNEL, RedexFileConfig::persistent())
        .unwrap();
    file.append(b"closed").unwrap();
    file.close().unwrap();
    storage.crash(CrashMode::PowerLoss);
    assert_eq!(assert_converged(&storage), vec![(0, b"closed".to_vec())]);
}

#[test]
fn timestamps_lost_in_a_process_crash_are_padded_not_misaligned() {
    let storage = FaultyStorage::new();
    let file = redex(&storage)
        .open_file(CHANNEL, RedexFileConfig::persistent())
        .unwrap();
    for i in 0..200u64 {
        file.append(&payload(i)).unwrap();
    }
    let ts_path = channel_dir().join("v0000000001/ts");
    // One group of 128 timestamps has been written; the rest were pending
    // when the process died (forget: no close, no flush).
    let flushed = storage.read_file(&ts_path).unwrap();
    assert_eq!(flushed.len(), 128 * 8);
    std::mem::forget(file);
    storage.crash(CrashMode::ProcessCrash);

    let entries = assert_converged(&storage);
    assert_eq!(entries.len(), 200, "no entry is lost with its timestamp");
    let repaired = storage.read_file(&ts_path).unwrap();
    assert_eq!(
        repaired.len(),
        200 * 8,
        "the sidecar is padded to one value per record"
    );
    assert_eq!(
        repaired[..flushed.len()],
        flushed[..],
        "written timestamps are kept"
    );
    // Appends after the repair line up with their records again.
    let file = redex(&storage)
        .open_file(CHANNEL, RedexFileConfig::persistent())
        .unwrap();
    file.append(b"after").unwrap();
    file.close().unwrap();
    assert_eq!(storage.read_file(&ts_path).unwrap().len(), 201 * 8);
}
