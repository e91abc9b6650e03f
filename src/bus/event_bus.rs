//! [`EventBus`]: producers push raw events into per-shard lock-free
//! buffers; one worker per shard drains its buffer into batches and hands
//! them to the adapter; consumers poll them back through a cursor that
//! merges every shard.
//!
//! Concurrency rules:
//! * A producer announces itself on its shard (`in_flight`) *before* it
//!   checks that the bus runs and the shard is active, and leaves after its
//!   push (all SeqCst). Shutdown and shard removal flip their flag first,
//!   then wait for `in_flight` to read zero on two consecutive passes: a
//!   producer either saw the flag and backed off, or is counted.
//! * The shard map's write lock serialises every topology change (add,
//!   activate, remove); `num_shards` is derived from shard states, so a
//!   rolled-back activation cannot over-decrement it.
//! * Routing reads an immutable snapshot of the active shards (ArcSwap):
//!   no lock on the ingest path.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;

use super::adapter::{Adapter, Batch, BatchEvent};
use super::batch::BatchSizer;
use super::config::BusConfig;
use super::dedup_state::{DedupStateFile, RESERVATION_STEP, Reservations};
use super::dispatch::{DispatchFailure, RetryPolicy, dispatch};
use super::error::{BusError, Result};
use super::poll::{ConsumeResponse, PollRequest, poll_merged};
use super::shard::{Item, Shard, ShardState};
use super::timestamp::{IdCounter, TimestampGenerator};
use crate::cancel::CancelToken;
use crate::runtime::block_on;

/// How a batch ingest went: events are taken from the front, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchIngest {
    /// Events queued.
    pub queued: usize,
    /// Events decimated by the Sample policy (taken, not queued).
    pub sampled: usize,
    /// Events from the front that were dealt with (queued + sampled); the
    /// rest were refused by backpressure (see `refused`).
    pub taken: usize,
    /// The shard that was full, if the batch stopped early.
    pub refused: Option<u16>,
}

/// What `shutdown` achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Events lost over the bus's lifetime: backpressure drops, batches
    /// that failed every dispatch attempt, and events stranded at shutdown.
    pub events_dropped: u64,
    /// Events still buffered when the shutdown deadline passed.
    pub events_stranded: u64,
    /// Whether this shutdown lost anything (stranded events, failed final
    /// batches, or a failed adapter flush/shutdown). A lossy shutdown never
    /// reports clean.
    pub shutdown_was_lossy: bool,
    /// The adapter's flush or shutdown error, if any.
    pub adapter_error: Option<String>,
}

/// A snapshot of the bus's counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BusStats {
    /// Active shards.
    pub num_shards: u16,
    /// Ids of the active shards.
    pub active_shards: Vec<u16>,
    /// Events queued by producers.
    pub events_ingested: u64,
    /// Events stored by the adapter.
    pub events_dispatched: u64,
    /// Events lost (backpressure drops + failed batches + stranded).
    pub events_dropped: u64,
    /// Events decimated by the Sample policy.
    pub events_sampled: u64,
    /// Events buffered in shards right now (including batches in progress).
    pub events_buffered: u64,
    /// Batches stored.
    pub batches_dispatched: u64,
    /// Batches that failed every attempt.
    pub dispatch_failures: u64,
    /// Failed attempts (retried or not).
    pub failed_attempts: u64,
    /// Moving average of a successful adapter call (µs).
    pub dispatch_latency_us: u64,
    /// The last batch failure, every attempt's reason.
    pub last_failure: Option<String>,
    /// Shards added / removed since start.
    pub shards_added: u64,
    /// Shards removed since start.
    pub shards_removed: u64,
    /// Sequence reservations that could not be persisted (the producer
    /// state file's I/O failed; see the log).
    pub reservation_failures: u64,
    /// The adapter's name.
    pub adapter: String,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    failures: AtomicU64,
    failed_attempts: AtomicU64,
    stranded: AtomicU64,
    reservation_failures: AtomicU64,
    latency_us: AtomicU64,
    added: AtomicU64,
    removed: AtomicU64,
}

struct ShardEntry {
    shard: Arc<Shard>,
    worker: Option<JoinHandle<()>>,
    /// Events popped by the worker and not yet dispatched.
    pending: Arc<AtomicU64>,
}

pub(crate) struct Inner {
    config: BusConfig,
    pub(crate) adapter: Arc<dyn Adapter>,
    retry: RetryPolicy,
    shards: RwLock<BTreeMap<u16, ShardEntry>>,
    routing: ArcSwap<Vec<Arc<Shard>>>,
    ids: Mutex<IdCounter>,
    shutting_down: AtomicBool,
    /// Workers: dispatch everything and exit (set after producers are out).
    stopping: AtomicBool,
    counters: Counters,
    last_failure: Mutex<Option<DispatchFailure>>,
    /// Next batch sequence of each shard (read at start, kept at stop).
    sequences: Mutex<HashMap<u16, u64>>,
    last_scale: Mutex<Option<Instant>>,
    nonce: u64,
    producer: Option<Reservations>,
}

/// The event bus. Its shard workers run on the process's shared runtime
/// ([`crate::runtime`]) or on one the caller injects through
/// [`EventBus::builder`]; shutting a bus down ends its tasks, never the
/// runtime.
pub struct EventBus {
    inner: Arc<Inner>,
    handle: tokio::runtime::Handle,
    /// The scaling policy's task, if any: ended at shutdown.
    scaling: Mutex<Option<JoinHandle<()>>>,
    report: Mutex<Option<ShutdownReport>>,
}

/// Builds an [`EventBus`] with the options its plain constructors do not
/// take: a start sequence per shard, a producer state file, a runtime.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use net::bus::{BusConfig, EventBus, RedexAdapter};
/// # use net::redex::{Redex, RedexFileConfig};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = tokio::runtime::Runtime::new()?;
/// let adapter = Arc::new(RedexAdapter::new(Redex::new(), "bus", RedexFileConfig::default()));
/// let bus = EventBus::builder(BusConfig::default(), adapter)
///     .runtime(runtime.handle().clone())
///     .build()?;
/// # drop(bus);
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct EventBusBuilder {
    config: BusConfig,
    adapter: Arc<dyn Adapter>,
    sequences: HashMap<u16, u64>,
    producer_state: Option<DedupStateFile>,
    runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for EventBusBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBusBuilder")
            .field("adapter", &self.adapter.name())
            .field("sequences", &self.sequences)
            .field("producer_state", &self.producer_state.is_some())
            .field("runtime", &self.runtime.as_ref().map(|h| h.id()))
            .finish_non_exhaustive()
    }
}

impl EventBusBuilder {
    /// Each shard's first batch sequence (from a previous run's
    /// [`EventBus::sequences`], so the dedup ids of a restarted producer
    /// never repeat). Ignored with a producer state file, which knows.
    pub fn sequences(mut self, sequences: HashMap<u16, u64>) -> Self {
        self.sequences = sequences;
        self
    }

    /// Keeps the producer's dedup state in `file`: the nonce persists
    /// across restarts, and every shard starts above a durable reservation
    /// of the sequences used before, so after any restart (a crash
    /// included) no dedup id repeats.
    pub fn producer_state(mut self, file: DedupStateFile) -> Self {
        self.producer_state = Some(file);
        self
    }

    /// Runs the bus's tasks on this runtime (multi-thread, with its I/O
    /// and time drivers enabled) instead of the shared one. The bus never
    /// shuts it down.
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Starts the bus: initialises the adapter for the configured shards
    /// and starts their workers.
    ///
    /// # Errors
    /// [`BusError::InvalidConfig`] (a bad configuration, a current-thread
    /// runtime, or a shared runtime that cannot start);
    /// [`BusError::ProducerState`] when the state file cannot be read or
    /// created; [`BusError::Adapter`] when the adapter's `init` fails.
    pub fn build(self) -> Result<EventBus> {
        let handle = match self.runtime {
            Some(handle) => {
                crate::runtime::check_injected(&handle).map_err(BusError::InvalidConfig)?;
                handle
            }
            None => crate::runtime::shared().map_err(|e| {
                BusError::InvalidConfig(format!("cannot start the shared runtime: {e}"))
            })?,
        };
        let (sequences, producer) = match self.producer_state {
            Some(file) => {
                let producer = Reservations::open(file, RESERVATION_STEP)
                    .map_err(|e| BusError::ProducerState(e.to_string()))?;
                (producer.starts(), Some(producer))
            }
            None => (self.sequences, None),
        };
        EventBus::start(self.config, self.adapter, sequences, producer, handle)
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("adapter", &self.inner.adapter.name())
            .field("num_shards", &self.num_shards())
            .finish()
    }
}

thread_local! {
    static NEXT: Cell<usize> = const { Cell::new(0) };
}

impl EventBus {
    /// Starts a bus over `adapter`: initialises the adapter for the
    /// configured shards and starts their workers.
    ///
    /// # Errors
    /// [`BusError::InvalidConfig`]; [`BusError::Adapter`] when the adapter's
    /// `init` fails.
    pub fn new(config: BusConfig, adapter: Arc<dyn Adapter>) -> Result<Self> {
        Self::builder(config, adapter).build()
    }

    /// A builder for a bus over `adapter`, for the options `new` does not
    /// take (start sequences, a producer state file, an injected runtime).
    pub fn builder(config: BusConfig, adapter: Arc<dyn Adapter>) -> EventBusBuilder {
        EventBusBuilder {
            config,
            adapter,
            sequences: HashMap::new(),
            producer_state: None,
            runtime: None,
        }
    }

    /// As [`new`](Self::new), with each shard's first batch sequence (from a
    /// previous run's [`sequences`](Self::sequences), so the dedup ids of a
    /// restarted producer never repeat).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_sequences(
        config: BusConfig,
        adapter: Arc<dyn Adapter>,
        sequences: HashMap<u16, u64>,
    ) -> Result<Self> {
        Self::builder(config, adapter).sequences(sequences).build()
    }

    /// As [`new`](Self::new), with the producer's dedup state kept in
    /// `file`: the nonce persists across restarts, and every shard starts
    /// above a durable reservation of the sequences used before, so after
    /// any restart (a crash included) no dedup id repeats.
    ///
    /// # Errors
    /// As [`new`](Self::new); [`BusError::ProducerState`] when the state
    /// file cannot be read or created.
    pub fn with_producer_state(
        config: BusConfig,
        adapter: Arc<dyn Adapter>,
        file: DedupStateFile,
    ) -> Result<Self> {
        Self::builder(config, adapter).producer_state(file).build()
    }

    fn start(
        config: BusConfig,
        adapter: Arc<dyn Adapter>,
        sequences: HashMap<u16, u64>,
        producer: Option<Reservations>,
        handle: tokio::runtime::Handle,
    ) -> Result<Self> {
        config.validate()?;
        let seed = random_u64();
        let inner = Arc::new(Inner {
            retry: RetryPolicy {
                max_attempts: config.max_attempts,
                base: Duration::from_millis(config.retry_base_ms),
                max: Duration::from_millis(config.retry_max_ms),
                timeout: config.adapter_timeout(),
                seed,
            },
            ids: Mutex::new(IdCounter::new(
                u64::from(config.num_shards),
                u64::from(u16::MAX),
            )),
            config,
            adapter,
            shards: RwLock::new(BTreeMap::new()),
            routing: ArcSwap::from_pointee(Vec::new()),
            shutting_down: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            counters: Counters::default(),
            last_failure: Mutex::new(None),
            sequences: Mutex::new(sequences),
            last_scale: Mutex::new(None),
            nonce: producer
                .as_ref()
                .map_or_else(random_u64, Reservations::nonce),
            producer,
        });
        let ids: Vec<u16> = (0..inner.config.num_shards).collect();
        {
            block_on(&handle, async {
                tokio::time::timeout(inner.config.adapter_timeout(), inner.adapter.init(&ids))
                    .await
                    .map_err(|_| {
                        BusError::Adapter(super::error::AdapterError::transient(
                            inner.adapter.name(),
                            super::error::Reason("init timed out".into()),
                        ))
                    })?
                    .map_err(BusError::Adapter)
            })?;
            let mut shards = inner.write_shards();
            for &id in &ids {
                let shard = Arc::new(Shard::new(id, inner.config.shard_capacity));
                shards.insert(
                    id,
                    ShardEntry {
                        shard,
                        worker: None,
                        pending: Arc::new(AtomicU64::new(0)),
                    },
                );
                inner.activate_locked(&mut shards, id, &handle);
            }
            inner.publish_routing(&shards);
        }
        let scaling = inner
            .config
            .scaling
            .map(|policy| handle.spawn(super::scaling::run(inner.clone(), policy, handle.clone())));
        Ok(Self {
            inner,
            handle,
            scaling: Mutex::new(scaling),
            report: Mutex::new(None),
        })
    }

    /// Queues one event on the next shard (round-robin per thread).
    ///
    /// # Errors
    /// [`BusError::Backpressure`], [`BusError::Sampled`] (by policy),
    /// [`BusError::Unrouted`], [`BusError::ShuttingDown`].
    pub fn ingest(&self, event: Vec<u8>) -> Result<()> {
        let mut event = Some(event);
        let mut result = Ok(());
        self.inner.with_shard(|shard, mode| {
            let Some(e) = event.take() else { return };
            result = shard.push(e, mode);
        })?;
        result
    }

    /// Queues a batch of events on one shard: one routing decision, one
    /// in-flight announcement, and the bytes copied into chunks of up to
    /// 1024 events (one allocation per chunk) — the fast path.
    ///
    /// # Errors
    /// [`BusError::Unrouted`], [`BusError::ShuttingDown`]; backpressure
    /// is reported in [`BatchIngest`], not as an error.
    pub fn ingest_batch<E: AsRef<[u8]>>(&self, events: &[E]) -> Result<BatchIngest> {
        let mut report = BatchIngest::default();
        if events.is_empty() {
            return Ok(report);
        }
        self.inner.with_shard(|shard, mode| {
            let r = shard.push_chunked(events, mode);
            report = BatchIngest {
                queued: r.queued,
                sampled: r.sampled,
                taken: r.taken,
                refused: r.refused.then_some(shard.id),
            };
        })?;
        Ok(report)
    }

    /// Reads events back: every shard merged in timestamp order, from the
    /// request's cursor. The shard set is the bus's current topology
    /// (active, draining and removed shards — removed shards keep their
    /// data) plus any shard the cursor names.
    ///
    /// # Errors
    /// [`BusError::InvalidRequest`] (bad cursor or filter),
    /// [`BusError::Adapter`].
    pub fn poll(&self, request: &PollRequest) -> Result<ConsumeResponse> {
        self.poll_cancellable(request, None)
    }

    /// [`poll`](Self::poll) that gives up with [`BusError::Cancelled`] as
    /// soon as `cancel` is cancelled (a poll only reads: nothing changes).
    ///
    /// # Errors
    /// As [`poll`](Self::poll), plus [`BusError::Cancelled`].
    pub fn poll_cancellable(
        &self,
        request: &PollRequest,
        cancel: Option<&CancelToken>,
    ) -> Result<ConsumeResponse> {
        let inner = self.inner.clone();
        let request = request.clone();
        let cancel = cancel.cloned();
        block_on(&self.handle, async move {
            until_cancelled(cancel, async move { inner.poll(&request).await }).await
        })
    }

    /// Waits until everything ingested so far is stored (or lost, which the
    /// stats show), then flushes the adapter.
    ///
    /// # Errors
    /// [`BusError::ShuttingDown`]; [`BusError::Adapter`] from the flush.
    pub fn flush(&self) -> Result<()> {
        self.flush_cancellable(None)
    }

    /// [`flush`](Self::flush) that stops waiting with
    /// [`BusError::Cancelled`] as soon as `cancel` is cancelled (the events
    /// keep being dispatched; only the wait ends).
    ///
    /// # Errors
    /// As [`flush`](Self::flush), plus [`BusError::Cancelled`].
    pub fn flush_cancellable(&self, cancel: Option<&CancelToken>) -> Result<()> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(BusError::ShuttingDown);
        }
        let inner = self.inner.clone();
        let cancel = cancel.cloned();
        block_on(
            &self.handle,
            until_cancelled(cancel, async move {
                let deadline = Instant::now() + inner.config.shutdown_timeout();
                while inner.buffered() > 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                tokio::time::timeout(inner.config.adapter_timeout(), inner.adapter.flush())
                    .await
                    .map_err(|_| {
                        BusError::Adapter(super::error::AdapterError::transient(
                            inner.adapter.name(),
                            super::error::Reason("flush timed out".into()),
                        ))
                    })?
                    .map_err(BusError::Adapter)
            }),
        )
    }

    /// Active shards.
    pub fn num_shards(&self) -> u16 {
        u16::try_from(self.inner.routing.load().len()).unwrap_or(u16::MAX)
    }

    /// Ids of the active shards.
    pub fn shard_ids(&self) -> Vec<u16> {
        self.inner.routing.load().iter().map(|s| s.id).collect()
    }

    /// Adds a shard: initialises it in the adapter, then activates it. A
    /// failed initialisation rolls the shard back (it was never counted).
    ///
    /// # Errors
    /// [`BusError::ScalingLimit`], [`BusError::ShuttingDown`],
    /// [`BusError::Adapter`].
    pub fn add_shard(&self) -> Result<u16> {
        let inner = self.inner.clone();
        let handle = self.handle.clone();
        block_on(&self.handle, async move { inner.add_shard(&handle).await })
    }

    /// Activates a provisioned shard. Idempotent: Ok(false) when it was
    /// already active.
    ///
    /// # Errors
    /// [`BusError::UnknownShard`] for a shard that is not provisioned or
    /// active.
    pub fn activate_shard(&self, id: u16) -> Result<bool> {
        let mut shards = self.inner.write_shards();
        let state = shards
            .get(&id)
            .map(|e| e.shard.state())
            .ok_or(BusError::UnknownShard(id))?;
        match state {
            ShardState::Active => Ok(false),
            ShardState::Provisioning => {
                let activated = self.inner.activate_locked(&mut shards, id, &self.handle);
                self.inner.publish_routing(&shards);
                Ok(activated)
            }
            _ => Err(BusError::UnknownShard(id)),
        }
    }

    /// Removes an active shard: it takes no new events, its buffered events
    /// are dispatched (not dropped), then its worker stops. Its stored
    /// events stay pollable.
    ///
    /// # Errors
    /// [`BusError::UnknownShard`], [`BusError::ScalingLimit`] (at
    /// `min_shards`), [`BusError::ShuttingDown`].
    pub fn remove_shard(&self, id: u16) -> Result<()> {
        let inner = self.inner.clone();
        block_on(&self.handle, async move { inner.remove_shard(id).await })
    }

    /// Removes the `n` highest-numbered active shards (stopping at
    /// `min_shards`); returns the ids removed.
    ///
    /// # Errors
    /// As [`remove_shard`](Self::remove_shard).
    pub fn scale_down(&self, n: u16) -> Result<Vec<u16>> {
        let mut removed = Vec::new();
        for _ in 0..n {
            let ids = self.shard_ids();
            if ids.len() <= usize::from(self.inner.config.min_shards) {
                break;
            }
            let Some(&id) = ids.last() else { break };
            self.remove_shard(id)?;
            removed.push(id);
        }
        Ok(removed)
    }

    /// The next batch sequence of every shard: persist it and pass it to
    /// [`with_sequences`](Self::with_sequences) on restart.
    pub fn sequences(&self) -> HashMap<u16, u64> {
        self.inner.lock_sequences().clone()
    }

    /// The producer nonce stamped on every batch.
    pub fn producer_nonce(&self) -> u64 {
        self.inner.nonce()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> BusStats {
        self.inner.stats()
    }

    /// The adapter.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.inner.adapter
    }

    /// Stops the bus: refuses new events, waits until no producer is
    /// mid-ingest on two consecutive passes, dispatches everything
    /// buffered, flushes and shuts the adapter down — within
    /// `shutdown_timeout`. Idempotent: later calls return the first report.
    pub fn shutdown(&self) -> ShutdownReport {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = report.as_ref() {
            return r.clone();
        }
        let inner = self.inner.clone();
        let scaling = self
            .scaling
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let r = block_on(&self.handle, async move {
            let report = inner.shutdown().await;
            // The policy sees `shutting_down` on its next tick; end it now
            // (the runtime may be shared and outlive us by far).
            if let Some(task) = scaling {
                task.abort();
                let _ = task.await;
            }
            report
        });
        *report = Some(r.clone());
        r
    }
}

/// Runs `work` until it completes or `cancel` (if any) is cancelled.
async fn until_cancelled<T>(
    cancel: Option<CancelToken>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match cancel {
        None => work.await,
        Some(token) => tokio::select! {
            result = work => result,
            () = token.cancelled() => Err(BusError::Cancelled),
        },
    }
}

impl Drop for EventBus {
    fn drop(&mut self) {
        let report = self.shutdown();
        if report.shutdown_was_lossy {
            tracing::warn!(
                stranded = report.events_stranded,
                dropped = report.events_dropped,
                "event bus dropped with a lossy shutdown"
            );
        }
    }
}

fn random_u64() -> u64 {
    use rand_core::RngCore;
    rand_core::OsRng.next_u64()
}

impl Inner {
    fn write_shards(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u16, ShardEntry>> {
        self.shards.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read_shards(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u16, ShardEntry>> {
        self.shards.read().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_sequences(&self) -> std::sync::MutexGuard<'_, HashMap<u16, u64>> {
        self.sequences.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `push` against a routable shard with the producer announced.
    fn with_shard(
        &self,
        mut push: impl FnMut(&Shard, super::config::BackpressureMode),
    ) -> Result<()> {
        // A shard can leave the routing set between the snapshot and the
        // announcement; then the next snapshot is tried.
        for _ in 0..4 {
            let routing = self.routing.load();
            if routing.is_empty() {
                return Err(if self.shutting_down.load(Ordering::SeqCst) {
                    BusError::ShuttingDown
                } else {
                    BusError::Unrouted
                });
            }
            let n = NEXT.with(|c| {
                let v = c.get();
                c.set(v.wrapping_add(1));
                v
            });
            let shard = &routing[n % routing.len()];
            shard.in_flight.fetch_add(1, Ordering::SeqCst);
            if self.shutting_down.load(Ordering::SeqCst) {
                shard.in_flight.fetch_sub(1, Ordering::SeqCst);
                return Err(BusError::ShuttingDown);
            }
            if shard.state() != ShardState::Active {
                shard.in_flight.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            push(shard, self.config.backpressure);
            shard.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Ok(());
        }
        Err(BusError::Unrouted)
    }

    /// Provisioning → Active and its worker; false when it was not
    /// provisioning (idempotent).
    fn activate_locked(
        self: &Arc<Self>,
        shards: &mut BTreeMap<u16, ShardEntry>,
        id: u16,
        handle: &tokio::runtime::Handle,
    ) -> bool {
        let Some(entry) = shards.get_mut(&id) else {
            return false;
        };
        if !entry
            .shard
            .transition(ShardState::Provisioning, ShardState::Active)
        {
            return false;
        }
        let sequence = self.lock_sequences().get(&id).copied().unwrap_or(0);
        entry.worker = Some(handle.spawn(run_worker(
            self.clone(),
            entry.shard.clone(),
            entry.pending.clone(),
            sequence,
        )));
        true
    }

    fn publish_routing(&self, shards: &BTreeMap<u16, ShardEntry>) {
        let active: Vec<Arc<Shard>> = shards
            .values()
            .filter(|e| e.shard.state() == ShardState::Active)
            .map(|e| e.shard.clone())
            .collect();
        self.routing.store(Arc::new(active));
    }

    fn buffered(&self) -> u64 {
        self.read_shards()
            .values()
            .map(|e| e.shard.len() as u64 + e.pending.load(Ordering::SeqCst))
            .sum()
    }

    /// Covers sequences below `upto` with a durable reservation (with a
    /// producer state); a failure is logged and counted, and the batch still
    /// goes: losing events would be worse than a dedup id that could repeat
    /// only after a crash.
    fn reserve(&self, shard: u16, upto: u64) {
        let Some(producer) = &self.producer else {
            return;
        };
        if let Err(e) = tokio::task::block_in_place(|| producer.ensure(shard, upto)) {
            self.counters
                .reservation_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(shard, error = %e, "could not persist the producer's sequence reservation");
        }
    }

    /// The producer nonce stamped on every batch.
    pub(crate) fn nonce(&self) -> u64 {
        self.nonce
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn highest_active(&self) -> Option<u16> {
        self.routing.load().iter().map(|s| s.id).max()
    }

    pub(crate) fn active_count(&self) -> usize {
        self.routing.load().len()
    }

    pub(crate) fn max_fill(&self) -> f64 {
        self.routing
            .load()
            .iter()
            .map(|s| s.fill())
            .fold(0.0, f64::max)
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_micros(self.counters.latency_us.load(Ordering::Relaxed))
    }

    pub(crate) fn config(&self) -> &BusConfig {
        &self.config
    }

    /// Claims the scaling cooldown: true (and restarts it) when the last
    /// decision is at least `cooldown` old.
    pub(crate) fn claim_cooldown(&self, cooldown: Duration) -> bool {
        let mut last = self.last_scale.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < cooldown) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    pub(crate) async fn add_shard(
        self: &Arc<Self>,
        handle: &tokio::runtime::Handle,
    ) -> Result<u16> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(BusError::ShuttingDown);
        }
        let id = {
            let mut shards = self.write_shards();
            let active = shards
                .values()
                .filter(|e| {
                    matches!(
                        e.shard.state(),
                        ShardState::Active | ShardState::Provisioning
                    )
                })
                .count();
            if active >= usize::from(self.config.max_shards) {
                return Err(BusError::ScalingLimit(format!(
                    "max_shards ({}) reached",
                    self.config.max_shards
                )));
            }
            let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
            let id = loop {
                let Some(id) = ids.next_id() else {
                    return Err(BusError::ScalingLimit("shard ids exhausted".into()));
                };
                let id = u16::try_from(id)
                    .map_err(|_| BusError::ScalingLimit("shard ids exhausted".into()))?;
                if !shards.contains_key(&id) {
                    break id;
                }
            };
            shards.insert(
                id,
                ShardEntry {
                    shard: Arc::new(Shard::new(id, self.config.shard_capacity)),
                    worker: None,
                    pending: Arc::new(AtomicU64::new(0)),
                },
            );
            id
        };
        let init =
            tokio::time::timeout(self.config.adapter_timeout(), self.adapter.init(&[id])).await;
        let failure = match init {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(BusError::Adapter(e)),
            Err(_) => Some(BusError::Adapter(super::error::AdapterError::transient(
                self.adapter.name(),
                super::error::Reason(format!("init of shard {id} timed out")),
            ))),
        };
        let mut shards = self.write_shards();
        if let Some(e) = failure {
            // Rollback: the shard never became active, so nothing counted
            // it; only its own provisioning entry goes.
            if shards
                .get(&id)
                .is_some_and(|e| e.shard.state() == ShardState::Provisioning)
            {
                shards.remove(&id);
            }
            return Err(e);
        }
        self.activate_locked(&mut shards, id, handle);
        self.publish_routing(&shards);
        self.counters.added.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    pub(crate) async fn remove_shard(self: &Arc<Self>, id: u16) -> Result<()> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(BusError::ShuttingDown);
        }
        let worker = {
            let mut shards = self.write_shards();
            let active = shards
                .values()
                .filter(|e| e.shard.state() == ShardState::Active)
                .count();
            let entry = shards.get_mut(&id).ok_or(BusError::UnknownShard(id))?;
            if entry.shard.state() != ShardState::Active {
                return Err(BusError::UnknownShard(id));
            }
            if active <= usize::from(self.config.min_shards) {
                return Err(BusError::ScalingLimit(format!(
                    "min_shards ({}) reached",
                    self.config.min_shards
                )));
            }
            entry
                .shard
                .transition(ShardState::Active, ShardState::Draining);
            let worker = entry.worker.take();
            self.publish_routing(&shards);
            worker
        };
        if let Some(w) = worker {
            let _ = w.await;
        }
        self.counters.removed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn poll(&self, request: &PollRequest) -> Result<ConsumeResponse> {
        let ids: Vec<u16> = self.read_shards().keys().copied().collect();
        poll_merged(&*self.adapter, &ids, request).await
    }

    async fn shutdown(self: &Arc<Self>) -> ShutdownReport {
        let deadline = Instant::now() + self.config.shutdown_timeout();
        self.shutting_down.store(true, Ordering::SeqCst);
        let all: Vec<Arc<Shard>> = self
            .read_shards()
            .values()
            .map(|e| e.shard.clone())
            .collect();
        // Producers out: two consecutive passes with nobody in flight.
        let mut quiet = 0;
        while quiet < 2 && Instant::now() < deadline {
            if all.iter().all(|s| s.in_flight.load(Ordering::SeqCst) == 0) {
                quiet += 1;
            } else {
                quiet = 0;
            }
            tokio::task::yield_now().await;
        }
        let lost_before: u64 = all
            .iter()
            .map(|s| s.counters.dispatch_lost.load(Ordering::SeqCst))
            .sum();
        self.stopping.store(true, Ordering::SeqCst);
        let workers: Vec<(u16, JoinHandle<()>)> = self
            .write_shards()
            .iter_mut()
            .filter_map(|(id, e)| e.worker.take().map(|w| (*id, w)))
            .collect();
        let mut stranded = 0u64;
        for (id, mut worker) in workers {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, &mut worker).await.is_err() {
                worker.abort();
                let _ = worker.await;
                let shards = self.read_shards();
                if let Some(e) = shards.get(&id) {
                    stranded += e.shard.len() as u64 + e.pending.swap(0, Ordering::SeqCst);
                    while e.shard.pop().is_some() {}
                }
            }
        }
        self.counters.stranded.fetch_add(stranded, Ordering::SeqCst);
        let lost_after: u64 = all
            .iter()
            .map(|s| s.counters.dispatch_lost.load(Ordering::SeqCst))
            .sum();
        let mut adapter_error = None;
        let timeout = self.config.adapter_timeout();
        match tokio::time::timeout(timeout, self.adapter.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => adapter_error = Some(format!("flush: {e}")),
            Err(_) => adapter_error = Some("flush: timed out".into()),
        }
        match tokio::time::timeout(timeout, self.adapter.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                adapter_error.get_or_insert(format!("shutdown: {e}"));
            }
            Err(_) => {
                adapter_error.get_or_insert("shutdown: timed out".into());
            }
        }
        {
            let mut shards = self.write_shards();
            for e in shards.values_mut() {
                e.shard.transition(ShardState::Active, ShardState::Stopped);
                e.shard
                    .transition(ShardState::Draining, ShardState::Stopped);
            }
            self.publish_routing(&shards);
        }
        let stats = self.stats();
        let report = ShutdownReport {
            events_dropped: stats.events_dropped,
            events_stranded: stranded,
            shutdown_was_lossy: stranded > 0 || lost_after > lost_before || adapter_error.is_some(),
            adapter_error,
        };
        if report.shutdown_was_lossy {
            tracing::warn!(?report, "event bus shutdown lost events");
        }
        report
    }

    fn stats(&self) -> BusStats {
        let shards = self.read_shards();
        let mut s = BusStats {
            adapter: self.adapter.name().to_owned(),
            ..BusStats::default()
        };
        for e in shards.values() {
            let c = &e.shard.counters;
            s.events_ingested += c.ingested.load(Ordering::Relaxed);
            s.events_dispatched += c.dispatched.load(Ordering::Relaxed);
            s.events_dropped +=
                c.dropped.load(Ordering::Relaxed) + c.dispatch_lost.load(Ordering::Relaxed);
            s.events_sampled += c.sampled.load(Ordering::Relaxed);
            s.events_buffered += e.shard.len() as u64 + e.pending.load(Ordering::Relaxed);
        }
        drop(shards);
        let routing = self.routing.load();
        s.active_shards = routing.iter().map(|x| x.id).collect();
        s.num_shards = u16::try_from(routing.len()).unwrap_or(u16::MAX);
        let c = &self.counters;
        s.events_dropped += c.stranded.load(Ordering::Relaxed);
        s.batches_dispatched = c.batches.load(Ordering::Relaxed);
        s.dispatch_failures = c.failures.load(Ordering::Relaxed);
        s.failed_attempts = c.failed_attempts.load(Ordering::Relaxed);
        s.dispatch_latency_us = c.latency_us.load(Ordering::Relaxed);
        s.shards_added = c.added.load(Ordering::Relaxed);
        s.shards_removed = c.removed.load(Ordering::Relaxed);
        s.reservation_failures = c.reservation_failures.load(Ordering::Relaxed);
        s.last_failure = self
            .last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(describe_failure);
        s
    }
}

fn describe_failure(f: &DispatchFailure) -> String {
    let attempts: Vec<String> = f
        .attempts
        .iter()
        .map(|a| format!("attempt {}: {}", a.attempt, a.reason))
        .collect();
    format!(
        "shard {} batch at sequence {} ({} events): {}",
        f.shard_id,
        f.sequence_start,
        f.events,
        attempts.join("; ")
    )
}

/// Idle wait of a worker with nothing buffered.
const IDLE: Duration = Duration::from_millis(1);

/// One shard's worker: drain → batch → dispatch, until the shard is
/// removed or the bus stops; then everything left is dispatched.
async fn run_worker(
    inner: Arc<Inner>,
    shard: Arc<Shard>,
    pending_gauge: Arc<AtomicU64>,
    mut sequence: u64,
) {
    let config = inner.config.batch;
    let mut stamps = TimestampGenerator::new();
    let mut sizer = BatchSizer::new(config);
    let mut pending: Vec<BatchEvent> = Vec::new();
    let mut oldest: Option<Instant> = None;
    let mut quiet = 0;
    // A popped item whose events have not all joined a batch yet.
    let mut carry: Option<(Item, usize)> = None;
    loop {
        let target = sizer.target();
        let mut drained = 0;
        while pending.len() < target {
            let (item, next) = match carry.take() {
                Some(c) => c,
                None => {
                    // Counted before it leaves the queue, so `flush` never
                    // sees an event in neither place.
                    pending_gauge.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = shard.pop() else {
                        pending_gauge.fetch_sub(1, Ordering::SeqCst);
                        break;
                    };
                    pending_gauge.fetch_add(item.events() as u64 - 1, Ordering::SeqCst);
                    (item, 0)
                }
            };
            if let Item::One(payload) = item {
                // A single event moves into the batch: no copy.
                pending.push(BatchEvent {
                    timestamp_ns: stamps.next_timestamp(),
                    payload,
                });
                drained += 1;
                continue;
            }
            let take = (item.events() - next).min(target - pending.len());
            for i in next..next + take {
                pending.push(BatchEvent {
                    timestamp_ns: stamps.next_timestamp(),
                    payload: item.event(i).to_vec(),
                });
            }
            drained += take;
            if next + take < item.events() {
                carry = Some((item, next + take));
            }
        }
        let now = Instant::now();
        if drained > 0 {
            sizer.record(now, drained);
            oldest.get_or_insert(now);
        }
        let stopping =
            inner.stopping.load(Ordering::SeqCst) || shard.state() == ShardState::Draining;
        let due = pending.len() >= target
            || oldest.is_some_and(|t| now.saturating_duration_since(t) >= config.max_delay())
            || stopping;
        if due && !pending.is_empty() {
            let events = std::mem::take(&mut pending);
            let batch = Batch {
                producer_nonce: inner.nonce,
                shard_id: shard.id,
                sequence_start: sequence,
                events,
            };
            sequence = sequence.saturating_add(batch.events.len() as u64);
            inner.reserve(shard.id, sequence);
            inner.lock_sequences().insert(shard.id, sequence);
            let n = batch.events.len() as u64;
            deliver(&inner, &shard, batch).await;
            pending_gauge.fetch_sub(n, Ordering::SeqCst);
            oldest = None;
            continue;
        }
        if stopping {
            if shard.len() == 0 && pending.is_empty() && shard.in_flight.load(Ordering::SeqCst) == 0
            {
                quiet += 1;
                if quiet >= 2 {
                    break;
                }
            } else {
                quiet = 0;
            }
            tokio::task::yield_now().await;
            continue;
        }
        if drained == 0 {
            let wait = oldest.map_or(IDLE, |t| {
                config
                    .max_delay()
                    .saturating_sub(now.saturating_duration_since(t))
                    .min(IDLE)
            });
            tokio::time::sleep(wait.max(Duration::from_micros(100))).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
    inner.lock_sequences().insert(shard.id, sequence);
    shard.transition(ShardState::Draining, ShardState::Stopped);
}

async fn deliver(inner: &Inner, shard: &Shard, batch: Batch) {
    let n = batch.events.len() as u64;
    match dispatch(&inner.adapter, &inner.retry, &batch).await {
        Ok((took, failed)) => {
            inner
                .counters
                .failed_attempts
                .fetch_add(u64::from(failed), Ordering::Relaxed);
            shard.counters.dispatched.fetch_add(n, Ordering::Relaxed);
            inner.counters.batches.fetch_add(1, Ordering::Relaxed);
            let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            let old = inner.counters.latency_us.load(Ordering::Relaxed);
            let avg = if old == 0 { us } else { (old * 7 + us) / 8 };
            inner.counters.latency_us.store(avg, Ordering::Relaxed);
        }
        Err(failure) => {
            shard.counters.dispatch_lost.fetch_add(n, Ordering::SeqCst);
            inner.counters.failures.fetch_add(1, Ordering::Relaxed);
            inner
                .counters
                .failed_attempts
                .fetch_add(failure.attempts.len() as u64, Ordering::Relaxed);
            tracing::error!(failure = %describe_failure(&failure), "batch lost after every dispatch attempt");
            *inner.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure);
        }
    }
}
