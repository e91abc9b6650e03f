//! The durable side of the bus: the [`Adapter`] trait and its
//! implementations. The embedded RedEX adapter is the default; JetStream
//! and Redis Streams take the bus beyond one machine; the in-memory one is
//! for tests and examples, the discard one for load tests.

mod discard;
pub mod jetstream;
mod memory;
mod redex;
pub mod redis;

pub use discard::DiscardAdapter;
pub use jetstream::{JetStreamAdapter, JetStreamConfig};
pub use memory::{FaultKind, MemoryAdapter};
pub use redex::RedexAdapter;
pub use redis::{RedisAdapter, RedisConfig};

use async_trait::async_trait;

use super::error::AdapterError;

/// One event in a batch: its shard timestamp and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEvent {
    /// Nanoseconds since the Unix epoch, strictly increasing per shard.
    pub timestamp_ns: u64,
    /// The event bytes.
    pub payload: Vec<u8>,
}

/// A batch of one shard's events. `sequence_start` numbers the batch's
/// first event; per shard, every batch starts where the previous one
/// ended (`start[n+1] == start[n] + len[n]`), retries reuse the same
/// numbers, so `(producer nonce, shard, sequence_start, index)` names an
/// event uniquely for server-side dedup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The producer's nonce: persisted across restarts with a producer
    /// state file, random per bus otherwise.
    pub producer_nonce: u64,
    /// The shard.
    pub shard_id: u16,
    /// Sequence number of `events[0]`.
    pub sequence_start: u64,
    /// The events, oldest first.
    pub events: Vec<BatchEvent>,
}

/// An event read back from an adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The shard it was written to.
    pub shard_id: u16,
    /// Its id within the shard (adapter-specific text, ordered within
    /// the shard).
    pub id: String,
    /// The bus timestamp it was written with.
    pub timestamp_ns: u64,
    /// The event bytes.
    pub payload: Vec<u8>,
    /// The producer's dedup id (`nonce:shard:sequence:index`) where the
    /// adapter stores it (JetStream's `Nats-Msg-Id`, Redis's `d` field);
    /// feed it to [`RedisStreamDedup`](crate::bus::RedisStreamDedup).
    pub dedup_id: Option<String>,
}

/// A page of one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardPage {
    /// Events after the requested position, oldest first.
    pub events: Vec<StoredEvent>,
    /// Whether more events follow the last one.
    pub has_more: bool,
}

/// A durable store for the bus's batches, readable back per shard.
/// Calls are bounded by the bus's `adapter_timeout`; a call that returns a
/// retryable error may be repeated with the same batch.
#[async_trait]
pub trait Adapter: Send + Sync + 'static {
    /// Prepares storage for `shards` (called at start, and with one id
    /// when a shard is added).
    async fn init(&self, shards: &[u16]) -> Result<(), AdapterError>;
    /// Stores a batch durably (as durable as the adapter is).
    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError>;
    /// Makes everything stored so far durable.
    async fn flush(&self) -> Result<(), AdapterError>;
    /// Releases the adapter's resources; no call follows.
    async fn shutdown(&self) -> Result<(), AdapterError>;
    /// Up to `limit` events of `shard` after position `after` (an event
    /// id; None: from the beginning).
    async fn poll_shard(
        &self,
        shard: u16,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ShardPage, AdapterError>;
    /// A short name for errors and stats ("redex", "jetstream", ...).
    fn name(&self) -> &'static str;
    /// Whether the adapter can take batches now.
    async fn is_healthy(&self) -> bool;
}

/// A stored record of a server adapter: the event's 8-byte little-endian
/// timestamp, then its bytes.
pub(crate) fn encode_record(timestamp_ns: u64, payload: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(8 + payload.len());
    r.extend_from_slice(&timestamp_ns.to_le_bytes());
    r.extend_from_slice(payload);
    r
}

/// Splits a record into its timestamp and its bytes; None when it is
/// shorter than the timestamp.
pub(crate) fn decode_record(record: &[u8]) -> Option<(u64, &[u8])> {
    let (ts, payload) = record.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*ts), payload))
}

/// The first sequence after position `after` (None: 0) for adapters whose
/// event ids are decimal sequence numbers.
pub(crate) fn first_after(adapter: &'static str, after: Option<&str>) -> Result<u64, AdapterError> {
    match after {
        Some(id) => Ok(parse_seq_id(adapter, id)?.saturating_add(1)),
        None => Ok(0),
    }
}

/// Parses a decimal event id (RedEX and JetStream positions); a malformed
/// id is fatal (it came from a corrupted cursor or remote data).
pub(crate) fn parse_seq_id(adapter: &'static str, id: &str) -> Result<u64, AdapterError> {
    id.parse::<u64>().map_err(|_| {
        AdapterError::fatal(
            adapter,
            super::error::Reason(format!("event id {id:?} is not a sequence number")),
        )
    })
}
