//! The send path, run on the caller's thread (and by the tasks for control
//! packets): framing, credit, sealing and batched writes (through the
//! outbound packet filter in `test-util` builds); the loopback path for
//! sends to ourselves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::super::credit::WindowOffer;
use super::super::credit::{PACKET_COST_OVERHEAD, packet_cost};
use super::super::hello::FLAG_WINDOW_GROWTH;
use super::super::hello::{FLAG_ACK, Hello};
use super::super::inbound::InboundPacket;
use super::super::io;
use super::super::outbox::{MAX_PENDING_BYTES, Writer};
use super::super::packet::PacketKind;
use super::super::peer::Peer;
use super::super::reliable::RelAck;
use super::super::stream::TxMode;
use super::{Inner, MeshError, bump};
use crate::cancel::CancelToken;
use crate::identity::routing_id;
use crate::wire::{
    CONTROL_STREAM_ID, MAX_PAYLOAD_SIZE, ROUTED_DATA_TTL, RoutingHeader, StreamWindow,
    encode_events, flags, ids,
};

/// The largest framed payload of a packet on a stream with `window`: a
/// packet never costs more than the window, so every packet can eventually
/// be sent. `BatchExceedsWindow` when one of `events` alone does not fit.
fn packet_limit<E: AsRef<[u8]>>(
    window: u64,
    events: &[E],
    peer_max: usize,
) -> Result<usize, MeshError> {
    // Past v0.11's 8 KiB (a Net peer whose path took a large-datagram
    // probe, node/pathsize.rs), a packet holds at most a quarter of the
    // window, so that several are in flight.
    let cap = if peer_max > MAX_PAYLOAD_SIZE {
        let quarter = if window == 0 {
            peer_max
        } else {
            (window / 4) as usize
        };
        quarter.clamp(MAX_PAYLOAD_SIZE, peer_max)
    } else {
        MAX_PAYLOAD_SIZE
    };
    let limit = if window == 0 {
        cap
    } else {
        (window.saturating_sub(PACKET_COST_OVERHEAD) as usize).min(cap)
    };
    let largest = events
        .iter()
        .map(|e| e.as_ref().len() + 4)
        .max()
        .unwrap_or(0);
    if largest > limit {
        return Err(MeshError::BatchExceedsWindow {
            needed: packet_cost(largest),
            window,
        });
    }
    Ok(limit)
}

/// How long a caller's send waits for kernel buffer space before giving up
/// on the datagram (UDP may drop anyway; this bounds the stall).
const SOCKET_WAIT: Duration = Duration::from_millis(500);

impl Inner {
    /// Sends one protected packet to `peer` (control traffic: never waits).
    pub(super) fn send_control(&self, peer: &Peer, kind: &PacketKind, plaintext: &[u8]) {
        let mut out = Vec::new();
        if peer.session.seal(kind, plaintext, &mut out).is_ok() {
            self.transmit_to_peer(peer, vec![out], false);
        }
    }

    /// Our identity hello (with the ack flag when answering the peer's).
    pub(super) fn send_hello(&self, peer: &Peer, ack: bool) {
        let mut flags_byte = self.hello_flags();
        if ack {
            flags_byte |= FLAG_ACK;
        }
        let Ok(hello) = peer.hello_event(flags_byte, || {
            Hello::sign(
                &self.identity,
                peer.session.handshake_hash(),
                peer.role(),
                flags_byte,
                Some(&self.static_public),
            )
            .map(|hello| hello.encode())
        }) else {
            return;
        };
        if !ack {
            let mut b = peer.binding();
            b.last_sent = Some(Instant::now());
            b.sends += 1;
        }
        let Ok(payload) = encode_events(&[&hello[..]]) else {
            return;
        };
        let kind = PacketKind {
            subprotocol_id: ids::STREAM_WINDOW,
            stream_id: CONTROL_STREAM_ID,
            sequence: peer.session.next_control_seq(),
            event_count: 1,
            ..PacketKind::default()
        };
        self.send_control(peer, &kind, &payload);
    }

    /// An absolute StreamWindow grant for `stream_id`, and with it the
    /// wider window we offer a Net sender (`docs/mesh.md`, *Window
    /// growth*), if any: repeated with every grant, so a lost one costs
    /// nothing.
    pub(super) fn send_grant(
        &self,
        peer: &Peer,
        stream_id: u64,
        total_consumed: u64,
        offer: Option<u64>,
    ) {
        let grant = StreamWindow {
            stream_id,
            total_consumed,
        }
        .encode();
        let offer = offer
            .filter(|_| peer.binding().peer_has(FLAG_WINDOW_GROWTH))
            .map(|window| WindowOffer { stream_id, window }.encode());
        let encoded = match &offer {
            Some(offer) => encode_events(&[&grant[..], &offer[..]]),
            None => encode_events(&[&grant[..]]),
        };
        let Ok(payload) = encoded else {
            return;
        };
        let kind = PacketKind {
            subprotocol_id: ids::STREAM_WINDOW,
            stream_id: CONTROL_STREAM_ID,
            sequence: peer.session.next_control_seq(),
            event_count: if offer.is_some() { 2 } else { 1 },
            ..PacketKind::default()
        };
        self.send_control(peer, &kind, &payload);
        bump(&self.stats.grants_sent);
    }

    /// A reliability ack (Net peers only).
    pub(super) fn send_ack(&self, peer: &Peer, ack: &RelAck) {
        let Ok(payload) = encode_events(&[&ack.encode()[..]]) else {
            return;
        };
        self.send_reliability_event(peer, &payload);
        bump(&self.stats.acks_sent);
    }

    /// One framed event on the Net reliability subprotocol (0x1A00): acks,
    /// path probes and their answers (Net peers only).
    pub(super) fn send_reliability_event(&self, peer: &Peer, payload: &[u8]) {
        let kind = PacketKind {
            subprotocol_id: ids::NET_RELIABILITY,
            stream_id: u64::from(ids::NET_RELIABILITY),
            sequence: peer.rel_seq.fetch_add(1, Ordering::Relaxed),
            event_count: 1,
            ..PacketKind::default()
        };
        self.send_control(peer, &kind, payload);
    }

    /// Retransmits packet `seq` of a Net reliable stream (same sequence,
    /// same RELIABLE flag, a fresh counter).
    pub(super) fn resend(&self, peer: &Peer, stream_id: u64, seqs: &[u64]) {
        let now = Instant::now();
        let mut datagrams = Vec::with_capacity(seqs.len());
        {
            let mut streams = peer.streams();
            let Some(stream) = streams.get_mut(stream_id) else {
                return;
            };
            for &seq in seqs {
                let Some(packet) = stream.tx.sender.resend(seq, now) else {
                    continue;
                };
                let kind = PacketKind {
                    flags: flags::RELIABLE,
                    stream_id,
                    sequence: seq,
                    event_count: packet.event_count,
                    // Only Net reliable streams retransmit: a Net peer.
                    subprotocol_id: stream.tx.subprotocol,
                    priority: stream.tx.priority,
                    subnet_id: stream.tx.subnet_stamp,
                };
                let mut out = Vec::new();
                if peer.session.seal(&kind, &packet.payload, &mut out).is_ok() {
                    datagrams.push(out);
                }
            }
        }
        self.stats
            .retransmits
            .fetch_add(datagrams.len() as u64, Ordering::Relaxed);
        self.transmit_to_peer(peer, datagrams, false);
    }

    /// The send path of `send` (deadline None) and `send_blocking`
    /// (Some(deadline), where the inner None is "no limit"): events go into
    /// the peer's outbox (`outbox.rs`), and whoever the outbox names writes.
    pub(super) fn send_events<E: AsRef<[u8]>>(
        &self,
        peer_id: u64,
        stream_id: u64,
        events: &[E],
        blocking: Option<Option<Instant>>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), MeshError> {
        let Some((peer, flags_byte)) =
            self.begin_send(peer_id, stream_id, events, blocking.flatten(), cancel)?
        else {
            return Ok(());
        };
        self.tap_sent(&peer, stream_id, events);
        match blocking {
            None => {
                let writer = self.enqueue_now(&peer, stream_id, flags_byte, events)?;
                self.dispatch_writer(&peer, writer);
            }
            Some(deadline) => {
                // A cancel wakes a wait for credit (which re-checks at
                // least every 50 ms anyway).
                let _wake = cancel.map(|token| {
                    let peer = peer.clone();
                    token.on_cancel(move || peer.credit_granted.notify_all())
                });
                self.enqueue_waiting(&peer, stream_id, flags_byte, events, deadline, cancel)?
            }
        }
        self.stats
            .events_sent
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The node checks the frames it sends on a causal stream for the
    /// chains it follows, so a producer following its own chain holds it
    /// (and proves it to its readers). Before the send: the events are the
    /// producer's whether or not they get through.
    fn tap_sent<E: AsRef<[u8]>>(&self, peer: &Peer, stream_id: u64, events: &[E]) {
        if !self.continuity_taps() {
            return;
        }
        let causal = peer
            .streams()
            .get_mut(stream_id)
            .is_some_and(|s| s.tx.subprotocol == ids::CAUSAL);
        if causal {
            let bodies: Vec<&[u8]> = events.iter().map(AsRef::as_ref).collect();
            self.continuity_tap(None, &bodies);
        }
    }

    /// Events into `peer`'s outbox now without writing them: returns who
    /// writes, for the caller to dispatch once every peer's events are in
    /// (the publish path, which holds the peer and checked the events
    /// already: one peer lookup and one size check per subscriber, not
    /// two).
    pub(super) fn send_checked_events_deferred<E: AsRef<[u8]>>(
        &self,
        peer: Arc<Peer>,
        stream_id: u64,
        events: &[E],
    ) -> Result<Option<(Arc<Peer>, Writer)>, MeshError> {
        if events.is_empty() {
            return Ok(None);
        }
        let mode = self.stream_mode(&peer, stream_id, None, None)?;
        let writer = self.enqueue_now(&peer, stream_id, flags_of(mode), events)?;
        self.stats
            .events_sent
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(Some((peer, writer)))
    }

    /// What every send starts with: the checks, the loopback path (None:
    /// done), the peer, and its stream's mode as the packet flags.
    fn begin_send<E: AsRef<[u8]>>(
        &self,
        peer_id: u64,
        stream_id: u64,
        events: &[E],
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<Option<(Arc<Peer>, u8)>, MeshError> {
        self.check_running()?;
        if events.is_empty() {
            return Ok(None);
        }
        for e in events {
            if e.as_ref().len() + 4 > MAX_PAYLOAD_SIZE {
                return Err(MeshError::EventTooLarge(e.as_ref().len()));
            }
        }
        if peer_id == self.node_id {
            self.loopback(
                stream_id,
                events.iter().map(|e| e.as_ref().to_vec()).collect(),
                0,
            );
            return Ok(None);
        }
        let peer = self.peer(peer_id)?;
        let mode = self.stream_mode(&peer, stream_id, deadline, cancel)?;
        Ok(Some((peer, flags_of(mode))))
    }

    /// All events into the outbox now, or none (Backpressure); returns who
    /// writes.
    fn enqueue_now<E: AsRef<[u8]>>(
        &self,
        peer: &Arc<Peer>,
        stream_id: u64,
        flags_byte: u8,
        events: &[E],
    ) -> Result<Writer, MeshError> {
        let mut streams = self.outbox_room(peer, None, None)?;
        let now = Instant::now();
        let (stream, outbox) = streams
            .stream_and_outbox(stream_id)
            .ok_or(MeshError::StreamClosed(stream_id))?;
        let window = stream.tx.credit.window();
        let limit = packet_limit(window, events, peer.max_payload())?;
        let (_, cost) = outbox.plan(stream_id, events, limit, u64::MAX);
        if window != 0 && cost > window {
            return Err(MeshError::BatchExceedsWindow {
                needed: cost,
                window,
            });
        }
        stream.tx.credit.try_debit(cost)?;
        stream.last_active = now;
        outbox.append(stream_id, flags_byte, events, limit, &self.buffers);
        Ok(self.claim_outbox(outbox, now))
    }

    /// Events into the outbox as credit allows, waiting for more until
    /// `deadline`; what is waiting is written before the sender parks.
    fn enqueue_waiting<E: AsRef<[u8]>>(
        &self,
        peer: &Arc<Peer>,
        stream_id: u64,
        flags_byte: u8,
        events: &[E],
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), MeshError> {
        let mut rest = events;
        let mut streams = self.outbox_room(peer, deadline, cancel)?;
        loop {
            self.check_running()?;
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(MeshError::Cancelled);
            }
            let now = Instant::now();
            let (stream, outbox) = streams
                .stream_and_outbox(stream_id)
                .ok_or(MeshError::StreamClosed(stream_id))?;
            let limit = packet_limit(stream.tx.credit.window(), rest, peer.max_payload())?;
            let (n, cost) = outbox.plan(stream_id, rest, limit, stream.tx.credit.available());
            if n > 0 {
                stream
                    .tx
                    .credit
                    .try_debit(cost)
                    .expect("planned within the credit available");
                stream.last_active = now;
                outbox.append(stream_id, flags_byte, &rest[..n], limit, &self.buffers);
                rest = &rest[n..];
            }
            let writer = if outbox.is_empty() {
                Writer::Busy
            } else {
                self.claim_outbox(outbox, now)
            };
            if rest.is_empty() {
                drop(streams);
                self.dispatch_writer(peer, writer);
                return Ok(());
            }
            if writer != Writer::Busy {
                // Write what waits (it may be what the grant we wait for
                // depends on) before waiting.
                drop(streams);
                self.dispatch_writer(peer, writer);
                streams = self.outbox_room(peer, deadline, cancel)?;
                continue;
            }
            if !self.is_current(peer) {
                // Removed, or replaced by a new session (a restart): this
                // session's streams are gone.
                return Err(if self.peers.contains_key(&peer.node_id) {
                    MeshError::StreamClosed(stream_id)
                } else {
                    MeshError::UnknownPeer(peer.node_id)
                });
            }
            let wait = match deadline {
                Some(d) if now >= d => return Err(MeshError::Timeout),
                Some(d) => (d - now).min(Duration::from_millis(50)),
                None => Duration::from_millis(50),
            };
            streams = peer
                .credit_granted
                .wait_timeout(streams, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            // The guard came back from the wait, not from `streams()`.
            peer.want_tick();
        }
    }

    /// Who writes after an append (the `test-util` hooks may force the
    /// writer thread).
    fn claim_outbox(&self, outbox: &mut super::super::outbox::Outbox, now: Instant) -> Writer {
        let writer = outbox.claim(now);
        #[cfg(feature = "test-util")]
        if writer == Writer::Caller && self.testing.force_handoff() {
            return Writer::Handoff;
        }
        writer
    }

    /// The peer's stream table, once its outbox has room (it only fills
    /// past [`MAX_PENDING_BYTES`] on unlimited-window streams whose sender
    /// outruns the writer: the sender then waits for the writer).
    fn outbox_room<'p>(
        &self,
        peer: &'p Peer,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<std::sync::MutexGuard<'p, super::super::stream::StreamTable>, MeshError> {
        let mut streams = peer.streams();
        while streams.outbox.pending_bytes() > MAX_PENDING_BYTES {
            self.check_running()?;
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(MeshError::Cancelled);
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(d) if now >= d => return Err(MeshError::Timeout),
                Some(d) => (d - now).min(Duration::from_millis(50)),
                None => Duration::from_millis(50),
            };
            streams.outbox.want_room();
            streams = peer
                .credit_granted
                .wait_timeout(streams, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            peer.want_tick();
        }
        Ok(streams)
    }

    /// Decides (once, at the stream's first send) how it travels: a
    /// reliable stream to a peer whose identity exchange has not settled
    /// waits for it (at most `hello_timeout`).
    fn stream_mode(
        &self,
        peer: &Arc<Peer>,
        stream_id: u64,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<TxMode, MeshError> {
        let (reliable, mode) = {
            let mut streams = peer.streams();
            // The clock only for a stream opened here (a send's hot path
            // reads it once, in the enqueue).
            let s = match streams.get_mut(stream_id) {
                Some(s) => s,
                None => streams.open(stream_id, false, None, Instant::now()),
            };
            (s.tx.reliable, s.tx.mode)
        };
        if mode != TxMode::Undecided {
            return Ok(mode);
        }
        let decided = if !reliable {
            TxMode::Plain
        } else {
            let mut until = Instant::now() + self.config.hello_timeout;
            if let Some(d) = deadline {
                until = until.min(d);
            }
            let cancelled = || cancel.is_some_and(CancelToken::is_cancelled);
            let binding = peer.wait_resolved(until, &|| self.is_shut_down() || cancelled());
            self.check_running()?;
            if cancelled() {
                return Err(MeshError::Cancelled);
            }
            if binding.is_net() {
                TxMode::Net
            } else {
                TxMode::Legacy
            }
        };
        let mut streams = peer.streams();
        let now = Instant::now();
        let s = match streams.get_mut(stream_id) {
            Some(s) => s,
            None => streams.open(stream_id, reliable, None, now),
        };
        if s.tx.mode == TxMode::Undecided {
            s.tx.mode = decided;
        }
        Ok(s.tx.mode)
    }

    /// Sends datagrams to `to` (through the test packet filter, when one
    /// is installed). With `wait`, a full kernel buffer is waited out
    /// (bounded); otherwise the datagram drops.
    /// Sends sealed packets to `peer`: to its address, or for a relayed
    /// peer behind a routing header (data TTL 8) to the next hop of the
    /// best route to it — its relay, or another path when the relay failed.
    /// A relayed peer with no usable hop left gets nothing (its failure
    /// detector notices).
    pub(super) fn transmit_to_peer(&self, peer: &Peer, datagrams: Vec<Vec<u8>>, wait: bool) {
        if let Some((addr, datagrams)) = self.route_datagrams(peer, datagrams) {
            self.transmit(addr, datagrams, wait);
        }
    }

    /// Where `peer`'s datagrams go: its address, or for a relayed session
    /// the next hop, each datagram behind a routing header. None when a
    /// relayed peer has no live hop.
    pub(super) fn route_datagrams(
        &self,
        peer: &Peer,
        mut datagrams: Vec<Vec<u8>>,
    ) -> Option<(SocketAddr, Vec<Vec<u8>>)> {
        let Some(relay) = peer.relay() else {
            return Some((peer.addr(), datagrams));
        };
        // A candidate goes through the relay its handshake came from: the
        // route still leads to the session it may replace.
        let hop = if peer.is_candidate() {
            relay
        } else {
            self.router()
                .route_for(peer.node_id, Instant::now())
                .map_or(relay, |route| route.next_hop)
        };
        let addr = self
            .peers
            .get(&hop)
            .filter(|p| p.relay().is_none())
            .map(|p| p.addr())?;
        // The first hop of a stamped channel packet must be inside its
        // subnet (`node/subnets.rs`).
        self.confine(hop, &mut datagrams);
        let header = RoutingHeader {
            ttl: ROUTED_DATA_TTL,
            hop_count: 0,
            flags: 0,
            src_id: routing_id(self.node_id),
            dest_id: peer.node_id,
        }
        .encode();
        for datagram in &mut datagrams {
            datagram.splice(0..0, header);
        }
        Some((addr, datagrams))
    }

    pub(super) fn transmit(&self, to: SocketAddr, datagrams: Vec<Vec<u8>>, wait: bool) {
        self.transmit_many(vec![(to, datagrams)], wait);
    }

    /// Datagrams for several destinations, written together: one
    /// `sendmmsg` for as many as fit (a publish to its subscribers, the
    /// writer draining several outboxes, a relay's forwards), GSO runs per
    /// destination.
    pub(super) fn transmit_many(&self, batches: Vec<(SocketAddr, Vec<Vec<u8>>)>, wait: bool) {
        let mut dests = Vec::with_capacity(batches.len());
        let mut datagrams = Vec::new();
        let mut dest_of = Vec::new();
        for (to, batch) in batches {
            #[cfg(feature = "test-util")]
            let batch = self.testing.filter_outbound(self, to, batch);
            if batch.is_empty() {
                continue;
            }
            dest_of.extend(std::iter::repeat_n(dests.len(), batch.len()));
            dests.push(to);
            datagrams.extend(batch);
        }
        if datagrams.is_empty() {
            return;
        }
        if dests.len() == 1 {
            dest_of.clear();
        }
        self.write(&dests, &datagrams, &dest_of, wait);
        self.buffers.give_all(datagrams);
    }

    fn write(&self, dests: &[SocketAddr], datagrams: &[Vec<u8>], dest_of: &[usize], wait: bool) {
        let refs: Vec<&[u8]> = datagrams.iter().map(|d| d.as_slice()).collect();
        let mut sent = 0;
        let give_up = Instant::now() + SOCKET_WAIT;
        while sent < refs.len() {
            let gso = self.offload.gso();
            let rest_of = dest_of.get(sent..).unwrap_or(&[]);
            match self.send_batch(dests, &refs[sent..], rest_of, gso) {
                Ok(done) => {
                    let n = done.datagrams;
                    let bytes: usize = refs[sent..sent + n].iter().map(|d| d.len()).sum();
                    self.stats
                        .datagrams_sent
                        .fetch_add(n as u64, Ordering::Relaxed);
                    self.stats
                        .bytes_sent
                        .fetch_add(bytes as u64, Ordering::Relaxed);
                    self.stats
                        .gso_sends
                        .fetch_add(done.gso_sends as u64, Ordering::Relaxed);
                    sent += n;
                }
                Err(e) if gso && io::is_gso_refusal(&e) => {
                    if self.offload.disable_gso() {
                        bump(&self.stats.gso_fallbacks);
                        tracing::warn!(error = %e, "the kernel refused UDP GSO; sending datagrams one by one from now on");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && wait => {
                    if Instant::now() >= give_up || self.is_shut_down() {
                        break;
                    }
                    io::wait_writable(&self.socket, Duration::from_millis(5));
                }
                Err(_) => break,
            }
        }
        if sent < refs.len() {
            self.stats
                .send_dropped
                .fetch_add((refs.len() - sent) as u64, Ordering::Relaxed);
        }
    }

    /// One batched send (in `test-util` builds a refusal of GSO can be
    /// injected, to exercise the fallback).
    fn send_batch(
        &self,
        dests: &[SocketAddr],
        datagrams: &[&[u8]],
        dest_of: &[usize],
        gso: bool,
    ) -> std::io::Result<io::Sent> {
        #[cfg(feature = "test-util")]
        if gso && self.testing.refuse_gso() {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        bump(&self.stats.write_calls);
        io::send_batch_to(&self.socket, dests, datagrams, dest_of, gso)
    }

    /// Delivers events sent to our own node_id. Each nested self-send (a
    /// handler answering itself) is one level deeper; past the cap the
    /// events are dropped with a warning instead of spinning forever.
    pub(super) fn loopback(&self, stream_id: u64, events: Vec<Vec<u8>>, depth: usize) {
        let mut pending = vec![(events, depth)];
        while let Some((events, depth)) = pending.pop() {
            if depth >= self.config.loopback_depth {
                tracing::warn!(
                    stream_id,
                    depth,
                    events = events.len(),
                    "loopback dispatch depth cap reached; dropping self-addressed events"
                );
                self.stats
                    .loopback_dropped
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                continue;
            }
            let mut payload = Vec::new();
            let mut frames = Vec::with_capacity(events.len());
            for e in &events {
                frames.push((payload.len() as u32, e.len() as u32));
                payload.extend_from_slice(e);
            }
            let n = frames.len() as u64;
            if !self.deliver(
                InboundPacket {
                    peer: self.node_id,
                    stream_id,
                    payload,
                    frames,
                    next: 0,
                    credit: 0,
                    dropped_before: 0,
                    channel: None,
                },
                false,
            ) {
                self.stats.inbound_dropped.fetch_add(n, Ordering::Relaxed);
            }
            self.inbound.signal();
            #[cfg(feature = "test-util")]
            if self.testing.loopback_echo() {
                pending.push((events, depth + 1));
            }
        }
    }
}

/// The packet flags a stream's mode puts on its data packets.
fn flags_of(mode: TxMode) -> u8 {
    if matches!(mode, TxMode::Net | TxMode::Legacy) {
        flags::RELIABLE
    } else {
        0
    }
}
