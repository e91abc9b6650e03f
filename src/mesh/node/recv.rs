//! The receive task: batched reads, classification (WIRE.md §1),
//! handshakes, packet opening (§4.4) and dispatch. Grants and reliability
//! acks are coalesced per batch: one per touched stream.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::super::bufpool::BufferPool;
use super::super::credit::WindowOffer;
use super::super::crypto::Role;
use super::super::hello::{
    FLAG_ACK, FLAG_AES_256_GCM, FLAG_LARGE_DATAGRAMS, FLAG_RELIABILITY, FLAG_WINDOW_GROWTH, Hello,
    HelloError,
};
use super::super::inbound::InboundPacket;
use super::super::io::RecvBatch;
use super::super::noise_dh::make_ephemeral_ahead;
use super::super::pathsize::{PathProbe, PathProbeAck};
use super::super::peer::Peer;
use super::super::reliable::{Received, RelAck};
use super::super::routing::{Forward, PeerProtocol, PingwaveOutcome};
use super::super::session::RecvError;
use super::super::stream::TxMode;
use super::session_install::Installed;
use super::subprotocols::SUBPROTOCOL_STREAM_BASE;
use super::{Inner, PendingKey, bump};
use crate::wire::{
    DatagramClass, NetHeader, ROUTING_HEADER_SIZE, RoutingHeader, StreamWindow, classify,
    decode_events, ids,
};

/// Streams whose grant or ack is due at the end of the batch.
type Touched = HashSet<(u64, u64)>;

/// Datagrams a relay forwards, gathered over one receive batch and sent
/// per next hop in one batched write (GSO / `sendmmsg`) after it: a relay
/// pays one system call per batch, not one per forwarded datagram.
#[derive(Default)]
struct Forwards {
    by_hop: Vec<(SocketAddr, Vec<Vec<u8>>)>,
}

impl Forwards {
    fn push(&mut self, to: SocketAddr, datagram: Vec<u8>) {
        match self.by_hop.iter_mut().find(|(addr, _)| *addr == to) {
            Some((_, queue)) => queue.push(datagram),
            None => self.by_hop.push((to, vec![datagram])),
        }
    }
}

pub(super) async fn receive_loop(
    inner: Arc<Inner>,
    socket: tokio::io::unix::AsyncFd<std::net::UdpSocket>,
) {
    let mut batch = RecvBatch::new(inner.offload.gro, inner.config.large_datagrams);
    loop {
        if inner.is_shut_down() {
            return;
        }
        let Ok(mut ready) = socket.readable().await else {
            return;
        };
        loop {
            match ready.try_io(|s| batch.recv(s.get_ref())) {
                Ok(Ok(n)) => {
                    inner
                        .stats
                        .gro_datagrams
                        .fetch_add(batch.coalesced as u64, Ordering::Relaxed);
                    let mut touched = Touched::new();
                    let mut forwards = Forwards::default();
                    for i in 0..n {
                        let (buf, from, truncated) = batch.get_mut(i);
                        let Some(from) = from else { continue };
                        inner.handle_datagram(buf, from, truncated, &mut touched, &mut forwards);
                    }
                    inner.inbound.signal();
                    if !forwards.by_hop.is_empty() {
                        // Every next hop's forwards in one write.
                        inner.transmit_many(forwards.by_hop, false);
                    }
                    inner.flush_touched(&touched);
                }
                // Drained: try_io cleared the readiness; wait for more.
                Err(_would_block) => break,
                Ok(Err(_)) => break,
            }
        }
    }
}

/// The longest datagram a v0.11 node sends: a packet behind a routing
/// header.
const V011_MAX_DATAGRAM: usize = crate::wire::MAX_PACKET_SIZE + crate::wire::ROUTING_HEADER_SIZE;

impl Inner {
    fn handle_datagram(
        &self,
        buf: &mut [u8],
        from: SocketAddr,
        truncated: bool,
        touched: &mut Touched,
        forwards: &mut Forwards,
    ) {
        bump(&self.stats.datagrams_received);
        self.stats
            .bytes_received
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        if truncated || (buf.len() > V011_MAX_DATAGRAM && !self.takes_large_from(from)) {
            bump(&self.stats.oversized);
            return;
        }
        match classify(buf) {
            DatagramClass::Direct => self.handle_direct(buf, from, touched),
            DatagramClass::Routed => self.handle_routed(buf, from, touched, forwards),
            DatagramClass::Pingwave => self.handle_pingwave(buf, from),
            // Keep-alives: a punch's (node/traversal.rs); stray ones are
            // counted by the datagram counter and dropped there.
            DatagramClass::KeepAlive => self.handle_keepalive(buf, from),
            _ => bump(&self.stats.malformed),
        }
    }

    /// Whether a datagram longer than v0.11's may come from `from`: a
    /// direct Net peer there that offered large datagrams, as we did.
    fn takes_large_from(&self, from: SocketAddr) -> bool {
        self.config.large_datagrams
            && self
                .addr_index
                .get(&from)
                .and_then(|id| self.peers.get(&*id).map(|p| p.value().clone()))
                .is_some_and(|p| p.binding().peer_has(FLAG_LARGE_DATAGRAMS))
    }

    fn handle_direct(&self, buf: &mut [u8], from: SocketAddr, touched: &mut Touched) {
        // Longer than v0.11's only from a peer that offered large
        // datagrams (`takes_large_from`).
        let decoded = if self.config.large_datagrams {
            NetHeader::decode_large(buf)
        } else {
            NetHeader::decode(buf)
        };
        let Ok(header) = decoded else {
            bump(&self.stats.malformed);
            return;
        };
        if header.is_handshake() {
            self.handle_direct_handshake(buf, from);
            return;
        }
        // Fast path: the source address; else the session-id index.
        let by_addr = self
            .addr_index
            .get(&from)
            .and_then(|id| self.peers.get(&*id).map(|p| p.value().clone()))
            .filter(|p| p.session.id() == header.session_id);
        let peer = match by_addr {
            Some(p) => p,
            None => {
                bump(&self.stats.session_scans);
                match self.session_owner(header.session_id) {
                    Some(p) => p,
                    None => {
                        bump(&self.stats.unknown_session);
                        return;
                    }
                }
            }
        };
        self.process(&peer, &header, buf, Some(from), touched);
    }

    fn peer_by_session(&self, session_id: u64) -> Option<Arc<Peer>> {
        let node = *self.session_index.get(&session_id)?;
        self.peers
            .get(&node)
            .map(|p| p.value().clone())
            .filter(|p| p.session.id() == session_id)
    }

    /// The peer or the candidate (`session_install.rs`) whose session is
    /// `session_id`.
    fn session_owner(&self, session_id: u64) -> Option<Arc<Peer>> {
        self.peer_by_session(session_id)
            .or_else(|| self.candidate_by_session(session_id))
    }

    /// The direct peer whose session uses `addr` as its address (the only
    /// peers whose pingwaves and routed datagrams we act on).
    fn direct_peer_at(&self, addr: SocketAddr) -> Option<u64> {
        self.addr_index.get(&addr).map(|id| *id)
    }

    /// A pingwave: the router learns a route from it and says where its
    /// copies go (never back to the sender; only from direct peers).
    fn handle_pingwave(&self, buf: &[u8], from: SocketAddr) {
        let from_peer = self.direct_peer_at(from);
        let outcome = self.router().on_pingwave(from_peer, buf, Instant::now());
        if let PingwaveOutcome::Accepted { relay } = outcome {
            for copy in relay {
                if let Some(addr) = self.peers.get(&copy.to).map(|p| p.addr()) {
                    self.transmit(addr, vec![copy.bytes.to_vec()], false);
                }
            }
        }
    }

    fn handle_routed(
        &self,
        buf: &mut [u8],
        from: SocketAddr,
        touched: &mut Touched,
        forwards: &mut Forwards,
    ) {
        let Ok(rt) = RoutingHeader::decode(buf) else {
            bump(&self.stats.malformed);
            return;
        };
        if rt.dest_id != self.node_id {
            // A relay: forward only what an authenticated direct peer sent,
            // towards the best route that does not lead back to it.
            let from_peer = self.direct_peer_at(from);
            let decision = self.router().forward(from_peer, buf, Instant::now());
            match decision {
                Forward::Relay { next_hop, .. } => {
                    // The gateway: a stamped channel packet never goes to
                    // a hop outside its subnet (`node/subnets.rs`).
                    if !self.relay_may_forward(next_hop, &buf[ROUTING_HEADER_SIZE..]) {
                        return;
                    }
                    if let Some(addr) = self.peers.get(&next_hop).map(|p| p.addr())
                        && decision.rewrite(buf)
                    {
                        forwards.push(addr, buf.to_vec());
                    }
                }
                _ => bump(&self.stats.not_for_us),
            }
            return;
        }
        let Ok(header) = NetHeader::decode(&buf[ROUTING_HEADER_SIZE..]) else {
            bump(&self.stats.malformed);
            return;
        };
        if header.is_handshake() {
            self.handle_routed_handshake(buf, &rt, from);
            return;
        }
        // Heartbeats too: a relayed peer's liveness (v0.11 sends none
        // routed; its relayed peers are never heard, as in v0.11).
        let Some(peer) = self.session_owner(header.session_id) else {
            bump(&self.stats.unknown_session);
            return;
        };
        self.process(
            &peer,
            &header,
            &mut buf[ROUTING_HEADER_SIZE..],
            None,
            touched,
        );
    }

    fn handle_direct_handshake(&self, buf: &[u8], from: SocketAddr) {
        // A reply to our direct connect?
        if let Some(pending) = self
            .pending_connects
            .get(&PendingKey::Addr(from))
            .map(|e| e.value().clone())
        {
            self.finish_connect(&pending, buf);
            return;
        }
        // An initiator we `accept`: try each expected caller (the prologue
        // names it, so only the right one decrypts).
        let accepts: Vec<_> = self
            .pending_accepts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if accepts.is_empty() {
            bump(&self.stats.handshakes_failed);
            return;
        }
        if !self.take_handshake_token() {
            bump(&self.stats.handshakes_throttled);
            return;
        }
        for pending in accepts {
            let Ok(accepted) = self.responder.accept_direct(buf, pending.node_id) else {
                continue;
            };
            let installed = self.install_session(
                pending.node_id,
                from,
                &accepted.keys,
                Role::Responder,
                None,
                true,
            );
            match installed {
                Ok(installed) => {
                    // msg2 first: the caller's handshake finishes without
                    // waiting for our hello's signature.
                    self.transmit(from, vec![accepted.msg2], false);
                    self.send_hello(installed.peer(), false);
                    match installed {
                        Installed::Session(peer) => {
                            self.on_session_up(&peer);
                            pending.waiter.complete(Ok(from));
                        }
                        // `accept` returns when the candidate's hello
                        // replaces the old session.
                        Installed::Candidate(peer) => self.candidate_accept(&peer, pending),
                    }
                }
                Err(_) => pending.waiter.complete(Err("exists".into())),
            }
            return;
        }
        bump(&self.stats.handshakes_failed);
    }

    fn handle_routed_handshake(&self, buf: &[u8], rt: &RoutingHeader, from: SocketAddr) {
        // msg2 of our routed connect: matched by the responder's routing id.
        if let Some(pending) = self
            .pending_connects
            .get(&PendingKey::Rid(rt.src_id))
            .map(|e| e.value().clone())
        {
            self.finish_connect(&pending, buf);
            return;
        }
        if !self.take_handshake_token() {
            bump(&self.stats.handshakes_throttled);
            return;
        }
        let accepted = match self.responder.accept_routed(buf) {
            Ok(a) => a,
            Err(_) => {
                bump(&self.stats.handshakes_failed);
                return; // wrong PSK, garbage, mismatched id: silence
            }
        };
        if accepted.peer_node_id == self.node_id {
            bump(&self.stats.handshakes_failed);
            return;
        }
        // Through a relay when it came from another direct peer's address
        // (else the initiator sent it straight to us: the routed form of a
        // direct connect). The re-key rules live in session_install.rs: a
        // live unbound session refuses the newcomer, whatever its key; a
        // live bound one takes it as a candidate.
        let relay = self
            .direct_peer_at(from)
            .filter(|id| *id != accepted.peer_node_id);
        if let Ok(installed) = self.install_session(
            accepted.peer_node_id,
            from,
            &accepted.keys,
            Role::Responder,
            relay,
            true,
        ) {
            // msg2 first: the caller's handshake finishes without waiting
            // for our hello's signature.
            self.transmit(from, vec![accepted.msg2], false);
            self.send_hello(installed.peer(), false);
            if let Installed::Session(peer) = installed {
                self.on_session_up(&peer);
            }
            // While the caller finishes: the next answer's ephemeral key.
            make_ephemeral_ahead();
        }
    }

    fn finish_connect(&self, pending: &super::PendingConnect, datagram: &[u8]) {
        let Some(initiator) = pending
            .initiator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return; // already answered (a duplicate msg2)
        };
        match initiator.finish(datagram) {
            Ok(keys) => match self.install_session(
                pending.peer_node_id,
                pending.addr,
                &keys,
                Role::Initiator,
                pending.relay,
                false,
            ) {
                Ok(installed) => {
                    let peer = installed.peer();
                    peer.binding().peer_static = Some(pending.peer_static);
                    self.send_hello(peer, false);
                    self.on_session_up(peer);
                    pending.waiter.complete(Ok(()));
                }
                Err(_) => pending.waiter.complete(Err("exists".into())),
            },
            Err(e) => {
                bump(&self.stats.handshakes_failed);
                pending.waiter.complete(Err(e.to_string()));
            }
        }
    }

    /// Opens and dispatches a protected packet for `peer`.
    fn process(
        &self,
        peer: &Arc<Peer>,
        header: &NetHeader,
        packet: &mut [u8],
        direct_from: Option<SocketAddr>,
        touched: &mut Touched,
    ) {
        let opened = match peer.session.open(header, packet) {
            Ok(o) => o,
            Err(RecvError::Replay(_)) => {
                bump(&self.stats.replays);
                return;
            }
            Err(RecvError::Open(_)) => {
                bump(&self.stats.auth_failures);
                return;
            }
        };
        let now = Instant::now();
        peer.touch(now);
        if peer.is_candidate() {
            // A candidate is heard only for its hello (session_install.rs).
            if header.subprotocol_id == ids::STREAM_WINDOW && !header.is_heartbeat() {
                let plaintext = &packet[opened.plaintext.clone()];
                for event in decode_events(plaintext, usize::from(header.event_count)) {
                    if let Ok(hello) = Hello::decode(event) {
                        self.handle_hello(peer, &hello);
                    }
                }
            }
            return;
        }
        if let Some(jump) = opened.jump {
            bump(&self.stats.counter_jumps);
            tracing::warn!(
                peer = peer.node_id,
                session = peer.session.id(),
                jump,
                "authenticated counter jumped past the replay window; window reset"
            );
        }
        if let Some(from) = direct_from
            && from != peer.addr()
        {
            if peer.relay().is_some() {
                // A relayed session heard straight: a path upgrade, if a
                // punch with this peer allows it (node/traversal.rs).
                self.on_direct_packet_of_relayed(peer, from);
            } else {
                // Authenticated from a new address: the peer moved.
                self.refresh_addr(peer, from);
            }
        }
        let plaintext = &packet[opened.plaintext.clone()];
        if header.is_heartbeat() {
            bump(&self.stats.heartbeats_received);
            peer.heartbeat(now);
            self.router().table_mut().heard_from(peer.node_id, now);
            return;
        }
        match header.subprotocol_id {
            ids::STREAM_WINDOW => {
                for event in decode_events(plaintext, usize::from(header.event_count)) {
                    self.handle_window_event(peer, event, now);
                }
            }
            ids::MEMBERSHIP => self.handle_membership(peer, header, plaintext),
            ids::CAPABILITY => self.handle_capability(peer, header, plaintext),
            ids::REFLEX => self.handle_reflex(peer, header, plaintext, direct_from),
            ids::RENDEZVOUS => self.handle_rendezvous(peer, header, plaintext),
            ids::NET_RELIABILITY if peer.binding().peer_entity.is_some() => {
                for event in decode_events(plaintext, usize::from(header.event_count)) {
                    if let Ok(ack) = RelAck::decode(event) {
                        self.handle_ack(peer, &ack, now);
                    } else if let Ok(probe) = PathProbe::decode(event) {
                        self.answer_path_probe(peer, header, &probe);
                    } else if let Ok(ack) = PathProbeAck::decode(event) {
                        self.on_path_probe_ack(peer, &ack);
                    }
                }
            }
            id => match self.subprotocol_handler(id) {
                // A subprotocol stream from a Net peer: through the
                // reorder buffer, to the handler at release (deliver_packed).
                Some(_)
                    if header.is_reliable()
                        && header.stream_id == SUBPROTOCOL_STREAM_BASE + u64::from(id)
                        && peer.binding().peer_entity.is_some() =>
                {
                    self.handle_data(peer, header, plaintext, now, touched);
                }
                Some(handler) => {
                    self.handle_subprotocol(&*handler, peer.node_id, header, plaintext);
                }
                None if id == ids::MIGRATION => {
                    self.refuse_migration(peer.node_id, header, plaintext);
                }
                None => self.handle_data(peer, header, plaintext, now, touched),
            },
        }
    }

    fn handle_window_event(&self, peer: &Arc<Peer>, event: &[u8], now: Instant) {
        if let Ok(offer) = WindowOffer::decode(event) {
            self.handle_window_offer(peer, &offer, now);
            return;
        }
        if let Ok(grant) = StreamWindow::decode(event) {
            let mut streams = peer.streams();
            if streams.is_quarantined(grant.stream_id, now) {
                return;
            }
            if let Some(stream) = streams.get_mut(grant.stream_id)
                && stream.tx.credit.apply_grant(grant.total_consumed) > 0
            {
                drop(streams);
                peer.credit_granted.notify_all();
            }
            return;
        }
        match Hello::decode(event) {
            Ok(hello) => self.handle_hello(peer, &hello),
            Err(HelloError::NotHello(_)) => {}
            Err(_) => bump(&self.stats.identity_refused),
        }
    }

    /// A Net receiver lets us widen a default window (`docs/mesh.md`,
    /// *Window growth*): only if we offered growth in our hello, the peer's
    /// verified hello did too, and the application left the window at its
    /// default; never past our own `max_window`.
    fn handle_window_offer(&self, peer: &Arc<Peer>, offer: &WindowOffer, now: Instant) {
        if self.hello_flags() & FLAG_WINDOW_GROWTH == 0
            || !peer.binding().peer_has(FLAG_WINDOW_GROWTH)
        {
            return;
        }
        let mut streams = peer.streams();
        if streams.is_quarantined(offer.stream_id, now) {
            return;
        }
        let Some(stream) = streams.get_mut(offer.stream_id) else {
            return;
        };
        if !stream.tx.default_window {
            return;
        }
        let window = offer.window.min(self.config.max_window);
        if stream.tx.credit.grow_window(window) > 0 {
            drop(streams);
            bump(&self.stats.windows_widened);
            peer.credit_granted.notify_all();
        }
    }

    fn handle_hello(&self, peer: &Arc<Peer>, hello: &Hello) {
        if let Err(e) = hello.verify(peer.session.handshake_hash(), peer.role(), peer.node_id) {
            tracing::warn!(peer = peer.node_id, error = %e, "identity hello refused");
            bump(&self.stats.identity_refused);
            if peer.is_candidate() {
                self.drop_candidate(peer);
            }
            return;
        }
        // Trust on first use: a node_id stays bound to its first entity.
        {
            let mut pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
            match pins.get(&peer.node_id) {
                Some(pinned) if *pinned != hello.entity => {
                    drop(pins);
                    tracing::warn!(
                        peer = peer.node_id,
                        "peer presented a different entity than the pinned one; session dropped"
                    );
                    bump(&self.stats.identity_refused);
                    // A candidate is dropped; the bound session stays.
                    self.remove_peer(peer);
                    return;
                }
                Some(_) => {}
                None => {
                    pins.insert(peer.node_id, hello.entity);
                }
            }
        }
        // A restarted peer proved the pinned entity: its candidate session
        // replaces the old one now.
        if peer.is_candidate() && !self.promote_candidate(peer) {
            return;
        }
        let bound = {
            let mut b = peer.binding();
            b.peer_entity = Some(hello.entity);
            b.peer_flags = hello.flags;
            // The key we dialed was proved by the handshake; keep it.
            if b.peer_static.is_none() {
                b.peer_static = hello.static_key;
            }
            b.legacy = false;
            if hello.flags & FLAG_ACK != 0 {
                b.acked = true;
            }
            b.is_net()
        };
        // A Net peer: our pingwaves to it carry Net reach (TTL 8).
        self.router()
            .table_mut()
            .set_peer_protocol(peer.node_id, PeerProtocol::Net);
        // Ciphers (docs/mesh.md): AES-flagged packets are opened from now
        // on if we offered AES (the peer sends them only after our ack of
        // this hello, which follows); data goes out with AES once the
        // binding is complete both ways and both sides offered it.
        let offered = self.hello_flags() & FLAG_AES_256_GCM != 0;
        let peer_offered = hello.flags & FLAG_AES_256_GCM != 0;
        peer.session
            .enable_aes(offered, offered && peer_offered && bound);
        peer.binding_changed.notify_all();
        if bound {
            // A Net peer is a probe candidate now, and its path may take
            // large datagrams (node/pathsize.rs).
            self.traversal_session_up(peer);
            self.path_changed(peer);
        }
        if hello.flags & FLAG_ACK == 0 {
            self.send_hello(peer, true);
        }
    }

    /// The capability flags of our hellos: Net reliable streams, and
    /// AES-256-GCM when the config allows it and the CPU has AES
    /// instructions.
    pub(super) fn hello_flags(&self) -> u8 {
        let mut flags = FLAG_RELIABILITY;
        if self.config.aes && super::super::crypto::aes_hardware() {
            flags |= FLAG_AES_256_GCM;
        }
        if self.config.max_window > self.config.window && self.config.window != 0 {
            flags |= FLAG_WINDOW_GROWTH;
        }
        if self.config.large_datagrams {
            flags |= FLAG_LARGE_DATAGRAMS;
        }
        if self.config.continuity {
            flags |= super::super::hello::FLAG_CONTINUITY;
        }
        flags | super::super::hello::FLAG_SUBPROTOCOL_STREAMS
    }

    fn handle_ack(&self, peer: &Arc<Peer>, ack: &RelAck, now: Instant) {
        let mut freed = Vec::new();
        let lost = {
            let mut streams = peer.streams();
            let Some(stream) = streams.get_mut(ack.stream_id) else {
                return;
            };
            stream.tx.sender.on_ack_into(ack, now, &mut freed)
        };
        self.buffers.give_all(freed);
        if !lost.is_empty() {
            self.resend(peer, ack.stream_id, &lost);
        }
    }

    fn handle_data(
        &self,
        peer: &Arc<Peer>,
        header: &NetHeader,
        plaintext: &[u8],
        now: Instant,
        touched: &mut Touched,
    ) {
        let stream_id = header.stream_id;
        let events = decode_events(plaintext, usize::from(header.event_count));
        let frames = frame_offsets(plaintext, &events);
        let cost = plaintext.len() as u64 + 80;
        let causal = header.subprotocol_id == ids::CAUSAL;
        let net_reliable = header.is_reliable() && peer.binding().peer_entity.is_some();
        let subprotocol_stream = header.subprotocol_id != ids::EVENTS
            && stream_id == SUBPROTOCOL_STREAM_BASE + u64::from(header.subprotocol_id);
        let mut streams = peer.streams();
        let stream = streams.for_receive(stream_id, now);
        // A stream whose window is 0 (unlimited) sends no grants (§7.2);
        // the others are credited when the application takes the events.
        let window = stream.tx.credit.window();
        if net_reliable {
            // In order, exactly once; refuse (no ack, no credit) when the
            // inbound shard is full and the packet exceeds the window, so
            // the sender retransmits later.
            if !stream.rx.receiver.would_accept(header.sequence) {
                stream.rx.receiver.on_packet(header.sequence, 0, Vec::new()); // marks ack due
                touched.insert((peer.node_id, stream_id));
                return;
            }
            let within = stream.rx.within_window(cost, window);
            if !within && !self.inbound.has_room(stream_id, frames.len()) {
                bump(&self.stats.inbound_dropped);
                return;
            }
            if window != 0 {
                stream.rx.on_queued(cost, window);
            }
            let kind = if causal {
                PACKED_CAUSAL
            } else if subprotocol_stream {
                PACKED_SUBPROTOCOL
            } else {
                0
            };
            let packed = pack(plaintext, &frames, kind, &self.buffers);
            let delivered =
                match stream
                    .rx
                    .receiver
                    .on_packet(header.sequence, header.event_count, packed)
                {
                    Received::Deliver(packets) => packets,
                    _ => Vec::new(),
                };
            drop(streams);
            touched.insert((peer.node_id, stream_id));
            for (_, _, payload) in delivered {
                let credit = if window != 0 {
                    packed_cost(&payload)
                } else {
                    0
                };
                self.deliver_packed(peer, stream_id, payload, credit);
            }
            return;
        }
        // v0.11 semantics: queue regardless; credit only for accepted
        // packets (the gate matters only if we opened the stream reliable).
        let accepted = if stream.tx.reliable && stream.tx.mode != TxMode::Net {
            stream.rx.legacy_gate.accept(header.sequence)
        } else {
            true
        };
        let credit = if accepted && window != 0 { cost } else { 0 };
        let force = credit > 0 && stream.rx.within_window(cost, window);
        stream.rx.on_queued(credit, window);
        drop(streams);
        if causal && self.continuity_taps() {
            // Arrival order: a fire-and-forget (or v0.11) stream's only one.
            self.continuity_tap(Some(peer.node_id), &events);
        }
        let n = frames.len() as u64;
        let packet = InboundPacket {
            peer: peer.node_id,
            stream_id,
            payload: self.buffers.copy_of(plaintext),
            frames,
            next: 0,
            credit,
            dropped_before: 0,
            channel: self.channel_of(peer.node_id, stream_id),
        };
        if !self.deliver(packet, force) {
            self.stats.inbound_dropped.fetch_add(n, Ordering::Relaxed);
            if credit > 0 {
                // Never queued: its credit comes back at once (the sender
                // chose not to wait, or exceeds the window).
                let mut streams = peer.streams();
                if let Some(stream) = streams.get_mut(stream_id) {
                    stream.rx.queued = stream.rx.queued.saturating_sub(credit);
                    stream.rx.consumed += credit;
                }
                touched.insert((peer.node_id, stream_id));
            }
        }
    }

    /// Queues a packed packet (`u32 count ‖ frames`, see [`pack`]).
    /// Always queued (the packet was accepted into the reorder buffer).
    /// A causal packet's frames are checked first: this is the stream's
    /// in-order release point. A subprotocol stream's frames go to the
    /// subprotocol's handler instead, and are credited as taken when the
    /// receive batch ends (`flush_touched`), as the application's are when
    /// it takes them: grants and window growth alike.
    fn deliver_packed(&self, peer: &Arc<Peer>, stream_id: u64, packed: Vec<u8>, credit: u64) {
        let (payload, frames, kind) = unpack(packed);
        let causal = kind == PACKED_CAUSAL;
        if kind == PACKED_SUBPROTOCOL
            && let Some(handler) =
                self.subprotocol_handler((stream_id - SUBPROTOCOL_STREAM_BASE) as u16)
        {
            for &(at, len) in &frames {
                handler.on_message(peer.node_id, &payload[at as usize..(at + len) as usize]);
            }
            self.buffers.give(payload);
            if credit > 0
                && let Some(stream) = peer.streams().get_mut(stream_id)
            {
                stream.rx.taken_by_handler += credit;
            }
            return;
        }
        let peer = peer.node_id;
        if causal && self.continuity_taps() {
            let events: Vec<&[u8]> = frames
                .iter()
                .map(|&(at, len)| &payload[at as usize..(at + len) as usize])
                .collect();
            self.continuity_tap(Some(peer), &events);
        }
        let n = frames.len() as u64;
        if !self.deliver(
            InboundPacket {
                peer,
                stream_id,
                payload,
                frames,
                next: 0,
                credit,
                dropped_before: 0,
                channel: self.channel_of(peer, stream_id),
            },
            true,
        ) {
            self.stats.inbound_dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Sends the acks that came due during a batch, and the grants of
    /// streams that consumed at least their grant threshold (a quarter of
    /// the sender's window as observed, at most `grant_threshold`) since
    /// their last grant (the reliability tick sends the rest within 5 ms).
    pub(super) fn flush_touched(&self, touched: &Touched) {
        for &(node_id, stream_id) in touched {
            let Some(peer) = self.peers.get(&node_id).map(|p| p.value().clone()) else {
                continue;
            };
            let (grant, ack, taken) = {
                let mut streams = peer.streams();
                let Some(stream) = streams.get_mut(stream_id) else {
                    continue;
                };
                let taken = std::mem::take(&mut stream.rx.taken_by_handler);
                let threshold = stream.rx.grant_threshold(self.grant_threshold);
                let grant = (taken == 0)
                    .then(|| stream.rx.take_grant(threshold))
                    .flatten()
                    .map(|total| (total, stream.rx.offer()));
                let ack = stream
                    .rx
                    .receiver
                    .ack_due()
                    .then(|| stream.rx.receiver.take_ack(stream_id));
                (grant, ack, taken)
            };
            if taken > 0 {
                self.credit_taken(&peer, stream_id, taken);
            }
            if let Some((total, offer)) = grant {
                self.send_grant(&peer, stream_id, total, offer);
            }
            if let Some(ack) = ack {
                self.send_ack(&peer, &ack);
            }
        }
    }
}

/// (offset, len) of each decoded event within `payload`.
fn frame_offsets(payload: &[u8], events: &[&[u8]]) -> Vec<(u32, u32)> {
    let base = payload.as_ptr() as usize;
    events
        .iter()
        .map(|e| ((e.as_ptr() as usize - base) as u32, e.len() as u32))
        .collect()
}

/// The count word's flag for a packet of a causal stream (subprotocol
/// 0x0400); a packet holds at most 65 535 events.
const PACKED_CAUSAL: u32 = 1 << 31;
/// The count word's flag for a packet of a subprotocol stream (its frames
/// go to the subprotocol's handler).
const PACKED_SUBPROTOCOL: u32 = 1 << 30;
/// The count word's kind bits.
const PACKED_KIND: u32 = PACKED_CAUSAL | PACKED_SUBPROTOCOL;

/// Packs the events of a plaintext for the reorder buffer: the payload and
/// the frame table, so delivery needs no re-parse, and their kind (0,
/// [`PACKED_CAUSAL`] or [`PACKED_SUBPROTOCOL`]).
fn pack(plaintext: &[u8], frames: &[(u32, u32)], kind: u32, buffers: &BufferPool) -> Vec<u8> {
    let table = 4 + frames.len() * 8;
    let mut out = buffers.take(table + plaintext.len());
    out.extend_from_slice(&(frames.len() as u32 | kind).to_le_bytes());
    for &(at, len) in frames {
        out.extend_from_slice(&(at + table as u32).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(plaintext);
    out
}

/// The credit of a packed packet: its plaintext (the frames without the
/// table) plus the per-packet overhead, as the sender debited it.
fn packed_cost(packed: &[u8]) -> u64 {
    let n =
        (u32::from_le_bytes([packed[0], packed[1], packed[2], packed[3]]) & !PACKED_KIND) as usize;
    (packed.len() - 4 - n * 8) as u64 + super::super::credit::PACKET_COST_OVERHEAD
}

/// The payload, its frame table and its kind bits.
fn unpack(packed: Vec<u8>) -> (Vec<u8>, Vec<(u32, u32)>, u32) {
    let word = |at: usize| {
        u32::from_le_bytes([packed[at], packed[at + 1], packed[at + 2], packed[at + 3]])
    };
    let kind = word(0) & PACKED_KIND;
    let n = (word(0) & !PACKED_KIND) as usize;
    let frames = (0..n).map(|i| (word(4 + i * 8), word(8 + i * 8))).collect();
    (packed, frames, kind)
}
