//! The tasks model (STORAGE.md §11.3): dispatch 0x01–0x04 on `cortex/tasks`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::adapter::{CortexAdapter, Fold, FoldError};
use super::meta::EventMeta;
use super::model::{CortexError, Model, ModelConfig, ModelSnapshot, ModelState, Watch, page};
use crate::redex::{Redex, RedexFile};

/// The RedEX channel of the tasks model.
pub const TASKS_CHANNEL: &str = "cortex/tasks";
/// TaskCreated.
pub const TASK_CREATED: u8 = 0x01;
/// TaskRenamed.
pub const TASK_RENAMED: u8 = 0x02;
/// TaskCompleted.
pub const TASK_COMPLETED: u8 = 0x03;
/// TaskDeleted.
pub const TASK_DELETED: u8 = 0x04;

/// A task's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Not done yet (postcard variant 0).
    Pending,
    /// Done (postcard variant 1).
    Completed,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Caller-chosen id.
    pub id: u64,
    /// Title.
    pub title: String,
    /// Status.
    pub status: TaskStatus,
    /// When it was created (UNIX ns, as written).
    pub created_ns: u64,
    /// When it last changed (UNIX ns, as written).
    pub updated_ns: u64,
}

/// The folded state: every live task by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TasksState {
    /// Tasks by id.
    pub tasks: BTreeMap<u64, Task>,
}

impl ModelState for TasksState {}

#[derive(Serialize, Deserialize)]
struct Created {
    id: u64,
    title: String,
    now_ns: u64,
}

#[derive(Serialize, Deserialize)]
struct Renamed {
    id: u64,
    new_title: String,
    now_ns: u64,
}

#[derive(Serialize, Deserialize)]
struct Completed {
    id: u64,
    now_ns: u64,
}

#[derive(Serialize, Deserialize)]
struct Deleted {
    id: u64,
}

/// The tasks fold.
#[derive(Debug, Default)]
pub struct TasksFold;

pub(crate) fn decode<'a, T: Deserialize<'a>>(
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

pub(crate) fn parse(seq: u64, record: &[u8]) -> Result<(EventMeta, &[u8]), FoldError> {
    let (meta, tail, _) = EventMeta::parse_record(record).map_err(|e| FoldError::Corrupt {
        seq,
        reason: e.to_string(),
    })?;
    Ok((meta, tail))
}

impl Fold for TasksFold {
    type State = TasksState;

    fn apply(&self, state: &mut TasksState, seq: u64, record: &[u8]) -> Result<(), FoldError> {
        let (meta, tail) = parse(seq, record)?;
        let tasks = &mut state.tasks;
        match meta.dispatch {
            TASK_CREATED => {
                let e: Created = decode(seq, meta.dispatch, tail)?;
                tasks.insert(
                    e.id,
                    Task {
                        id: e.id,
                        title: e.title,
                        status: TaskStatus::Pending,
                        created_ns: e.now_ns,
                        updated_ns: e.now_ns,
                    },
                );
            }
            TASK_RENAMED => {
                let e: Renamed = decode(seq, meta.dispatch, tail)?;
                if let Some(task) = tasks.get_mut(&e.id) {
                    task.title = e.new_title;
                    task.updated_ns = e.now_ns;
                }
            }
            TASK_COMPLETED => {
                let e: Completed = decode(seq, meta.dispatch, tail)?;
                if let Some(task) = tasks.get_mut(&e.id) {
                    task.status = TaskStatus::Completed;
                    task.updated_ns = e.now_ns;
                }
            }
            TASK_DELETED => {
                let e: Deleted = decode(seq, meta.dispatch, tail)?;
                tasks.remove(&e.id);
            }
            other => tracing::debug!(
                seq,
                dispatch = other,
                "tasks: ignoring a record of another dispatch"
            ),
        }
        Ok(())
    }
}

/// Sort order of a task query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskOrder {
    /// By id, ascending (the default).
    #[default]
    IdAsc,
    /// By id, descending.
    IdDesc,
    /// By creation time, oldest first (ties by id).
    CreatedAsc,
    /// By creation time, newest first.
    CreatedDesc,
    /// By last change, oldest first.
    UpdatedAsc,
    /// By last change, newest first.
    UpdatedDesc,
    /// By title, then id.
    TitleAsc,
    /// By title descending, then id.
    TitleDesc,
}

/// A filter, order and page over tasks. Every filter is optional; all set
/// filters must match. The JSON form (for the C ABI) uses the same names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskQuery {
    /// Only these ids.
    pub ids: Option<Vec<u64>>,
    /// Only this status.
    pub status: Option<TaskStatus>,
    /// Title contains this text (case-sensitive).
    pub title_contains: Option<String>,
    /// Created at or after (UNIX ns).
    pub created_after: Option<u64>,
    /// Created before (UNIX ns).
    pub created_before: Option<u64>,
    /// Last changed at or after (UNIX ns).
    pub updated_after: Option<u64>,
    /// Last changed before (UNIX ns).
    pub updated_before: Option<u64>,
    /// Sort order (default: id ascending).
    pub order_by: Option<TaskOrder>,
    /// Skip this many results.
    pub offset: Option<usize>,
    /// At most this many results.
    pub limit: Option<usize>,
}

impl TaskQuery {
    /// Matches every task.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only tasks with this status.
    #[must_use]
    pub fn status(mut self, status: TaskStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only tasks whose title contains `text`.
    #[must_use]
    pub fn title_contains(mut self, text: impl Into<String>) -> Self {
        self.title_contains = Some(text.into());
        self
    }

    /// Only these ids.
    #[must_use]
    pub fn ids(mut self, ids: impl IntoIterator<Item = u64>) -> Self {
        self.ids = Some(ids.into_iter().collect());
        self
    }

    /// Created in `[from, to)` (UNIX ns; either bound optional).
    #[must_use]
    pub fn created_between(mut self, from: Option<u64>, to: Option<u64>) -> Self {
        self.created_after = from;
        self.created_before = to;
        self
    }

    /// Last changed in `[from, to)`.
    #[must_use]
    pub fn updated_between(mut self, from: Option<u64>, to: Option<u64>) -> Self {
        self.updated_after = from;
        self.updated_before = to;
        self
    }

    /// Sort order.
    #[must_use]
    pub fn order_by(mut self, order: TaskOrder) -> Self {
        self.order_by = Some(order);
        self
    }

    /// Skip the first `n` results.
    #[must_use]
    pub fn offset(mut self, n: usize) -> Self {
        self.offset = Some(n);
        self
    }

    /// Return at most `n` results.
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Whether `task` passes every filter.
    pub fn matches(&self, task: &Task) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&task.id))
            && self.status.is_none_or(|s| s == task.status)
            && self
                .title_contains
                .as_ref()
                .is_none_or(|t| task.title.contains(t.as_str()))
            && self.created_after.is_none_or(|t| task.created_ns >= t)
            && self.created_before.is_none_or(|t| task.created_ns < t)
            && self.updated_after.is_none_or(|t| task.updated_ns >= t)
            && self.updated_before.is_none_or(|t| task.updated_ns < t)
    }

    /// Runs the query over a state.
    pub fn run(&self, state: &TasksState) -> Vec<Task> {
        let mut rows: Vec<&Task> = match &self.ids {
            // Point lookups without a scan.
            Some(ids) => ids
                .iter()
                .filter_map(|id| state.tasks.get(id))
                .filter(|t| self.matches(t))
                .collect(),
            None => state.tasks.values().filter(|t| self.matches(t)).collect(),
        };
        let order = self.order_by.unwrap_or_default();
        match order {
            TaskOrder::IdAsc => rows.sort_by_key(|t| t.id),
            TaskOrder::IdDesc => rows.sort_by_key(|t| std::cmp::Reverse(t.id)),
            TaskOrder::CreatedAsc => rows.sort_by_key(|t| (t.created_ns, t.id)),
            TaskOrder::CreatedDesc => rows.sort_by_key(|t| std::cmp::Reverse((t.created_ns, t.id))),
            TaskOrder::UpdatedAsc => rows.sort_by_key(|t| (t.updated_ns, t.id)),
            TaskOrder::UpdatedDesc => rows.sort_by_key(|t| std::cmp::Reverse((t.updated_ns, t.id))),
            TaskOrder::TitleAsc => rows.sort_by(|a, b| (&a.title, a.id).cmp(&(&b.title, b.id))),
            TaskOrder::TitleDesc => rows.sort_by(|a, b| (&b.title, b.id).cmp(&(&a.title, a.id))),
        }
        // Sort references; clone only the page.
        page(rows, self.offset, self.limit)
            .into_iter()
            .cloned()
            .collect()
    }
}

/// The tasks model over a RedEX file: typed writes, queries, watches and
/// snapshots. `origin_hash` identifies this writer (IDENTITY.md §2).
pub struct TasksAdapter {
    model: Model<TasksFold>,
}

/// A live task query.
pub type TasksWatch = Watch<TasksFold, Task>;

impl TasksAdapter {
    /// Opens `cortex/tasks` on `redex` and folds it from the start.
    ///
    /// # Errors
    /// [`CortexError::Redex`] when the file cannot be opened.
    pub fn open(redex: &Redex, origin_hash: u64, config: ModelConfig) -> Result<Self, CortexError> {
        Ok(Self {
            model: Model::open(redex, TASKS_CHANNEL, origin_hash, config, TasksFold)?,
        })
    }

    /// Opens from a snapshot: its state, then the events after it.
    ///
    /// # Errors
    /// [`CortexError::Snapshot`] when the bytes do not decode; as [`open`](Self::open).
    pub fn restore(
        redex: &Redex,
        origin_hash: u64,
        config: ModelConfig,
        snapshot: &ModelSnapshot,
    ) -> Result<Self, CortexError> {
        Ok(Self {
            model: Model::restore(
                redex,
                TASKS_CHANNEL,
                origin_hash,
                config,
                TasksFold,
                snapshot,
            )?,
        })
    }

    /// This writer's origin.
    pub fn origin_hash(&self) -> u64 {
        self.model.origin_hash()
    }

    /// The app seq the next write will carry.
    pub fn app_seq(&self) -> u64 {
        self.model.app_seq()
    }

    /// The fold driver (watermarks, changes, state).
    pub fn adapter(&self) -> &CortexAdapter<TasksFold> {
        &self.model.adapter
    }

    /// The RedEX file.
    pub fn file(&self) -> &RedexFile {
        self.model.adapter.file()
    }

    /// Creates (or overwrites) task `id`; returns the RedEX seq of the event.
    ///
    /// # Errors
    /// [`CortexError::NotRunning`] when the fold has stopped; RedEX append errors.
    pub fn create(&self, id: u64, title: &str) -> Result<u64, CortexError> {
        self.create_at(id, title, crate::redex::now_ns())
    }

    /// [`create`](Self::create) with an explicit timestamp (UNIX ns).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_at(&self, id: u64, title: &str, now_ns: u64) -> Result<u64, CortexError> {
        self.model.write(
            TASK_CREATED,
            &Created {
                id,
                title: title.to_owned(),
                now_ns,
            },
        )
    }

    /// Renames task `id` (no effect if it does not exist).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn rename(&self, id: u64, new_title: &str) -> Result<u64, CortexError> {
        self.rename_at(id, new_title, crate::redex::now_ns())
    }

    /// [`rename`](Self::rename) with an explicit timestamp.
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn rename_at(&self, id: u64, new_title: &str, now_ns: u64) -> Result<u64, CortexError> {
        self.model.write(
            TASK_RENAMED,
            &Renamed {
                id,
                new_title: new_title.to_owned(),
                now_ns,
            },
        )
    }

    /// Marks task `id` completed (no effect if it does not exist).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn complete(&self, id: u64) -> Result<u64, CortexError> {
        self.complete_at(id, crate::redex::now_ns())
    }

    /// [`complete`](Self::complete) with an explicit timestamp.
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn complete_at(&self, id: u64, now_ns: u64) -> Result<u64, CortexError> {
        self.model.write(TASK_COMPLETED, &Completed { id, now_ns })
    }

    /// Deletes task `id`.
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn delete(&self, id: u64) -> Result<u64, CortexError> {
        self.model.write(TASK_DELETED, &Deleted { id })
    }

    /// Waits until the fold has attempted `seq` (see
    /// [`CortexAdapter::wait_for_seq`]).
    pub fn wait_for_seq(&self, seq: u64, timeout: std::time::Duration) -> bool {
        self.model.adapter.wait_for_seq(seq, timeout)
    }

    /// Task `id`, if it exists.
    pub fn find_unique(&self, id: u64) -> Option<Task> {
        self.model.adapter.state().tasks.get(&id).cloned()
    }

    /// The tasks matching `query`, ordered and paged.
    pub fn find_many(&self, query: &TaskQuery) -> Vec<Task> {
        query.run(&self.model.adapter.state())
    }

    /// How many tasks match `query`'s filters (order and paging ignored).
    pub fn count_where(&self, query: &TaskQuery) -> usize {
        self.model
            .adapter
            .state()
            .tasks
            .values()
            .filter(|t| query.matches(t))
            .count()
    }

    /// Whether any task matches `query`'s filters.
    pub fn exists_where(&self, query: &TaskQuery) -> bool {
        self.model
            .adapter
            .state()
            .tasks
            .values()
            .any(|t| query.matches(t))
    }

    /// A live query: the current result, then every change to it.
    pub fn watch(&self, query: TaskQuery) -> TasksWatch {
        Watch::new(self.model.adapter.clone(), Box::new(move |s| query.run(s)))
    }

    /// The current result and a watch of later changes, with nothing lost in between.
    pub fn snapshot_and_watch(&self, query: TaskQuery) -> (Vec<Task>, TasksWatch) {
        Watch::snapshot_and_watch(self.model.adapter.clone(), Box::new(move |s| query.run(s)))
    }

    /// A snapshot (state, app seq, and the strict-prefix watermark).
    ///
    /// # Errors
    /// [`CortexError::Encode`] (should not happen for this model).
    pub fn snapshot(&self) -> Result<ModelSnapshot, CortexError> {
        self.model.snapshot()
    }

    /// Stops the fold and closes the file (syncing it).
    ///
    /// # Errors
    /// RedEX close errors.
    pub fn close(&self) -> Result<(), CortexError> {
        self.model.close()
    }
}

impl std::fmt::Debug for TasksAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TasksAdapter")
            .field("origin_hash", &format_args!("{:#018x}", self.origin_hash()))
            .field("adapter", &self.model.adapter)
            .finish()
    }
}
