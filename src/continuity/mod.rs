//! Continuity and contested partitions (COMPUTE.md §5, §7): pure library
//! code — no I/O, no async, no FFI, no clock; time is the caller's
//! milliseconds. Model, formats and every difference from v0.11:
//! `docs/continuity.md`.
//!
//! - [`chain`]: chain status of a log, the [`ChainFollower`] for a stream
//!   as it arrives, causal cones.
//! - [`observation`]: what a node has seen of each origin, how fresh, and
//!   propagation delay estimates.
//! - [`correlation`]: whether failures in a window are a mass failure and
//!   where they concentrate.
//! - [`partition`]: partition records from suspicion to heal, and the
//!   [`partition_key`] both sides of a split agree on.
//! - [`reconcile`]: the winner of two diverged branches and the
//!   [`ForkRecord`] the loser becomes, the same on both sides.
//! - [`wire`]: the messages on subprotocols 0x0700–0x0702 and
//!   0x0800–0x0801.
//! - [`engine`]: [`ContinuityEngine`], the one value a node drives.
//!
//! Causal links and proofs are `crate::cortex::causal`'s.
//!
//! [`chain`]: crate::continuity::chain
//! [`correlation`]: crate::continuity::correlation
//! [`observation`]: crate::continuity::observation
//! [`partition`]: crate::continuity::partition
//! [`reconcile`]: mod@crate::continuity::reconcile
//! [`wire`]: crate::continuity::wire
//! [`engine`]: crate::continuity::engine
//! [`ChainFollower`]: crate::continuity::chain::ChainFollower
//! [`partition_key`]: crate::continuity::partition::partition_key
//! [`ForkRecord`]: crate::continuity::reconcile::ForkRecord
//! [`ContinuityEngine`]: crate::continuity::engine::ContinuityEngine

pub mod chain;
pub mod correlation;
pub mod engine;
pub mod observation;
pub mod partition;
pub mod reconcile;
pub mod wire;

pub use chain::{
    Agreement, Anchor, CausalCone, ChainFollower, ChainStatus, Discontinuity, DiscontinuityReason,
    Influence, Observation, assess,
};
pub use correlation::{CorrelationConfig, CorrelationDetector, FailureCause, Verdict};
pub use engine::{ContinuityEngine, EngineConfig, Output};
pub use observation::{HorizonDivergence, ObservationWindow, PropagationModel, crossing_depth};
pub use partition::{
    PartitionConfig, PartitionEvent, PartitionPhase, PartitionRecord, PartitionTracker,
    partition_key,
};
pub use reconcile::{
    Divergence, ForkRecord, ForkRecordError, ReconcileError, Reconciliation, Side, reconcile,
};
pub use wire::{ChainPoint, ContinuityMessage, ContinuityWireError};
