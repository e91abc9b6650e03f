//! The tasks model (STORAGE.md §11.3): dispatch 0x01–0x04 on `cortex/tasks`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::adapter::{Fold, FoldError};
use super::model::{
    CortexError, ModelAdapter, ModelFold, ModelQuery, ModelState, ModelWatch, decode_deleted,
    decode_event, parse_event, sealed,
};

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

impl sealed::Sealed for TasksState {}

impl ModelState for TasksState {
    type Row = Task;

    fn rows(&self) -> &BTreeMap<u64, Task> {
        &self.tasks
    }
}

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

/// The tasks fold, and the tasks model's kind (`ModelAdapter<TasksFold>`).
#[derive(Debug, Default)]
pub struct TasksFold;

impl sealed::Sealed for TasksFold {}

impl ModelFold for TasksFold {
    type Query = TaskQuery;
    const NAME: &'static str = "tasks";
    const CHANNEL: &'static str = TASKS_CHANNEL;
    const DELETED: u8 = TASK_DELETED;
}

impl Fold for TasksFold {
    type State = TasksState;

    fn apply(&self, state: &mut TasksState, seq: u64, record: &[u8]) -> Result<(), FoldError> {
        let (meta, tail) = parse_event(seq, record)?;
        let tasks = &mut state.tasks;
        match meta.dispatch {
            TASK_CREATED => {
                let e: Created = decode_event(seq, meta.dispatch, tail)?;
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
                let e: Renamed = decode_event(seq, meta.dispatch, tail)?;
                if let Some(task) = tasks.get_mut(&e.id) {
                    task.title = e.new_title;
                    task.updated_ns = e.now_ns;
                }
            }
            TASK_COMPLETED => {
                let e: Completed = decode_event(seq, meta.dispatch, tail)?;
                if let Some(task) = tasks.get_mut(&e.id) {
                    task.status = TaskStatus::Completed;
                    task.updated_ns = e.now_ns;
                }
            }
            TASK_DELETED => {
                tasks.remove(&decode_deleted(seq, meta.dispatch, tail)?);
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
    /// Title contains this text, ignoring case (Unicode lowercase; ASCII
    /// without allocating).
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

    /// Only tasks whose title contains `text`, ignoring case.
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
}

/// Whether `haystack` contains `needle`, ignoring case: byte windows for
/// ASCII text, Unicode lowercase otherwise (COMPUTE.md §6: the title
/// filter is case-insensitive).
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if haystack.is_ascii() && needle.is_ascii() {
        return haystack
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()));
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

impl sealed::Sealed for TaskQuery {}

impl ModelQuery for TaskQuery {
    type State = TasksState;

    fn matches(&self, task: &Task) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&task.id))
            && self.status.is_none_or(|s| s == task.status)
            && self
                .title_contains
                .as_ref()
                .is_none_or(|t| contains_ignore_case(&task.title, t))
            && self.created_after.is_none_or(|t| task.created_ns >= t)
            && self.created_before.is_none_or(|t| task.created_ns < t)
            && self.updated_after.is_none_or(|t| task.updated_ns >= t)
            && self.updated_before.is_none_or(|t| task.updated_ns < t)
    }

    fn id_filter(&self) -> Option<&[u64]> {
        self.ids.as_deref()
    }

    fn sort_rows(&self, rows: &mut [&Task]) {
        match self.order_by.unwrap_or_default() {
            TaskOrder::IdAsc => rows.sort_by_key(|t| t.id),
            TaskOrder::IdDesc => rows.sort_by_key(|t| std::cmp::Reverse(t.id)),
            TaskOrder::CreatedAsc => rows.sort_by_key(|t| (t.created_ns, t.id)),
            TaskOrder::CreatedDesc => rows.sort_by_key(|t| std::cmp::Reverse((t.created_ns, t.id))),
            TaskOrder::UpdatedAsc => rows.sort_by_key(|t| (t.updated_ns, t.id)),
            TaskOrder::UpdatedDesc => rows.sort_by_key(|t| std::cmp::Reverse((t.updated_ns, t.id))),
            TaskOrder::TitleAsc => rows.sort_by(|a, b| (&a.title, a.id).cmp(&(&b.title, b.id))),
            TaskOrder::TitleDesc => rows.sort_by(|a, b| (&b.title, b.id).cmp(&(&a.title, a.id))),
        }
    }

    fn page_bounds(&self) -> (Option<usize>, Option<usize>) {
        (self.offset, self.limit)
    }
}

/// The tasks model over a RedEX file: the generic [`ModelAdapter`] (open,
/// restore, `delete`, queries, watches, snapshots, close) plus the task
/// writes below. `origin_hash` identifies this writer (IDENTITY.md §2).
pub type TasksAdapter = ModelAdapter<TasksFold>;

/// A live task query.
pub type TasksWatch = ModelWatch<TasksFold>;

/// The writes particular to tasks.
impl ModelAdapter<TasksFold> {
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
        self.write(
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
        self.write(
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
        self.write(TASK_COMPLETED, &Completed { id, now_ns })
    }
}
