//! Reliable streams between two Net nodes: selective retransmission driven
//! by cumulative ACKs with a NACK bitmap, in-order exactly-once delivery.
//! Pure state machines (time is an argument). See `docs/mesh.md`.
//!
//! The sender keeps every packet until it is acknowledged and retransmits
//! what the receiver reports missing, or what times out (RTO with
//! exponential back-off, capped). The receiver delivers in sequence order,
//! buffers up to [`MAX_AHEAD`] packets beyond the next expected one, drops
//! duplicates, and acknowledges with [`RelAck`] on subprotocol
//! [`ids::NET_RELIABILITY`](crate::wire::ids::NET_RELIABILITY), which is
//! only ever sent to peers that identified as Net nodes.
//!
//! Also here: [`LegacyGate`], the v0.11 receive-side "reliable" check that
//! only gates credit accounting (WIRE.md §7.2), used with v0.11 peers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::wire::WireError;

/// How far beyond the next expected sequence the receiver buffers.
pub const MAX_AHEAD: u64 = 1024;
/// Initial retransmission timeout, before any RTT sample.
pub const INITIAL_RTO: Duration = Duration::from_millis(50);
/// Floor of the retransmission timeout.
pub const MIN_RTO: Duration = Duration::from_millis(10);
/// Ceiling of the back-off.
pub const MAX_RTO: Duration = Duration::from_secs(1);

/// Size of an encoded [`RelAck`].
pub const REL_ACK_SIZE: usize = 25;
const REL_ACK_KIND: u8 = 1;

/// The receiver's acknowledgement of one reliable stream: everything below
/// `next_expected` arrived; bit i of `received` set means
/// `next_expected + 1 + i` arrived too (a selective ack). When anything
/// above `next_expected` arrived (`has_gap`), `next_expected` and every
/// clear bit below the highest set one are reported lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelAck {
    /// The stream.
    pub stream_id: u64,
    /// First sequence not yet received.
    pub next_expected: u64,
    /// Received sequences above `next_expected` (bit i: `next_expected+1+i`).
    pub received: u64,
    /// Whether anything above `next_expected` has been received (so that
    /// `next_expected` itself is known lost rather than just not sent).
    pub has_gap: bool,
}

impl RelAck {
    /// `kind (1) ‖ stream_id ‖ next_expected ‖ received`, with the gap flag
    /// in bit 7 of the kind byte.
    pub fn encode(&self) -> [u8; REL_ACK_SIZE] {
        let mut b = [0u8; REL_ACK_SIZE];
        b[0] = REL_ACK_KIND | if self.has_gap { 0x80 } else { 0 };
        b[1..9].copy_from_slice(&self.stream_id.to_le_bytes());
        b[9..17].copy_from_slice(&self.next_expected.to_le_bytes());
        b[17..25].copy_from_slice(&self.received.to_le_bytes());
        b
    }

    /// Decodes exactly 25 bytes.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::TrailingBytes`],
    /// [`WireError::InvalidValue`] for an unknown kind.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() < REL_ACK_SIZE {
            return Err(WireError::Truncated {
                what: "reliability ack",
                needed: REL_ACK_SIZE,
                got: bytes.len(),
            });
        }
        if bytes.len() > REL_ACK_SIZE {
            return Err(WireError::TrailingBytes {
                what: "reliability ack",
                extra: bytes.len() - REL_ACK_SIZE,
            });
        }
        if bytes[0] & 0x7F != REL_ACK_KIND {
            return Err(WireError::InvalidValue {
                what: "reliability message kind",
                value: u64::from(bytes[0]),
            });
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(w)
        };
        Ok(Self {
            stream_id: word(1),
            next_expected: word(9),
            received: word(17),
            has_gap: bytes[0] & 0x80 != 0,
        })
    }

    /// The sequences this ack reports lost.
    pub fn lost(&self) -> impl Iterator<Item = u64> + '_ {
        let first = self.has_gap.then_some(self.next_expected);
        let top = 64 - self.received.leading_zeros() as u64;
        first.into_iter().chain(
            (0..top)
                .filter(|i| self.received >> i & 1 == 0)
                .map(|i| self.next_expected.saturating_add(1 + i)),
        )
    }
}

/// A packet kept for retransmission.
#[derive(Debug, Clone)]
pub struct SentPacket {
    /// Framed plaintext payload.
    pub payload: Vec<u8>,
    /// Number of events in it.
    pub event_count: u16,
    first_sent: Instant,
    last_sent: Instant,
    sends: u32,
}

/// The sending half of a reliable stream.
#[derive(Debug, Clone)]
pub struct ReliableSender {
    unacked: BTreeMap<u64, SentPacket>,
    srtt: Option<Duration>,
    rttvar: Duration,
    retransmits: u64,
    /// When the last ack arrived (see [`due`](Self::due)).
    last_ack: Option<Instant>,
}

impl Default for ReliableSender {
    fn default() -> Self {
        Self::new()
    }
}

impl ReliableSender {
    /// Nothing in flight.
    pub fn new() -> Self {
        Self {
            unacked: BTreeMap::new(),
            srtt: None,
            rttvar: Duration::ZERO,
            retransmits: 0,
            last_ack: None,
        }
    }

    /// Records the first transmission of `seq`.
    pub fn on_sent(&mut self, seq: u64, event_count: u16, payload: Vec<u8>, now: Instant) {
        self.unacked.insert(
            seq,
            SentPacket {
                payload,
                event_count,
                first_sent: now,
                last_sent: now,
                sends: 1,
            },
        );
    }

    /// Packets not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.unacked.len()
    }

    /// Retransmissions so far.
    pub fn retransmits(&self) -> u64 {
        self.retransmits
    }

    /// The retransmission timeout: srtt + 4·rttvar, clamped.
    pub fn rto(&self) -> Duration {
        match self.srtt {
            None => INITIAL_RTO,
            Some(srtt) => (srtt + self.rttvar * 4).clamp(MIN_RTO, MAX_RTO),
        }
    }

    /// Applies an ack: drops what it covers and returns the sequences to
    /// retransmit now (reported lost and not resent within the last RTT).
    pub fn on_ack(&mut self, ack: &RelAck, now: Instant) -> Vec<u64> {
        self.on_ack_into(ack, now, &mut Vec::new())
    }

    /// [`on_ack`](Self::on_ack) that hands the payloads of the packets it
    /// drops to `freed` (so their buffers can be reused).
    pub fn on_ack_into(
        &mut self,
        ack: &RelAck,
        now: Instant,
        freed: &mut Vec<Vec<u8>>,
    ) -> Vec<u64> {
        self.last_ack = Some(now);
        let mut sample = None;
        let rest = self.unacked.split_off(&ack.next_expected);
        for packet in std::mem::replace(&mut self.unacked, rest).into_values() {
            if packet.sends == 1 {
                sample = Some(now.saturating_duration_since(packet.first_sent));
            }
            freed.push(packet.payload);
        }
        // Selectively acknowledged: the bits set in `received`.
        for i in (0..64u64).filter(|i| ack.received >> i & 1 == 1) {
            if let Some(packet) = self
                .unacked
                .remove(&ack.next_expected.saturating_add(1 + i))
            {
                freed.push(packet.payload);
            }
        }
        if let Some(rtt) = sample {
            self.observe_rtt(rtt);
        }
        let min_gap = self.srtt.unwrap_or(MIN_RTO).max(MIN_RTO / 2);
        ack.lost()
            .filter(|seq| {
                self.unacked
                    .get(seq)
                    .is_some_and(|p| now.saturating_duration_since(p.last_sent) >= min_gap)
            })
            .collect()
    }

    fn observe_rtt(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// Sequences whose retransmission timer expired (RTO doubled per send,
    /// capped), oldest first, at most `limit`.
    ///
    /// While the receiver has been silent for a whole RTO (no ack at all:
    /// a descheduled process, a dead path), only the oldest packet is
    /// resent, as a probe with its own backoff, instead of the whole
    /// window: a receiver that was merely slow answers the probe and the
    /// acks say what is really missing (v0.11 has no retransmission; the
    /// first version here resent every expired packet on a loaded
    /// machine's stall, megabytes of spurious traffic with wide windows).
    pub fn due(&self, now: Instant, limit: usize) -> Vec<u64> {
        let rto = self.rto();
        let silent = self
            .last_ack
            .is_none_or(|at| now.saturating_duration_since(at) >= rto);
        let candidates = if silent { 1 } else { usize::MAX };
        self.unacked
            .iter()
            .take(candidates)
            .filter(|(_, p)| {
                let backoff = rto
                    .saturating_mul(1 << p.sends.saturating_sub(1).min(6))
                    .min(MAX_RTO);
                now.saturating_duration_since(p.last_sent) >= backoff
            })
            .map(|(&seq, _)| seq)
            .take(limit)
            .collect()
    }

    /// The packet to resend, marking it resent at `now`.
    pub fn resend(&mut self, seq: u64, now: Instant) -> Option<&SentPacket> {
        let packet = self.unacked.get_mut(&seq)?;
        packet.last_sent = now;
        packet.sends += 1;
        self.retransmits += 1;
        Some(packet)
    }
}

/// What the receiver did with a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Deliver these (sequence, event_count, payload) in order.
    Deliver(Vec<(u64, u16, Vec<u8>)>),
    /// Buffered until the gap before it fills.
    Buffered,
    /// Already received; dropped.
    Duplicate,
    /// Beyond the buffer; dropped (the sender will retransmit).
    TooFarAhead,
}

/// The receiving half of a reliable stream.
#[derive(Debug, Clone, Default)]
pub struct ReliableReceiver {
    next_expected: u64,
    buffer: BTreeMap<u64, (u16, Vec<u8>)>,
    ack_due: bool,
}

impl ReliableReceiver {
    /// Expecting sequence 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first sequence not yet delivered.
    pub fn next_expected(&self) -> u64 {
        self.next_expected
    }

    /// Whether an ack should go out.
    pub fn ack_due(&self) -> bool {
        self.ack_due
    }

    /// Whether `seq` would be accepted (not a duplicate, not too far
    /// ahead) — checked before a packet is admitted to the inbound queue.
    pub fn would_accept(&self, seq: u64) -> bool {
        seq >= self.next_expected
            && seq - self.next_expected <= MAX_AHEAD
            && !self.buffer.contains_key(&seq)
    }

    /// Takes packet `seq`.
    pub fn on_packet(&mut self, seq: u64, event_count: u16, payload: Vec<u8>) -> Received {
        self.ack_due = true;
        if seq < self.next_expected || self.buffer.contains_key(&seq) {
            return Received::Duplicate;
        }
        if seq - self.next_expected > MAX_AHEAD {
            return Received::TooFarAhead;
        }
        if seq != self.next_expected {
            self.buffer.insert(seq, (event_count, payload));
            return Received::Buffered;
        }
        let mut out = vec![(seq, event_count, payload)];
        self.next_expected += 1;
        while let Some((count, payload)) = self.buffer.remove(&self.next_expected) {
            out.push((self.next_expected, count, payload));
            self.next_expected += 1;
        }
        Received::Deliver(out)
    }

    /// The ack to send now (clears `ack_due`).
    pub fn take_ack(&mut self, stream_id: u64) -> RelAck {
        self.ack_due = false;
        let mut received = 0u64;
        for &seq in self
            .buffer
            .range(self.next_expected + 1..=self.next_expected + 64)
            .map(|(s, _)| s)
        {
            received |= 1 << (seq - self.next_expected - 1);
        }
        RelAck {
            stream_id,
            next_expected: self.next_expected,
            received,
            has_gap: !self.buffer.is_empty(),
        }
    }
}

/// v0.11's receive-side reliability check (WIRE.md §7.2): rejects
/// duplicates, sequences more than 64 ahead and already-seen future ones.
/// It only decides whether a packet earns a grant; events are delivered
/// regardless.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegacyGate {
    next_expected: u64,
    seen_ahead: u64,
}

impl LegacyGate {
    /// Whether `seq` is accepted (and records it).
    pub fn accept(&mut self, seq: u64) -> bool {
        if seq < self.next_expected || seq - self.next_expected > 64 {
            return false;
        }
        if seq == self.next_expected {
            self.next_expected += 1;
            while self.seen_ahead & 1 == 1 {
                self.seen_ahead >>= 1;
                self.next_expected += 1;
            }
            self.seen_ahead >>= 1;
            return true;
        }
        let bit = seq - self.next_expected - 1;
        if bit >= 64 || self.seen_ahead >> bit & 1 == 1 {
            return false;
        }
        self.seen_ahead |= 1 << bit;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_round_trip_and_rejects() {
        let ack = RelAck {
            stream_id: 7,
            next_expected: 10,
            received: 0b1010,
            has_gap: true,
        };
        assert_eq!(RelAck::decode(&ack.encode()), Ok(ack));
        assert_eq!(ack.lost().collect::<Vec<_>>(), vec![10, 11, 13]);
        assert!(RelAck::decode(&[1; 24]).is_err());
        assert!(RelAck::decode(&[1; 26]).is_err());
        let mut bad = ack.encode();
        bad[0] = 2;
        assert!(RelAck::decode(&bad).is_err());
    }

    #[test]
    fn receiver_orders_and_dedups() {
        let mut r = ReliableReceiver::new();
        assert_eq!(r.on_packet(1, 1, vec![1]), Received::Buffered);
        assert_eq!(r.on_packet(1, 1, vec![1]), Received::Duplicate);
        assert_eq!(r.on_packet(3, 1, vec![3]), Received::Buffered);
        let ack = r.take_ack(5);
        assert_eq!(
            (ack.next_expected, ack.received, ack.has_gap),
            (0, 0b101, true)
        );
        assert_eq!(ack.lost().collect::<Vec<_>>(), vec![0, 2]);
        let Received::Deliver(d) = r.on_packet(0, 1, vec![0]) else {
            panic!()
        };
        assert_eq!(d.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(r.on_packet(0, 1, vec![0]), Received::Duplicate);
        assert_eq!(
            r.on_packet(2 + MAX_AHEAD + 1, 1, vec![]),
            Received::TooFarAhead
        );
        let Received::Deliver(d) = r.on_packet(2, 1, vec![2]) else {
            panic!()
        };
        assert_eq!(d.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2, 3]);
        let ack = r.take_ack(5);
        assert_eq!((ack.next_expected, ack.has_gap), (4, false));
    }

    #[test]
    fn sender_retransmits_lost_and_timed_out() {
        let t0 = Instant::now();
        let mut s = ReliableSender::new();
        for seq in 0..4 {
            s.on_sent(seq, 1, vec![seq as u8], t0);
        }
        // Receiver has 0 and 2; 1 is lost, 3 not known lost yet.
        let ack = RelAck {
            stream_id: 1,
            next_expected: 1,
            received: 0b1,
            has_gap: true,
        };
        let later = t0 + Duration::from_millis(20);
        assert_eq!(s.on_ack(&ack, later), vec![1]);
        assert_eq!(s.in_flight(), 2); // 1 and 3 (2 was selectively acked)
        s.resend(1, later).unwrap();
        // The resent 1 arrives: 0..=2 acknowledged.
        let heard = later + Duration::from_millis(1);
        let ack = RelAck {
            stream_id: 1,
            next_expected: 3,
            received: 0,
            has_gap: false,
        };
        assert!(s.on_ack(&ack, heard).is_empty());
        // Timer: 3 is due once the RTO passes.
        let rto = s.rto();
        let due = s.due(heard + rto - Duration::from_millis(1), 10);
        assert_eq!(due, vec![3]);
        let ack = RelAck {
            stream_id: 1,
            next_expected: 4,
            received: 0,
            has_gap: false,
        };
        s.on_ack(&ack, later + rto);
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.retransmits(), 1);
    }

    #[test]
    fn a_silent_receiver_gets_one_probe_not_the_window() {
        let t0 = Instant::now();
        let mut s = ReliableSender::new();
        for seq in 0..10 {
            s.on_sent(seq, 1, vec![seq as u8], t0);
        }
        // No ack ever: one probe, the oldest, with its own backoff.
        let rto = s.rto();
        assert_eq!(s.due(t0 + rto, 64), vec![0]);
        s.resend(0, t0 + rto).unwrap();
        assert!(s.due(t0 + rto * 2, 64).is_empty(), "the probe backs off");
        assert_eq!(s.due(t0 + rto * 3, 64), vec![0]);
        // The receiver answers (it had 0..=3): the rest are resent at once.
        let heard = t0 + rto * 3;
        let ack = RelAck {
            stream_id: 1,
            next_expected: 4,
            received: 0,
            has_gap: false,
        };
        assert!(s.on_ack(&ack, heard).is_empty());
        // (1..=3 took 3 RTOs: the RTO grew with that sample.)
        let at = t0 + s.rto();
        assert!(at >= heard);
        assert_eq!(s.due(at, 64), (4..10).collect::<Vec<_>>());
    }

    #[test]
    fn legacy_gate_matches_v011() {
        let mut g = LegacyGate::default();
        assert!(g.accept(0));
        assert!(!g.accept(0));
        assert!(g.accept(2));
        assert!(!g.accept(2));
        assert!(g.accept(1));
        assert!(!g.accept(3 + 65));
        assert!(g.accept(3 + 64));
    }
}
