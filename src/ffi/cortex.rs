//! `net_tasks_*` and `net_memories_*`: the CortEX models over the C ABI.
//!
//! Writes take raw arguments and return the RedEX seq of the event; queries
//! take a filter as JSON (the field names of `TaskQuery` / `MemoryQuery`;
//! empty means "everything") and return rows as a JSON array; watches are
//! pulled with `_watch_next`. The model configuration is the RedEX file
//! configuration plus `"policy": "stop" | "log_and_continue"`,
//! `"start": "beginning" | "live" | {"from_seq": N}` and `"changes_capacity": N`.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bytes::{net_bytes_t, net_slice_t};
use super::error::FfiError;
use super::export::ffi_export;
use super::handle::{self, HandleInner, opaque_handle};
use super::redex::{NET_WAIT_FOREVER, net_redex_t, parse_config_object};
use super::status::net_status_t;
use crate::cortex::broadcast::ReceiverCloser;
use crate::cortex::{
    CortexError, ErrorPolicy, FoldConfig, MemoriesAdapter, MemoriesFold, Memory, MemoryQuery,
    ModelConfig, ModelSnapshot, StartPosition, Task, TaskQuery, TasksAdapter, TasksFold, Watch,
    WatchEvent, WatchPoll,
};

/// A tasks model (STORAGE.md §11.3) on a RedEX manager. Thread-safe;
/// `net_tasks_free` stops its fold and closes its file.
#[allow(non_camel_case_types)]
pub struct net_tasks_adapter_t {
    _opaque: [u8; 0],
}

/// A live tasks query. `net_tasks_watch_free` wakes a blocked `_next`.
#[allow(non_camel_case_types)]
pub struct net_tasks_watch_t {
    _opaque: [u8; 0],
}

/// A memories model (STORAGE.md §11.4) on a RedEX manager.
#[allow(non_camel_case_types)]
pub struct net_memories_adapter_t {
    _opaque: [u8; 0],
}

/// A live memories query. `net_memories_watch_free` wakes a blocked `_next`.
#[allow(non_camel_case_types)]
pub struct net_memories_watch_t {
    _opaque: [u8; 0],
}

impl From<CortexError> for FfiError {
    fn from(err: CortexError) -> Self {
        match err {
            CortexError::Redex(e) => e.into(),
            CortexError::NotRunning => Self::new(
                net_status_t::NET_ERR_CORTEX_HALTED,
                "the fold is not running (halted on an error, or closed); reopen the model",
            ),
            CortexError::Snapshot(msg) => Self::new(net_status_t::NET_ERR_CORTEX_SNAPSHOT, msg),
            other => Self::new(net_status_t::NET_ERR_INTERNAL, other.to_string()),
        }
    }
}

/// A model owned by the C side: dropping it (at `_free`) stops and closes it.
pub(crate) struct ModelHandle<M: Model>(M);

impl<M: Model> Drop for ModelHandle<M> {
    fn drop(&mut self) {
        if let Err(e) = self.0.close() {
            tracing::error!(error = %e, "closing a freed CortEX model failed");
        }
    }
}

impl<M: Model> HandleInner for ModelHandle<M> {}
opaque_handle!(net_tasks_adapter_t => ModelHandle<TasksAdapter>, kind = b"NCTA");
opaque_handle!(net_memories_adapter_t => ModelHandle<MemoriesAdapter>, kind = b"NCMA");

pub(crate) struct WatchHandle<F: crate::cortex::Fold, T> {
    watch: Mutex<Watch<F, T>>,
    closer: ReceiverCloser<u64>,
}

impl<F: crate::cortex::Fold, T: Send + 'static> HandleInner for WatchHandle<F, T> {
    fn wake_blocked(&self) {
        self.closer.close();
    }
}
opaque_handle!(net_tasks_watch_t => WatchHandle<TasksFold, Task>, kind = b"NCTW");
opaque_handle!(net_memories_watch_t => WatchHandle<MemoriesFold, Memory>, kind = b"NCMW");

/// What the shared FFI code below needs of both models.
pub(crate) trait Model: Send + Sync + 'static {
    fn open(
        redex: &crate::redex::Redex,
        origin: u64,
        config: ModelConfig,
    ) -> Result<Self, CortexError>
    where
        Self: Sized;
    fn restore(
        redex: &crate::redex::Redex,
        origin: u64,
        config: ModelConfig,
        snapshot: &ModelSnapshot,
    ) -> Result<Self, CortexError>
    where
        Self: Sized;
    fn wait_for_seq(&self, seq: u64, timeout: Duration) -> bool;
    fn progress(&self) -> Progress;
    fn close(&self) -> Result<(), CortexError>;
}

#[derive(Serialize)]
pub(crate) struct Progress {
    applied_through_seq: Option<u64>,
    folded_through_seq: Option<u64>,
    running: bool,
    errors: u64,
    last_error: Option<String>,
    app_seq: u64,
}

macro_rules! model_impl {
    ($adapter:ty) => {
        impl Model for $adapter {
            fn open(
                redex: &crate::redex::Redex,
                origin: u64,
                config: ModelConfig,
            ) -> Result<Self, CortexError> {
                <$adapter>::open(redex, origin, config)
            }
            fn restore(
                redex: &crate::redex::Redex,
                origin: u64,
                config: ModelConfig,
                snapshot: &ModelSnapshot,
            ) -> Result<Self, CortexError> {
                <$adapter>::restore(redex, origin, config, snapshot)
            }
            fn wait_for_seq(&self, seq: u64, timeout: Duration) -> bool {
                <$adapter>::wait_for_seq(self, seq, timeout)
            }
            fn progress(&self) -> Progress {
                let a = self.adapter();
                Progress {
                    applied_through_seq: a.applied_through_seq(),
                    folded_through_seq: a.folded_through_seq(),
                    running: a.is_running(),
                    errors: a.error_count(),
                    last_error: a.last_error().map(|e| e.to_string()),
                    app_seq: self.app_seq(),
                }
            }
            fn close(&self) -> Result<(), CortexError> {
                <$adapter>::close(self)
            }
        }
    };
}
model_impl!(TasksAdapter);
model_impl!(MemoriesAdapter);

fn config_error(message: impl Into<String>) -> FfiError {
    FfiError::new(net_status_t::NET_ERR_CORTEX_INVALID_CONFIG, message)
}

/// Parses a model configuration: RedEX file keys plus the fold's keys.
pub(crate) fn parse_model_config(json: Option<&str>) -> Result<ModelConfig, FfiError> {
    let json = json.unwrap_or("").trim();
    if json.is_empty() {
        return Ok(ModelConfig::default());
    }
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| config_error(format!("config JSON: {e}")))?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(config_error("config JSON must be an object"));
    };
    let mut fold = FoldConfig::default();
    if let Some(policy) = map.remove("policy") {
        fold.policy = match policy.as_str() {
            Some("stop") => ErrorPolicy::Stop,
            Some("log_and_continue") => ErrorPolicy::LogAndContinue,
            _ => {
                return Err(config_error(format!(
                    "policy: expected \"stop\" or \"log_and_continue\", got {policy}"
                )));
            }
        };
    }
    if let Some(start) = map.remove("start") {
        fold.start = match (
            &start,
            start.get("from_seq").and_then(serde_json::Value::as_u64),
        ) {
            (serde_json::Value::String(s), _) if s == "beginning" => StartPosition::FromBeginning,
            (serde_json::Value::String(s), _) if s == "live" => StartPosition::LiveOnly,
            (serde_json::Value::Object(o), Some(seq)) if o.len() == 1 => {
                StartPosition::FromSeq(seq)
            }
            _ => {
                return Err(config_error(format!(
                    "start: expected \"beginning\", \"live\" or {{\"from_seq\": N}}, got {start}"
                )));
            }
        };
    }
    if let Some(capacity) = map.remove("changes_capacity") {
        fold.changes_capacity = capacity
            .as_u64()
            .and_then(|c| usize::try_from(c).ok())
            .ok_or_else(|| {
                config_error(format!(
                    "changes_capacity: expected a non-negative integer, got {capacity}"
                ))
            })?;
    }
    let file = parse_config_object(map).map_err(|e| config_error(e.message))?;
    Ok(ModelConfig { file, fold })
}

fn parse_query<Q: DeserializeOwned + Default>(json: Option<&str>) -> Result<Q, FfiError> {
    let json = json.unwrap_or("").trim();
    if json.is_empty() {
        return Ok(Q::default());
    }
    serde_json::from_str(json).map_err(|e| {
        FfiError::new(
            net_status_t::NET_ERR_CORTEX_INVALID_QUERY,
            format!("filter JSON: {e}"),
        )
    })
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<net_bytes_t, FfiError> {
    serde_json::to_vec(value)
        .map(net_bytes_t::from_vec)
        .map_err(|e| {
            FfiError::new(
                net_status_t::NET_ERR_INTERNAL,
                format!("JSON encoding: {e}"),
            )
        })
}

fn open_model<M: Model>(
    redex: &crate::redex::Redex,
    origin: u64,
    config: Option<&str>,
    snapshot: Option<ModelSnapshot>,
) -> Result<ModelHandle<M>, FfiError> {
    let config = parse_model_config(config)?;
    let model = match snapshot {
        Some(snapshot) => M::restore(redex, origin, config, &snapshot)?,
        None => M::open(redex, origin, config)?,
    };
    Ok(ModelHandle(model))
}

fn wait<M: Model>(model: &M, seq: u64, timeout_ms: u32) -> Result<net_status_t, FfiError> {
    let timeout = if timeout_ms == NET_WAIT_FOREVER {
        Duration::MAX
    } else {
        Duration::from_millis(u64::from(timeout_ms))
    };
    if model.wait_for_seq(seq, timeout) {
        return Ok(net_status_t::NET_OK);
    }
    if model.progress().running {
        Ok(net_status_t::NET_TIMEOUT)
    } else {
        Err(FfiError::new(
            net_status_t::NET_ERR_CORTEX_HALTED,
            format!("the fold stopped before seq {seq}"),
        ))
    }
}

fn watch_next<F: crate::cortex::Fold, T: Serialize + Clone + PartialEq>(
    handle: &WatchHandle<F, T>,
    timeout_ms: u32,
    rows_out: super::export::Out<net_bytes_t>,
    missed_out: super::export::Out<u64>,
) -> Result<net_status_t, FfiError> {
    let timeout =
        (timeout_ms != NET_WAIT_FOREVER).then(|| Duration::from_millis(u64::from(timeout_ms)));
    let mut watch = handle.watch.lock().unwrap_or_else(|e| e.into_inner());
    Ok(match watch.next_timeout(timeout) {
        WatchPoll::Event(WatchEvent::Update(rows)) => {
            rows_out.write(to_json(&rows)?);
            missed_out.write(0);
            net_status_t::NET_OK
        }
        WatchPoll::Event(WatchEvent::Lagged(missed)) => {
            rows_out.write(net_bytes_t::EMPTY);
            missed_out.write(missed);
            net_status_t::NET_LAGGED
        }
        WatchPoll::Timeout => net_status_t::NET_TIMEOUT,
        _ => net_status_t::NET_END,
    })
}

fn watch_handle<F: crate::cortex::Fold, T: Clone + PartialEq>(
    watch: Watch<F, T>,
) -> WatchHandle<F, T> {
    let closer = watch.closer();
    WatchHandle {
        watch: Mutex::new(watch),
        closer,
    }
}

fn snapshot_out(
    snapshot: ModelSnapshot,
    bytes_out: super::export::Out<net_bytes_t>,
    last_seq_out: super::export::Out<u64>,
    has_last_seq_out: super::export::Out<bool>,
) {
    bytes_out.write(net_bytes_t::from_vec(snapshot.bytes));
    last_seq_out.write(snapshot.last_seq.unwrap_or(0));
    has_last_seq_out.write(snapshot.last_seq.is_some());
}

fn slices_to_strings(slices: &[&[u8]], what: &str) -> Result<Vec<String>, FfiError> {
    slices
        .iter()
        .enumerate()
        .map(|(i, s)| {
            std::str::from_utf8(s)
                .map(str::to_owned)
                .map_err(|e| FfiError::invalid_argument(format!("`{what}[{i}]` is not UTF-8: {e}")))
        })
        .collect()
}

// ---- tasks -------------------------------------------------------------------

/// Opens the tasks model (`cortex/tasks`) on `redex` as writer `origin_hash`
/// and folds it from the configured start. `config_json` may be NULL.
///
/// Errors: `NET_ERR_CORTEX_INVALID_CONFIG` (naming the key), RedEX open errors.
///
/// # Safety
/// `redex` is NULL or from libnet; `config_json` is NULL or readable for its
/// length; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_open(
    redex: *const net_redex_t,
    origin_hash: u64,
    config_json: *const u8,
    config_json_len: usize,
    out: *mut *mut net_tasks_adapter_t,
) -> net_status_t {
    ffi_export!(handle redex; opt_str config_json[config_json_len]; out out; {
        let model = open_model::<TasksAdapter>(redex, origin_hash, config_json, None)?;
        out.write(handle::into_raw(model));
        Ok(())
    })
}

/// Opens the tasks model from a snapshot (`snapshot`, and `last_seq` when
/// `has_last_seq`), replaying only the events after it.
///
/// Errors: `NET_ERR_CORTEX_SNAPSHOT` when the bytes do not decode; as `net_tasks_open`.
///
/// # Safety
/// As `net_tasks_open`; `snapshot` is readable for `snapshot_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_restore(
    redex: *const net_redex_t,
    origin_hash: u64,
    config_json: *const u8,
    config_json_len: usize,
    snapshot: *const u8,
    snapshot_len: usize,
    last_seq: u64,
    has_last_seq: bool,
    out: *mut *mut net_tasks_adapter_t,
) -> net_status_t {
    ffi_export!(handle redex; opt_str config_json[config_json_len]; bytes snapshot[snapshot_len]; out out; {
        let snapshot = ModelSnapshot { bytes: snapshot.to_vec(), last_seq: has_last_seq.then_some(last_seq) };
        let model = open_model::<TasksAdapter>(redex, origin_hash, config_json, Some(snapshot))?;
        out.write(handle::into_raw(model));
        Ok(())
    })
}

/// Stops the fold, closes the file and frees the model. NULL-safe and
/// idempotent; waits up to 5 s for calls in flight.
///
/// # Safety
/// `tasks` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_free(tasks: *mut net_tasks_adapter_t) {
    // SAFETY: forwarded contract.
    super::export::guarded((), || unsafe { handle::free(tasks) });
}

/// Stops the fold and closes the file (syncing it), reporting any error;
/// later writes fail. The handle still needs `net_tasks_free`.
///
/// # Safety
/// `tasks` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_close(tasks: *const net_tasks_adapter_t) -> net_status_t {
    ffi_export!(handle tasks; {
        tasks.0.close()?;
        Ok(())
    })
}

/// Creates (or overwrites) task `id`; writes the event's RedEX seq.
///
/// Errors: `NET_ERR_CORTEX_HALTED` when the fold has stopped; RedEX append errors.
///
/// # Safety
/// `tasks` is NULL or from libnet; `title` is readable for `title_len` bytes
/// of UTF-8; `seq_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_create(
    tasks: *const net_tasks_adapter_t,
    id: u64,
    title: *const u8,
    title_len: usize,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle tasks; str title[title_len]; out seq_out; {
        seq_out.write(tasks.0.create(id, title)?);
        Ok(())
    })
}

/// Renames task `id` (no effect if absent); writes the event's RedEX seq.
///
/// # Safety
/// As `net_tasks_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_rename(
    tasks: *const net_tasks_adapter_t,
    id: u64,
    new_title: *const u8,
    new_title_len: usize,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle tasks; str new_title[new_title_len]; out seq_out; {
        seq_out.write(tasks.0.rename(id, new_title)?);
        Ok(())
    })
}

/// Marks task `id` completed; writes the event's RedEX seq.
///
/// # Safety
/// `tasks` is NULL or from libnet; `seq_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_complete(
    tasks: *const net_tasks_adapter_t,
    id: u64,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle tasks; out seq_out; {
        seq_out.write(tasks.0.complete(id)?);
        Ok(())
    })
}

/// Deletes task `id`; writes the event's RedEX seq.
///
/// # Safety
/// `tasks` is NULL or from libnet; `seq_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_delete(
    tasks: *const net_tasks_adapter_t,
    id: u64,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle tasks; out seq_out; {
        seq_out.write(tasks.0.delete(id)?);
        Ok(())
    })
}

/// Waits until the fold has attempted RedEX seq `seq` (fold *progress*: under
/// `log_and_continue` the event may have been skipped; see
/// `net_tasks_progress`). `NET_OK`, `NET_TIMEOUT`, or
/// `NET_ERR_CORTEX_HALTED` at once when the fold stopped short of it.
///
/// # Safety
/// `tasks` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_wait_for_seq(
    tasks: *const net_tasks_adapter_t,
    seq: u64,
    timeout_ms: u32,
) -> net_status_t {
    ffi_export!(handle tasks; {
        wait(&tasks.0, seq, timeout_ms)
    })
}

/// The fold's state as JSON: `{"applied_through_seq", "folded_through_seq",
/// "running", "errors", "last_error", "app_seq"}`.
///
/// # Safety
/// `tasks` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_progress(
    tasks: *const net_tasks_adapter_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle tasks; out json_out; {
        json_out.write(to_json(&tasks.0.progress())?);
        Ok(())
    })
}

/// Task `id` as a JSON object (`{"id","title","status","created_ns",
/// "updated_ns"}`); `*found_out` false (and an empty buffer) if absent.
///
/// # Safety
/// `tasks` is NULL or from libnet; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_find_unique(
    tasks: *const net_tasks_adapter_t,
    id: u64,
    json_out: *mut net_bytes_t,
    found_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle tasks; out json_out; out found_out; {
        let row = tasks.0.find_unique(id);
        let json = row.as_ref().map(to_json).transpose()?;
        found_out.write(json.is_some());
        json_out.write(json.unwrap_or(net_bytes_t::EMPTY));
        Ok(())
    })
}

/// The tasks matching `filter_json` (a `TaskQuery`: `ids`, `status`,
/// `title_contains`, `created_after`, `created_before`, `updated_after`,
/// `updated_before`, `order_by`, `offset`, `limit`; NULL or empty: all), as a
/// JSON array.
///
/// Errors: `NET_ERR_CORTEX_INVALID_QUERY` naming the bad key.
///
/// # Safety
/// `tasks` is NULL or from libnet; `filter_json` is NULL or readable for
/// its length; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_find_many(
    tasks: *const net_tasks_adapter_t,
    filter_json: *const u8,
    filter_json_len: usize,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle tasks; opt_str filter_json[filter_json_len]; out json_out; {
        let query: TaskQuery = parse_query(filter_json)?;
        json_out.write(to_json(&tasks.0.find_many(&query))?);
        Ok(())
    })
}

/// How many tasks match the filter (order and paging ignored).
///
/// # Safety
/// As `net_tasks_find_many`; `count_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_count_where(
    tasks: *const net_tasks_adapter_t,
    filter_json: *const u8,
    filter_json_len: usize,
    count_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle tasks; opt_str filter_json[filter_json_len]; out count_out; {
        let query: TaskQuery = parse_query(filter_json)?;
        count_out.write(tasks.0.count_where(&query) as u64);
        Ok(())
    })
}

/// Whether any task matches the filter.
///
/// # Safety
/// As `net_tasks_find_many`; `exists_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_exists_where(
    tasks: *const net_tasks_adapter_t,
    filter_json: *const u8,
    filter_json_len: usize,
    exists_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle tasks; opt_str filter_json[filter_json_len]; out exists_out; {
        let query: TaskQuery = parse_query(filter_json)?;
        exists_out.write(tasks.0.exists_where(&query));
        Ok(())
    })
}

/// A live query whose first `_next` returns the current result.
///
/// # Safety
/// As `net_tasks_find_many`; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_watch(
    tasks: *const net_tasks_adapter_t,
    filter_json: *const u8,
    filter_json_len: usize,
    out: *mut *mut net_tasks_watch_t,
) -> net_status_t {
    ffi_export!(handle tasks; opt_str filter_json[filter_json_len]; out out; {
        let query: TaskQuery = parse_query(filter_json)?;
        out.write(handle::into_raw(watch_handle(tasks.0.watch(query))));
        Ok(())
    })
}

/// The current result (JSON array) and a watch whose `_next` returns only
/// later changes; nothing can slip between the two.
///
/// # Safety
/// As `net_tasks_find_many`; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_snapshot_and_watch(
    tasks: *const net_tasks_adapter_t,
    filter_json: *const u8,
    filter_json_len: usize,
    current_json_out: *mut net_bytes_t,
    out: *mut *mut net_tasks_watch_t,
) -> net_status_t {
    ffi_export!(handle tasks; opt_str filter_json[filter_json_len]; out current_json_out; out out; {
        let query: TaskQuery = parse_query(filter_json)?;
        let (current, watch) = tasks.0.snapshot_and_watch(query);
        let json = to_json(&current)?;
        current_json_out.write(json);
        out.write(handle::into_raw(watch_handle(watch)));
        Ok(())
    })
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit) for the watch's
/// next result. `NET_OK` with the rows (JSON array); `NET_LAGGED` with
/// `*missed_out` changes missed (the next `NET_OK` has them all applied);
/// `NET_TIMEOUT`; `NET_END` when the model closed, its fold halted, or the
/// watch was freed.
///
/// # Safety
/// `watch` is NULL or from libnet; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_watch_next(
    watch: *const net_tasks_watch_t,
    timeout_ms: u32,
    rows_out: *mut net_bytes_t,
    missed_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle watch; out rows_out; out missed_out; {
        watch_next(watch, timeout_ms, rows_out, missed_out)
    })
}

/// Frees a watch; a `_next` blocked on it returns `NET_END`. NULL-safe, idempotent.
///
/// # Safety
/// `watch` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_watch_free(watch: *mut net_tasks_watch_t) {
    // SAFETY: forwarded contract.
    super::export::guarded((), || unsafe { handle::free(watch) });
}

/// A snapshot: the postcard bytes, and the RedEX seq of the last event they
/// contain (`*has_last_seq_out` false when none). Restore with `net_tasks_restore`.
///
/// # Safety
/// `tasks` is NULL or from libnet; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_snapshot(
    tasks: *const net_tasks_adapter_t,
    bytes_out: *mut net_bytes_t,
    last_seq_out: *mut u64,
    has_last_seq_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle tasks; out bytes_out; out last_seq_out; out has_last_seq_out; {
        snapshot_out(tasks.0.snapshot()?, bytes_out, last_seq_out, has_last_seq_out);
        Ok(())
    })
}

// ---- memories -------------------------------------------------------------------

/// Opens the memories model (`cortex/memories`); as `net_tasks_open`.
///
/// # Safety
/// As `net_tasks_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_open(
    redex: *const net_redex_t,
    origin_hash: u64,
    config_json: *const u8,
    config_json_len: usize,
    out: *mut *mut net_memories_adapter_t,
) -> net_status_t {
    ffi_export!(handle redex; opt_str config_json[config_json_len]; out out; {
        let model = open_model::<MemoriesAdapter>(redex, origin_hash, config_json, None)?;
        out.write(handle::into_raw(model));
        Ok(())
    })
}

/// Opens the memories model from a snapshot; as `net_tasks_restore`.
///
/// # Safety
/// As `net_tasks_restore`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_restore(
    redex: *const net_redex_t,
    origin_hash: u64,
    config_json: *const u8,
    config_json_len: usize,
    snapshot: *const u8,
    snapshot_len: usize,
    last_seq: u64,
    has_last_seq: bool,
    out: *mut *mut net_memories_adapter_t,
) -> net_status_t {
    ffi_export!(handle redex; opt_str config_json[config_json_len]; bytes snapshot[snapshot_len]; out out; {
        let snapshot = ModelSnapshot { bytes: snapshot.to_vec(), last_seq: has_last_seq.then_some(last_seq) };
        let model = open_model::<MemoriesAdapter>(redex, origin_hash, config_json, Some(snapshot))?;
        out.write(handle::into_raw(model));
        Ok(())
    })
}

/// Stops, closes and frees a memories model; as `net_tasks_free`.
///
/// # Safety
/// `memories` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_free(memories: *mut net_memories_adapter_t) {
    // SAFETY: forwarded contract.
    super::export::guarded((), || unsafe { handle::free(memories) });
}

/// Stops the fold and closes the file; as `net_tasks_close`.
///
/// # Safety
/// `memories` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_close(
    memories: *const net_memories_adapter_t,
) -> net_status_t {
    ffi_export!(handle memories; {
        memories.0.close()?;
        Ok(())
    })
}

/// Stores memory `id` (creating it, or replacing its content, tags and
/// source); `tags` is an array of `tag_count` UTF-8 strings. Writes the
/// event's RedEX seq.
///
/// # Safety
/// `memories` is NULL or from libnet; the strings are readable for their
/// lengths; `tags` is readable for `tag_count` slices; `seq_out` is valid
/// for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_store(
    memories: *const net_memories_adapter_t,
    id: u64,
    content: *const u8,
    content_len: usize,
    tags: *const net_slice_t,
    tag_count: usize,
    source: *const u8,
    source_len: usize,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle memories; str content[content_len]; slices tags[tag_count]; str source[source_len]; out seq_out; {
        let tags = slices_to_strings(&tags, "tags")?;
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        seq_out.write(memories.0.store(id, content, &tags, source)?);
        Ok(())
    })
}

/// Replaces memory `id`'s tags; writes the event's RedEX seq.
///
/// # Safety
/// As `net_memories_store`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_retag(
    memories: *const net_memories_adapter_t,
    id: u64,
    tags: *const net_slice_t,
    tag_count: usize,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle memories; slices tags[tag_count]; out seq_out; {
        let tags = slices_to_strings(&tags, "tags")?;
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        seq_out.write(memories.0.retag(id, &tags)?);
        Ok(())
    })
}

/// Pins memory `id`; writes the event's RedEX seq.
///
/// # Safety
/// `memories` is NULL or from libnet; `seq_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_pin(
    memories: *const net_memories_adapter_t,
    id: u64,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle memories; out seq_out; {
        seq_out.write(memories.0.pin(id)?);
        Ok(())
    })
}

/// Unpins memory `id`; writes the event's RedEX seq.
///
/// # Safety
/// As `net_memories_pin`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_unpin(
    memories: *const net_memories_adapter_t,
    id: u64,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle memories; out seq_out; {
        seq_out.write(memories.0.unpin(id)?);
        Ok(())
    })
}

/// Deletes memory `id`; writes the event's RedEX seq.
///
/// # Safety
/// As `net_memories_pin`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_delete(
    memories: *const net_memories_adapter_t,
    id: u64,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle memories; out seq_out; {
        seq_out.write(memories.0.delete(id)?);
        Ok(())
    })
}

/// Waits for fold progress; as `net_tasks_wait_for_seq`.
///
/// # Safety
/// `memories` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_wait_for_seq(
    memories: *const net_memories_adapter_t,
    seq: u64,
    timeout_ms: u32,
) -> net_status_t {
    ffi_export!(handle memories; {
        wait(&memories.0, seq, timeout_ms)
    })
}

/// The fold's state as JSON; as `net_tasks_progress`.
///
/// # Safety
/// `memories` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_progress(
    memories: *const net_memories_adapter_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle memories; out json_out; {
        json_out.write(to_json(&memories.0.progress())?);
        Ok(())
    })
}

/// Memory `id` as a JSON object (`{"id","content","tags","source",
/// "created_ns","updated_ns","pinned"}`); `*found_out` false if absent.
///
/// # Safety
/// `memories` is NULL or from libnet; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_find_unique(
    memories: *const net_memories_adapter_t,
    id: u64,
    json_out: *mut net_bytes_t,
    found_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle memories; out json_out; out found_out; {
        let row = memories.0.find_unique(id);
        let json = row.as_ref().map(to_json).transpose()?;
        found_out.write(json.is_some());
        json_out.write(json.unwrap_or(net_bytes_t::EMPTY));
        Ok(())
    })
}

/// The memories matching `filter_json` (a `MemoryQuery`: `ids`, `tags_any`,
/// `tags_all`, `source`, `pinned`, `content_contains`, `created_after`,
/// `created_before`, `updated_after`, `updated_before`, `order_by`, `offset`,
/// `limit`), as a JSON array.
///
/// # Safety
/// As `net_tasks_find_many`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_find_many(
    memories: *const net_memories_adapter_t,
    filter_json: *const u8,
    filter_json_len: usize,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle memories; opt_str filter_json[filter_json_len]; out json_out; {
        let query: MemoryQuery = parse_query(filter_json)?;
        json_out.write(to_json(&memories.0.find_many(&query))?);
        Ok(())
    })
}

/// How many memories match the filter.
///
/// # Safety
/// As `net_tasks_count_where`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_count_where(
    memories: *const net_memories_adapter_t,
    filter_json: *const u8,
    filter_json_len: usize,
    count_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle memories; opt_str filter_json[filter_json_len]; out count_out; {
        let query: MemoryQuery = parse_query(filter_json)?;
        count_out.write(memories.0.count_where(&query) as u64);
        Ok(())
    })
}

/// Whether any memory matches the filter.
///
/// # Safety
/// As `net_tasks_exists_where`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_exists_where(
    memories: *const net_memories_adapter_t,
    filter_json: *const u8,
    filter_json_len: usize,
    exists_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle memories; opt_str filter_json[filter_json_len]; out exists_out; {
        let query: MemoryQuery = parse_query(filter_json)?;
        exists_out.write(memories.0.exists_where(&query));
        Ok(())
    })
}

/// A live memories query; as `net_tasks_watch`.
///
/// # Safety
/// As `net_tasks_watch`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_watch(
    memories: *const net_memories_adapter_t,
    filter_json: *const u8,
    filter_json_len: usize,
    out: *mut *mut net_memories_watch_t,
) -> net_status_t {
    ffi_export!(handle memories; opt_str filter_json[filter_json_len]; out out; {
        let query: MemoryQuery = parse_query(filter_json)?;
        out.write(handle::into_raw(watch_handle(memories.0.watch(query))));
        Ok(())
    })
}

/// The current result and a watch of later changes; as
/// `net_tasks_snapshot_and_watch`.
///
/// # Safety
/// As `net_tasks_snapshot_and_watch`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_snapshot_and_watch(
    memories: *const net_memories_adapter_t,
    filter_json: *const u8,
    filter_json_len: usize,
    current_json_out: *mut net_bytes_t,
    out: *mut *mut net_memories_watch_t,
) -> net_status_t {
    ffi_export!(handle memories; opt_str filter_json[filter_json_len]; out current_json_out; out out; {
        let query: MemoryQuery = parse_query(filter_json)?;
        let (current, watch) = memories.0.snapshot_and_watch(query);
        let json = to_json(&current)?;
        current_json_out.write(json);
        out.write(handle::into_raw(watch_handle(watch)));
        Ok(())
    })
}

/// The watch's next result; as `net_tasks_watch_next`.
///
/// # Safety
/// As `net_tasks_watch_next`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_watch_next(
    watch: *const net_memories_watch_t,
    timeout_ms: u32,
    rows_out: *mut net_bytes_t,
    missed_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle watch; out rows_out; out missed_out; {
        watch_next(watch, timeout_ms, rows_out, missed_out)
    })
}

/// Frees a memories watch; as `net_tasks_watch_free`.
///
/// # Safety
/// `watch` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_watch_free(watch: *mut net_memories_watch_t) {
    // SAFETY: forwarded contract.
    super::export::guarded((), || unsafe { handle::free(watch) });
}

/// A memories snapshot; as `net_tasks_snapshot`.
///
/// # Safety
/// As `net_tasks_snapshot`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_snapshot(
    memories: *const net_memories_adapter_t,
    bytes_out: *mut net_bytes_t,
    last_seq_out: *mut u64,
    has_last_seq_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle memories; out bytes_out; out last_seq_out; out has_last_seq_out; {
        snapshot_out(memories.0.snapshot()?, bytes_out, last_seq_out, has_last_seq_out);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_config_json() {
        let c = parse_model_config(Some(r#"{"persistent": true, "policy": "log_and_continue", "start": {"from_seq": 5}, "changes_capacity": 16}"#)).unwrap();
        assert!(c.file.persistent);
        assert_eq!(c.fold.policy, ErrorPolicy::LogAndContinue);
        assert_eq!(c.fold.start, StartPosition::FromSeq(5));
        assert_eq!(c.fold.changes_capacity, 16);
        assert_eq!(
            parse_model_config(Some(r#"{"start": "live"}"#))
                .unwrap()
                .fold
                .start,
            StartPosition::LiveOnly
        );
        for (bad, needle) in [
            (r#"{"policy": "retry"}"#, "policy"),
            (r#"{"start": {"from": 1}}"#, "start"),
            (r#"{"changes_capacity": -1}"#, "changes_capacity"),
            (r#"{"persistant": true}"#, "persistant"),
            ("[]", "object"),
        ] {
            let err = parse_model_config(Some(bad)).unwrap_err();
            assert_eq!(
                err.status,
                net_status_t::NET_ERR_CORTEX_INVALID_CONFIG,
                "{bad}"
            );
            assert!(err.message.contains(needle), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn query_json_names_the_bad_key() {
        let q: TaskQuery = parse_query(Some(
            r#"{"status": "completed", "order_by": "created_desc", "limit": 3}"#,
        ))
        .unwrap();
        assert_eq!(q.limit, Some(3));
        let err = parse_query::<TaskQuery>(Some(r#"{"staus": "completed"}"#)).unwrap_err();
        assert_eq!(err.status, net_status_t::NET_ERR_CORTEX_INVALID_QUERY);
        assert!(err.message.contains("staus"), "{}", err.message);
        let err = parse_query::<MemoryQuery>(Some(r#"{"pinned": "yes"}"#)).unwrap_err();
        assert!(
            err.message.contains("pinned") || err.message.contains("boolean"),
            "{}",
            err.message
        );
    }
}
