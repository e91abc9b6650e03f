//! The inbound event queues: one bounded FIFO per shard
//! (`stream_id mod num_shards`, WIRE.md §7.1), drained round-robin by
//! `recv`. A packet's events are queued together (one allocation per
//! packet) and handed out one at a time. A full shard refuses new packets —
//! the receive path then drops (fire-and-forget) or withholds the ack so the
//! sender retransmits (reliable): backpressure is explicit, never silent
//! growth.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::bufpool::BufferPool;
use crate::cancel::CancelToken;
use crate::identity::ChannelName;

/// One received event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEvent {
    /// The sending node.
    pub peer: u64,
    /// The stream it came on.
    pub stream_id: u64,
    /// The event bytes.
    pub data: Vec<u8>,
    /// Events of this stream from this peer that were dropped (the inbound
    /// queue was full) after the previous event delivered from it and
    /// before this one. Non-zero only on streams whose sender did not wait
    /// for credit (fail-fast or unlimited-window senders, v0.11 nodes).
    pub dropped_before: u64,
    /// The channel the event was published on, when it came on a publish
    /// stream (`0x0001_0000_0000_0000 | channel_hash`) of a publisher we
    /// subscribed to that channel at. `None` for ordinary streams and for
    /// publish streams we hold no subscription for (only the hash in
    /// `stream_id` is known then).
    pub channel: Option<ChannelName>,
}

/// A decrypted packet's events, queued as one unit.
#[derive(Debug)]
pub(crate) struct InboundPacket {
    pub peer: u64,
    pub stream_id: u64,
    pub payload: Vec<u8>,
    /// (offset, len) of each event in `payload`.
    pub frames: Vec<(u32, u32)>,
    pub next: usize,
    /// Stream credit (bytes) given back to the sender once the application
    /// has taken every event of the packet; 0 for none.
    pub credit: u64,
    /// Events of the stream dropped just before this packet (reported on
    /// its first event).
    pub dropped_before: u64,
    /// The channel of a publish stream (see [`InboundEvent::channel`]).
    pub channel: Option<ChannelName>,
}

/// Credit the application freed by taking a packet's last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Consumed {
    pub peer: u64,
    pub stream_id: u64,
    pub credit: u64,
}

impl InboundPacket {
    fn remaining(&self) -> usize {
        self.frames.len() - self.next
    }
}

/// What waiting for an event produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv {
    /// Events (at least one).
    Events(Vec<InboundEvent>),
    /// Nothing arrived before the timeout.
    Timeout,
    /// The node shut down.
    Closed,
    /// The call's token was cancelled.
    Cancelled,
}

struct State {
    shards: Vec<VecDeque<InboundPacket>>,
    events: Vec<usize>,
    cursor: usize,
    closed: bool,
    /// Receivers blocked in `recv`: a push with nobody waiting skips the
    /// wake-up syscall.
    waiters: usize,
    /// Packets pushed since the last [`Inbound::signal`].
    unsignalled: bool,
    /// Events dropped per (peer, stream) not yet reported: the next packet
    /// queued for that stream carries the count to the application.
    drops: HashMap<(u64, u64), u64>,
}

/// The sharded inbound queues.
pub(crate) struct Inbound {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
    /// Where taken packets' payload buffers go back to (`bufpool.rs`).
    buffers: Arc<BufferPool>,
    /// Events queued (as `State::events` sums to), readable without the
    /// lock by a receiver that lingers before it parks.
    queued: AtomicUsize,
}

/// How long a receiver that finds nothing keeps looking (yielding the CPU
/// between looks) before it parks on the condition variable: an event
/// arriving meanwhile costs no wake-up. A parked thread's wake-up is tens
/// of microseconds on a virtual machine and a round trip pays two: on a
/// quiet 2-vCPU machine the 64 B fire-and-forget round trip went from
/// 162 to 78 µs median.
const LINGER: Duration = Duration::from_micros(50);

impl Inbound {
    pub fn new(shards: usize, capacity: usize, buffers: Arc<BufferPool>) -> Self {
        let shards = shards.max(1);
        Self {
            state: Mutex::new(State {
                shards: (0..shards).map(|_| VecDeque::new()).collect(),
                events: vec![0; shards],
                cursor: 0,
                closed: false,
                waiters: 0,
                unsignalled: false,
                drops: HashMap::new(),
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            buffers,
            queued: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the shard of `stream_id` has room for `events` more events.
    pub fn has_room(&self, stream_id: u64, events: usize) -> bool {
        let state = self.lock();
        let shard = (stream_id % state.shards.len() as u64) as usize;
        state.events[shard] + events <= self.capacity
    }

    /// Queues a packet; with `force` even over capacity (in-order reliable
    /// deliveries that were already accepted). Returns false when refused;
    /// a packet refused for want of room is remembered as dropped and
    /// reported on the stream's next queued event
    /// ([`InboundEvent::dropped_before`]). Waiting receivers are woken by
    /// the next [`Inbound::signal`], so a batch of packets costs one
    /// wake-up, not one per packet.
    pub fn push(&self, mut packet: InboundPacket, force: bool) -> bool {
        if packet.frames.is_empty() {
            return true;
        }
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        let shard = (packet.stream_id % state.shards.len() as u64) as usize;
        let n = packet.frames.len();
        let key = (packet.peer, packet.stream_id);
        if !force && state.events[shard] + n > self.capacity {
            *state.drops.entry(key).or_insert(0) += n as u64;
            return false;
        }
        if !state.drops.is_empty()
            && let Some(dropped) = state.drops.remove(&key)
        {
            packet.dropped_before += dropped;
        }
        state.events[shard] += n;
        self.queued.fetch_add(n, Ordering::Relaxed);
        state.shards[shard].push_back(packet);
        state.unsignalled = true;
        true
    }

    /// Wakes a blocked receiver if packets were pushed since the last call.
    pub fn signal(&self) {
        let mut state = self.lock();
        let wake = state.unsignalled && state.waiters > 0;
        state.unsignalled = false;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    /// Forgets the unreported drops of a peer that is gone.
    pub fn forget_peer(&self, peer: u64) {
        let mut state = self.lock();
        if !state.drops.is_empty() {
            state.drops.retain(|&(p, _), _| p != peer);
        }
    }

    /// Events dropped from `peer` (all streams) and not yet reported on a
    /// later event.
    pub fn unreported_drops(&self, peer: u64) -> u64 {
        let state = self.lock();
        state
            .drops
            .iter()
            .filter(|((p, _), _)| *p == peer)
            .map(|(_, n)| n)
            .sum()
    }

    /// Ends every wait; later pushes are refused.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Receivers waiting for events right now (tests use it to know a
    /// receive is really blocked).
    #[cfg(feature = "test-util")]
    pub fn waiting(&self) -> usize {
        self.lock().waiters
    }

    /// Events queued in total.
    pub fn len(&self) -> usize {
        self.lock().events.iter().sum()
    }

    /// Waits up to `timeout` (forever with `None`) for events and takes up
    /// to `max` of them, round-robin across shards.
    #[cfg(test)]
    pub fn recv(&self, max: usize, timeout: Option<Duration>) -> Recv {
        self.recv_until(max, timeout, None, &mut Vec::new())
    }

    /// [`recv`](Self::recv) that also returns [`Recv::Cancelled`] as soon as
    /// `cancel` is cancelled (with nothing taken).
    /// The credit of every packet it finished is added to `consumed`.
    pub fn recv_cancellable(
        self: &Arc<Self>,
        max: usize,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
        consumed: &mut Vec<Consumed>,
    ) -> Recv {
        let _wake = cancel.map(|token| {
            let queues = self.clone();
            token.on_cancel(move || {
                drop(queues.lock());
                queues.ready.notify_all();
            })
        });
        self.recv_until(max, timeout, cancel, consumed)
    }

    fn recv_until(
        &self,
        max: usize,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
        consumed: &mut Vec<Consumed>,
    ) -> Recv {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut state = self.lock();
        let mut lingered = false;
        loop {
            let total: usize = state.events.iter().sum();
            if total > 0 {
                // Only the queue work under the lock: the event copies are
                // made after it is released, so the network thread's
                // pushes never wait for them.
                let pieces = take(&mut state, max.max(1), consumed);
                let taken = pieces.iter().map(Piece::events).sum();
                self.queued.fetch_sub(taken, Ordering::Relaxed);
                drop(state);
                return Recv::Events(materialize(pieces, &self.buffers));
            }
            if state.closed {
                return Recv::Closed;
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Recv::Cancelled;
            }
            let wait = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Recv::Timeout;
                    }
                    Some(d - now)
                }
            };
            if !lingered && wait.is_none_or(|w| w > LINGER) {
                lingered = true;
                drop(state);
                self.linger(cancel);
                state = self.lock();
                continue;
            }
            state.waiters += 1;
            state = match wait {
                None => self.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(w) => {
                    self.ready
                        .wait_timeout(state, w)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            state.waiters -= 1;
        }
    }
}

impl Inbound {
    /// Looks for events for [`LINGER`] without the lock, yielding the CPU
    /// between looks; returns early when some arrive (or on a cancel).
    fn linger(&self, cancel: Option<&CancelToken>) {
        crate::cancel::linger(Instant::now() + LINGER, cancel, || {
            self.queued.load(Ordering::Relaxed) != 0
        });
    }
}

/// What [`take`] removed from the queues, in delivery order.
enum Piece {
    /// A packet whose events from `from` on were all taken (and which left
    /// the queue).
    Whole { packet: InboundPacket, from: usize },
    /// One event copied out of a packet that stays queued (only the last
    /// packet a `recv` reaches into when `max` cuts it).
    Copied(InboundEvent),
}

impl Piece {
    fn events(&self) -> usize {
        match self {
            Piece::Whole { packet, from } => packet.frames.len() - from,
            Piece::Copied(_) => 1,
        }
    }
}

/// Takes up to `max` events round-robin across shards, under the lock:
/// whole packets are moved out; only a packet cut by `max` has its events
/// copied here. [`materialize`] makes the events.
fn take(state: &mut State, max: usize, consumed: &mut Vec<Consumed>) -> Vec<Piece> {
    let shards = state.shards.len();
    let mut pieces = Vec::new();
    let mut taken = 0;
    let mut empty_rounds = 0;
    while taken < max && empty_rounds < shards {
        let shard = state.cursor % shards;
        state.cursor = state.cursor.wrapping_add(1);
        let Some(packet) = state.shards[shard].front_mut() else {
            empty_rounds += 1;
            continue;
        };
        empty_rounds = 0;
        let n = packet.remaining().min(max - taken);
        taken += n;
        state.events[shard] -= n;
        if n < packet.remaining() {
            for _ in 0..n {
                let (at, len) = packet.frames[packet.next];
                packet.next += 1;
                pieces.push(Piece::Copied(InboundEvent {
                    peer: packet.peer,
                    stream_id: packet.stream_id,
                    data: packet.payload[at as usize..(at + len) as usize].to_vec(),
                    dropped_before: std::mem::take(&mut packet.dropped_before),
                    channel: packet.channel.clone(),
                }));
            }
            continue;
        }
        let Some(packet) = state.shards[shard].pop_front() else {
            continue;
        };
        if packet.credit > 0 {
            let (peer, stream_id, credit) = (packet.peer, packet.stream_id, packet.credit);
            match consumed
                .iter_mut()
                .find(|c| c.peer == peer && c.stream_id == stream_id)
            {
                Some(c) => c.credit += credit,
                None => consumed.push(Consumed {
                    peer,
                    stream_id,
                    credit,
                }),
            }
        }
        let from = packet.next;
        pieces.push(Piece::Whole { packet, from });
    }
    pieces
}

/// The events of what [`take`] removed, made without the lock; the
/// emptied payload buffers go back to `buffers`.
fn materialize(pieces: Vec<Piece>, buffers: &BufferPool) -> Vec<InboundEvent> {
    let count = pieces.iter().map(Piece::events).sum();
    let mut out = Vec::with_capacity(count);
    for piece in pieces {
        match piece {
            Piece::Copied(event) => out.push(event),
            Piece::Whole { mut packet, from } => {
                for &(at, len) in &packet.frames[from..] {
                    out.push(InboundEvent {
                        peer: packet.peer,
                        stream_id: packet.stream_id,
                        data: packet.payload[at as usize..(at + len) as usize].to_vec(),
                        dropped_before: std::mem::take(&mut packet.dropped_before),
                        channel: packet.channel.clone(),
                    });
                }
                buffers.give(packet.payload);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(stream_id: u64, events: &[&[u8]]) -> InboundPacket {
        let mut payload = Vec::new();
        let mut frames = Vec::new();
        for e in events {
            frames.push((payload.len() as u32, e.len() as u32));
            payload.extend_from_slice(e);
        }
        InboundPacket {
            peer: 9,
            stream_id,
            payload,
            frames,
            next: 0,
            credit: 0,
            dropped_before: 0,
            channel: None,
        }
    }

    #[test]
    fn fifo_per_shard_bounded_and_closable() {
        let q = Inbound::new(2, 3, Arc::default());
        assert!(q.push(packet(0, &[b"a", b"b"]), false));
        assert!(!q.push(packet(2, &[b"c", b"d"]), false)); // shard 0 full
        assert!(q.push(packet(1, &[b"x"]), false));
        q.signal();
        let Recv::Events(got) = q.recv(10, Some(Duration::ZERO)) else {
            panic!()
        };
        let data: Vec<_> = got.iter().map(|e| e.data.clone()).collect();
        assert_eq!(data, vec![b"a".to_vec(), b"b".to_vec(), b"x".to_vec()]);
        assert_eq!(q.recv(1, Some(Duration::from_millis(1))), Recv::Timeout);
        q.close();
        assert_eq!(q.recv(1, None), Recv::Closed);
    }

    #[test]
    fn drops_are_reported_on_the_streams_next_event() {
        let q = Inbound::new(1, 2, Arc::default());
        assert!(q.push(packet(5, &[b"a", b"b"]), false));
        assert!(!q.push(packet(5, &[b"c", b"d"]), false)); // full: 2 dropped
        assert!(!q.push(packet(7, &[b"z"]), false)); // another stream: 1
        assert!(!q.push(packet(5, &[b"e"]), false)); // 3 on stream 5
        assert_eq!(q.unreported_drops(9), 4);
        let Recv::Events(got) = q.recv(10, Some(Duration::ZERO)) else {
            panic!()
        };
        assert!(got.iter().all(|e| e.dropped_before == 0));
        assert!(q.push(packet(5, &[b"f", b"g"]), false));
        assert!(q.push(packet(7, &[b"y"]), true));
        let Recv::Events(got) = q.recv(10, Some(Duration::ZERO)) else {
            panic!()
        };
        let seen: Vec<_> = got
            .iter()
            .map(|e| (e.stream_id, e.data.clone(), e.dropped_before))
            .collect();
        assert_eq!(
            seen,
            vec![
                (5, b"f".to_vec(), 3),
                (5, b"g".to_vec(), 0),
                (7, b"y".to_vec(), 1)
            ]
        );
        assert_eq!(q.unreported_drops(9), 0);
        assert!(!q.push(packet(5, &[b"1", b"2", b"3"]), false)); // over capacity
        assert_eq!(q.unreported_drops(9), 3);
        q.forget_peer(9);
        assert_eq!(q.unreported_drops(9), 0);
    }

    #[test]
    fn a_packet_cut_by_max_keeps_its_rest_and_its_credit_until_taken() {
        let q = Arc::new(Inbound::new(2, 100, Arc::default()));
        let mut first = packet(0, &[b"a", b"b", b"c"]);
        first.credit = 30;
        first.dropped_before = 4;
        assert!(q.push(first, false));
        let mut second = packet(1, &[b"x", b"y"]);
        second.credit = 20;
        assert!(q.push(second, false));
        let mut consumed = Vec::new();
        let Recv::Events(got) = q.recv_cancellable(2, Some(Duration::ZERO), None, &mut consumed)
        else {
            panic!()
        };
        let seen: Vec<_> = got
            .iter()
            .map(|e| (e.data.clone(), e.dropped_before))
            .collect();
        assert_eq!(seen, vec![(b"a".to_vec(), 4), (b"b".to_vec(), 0)]);
        assert!(consumed.is_empty(), "no packet was finished");
        assert_eq!(q.len(), 3);
        assert_eq!(
            q.queued.load(Ordering::Relaxed),
            3,
            "what lingering receivers see"
        );
        let Recv::Events(got) = q.recv_cancellable(10, Some(Duration::ZERO), None, &mut consumed)
        else {
            panic!()
        };
        let data: Vec<_> = got.iter().map(|e| (e.stream_id, e.data.clone())).collect();
        assert_eq!(
            data,
            vec![(1, b"x".to_vec()), (1, b"y".to_vec()), (0, b"c".to_vec())]
        );
        assert!(got.iter().all(|e| e.dropped_before == 0));
        consumed.sort_by_key(|c| c.stream_id);
        let credits: Vec<_> = consumed.iter().map(|c| (c.stream_id, c.credit)).collect();
        assert_eq!(credits, vec![(0, 30), (1, 20)]);
        assert_eq!(q.len(), 0);
        assert_eq!(q.queued.load(Ordering::Relaxed), 0);
    }
}
