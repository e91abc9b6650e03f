//! Compute (COMPUTE.md §1–§2): daemons that run where their inputs are and
//! migrate between nodes without losing or repeating an event.
//!
//! Everything but [`runtime`] is pure: no sockets, no FFI, and no clocks
//! except explicit `now` arguments and the `*_now` conveniences.
//!
//! - [`daemon`]: the [`MeshDaemon`] contract, [`CausalEvent`], [`DaemonError`].
//! - [`host`]: [`DaemonHost`], one daemon with its keypair, chain head,
//!   observed horizon, subscription ledger and stats (§1.2).
//! - [`registry`]: [`DaemonRegistry`], the per-node map with the `Stale`
//!   guard and no orphan writes (§1.3, §8 item 10).
//! - [`factory`]: [`DaemonFactoryRegistry`], how a migration target builds a
//!   daemon locally (§1.4).
//! - [`snapshot`]: the v0.11 `CDS1` [`StateSnapshot`] bytes (§2.4) and the
//!   Net-only [`NetSnapshotExt`] (head payload, horizon, applied watermarks).
//! - [`ledger`]: the subscription ledger and its `bindings_bytes` (§1.8).
//! - [`foreign`]: [`ForeignDaemon`], a daemon whose code runs in an SDK,
//!   reached through the pull-based [`WorkBridge`] (§1.9, no callbacks).
//! - [`migration`]: the 0x0500 wire codec, chunking and reassembly, and the
//!   source and target replay buffers (§2.2–2.8).
//! - [`runtime`]: [`ComputeRuntime`], the node side — delivery and the
//!   migration state machines over the mesh (not pure: a worker thread).
//! - [`scheduler`]: placement by requirements and load (§1.5).
//! - [`groups`]: replica, fork and standby groups on distinct nodes (§3);
//!   pure records and logs apart from the parts that drive daemons.
//!
//! [`daemon`]: crate::compute::daemon
//! [`host`]: crate::compute::host
//! [`registry`]: crate::compute::registry
//! [`factory`]: crate::compute::factory
//! [`snapshot`]: crate::compute::snapshot
//! [`ledger`]: crate::compute::ledger
//! [`foreign`]: crate::compute::foreign
//! [`ForeignDaemon`]: crate::compute::ForeignDaemon
//! [`WorkBridge`]: crate::compute::WorkBridge
//! [`migration`]: crate::compute::migration
//! [`runtime`]: crate::compute::runtime
//! [`scheduler`]: crate::compute::scheduler
//! [`groups`]: crate::compute::groups
//! [`ComputeRuntime`]: crate::compute::ComputeRuntime
//! [`MeshDaemon`]: crate::compute::MeshDaemon
//! [`CausalEvent`]: crate::compute::CausalEvent
//! [`DaemonError`]: crate::compute::DaemonError
//! [`DaemonHost`]: crate::compute::DaemonHost
//! [`DaemonRegistry`]: crate::compute::DaemonRegistry
//! [`DaemonFactoryRegistry`]: crate::compute::DaemonFactoryRegistry
//! [`StateSnapshot`]: crate::compute::StateSnapshot
//! [`NetSnapshotExt`]: crate::compute::NetSnapshotExt

pub mod batch_records;
pub(crate) mod codec;
pub mod daemon;
pub mod factory;
pub mod foreign;
pub mod groups;
pub mod host;
pub mod ledger;
pub mod migration;
pub(crate) mod prefault;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod snapshot;

pub use batch_records::{BATCH_RECORD_HEADER, BatchRecords, RecordTooLarge};
pub use daemon::{AppliedOutputs, BatchWait, CausalEvent, DaemonError, MeshDaemon, Outputs};
pub use factory::{DaemonFactory, DaemonFactoryRegistry, FactoryEntry};
pub use foreign::{ForeignDaemon, WorkBridge, WorkError, WorkReply, WorkRequest};
pub use host::{BatchDelivered, DaemonHost, DaemonSnapshot, DaemonStats, ObservedHorizon};
pub use ledger::{LedgerError, SubscriptionLedger};
pub use registry::{ChangeWatch, DaemonRegistry};
pub use runtime::{
    BatchOutcome, ComputeError, ComputeRuntime, DeliveryOutcome, EventOutcome, LOAD_TAG_PREFIX,
    LedgerFollower, LentBatch, MigrationOptions, MigrationPhase, MigrationStatus,
    MigrationTransport, RuntimeConfig, SubscriptionError,
};
pub use scheduler::{
    Candidate, MIGRATION_TAG, Placement, PlacementError, PlacementReason, Scheduler,
    candidates_from_index,
};
pub use snapshot::{
    NetSnapshotExt, SNAPSHOT_STATE_OFFSET, SnapshotError, StateSnapshot, decode_migration_payload,
    decode_owned_migration_parts, encode_migration_payload,
};
