//! One shard: a lock-free bounded buffer that producers push into and the
//! shard's worker drains, its lifecycle state, and its counters.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;

use super::config::BackpressureMode;
use super::error::{BusError, Result};

/// Where a shard is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ShardState {
    /// Created, its adapter side not yet initialised: not routable.
    Provisioning = 0,
    /// Takes events.
    Active = 1,
    /// Being removed: takes no new events; its worker dispatches what is
    /// queued, then stops.
    Draining = 2,
    /// Drained and stopped.
    Stopped = 3,
}

impl ShardState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Provisioning,
            1 => Self::Active,
            2 => Self::Draining,
            _ => Self::Stopped,
        }
    }
}

/// Counters of one shard.
#[derive(Debug, Default)]
pub struct ShardCounters {
    /// Events queued.
    pub ingested: AtomicU64,
    /// Events dropped by the backpressure policy (DropNewest, DropOldest,
    /// a full Sample shard).
    pub dropped: AtomicU64,
    /// Events decimated by the Sample policy.
    pub sampled: AtomicU64,
    /// Events handed to the adapter successfully.
    pub dispatched: AtomicU64,
    /// Events lost because their batch failed every dispatch attempt.
    pub dispatch_lost: AtomicU64,
}

/// A queued unit: one event, or a batch of events copied into one buffer
/// (one allocation for the whole batch: the fast ingest path).
#[derive(Debug)]
pub(crate) enum Item {
    One(Vec<u8>),
    Chunk { data: Vec<u8>, ends: Vec<usize> },
}

impl Item {
    pub fn events(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Chunk { ends, .. } => ends.len(),
        }
    }

    /// Event `i` of a chunk (or the single event for i = 0).
    pub fn event(&self, i: usize) -> &[u8] {
        match self {
            Self::One(e) => e,
            Self::Chunk { data, ends } => {
                let start = if i == 0 { 0 } else { ends[i - 1] };
                &data[start..ends[i]]
            }
        }
    }
}

/// How a chunk push went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChunkPush {
    pub queued: usize,
    pub sampled: usize,
    /// Events from the front dealt with (queued or sampled).
    pub taken: usize,
    pub refused: bool,
}

/// A shard.
pub(crate) struct Shard {
    pub id: u16,
    queue: ArrayQueue<Item>,
    /// Events queued (a chunk counts its events): the capacity is in
    /// events, reserved before an item is pushed.
    events: AtomicUsize,
    capacity: usize,
    state: AtomicU8,
    /// Producers between choosing this shard and finishing their push:
    /// draining waits for it to read zero twice.
    pub in_flight: AtomicU64,
    sample_tick: AtomicU64,
    pub counters: ShardCounters,
}

impl Shard {
    pub fn new(id: u16, capacity: usize) -> Self {
        Self {
            id,
            // Every item holds at least one event, so `capacity` items
            // always fit the reserved events.
            queue: ArrayQueue::new(capacity),
            events: AtomicUsize::new(0),
            capacity,
            state: AtomicU8::new(ShardState::Provisioning as u8),
            in_flight: AtomicU64::new(0),
            sample_tick: AtomicU64::new(0),
            counters: ShardCounters::default(),
        }
    }

    pub fn state(&self) -> ShardState {
        ShardState::from_u8(self.state.load(Ordering::SeqCst))
    }

    /// Moves `from` → `to`; false if the shard was not in `from` (so
    /// repeated calls are idempotent).
    pub fn transition(&self, from: ShardState, to: ShardState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Events queued.
    pub fn len(&self) -> usize {
        self.events.load(Ordering::SeqCst)
    }

    /// Fill ratio 0..=1.
    pub fn fill(&self) -> f64 {
        self.len() as f64 / self.capacity as f64
    }

    pub fn pop(&self) -> Option<Item> {
        let item = self.queue.pop()?;
        self.events.fetch_sub(item.events(), Ordering::SeqCst);
        Some(item)
    }

    /// Reserves room for `n` events; false when they do not fit.
    fn reserve(&self, n: usize) -> bool {
        let before = self.events.fetch_add(n, Ordering::SeqCst);
        if before + n > self.capacity {
            self.events.fetch_sub(n, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Makes room for `n` events by dropping the oldest items (DropOldest);
    /// false if even an empty shard cannot take `n`.
    fn reserve_dropping_oldest(&self, n: usize) -> bool {
        if n > self.capacity {
            return false;
        }
        while !self.reserve(n) {
            if let Some(old) = self.pop() {
                self.counters
                    .dropped
                    .fetch_add(old.events() as u64, Ordering::Relaxed);
            } else {
                std::hint::spin_loop();
            }
        }
        true
    }

    /// Whether the Sample policy decimates the next event.
    fn sampled_out(&self, mode: BackpressureMode) -> bool {
        if let BackpressureMode::Sample {
            keep_one_in,
            high_water,
        } = mode
            && self.fill() >= high_water
        {
            let tick = self.sample_tick.fetch_add(1, Ordering::Relaxed);
            return !tick.is_multiple_of(u64::from(keep_one_in));
        }
        false
    }

    /// Reserves room for `n` events under `mode`; false when refused (and
    /// counted as dropped unless the producer keeps them).
    fn admit(&self, n: usize, mode: BackpressureMode) -> bool {
        match mode {
            BackpressureMode::DropOldest => self.reserve_dropping_oldest(n),
            BackpressureMode::FailProducer => self.reserve(n),
            _ => {
                let ok = self.reserve(n);
                if !ok {
                    self.counters.dropped.fetch_add(n as u64, Ordering::Relaxed);
                }
                ok
            }
        }
    }

    fn enqueue(&self, item: Item) {
        let n = item.events() as u64;
        // Cannot fail: items ≤ reserved events ≤ capacity = queue slots.
        if let Err(item) = self.queue.push(item) {
            self.events.fetch_sub(item.events(), Ordering::SeqCst);
            self.counters.dropped.fetch_add(n, Ordering::Relaxed);
            tracing::error!(shard = self.id, "shard queue full despite a reservation");
            return;
        }
        self.counters.ingested.fetch_add(n, Ordering::Relaxed);
    }

    /// Queues one event under `mode`.
    pub fn push(&self, event: Vec<u8>, mode: BackpressureMode) -> Result<()> {
        if self.sampled_out(mode) {
            self.counters.sampled.fetch_add(1, Ordering::Relaxed);
            return Err(BusError::Sampled);
        }
        if !self.admit(1, mode) {
            return Err(BusError::Backpressure { shard: self.id });
        }
        self.enqueue(Item::One(event));
        Ok(())
    }

    /// Queues events copied into chunks of at most `MAX_CHUNK` events (one
    /// allocation per chunk). Stops at the first chunk that does not fit.
    pub fn push_chunked<E: AsRef<[u8]>>(&self, events: &[E], mode: BackpressureMode) -> ChunkPush {
        let mut report = ChunkPush::default();
        for group in events.chunks(MAX_CHUNK) {
            let mut data = Vec::with_capacity(group.iter().map(|e| e.as_ref().len()).sum());
            let mut ends = Vec::with_capacity(group.len());
            let mut sampled = 0;
            for e in group {
                if self.sampled_out(mode) {
                    sampled += 1;
                    continue;
                }
                data.extend_from_slice(e.as_ref());
                ends.push(data.len());
            }
            if !ends.is_empty() {
                if !self.admit(ends.len(), mode) {
                    report.refused = true;
                    return report;
                }
                report.queued += ends.len();
                self.enqueue(Item::Chunk { data, ends });
            }
            self.counters
                .sampled
                .fetch_add(sampled as u64, Ordering::Relaxed);
            report.sampled += sampled;
            report.taken += group.len();
        }
        report
    }
}

/// Events per chunk of a batch push.
pub(crate) const MAX_CHUNK: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn full(mode: BackpressureMode) -> Shard {
        let s = Shard::new(3, 4);
        for i in 0..4u8 {
            s.push(vec![i], mode).unwrap();
        }
        s
    }

    #[test]
    fn drop_newest_refuses_and_counts() {
        let s = full(BackpressureMode::DropNewest);
        assert!(matches!(
            s.push(vec![9], BackpressureMode::DropNewest),
            Err(BusError::Backpressure { shard: 3 })
        ));
        assert_eq!(s.counters.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(s.pop().map(|i| i.event(0).to_vec()), Some(vec![0]));
    }

    #[test]
    fn drop_oldest_makes_room_and_counts() {
        let s = full(BackpressureMode::DropOldest);
        s.push(vec![9], BackpressureMode::DropOldest).unwrap();
        assert_eq!(s.counters.dropped.load(Ordering::Relaxed), 1);
        let drained: Vec<_> = std::iter::from_fn(|| s.pop().map(|i| i.event(0).to_vec())).collect();
        assert_eq!(drained, vec![vec![1], vec![2], vec![3], vec![9]]);
    }

    #[test]
    fn fail_producer_refuses_without_counting_a_drop() {
        let s = full(BackpressureMode::FailProducer);
        assert!(s.push(vec![9], BackpressureMode::FailProducer).is_err());
        assert_eq!(s.counters.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn sample_decimates_above_high_water_and_counts() {
        let mode = BackpressureMode::Sample {
            keep_one_in: 4,
            high_water: 0.5,
        };
        let s = Shard::new(1, 1000);
        for i in 0..500u32 {
            s.push(i.to_le_bytes().to_vec(), mode).unwrap();
        }
        let mut kept = 0;
        let mut sampled = 0;
        for i in 0..400u32 {
            match s.push(i.to_le_bytes().to_vec(), mode) {
                Ok(()) => kept += 1,
                Err(BusError::Sampled) => sampled += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(kept, 100, "one in four kept");
        assert_eq!(sampled, 300);
        assert_eq!(s.counters.sampled.load(Ordering::Relaxed), 300);
    }

    #[test]
    fn chunked_pushes_count_events_against_the_capacity() {
        let s = Shard::new(0, 3000);
        let events: Vec<Vec<u8>> = (0..2500u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let r = s.push_chunked(&events, BackpressureMode::FailProducer);
        assert_eq!((r.queued, r.taken, r.refused), (2500, 2500, false));
        assert_eq!(s.len(), 2500);
        let first = s.pop().unwrap();
        assert_eq!(first.events(), MAX_CHUNK);
        assert_eq!(first.event(1), 1u32.to_le_bytes());
        // 1476 queued + 1024 would exceed 3000: refused after one chunk.
        let r = s.push_chunked(&events, BackpressureMode::FailProducer);
        assert_eq!((r.queued, r.taken, r.refused), (1024, 1024, true));
        // DropOldest makes room by dropping whole old chunks.
        let r = s.push_chunked(&events[..1024], BackpressureMode::DropOldest);
        assert!(!r.refused);
        assert!(s.counters.dropped.load(Ordering::Relaxed) > 0);
        assert!(s.len() <= 3000);
    }

    #[test]
    fn transitions_are_idempotent() {
        let s = Shard::new(0, 2);
        assert!(s.transition(ShardState::Provisioning, ShardState::Active));
        assert!(!s.transition(ShardState::Provisioning, ShardState::Active));
        assert_eq!(s.state(), ShardState::Active);
    }
}
