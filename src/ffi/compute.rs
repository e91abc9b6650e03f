//! `net_compute_*`: daemons and their migration over the C ABI.
//!
//! A `net_compute_t` is a node's compute runtime, made on a `net_mesh_t`
//! (it becomes the node's 0x0500 migration handler). Daemons are written in
//! the SDK's language and reached without callbacks: each daemon call Rust
//! makes (process an event, take a snapshot, restore a state, build an
//! object for an arriving migration, drop an object) is a **work item** the
//! SDK pulls with `net_compute_next` on a thread of its own and answers with
//! one `net_compute_complete_*` or `net_compute_fail` call. A work item
//! not answered within `work_timeout_ms` fails the daemon call that made it
//! (a delivery returns `NET_ERR_COMPUTE_DAEMON`, a migration step aborts);
//! a late answer gets `NET_ERR_COMPUTE_WORK_EXPIRED`. See
//! `src/compute/foreign.rs` and docs/compute.md.
//!
//! Daemons and migrations are named by the daemon's origin hash (u64);
//! their status and statistics come back as JSON. Freeing the runtime
//! wakes every call blocked in it (`next` returns `NET_END`, waiting daemon
//! calls fail), uninstalls the migration handler and drops its daemons.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;

use super::bytes::{net_bytes_t, net_slice_t};
use super::cancel::{net_cancel_t, net_error_t};
use super::error::FfiError;
use super::export::ffi_export;
use super::handle::{self, HandleInner, opaque_handle};
use super::mesh::net_mesh_t;
use super::redex::NET_WAIT_FOREVER;
use super::status::net_status_t;
use crate::cancel::CancelToken;
use crate::compute::migration::FailureReason;
use crate::compute::{
    BatchWait, ComputeError, ComputeRuntime, DaemonError, DaemonHost, DeliveryOutcome,
    EventOutcome, ForeignDaemon, LentBatch, MigrationOptions, MigrationStatus, RuntimeConfig,
    WorkBridge, WorkError, WorkReply, WorkRequest,
};
use crate::identity::EntityKeypair;

/// Work item kind: apply the event in the payload to the instance; answer
/// with `net_compute_complete_process`.
pub const NET_COMPUTE_WORK_PROCESS: u32 = 1;
/// Work item kind: serialize the instance's state; answer with
/// `net_compute_complete_snapshot`.
pub const NET_COMPUTE_WORK_SNAPSHOT: u32 = 2;
/// Work item kind: replace the instance's state with the payload; answer
/// with `net_compute_complete_restore`.
pub const NET_COMPUTE_WORK_RESTORE: u32 = 3;
/// Work item kind: build a fresh object of the kind named by the payload
/// for the daemon (a migration is arriving); answer with
/// `net_compute_complete_create` and the new object's instance id.
pub const NET_COMPUTE_WORK_CREATE: u32 = 4;
/// Work item kind: Rust no longer uses the instance (the daemon moved
/// away, stopped, or the runtime closed); release it. Needs no answer.
pub const NET_COMPUTE_WORK_DROP: u32 = 5;

/// Work item kind: apply the events in the payload to the instance in
/// order, stopping at the first failure; answer once with
/// `net_compute_complete_batch`. The payload is the events back to back,
/// each `producer (u64 LE) ‖ sequence (u64 LE) ‖ length (u32 LE) ‖ bytes`
/// (`NET_COMPUTE_BATCH_RECORD_HEADER` bytes before each event's bytes);
/// the item's producer and sequence are the first event's.
pub const NET_COMPUTE_WORK_PROCESS_BATCH: u32 = 6;
/// Bytes before each event's payload in a ProcessBatch work item.
pub const NET_COMPUTE_BATCH_RECORD_HEADER: usize = 20;
// cbindgen writes the literal; the layout itself is `compute::BatchRecords`.
const _: () = assert!(NET_COMPUTE_BATCH_RECORD_HEADER == crate::compute::BATCH_RECORD_HEADER);
// The work item kinds are `WorkRequest::code`'s (literals above for cbindgen).
const _: () = {
    use crate::compute::WorkRequest as W;
    assert!(NET_COMPUTE_WORK_PROCESS == W::PROCESS);
    assert!(NET_COMPUTE_WORK_SNAPSHOT == W::SNAPSHOT);
    assert!(NET_COMPUTE_WORK_RESTORE == W::RESTORE);
    assert!(NET_COMPUTE_WORK_CREATE == W::CREATE);
    assert!(NET_COMPUTE_WORK_DROP == W::DROP);
    assert!(NET_COMPUTE_WORK_PROCESS_BATCH == W::PROCESS_BATCH);
};

/// `net_compute_deliver` outcome: processed here.
pub const NET_COMPUTE_PROCESSED: u32 = 0;
/// `net_compute_deliver` outcome: kept for the migration in progress; it
/// will be applied once, wherever the daemon ends up.
pub const NET_COMPUTE_BUFFERED: u32 = 1;
/// `net_compute_deliver` outcome: the daemon moved; forwarded to it.
pub const NET_COMPUTE_FORWARDED: u32 = 2;
/// `net_compute_deliver` outcome: already applied; dropped.
pub const NET_COMPUTE_DUPLICATE: u32 = 3;

/// A node's compute runtime. Thread-safe.
#[allow(non_camel_case_types)]
pub struct net_compute_t {
    _opaque: [u8; 0],
}

pub(crate) struct ComputeHandle {
    pub(super) runtime: Arc<ComputeRuntime>,
    /// The node the runtime is on (its failure detector, for groups that
    /// follow it).
    pub(super) mesh: Arc<crate::mesh::MeshNode>,
    pub(super) bridge: Arc<WorkBridge>,
    /// Registered kinds and whether their daemons are stateful.
    pub(super) kinds: Mutex<HashMap<String, bool>>,
    /// Batches lent to the SDK (`net_compute_lend_batch`), by lease id.
    leases: Mutex<Leases>,
}

/// The batches a runtime has lent out, by lease id (ids start at 1).
#[derive(Default)]
struct Leases {
    last: u64,
    lent: HashMap<u64, LentBatch>,
}

impl HandleInner for ComputeHandle {
    fn wake_blocked(&self) {
        // Lent daemons first: the runtime's worker may wait for one, and
        // shutdown joins it (a later finish finds its lease gone).
        let lent = std::mem::take(&mut self.leases().lent);
        drop(lent);
        // Daemon calls waiting for the SDK next, for the same reason.
        self.bridge.close();
        self.runtime.shutdown();
    }
}

opaque_handle!(net_compute_t => ComputeHandle, kind = b"NCMP");

impl ComputeHandle {
    fn leases(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn stateful(&self, kind: &str) -> Result<bool, FfiError> {
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kind)
            .copied()
            .ok_or_else(|| {
                FfiError::new(
                    net_status_t::NET_ERR_COMPUTE_UNKNOWN_KIND,
                    format!("no daemon kind {kind:?} is registered"),
                )
            })
    }

    /// Whether `kind` (registered) is stateful, and the keypair and origin
    /// of the identity `seed`.
    fn identity(
        &self,
        kind: &str,
        seed: &[u8; 32],
    ) -> Result<(bool, EntityKeypair, u64), FfiError> {
        let stateful = self.stateful(kind)?;
        let keypair = EntityKeypair::from_seed(seed);
        let origin = keypair.origin_hash();
        Ok((stateful, keypair, origin))
    }

    /// The error of a daemon call, `NET_ERR_SHUTTING_DOWN` if it failed
    /// because the runtime was being freed.
    fn daemon_error(&self, err: ComputeError) -> FfiError {
        if self.bridge.is_closed() {
            return FfiError::new(
                net_status_t::NET_ERR_SHUTTING_DOWN,
                format!("the compute runtime was freed during the call ({err})"),
            );
        }
        err.into()
    }
}

impl From<DaemonError> for FfiError {
    fn from(err: DaemonError) -> Self {
        let status = match err {
            DaemonError::NotFound(_) => net_status_t::NET_ERR_COMPUTE_NOT_FOUND,
            DaemonError::Stale(_) => net_status_t::NET_ERR_COMPUTE_STALE,
            DaemonError::AlreadyRegistered(_) => net_status_t::NET_ERR_COMPUTE_ALREADY_REGISTERED,
            _ => net_status_t::NET_ERR_COMPUTE_DAEMON,
        };
        Self::new(status, err.to_string())
    }
}

impl From<ComputeError> for FfiError {
    fn from(err: ComputeError) -> Self {
        let status = match &err {
            ComputeError::Daemon(daemon) => return daemon.clone().into(),
            ComputeError::AlreadyMigrating(_) => net_status_t::NET_ERR_COMPUTE_ALREADY_MIGRATING,
            ComputeError::SameNode(_) => net_status_t::NET_ERR_INVALID_ARGUMENT,
            ComputeError::Transport(_) => net_status_t::NET_ERR_COMPUTE_TRANSPORT,
            ComputeError::NoMigration(_) => net_status_t::NET_ERR_COMPUTE_NO_MIGRATION,
            ComputeError::Buffer(_) => net_status_t::NET_ERR_COMPUTE_BUFFER_FULL,
            ComputeError::IdentityTransport(_) => net_status_t::NET_ERR_COMPUTE_IDENTITY_TRANSPORT,
            ComputeError::NoTarget(_) => net_status_t::NET_ERR_COMPUTE_NO_TARGET,
            ComputeError::Timeout => net_status_t::NET_TIMEOUT,
            ComputeError::Cancelled => return super::cancel::cancelled(),
            _ => net_status_t::NET_ERR_SHUTTING_DOWN,
        };
        Self::new(status, err.to_string())
    }
}

impl From<WorkError> for FfiError {
    fn from(err: WorkError) -> Self {
        let status = match &err {
            WorkError::Expired(_) => net_status_t::NET_ERR_COMPUTE_WORK_EXPIRED,
            WorkError::WrongAnswer { .. } => net_status_t::NET_ERR_INVALID_ARGUMENT,
            WorkError::Closed => net_status_t::NET_ERR_SHUTTING_DOWN,
            WorkError::Cancelled => net_status_t::NET_ERR_CANCELLED,
            _ => net_status_t::NET_ERR_COMPUTE_DAEMON,
        };
        Self::new(status, err.to_string())
    }
}

fn config_error(message: impl Into<String>) -> FfiError {
    FfiError::new(net_status_t::NET_ERR_COMPUTE_CONFIG, message)
}

/// Default `work_timeout_ms`.
const DEFAULT_WORK_TIMEOUT: Duration = Duration::from_secs(30);

fn parse_config(json: Option<&str>) -> Result<(RuntimeConfig, Duration), FfiError> {
    let mut config = RuntimeConfig::default();
    let mut work_timeout = DEFAULT_WORK_TIMEOUT;
    let Some(text) = json.filter(|t| !t.trim().is_empty()) else {
        return Ok((config, work_timeout));
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| config_error(format!("config JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| config_error("config must be a JSON object"))?;
    for (key, value) in object {
        let millis = || {
            value
                .as_u64()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| config_error(format!("`{key}` must be a positive integer (ms)")))
        };
        match key.as_str() {
            "retry_interval_ms" => config.retry_interval = millis()?,
            "step_timeout_ms" => config.step_timeout = millis()?,
            "source_timeout_ms" => config.source_timeout = millis()?,
            "work_timeout_ms" => work_timeout = millis()?,
            "send_extension" => {
                config.send_extension = value
                    .as_bool()
                    .ok_or_else(|| config_error("`send_extension` must be a boolean"))?;
            }
            "output_capacity" => {
                config.output_capacity = value
                    .as_u64()
                    .filter(|n| *n > 0)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| config_error("`output_capacity` must be a positive integer"))?;
            }
            "transfer_rate" => {
                config.transfer_rate = value.as_u64().ok_or_else(|| {
                    config_error("`transfer_rate` must be a non-negative integer (bytes/s)")
                })?;
            }
            other => return Err(config_error(format!("unknown key `{other}`"))),
        }
    }
    Ok((config, work_timeout))
}

pub(super) fn timeout_of(timeout_ms: u32) -> Option<Duration> {
    (timeout_ms != NET_WAIT_FOREVER).then(|| Duration::from_millis(u64::from(timeout_ms)))
}

/// Creates the compute runtime of node `mesh` and installs it as the
/// node's migration (0x0500) handler. `config_json` (NULL/empty: defaults)
/// takes `retry_interval_ms` (200), `step_timeout_ms` (10 000),
/// `source_timeout_ms` (30 000), `work_timeout_ms` (30 000: how long a
/// daemon call waits for the SDK's answer), `send_extension` (true: to Net
/// targets only, never to a v0.11 one; false: never), `output_capacity` (65 536) and `transfer_rate`
/// (bytes per second at which snapshot chunks leave for another node;
/// 268 435 456; 0: unpaced).
///
/// Errors: `NET_ERR_COMPUTE_CONFIG` naming the key (unknown keys
/// included); `NET_ERR_COMPUTE_TRANSPORT` if the node already has a
/// migration handler (one runtime per node).
///
/// # Safety
/// `mesh` is NULL or from libnet; `config_json` is NULL or readable for its
/// length; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_new(
    mesh: *const net_mesh_t,
    config_json: *const u8,
    config_json_len: usize,
    out: *mut *mut net_compute_t,
) -> net_status_t {
    ffi_export!(handle mesh; opt_str config_json[config_json_len]; out out; {
        let (config, work_timeout) = parse_config(config_json)?;
        let runtime = ComputeRuntime::on_mesh(Arc::clone(&mesh.0), config)?;
        out.write(handle::into_raw(ComputeHandle {
            runtime: Arc::new(runtime),
            mesh: Arc::clone(&mesh.0),
            bridge: Arc::new(WorkBridge::new(work_timeout)),
            kinds: Mutex::new(HashMap::new()),
            leases: Mutex::default(),
        }));
        Ok(())
    })
}

/// Closes the runtime and frees it: `net_compute_next` calls return
/// `NET_END`, daemon calls waiting for an answer fail, waits return; the
/// migration handler is uninstalled and the daemons are dropped (no Drop
/// work items are handed out after this). NULL-safe, idempotent.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s.
///
/// # Safety
/// `compute` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_free(compute: *mut net_compute_t) -> net_status_t {
    super::export::run(|| handle::free(compute))
}

/// Registers daemon kind `kind` (UTF-8, non-empty), implemented by the
/// SDK: daemons of it can be spawned here and arrive here by migration.
/// `stateful` says whether its daemons carry state.
///
/// Errors: `NET_ERR_COMPUTE_ALREADY_REGISTERED` if the kind exists (it is
/// kept); `NET_ERR_INVALID_ARGUMENT` for an empty name.
///
/// # Safety
/// `compute` is NULL or from libnet; `kind` is readable for `kind_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_register_kind(
    compute: *const net_compute_t,
    kind: *const u8,
    kind_len: usize,
    stateful: bool,
) -> net_status_t {
    ffi_export!(handle compute; str kind[kind_len]; {
        if kind.is_empty() {
            return Err(FfiError::invalid_argument("`kind` is empty"));
        }
        let mut kinds = compute.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        if kinds.contains_key(kind) {
            return Err(FfiError::new(
                net_status_t::NET_ERR_COMPUTE_ALREADY_REGISTERED,
                format!("daemon kind {kind:?} is already registered"),
            ));
        }
        kinds.insert(kind.to_owned(), stateful);
        Ok(())
    })
}

/// Runs a daemon of kind `kind` here: the SDK's object `instance` (an id
/// the SDK chose and keys its objects by; it must hold the object before
/// this call) under the identity of `seed` (32 bytes). Writes the daemon's
/// origin hash, which names it in every other call.
///
/// Errors: `NET_ERR_COMPUTE_UNKNOWN_KIND`;
/// `NET_ERR_COMPUTE_ALREADY_REGISTERED` if a daemon with that identity runs
/// here (no Drop work item is issued for `instance` then).
///
/// # Safety
/// `compute` is NULL or from libnet; `kind` and `seed` are readable for
/// their lengths; `origin_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_spawn(
    compute: *const net_compute_t,
    kind: *const u8,
    kind_len: usize,
    seed: *const u8,
    seed_len: usize,
    instance: u64,
    origin_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle compute; str kind[kind_len]; array seed[seed_len] 32; out origin_out; {
        let (stateful, keypair, origin) = compute.identity(kind, seed)?;
        if compute.runtime.registry().contains(origin) {
            return Err(DaemonError::AlreadyRegistered(origin).into());
        }
        let daemon = ForeignDaemon::new(Arc::clone(&compute.bridge), kind, instance, origin, stateful);
        let host = DaemonHost::new(Box::new(daemon), keypair);
        compute.runtime.spawn(host)?;
        origin_out.write(origin);
        Ok(())
    })
}

/// Lets a daemon of kind `kind` with the identity of `seed` (32 bytes)
/// arrive here by migration: when its snapshot comes, a Create work item
/// asks the SDK for an object of the kind, and the state is restored into
/// it. Writes the daemon's origin hash. The target then holds the keys
/// itself (a migration started without `transport_identity` needs this);
/// `net_compute_expect_origin` expects a daemon whose identity travels
/// with it.
///
/// Errors: `NET_ERR_COMPUTE_UNKNOWN_KIND`;
/// `NET_ERR_COMPUTE_ALREADY_REGISTERED` if the origin is already expected
/// here (the entry is kept). The entry is used up when the daemon arrives:
/// expect it again before moving it here once more.
///
/// # Safety
/// As `net_compute_spawn`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_expect(
    compute: *const net_compute_t,
    kind: *const u8,
    kind_len: usize,
    seed: *const u8,
    seed_len: usize,
    origin_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle compute; str kind[kind_len]; array seed[seed_len] 32; out origin_out; {
        let (stateful, keypair, origin) = compute.identity(kind, seed)?;
        let factory = ForeignDaemon::factory(Arc::clone(&compute.bridge), kind.to_owned(), origin, stateful);
        compute.runtime.factories().register(keypair, factory)?;
        origin_out.write(origin);
        Ok(())
    })
}

/// Lets daemon `origin` of kind `kind` arrive here by migration without
/// its seed: its identity travels with it, sealed to this node (the source
/// seals it unless the migration was started without
/// `transport_identity`). Otherwise as `net_compute_expect`; a snapshot
/// that comes without an identity is refused (the migration fails with
/// `identity-transport-failed`).
///
/// Errors: `NET_ERR_COMPUTE_UNKNOWN_KIND`;
/// `NET_ERR_COMPUTE_ALREADY_REGISTERED` if the origin is already expected
/// here (the entry is kept).
///
/// # Safety
/// `compute` is NULL or from libnet; `kind` is readable for its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_expect_origin(
    compute: *const net_compute_t,
    kind: *const u8,
    kind_len: usize,
    origin: u64,
) -> net_status_t {
    ffi_export!(handle compute; str kind[kind_len]; {
        let stateful = compute.stateful(kind)?;
        let factory = ForeignDaemon::factory(Arc::clone(&compute.bridge), kind.to_owned(), origin, stateful);
        compute.runtime.factories().register_placeholder(origin, factory)?;
        Ok(())
    })
}

/// Stops daemon `origin` here: unregisters it (its object gets a Drop
/// work item), forgets its migration factory and lets go of its channel
/// subscriptions (the node unsubscribes, in the background, from channels
/// no other daemon here holds).
///
/// Errors: `NET_ERR_COMPUTE_NOT_FOUND`.
///
/// # Safety
/// `compute` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_stop(
    compute: *const net_compute_t,
    origin: u64,
) -> net_status_t {
    ffi_export!(handle compute; {
        compute.runtime.factories().remove(origin);
        compute.runtime.stop(origin)?;
        Ok(())
    })
}

/// Delivers the event (`producer`, `sequence`, `payload`) to daemon
/// `origin`, wherever the migration state says it belongs, and writes what
/// happened: `NET_COMPUTE_PROCESSED` (its outputs are queued for
/// `net_compute_next_output`), `NET_COMPUTE_BUFFERED`,
/// `NET_COMPUTE_FORWARDED` or `NET_COMPUTE_DUPLICATE`. A producer's
/// sequences start at 1 and are contiguous per daemon.
///
/// Blocks while the daemon processes the event (a Process work item, which
/// another thread of the SDK must answer): never call it from the thread
/// that pulls work.
///
/// Errors: `NET_ERR_COMPUTE_NOT_FOUND`; `NET_ERR_COMPUTE_DAEMON` (the
/// daemon failed or did not answer in time; the message says which);
/// `NET_ERR_COMPUTE_BUFFER_FULL`; `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `compute` is NULL or from libnet; `payload` is readable for its length;
/// `outcome_out` is valid for one write; `error_out` is NULL or valid for
/// one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_deliver(
    compute: *const net_compute_t,
    origin: u64,
    producer: u64,
    sequence: u64,
    payload: *const u8,
    payload_len: usize,
    outcome_out: *mut u32,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle compute; bytes payload[payload_len]; out outcome_out; {
        let event = crate::compute::CausalEvent::bare(producer, sequence, payload.to_vec());
        // Outputs reach the caller through `net_compute_next_output`.
        let outcome = compute
            .runtime
            .deliver_queued(origin, event)
            .map_err(|e| compute.daemon_error(e))?;
        outcome_out.write(outcome_code(outcome));
        Ok(())
    })
}

/// Delivers `count` events of `producer`, with sequences `first_sequence`,
/// `first_sequence + 1`, …, to daemon `origin`, in order, with the effects
/// of one `net_compute_deliver` per event (each is processed, buffered,
/// forwarded or dropped as a duplicate, and chained, counted and waited
/// for per event), stopping at the first event that fails. The events are
/// packed: their bytes back to back in `data` and each one's length in
/// `lengths`. Events processed here reach an SDK daemon as **one**
/// `NET_COMPUTE_WORK_PROCESS_BATCH` work item answered once.
///
/// Writes to `delivered_out` how many events were delivered — **also when
/// the call fails** — and, when `outcomes_out` is not NULL, each delivered
/// event's outcome (`NET_COMPUTE_PROCESSED`, …) to `outcomes_out[0..]`
/// (room for `count` values). Returns `NET_OK` when all were delivered;
/// otherwise the status of event `*delivered_out` (as
/// `net_compute_deliver` would have returned it; its message in
/// `error_out`), and the events after it were not delivered: deliver them
/// again once the cause is fixed.
///
/// `timeout_ms` (`NET_WAIT_FOREVER`: no limit) and `cancel` bound the wait
/// for the daemon to **take the batch up**: `NET_TIMEOUT` or
/// `NET_ERR_CANCELLED` with nothing delivered. Once the SDK holds the work
/// item the call waits for its answer (up to `work_timeout_ms`), so an SDK
/// never applies a batch its caller gave up on. Blocks like
/// `net_compute_deliver`: never call it from the thread that pulls work.
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` (lengths not adding up to
/// `data_len`, sequences past 2^64−1; nothing delivered);
/// `NET_ERR_COMPUTE_NOT_FOUND`; `NET_ERR_COMPUTE_DAEMON`;
/// `NET_ERR_COMPUTE_BUFFER_FULL`; `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `compute` is NULL or from libnet; `data` is readable for `data_len`
/// bytes and `lengths` for `count` values (either NULL when its length is
/// 0); `outcomes_out` is NULL or writable for `count` values;
/// `delivered_out` is valid for one write; `cancel` is NULL or from
/// libnet; `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_deliver_batch(
    compute: *const net_compute_t,
    origin: u64,
    producer: u64,
    first_sequence: u64,
    data: *const u8,
    data_len: usize,
    lengths: *const u32,
    count: usize,
    timeout_ms: u32,
    outcomes_out: *mut u32,
    delivered_out: *mut usize,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle compute; out delivered_out; bytes data[data_len]; {
        // Before anything can fail: a call cancelled before it began
        // reports nothing delivered too.
        delivered_out.preset(0);
        let cancel = super::cancel::CallCancel::enter(cancel)?;
        cancel.check()?;
        // SAFETY: the caller made `lengths` readable for `count` values.
        let lengths = unsafe { super::export::input_values(lengths, count, "lengths") }?;
        // SAFETY: the caller made `outcomes_out` NULL or writable for `count` values.
        let outcomes = unsafe { super::export::output_values(outcomes_out, count, "outcomes_out") }?;
        let payloads = super::bus::split_packed(data, lengths)?;
        let events = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let sequence = u64::try_from(i)
                    .ok()
                    .and_then(|i| first_sequence.checked_add(i))
                    .ok_or_else(|| FfiError::invalid_argument("sequences pass 2^64-1"))?;
                Ok(crate::compute::CausalEvent::bare(producer, sequence, payload.to_vec()))
            })
            .collect::<Result<Vec<_>, FfiError>>()?;
        let wait = BatchWait {
            deadline: timeout_of(timeout_ms).and_then(|t| std::time::Instant::now().checked_add(t)),
            cancel: cancel.token().cloned(),
        };
        let done = compute
            .runtime
            .deliver_batch_queued(origin, events, &wait)
            .map_err(|e| compute.daemon_error(e))?;
        delivered_out.write(done.outcomes.len());
        if let Some(outcomes) = outcomes {
            for (slot, outcome) in outcomes.iter_mut().zip(done.outcomes) {
                *slot = event_outcome_code(outcome);
            }
        }
        match done.error {
            None => Ok(net_status_t::NET_OK),
            Some(ComputeError::Daemon(DaemonError::TimedOut)) => Ok(net_status_t::NET_TIMEOUT),
            Some(ComputeError::Daemon(DaemonError::Cancelled)) => Err(super::cancel::cancelled()),
            Some(e) => Err(compute.daemon_error(e)),
        }
    })
}

/// Lends the batch of `count` events from `producer` at sequences
/// `first_sequence`, `first_sequence + 1`, … for daemon `origin` to the
/// caller, without waiting: when the daemon is an object of this runtime's
/// SDK (spawned or created through it), would process the batch here and
/// is free now, writes a lease id (never 0) and the object's instance
/// id. The caller then applies the events to that object itself — on its
/// own thread, in order, stopping at the first failure — and answers with
/// `net_compute_finish_batch`; meanwhile every other call on the daemon
/// waits (a batch applied without two thread hand-offs). Writes lease 0
/// when the batch must be delivered the usual way
/// (`net_compute_deliver_batch`): the daemon is busy, not here, migrating
/// or arriving, in doubt, not this SDK's, or `count` is 0 or runs the
/// sequences past 2^64−1. An SDK that lends must answer every lease, also
/// when applying failed.
///
/// Errors: `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `compute` is NULL or from libnet; `lease_out` and `instance_out` are
/// valid for one write; `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_lend_batch(
    compute: *const net_compute_t,
    origin: u64,
    producer: u64,
    first_sequence: u64,
    count: usize,
    lease_out: *mut u64,
    instance_out: *mut u64,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle compute; out lease_out; out instance_out; {
        lease_out.preset(0);
        let lent = compute
            .runtime
            .lend_batch(origin, producer, first_sequence, count, &compute.bridge)?;
        let Some(lent) = lent else {
            return Ok(net_status_t::NET_OK);
        };
        instance_out.write(lent.instance());
        let mut leases = compute.leases();
        leases.last += 1;
        let id = leases.last;
        leases.lent.insert(id, lent);
        lease_out.write(id);
        Ok(net_status_t::NET_OK)
    })
}

/// Answers lease `lease` (`net_compute_lend_batch`) as
/// `net_compute_complete_batch` answers a ProcessBatch work item — the
/// first `applied` events were applied, their outputs packed in `outputs`,
/// `output_lengths` and `outputs_per_event`; when `applied` is less than
/// the batch's length, event `applied` failed with `failure` (non-NULL),
/// else `failure` is NULL — records them (causal chain, horizon, stats;
/// the outputs go to `net_compute_next_output`) and gives the daemon back.
/// Writes how many events were delivered (processed) to `delivered_out`.
///
/// Returns `NET_OK` when all were; `NET_ERR_COMPUTE_DAEMON` with the
/// failure's text when event `applied` failed. Errors:
/// `NET_ERR_INVALID_ARGUMENT` if the answer does not fit the batch (the
/// lease stays open: answer it again); `NET_ERR_COMPUTE_WORK_EXPIRED` if
/// the lease is unknown (answered already, or the runtime shut down).
///
/// # Safety
/// As `net_compute_complete_batch`; `delivered_out` is valid for one
/// write; `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_finish_batch(
    compute: *const net_compute_t,
    lease: u64,
    applied: usize,
    outputs: *const u8,
    outputs_len: usize,
    output_lengths: *const u32,
    output_count: usize,
    outputs_per_event: *const u32,
    failure: *const u8,
    failure_len: usize,
    delivered_out: *mut usize,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle compute; out delivered_out;
        bytes outputs[outputs_len]; opt_str failure[failure_len]; {
        delivered_out.preset(0);
        // SAFETY: as this function's.
        let answer = unsafe {
            batch_answer(outputs, output_lengths, output_count, outputs_per_event, applied, failure)
        }?;
        let lent = {
            let mut leases = compute.leases();
            let Some(lent) = leases.lent.get(&lease) else {
                return Err(FfiError::new(
                    net_status_t::NET_ERR_COMPUTE_WORK_EXPIRED,
                    format!("lease {lease} is unknown (answered already, or the runtime shut down)"),
                ));
            };
            if !lent.fits(&answer) {
                return Err(FfiError::invalid_argument(format!(
                    "the answer does not fit lease {lease}'s {} events (applied {applied}, failure {})",
                    lent.len(),
                    if failure.is_some() { "given" } else { "missing" },
                )));
            }
            leases.lent.remove(&lease).expect("looked up under the same lock")
        };
        let done = lent.finish_queued(answer);
        delivered_out.write(done.outcomes.len());
        match done.error {
            None => Ok(net_status_t::NET_OK),
            Some(e) => Err(compute.daemon_error(e)),
        }
    })
}

/// The `NET_COMPUTE_*` code of a delivery outcome.
pub(super) fn outcome_code(outcome: DeliveryOutcome) -> u32 {
    event_outcome_code(EventOutcome::from(&outcome))
}

/// The `NET_COMPUTE_*` code of a batch event's outcome.
fn event_outcome_code(outcome: EventOutcome) -> u32 {
    match outcome {
        EventOutcome::Buffered => NET_COMPUTE_BUFFERED,
        EventOutcome::Forwarded => NET_COMPUTE_FORWARDED,
        EventOutcome::Duplicate => NET_COMPUTE_DUPLICATE,
        _ => NET_COMPUTE_PROCESSED,
    }
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit) for the next
/// output of any daemon here (outputs of events replayed or forwarded
/// during a migration come out on the node that applied them). Writes the
/// daemon's origin hash, the output's sequence in the daemon's causal chain
/// and its bytes. Returns `NET_OK`, `NET_TIMEOUT`, `NET_END` once the
/// runtime is freed, or `NET_ERR_CANCELLED` (nothing taken).
///
/// # Safety
/// `compute` is NULL or from libnet; the outputs are valid for one write;
/// `cancel` is NULL or from libnet; `error_out` is NULL or valid for one
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_next_output(
    compute: *const net_compute_t,
    timeout_ms: u32,
    origin_out: *mut u64,
    sequence_out: *mut u64,
    payload_out: *mut net_bytes_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle compute; cancel cancel; out origin_out; out sequence_out; out payload_out; {
        let Some(output) = compute
            .runtime
            .next_output_cancellable(timeout_of(timeout_ms), cancel.token())
        else {
            if compute.bridge.is_closed() {
                return Ok(net_status_t::NET_END);
            }
            if cancel.token().is_some_and(CancelToken::is_cancelled) {
                return Err(super::cancel::cancelled());
            }
            return Ok(net_status_t::NET_TIMEOUT);
        };
        origin_out.write(output.link.origin_hash);
        sequence_out.write(output.link.sequence);
        payload_out.write(net_bytes_t::from_vec(output.payload));
        Ok(net_status_t::NET_OK)
    })
}

/// Daemon `origin`'s statistics as a JSON object: `origin`, `name` (its
/// kind), `events_processed`, `events_emitted`, `errors`, `head_sequence`
/// (its causal chain's last output), `channels` (its channel
/// subscriptions, `net_compute_subscribe_channel`: `publisher`,
/// `channel`). u64 values are exact JSON integers.
///
/// Errors: `NET_ERR_COMPUTE_NOT_FOUND` (not running here, e.g. it migrated
/// away), `NET_ERR_COMPUTE_STALE`.
///
/// # Safety
/// `compute` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_stats(
    compute: *const net_compute_t,
    origin: u64,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle compute; out json_out; {
        let value = compute.runtime.registry().with_host(origin, |host| stats_json(host))?;
        json_out.write(net_bytes_t::from_vec(value.to_string().into_bytes()));
        Ok(())
    })
}

fn stats_json(host: &DaemonHost) -> serde_json::Value {
    let stats = host.stats();
    json!({
        "origin": host.origin_hash(),
        "name": host.name(),
        "events_processed": stats.events_processed,
        "events_emitted": stats.events_emitted,
        "errors": stats.errors,
        "head_sequence": host.head().sequence,
        "channels": host
            .ledger()
            .iter()
            .map(|(publisher, channel, _)| json!({ "publisher": publisher, "channel": channel.as_str() }))
            .collect::<Vec<_>>(),
    })
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit) until daemon
/// `origin` runs here having processed at least `events_processed` events,
/// and writes its statistics as `net_compute_stats` does. A daemon not
/// here yet (arriving by migration, or spawned by another thread) is
/// waited for; the count is checked after every delivery here, so no
/// caller needs to poll. Returns `NET_OK` or `NET_TIMEOUT` (nothing
/// written), or an error (`NET_ERR_SHUTTING_DOWN` when the runtime is
/// freed during the wait; `NET_ERR_CANCELLED`). Each look at the count
/// waits for a daemon call in progress on that daemon: never call it from
/// the thread that pulls work.
///
/// # Safety
/// `compute` is NULL or from libnet; `json_out` is valid for one write;
/// `cancel` is NULL or from libnet; `error_out` is NULL or valid for one
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_wait_processed(
    compute: *const net_compute_t,
    origin: u64,
    events_processed: u64,
    timeout_ms: u32,
    json_out: *mut net_bytes_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle compute; cancel cancel; out json_out; {
        let reached = compute.runtime.wait_daemon(origin, timeout_of(timeout_ms), cancel.token(), |host| {
            (host.stats().events_processed >= events_processed).then(|| stats_json(host))
        });
        let value = match reached {
            Ok(value) => value,
            Err(ComputeError::Timeout) => return Ok(net_status_t::NET_TIMEOUT),
            Err(e) => return Err(e.into()),
        };
        json_out.write(net_bytes_t::from_vec(value.to_string().into_bytes()));
        Ok(net_status_t::NET_OK)
    })
}

/// The daemons running here as a JSON array of `{"origin", "name"}`,
/// in origin order.
///
/// # Safety
/// `compute` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_daemons(
    compute: *const net_compute_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle compute; out json_out; {
        let mut daemons = compute.runtime.registry().list();
        daemons.sort();
        let value: Vec<_> = daemons
            .into_iter()
            .map(|(origin, name)| json!({"origin": origin, "name": name}))
            .collect();
        json_out.write(net_bytes_t::from_vec(serde_json::Value::from(value).to_string().into_bytes()));
        Ok(())
    })
}

/// Starts moving daemon `origin` from node `source` to node `target`,
/// orchestrated by this node (which may be either, or a third node
/// connected to both). Watch it with `net_compute_migration_status` or
/// `net_compute_wait_migration`. Events keep being accepted everywhere
/// during the move; each is applied exactly once.
///
/// Errors: `NET_ERR_COMPUTE_ALREADY_MIGRATING`; `NET_ERR_INVALID_ARGUMENT`
/// when source and target are the same node; `NET_ERR_COMPUTE_TRANSPORT`
/// when the source cannot be reached (nothing started).
///
/// # Safety
/// `compute` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_start_migration(
    compute: *const net_compute_t,
    origin: u64,
    source: u64,
    target: u64,
) -> net_status_t {
    ffi_export!(handle compute; {
        compute.runtime.start_migration(origin, source, target)?;
        Ok(())
    })
}

/// `net_compute_start_migration` with options: `options_json` (NULL or
/// empty: the defaults) is an object taking `transport_identity` (true:
/// when this node is the source, the daemon's identity is sealed to the
/// target's static key and travels with the snapshot, so the target needs
/// only `net_compute_expect_origin`; the start fails when the target's
/// key is not known here. false: no identity travels; the target must
/// know the seed through `net_compute_expect`).
///
/// Errors: as `net_compute_start_migration`;
/// `NET_ERR_COMPUTE_IDENTITY_TRANSPORT` (nothing started);
/// `NET_ERR_COMPUTE_CONFIG` naming a bad or unknown key.
///
/// # Safety
/// `compute` is NULL or from libnet; `options_json` is NULL or readable
/// for its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_start_migration_opts(
    compute: *const net_compute_t,
    origin: u64,
    source: u64,
    target: u64,
    options_json: *const u8,
    options_json_len: usize,
) -> net_status_t {
    ffi_export!(handle compute; opt_str options_json[options_json_len]; {
        let options = parse_migration_options(options_json)?;
        compute.runtime.start_migration_with(origin, source, target, &options)?;
        Ok(())
    })
}

/// Chooses where daemon `origin`, running on this node, may migrate: of
/// the nodes this node's capability index holds that announce
/// `subprotocol:0x0500` (every node with a `net_compute_t` stamps it on its
/// announcements, with its number of daemons as `compute:load=N`) and match
/// the daemon's requirements, the least loaded (ties: the lower node id).
/// Writes it to `target_out`; start the move with
/// `net_compute_start_migration(compute, origin, <this node>, target)`.
///
/// Errors: `NET_ERR_COMPUTE_NOT_FOUND` if the daemon does not run here;
/// `NET_ERR_COMPUTE_NO_TARGET` when no node qualifies (nodes announce
/// with `net_mesh_announce`; a node that never announced is not known).
///
/// # Safety
/// `compute` is NULL or from libnet; `target_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_place_migration(
    compute: *const net_compute_t,
    origin: u64,
    target_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle compute; out target_out; {
        target_out.write(compute.runtime.place_migration(origin)?);
        Ok(())
    })
}

fn parse_migration_options(json: Option<&str>) -> Result<MigrationOptions, FfiError> {
    let mut options = MigrationOptions::default();
    let Some(text) = json.filter(|t| !t.trim().is_empty()) else {
        return Ok(options);
    };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| config_error(format!("migration options JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| config_error("migration options must be a JSON object"))?;
    for (key, value) in object {
        match key.as_str() {
            "transport_identity" => {
                let on = value
                    .as_bool()
                    .ok_or_else(|| config_error("`transport_identity` must be a boolean"))?;
                options = options.with_transport_identity(on);
            }
            other => return Err(config_error(format!("unknown key `{other}`"))),
        }
    }
    Ok(options)
}

fn failure_text(reason: &FailureReason) -> String {
    match reason {
        FailureReason::NotReady => "not-ready".into(),
        FailureReason::FactoryNotFound => "factory-not-found".into(),
        FailureReason::ComputeNotSupported => "compute-not-supported".into(),
        FailureReason::StateFailed(detail) => format!("state-failed: {detail}"),
        FailureReason::AlreadyMigrating => "already-migrating".into(),
        FailureReason::IdentityTransportFailed(detail) => {
            format!("identity-transport-failed: {detail}")
        }
        FailureReason::NotReadyTimeout { attempts } => format!("not-ready-timeout: {attempts}"),
    }
}

fn status_json(status: &MigrationStatus) -> Vec<u8> {
    let value = match status {
        MigrationStatus::Running(phase) => json!({"state": "running", "phase": phase.as_str()}),
        MigrationStatus::Completed => json!({"state": "completed", "phase": "complete"}),
        MigrationStatus::Failed(reason) => json!({
            "state": "failed",
            "code": reason.code(),
            "reason": failure_text(reason),
        }),
    };
    value.to_string().into_bytes()
}

/// The migration of `origin` this node orchestrates (the last one, once
/// finished) as a JSON object: `{"state": "running", "phase": "snapshot" |
/// "transfer" | "restore" | "replay" | "cutover" | "complete"}`,
/// `{"state": "completed", "phase": "complete"}`, or `{"state": "failed",
/// "code": <v0.11 failure code>, "reason": "<kind>[: detail]"}`.
///
/// Errors: `NET_ERR_COMPUTE_NO_MIGRATION`.
///
/// # Safety
/// `compute` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_migration_status(
    compute: *const net_compute_t,
    origin: u64,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle compute; out json_out; {
        let status = compute
            .runtime
            .migration_status(origin)
            .ok_or_else(|| FfiError::from(ComputeError::NoMigration(origin)))?;
        json_out.write(net_bytes_t::from_vec(status_json(&status)));
        Ok(())
    })
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit) until the
/// migration of `origin` orchestrated here has completed or failed, and
/// writes its status as `net_compute_migration_status` does. Returns
/// `NET_OK`, `NET_TIMEOUT` (the migration goes on), or an error
/// (`NET_ERR_COMPUTE_NO_MIGRATION`; `NET_ERR_SHUTTING_DOWN` when the
/// runtime is freed during the wait; `NET_ERR_CANCELLED`).
///
/// # Safety
/// `compute` is NULL or from libnet; `json_out` is valid for one write;
/// `cancel` is NULL or from libnet; `error_out` is NULL or valid for one
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_wait_migration(
    compute: *const net_compute_t,
    origin: u64,
    timeout_ms: u32,
    json_out: *mut net_bytes_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle compute; cancel cancel; out json_out; {
        let status = match compute.runtime.wait_migration_cancellable(
            origin,
            timeout_of(timeout_ms),
            cancel.token(),
        ) {
            Ok(status) => status,
            Err(ComputeError::Timeout) => return Ok(net_status_t::NET_TIMEOUT),
            Err(e) => return Err(e.into()),
        };
        json_out.write(net_bytes_t::from_vec(status_json(&status)));
        Ok(net_status_t::NET_OK)
    })
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit; 0: don't wait)
/// for the next work item and writes it: its id (what the answer names),
/// its kind (a work item kind, e.g. `NET_COMPUTE_WORK_PROCESS`), the SDK object it is for (`instance`;
/// 0 for a Create), the daemon's origin hash, the event's producer and
/// sequence (Process; else 0), and the payload (Process: the event bytes;
/// Restore: the state; Create: the kind's name; else empty). Returns
/// `NET_OK`, `NET_TIMEOUT`, `NET_END` once the runtime is freed, or
/// `NET_ERR_CANCELLED`.
///
/// Answer every item but a Drop with exactly one `net_compute_complete_*`
/// or `net_compute_fail`, within `work_timeout_ms`. Pull on a thread that
/// never waits on this runtime's daemons (`net_compute_deliver`): the
/// daemon call waits for this thread.
///
/// # Safety
/// `compute` is NULL or from libnet; the outputs are valid for one write;
/// `cancel` is NULL or from libnet; `error_out` is NULL or valid for one
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_next(
    compute: *const net_compute_t,
    timeout_ms: u32,
    work_id_out: *mut u64,
    kind_out: *mut u32,
    instance_out: *mut u64,
    daemon_out: *mut u64,
    producer_out: *mut u64,
    sequence_out: *mut u64,
    payload_out: *mut net_bytes_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle compute; cancel cancel;
        out work_id_out; out kind_out; out instance_out; out daemon_out; out producer_out;
        out sequence_out; out payload_out; {
        let (id, request) = match compute.bridge.next(timeout_of(timeout_ms), cancel.token()) {
            Ok(work) => work,
            Err(WorkError::Timeout) => return Ok(net_status_t::NET_TIMEOUT),
            Err(WorkError::Closed) => return Ok(net_status_t::NET_END),
            Err(e) => return Err(e.into()),
        };
        let kind = request.code();
        let (instance, daemon, producer, sequence, payload) = match request {
            WorkRequest::Process { instance, daemon, producer, sequence, payload } => {
                (instance, daemon, producer, sequence, payload)
            }
            WorkRequest::Snapshot { instance, daemon } | WorkRequest::Drop { instance, daemon } => {
                (instance, daemon, 0, 0, Vec::new())
            }
            WorkRequest::Restore { instance, daemon, state } => (instance, daemon, 0, 0, state),
            WorkRequest::Create { kind, daemon } => (0, daemon, 0, 0, kind.into_bytes()),
            WorkRequest::ProcessBatch { instance, daemon, events } => {
                let (producer, sequence) = events.first().unwrap_or((0, 0));
                (instance, daemon, producer, sequence, events.into_bytes())
            }
        };
        work_id_out.write(id);
        kind_out.write(kind);
        instance_out.write(instance);
        daemon_out.write(daemon);
        producer_out.write(producer);
        sequence_out.write(sequence);
        payload_out.write(net_bytes_t::from_vec(payload));
        Ok(net_status_t::NET_OK)
    })
}

/// Answers Process work item `work_id` with the event's `count` outputs
/// (zero or more; each is chained by the daemon's causal chain).
///
/// Errors: `NET_ERR_COMPUTE_WORK_EXPIRED` (answered already, or its caller
/// stopped waiting: the event counts as failed, so undo its effect);
/// `NET_ERR_INVALID_ARGUMENT` if the item is not a Process.
///
/// # Safety
/// `compute` is NULL or from libnet; `outputs` points to `count` slices,
/// each readable for its length (NULL when `count` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_complete_process(
    compute: *const net_compute_t,
    work_id: u64,
    outputs: *const net_slice_t,
    count: usize,
) -> net_status_t {
    ffi_export!(handle compute; slices outputs[count]; {
        let outputs = outputs.iter().map(|o| o.to_vec()).collect();
        compute.bridge.complete(work_id, Ok(WorkReply::Outputs(outputs)))?;
        Ok(())
    })
}

/// Answers ProcessBatch work item `work_id` once for the whole batch:
/// the first `applied` events were applied, and their outputs are packed —
/// every output's bytes back to back in `outputs` (`outputs_len` bytes),
/// each output's length in `output_lengths` (`output_count` values), and
/// how many outputs each applied event produced in `outputs_per_event`
/// (`applied` values, adding up to `output_count`). When `applied` is less
/// than the batch's length, event `applied` failed with `failure` (UTF-8,
/// non-NULL; may be empty) and the rest were not attempted; when every
/// event was applied, `failure` must be NULL. A failure of the first event
/// may also be answered with `net_compute_fail`.
///
/// Errors: `NET_ERR_COMPUTE_WORK_EXPIRED` (answered already, or its caller
/// stopped waiting: the batch counts as failed, so undo its effect);
/// `NET_ERR_INVALID_ARGUMENT` if the item is not a ProcessBatch, the counts
/// do not add up, `applied` exceeds the batch, or `failure` is missing or
/// superfluous (the item stays open).
///
/// # Safety
/// `compute` is NULL or from libnet; `outputs` is readable for
/// `outputs_len` bytes, `output_lengths` for `output_count` values and
/// `outputs_per_event` for `applied` values (each NULL when its length is
/// 0); `failure` is NULL or readable for `failure_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_complete_batch(
    compute: *const net_compute_t,
    work_id: u64,
    applied: usize,
    outputs: *const u8,
    outputs_len: usize,
    output_lengths: *const u32,
    output_count: usize,
    outputs_per_event: *const u32,
    failure: *const u8,
    failure_len: usize,
) -> net_status_t {
    ffi_export!(handle compute; bytes outputs[outputs_len]; opt_str failure[failure_len]; {
        // SAFETY: as this function's.
        let answer = unsafe {
            batch_answer(outputs, output_lengths, output_count, outputs_per_event, applied, failure)
        }?;
        compute.bridge.complete(work_id, Ok(answer))?;
        Ok(())
    })
}

/// A batch's answer from its C form (see `net_compute_complete_batch`).
///
/// # Safety
/// `output_lengths` is readable for `output_count` values and
/// `outputs_per_event` for `applied` values (each NULL when its length is 0).
unsafe fn batch_answer(
    outputs: &[u8],
    output_lengths: *const u32,
    output_count: usize,
    outputs_per_event: *const u32,
    applied: usize,
    failure: Option<&str>,
) -> Result<WorkReply, FfiError> {
    // SAFETY: the caller made `output_lengths` readable for `output_count` values.
    let lengths =
        unsafe { super::export::input_values(output_lengths, output_count, "output_lengths") }?;
    // SAFETY: the caller made `outputs_per_event` readable for `applied` values.
    let per_event =
        unsafe { super::export::input_values(outputs_per_event, applied, "outputs_per_event") }?;
    let mut total = 0usize;
    let mut counts = Vec::with_capacity(per_event.len());
    for (i, &n) in per_event.iter().enumerate() {
        total = total.saturating_add(n as usize);
        if total > output_count {
            return Err(FfiError::invalid_argument(format!(
                "outputs_per_event[{i}]: the counts add up to more than output_count ({output_count})"
            )));
        }
        counts.push(n as usize);
    }
    if total < output_count {
        return Err(FfiError::invalid_argument(format!(
            "outputs_per_event: the counts add up to less than output_count ({output_count})"
        )));
    }
    let outputs = super::bus::split_packed(outputs, lengths)?
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    let failure = failure.map(|text| {
        if text.is_empty() {
            "the daemon failed".to_owned()
        } else {
            text.to_owned()
        }
    });
    Ok(WorkReply::BatchOutputs {
        outputs,
        counts,
        failure,
    })
}

/// Answers Snapshot work item `work_id` with the instance's state.
///
/// Errors: as `net_compute_complete_process`.
///
/// # Safety
/// `compute` is NULL or from libnet; `state` is readable for `state_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_complete_snapshot(
    compute: *const net_compute_t,
    work_id: u64,
    state: *const u8,
    state_len: usize,
) -> net_status_t {
    ffi_export!(handle compute; bytes state[state_len]; {
        compute.bridge.complete(work_id, Ok(WorkReply::State(state.to_vec())))?;
        Ok(())
    })
}

/// Answers Restore work item `work_id`: the state was restored.
///
/// Errors: as `net_compute_complete_process`.
///
/// # Safety
/// `compute` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_complete_restore(
    compute: *const net_compute_t,
    work_id: u64,
) -> net_status_t {
    ffi_export!(handle compute; {
        compute.bridge.complete(work_id, Ok(WorkReply::Restored))?;
        Ok(())
    })
}

/// Answers Create work item `work_id` with the id of the object the SDK
/// built. On `NET_ERR_COMPUTE_WORK_EXPIRED` nobody will use the object:
/// release it.
///
/// Errors: as `net_compute_complete_process`.
///
/// # Safety
/// `compute` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_complete_create(
    compute: *const net_compute_t,
    work_id: u64,
    instance: u64,
) -> net_status_t {
    ffi_export!(handle compute; {
        compute.bridge.complete(work_id, Ok(WorkReply::Created(instance)))?;
        Ok(())
    })
}

/// Fails work item `work_id` (any kind but Drop) with `message` (UTF-8):
/// the daemon call that made it returns an error with that text (a process
/// failure leaves the event unapplied; a snapshot, restore or create
/// failure aborts the migration step).
///
/// Errors: `NET_ERR_COMPUTE_WORK_EXPIRED`.
///
/// # Safety
/// `compute` is NULL or from libnet; `message` is readable for its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_fail(
    compute: *const net_compute_t,
    work_id: u64,
    message: *const u8,
    message_len: usize,
) -> net_status_t {
    ffi_export!(handle compute; str message[message_len]; {
        compute.bridge.complete(work_id, Err(message.to_owned()))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_are_parsed_and_bad_ones_named() {
        let (config, work) = parse_config(Some(
            r#"{"retry_interval_ms": 50, "step_timeout_ms": 1000, "source_timeout_ms": 2000,
                "work_timeout_ms": 300, "send_extension": false, "output_capacity": 8,
                "transfer_rate": 0}"#,
        ))
        .unwrap();
        assert_eq!(config.transfer_rate, 0);
        assert_eq!(
            parse_config(Some(r#"{"transfer_rate": 1048576}"#))
                .unwrap()
                .0
                .transfer_rate,
            1 << 20
        );
        assert_eq!(config.retry_interval, Duration::from_millis(50));
        assert_eq!(config.step_timeout, Duration::from_secs(1));
        assert_eq!(config.source_timeout, Duration::from_secs(2));
        assert_eq!(work, Duration::from_millis(300));
        assert!(!config.send_extension);
        assert_eq!(config.output_capacity, 8);
        assert_eq!(parse_config(None).unwrap().1, DEFAULT_WORK_TIMEOUT);
        for (bad, key) in [
            (r#"{"nope": 1}"#, "nope"),
            (r#"{"retry_interval_ms": 0}"#, "retry_interval_ms"),
            (r#"{"send_extension": 1}"#, "send_extension"),
            (r#"{"output_capacity": -1}"#, "output_capacity"),
            (r#"{"transfer_rate": -1}"#, "transfer_rate"),
            (r#"{"transfer_rate": "fast"}"#, "transfer_rate"),
            ("[]", "object"),
            ("{", "JSON"),
        ] {
            let err = parse_config(Some(bad)).unwrap_err();
            assert_eq!(err.status, net_status_t::NET_ERR_COMPUTE_CONFIG);
            assert!(err.message.contains(key), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn failure_reasons_read_as_v011_kinds() {
        assert_eq!(
            failure_text(&FailureReason::FactoryNotFound),
            "factory-not-found"
        );
        assert_eq!(
            failure_text(&FailureReason::StateFailed("bad".into())),
            "state-failed: bad"
        );
        let json: serde_json::Value = serde_json::from_slice(&status_json(
            &MigrationStatus::Failed(FailureReason::AlreadyMigrating),
        ))
        .unwrap();
        assert_eq!(json["state"], "failed");
        assert_eq!(json["reason"], "already-migrating");
    }
}
