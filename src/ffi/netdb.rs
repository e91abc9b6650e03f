//! `net_netdb_*`: NetDB over the C ABI (COMPUTE.md §6): one handle over the
//! tasks and memories models, opened together (failure-atomic), bundled
//! together (one snapshot point), closed together.
//!
//! A NetDB adds no model operation of its own: its models are ordinary
//! `net_model_t` handles, opened through `net_model_open` /
//! `net_model_restore` exactly as an application would, and
//! `net_netdb_model` hands them out, so every `net_model_*`, `net_tasks_*`
//! and `net_memories_*` function works on them. The sequencing (which
//! models, failure atomicity, the bundle's one cut) is `crate::netdb`'s,
//! shared with the Rust API.

use std::sync::Mutex;

use super::bytes::{net_bytes_free, net_bytes_t};
use super::cortex::{
    NET_MODEL_MEMORIES, NET_MODEL_TASKS, net_model_close, net_model_open, net_model_restore,
    net_model_snapshot, net_model_t, net_model_wait_for_seq, parse_model_config,
};
use super::error::{FfiError, last_error_text};
use super::export::ffi_export;
use super::handle::{self, HandleInner, opaque_handle};
use super::redex::{NET_WAIT_FOREVER, net_redex_t};
use super::status::net_status_t;
use crate::cortex::{MemoriesFold, ModelFold, ModelSnapshot, TasksFold};
use crate::netdb::{
    CutSource, NetDbBundle, NetDbError, consistent_bundle, fit_to_log, open_planned, plan,
};
use crate::redex::{Redex, RedexFile};

/// NetDB: the tasks and memories models of one redex behind one handle
/// (`net_netdb_open`). Thread-safe.
///
/// Its models are `net_model_t` handles it owns: `net_netdb_model` lends
/// them, for every `net_model_*` / `net_tasks_*` / `net_memories_*` call,
/// until `net_netdb_free` frees them. (Freeing one yourself with
/// `net_model_free` closes that model early; the NetDB then reports it
/// closed.)
#[allow(non_camel_case_types)]
pub struct net_netdb_t {
    _opaque: [u8; 0],
}

/// A model handle as the NetDB holds it: a token that every use checks
/// against the handle table, so it is safe to share between threads.
#[derive(Clone, Copy)]
struct ModelPtr(*mut net_model_t);

// SAFETY: the pointer is never dereferenced here: every use passes it to a
// `net_model_*` entry point, which looks it up in the handle table (freed
// or reused slots are refused). The models behind it are thread-safe.
unsafe impl Send for ModelPtr {}
// SAFETY: as for Send.
unsafe impl Sync for ModelPtr {}

/// One of the NetDB's models: its handle, and the file it folds (shared
/// with the model through the redex) for the bundle's cut.
struct DbModel {
    model: ModelPtr,
    file: RedexFile,
    origin_hash: u64,
}

/// What `net_netdb_t` owns.
pub(crate) struct NetDbHandle {
    tasks: Option<DbModel>,
    memories: Option<DbModel>,
    closed: Mutex<bool>,
}

impl HandleInner for NetDbHandle {
    fn close(self) -> Result<(), FfiError> {
        let tasks = self.tasks.map_or(Ok(()), |m| handle::free(m.model.0));
        let memories = self.memories.map_or(Ok(()), |m| handle::free(m.model.0));
        tasks.and(memories)
    }
}
opaque_handle!(net_netdb_t => NetDbHandle, kind = b"NNDB");

/// The failure of a `net_*` call made on the application's behalf, with the
/// detail it left on this thread.
fn failed(status: net_status_t) -> FfiError {
    FfiError::new(status, last_error_text())
}

impl From<NetDbError> for FfiError {
    fn from(err: NetDbError) -> Self {
        match err {
            NetDbError::Cortex(e) => e.into(),
            NetDbError::ModelNotIncluded(model) => Self::new(
                net_status_t::NET_ERR_CORTEX_SNAPSHOT,
                format!(
                    "the bundle holds the {model} model, which this NetDB does not enable \
                     (\"with_{model}\": true)"
                ),
            ),
            other => Self::new(net_status_t::NET_ERR_INTERNAL, other.to_string()),
        }
    }
}

/// The NetDB configuration: which models, on disk or not, the folds'
/// policy. The models' own configuration JSON is derived from it.
struct DbConfig {
    tasks: bool,
    memories: bool,
    persistent: bool,
    /// `net_model_open`'s configuration for both models.
    model_json: String,
}

fn parse_db_config(json: Option<&str>) -> Result<DbConfig, FfiError> {
    let bad = |m: String| FfiError::new(net_status_t::NET_ERR_CORTEX_INVALID_CONFIG, m);
    let json = json.unwrap_or("").trim();
    let map = if json.is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_str(json) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => return Err(bad("config JSON must be an object".into())),
            Err(e) => return Err(bad(format!("config JSON: {e}"))),
        }
    };
    let mut config = DbConfig {
        tasks: false,
        memories: false,
        persistent: false,
        model_json: String::new(),
    };
    let mut model = serde_json::Map::new();
    for (key, value) in map {
        let flag = match key.as_str() {
            "with_tasks" => &mut config.tasks,
            "with_memories" => &mut config.memories,
            "persistent" => &mut config.persistent,
            "policy" => {
                model.insert(key, value);
                continue;
            }
            other => {
                return Err(bad(format!(
                    "unknown key {other:?} (known: with_tasks, with_memories, persistent, policy)"
                )));
            }
        };
        *flag = value
            .as_bool()
            .ok_or_else(|| bad(format!("{key}: expected true or false, got {value}")))?;
    }
    model.insert("persistent".into(), config.persistent.into());
    config.model_json = serde_json::Value::Object(model).to_string();
    // Checked now, so a bad policy is a configuration error before anything opens.
    parse_model_config(Some(&config.model_json))?;
    Ok(config)
}

/// Opens the NetDB's models (see `net_netdb_open`).
fn open_db(
    redex_ptr: *const net_redex_t,
    redex: &Redex,
    origin_hash: u64,
    config: Option<&str>,
    bundle: Option<&[u8]>,
) -> Result<NetDbHandle, FfiError> {
    let config = parse_db_config(config)?;
    if config.persistent && redex.base_dir().is_none() {
        return Err(FfiError::new(
            net_status_t::NET_ERR_REDEX_NO_PERSISTENT_DIR,
            "\"persistent\": true needs a redex with a persistent directory",
        ));
    }
    let bundle = bundle.map(NetDbBundle::decode).transpose()?;
    let plan = plan(config.tasks, config.memories, bundle)?;
    let file_config = parse_model_config(Some(&config.model_json))?.file;
    let open = |kind: u32, (name, channel): (&str, &str), snapshot: Option<ModelSnapshot>| {
        // Kept open across the model's open: a memory file lives while held.
        let file = redex.open_file(channel, file_config)?;
        let json = config.model_json.as_bytes();
        let mut out = std::ptr::null_mut();
        // SAFETY: `redex_ptr` is the caller's handle (checked again inside);
        // the buffers outlive the calls; `out` is a local.
        let status = unsafe {
            match snapshot.map(|s| fit_to_log(&s, file.next_seq())) {
                None => net_model_open(
                    redex_ptr,
                    kind,
                    origin_hash,
                    json.as_ptr(),
                    json.len(),
                    &mut out,
                ),
                Some(s) => net_model_restore(
                    redex_ptr,
                    kind,
                    origin_hash,
                    json.as_ptr(),
                    json.len(),
                    s.bytes.as_ptr(),
                    s.bytes.len(),
                    s.last_seq.unwrap_or(0),
                    s.last_seq.is_some(),
                    &mut out,
                ),
            }
        };
        if status != net_status_t::NET_OK {
            return Err(failed(status));
        }
        let model = DbModel {
            model: ModelPtr(out),
            file,
            origin_hash,
        };
        replay(&model, name)?;
        Ok(model)
    };
    let (tasks, memories) = open_planned(
        plan,
        |s| open(NET_MODEL_TASKS, (TasksFold::NAME, TasksFold::CHANNEL), s),
        |s| {
            open(
                NET_MODEL_MEMORIES,
                (MemoriesFold::NAME, MemoriesFold::CHANNEL),
                s,
            )
        },
        |m: DbModel| {
            if let Err(e) = handle::free(m.model.0) {
                tracing::warn!(error = %e.message, "closing the NetDB tasks model after a failed open");
            }
        },
    )?;
    Ok(NetDbHandle {
        tasks,
        memories,
        closed: Mutex::new(false),
    })
}

/// Waits until the model's fold has replayed its log to the tail; frees the
/// model when it cannot.
fn replay(model: &DbModel, name: &str) -> Result<(), FfiError> {
    let Some(last) = model.file.next_seq().checked_sub(1) else {
        return Ok(());
    };
    // SAFETY: a handle from `net_model_open`; NULL token and error slot.
    let status = unsafe {
        net_model_wait_for_seq(
            model.model.0,
            last,
            NET_WAIT_FOREVER,
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    };
    if status == net_status_t::NET_OK {
        return Ok(());
    }
    let err = failed(status);
    let _ = handle::free(model.model.0);
    Err(FfiError::new(
        err.status,
        format!(
            "the {name} model's fold stopped while replaying its log ({}); \
             open with \"policy\": \"log_and_continue\" to skip what it cannot fold",
            err.message
        ),
    ))
}

/// The model's own snapshot, through `net_model_snapshot`.
fn model_snapshot(model: ModelPtr) -> Result<ModelSnapshot, FfiError> {
    let mut bytes = net_bytes_t::EMPTY;
    let (mut last_seq, mut has_last_seq) = (0u64, false);
    // SAFETY: a handle the NetDB owns (checked inside); the outputs are locals.
    let status =
        unsafe { net_model_snapshot(model.0, &mut bytes, &mut last_seq, &mut has_last_seq) };
    if status != net_status_t::NET_OK {
        return Err(failed(status));
    }
    let data = if bytes.ptr.is_null() {
        Vec::new()
    } else {
        // SAFETY: libnet wrote `len` initialised bytes at `ptr`.
        unsafe { std::slice::from_raw_parts(bytes.ptr, bytes.len) }.to_vec()
    };
    // SAFETY: the buffer came from libnet and is freed once.
    unsafe { net_bytes_free(&mut bytes) };
    Ok(ModelSnapshot {
        bytes: data,
        last_seq: has_last_seq.then_some(last_seq),
    })
}

/// The bundle's view of one model.
fn cut_source<'a>(
    model: &DbModel,
    take: &'a dyn Fn() -> Result<ModelSnapshot, FfiError>,
) -> CutSource<'a, FfiError> {
    CutSource {
        file: model.file.clone(),
        origin_hash: model.origin_hash,
        take,
    }
}

/// Opens a NetDB on `redex` as writer `origin_hash`: the models named in
/// `config_json` (a JSON object; NULL or empty: no model), tasks first, each
/// replaying its log to the tail before this returns. Keys: `"with_tasks"`,
/// `"with_memories"`, `"persistent"` (booleans, default false; persistent
/// needs a redex with a directory), `"policy"` (`"stop"`, the default, or
/// `"log_and_continue"`).
///
/// Failure-atomic: when a model cannot open, or its fold stops while
/// replaying (`NET_ERR_CORTEX_HALTED`), nothing stays open.
///
/// Errors: `NET_ERR_CORTEX_INVALID_CONFIG` naming the bad key;
/// `NET_ERR_REDEX_NO_PERSISTENT_DIR`; the models' open errors.
///
/// # Safety
/// `redex` is NULL or from libnet; `config_json` is NULL or readable for its
/// length; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_netdb_open(
    redex: *const net_redex_t,
    origin_hash: u64,
    config_json: *const u8,
    config_json_len: usize,
    out: *mut *mut net_netdb_t,
) -> net_status_t {
    let redex_ptr = redex;
    ffi_export!(handle redex; opt_str config_json[config_json_len]; out out; {
        let db = open_db(redex_ptr, redex, origin_hash, config_json, None)?;
        out.write(handle::into_raw(db));
        Ok(())
    })
}

/// Opens a NetDB from a bundle (`net_netdb_snapshot`): each model in it is
/// restored (and then folds the events its log has after it), each enabled
/// model not in it opens fresh. A bundle restored into a log that lacks its
/// events (a fresh redex) folds the events appended from then on.
///
/// Errors: `NET_ERR_CORTEX_SNAPSHOT` when the bundle does not decode, or
/// holds a model `config_json` does not enable; as `net_netdb_open`.
///
/// # Safety
/// As `net_netdb_open`; `bundle` is readable for `bundle_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_netdb_open_from_bundle(
    redex: *const net_redex_t,
    origin_hash: u64,
    config_json: *const u8,
    config_json_len: usize,
    bundle: *const u8,
    bundle_len: usize,
    out: *mut *mut net_netdb_t,
) -> net_status_t {
    let redex_ptr = redex;
    ffi_export!(handle redex; opt_str config_json[config_json_len]; bytes bundle[bundle_len]; out out; {
        let db = open_db(redex_ptr, redex, origin_hash, config_json, Some(bundle))?;
        out.write(handle::into_raw(db));
        Ok(())
    })
}

/// Lends the NetDB's model of `kind` (`NET_MODEL_TASKS`,
/// `NET_MODEL_MEMORIES`) for the `net_model_*`, `net_tasks_*` and
/// `net_memories_*` calls. The handle stays the NetDB's: `net_netdb_free`
/// frees it; do not free it yourself unless you mean to close that model.
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` for an unknown kind or a model the
/// NetDB was opened without.
///
/// # Safety
/// `db` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_netdb_model(
    db: *const net_netdb_t,
    kind: u32,
    out: *mut *mut net_model_t,
) -> net_status_t {
    ffi_export!(handle db; out out; {
        let (model, name) = match kind {
            NET_MODEL_TASKS => (&db.tasks, "tasks"),
            NET_MODEL_MEMORIES => (&db.memories, "memories"),
            other => {
                return Err(FfiError::invalid_argument(format!(
                    "`kind` {other} is not a model kind (NET_MODEL_TASKS = {NET_MODEL_TASKS}, \
                     NET_MODEL_MEMORIES = {NET_MODEL_MEMORIES})"
                )));
            }
        };
        let model = model.as_ref().ok_or_else(|| {
            FfiError::invalid_argument(format!(
                "this NetDB was opened without the {name} model (\"with_{name}\": true)"
            ))
        })?;
        out.write(model.model.0);
        Ok(())
    })
}

/// A bundle of both models cut at one point (STORAGE.md §12 bytes): every
/// write that returned before this call is in it, and a write in it comes
/// with every write, to either model, that returned before that write
/// began. Open it with `net_netdb_open_from_bundle`.
///
/// Errors: `NET_ERR_SHUTTING_DOWN` when a model of the NetDB was freed;
/// RedEX read errors.
///
/// # Safety
/// `db` is NULL or from libnet; `bundle_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_netdb_snapshot(
    db: *const net_netdb_t,
    bundle_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle db; out bundle_out; {
        let take_tasks = db.tasks.as_ref().map(|m| move || model_snapshot(m.model));
        let take_memories = db.memories.as_ref().map(|m| move || model_snapshot(m.model));
        let tasks = db.tasks.as_ref().zip(take_tasks.as_ref()).map(|(m, take)| cut_source(m, take));
        let memories = db.memories.as_ref().zip(take_memories.as_ref()).map(|(m, take)| cut_source(m, take));
        let bundle = consistent_bundle::<TasksFold, MemoriesFold, FfiError>(tasks, memories)?;
        bundle_out.write(net_bytes_t::from_vec(bundle.encode()));
        Ok(())
    })
}

/// Closes both models (tasks first): their folds stop, their files close
/// (syncing). Returns the first failure (the second is logged); idempotent
/// (later calls return `NET_OK`). The handle still needs `net_netdb_free`.
///
/// # Safety
/// `db` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_netdb_close(db: *const net_netdb_t) -> net_status_t {
    ffi_export!(handle db; {
        let mut closed = db.closed.lock().unwrap_or_else(|e| e.into_inner());
        if std::mem::replace(&mut *closed, true) {
            return Ok(());
        }
        let close = |m: &Option<DbModel>| match m {
            // SAFETY: a handle the NetDB owns (checked inside).
            Some(m) => match unsafe { net_model_close(m.model.0) } {
                net_status_t::NET_OK => Ok(()),
                status => Err(failed(status)),
            },
            None => Ok(()),
        };
        let (tasks, memories) = (close(&db.tasks), close(&db.memories));
        if let (Err(_), Err(second)) = (&tasks, &memories) {
            tracing::warn!(error = %second.message, "closing the NetDB memories model also failed");
        }
        tasks.and(memories)
    })
}

/// Frees a NetDB and its models (their handles, lent by `net_netdb_model`,
/// are freed with it: later calls on them return `NET_ERR_SHUTTING_DOWN`).
/// NULL-safe and idempotent; waits up to 5 s for calls in flight.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls were still running after 5 s or closing a
/// model failed.
///
/// # Safety
/// `db` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_netdb_free(db: *mut net_netdb_t) -> net_status_t {
    super::export::run(|| handle::free(db))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_names_the_bad_key() {
        let c = parse_db_config(Some(
            r#"{"with_tasks": true, "persistent": true, "policy": "log_and_continue"}"#,
        ))
        .unwrap();
        assert!(c.tasks && !c.memories && c.persistent);
        let model = parse_model_config(Some(&c.model_json)).unwrap();
        assert!(model.file.persistent);
        assert!(parse_db_config(None).is_ok_and(|c| !c.tasks && !c.memories));
        for (bad, needle) in [
            (r#"{"with_task": true}"#, "with_task"),
            (r#"{"with_tasks": 1}"#, "with_tasks"),
            (r#"{"policy": "retry"}"#, "policy"),
            ("[]", "object"),
            ("{", "config JSON"),
        ] {
            let err = parse_db_config(Some(bad)).err().unwrap();
            assert_eq!(
                err.status,
                net_status_t::NET_ERR_CORTEX_INVALID_CONFIG,
                "{bad}"
            );
            assert!(err.message.contains(needle), "{bad}: {}", err.message);
        }
    }
}
