//! The receive pipeline for one 0x0C00 event frame (MESH2.md §3.2), with
//! the announcement **validated before it is forwarded** (§7 item 18):
//!
//! 1. longer than [`MAX_ANNOUNCEMENT_LEN`] ⇒ drop, unparsed;
//! 2. parse failure ⇒ drop;
//! 3. hop_count 0 and node_id ≠ the sending peer ⇒ drop;
//! 4. node_id = our own ⇒ drop;
//! 5. (node_id, version) seen ⇒ drop, before any signature work;
//! 6. unsigned while signatures are required (default) ⇒ drop;
//! 7. signature present but invalid (strict) ⇒ drop;
//! 8. node_id not derived from entity_id ⇒ drop (unsigned too);
//! 9. signed and hop_count 0 ⇒ pin sending peer → entity (first pin wins;
//!    another entity later ⇒ drop); only such announcements may set the
//!    peer's subnet ([`Accepted::from_direct_signer`]);
//! 10. remember (node_id, version) for the retention (600 s);
//! 11. **new**: expired, or not newer than the indexed version ⇒ drop,
//!     neither forwarded nor indexed (v0.11 floods these);
//! 12. hop_count > 0 ⇒ a route hint origin → sending peer, metric
//!     hop_count + 2 (see [`RouteHint`]: the hop count is not signed);
//! 13. hop_count < 15 ⇒ forward with hop_count + 1, signature unchanged, to
//!     every peer but the sender and the next hop toward the origin;
//! 14. index.
//!
//! Pure: the node hands in the frame, the sending peer and the wall clock;
//! it gets back a [`Verdict`] saying what to pin, route, forward and what
//! was indexed.

use std::collections::HashMap;

use super::announcement::{Announcement, AnnouncementError, MAX_ANNOUNCEMENT_LEN};
use super::index::{CapabilityIndex, IndexChange, IndexRejection};
use super::seen::{DEFAULT_MAX_SEEN, DEFAULT_SEEN_RETENTION_NS, SeenSet};
use crate::identity::EntityId;

/// Announcements are forwarded while their hop_count is below this.
pub const MAX_FORWARD_HOP_COUNT: u8 = 15;
/// Added to the hop count to make a route metric (v0.11).
pub const ROUTE_METRIC_OFFSET: u32 = 2;
/// Default cap on entity pins (one per direct peer).
pub const DEFAULT_MAX_PINS: usize = 65_536;

/// Whether forwarded announcements teach routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AnnouncementRoutes {
    /// Emit a [`RouteHint`] for every forwarded announcement (v0.11).
    #[default]
    Learn,
    /// Never: only the distance vector makes routes.
    Ignore,
}

/// Settings of the pipeline (MESH2.md §6 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Drop unsigned announcements (`require_signed_capabilities`).
    pub require_signed: bool,
    /// How long a (node_id, version) is remembered, ns.
    pub seen_retention_ns: u64,
    /// Most (node_id, version) records held.
    pub max_seen: usize,
    /// Most entity pins held.
    pub max_pins: usize,
    /// Whether forwarded announcements produce route hints.
    pub routes: AnnouncementRoutes,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            require_signed: true,
            seen_retention_ns: DEFAULT_SEEN_RETENTION_NS,
            max_seen: DEFAULT_MAX_SEEN,
            max_pins: DEFAULT_MAX_PINS,
            routes: AnnouncementRoutes::default(),
        }
    }
}

/// Why a frame was dropped. Nothing is forwarded or indexed for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a valid announcement (too large, malformed, unsigned where
    /// required, bad signature, node_id not derived from entity_id).
    #[error(transparent)]
    Invalid(#[from] AnnouncementError),
    /// hop_count 0 but node_id is not the sending peer: a forwarder posing
    /// as the origin.
    #[error("hop_count 0 from peer {sender:#018x} for node {node_id:#018x}")]
    NotFromOrigin {
        /// The peer that sent the frame.
        sender: u64,
        /// The announced node.
        node_id: u64,
    },
    /// Our own announcement came back.
    #[error("our own announcement")]
    Own,
    /// (node_id, version) was already processed.
    #[error("already seen")]
    Duplicate,
    /// The sending peer is pinned to another entity.
    #[error("peer {peer:#018x} is pinned to another entity")]
    PinConflict {
        /// The sending peer.
        peer: u64,
    },
    /// Expired or not newer than the indexed version.
    #[error(transparent)]
    Rejected(IndexRejection),
}

/// A route the node may learn from a forwarded announcement: `origin` is
/// reachable through `via_peer` at `metric` (hop_count + 2).
///
/// The hop count is **not covered by the signature** (§7 item 10): a
/// forwarder can shrink it. Routes from hints must therefore never
/// displace a route learned from the distance vector or a direct session;
/// use them only where no other route exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteHint {
    /// The announcing node.
    pub origin: u64,
    /// The peer the announcement came from (the next hop).
    pub via_peer: u64,
    /// hop_count + 2.
    pub metric: u32,
}

/// A copy to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The event bytes (hop_count + 1, signature unchanged).
    pub bytes: Vec<u8>,
    /// Do not send to this peer (it sent us the frame). The node also
    /// skips its next hop toward [`Accepted::announcement`]'s origin and
    /// blocked addresses.
    pub except_peer: u64,
}

/// What to do with an accepted announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The verified announcement.
    pub announcement: Announcement,
    /// The sending peer was pinned to the entity by this frame.
    pub newly_pinned: bool,
    /// A route to learn, if any.
    pub route: Option<RouteHint>,
    /// A copy to forward, if any.
    pub forward: Option<Forward>,
    /// How the index changed; [`IndexRejection::Full`] when it had no room.
    pub indexed: Result<IndexChange, IndexRejection>,
}

impl Accepted {
    /// Whether the announcement came signed, straight from its origin: the
    /// only kind that may set the peer's subnet (MESH2.md §5).
    pub fn from_direct_signer(&self) -> bool {
        self.announcement.hop_count == 0 && self.announcement.signature.is_some()
    }
}

/// The result of [`ReceivePipeline::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Processed: see the fields.
    Accepted(Box<Accepted>),
    /// Dropped.
    Dropped(DropReason),
}

/// The receive side's state: dedup records and entity pins.
#[derive(Debug, Clone)]
pub struct ReceivePipeline {
    local_node_id: u64,
    config: PipelineConfig,
    seen: SeenSet,
    pins: HashMap<u64, EntityId>,
}

impl ReceivePipeline {
    /// A pipeline for the node `local_node_id`.
    pub fn new(local_node_id: u64, config: PipelineConfig) -> Self {
        Self {
            local_node_id,
            config,
            seen: SeenSet::new(config.seen_retention_ns, config.max_seen),
            pins: HashMap::new(),
        }
    }

    /// Runs one event frame from `sender` (its node id) through the
    /// pipeline at wall-clock `now_unix_ns`, indexing into `index`.
    pub fn receive(
        &mut self,
        frame: &[u8],
        sender: u64,
        now_unix_ns: u64,
        index: &mut CapabilityIndex,
    ) -> Verdict {
        match self.process(frame, sender, now_unix_ns, index) {
            Ok(accepted) => Verdict::Accepted(Box::new(accepted)),
            Err(reason) => Verdict::Dropped(reason),
        }
    }

    fn process(
        &mut self,
        frame: &[u8],
        sender: u64,
        now_unix_ns: u64,
        index: &mut CapabilityIndex,
    ) -> Result<Accepted, DropReason> {
        if frame.len() > MAX_ANNOUNCEMENT_LEN {
            return Err(AnnouncementError::TooLarge {
                len: frame.len(),
                max: MAX_ANNOUNCEMENT_LEN,
            }
            .into());
        }
        let announcement = Announcement::decode(frame)?;
        let node_id = announcement.node_id;
        if announcement.hop_count == 0 && node_id != sender {
            return Err(DropReason::NotFromOrigin { sender, node_id });
        }
        if node_id == self.local_node_id {
            return Err(DropReason::Own);
        }
        if self
            .seen
            .contains(node_id, announcement.version, now_unix_ns)
        {
            return Err(DropReason::Duplicate);
        }
        match announcement.signature {
            Some(_) => announcement.verify()?,
            None if self.config.require_signed => return Err(AnnouncementError::Unsigned.into()),
            None => announcement.check_node_id()?,
        }
        let newly_pinned = if announcement.hop_count == 0 && announcement.signature.is_some() {
            self.pin(sender, announcement.entity_id)?
        } else {
            false
        };
        self.seen.insert(node_id, announcement.version, now_unix_ns);
        index
            .check(&announcement, now_unix_ns)
            .map_err(DropReason::Rejected)?;
        let route = (announcement.hop_count > 0 && self.config.routes == AnnouncementRoutes::Learn)
            .then(|| RouteHint {
                origin: node_id,
                via_peer: sender,
                metric: u32::from(announcement.hop_count) + ROUTE_METRIC_OFFSET,
            });
        let forward = (announcement.hop_count < MAX_FORWARD_HOP_COUNT)
            .then(|| announcement.forwarded())
            .flatten()
            .map(|copy| Forward {
                bytes: copy.encode(),
                except_peer: sender,
            });
        let indexed = index.insert(announcement.clone(), now_unix_ns);
        Ok(Accepted {
            announcement,
            newly_pinned,
            route,
            forward,
            indexed,
        })
    }

    /// Pins `peer` to `entity` on first sight; `Ok(true)` when new.
    fn pin(&mut self, peer: u64, entity: EntityId) -> Result<bool, DropReason> {
        match self.pins.get(&peer) {
            Some(pinned) if *pinned == entity => Ok(false),
            Some(_) => Err(DropReason::PinConflict { peer }),
            None if self.pins.len() >= self.config.max_pins => Ok(false),
            None => {
                self.pins.insert(peer, entity);
                Ok(true)
            }
        }
    }

    /// The entity `peer` is pinned to, if any.
    pub fn pinned_entity(&self, peer: u64) -> Option<EntityId> {
        self.pins.get(&peer).copied()
    }

    /// A peer was declared Failed: drop its index entry and its dedup
    /// records, so the announcement it re-pushes on recovery is accepted
    /// again (v0.11 deletes the entry and never gets it back, §7 item 17).
    /// The entity pin is kept: a failure is no reason to trust a new key.
    pub fn peer_failed(&mut self, peer: u64, index: &mut CapabilityIndex) {
        index.remove(peer);
        self.seen.forget_node(peer);
    }

    /// A peer was evicted: forget everything about it, pin included.
    pub fn peer_evicted(&mut self, peer: u64, index: &mut CapabilityIndex) {
        self.peer_failed(peer, index);
        self.pins.remove(&peer);
    }

    /// The GC tick (every `capability_gc_interval`): expired dedup records
    /// and index entries go; returns the node ids removed from the index.
    pub fn sweep(&mut self, now_unix_ns: u64, index: &mut CapabilityIndex) -> Vec<u64> {
        self.seen.purge(now_unix_ns);
        index.sweep(now_unix_ns)
    }

    /// Dedup records held (for stats and bounds tests).
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    /// Pins held.
    pub fn pins_len(&self) -> usize {
        self.pins.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::EntityKeypair;

    #[test]
    fn first_pin_wins_and_the_pin_table_is_bounded() {
        let mut pipe = ReceivePipeline::new(
            0,
            PipelineConfig {
                max_pins: 1,
                ..PipelineConfig::default()
            },
        );
        let first = *EntityKeypair::from_seed(&[1; 32]).entity_id();
        let second = *EntityKeypair::from_seed(&[2; 32]).entity_id();
        assert_eq!(pipe.pin(7, first), Ok(true));
        assert_eq!(pipe.pin(7, first), Ok(false));
        assert_eq!(
            pipe.pin(7, second),
            Err(DropReason::PinConflict { peer: 7 })
        );
        // Full: a new peer is not pinned (and not dropped either).
        assert_eq!(pipe.pin(8, second), Ok(false));
        assert_eq!(pipe.pins_len(), 1);
        let mut index = CapabilityIndex::new(0, Default::default());
        pipe.peer_failed(7, &mut index);
        assert_eq!(pipe.pinned_entity(7), Some(first));
        pipe.peer_evicted(7, &mut index);
        assert_eq!(pipe.pinned_entity(7), None);
    }
}
