//! A channel's publisher-local policy (MESH2.md §1.1) and the node-wide
//! limits of the channel machinery (MESH2.md §6).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use super::capabilities::CapabilityFilter;
use super::subnet::{SubnetId, Visibility};
use crate::identity::EntityId;

/// Which token issuers a channel accepts as the root of a token chain.
///
/// The local node's own entity is always a trusted root. v0.11 checks no
/// issuer at all (MESH2.md §7 item 4), so anyone could mint a token for
/// themselves; [`IssuerTrust::AnyIssuer`] keeps that behaviour for a
/// deployment that must, and is never the default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuerTrust {
    /// The local node and these keys (empty: the local node only).
    Issuers(Vec<EntityId>),
    /// Any issuer whose signature verifies (v0.11; not a security boundary).
    AnyIssuer,
}

impl Default for IssuerTrust {
    fn default() -> Self {
        IssuerTrust::Issuers(Vec::new())
    }
}

impl IssuerTrust {
    /// Whether `issuer` may root a chain, given the local node's entity.
    pub fn trusts(&self, issuer: &EntityId, local: Option<&EntityId>) -> bool {
        if local == Some(issuer) {
            return true;
        }
        match self {
            IssuerTrust::Issuers(keys) => keys.contains(issuer),
            IssuerTrust::AnyIssuer => true,
        }
    }
}

/// One channel's policy. Every field has the v0.11 default
/// (`ChannelConfig::default()` is an open, global channel).
#[derive(Debug, Clone, Default)]
pub struct ChannelConfig {
    /// Who may see the channel (MESH2.md §1.8).
    pub visibility: Visibility,
    /// Checked against a publisher's own capabilities.
    pub publish_caps: Option<Arc<dyn CapabilityFilter>>,
    /// Checked against a subscriber's announced capabilities.
    pub subscribe_caps: Option<Arc<dyn CapabilityFilter>>,
    /// Subscribers (and publishers other than this node) need a token with
    /// the matching scope, chained to a trusted issuer.
    pub require_token: bool,
    /// The roots a token chain must reach.
    pub trusted_issuers: IssuerTrust,
    /// Most subscribers at once (`None`: no limit beyond the peers a node
    /// has sessions with).
    pub max_subscribers: Option<usize>,
    /// Header priority of publish packets towards Net peers (v0.11 peers
    /// always get 0, as v0.11 sends).
    pub priority: u8,
    /// Publish on retransmitting reliable streams towards Net peers; set the
    /// header's RELIABLE flag towards v0.11 peers (which is all v0.11 does).
    pub reliable: bool,
    /// Publish calls per second, enforced by a token bucket with a
    /// one-second burst.
    pub max_rate_pps: Option<NonZeroU32>,
    /// For an Exported channel: the subnets (each with everything below
    /// it) whose peers may see it. Empty: nobody (v0.11's Exported).
    pub export_to: Vec<SubnetId>,
}

impl ChannelConfig {
    /// Whether the channel asks anything of a subscriber beyond visibility
    /// (MESH2.md §1.3 step 8).
    pub fn is_open(&self) -> bool {
        self.publish_caps.is_none() && self.subscribe_caps.is_none() && !self.require_token
    }
}

/// Node-wide limits and timers of the channel machinery, with the v0.11
/// defaults of MESH2.md §6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelsSettings {
    /// Channels one peer may be subscribed to at once (1024).
    pub max_channels_per_peer: usize,
    /// Auth failures within `auth_failure_window` that throttle a peer
    /// (16; `u16::MAX` disables throttling).
    pub max_auth_failures_per_window: u16,
    /// The failure-counting window (60 s).
    pub auth_failure_window: Duration,
    /// How long a peer stays throttled (30 s).
    pub auth_throttle_duration: Duration,
    /// How long an outgoing Subscribe/Unsubscribe waits for its Ack (5 s).
    pub membership_ack_timeout: Duration,
    /// Outgoing requests pending at once, over all peers.
    pub max_pending_requests: usize,
    /// Tokens kept for later checks (accepted subscribers' tokens and the
    /// delegation parents the operator installs).
    pub token_store_capacity: usize,
    /// Peers whose auth failures are remembered at once.
    pub max_throttle_records: usize,
    /// How often the node should call `sweep` (30 s; the node owns the timer).
    pub token_sweep_interval: Duration,
}

/// Longest token chain walked from a leaf to a trusted root (the leaf
/// included). Bounds the work a presented token can cause.
pub const MAX_TOKEN_CHAIN: usize = 8;

impl Default for ChannelsSettings {
    fn default() -> Self {
        Self {
            max_channels_per_peer: 1024,
            max_auth_failures_per_window: 16,
            auth_failure_window: Duration::from_secs(60),
            auth_throttle_duration: Duration::from_secs(30),
            membership_ack_timeout: Duration::from_secs(5),
            max_pending_requests: 4096,
            token_store_capacity: 65_536,
            max_throttle_records: 65_536,
            token_sweep_interval: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::EntityKeypair;

    #[test]
    fn defaults_match_mesh2_section_6() {
        let s = ChannelsSettings::default();
        assert_eq!(s.max_channels_per_peer, 1024);
        assert_eq!(s.max_auth_failures_per_window, 16);
        assert_eq!(s.auth_failure_window, Duration::from_secs(60));
        assert_eq!(s.auth_throttle_duration, Duration::from_secs(30));
        assert_eq!(s.membership_ack_timeout, Duration::from_secs(5));
        assert_eq!(s.token_sweep_interval, Duration::from_secs(30));
        let c = ChannelConfig::default();
        assert_eq!(c.visibility, Visibility::Global);
        assert!(c.is_open());
        assert_eq!((c.priority, c.reliable, c.max_rate_pps), (0, false, None));
    }

    #[test]
    fn the_local_node_is_always_a_trusted_root() {
        let local = *EntityKeypair::from_seed(&[1; 32]).entity_id();
        let other = *EntityKeypair::from_seed(&[2; 32]).entity_id();
        let trust = IssuerTrust::default();
        assert!(trust.trusts(&local, Some(&local)));
        assert!(!trust.trusts(&other, Some(&local)));
        assert!(!trust.trusts(&other, None));
        assert!(IssuerTrust::Issuers(vec![other]).trusts(&other, None));
        assert!(IssuerTrust::AnyIssuer.trusts(&other, None));
    }
}
