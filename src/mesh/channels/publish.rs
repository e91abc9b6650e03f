//! Publish fan-out planning (MESH2.md §1.5, WIRE.md §10.3): who gets a
//! publish, on which stream, and how.
//!
//! Towards a v0.11 subscriber the packet is exactly v0.11's: subprotocol 0,
//! stream id `0x0001_0000_0000_0000 | channel_hash`, header channel_hash 0,
//! priority 0, flag RELIABLE iff the channel is `reliable` (which v0.11
//! only marks, never retransmits), every payload of the call as one event
//! of one packet. Towards a Net subscriber the same stream id is used, but
//! a `reliable` channel rides the retransmitting reliable stream and the
//! channel's priority goes in the header.

use super::authorize::{Deny, PeerKind};
use super::config::ChannelConfig;
use super::rate::RateLimited;
use super::subnet::SubnetId;
use crate::identity::{ChannelName, publish_stream_id};
use crate::wire::flags;

/// Subprotocol of publish packets (plain events).
pub const PUBLISH_SUBPROTOCOL: u16 = 0;
/// The header's channel_hash field in publish packets (v0.11 writes 0; the
/// channel is in the stream id).
pub const PUBLISH_HEADER_CHANNEL_HASH: u16 = 0;

/// How a publish reaches one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// A Net peer on a `reliable` channel: the retransmitting reliable
    /// stream (in order, exactly once).
    NetReliable,
    /// A Net peer on a best-effort channel: one plain packet.
    NetBestEffort,
    /// A v0.11 peer: one plain packet with these header flags (RELIABLE iff
    /// the channel is `reliable`; nothing is retransmitted).
    Legacy {
        /// The header flags byte.
        header_flags: u8,
    },
}

/// One subscriber to send a publish to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublishTarget {
    /// The subscriber's node id (the glue sends to its route: direct,
    /// relayed or routed).
    pub peer: u64,
    /// How.
    pub transport: Transport,
    /// The header's priority byte (0 towards v0.11 peers).
    pub header_priority: u8,
    /// The header's `subnet_id`: the subnet the packets must not leave
    /// ([`Visibility::confinement`](super::Visibility::confinement)),
    /// towards Net peers only; GLOBAL (0, v0.11's value) for none.
    pub subnet_stamp: SubnetId,
}

impl PublishTarget {
    /// The target for a subscriber of `kind` on a channel with `config`.
    pub fn for_peer(peer: u64, kind: PeerKind, config: &ChannelConfig) -> Self {
        match kind {
            PeerKind::Net => Self {
                peer,
                transport: if config.reliable {
                    Transport::NetReliable
                } else {
                    Transport::NetBestEffort
                },
                header_priority: config.priority,
                subnet_stamp: SubnetId::GLOBAL,
            },
            PeerKind::Legacy => Self {
                peer,
                transport: Transport::Legacy {
                    header_flags: if config.reliable { flags::RELIABLE } else { 0 },
                },
                header_priority: 0,
                subnet_stamp: SubnetId::GLOBAL,
            },
        }
    }
}

/// What a publish should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishPlan {
    /// The channel.
    pub channel: ChannelName,
    /// `0x0001_0000_0000_0000 | channel_hash` (WIRE.md §10.3).
    pub stream_id: u64,
    /// The subscribers to send to, by node id.
    pub targets: Vec<PublishTarget>,
    /// Subscribers without a peer record right now (not sent to, still
    /// subscribed; the node reports them as per-peer failures).
    pub unreachable: Vec<u64>,
}

impl PublishPlan {
    /// An empty plan for `channel`.
    pub fn new(channel: ChannelName) -> Self {
        let stream_id = publish_stream_id(channel.hash());
        Self {
            channel,
            stream_id,
            targets: Vec::new(),
            unreachable: Vec::new(),
        }
    }
}

/// Why nothing may be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The channel is not registered here.
    #[error("unknown channel")]
    UnknownChannel,
    /// This node fails its own channel's publish policy (publish filter or
    /// token); nothing was sent.
    #[error("publisher not authorized: {0}")]
    NotAuthorized(Deny),
    /// The channel's `max_rate_pps` is spent; nothing was sent.
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
}
