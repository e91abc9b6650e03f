//! The discard adapter: counts what it is given and stores nothing, so a
//! bus over it measures (or load-tests) producers and the bus itself, not
//! a backend. Polls return nothing.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{Adapter, Batch, ShardPage};
use crate::bus::error::AdapterError;

/// Stores nothing; counts the events it was handed.
#[derive(Debug, Default)]
pub struct DiscardAdapter {
    events: AtomicU64,
}

impl DiscardAdapter {
    /// A new, empty counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events handed to `on_batch` so far.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Adapter for DiscardAdapter {
    async fn init(&self, _shards: &[u16]) -> Result<(), AdapterError> {
        Ok(())
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        self.events
            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
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
        _shard: u16,
        _after: Option<&str>,
        _limit: usize,
    ) -> Result<ShardPage, AdapterError> {
        Ok(ShardPage::default())
    }

    fn name(&self) -> &'static str {
        "discard"
    }

    async fn is_healthy(&self) -> bool {
        true
    }
}
