//! Property test: random sequences of append, inline append, batch, retention
//! sweep, compaction, reopen and crashes, checked against a simple model of
//! what the log must contain.

use std::collections::VecDeque;
use std::sync::Arc;

use net::redex::fault::{CrashMode, FaultyStorage};
use net::redex::{Redex, RedexFile, RedexFileConfig, RetentionPolicy};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Inline([u8; 8]),
    Batch(Vec<Vec<u8>>),
    Sweep,
    Compact,
    Reopen,
    ProcessCrash,
    SyncThenPowerLoss,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..48).prop_map(Op::Append),
        2 => any::<[u8; 8]>().prop_map(Op::Inline),
        3 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 0..5).prop_map(Op::Batch),
        2 => Just(Op::Sweep),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => Just(Op::ProcessCrash),
        1 => Just(Op::SyncThenPowerLoss),
    ]
}

const KEEP: usize = 6;

fn config(persistent: bool) -> RedexFileConfig {
    let base = if persistent {
        RedexFileConfig::persistent()
    } else {
        RedexFileConfig::heap()
    };
    base.with_retention(RetentionPolicy {
        max_events: Some(KEEP as u64),
        ..Default::default()
    })
}

struct Model {
    entries: VecDeque<(u64, Vec<u8>)>,
    next_seq: u64,
}

impl Model {
    fn push(&mut self, payload: Vec<u8>) -> u64 {
        let seq = self.next_seq;
        self.entries.push_back((seq, payload));
        self.next_seq += 1;
        seq
    }

    /// What a reopened file reports (STORAGE.md §7.2 step 10).
    fn reopened(&mut self) {
        self.next_seq = self.entries.back().map_or(0, |(s, _)| s + 1);
    }
}

fn run(ops: &[Op], persistent: bool) -> Result<(), TestCaseError> {
    let storage = FaultyStorage::new();
    let open = || -> RedexFile {
        Redex::with_storage("/model", Arc::new(storage.clone()))
            .open_file("model/chan", config(persistent))
            .unwrap()
    };
    let mut file = if persistent {
        open()
    } else {
        Redex::new().open_file("model/chan", config(false)).unwrap()
    };
    let mut model = Model {
        entries: VecDeque::new(),
        next_seq: 0,
    };
    for op in ops {
        match op {
            Op::Append(p) => prop_assert_eq!(file.append(p).unwrap(), model.push(p.clone())),
            Op::Inline(p) => {
                prop_assert_eq!(file.append_inline(p).unwrap(), model.push(p.to_vec()))
            }
            Op::Batch(ps) => {
                let first = file.append_batch(ps).unwrap();
                let seqs: Vec<u64> = ps.iter().map(|p| model.push(p.clone())).collect();
                let expected = seqs.first().copied();
                prop_assert_eq!(first, expected);
            }
            Op::Sweep => {
                let removed = file.sweep_retention().unwrap();
                let cut = model.entries.len().saturating_sub(KEEP);
                model.entries.drain(..cut);
                prop_assert_eq!(removed, cut as u64);
            }
            Op::Compact => file.compact().unwrap(),
            Op::Reopen | Op::ProcessCrash | Op::SyncThenPowerLoss if persistent => {
                match op {
                    Op::Reopen => file.close().unwrap(),
                    Op::ProcessCrash => {
                        drop(file);
                        storage.crash(CrashMode::ProcessCrash);
                    }
                    _ => {
                        file.sync().unwrap();
                        storage.crash(CrashMode::PowerLoss);
                        drop(file);
                    }
                }
                file = open();
                model.reopened();
            }
            _ => {}
        }
        let actual = file.read_range(..).unwrap();
        let expected: Vec<(u64, Vec<u8>)> = model.entries.iter().cloned().collect();
        prop_assert_eq!(actual, expected, "after {:?}", op);
        prop_assert_eq!(file.next_seq(), model.next_seq);
        prop_assert_eq!(file.len(), model.entries.len() as u64);
    }
    file.close().unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn persistent_file_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(&ops, true)?;
    }

    #[test]
    fn heap_file_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(&ops, false)?;
    }
}

fn recover(
    manifest: &[u8],
    idx: &[u8],
    dat: &[u8],
    ts: &[u8],
    legacy: bool,
) -> Result<(), TestCaseError> {
    let storage = FaultyStorage::new();
    let dir = if legacy {
        "/g/chan"
    } else {
        "/g/chan/v0000000001"
    };
    if !legacy {
        storage.write_file("/g/chan/manifest", manifest).unwrap();
    }
    storage.write_file(format!("{dir}/idx"), idx).unwrap();
    storage.write_file(format!("{dir}/dat"), dat).unwrap();
    storage.write_file(format!("{dir}/ts"), ts).unwrap();
    let redex = Redex::with_storage("/g", Arc::new(storage.clone()));
    let file = redex
        .open_file("chan", RedexFileConfig::persistent())
        .unwrap();
    let entries = file.read_range(..).unwrap();
    prop_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
    let report = file.recovery_report().unwrap().clone();
    prop_assert_eq!(report.entries, entries.len() as u64);
    let next = file.next_seq();
    prop_assert!(entries.last().is_none_or(|e| e.0 < next));
    let seq = file.append(b"after").unwrap();
    prop_assert_eq!(seq, next);
    file.close().unwrap();
    let again = redex
        .open_file("chan", RedexFileConfig::persistent())
        .unwrap();
    let mut expected = entries;
    expected.push((seq, b"after".to_vec()));
    prop_assert_eq!(again.read_range(..).unwrap(), expected);
    prop_assert_eq!(again.next_seq(), seq + 1, "next_seq never goes backwards");
    let second = again.recovery_report().unwrap();
    prop_assert!(
        second.dropped.is_empty(),
        "a second open finds nothing new: {second:?}"
    );
    Ok(())
}

/// A plausible index: records that point into `dat`, some with the right
/// checksum, plus garbage tails (the fuzz target explores further).
fn plausible_idx(dat: &[u8], records: &[(u64, u32, u32, bool, bool)]) -> Vec<u8> {
    use net::redex::format::{IdxRecord, checksum28};
    let mut out = Vec::new();
    for &(seq, offset, len, inline, valid) in records {
        let dat_len = dat.len() as u32;
        let offset = if dat_len == 0 { 0 } else { offset % dat_len };
        let len = if dat_len == 0 {
            0
        } else {
            len % (dat_len - offset + 1)
        };
        let record = if inline {
            IdxRecord::inline(seq, (offset as u64 | (u64::from(len) << 32)).to_le_bytes())
        } else {
            let payload = &dat[offset as usize..(offset + len) as usize];
            IdxRecord::heap(seq, offset, len, checksum28(payload))
        };
        let mut bytes = record.encode();
        if !valid {
            bytes[16] ^= 1;
        }
        out.extend_from_slice(&bytes);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn recovery_of_arbitrary_bytes_is_total(
        manifest in proptest::collection::vec(any::<u8>(), 0..24),
        idx in proptest::collection::vec(any::<u8>(), 0..120),
        dat in proptest::collection::vec(any::<u8>(), 0..64),
        ts in proptest::collection::vec(any::<u8>(), 0..64),
        legacy in any::<bool>(),
    ) {
        recover(&manifest, &idx, &dat, &ts, legacy)?;
    }

    #[test]
    fn recovery_of_plausible_indexes_is_total(
        dat in proptest::collection::vec(any::<u8>(), 0..96),
        records in proptest::collection::vec((0u64..12, any::<u32>(), any::<u32>(), any::<bool>(), any::<bool>()), 0..8),
        tail in proptest::collection::vec(any::<u8>(), 0..19),
        ts in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        let mut idx = plausible_idx(&dat, &records);
        idx.extend_from_slice(&tail);
        let manifest = net::redex::format::Manifest { generation: net::redex::format::Generation(1) }.encode();
        recover(&manifest, &idx, &dat, &ts, false)?;
    }
}
