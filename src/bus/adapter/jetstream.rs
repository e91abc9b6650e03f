//! The NATS JetStream adapter: one stream per shard
//! (`<prefix>_shard_<id>`, subject `<prefix>.shard.<id>`). Every event is
//! one message: the payload is the bus timestamp (8 bytes, little-endian)
//! then the event's bytes, and `Nats-Msg-Id` — the only header — is the
//! event's dedup id `nonce:shard:sequence:index`, so a batch retried after
//! a timeout, a reconnect or a producer restart is stored once within the
//! stream's duplicate window. An event's id is its stream sequence number.
//!
//! Reading walks stream sequences with pipelined message gets, skipping
//! deleted sequences; on a stream that has never held a message
//! (`first_seq == 0`) it gives up after [`COLD_STREAM_NOT_FOUND_CAP`]
//! consecutive misses instead of walking the whole window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt, stream as fstream};
use serde::Deserialize;

use super::{Adapter, Batch, ShardPage, StoredEvent, decode_record, encode_record, first_after};
use crate::bus::error::{AdapterError, Reason};
use crate::bus::{DedupIds, dedup_id_shard};

const NAME: &str = "jetstream";

/// Consecutive missing sequences after which a poll of a cold stream
/// (`first_seq == 0`) stops walking.
pub const COLD_STREAM_NOT_FOUND_CAP: u64 = 64;
/// Message gets in flight at once while polling.
const POLL_PIPELINE: usize = 64;

/// Where and how the adapter stores its streams.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JetStreamConfig {
    /// Server URL (`nats://127.0.0.1:4222`).
    pub url: String,
    /// Stream names are `<prefix>_shard_<id>`, subjects `<prefix>.shard.<id>`
    /// (letters, digits, `-` and `_` only).
    pub prefix: String,
    /// The server's duplicate window (ms): retries and restarts inside it
    /// are deduplicated by `Nats-Msg-Id`.
    pub duplicate_window_ms: u64,
    /// Keep streams in memory instead of files.
    pub memory_storage: bool,
    /// Connection and request timeout (ms).
    pub request_timeout_ms: u64,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            prefix: "net-bus".into(),
            duplicate_window_ms: 120_000,
            memory_storage: false,
            request_timeout_ms: 5_000,
        }
    }
}

impl JetStreamConfig {
    /// Checks the prefix and the timeouts.
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.prefix.is_empty()
            || !self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "prefix: {:?} must be non-empty letters, digits, '-' or '_'",
                self.prefix
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err("request_timeout_ms: must be at least 1".into());
        }
        if self.duplicate_window_ms == 0 {
            return Err("duplicate_window_ms: must be at least 1".into());
        }
        Ok(())
    }
}

/// The JetStream adapter. It connects in `init` (on the bus's runtime)
/// and reconnects by itself after the server goes away.
pub struct JetStreamAdapter {
    config: JetStreamConfig,
    conn: Mutex<Option<Connection>>,
    streams: Mutex<HashMap<u16, stream::Stream>>,
}

#[derive(Clone)]
struct Connection {
    client: async_nats::Client,
    js: jetstream::Context,
}

fn transient(cause: impl Into<crate::bus::error::Cause>) -> AdapterError {
    AdapterError::transient(NAME, cause)
}

fn fatal(msg: String) -> AdapterError {
    AdapterError::fatal(NAME, Reason(msg))
}

impl JetStreamAdapter {
    /// An adapter for `config` (validated; nothing connects until `init`).
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn new(config: JetStreamConfig) -> Result<Self, String> {
        config.validate()?;
        Ok(Self {
            config,
            conn: Mutex::new(None),
            streams: Mutex::new(HashMap::new()),
        })
    }

    /// The stream name of `shard`.
    pub fn stream_name(&self, shard: u16) -> String {
        format!("{}_shard_{shard}", self.config.prefix)
    }

    /// The subject of `shard`.
    pub fn subject(&self, shard: u16) -> String {
        format!("{}.shard.{shard}", self.config.prefix)
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms)
    }

    fn connection(&self) -> Result<Connection, AdapterError> {
        self.conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(AdapterError::NotConnected { adapter: NAME })
    }

    async fn connect(&self) -> Result<Connection, AdapterError> {
        if let Ok(c) = self.connection() {
            return Ok(c);
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(self.timeout())
            .request_timeout(Some(self.timeout()))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis(50u64.saturating_mul(1 << attempt.min(5)))
            })
            .connect(self.config.url.as_str())
            .await
            .map_err(transient)?;
        let js = jetstream::ContextBuilder::new()
            .timeout(self.timeout())
            .build(client.clone());
        let conn = Connection { client, js };
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        Ok(slot.get_or_insert(conn).clone())
    }

    async fn stream(&self, shard: u16) -> Result<stream::Stream, AdapterError> {
        if let Some(s) = self
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&shard)
        {
            return Ok(s.clone());
        }
        let conn = self.connect().await?;
        let s = conn
            .js
            .get_or_create_stream(stream::Config {
                name: self.stream_name(shard),
                subjects: vec![self.subject(shard)],
                duplicate_window: Duration::from_millis(self.config.duplicate_window_ms),
                storage: if self.config.memory_storage {
                    stream::StorageType::Memory
                } else {
                    stream::StorageType::File
                },
                ..Default::default()
            })
            .await
            .map_err(transient)?;
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(shard, s.clone());
        Ok(s)
    }
}

/// Whether a poll walking a stream should stop after
/// `consecutive_not_found` missing sequences: only on a cold stream
/// (`first_seq == 0`). A populated stream with deletion gaps (events at
/// 1, 500 and 1000) is walked past any gap.
pub fn cold_stream_bail(first_seq: u64, consecutive_not_found: u64) -> bool {
    first_seq == 0 && consecutive_not_found >= COLD_STREAM_NOT_FOUND_CAP
}

/// Decodes message `seq` of `shard`'s stream: `Nats-Msg-Id` must be a
/// dedup id whose shard fits in 16 bits and is `shard`, and the payload
/// must hold the 8-byte timestamp; anything else is fatal (never
/// defaulted).
///
/// # Errors
/// [`AdapterError::Fatal`] naming the stream position and what is wrong.
pub fn decode_message(
    shard: u16,
    seq: u64,
    headers: &HeaderMap,
    payload: &[u8],
) -> Result<StoredEvent, AdapterError> {
    let at = || format!("stream of shard {shard}, sequence {seq}");
    let id = headers
        .get(async_nats::header::NATS_MESSAGE_ID)
        .ok_or_else(|| fatal(format!("{}: no Nats-Msg-Id", at())))?
        .as_str();
    match dedup_id_shard(id) {
        Some(s) if s == shard => {}
        Some(other) => {
            return Err(fatal(format!(
                "{}: message id {id:?} names shard {other}",
                at()
            )));
        }
        None => {
            return Err(fatal(format!(
                "{}: message id {id:?} is not nonce:shard:sequence:index with a 16-bit shard",
                at()
            )));
        }
    }
    let (timestamp_ns, event) = decode_record(payload).ok_or_else(|| {
        fatal(format!(
            "{}: payload of {} bytes is shorter than its timestamp",
            at(),
            payload.len()
        ))
    })?;
    Ok(StoredEvent {
        shard_id: shard,
        id: seq.to_string(),
        timestamp_ns,
        payload: event.to_vec(),
        dedup_id: Some(id.to_owned()),
    })
}

#[async_trait]
impl Adapter for JetStreamAdapter {
    async fn init(&self, shards: &[u16]) -> Result<(), AdapterError> {
        self.connect().await?;
        for &s in shards {
            self.stream(s).await?;
        }
        Ok(())
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        self.stream(batch.shard_id).await?;
        let conn = self.connection()?;
        // A Subject clones by reference count, not by copying the text.
        let subject = async_nats::Subject::from(self.subject(batch.shard_id));
        let ids = DedupIds::new(batch.producer_nonce, batch.shard_id, batch.sequence_start);
        // Publish everything first (the client pipelines the writes), then
        // wait for the acks.
        let mut acks = Vec::with_capacity(batch.events.len());
        for (i, e) in batch.events.iter().enumerate() {
            let publish = PublishMessage::build()
                .payload(encode_record(e.timestamp_ns, &e.payload).into())
                .message_id(ids.id(i));
            acks.push(
                conn.js
                    .send_publish(subject.clone(), publish)
                    .await
                    .map_err(transient)?,
            );
        }
        for ack in acks {
            ack.await.map_err(transient)?;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), AdapterError> {
        // Every on_batch waited for its acks: stored messages are durable
        // as the stream's storage is. Push out anything still buffered.
        let conn = self.connection()?;
        conn.client.flush().await.map_err(transient)
    }

    async fn shutdown(&self) -> Result<(), AdapterError> {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(c) = conn {
            c.client.flush().await.map_err(transient)?;
        }
        Ok(())
    }

    async fn poll_shard(
        &self,
        shard: u16,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ShardPage, AdapterError> {
        let from = first_after(NAME, after)?;
        let mut s = self.stream(shard).await?;
        let state = s.info().await.map_err(transient)?.state.clone();
        let start = from.max(state.first_sequence).max(1);
        let last = state.last_sequence;
        let mut events = Vec::new();
        let mut consecutive_not_found = 0u64;
        let mut next = start;
        // The last sequence examined: more follow while it is below `last`.
        let mut walked = start.saturating_sub(1);
        // Sequences are fetched in pipelined windows; a window never asks
        // beyond `last`, and the walk stops once `limit` events are in.
        'walk: while next <= last && events.len() < limit {
            let room = limit - events.len();
            let window = POLL_PIPELINE.min(room).max(1) as u64;
            let end = next.saturating_add(window - 1).min(last);
            let fetched: Vec<(u64, Option<async_nats::jetstream::message::StreamMessage>)> =
                fstream::iter(next..=end)
                    .map(|q| {
                        let s = &s;
                        async move {
                            match s.get_raw_message(q).await {
                                Ok(m) => Ok((q, Some(m))),
                                Err(e)
                                    if e.kind()
                                        == stream::LastRawMessageErrorKind::NoMessageFound =>
                                {
                                    Ok((q, None))
                                }
                                Err(e) => Err(transient(e)),
                            }
                        }
                    })
                    .buffered(POLL_PIPELINE)
                    .try_collect()
                    .await?;
            for (q, message) in fetched {
                walked = q;
                let Some(m) = message else {
                    consecutive_not_found += 1;
                    if cold_stream_bail(state.first_sequence, consecutive_not_found) {
                        break 'walk;
                    }
                    continue;
                };
                consecutive_not_found = 0;
                events.push(decode_message(shard, q, &m.headers, &m.payload)?);
                if events.len() == limit {
                    break 'walk;
                }
            }
            next = end.saturating_add(1);
            if end == u64::MAX {
                break;
            }
        }
        let has_more = walked < last;
        Ok(ShardPage { events, has_more })
    }

    fn name(&self) -> &'static str {
        NAME
    }

    async fn is_healthy(&self) -> bool {
        self.connection()
            .is_ok_and(|c| c.client.connection_state() == async_nats::connection::State::Connected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_stream_bail_gate_only_fires_when_first_seq_is_zero() {
        assert!(cold_stream_bail(0, COLD_STREAM_NOT_FOUND_CAP));
        assert!(!cold_stream_bail(0, COLD_STREAM_NOT_FOUND_CAP - 1));
        // A populated sparse stream is walked past any gap.
        assert!(!cold_stream_bail(1, COLD_STREAM_NOT_FOUND_CAP * 100));
        assert!(!cold_stream_bail(500, u64::MAX));
    }

    #[test]
    fn config_rejects_bad_prefixes_and_zero_timeouts() {
        let ok = JetStreamConfig::default();
        assert!(ok.validate().is_ok());
        for prefix in ["", "a.b", "a b", "a*"] {
            let c = JetStreamConfig {
                prefix: prefix.into(),
                ..ok.clone()
            };
            assert!(c.validate().unwrap_err().starts_with("prefix"));
        }
        let c = JetStreamConfig {
            request_timeout_ms: 0,
            ..ok
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn stream_names_and_subjects_per_shard() {
        let a = JetStreamAdapter::new(JetStreamConfig::default()).unwrap();
        assert_eq!(a.stream_name(7), "net-bus_shard_7");
        assert_eq!(a.subject(7), "net-bus.shard.7");
    }
}
