//! The in-memory index of a file's entries and the pure retention arithmetic.

use std::collections::VecDeque;
use std::time::Duration;

use super::config::RetentionPolicy;
use super::format::{IDX_RECORD_LEN, INLINE_LEN, IdxRecord, PayloadRef};

/// Where an entry's payload is, in memory terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadLoc {
    /// The 8 bytes themselves.
    Inline([u8; INLINE_LEN]),
    /// `len` bytes at `offset` in the store's payload space (for disk files,
    /// the byte offset in the live generation's `dat`).
    Heap { offset: u64, len: u32 },
}

impl PayloadLoc {
    /// Bytes this entry counts for in retention (STORAGE.md §9).
    pub(crate) fn retention_size(&self) -> u64 {
        match self {
            Self::Inline(_) => IDX_RECORD_LEN as u64,
            Self::Heap { len, .. } => IDX_RECORD_LEN as u64 + u64::from(*len),
        }
    }
}

/// One live entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) payload: PayloadLoc,
    /// 28-bit checksum of the payload.
    pub(crate) checksum: u32,
    /// UNIX nanoseconds at append.
    pub(crate) ts: u64,
}

impl Entry {
    /// The index record for this entry, with heap offsets as they are.
    pub(crate) fn to_record(self) -> IdxRecord {
        match self.payload {
            PayloadLoc::Inline(bytes) => IdxRecord::inline(self.seq, bytes),
            PayloadLoc::Heap { offset, len } => {
                IdxRecord::heap(self.seq, offset as u32, len, self.checksum)
            }
        }
    }

    /// The entry described by an index record and its timestamp.
    pub(crate) fn from_record(record: &IdxRecord, ts: u64) -> Self {
        let payload = match record.payload {
            PayloadRef::Inline(bytes) => PayloadLoc::Inline(bytes),
            PayloadRef::Heap { offset, len } => PayloadLoc::Heap {
                offset: u64::from(offset),
                len,
            },
        };
        Self {
            seq: record.seq,
            payload,
            checksum: record.checksum,
            ts,
        }
    }
}

/// How many leading entries a retention sweep removes: the largest of what
/// each limit requires (STORAGE.md §9). `now_ns` is the current UNIX time.
pub(crate) fn retention_cut(
    entries: &VecDeque<Entry>,
    policy: &RetentionPolicy,
    now_ns: u64,
) -> usize {
    let len = entries.len();
    let mut cut = 0usize;
    if let Some(max_events) = policy.max_events {
        let keep = usize::try_from(max_events).unwrap_or(usize::MAX);
        cut = cut.max(len.saturating_sub(keep));
    }
    if let Some(max_bytes) = policy.max_bytes {
        // Keep the longest suffix whose total size fits.
        let mut total = 0u64;
        let mut keep = 0usize;
        for entry in entries.iter().rev() {
            total = total.saturating_add(entry.payload.retention_size());
            if total > max_bytes {
                break;
            }
            keep += 1;
        }
        cut = cut.max(len - keep);
    }
    if let Some(max_age) = policy.max_age {
        let cutoff = now_ns.saturating_sub(duration_ns(max_age));
        // Entries at exactly the cutoff are retained (>=).
        let old = entries.iter().take_while(|e| e.ts < cutoff).count();
        cut = cut.max(old);
    }
    cut
}

pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(sizes_and_ts: &[(Option<u32>, u64)]) -> VecDeque<Entry> {
        sizes_and_ts
            .iter()
            .enumerate()
            .map(|(i, (len, ts))| Entry {
                seq: i as u64,
                payload: match len {
                    Some(len) => PayloadLoc::Heap {
                        offset: 0,
                        len: *len,
                    },
                    None => PayloadLoc::Inline([0; 8]),
                },
                checksum: 0,
                ts: *ts,
            })
            .collect()
    }

    #[test]
    fn no_limits_cut_nothing() {
        let e = entries(&[(Some(1), 1), (Some(2), 2)]);
        assert_eq!(retention_cut(&e, &RetentionPolicy::default(), 100), 0);
    }

    #[test]
    fn max_events() {
        let e = entries(&[(Some(1), 1), (None, 2), (Some(3), 3), (Some(4), 4)]);
        let p = RetentionPolicy {
            max_events: Some(2),
            ..Default::default()
        };
        assert_eq!(retention_cut(&e, &p, 0), 2);
        let p = RetentionPolicy {
            max_events: Some(10),
            ..Default::default()
        };
        assert_eq!(retention_cut(&e, &p, 0), 0);
        let p = RetentionPolicy {
            max_events: Some(0),
            ..Default::default()
        };
        assert_eq!(retention_cut(&e, &p, 0), 4);
    }

    #[test]
    fn max_bytes_keeps_the_longest_fitting_suffix() {
        // sizes: 21, 20 (inline), 23, 24
        let e = entries(&[(Some(1), 1), (None, 2), (Some(3), 3), (Some(4), 4)]);
        let p = |b| RetentionPolicy {
            max_bytes: Some(b),
            ..Default::default()
        };
        assert_eq!(retention_cut(&e, &p(24), 0), 3);
        assert_eq!(retention_cut(&e, &p(46), 0), 3);
        assert_eq!(retention_cut(&e, &p(47), 0), 2);
        assert_eq!(retention_cut(&e, &p(88), 0), 0);
        assert_eq!(retention_cut(&e, &p(0), 0), 4);
    }

    #[test]
    fn max_age_cutoff_is_inclusive() {
        let e = entries(&[(Some(1), 100), (Some(1), 200), (Some(1), 300)]);
        let p = RetentionPolicy {
            max_age: Some(Duration::from_nanos(100)),
            ..Default::default()
        };
        // now 300 → cutoff 200: the entry at exactly 200 is retained.
        assert_eq!(retention_cut(&e, &p, 300), 1);
        assert_eq!(retention_cut(&e, &p, 301), 2);
        assert_eq!(retention_cut(&e, &p, 299), 1);
        assert_eq!(retention_cut(&e, &p, 50), 0);
    }

    #[test]
    fn the_largest_requirement_wins() {
        let e = entries(&[
            (Some(1), 100),
            (Some(1), 200),
            (Some(1), 300),
            (Some(1), 400),
        ]);
        let p = RetentionPolicy {
            max_events: Some(3),
            max_bytes: Some(1000),
            max_age: Some(Duration::from_nanos(150)),
        };
        assert_eq!(retention_cut(&e, &p, 400), 2);
    }
}
