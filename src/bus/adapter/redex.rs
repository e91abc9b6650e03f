//! The embedded adapter: one RedEX file per shard (`<prefix>/shard-<id>`),
//! so one machine gets durable, pollable events with no server. A record
//! is the event's 8-byte little-endian timestamp followed by its bytes; an
//! event's id is its RedEX sequence number.

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;

use super::{Adapter, Batch, ShardPage, StoredEvent, decode_record, encode_record, first_after};
use crate::bus::error::{AdapterError, Reason};
use crate::redex::{Redex, RedexError, RedexFile, RedexFileConfig};

const NAME: &str = "redex";

/// The RedEX-backed adapter.
pub struct RedexAdapter {
    redex: Redex,
    prefix: String,
    config: RedexFileConfig,
    files: RwLock<HashMap<u16, RedexFile>>,
}

impl RedexAdapter {
    /// Shard files named `<prefix>/shard-<id>` under `redex`, opened with
    /// `config` (persistent files need a manager with a directory).
    pub fn new(redex: Redex, prefix: &str, config: RedexFileConfig) -> Self {
        Self {
            redex,
            prefix: prefix.to_owned(),
            config,
            files: RwLock::new(HashMap::new()),
        }
    }

    /// The channel name of `shard`'s file.
    pub fn channel(&self, shard: u16) -> String {
        format!("{}/shard-{shard:05}", self.prefix)
    }

    fn file(&self, shard: u16) -> Result<RedexFile, AdapterError> {
        if let Some(f) = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&shard)
        {
            return Ok(f.clone());
        }
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = files.get(&shard) {
            return Ok(f.clone());
        }
        let file = self
            .redex
            .open_file(&self.channel(shard), self.config)
            .map_err(redex_error)?;
        files.insert(shard, file.clone());
        Ok(file)
    }
}

/// Closed files, bad names and configuration cannot heal by retrying;
/// I/O can.
fn redex_error(e: RedexError) -> AdapterError {
    match e {
        RedexError::Io { .. } | RedexError::Locked(_) => AdapterError::transient(NAME, e),
        _ => AdapterError::fatal(NAME, e),
    }
}

#[async_trait]
impl Adapter for RedexAdapter {
    async fn init(&self, shards: &[u16]) -> Result<(), AdapterError> {
        for &s in shards {
            self.file(s)?;
        }
        Ok(())
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        let file = self.file(batch.shard_id)?;
        let records: Vec<Vec<u8>> = batch
            .events
            .iter()
            .map(|e| encode_record(e.timestamp_ns, &e.payload))
            .collect();
        file.append_batch(&records).map_err(redex_error)?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), AdapterError> {
        let files: Vec<RedexFile> = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for f in files {
            f.sync().map_err(redex_error)?;
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), AdapterError> {
        let files: Vec<RedexFile> = self
            .files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, f)| f)
            .collect();
        let mut first = None;
        for f in files {
            if let Err(e) = f.close() {
                first.get_or_insert(redex_error(e));
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn poll_shard(
        &self,
        shard: u16,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ShardPage, AdapterError> {
        let from = first_after(NAME, after)?;
        let file = self.file(shard)?;
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let entries = file
            .read_range(from..from.saturating_add(limit))
            .map_err(redex_error)?;
        let mut events = Vec::with_capacity(entries.len());
        for (seq, record) in entries {
            let (timestamp_ns, payload) = decode_record(&record).ok_or_else(|| {
                AdapterError::fatal(
                    NAME,
                    Reason(format!(
                        "shard {shard} entry {seq} is {} bytes, shorter than its timestamp",
                        record.len()
                    )),
                )
            })?;
            events.push(StoredEvent {
                shard_id: shard,
                id: seq.to_string(),
                timestamp_ns,
                payload: payload.to_vec(),
                dedup_id: None,
            });
        }
        let end = from.saturating_add(limit);
        Ok(ShardPage {
            events,
            has_more: end < file.next_seq(),
        })
    }

    fn name(&self) -> &'static str {
        NAME
    }

    async fn is_healthy(&self) -> bool {
        true
    }
}
