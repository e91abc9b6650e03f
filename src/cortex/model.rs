//! The one implementation of a CortEX model, generic over the model
//! ([`ModelFold`]): opening a model file, recovering the per-origin app
//! sequence, writing records, queries, snapshots and watches. A model kind
//! (`tasks.rs`, `memories.rs`) supplies only its events, fold, state, query
//! and its particular writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::adapter::{CortexAdapter, Fold, FoldConfig, FoldError, StartPosition};
use super::broadcast::{Receiver, ReceiverCloser, Recv};
use super::meta::EventMeta;
use crate::redex::{Redex, RedexError, RedexFile, RedexFileConfig, TailBatch, TailItem};

/// Errors of the CortEX models.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CortexError {
    /// The underlying log failed (see the RedEX error for what to do).
    #[error(transparent)]
    Redex(#[from] RedexError),
    /// A payload could not be encoded.
    #[error("cannot encode the event: {0}")]
    Encode(postcard::Error),
    /// A snapshot's bytes do not decode.
    #[error("snapshot does not decode: {0}")]
    Snapshot(String),
    /// The fold has stopped (Stop policy halt, or the file closed); writes
    /// would never become visible. Reopen the model.
    #[error("the fold is not running")]
    NotRunning,
}

/// How a model is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelConfig {
    /// The RedEX file configuration (set `persistent` for a disk-backed model).
    pub file: RedexFileConfig,
    /// The fold configuration. Its start position is ignored when restoring
    /// from a snapshot (replay continues after the snapshot).
    pub fold: FoldConfig,
}

impl ModelConfig {
    /// A disk-backed model with the default fold (from the beginning, Stop).
    pub fn persistent() -> Self {
        Self {
            file: RedexFileConfig::persistent(),
            ..Self::default()
        }
    }
}

/// A model snapshot: postcard bytes, with the RedEX seq of the last event
/// they contain next to them (STORAGE.md §12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSnapshot {
    /// `postcard({app_seq, inner: postcard(state)})`.
    pub bytes: Vec<u8>,
    /// The strict-prefix watermark when the snapshot was taken.
    pub last_seq: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotPayload {
    app_seq: u64,
    inner: Vec<u8>,
}

impl ModelSnapshot {
    /// Decodes the snapshot bytes into a model state and the writer's app
    /// seq. The bytes are untrusted (they come back from applications), so
    /// garbage is a [`CortexError::Snapshot`], never a panic.
    pub fn decode_state<S: DeserializeOwned>(&self) -> Result<(S, u64), CortexError> {
        let payload: SnapshotPayload =
            postcard::from_bytes(&self.bytes).map_err(|e| CortexError::Snapshot(e.to_string()))?;
        let state = postcard::from_bytes(&payload.inner)
            .map_err(|e| CortexError::Snapshot(e.to_string()))?;
        Ok((state, payload.app_seq))
    }
}

/// The crate's models implement the model traits; nothing else can (their
/// methods are free to change without a breaking release).
pub(super) mod sealed {
    pub trait Sealed {}
}

/// The folded state of a model: its rows by id, snapshotted as postcard.
///
/// Implemented by [`TasksState`](super::TasksState) and
/// [`MemoriesState`](super::MemoriesState); sealed.
pub trait ModelState:
    Default + Serialize + DeserializeOwned + Send + Sync + 'static + sealed::Sealed
{
    /// One row: a task, a memory.
    type Row: Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Every live row, by id.
    fn rows(&self) -> &BTreeMap<u64, Self::Row>;
}

/// A filter, order and page over a model's rows ([`TaskQuery`](super::TaskQuery),
/// [`MemoryQuery`](super::MemoryQuery)). The kind-specific parts (which rows
/// match, how they sort) are the query's; selecting, sorting and paging rows
/// is the same for every model and provided here. Sealed.
pub trait ModelQuery: Clone + Default + Send + Sync + 'static + sealed::Sealed {
    /// The state the query runs over.
    type State: ModelState;

    /// Whether `row` passes every filter of the query (order and page aside).
    fn matches(&self, row: &<Self::State as ModelState>::Row) -> bool;

    /// The ids the query is restricted to, if it is (answered by lookups
    /// instead of a scan).
    fn id_filter(&self) -> Option<&[u64]>;

    /// Sorts `rows` into the query's order.
    fn sort_rows(&self, rows: &mut [&<Self::State as ModelState>::Row]);

    /// `(offset, limit)`: skip that many sorted rows, then return at most
    /// that many.
    fn page_bounds(&self) -> (Option<usize>, Option<usize>);

    /// The matching rows, sorted and paged. A row is returned once even if
    /// its id is listed twice in the id filter.
    fn run(&self, state: &Self::State) -> Vec<<Self::State as ModelState>::Row> {
        let mut rows: Vec<_> = matching(self, state).collect();
        self.sort_rows(&mut rows);
        let (offset, limit) = self.page_bounds();
        // Sort references; clone only the page.
        page(rows, offset, limit).into_iter().cloned().collect()
    }

    /// How many rows match (order and page ignored).
    fn count(&self, state: &Self::State) -> usize {
        matching(self, state).count()
    }

    /// Whether any row matches.
    fn exists(&self, state: &Self::State) -> bool {
        matching(self, state).next().is_some()
    }
}

/// The rows of `state` that match `query`'s filters, unsorted: lookups when
/// it has an id filter (each id once), a scan otherwise.
fn matching<'a, Q: ModelQuery>(
    query: &'a Q,
    state: &'a Q::State,
) -> impl Iterator<Item = &'a <Q::State as ModelState>::Row> + 'a {
    let rows = state.rows();
    let (lookups, scan) = match query.id_filter() {
        Some(ids) => {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
            (Some(ids.into_iter().filter_map(|id| rows.get(&id))), None)
        }
        None => (None, Some(rows.values())),
    };
    lookups
        .into_iter()
        .flatten()
        .chain(scan.into_iter().flatten())
        .filter(move |row| query.matches(row))
}

/// A CortEX model: its fold, the state it folds into (rows by id), the query
/// over those rows, the channel it lives on and the dispatch of its delete
/// event. [`ModelAdapter<F>`] is generic over it; [`TasksFold`](super::TasksFold)
/// and [`MemoriesFold`](super::MemoriesFold) implement it. Sealed.
pub trait ModelFold: Fold<State: ModelState> + Default + sealed::Sealed {
    /// The model's query type.
    type Query: ModelQuery<State = Self::State>;
    /// The model's name ("tasks", "memories"), for messages.
    const NAME: &'static str;
    /// The RedEX channel the model lives on.
    const CHANNEL: &'static str;
    /// The dispatch of the model's `Deleted { id }` event.
    const DELETED: u8;
}

/// A row of model `F` ([`Task`](super::Task), [`Memory`](super::Memory)).
pub type ModelRow<F> = <<F as Fold>::State as ModelState>::Row;

/// A live query over model `F` (see [`Watch`]).
pub type ModelWatch<F> = Watch<F, ModelRow<F>>;

/// `max(app_seq, seq_or_ts + 1)` over this origin's valid records from `from`
/// on (STORAGE.md §11.2).
fn recover_app_seq(
    file: &RedexFile,
    origin_hash: u64,
    from: u64,
    mut app_seq: u64,
) -> Result<u64, CortexError> {
    let mut tail = file.tail(from);
    while let TailBatch::Items(items) = tail.next_batch(Some(Duration::ZERO), 4096)? {
        for item in items {
            if let TailItem::Entry(entry) = item
                && let Ok((meta, _, _)) = EventMeta::parse_record(&entry.payload)
                && meta.origin_hash == origin_hash
                && meta.seq_or_ts != u64::MAX
            {
                app_seq = app_seq.max(meta.seq_or_ts + 1);
            }
        }
    }
    Ok(app_seq)
}

/// A model over a RedEX file: writes stamped with this writer's origin and
/// app seq, queries, watches and snapshots. `origin_hash` identifies the
/// writer (IDENTITY.md §2).
///
/// Everything a model does is here, once, for every model; the writes that
/// are particular to one model (`create` a task, `store` a memory) are
/// inherent methods of its instantiation, [`TasksAdapter`](super::TasksAdapter)
/// = `ModelAdapter<TasksFold>` and [`MemoriesAdapter`](super::MemoriesAdapter)
/// = `ModelAdapter<MemoriesFold>`.
pub struct ModelAdapter<F: ModelFold> {
    adapter: Arc<CortexAdapter<F>>,
    origin_hash: u64,
    app_seq: AtomicU64,
}

#[derive(Serialize, Deserialize)]
struct Deleted {
    id: u64,
}

impl<F: ModelFold> ModelAdapter<F> {
    /// Opens the model's channel ([`ModelFold::CHANNEL`]) on `redex` and
    /// folds it from the configured start.
    ///
    /// # Errors
    /// [`CortexError::Redex`] when the file cannot be opened or read.
    pub fn open(redex: &Redex, origin_hash: u64, config: ModelConfig) -> Result<Self, CortexError> {
        let file = redex.open_file(F::CHANNEL, config.file)?;
        let app_seq = recover_app_seq(&file, origin_hash, file.first_seq().unwrap_or(0), 0)?;
        let adapter =
            CortexAdapter::start(file, F::default(), F::State::default(), None, config.fold);
        Ok(Self {
            adapter: Arc::new(adapter),
            origin_hash,
            app_seq: AtomicU64::new(app_seq),
        })
    }

    /// Opens from a snapshot: its state and app seq, then the events after
    /// `snapshot.last_seq` (the configured start position is ignored).
    ///
    /// # Errors
    /// [`CortexError::Snapshot`] when the bytes do not decode as this model's
    /// state; as [`open`](Self::open).
    pub fn restore(
        redex: &Redex,
        origin_hash: u64,
        config: ModelConfig,
        snapshot: &ModelSnapshot,
    ) -> Result<Self, CortexError> {
        let (state, snapshot_app_seq) = snapshot.decode_state::<F::State>()?;
        let file = redex.open_file(F::CHANNEL, config.file)?;
        let from = snapshot.last_seq.map_or(0, |s| s + 1);
        let app_seq = recover_app_seq(&file, origin_hash, from, snapshot_app_seq)?;
        let fold_config = FoldConfig {
            start: StartPosition::FromSeq(from),
            ..config.fold
        };
        let adapter =
            CortexAdapter::start(file, F::default(), state, snapshot.last_seq, fold_config);
        Ok(Self {
            adapter: Arc::new(adapter),
            origin_hash,
            app_seq: AtomicU64::new(app_seq),
        })
    }

    /// This writer's origin.
    pub fn origin_hash(&self) -> u64 {
        self.origin_hash
    }

    /// The app seq the next write will carry.
    pub fn app_seq(&self) -> u64 {
        self.app_seq.load(Ordering::Acquire)
    }

    /// The fold driver (watermarks, changes, state).
    pub fn adapter(&self) -> &CortexAdapter<F> {
        &self.adapter
    }

    /// The RedEX file.
    pub fn file(&self) -> &RedexFile {
        self.adapter.file()
    }

    /// Appends `EventMeta(dispatch, origin, app_seq) ‖ postcard(event)`;
    /// returns the RedEX seq.
    pub(crate) fn write<E: Serialize>(&self, dispatch: u8, event: &E) -> Result<u64, CortexError> {
        if !self.adapter.is_running() {
            return Err(CortexError::NotRunning);
        }
        let tail = postcard::to_stdvec(event).map_err(CortexError::Encode)?;
        let app_seq = self.app_seq.fetch_add(1, Ordering::AcqRel);
        let record = EventMeta::new(dispatch, self.origin_hash, app_seq).encode_record(&tail);
        Ok(self.adapter.file().append(&record)?)
    }

    /// Deletes row `id` (no effect if it does not exist); returns the RedEX
    /// seq of the event.
    ///
    /// # Errors
    /// [`CortexError::NotRunning`] when the fold has stopped; RedEX append errors.
    pub fn delete(&self, id: u64) -> Result<u64, CortexError> {
        self.write(F::DELETED, &Deleted { id })
    }

    /// Waits until the fold has attempted `seq` (see
    /// [`CortexAdapter::wait_for_seq`]).
    pub fn wait_for_seq(&self, seq: u64, timeout: Duration) -> bool {
        self.adapter.wait_for_seq(seq, timeout)
    }

    /// Row `id`, if it exists.
    pub fn find_unique(&self, id: u64) -> Option<ModelRow<F>> {
        self.adapter.state().rows().get(&id).cloned()
    }

    /// The rows matching `query`, ordered and paged.
    pub fn find_many(&self, query: &F::Query) -> Vec<ModelRow<F>> {
        query.run(&self.adapter.state())
    }

    /// How many rows match `query`'s filters (order and paging ignored).
    pub fn count_where(&self, query: &F::Query) -> usize {
        query.count(&self.adapter.state())
    }

    /// Whether any row matches `query`'s filters.
    pub fn exists_where(&self, query: &F::Query) -> bool {
        query.exists(&self.adapter.state())
    }

    /// A live query: the current result, then every change to it.
    pub fn watch(&self, query: F::Query) -> ModelWatch<F> {
        Watch::new(self.adapter.clone(), Box::new(move |s| query.run(s)))
    }

    /// The current result and a watch of later changes, with nothing lost in
    /// between.
    pub fn snapshot_and_watch(&self, query: F::Query) -> (Vec<ModelRow<F>>, ModelWatch<F>) {
        Watch::snapshot_and_watch(self.adapter.clone(), Box::new(move |s| query.run(s)))
    }

    /// A consistent snapshot: the state and the strict-prefix watermark read
    /// together, with the app seq. Events after the watermark that were
    /// folded anyway (skipped neighbours under LogAndContinue) are replayed
    /// again on restore.
    ///
    /// # Errors
    /// [`CortexError::Encode`] (should not happen for the crate's models).
    pub fn snapshot(&self) -> Result<ModelSnapshot, CortexError> {
        self.adapter.with_state(|state, applied| {
            let inner = postcard::to_stdvec(state).map_err(CortexError::Encode)?;
            let payload = SnapshotPayload {
                app_seq: self.app_seq(),
                inner,
            };
            Ok(ModelSnapshot {
                bytes: postcard::to_stdvec(&payload).map_err(CortexError::Encode)?,
                last_seq: applied,
            })
        })
    }

    /// Stops the fold and closes the file (syncing it); later writes fail.
    /// Watches of the model end.
    ///
    /// # Errors
    /// RedEX close errors.
    pub fn close(&self) -> Result<(), CortexError> {
        self.adapter.stop();
        Ok(self.adapter.file().close()?)
    }
}

impl<F: ModelFold> std::fmt::Debug for ModelAdapter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelAdapter")
            .field("model", &F::NAME)
            .field("origin_hash", &format_args!("{:#018x}", self.origin_hash))
            .field("adapter", &self.adapter)
            .finish()
    }
}

/// Splits a model record into its `EventMeta` and event bytes.
pub(crate) fn parse_event(seq: u64, record: &[u8]) -> Result<(EventMeta, &[u8]), FoldError> {
    let (meta, tail, _) = EventMeta::parse_record(record).map_err(|e| FoldError::Corrupt {
        seq,
        reason: e.to_string(),
    })?;
    Ok((meta, tail))
}

/// Decodes a model event's postcard bytes.
pub(crate) fn decode_event<'a, T: Deserialize<'a>>(
    seq: u64,
    dispatch: u8,
    tail: &'a [u8],
) -> Result<T, FoldError> {
    postcard::from_bytes(tail).map_err(|e| FoldError::Decode {
        seq,
        dispatch,
        reason: e.to_string(),
    })
}

/// `Deleted { id }`: the same event in every model, under its own dispatch.
pub(crate) fn decode_deleted(seq: u64, dispatch: u8, tail: &[u8]) -> Result<u64, FoldError> {
    decode_event::<Deleted>(seq, dispatch, tail).map(|e| e.id)
}

/// What a watch delivers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WatchEvent<T> {
    /// The query's current result (first the initial one, then after each
    /// change that altered it).
    Update(Vec<T>),
    /// The watcher fell behind by this many changes; the next update shows
    /// the current result, with those changes in it.
    Lagged(u64),
}

/// The outcome of waiting on a watch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WatchPoll<T> {
    /// Something to deliver.
    Event(WatchEvent<T>),
    /// Nothing changed within the timeout.
    Timeout,
    /// The model closed (or its fold halted): no more events.
    End,
    /// The call's token was cancelled; the watch can be read again.
    Cancelled,
}

/// A query over a model's state, boxed so watches of any query share a type.
pub(crate) type QueryFn<S, T> = Box<dyn Fn(&S) -> Vec<T> + Send + Sync>;

/// A live query: the current result, then the result after every change that
/// alters it. A change is never lost silently: a watcher that falls behind is
/// told how many changes it missed.
pub struct Watch<F: Fold, T> {
    adapter: Arc<CortexAdapter<F>>,
    changes: Receiver<u64>,
    run: QueryFn<F::State, T>,
    last: Option<Vec<T>>,
    initial_pending: bool,
    dirty: bool,
}

impl<F: Fold, T: Clone + PartialEq> Watch<F, T> {
    /// A watch whose first event is the current result.
    pub(crate) fn new(adapter: Arc<CortexAdapter<F>>, run: QueryFn<F::State, T>) -> Self {
        let changes = adapter.changes();
        Self {
            adapter,
            changes,
            run,
            last: None,
            initial_pending: true,
            dirty: false,
        }
    }

    /// Like [`Watch::new`], but returns the current result now and leaves only
    /// later changes to the watch: nothing can slip between the two.
    pub(crate) fn snapshot_and_watch(
        adapter: Arc<CortexAdapter<F>>,
        run: QueryFn<F::State, T>,
    ) -> (Vec<T>, Self) {
        let mut watch = Self::new(adapter, run);
        let current = (watch.run)(&watch.adapter.state());
        watch.last = Some(current.clone());
        watch.initial_pending = false;
        (current, watch)
    }

    /// Waits up to `timeout` (forever with `None`) for the next event.
    pub fn next_timeout(&mut self, timeout: Option<Duration>) -> WatchPoll<T> {
        self.next_cancellable(timeout, None)
    }

    /// [`next_timeout`](Self::next_timeout) that also returns
    /// [`WatchPoll::Cancelled`] as soon as `cancel` is cancelled.
    pub fn next_cancellable(
        &mut self,
        timeout: Option<Duration>,
        cancel: Option<&crate::cancel::CancelToken>,
    ) -> WatchPoll<T> {
        if self.initial_pending {
            self.initial_pending = false;
            let current = (self.run)(&self.adapter.state());
            self.last = Some(current.clone());
            return WatchPoll::Event(WatchEvent::Update(current));
        }
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        loop {
            if self.dirty {
                self.dirty = false;
                let current = (self.run)(&self.adapter.state());
                if self.last.as_ref() != Some(&current) {
                    self.last = Some(current.clone());
                    return WatchPoll::Event(WatchEvent::Update(current));
                }
            }
            let remaining =
                deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            match self.changes.recv_cancellable(remaining, cancel) {
                Recv::Value(_) => self.dirty = true,
                Recv::Cancelled => return WatchPoll::Cancelled,
                Recv::Lagged(missed) => {
                    self.dirty = true;
                    return WatchPoll::Event(WatchEvent::Lagged(missed));
                }
                Recv::Timeout => return WatchPoll::Timeout,
                _ => return WatchPoll::End,
            }
        }
    }

    /// A handle that ends this watch from another thread (a blocked
    /// `next_timeout` returns [`WatchPoll::End`]).
    pub fn closer(&self) -> ReceiverCloser<u64> {
        self.changes.closer()
    }
}

impl<F: Fold, T: Clone + PartialEq> Iterator for Watch<F, T> {
    type Item = WatchEvent<T>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_timeout(None) {
            WatchPoll::Event(event) => Some(event),
            _ => None,
        }
    }
}

impl<F: Fold, T> std::fmt::Debug for Watch<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

/// Paging: what every model query ends with.
fn page<T>(mut rows: Vec<T>, offset: Option<usize>, limit: Option<usize>) -> Vec<T> {
    let offset = offset.unwrap_or(0).min(rows.len());
    rows.drain(..offset);
    if let Some(limit) = limit {
        rows.truncate(limit);
    }
    rows
}
