//! Publish/subscribe channels (MESH2.md §1): the per-node registry of
//! channel configs, one authorization function for subscribe and publish,
//! rosters, membership request tracking, publish planning, the sweeps
//! that evict subscribers, and subnets (assignment, visibility, the
//! confinement stamp relays check). Pure: peers, tokens and time in, decisions out;
//! [`ChannelHub`] is the one object the node glue drives.
//!
//! Differences from v0.11 (MESH2.md §7 items 4–9) are documented where they
//! are made: trusted issuers and delegation chains (`tokens`), one decision
//! for subscribe, publish and sweep (`authorize`), (peer, random nonce)
//! Acks (`membership`), eviction on tightening and refused re-subscribes
//! (`hub`), priority/reliable/max_rate_pps (`publish`, `rate`), and names
//! instead of bare hashes (`registry`, `subscriptions`). Every byte sent to
//! a v0.11 peer is v0.11's.

mod assignment;
mod authorize;
mod capabilities;
mod config;
mod directory;
mod hub;
mod membership;
mod publish;
mod rate;
mod registry;
mod roster;
mod subnet;
mod subscriptions;
mod throttle;
mod tokens;

pub use assignment::{
    PolicyError, SUBNET_TAG_PREFIX, SubnetPolicy, SubnetRule, SubnetSettings, claimed_subnet,
};
pub use authorize::{Action, Authority, Deny, Grant, PeerContext, PeerKind, authorize};
pub use capabilities::{Capabilities, CapabilityFilter, NoCapabilities, RequireTags};
pub use config::{ChannelConfig, ChannelsSettings, IssuerTrust, MAX_TOKEN_CHAIN};
pub use directory::{PeerDirectory, PeerFacts};
pub use hub::{
    ChannelCounters, ChannelEvent, ChannelHub, Eviction, EvictionReason, HandleOutcome, LocalNode,
    Now, PeerGone, SubscribeError,
};
pub use membership::{
    CompletedRequest, OutgoingRequests, RequestError, RequestKind, RequestOutcome,
};
pub use publish::{
    PUBLISH_HEADER_CHANNEL_HASH, PUBLISH_SUBPROTOCOL, PublishError, PublishPlan, PublishTarget,
    Transport,
};
pub use rate::{RateLimited, TokenBucket};
pub use registry::{ChannelRegistry, HashLookup, Registration, RegistryError};
pub use roster::{Member, Roster, VerifiedChain};
pub use subnet::{SubnetId, SubnetParseError, Visibility, may_forward, visible};
pub use subscriptions::{
    HashCollision, InboundChannel, PUBLISH_STREAM_BASE, Subscriptions, publish_stream_hash,
};
pub use throttle::{AuthThrottle, THROTTLE_DISABLED};
pub use tokens::{TokenProblem, TokenQuery, TokenStore, find_chain};

#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::HashMap;

    use crate::identity::{ChannelName, channel_hash};

    /// Two distinct valid names with the same 16-bit hash.
    pub(crate) fn colliding_pair() -> (ChannelName, ChannelName) {
        let mut seen: HashMap<u16, String> = HashMap::new();
        for i in 0u32.. {
            let candidate = format!("c{i}");
            if let Some(first) = seen.insert(channel_hash(candidate.as_bytes()), candidate.clone())
            {
                return (
                    ChannelName::new(&first).unwrap_or_else(|_| unreachable!()),
                    ChannelName::new(&candidate).unwrap_or_else(|_| unreachable!()),
                );
            }
        }
        unreachable!("the pigeonhole principle")
    }
}
