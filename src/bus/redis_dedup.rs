//! [`RedisStreamDedup`]: the consumer-side duplicate filter for Redis
//! Streams. A producer that retries a pipelined `XADD` after a timeout may
//! have written the entry already; every entry carries its dedup id
//! (`nonce:shard:sequence:index`), and consumers drop ids they have seen.
//!
//! Eviction is **FIFO**, not LRU: the set remembers the most recent
//! `capacity` distinct ids *by first sight*; seeing an id again does not
//! refresh it. Capacity is clamped to `1 << 24`.

use std::collections::{HashSet, VecDeque};

/// The largest capacity (larger requests are clamped).
pub const MAX_CAPACITY: usize = 1 << 24;

/// A bounded FIFO set of recently seen dedup ids.
#[derive(Debug, Clone)]
pub struct RedisStreamDedup {
    capacity: usize,
    order: VecDeque<String>,
    seen: HashSet<String>,
    duplicates: u64,
}

impl RedisStreamDedup {
    /// A filter remembering up to `capacity` ids (clamped to
    /// 1..=[`MAX_CAPACITY`]).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        Self {
            capacity,
            order: VecDeque::new(),
            seen: HashSet::new(),
            duplicates: 0,
        }
    }

    /// The effective capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Duplicates reported so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// True if `id` was seen (and is still remembered); otherwise
    /// remembers it, evicting the oldest id when full, and returns false.
    pub fn is_duplicate(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            self.duplicates += 1;
            return true;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(id.to_owned());
        self.seen.insert(id.to_owned());
        false
    }

    /// Forgets every id.
    pub fn clear(&mut self) {
        self.order.clear();
        self.seen.clear();
    }
}

/// The dedup id of event `index` of the batch at `sequence_start` on
/// `shard`, from producer `nonce`: `nonce:shard:sequence:index` (the nonce
/// as 16 hex digits, the rest decimal).
pub fn dedup_id(nonce: u64, shard: u16, sequence_start: u64, index: usize) -> String {
    DedupIds::new(nonce, shard, sequence_start).id(index)
}

/// The dedup ids of one batch: the common prefix is formatted once.
#[derive(Debug, Clone)]
pub struct DedupIds {
    prefix: String,
}

impl DedupIds {
    /// The ids of the batch at `sequence_start` on `shard` from `nonce`.
    pub fn new(nonce: u64, shard: u16, sequence_start: u64) -> Self {
        Self {
            prefix: format!("{nonce:016x}:{shard}:{sequence_start}:"),
        }
    }

    /// The id of event `index`.
    pub fn id(&self, index: usize) -> String {
        let mut id = String::with_capacity(self.prefix.len() + 6);
        self.write_id(index, &mut id);
        id
    }

    /// Replaces `out` with the id of event `index` (reusing its buffer).
    pub fn write_id(&self, index: usize, out: &mut String) {
        use std::fmt::Write;
        out.clear();
        out.push_str(&self.prefix);
        let _ = write!(out, "{index}");
    }
}

/// The shard named by a dedup id (`nonce:shard:sequence:index`); None when
/// the id is malformed or the shard does not fit in 16 bits.
pub fn dedup_id_shard(id: &str) -> Option<u16> {
    let mut parts = id.split(':');
    let (nonce, shard, sequence, index) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let well_formed = parts.next().is_none()
        && nonce.len() == 16
        && u64::from_str_radix(nonce, 16).is_ok()
        && sequence.parse::<u64>().is_ok()
        && index.parse::<u64>().is_ok();
    if well_formed {
        shard.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_eviction_not_lru() {
        let mut d = RedisStreamDedup::new(2);
        assert!(!d.is_duplicate("a"));
        assert!(!d.is_duplicate("b"));
        assert!(d.is_duplicate("a"), "seen");
        // "a" was seen again but is still the oldest: FIFO evicts it.
        assert!(!d.is_duplicate("c"));
        assert!(!d.is_duplicate("a"), "evicted first despite the recent hit");
        assert!(d.is_duplicate("c"));
        assert_eq!(d.duplicates(), 2);
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn capacity_is_clamped() {
        assert_eq!(RedisStreamDedup::new(usize::MAX).capacity(), MAX_CAPACITY);
        assert_eq!(RedisStreamDedup::new(0).capacity(), 1);
    }

    #[test]
    fn ids_name_nonce_shard_sequence_and_index() {
        assert_eq!(dedup_id(0xab, 3, 1000, 7), "00000000000000ab:3:1000:7");
        assert_eq!(dedup_id_shard("00000000000000ab:3:1000:7"), Some(3));
        for bad in [
            "00000000000000ab:65536:1000:7",
            "00000000000000ab:-1:1000:7",
            "ab:3:1000:7",
            "00000000000000ab:3:1000",
            "00000000000000ab:3:1000:7:8",
            "00000000000000zz:3:1000:7",
            "",
        ] {
            assert_eq!(dedup_id_shard(bad), None, "{bad}");
        }
    }
}
