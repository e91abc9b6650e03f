//! The event bus: sharded high-rate ingest into durable adapters, read back
//! through merged cursors.
//!
//! * [`EventBus`](crate::bus::EventBus) — producers call [`EventBus::ingest`](crate::bus::EventBus::ingest) /
//!   [`EventBus::ingest_batch`](crate::bus::EventBus::ingest_batch) with raw bytes; per-shard workers batch them
//!   ([`BatchConfig`](crate::bus::BatchConfig), adaptive) and hand them to an [`Adapter`](crate::bus::Adapter) with
//!   retries; [`EventBus::poll`](crate::bus::EventBus::poll) merges the shards back.
//! * Adapters: [`RedexAdapter`](crate::bus::RedexAdapter) (embedded, the default: one RedEX file per
//!   shard), `JetStreamAdapter` and `RedisAdapter` (one stream per shard on
//!   a server; features `jetstream` and `redis`, both default), and
//!   `MemoryAdapter` / `DiscardAdapter` (`test-util` builds only).
//! * [`BackpressureMode`](crate::bus::BackpressureMode) decides what a full shard does; [`ScalingPolicy`](crate::bus::ScalingPolicy)
//!   adds and removes shards; `shutdown` reports whether it lost anything.
//!
//! See `docs/bus.md`.

pub mod adapter;
mod batch;
mod config;
mod cursor;
pub mod dedup_state;
mod dispatch;
mod error;
mod event_bus;
mod filter;
mod poll;
pub mod redis_dedup;
mod scaling;
mod shard;
mod timestamp;

pub use adapter::{Adapter, Batch, BatchEvent, RedexAdapter, ShardPage, StoredEvent};
#[cfg(feature = "test-util")]
pub use adapter::{DiscardAdapter, FaultKind, MemoryAdapter};
#[cfg(feature = "jetstream")]
pub use adapter::{JetStreamAdapter, JetStreamConfig};
#[cfg(feature = "redis")]
pub use adapter::{RedisAdapter, RedisConfig};
pub use batch::BatchSizer;
pub use config::{BackpressureMode, BatchConfig, BusConfig, ScalingPolicy};
pub use cursor::CompositeCursor;
pub use dispatch::{AttemptReason, DispatchFailure, FailedAttempt, RetryPolicy, retry_backoff};
pub use error::{AdapterError, BusError, Cause, Reason};
pub use event_bus::{BatchIngest, BusStats, EventBus, ShutdownReport};
pub use filter::{Filter, Op};
pub use poll::{ConsumeResponse, MAX_POLL_LIMIT, PER_SHARD_FETCH_CAP, PollRequest};
pub use redis_dedup::{DedupIds, RedisStreamDedup, dedup_id, dedup_id_shard};
pub use scaling::{Decision, decide};
pub use shard::ShardState;
pub use timestamp::{IdCounter, TimestampGenerator};
