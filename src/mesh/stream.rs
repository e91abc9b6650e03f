//! The streams of one session (WIRE.md §7): per stream the send side
//! (credit window, packet sequence, and for Net-reliable streams the
//! retransmission buffer) and the receive side (consumed bytes for grants,
//! the v0.11 gate or the Net reorder buffer). Idle streams are evicted, the
//! table is capped with LRU eviction, and closed or evicted ids are
//! quarantined for 2 s (grants for them are ignored).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::bufpool::BufferPool;
use super::credit::TxCredit;
use super::outbox::{HeaderStamp, Outbox, TakenPacket};
use super::reliable::{LegacyGate, ReliableReceiver, ReliableSender};

/// How long a closed or evicted stream id ignores grants.
pub const QUARANTINE: Duration = Duration::from_secs(2);

/// How a stream's reliable sends travel, fixed at its first send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// Not decided yet (no send so far).
    Undecided,
    /// Fire-and-forget.
    Plain,
    /// RELIABLE flag set, no retransmission: what v0.11 peers get.
    Legacy,
    /// RELIABLE flag set, with NACK/RTO retransmission (Net peers).
    Net,
}

/// First gap before the last grant is repeated ([`RxState::regrant_due`]).
const REGRANT_FIRST: Duration = Duration::from_millis(20);
/// Largest gap between repeats of the last grant.
const REGRANT_MAX_GAP: Duration = Duration::from_secs(1);
/// Repeats of one grant: about 5 s of cover for a stalled sender.
pub(crate) const MAX_REGRANTS: u32 = 10;

/// The send half.
#[derive(Debug)]
pub(crate) struct TxState {
    pub reliable: bool,
    pub mode: TxMode,
    pub credit: TxCredit,
    pub next_seq: u64,
    pub sender: ReliableSender,
    /// Header priority of this stream's packets towards a Net peer (a
    /// channel's `priority`); the writer sends higher priorities first.
    pub priority: u8,
    /// Header `subnet_id` of this stream's packets towards a Net peer: the
    /// subnet a channel's packets must not leave
    /// ([`Visibility::confinement`](crate::mesh::channels::Visibility::confinement));
    /// 0 for none.
    pub subnet_stamp: u32,
    /// Header subprotocol of this stream's packets: 0, or
    /// [`CAUSAL`](crate::wire::ids::CAUSAL) for a causal stream (its
    /// events are CausalLink frames, STORAGE.md §14).
    pub subprotocol: u16,
    /// The window is the default one, so a Net receiver's offer may widen
    /// it (a window the application chose is kept).
    pub default_window: bool,
}

impl TxState {
    /// The header fields this stream's packets carry.
    pub fn stamp(&self) -> HeaderStamp {
        HeaderStamp {
            priority: self.priority,
            subnet: self.subnet_stamp,
            subprotocol: self.subprotocol,
        }
    }
}

/// The receive half.
#[derive(Debug, Default)]
pub(crate) struct RxState {
    /// Total bytes the application has taken (`plaintext + 80` per
    /// packet, counted once a packet's last event is taken), sent in
    /// grants.
    pub consumed: u64,
    /// Bytes of packets queued for the application but not taken yet.
    pub queued: u64,
    /// Bytes of packets a subprotocol handler took during the current
    /// receive batch, credited as one at the batch's end (a grant per
    /// packet would cost a packet per packet).
    pub taken_by_handler: u64,
    /// `consumed` as of the last grant sent.
    pub granted: u64,
    /// When the last grant was (re-)sent, as the reliability tick saw it.
    regrant_at: Option<Instant>,
    /// Re-sends of the last grant so far (reset by a new grant).
    regrants: u32,
    /// The most bytes seen outstanding at once (received, not yet
    /// granted back): a sender never has more than its window
    /// outstanding, so this is a lower bound of the sender's window that
    /// reaches it as soon as the sender stalls once.
    peak_outstanding: u64,
    pub legacy_gate: LegacyGate,
    pub receiver: ReliableReceiver,
    /// The window we let a Net sender widen its default window to (0:
    /// none offered), sent with every grant; see [`grow_offer`](Self::grow_offer).
    pub offered: u64,
    /// The sender came within a quarter of the window since the last
    /// widening: it is held back by credit.
    window_hit: bool,
    /// The bytes of the node's window budget this stream holds beyond the
    /// default window (returned when the stream goes).
    lease: Option<WindowLease>,
}

/// A node's budget of receive-window bytes beyond the default window,
/// shared by every stream that widened its window (`window_budget`).
#[derive(Debug)]
pub(crate) struct WindowPool {
    used: AtomicU64,
    limit: u64,
}

impl WindowPool {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicU64::new(0),
            limit,
        })
    }

    /// Bytes held by streams now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .is_ok()
    }
}

/// A stream's share of the [`WindowPool`], returned on drop.
#[derive(Debug)]
struct WindowLease {
    pool: Arc<WindowPool>,
    bytes: u64,
}

impl Drop for WindowLease {
    fn drop(&mut self) {
        self.pool.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl RxState {
    /// The window a sender may use on this stream: `own` (our default,
    /// which v0.11 senders share) or the wider one we offered.
    pub fn effective_window(&self, own: u64) -> u64 {
        if own == 0 { 0 } else { own.max(self.offered) }
    }

    /// Whether a packet costing `cost` stays within `window` bytes queued
    /// for the application (or the wider window we offered): a sender
    /// that respects the credit we grant never exceeds it, so such a
    /// packet is queued whatever the shard's event capacity (never
    /// dropped).
    pub fn within_window(&self, cost: u64, window: u64) -> bool {
        window != 0 && self.queued + cost <= self.effective_window(window)
    }

    /// A packet worth `credit` bytes was queued for the application, on a
    /// stream whose own window is `window`.
    pub fn on_queued(&mut self, credit: u64, window: u64) {
        self.queued += credit;
        let outstanding = self.queued + self.consumed.saturating_sub(self.granted);
        self.peak_outstanding = self.peak_outstanding.max(outstanding);
        let effective = self.effective_window(window);
        if effective != 0 && outstanding.saturating_mul(4) >= effective.saturating_mul(3) {
            self.window_hit = true;
        }
    }

    /// After the application took events: the wider window to offer a Net
    /// sender, if its credit held it back (it came within a quarter of the
    /// window) while the application keeps up (took everything queued).
    /// Doubles the window, up to `max_window`, taking the difference from
    /// `pool`; `None` when nothing changes.
    pub fn grow_offer(&mut self, own: u64, max_window: u64, pool: &Arc<WindowPool>) -> Option<u64> {
        if own == 0 || !self.window_hit || self.queued != 0 {
            return None;
        }
        let current = self.effective_window(own);
        let wider = current.saturating_mul(2).min(max_window);
        if wider <= current {
            return None;
        }
        let delta = wider - current;
        if !pool.try_take(delta) {
            return None;
        }
        match &mut self.lease {
            Some(lease) => lease.bytes += delta,
            None => {
                self.lease = Some(WindowLease {
                    pool: pool.clone(),
                    bytes: delta,
                })
            }
        }
        self.offered = wider;
        self.window_hit = false;
        Some(wider)
    }

    /// The window offered to the sender, to send with a grant.
    pub fn offer(&self) -> Option<u64> {
        (self.offered != 0).then_some(self.offered)
    }

    /// How many consumed bytes make a grant worth sending now: a quarter
    /// of the sender's window as observed ([`on_queued`](Self::on_queued)),
    /// at most `cap` (a quarter of our own window). We do not know the
    /// sender's window; one smaller than our threshold would otherwise
    /// stall on every window until the reliability tick.
    pub fn grant_threshold(&self, cap: u64) -> u64 {
        let cap = cap.max(self.offered / 4);
        (self.peak_outstanding / 4).clamp(1, cap.max(1))
    }

    /// The application took packets worth `credit` bytes.
    pub fn on_consumed(&mut self, credit: u64) {
        self.consumed += credit;
        self.queued = self.queued.saturating_sub(credit);
    }

    /// The grant to send now, if at least `threshold` bytes were consumed
    /// since the last one (any amount with threshold 1); marks it sent.
    pub fn take_grant(&mut self, threshold: u64) -> Option<u64> {
        let pending = self.consumed - self.granted;
        if pending == 0 || pending < threshold {
            return None;
        }
        self.granted = self.consumed;
        self.regrant_at = None;
        self.regrants = 0;
        Some(self.consumed)
    }

    /// The last grant again, when it is due for a re-send: grants travel
    /// unreliably, and a sender whose last grant was lost waits for credit
    /// while we, having consumed everything, would send no new one (the
    /// lost window update). So the last grant is repeated after 20 ms,
    /// then with doubling gaps up to 1 s, [`MAX_REGRANTS`] times; any new
    /// grant starts over. Grants are absolute: a repeat is harmless.
    pub fn regrant_due(&mut self, now: Instant) -> Option<u64> {
        if self.granted == 0 || self.regrants >= MAX_REGRANTS {
            return None;
        }
        let Some(at) = self.regrant_at else {
            self.regrant_at = Some(now);
            return None;
        };
        let gap = (REGRANT_FIRST * 2u32.pow(self.regrants.min(6))).min(REGRANT_MAX_GAP);
        if now.saturating_duration_since(at) < gap {
            return None;
        }
        self.regrants += 1;
        self.regrant_at = Some(now);
        Some(self.granted)
    }

    /// Whether the reliability tick still has work here: an ack to send,
    /// a grant not sent, or re-sends of the last grant to come.
    pub fn tick_pending(&self) -> bool {
        self.receiver.ack_due()
            || self.consumed > self.granted
            || (self.granted > 0 && self.regrants < MAX_REGRANTS)
    }
}

/// One stream.
#[derive(Debug)]
pub(crate) struct Stream {
    pub tx: TxState,
    pub rx: RxState,
    pub last_active: Instant,
}

impl Stream {
    fn new(reliable: bool, window: u64, now: Instant) -> Self {
        Self {
            tx: TxState {
                reliable,
                mode: TxMode::Undecided,
                credit: TxCredit::new(window),
                next_seq: 0,
                sender: ReliableSender::new(),
                priority: 0,
                subnet_stamp: 0,
                subprotocol: 0,
                default_window: true,
            },
            rx: RxState::default(),
            last_active: now,
        }
    }
}

/// The streams of one session.
#[derive(Debug)]
pub(crate) struct StreamTable {
    streams: HashMap<u64, Stream, foldhash::fast::RandomState>,
    quarantine: HashMap<u64, Instant, foldhash::fast::RandomState>,
    max_streams: usize,
    idle_timeout: Duration,
    default_window: u64,
    /// Streams evicted so far (idle or LRU).
    pub evicted: u64,
    /// Packets waiting for the writer (all streams of the session).
    pub outbox: Outbox,
    /// Events dropped from the outbox because their stream closed first.
    pub outbox_discarded: u64,
}

impl StreamTable {
    pub fn new(max_streams: usize, idle_timeout: Duration, default_window: u64) -> Self {
        Self {
            streams: HashMap::default(),
            quarantine: HashMap::default(),
            max_streams: max_streams.max(1),
            idle_timeout,
            default_window,
            evicted: 0,
            outbox: Outbox::new(),
            outbox_discarded: 0,
        }
    }

    /// A stream and the outbox, borrowed together.
    pub fn stream_and_outbox(&mut self, id: u64) -> Option<(&mut Stream, &mut Outbox)> {
        let stream = self.streams.get_mut(&id)?;
        Some((stream, &mut self.outbox))
    }

    /// The writer takes the outbox: each packet gets its stream's next
    /// sequence, and a Net-reliable packet is kept for retransmission.
    /// Empty: the outbox is released (see [`Outbox::take`]).
    ///
    /// Packets of higher-priority streams come first; each stream's
    /// packets keep their order (a stable sort, skipped when every
    /// priority is 0).
    /// The copies kept for retransmission come from `buffers`.
    pub fn take_outbox(&mut self, now: Instant, buffers: &BufferPool) -> Vec<TakenPacket> {
        let streams = &mut self.streams;
        let mut prioritized = false;
        let mut taken = self.outbox.take(now, |p| {
            let s = streams.get_mut(&p.stream_id)?;
            let seq = s.tx.next_seq;
            s.tx.next_seq += 1;
            if s.tx.mode == TxMode::Net {
                s.tx.sender
                    .on_sent(seq, p.count, buffers.copy_of(p.payload()), now);
            }
            prioritized |= s.tx.priority != 0;
            Some((seq, s.tx.stamp()))
        });
        if prioritized {
            taken.sort_by_key(|t| std::cmp::Reverse(t.stamp.priority));
        }
        taken
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Opens (or reconfigures, if it has not sent yet) a stream for sending.
    pub fn open(
        &mut self,
        id: u64,
        reliable: bool,
        window: Option<u64>,
        now: Instant,
    ) -> &mut Stream {
        self.quarantine.remove(&id);
        let default_window = window.is_none();
        let window = window.unwrap_or(self.default_window);
        self.make_room(id, now);
        let stream = self
            .streams
            .entry(id)
            .or_insert_with(|| Stream::new(reliable, window, now));
        if stream.tx.next_seq == 0 {
            stream.tx.reliable = reliable;
            stream.tx.credit = TxCredit::new(window);
            stream.tx.default_window = default_window;
        }
        stream.last_active = now;
        stream
    }

    /// The stream for a received packet, created with the defaults.
    pub fn for_receive(&mut self, id: u64, now: Instant) -> &mut Stream {
        if !self.streams.contains_key(&id) {
            self.make_room(id, now);
        }
        let window = self.default_window;
        let stream = self
            .streams
            .entry(id)
            .or_insert_with(|| Stream::new(false, window, now));
        stream.last_active = now;
        stream
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Stream> {
        self.streams.get_mut(&id)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&u64, &mut Stream)> {
        self.streams.iter_mut()
    }

    /// Whether grants for `id` are ignored now.
    pub fn is_quarantined(&self, id: u64, now: Instant) -> bool {
        self.quarantine.get(&id).is_some_and(|&until| now < until)
    }

    /// Closes a stream: its state goes, its id is quarantined.
    pub fn close(&mut self, id: u64, now: Instant) -> bool {
        let existed = self.streams.remove(&id).is_some();
        if existed {
            self.outbox_discarded += self.outbox.discard_stream(id) as u64;
        }
        self.quarantine.insert(id, now + QUARANTINE);
        existed
    }

    /// Evicts streams idle past the timeout and expires quarantines;
    /// returns how many streams went. Streams with unacknowledged reliable
    /// packets are kept.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let idle = self.idle_timeout;
        let expired: Vec<u64> = self
            .streams
            .iter()
            .filter(|(_, s)| {
                now.saturating_duration_since(s.last_active) > idle && s.tx.sender.in_flight() == 0
            })
            .map(|(&id, _)| id)
            .collect();
        for &id in &expired {
            self.close(id, now);
        }
        self.quarantine.retain(|_, &mut until| now < until);
        self.evicted += expired.len() as u64;
        expired.len()
    }

    fn make_room(&mut self, incoming: u64, now: Instant) {
        if self.streams.contains_key(&incoming) || self.streams.len() < self.max_streams {
            return;
        }
        if let Some(oldest) = self
            .streams
            .iter()
            .min_by_key(|(_, s)| s.last_active)
            .map(|(&id, _)| id)
        {
            self.close(oldest, now);
            self.evicted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priority_streams_are_written_first_each_in_its_own_order() {
        let now = Instant::now();
        let mut table = StreamTable::new(8, Duration::from_secs(60), 1 << 20);
        table.open(1, false, None, now);
        table.open(2, false, None, now).tx.priority = 7;
        table.open(3, false, None, now).tx.priority = 3;
        // Interleaved, one event per packet (limit 8 bytes).
        for (stream, event) in [(1, b"a1"), (2, b"b1"), (3, b"c1"), (1, b"a2"), (2, b"b2")] {
            table
                .outbox
                .append(stream, 0, &[event.as_slice()], 8, &BufferPool::new());
        }
        let order: Vec<(u64, u64)> = table
            .take_outbox(now, &BufferPool::new())
            .iter()
            .map(|t| (t.packet.stream_id, t.sequence))
            .collect();
        assert_eq!(order, vec![(2, 0), (2, 1), (3, 0), (1, 0), (1, 1)]);
        // All priorities 0: the append order, untouched.
        table.open(2, false, None, now).tx.priority = 0;
        table.open(3, false, None, now).tx.priority = 0;
        for (stream, event) in [(3, b"c2"), (1, b"a3"), (2, b"b3")] {
            table
                .outbox
                .append(stream, 0, &[event.as_slice()], 8, &BufferPool::new());
        }
        let streams: Vec<u64> = table
            .take_outbox(now, &BufferPool::new())
            .iter()
            .map(|t| t.packet.stream_id)
            .collect();
        assert_eq!(streams, vec![3, 1, 2]);
    }

    #[test]
    fn the_last_grant_is_repeated_with_backoff_until_a_new_one() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut rx = RxState::default();
        assert_eq!(rx.regrant_due(t0), None, "nothing granted yet");
        rx.on_consumed(100);
        assert_eq!(rx.take_grant(1), Some(100));
        assert_eq!(rx.regrant_due(ms(0)), None, "starts the clock");
        assert_eq!(rx.regrant_due(ms(19)), None);
        assert_eq!(rx.regrant_due(ms(20)), Some(100));
        assert_eq!(rx.regrant_due(ms(59)), None, "then 40 ms");
        assert_eq!(rx.regrant_due(ms(60)), Some(100));
        let mut at = 60;
        let mut repeats = 2;
        while let Some(total) = rx.regrant_due(ms(at + 1000)) {
            assert_eq!(total, 100);
            at += 1000;
            repeats += 1;
        }
        assert_eq!(repeats, MAX_REGRANTS, "bounded");
        // A new grant starts over.
        rx.on_consumed(1);
        assert_eq!(rx.take_grant(1), Some(101));
        assert_eq!(rx.regrant_due(ms(at + 2000)), None);
        assert_eq!(rx.regrant_due(ms(at + 2020)), Some(101));
    }

    #[test]
    fn the_grant_threshold_follows_the_senders_observed_window() {
        let cap = 16 * 1024;
        let mut rx = RxState::default();
        assert_eq!(rx.grant_threshold(cap), 1, "nothing seen: grant at once");
        // A 4 KiB sender: at most 4096 bytes outstanding, ever.
        for _ in 0..4 {
            rx.on_queued(1024, 65_536);
        }
        assert_eq!(rx.grant_threshold(cap), 1024);
        rx.on_consumed(1024);
        assert_eq!(rx.take_grant(rx.grant_threshold(cap)), Some(1024));
        rx.on_queued(1024, 65_536);
        assert_eq!(rx.grant_threshold(cap), 1024, "never more than it has seen");
        // A sender with a large window is capped at our quarter window.
        for _ in 0..200 {
            rx.on_queued(1024, 65_536);
        }
        assert_eq!(rx.grant_threshold(cap), cap);
    }

    #[test]
    fn a_window_grows_only_when_the_sender_is_held_back_and_the_reader_keeps_up() {
        let pool = WindowPool::new(300_000);
        let own = 65_536;
        let mut rx = RxState::default();
        // Bytes arrive, the reader takes them, the grant goes back.
        let round = |rx: &mut RxState, bytes: u64| {
            rx.on_queued(bytes, own);
            rx.on_consumed(bytes);
            rx.take_grant(1);
        };
        // Half a window outstanding: the sender is not held back.
        round(&mut rx, 32_768);
        assert_eq!(rx.grow_offer(own, 1 << 20, &pool), None);
        // Three quarters outstanding, but the reader has not taken it all.
        rx.on_queued(49_152, own);
        rx.on_consumed(1_000);
        assert_eq!(rx.grow_offer(own, 1 << 20, &pool), None);
        // Taken: the window doubles, the pool pays the difference.
        rx.on_consumed(48_152);
        rx.take_grant(1);
        assert_eq!(rx.grow_offer(own, 1 << 20, &pool), Some(131_072));
        assert_eq!(pool.used(), 65_536);
        assert!(rx.within_window(131_072, own));
        assert!(!rx.within_window(131_073, own));
        assert_eq!(rx.offer(), Some(131_072));
        assert_eq!(rx.grow_offer(own, 1 << 20, &pool), None, "needs a new hit");
        // The next hit is measured against the wider window.
        round(&mut rx, 65_536);
        assert_eq!(rx.grow_offer(own, 1 << 20, &pool), None);
        round(&mut rx, 98_304);
        assert_eq!(rx.grow_offer(own, 1 << 20, &pool), Some(262_144));
        assert_eq!(pool.used(), 196_608);
        // The pool's limit stops the next doubling; the cap stops any.
        round(&mut rx, 262_144);
        assert_eq!(rx.grow_offer(own, 1 << 20, &pool), None, "over the budget");
        assert_eq!(rx.grow_offer(own, 262_144, &pool), None, "at the cap");
        // An unlimited stream never grows; a dropped stream returns its bytes.
        assert_eq!(RxState::default().grow_offer(0, 1 << 20, &pool), None);
        drop(rx);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn grants_wait_for_the_threshold_and_never_repeat() {
        let mut rx = RxState::default();
        assert_eq!(rx.take_grant(1), None);
        rx.consumed = 1000;
        assert_eq!(rx.take_grant(4096), None);
        rx.consumed = 5000;
        assert_eq!(rx.take_grant(4096), Some(5000));
        assert_eq!(rx.take_grant(1), None);
        rx.consumed = 5001;
        assert_eq!(rx.take_grant(1), Some(5001));
    }

    #[test]
    fn lru_cap_idle_eviction_and_quarantine() {
        let t0 = Instant::now();
        let mut t = StreamTable::new(2, Duration::from_secs(300), 1000);
        t.open(1, false, None, t0);
        t.open(2, false, None, t0 + Duration::from_secs(1));
        t.open(3, false, None, t0 + Duration::from_secs(2)); // evicts 1 (LRU)
        assert_eq!(t.len(), 2);
        assert!(t.get_mut(1).is_none());
        assert!(t.is_quarantined(1, t0 + Duration::from_secs(2)));
        assert!(!t.is_quarantined(1, t0 + Duration::from_secs(5)));
        assert_eq!(t.sweep(t0 + Duration::from_secs(303)), 2);
        assert_eq!(t.len(), 0);
        assert_eq!(t.evicted, 3);
    }
}
