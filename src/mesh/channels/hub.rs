//! [`ChannelHub`]: one node's channel state — registry, rosters, tokens,
//! throttle, rate buckets, our own pending requests and subscriptions —
//! behind the few calls the node glue makes: handle a membership message,
//! start a subscribe/unsubscribe, plan a publish, sweep, forget a peer.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::authorize::{
    Action, Authority, Deny, Grant, PeerContext, PeerKind, TokenEvidence, authorize, decide,
};
use super::capabilities::Capabilities;
use super::config::{ChannelConfig, ChannelsSettings};
use super::directory::PeerDirectory;
use super::membership::{
    CompletedRequest, OutgoingRequests, RequestError, RequestKind, RequestOutcome,
};
use super::publish::{PublishError, PublishPlan, PublishTarget};
use super::rate::TokenBucket;
use super::registry::{ChannelRegistry, Registration, RegistryError};
use super::roster::{Member, Roster, VerifiedChain};
use super::subnet::SubnetId;
use super::subscriptions::{HashCollision, InboundChannel, Subscriptions};
use super::throttle::AuthThrottle;
use super::tokens::TokenStore;
use crate::identity::{ChannelName, EntityId, PermissionToken};
use crate::wire::{AckReason, Membership, WireError};

/// The two clocks the hub needs: a monotonic one for timeouts and
/// throttles, UNIX seconds for tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub instant: Instant,
    /// UNIX time in whole seconds.
    pub unix_secs: u64,
}

/// The local node, as the channel machinery sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalNode {
    /// Its node id.
    pub node_id: u64,
    /// Its entity (a trusted root of its channels).
    pub entity: Option<EntityId>,
    /// Its subnet (the source side of visibility).
    pub subnet: SubnetId,
}

/// Why a subscriber left a roster without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionReason {
    /// It no longer passes the channel's authorization (token expired,
    /// config tightened, capabilities or subnet changed, re-subscribe
    /// refused).
    NoLongerAuthorized(Deny),
    /// The channel was de-registered.
    ChannelDeregistered,
    /// Its session is gone.
    PeerGone,
}

/// A subscriber removed by the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// The channel.
    pub channel: ChannelName,
    /// The subscriber.
    pub peer: u64,
    /// Why.
    pub reason: EvictionReason,
}

/// Something the node may want to log, count or surface.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelEvent {
    /// A peer subscribed (or re-subscribed) to one of our channels.
    Subscribed {
        /// The channel.
        channel: ChannelName,
        /// The peer.
        peer: u64,
    },
    /// A peer unsubscribed.
    Unsubscribed {
        /// The channel.
        channel: ChannelName,
        /// The peer.
        peer: u64,
    },
    /// A Subscribe was refused.
    Refused {
        /// The channel.
        channel: ChannelName,
        /// The peer.
        peer: u64,
        /// Why.
        deny: Deny,
    },
    /// A subscriber was removed.
    Evicted(Eviction),
    /// One of our requests finished.
    RequestCompleted(CompletedRequest),
}

/// What handling one inbound membership message produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandleOutcome {
    /// The message to send back to the peer on subprotocol and stream
    /// 0x0A00 (routed if the peer is relayed).
    pub reply: Option<Membership>,
    /// What happened.
    pub events: Vec<ChannelEvent>,
}

/// Why a subscribe or unsubscribe could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The name's hash is already used by another channel we hold at this
    /// publisher; its events would be indistinguishable.
    #[error(transparent)]
    HashCollision(#[from] HashCollision),
    /// Too many requests are pending.
    #[error(transparent)]
    Request(#[from] RequestError),
}

/// What forgetting a peer removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerGone {
    /// Its subscriptions to our channels.
    pub evictions: Vec<Eviction>,
    /// Our requests to it, completed as PeerGone.
    pub requests: Vec<CompletedRequest>,
    /// Our subscriptions at it, dropped.
    pub subscriptions: Vec<ChannelName>,
}

/// Counters for observability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelCounters {
    /// Membership messages that failed to decode (dropped).
    pub malformed: u64,
    /// Subscribes accepted.
    pub accepted: u64,
    /// Subscribes refused.
    pub refused: u64,
    /// Acks that matched no pending request.
    pub unmatched_acks: u64,
    /// Subscribers evicted.
    pub evicted: u64,
}

/// One node's channel machinery.
#[derive(Debug)]
pub struct ChannelHub {
    settings: ChannelsSettings,
    local: LocalNode,
    registry: ChannelRegistry,
    roster: Roster,
    store: TokenStore,
    throttle: AuthThrottle,
    buckets: HashMap<ChannelName, TokenBucket>,
    outgoing: OutgoingRequests,
    subscriptions: Subscriptions,
    /// Names held at a publisher only because a Subscribe for them is in
    /// flight (never accepted yet): released if the requests fail.
    reserved: HashSet<(u64, ChannelName)>,
    /// Bumped whenever a channel's policy or the local node changes, which
    /// invalidates every cached token verification.
    generation: u64,
    counters: ChannelCounters,
}

impl ChannelHub {
    /// An empty hub (no channel registered: every Subscribe is refused with
    /// UnknownChannel).
    pub fn new(local: LocalNode, settings: ChannelsSettings) -> Self {
        let outgoing = OutgoingRequests::new(
            settings.membership_ack_timeout,
            settings.max_pending_requests,
        );
        Self::with_outgoing(local, settings, outgoing)
    }

    /// As [`new`](Self::new) with a prepared request tracker (tests choose
    /// its nonce source).
    pub fn with_outgoing(
        local: LocalNode,
        settings: ChannelsSettings,
        outgoing: OutgoingRequests,
    ) -> Self {
        Self {
            store: TokenStore::new(settings.token_store_capacity),
            throttle: AuthThrottle::new(
                settings.max_auth_failures_per_window,
                settings.auth_failure_window,
                settings.auth_throttle_duration,
                settings.max_throttle_records,
            ),
            settings,
            local,
            registry: ChannelRegistry::new(),
            roster: Roster::new(),
            buckets: HashMap::new(),
            outgoing,
            subscriptions: Subscriptions::new(),
            reserved: HashSet::new(),
            generation: 0,
            counters: ChannelCounters::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ChannelsSettings {
        &self.settings
    }

    /// The registry (read-only; change it through the hub so rosters follow).
    pub fn registry(&self) -> &ChannelRegistry {
        &self.registry
    }

    /// The rosters.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Our subscriptions (held, or reserved by a Subscribe in flight).
    pub fn subscriptions(&self) -> &Subscriptions {
        &self.subscriptions
    }

    /// Counters.
    pub fn counters(&self) -> ChannelCounters {
        ChannelCounters {
            unmatched_acks: self.outgoing.unmatched_acks(),
            ..self.counters
        }
    }

    /// The local node as the hub sees it.
    pub fn local(&self) -> LocalNode {
        self.local
    }

    /// Updates what the hub knows of the local node (e.g. its subnet).
    /// Subscribers are re-checked at the next publish or sweep.
    pub fn set_local(&mut self, local: LocalNode) {
        self.local = local;
        self.generation += 1;
    }

    /// Keeps a token for later checks — typically a delegation parent that
    /// subscribers' tokens chain through (v0.11 Subscribes carry one token).
    /// Installed tokens are never evicted by learned ones; they go when
    /// they expire.
    pub fn install_token(&mut self, token: PermissionToken) {
        self.store.insert_pinned(token);
    }

    fn authority(&self) -> Authority<'_> {
        Authority {
            registry: &self.registry,
            store: &self.store,
            local_entity: self.local.entity.as_ref(),
            local_subnet: self.local.subnet,
        }
    }

    /// Registers `name` or replaces its config. A replaced config is applied
    /// to existing subscribers at once: those that no longer qualify are
    /// evicted and returned.
    ///
    /// # Errors
    /// [`RegistryError::HashCollision`]; nothing changes.
    pub fn register(
        &mut self,
        name: ChannelName,
        config: ChannelConfig,
        peers: &dyn PeerDirectory,
        now: Now,
    ) -> Result<Vec<Eviction>, RegistryError> {
        let rate = config.max_rate_pps;
        let registration = self.registry.register(name.clone(), config)?;
        self.generation += 1;
        match rate {
            Some(pps) => {
                self.buckets
                    .entry(name.clone())
                    .and_modify(|b| {
                        if b.rate() != pps {
                            *b = TokenBucket::new(pps, now.instant);
                        }
                    })
                    .or_insert_with(|| TokenBucket::new(pps, now.instant));
            }
            None => {
                self.buckets.remove(&name);
            }
        }
        if registration == Registration::Added {
            return Ok(Vec::new());
        }
        let members: Vec<u64> = self.roster.members(&name).map(|(p, _)| p).collect();
        Ok(self.recheck(&name, members, peers, now.unix_secs))
    }

    /// De-registers `name`: every subscriber is evicted and returned.
    pub fn deregister(&mut self, name: &ChannelName) -> Vec<Eviction> {
        self.registry.deregister(name);
        self.generation += 1;
        self.buckets.remove(name);
        let evictions: Vec<Eviction> = self
            .roster
            .remove_channel(name)
            .into_iter()
            .map(|peer| Eviction {
                channel: name.clone(),
                peer,
                reason: EvictionReason::ChannelDeregistered,
            })
            .collect();
        self.counters.evicted += evictions.len() as u64;
        evictions
    }

    /// Re-runs the authorization for `members` of `channel`, evicting those
    /// refused. Members without a peer record are left alone.
    fn recheck(
        &mut self,
        channel: &ChannelName,
        members: Vec<u64>,
        peers: &dyn PeerDirectory,
        now: u64,
    ) -> Vec<Eviction> {
        let mut evictions = Vec::new();
        for peer in members {
            let Some(context) = peers.peer(peer) else {
                continue;
            };
            match self.check_member(channel, &context, now) {
                Ok(Some(verified)) => {
                    if let Some(member) = self.roster.member_mut(channel, peer) {
                        member.verified = Some(verified);
                    }
                }
                Ok(None) => {}
                Err(deny) => {
                    self.roster.remove(channel, peer);
                    evictions.push(Eviction {
                        channel: channel.clone(),
                        peer,
                        reason: EvictionReason::NoLongerAuthorized(deny),
                    });
                }
            }
        }
        self.counters.evicted += evictions.len() as u64;
        evictions
    }

    /// The shared decision for an existing member. A chain verified under
    /// the current config generation that is still live is not verified
    /// again (the rest of the policy always is); otherwise the member's
    /// tokens and the store are searched and a new verification returned.
    fn check_member(
        &self,
        channel: &ChannelName,
        context: &PeerContext<'_>,
        now: u64,
    ) -> Result<Option<VerifiedChain>, Deny> {
        let member = self.roster.member(channel, context.node_id);
        let cached = member
            .and_then(|m| m.verified)
            .is_some_and(|v| v.holds(self.generation, context.entity.as_ref(), now));
        let evidence = match (cached, member) {
            (true, _) => TokenEvidence::AlreadyVerified,
            (false, Some(m)) => TokenEvidence::Search(&m.presented),
            (false, None) => TokenEvidence::Search(&[]),
        };
        let grant = decide(
            &self.authority(),
            channel,
            Action::Subscribe,
            context,
            evidence,
            now,
        )?;
        Ok(context
            .entity
            .and_then(|e| VerifiedChain::of(&grant.chain, self.generation, e)))
    }

    /// Handles a membership message's bytes from `peer` (the peer owning
    /// the session that decrypted it, or the authenticated origin of a
    /// routed one).
    ///
    /// # Errors
    /// The decode error; the message is dropped (no reply) and counted.
    pub fn handle_bytes(
        &mut self,
        peer: &PeerContext<'_>,
        bytes: &[u8],
        now: Now,
    ) -> Result<HandleOutcome, WireError> {
        match Membership::decode(bytes) {
            Ok(message) => Ok(self.handle(peer, &message, now)),
            Err(e) => {
                self.counters.malformed += 1;
                Err(e)
            }
        }
    }

    /// Handles a decoded membership message from `peer`.
    pub fn handle(
        &mut self,
        peer: &PeerContext<'_>,
        message: &Membership,
        now: Now,
    ) -> HandleOutcome {
        match message {
            Membership::Subscribe {
                nonce,
                channel,
                token,
            } => self.on_subscribe(peer, *nonce, channel, token.as_deref(), now),
            Membership::Unsubscribe { nonce, channel } => {
                let mut events = Vec::new();
                if self.roster.remove(channel, peer.node_id) {
                    events.push(ChannelEvent::Unsubscribed {
                        channel: channel.clone(),
                        peer: peer.node_id,
                    });
                }
                HandleOutcome {
                    reply: Some(ack(*nonce, Ok(()))),
                    events,
                }
            }
            Membership::Ack {
                nonce,
                accepted,
                reason,
            } => {
                let events = self
                    .outgoing
                    .on_ack(peer.node_id, *nonce, *accepted, *reason)
                    .map(|done| self.settle(done, peer.kind))
                    .into_iter()
                    .collect();
                HandleOutcome {
                    reply: None,
                    events,
                }
            }
            // `Membership` is non-exhaustive: a future message type this
            // hub does not know is dropped.
            #[allow(unreachable_patterns)]
            _ => HandleOutcome::default(),
        }
    }

    fn on_subscribe(
        &mut self,
        peer: &PeerContext<'_>,
        nonce: u64,
        channel: &ChannelName,
        token: Option<&[u8]>,
        now: Now,
    ) -> HandleOutcome {
        // An unparsable token counts as none (§1.3 step 7); a bad signature
        // is skipped by the chain search.
        let presented: Vec<PermissionToken> = token
            .and_then(|bytes| PermissionToken::from_bytes(bytes).ok())
            .into_iter()
            .collect();
        let decision = self.decide_subscribe(peer, channel, &presented, now);
        let mut events = Vec::new();
        let reply = match decision {
            Ok(grant) => {
                self.throttle.record_success(peer.node_id);
                // Only after acceptance are tokens kept (§1.3 step 12).
                for token in &grant.chain {
                    self.store.insert(*token);
                }
                let verified = peer
                    .entity
                    .and_then(|e| VerifiedChain::of(&grant.chain, self.generation, e));
                let mut kept = grant.chain;
                for token in presented {
                    if !kept.contains(&token) {
                        kept.push(token);
                    }
                }
                self.roster.insert(
                    channel,
                    peer.node_id,
                    Member {
                        presented: kept,
                        since: now.unix_secs,
                        verified,
                    },
                );
                self.counters.accepted += 1;
                events.push(ChannelEvent::Subscribed {
                    channel: channel.clone(),
                    peer: peer.node_id,
                });
                ack(nonce, Ok(()))
            }
            Err(deny) => {
                if deny.counts_as_auth_failure() {
                    self.throttle.record_failure(peer.node_id, now.instant);
                }
                self.counters.refused += 1;
                events.push(ChannelEvent::Refused {
                    channel: channel.clone(),
                    peer: peer.node_id,
                    deny,
                });
                // A refused re-subscribe ends the subscription: the peer no
                // longer qualifies (v0.11 keeps it, MESH2.md §7 item 7). A
                // throttled request says nothing about the peer's rights.
                if deny != Deny::RateLimited && self.roster.remove(channel, peer.node_id) {
                    self.counters.evicted += 1;
                    events.push(ChannelEvent::Evicted(Eviction {
                        channel: channel.clone(),
                        peer: peer.node_id,
                        reason: EvictionReason::NoLongerAuthorized(deny),
                    }));
                }
                ack(nonce, Err(deny))
            }
        };
        HandleOutcome {
            reply: Some(reply),
            events,
        }
    }

    /// MESH2.md §1.3 in order: throttle, channel cap (skipped for a
    /// re-subscribe), the shared authorization, then the channel's
    /// subscriber limit.
    fn decide_subscribe(
        &mut self,
        peer: &PeerContext<'_>,
        channel: &ChannelName,
        presented: &[PermissionToken],
        now: Now,
    ) -> Result<Grant, Deny> {
        if self.throttle.is_throttled(peer.node_id, now.instant) {
            return Err(Deny::RateLimited);
        }
        let already = self.roster.contains(channel, peer.node_id);
        if !already
            && self.roster.channel_count(peer.node_id) >= self.settings.max_channels_per_peer
        {
            return Err(Deny::TooManyChannels);
        }
        let grant = authorize(
            &self.authority(),
            channel,
            Action::Subscribe,
            peer,
            presented,
            now.unix_secs,
        )?;
        let full = self
            .registry
            .get(channel)
            .and_then(|c| c.max_subscribers)
            .is_some_and(|max| self.roster.subscriber_count(channel) >= max);
        if !already && full {
            return Err(Deny::ChannelFull);
        }
        Ok(grant)
    }

    /// Starts subscribing to `channel` at `publisher`; returns the message
    /// to send it on subprotocol and stream 0x0A00. The result arrives as a
    /// [`ChannelEvent::RequestCompleted`] from [`handle`](Self::handle) or
    /// [`expire_requests`](Self::expire_requests).
    ///
    /// # Errors
    /// [`SubscribeError::HashCollision`] when we hold another name with the
    /// same hash at `publisher`; [`SubscribeError::Request`] when too many
    /// requests are pending.
    pub fn subscribe(
        &mut self,
        publisher: u64,
        channel: &ChannelName,
        token: Option<&PermissionToken>,
        now: Now,
    ) -> Result<Membership, SubscribeError> {
        let held = self.subscriptions.contains(publisher, channel);
        self.subscriptions.check(publisher, channel)?;
        let message = self
            .outgoing
            .subscribe(publisher, channel, token, now.instant)?;
        // Reserve the hash while the request is in flight.
        self.subscriptions.add(publisher, channel)?;
        if !held {
            self.reserved.insert((publisher, channel.clone()));
        }
        Ok(message)
    }

    /// Starts unsubscribing from `channel` at `publisher`.
    ///
    /// # Errors
    /// [`SubscribeError::Request`] when too many requests are pending.
    pub fn unsubscribe(
        &mut self,
        publisher: u64,
        channel: &ChannelName,
        now: Now,
    ) -> Result<Membership, SubscribeError> {
        Ok(self.outgoing.unsubscribe(publisher, channel, now.instant)?)
    }

    /// Applies a finished request to our subscriptions.
    fn settle(&mut self, done: CompletedRequest, publisher_kind: PeerKind) -> ChannelEvent {
        let key = (done.peer, done.channel.clone());
        // Another Subscribe for the same name still in flight keeps the name.
        let still_asking =
            self.outgoing
                .is_pending(done.peer, RequestKind::Subscribe, &done.channel);
        let release = match (done.kind, done.outcome) {
            (RequestKind::Subscribe, RequestOutcome::Accepted) => {
                self.reserved.remove(&key);
                false
            }
            // A Net publisher evicts on a refused re-subscribe; a v0.11 one
            // keeps the old subscription.
            (RequestKind::Subscribe, RequestOutcome::Rejected(_)) => {
                self.reserved.contains(&key) || publisher_kind == PeerKind::Net
            }
            (RequestKind::Subscribe, _) => self.reserved.contains(&key),
            (RequestKind::Unsubscribe, RequestOutcome::Accepted) => true,
            (RequestKind::Unsubscribe, _) => false,
        };
        if release && !still_asking {
            self.reserved.remove(&key);
            self.subscriptions.remove(done.peer, &done.channel);
        }
        ChannelEvent::RequestCompleted(done)
    }

    /// Times out requests whose Ack did not come; call at
    /// [`next_deadline`](Self::next_deadline).
    pub fn expire_requests(&mut self, now: Now) -> Vec<ChannelEvent> {
        self.outgoing
            .expire(now.instant)
            .into_iter()
            .map(|done| self.settle(done, PeerKind::Legacy))
            .collect()
    }

    /// The earliest pending-request deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.outgoing.next_deadline()
    }

    /// Which of our channels an inbound event from `peer` on `stream_id`
    /// belongs to (by name when we subscribed to it there).
    pub fn resolve_inbound(&self, peer: u64, stream_id: u64) -> InboundChannel {
        self.subscriptions.resolve(peer, stream_id)
    }

    /// Plans a publish on `channel` at `now`: checks this node against the
    /// channel's publish policy (with `own_capabilities` from its latest
    /// announcement), takes a rate token, re-checks every subscriber with
    /// the same authorization that admitted it (evicting those that no
    /// longer qualify) and picks each one's transport. The evictions are
    /// returned with the plan.
    ///
    /// # Errors
    /// [`PublishError`]; nothing is sent and no subscriber is touched.
    pub fn plan_publish(
        &mut self,
        channel: &ChannelName,
        own_capabilities: Option<&dyn Capabilities>,
        peers: &dyn PeerDirectory,
        now: Now,
    ) -> Result<(PublishPlan, Vec<Eviction>), PublishError> {
        if self.registry.get(channel).is_none() {
            return Err(PublishError::UnknownChannel);
        }
        let publisher = PeerContext {
            node_id: self.local.node_id,
            entity: self.local.entity,
            subnet: Some(self.local.subnet),
            capabilities: own_capabilities,
            kind: PeerKind::Net,
        };
        authorize(
            &self.authority(),
            channel,
            Action::Publish,
            &publisher,
            &[],
            now.unix_secs,
        )
        .map_err(PublishError::NotAuthorized)?;
        if let Some(bucket) = self.buckets.get_mut(channel) {
            bucket.try_take(now.instant)?;
        }
        let members: Vec<u64> = self.roster.members(channel).map(|(p, _)| p).collect();
        let evictions = self.recheck(channel, members, peers, now.unix_secs);
        let mut plan = PublishPlan::new(channel.clone());
        let Some(config) = self.registry.get(channel) else {
            return Err(PublishError::UnknownChannel);
        };
        for (peer, _) in self.roster.members(channel) {
            match peers.peer(peer) {
                Some(context) => {
                    let mut target = PublishTarget::for_peer(peer, context.kind, config);
                    // The stamp travels only to Net peers.
                    if let (PeerKind::Net, Some(dest)) = (context.kind, context.subnet) {
                        target.subnet_stamp =
                            config.visibility.confinement(self.local.subnet, dest);
                    }
                    plan.targets.push(target)
                }
                None => plan.unreachable.push(peer),
            }
        }
        Ok((plan, evictions))
    }

    /// The token sweep (every `token_sweep_interval`): drops expired tokens
    /// and re-checks every subscriber, evicting those that no longer
    /// qualify.
    pub fn sweep(&mut self, peers: &dyn PeerDirectory, now: Now) -> Vec<Eviction> {
        self.store.purge_expired(now.unix_secs);
        let mut evictions = Vec::new();
        let channels: Vec<ChannelName> = self.registry.iter().map(|(c, _)| c.clone()).collect();
        for channel in channels {
            let members: Vec<u64> = self.roster.members(&channel).map(|(p, _)| p).collect();
            evictions.extend(self.recheck(&channel, members, peers, now.unix_secs));
        }
        evictions
    }

    /// Forgets `peer` (declared failed or its session closed): leaves every
    /// roster, its pending requests fail, our subscriptions at it go.
    pub fn peer_gone(&mut self, peer: u64) -> PeerGone {
        self.throttle.forget(peer);
        let evictions: Vec<Eviction> = self
            .roster
            .remove_peer(peer)
            .into_iter()
            .map(|channel| Eviction {
                channel,
                peer,
                reason: EvictionReason::PeerGone,
            })
            .collect();
        self.counters.evicted += evictions.len() as u64;
        let requests = self.outgoing.forget_peer(peer);
        self.reserved.retain(|(p, _)| *p != peer);
        PeerGone {
            evictions,
            requests,
            subscriptions: self.subscriptions.forget_peer(peer),
        }
    }
}

fn ack(nonce: u64, result: Result<(), Deny>) -> Membership {
    match result {
        Ok(()) => Membership::Ack {
            nonce,
            accepted: true,
            reason: AckReason::Ok,
        },
        Err(deny) => Membership::Ack {
            nonce,
            accepted: false,
            reason: deny.ack_reason(),
        },
    }
}
