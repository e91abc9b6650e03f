//! Subnets on the running node (MESH2.md §5, `docs/mesh.md` "Subnets"):
//! where our own and our peers' subnets come from, and the gateway rule
//! at each hop.
//!
//! * Our subnet: `MeshConfig::subnets` — the configured id, else the
//!   policy over the tags we announce. Announcing adds our `subnet:` tag
//!   and moves the channel hub to the new subnet.
//! * A peer's subnet: from the tags of its latest *signed* indexed
//!   announcement ([`SubnetSettings::peer_subnet`]); it goes when the
//!   entry goes (failure, eviction, GC).
//! * The hub decides visibility with these (subscribe gate, publish-time
//!   re-check); publish packets towards Net subscribers carry the
//!   confinement stamp in the header's `subnet_id`; every hop that hands
//!   a stamped packet on — the publisher choosing a relayed subscriber's
//!   first hop, a relay forwarding — refuses a next hop outside the
//!   stamped subnet ([`may_forward`]) and counts it (`subnet_blocked`).
//! * Capability queries see the same subnets ([`NodeSubnets`]).

use super::super::capability::{CapabilityPlane, SubnetView};
use super::super::channels::{SubnetId, claimed_subnet, may_forward};
use super::{Inner, bump};
use crate::wire::HEADER_SIZE;
use crate::wire::header::{HEADER_MAGIC, offset};

/// The confinement stamp of a sealed packet (GLOBAL when none, or when the
/// bytes are not a packet). Reads only the field: it runs for every
/// datagram a relay forwards.
pub(super) fn stamp_of(packet: &[u8]) -> SubnetId {
    if packet.len() < HEADER_SIZE || packet[..2] != HEADER_MAGIC {
        return SubnetId::GLOBAL;
    }
    let mut word = [0u8; 4];
    word.copy_from_slice(&packet[offset::SUBNET_ID..offset::SUBNET_ID + 4]);
    SubnetId(u32::from_le_bytes(word))
}

/// The capability queries' view of subnets.
pub(super) struct NodeSubnets<'a> {
    pub(super) inner: &'a Inner,
    pub(super) plane: &'a CapabilityPlane,
}

impl SubnetView for NodeSubnets<'_> {
    fn local_node_id(&self) -> u64 {
        self.inner.node_id
    }

    fn own_subnet(&self) -> u32 {
        self.inner.own_subnet().0
    }

    /// Without a subnet configuration only a peer's own claim counts (so a
    /// `scope:subnet-local` candidate stays hidden, as in v0.11).
    fn peer_subnet(&self, node_id: u64) -> Option<u32> {
        if self.inner.config.subnets.enabled() {
            self.inner.peer_subnet(self.plane, node_id).map(|s| s.0)
        } else {
            signed_tags(self.plane, node_id)
                .and_then(claimed_subnet)
                .map(|s| s.0)
        }
    }

    /// Unknown is never "same subnet" (v0.11 admits unknown peers while a
    /// policy is installed).
    fn policy_installed(&self) -> bool {
        false
    }
}

/// The tags of `node_id`'s latest signed indexed announcement.
fn signed_tags(plane: &CapabilityPlane, node_id: u64) -> Option<&[String]> {
    plane
        .index()
        .get(node_id)
        .filter(|n| n.announcement.signature.is_some())
        .map(|n| n.announcement.capabilities.tags.as_slice())
}

impl Inner {
    /// Our subnet now.
    pub(super) fn own_subnet(&self) -> SubnetId {
        self.channels.local_subnet()
    }

    /// `node_id`'s subnet as far as we know (`None`: unknown). Never takes
    /// the hub's lock: the hub's directory calls it with the hub locked.
    pub(super) fn peer_subnet(&self, plane: &CapabilityPlane, node_id: u64) -> Option<SubnetId> {
        self.config.subnets.peer_subnet(signed_tags(plane, node_id))
    }

    /// Our tags as announced: exactly one `subnet:` tag naming our subnet
    /// when a subnet configuration is present; the hub moves to the subnet
    /// those tags give.
    pub(super) fn subnet_tags(&self, tags: &mut Vec<String>) {
        let settings = &self.config.subnets;
        settings.stamp_tags(tags);
        self.channels.set_local_subnet(settings.own_subnet(tags));
    }

    /// Drops, and counts, the datagrams whose stamp forbids `next_hop`.
    pub(super) fn confine(&self, next_hop: u64, datagrams: &mut Vec<Vec<u8>>) {
        if datagrams.iter().all(|d| stamp_of(d) == SubnetId::GLOBAL) {
            return;
        }
        let hop_subnet = self.peer_subnet(&self.capabilities.plane(), next_hop);
        datagrams.retain(|d| {
            let allowed = may_forward(stamp_of(d), hop_subnet);
            if !allowed {
                bump(&self.stats.subnet_blocked);
            }
            allowed
        });
    }

    /// The relay's gateway check for one routed datagram (`packet` is the
    /// inner packet, after the routing header).
    pub(super) fn relay_may_forward(&self, next_hop: u64, packet: &[u8]) -> bool {
        let stamp = stamp_of(packet);
        if stamp == SubnetId::GLOBAL {
            return true;
        }
        let allowed = may_forward(
            stamp,
            self.peer_subnet(&self.capabilities.plane(), next_hop),
        );
        if !allowed {
            bump(&self.stats.subnet_blocked);
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NetHeader;

    #[test]
    fn the_stamp_is_read_from_the_header_field() {
        let header = NetHeader {
            subnet_id: 0x0307_0200,
            stream_id: 7,
            ..NetHeader::default()
        };
        let mut packet = header.encode().to_vec();
        packet.extend_from_slice(&[0u8; 32]);
        assert_eq!(stamp_of(&packet), SubnetId(0x0307_0200));
        assert_eq!(NetHeader::decode(&packet).unwrap().subnet_id, 0x0307_0200);
        // Not a packet (short, or no magic): no stamp.
        assert_eq!(stamp_of(&packet[..HEADER_SIZE - 1]), SubnetId::GLOBAL);
        packet[0] ^= 0xff;
        assert_eq!(stamp_of(&packet), SubnetId::GLOBAL);
    }
}
