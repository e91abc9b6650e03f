//! Groups of daemons (COMPUTE.md §3): replica groups, fork groups and
//! standby groups, placed by the [`Scheduler`](crate::compute::Scheduler)
//! on **distinct** nodes of a [`GroupCluster`].
//!
//! Pure parts (no I/O, no clocks):
//! - [`fork`]: [`ForkRecord`] (65 bytes, lineage of a fork) and the fork
//!   genesis sentinel;
//! - [`members`]: member identities, member records, [`GroupHealth`], and
//!   the standby [`ReplayLog`] keyed by (producer, sequence).
//!
//! Node-driven parts (they act on daemons through a [`GroupCluster`]):
//! - [`cluster`]: the [`GroupCluster`] seam and [`RuntimeCluster`] over
//!   compute runtimes;
//! - [`set`]: the members of a replica or fork group, their placement and
//!   their load-balanced routing;
//! - [`replica`]: [`ReplicaGroup`]; [`forks`]: [`ForkGroup`];
//!   [`standby`]: [`StandbyGroup`];
//! - [`watch`]: [`watch_failures`], a group following a mesh node's
//!   failure detector by itself.
//!
//! Groups take `&mut self` to change membership and `&self` to route;
//! share one behind a lock if several threads do both.

pub mod cluster;
pub mod fork;
pub mod forks;
pub mod members;
pub mod replica;
pub mod set;
pub mod standby;
pub mod watch;

use std::sync::Arc;

use crate::compute::daemon::{DaemonError, MeshDaemon};
use crate::compute::migration::FailureReason;
use crate::compute::runtime::ComputeError;

pub use cluster::{GroupCluster, RuntimeCluster};
pub use fork::{FORK_RECORD_SIZE, ForkRecord, ForkRecordError, fork_genesis, fork_sentinel};
pub use forks::ForkGroup;
pub use members::{GroupHealth, MAX_MEMBERS, MemberInfo, ReplayLog};
pub use replica::ReplicaGroup;
pub use standby::{StandbyGroup, SyncReport};
pub use watch::{FailureWatch, NodeFailures, WatchedGroup, watch_failures};

/// Builds a fresh daemon of a group's kind (called once per member
/// placed, and once to read the kind's requirements).
pub type DaemonMaker = Arc<dyn Fn() -> Box<dyn MeshDaemon> + Send + Sync>;

/// Why a group operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// A member count is out of range (replicas and forks 1–255, standby
    /// groups 2–255); nothing was changed.
    #[error("invalid group config: {0}")]
    InvalidConfig(String),
    /// No node can take a member: none matches the requirements outside
    /// the nodes the group already uses or knows to have failed. An
    /// operation that placed some members first removed them again.
    #[error("placement failed: {0}")]
    PlacementFailed(String),
    /// No member can take the event (all unhealthy, or every circuit open).
    #[error("no healthy member")]
    NoHealthyMember,
    /// The cluster does not know this node.
    #[error("unknown node {0:#018x}")]
    UnknownNode(u64),
    /// A standby group's active daemon has no state to sync.
    #[error("the active daemon is stateless")]
    Stateless,
    /// A promoted standby failed to replay an event; the events from the
    /// failed one on stay in the replay log (`replay_pending` resumes).
    #[error("replay after promotion stopped after {replayed} events: {error}")]
    Replay {
        /// Events replayed before the failure.
        replayed: usize,
        /// The daemon's error.
        error: DaemonError,
    },
    /// Moving a member with the migration protocol failed (it stays on
    /// its node): the failure every side agreed on, or a timeout.
    #[error("member migration failed: {0:?}")]
    Migration(FailureReason),
    /// The daemon or registry refused.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The node's compute runtime refused.
    #[error(transparent)]
    Compute(ComputeError),
}

impl From<ComputeError> for GroupError {
    fn from(e: ComputeError) -> Self {
        match e {
            ComputeError::Daemon(d) => Self::Daemon(d),
            other => Self::Compute(other),
        }
    }
}

/// Checks a member count against `min..=255`.
fn check_count(count: usize, min: usize, what: &str) -> Result<u8, GroupError> {
    if (min..=MAX_MEMBERS).contains(&count) {
        u8::try_from(count).map_err(|_| GroupError::InvalidConfig(format!("{what}: {count}")))
    } else {
        Err(GroupError::InvalidConfig(format!(
            "{what} must be {min}–{MAX_MEMBERS}, got {count}"
        )))
    }
}
