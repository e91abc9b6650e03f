//! The proximity graph (COMPUTE.md §4.5): who is near, how far, how
//! loaded, built from the 72-byte EnhancedPingwaves (WIRE.md §8, decoded by
//! [`crate::wire::Pingwave`]) and from round-trip times the caller
//! measures on its own sessions.
//!
//! Per pingwave: ignore our own and those past
//! [`PINGWAVE_MAX_HOPS`];
//! deduplicate by (origin, seq) with the mesh's per-origin
//! [`SeqWindow`] (an origin silent for the dedup interval may restart its
//! counter); upsert the origin (hops, load, health, next hop); refresh the
//! local→sender edge at most once per second; forward while ttl > 0
//! (ttl − 1, hops + 1). Nodes not heard from for the node timeout are
//! collected by [`ProximityGraph::gc`]; the graph never holds more than
//! `max_nodes` (a new node that does not fit after a collection is
//! dropped, not inserted).
//!
//! Departs from v0.11 (§8 item 14): latency is **measured from the local
//! side only**. v0.11 feeds the sender→origin EWMA with `now − origin
//! timestamp`, a one-way figure that needs synchronized clocks. Here the
//! only latency samples are round-trip times the caller passes to
//! [`ProximityGraph::record_rtt`] (e.g. the mesh session's RTT to a
//! neighbour), halved and smoothed with the same 1/8 EWMA; a node without
//! samples is scored by hop count (10 ms a hop), and a multi-hop node is
//! scored as its next hop's measured latency plus 10 ms for every further
//! hop. The origin timestamp is ignored.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::mesh::routing::{SeqVerdict, SeqWindow};
use crate::wire::pingwave::{Health, PINGWAVE_MAX_HOPS, Pingwave};

/// Graph settings (COMPUTE.md §7 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProximityConfig {
    /// Hops of the neighbourhood a node's own pingwaves cover (3).
    pub radius: u8,
    /// A node not heard from for this long is collected (30 s).
    pub node_timeout: Duration,
    /// An origin silent this long may restart its sequence numbers (10 s).
    pub dedup_window: Duration,
    /// Most nodes tracked (10 000).
    pub max_nodes: usize,
    /// Minimum interval between refreshes of one edge (1 s).
    pub edge_refresh: Duration,
}

impl Default for ProximityConfig {
    fn default() -> Self {
        Self {
            radius: 3,
            node_timeout: Duration::from_secs(30),
            dedup_window: Duration::from_secs(10),
            max_nodes: 10_000,
            edge_refresh: Duration::from_secs(1),
        }
    }
}

/// Milliseconds of estimated latency per hop without a measurement.
pub const MS_PER_HOP: f64 = 10.0;

/// What the graph knows of a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProximityNode {
    /// Node id.
    pub node_id: u64,
    /// Hops from us (1 = neighbour).
    pub hops: u8,
    /// Neighbour through which it is nearest.
    pub next_hop: u64,
    /// Load level (0–255) from its last pingwave.
    pub load_level: u8,
    /// Health from its last pingwave.
    pub health: Health,
    /// Capability hash from its last pingwave.
    pub capability_hash: u64,
    /// Capability version from its last pingwave.
    pub capability_version: u32,
    /// Smoothed one-way latency (RTT / 2) to it, if measured.
    pub latency: Option<Duration>,
    /// Last pingwave or RTT sample.
    pub last_seen: Instant,
}

impl ProximityNode {
    fn fresh(node_id: u64, hops: u8, next_hop: u64, now: Instant) -> Self {
        Self {
            node_id,
            hops,
            next_hop,
            load_level: 0,
            health: Health::Unknown,
            capability_hash: 0,
            capability_version: 0,
            latency: None,
            last_seen: now,
        }
    }
}

/// Why a pingwave changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PingwaveDrop {
    /// It is our own, come back.
    Own,
    /// It has taken too many hops.
    TooManyHops,
    /// This (origin, seq) was already seen.
    Duplicate,
    /// The graph is full and the origin is new.
    Full,
}

/// What to do after a pingwave was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingwaveAccepted {
    /// The copy to forward to the other neighbours (ttl was > 0).
    pub forward: Option<Pingwave>,
    /// The origin was not in the graph before.
    pub new_node: bool,
}

/// The proximity graph of one node. Not synchronized: the owner keeps it
/// behind its own lock.
#[derive(Debug)]
pub struct ProximityGraph {
    local: u64,
    config: ProximityConfig,
    nodes: HashMap<u64, ProximityNode>,
    seqs: HashMap<u64, SeqWindow>,
    /// Last refresh of the local→neighbour edge.
    edges: HashMap<u64, Instant>,
}

impl ProximityGraph {
    /// An empty graph for the node `local`.
    pub fn new(local: u64, config: ProximityConfig) -> Self {
        Self {
            local,
            config,
            nodes: HashMap::new(),
            seqs: HashMap::new(),
            edges: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ProximityConfig {
        &self.config
    }

    /// A pingwave this node emits: ttl = radius. This graph never reads
    /// the origin timestamp, but v0.11 peers derive latency from it, so the
    /// caller passes its wall clock (µs since the UNIX epoch) to keep them
    /// sane.
    pub fn own_pingwave(
        &self,
        seq: u64,
        origin_timestamp_us: u64,
        load_level: u8,
        health: Health,
    ) -> Pingwave {
        let mut pw = Pingwave::new(self.local, seq, origin_timestamp_us);
        pw.ttl = self.config.radius;
        pw.load_level = load_level;
        pw.health = health;
        pw
    }

    /// Room for `node_id`, collecting expired nodes if needed.
    fn has_room(&mut self, node_id: u64, now: Instant) -> bool {
        if self.nodes.contains_key(&node_id) || self.nodes.len() < self.config.max_nodes {
            return true;
        }
        self.gc(now);
        self.nodes.len() < self.config.max_nodes
    }

    /// Feeds a round-trip time to neighbour `node_id`, measured locally.
    /// Returns false when the graph is full and the node is new.
    pub fn record_rtt(&mut self, node_id: u64, rtt: Duration, now: Instant) -> bool {
        if node_id == self.local || !self.has_room(node_id, now) {
            return false;
        }
        let sample = rtt / 2;
        let node = self
            .nodes
            .entry(node_id)
            .or_insert_with(|| ProximityNode::fresh(node_id, 1, node_id, now));
        node.latency = Some(match node.latency {
            None => sample,
            // old − old/8 + sample/8
            Some(old) => old - old / 8 + sample / 8,
        });
        node.hops = 1;
        node.next_hop = node_id;
        node.last_seen = node.last_seen.max(now);
        true
    }

    /// Processes a pingwave received from neighbour `from`.
    ///
    /// # Errors
    /// [`PingwaveDrop`] says why it changed nothing (it is not forwarded
    /// then).
    pub fn on_pingwave(
        &mut self,
        pw: &Pingwave,
        from: u64,
        now: Instant,
    ) -> Result<PingwaveAccepted, PingwaveDrop> {
        let origin = pw.origin_node_id();
        if origin == self.local {
            return Err(PingwaveDrop::Own);
        }
        if pw.hop_count >= PINGWAVE_MAX_HOPS {
            return Err(PingwaveDrop::TooManyHops);
        }
        self.refresh_edge(from, now);
        let verdict = match self.seqs.get_mut(&origin) {
            Some(w) => w.observe(pw.seq, now, self.config.dedup_window),
            None => SeqVerdict::New,
        };
        if verdict != SeqVerdict::New {
            return Err(PingwaveDrop::Duplicate);
        }
        if !self.has_room(origin, now) {
            return Err(PingwaveDrop::Full);
        }
        self.seqs
            .entry(origin)
            .or_insert_with(|| SeqWindow::new(pw.seq, now));
        let hops = pw.hop_count.saturating_add(1);
        let new_node = !self.nodes.contains_key(&origin);
        let timeout = self.config.node_timeout;
        let node = self
            .nodes
            .entry(origin)
            .or_insert_with(|| ProximityNode::fresh(origin, hops, from, now));
        // Keep the nearest route unless it has gone quiet.
        let route_stale = now.saturating_duration_since(node.last_seen) >= timeout;
        if new_node || hops <= node.hops || route_stale {
            node.hops = hops;
            node.next_hop = from;
        }
        node.load_level = pw.load_level;
        node.health = pw.health;
        node.capability_hash = pw.capability_hash;
        node.capability_version = pw.capability_version;
        node.last_seen = node.last_seen.max(now);
        let forward = (pw.ttl > 0).then(|| pw.forwarded());
        Ok(PingwaveAccepted { forward, new_node })
    }

    /// Marks the local→`neighbour` edge alive, at most once per
    /// `edge_refresh`. Returns whether it was refreshed.
    fn refresh_edge(&mut self, neighbour: u64, now: Instant) -> bool {
        let every = self.config.edge_refresh;
        match self.edges.get_mut(&neighbour) {
            Some(at) if now.saturating_duration_since(*at) < every => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                if self.edges.len() < self.config.max_nodes {
                    self.edges.insert(neighbour, now);
                }
                true
            }
        }
    }

    /// When the local→`neighbour` edge was last refreshed.
    pub fn edge_refreshed_at(&self, neighbour: u64) -> Option<Instant> {
        self.edges.get(&neighbour).copied()
    }

    /// A node's entry.
    pub fn node(&self, node_id: u64) -> Option<&ProximityNode> {
        self.nodes.get(&node_id)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// No nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Estimated latency to a node in ms: measured if we have samples,
    /// else the next hop's measured latency plus 10 ms a further hop, else
    /// 10 ms a hop.
    pub fn latency_ms(&self, node_id: u64) -> Option<f64> {
        let node = self.nodes.get(&node_id)?;
        if let Some(l) = node.latency {
            return Some(l.as_secs_f64() * 1_000.0);
        }
        let via = self
            .nodes
            .get(&node.next_hop)
            .filter(|n| n.node_id != node_id)
            .and_then(|n| n.latency);
        Some(match via {
            Some(l) => l.as_secs_f64() * 1_000.0 + MS_PER_HOP * f64::from(node.hops - 1),
            None => MS_PER_HOP * f64::from(node.hops),
        })
    }

    /// Routing score (lower is better): latency ms + load / 255 × 50 +
    /// health (0 Healthy, 25 Degraded, 50 Unknown, 1 000 Unhealthy).
    pub fn routing_score(&self, node_id: u64) -> Option<f64> {
        let node = self.nodes.get(&node_id)?;
        let health = match node.health {
            Health::Healthy => 0.0,
            Health::Degraded => 25.0,
            Health::Unhealthy => 1_000.0,
            _ => 50.0,
        };
        Some(self.latency_ms(node_id)? + f64::from(node.load_level) / 255.0 * 50.0 + health)
    }

    /// Up to `n` nodes by routing score, best first (ties by id).
    pub fn best_nodes(&self, n: usize) -> Vec<(u64, f64)> {
        let mut scored: Vec<(u64, f64)> = self
            .nodes
            .keys()
            .filter_map(|&id| Some((id, self.routing_score(id)?)))
            .collect();
        scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        scored.truncate(n);
        scored
    }

    /// Drops nodes not heard from for the node timeout (and their dedup
    /// windows and edges); returns how many.
    pub fn gc(&mut self, now: Instant) -> usize {
        let timeout = self.config.node_timeout;
        let before = self.nodes.len();
        self.nodes
            .retain(|_, n| now.saturating_duration_since(n.last_seen) < timeout);
        let nodes = &self.nodes;
        self.seqs.retain(|id, _| nodes.contains_key(id));
        self.edges
            .retain(|_, at| now.saturating_duration_since(*at) < timeout);
        before - self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u64 = 1;

    fn graph() -> ProximityGraph {
        ProximityGraph::new(ME, ProximityConfig::default())
    }

    fn pw(origin: u64, seq: u64, hops: u8, ttl: u8) -> Pingwave {
        let mut p = Pingwave::new(origin, seq, 0);
        p.hop_count = hops;
        p.ttl = ttl;
        p.health = Health::Healthy;
        p
    }

    #[test]
    fn own_and_overlong_pingwaves_are_ignored() {
        let mut g = graph();
        let t = Instant::now();
        assert_eq!(
            g.on_pingwave(&pw(ME, 1, 0, 3), 2, t),
            Err(PingwaveDrop::Own)
        );
        assert_eq!(
            g.on_pingwave(&pw(5, 1, PINGWAVE_MAX_HOPS, 3), 2, t),
            Err(PingwaveDrop::TooManyHops)
        );
        assert!(g.is_empty());
    }

    #[test]
    fn dedup_then_forward_while_ttl_remains() {
        let mut g = graph();
        let t = Instant::now();
        let a = g.on_pingwave(&pw(5, 1, 1, 2), 2, t).unwrap();
        assert!(a.new_node);
        let fwd = a.forward.unwrap();
        assert_eq!((fwd.ttl, fwd.hop_count), (1, 2));
        assert_eq!(
            g.on_pingwave(&pw(5, 1, 0, 3), 3, t),
            Err(PingwaveDrop::Duplicate)
        );
        let b = g.on_pingwave(&pw(5, 2, 2, 0), 2, t).unwrap();
        assert_eq!(b.forward, None, "ttl 0 stops here");
        assert!(!b.new_node);
        // A quiet origin may restart its counter after the dedup window.
        g.on_pingwave(&pw(5, 100, 1, 1), 2, t).unwrap();
        assert_eq!(
            g.on_pingwave(&pw(5, 1, 1, 1), 2, t + Duration::from_secs(1)),
            Err(PingwaveDrop::Duplicate)
        );
        assert!(
            g.on_pingwave(&pw(5, 1, 1, 1), 2, t + Duration::from_secs(10))
                .is_ok()
        );
    }

    #[test]
    fn nearest_route_wins_and_node_fields_follow_the_latest() {
        let mut g = graph();
        let t = Instant::now();
        g.on_pingwave(&pw(9, 1, 2, 1), 2, t).unwrap();
        assert_eq!(
            (g.node(9).unwrap().hops, g.node(9).unwrap().next_hop),
            (3, 2)
        );
        let mut nearer = pw(9, 2, 0, 3);
        nearer.load_level = 200;
        g.on_pingwave(&nearer, 4, t).unwrap();
        let n = g.node(9).unwrap();
        assert_eq!((n.hops, n.next_hop, n.load_level), (1, 4, 200));
        // A longer route does not replace a fresh shorter one.
        g.on_pingwave(&pw(9, 3, 2, 1), 2, t + Duration::from_secs(1))
            .unwrap();
        assert_eq!(g.node(9).unwrap().next_hop, 4);
        // …but does once the shorter one has gone quiet.
        g.on_pingwave(&pw(9, 4, 2, 1), 2, t + Duration::from_secs(40))
            .unwrap();
        assert_eq!(g.node(9).unwrap().next_hop, 2);
    }

    #[test]
    fn latency_comes_from_local_rtt_only() {
        let mut g = graph();
        let t = Instant::now();
        // A pingwave claiming an ancient origin timestamp changes nothing.
        let mut p = pw(2, 1, 0, 3);
        p.origin_timestamp_us = 1;
        g.on_pingwave(&p, 2, t).unwrap();
        assert_eq!(g.node(2).unwrap().latency, None);
        assert_eq!(g.latency_ms(2), Some(10.0));
        // RTT samples, halved and smoothed by 1/8.
        assert!(g.record_rtt(2, Duration::from_millis(40), t));
        assert_eq!(g.node(2).unwrap().latency, Some(Duration::from_millis(20)));
        g.record_rtt(2, Duration::from_millis(120), t);
        // 20 − 20/8 + 60/8 = 25 ms.
        assert_eq!(g.node(2).unwrap().latency, Some(Duration::from_millis(25)));
        // A node two hops away through 2: 25 ms + 10 ms.
        g.on_pingwave(&pw(7, 1, 1, 2), 2, t).unwrap();
        assert_eq!(g.latency_ms(7), Some(35.0));
        assert!(!g.record_rtt(ME, Duration::from_millis(1), t));
    }

    #[test]
    fn routing_score_adds_load_and_health() {
        let mut g = graph();
        let t = Instant::now();
        let mut p = pw(3, 1, 0, 3);
        p.load_level = 255;
        p.health = Health::Degraded;
        g.on_pingwave(&p, 3, t).unwrap();
        // 10 (one hop) + 50 (full load) + 25 (degraded).
        assert_eq!(g.routing_score(3), Some(85.0));
        let mut q = pw(4, 1, 0, 3);
        q.health = Health::Unhealthy;
        g.on_pingwave(&q, 4, t).unwrap();
        g.on_pingwave(&pw(5, 1, 0, 3), 5, t).unwrap();
        assert_eq!(g.best_nodes(2), vec![(5, 10.0), (3, 85.0)]);
        assert_eq!(g.routing_score(99), None);
    }

    #[test]
    fn edges_refresh_at_most_once_a_second() {
        let mut g = graph();
        let t = Instant::now();
        g.on_pingwave(&pw(5, 1, 1, 1), 2, t).unwrap();
        g.on_pingwave(&pw(5, 2, 1, 1), 2, t + Duration::from_millis(999))
            .unwrap();
        assert_eq!(g.edge_refreshed_at(2), Some(t));
        g.on_pingwave(&pw(5, 3, 1, 1), 2, t + Duration::from_secs(1))
            .unwrap();
        assert_eq!(g.edge_refreshed_at(2), Some(t + Duration::from_secs(1)));
    }

    #[test]
    fn gc_and_the_node_bound() {
        let mut g = ProximityGraph::new(
            ME,
            ProximityConfig {
                max_nodes: 3,
                ..ProximityConfig::default()
            },
        );
        let t = Instant::now();
        for id in 10..13 {
            g.on_pingwave(&pw(id, 1, 0, 1), id, t).unwrap();
        }
        assert_eq!(
            g.on_pingwave(&pw(20, 1, 0, 1), 20, t),
            Err(PingwaveDrop::Full)
        );
        assert!(!g.record_rtt(21, Duration::from_millis(5), t));
        // Refresh one; the others time out and make room.
        let later = t + Duration::from_secs(20);
        g.on_pingwave(&pw(10, 2, 0, 1), 10, later).unwrap();
        let at = t + Duration::from_secs(30);
        assert!(g.on_pingwave(&pw(20, 1, 0, 1), 20, at).is_ok());
        assert_eq!(g.len(), 2);
        assert_eq!(g.gc(t + Duration::from_secs(50)), 1);
        assert!(g.node(10).is_none() && g.node(20).is_some());
        assert_eq!(g.gc(t + Duration::from_secs(60)), 1);
        assert!(g.is_empty());
    }

    #[test]
    fn own_pingwave_carries_radius_and_state() {
        let g = graph();
        let p = g.own_pingwave(9, 1_700_000_000_000_000, 17, Health::Degraded);
        let back = Pingwave::decode(&p.encode()).unwrap();
        assert_eq!((back.ttl, back.seq, back.load_level), (3, 9, 17));
        assert_eq!(back.origin_timestamp_us, 1_700_000_000_000_000);
        assert_eq!(back.origin_node_id(), ME);
        assert_eq!(back.health, Health::Degraded);
    }
}
