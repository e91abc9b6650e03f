//! Routing limits and timers (MESH2.md §6), with the bounds that keep a
//! hostile peer from growing our memory (§7 item 14).

use std::time::Duration;

use crate::wire::ROUTED_DATA_TTL;

/// Pingwave TTL a Net node gives the pingwaves it sends to Net peers: a
/// pingwave then reaches `ttl + 1` hops, which is exactly as far as a
/// routed data packet (TTL 8, so at most 8 relays) can travel.
pub const NET_PINGWAVE_TTL: u8 = ROUTED_DATA_TTL;

/// The longest route (in links) worth learning: a data packet sent with
/// TTL 8 crosses at most 8 relays, so it reaches 9 links away.
pub const MAX_ROUTE_HOPS: u8 = ROUTED_DATA_TTL + 1;

/// Heartbeat intervals without news after which a learned route, or a
/// silent neighbour, stops being used (the default of
/// [`RoutingConfig::route_expiry_intervals`]).
pub const ROUTE_EXPIRY_INTERVALS: u32 = 3;

/// Heartbeat intervals without news after which a stale learned route is
/// deleted (the default of [`RoutingConfig::route_hold_intervals`]).
pub const ROUTE_HOLD_INTERVALS: u32 = 6;

/// Routing-table limits and timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingConfig {
    /// H: the heartbeat / pingwave / maintenance interval (v0.11: 5 s).
    pub heartbeat_interval: Duration,
    /// Distinct destinations learned from pingwaves (direct and relayed
    /// peers are not counted: the node bounds those itself).
    pub max_destinations: usize,
    /// Destinations a single neighbour may teach us: a neighbour that
    /// floods fake origins only ever fills its own quota.
    pub max_routes_per_neighbor: usize,
    /// Alternative next hops kept per destination (the best ones).
    pub max_candidates_per_destination: usize,
    /// Heartbeat intervals without news before a learned route or a
    /// silent neighbour is withdrawn (at least 1). 3 withdraws a dead path
    /// within three intervals; on lossy links a long route is refreshed
    /// only when a pingwave survives every link, so a larger value trades
    /// withdrawal time for stability.
    pub route_expiry_intervals: u32,
    /// Heartbeat intervals without news before a learned route is deleted
    /// (at least `route_expiry_intervals`). Between the two it is *stale*:
    /// any fresh route beats it, so a reroute never waits for it, but it
    /// is still used when nothing else is left — on lossy links a long
    /// route is refreshed only when a pingwave survives every link.
    pub route_hold_intervals: u32,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(5),
            max_destinations: 4096,
            max_routes_per_neighbor: 1024,
            max_candidates_per_destination: 4,
            route_expiry_intervals: ROUTE_EXPIRY_INTERVALS,
            route_hold_intervals: ROUTE_HOLD_INTERVALS,
        }
    }
}

impl RoutingConfig {
    /// A config with heartbeat interval `h` and the default bounds.
    pub fn with_heartbeat_interval(h: Duration) -> Self {
        Self {
            heartbeat_interval: h,
            ..Self::default()
        }
    }

    /// How long a learned route, or a neighbour, stays usable without
    /// news: by default three heartbeat intervals (v0.11: 3 T = 90 s).
    pub fn route_expiry(&self) -> Duration {
        self.heartbeat_interval.max(Duration::from_millis(1)) * self.route_expiry_intervals.max(1)
    }

    /// How long a learned route is kept without news (stale after
    /// [`route_expiry`](Self::route_expiry)): by default six intervals.
    pub fn route_hold(&self) -> Duration {
        let intervals = self
            .route_hold_intervals
            .max(self.route_expiry_intervals)
            .max(1);
        self.heartbeat_interval.max(Duration::from_millis(1)) * intervals
    }

    /// After how long without a higher sequence number an origin whose
    /// pingwaves come back with a low sequence is taken to have restarted
    /// (v0.11 never relays a restarted node's pingwaves, §7 item 14).
    pub fn origin_restart_after(&self) -> Duration {
        self.heartbeat_interval.max(Duration::from_millis(1)) * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_reach_as_far_as_the_data_ttl() {
        assert_eq!(NET_PINGWAVE_TTL, 8);
        assert_eq!(MAX_ROUTE_HOPS, 9);
        let c = RoutingConfig::default();
        assert_eq!(c.route_expiry(), Duration::from_secs(15));
        assert_eq!(c.route_hold(), Duration::from_secs(30));
        assert_eq!(c.origin_restart_after(), Duration::from_secs(10));
        let zero = RoutingConfig::with_heartbeat_interval(Duration::ZERO);
        assert!(zero.route_expiry() > Duration::ZERO);
    }
}
