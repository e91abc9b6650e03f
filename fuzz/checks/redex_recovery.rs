//! RedEX recovery over arbitrary manifest, idx, dat and ts bytes (in the
//! generation layout or the legacy flat one): opening never panics; whatever
//! it accepts reads back entries in strictly increasing seq order that its
//! report counts, `next_seq` lies above them, a new append takes `next_seq`
//! (or is refused at the seq limit), two more opens read the same entries,
//! keep `next_seq` and drop nothing, and Net v0.11's open (STORAGE.md §7.2)
//! reads the same entries from the files recovery left.

use std::sync::Arc;

use net::redex::fault::FaultyStorage;
use net::redex::format::{IdxRecord, PayloadRef, checksum28};
use net::redex::{Redex, RedexError, RedexFileConfig, SEQ_LIMIT};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let (head, rest) = data.split_at(4);
    let layout_legacy = head[0] & 1 == 1;
    let mut cuts = [
        usize::from(head[1]),
        usize::from(head[2]) * 4,
        usize::from(head[3]),
    ];
    let mut parts = Vec::new();
    let mut rest = rest;
    for cut in &mut cuts {
        let at = (*cut).min(rest.len());
        let (part, tail) = rest.split_at(at);
        parts.push(part);
        rest = tail;
    }
    parts.push(rest);
    let (manifest, idx, ts, dat) = (parts[0], parts[1], parts[2], parts[3]);

    let storage = FaultyStorage::new();
    let dir = if layout_legacy {
        "/f/chan".to_owned()
    } else {
        "/f/chan/v0000000001".to_owned()
    };
    if !layout_legacy {
        storage.write_file("/f/chan/manifest", manifest).unwrap();
    }
    storage.write_file(format!("{dir}/idx"), idx).unwrap();
    storage.write_file(format!("{dir}/dat"), dat).unwrap();
    storage.write_file(format!("{dir}/ts"), ts).unwrap();

    let redex = Redex::with_storage("/f", Arc::new(storage.clone()));
    let Ok(file) = redex.open_file("chan", RedexFileConfig::persistent()) else {
        return;
    };
    let entries = file.read_range(..).unwrap();
    assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
    let report = file.recovery_report().unwrap().clone();
    assert_eq!(report.entries, entries.len() as u64, "{report:?}");
    let next = file.next_seq();
    assert!(
        entries.last().is_none_or(|e| e.0 < next),
        "next_seq {next} at or below an entry"
    );
    assert!(next <= SEQ_LIMIT);
    let mut expected = entries;
    match file.append(b"after recovery") {
        Ok(seq) => {
            assert_eq!(seq, next, "an append takes next_seq");
            expected.push((seq, b"after recovery".to_vec()));
        }
        Err(RedexError::SeqExhausted { next_seq }) => assert_eq!(next_seq, SEQ_LIMIT),
        Err(e) => panic!("append after recovery: {e}"),
    }
    let next_after = file.next_seq();
    let generation = file.generation().unwrap();
    file.close().unwrap();
    // Nothing read or appended is lost by later opens, which find nothing
    // new to drop; next_seq holds.
    for _ in 0..2 {
        let again = redex
            .open_file("chan", RedexFileConfig::persistent())
            .unwrap();
        assert_eq!(again.read_range(..).unwrap(), expected);
        assert_eq!(again.next_seq(), next_after);
        let report = again.recovery_report().unwrap();
        assert!(report.dropped.is_empty(), "{report:?}");
        again.close().unwrap();
    }
    // And Net v0.11's open reads the same entries from what we left.
    let dir = format!("/f/chan/v{generation:010}");
    let idx = storage.read_file(format!("{dir}/idx")).unwrap();
    let dat = storage.read_file(format!("{dir}/dat")).unwrap();
    assert_eq!(v011_entries(&idx, &dat), expected);
}

/// STORAGE.md §7.2 steps 2-7 as v0.11 runs them: the entries it would read.
fn v011_entries(idx: &[u8], dat: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut records = IdxRecord::decode_all(idx);
    let d = dat.len() as u64;
    let mut cut = None;
    for (i, r) in records.iter().enumerate().rev() {
        match r.payload.heap_end() {
            None => continue,
            Some(end) if end > d => cut = Some(i),
            Some(_) => break,
        }
    }
    if let Some(cut) = cut {
        records.truncate(cut);
    }
    let e = records
        .iter()
        .filter_map(|r| r.payload.heap_end())
        .max()
        .unwrap_or(0);
    let dat = &dat[..e.min(d) as usize];
    records
        .iter()
        .filter_map(|r| {
            let payload = match r.payload {
                PayloadRef::Inline(bytes) => bytes.to_vec(),
                PayloadRef::Heap { offset, len } => {
                    let end = u64::from(offset) + u64::from(len);
                    dat.get(offset as usize..usize::try_from(end).ok()?)?
                        .to_vec()
                }
            };
            (checksum28(&payload) == r.checksum).then_some((r.seq, payload))
        })
        .collect()
}
