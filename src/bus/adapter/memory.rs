//! An in-memory adapter with fault injection: tests make it fail, stall or
//! refuse the next calls and check what the bus does about it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Adapter, Batch, ShardPage, StoredEvent, first_after};
use crate::bus::error::{AdapterError, Reason};

/// A fault the next `on_batch` calls suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Fails with a retryable error.
    Transient,
    /// Fails with a fatal error.
    Fatal,
    /// Sleeps this long before succeeding (to trip the timeout).
    Stall(Duration),
}

/// Stores batches in memory, one vector per shard; an event's id is its
/// index in its shard.
#[derive(Default)]
pub struct MemoryAdapter {
    shards: Mutex<BTreeMap<u16, Vec<StoredEvent>>>,
    faults: Mutex<VecDeque<FaultKind>>,
    init_faults: Mutex<VecDeque<AdapterError>>,
    batches: Mutex<Vec<(u16, u64, usize)>>,
    nonces: Mutex<std::collections::BTreeSet<u64>>,
    calls: AtomicU64,
    healthy: AtomicBool,
}

impl MemoryAdapter {
    /// An empty, healthy adapter.
    pub fn new() -> Self {
        let a = Self::default();
        a.healthy.store(true, Ordering::SeqCst);
        a
    }

    /// The next `on_batch` calls suffer these faults, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = FaultKind>) {
        self.lock_faults().extend(faults);
    }

    /// The next `init` call fails with `error`.
    pub fn fail_next_init(&self, error: AdapterError) {
        self.init_faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(error);
    }

    /// Every stored payload of `shard`, in order.
    pub fn payloads(&self, shard: u16) -> Vec<Vec<u8>> {
        self.lock()
            .get(&shard)
            .map(|v| v.iter().map(|e| e.payload.clone()).collect())
            .unwrap_or_default()
    }

    /// Every stored payload of every shard.
    pub fn all_payloads(&self) -> Vec<Vec<u8>> {
        self.lock()
            .values()
            .flat_map(|v| v.iter().map(|e| e.payload.clone()))
            .collect()
    }

    /// (shard, sequence_start, len) of every stored batch, in order.
    pub fn batches(&self) -> Vec<(u16, u64, usize)> {
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The producer nonces of every stored batch.
    pub fn nonces(&self) -> Vec<u64> {
        self.nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// `on_batch` calls so far (failed ones included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Sets what `is_healthy` answers.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, Vec<StoredEvent>>> {
        self.shards.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_faults(&self) -> std::sync::MutexGuard<'_, VecDeque<FaultKind>> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const NAME: &str = "memory";

#[async_trait]
impl Adapter for MemoryAdapter {
    async fn init(&self, shards: &[u16]) -> Result<(), AdapterError> {
        if let Some(e) = self
            .init_faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
        {
            return Err(e);
        }
        let mut map = self.lock();
        for &s in shards {
            map.entry(s).or_default();
        }
        Ok(())
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let fault = self.lock_faults().pop_front();
        match fault {
            Some(FaultKind::Transient) => {
                return Err(AdapterError::transient(NAME, Reason("injected".into())));
            }
            Some(FaultKind::Fatal) => {
                return Err(AdapterError::fatal(NAME, Reason("injected".into())));
            }
            Some(FaultKind::Stall(d)) => tokio::time::sleep(d).await,
            None => {}
        }
        let mut map = self.lock();
        let shard = map.entry(batch.shard_id).or_default();
        let ids =
            crate::bus::DedupIds::new(batch.producer_nonce, batch.shard_id, batch.sequence_start);
        for (i, e) in batch.events.iter().enumerate() {
            shard.push(StoredEvent {
                shard_id: batch.shard_id,
                id: shard.len().to_string(),
                timestamp_ns: e.timestamp_ns,
                payload: e.payload.clone(),
                dedup_id: Some(ids.id(i)),
            });
        }
        drop(map);
        self.nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(batch.producer_nonce);
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((batch.shard_id, batch.sequence_start, batch.events.len()));
        Ok(())
    }

    async fn flush(&self) -> Result<(), AdapterError> {
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), AdapterError> {
        Ok(())
    }

    async fn poll_shard(
        &self,
        shard: u16,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ShardPage, AdapterError> {
        let from = first_after(NAME, after)?;
        let map = self.lock();
        let Some(events) = map.get(&shard) else {
            return Ok(ShardPage::default());
        };
        let from = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(events.len());
        let end = from.saturating_add(limit).min(events.len());
        Ok(ShardPage {
            events: events[from..end].to_vec(),
            has_more: end < events.len(),
        })
    }

    fn name(&self) -> &'static str {
        NAME
    }

    async fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }
}
