//! `Router`: the routing table plus what this node says and relays on the
//! wire (pingwaves, routed datagrams), and the counters of both.

use std::time::Instant;

use super::config::RoutingConfig;
use super::distance_vector::PingwaveCounters;
use super::forward::ForwardCounters;
use super::neighbors::NodeId;
use super::table::{Route, RoutingTable};

/// One node's routing state. Pure: the node feeds it peers, pingwaves,
/// routed datagrams and `now`, and acts on what it returns.
#[derive(Debug, Clone)]
pub struct Router {
    table: RoutingTable,
    pub(super) last_pingwave_seq: u64,
    pub(super) forward_counters: ForwardCounters,
    pub(super) pingwave_counters: PingwaveCounters,
}

impl Router {
    /// A router for node `own_id` whose pingwave sequence starts at 1, as
    /// v0.11's does.
    pub fn new(own_id: NodeId, config: RoutingConfig) -> Self {
        Self::with_first_pingwave_seq(own_id, config, 1)
    }

    /// A router whose first pingwave carries `first_seq` (at least 1).
    /// A node that starts from a time-based value (e.g. unix seconds ×
    /// 1000) is relayed again right after a restart even by v0.11 peers,
    /// which never forget a (origin, seq) pair they have seen.
    pub fn with_first_pingwave_seq(own_id: NodeId, config: RoutingConfig, first_seq: u64) -> Self {
        Self {
            table: RoutingTable::new(own_id, config),
            last_pingwave_seq: first_seq.max(1) - 1,
            forward_counters: ForwardCounters::default(),
            pingwave_counters: PingwaveCounters::default(),
        }
    }

    /// Our node id.
    pub fn own_id(&self) -> NodeId {
        self.table.own_id()
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// The routing table, to register and fail peers.
    pub fn table_mut(&mut self) -> &mut RoutingTable {
        &mut self.table
    }

    /// The route to `destination` at `now` (see [`RoutingTable::route_for`]).
    /// `connect_routed` uses its `next_hop` as the relay.
    pub fn route_for(&self, destination: NodeId, now: Instant) -> Option<Route> {
        self.table.route_for(destination, now)
    }

    /// Maintenance tick: frees expired learned routes.
    pub fn tick(&mut self, now: Instant) {
        self.table.sweep(now);
    }
}
