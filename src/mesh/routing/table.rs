//! The routing table (MESH2.md §2.1): direct peers, relayed peers pinned to
//! their relay, and destinations learned from pingwaves, each with up to a
//! few alternative next hops so that a dead hop is replaced at once.
//!
//! Differences from v0.11 (§7 items 12, 13, 14, 25): a route learned through
//! a neighbour is replaced by that neighbour's latest news even when it is
//! worse; after three heartbeat intervals without news it is stale (any
//! fresh route wins over it) and it is deleted after six, or at once when
//! the neighbour fails; a neighbour silent for three intervals is never a
//! next hop; alternates keep their real hop count;
//! a failed or silent neighbour is never chosen; and the number of learned
//! destinations is capped globally and per neighbour.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use super::config::{MAX_ROUTE_HOPS, RoutingConfig};
use super::dedup::{SeqVerdict, SeqWindow};
use super::neighbors::{Neighbor, NodeId, PeerProtocol};

/// How a route was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RouteKind {
    /// The destination is a direct peer.
    Direct,
    /// A relayed peer (`connect_via` / routed responder), pinned to its relay.
    Relayed,
    /// Learned from pingwaves.
    Learned,
}

/// The route currently chosen for a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination node.
    pub destination: NodeId,
    /// The direct peer to send to.
    pub next_hop: NodeId,
    /// Links to the destination (1 = direct). For a relayed peer with no
    /// learned distance, 2.
    pub hops: u8,
    /// How the route was obtained.
    pub kind: RouteKind,
    /// When this next hop was first learned for the destination.
    pub learned_at: Instant,
    /// When it was last confirmed.
    pub refreshed_at: Instant,
    /// A learned route without news for the expiry time: used only while
    /// no fresh route exists, deleted after the hold time.
    pub stale: bool,
}

/// Why a pingwave's route was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LearnRefused {
    /// The table holds `max_destinations` learned destinations.
    TableFull,
    /// The sending neighbour has used its `max_routes_per_neighbor` quota.
    NeighborQuota,
}

/// One way to reach a learned destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    via: NodeId,
    hops: u8,
    seq: u64,
    learned_at: Instant,
    refreshed_at: Instant,
}

/// A destination learned from pingwaves, with its dedup window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Learned {
    candidates: Vec<Candidate>,
    seqs: SeqWindow,
}

/// A relayed peer's pinned route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Relayed {
    relay: NodeId,
    since: Instant,
}

/// A change of route caused by a peer's failure or removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reroute {
    /// The destination whose route went through the failed peer.
    pub destination: NodeId,
    /// The failed next hop.
    pub old_next_hop: NodeId,
    /// The route now in use, if any is left.
    pub new_route: Option<Route>,
}

/// The routing table of one node.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    own_id: NodeId,
    config: RoutingConfig,
    neighbors: HashMap<NodeId, Neighbor>,
    relayed: HashMap<NodeId, Relayed>,
    learned: HashMap<NodeId, Learned>,
}

impl RoutingTable {
    /// An empty table for node `own_id`.
    pub fn new(own_id: NodeId, config: RoutingConfig) -> Self {
        Self {
            own_id,
            config,
            neighbors: HashMap::new(),
            relayed: HashMap::new(),
            learned: HashMap::new(),
        }
    }

    /// Our node id.
    pub fn own_id(&self) -> NodeId {
        self.own_id
    }

    /// The config.
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    // --- direct and relayed peers (MESH2.md §0) ---

    /// Registers an authenticated direct peer (`connect` / `accept`), or
    /// re-registers it (a new session): it is usable again at once.
    pub fn add_direct_peer(&mut self, peer: NodeId, protocol: PeerProtocol, now: Instant) {
        if peer == self.own_id {
            return;
        }
        let learned_routes = self.neighbors.get(&peer).map_or(0, |n| n.learned_routes);
        let mut neighbor = Neighbor::new(protocol, now);
        neighbor.learned_routes = learned_routes;
        self.neighbors.insert(peer, neighbor);
    }

    /// Records what a direct peer speaks once the hello has told us.
    pub fn set_peer_protocol(&mut self, peer: NodeId, protocol: PeerProtocol) {
        if let Some(n) = self.neighbors.get_mut(&peer) {
            n.protocol = protocol;
        }
    }

    /// A verified sign of life from a direct peer (a heartbeat). Clears a
    /// failure verdict: the peer's routes come back as its pingwaves do,
    /// and relayed peers pinned to it are usable again.
    pub fn heard_from(&mut self, peer: NodeId, now: Instant) {
        if let Some(n) = self.neighbors.get_mut(&peer) {
            n.last_heard = n.last_heard.max(now);
            n.failed = false;
        }
    }

    /// The failure detector declared `peer` Failed: every learned route
    /// through it is withdrawn and each destination switches to its next
    /// best route at once. Relayed peers pinned to it stay pinned (and
    /// come back on recovery) but are not used meanwhile. Returns the
    /// destinations whose route changed.
    pub fn peer_failed(&mut self, peer: NodeId, now: Instant) -> Vec<Reroute> {
        let affected = self.destinations_via(peer, now);
        if let Some(n) = self.neighbors.get_mut(&peer) {
            n.failed = true;
        }
        self.drop_candidates_via(peer);
        self.reroutes(affected, peer, now)
    }

    /// Forgets a direct peer (evicted or disconnected), with every route
    /// learned through it. Returns the destinations whose route changed.
    pub fn remove_direct_peer(&mut self, peer: NodeId, now: Instant) -> Vec<Reroute> {
        let affected = self.destinations_via(peer, now);
        self.drop_candidates_via(peer);
        self.neighbors.remove(&peer);
        self.reroutes(affected, peer, now)
    }

    /// Registers a relayed peer reached through the direct peer `relay`
    /// (`connect_via` initiator, or the responder of a routed handshake
    /// that arrived from `relay`).
    pub fn add_relayed_peer(&mut self, peer: NodeId, relay: NodeId, now: Instant) {
        if peer == self.own_id || relay == peer {
            return;
        }
        self.relayed.insert(peer, Relayed { relay, since: now });
    }

    /// Forgets a relayed peer.
    pub fn remove_relayed_peer(&mut self, peer: NodeId) {
        self.relayed.remove(&peer);
    }

    /// The relay a relayed peer is pinned to.
    pub fn relay_of(&self, peer: NodeId) -> Option<NodeId> {
        self.relayed.get(&peer).map(|r| r.relay)
    }

    /// Every relayed peer and its relay, in id order (the peers whose
    /// per-peer messages must travel in a routing header, §7 item 1).
    pub fn relayed_peers(&self) -> Vec<(NodeId, NodeId)> {
        let mut v: Vec<_> = self.relayed.iter().map(|(p, r)| (*p, r.relay)).collect();
        v.sort_unstable();
        v
    }

    /// Whether `peer` is a registered direct peer (failed or not).
    pub fn is_direct_peer(&self, peer: NodeId) -> bool {
        self.neighbors.contains_key(&peer)
    }

    /// The protocol of a direct peer.
    pub fn peer_protocol(&self, peer: NodeId) -> Option<PeerProtocol> {
        self.neighbors.get(&peer).map(|n| n.protocol)
    }

    /// Direct peers usable at `now`, in id order (deterministic output).
    pub fn usable_neighbors(&self, now: Instant) -> Vec<(NodeId, PeerProtocol)> {
        let limit = self.config.route_expiry();
        let mut v: Vec<_> = self
            .neighbors
            .iter()
            .filter(|(_, n)| n.usable(now, limit))
            .map(|(id, n)| (*id, n.protocol))
            .collect();
        v.sort_unstable_by_key(|(id, _)| *id);
        v
    }

    /// Every registered direct peer (failed or silent included), in id order.
    pub fn direct_peers(&self) -> Vec<(NodeId, PeerProtocol)> {
        let mut v: Vec<_> = self
            .neighbors
            .iter()
            .map(|(id, n)| (*id, n.protocol))
            .collect();
        v.sort_unstable_by_key(|(id, _)| *id);
        v
    }

    // --- learning from pingwaves (MESH2.md §2.2) ---

    /// Records that `via` (a direct peer) relayed a pingwave of `origin`
    /// with sequence `seq` that took `hops` links to reach us. Returns the
    /// dedup verdict (relay only [`SeqVerdict::New`]).
    ///
    /// The route through `via` takes this news even when it is worse than
    /// what `via` said before (v0.11 never accepts worse news); news about
    /// a route longer than [`MAX_ROUTE_HOPS`] is dedup-checked but not kept
    /// as a route.
    ///
    /// # Errors
    /// [`LearnRefused`] when a new destination would exceed a cap; the
    /// pingwave must then be dropped, not relayed.
    pub fn learn(
        &mut self,
        origin: NodeId,
        via: NodeId,
        hops: u8,
        seq: u64,
        now: Instant,
    ) -> Result<SeqVerdict, LearnRefused> {
        let restart_after = self.config.origin_restart_after();
        let max_candidates = self.config.max_candidates_per_destination.max(1);
        let quota = self.config.max_routes_per_neighbor;
        let Some(neighbor) = self.neighbors.get(&via) else {
            return Ok(SeqVerdict::Stale);
        };
        if origin == self.own_id {
            return Ok(SeqVerdict::Stale);
        }
        let neighbor_full = neighbor.learned_routes >= quota;
        if !self.learned.contains_key(&origin) {
            if self.learned.len() >= self.config.max_destinations {
                return Err(LearnRefused::TableFull);
            }
            if neighbor_full {
                return Err(LearnRefused::NeighborQuota);
            }
            self.learned.insert(
                origin,
                Learned {
                    candidates: Vec::new(),
                    seqs: SeqWindow::new(seq, now),
                },
            );
            // The window was created with this seq: it is news.
            let added = self.update_candidate(origin, via, hops, seq, now, max_candidates, true);
            self.count_added(via, added);
            return Ok(SeqVerdict::New);
        }
        let Some(entry) = self.learned.get_mut(&origin) else {
            return Ok(SeqVerdict::Stale);
        };
        let verdict = entry.seqs.observe(seq, now, restart_after);
        if verdict == SeqVerdict::Stale {
            return Ok(verdict);
        }
        // The origin restarted (its window was reset below what the
        // candidates heard): their news is from its previous life.
        let highest = entry.seqs.highest();
        for c in entry.candidates.iter_mut().filter(|c| c.seq > highest) {
            c.seq = 0;
        }
        let has_candidate = entry.candidates.iter().any(|c| c.via == via);
        let added = self.update_candidate(
            origin,
            via,
            hops,
            seq,
            now,
            max_candidates,
            has_candidate || !neighbor_full,
        );
        self.count_added(via, added);
        Ok(verdict)
    }

    /// Updates or inserts the candidate through `via`. Returns the
    /// neighbour whose candidate was displaced (if any) and whether one
    /// was added, as (added, displaced).
    #[allow(clippy::too_many_arguments)]
    fn update_candidate(
        &mut self,
        origin: NodeId,
        via: NodeId,
        hops: u8,
        seq: u64,
        now: Instant,
        max_candidates: usize,
        may_add: bool,
    ) -> (bool, Option<NodeId>) {
        let expiry = self.config.route_expiry();
        let Some(entry) = self.learned.get_mut(&origin) else {
            return (false, None);
        };
        if let Some(c) = entry.candidates.iter_mut().find(|c| c.via == via) {
            if seq >= c.seq {
                if hops > MAX_ROUTE_HOPS {
                    // Worse news beyond our reach: this path is gone.
                    entry.candidates.retain(|c| c.via != via);
                    return (false, Some(via));
                }
                c.hops = hops;
                c.seq = seq;
                c.refreshed_at = now;
            }
            return (false, None);
        }
        if hops > MAX_ROUTE_HOPS || !may_add {
            return (false, None);
        }
        let fresh = Candidate {
            via,
            hops,
            seq,
            learned_at: now,
            refreshed_at: now,
        };
        if entry.candidates.len() < max_candidates {
            entry.candidates.push(fresh);
            return (true, None);
        }
        // Full: displace the worst (expired first, then longest, then
        // stalest) if the newcomer is better.
        let stale = |c: &Candidate| now.saturating_duration_since(c.refreshed_at) > expiry;
        let worst = entry
            .candidates
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| (stale(c), c.hops, std::cmp::Reverse(c.refreshed_at)))
            .map(|(i, c)| (i, *c));
        match worst {
            Some((i, w)) if stale(&w) || w.hops > hops => {
                entry.candidates[i] = fresh;
                (true, Some(w.via))
            }
            _ => (false, None),
        }
    }

    fn count_added(&mut self, via: NodeId, (added, displaced): (bool, Option<NodeId>)) {
        if added && let Some(n) = self.neighbors.get_mut(&via) {
            n.learned_routes += 1;
        }
        if let Some(d) = displaced
            && let Some(n) = self.neighbors.get_mut(&d)
        {
            n.learned_routes = n.learned_routes.saturating_sub(1);
        }
    }

    // --- lookups ---

    /// The route to `destination` at `now`, if any: a usable direct peer
    /// first, then a relayed peer's relay while it is usable, then the
    /// shortest fresh learned route through a usable neighbour (ties go
    /// to the lowest next-hop id, so every node decides alike).
    pub fn route_for(&self, destination: NodeId, now: Instant) -> Option<Route> {
        self.route_avoiding(destination, None, now)
    }

    /// Like [`route_for`](Self::route_for), never through `avoid` (the
    /// neighbour a packet came from: no forwarding back to the sender).
    /// Allocation-free: this is the per-datagram path of a relay.
    pub fn route_avoiding(
        &self,
        destination: NodeId,
        avoid: Option<NodeId>,
        now: Instant,
    ) -> Option<Route> {
        let pinned = [
            self.direct_route(destination, now),
            self.relayed_route(destination, now),
        ];
        pinned
            .into_iter()
            .flatten()
            .find(|r| Some(r.next_hop) != avoid)
            .or_else(|| {
                self.learned_routes(destination, now)
                    .filter(|r| Some(r.next_hop) != avoid)
                    .min_by_key(|r| (r.stale, r.hops, r.next_hop))
            })
    }

    /// Every usable route to `destination` at `now`, best first.
    pub fn routes_to(&self, destination: NodeId, now: Instant) -> Vec<Route> {
        let mut routes: Vec<Route> = self
            .direct_route(destination, now)
            .into_iter()
            .chain(self.relayed_route(destination, now))
            .collect();
        let mut learned: Vec<Route> = self.learned_routes(destination, now).collect();
        learned.sort_unstable_by_key(|r| (r.stale, r.hops, r.next_hop));
        routes.extend(learned);
        routes
    }

    fn usable(&self, neighbor: NodeId, now: Instant) -> bool {
        let limit = self.config.route_expiry();
        self.neighbors
            .get(&neighbor)
            .is_some_and(|n| n.usable(now, limit))
    }

    fn direct_route(&self, destination: NodeId, now: Instant) -> Option<Route> {
        let n = self.neighbors.get(&destination)?;
        self.usable(destination, now).then_some(Route {
            destination,
            next_hop: destination,
            hops: 1,
            kind: RouteKind::Direct,
            learned_at: n.last_heard,
            refreshed_at: n.last_heard,
            stale: false,
        })
    }

    fn relayed_route(&self, destination: NodeId, now: Instant) -> Option<Route> {
        let r = self.relayed.get(&destination)?;
        if !self.usable(r.relay, now) || self.direct_route(destination, now).is_some() {
            return None;
        }
        let hops = self
            .learned
            .get(&destination)
            .and_then(|l| l.candidates.iter().find(|c| c.via == r.relay))
            .map_or(2, |c| c.hops);
        Some(Route {
            destination,
            next_hop: r.relay,
            hops,
            kind: RouteKind::Relayed,
            learned_at: r.since,
            refreshed_at: r.since,
            stale: false,
        })
    }

    /// Learned routes not past the hold time, through usable neighbours
    /// other than the direct or relay next hop (listed already), unsorted.
    fn learned_routes(
        &self,
        destination: NodeId,
        now: Instant,
    ) -> impl Iterator<Item = Route> + '_ {
        let expiry = self.config.route_expiry();
        let hold = self.config.route_hold();
        let direct = self.direct_route(destination, now).map(|r| r.next_hop);
        let relay = self.relayed_route(destination, now).map(|r| r.next_hop);
        self.learned
            .get(&destination)
            .into_iter()
            .flat_map(|l| l.candidates.iter())
            .filter(move |c| now.saturating_duration_since(c.refreshed_at) <= hold)
            .filter(move |c| Some(c.via) != direct && Some(c.via) != relay)
            .filter(move |c| self.usable(c.via, now))
            .map(move |c| Route {
                destination,
                next_hop: c.via,
                hops: c.hops,
                kind: RouteKind::Learned,
                learned_at: c.learned_at,
                refreshed_at: c.refreshed_at,
                stale: now.saturating_duration_since(c.refreshed_at) > expiry,
            })
    }

    /// Every destination we know of (direct, relayed, learned), in id order.
    pub fn destinations(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .neighbors
            .keys()
            .chain(self.relayed.keys())
            .chain(self.learned.keys())
            .copied()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Learned destinations held (the capped quantity).
    pub fn learned_len(&self) -> usize {
        self.learned.len()
    }

    /// Learned route candidates held through `neighbor` (its quota use).
    pub fn learned_via(&self, neighbor: NodeId) -> usize {
        self.neighbors
            .get(&neighbor)
            .map_or(0, |n| n.learned_routes)
    }

    // --- maintenance ---

    /// Deletes learned routes without news for the hold time, and
    /// destinations left with none (with their dedup window). Call each
    /// tick; lookups already ignore them, so this only frees memory.
    pub fn sweep(&mut self, now: Instant) {
        let hold = self.config.route_hold();
        let neighbors = &mut self.neighbors;
        self.learned.retain(|_, l| {
            l.candidates.retain(|c| {
                let keep = now.saturating_duration_since(c.refreshed_at) <= hold;
                if !keep && let Some(n) = neighbors.get_mut(&c.via) {
                    n.learned_routes = n.learned_routes.saturating_sub(1);
                }
                keep
            });
            !l.candidates.is_empty()
        });
    }

    fn destinations_via(&self, peer: NodeId, now: Instant) -> Vec<NodeId> {
        self.destinations()
            .into_iter()
            .filter(|d| self.route_for(*d, now).is_some_and(|r| r.next_hop == peer))
            .collect()
    }

    fn drop_candidates_via(&mut self, peer: NodeId) {
        self.learned.retain(|_, l| {
            l.candidates.retain(|c| c.via != peer);
            !l.candidates.is_empty()
        });
        if let Some(n) = self.neighbors.get_mut(&peer) {
            n.learned_routes = 0;
        }
    }

    fn reroutes(&self, affected: Vec<NodeId>, old: NodeId, now: Instant) -> Vec<Reroute> {
        affected
            .into_iter()
            .map(|destination| Reroute {
                destination,
                old_next_hop: old,
                new_route: self.route_for(destination, now),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const H: Duration = Duration::from_secs(5);

    fn table(peers: &[NodeId], now: Instant) -> RoutingTable {
        let config = RoutingConfig {
            max_candidates_per_destination: 2,
            ..RoutingConfig::with_heartbeat_interval(H)
        };
        let mut t = RoutingTable::new(1, config);
        for p in peers {
            t.add_direct_peer(*p, PeerProtocol::Legacy, now);
        }
        t
    }

    #[test]
    fn a_shorter_candidate_displaces_the_longest_and_quotas_follow() {
        let now = Instant::now();
        let mut t = table(&[2, 3, 4], now);
        assert_eq!(t.learn(9, 2, 4, 1, now), Ok(SeqVerdict::New));
        assert_eq!(t.learn(9, 3, 3, 1, now), Ok(SeqVerdict::RecentDuplicate));
        assert_eq!((t.learned_via(2), t.learned_via(3)), (1, 1));
        // Full (2 candidates): a longer newcomer is not kept…
        t.learn(9, 4, 5, 1, now).unwrap();
        assert_eq!(t.learned_via(4), 0);
        // …a shorter one displaces the longest.
        t.learn(9, 4, 2, 2, now).unwrap();
        assert_eq!((t.learned_via(2), t.learned_via(4)), (0, 1));
        let routes = t.routes_to(9, now);
        let hops: Vec<_> = routes.iter().map(|r| (r.next_hop, r.hops)).collect();
        assert_eq!(hops, vec![(4, 2), (3, 3)]);
        // Stale candidates are displaced first and rank after fresh ones;
        // sweep frees them after the hold time.
        let later = now + H * 3 + Duration::from_millis(1);
        t.add_direct_peer(2, PeerProtocol::Legacy, later);
        t.learn(9, 2, 6, 3, later).unwrap();
        t.heard_from(4, later);
        let routes = t.routes_to(9, later);
        let ranked: Vec<_> = routes.iter().map(|r| (r.next_hop, r.stale)).collect();
        assert_eq!(ranked, vec![(2, false), (4, true)]);
        t.heard_from(2, now + H * 6);
        t.heard_from(4, now + H * 6);
        t.sweep(now + H * 6);
        assert_eq!(t.routes_to(9, now + H * 6).len(), 2);
        t.sweep(now + H * 6 + Duration::from_millis(1));
        assert_eq!(t.learned_via(2) + t.learned_via(3) + t.learned_via(4), 1);
    }

    #[test]
    fn news_beyond_reach_withdraws_the_path_through_its_sender() {
        let now = Instant::now();
        let mut t = table(&[2], now);
        t.learn(9, 2, 3, 1, now).unwrap();
        t.learn(9, 2, MAX_ROUTE_HOPS + 1, 2, now).unwrap();
        assert!(t.route_for(9, now).is_none());
        assert_eq!(t.learned_via(2), 0);
    }

    #[test]
    fn own_id_and_unknown_senders_teach_nothing() {
        let now = Instant::now();
        let mut t = table(&[2], now);
        assert_eq!(t.learn(1, 2, 2, 1, now), Ok(SeqVerdict::Stale));
        assert_eq!(t.learn(9, 7, 2, 1, now), Ok(SeqVerdict::Stale));
        t.add_direct_peer(1, PeerProtocol::Net, now);
        t.add_relayed_peer(1, 2, now);
        assert!(t.route_for(1, now).is_none());
        assert_eq!(t.learned_len(), 0);
    }
}
