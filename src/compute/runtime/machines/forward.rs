//! Forwarding: events delivered to a daemon's old node after cut-over go
//! on to its new node, in order, each taken there exactly once.
//!
//! **Between Net nodes** (the new node takes subprotocol streams) the old
//! node's [`Forwarder`] numbers the events of one forwarding (its `stream`
//! id, one per cut-over) and sends them as ForwardedEvents on the 0x0500
//! subprotocol stream (`bulk.rs`): up to [`FORWARD_WINDOW`] bytes of events
//! unacknowledged at once, acknowledged by index (ForwardAck `next`). A
//! batch goes out full (~7 000 bytes), or partly filled while fewer than
//! [`PARTIAL_BELOW`] batches are unacknowledged: a lone event leaves at
//! once, and under load events gather into full batches instead of a
//! message each. The
//! new node takes events from the index it expects next and ignores the
//! rest, so a batch sent again is never applied twice and a duplicate
//! *event* (the producer delivered it twice) is still counted as taken —
//! the count cannot wedge. Everything unacknowledged is sent again when a
//! stream send to the peer failed or nothing was acknowledged for
//! [`STALL_RETRIES`] retry intervals (a lost ForwardAck).
//!
//! **Towards a v0.11 node** the forwarder keeps v0.11's message:
//! BufferedEvents, one batch in flight, re-sent until the target's
//! ReplayComplete count covers it.
//!
//! The new node applies events for a daemon that runs there as batches
//! (one work item for an SDK daemon), above each producer's applied
//! watermark; for a daemon that is leaving again they take the
//! migration-aware path one by one (captured, or forwarded on).
//!
//! A forwarder holds at most `RuntimeConfig::max_forwarded` unacknowledged
//! events: beyond it a delivery is refused with `ComputeError::Buffer`, as
//! the source's capture buffer refuses one, rather than growing without
//! bound while the new node falls behind.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::{
    ComputeError, MAX_BATCH_BYTES, Outputs, Shared, State, deliver_locked, drain_target, encode,
    send,
};
use crate::compute::migration::MigrationMessage;
use crate::compute::migration::wire::encode_forwarded_events;
use crate::compute::{BatchWait, CausalEvent, DaemonError};

/// Event bytes a Net forwarder may have unacknowledged (~150 batches).
pub(super) const FORWARD_WINDOW: usize = 1 << 20;
/// Batches unacknowledged below which a partly filled batch is sent.
pub(super) const PARTIAL_BELOW: usize = 2;
/// Retry intervals without an acknowledgement before a Net forwarder sends
/// everything unacknowledged again.
pub(super) const STALL_RETRIES: u32 = 10;

/// Fixed bytes of one event in BufferedEvents / ForwardedEvents:
/// link 32 ‖ len 4 ‖ received_at 8.
const EVENT_OVERHEAD: usize = 44;

fn wire_size(event: &CausalEvent) -> usize {
    EVENT_OVERHEAD + event.payload.len()
}

/// Events an old source sends on to the daemon's new node (module doc).
#[derive(Debug)]
pub(super) struct Forwarder {
    pub(super) target: u64,
    /// The forwarding's id towards a Net node; `None` towards a v0.11 node.
    stream: Option<u64>,
    /// Sent, not acknowledged; the first has index `acked`.
    in_flight: VecDeque<CausalEvent>,
    in_flight_bytes: usize,
    /// Net: the index after each unacknowledged batch, in order.
    batch_ends: VecDeque<u64>,
    /// v0.11: the batch in flight as sent, re-sent until acknowledged.
    legacy_batch: Option<Vec<u8>>,
    /// Not sent yet; the first has index `sent`.
    queue: VecDeque<CausalEvent>,
    queued_bytes: usize,
    sent: u64,
    enqueued: u64,
    /// Net: events acknowledged (the index the new node expects next).
    /// v0.11: the highest count the target reported.
    pub(super) acked: u64,
    last_sent: Instant,
    /// The last acknowledgement that moved `acked` (or re-send).
    progress: Instant,
    /// The bulk sender's failed sends to `target` when last looked at.
    failures: u64,
    /// The daemon is being restored here: new events wait in the queue
    /// (sent on if the restore is aborted, replayed here once activated),
    /// so none makes a round trip through the node it is leaving and
    /// comes back after later ones were applied here.
    pub(super) paused: bool,
}

impl Forwarder {
    /// A forwarder to `target` at cut-over.
    pub(super) fn new(shared: &Shared, state: &mut State, target: u64, now: Instant) -> Self {
        let stream = shared.bulk.takes(target).then(|| {
            state.forward_streams = (state.forward_streams + 1).max(crate::redex::now_ns());
            state.forward_streams
        });
        Self {
            target,
            stream,
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            batch_ends: VecDeque::new(),
            legacy_batch: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            sent: 0,
            enqueued: 0,
            acked: 0,
            last_sent: now,
            progress: now,
            failures: shared.bulk.failures(target),
            paused: false,
        }
    }

    /// Events enqueued and not yet acknowledged.
    pub(super) fn unacknowledged(&self) -> u64 {
        self.enqueued.saturating_sub(self.acked)
    }

    /// Events ever enqueued (the cut-over's mark).
    pub(super) fn enqueued(&self) -> u64 {
        self.enqueued
    }

    /// Queues the events captured before cut-over (no limit: the capture
    /// buffer bounded them).
    pub(super) fn extend(&mut self, events: Vec<CausalEvent>) {
        self.enqueued += events.len() as u64;
        self.queued_bytes += events.iter().map(wire_size).sum::<usize>();
        self.queue.extend(events);
    }

    /// Queues one event delivered after cut-over.
    ///
    /// # Errors
    /// [`ComputeError::Buffer`] with `limit` events unacknowledged; the
    /// event is not taken.
    pub(super) fn push(&mut self, event: CausalEvent, limit: u64) -> Result<(), ComputeError> {
        if self.unacknowledged() >= limit {
            return Err(ComputeError::Buffer(format!(
                "{} events forwarded to node {:#018x} are unacknowledged",
                self.unacknowledged(),
                self.target
            )));
        }
        self.enqueued += 1;
        self.queued_bytes += wire_size(&event);
        self.queue.push_back(event);
        Ok(())
    }

    /// Every event not acknowledged, in order (the daemon came back here:
    /// they join its replay).
    pub(super) fn into_pending(self) -> impl Iterator<Item = CausalEvent> {
        self.in_flight.into_iter().chain(self.queue)
    }

    /// Sends what the window allows (one batch towards a v0.11 node).
    pub(super) fn pump(&mut self, shared: &Shared, origin: u64, now: Instant) {
        if self.paused {
            return;
        }
        match self.stream {
            Some(stream) => {
                while self.in_flight_bytes < FORWARD_WINDOW && !self.queue.is_empty() {
                    if self.queued_bytes < MAX_BATCH_BYTES && self.batch_ends.len() >= PARTIAL_BELOW
                    {
                        break; // gathers until a batch fills or one is acknowledged
                    }
                    let count = self.take_batch();
                    let first = self.sent;
                    self.sent += count as u64;
                    self.batch_ends.push_back(self.sent);
                    let start = self.in_flight.len() - count;
                    self.send_range(shared, origin, stream, first, start..self.in_flight.len());
                    if self.in_flight.len() == count {
                        self.progress = now;
                    }
                    self.last_sent = now;
                }
            }
            None => {
                if self.legacy_batch.is_some() || self.queue.is_empty() {
                    return;
                }
                let count = self.take_batch();
                self.sent += count as u64;
                let message = MigrationMessage::BufferedEvents {
                    origin,
                    events: self.in_flight.iter().cloned().collect(),
                };
                if let Some(bytes) = encode(&message) {
                    super::send_bytes(shared, self.target, &bytes);
                    self.legacy_batch = Some(bytes);
                    self.last_sent = now;
                }
            }
        }
    }

    /// Moves the next batch (≤ `MAX_BATCH_BYTES`, at least one event) from
    /// the queue to the in-flight events; returns its length.
    fn take_batch(&mut self) -> usize {
        let mut bytes = 0;
        let mut count = 0;
        while let Some(next) = self.queue.front() {
            let size = wire_size(next);
            if count > 0 && bytes + size > MAX_BATCH_BYTES {
                break;
            }
            bytes += size;
            count += 1;
            self.in_flight.extend(self.queue.pop_front());
        }
        self.in_flight_bytes += bytes;
        self.queued_bytes -= bytes;
        count
    }

    /// Sends in-flight events `range` (index `first` is the range's start)
    /// as ForwardedEvents batches on the stream.
    fn send_range(
        &self,
        shared: &Shared,
        origin: u64,
        stream: u64,
        first: u64,
        range: std::ops::Range<usize>,
    ) {
        let mut at = range.start;
        while at < range.end {
            let mut end = at;
            let mut bytes = 0;
            while end < range.end {
                let size = wire_size(&self.in_flight[end]);
                if end > at && bytes + size > MAX_BATCH_BYTES {
                    break;
                }
                bytes += size;
                end += 1;
            }
            let index = first + (at - range.start) as u64;
            match encode_forwarded_events(origin, stream, index, self.in_flight.range(at..end)) {
                Ok(message) => shared.bulk.push_message(self.target, message),
                Err(e) => tracing::error!(origin, error = %e, "forwarded events cannot be encoded"),
            }
            at = end;
        }
    }

    /// Re-sends what is due: towards a Net node everything unacknowledged
    /// after a failed stream send or a stall, towards a v0.11 node the
    /// batch in flight each retry interval; then sends what the window
    /// allows.
    pub(super) fn tick(&mut self, shared: &Shared, origin: u64, now: Instant) {
        let retry = shared.config.retry_interval;
        match self.stream {
            Some(stream) if !self.in_flight.is_empty() && !self.paused => {
                let failures = shared.bulk.failures(self.target);
                let failed = failures != self.failures;
                let stalled = now.duration_since(self.progress) >= retry * STALL_RETRIES;
                if (failed || stalled) && now.duration_since(self.last_sent) >= retry {
                    self.failures = failures;
                    tracing::debug!(
                        origin,
                        to = self.target,
                        events = self.in_flight.len(),
                        failed,
                        "forwarded events sent again"
                    );
                    self.send_range(shared, origin, stream, self.acked, 0..self.in_flight.len());
                    self.last_sent = now;
                    self.progress = now;
                }
            }
            None => {
                if let Some(bytes) = &self.legacy_batch
                    && now.duration_since(self.last_sent) >= retry
                {
                    super::send_bytes(shared, self.target, bytes);
                    self.last_sent = now;
                }
            }
            _ => {}
        }
        self.pump(shared, origin, now);
    }

    /// ForwardAck from the new node; returns whether `acked` moved.
    pub(super) fn on_ack(&mut self, stream: u64, next: u64, now: Instant) -> bool {
        if self.stream != Some(stream) || next <= self.acked || next > self.sent {
            return false;
        }
        for _ in self.acked..next {
            if let Some(event) = self.in_flight.pop_front() {
                self.in_flight_bytes -= wire_size(&event);
            }
        }
        self.acked = next;
        while self.batch_ends.front().is_some_and(|&end| end <= next) {
            self.batch_ends.pop_front();
        }
        self.progress = now;
        true
    }

    /// ReplayComplete from a v0.11 node (or a Net node taking
    /// BufferedEvents): `count` events taken so far; returns whether
    /// `acked` moved.
    pub(super) fn on_count(&mut self, count: u64) -> bool {
        if self.stream.is_some() || count <= self.acked {
            return false;
        }
        self.acked = count;
        if self.acked >= self.sent {
            self.in_flight.clear();
            self.in_flight_bytes = 0;
            self.legacy_batch = None;
        }
        true
    }
}

/// Where the new node is in one forwarding it receives.
#[derive(Debug)]
pub(super) struct Inbound {
    stream: u64,
    /// Events taken (the index expected next).
    next: u64,
}

/// ForwardedEvents from `from`: takes the events from the index expected
/// next and acknowledges.
pub(super) fn on_forwarded_events(
    shared: &Shared,
    state: &mut State,
    from: u64,
    origin: u64,
    stream: u64,
    first: u64,
    events: Vec<CausalEvent>,
) {
    if !state.targets.contains_key(&origin) && !state.activated.contains_key(&origin) {
        // Not this node's daemon (any more): no acknowledgement.
        return;
    }
    let inbound = state
        .forwarded_in
        .entry((origin, from))
        .or_insert(Inbound { stream, next: 0 });
    if inbound.stream != stream {
        if first != 0 {
            // A new forwarding whose start is missing (the stream keeps
            // order, so it was lost): the sender sends it again.
            return;
        }
        *inbound = Inbound { stream, next: 0 };
    }
    let next = inbound.next;
    let taken = if first <= next {
        let skip = usize::try_from(next - first).unwrap_or(usize::MAX);
        let fresh: Vec<CausalEvent> = events.into_iter().skip(skip).collect();
        take(shared, state, origin, fresh)
    } else {
        0
    };
    let next = next + taken;
    if let Some(inbound) = state.forwarded_in.get_mut(&(origin, from)) {
        inbound.next = next;
    }
    send(
        shared,
        from,
        &MigrationMessage::ForwardAck {
            origin,
            stream,
            next,
        },
    );
}

/// Takes forwarded `events` for `origin` in order; returns how many were
/// taken (applied, counted as duplicates, failed by the daemon, or queued
/// for a replay); the rest is sent again by the forwarder.
fn take(shared: &Shared, state: &mut State, origin: u64, events: Vec<CausalEvent>) -> u64 {
    if let Some(target) = state.targets.get_mut(&origin) {
        // Restored here, not active yet: into the replay.
        let mut taken = 0;
        for event in events {
            if let Err(e) = target.replay.insert(event) {
                tracing::warn!(origin, error = %e, "replay buffer full");
                break;
            }
            taken += 1;
        }
        if let Err(e) = drain_target(shared, target) {
            // The events wait in the replay for the next drain.
            tracing::warn!(origin, error = %e, "replay stopped at a failing event");
        }
        return taken;
    }
    let leaving = state
        .sources
        .get(&origin)
        .is_some_and(|s| s.cutover_mark.is_none())
        || state.forwarders.contains_key(&origin);
    if leaving {
        let mut taken = 0;
        for event in events {
            if is_applied(shared, origin, &event) {
                taken += 1;
                continue;
            }
            match deliver_locked(shared, state, origin, event, Outputs::Queued) {
                Ok(_) | Err(ComputeError::Daemon(DaemonError::ProcessFailed(_))) => taken += 1,
                Err(e) => {
                    tracing::warn!(origin, error = %e, "forwarded event not taken yet");
                    break;
                }
            }
        }
        return taken;
    }
    apply(shared, origin, events)
}

/// Whether `event` is at or below its producer's applied watermark on
/// `origin`'s host (sequence 0 carries none: never a duplicate).
fn is_applied(shared: &Shared, origin: u64, event: &CausalEvent) -> bool {
    let sequence = event.sequence();
    sequence != 0
        && shared
            .registry
            .with_host(origin, |h| h.applied().get(event.producer()))
            .ok()
            .flatten()
            .is_some_and(|applied| sequence <= applied)
}

/// Applies forwarded events to the daemon running here as batches, each
/// event above its producer's watermark once; an event the daemon fails is
/// taken (recorded as the daemon's error, as a local delivery's would be).
fn apply(shared: &Shared, origin: u64, events: Vec<CausalEvent>) -> u64 {
    let total = events.len() as u64;
    // The events to apply, and each one's index among `events`.
    let mut fresh = Vec::with_capacity(events.len());
    let mut positions = Vec::with_capacity(events.len());
    // Per producer, the highest sequence applied or about to be.
    let mut highest: HashMap<u64, Option<u64>> = HashMap::new();
    for (position, event) in events.into_iter().enumerate() {
        let (producer, sequence) = (event.producer(), event.sequence());
        if sequence != 0 {
            let seen = highest.entry(producer).or_insert_with(|| {
                shared
                    .registry
                    .with_host(origin, |h| h.applied().get(producer))
                    .ok()
                    .flatten()
            });
            if seen.is_some_and(|w| sequence <= w) {
                continue;
            }
            *seen = Some(sequence);
        }
        fresh.push(event);
        positions.push(position as u64);
    }
    let mut done = 0;
    while done < fresh.len() {
        let delivered =
            match shared
                .registry
                .deliver_batch(origin, &fresh[done..], &BatchWait::default())
            {
                Ok(delivered) => delivered,
                Err(e) => {
                    tracing::warn!(origin, error = %e, "forwarded events not taken yet");
                    return positions[done];
                }
            };
        let applied = delivered.delivered();
        shared.hand_out_all(delivered.outputs, &delivered.counts, Outputs::Queued);
        done += applied;
        match delivered.error {
            None => {}
            Some(DaemonError::TimedOut | DaemonError::Cancelled) => {
                return positions.get(done).copied().unwrap_or(total);
            }
            Some(e) => {
                tracing::warn!(origin, error = %e, "forwarded event failed");
                done += 1;
            }
        }
    }
    total
}
