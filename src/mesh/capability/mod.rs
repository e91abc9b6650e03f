//! Capability announcements (MESH2.md §3, WIRE.md §10.4): the signed
//! announcement codec, the receive pipeline's checks, the index and the
//! `find_nodes` / `find_best_node` queries. Pure: bytes and time in,
//! decisions out.
//!
//! - [`caps`]: `CapabilitySet` (the wire JSON) and binding normalisation.
//! - [`announcement`]: codec, signing, strict verification, size limit.
//! - [`version`]: restart-surviving (time-based) versions.
//! - [`scheduler`]: the broadcast limiter that defers instead of dropping.
//! - [`pipeline`] (with [`seen`]): receive checks, dedup, entity pins,
//!   forwarding decision.
//! - [`index`]: latest announcement per node, expiry, bounded memory.
//! - [`filter`], [`scope`], [`query`]: `find_nodes` / `find_best_node`.
//! - [`plane`]: all of the above behind one value, one call per node event.

pub mod announcement;
pub mod caps;
pub mod filter;
pub mod index;
pub mod pipeline;
pub mod plane;
pub mod query;
pub mod scheduler;
pub mod scope;
pub mod seen;
pub mod version;

pub use announcement::{Announcement, AnnouncementError, DEFAULT_TTL_SECS, MAX_ANNOUNCEMENT_LEN};
pub use caps::{
    AcceleratorInfo, AcceleratorType, CapabilitySet, GpuInfo, GpuVendor, Hardware, Limits,
    Modality, ModelInfo, Software, ToolInfo,
};
pub use filter::{CapabilityFilter, Threshold};
pub use index::{
    CapabilityIndex, FullPolicy, IndexChange, IndexLimits, IndexRejection, IndexedNode,
};
pub use pipeline::{
    Accepted, AnnouncementRoutes, DropReason, Forward, MAX_FORWARD_HOP_COUNT, PipelineConfig,
    ReceivePipeline, RouteHint, Verdict,
};
pub use plane::{CapabilityConfig, CapabilityPlane};
pub use query::{
    BestNode, BestNodeQuery, FoundNodes, NodeCapabilities, NodeQuery, NodeScorer, QueryError,
    ScoringWeights, capabilities_json, find_best_node, find_best_node_for, find_nodes,
};
pub use scheduler::AnnounceScheduler;
pub use scope::{CandidateScope, NoSubnets, QueryScope, SubnetView};
pub use version::VersionClock;
