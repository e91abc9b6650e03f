//! A serializable view of the routing table for `routes_json` / the FFI.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::distance_vector::PingwaveCounters;
use super::forward::ForwardCounters;
use super::neighbors::NodeId;
use super::router::Router;
use super::table::RouteKind;

/// The routes of one node at one instant (ids as exact integers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutesSnapshot {
    /// Our node id.
    pub node_id: NodeId,
    /// One entry per reachable destination, in id order.
    pub routes: Vec<RouteView>,
    /// Routed-datagram counters.
    pub forwarding: ForwardCounters,
    /// Pingwave counters.
    pub pingwaves: PingwaveCounters,
}

/// The route in use for one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RouteView {
    /// The destination.
    pub destination: NodeId,
    /// The direct peer packets go to.
    pub next_hop: NodeId,
    /// Links to the destination.
    pub hops: u8,
    /// `direct`, `relayed` or `learned`.
    pub kind: RouteKind,
    /// Milliseconds since the route was last confirmed.
    pub age_ms: u64,
    /// No news for the expiry time: kept only because nothing fresher is
    /// left.
    pub stale: bool,
    /// Other usable next hops, ready if this one fails.
    pub alternates: usize,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Router {
    /// The routes in use at `now`, with the counters.
    pub fn snapshot(&self, now: Instant) -> RoutesSnapshot {
        let table = self.table();
        let routes = table
            .destinations()
            .into_iter()
            .filter_map(|destination| {
                let all = table.routes_to(destination, now);
                let best = all.first()?;
                Some(RouteView {
                    destination,
                    next_hop: best.next_hop,
                    hops: best.hops,
                    kind: best.kind,
                    age_ms: millis(now.saturating_duration_since(best.refreshed_at)),
                    stale: best.stale,
                    alternates: all.len() - 1,
                })
            })
            .collect();
        RoutesSnapshot {
            node_id: self.own_id(),
            routes,
            forwarding: self.forward_counters(),
            pingwaves: self.pingwave_counters(),
        }
    }
}
