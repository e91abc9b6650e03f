//! A deterministic in-memory network of [`Router`]s on a fake clock, for
//! tests and convergence benchmarks (`test-util` builds only).
//!
//! Each node ticks every heartbeat interval (at its own phase): it sends a
//! heartbeat and a pingwave to each linked neighbour, then sweeps its
//! table. Datagrams cross a link after a fixed latency. Nodes can be
//! killed and links cut; optionally a failure detector declares silent
//! neighbours Failed after `fail_after`. Routed datagrams can be traced
//! hop by hop through [`Router::forward`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::{DropReason, Forward, NodeId, PeerProtocol, Route, Router, RoutingConfig};
use crate::wire::{HEADER_SIZE, ROUTED_DATA_TTL, RoutingHeader};

/// What travels between simulated nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Datagram {
    Heartbeat,
    Pingwave([u8; 72]),
}

#[derive(Debug)]
struct SimNode {
    router: Router,
    alive: bool,
    next_tick: Instant,
    last_heard: HashMap<usize, Instant>,
    failed: BTreeSet<usize>,
}

/// N routers joined by links, driven by a fake clock.
#[derive(Debug)]
pub struct SimMesh {
    start: Instant,
    now: Instant,
    heartbeat: Duration,
    latency: Duration,
    fail_after: Option<Duration>,
    protocol: PeerProtocol,
    nodes: Vec<SimNode>,
    links: BTreeSet<(usize, usize)>,
    /// (due, sequence) → (from, to, datagram).
    in_flight: BTreeMap<(Instant, u64), (usize, usize, Datagram)>,
    sent: u64,
    /// Per-mille of datagrams lost on every link, and the PRNG state.
    loss_per_mille: u32,
    rng: u64,
}

impl SimMesh {
    /// `n` nodes with `config`, speaking `protocol` to each other, whose
    /// ticks are spread evenly over the heartbeat interval; links carry a
    /// datagram in `latency`.
    pub fn new(n: usize, config: RoutingConfig, protocol: PeerProtocol, latency: Duration) -> Self {
        let start = Instant::now();
        let h = config.heartbeat_interval.max(Duration::from_millis(1));
        let nodes = (0..n)
            .map(|i| SimNode {
                router: Router::new(Self::node_id(i), config),
                alive: true,
                next_tick: start
                    + h * u32::try_from(i).unwrap_or(0) / u32::try_from(n.max(1)).unwrap_or(1),
                last_heard: HashMap::new(),
                failed: BTreeSet::new(),
            })
            .collect();
        Self {
            start,
            now: start,
            heartbeat: h,
            latency,
            fail_after: None,
            protocol,
            nodes,
            links: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            sent: 0,
            loss_per_mille: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// A chain 0 — 1 — … — n−1.
    pub fn chain(n: usize, config: RoutingConfig, protocol: PeerProtocol) -> Self {
        let mut sim = Self::new(n, config, protocol, Duration::from_millis(1));
        for i in 1..n {
            sim.link(i - 1, i);
        }
        sim
    }

    /// Neighbours silent for `after` are declared Failed (and recover on
    /// their next heartbeat), like the node's failure detector.
    pub fn with_failure_detector(mut self, after: Duration) -> Self {
        self.fail_after = Some(after);
        self
    }

    /// Every link loses `per_mille` of its datagrams (heartbeats and
    /// pingwaves alike), chosen by a PRNG seeded with `seed`.
    pub fn with_loss(mut self, per_mille: u32, seed: u64) -> Self {
        self.loss_per_mille = per_mille.min(1000);
        self.rng = seed | 1;
        self
    }

    /// xorshift64: deterministic, good enough to pick lost datagrams.
    fn lost(&mut self) -> bool {
        if self.loss_per_mille == 0 {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 1000 < u64::from(self.loss_per_mille)
    }

    /// The node id of node `i`.
    pub fn node_id(i: usize) -> NodeId {
        0x4E45_0000_0000_0000 | (i as u64 + 1)
    }

    /// The node index of `id`, if it is one of ours.
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        (0..self.nodes.len()).find(|i| Self::node_id(*i) == id)
    }

    /// The current fake time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Time since the simulation started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The heartbeat interval H.
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// Node `i`'s router.
    pub fn router(&self, i: usize) -> &Router {
        &self.nodes[i].router
    }

    /// Node `i`'s router, mutably.
    pub fn router_mut(&mut self, i: usize) -> &mut Router {
        &mut self.nodes[i].router
    }

    /// Links `a` and `b` (both register the other as a direct peer now).
    pub fn link(&mut self, a: usize, b: usize) {
        let now = self.now;
        let protocol = self.protocol;
        self.links.insert((a.min(b), a.max(b)));
        for (x, y) in [(a, b), (b, a)] {
            self.nodes[x]
                .router
                .table_mut()
                .add_direct_peer(Self::node_id(y), protocol, now);
            self.nodes[x].last_heard.insert(y, now);
        }
    }

    /// Cuts the link between `a` and `b` (datagrams stop; peers stay
    /// registered, as after a silent partition).
    pub fn cut(&mut self, a: usize, b: usize) {
        self.links.remove(&(a.min(b), a.max(b)));
    }

    /// Kills node `i`: it stops sending, receiving and relaying.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b))) && self.nodes[a].alive && self.nodes[b].alive
    }

    fn neighbors_of(&self, i: usize) -> Vec<usize> {
        self.links
            .iter()
            .filter_map(|&(a, b)| match (a == i, b == i) {
                (true, _) => Some(b),
                (_, true) => Some(a),
                _ => None,
            })
            .collect()
    }

    fn send(&mut self, from: usize, to: usize, datagram: Datagram) {
        if !self.linked(from, to) || self.lost() {
            return;
        }
        self.sent += 1;
        self.in_flight
            .insert((self.now + self.latency, self.sent), (from, to, datagram));
    }

    /// Runs every event due up to `until` and stops the clock there.
    pub fn run_until(&mut self, until: Instant) {
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    /// Runs for `d`.
    pub fn advance(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until `done(self)` holds (checked after every event) or
    /// `limit` has passed; returns the time it took.
    pub fn run_until_true(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Option<Duration> {
        let from = self.now;
        let until = self.now + limit;
        loop {
            if done(self) {
                return Some(self.now - from);
            }
            if !self.step(until) {
                self.now = until;
                return done(self).then(|| self.now - from);
            }
        }
    }

    /// Runs the earliest event due by `until`; false if there is none.
    fn step(&mut self, until: Instant) -> bool {
        let next_tick = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.alive)
            .map(|(i, n)| (n.next_tick, i))
            .min();
        let next_datagram = self.in_flight.keys().next().copied();
        match (next_tick, next_datagram) {
            (Some((t, i)), d) if t <= until && d.is_none_or(|(dt, _)| t < dt) => {
                self.now = t;
                self.tick(i);
                true
            }
            (_, Some(key)) if key.0 <= until => {
                self.now = key.0;
                if let Some((from, to, datagram)) = self.in_flight.remove(&key) {
                    self.deliver(from, to, datagram);
                }
                true
            }
            _ => false,
        }
    }

    fn tick(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].next_tick = now + self.heartbeat;
        for n in self.neighbors_of(i) {
            self.send(i, n, Datagram::Heartbeat);
        }
        let micros = u64::try_from(self.elapsed().as_micros()).unwrap_or(u64::MAX);
        for out in self.nodes[i].router.originate_pingwaves(micros) {
            if let Some(to) = self.index_of(out.to) {
                self.send(i, to, Datagram::Pingwave(out.bytes));
            }
        }
        if let Some(after) = self.fail_after {
            let node = &mut self.nodes[i];
            let silent: Vec<usize> = node
                .last_heard
                .iter()
                .filter(|(n, t)| now - **t >= after && !node.failed.contains(n))
                .map(|(n, _)| *n)
                .collect();
            for n in silent {
                node.failed.insert(n);
                node.router.table_mut().peer_failed(Self::node_id(n), now);
            }
        }
        self.nodes[i].router.tick(now);
    }

    fn deliver(&mut self, from: usize, to: usize, datagram: Datagram) {
        if !self.linked(from, to) {
            return;
        }
        let now = self.now;
        match datagram {
            Datagram::Heartbeat => {
                let node = &mut self.nodes[to];
                node.last_heard.insert(from, now);
                node.failed.remove(&from);
                node.router.table_mut().heard_from(Self::node_id(from), now);
            }
            Datagram::Pingwave(bytes) => {
                let outcome =
                    self.nodes[to]
                        .router
                        .on_pingwave(Some(Self::node_id(from)), &bytes, now);
                if let super::PingwaveOutcome::Accepted { relay } = outcome {
                    for out in relay {
                        if let Some(next) = self.index_of(out.to) {
                            self.send(to, next, Datagram::Pingwave(out.bytes));
                        }
                    }
                }
            }
        }
    }

    /// Node `from`'s route to node `to`.
    pub fn route(&self, from: usize, to: usize) -> Option<Route> {
        self.nodes[from]
            .router
            .route_for(Self::node_id(to), self.now)
    }

    /// Whether every live node has a route to every other live node.
    pub fn fully_converged(&self) -> bool {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].alive)
            .collect();
        live.iter()
            .all(|&a| live.iter().all(|&b| a == b || self.route(a, b).is_some()))
    }

    /// Sends a routed datagram (TTL 8) from `src` to `dst` hop by hop
    /// through each relay's [`Router::forward`], at the current instant.
    /// Returns the nodes it visited (`src` first, `dst` last) or where
    /// and why it was dropped.
    pub fn trace(&mut self, src: usize, dst: usize) -> Result<Vec<usize>, (usize, DropReason)> {
        let now = self.now;
        let header = RoutingHeader {
            ttl: ROUTED_DATA_TTL,
            hop_count: 0,
            flags: 0,
            src_id: Self::node_id(src) as u32,
            dest_id: Self::node_id(dst),
        };
        let mut datagram = header.encode().to_vec();
        datagram.extend_from_slice(&[0x45; HEADER_SIZE]);
        let first = self.route(src, dst).ok_or((src, DropReason::NoRoute))?;
        let mut path = vec![src];
        let (mut prev, mut at) = (src, self.hop_index(src, first.next_hop)?);
        loop {
            path.push(at);
            if !self.linked(prev, at) {
                return Err((prev, DropReason::NoRoute));
            }
            let decision = self.nodes[at]
                .router
                .forward(Some(Self::node_id(prev)), &datagram, now);
            match decision {
                Forward::Deliver(_) => return Ok(path),
                Forward::Relay { next_hop, .. } => {
                    decision.rewrite(&mut datagram);
                    prev = at;
                    at = self.hop_index(at, next_hop)?;
                }
                Forward::Drop(reason) => return Err((at, reason)),
            }
        }
    }

    fn hop_index(&self, at: usize, id: NodeId) -> Result<usize, (usize, DropReason)> {
        self.index_of(id).ok_or((at, DropReason::NoRoute))
    }
}
