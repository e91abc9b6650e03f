//! Capability announcements on the running node: the glue between the
//! pure [`CapabilityPlane`] (`mesh/capability/`) and the node's sessions,
//! one call per node event (the table in `plane.rs`):
//!
//! * `announce` signs and indexes; the bytes go to every peer now, or at
//!   the limiter's `next_due` (sent by the reliability tick — deferred,
//!   never dropped);
//! * a session coming up (connect, accept, either side of a routed
//!   handshake) gets our latest announcement, and so does a peer that
//!   recovers from Failed;
//! * an inbound 0x0C00 frame goes through the receive pipeline (validated
//!   before it is forwarded) and is forwarded to every peer but the sender
//!   and the next hop toward its origin;
//! * a peer declared Failed leaves the index; an evicted or removed one
//!   loses its entity pin too; a GC runs every `capability_gc_interval`.
//!
//! The plane's lock is taken before the channel hub's when both are held,
//! and never across a send.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::super::capability::{
    AnnouncementError, BestNode, BestNodeQuery, CapabilityConfig, CapabilityFilter,
    CapabilityPlane, CapabilitySet, FoundNodes, NodeQuery, Verdict, VersionClock,
};
use super::super::channels::{Capabilities, SubnetId};
use super::super::packet::PacketKind;
use super::super::peer::Peer;
use super::subnets::NodeSubnets;
use super::{Inner, MeshError, MeshNode, bump};
use crate::identity::EntityKeypair;
use crate::wire::{NetHeader, decode_events, encode_events, ids};

/// Why an announcement was not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CapabilityError {
    /// The capabilities do not fit one frame, or the identity cannot sign.
    /// Nothing changed.
    #[error(transparent)]
    Announcement(#[from] AnnouncementError),
    /// The node-level failure (shutdown).
    #[error(transparent)]
    Mesh(#[from] MeshError),
}

/// Channel capability filters see an announced [`CapabilitySet`]: tags by
/// name, and the whole set through `as_any` for richer filters.
impl Capabilities for CapabilitySet {
    fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// A capability query filter (the `find_nodes` one) serves as a channel's
/// publish or subscribe filter: it is matched against the peer's announced
/// set, and against the empty set for a peer that announced nothing (so
/// any requirement fails closed).
impl super::super::channels::CapabilityFilter for super::super::capability::CapabilityFilter {
    fn admits(&self, capabilities: &dyn Capabilities) -> bool {
        match capabilities
            .as_any()
            .and_then(|any| any.downcast_ref::<CapabilitySet>())
        {
            Some(set) => self.matches(set),
            None => self.matches(&CapabilitySet::default()),
        }
    }
}

/// The node's capability state.
pub(super) struct CapabilityGlue {
    plane: Mutex<CapabilityPlane>,
    next_gc: Mutex<Instant>,
    gc_interval: Duration,
    /// Tags a component of the node stamps on every announcement.
    stamp: Mutex<Option<TagStamp>>,
}

/// Stamps the tags a component of the node owns on an announcement being
/// made (the compute runtime: [`MIGRATION_TAG`](crate::compute::MIGRATION_TAG)
/// and its load), replacing the ones it stamped before.
pub(crate) type TagStamp = Arc<dyn Fn(&mut Vec<String>) + Send + Sync>;

impl CapabilityGlue {
    pub(super) fn new(
        identity: &EntityKeypair,
        config: CapabilityConfig,
        gc_interval: Duration,
    ) -> Self {
        let gc_interval = gc_interval.max(Duration::from_secs(1));
        Self {
            plane: Mutex::new(CapabilityPlane::new(
                identity.clone(),
                config,
                VersionClock::new(),
            )),
            next_gc: Mutex::new(Instant::now() + gc_interval),
            gc_interval,
            stamp: Mutex::new(None),
        }
    }

    pub(super) fn plane(&self) -> MutexGuard<'_, CapabilityPlane> {
        self.plane.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stamp(&self, tags: &mut Vec<String>) {
        let stamp = self.stamp.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(stamp) = stamp {
            stamp(tags);
        }
    }
}

pub(super) fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Inner {
    /// One announcement as a 0x0C00 packet (flags 0, stream 0x0C00, one
    /// event) through the peer's session (routed for a relayed peer).
    fn send_announcement(&self, peer: &Peer, bytes: &[u8]) {
        let Ok(payload) = encode_events(&[bytes]) else {
            return;
        };
        let kind = PacketKind {
            subprotocol_id: ids::CAPABILITY,
            stream_id: u64::from(ids::CAPABILITY),
            sequence: peer.session.next_control_seq(),
            event_count: 1,
            ..PacketKind::default()
        };
        self.send_control(peer, &kind, &payload);
    }

    /// `bytes` to every peer except `skip`.
    pub(super) fn broadcast_announcement(&self, bytes: &[u8], skip: &[u64]) {
        let peers: Vec<_> = self
            .peers
            .iter()
            .filter(|e| !skip.contains(e.key()))
            .map(|e| e.value().clone())
            .collect();
        for peer in peers {
            self.send_announcement(&peer, bytes);
        }
    }

    /// A session with `peer` came up: our latest announcement, if any.
    pub(super) fn on_session_up(&self, peer: &Peer) {
        self.traversal_session_up(peer);
        self.continuity_peer_up(peer);
        let bytes = self.capabilities.plane().on_peer_connected(peer.node_id);
        if let Some(bytes) = bytes {
            self.send_announcement(peer, &bytes);
        }
    }

    /// `peer` was declared Failed: its capabilities leave the index, it
    /// leaves our channel rosters and our requests to it fail.
    pub(super) fn on_peer_failed(&self, peer: &Peer) {
        self.capabilities.plane().on_peer_failed(peer.node_id);
        self.channels_peer_gone(peer.node_id);
        self.continuity_peer_failed(peer);
    }

    /// `peer` came back from Failed: our announcement is pushed again
    /// (v0.11 never does, MESH2.md §7 item 17).
    pub(super) fn on_peer_recovered(&self, peer: &Peer) {
        let bytes = self.capabilities.plane().on_peer_recovered(peer.node_id);
        if let Some(bytes) = bytes {
            self.send_announcement(peer, &bytes);
        }
        self.continuity_peer_returned(peer);
    }

    /// `node_id`'s session is gone for good (evicted, replaced, refused):
    /// everything the capability and channel planes held for it goes.
    pub(super) fn on_peer_removed(&self, node_id: u64) {
        self.capabilities.plane().on_peer_evicted(node_id);
        self.channels_peer_gone(node_id);
    }

    /// One 0x0C00 packet from `peer`.
    pub(super) fn handle_capability(&self, peer: &Peer, header: &NetHeader, plaintext: &[u8]) {
        let now_ns = unix_ns();
        for frame in decode_events(plaintext, usize::from(header.event_count)) {
            let verdict = self
                .capabilities
                .plane()
                .on_frame(frame, peer.node_id, now_ns);
            match verdict {
                Verdict::Accepted(accepted) => {
                    bump(&self.stats.capabilities_accepted);
                    let Some(forward) = accepted.forward else {
                        continue;
                    };
                    let origin = accepted.announcement.node_id;
                    let toward_origin = self
                        .router()
                        .route_for(origin, Instant::now())
                        .map(|route| route.next_hop);
                    let mut skip = vec![forward.except_peer, origin];
                    skip.extend(toward_origin);
                    self.broadcast_announcement(&forward.bytes, &skip);
                }
                Verdict::Dropped(reason) => {
                    bump(&self.stats.capabilities_dropped);
                    tracing::debug!(peer = peer.node_id, %reason, "capability announcement dropped");
                }
            }
        }
    }

    /// Sends a deferred announcement when the limiter allows it, and runs
    /// the GC when due (from the reliability tick).
    pub(super) fn capability_tick(&self, now: Instant) {
        let gc = {
            let mut next = self
                .capabilities
                .next_gc
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let due = *next <= now;
            if due {
                *next = now + self.capabilities.gc_interval;
            }
            due
        };
        let due = {
            let mut plane = self.capabilities.plane();
            if gc {
                let removed = plane.gc(unix_ns());
                if !removed.is_empty() {
                    tracing::debug!(removed = removed.len(), "capability entries expired");
                }
            }
            plane
                .next_due(now)
                .is_some_and(|at| at <= now)
                .then(|| plane.due(now))
                .flatten()
        };
        if let Some(bytes) = due {
            self.broadcast_announcement(&bytes, &[]);
        }
    }
}

impl MeshNode {
    /// Announces our capabilities: signs them, indexes them locally (our
    /// own queries include us) and sends them to every peer — at once, or,
    /// within `min_announce_interval` of the last broadcast, when the
    /// interval has passed (the latest one; never dropped). New sessions
    /// get the latest announcement as they come up.
    ///
    /// # Errors
    /// [`CapabilityError::Announcement`] when the set does not fit one
    /// frame (nothing changes); [`MeshError::ShuttingDown`].
    ///
    /// Once this node has classified its NAT (or has a reflex override),
    /// the set carries exactly one `nat:*` tag naming the class and the
    /// announcement our reflex address (`node/traversal.rs`); both are
    /// kept current by re-announcing when a classification changes them.
    /// With a subnet configuration it carries exactly one `subnet:` tag
    /// naming our subnet (`node/subnets.rs`), and the policy over these
    /// tags becomes our subnet when no id is configured.
    pub fn announce(&self, mut caps: CapabilitySet) -> Result<(), CapabilityError> {
        self.inner.check_running()?;
        let reflex = self.inner.nat_reflex();
        self.inner.nat_tags(&mut caps);
        self.inner.subnet_tags(&mut caps.tags);
        self.inner.capabilities.stamp(&mut caps.tags);
        let bytes = {
            let mut plane = self.inner.capabilities.plane();
            plane.set_reflex_addr(reflex);
            plane.announce(caps, Instant::now(), unix_ns())?
        };
        if let Some(bytes) = bytes {
            self.inner.broadcast_announcement(&bytes, &[]);
        }
        Ok(())
    }

    /// The indexed nodes (ourselves included, once we announced) in the
    /// query's scope matching its filter, by ascending node id.
    pub fn find_nodes(&self, query: &NodeQuery) -> FoundNodes {
        let plane = self.inner.capabilities.plane();
        let subnets = NodeSubnets {
            inner: &self.inner,
            plane: &plane,
        };
        plane.find_nodes(query, unix_ns(), &subnets)
    }

    /// The best-scoring indexed node for the query (`node_id` None when
    /// nothing matches).
    pub fn find_best_node(&self, query: &BestNodeQuery) -> BestNode {
        let plane = self.inner.capabilities.plane();
        let subnets = NodeSubnets {
            inner: &self.inner,
            plane: &plane,
        };
        plane.find_best_node(query, unix_ns(), &subnets)
    }

    /// Our subnet now: the configured one, else the policy over the tags
    /// we last announced, else GLOBAL (`docs/mesh.md` "Subnets").
    pub fn subnet(&self) -> SubnetId {
        self.inner.own_subnet()
    }

    /// Sets (or, with `None`, removes) the tags a component of this node
    /// stamps on every announcement (see [`TagStamp`]).
    pub(crate) fn set_tag_stamp(&self, stamp: Option<TagStamp>) {
        *self
            .inner
            .capabilities
            .stamp
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = stamp;
    }

    /// If this node announced before, announces its latest set again with
    /// the stamped tags as they are now (rate-limited like any
    /// announcement: deferred within `min_announce_interval`, never
    /// dropped).
    pub(crate) fn restamp_announcement(&self) {
        let bytes = {
            let mut plane = self.inner.capabilities.plane();
            let Some(mut caps) = plane.latest().map(|a| a.capabilities.clone()) else {
                return;
            };
            self.inner.capabilities.stamp(&mut caps.tags);
            plane
                .announce(caps, Instant::now(), unix_ns())
                .ok()
                .flatten()
        };
        if let Some(bytes) = bytes {
            self.inner.broadcast_announcement(&bytes, &[]);
        }
    }

    /// The live indexed nodes (ourselves included, once we announced) in
    /// the default scope that match `filter`, with what each announced, by
    /// ascending node id.
    pub fn matching_nodes(&self, filter: &CapabilityFilter) -> Vec<(u64, CapabilitySet)> {
        let query = NodeQuery {
            filter: filter.clone(),
            ..NodeQuery::default()
        };
        let found = self.find_nodes(&query);
        let plane = self.inner.capabilities.plane();
        found
            .nodes
            .into_iter()
            .filter_map(|node| {
                let entry = plane.index().get(node)?;
                Some((node, entry.announcement.capabilities.clone()))
            })
            .collect()
    }

    /// Every live indexed node as JSON (see
    /// [`capabilities_json`](crate::mesh::capability::capabilities_json)).
    pub fn capabilities_json(&self) -> String {
        self.inner.capabilities.plane().capabilities_json(unix_ns())
    }
}
