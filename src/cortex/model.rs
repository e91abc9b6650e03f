//! What the tasks and memories models share: opening a model file, recovering
//! the per-origin app sequence, writing records, snapshots, and watches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::adapter::{CortexAdapter, Fold, FoldConfig, StartPosition};
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

/// A state that snapshots to the model's postcard form.
pub(crate) trait ModelState:
    Default + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// One model on one RedEX file: the fold, the writer's origin and app seq.
pub(crate) struct Model<F: Fold>
where
    F::State: ModelState,
{
    pub(crate) adapter: Arc<CortexAdapter<F>>,
    origin_hash: u64,
    app_seq: AtomicU64,
}

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

impl<F: Fold> Model<F>
where
    F::State: ModelState,
{
    /// Opens `channel` and starts folding.
    pub(crate) fn open(
        redex: &Redex,
        channel: &str,
        origin_hash: u64,
        config: ModelConfig,
        fold: F,
    ) -> Result<Self, CortexError> {
        let file = redex.open_file(channel, config.file)?;
        let app_seq = recover_app_seq(&file, origin_hash, file.first_seq().unwrap_or(0), 0)?;
        let adapter = CortexAdapter::start(file, fold, F::State::default(), None, config.fold);
        Ok(Self {
            adapter: Arc::new(adapter),
            origin_hash,
            app_seq: AtomicU64::new(app_seq),
        })
    }

    /// Opens `channel` from a snapshot: state and app seq from the snapshot,
    /// then replay from `last_seq + 1`.
    pub(crate) fn restore(
        redex: &Redex,
        channel: &str,
        origin_hash: u64,
        config: ModelConfig,
        fold: F,
        snapshot: &ModelSnapshot,
    ) -> Result<Self, CortexError> {
        let (state, snapshot_app_seq) = snapshot.decode_state::<F::State>()?;
        let file = redex.open_file(channel, config.file)?;
        let from = snapshot.last_seq.map_or(0, |s| s + 1);
        let app_seq = recover_app_seq(&file, origin_hash, from, snapshot_app_seq)?;
        let fold_config = FoldConfig {
            start: StartPosition::FromSeq(from),
            ..config.fold
        };
        let adapter = CortexAdapter::start(file, fold, state, snapshot.last_seq, fold_config);
        Ok(Self {
            adapter: Arc::new(adapter),
            origin_hash,
            app_seq: AtomicU64::new(app_seq),
        })
    }

    /// The writer's origin.
    pub(crate) fn origin_hash(&self) -> u64 {
        self.origin_hash
    }

    /// The app seq the next write will carry.
    pub(crate) fn app_seq(&self) -> u64 {
        self.app_seq.load(Ordering::Acquire)
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

    /// A consistent snapshot: the state and the strict-prefix watermark read
    /// together. Events after the watermark that were folded anyway (skipped
    /// neighbours under LogAndContinue) are replayed again on restore.
    pub(crate) fn snapshot(&self) -> Result<ModelSnapshot, CortexError> {
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

    /// Stops the fold and closes the file.
    pub(crate) fn close(&self) -> Result<(), CortexError> {
        self.adapter.stop();
        Ok(self.adapter.file().close()?)
    }
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
            match self.changes.recv_timeout(remaining) {
                Recv::Value(_) => self.dirty = true,
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

/// Sorting, paging: what every model query ends with.
pub(crate) fn page<T>(mut rows: Vec<T>, offset: Option<usize>, limit: Option<usize>) -> Vec<T> {
    let offset = offset.unwrap_or(0).min(rows.len());
    rows.drain(..offset);
    if let Some(limit) = limit {
        rows.truncate(limit);
    }
    rows
}
