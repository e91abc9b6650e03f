//! NAT traversal (MESH2.md §4, WIRE.md §10.5–10.8): classification from
//! reflex observations, the pair-action matrix, the rendezvous (hole
//! punching) machines and port mapping. Like `channels` and `capability`,
//! the protocol parts are pure — observations, frames and time in, actions
//! out — so the node drives them with one call per event (the tables in
//! [`rendezvous`] and [`portmap::mapper`]).
//!
//! - [`classify`](mod@classify): Open / Cone / Symmetric / Unknown plus RFC 4787 mapping
//!   and filtering, the advertisable reflex, the reflex override.
//! - [`classifier`]: when and whom to probe — rounds at start, on address
//!   change and every 60 s, random direct probe peers on distinct IPs.
//! - [`pair`]: v0.11's pair-action matrix and the refined one.
//! - [`rendezvous`]: coordinator and endpoint machines, authenticated
//!   random punch ids between Net nodes, the traversal counters.
//! - [`portmap`]: NAT-PMP, PCP and UPnP IGD clients (blocking std sockets
//!   with deadlines, run by the node on a blocking task) and the lease
//!   lifecycle ([`portmap::mapper`]).
//!
//! Differences from v0.11 (MESH2.md §7 items 19–23) are documented in each
//! module. See `docs/mesh.md`, "NAT traversal".

pub mod classifier;
pub mod classify;
pub mod pair;
pub mod portmap;
pub mod rendezvous;

pub use classifier::{Classifier, ProbeCandidate, Step, choose_probe_peers, reflex_answer};
pub use classify::{
    Classification, Filtering, FilteringEvidence, LocalView, Mapping, NatClass, Observation,
    OverrideOrigin, ReflexState, classify, is_advertisable,
};
pub use pair::{NatProfile, PairAction, pair_action, v011_action};
pub use rendezvous::{
    Action, Coordinator, Endpoint, FallbackReason, Ignored, PeerView, PunchKey, PunchOutcome,
    PunchStats, PunchTiming,
};
