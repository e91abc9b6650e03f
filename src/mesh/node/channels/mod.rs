//! Channels on the running node: the glue between the pure
//! [`ChannelHub`] (`mesh/channels/`) and the node's sessions.
//!
//! * Inbound 0x0A00 frames go to [`ChannelHub::handle_bytes`] with a
//!   [`PeerContext`] built from the node's peers ([`NodeDirectory`]); the
//!   Ack goes back on stream 0x0A00 through the same session — routed when
//!   the peer is relayed (MESH2.md §7 item 1).
//! * `subscribe` / `unsubscribe` send one request and block until the Ack
//!   from that publisher with that nonce, or `membership_ack_timeout`.
//! * `publish` plans with [`ChannelHub::plan_publish`] and sends to each
//!   target on the publish stream `0x0001_0000_0000_0000 | channel_hash`:
//!   a Net subscriber of a reliable publish gets the retransmitting Net
//!   reliable stream, a v0.11 subscriber exactly v0.11's packet
//!   (subprotocol 0, header channel_hash 0, RELIABLE flag bit only).
//! * The reliability tick expires requests at [`ChannelHub::next_deadline`]
//!   and runs the token sweep every `token_sweep_interval`.
//!
//! Locks: the capability plane (when needed, for the directory) is taken
//! before the hub, both briefly, never across a send: datagrams are
//! collected under the locks and sent after.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::super::capability::CapabilityPlane;
use super::super::channels::{
    ChannelEvent, ChannelHub, ChannelsSettings, Eviction, HashCollision, InboundChannel, LocalNode,
    Now, PeerContext, PeerDirectory, PeerKind, PublishError, PublishTarget, RegistryError,
    RequestError, RequestOutcome, SubnetId, SubscribeError, Transport, publish_stream_hash,
};
use super::super::outbox::Writer;
use super::super::packet::PacketKind;
use super::super::peer::Peer;
use super::super::stream::TxMode;
use super::{Inner, MeshError, bump};
use crate::cancel::CancelToken;
use crate::identity::{ChannelName, EntityId, PermissionToken};
mod api;

use crate::wire::{
    AckReason, MAX_PAYLOAD_SIZE, Membership, NetHeader, decode_events, encode_events, ids,
};

/// Why a channel call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The publisher refused the Subscribe with this reason
    /// (Unauthorized, UnknownChannel, RateLimited, TooManyChannels). A
    /// refused re-subscribe to a Net publisher ends the old subscription.
    #[error("the publisher refused the request: {0:?}")]
    Rejected(AckReason),
    /// We already hold another channel with the same 16-bit hash at this
    /// publisher: its events would be indistinguishable. Nothing was sent.
    #[error(transparent)]
    HashCollision(#[from] HashCollision),
    /// Too many membership requests are waiting for Acks; retry later.
    #[error(transparent)]
    TooManyPending(#[from] RequestError),
    /// Another registered channel has the same hash; pick another name.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Nothing may be published: the channel is not registered here, this
    /// node fails its own publish policy, or its `max_rate_pps` is spent.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The node-level failure (unknown peer, timeout, cancelled, shutdown).
    #[error(transparent)]
    Mesh(#[from] MeshError),
}

/// What a publish did.
#[derive(Debug, Default)]
pub struct PublishReport {
    /// Subscribers the publish was for (authorized, not filtered out).
    pub attempted: usize,
    /// Subscribers whose packets were queued for sending (for a reliable
    /// publish to a Net subscriber, they are retransmitted until acked).
    pub delivered: usize,
    /// Per-subscriber failures: [`MeshError::Backpressure`] when its
    /// stream's window was spent (nothing sent to it; the others are not
    /// held up), [`MeshError::UnknownPeer`] when its session is gone.
    pub errors: Vec<(u64, MeshError)>,
    /// Subscribers evicted by the publish-time re-check (no longer
    /// authorized); not counted as attempted.
    pub evicted: usize,
}

/// Outcomes of the requests callers wait for, keyed (publisher, nonce):
/// `None` until known. Shared with cancellation callbacks.
#[derive(Default)]
struct Waits {
    outcomes: Mutex<HashMap<(u64, u64), Option<RequestOutcome>>>,
    settled: Condvar,
}

impl Waits {
    fn lock(&self) -> MutexGuard<'_, HashMap<(u64, u64), Option<RequestOutcome>>> {
        self.outcomes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every waiter so it re-checks its stop conditions.
    fn poke(&self) {
        drop(self.lock());
        self.settled.notify_all();
    }
}

/// The node's channel state.
pub(super) struct ChannelGlue {
    hub: Mutex<ChannelHub>,
    waits: Arc<Waits>,
    next_sweep: Mutex<Instant>,
    sweep_interval: Duration,
    ack_timeout: Duration,
}

impl ChannelGlue {
    pub(super) fn new(
        node_id: u64,
        entity: EntityId,
        subnet: SubnetId,
        settings: ChannelsSettings,
    ) -> Self {
        let sweep_interval = settings.token_sweep_interval.max(Duration::from_secs(1));
        let ack_timeout = settings.membership_ack_timeout;
        let local = LocalNode {
            node_id,
            entity: Some(entity),
            subnet,
        };
        Self {
            hub: Mutex::new(ChannelHub::new(local, settings)),
            waits: Arc::new(Waits::default()),
            next_sweep: Mutex::new(Instant::now() + sweep_interval),
            sweep_interval,
            ack_timeout,
        }
    }

    fn hub(&self) -> MutexGuard<'_, ChannelHub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an outcome for a waiting caller (others are dropped).
    fn settle(&self, peer: u64, nonce: u64, outcome: RequestOutcome) {
        let mut outcomes = self.waits.lock();
        if let Some(slot) = outcomes.get_mut(&(peer, nonce)) {
            *slot = Some(outcome);
            self.waits.settled.notify_all();
        }
    }

    /// Our subnet (the source side of visibility).
    pub(super) fn local_subnet(&self) -> SubnetId {
        self.hub().local().subnet
    }

    /// Moves us to `subnet` (subscribers are re-checked at the next
    /// publish or sweep).
    pub(super) fn set_local_subnet(&self, subnet: SubnetId) {
        let mut hub = self.hub();
        let local = hub.local();
        if local.subnet != subnet {
            hub.set_local(LocalNode { subnet, ..local });
        }
    }

    /// Wakes every caller waiting for an Ack (shutdown).
    pub(super) fn wake_all(&self) {
        self.waits.poke();
    }
}

/// Both clocks of the hub.
fn channel_now() -> Now {
    Now {
        instant: Instant::now(),
        unix_secs: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// The hub's view of the node's peers: entity from the identity hello or
/// the capability pin, capabilities and subnet from the index
/// (`node/subnets.rs`), Net once the hello exchange completed both ways.
pub(super) struct NodeDirectory<'a> {
    pub(super) inner: &'a Inner,
    pub(super) plane: &'a CapabilityPlane,
}

impl PeerDirectory for NodeDirectory<'_> {
    fn peer(&self, node_id: u64) -> Option<PeerContext<'_>> {
        let peer = self.inner.peers.get(&node_id).map(|p| p.value().clone())?;
        let (proved, kind) = {
            let binding = peer.binding();
            let kind = if binding.is_net() {
                PeerKind::Net
            } else {
                PeerKind::Legacy
            };
            (binding.peer_entity, kind)
        };
        let capabilities = self
            .plane
            .index()
            .get(node_id)
            .map(|n| &n.announcement.capabilities as &dyn super::super::channels::Capabilities);
        Some(PeerContext {
            node_id,
            entity: proved.or_else(|| self.plane.pipeline().pinned_entity(node_id)),
            subnet: self.inner.peer_subnet(self.plane, node_id),
            capabilities,
            kind,
        })
    }
}

/// What a membership request asks.
#[derive(Debug, Clone, Copy)]
enum Request<'a> {
    /// Subscribe, presenting the token if any.
    Subscribe(Option<&'a PermissionToken>),
    /// Unsubscribe.
    Unsubscribe,
}

fn nonce_of(message: &Membership) -> Option<u64> {
    match message {
        Membership::Subscribe { nonce, .. }
        | Membership::Unsubscribe { nonce, .. }
        | Membership::Ack { nonce, .. } => Some(*nonce),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

impl Inner {
    /// One 0x0A00 packet from `peer` (the session's owner, or the
    /// authenticated origin of a routed packet).
    pub(super) fn handle_membership(&self, peer: &Peer, header: &NetHeader, plaintext: &[u8]) {
        let now = channel_now();
        let mut replies = Vec::new();
        let mut events = Vec::new();
        {
            let plane = self.capabilities.plane();
            let directory = NodeDirectory {
                inner: self,
                plane: &plane,
            };
            let Some(context) = directory.peer(peer.node_id) else {
                return;
            };
            let mut hub = self.channels.hub();
            for frame in decode_events(plaintext, usize::from(header.event_count)) {
                match hub.handle_bytes(&context, frame, now) {
                    Ok(outcome) => {
                        replies.extend(outcome.reply);
                        events.extend(outcome.events);
                    }
                    Err(_) => bump(&self.stats.malformed),
                }
            }
        }
        for reply in &replies {
            self.send_membership(peer, reply);
        }
        self.on_channel_events(events);
    }

    /// A membership message on subprotocol and stream 0x0A00 (flags 0, one
    /// event), through the peer's session (routed for a relayed peer).
    fn send_membership(&self, peer: &Peer, message: &Membership) {
        let Ok(payload) = encode_events(&[&message.encode()[..]]) else {
            return;
        };
        let kind = PacketKind {
            subprotocol_id: ids::MEMBERSHIP,
            stream_id: u64::from(ids::MEMBERSHIP),
            sequence: peer.session.next_control_seq(),
            event_count: 1,
            ..PacketKind::default()
        };
        self.send_control(peer, &kind, &payload);
    }

    fn on_channel_events(&self, events: Vec<ChannelEvent>) {
        for event in events {
            match event {
                ChannelEvent::RequestCompleted(done) => {
                    self.channels.settle(done.peer, done.nonce, done.outcome)
                }
                ChannelEvent::Evicted(eviction) => log_eviction(&eviction),
                other => tracing::debug!(event = ?other, "channel event"),
            }
        }
    }

    /// The channel of an inbound event: only publish stream ids are looked
    /// up (the hub is not touched for ordinary streams).
    pub(super) fn channel_of(&self, peer: u64, stream_id: u64) -> Option<ChannelName> {
        publish_stream_hash(stream_id)?;
        match self.channels.hub().resolve_inbound(peer, stream_id) {
            InboundChannel::Named(name) => Some(name),
            _ => None,
        }
    }

    /// The peer's session is gone (removed, or declared Failed): it leaves
    /// our rosters, our requests to it fail, our subscriptions at it go.
    pub(super) fn channels_peer_gone(&self, node_id: u64) {
        let gone = self.channels.hub().peer_gone(node_id);
        for eviction in &gone.evictions {
            log_eviction(eviction);
        }
        for done in gone.requests {
            self.channels.settle(done.peer, done.nonce, done.outcome);
        }
    }

    /// Expires requests whose Ack is overdue and runs the token sweep when
    /// due (from the reliability tick).
    pub(super) fn channel_tick(&self, now: Instant) {
        let expire = self
            .channels
            .hub()
            .next_deadline()
            .is_some_and(|deadline| deadline <= now);
        let sweep = {
            let mut next = self
                .channels
                .next_sweep
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let due = *next <= now;
            if due {
                *next = now + self.channels.sweep_interval;
            }
            due
        };
        if expire {
            let events = self.channels.hub().expire_requests(channel_now());
            self.on_channel_events(events);
        }
        if sweep {
            let evictions = {
                let plane = self.capabilities.plane();
                let directory = NodeDirectory {
                    inner: self,
                    plane: &plane,
                };
                self.channels.hub().sweep(&directory, channel_now())
            };
            for eviction in &evictions {
                log_eviction(eviction);
            }
        }
    }

    /// Sends a Subscribe or an Unsubscribe and waits for its Ack.
    fn membership_request(
        &self,
        publisher: u64,
        name: &ChannelName,
        request: Request<'_>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        self.check_running()?;
        let peer = self.peer(publisher)?;
        let now = channel_now();
        let message = {
            let mut hub = self.channels.hub();
            match request {
                Request::Subscribe(token) => hub.subscribe(publisher, name, token, now),
                Request::Unsubscribe => hub.unsubscribe(publisher, name, now),
            }
        }
        .map_err(|e| match e {
            SubscribeError::HashCollision(c) => ChannelError::HashCollision(c),
            SubscribeError::Request(r) => ChannelError::TooManyPending(r),
        })?;
        let Some(nonce) = nonce_of(&message) else {
            return Ok(());
        };
        self.channels.waits.lock().insert((publisher, nonce), None);
        self.send_membership(&peer, &message);
        let outcome = self.await_request(publisher, nonce, cancel);
        self.channels.waits.lock().remove(&(publisher, nonce));
        match outcome? {
            RequestOutcome::Accepted => Ok(()),
            RequestOutcome::Rejected(reason) => Err(ChannelError::Rejected(reason)),
            RequestOutcome::TimedOut => Err(MeshError::Timeout.into()),
            _ => Err(MeshError::UnknownPeer(publisher).into()),
        }
    }

    /// Waits for the outcome of request (publisher, nonce): the Ack, the
    /// publisher's departure, or the hub's timeout (expired here if the
    /// tick has not done it yet).
    fn await_request(
        &self,
        publisher: u64,
        nonce: u64,
        cancel: Option<&CancelToken>,
    ) -> Result<RequestOutcome, MeshError> {
        let waits = self.channels.waits.clone();
        let _wake = cancel.map(|token| {
            let waits = waits.clone();
            token.on_cancel(move || waits.poke())
        });
        // A little past the hub's own deadline, so its TimedOut wins.
        let give_up = Instant::now() + self.channels.ack_timeout + Duration::from_millis(200);
        let mut waiters = waits.lock();
        loop {
            if let Some(Some(outcome)) = waiters.get(&(publisher, nonce)) {
                return Ok(*outcome);
            }
            self.check_running()?;
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(MeshError::Cancelled);
            }
            let now = Instant::now();
            if now >= give_up {
                drop(waiters);
                let events = self.channels.hub().expire_requests(channel_now());
                self.on_channel_events(events);
                return Ok(waits
                    .lock()
                    .get(&(publisher, nonce))
                    .copied()
                    .flatten()
                    .unwrap_or(RequestOutcome::TimedOut));
            }
            waiters = waits
                .settled
                .wait_timeout(waiters, (give_up - now).min(Duration::from_millis(50)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn publish<E: AsRef<[u8]>>(
        &self,
        name: &ChannelName,
        events: &[E],
        reliable: bool,
    ) -> Result<PublishReport, ChannelError> {
        self.check_running()?;
        if let Some(e) = events
            .iter()
            .find(|e| e.as_ref().len() + 4 > MAX_PAYLOAD_SIZE)
        {
            return Err(MeshError::EventTooLarge(e.as_ref().len()).into());
        }
        // The wall clock (token expiry) as of the last reliability tick,
        // at most 5 ms old: one clock read per publish, not three.
        let now = Now {
            instant: Instant::now(),
            unix_secs: self.unix_secs(),
        };
        let (plan, evictions) = {
            let plane = self.capabilities.plane();
            let directory = NodeDirectory {
                inner: self,
                plane: &plane,
            };
            let own = plane
                .latest()
                .map(|a| &a.capabilities as &dyn super::super::channels::Capabilities);
            self.channels
                .hub()
                .plan_publish(name, own, &directory, now)?
        };
        for eviction in &evictions {
            log_eviction(eviction);
        }
        let mut report = PublishReport {
            attempted: plan.targets.len() + plan.unreachable.len(),
            evicted: evictions.len(),
            ..PublishReport::default()
        };
        // Every subscriber's events go into its outbox first; then the
        // outboxes this call claimed are written together (one sendmmsg).
        let mut writers = Vec::with_capacity(plan.targets.len());
        for target in &plan.targets {
            let mode = match target.transport {
                Transport::NetReliable => TxMode::Net,
                Transport::NetBestEffort if reliable => TxMode::Net,
                Transport::Legacy { header_flags } if reliable || header_flags != 0 => {
                    TxMode::Legacy
                }
                _ => TxMode::Plain,
            };
            match self.publish_to(target, plan.stream_id, mode, events, now.instant) {
                Ok(writer) => {
                    report.delivered += 1;
                    writers.extend(writer);
                }
                Err(e) => report.errors.push((target.peer, e)),
            }
        }
        self.dispatch_writers(writers);
        for &peer in &plan.unreachable {
            report.errors.push((peer, MeshError::UnknownPeer(peer)));
        }
        Ok(report)
    }

    /// Puts `events` for one subscriber into its outbox on the publish
    /// stream, opened on first use in `mode` (a stream the application
    /// opened first keeps its own settings), and says who writes it. Never
    /// waits: a spent window is Backpressure.
    fn publish_to<E: AsRef<[u8]>>(
        &self,
        target: &PublishTarget,
        stream_id: u64,
        mode: TxMode,
        events: &[E],
        now: Instant,
    ) -> Result<Option<(Arc<Peer>, Writer)>, MeshError> {
        let peer_id = target.peer;
        let peer = self.peer(peer_id)?;
        // While the identity exchange is still running the plan saw a
        // v0.11 peer; fixing the stream's mode now could tie a Net
        // subscriber to v0.11 semantics for good, so the send path decides
        // (it waits for the exchange, at most `hello_timeout`).
        let resolved = peer.binding().resolved();
        {
            let mut streams = peer.streams();
            let stream = match streams.get_mut(stream_id) {
                Some(s) => s,
                None => streams.open(stream_id, mode != TxMode::Plain, None, now),
            };
            if stream.tx.mode == TxMode::Undecided && stream.tx.next_seq == 0 {
                stream.tx.reliable = mode != TxMode::Plain;
                if resolved {
                    stream.tx.mode = mode;
                }
            }
            stream.tx.priority = target.header_priority;
            stream.tx.subnet_stamp = target.subnet_stamp.0;
        }
        self.send_checked_events_deferred(peer, stream_id, events)
    }

    fn channels_json(&self) -> serde_json::Value {
        let hub = self.channels.hub();
        let channels: Vec<_> = hub
            .registry()
            .iter()
            .map(|(name, config)| {
                json!({
                    "name": name.as_str(),
                    "hash": name.hash(),
                    "subscribers": hub.roster().subscriber_count(name),
                    "visibility": format!("{:?}", config.visibility),
                    "require_token": config.require_token,
                    "reliable": config.reliable,
                    "priority": config.priority,
                    "max_rate_pps": config.max_rate_pps.map(|r| r.get()),
                    "export_to": config.export_to.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut subscriptions: Vec<(u64, String)> = hub
            .subscriptions()
            .iter()
            .map(|(peer, name)| (peer, name.as_str().to_owned()))
            .collect();
        subscriptions.sort();
        let counters = hub.counters();
        json!({
            "subnet": hub.local().subnet.to_string(),
            "channels": channels,
            "subscriptions": subscriptions
                .into_iter()
                .map(|(publisher, channel)| json!({"publisher": publisher, "channel": channel}))
                .collect::<Vec<_>>(),
            "counters": {
                "malformed": counters.malformed,
                "accepted": counters.accepted,
                "refused": counters.refused,
                "unmatched_acks": counters.unmatched_acks,
                "evicted": counters.evicted,
            },
        })
    }
}

fn log_eviction(eviction: &Eviction) {
    tracing::debug!(
        channel = eviction.channel.as_str(),
        peer = eviction.peer,
        reason = ?eviction.reason,
        "channel subscriber evicted"
    );
}
