//! One shard: a lock-free bounded buffer that producers push into and the
//! shard's worker drains, its lifecycle state, and its counters.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

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

/// A shard.
pub(crate) struct Shard {
    pub id: u16,
    queue: ArrayQueue<Vec<u8>>,
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
            queue: ArrayQueue::new(capacity),
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

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Fill ratio 0..=1.
    pub fn fill(&self) -> f64 {
        self.queue.len() as f64 / self.queue.capacity() as f64
    }

    pub fn pop(&self) -> Option<Vec<u8>> {
        self.queue.pop()
    }

    /// Queues one event under `mode`.
    pub fn push(&self, event: Vec<u8>, mode: BackpressureMode) -> Result<()> {
        let c = &self.counters;
        if let BackpressureMode::Sample {
            keep_one_in,
            high_water,
        } = mode
            && self.fill() >= high_water
        {
            let tick = self.sample_tick.fetch_add(1, Ordering::Relaxed);
            if !tick.is_multiple_of(u64::from(keep_one_in)) {
                c.sampled.fetch_add(1, Ordering::Relaxed);
                return Err(BusError::Sampled);
            }
        }
        match mode {
            BackpressureMode::DropOldest => {
                if self.queue.force_push(event).is_some() {
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            BackpressureMode::FailProducer => {
                if self.queue.push(event).is_err() {
                    return Err(BusError::Backpressure { shard: self.id });
                }
            }
            _ => {
                if self.queue.push(event).is_err() {
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                    return Err(BusError::Backpressure { shard: self.id });
                }
            }
        }
        c.ingested.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

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
        assert_eq!(s.pop(), Some(vec![0]));
    }

    #[test]
    fn drop_oldest_makes_room_and_counts() {
        let s = full(BackpressureMode::DropOldest);
        s.push(vec![9], BackpressureMode::DropOldest).unwrap();
        assert_eq!(s.counters.dropped.load(Ordering::Relaxed), 1);
        let drained: Vec<_> = std::iter::from_fn(|| s.pop()).collect();
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
    fn transitions_are_idempotent() {
        let s = Shard::new(0, 2);
        assert!(s.transition(ShardState::Provisioning, ShardState::Active));
        assert!(!s.transition(ShardState::Provisioning, ShardState::Active));
        assert_eq!(s.state(), ShardState::Active);
    }
}
