//! Snapshot reassembly driven by untrusted chunk sequences: never panics;
//! a rejected chunk changes nothing observable; a completed snapshot is
//! exactly the concatenation, in index order, of the last chunk accepted
//! for each index of that (origin, seq_through).
//!
//! Input: a sequence of 7-byte ops — origin (low 2 bits), seq_through,
//! chunk_index, total_chunks (each one byte, small on purpose so sets
//! complete), chunk length (byte: 8 × it, or a full 7 000-byte chunk from
//! 0xF0 up, so the in-order buffer is exercised too), fill byte, and
//! seconds to advance the clock (byte; the idle limit is 300 s, so sweeps
//! happen).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use net::compute::migration::SnapshotReassembler;
use net::compute::migration::wire::MAX_CHUNK_LEN;

type Model = HashMap<u64, (u64, BTreeMap<u32, Vec<u8>>)>;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let mut reassembler = SnapshotReassembler::with_limits(Duration::from_secs(300), 40_000);
    let mut now = Instant::now();
    let mut model: Model = HashMap::new();
    for op in data.chunks_exact(7) {
        let origin = u64::from(op[0] & 3);
        let seq = u64::from(op[1] & 7);
        let (index, total) = (u32::from(op[2] & 7), u32::from(op[3] & 7));
        let len = match op[4] {
            0xF0.. => MAX_CHUNK_LEN,
            n => usize::from(n) * 8,
        };
        let bytes = vec![op[5]; len];
        now += Duration::from_secs(u64::from(op[6]));
        reassembler.sweep(now);
        let before = (
            reassembler.pending_seq(origin),
            reassembler.latest_seq(origin),
            reassembler.buffered_bytes(origin),
        );
        match reassembler.feed(origin, seq, index, total, &bytes, now) {
            Err(_) => {
                let after = (
                    reassembler.pending_seq(origin),
                    reassembler.latest_seq(origin),
                    reassembler.buffered_bytes(origin),
                );
                assert_eq!(before, after, "a rejected chunk changed state");
            }
            Ok(done) => {
                let entry = model.entry(origin).or_insert((seq, BTreeMap::new()));
                if before.0 != Some(seq) {
                    *entry = (seq, BTreeMap::new());
                }
                entry.1.insert(index, bytes);
                if let Some(whole) = done {
                    let (_, chunks) = model.remove(&origin).expect("modelled");
                    assert_eq!(chunks.len(), total as usize);
                    assert!(chunks.keys().copied().eq(0..total));
                    assert_eq!(whole, chunks.into_values().collect::<Vec<_>>().concat());
                    assert_eq!(reassembler.pending_seq(origin), None);
                } else {
                    assert_eq!(reassembler.pending_seq(origin), Some(seq));
                }
            }
        }
    }
}
