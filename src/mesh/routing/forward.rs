//! Forwarding decisions for routed datagrams (MESH2.md §2.3, WIRE.md §5).
//!
//! Better than v0.11 (§7 item 11): only datagrams that arrive from an
//! authenticated direct peer are forwarded (v0.11 is an open relay), and
//! never back to the peer they came from. The header is rewritten exactly
//! as v0.11 does (ttl − 1, hop_count + 1 saturating), so a v0.11 relay or
//! destination sees the same bytes.

use std::time::Instant;

use serde::Serialize;

use super::neighbors::NodeId;
use super::router::Router;
use crate::wire::{MIN_ROUTED_LEN, ROUTING_HEADER_SIZE, RoutingHeader};

/// What to do with a routed datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forward {
    /// Send the datagram to `next_hop` with its first 18 bytes replaced by
    /// `header` (see [`Forward::rewrite`]).
    Relay {
        /// The direct peer to send to.
        next_hop: NodeId,
        /// The rewritten routing header.
        header: [u8; ROUTING_HEADER_SIZE],
    },
    /// It is for us: strip the 18-byte header and process the inner packet
    /// (the inner packet authenticates itself; a routed msg1 may come from
    /// any node, WIRE.md §3.5).
    Deliver(RoutingHeader),
    /// Drop it.
    Drop(DropReason),
}

impl Forward {
    /// For [`Forward::Relay`], writes the new header over the first 18
    /// bytes of `datagram` (the rest is forwarded unchanged). Returns
    /// whether it did.
    pub fn rewrite(&self, datagram: &mut [u8]) -> bool {
        match (self, datagram.get_mut(..ROUTING_HEADER_SIZE)) {
            (Forward::Relay { header, .. }, Some(head)) => {
                head.copy_from_slice(header);
                true
            }
            _ => false,
        }
    }
}

/// Why a routed datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Shorter than 82 bytes or without the routing magic.
    Malformed,
    /// Not from an authenticated direct peer (v0.11 relays anyone's).
    NotFromPeer,
    /// TTL 0 and not for us.
    TtlExpired,
    /// No usable route to the destination.
    NoRoute,
    /// The only route leads back to the peer it came from.
    WouldLoop,
}

/// Routed-datagram counters, one per outcome and drop reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ForwardCounters {
    /// Relayed to a next hop.
    pub forwarded: u64,
    /// Addressed to us.
    pub delivered: u64,
    /// [`DropReason::Malformed`].
    pub dropped_malformed: u64,
    /// [`DropReason::NotFromPeer`].
    pub dropped_not_from_peer: u64,
    /// [`DropReason::TtlExpired`].
    pub dropped_ttl_expired: u64,
    /// [`DropReason::NoRoute`].
    pub dropped_no_route: u64,
    /// [`DropReason::WouldLoop`].
    pub dropped_would_loop: u64,
}

impl ForwardCounters {
    fn count(&mut self, decision: &Forward) {
        let slot = match decision {
            Forward::Relay { .. } => &mut self.forwarded,
            Forward::Deliver(_) => &mut self.delivered,
            Forward::Drop(DropReason::Malformed) => &mut self.dropped_malformed,
            Forward::Drop(DropReason::NotFromPeer) => &mut self.dropped_not_from_peer,
            Forward::Drop(DropReason::TtlExpired) => &mut self.dropped_ttl_expired,
            Forward::Drop(DropReason::NoRoute) => &mut self.dropped_no_route,
            Forward::Drop(DropReason::WouldLoop) => &mut self.dropped_would_loop,
        };
        *slot += 1;
    }
}

impl Router {
    /// Decides what to do with a routed datagram (routing header ‖ packet)
    /// that arrived from `from_peer` (the direct peer its source address
    /// belongs to, `None` when the address is no peer's).
    ///
    /// Order: malformed ⇒ drop; for us ⇒ deliver (TTL not checked, as
    /// v0.11); not from a direct peer ⇒ drop; TTL 0 ⇒ drop; otherwise
    /// relay with ttl − 1, hop_count + 1 to the best usable route that
    /// does not lead back to the sender, else drop.
    pub fn forward(&mut self, from_peer: Option<NodeId>, datagram: &[u8], now: Instant) -> Forward {
        let decision = self.decide(from_peer, datagram, now);
        self.forward_counters.count(&decision);
        decision
    }

    fn decide(&self, from_peer: Option<NodeId>, datagram: &[u8], now: Instant) -> Forward {
        if datagram.len() < MIN_ROUTED_LEN {
            return Forward::Drop(DropReason::Malformed);
        }
        let Ok(header) = RoutingHeader::decode(datagram) else {
            return Forward::Drop(DropReason::Malformed);
        };
        let table = self.table();
        if header.dest_id == table.own_id() {
            return Forward::Deliver(header);
        }
        let Some(from) = from_peer.filter(|p| table.is_direct_peer(*p)) else {
            return Forward::Drop(DropReason::NotFromPeer);
        };
        if header.ttl == 0 {
            return Forward::Drop(DropReason::TtlExpired);
        }
        match table.route_avoiding(header.dest_id, Some(from), now) {
            Some(route) => Forward::Relay {
                next_hop: route.next_hop,
                header: forwarded_header_bytes(datagram, &header),
            },
            None if table.route_for(header.dest_id, now).is_some() => {
                Forward::Drop(DropReason::WouldLoop)
            }
            None => Forward::Drop(DropReason::NoRoute),
        }
    }

    /// The routed-datagram counters.
    pub fn forward_counters(&self) -> ForwardCounters {
        self.forward_counters
    }
}

/// The header a relay sends: the received 18 bytes with only ttl (byte 2)
/// and hop_count (byte 3) changed, so flag bits and the reserved byte pass
/// through untouched (MESH2.md §2.3: "rest copied unchanged").
fn forwarded_header_bytes(datagram: &[u8], header: &RoutingHeader) -> [u8; ROUTING_HEADER_SIZE] {
    let next = header.forwarded();
    let mut bytes = next.encode();
    if let Some(received) = datagram.get(..ROUTING_HEADER_SIZE) {
        bytes.copy_from_slice(received);
        bytes[2] = next.ttl;
        bytes[3] = next.hop_count;
    }
    bytes
}
