//! Direct peers as the routing table sees them (MESH2.md §0): the only
//! nodes we forward to or accept pingwaves and routed datagrams from.

use std::time::{Duration, Instant};

/// A node id (the u64 of IDENTITY.md).
pub type NodeId = u64;

/// What a direct peer speaks, as negotiated by the identity hello. Every
/// routing improvement that changes bytes on the wire is used only towards
/// [`PeerProtocol::Net`] peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PeerProtocol {
    /// A v0.11 peer (or one not yet known to be Net): v0.11 bytes only.
    #[default]
    Legacy,
    /// A Net peer: pingwaves travel as far as the data TTL.
    Net,
}

/// One authenticated direct peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Neighbor {
    pub(super) protocol: PeerProtocol,
    /// Last verified sign of life (registration, heartbeat, pingwave).
    pub(super) last_heard: Instant,
    /// Declared failed by the failure detector; cleared by a sign of life.
    pub(super) failed: bool,
    /// Learned route candidates that go through this peer (its quota).
    pub(super) learned_routes: usize,
}

impl Neighbor {
    pub(super) fn new(protocol: PeerProtocol, now: Instant) -> Self {
        Self {
            protocol,
            last_heard: now,
            failed: false,
            learned_routes: 0,
        }
    }

    /// Whether routes may go through this peer at `now`: not failed and
    /// heard from within `silence_limit`.
    pub(super) fn usable(&self, now: Instant, silence_limit: Duration) -> bool {
        !self.failed && now.saturating_duration_since(self.last_heard) <= silence_limit
    }
}
