//! CortEX: folded, queryable state over RedEX logs (STORAGE.md §10–16).
//!
//! Writers append typed events, each prefixed with a 24-byte
//! [`EventMeta`](crate::cortex::EventMeta);
//! a [`CortexAdapter`](crate::cortex::CortexAdapter) folds the log into in-memory state on its own thread;
//! readers query the state, wait for their writes (`wait_for_seq`), watch
//! query results change, and snapshot. The tasks and memories models are
//! byte-compatible with Net v0.11. See `docs/cortex.md`.
//!
//! A model is one generic [`ModelAdapter<F>`](crate::cortex::ModelAdapter)
//! over its kind `F` ([`ModelFold`](crate::cortex::ModelFold): fold, state,
//! query, channel); a kind's own writes are inherent methods of its
//! instantiation ([`TasksAdapter`](crate::cortex::TasksAdapter) =
//! `ModelAdapter<TasksFold>`, [`MemoriesAdapter`](crate::cortex::MemoriesAdapter)
//! = `ModelAdapter<MemoriesFold>`).

mod adapter;
pub mod broadcast;
pub mod causal;
mod memories;
pub mod meta;
mod model;
mod snapshot;
mod tasks;

pub use adapter::{
    CortexAdapter, ErrorPolicy, Fold, FoldConfig, FoldError, StartPosition, WaitOutcome,
};
pub use memories::{
    MEMORIES_CHANNEL, MEMORY_DELETED, MEMORY_PINNED, MEMORY_RETAGGED, MEMORY_STORED,
    MEMORY_UNPINNED, MemoriesAdapter, MemoriesFold, MemoriesState, MemoriesWatch, Memory,
    MemoryOrder, MemoryQuery,
};
pub use meta::{
    EVENT_META_SIZE, EventMeta, MetaError, compute_checksum, compute_checksum_with_meta,
};
pub use model::{
    CortexError, ModelAdapter, ModelConfig, ModelFold, ModelQuery, ModelRow, ModelSnapshot,
    ModelState, ModelWatch, Watch, WatchEvent, WatchPoll,
};
pub use snapshot::{SnapshotError, SnapshotStore, StoredSnapshot};
pub use tasks::{
    TASK_COMPLETED, TASK_CREATED, TASK_DELETED, TASK_RENAMED, TASKS_CHANNEL, Task, TaskOrder,
    TaskQuery, TaskStatus, TasksAdapter, TasksFold, TasksState, TasksWatch,
};
