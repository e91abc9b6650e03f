//! `net_model_*`: the CortEX models over the C ABI, one surface for every
//! model kind; `net_tasks_*` / `net_memories_*`: only the writes particular
//! to one kind.
//!
//! A model is opened with a kind constant (`NET_MODEL_TASKS`,
//! `NET_MODEL_MEMORIES`) and is a `net_model_t` whatever its kind. Every
//! operation that does not depend on the kind (restore, close, delete,
//! waiting, progress, queries, watches, snapshots) is one `net_model_*`
//! function; a kind's own writes take the same `net_model_t` and refuse a
//! model of another kind with `NET_ERR_INVALID_ARGUMENT`.
//!
//! Inside, [`AnyModel`] is the JSON edge of the generic
//! [`ModelAdapter`](crate::cortex::ModelAdapter), implemented once for every
//! model and boxed behind the one handle type; the kind-specific writes
//! downcast to the concrete adapter. Adding a model kind is a constant, a
//! line in [`open_model`] and its writes.
//!
//! Writes take raw arguments and return the RedEX seq of the event; queries
//! take a filter as JSON (the field names of the kind's query; empty means
//! "everything") and return rows as a JSON array; watches are pulled with
//! `net_model_watch_next`. The model configuration is the RedEX file
//! configuration plus `"policy": "stop" | "log_and_continue"`,
//! `"start": "beginning" | "live" | {"from_seq": N}` and `"changes_capacity": N`.

use std::any::Any;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bytes::{net_bytes_t, net_slice_t};
use super::cancel::{CallCancel, net_cancel_t, net_error_t};
use super::error::FfiError;
use super::export::{Out, ffi_export};
use super::handle::{self, HandleInner, opaque_handle};
use super::redex::{NET_WAIT_FOREVER, net_redex_t, parse_config_object};
use super::status::net_status_t;
use super::turn::{NoTurn, Turn};
use crate::cancel::CancelToken;
use crate::cortex::broadcast::ReceiverCloser;
use crate::cortex::{
    CortexError, ErrorPolicy, Fold, FoldConfig, MemoriesFold, ModelAdapter, ModelConfig, ModelFold,
    ModelSnapshot, StartPosition, TasksFold, WaitOutcome, Watch, WatchEvent, WatchPoll,
};
use crate::redex::Redex;

/// Model kind: tasks (STORAGE.md §11.3), on channel `cortex/tasks`.
///
/// Rows: `{"id", "title", "status": "pending" | "completed", "created_ns",
/// "updated_ns"}`. Filter keys: `ids`, `status`, `title_contains`,
/// `created_after`, `created_before`, `updated_after`, `updated_before`,
/// `order_by` (`id_asc`, `id_desc`, `created_asc`, `created_desc`,
/// `updated_asc`, `updated_desc`, `title_asc`, `title_desc`), `offset`,
/// `limit`. Writes of its own: `net_tasks_create`, `net_tasks_rename`,
/// `net_tasks_complete`.
pub const NET_MODEL_TASKS: u32 = 1;

/// Model kind: memories (STORAGE.md §11.4), on channel `cortex/memories`.
///
/// Rows: `{"id", "content", "tags", "source", "created_ns", "updated_ns",
/// "pinned"}`. Filter keys: `ids`, `tags_any`, `tags_all`, `source`,
/// `pinned`, `content_contains`, `created_after`, `created_before`,
/// `updated_after`, `updated_before`, `order_by` (`id_asc`, `id_desc`,
/// `created_asc`, `created_desc`, `updated_asc`, `updated_desc`), `offset`,
/// `limit`. Writes of its own: `net_memories_store`, `net_memories_retag`,
/// `net_memories_pin`, `net_memories_unpin`.
pub const NET_MODEL_MEMORIES: u32 = 2;

/// A CortEX model on a RedEX manager: folded, queryable state over one
/// channel, of the kind it was opened with (`NET_MODEL_TASKS`,
/// `NET_MODEL_MEMORIES`; `net_model_kind` tells). Thread-safe.
///
/// Every kind is driven by the same `net_model_*` functions; only a kind's
/// own writes are named after it (`net_tasks_create`, `net_memories_store`,
/// ...), take a `net_model_t` too, and fail with `NET_ERR_INVALID_ARGUMENT`
/// on a model of another kind. Queries and rows are JSON; the keys of each
/// kind are listed at its constant.
///
/// `net_model_free` wakes every call blocked on the model (a
/// `net_model_wait_for_seq` returns `NET_ERR_SHUTTING_DOWN`) and ends its
/// watches (their `net_model_watch_next` returns `NET_END`), then stops the
/// fold and closes the file.
#[allow(non_camel_case_types)]
pub struct net_model_t {
    _opaque: [u8; 0],
}

/// A live query on a model, of any kind: pulled with `net_model_watch_next`.
/// It ends (`NET_END`) when it is freed, or when its model is freed, closed
/// or its fold halts. Freeing the model does not free its watches.
#[allow(non_camel_case_types)]
pub struct net_model_watch_t {
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

/// A model kind's number in the ABI.
pub(crate) trait AbiKind: ModelFold {
    /// Its `NET_MODEL_*` constant.
    const KIND: u32;
}

impl AbiKind for TasksFold {
    const KIND: u32 = NET_MODEL_TASKS;
}

impl AbiKind for MemoriesFold {
    const KIND: u32 = NET_MODEL_MEMORIES;
}

/// The name of a kind's constant, for messages.
fn constant_name<F: AbiKind>() -> String {
    format!("NET_MODEL_{}", F::NAME.to_ascii_uppercase())
}

/// The fold's state, as `net_model_progress` reports it.
#[derive(Serialize)]
pub(crate) struct Progress {
    applied_through_seq: Option<u64>,
    folded_through_seq: Option<u64>,
    running: bool,
    errors: u64,
    last_error: Option<String>,
    app_seq: u64,
}

/// A model of any kind, as the generic entry points use it: the JSON edge
/// of [`ModelAdapter`], object-safe so that one handle type serves every
/// kind. Implemented once, for every `ModelAdapter<F>`.
pub(crate) trait AnyModel: Send + Sync + 'static {
    /// The kind's `NET_MODEL_*` constant.
    fn kind(&self) -> u32;
    /// The kind's name ("tasks").
    fn name(&self) -> &'static str;
    /// The concrete `ModelAdapter<F>`, for the kind-specific writes.
    fn as_any(&self) -> &dyn Any;
    fn delete(&self, id: u64) -> Result<u64, CortexError>;
    fn wait_for_seq(&self, seq: u64, timeout: Duration, cancel: &CancelToken) -> WaitOutcome;
    fn progress(&self) -> Progress;
    /// Row `id` as a JSON object, if it exists.
    fn find_unique(&self, id: u64) -> Result<Option<net_bytes_t>, FfiError>;
    fn find_many(&self, filter: Option<&str>) -> Result<net_bytes_t, FfiError>;
    fn count_where(&self, filter: Option<&str>) -> Result<u64, FfiError>;
    fn exists_where(&self, filter: Option<&str>) -> Result<bool, FfiError>;
    fn watch(&self, filter: Option<&str>) -> Result<Box<dyn AnyWatch>, FfiError>;
    /// The current rows (a JSON array) and a watch of later changes.
    fn snapshot_and_watch(
        &self,
        filter: Option<&str>,
    ) -> Result<(net_bytes_t, Box<dyn AnyWatch>), FfiError>;
    fn snapshot(&self) -> Result<ModelSnapshot, CortexError>;
    fn close(&self) -> Result<(), CortexError>;
}

impl<F: AbiKind> AnyModel for ModelAdapter<F>
where
    F::Query: DeserializeOwned,
{
    fn kind(&self) -> u32 {
        F::KIND
    }

    fn name(&self) -> &'static str {
        F::NAME
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn delete(&self, id: u64) -> Result<u64, CortexError> {
        ModelAdapter::delete(self, id)
    }

    fn wait_for_seq(&self, seq: u64, timeout: Duration, cancel: &CancelToken) -> WaitOutcome {
        self.adapter()
            .wait_for_seq_cancellable(seq, timeout, Some(cancel))
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

    fn find_unique(&self, id: u64) -> Result<Option<net_bytes_t>, FfiError> {
        ModelAdapter::find_unique(self, id)
            .as_ref()
            .map(to_json)
            .transpose()
    }

    fn find_many(&self, filter: Option<&str>) -> Result<net_bytes_t, FfiError> {
        to_json(&ModelAdapter::find_many(self, &parse_query(filter)?))
    }

    fn count_where(&self, filter: Option<&str>) -> Result<u64, FfiError> {
        Ok(ModelAdapter::count_where(self, &parse_query(filter)?) as u64)
    }

    fn exists_where(&self, filter: Option<&str>) -> Result<bool, FfiError> {
        Ok(ModelAdapter::exists_where(self, &parse_query(filter)?))
    }

    fn watch(&self, filter: Option<&str>) -> Result<Box<dyn AnyWatch>, FfiError> {
        Ok(Box::new(ModelAdapter::watch(self, parse_query(filter)?)))
    }

    fn snapshot_and_watch(
        &self,
        filter: Option<&str>,
    ) -> Result<(net_bytes_t, Box<dyn AnyWatch>), FfiError> {
        let (current, watch) = ModelAdapter::snapshot_and_watch(self, parse_query(filter)?);
        Ok((to_json(&current)?, Box::new(watch)))
    }

    fn snapshot(&self) -> Result<ModelSnapshot, CortexError> {
        ModelAdapter::snapshot(self)
    }

    fn close(&self) -> Result<(), CortexError> {
        ModelAdapter::close(self)
    }
}

/// A model owned by the C side, and the token its free cancels: a
/// `net_model_wait_for_seq` waiting on it returns `NET_ERR_SHUTTING_DOWN`,
/// and a `net_model_watch_next` on any of its watches returns `NET_END`.
/// Releasing it stops the fold and closes the file.
pub(crate) struct ModelHandle {
    model: Box<dyn AnyModel>,
    closing: CancelToken,
}

impl ModelHandle {
    /// The model as a `ModelAdapter<F>`, for a write particular to kind `F`
    /// (`call` names the C function); `NET_ERR_INVALID_ARGUMENT` for a model
    /// of another kind.
    fn of_kind<F: AbiKind>(&self, call: &str) -> Result<&ModelAdapter<F>, FfiError> {
        self.model
            .as_any()
            .downcast_ref::<ModelAdapter<F>>()
            .ok_or_else(|| {
                FfiError::invalid_argument(format!(
                    "this net_model_t is a {} model; {call} needs a {} model (opened with {})",
                    self.model.name(),
                    F::NAME,
                    constant_name::<F>(),
                ))
            })
    }
}

impl HandleInner for ModelHandle {
    fn wake_blocked(&self) {
        self.closing.cancel();
    }

    fn close(self) -> Result<(), FfiError> {
        self.model.close().map_err(|e| {
            FfiError::new(
                net_status_t::NET_ERR_BUSY,
                format!("closing the freed CortEX model failed: {e}"),
            )
        })
    }
}
opaque_handle!(net_model_t => ModelHandle, kind = b"NCMD");

/// What one pull of a watch gave.
pub(crate) enum WatchNext {
    /// The query's rows, a JSON array.
    Rows(net_bytes_t),
    /// This many changes were missed; the next rows have them applied.
    Lagged(u64),
    Timeout,
    /// The model closed, its fold halted, or the watch was freed.
    End,
    /// The call's token was cancelled.
    Cancelled,
}

/// A watch of any kind: [`Watch`] with its rows rendered as JSON.
pub(crate) trait AnyWatch: Send + 'static {
    fn next(
        &mut self,
        timeout: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<WatchNext, FfiError>;
    /// Ends the watch from another thread (a blocked `next` returns `End`).
    fn closer(&self) -> ReceiverCloser<u64>;
}

impl<F: Fold, T> AnyWatch for Watch<F, T>
where
    T: Serialize + Clone + PartialEq + Send + 'static,
{
    fn next(
        &mut self,
        timeout: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<WatchNext, FfiError> {
        Ok(match self.next_cancellable(timeout, Some(cancel)) {
            WatchPoll::Event(WatchEvent::Update(rows)) => WatchNext::Rows(to_json(&rows)?),
            WatchPoll::Event(WatchEvent::Lagged(missed)) => WatchNext::Lagged(missed),
            WatchPoll::Timeout => WatchNext::Timeout,
            WatchPoll::Cancelled => WatchNext::Cancelled,
            _ => WatchNext::End,
        })
    }

    fn closer(&self) -> ReceiverCloser<u64> {
        Watch::closer(self)
    }
}

/// A watch owned by the C side. Its free closes it (waking a blocked
/// `_next`); its model's free ends it through `model_closing`.
pub(crate) struct WatchHandle {
    watch: Mutex<Box<dyn AnyWatch>>,
    closer: ReceiverCloser<u64>,
    /// The model's `closing` token.
    model_closing: CancelToken,
    /// Cancelled by this watch's free: wakes calls queued for their turn.
    closing: CancelToken,
    /// One `_next` at a time; a queued one keeps its deadline and token.
    turn: Turn,
}

impl WatchHandle {
    fn new(watch: Box<dyn AnyWatch>, model: &ModelHandle) -> Self {
        Self {
            closer: watch.closer(),
            watch: Mutex::new(watch),
            model_closing: model.closing.clone(),
            closing: CancelToken::new(),
            turn: Turn::default(),
        }
    }
}

impl HandleInner for WatchHandle {
    fn wake_blocked(&self) {
        self.closer.close();
        self.closing.cancel();
    }
}
opaque_handle!(net_model_watch_t => WatchHandle, kind = b"NCWA");

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

/// Opens (or, with a snapshot, restores) a model of `kind`.
fn open_model(
    redex: &Redex,
    kind: u32,
    origin: u64,
    config: Option<&str>,
    snapshot: Option<&ModelSnapshot>,
) -> Result<ModelHandle, FfiError> {
    fn open<F: AbiKind>(
        redex: &Redex,
        origin: u64,
        config: ModelConfig,
        snapshot: Option<&ModelSnapshot>,
    ) -> Result<Box<dyn AnyModel>, FfiError>
    where
        F::Query: DeserializeOwned,
    {
        let model = match snapshot {
            Some(snapshot) => ModelAdapter::<F>::restore(redex, origin, config, snapshot)?,
            None => ModelAdapter::<F>::open(redex, origin, config)?,
        };
        Ok(Box::new(model))
    }
    let open = match kind {
        NET_MODEL_TASKS => open::<TasksFold>,
        NET_MODEL_MEMORIES => open::<MemoriesFold>,
        other => {
            return Err(FfiError::invalid_argument(format!(
                "`kind` {other} is not a model kind (NET_MODEL_TASKS = {NET_MODEL_TASKS}, \
                 NET_MODEL_MEMORIES = {NET_MODEL_MEMORIES})"
            )));
        }
    };
    let config = parse_model_config(config)?;
    Ok(ModelHandle {
        model: open(redex, origin, config, snapshot)?,
        closing: CancelToken::new(),
    })
}

fn wait(
    handle: &ModelHandle,
    seq: u64,
    timeout_ms: u32,
    cancel: &CallCancel,
) -> Result<net_status_t, FfiError> {
    let timeout = if timeout_ms == NET_WAIT_FOREVER {
        Duration::MAX
    } else {
        Duration::from_millis(u64::from(timeout_ms))
    };
    let stop = cancel.linked_with(&handle.closing);
    match handle.model.wait_for_seq(seq, timeout, &stop) {
        WaitOutcome::Reached => Ok(net_status_t::NET_OK),
        WaitOutcome::TimedOut => Ok(net_status_t::NET_TIMEOUT),
        WaitOutcome::Cancelled => Err(cancel.interrupted(&handle.closing, "the model")),
        _ => Err(FfiError::new(
            net_status_t::NET_ERR_CORTEX_HALTED,
            format!("the fold stopped before seq {seq}"),
        )),
    }
}

fn watch_next(
    handle: &WatchHandle,
    timeout_ms: u32,
    rows_out: Out<net_bytes_t>,
    missed_out: Out<u64>,
    cancel: &CallCancel,
) -> Result<net_status_t, FfiError> {
    let deadline = (timeout_ms != NET_WAIT_FOREVER)
        .then(|| Instant::now().checked_add(Duration::from_millis(u64::from(timeout_ms))))
        .flatten();
    let stop = cancel.linked_with(&handle.model_closing);
    let ended = || handle.model_closing.is_cancelled() || handle.closing.is_cancelled();
    let _turn = match handle
        .turn
        .take(deadline, &CancelToken::linked(&[&stop, &handle.closing]))
    {
        Ok(turn) => turn,
        Err(NoTurn::TimedOut) => return Ok(net_status_t::NET_TIMEOUT),
        Err(NoTurn::Cancelled) if ended() => return Ok(net_status_t::NET_END),
        Err(NoTurn::Cancelled) => return Err(super::cancel::cancelled()),
    };
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    let mut watch = handle.watch.lock().unwrap_or_else(|e| e.into_inner());
    // A freed model has no more events, not even a first result.
    if handle.model_closing.is_cancelled() {
        return Ok(net_status_t::NET_END);
    }
    Ok(match watch.next(timeout, &stop)? {
        WatchNext::Rows(rows) => {
            rows_out.write(rows);
            missed_out.write(0);
            net_status_t::NET_OK
        }
        WatchNext::Lagged(missed) => {
            rows_out.write(net_bytes_t::EMPTY);
            missed_out.write(missed);
            net_status_t::NET_LAGGED
        }
        WatchNext::Timeout => net_status_t::NET_TIMEOUT,
        WatchNext::Cancelled if handle.model_closing.is_cancelled() => net_status_t::NET_END,
        WatchNext::Cancelled => return Err(super::cancel::cancelled()),
        WatchNext::End => net_status_t::NET_END,
    })
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

// ---- every kind ----------------------------------------------------------------

/// Opens the model of `kind` (`NET_MODEL_TASKS`, `NET_MODEL_MEMORIES`) on
/// `redex` as writer `origin_hash`, and folds its channel from the configured
/// start. `config_json` may be NULL (defaults: a memory file, `"stop"`, from
/// the beginning). Several models (of any kinds and origins) may be open on
/// one manager; two of the same kind share the file.
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` for an unknown `kind`;
/// `NET_ERR_CORTEX_INVALID_CONFIG` naming the bad key; RedEX open errors.
///
/// # Safety
/// `redex` is NULL or from libnet; `config_json` is NULL or readable for its
/// length; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_open(
    redex: *const net_redex_t,
    kind: u32,
    origin_hash: u64,
    config_json: *const u8,
    config_json_len: usize,
    out: *mut *mut net_model_t,
) -> net_status_t {
    ffi_export!(handle redex; opt_str config_json[config_json_len]; out out; {
        let model = open_model(redex, kind, origin_hash, config_json, None)?;
        out.write(handle::into_raw(model));
        Ok(())
    })
}

/// Opens the model of `kind` from a snapshot taken by `net_model_snapshot`
/// (`snapshot`, and `last_seq` when `has_last_seq`): its state and app
/// sequence, then only the events after it (the configured start is
/// ignored). The snapshot must come from a model of the same kind.
///
/// Errors: `NET_ERR_CORTEX_SNAPSHOT` when the bytes do not decode as that
/// kind's state; as `net_model_open`.
///
/// # Safety
/// As `net_model_open`; `snapshot` is readable for `snapshot_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_restore(
    redex: *const net_redex_t,
    kind: u32,
    origin_hash: u64,
    config_json: *const u8,
    config_json_len: usize,
    snapshot: *const u8,
    snapshot_len: usize,
    last_seq: u64,
    has_last_seq: bool,
    out: *mut *mut net_model_t,
) -> net_status_t {
    ffi_export!(handle redex; opt_str config_json[config_json_len]; bytes snapshot[snapshot_len]; out out; {
        let snapshot = ModelSnapshot { bytes: snapshot.to_vec(), last_seq: has_last_seq.then_some(last_seq) };
        let model = open_model(redex, kind, origin_hash, config_json, Some(&snapshot))?;
        out.write(handle::into_raw(model));
        Ok(())
    })
}

/// Frees a model: wakes every call blocked on it (`net_model_wait_for_seq`
/// returns `NET_ERR_SHUTTING_DOWN`), ends its watches (their `_next`
/// returns `NET_END`; the watches still need `net_model_watch_free`), waits
/// up to 5 s for calls in flight, then stops the fold and closes the file.
/// NULL-safe and idempotent.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s (its
/// resources are then leaked rather than freed under them; also logged) or
/// when closing the model's file failed.
///
/// # Safety
/// `model` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_free(model: *mut net_model_t) -> net_status_t {
    super::export::run(|| handle::free(model))
}

/// Stops the fold and closes the file (syncing it), reporting any error;
/// later writes fail with `NET_ERR_CORTEX_HALTED` or a RedEX error, a
/// waiting `net_model_wait_for_seq` returns `NET_ERR_CORTEX_HALTED`, and
/// watches end. Queries keep answering from the last state. The handle
/// still needs `net_model_free`.
///
/// # Safety
/// `model` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_close(model: *const net_model_t) -> net_status_t {
    ffi_export!(handle model; {
        model.model.close()?;
        Ok(())
    })
}

/// The model's kind: the `NET_MODEL_*` constant it was opened with.
///
/// # Safety
/// `model` is NULL or from libnet; `kind_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_kind(
    model: *const net_model_t,
    kind_out: *mut u32,
) -> net_status_t {
    ffi_export!(handle model; out kind_out; {
        kind_out.write(model.model.kind());
        Ok(())
    })
}

/// Deletes row `id` (a task, a memory; no effect if absent); writes the
/// event's RedEX seq.
///
/// Errors: `NET_ERR_CORTEX_HALTED` when the fold has stopped; RedEX append
/// errors.
///
/// # Safety
/// `model` is NULL or from libnet; `seq_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_delete(
    model: *const net_model_t,
    id: u64,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle model; out seq_out; {
        seq_out.write(model.model.delete(id)?);
        Ok(())
    })
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit) until the fold
/// has attempted RedEX seq `seq`, the seq a write returned: read-after-write
/// is a write, then this. It reports fold *progress*: under
/// `log_and_continue` the event may have been skipped (see
/// `net_model_progress`).
///
/// Returns `NET_OK`; `NET_TIMEOUT`; `NET_ERR_CORTEX_HALTED` at once when the
/// fold stopped short of `seq` (halted, or `net_model_close`);
/// `NET_ERR_CANCELLED` when `cancel` is cancelled; `NET_ERR_SHUTTING_DOWN`
/// when the model is freed during the wait. `cancel` and `error_out` may be
/// NULL (see `net_error_t`).
///
/// # Safety
/// `model` is NULL or from libnet; `cancel` is NULL or from libnet;
/// `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_wait_for_seq(
    model: *const net_model_t,
    seq: u64,
    timeout_ms: u32,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle model; cancel cancel; {
        wait(model, seq, timeout_ms, &cancel)
    })
}

/// The fold's state as a JSON object: `{"applied_through_seq",
/// "folded_through_seq"` (null before the first event), `"running",
/// "errors", "last_error"` (null or text), `"app_seq"}`.
///
/// # Safety
/// `model` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_progress(
    model: *const net_model_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle model; out json_out; {
        json_out.write(to_json(&model.model.progress())?);
        Ok(())
    })
}

/// Row `id` as a JSON object (the keys of the model's kind); `*found_out`
/// false, and an empty buffer, if it does not exist.
///
/// # Safety
/// `model` is NULL or from libnet; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_find_unique(
    model: *const net_model_t,
    id: u64,
    json_out: *mut net_bytes_t,
    found_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle model; out json_out; out found_out; {
        let json = model.model.find_unique(id)?;
        found_out.write(json.is_some());
        json_out.write(json.unwrap_or(net_bytes_t::EMPTY));
        Ok(())
    })
}

/// The rows matching `filter_json` (a JSON object with the filter keys of
/// the model's kind; NULL, empty or `{}`: every row), ordered and paged, as
/// a JSON array.
///
/// Errors: `NET_ERR_CORTEX_INVALID_QUERY` naming the bad key or value (a key
/// of another kind's filter is a bad key).
///
/// # Safety
/// `model` is NULL or from libnet; `filter_json` is NULL or readable for
/// its length; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_find_many(
    model: *const net_model_t,
    filter_json: *const u8,
    filter_json_len: usize,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle model; opt_str filter_json[filter_json_len]; out json_out; {
        json_out.write(model.model.find_many(filter_json)?);
        Ok(())
    })
}

/// How many rows match the filter (its order and page are ignored).
///
/// # Safety
/// As `net_model_find_many`; `count_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_count_where(
    model: *const net_model_t,
    filter_json: *const u8,
    filter_json_len: usize,
    count_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle model; opt_str filter_json[filter_json_len]; out count_out; {
        count_out.write(model.model.count_where(filter_json)?);
        Ok(())
    })
}

/// Whether any row matches the filter.
///
/// # Safety
/// As `net_model_find_many`; `exists_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_exists_where(
    model: *const net_model_t,
    filter_json: *const u8,
    filter_json_len: usize,
    exists_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle model; opt_str filter_json[filter_json_len]; out exists_out; {
        exists_out.write(model.model.exists_where(filter_json)?);
        Ok(())
    })
}

/// A live query: the first `net_model_watch_next` returns the current rows,
/// later ones the rows after each change that alters them.
///
/// # Safety
/// As `net_model_find_many`; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_watch(
    model: *const net_model_t,
    filter_json: *const u8,
    filter_json_len: usize,
    out: *mut *mut net_model_watch_t,
) -> net_status_t {
    ffi_export!(handle model; opt_str filter_json[filter_json_len]; out out; {
        let watch = model.model.watch(filter_json)?;
        out.write(handle::into_raw(WatchHandle::new(watch, model)));
        Ok(())
    })
}

/// The current rows (a JSON array) and a watch whose `_next` returns only
/// later changes; nothing can slip between the two.
///
/// # Safety
/// As `net_model_find_many`; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_snapshot_and_watch(
    model: *const net_model_t,
    filter_json: *const u8,
    filter_json_len: usize,
    current_json_out: *mut net_bytes_t,
    out: *mut *mut net_model_watch_t,
) -> net_status_t {
    ffi_export!(handle model; opt_str filter_json[filter_json_len]; out current_json_out; out out; {
        let (current, watch) = model.model.snapshot_and_watch(filter_json)?;
        current_json_out.write(current);
        out.write(handle::into_raw(WatchHandle::new(watch, model)));
        Ok(())
    })
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit) for the watch's
/// next result.
///
/// Returns `NET_OK` with the rows (a JSON array) in `*rows_out`;
/// `NET_LAGGED` with `*missed_out` changes missed (and an empty
/// `*rows_out`; the next `NET_OK` has them all applied); `NET_TIMEOUT`;
/// `NET_END` when the watch was freed, or its model was freed, closed or its
/// fold halted (no more results will come); `NET_ERR_CANCELLED` when
/// `cancel` is cancelled (the watch stays usable). `cancel` and `error_out`
/// may be NULL (see `net_error_t`). Calls on one watch are served one at a
/// time.
///
/// # Safety
/// `watch` is NULL or from libnet; `rows_out` and `missed_out` are valid for
/// one write; `cancel` is NULL or from libnet; `error_out` is NULL or valid
/// for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_watch_next(
    watch: *const net_model_watch_t,
    timeout_ms: u32,
    rows_out: *mut net_bytes_t,
    missed_out: *mut u64,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle watch; cancel cancel; out rows_out; out missed_out; {
        watch_next(watch, timeout_ms, rows_out, missed_out, &cancel)
    })
}

/// Frees a watch; a `_next` blocked on it returns `NET_END`. NULL-safe and
/// idempotent; a watch may be freed before or after its model.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s (its
/// resources are then leaked rather than freed under them; also logged).
///
/// # Safety
/// `watch` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_watch_free(watch: *mut net_model_watch_t) -> net_status_t {
    super::export::run(|| handle::free(watch))
}

/// A snapshot: the state's postcard bytes, and the RedEX seq of the last
/// event they contain (`*has_last_seq_out` false when none; `*last_seq_out`
/// is then 0). Restore with `net_model_restore` and the same kind.
///
/// # Safety
/// `model` is NULL or from libnet; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_model_snapshot(
    model: *const net_model_t,
    bytes_out: *mut net_bytes_t,
    last_seq_out: *mut u64,
    has_last_seq_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle model; out bytes_out; out last_seq_out; out has_last_seq_out; {
        let snapshot = model.model.snapshot()?;
        bytes_out.write(net_bytes_t::from_vec(snapshot.bytes));
        last_seq_out.write(snapshot.last_seq.unwrap_or(0));
        has_last_seq_out.write(snapshot.last_seq.is_some());
        Ok(())
    })
}

// ---- tasks only ----------------------------------------------------------------

/// Creates (or overwrites) task `id` with `title`; writes the event's RedEX
/// seq.
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` when `tasks` is not a `NET_MODEL_TASKS`
/// model or `title` is not UTF-8; `NET_ERR_CORTEX_HALTED` when the fold has
/// stopped; RedEX append errors.
///
/// # Safety
/// `tasks` is NULL or from libnet; `title` is readable for `title_len` bytes;
/// `seq_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_create(
    tasks: *const net_model_t,
    id: u64,
    title: *const u8,
    title_len: usize,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle tasks; str title[title_len]; out seq_out; {
        let tasks = tasks.of_kind::<TasksFold>("net_tasks_create")?;
        seq_out.write(tasks.create(id, title)?);
        Ok(())
    })
}

/// Renames task `id` (no effect if absent); writes the event's RedEX seq.
///
/// Errors: as `net_tasks_create`.
///
/// # Safety
/// As `net_tasks_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_rename(
    tasks: *const net_model_t,
    id: u64,
    new_title: *const u8,
    new_title_len: usize,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle tasks; str new_title[new_title_len]; out seq_out; {
        let tasks = tasks.of_kind::<TasksFold>("net_tasks_rename")?;
        seq_out.write(tasks.rename(id, new_title)?);
        Ok(())
    })
}

/// Marks task `id` completed (no effect if absent); writes the event's
/// RedEX seq.
///
/// Errors: as `net_tasks_create`.
///
/// # Safety
/// `tasks` is NULL or from libnet; `seq_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_tasks_complete(
    tasks: *const net_model_t,
    id: u64,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle tasks; out seq_out; {
        let tasks = tasks.of_kind::<TasksFold>("net_tasks_complete")?;
        seq_out.write(tasks.complete(id)?);
        Ok(())
    })
}

// ---- memories only -------------------------------------------------------------

/// Stores memory `id` (creating it, or replacing its content, tags and
/// source); `tags` is an array of `tag_count` UTF-8 strings (NULL when 0).
/// Writes the event's RedEX seq.
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` when `memories` is not a
/// `NET_MODEL_MEMORIES` model or a string is not UTF-8 (naming it);
/// `NET_ERR_CORTEX_HALTED` when the fold has stopped; RedEX append errors.
///
/// # Safety
/// `memories` is NULL or from libnet; the strings are readable for their
/// lengths; `tags` is readable for `tag_count` slices; `seq_out` is valid
/// for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_store(
    memories: *const net_model_t,
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
        let memories = memories.of_kind::<MemoriesFold>("net_memories_store")?;
        let tags = slices_to_strings(&tags, "tags")?;
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        seq_out.write(memories.store(id, content, &tags, source)?);
        Ok(())
    })
}

/// Replaces memory `id`'s tags (no effect if absent); writes the event's
/// RedEX seq.
///
/// Errors: as `net_memories_store`.
///
/// # Safety
/// As `net_memories_store`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_retag(
    memories: *const net_model_t,
    id: u64,
    tags: *const net_slice_t,
    tag_count: usize,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle memories; slices tags[tag_count]; out seq_out; {
        let memories = memories.of_kind::<MemoriesFold>("net_memories_retag")?;
        let tags = slices_to_strings(&tags, "tags")?;
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        seq_out.write(memories.retag(id, &tags)?);
        Ok(())
    })
}

/// Pins memory `id` (no effect if absent); writes the event's RedEX seq.
///
/// Errors: as `net_memories_store`.
///
/// # Safety
/// `memories` is NULL or from libnet; `seq_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_pin(
    memories: *const net_model_t,
    id: u64,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle memories; out seq_out; {
        let memories = memories.of_kind::<MemoriesFold>("net_memories_pin")?;
        seq_out.write(memories.pin(id)?);
        Ok(())
    })
}

/// Unpins memory `id` (no effect if absent); writes the event's RedEX seq.
///
/// Errors: as `net_memories_store`.
///
/// # Safety
/// As `net_memories_pin`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_memories_unpin(
    memories: *const net_model_t,
    id: u64,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle memories; out seq_out; {
        let memories = memories.of_kind::<MemoriesFold>("net_memories_unpin")?;
        seq_out.write(memories.unpin(id)?);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cortex::{MemoryQuery, TaskQuery};

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

    #[test]
    fn every_kind_constant_opens_its_model() {
        let redex = Redex::new();
        for (kind, name) in [(NET_MODEL_TASKS, "tasks"), (NET_MODEL_MEMORIES, "memories")] {
            let handle = open_model(&redex, kind, 1, None, None).unwrap();
            assert_eq!((handle.model.kind(), handle.model.name()), (kind, name));
            handle.model.close().unwrap();
        }
        assert_eq!(<TasksFold as AbiKind>::KIND, NET_MODEL_TASKS);
        assert_eq!(<MemoriesFold as AbiKind>::KIND, NET_MODEL_MEMORIES);
        assert_eq!(constant_name::<MemoriesFold>(), "NET_MODEL_MEMORIES");
        for bad in [0, 3, u32::MAX] {
            let err = open_model(&redex, bad, 1, None, None).err().unwrap();
            assert_eq!(err.status, net_status_t::NET_ERR_INVALID_ARGUMENT);
            assert!(err.message.contains(&bad.to_string()), "{}", err.message);
        }
    }

    #[test]
    fn a_write_of_one_kind_refuses_a_model_of_the_other() {
        let redex = Redex::new();
        let memories = open_model(&redex, NET_MODEL_MEMORIES, 1, None, None).unwrap();
        let err = memories
            .of_kind::<TasksFold>("net_tasks_create")
            .err()
            .unwrap();
        assert_eq!(err.status, net_status_t::NET_ERR_INVALID_ARGUMENT);
        assert_eq!(
            err.message,
            "this net_model_t is a memories model; net_tasks_create needs a tasks model \
             (opened with NET_MODEL_TASKS)"
        );
        assert!(memories.of_kind::<MemoriesFold>("net_memories_pin").is_ok());
        memories.model.close().unwrap();
    }
}
