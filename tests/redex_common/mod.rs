//! Shared by the RedEX suites: Net v0.11's open algorithm (STORAGE.md §7.2,
//! steps 2–7 and 10) written out literally over a generation's bytes, so we
//! can check that v0.11 reads what we write.

#![allow(dead_code)]

use net::redex::format::{IdxRecord, PayloadRef, checksum28};

/// What v0.11 would recover from one generation's `idx` and `dat`: its
/// entries (seq, payload) and the seq its next append would get.
pub fn v011_open(idx: &[u8], dat: &[u8]) -> (Vec<(u64, Vec<u8>)>, u64) {
    // Step 2: whole records.
    let mut records = IdxRecord::decode_all(idx);
    // Step 4: torn-tail trim, walking back over heap records past dat.
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
    // Step 5: dat truncated to the last heap end.
    let e = records
        .iter()
        .filter_map(|r| r.payload.heap_end())
        .max()
        .unwrap_or(0);
    let dat = &dat[..(e.min(d)) as usize];
    // Step 7: checksum filter (memory only).
    let mut entries = Vec::new();
    for r in &records {
        let payload = match r.payload {
            PayloadRef::Inline(bytes) => bytes.to_vec(),
            PayloadRef::Heap { offset, len } => {
                let end = u64::from(offset) + u64::from(len);
                if end > dat.len() as u64 {
                    continue;
                }
                dat[offset as usize..end as usize].to_vec()
            }
        };
        if checksum28(&payload) == r.checksum {
            entries.push((r.seq, payload));
        }
    }
    // Step 10.
    let next = entries.last().map_or(0, |e| e.0 + 1);
    (entries, next)
}
