//! Multi-hop routing (MESH2.md §0, §2): the routing table learned from
//! pingwaves (distance vector), forwarding decisions for routed packets and
//! the bounded dedup state. Pure: pingwaves, headers and time in, decisions
//! out.
//!
//! The node keeps one [`Router`] and calls it from its glue:
//! - peers: [`RoutingTable::add_direct_peer`] on `connect`/`accept`,
//!   [`RoutingTable::set_peer_protocol`] once the hello shows a Net peer,
//!   [`RoutingTable::heard_from`] on each verified heartbeat,
//!   [`RoutingTable::peer_failed`] when the failure detector says Failed,
//!   [`RoutingTable::remove_direct_peer`] on eviction,
//!   [`RoutingTable::add_relayed_peer`] for relayed sessions;
//! - each heartbeat tick: [`Router::originate_pingwaves`], then
//!   [`Router::tick`];
//! - each received pingwave: [`Router::on_pingwave`], then send the copies;
//! - each routed datagram: [`Router::forward`];
//! - `send_routed` / `connect_routed`: [`Router::route_for`];
//! - `routes_json`: [`Router::snapshot`].
//!
//! Files: `config` (limits), `neighbors` (direct peers), `dedup` ((origin,
//! seq) windows), `table` (routes), `distance_vector` (pingwaves), `forward`
//! (routed datagrams), `snapshot` (JSON view); `sim` (test-util) runs N
//! routers on a fake clock for tests and convergence benchmarks.

mod config;
mod dedup;
mod distance_vector;
mod forward;
mod neighbors;
mod router;
#[cfg(any(test, feature = "test-util"))]
pub mod sim;
mod snapshot;
mod table;

pub use config::{
    MAX_ROUTE_HOPS, NET_PINGWAVE_TTL, ROUTE_EXPIRY_INTERVALS, ROUTE_HOLD_INTERVALS, RoutingConfig,
};
pub use dedup::{SEQ_WINDOW, SeqVerdict, SeqWindow};
pub use distance_vector::{OutboundPingwave, PingwaveCounters, PingwaveDrop, PingwaveOutcome};
pub use forward::{DropReason, Forward, ForwardCounters};
pub use neighbors::{NodeId, PeerProtocol};
pub use router::Router;
pub use snapshot::{RouteView, RoutesSnapshot};
pub use table::{LearnRefused, Reroute, Route, RouteKind, RoutingTable};
