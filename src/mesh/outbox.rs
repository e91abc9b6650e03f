//! The per-peer outbox: events waiting for the writer, already framed into
//! the packets they will travel in.
//!
//! Every send on a session goes through it. A send appends its events to
//! the last packet of its stream that the writer has not taken yet (or to
//! new packets), debiting exactly the credit those packets will cost
//! (`framed + 80` per packet, WIRE.md §7.3), and then either writes the
//! outbox itself (nobody is writing and the path was idle: latency as
//! without an outbox) or leaves it to the writer already at work, which
//! takes everything appended meanwhile in one go. That is the coalescing:
//! one-event-per-call senders share datagrams exactly when the previous
//! datagrams are still being written, and never wait for a timer.
//!
//! Packets keep `HEADER_SIZE` bytes free in front of their events, so the
//! writer seals them in place (one copy of each event: the caller's bytes
//! into the packet). Sequence numbers are given when the writer takes a
//! packet, under the same lock, so the packets of a stream leave in
//! sequence order.
//!
//! Pure state: no I/O, no clock reads (the caller passes `Instant`s).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::bufpool::BufferPool;
use super::credit::PACKET_COST_OVERHEAD;
use crate::wire::{HEADER_SIZE, MAX_EVENTS_PER_PACKET, ROUTING_HEADER_SIZE, TAG_SIZE};

/// Past this many bytes waiting, senders wait for the writer (only reached
/// on unlimited-window streams: credit bounds the others).
pub const MAX_PENDING_BYTES: usize = 4 << 20;

/// A send that finds the previous write ended less than this long ago hands
/// the write to the node's writer thread (and so coalesces with the sends
/// that follow); an idle path is written by the caller at once.
pub const HOT_GAP: Duration = Duration::from_micros(50);

/// How many packets back a send looks for its stream's open packet.
const OPEN_SCAN: usize = 16;

/// A packet being filled, or waiting for the writer.
#[derive(Debug)]
pub(crate) struct PendingPacket {
    pub stream_id: u64,
    /// RELIABLE or 0.
    pub flags: u8,
    /// `HEADER_SIZE` free bytes, then the framed events.
    pub buf: Vec<u8>,
    pub count: u16,
}

impl PendingPacket {
    /// The framed events.
    pub fn payload(&self) -> &[u8] {
        &self.buf[HEADER_SIZE..]
    }
}

/// A packet the writer took: its place in the stream is fixed.
#[derive(Debug)]
pub(crate) struct TakenPacket {
    pub packet: PendingPacket,
    pub sequence: u64,
    /// Its stream's header fields.
    pub stamp: HeaderStamp,
}

/// The header fields a packet takes from its stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HeaderStamp {
    /// The stream's priority (header byte towards Net peers).
    pub priority: u8,
    /// The stream's subnet confinement stamp (header `subnet_id` towards
    /// Net peers; 0 = none).
    pub subnet: u32,
    /// The stream's subprotocol: 0, or 0x0400 for a causal stream.
    pub subprotocol: u16,
}

/// Who writes after a send appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// A writer is at work; it will take what was appended.
    Busy,
    /// The caller writes now (the path was idle).
    Caller,
    /// The path is hot: hand the write to the writer thread.
    Handoff,
}

/// One peer's waiting packets and its writer state.
#[derive(Debug)]
pub(crate) struct Outbox {
    packets: VecDeque<PendingPacket>,
    bytes: usize,
    writing: bool,
    last_write_end: Option<Instant>,
    room_wanted: bool,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

/// What appending the next event costs.
fn step(open: Option<(usize, u16)>, framed: usize, limit: usize) -> (bool, u64) {
    match open {
        Some((size, count))
            if size + framed <= limit && usize::from(count) < MAX_EVENTS_PER_PACKET =>
        {
            (false, framed as u64)
        }
        _ => (true, framed as u64 + PACKET_COST_OVERHEAD),
    }
}

impl Outbox {
    pub fn new() -> Self {
        Self {
            packets: VecDeque::new(),
            bytes: 0,
            writing: false,
            last_write_end: None,
            room_wanted: false,
        }
    }

    /// Bytes waiting.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Whether a writer is at work.
    #[cfg(test)]
    pub fn is_writing(&self) -> bool {
        self.writing
    }

    fn open_index(&self, stream_id: u64) -> Option<usize> {
        self.packets
            .iter()
            .enumerate()
            .rev()
            .take(OPEN_SCAN)
            .find(|(_, p)| p.stream_id == stream_id)
            .map(|(i, _)| i)
    }

    fn open_state(&self, stream_id: u64) -> Option<(usize, u16)> {
        self.open_index(stream_id).map(|i| {
            let p = &self.packets[i];
            (p.buf.len() - HEADER_SIZE, p.count)
        })
    }

    /// How many of `events` (from the first) fit `budget` bytes of credit
    /// when appended to `stream_id` with packets of at most `limit` framed
    /// bytes, and what they cost. Every event must fit `limit` alone.
    pub fn plan<E: AsRef<[u8]>>(
        &self,
        stream_id: u64,
        events: &[E],
        limit: usize,
        budget: u64,
    ) -> (usize, u64) {
        let mut open = self.open_state(stream_id);
        let mut cost = 0u64;
        for (i, e) in events.iter().enumerate() {
            let framed = 4 + e.as_ref().len();
            let (new_packet, c) = step(open, framed, limit);
            if cost + c > budget {
                return (i, cost);
            }
            cost += c;
            open = Some(match open {
                Some((size, count)) if !new_packet => (size + framed, count + 1),
                _ => (framed, 1),
            });
        }
        (events.len(), cost)
    }

    /// Appends `events` to `stream_id` (what [`Outbox::plan`] costed, with
    /// the same `limit`). New packets take their buffer from `pool`, with
    /// room for the whole packet, its tag and a routing header, so the
    /// buffer never grows while it is filled, sealed or routed.
    pub fn append<E: AsRef<[u8]>>(
        &mut self,
        stream_id: u64,
        flags: u8,
        events: &[E],
        limit: usize,
        pool: &BufferPool,
    ) {
        let mut open = self.open_index(stream_id);
        for e in events {
            let e = e.as_ref();
            let framed = 4 + e.len();
            let state = open.map(|i| {
                (
                    self.packets[i].buf.len() - HEADER_SIZE,
                    self.packets[i].count,
                )
            });
            let (new_packet, _) = step(state, framed, limit);
            let i = match open {
                Some(i) if !new_packet => i,
                _ => {
                    let mut buf = pool.take(HEADER_SIZE + limit + TAG_SIZE + ROUTING_HEADER_SIZE);
                    buf.resize(HEADER_SIZE, 0);
                    self.packets.push_back(PendingPacket {
                        stream_id,
                        flags,
                        buf,
                        count: 0,
                    });
                    self.packets.len() - 1
                }
            };
            let p = &mut self.packets[i];
            p.buf.extend_from_slice(&(e.len() as u32).to_le_bytes());
            p.buf.extend_from_slice(e);
            p.count += 1;
            self.bytes += framed;
            open = Some(i);
        }
    }

    /// After an append: who writes. Marks the outbox as being written
    /// unless a writer is already at work.
    pub fn claim(&mut self, now: Instant) -> Writer {
        if self.writing {
            return Writer::Busy;
        }
        self.writing = true;
        match self.last_write_end {
            Some(end) if now.saturating_duration_since(end) < HOT_GAP => Writer::Handoff,
            _ => Writer::Caller,
        }
    }

    /// The writer takes everything waiting, in order; `next_seq` gives
    /// each packet its stream sequence and header stamp. Empty: the writer is
    /// done (the outbox is released and the time noted).
    pub fn take(
        &mut self,
        now: Instant,
        mut next_seq: impl FnMut(&PendingPacket) -> Option<(u64, HeaderStamp)>,
    ) -> Vec<TakenPacket> {
        let mut out = Vec::with_capacity(self.packets.len());
        for packet in self.packets.drain(..) {
            // None: the stream is gone (closed meanwhile): its events go.
            if let Some((sequence, stamp)) = next_seq(&packet) {
                out.push(TakenPacket {
                    packet,
                    sequence,
                    stamp,
                });
            }
        }
        self.bytes = 0;
        if out.is_empty() {
            self.writing = false;
            self.last_write_end = Some(now);
        }
        out
    }

    /// A sender waits for the outbox to shrink below
    /// [`MAX_PENDING_BYTES`]; the writer wakes it after its next take.
    pub fn want_room(&mut self) {
        self.room_wanted = true;
    }

    /// Whether a sender waits for room (and forget it: it is being woken).
    pub fn take_room_wanted(&mut self) -> bool {
        std::mem::take(&mut self.room_wanted)
    }

    /// Releases the outbox without taking (a writer giving up: shutdown).
    pub fn release(&mut self) {
        self.writing = false;
    }

    /// Drops what waits for `stream_id` (the stream closed); returns the
    /// number of events dropped.
    pub fn discard_stream(&mut self, stream_id: u64) -> usize {
        let mut dropped = 0;
        let mut bytes = 0;
        self.packets.retain(|p| {
            if p.stream_id == stream_id {
                dropped += usize::from(p.count);
                bytes += p.buf.len() - HEADER_SIZE;
                false
            } else {
                true
            }
        });
        self.bytes -= bytes;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::credit::packet_cost;
    use crate::wire::decode_events;

    fn take_all(o: &mut Outbox) -> Vec<TakenPacket> {
        take_at(o, Instant::now())
    }

    fn take_at(o: &mut Outbox, now: Instant) -> Vec<TakenPacket> {
        let mut seq = std::collections::HashMap::<u64, u64>::new();
        o.take(now, |p| {
            let s = seq.entry(p.stream_id).or_default();
            *s += 1;
            Some((*s - 1, HeaderStamp::default()))
        })
    }

    #[test]
    fn single_events_share_packets_and_cost_what_the_packets_cost() {
        let mut o = Outbox::new();
        let mut debited = 0;
        for i in 0..300u32 {
            let ev = [i.to_le_bytes(); 16].concat(); // 64 B
            let (n, cost) = o.plan(7, &[&ev], 8112, u64::MAX);
            assert_eq!(n, 1);
            debited += cost;
            o.append(7, 0, &[&ev], 8112, &BufferPool::new());
        }
        let taken = take_all(&mut o);
        // 8112 / 68 = 119 events per packet.
        assert_eq!(
            taken.iter().map(|t| t.packet.count).collect::<Vec<_>>(),
            vec![119, 119, 62]
        );
        let expected: u64 = taken
            .iter()
            .map(|t| packet_cost(t.packet.payload().len()))
            .sum();
        assert_eq!(debited, expected);
        let mut next = 0u32;
        for (i, t) in taken.iter().enumerate() {
            assert_eq!(t.sequence, i as u64);
            for e in decode_events(t.packet.payload(), t.packet.count.into()) {
                assert_eq!(&e[..4], next.to_le_bytes());
                next += 1;
            }
        }
        assert_eq!(next, 300);
        assert_eq!(o.pending_bytes(), 0);
    }

    #[test]
    fn streams_keep_their_own_packets_and_order() {
        let mut o = Outbox::new();
        o.append(1, 0, &[b"a1"], 100, &BufferPool::new());
        o.append(2, 2, &[b"b1"], 100, &BufferPool::new());
        o.append(1, 0, &[b"a2", b"a3"], 100, &BufferPool::new());
        let taken = take_all(&mut o);
        assert_eq!(taken.len(), 2);
        assert_eq!(
            decode_events(taken[0].packet.payload(), 3),
            vec![&b"a1"[..], b"a2", b"a3"]
        );
        assert_eq!((taken[1].packet.stream_id, taken[1].packet.flags), (2, 2));
    }

    #[test]
    fn plan_stops_at_the_budget_and_at_the_event_limit() {
        let mut o = Outbox::new();
        // Each 10-byte event frames to 14; packets of at most 30 framed
        // bytes hold two.
        let evs = [[0u8; 10]; 5];
        assert_eq!(o.plan(1, &evs, 30, u64::MAX), (5, 3 * 80 + 5 * 14));
        assert_eq!(o.plan(1, &evs, 30, 94 + 14), (2, 108));
        assert_eq!(o.plan(1, &evs, 30, 93), (0, 0));
        o.append(1, 0, &evs[..1], 30, &BufferPool::new());
        // The open packet takes one more without a new header.
        assert_eq!(o.plan(1, &evs[..1], 30, u64::MAX), (1, 14));
        let many = vec![[0u8; 0]; MAX_EVENTS_PER_PACKET + 1];
        let fresh = Outbox::new();
        assert_eq!(
            fresh.plan(1, &many, 1 << 20, u64::MAX).1,
            2 * 80 + 4 * many.len() as u64
        );
    }

    #[test]
    fn the_idle_path_is_written_by_the_caller_a_hot_one_is_handed_off() {
        let t0 = Instant::now();
        let mut o = Outbox::new();
        o.append(1, 0, &[b"x"], 100, &BufferPool::new());
        assert_eq!(o.claim(t0), Writer::Caller);
        o.append(1, 0, &[b"y"], 100, &BufferPool::new());
        assert_eq!(o.claim(t0), Writer::Busy);
        assert_eq!(take_at(&mut o, t0).len(), 1);
        assert!(o.is_writing(), "a writer that took something goes on");
        assert!(take_at(&mut o, t0).is_empty());
        assert!(!o.is_writing());
        o.append(1, 0, &[b"z"], 100, &BufferPool::new());
        assert_eq!(o.claim(t0 + HOT_GAP / 2), Writer::Handoff);
        assert_eq!(o.claim(t0), Writer::Busy);
        assert!(take_at(&mut o, t0).len() == 1 && take_at(&mut o, t0).is_empty());
        o.append(1, 0, &[b"w"], 100, &BufferPool::new());
        assert_eq!(o.claim(t0 + HOT_GAP * 3), Writer::Caller);
    }

    #[test]
    fn a_closed_stream_loses_only_its_own_events() {
        let mut o = Outbox::new();
        o.append(1, 0, &[b"a"], 100, &BufferPool::new());
        o.append(2, 0, &[b"bb", b"cc"], 100, &BufferPool::new());
        assert_eq!(o.discard_stream(2), 2);
        assert_eq!(o.pending_bytes(), 5);
        let taken = o.take(Instant::now(), |p| {
            (p.stream_id == 1).then_some((0, HeaderStamp::default()))
        });
        assert_eq!(taken.len(), 1);
    }
}
