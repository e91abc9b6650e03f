//! Pingwaves as a distance vector (MESH2.md §2.2, WIRE.md §8): what we
//! emit each heartbeat interval and what we do with one we receive.
//!
//! Towards v0.11 peers everything is byte-for-byte v0.11: our pingwaves
//! carry TTL 3, and a relayed copy has the TTL and hop count a v0.11 relay
//! would give it (so a v0.11 peer sees only copies of at most 3 hops).
//! Towards Net peers our pingwaves carry TTL 8, and relayed copies go on
//! until 9 links from their origin, the reach of a routed data packet
//! (§7 item 13).

use std::time::Instant;

use serde::Serialize;

use super::config::{MAX_ROUTE_HOPS, NET_PINGWAVE_TTL};
use super::dedup::SeqVerdict;
use super::neighbors::{NodeId, PeerProtocol};
use super::router::Router;
use super::table::LearnRefused;
use crate::wire::Pingwave;
use crate::wire::classify::{DatagramClass, classify};
use crate::wire::pingwave::{PINGWAVE_MAX_HOPS, PINGWAVE_SIZE, PINGWAVE_TTL};

/// A pingwave to send to a direct peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundPingwave {
    /// The direct peer.
    pub to: NodeId,
    /// The 72 bytes.
    pub bytes: [u8; PINGWAVE_SIZE],
}

/// What became of a received pingwave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PingwaveOutcome {
    /// News: the route through the sender was recorded; send `relay`.
    Accepted {
        /// Copies to send on (possibly none).
        relay: Vec<OutboundPingwave>,
    },
    /// Another copy of news we already relayed: it refreshed the route
    /// through its sender; nothing to send.
    Duplicate,
    /// Dropped.
    Dropped(PingwaveDrop),
}

/// Why a received pingwave was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PingwaveDrop {
    /// Not a 72-byte pingwave (wrong length, health byte above 3, or the
    /// packet magic in front: WIRE.md §1 classifies those as packets).
    Malformed,
    /// Our own pingwave came back.
    OwnOrigin,
    /// hop_count ≥ 16.
    TooManyHops,
    /// Not from an authenticated direct peer.
    NotFromPeer,
    /// An old sequence number (late copy or replay).
    Stale,
    /// Further than a routed data packet can reach: useless as a route.
    TooFar,
    /// The route table is full.
    TableFull,
    /// The sending peer has used up its route quota.
    NeighborQuota,
}

/// Pingwave counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PingwaveCounters {
    /// Pingwaves we originated (one per peer per tick).
    pub sent: u64,
    /// Received and accepted as news.
    pub accepted: u64,
    /// Copies relayed on.
    pub relayed: u64,
    /// Duplicates (refresh only).
    pub duplicate: u64,
    /// [`PingwaveDrop::Malformed`].
    pub dropped_malformed: u64,
    /// [`PingwaveDrop::OwnOrigin`].
    pub dropped_own_origin: u64,
    /// [`PingwaveDrop::TooManyHops`].
    pub dropped_too_many_hops: u64,
    /// [`PingwaveDrop::NotFromPeer`].
    pub dropped_not_from_peer: u64,
    /// [`PingwaveDrop::Stale`].
    pub dropped_stale: u64,
    /// [`PingwaveDrop::TooFar`].
    pub dropped_too_far: u64,
    /// [`PingwaveDrop::TableFull`].
    pub dropped_table_full: u64,
    /// [`PingwaveDrop::NeighborQuota`].
    pub dropped_neighbor_quota: u64,
}

impl PingwaveCounters {
    fn count(&mut self, outcome: &PingwaveOutcome) {
        match outcome {
            PingwaveOutcome::Accepted { relay } => {
                self.accepted += 1;
                self.relayed += relay.len() as u64;
            }
            PingwaveOutcome::Duplicate => self.duplicate += 1,
            PingwaveOutcome::Dropped(reason) => {
                *match reason {
                    PingwaveDrop::Malformed => &mut self.dropped_malformed,
                    PingwaveDrop::OwnOrigin => &mut self.dropped_own_origin,
                    PingwaveDrop::TooManyHops => &mut self.dropped_too_many_hops,
                    PingwaveDrop::NotFromPeer => &mut self.dropped_not_from_peer,
                    PingwaveDrop::Stale => &mut self.dropped_stale,
                    PingwaveDrop::TooFar => &mut self.dropped_too_far,
                    PingwaveDrop::TableFull => &mut self.dropped_table_full,
                    PingwaveDrop::NeighborQuota => &mut self.dropped_neighbor_quota,
                } += 1
            }
        }
    }
}

/// The copy of `pw` a relay sends to a peer speaking `protocol`, if any.
fn relayed_copy(pw: &Pingwave, protocol: PeerProtocol) -> Option<Pingwave> {
    let remaining = match protocol {
        // What a v0.11 relay would still have: never more than 3 − hops.
        PeerProtocol::Legacy => pw.ttl.min(PINGWAVE_TTL.saturating_sub(pw.hop_count)),
        // Net peers: as far as the data TTL reaches, whatever the origin.
        PeerProtocol::Net => NET_PINGWAVE_TTL.saturating_sub(pw.hop_count),
    };
    (remaining > 0).then(|| Pingwave {
        ttl: remaining - 1,
        hop_count: pw.hop_count.saturating_add(1),
        ..*pw
    })
}

impl Router {
    /// The pingwaves of this heartbeat tick, one per registered direct
    /// peer (send each right after that peer's heartbeat): the same
    /// sequence number for all, TTL 3 to v0.11 peers (exactly v0.11's
    /// bytes), TTL 8 to Net peers. `timestamp_us` is our wall clock in µs
    /// since the UNIX epoch.
    pub fn originate_pingwaves(&mut self, timestamp_us: u64) -> Vec<OutboundPingwave> {
        self.last_pingwave_seq = self.last_pingwave_seq.saturating_add(1);
        let legacy = Pingwave::new(self.own_id(), self.last_pingwave_seq, timestamp_us);
        let net = Pingwave {
            ttl: NET_PINGWAVE_TTL,
            ..legacy
        };
        let out: Vec<OutboundPingwave> = self
            .table()
            .direct_peers()
            .into_iter()
            .map(|(to, protocol)| OutboundPingwave {
                to,
                bytes: match protocol {
                    PeerProtocol::Net => net.encode(),
                    _ => legacy.encode(),
                },
            })
            .collect();
        self.pingwave_counters.sent += out.len() as u64;
        out
    }

    /// The sequence number of the last pingwave we originated (0 before
    /// the first).
    pub fn last_pingwave_seq(&self) -> u64 {
        self.last_pingwave_seq
    }

    /// Handles a 72-byte datagram classified as a pingwave that arrived
    /// from `from_peer` (the direct peer its source address belongs to).
    ///
    /// In order: malformed, own origin, hop_count ≥ 16, not from a direct
    /// peer ⇒ drop; record the route origin → sender with hop_count + 1
    /// links (every fresh copy refreshes it; worse news from the same
    /// sender replaces better); a duplicate (origin, seq) stops here;
    /// otherwise relay a copy to every usable direct peer except the
    /// sender, the origin and our next hop toward the origin (split
    /// horizon).
    pub fn on_pingwave(
        &mut self,
        from_peer: Option<NodeId>,
        bytes: &[u8],
        now: Instant,
    ) -> PingwaveOutcome {
        let outcome = self.handle_pingwave(from_peer, bytes, now);
        self.pingwave_counters.count(&outcome);
        outcome
    }

    fn handle_pingwave(
        &mut self,
        from_peer: Option<NodeId>,
        bytes: &[u8],
        now: Instant,
    ) -> PingwaveOutcome {
        let drop = PingwaveOutcome::Dropped;
        // What v0.11 would not take for a pingwave (e.g. 72 bytes that
        // start with the packet magic) is not one here either.
        if classify(bytes) != DatagramClass::Pingwave {
            return drop(PingwaveDrop::Malformed);
        }
        let Ok(pw) = Pingwave::decode(bytes) else {
            return drop(PingwaveDrop::Malformed);
        };
        let origin = pw.origin_node_id();
        if origin == self.own_id() {
            return drop(PingwaveDrop::OwnOrigin);
        }
        if pw.hop_count >= PINGWAVE_MAX_HOPS {
            return drop(PingwaveDrop::TooManyHops);
        }
        let Some(from) = from_peer.filter(|p| self.table().is_direct_peer(*p)) else {
            return drop(PingwaveDrop::NotFromPeer);
        };
        let hops = pw.hop_count.saturating_add(1);
        if hops > MAX_ROUTE_HOPS {
            return drop(PingwaveDrop::TooFar);
        }
        // A pingwave from a neighbour is also a sign it is there, but an
        // unauthenticated one: only verified heartbeats clear a failure.
        match self.table_mut().learn(origin, from, hops, pw.seq, now) {
            Err(LearnRefused::TableFull) => drop(PingwaveDrop::TableFull),
            Err(LearnRefused::NeighborQuota) => drop(PingwaveDrop::NeighborQuota),
            Ok(SeqVerdict::Stale) => drop(PingwaveDrop::Stale),
            Ok(SeqVerdict::RecentDuplicate) => PingwaveOutcome::Duplicate,
            Ok(_) => PingwaveOutcome::Accepted {
                relay: self.relay_targets(&pw, origin, from, now),
            },
        }
    }

    fn relay_targets(
        &self,
        pw: &Pingwave,
        origin: NodeId,
        from: NodeId,
        now: Instant,
    ) -> Vec<OutboundPingwave> {
        let toward_origin = self.route_for(origin, now).map(|r| r.next_hop);
        self.table()
            .usable_neighbors(now)
            .into_iter()
            .filter(|(to, _)| *to != from && *to != origin && Some(*to) != toward_origin)
            .filter_map(|(to, protocol)| {
                relayed_copy(pw, protocol).map(|copy| OutboundPingwave {
                    to,
                    bytes: copy.encode(),
                })
            })
            .collect()
    }

    /// The pingwave counters.
    pub fn pingwave_counters(&self) -> PingwaveCounters {
        self.pingwave_counters
    }
}
