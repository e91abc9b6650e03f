//! NetDB: one handle over the CortEX tasks and memories models, with
//! whole-database snapshot bundles (COMPUTE.md §6, STORAGE.md §12).
//!
//! ```no_run
//! # use net::netdb::NetDb;
//! # use net::redex::Redex;
//! let redex = Redex::new();
//! let db = NetDb::builder(&redex).origin(7).with_tasks().with_memories().build()?;
//! let seq = db.tasks()?.create(1, "write the spec")?;
//! db.tasks()?.wait_for_seq(seq, std::time::Duration::from_secs(1));
//! let bundle = db.snapshot()?.encode();
//! db.close()?;
//!
//! let fresh = Redex::new();
//! let restored = NetDb::builder(&fresh).with_tasks().with_memories().build_from_bundle(&bundle)?;
//! # Ok::<(), net::netdb::NetDbError>(())
//! ```
//!
//! The models are the crate's [`TasksAdapter`] and [`MemoriesAdapter`]: a
//! NetDB adds no operation of its own to them. Where it departs from v0.11:
//!
//! * Opening is failure-atomic: when the memories model cannot open (or its
//!   fold cannot replay its log), the tasks model already opened is closed
//!   before the error returns, and the `Redex` can be used again at once.
//! * A bundle is cut at one point for both models ([`NetDb::snapshot`]).
//! * A bundle with a model the builder did not enable is an error
//!   ([`NetDbError::ModelNotIncluded`]), not silently dropped.
//! * A bundle restored into a log that lacks its events (a fresh redex)
//!   folds the events appended afterwards (v0.11 waits for seqs past the
//!   bundle's).
//! * The accessors return [`NetDbError::ModelNotIncluded`] for a model that
//!   is not enabled instead of panicking; `try_tasks` / `try_memories` return
//!   an `Option`.
//!
//! (The links name full paths: this module's docs are resolved from the
//! crate root, as `lib.rs` documents the module too.)
//!
//! [`TasksAdapter`]: crate::cortex::TasksAdapter
//! [`MemoriesAdapter`]: crate::cortex::MemoriesAdapter
//! [`NetDb::snapshot`]: crate::netdb::NetDb::snapshot
//! [`NetDbError::ModelNotIncluded`]: crate::netdb::NetDbError::ModelNotIncluded

mod bundle;

use std::sync::Mutex;
use std::time::Duration;

pub use bundle::NetDbBundle;
pub(crate) use bundle::{CutSource, consistent_bundle, fit_to_log};

use crate::cortex::{
    CortexError, ErrorPolicy, FoldConfig, MemoriesAdapter, MemoriesFold, ModelAdapter, ModelConfig,
    ModelFold, ModelSnapshot, TasksAdapter, TasksFold, WaitOutcome,
};
use crate::redex::{Redex, RedexFileConfig};

/// Errors of NetDB.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetDbError {
    /// A model failed (open, write, snapshot, close): see the CortEX error.
    #[error("cortex: {0}")]
    Cortex(#[from] CortexError),
    /// The named model ("tasks", "memories") is not enabled on this handle,
    /// or a bundle holds a model the builder did not enable. Enable it on
    /// the builder.
    #[error("netdb: the {0} model is not enabled on this NetDB (enable it on the builder)")]
    ModelNotIncluded(&'static str),
    /// `persistent` was asked of a `Redex` without a persistent directory.
    /// Use `Redex::with_persistent_dir`.
    #[error("netdb: persistent needs a Redex with a persistent directory")]
    NoPersistentDir,
    /// A model's fold stopped before it replayed its log (an event it cannot
    /// fold); nothing was left open. Repair or truncate the log.
    #[error("netdb: the {model} model's fold stopped while replaying its log: {reason}")]
    Replay {
        /// "tasks" or "memories".
        model: &'static str,
        /// The fold error.
        reason: String,
    },
}

/// How a [`NetDb`] is opened (COMPUTE.md §6): origin 0, in memory, no model,
/// unless set.
#[derive(Debug, Clone)]
#[must_use]
pub struct NetDbBuilder<'r> {
    redex: &'r Redex,
    origin_hash: u64,
    persistent: bool,
    tasks: bool,
    memories: bool,
    policy: ErrorPolicy,
}

/// Which models to open and from what: `None` not enabled, `Some(None)` a
/// fresh open, `Some(Some(snapshot))` a restore.
pub(crate) type OpenPlan = (Option<Option<ModelSnapshot>>, Option<Option<ModelSnapshot>>);

/// Checks a bundle against the enabled models and says what to open.
///
/// # Errors
/// [`NetDbError::ModelNotIncluded`] when the bundle has a model that is not
/// enabled.
pub(crate) fn plan(
    tasks: bool,
    memories: bool,
    bundle: Option<NetDbBundle>,
) -> Result<OpenPlan, NetDbError> {
    let NetDbBundle {
        tasks: tasks_snapshot,
        memories: memories_snapshot,
    } = bundle.unwrap_or_default();
    if tasks_snapshot.is_some() && !tasks {
        return Err(NetDbError::ModelNotIncluded(TasksFold::NAME));
    }
    if memories_snapshot.is_some() && !memories {
        return Err(NetDbError::ModelNotIncluded(MemoriesFold::NAME));
    }
    Ok((
        tasks.then_some(tasks_snapshot),
        memories.then_some(memories_snapshot),
    ))
}

/// Opens the planned models, tasks first. When memories fails, the opened
/// tasks model is handed to `discard` before the error returns.
pub(crate) fn open_planned<T, M, E>(
    plan: OpenPlan,
    open_tasks: impl FnOnce(Option<ModelSnapshot>) -> Result<T, E>,
    open_memories: impl FnOnce(Option<ModelSnapshot>) -> Result<M, E>,
    discard: impl FnOnce(T),
) -> Result<(Option<T>, Option<M>), E> {
    let (tasks_plan, memories_plan) = plan;
    let tasks = tasks_plan.map(open_tasks).transpose()?;
    match memories_plan.map(open_memories).transpose() {
        Ok(memories) => Ok((tasks, memories)),
        Err(e) => {
            if let Some(tasks) = tasks {
                discard(tasks);
            }
            Err(e)
        }
    }
}

impl<'r> NetDbBuilder<'r> {
    /// The writer origin stamped on every event (default 0).
    pub fn origin(mut self, origin_hash: u64) -> Self {
        self.origin_hash = origin_hash;
        self
    }

    /// Keep the models on disk, under the redex's persistent directory
    /// (default false: in memory).
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// Open the tasks model.
    pub fn with_tasks(mut self) -> Self {
        self.tasks = true;
        self
    }

    /// Open the memories model.
    pub fn with_memories(mut self) -> Self {
        self.memories = true;
        self
    }

    /// What the folds do with an event they cannot apply (default
    /// [`ErrorPolicy::Stop`]: then opening a log with such an event fails).
    pub fn policy(mut self, policy: ErrorPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Opens the enabled models (tasks, then memories), each replaying its
    /// log to the tail before this returns.
    ///
    /// # Errors
    /// [`NetDbError::NoPersistentDir`]; [`NetDbError::Cortex`] when a file
    /// cannot be opened; [`NetDbError::Replay`] when a fold stops on its log.
    /// Nothing stays open after an error.
    pub fn build(self) -> Result<NetDb, NetDbError> {
        self.open(None)
    }

    /// Opens from a bundle ([`NetDb::snapshot`]): each model in it is
    /// restored (then folds the events after it), each enabled model not in
    /// it opens fresh.
    ///
    /// # Errors
    /// [`NetDbError::ModelNotIncluded`] when the bundle holds a model that is
    /// not enabled; [`NetDbError::Cortex`] with [`CortexError::Snapshot`]
    /// when the bundle does not decode; as [`build`](Self::build).
    pub fn build_from_bundle(self, bundle: &[u8]) -> Result<NetDb, NetDbError> {
        let bundle = NetDbBundle::decode(bundle)?;
        self.open(Some(bundle))
    }

    /// [`build_from_bundle`](Self::build_from_bundle) from a decoded bundle.
    ///
    /// # Errors
    /// As [`build_from_bundle`](Self::build_from_bundle).
    pub fn build_from(self, bundle: NetDbBundle) -> Result<NetDb, NetDbError> {
        self.open(Some(bundle))
    }

    fn open(self, bundle: Option<NetDbBundle>) -> Result<NetDb, NetDbError> {
        if self.persistent && self.redex.base_dir().is_none() {
            return Err(NetDbError::NoPersistentDir);
        }
        let plan = plan(self.tasks, self.memories, bundle)?;
        let config = ModelConfig {
            file: if self.persistent {
                RedexFileConfig::persistent()
            } else {
                RedexFileConfig::default()
            },
            fold: FoldConfig {
                policy: self.policy,
                ..FoldConfig::default()
            },
        };
        let (tasks, memories) = open_planned(
            plan,
            |s| open_model::<TasksFold>(self.redex, self.origin_hash, config, s),
            |s| open_model::<MemoriesFold>(self.redex, self.origin_hash, config, s),
            discard,
        )?;
        Ok(NetDb {
            tasks,
            memories,
            closed: Mutex::new(false),
        })
    }
}

/// Closes a model that will not be handed out, logging a failure.
fn discard<F: ModelFold>(model: ModelAdapter<F>) {
    if let Err(e) = model.close() {
        tracing::warn!(model = F::NAME, error = %e, "closing a NetDB model after a failed open");
    }
}

/// Opens or restores one model and waits until its fold has replayed the
/// log to its tail; closes it again when that fails.
fn open_model<F: ModelFold>(
    redex: &Redex,
    origin_hash: u64,
    config: ModelConfig,
    snapshot: Option<ModelSnapshot>,
) -> Result<ModelAdapter<F>, NetDbError> {
    let model = match snapshot {
        None => ModelAdapter::<F>::open(redex, origin_hash, config)?,
        Some(snapshot) => {
            // Kept open across the restore: a memory file lives while held.
            let file = redex
                .open_file(F::CHANNEL, config.file)
                .map_err(CortexError::from)?;
            let snapshot = fit_to_log(&snapshot, file.next_seq());
            ModelAdapter::<F>::restore(redex, origin_hash, config, &snapshot)?
        }
    };
    let replayed = match model.file().next_seq().checked_sub(1) {
        None => WaitOutcome::Reached,
        Some(last) => model
            .adapter()
            .wait_for_seq_cancellable(last, Duration::MAX, None),
    };
    if replayed == WaitOutcome::Reached {
        return Ok(model);
    }
    let reason = model
        .adapter()
        .last_error()
        .map_or_else(|| "the fold is not running".to_owned(), |e| e.to_string());
    discard(model);
    Err(NetDbError::Replay {
        model: F::NAME,
        reason,
    })
}

/// The tasks and memories models behind one handle, snapshotted together.
/// Thread-safe: share it by reference or in an `Arc`.
#[derive(Debug)]
pub struct NetDb {
    tasks: Option<TasksAdapter>,
    memories: Option<MemoriesAdapter>,
    closed: Mutex<bool>,
}

impl NetDb {
    /// A builder over `redex` (COMPUTE.md §6 defaults: origin 0, in memory,
    /// no model).
    pub fn builder(redex: &Redex) -> NetDbBuilder<'_> {
        NetDbBuilder {
            redex,
            origin_hash: 0,
            persistent: false,
            tasks: false,
            memories: false,
            policy: ErrorPolicy::Stop,
        }
    }

    /// The tasks model: its writes, queries, waits and watches.
    ///
    /// # Errors
    /// [`NetDbError::ModelNotIncluded`] when it is not enabled.
    pub fn tasks(&self) -> Result<&TasksAdapter, NetDbError> {
        self.try_tasks()
            .ok_or(NetDbError::ModelNotIncluded(TasksFold::NAME))
    }

    /// The memories model: its writes, queries, waits and watches.
    ///
    /// # Errors
    /// [`NetDbError::ModelNotIncluded`] when it is not enabled.
    pub fn memories(&self) -> Result<&MemoriesAdapter, NetDbError> {
        self.try_memories()
            .ok_or(NetDbError::ModelNotIncluded(MemoriesFold::NAME))
    }

    /// The tasks model, if enabled.
    pub fn try_tasks(&self) -> Option<&TasksAdapter> {
        self.tasks.as_ref()
    }

    /// The memories model, if enabled.
    pub fn try_memories(&self) -> Option<&MemoriesAdapter> {
        self.memories.as_ref()
    }

    /// A bundle of both models cut at one point: every write that returned
    /// before this call is in it, and a write in it comes with every write
    /// (to either model) that returned before that write began. A model's
    /// part stops before an event its fold cannot apply. Encode it with
    /// [`NetDbBundle::encode`].
    ///
    /// # Errors
    /// [`NetDbError::Cortex`] when a log cannot be read.
    pub fn snapshot(&self) -> Result<NetDbBundle, NetDbError> {
        let tasks_take = self.tasks.as_ref().map(|m| move || m.snapshot());
        let memories_take = self.memories.as_ref().map(|m| move || m.snapshot());
        let tasks = self
            .tasks
            .as_ref()
            .zip(tasks_take.as_ref())
            .map(|(m, take)| CutSource {
                file: m.file().clone(),
                origin_hash: m.origin_hash(),
                take,
            });
        let memories =
            (self.memories.as_ref().zip(memories_take.as_ref())).map(|(m, take)| CutSource {
                file: m.file().clone(),
                origin_hash: m.origin_hash(),
                take,
            });
        Ok(consistent_bundle::<TasksFold, MemoriesFold, CortexError>(
            tasks, memories,
        )?)
    }

    /// Closes both models (tasks first): their folds stop and their files
    /// close, syncing. Returns the first error and logs the second.
    /// Idempotent: later calls return `Ok`.
    ///
    /// # Errors
    /// The first close that failed.
    pub fn close(&self) -> Result<(), NetDbError> {
        let mut closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if std::mem::replace(&mut *closed, true) {
            return Ok(());
        }
        let tasks = self.tasks.as_ref().map_or(Ok(()), ModelAdapter::close);
        let memories = self.memories.as_ref().map_or(Ok(()), ModelAdapter::close);
        match (tasks, memories) {
            (Err(first), second) => {
                if let Err(second) = second {
                    tracing::warn!(error = %second, "closing the NetDB memories model also failed");
                }
                Err(first.into())
            }
            (Ok(()), second) => Ok(second?),
        }
    }

    /// Whether the enabled models' folds are all running (false after
    /// `close`, or once a fold halted).
    pub fn is_running(&self) -> bool {
        self.tasks.as_ref().is_none_or(|m| m.adapter().is_running())
            && self
                .memories
                .as_ref()
                .is_none_or(|m| m.adapter().is_running())
    }
}

impl Drop for NetDb {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "closing a dropped NetDB");
        }
    }
}
