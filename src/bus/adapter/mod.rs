//! The durable side of the bus: the [`Adapter`] trait and its
//! implementations. The embedded RedEX adapter is the default and always
//! built; JetStream (feature `jetstream`) and Redis Streams (feature
//! `redis`) take the bus beyond one machine. The in-memory adapter (fault
//! injection) and the discard one (load tests) exist only in `test-util`
//! builds.

#[cfg(feature = "test-util")]
mod discard;
#[cfg(feature = "jetstream")]
pub mod jetstream;
#[cfg(feature = "test-util")]
mod memory;
mod redex;
#[cfg(feature = "redis")]
pub mod redis;

#[cfg(feature = "test-util")]
pub use discard::DiscardAdapter;
#[cfg(feature = "jetstream")]
pub use jetstream::{JetStreamAdapter, JetStreamConfig};
#[cfg(feature = "test-util")]
pub use memory::{FaultKind, MemoryAdapter};
pub use redex::RedexAdapter;
#[cfg(feature = "redis")]
pub use redis::{RedisAdapter, RedisConfig};

use async_trait::async_trait;

use super::error::AdapterError;

/// The optional adapters a build of the crate has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BuiltIn {
    /// `JetStreamAdapter` (feature `jetstream`).
    pub jetstream: bool,
    /// `RedisAdapter` (feature `redis`).
    pub redis: bool,
    /// `MemoryAdapter` and `DiscardAdapter` (feature `test-util`).
    pub test_util: bool,
}

impl BuiltIn {
    /// This build.
    pub(crate) const THIS_BUILD: Self = Self {
        jetstream: cfg!(feature = "jetstream"),
        redis: cfg!(feature = "redis"),
        test_util: cfg!(feature = "test-util"),
    };
}

/// Why the adapter type `kind` (as a configuration names it) cannot be
/// used with the adapters `built`: None when it can, or is not an adapter
/// type at all (the configuration parser reports those).
pub(crate) fn unavailable(kind: &str, built: BuiltIn) -> Option<String> {
    let feature = match kind {
        "jetstream" if !built.jetstream => "jetstream",
        "redis" if !built.redis => "redis",
        "memory" | "discard" if !built.test_util => {
            return Some(format!(
                "adapter.type: \"{kind}\" is a test-only adapter (cargo feature `test-util`), \
                 not built into this library; use {{\"type\": \"redex\"}} (in-memory files \
                 without \"dir\")"
            ));
        }
        _ => return None,
    };
    Some(format!(
        "adapter.type: \"{kind}\" is not built into this library (cargo feature `{feature}` disabled)"
    ))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapters_missing_from_a_build_are_named_with_their_feature() {
        let none = BuiltIn {
            jetstream: false,
            redis: false,
            test_util: false,
        };
        let js = unavailable("jetstream", none).unwrap();
        assert!(
            js.contains("\"jetstream\"") && js.contains("feature `jetstream`"),
            "{js}"
        );
        let redis = unavailable("redis", none).unwrap();
        assert!(redis.contains("feature `redis`"), "{redis}");
        for kind in ["memory", "discard"] {
            let m = unavailable(kind, none).unwrap();
            assert!(m.contains("test-only") && m.contains("`test-util`"), "{m}");
        }
        assert_eq!(unavailable("redex", none), None);
        assert_eq!(unavailable("nonsense", none), None, "left to the parser");
        let all = BuiltIn {
            jetstream: true,
            redis: true,
            test_util: true,
        };
        for kind in ["jetstream", "redis", "memory", "discard", "redex"] {
            assert_eq!(unavailable(kind, all), None, "{kind}");
        }
    }
}
