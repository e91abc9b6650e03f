//! The Redis Streams adapter: one stream per shard (`<prefix>:shard:<id>`).
//! A batch is one pipelined round trip of `XADD`s; every entry holds the
//! event's dedup id (`d`: `nonce:shard:sequence:index`) and `data`: the bus
//! timestamp (8 bytes, little-endian) then the event's bytes. An event's id
//! is its stream entry id.
//!
//! Redis has no server-side dedup: a pipeline that timed out may have been
//! applied, and its retry then writes the entries again. Consumers drop
//! such repeats with [`RedisStreamDedup`](crate::bus::RedisStreamDedup)
//! keyed by the `d` field (exposed as [`StoredEvent::dedup_id`]); the
//! adapter says so once per process when it starts.

use std::sync::Once;
use std::time::Duration;

use async_trait::async_trait;
use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::{Adapter, Batch, ShardPage, StoredEvent, decode_record};
use crate::bus::DedupIds;
use crate::bus::error::{AdapterError, Reason};

const NAME: &str = "redis";
const FIELD_DEDUP: &str = "d";
const FIELD_DATA: &str = "data";

static DUPLICATE_HAZARD_WARNING: Once = Once::new();

/// Where and how the adapter stores its streams.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Server URL (`redis://127.0.0.1:6379`).
    pub url: String,
    /// Stream keys are `<prefix>:shard:<id>`.
    pub prefix: String,
    /// Trim each stream to about this many entries (`XADD MAXLEN ~`);
    /// none: keep everything.
    pub max_len: Option<u64>,
    /// Every command (the health PING included) is bounded by this (ms).
    pub command_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            prefix: "net:bus".into(),
            max_len: None,
            command_timeout_ms: 5_000,
        }
    }
}

impl RedisConfig {
    /// Checks the prefix and the timeout.
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.prefix.is_empty() || self.prefix.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(format!(
                "prefix: {:?} must be non-empty without whitespace",
                self.prefix
            ));
        }
        if self.command_timeout_ms == 0 {
            return Err("command_timeout_ms: must be at least 1".into());
        }
        if self.max_len == Some(0) {
            return Err("max_len: must be at least 1 (or absent)".into());
        }
        Ok(())
    }
}

/// The Redis Streams adapter. It connects in `init` (on the bus's
/// runtime); the connection manager reconnects after the server goes away.
pub struct RedisAdapter {
    config: RedisConfig,
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
}

fn transient(cause: impl Into<crate::bus::error::Cause>) -> AdapterError {
    AdapterError::transient(NAME, cause)
}

fn fatal(msg: String) -> AdapterError {
    AdapterError::fatal(NAME, Reason(msg))
}

/// Connection loss, timeouts and busy servers heal; a wrong type or a
/// refused command does not.
fn redis_error(e: redis::RedisError) -> AdapterError {
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
                | redis::ErrorKind::Server(redis::ServerErrorKind::TryAgain)
                | redis::ErrorKind::Server(redis::ServerErrorKind::MasterDown)
        )
    {
        transient(e)
    } else {
        AdapterError::fatal(NAME, e)
    }
}

impl RedisAdapter {
    /// An adapter for `config` (validated; nothing connects until `init`).
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn new(config: RedisConfig) -> Result<Self, String> {
        config.validate()?;
        let client = redis::Client::open(config.url.as_str()).map_err(|e| format!("url: {e}"))?;
        Ok(Self {
            config,
            client,
            conn: OnceCell::new(),
        })
    }

    /// The stream key of `shard`.
    pub fn key(&self, shard: u16) -> String {
        format!("{}:shard:{shard}", self.config.prefix)
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.command_timeout_ms)
    }

    async fn connection(&self) -> Result<ConnectionManager, AdapterError> {
        self.conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout()))
                    .set_response_timeout(Some(self.timeout()))
                    .set_max_delay(Duration::from_millis(500))
                    .set_number_of_retries(3);
                ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                    .map_err(redis_error)
            })
            .await
            .cloned()
    }

    /// Runs `fut` under the command timeout.
    async fn bounded<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, AdapterError> {
        match tokio::time::timeout(self.timeout(), fut).await {
            Ok(r) => r.map_err(redis_error),
            Err(_) => Err(transient(Reason(format!(
                "no reply within {} ms",
                self.config.command_timeout_ms
            )))),
        }
    }
}

/// The `XRANGE ... COUNT` for `limit`: one more than asked tells whether
/// more follow; saturating, and capped at the largest count Redis accepts
/// (a signed 64-bit integer).
fn range_count(limit: usize) -> u64 {
    u64::try_from(limit)
        .unwrap_or(u64::MAX)
        .saturating_add(1)
        .min(i64::MAX as u64)
}

fn bulk<'a>(v: &'a Value, what: &str, shard: u16) -> Result<&'a [u8], AdapterError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.as_bytes()),
        other => Err(fatal(format!(
            "stream of shard {shard}: {what} is {other:?}, not a string"
        ))),
    }
}

/// Parses one `XRANGE` entry (`[id, [field, value, ...]]`); anything
/// malformed is fatal, never defaulted.
fn parse_entry(v: &Value, shard: u16) -> Result<StoredEvent, AdapterError> {
    let Value::Array(parts) = v else {
        return Err(fatal(format!("stream of shard {shard}: entry is {v:?}")));
    };
    let [id, fields] = parts.as_slice() else {
        return Err(fatal(format!(
            "stream of shard {shard}: entry has {} parts, not 2",
            parts.len()
        )));
    };
    let id = String::from_utf8(bulk(id, "entry id", shard)?.to_vec())
        .map_err(|_| fatal(format!("stream of shard {shard}: entry id is not UTF-8")))?;
    let fields: &[Value] = match fields {
        Value::Array(f) => f,
        Value::Map(_) => {
            return Err(fatal(format!(
                "stream of shard {shard}, entry {id}: fields arrived as a map"
            )));
        }
        other => {
            return Err(fatal(format!(
                "stream of shard {shard}, entry {id}: fields are {other:?}"
            )));
        }
    };
    if !fields.len().is_multiple_of(2) {
        return Err(fatal(format!(
            "stream of shard {shard}, entry {id}: odd field list"
        )));
    }
    let (mut dedup, mut data) = (None, None);
    for pair in fields.chunks_exact(2) {
        let value = bulk(&pair[1], "field value", shard)?;
        match bulk(&pair[0], "field name", shard)? {
            b"d" => dedup = Some(value),
            b"data" => data = Some(value),
            _ => {}
        }
    }
    let missing = |f: &str| fatal(format!("stream of shard {shard}, entry {id}: no {f} field"));
    let dedup = dedup.ok_or_else(|| missing(FIELD_DEDUP))?;
    let dedup = String::from_utf8(dedup.to_vec()).map_err(|_| {
        fatal(format!(
            "stream of shard {shard}, entry {id}: d is not UTF-8"
        ))
    })?;
    let data = data.ok_or_else(|| missing(FIELD_DATA))?;
    let (timestamp_ns, payload) = decode_record(data).ok_or_else(|| {
        fatal(format!(
            "stream of shard {shard}, entry {id}: data of {} bytes is shorter than its timestamp",
            data.len()
        ))
    })?;
    Ok(StoredEvent {
        shard_id: shard,
        id,
        timestamp_ns,
        payload: payload.to_vec(),
        dedup_id: Some(dedup),
    })
}

/// Decodes an `XRANGE` reply of `shard`'s stream; anything malformed is
/// fatal.
///
/// # Errors
/// [`AdapterError::Fatal`] naming the entry and what is wrong with it.
pub fn decode_xrange(reply: &Value, shard: u16) -> Result<Vec<StoredEvent>, AdapterError> {
    match reply {
        Value::Array(entries) => entries.iter().map(|e| parse_entry(e, shard)).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(fatal(format!("XRANGE answered {other:?}"))),
    }
}

/// Checks a cursor position is a stream entry id (`<ms>-<seq>`).
fn check_entry_id(id: &str) -> Result<(), AdapterError> {
    let ok = id
        .split_once('-')
        .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(fatal(format!("event id {id:?} is not a stream entry id")))
    }
}

#[async_trait]
impl Adapter for RedisAdapter {
    async fn init(&self, _shards: &[u16]) -> Result<(), AdapterError> {
        DUPLICATE_HAZARD_WARNING.call_once(|| {
            tracing::warn!(
                "redis adapter: a pipelined XADD that times out may have been applied, and its \
                 retry writes the entries again; drop repeats on the consumer side with \
                 net::bus::RedisStreamDedup keyed by each event's dedup id"
            );
        });
        let mut conn = self.connection().await?;
        let pong: String = self
            .bounded(redis::cmd("PING").query_async(&mut conn))
            .await?;
        if pong != "PONG" {
            return Err(fatal(format!("PING answered {pong:?}")));
        }
        Ok(())
    }

    async fn on_batch(&self, batch: &Batch) -> Result<(), AdapterError> {
        let mut conn = self.connection().await?;
        let key = self.key(batch.shard_id);
        let ids = DedupIds::new(batch.producer_nonce, batch.shard_id, batch.sequence_start);
        let mut pipe = redis::pipe();
        // The command copies its arguments: build each in reused buffers.
        let (mut id, mut record) = (String::new(), Vec::new());
        for (i, e) in batch.events.iter().enumerate() {
            ids.write_id(i, &mut id);
            record.clear();
            record.extend_from_slice(&e.timestamp_ns.to_le_bytes());
            record.extend_from_slice(&e.payload);
            let cmd = pipe.cmd("XADD").arg(&key);
            if let Some(max) = self.config.max_len {
                cmd.arg("MAXLEN").arg("~").arg(max);
            }
            cmd.arg("*")
                .arg(FIELD_DEDUP)
                .arg(id.as_str())
                .arg(FIELD_DATA)
                .arg(record.as_slice())
                .ignore();
        }
        self.bounded(pipe.exec_async(&mut conn)).await
    }

    async fn flush(&self) -> Result<(), AdapterError> {
        // Every XADD was acknowledged before on_batch returned; durability
        // beyond that is the server's persistence setting.
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
        let start = match after {
            Some(id) => {
                check_entry_id(id)?;
                format!("({id}")
            }
            None => "-".to_owned(),
        };
        let mut conn = self.connection().await?;
        let reply: Value = self
            .bounded(
                redis::cmd("XRANGE")
                    .arg(self.key(shard))
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(range_count(limit))
                    .query_async(&mut conn),
            )
            .await?;
        let mut events = decode_xrange(&reply, shard)?;
        let has_more = events.len() > limit;
        events.truncate(limit);
        Ok(ShardPage { events, has_more })
    }

    fn name(&self) -> &'static str {
        NAME
    }

    async fn is_healthy(&self) -> bool {
        let Ok(mut conn) = self.connection().await else {
            return false;
        };
        self.bounded(redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bs(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn limits_saturate() {
        assert_eq!(range_count(usize::MAX), i64::MAX as u64);
        assert_eq!(range_count(10), 11);
    }

    #[test]
    fn entries_parse_and_malformed_ones_are_fatal() {
        let good = Value::Array(vec![
            bs(b"1-0"),
            Value::Array(vec![
                bs(b"d"),
                bs(b"x:1:0:0"),
                bs(b"data"),
                bs(&super::super::encode_record(42, b"\x00\xff")),
            ]),
        ]);
        let e = parse_entry(&good, 1).unwrap();
        assert_eq!(e.timestamp_ns, 42);
        assert_eq!(e.payload, b"\x00\xff");
        assert_eq!(e.dedup_id.as_deref(), Some("x:1:0:0"));
        let short = Value::Array(vec![
            bs(b"1-0"),
            Value::Array(vec![bs(b"d"), bs(b"x"), bs(b"data"), bs(b"1234567")]),
        ]);
        let missing = Value::Array(vec![
            bs(b"1-0"),
            Value::Array(vec![bs(b"data"), bs(&[0; 8])]),
        ]);
        for bad in [
            short,
            missing,
            Value::Int(3),
            Value::Array(vec![bs(b"1-0")]),
        ] {
            assert!(!parse_entry(&bad, 1).unwrap_err().is_retryable());
        }
    }

    #[test]
    fn cursor_positions_must_be_entry_ids() {
        assert!(check_entry_id("1700000000000-3").is_ok());
        for bad in ["", "12", "a-1", "1-", "-1", "1-2-3"] {
            assert!(check_entry_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_is_checked() {
        assert!(RedisConfig::default().validate().is_ok());
        let c = RedisConfig {
            command_timeout_ms: 0,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().starts_with("command_timeout_ms"));
        let c = RedisConfig {
            prefix: "a b".into(),
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }
}
