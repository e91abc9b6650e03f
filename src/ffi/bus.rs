//! `net_bus_*`: the event bus over the C ABI, and `net_redis_dedup_*`: the
//! consumer-side dedup helper for Redis Streams.
//!
//! Ingest moves raw bytes (one event, or a batch of slices in one
//! crossing); only the configuration, poll requests, stats and reports are
//! JSON. A poll returns its events as one buffer of records
//!
//! ```text
//! shard u16 LE | timestamp_ns u64 LE | id_len u16 LE | id (UTF-8)
//!   | dedup_len u16 LE | dedup id (UTF-8; 0 bytes: none) | len u32 LE | payload
//! ```
//!
//! and the rest of the response (cursor, flags) as JSON.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::bytes::{net_bytes_t, net_slice_t};
use super::cancel::{CallCancel, net_cancel_t, net_error_t};
use super::error::FfiError;
use super::export::ffi_export;
use super::handle::{self, HandleInner, opaque_handle};
use super::status::net_status_t;
use crate::bus::dedup_state::DedupStateFile;
use crate::bus::{
    Adapter, AdapterError, BatchIngest, BusConfig, BusError, ConsumeResponse, EventBus,
    PollRequest, RedexAdapter, RedisStreamDedup, adapter,
};
use crate::cancel::CancelToken;
use crate::redex::Redex;
use crate::redex::storage::FsStorage;

/// An event bus: shards, workers and the adapter behind them. Thread-safe;
/// freeing it shuts the bus down (draining what is buffered).
#[allow(non_camel_case_types)]
pub struct net_bus_t {
    _opaque: [u8; 0],
}

/// A bounded FIFO set of recently seen dedup ids. Thread-safe.
#[allow(non_camel_case_types)]
pub struct net_redis_dedup_t {
    _opaque: [u8; 0],
}

/// What `net_bus_ingest_raw_batch` did with a batch.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct net_bus_ingest_report_t {
    /// Events queued.
    pub queued: usize,
    /// Events decimated by the Sample policy (taken, not queued).
    pub sampled: usize,
    /// Events from the front that were dealt with (queued + sampled); the
    /// rest were refused by backpressure: retry them later.
    pub taken: usize,
}

/// A bus owned by the C side, and the token its free cancels so that a
/// flush or poll waiting on it returns. Freeing it shuts the bus down.
pub(crate) struct BusHandle {
    bus: EventBus,
    closing: CancelToken,
}

impl HandleInner for BusHandle {
    fn wake_blocked(&self) {
        self.closing.cancel();
    }

    fn close(self) -> Result<(), FfiError> {
        let report = self.bus.shutdown();
        if report.shutdown_was_lossy {
            return Err(FfiError::new(
                net_status_t::NET_ERR_BUSY,
                format!(
                    "the freed bus shut down lossily: {} events dropped, {} stranded{}",
                    report.events_dropped,
                    report.events_stranded,
                    report
                        .adapter_error
                        .map(|e| format!(", adapter error: {e}"))
                        .unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }
}
opaque_handle!(net_bus_t => BusHandle, kind = b"NBUS");

/// Maps a bus call interrupted through [`CallCancel::linked_with`].
fn bus_outcome<T>(
    result: Result<T, BusError>,
    cancel: &CallCancel,
    bus: &BusHandle,
) -> Result<T, FfiError> {
    match result {
        Err(BusError::Cancelled) => Err(cancel.interrupted(&bus.closing, "the bus")),
        other => other.map_err(FfiError::from),
    }
}

pub(crate) struct DedupHandle(Mutex<RedisStreamDedup>);

impl HandleInner for DedupHandle {}
opaque_handle!(net_redis_dedup_t => DedupHandle, kind = b"NRDD");

impl DedupHandle {
    fn lock(&self) -> std::sync::MutexGuard<'_, RedisStreamDedup> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl From<BusError> for FfiError {
    fn from(err: BusError) -> Self {
        let status = match &err {
            BusError::Backpressure { .. } => net_status_t::NET_ERR_BUS_BACKPRESSURE,
            BusError::Sampled => net_status_t::NET_ERR_BUS_SAMPLED,
            BusError::Unrouted => net_status_t::NET_ERR_BUS_UNROUTED,
            BusError::NotConnected | BusError::Adapter(AdapterError::NotConnected { .. }) => {
                net_status_t::NET_ERR_BUS_NOT_CONNECTED
            }
            BusError::ShuttingDown => net_status_t::NET_ERR_SHUTTING_DOWN,
            BusError::Cancelled => net_status_t::NET_ERR_CANCELLED,
            BusError::Adapter(e) if e.is_retryable() => net_status_t::NET_ERR_BUS_ADAPTER,
            BusError::Adapter(_) => net_status_t::NET_ERR_BUS_ADAPTER_FATAL,
            BusError::InvalidConfig(_) | BusError::ScalingLimit(_) => {
                net_status_t::NET_ERR_BUS_CONFIG
            }
            BusError::InvalidRequest(_) | BusError::UnknownShard(_) => {
                net_status_t::NET_ERR_BUS_INVALID_REQUEST
            }
            BusError::ProducerState(_) => net_status_t::NET_ERR_BUS_PRODUCER_STATE,
        };
        Self::new(status, err.to_string())
    }
}

fn config_error(message: impl Into<String>) -> FfiError {
    FfiError::new(net_status_t::NET_ERR_BUS_CONFIG, message)
}

/// The `"adapter"` object of a bus configuration: only the adapters this
/// build has (`build_adapter` names the missing ones first).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AdapterJson {
    Redex(RedexJson),
    #[cfg(feature = "jetstream")]
    Jetstream(crate::bus::JetStreamConfig),
    #[cfg(feature = "redis")]
    Redis(crate::bus::RedisConfig),
    #[cfg(feature = "test-util")]
    Memory(NoOptions),
    #[cfg(feature = "test-util")]
    Discard(NoOptions),
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RedexJson {
    /// Persistent shard files under this directory; none: memory files.
    dir: Option<String>,
    /// Channel prefix of the shard files.
    prefix: Option<String>,
    /// The RedEX file configuration of every shard file (as
    /// `net_redex_open_file`'s JSON; `persistent` follows `dir`).
    file: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The (empty) options of the memory and discard adapters.
#[cfg(feature = "test-util")]
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

fn build_adapter(value: Option<serde_json::Value>) -> Result<Arc<dyn Adapter>, FfiError> {
    if let Some(message) = value
        .as_ref()
        .and_then(|v| v.get("type"))
        .and_then(serde_json::Value::as_str)
        .and_then(|kind| adapter::unavailable(kind, adapter::BuiltIn::THIS_BUILD))
    {
        return Err(config_error(message));
    }
    let parsed = match value {
        None => AdapterJson::Redex(RedexJson::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| config_error(format!("adapter: {e}")))?,
    };
    Ok(match parsed {
        AdapterJson::Redex(r) => {
            let redex = match &r.dir {
                Some(dir) => Redex::with_persistent_dir(dir),
                None => Redex::new(),
            };
            let mut file = match r.file {
                Some(map) => super::redex::parse_config_object(map)
                    .map_err(|e| config_error(format!("adapter.file: {}", e.message)))?,
                None => crate::redex::RedexFileConfig::default(),
            };
            file.persistent = r.dir.is_some();
            Arc::new(RedexAdapter::new(
                redex,
                r.prefix.as_deref().unwrap_or("bus"),
                file,
            ))
        }
        #[cfg(feature = "jetstream")]
        AdapterJson::Jetstream(c) => Arc::new(
            crate::bus::JetStreamAdapter::new(c)
                .map_err(|e| config_error(format!("adapter.{e}")))?,
        ),
        #[cfg(feature = "redis")]
        AdapterJson::Redis(c) => Arc::new(
            crate::bus::RedisAdapter::new(c).map_err(|e| config_error(format!("adapter.{e}")))?,
        ),
        #[cfg(feature = "test-util")]
        AdapterJson::Memory(NoOptions {}) => Arc::new(crate::bus::MemoryAdapter::new()),
        #[cfg(feature = "test-util")]
        AdapterJson::Discard(NoOptions {}) => Arc::new(crate::bus::DiscardAdapter::new()),
    })
}

/// Parses the configuration and starts the bus.
fn start_bus(json: &str) -> Result<EventBus, FfiError> {
    let mut map = if json.trim().is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_str::<serde_json::Value>(json)
            .map_err(|e| config_error(format!("config JSON: {e}")))?
        {
            serde_json::Value::Object(m) => m,
            other => {
                return Err(config_error(format!(
                    "config: expected an object, got {other}"
                )));
            }
        }
    };
    let adapter = build_adapter(map.remove("adapter"))?;
    let state_dir = match map.remove("producer_state_dir") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(PathBuf::from(s)),
        Some(other) => {
            return Err(config_error(format!(
                "producer_state_dir: expected a string, got {other}"
            )));
        }
    };
    let config = BusConfig::from_value(serde_json::Value::Object(map))?;
    Ok(match state_dir {
        Some(dir) => EventBus::with_producer_state(
            config,
            adapter,
            DedupStateFile::new(Arc::new(FsStorage), dir),
        )?,
        None => EventBus::new(config, adapter)?,
    })
}

impl From<BatchIngest> for net_bus_ingest_report_t {
    fn from(r: BatchIngest) -> Self {
        Self {
            queued: r.queued,
            sampled: r.sampled,
            taken: r.taken,
        }
    }
}

fn invalid(message: impl Into<String>) -> FfiError {
    FfiError::new(net_status_t::NET_ERR_INVALID_ARGUMENT, message)
}

/// Splits packed events (`data` back to back, one length each) into
/// slices; the lengths must add up to exactly `data.len()`.
pub(super) fn split_packed<'a>(data: &'a [u8], lengths: &[u32]) -> Result<Vec<&'a [u8]>, FfiError> {
    let mut events = Vec::with_capacity(lengths.len());
    let mut rest = data;
    for (i, &len) in lengths.iter().enumerate() {
        let len = len as usize;
        if len > rest.len() {
            return Err(invalid(format!(
                "lengths[{i}]: the lengths add up to more than data_len ({})",
                data.len()
            )));
        }
        let (event, tail) = rest.split_at(len);
        events.push(event);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(invalid(format!(
            "lengths: they add up to {} bytes less than data_len ({})",
            rest.len(),
            data.len()
        )));
    }
    Ok(events)
}

/// Encodes a poll's events as the record buffer described above.
fn encode_events(response: &ConsumeResponse) -> Result<Vec<u8>, FfiError> {
    let too_long = |what: &str| {
        FfiError::new(
            net_status_t::NET_ERR_INTERNAL,
            format!("an event's {what} is too long for the poll record"),
        )
    };
    let size = response
        .events
        .iter()
        .map(|e| 16 + e.id.len() + e.dedup_id.as_ref().map_or(0, String::len) + e.payload.len())
        .sum();
    let mut buf = Vec::with_capacity(size);
    for e in &response.events {
        buf.extend_from_slice(&e.shard_id.to_le_bytes());
        buf.extend_from_slice(&e.timestamp_ns.to_le_bytes());
        for text in [Some(&e.id), e.dedup_id.as_ref()] {
            let text = text.map_or("", String::as_str);
            let len = u16::try_from(text.len()).map_err(|_| too_long("id"))?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(text.as_bytes());
        }
        let len = u32::try_from(e.payload.len()).map_err(|_| too_long("payload"))?;
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&e.payload);
    }
    Ok(buf)
}

/// Starts a bus from a JSON configuration (NULL or empty: every default,
/// over the embedded adapter with memory files). Keys: every `BusConfig`
/// key (`num_shards`, `shard_capacity`, `backpressure`, `batch`,
/// `adapter_timeout_ms`, `max_attempts`, `retry_base_ms`, `retry_max_ms`,
/// `shutdown_timeout_ms`, `scaling`, ...), plus
///
/// * `"adapter"`: `{"type": "redex", "dir": D, "prefix": P, "file": {...}}`
///   (persistent shard files under D; without D, memory files),
///   `{"type": "jetstream", "url": U, "prefix": P, "duplicate_window_ms": MS,
///   "memory_storage": B, "request_timeout_ms": MS}`,
///   `{"type": "redis", "url": U, "prefix": P, "max_len": N,
///   "command_timeout_ms": MS}` (both built into the shipped libnet; a
///   build without the `jetstream` / `redis` cargo feature refuses them
///   with `NET_ERR_BUS_CONFIG` saying so); `{"type": "memory"}` and
///   `{"type": "discard"}` exist only in test builds (`test-util`) and are
///   refused by a release libnet;
/// * `"producer_state_dir"`: keep the producer's nonce and sequence
///   reservations there, so a restarted producer never reuses a dedup id.
///
/// Errors: `NET_ERR_BUS_CONFIG` (naming the key),
/// `NET_ERR_BUS_ADAPTER` / `NET_ERR_BUS_NOT_CONNECTED` (the adapter could not
/// start: a server is down), `NET_ERR_BUS_PRODUCER_STATE`.
///
/// # Safety
/// `config_json` is NULL (length 0) or readable for `config_json_len`
/// bytes; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bus_new(
    config_json: *const u8,
    config_json_len: usize,
    out: *mut *mut net_bus_t,
) -> net_status_t {
    ffi_export!(opt_str config_json[config_json_len]; out out; {
        let bus = start_bus(config_json.unwrap_or(""))?;
        out.write(handle::into_raw(BusHandle {
            bus,
            closing: CancelToken::new(),
        }));
        Ok(())
    })
}

/// Shuts the bus down (draining what is buffered, within the configured
/// shutdown timeout) and frees it; a flush or poll blocked on it returns
/// `NET_ERR_SHUTTING_DOWN` first. NULL-safe and idempotent; waits for calls
/// in flight. Call `net_bus_close` first to receive the full report.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s (its
/// resources are then leaked rather than freed under them) or the shutdown
/// lost events (the message says how many); both are also logged.
///
/// # Safety
/// `bus` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bus_free(bus: *mut net_bus_t) -> net_status_t {
    super::export::run(|| handle::free(bus))
}

/// Queues one event (its bytes, copied) on the next shard.
///
/// Errors: `NET_ERR_BUS_BACKPRESSURE` (the shard is full: retry later),
/// `NET_ERR_BUS_SAMPLED` (decimated by the Sample policy),
/// `NET_ERR_BUS_UNROUTED` (no active shard), `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `bus` is NULL or from libnet; `event` is readable for `event_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bus_ingest_raw(
    bus: *const net_bus_t,
    event: *const u8,
    event_len: usize,
) -> net_status_t {
    ffi_export!(handle bus; bytes event[event_len]; {
        bus.bus.ingest(event.to_vec())?;
        Ok(())
    })
}

/// Queues `count` events on one shard in one crossing (the fast path).
/// Backpressure does not fail the call: `report->taken < count` says the
/// events from `taken` on were refused (retry them later).
///
/// Errors: `NET_ERR_BUS_UNROUTED`, `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `bus` is NULL or from libnet; `events` is readable for `count` slices
/// (NULL allowed when `count` is 0); `report` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bus_ingest_raw_batch(
    bus: *const net_bus_t,
    events: *const net_slice_t,
    count: usize,
    report: *mut net_bus_ingest_report_t,
) -> net_status_t {
    ffi_export!(handle bus; slices events[count]; out report; {
        report.write(bus.bus.ingest_batch(&events)?.into());
        Ok(())
    })
}

/// Queues `count` events given packed: their bytes back to back in `data`
/// (`data_len` bytes) and each event's length in `lengths` — the batch path
/// for SDKs whose runtimes cannot hand out an array of pointers cheaply
/// (one buffer and one length array cross instead). Otherwise as
/// `net_bus_ingest_raw_batch`.
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` when the lengths do not add up to
/// `data_len`; `NET_ERR_BUS_UNROUTED`, `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `bus` is NULL or from libnet; `data` is readable for `data_len` bytes
/// and `lengths` for `count` values (either may be NULL when its length is
/// 0); `report` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bus_ingest_raw_packed(
    bus: *const net_bus_t,
    data: *const u8,
    data_len: usize,
    lengths: *const u32,
    count: usize,
    report: *mut net_bus_ingest_report_t,
) -> net_status_t {
    ffi_export!(handle bus; bytes data[data_len]; out report; {
        // SAFETY: the caller made `lengths` readable for `count` values.
        let lengths = unsafe { super::export::input_values(lengths, count, "lengths") }?;
        let events = split_packed(data, lengths)?;
        report.write(bus.bus.ingest_batch(&events)?.into());
        Ok(())
    })
}

/// Polls the shards through a cursor. The request is JSON:
/// `{"cursor": C, "limit": N, "per_shard_limit": N, "shards": [..],
/// "filter": {...}}` (all optional; no cursor: from the beginning). Writes
/// the events as records (see the file comment) to `events_out` and
/// `{"next_cursor": C, "has_more": B, "truncated_at_per_shard_cap": B,
/// "stalled_shards": [..], "count": N}` to `meta_out`. Pass `next_cursor`
/// to the next poll; it is never empty.
///
/// Errors: `NET_ERR_BUS_INVALID_REQUEST` (bad JSON, cursor, filter or
/// limit), `NET_ERR_BUS_ADAPTER`, `NET_ERR_BUS_ADAPTER_FATAL`,
/// `NET_ERR_BUS_NOT_CONNECTED`, `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `bus` is NULL or from libnet; `request_json` is NULL (length 0) or
/// readable for its length; the outputs are valid for one write; `cancel`
/// is NULL or from libnet; `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bus_poll(
    bus: *const net_bus_t,
    request_json: *const u8,
    request_json_len: usize,
    events_out: *mut net_bytes_t,
    meta_out: *mut net_bytes_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle bus; cancel cancel; opt_str request_json[request_json_len]; out events_out; out meta_out; {
        let request = PollRequest::from_json(request_json.unwrap_or(""))?;
        let stop = cancel.linked_with(&bus.closing);
        let response = bus_outcome(bus.bus.poll_cancellable(&request, Some(&stop)), &cancel, bus)?;
        let events = encode_events(&response)?;
        let meta = serde_json::json!({
            "next_cursor": response.next_cursor,
            "has_more": response.has_more,
            "truncated_at_per_shard_cap": response.truncated_at_per_shard_cap,
            "stalled_shards": response.stalled_shards,
            "count": response.events.len(),
        });
        events_out.write(net_bytes_t::from_vec(events));
        meta_out.write(net_bytes_t::from_vec(meta.to_string().into_bytes()));
        Ok(())
    })
}

/// Waits until everything ingested so far is stored (or counted lost),
/// then flushes the adapter.
///
/// Errors: `NET_ERR_BUS_ADAPTER`, `NET_ERR_BUS_ADAPTER_FATAL`,
/// `NET_ERR_BUS_NOT_CONNECTED`, `NET_ERR_SHUTTING_DOWN` (also when the bus
/// is freed meanwhile), `NET_ERR_CANCELLED` (the events keep being
/// dispatched; only the wait ends).
///
/// # Safety
/// `bus` is NULL or from libnet; `cancel` is NULL or from libnet;
/// `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bus_flush(
    bus: *const net_bus_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle bus; cancel cancel; {
        let stop = cancel.linked_with(&bus.closing);
        bus_outcome(bus.bus.flush_cancellable(Some(&stop)), &cancel, bus)
    })
}

/// The bus's counters as JSON: `num_shards`, `active_shards`,
/// `events_ingested`, `events_dispatched`, `events_dropped`,
/// `events_sampled`, `events_buffered`, `batches_dispatched`,
/// `dispatch_failures`, `failed_attempts`, `dispatch_latency_us`,
/// `last_failure`, `shards_added`, `shards_removed`,
/// `reservation_failures`, `adapter`, plus `producer_nonce` (hex).
///
/// # Safety
/// `bus` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bus_stats(
    bus: *const net_bus_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle bus; out json_out; {
        let mut value = serde_json::to_value(bus.bus.stats())
            .map_err(|e| FfiError::new(net_status_t::NET_ERR_INTERNAL, e.to_string()))?;
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "producer_nonce".into(),
                format!("{:016x}", bus.bus.producer_nonce()).into(),
            );
        }
        json_out.write(net_bytes_t::from_vec(value.to_string().into_bytes()));
        Ok(())
    })
}

/// The number of active shards.
///
/// # Safety
/// `bus` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bus_num_shards(bus: *const net_bus_t, out: *mut u16) -> net_status_t {
    ffi_export!(handle bus; out out; {
        out.write(bus.bus.num_shards());
        Ok(())
    })
}

/// Shuts the bus down: refuses new events, drains the shards until two
/// passes see nothing in flight (or the shutdown timeout passes), flushes
/// and shuts the adapter down. Writes the report as JSON:
/// `{"events_dropped": N, "events_stranded": N, "shutdown_was_lossy": B,
/// "adapter_error": S|null}`. A second call returns the same report; the
/// handle stays valid for `stats` until freed (other calls then fail with
/// `NET_ERR_SHUTTING_DOWN`).
///
/// # Safety
/// `bus` is NULL or from libnet; `report_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_bus_close(
    bus: *const net_bus_t,
    report_json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle bus; out report_json_out; {
        let report = bus.bus.shutdown();
        let json = serde_json::json!({
            "events_dropped": report.events_dropped,
            "events_stranded": report.events_stranded,
            "shutdown_was_lossy": report.shutdown_was_lossy,
            "adapter_error": report.adapter_error,
        });
        report_json_out.write(net_bytes_t::from_vec(json.to_string().into_bytes()));
        Ok(())
    })
}

/// Creates a dedup set remembering up to `capacity` ids (clamped to
/// 1..=2^24). Eviction is FIFO by first sight, not LRU.
///
/// # Safety
/// `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redis_dedup_new(
    capacity: usize,
    out: *mut *mut net_redis_dedup_t,
) -> net_status_t {
    ffi_export!(out out; {
        let dedup = DedupHandle(Mutex::new(RedisStreamDedup::new(capacity)));
        out.write(handle::into_raw(dedup));
        Ok(())
    })
}

/// Frees a dedup set. NULL-safe and idempotent.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s (its
/// resources are then leaked rather than freed under them; also logged).
///
/// # Safety
/// `dedup` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redis_dedup_free(dedup: *mut net_redis_dedup_t) -> net_status_t {
    super::export::run(|| handle::free(dedup))
}

/// Whether `id` was seen (and is still remembered); otherwise remembers
/// it (evicting the oldest id when full) and writes false.
///
/// # Safety
/// `dedup` is NULL or from libnet; `id` is readable for `id_len` bytes of
/// UTF-8; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redis_dedup_is_duplicate(
    dedup: *const net_redis_dedup_t,
    id: *const u8,
    id_len: usize,
    out: *mut bool,
) -> net_status_t {
    ffi_export!(handle dedup; str id[id_len]; out out; {
        out.write(dedup.lock().is_duplicate(id));
        Ok(())
    })
}

/// Checks `count` ids in one crossing, in order (an id repeated within the
/// batch is a duplicate the second time): `duplicates_out[i]` says whether
/// id `i` is a duplicate.
///
/// # Safety
/// `dedup` is NULL or from libnet; `ids` is readable for `count` slices of
/// UTF-8; `duplicates_out` is writable for `count` bools.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redis_dedup_check_batch(
    dedup: *const net_redis_dedup_t,
    ids: *const net_slice_t,
    count: usize,
    duplicates_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle dedup; slices ids[count]; {
        if count > 0 && (duplicates_out.is_null() || !duplicates_out.is_aligned()) {
            return Err(invalid("duplicates_out: NULL or misaligned"));
        }
        let ids = ids
            .iter()
            .enumerate()
            .map(|(i, b)| {
                std::str::from_utf8(b).map_err(|_| invalid(format!("ids[{i}]: not UTF-8")))
            })
            .collect::<Result<Vec<&str>, _>>()?;
        let mut set = dedup.lock();
        for (i, id) in ids.into_iter().enumerate() {
            // SAFETY: the caller made `duplicates_out` writable for `count`
            // bools, checked non-NULL and aligned above.
            unsafe { duplicates_out.add(i).write(set.is_duplicate(id)) };
        }
        Ok(())
    })
}

/// The set's counters: ids remembered now, the effective capacity, and
/// duplicates reported so far.
///
/// # Safety
/// `dedup` is NULL or from libnet; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redis_dedup_info(
    dedup: *const net_redis_dedup_t,
    len_out: *mut usize,
    capacity_out: *mut usize,
    duplicates_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle dedup; out len_out; out capacity_out; out duplicates_out; {
        let set = dedup.lock();
        len_out.write(set.len());
        capacity_out.write(set.capacity());
        duplicates_out.write(set.duplicates());
        Ok(())
    })
}

/// Forgets every id (the duplicate counter stays).
///
/// # Safety
/// `dedup` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redis_dedup_clear(dedup: *const net_redis_dedup_t) -> net_status_t {
    ffi_export!(handle dedup; {
        dedup.lock().clear();
        Ok(())
    })
}
