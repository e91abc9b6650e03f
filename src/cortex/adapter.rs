//! `CortexAdapter<F>`: folds a RedEX log into live state on a thread of its
//! own, with the two watermarks of the v0.11 release note.
//!
//! * `applied_through_seq` is a strict prefix: it advances only when the fold
//!   returns `Ok`, and only to the immediate successor of the previous applied
//!   seq (or the first seq of the run). A skipped event (LogAndContinue), a
//!   missing seq, or a halt stops it for good. Snapshots record it, so a
//!   restore re-attempts everything after it.
//! * `folded_through_seq` tracks live progress: the last seq the fold
//!   attempted, whatever the outcome. `wait_for_seq` waits on it, so it reports
//!   fold *progress*, not that the event's state change landed.
//!
//! `changes()` broadcasts the seqs that folded successfully, and only those:
//! when the Stop policy halts, nothing is sent for the failing seq and
//! `is_running()` turns false. A panic inside the fold is caught and treated
//! as a fold error; it never escapes the fold thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::broadcast::{self, Receiver, Sender};
use crate::cancel::CancelToken;
use crate::redex::{RedexFile, TailCloser, TailItem};

/// Where the fold starts reading the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartPosition {
    /// From the oldest retained entry.
    #[default]
    FromBeginning,
    /// Only entries appended after the adapter starts.
    LiveOnly,
    /// From this sequence number.
    FromSeq(u64),
}

/// What the fold does with an event it cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ErrorPolicy {
    /// Halt at the first error: later events are not applied (the default).
    #[default]
    Stop,
    /// Log the error, skip the event and carry on.
    LogAndContinue,
}

/// Why an event could not be folded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FoldError {
    /// The record's header or checksum is wrong.
    #[error("seq {seq}: corrupt record: {reason}")]
    Corrupt {
        /// The RedEX sequence number.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The payload does not decode as the model's event.
    #[error("seq {seq}: cannot decode dispatch {dispatch:#04x}: {reason}")]
    Decode {
        /// The RedEX sequence number.
        seq: u64,
        /// The record's dispatch byte.
        dispatch: u8,
        /// The decoder's message.
        reason: String,
    },
    /// The fold itself refused the event (custom folds).
    #[error("seq {seq}: {reason}")]
    Rejected {
        /// The RedEX sequence number.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The fold panicked; the panic was caught.
    #[error("seq {seq}: fold panicked: {message}")]
    Panicked {
        /// The RedEX sequence number.
        seq: u64,
        /// The panic message.
        message: String,
    },
    /// The log skips sequence numbers: entries in between were dropped (a
    /// RedEX checksum failure at recovery, i.e. corruption on disk).
    #[error("events {missed_from}..{missed_to} are missing from the log")]
    Gap {
        /// First missing seq.
        missed_from: u64,
        /// The seq that arrived instead.
        missed_to: u64,
    },
    /// Retention removed events before the fold reached them.
    #[error("events {missed_from}..{missed_to} were removed before they could be folded")]
    Lagged {
        /// First missed seq.
        missed_from: u64,
        /// One past the last missed seq.
        missed_to: u64,
    },
    /// The log could not be read.
    #[error("cannot read the log: {0}")]
    Read(String),
}

/// Folds one log into a state.
pub trait Fold: Send + Sync + 'static {
    /// The folded state.
    type State: Send + Sync + 'static;

    /// Applies the record at RedEX sequence `seq` to `state`.
    ///
    /// # Errors
    /// Any [`FoldError`]; what happens next is the adapter's [`ErrorPolicy`].
    fn apply(&self, state: &mut Self::State, seq: u64, record: &[u8]) -> Result<(), FoldError>;
}

/// Configuration of a fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FoldConfig {
    /// Where to start.
    pub start: StartPosition,
    /// What to do on a fold error.
    pub policy: ErrorPolicy,
    /// How many change notifications a slow `changes()` receiver may fall
    /// behind before it is told it lagged (0: 4096).
    pub changes_capacity: usize,
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    applied_through: Option<u64>,
    folded_through: Option<u64>,
    /// The seq the strict prefix needs next.
    expected_next: Option<u64>,
    /// The strict prefix is broken and can no longer advance.
    prefix_broken: bool,
    running: bool,
}

struct Shared<F: Fold> {
    fold: F,
    state: RwLock<F::State>,
    progress: Mutex<Progress>,
    progressed: Condvar,
    changes: Sender<u64>,
    errors: AtomicU64,
    last_error: Mutex<Option<FoldError>>,
}

impl<F: Fold> Shared<F> {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why [`CortexAdapter::wait_for_seq_cancellable`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitOutcome {
    /// The fold has attempted the seq.
    Reached,
    /// The timeout passed first.
    TimedOut,
    /// The fold stopped (halted on an error, or closed) short of the seq.
    Stopped,
    /// The call's token was cancelled.
    Cancelled,
}

/// A running fold of one RedEX file into `F::State`.
pub struct CortexAdapter<F: Fold> {
    shared: Arc<Shared<F>>,
    file: RedexFile,
    closer: TailCloser,
    worker: Mutex<Option<JoinHandle<()>>>,
    stopped: AtomicBool,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

impl<F: Fold> CortexAdapter<F> {
    /// Starts folding `file` into `initial`. `applied_through` is what the
    /// initial state already contains (a restored snapshot's `last_seq`).
    pub fn start(
        file: RedexFile,
        fold: F,
        initial: F::State,
        applied_through: Option<u64>,
        config: FoldConfig,
    ) -> Self {
        let from = match config.start {
            StartPosition::FromBeginning => file.first_seq().unwrap_or_else(|| file.next_seq()),
            StartPosition::LiveOnly => file.next_seq(),
            StartPosition::FromSeq(seq) => seq,
        };
        let capacity = if config.changes_capacity == 0 {
            4096
        } else {
            config.changes_capacity
        };
        let shared = Arc::new(Shared {
            fold,
            state: RwLock::new(initial),
            progress: Mutex::new(Progress {
                applied_through,
                folded_through: applied_through,
                expected_next: Some(from),
                prefix_broken: false,
                running: true,
            }),
            progressed: Condvar::new(),
            changes: broadcast::channel(capacity),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let mut tail = file.tail(from);
        let closer = tail.closer();
        let worker_shared = shared.clone();
        let policy = config.policy;
        let worker = std::thread::Builder::new()
            .name(format!("cortex-fold-{}", file.name()))
            .spawn(move || {
                let shared = worker_shared;
                while let Some(items) = next_items(&mut tail) {
                    if !fold_batch(&shared, items, policy) {
                        break;
                    }
                }
                shared.progress().running = false;
                shared.progressed.notify_all();
                shared.changes.close();
            });
        let worker = match worker {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "could not start a CortEX fold thread");
                shared.progress().running = false;
                None
            }
        };
        Self {
            shared,
            file,
            closer,
            worker: Mutex::new(worker),
            stopped: AtomicBool::new(false),
        }
    }

    /// The file being folded.
    pub fn file(&self) -> &RedexFile {
        &self.file
    }

    /// A read guard on the folded state.
    pub fn state(&self) -> RwLockReadGuard<'_, F::State> {
        self.shared.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the state together with `applied_through_seq`, consistently.
    pub fn with_state<R>(&self, read: impl FnOnce(&F::State, Option<u64>) -> R) -> R {
        let state = self.state();
        let applied = self.shared.progress().applied_through;
        read(&state, applied)
    }

    /// The strict-prefix watermark (see the module docs).
    pub fn applied_through_seq(&self) -> Option<u64> {
        self.shared.progress().applied_through
    }

    /// The live-progress watermark: the last seq the fold attempted.
    pub fn folded_through_seq(&self) -> Option<u64> {
        self.shared.progress().folded_through
    }

    /// False once the fold has halted (Stop policy) or the file closed.
    pub fn is_running(&self) -> bool {
        self.shared.progress().running
    }

    /// Fold errors seen so far (skipped or halting).
    pub fn error_count(&self) -> u64 {
        self.shared.errors.load(Ordering::Acquire)
    }

    /// The most recent fold error.
    pub fn last_error(&self) -> Option<FoldError> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the fold has *attempted* `seq` (`folded_through_seq >=
    /// seq`), up to `timeout`. Returns false on timeout, or at once if the fold
    /// has stopped short of `seq`. This reports progress: under LogAndContinue
    /// the event may have been skipped; check `applied_through_seq` for
    /// whether its state change landed.
    pub fn wait_for_seq(&self, seq: u64, timeout: Duration) -> bool {
        self.wait_for_seq_cancellable(seq, timeout, None) == WaitOutcome::Reached
    }

    /// [`wait_for_seq`](Self::wait_for_seq) that also gives up as soon as
    /// `cancel` is cancelled, and says why it returned.
    pub fn wait_for_seq_cancellable(
        &self,
        seq: u64,
        timeout: Duration,
        cancel: Option<&CancelToken>,
    ) -> WaitOutcome {
        // A timeout too large to add to now means "no limit".
        let deadline = Instant::now().checked_add(timeout);
        let _wake = cancel.map(|token| {
            let shared = self.shared.clone();
            token.on_cancel(move || {
                drop(shared.progress());
                shared.progressed.notify_all();
            })
        });
        let mut progress = self.shared.progress();
        loop {
            if progress.folded_through.is_some_and(|f| f >= seq) {
                return WaitOutcome::Reached;
            }
            if !progress.running {
                return WaitOutcome::Stopped;
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return WaitOutcome::Cancelled;
            }
            progress = match deadline {
                None => self
                    .shared
                    .progressed
                    .wait(progress)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return WaitOutcome::TimedOut;
                    }
                    self.shared
                        .progressed
                        .wait_timeout(progress, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// A receiver of the seqs that fold successfully from now on.
    pub fn changes(&self) -> Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Stops the fold thread (the file stays open). Idempotent.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.closer.close();
        if let Some(worker) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = worker.join();
        }
    }
}

/// Entries per fold batch: one state lock, one read and one wake-up each.
const FOLD_BATCH: usize = 1024;

/// The next items of the log, or `None` when it ended (or cannot be read:
/// then a `Read` error item is returned first).
fn next_items(tail: &mut crate::redex::RedexTail) -> Option<Vec<Result<TailItem, FoldError>>> {
    match tail.next_batch(None, FOLD_BATCH) {
        Ok(crate::redex::TailBatch::Items(items)) => Some(items.into_iter().map(Ok).collect()),
        Ok(_) => None,
        Err(e) => Some(vec![Err(FoldError::Read(e.to_string()))]),
    }
}

/// Folds a batch under one state lock and, before releasing it, publishes
/// the watermarks and the change notifications together. Returns false when the fold halts.
fn fold_batch<F: Fold>(
    shared: &Shared<F>,
    items: Vec<Result<TailItem, FoldError>>,
    policy: ErrorPolicy,
) -> bool {
    let mut expected = shared.progress().expected_next;
    let mut outcomes: Vec<(Option<u64>, Result<(), FoldError>)> = Vec::with_capacity(items.len());
    // The state lock is held until the watermarks cover the batch: a reader
    // of both (`with_state`, hence every snapshot) never sees events in the
    // state that `applied_through` does not claim yet, which a restore would
    // then apply twice. Lock order: state, then progress.
    let mut state = shared.state.write().unwrap_or_else(|e| e.into_inner());
    {
        for item in items {
            let (seq, result) = match item {
                Ok(TailItem::Entry(entry)) => {
                    // A hole in the log is corruption: report it before the
                    // entry after it (under Stop the fold halts there).
                    if let Some(want) = expected
                        && entry.seq > want
                    {
                        let gap = FoldError::Gap {
                            missed_from: want,
                            missed_to: entry.seq,
                        };
                        outcomes.push((Some(entry.seq - 1), Err(gap)));
                        if policy == ErrorPolicy::Stop {
                            break;
                        }
                    }
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        shared.fold.apply(&mut state, entry.seq, &entry.payload)
                    }))
                    .unwrap_or_else(|payload| {
                        Err(FoldError::Panicked {
                            seq: entry.seq,
                            message: panic_message(payload.as_ref()),
                        })
                    });
                    (Some(entry.seq), result)
                }
                Ok(TailItem::Lagged {
                    missed_from,
                    missed_to,
                }) => (
                    missed_to.checked_sub(1),
                    Err(FoldError::Lagged {
                        missed_from,
                        missed_to,
                    }),
                ),
                Err(e) => (None, Err(e)),
            };
            let failed = result.is_err();
            if let Some(seq) = seq {
                expected = seq.checked_add(1);
            }
            outcomes.push((seq, result));
            if failed && policy == ErrorPolicy::Stop {
                break;
            }
        }
    }
    let mut folded = Vec::with_capacity(outcomes.len());
    let mut keep_going = true;
    {
        let mut progress = shared.progress();
        for (seq, outcome) in outcomes {
            match outcome {
                Ok(()) => {
                    let seq = seq.unwrap_or(u64::MAX);
                    progress.folded_through = Some(seq);
                    if !progress.prefix_broken
                        && progress.expected_next.is_none_or(|next| next == seq)
                    {
                        progress.applied_through = Some(seq);
                    } else {
                        progress.prefix_broken = true;
                    }
                    progress.expected_next = seq.checked_add(1);
                    folded.push(seq);
                }
                Err(error) => {
                    shared.errors.fetch_add(1, Ordering::AcqRel);
                    progress.prefix_broken = true;
                    if policy == ErrorPolicy::Stop {
                        tracing::error!(%error, "CortEX fold halted (Stop policy)");
                        progress.running = false;
                        keep_going = false;
                    } else {
                        tracing::warn!(%error, "CortEX fold skipped an event (LogAndContinue)");
                        if let Some(seq) = seq {
                            progress.folded_through = Some(seq);
                            progress.expected_next = seq.checked_add(1);
                        }
                    }
                    *shared.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                    if !keep_going {
                        break;
                    }
                }
            }
        }
        // Broadcast while the watermarks are still locked: whoever sees
        // `applied_through` cover an event and then subscribes starts after
        // that event's notification, not before it.
        shared.changes.send_all(folded);
    }
    drop(state);
    shared.progressed.notify_all();
    keep_going
}

impl<F: Fold> Drop for CortexAdapter<F> {
    fn drop(&mut self) {
        self.stop();
    }
}

impl<F: Fold> std::fmt::Debug for CortexAdapter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let progress = *self.shared.progress();
        f.debug_struct("CortexAdapter")
            .field("file", &self.file.name())
            .field("applied_through_seq", &progress.applied_through)
            .field("folded_through_seq", &progress.folded_through)
            .field("running", &progress.running)
            .finish()
    }
}
