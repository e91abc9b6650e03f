//! The one authorization decision for subscribing and publishing
//! (MESH2.md §1.3 steps 5–11, §1.5 step 1, §7 item 5).
//!
//! The same function admits a subscriber, re-checks it before every
//! publish and at every sweep, and checks a publisher: so a subscriber
//! that was accepted is one that will be delivered to, and one that stops
//! qualifying stops receiving and is evicted. Throttling and the per-peer
//! channel cap (§1.3 steps 1–3) are about the request, not the peer's
//! rights, and live in the membership handler.

use super::capabilities::{Capabilities, NoCapabilities};
use super::registry::ChannelRegistry;
use super::subnet::{SubnetId, visible};
use super::tokens::{TokenProblem, TokenQuery, TokenStore, find_chain};
use crate::identity::{ChannelName, EntityId, PermissionToken, TokenScope};
use crate::wire::AckReason;

/// What a peer wants to do on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Receive the channel's events.
    Subscribe,
    /// Send events on the channel.
    Publish,
}

impl Action {
    /// The token scope bit that authorizes the action.
    pub fn scope(self) -> TokenScope {
        match self {
            Action::Subscribe => TokenScope::SUBSCRIBE,
            Action::Publish => TokenScope::PUBLISH,
        }
    }
}

/// Whether a peer is another Net node (proved in the identity hello) or a
/// v0.11 node: decides what may go on the wire to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PeerKind {
    /// A v0.11 peer: only v0.11 bytes.
    #[default]
    Legacy,
    /// A Net peer: negotiated improvements allowed.
    Net,
}

/// What the node knows about a peer when deciding.
#[derive(Clone, Copy)]
pub struct PeerContext<'a> {
    /// The peer's full 64-bit node id.
    pub node_id: u64,
    /// Its entity: proved in the Net hello, or TOFU-pinned from its signed
    /// direct announcement (MESH2.md §3.2 step 8); `None` if unknown.
    pub entity: Option<EntityId>,
    /// Its subnet; `None` when unknown (a node with a subnet
    /// configuration whose peer announced nothing), which sees Global
    /// channels only.
    pub subnet: Option<SubnetId>,
    /// Its announced capabilities; `None` is treated as none at all.
    pub capabilities: Option<&'a dyn Capabilities>,
    /// Net or v0.11.
    pub kind: PeerKind,
}

impl std::fmt::Debug for PeerContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerContext")
            .field("node_id", &format_args!("{:#018x}", self.node_id))
            .field("entity", &self.entity)
            .field("subnet", &self.subnet)
            .field("has_capabilities", &self.capabilities.is_some())
            .field("kind", &self.kind)
            .finish()
    }
}

impl<'a> PeerContext<'a> {
    /// A peer with nothing known but its id: GLOBAL, no entity, no
    /// capabilities, v0.11.
    pub fn anonymous(node_id: u64) -> Self {
        Self {
            node_id,
            entity: None,
            subnet: Some(SubnetId::GLOBAL),
            capabilities: None,
            kind: PeerKind::Legacy,
        }
    }
}

/// Why a peer may not do what it asked. [`Deny::ack_reason`] gives the
/// wire reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Deny {
    /// The channel is not registered here.
    #[error("unknown channel")]
    UnknownChannel,
    /// The channel's visibility hides it from the peer's subnet.
    #[error("channel is not visible from the peer's subnet")]
    NotVisible,
    /// The peer's capabilities fail the channel's filter.
    #[error("peer capabilities do not match the channel's filter")]
    CapabilityMismatch,
    /// A token is required and the peer's entity is unknown.
    #[error("a token is required and the peer's entity is unknown")]
    UnknownEntity,
    /// A token is required and none authorizes the peer.
    #[error("token refused: {0}")]
    Token(TokenProblem),
    /// The peer failed too many requests recently; retry later.
    #[error("peer is rate limited")]
    RateLimited,
    /// The peer is already in the most channels a peer may join.
    #[error("peer is in too many channels")]
    TooManyChannels,
    /// The channel has its maximum number of subscribers.
    #[error("channel is full")]
    ChannelFull,
}

impl Deny {
    /// The reason carried in the membership Ack. v0.11 has no "channel full"
    /// code; it is reported as TooManyChannels, the other capacity refusal.
    pub fn ack_reason(self) -> AckReason {
        match self {
            Deny::UnknownChannel => AckReason::UnknownChannel,
            Deny::RateLimited => AckReason::RateLimited,
            Deny::TooManyChannels | Deny::ChannelFull => AckReason::TooManyChannels,
            Deny::NotVisible | Deny::CapabilityMismatch | Deny::UnknownEntity | Deny::Token(_) => {
                AckReason::Unauthorized
            }
        }
    }

    /// Whether the refusal counts towards the peer's auth-failure throttle
    /// (Unauthorized and UnknownChannel do; capacity refusals do not).
    pub fn counts_as_auth_failure(self) -> bool {
        matches!(
            self.ack_reason(),
            AckReason::Unauthorized | AckReason::UnknownChannel
        )
    }
}

/// The node-side facts every decision needs.
#[derive(Debug, Clone, Copy)]
pub struct Authority<'a> {
    /// Registered channels.
    pub registry: &'a ChannelRegistry,
    /// Tokens kept between requests.
    pub store: &'a TokenStore,
    /// The local node's entity (a trusted root for every channel).
    pub local_entity: Option<&'a EntityId>,
    /// The local node's subnet (the publisher's side of visibility).
    pub local_subnet: SubnetId,
}

/// What an accepted decision rests on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// The token chain that authorized the peer, leaf first (empty when
    /// the channel needs no token).
    pub chain: Vec<PermissionToken>,
}

/// Decides whether `peer` may perform `action` on `channel` at `now` (UNIX
/// seconds), in the order of MESH2.md §1.3: registered, visible, (open ⇒
/// accept), capability filter, entity known, token chain. `presented` are
/// the tokens the peer offered (already parsed; an invalid signature makes
/// a token count as absent). Publishing skips visibility (a publisher is
/// at its own subnet), checks `publish_caps`, and needs a token only when
/// the publisher is not the local node.
///
/// # Errors
/// The first [`Deny`] reached.
pub fn authorize(
    authority: &Authority<'_>,
    channel: &ChannelName,
    action: Action,
    peer: &PeerContext<'_>,
    presented: &[PermissionToken],
    now: u64,
) -> Result<Grant, Deny> {
    decide(
        authority,
        channel,
        action,
        peer,
        TokenEvidence::Search(presented),
        now,
    )
}

/// What the token step of [`decide`] may rely on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TokenEvidence<'a> {
    /// Search these presented tokens and the store (verifying signatures).
    Search(&'a [PermissionToken]),
    /// The caller verified a chain for this peer, channel and config
    /// generation, and it is live now: skip the signature work.
    AlreadyVerified,
}

/// [`authorize`], with the token step's evidence chosen by the hub (which
/// caches verified chains so a publish does not re-verify signatures).
pub(crate) fn decide(
    authority: &Authority<'_>,
    channel: &ChannelName,
    action: Action,
    peer: &PeerContext<'_>,
    tokens: TokenEvidence<'_>,
    now: u64,
) -> Result<Grant, Deny> {
    let config = authority
        .registry
        .get(channel)
        .ok_or(Deny::UnknownChannel)?;
    if action == Action::Subscribe
        && !visible(
            config.visibility,
            &config.export_to,
            authority.local_subnet,
            peer.subnet,
        )
    {
        return Err(Deny::NotVisible);
    }
    if config.is_open() {
        return Ok(Grant::default());
    }
    let filter = match action {
        Action::Subscribe => &config.subscribe_caps,
        Action::Publish => &config.publish_caps,
    };
    let capabilities = peer.capabilities.unwrap_or(&NoCapabilities);
    if let Some(filter) = filter
        && !filter.admits(capabilities)
    {
        return Err(Deny::CapabilityMismatch);
    }
    if !config.require_token {
        return Ok(Grant::default());
    }
    let entity = peer.entity.ok_or(Deny::UnknownEntity)?;
    if action == Action::Publish && authority.local_entity == Some(&entity) {
        // The local node is the root of its channels' trust.
        return Ok(Grant::default());
    }
    let presented = match tokens {
        TokenEvidence::Search(presented) => presented,
        TokenEvidence::AlreadyVerified => return Ok(Grant::default()),
    };
    let query = TokenQuery {
        subject: &entity,
        action: action.scope(),
        channel_hash: channel.hash(),
        trust: &config.trusted_issuers,
        local: authority.local_entity,
        now,
    };
    let chain = find_chain(&query, presented, authority.store).map_err(Deny::Token)?;
    Ok(Grant { chain })
}
