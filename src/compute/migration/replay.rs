//! The buffers that carry events across a migration (COMPUTE.md §2.8),
//! fixing §8 items 1–2.
//!
//! **Target: [`ReplayBuffer`].** v0.11 keys pending events by the inbound
//! event's sequence and compares it with the daemon's *output* head, so
//! low sequences are dropped, a gap blocks everything, and two producers
//! with equal sequences overwrite each other. Here pending events are keyed
//! by **(producer origin, sequence)**, with one watermark per producer (the
//! highest sequence applied):
//! - a producer's events are applied in ascending sequence order, each
//!   exactly once; an event at or below its producer's watermark (or
//!   already pending) is dropped and counted as a duplicate;
//! - a gap holds back only that producer; [`ReplayBuffer::gaps`] reports
//!   it; at most `max_pending` events are held (beyond: [`ReplayError::Full`],
//!   and the event is not taken);
//! - across producers, ready events are applied in arrival order;
//! - [`ReplayBuffer::drain`] keeps the §2.8 contract: on the first failing
//!   `process` the failed event and everything after it stay pending, the
//!   error is returned, and the next drain resumes exactly at the failed
//!   event (5 events, the 3rd fails → error, 2 applied, 3 calls; retry →
//!   5 applied, six calls in all).
//!
//! Watermarks come from the snapshot's applied list when the source is a
//! Net node ([`crate::compute::NetSnapshotExt::applied`]; not the observed
//! horizon, which also counts events whose `process` failed). A v0.11 source sends no
//! horizon, so a producer without a watermark is either expected to start
//! at sequence 1 ([`UnknownProducers::FromGenesis`]) or anchored at the
//! lowest sequence pending for it when a drain starts
//! ([`UnknownProducers::AdoptLowest`]). Sequence 0 is a chain's genesis
//! link, never an event: it is always treated as a duplicate.
//!
//! **Source: [`SourceBuffer`].** v0.11 never wires buffering into delivery,
//! so events delivered to the source after its snapshot are lost. The
//! source's delivery path asks [`SourceBuffer::capture`] first: with no
//! migration the event is processed locally; between snapshot and cut-over
//! it is kept (the snapshot no longer reflects it, so processing it locally
//! would fork the state); after cut-over it is handed back to be forwarded
//! to the target, never dropped. An abort hands the kept events back, in
//! order, to be processed locally.

use std::collections::{BTreeMap, HashMap};

use crate::compute::daemon::CausalEvent;

/// Default bound on events a [`ReplayBuffer`] or [`SourceBuffer`] holds
/// (the most one BufferedEvents message may carry).
pub const DEFAULT_MAX_PENDING: usize = 1_000_000;

/// Why an event was not taken by a buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The buffer already holds its maximum; the event was not taken.
    /// Abort the migration (or drain first).
    #[error("buffer full: {0} events held")]
    Full(usize),
    /// [`SourceBuffer::begin`] while a migration is already capturing or
    /// cut over.
    #[error("the source buffer is already in a migration")]
    AlreadyMigrating,
    /// [`SourceBuffer::cutover`] without a migration in progress.
    #[error("the source buffer is not capturing")]
    NotCapturing,
}

/// A drain stopped at a failing `process` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainError<E> {
    /// Events applied by this drain before the failure.
    pub applied: usize,
    /// The failed event's producer (it is still pending).
    pub producer: u64,
    /// The failed event's sequence.
    pub sequence: u64,
    /// What `process` returned.
    pub error: E,
}

/// What a successful drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrainReport {
    /// Events applied.
    pub applied: usize,
    /// Events still held behind gaps.
    pub held: usize,
}

/// A producer whose next event has not arrived while later ones have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayGap {
    /// The producer.
    pub producer: u64,
    /// The sequence the buffer waits for.
    pub expected: u64,
    /// The lowest sequence it holds.
    pub lowest_held: u64,
    /// How many events of the producer it holds.
    pub held: usize,
}

/// How a [`ReplayBuffer`] treats a producer with no watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownProducers {
    /// Its chain starts at sequence 1 (watermark 0). Right when the
    /// watermarks are the source's full observed horizon.
    #[default]
    FromGenesis,
    /// Its first event is the lowest one pending when a drain starts. For
    /// v0.11 sources, which send no horizon.
    AdoptLowest,
}

/// What [`ReplayBuffer::insert`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Held until its turn.
    Queued,
    /// Already applied or already pending; dropped.
    Duplicate,
}

#[derive(Debug)]
struct Pending {
    arrival: u64,
    event: CausalEvent,
}

/// The target's replay buffer: see the module doc.
#[derive(Debug)]
pub struct ReplayBuffer {
    watermarks: HashMap<u64, u64>,
    pending: BTreeMap<(u64, u64), Pending>,
    unknown: UnknownProducers,
    max_pending: usize,
    next_arrival: u64,
    duplicates: u64,
    applied: u64,
}

impl ReplayBuffer {
    /// A buffer starting from `watermarks` (producer → highest sequence
    /// already applied by the restored state).
    pub fn new(
        watermarks: impl IntoIterator<Item = (u64, u64)>,
        unknown: UnknownProducers,
    ) -> Self {
        Self::with_max_pending(watermarks, unknown, DEFAULT_MAX_PENDING)
    }

    /// [`new`](Self::new) holding at most `max_pending` events.
    pub fn with_max_pending(
        watermarks: impl IntoIterator<Item = (u64, u64)>,
        unknown: UnknownProducers,
        max_pending: usize,
    ) -> Self {
        Self {
            watermarks: watermarks.into_iter().collect(),
            pending: BTreeMap::new(),
            unknown,
            max_pending,
            next_arrival: 0,
            duplicates: 0,
            applied: 0,
        }
    }

    /// Takes an event for later replay.
    ///
    /// # Errors
    /// [`ReplayError::Full`] if `max_pending` events are already held.
    pub fn insert(&mut self, event: CausalEvent) -> Result<InsertOutcome, ReplayError> {
        let key = (event.producer(), event.sequence());
        let applied = self.watermark(key.0).is_some_and(|w| key.1 <= w);
        if key.1 == 0 || applied || self.pending.contains_key(&key) {
            self.duplicates += 1;
            return Ok(InsertOutcome::Duplicate);
        }
        if self.pending.len() >= self.max_pending {
            return Err(ReplayError::Full(self.pending.len()));
        }
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.pending.insert(key, Pending { arrival, event });
        Ok(InsertOutcome::Queued)
    }

    /// Takes a batch (a BufferedEvents message) in order; stops at the
    /// first event that does not fit.
    ///
    /// # Errors
    /// [`ReplayError::Full`]; the events before it were taken.
    pub fn insert_all(
        &mut self,
        events: impl IntoIterator<Item = CausalEvent>,
    ) -> Result<(), ReplayError> {
        events
            .into_iter()
            .try_for_each(|e| self.insert(e).map(drop))
    }

    /// Applies every event whose turn has come, in order, through
    /// `process`. Stops at the first failure, which keeps the failed event
    /// and all later ones pending (see the module doc).
    ///
    /// # Errors
    /// [`DrainError`] naming the failed event.
    pub fn drain<E>(
        &mut self,
        mut process: impl FnMut(&CausalEvent) -> Result<(), E>,
    ) -> Result<DrainReport, DrainError<E>> {
        if self.unknown == UnknownProducers::AdoptLowest {
            self.adopt_unknown_producers();
        }
        // Ready heads by arrival: each producer's next expected event, if held.
        let mut ready: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for producer in self.pending_producers() {
            self.push_ready(&mut ready, producer);
        }
        let mut applied = 0;
        while let Some((&arrival, &key)) = ready.iter().next() {
            let event = &self.pending[&key].event;
            if let Err(error) = process(event) {
                return Err(DrainError {
                    applied,
                    producer: key.0,
                    sequence: key.1,
                    error,
                });
            }
            ready.remove(&arrival);
            self.pending.remove(&key);
            self.watermarks.insert(key.0, key.1);
            self.applied += 1;
            applied += 1;
            self.push_ready(&mut ready, key.0);
        }
        Ok(DrainReport {
            applied,
            held: self.pending.len(),
        })
    }

    /// [`drain`](Self::drain) in batches: the events whose turn has come
    /// are handed to `process` up to `max` at a time, in the order `drain`
    /// would apply them; `process` answers how many of them it applied and,
    /// when not all, the error of the next one. The applied ones are
    /// committed; the failed one and every later one stay pending, as
    /// after a failed `drain`. (A daemon reached through a queue pays one
    /// round trip per batch instead of one per event.)
    ///
    /// # Errors
    /// [`DrainError`] naming the failed event.
    pub fn drain_batched<E>(
        &mut self,
        max: usize,
        mut process: impl FnMut(&[CausalEvent]) -> (usize, Result<(), E>),
    ) -> Result<DrainReport, DrainError<E>> {
        if self.unknown == UnknownProducers::AdoptLowest {
            self.adopt_unknown_producers();
        }
        let max = max.max(1);
        let mut applied = 0;
        loop {
            // Taken out in drain order, watermarks advanced as if applied;
            // each producer's watermark before its first taken event is
            // kept to put back what `process` does not apply.
            let mut ready: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
            for producer in self.pending_producers() {
                self.push_ready(&mut ready, producer);
            }
            let mut events = Vec::new();
            let mut taken: Vec<(u64, (u64, u64))> = Vec::new();
            let mut before: HashMap<u64, Option<u64>> = HashMap::new();
            while events.len() < max {
                let Some((&arrival, &key)) = ready.iter().next() else {
                    break;
                };
                ready.remove(&arrival);
                let pending = self.pending.remove(&key).expect("ready events are pending");
                before
                    .entry(key.0)
                    .or_insert_with(|| self.watermarks.get(&key.0).copied());
                self.watermarks.insert(key.0, key.1);
                events.push(pending.event);
                taken.push((arrival, key));
                self.push_ready(&mut ready, key.0);
            }
            if events.is_empty() {
                return Ok(DrainReport {
                    applied,
                    held: self.pending.len(),
                });
            }
            let full = events.len() == max;
            let (done, result) = process(&events);
            let done = done.min(events.len());
            applied += done;
            self.applied += done as u64;
            if done == events.len() && result.is_ok() {
                if !full {
                    return Ok(DrainReport {
                        applied,
                        held: self.pending.len(),
                    });
                }
                continue;
            }
            // Put back what was not applied: the events, and each of their
            // producers' watermark as it stood after its last applied event.
            let failed = taken[done].1;
            let rest: Vec<_> = taken.drain(done..).zip(events.drain(done..)).collect();
            for &(_, (producer, _)) in rest.iter().map(|(t, _)| t) {
                let last_applied = taken
                    .iter()
                    .rev()
                    .find(|(_, (p, _))| *p == producer)
                    .map(|(_, (_, sequence))| *sequence);
                match last_applied.or(before[&producer]) {
                    Some(watermark) => self.watermarks.insert(producer, watermark),
                    None => self.watermarks.remove(&producer),
                };
            }
            for ((arrival, key), event) in rest {
                self.pending.insert(key, Pending { arrival, event });
            }
            let error = match result {
                Err(error) => error,
                // Fewer applied without an error: nothing more this drain.
                Ok(()) => {
                    return Ok(DrainReport {
                        applied,
                        held: self.pending.len(),
                    });
                }
            };
            return Err(DrainError {
                applied,
                producer: failed.0,
                sequence: failed.1,
                error,
            });
        }
    }

    /// The highest sequence applied for `producer` (`None`: unknown
    /// producer under [`UnknownProducers::AdoptLowest`]).
    pub fn watermark(&self, producer: u64) -> Option<u64> {
        match (self.watermarks.get(&producer), self.unknown) {
            (Some(&w), _) => Some(w),
            (None, UnknownProducers::FromGenesis) => Some(0),
            (None, _) => None,
        }
    }

    /// Every producer's watermark, ascending by producer (the horizon a
    /// snapshot of the target should carry).
    pub fn watermarks(&self) -> Vec<(u64, u64)> {
        let mut all: Vec<_> = self.watermarks.iter().map(|(&p, &s)| (p, s)).collect();
        all.sort_unstable();
        all
    }

    /// Producers held back by a missing event.
    pub fn gaps(&self) -> Vec<ReplayGap> {
        self.pending_producers()
            .into_iter()
            .filter_map(|producer| {
                let expected = self.watermark(producer)?.checked_add(1)?;
                let mut held = self.pending.range((producer, 0)..=(producer, u64::MAX));
                let (&(_, lowest_held), _) = held.next()?;
                (lowest_held != expected).then(|| ReplayGap {
                    producer,
                    expected,
                    lowest_held,
                    held: 1 + held.count(),
                })
            })
            .collect()
    }

    /// Events held (waiting for their turn or behind a failure).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Events dropped as duplicates so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Events applied so far.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    fn pending_producers(&self) -> Vec<u64> {
        let mut producers = Vec::new();
        let mut from = Some(0u64);
        while let Some(start) = from {
            let Some((&(producer, _), _)) = self.pending.range((start, 0)..).next() else {
                break;
            };
            producers.push(producer);
            from = producer.checked_add(1);
        }
        producers
    }

    fn adopt_unknown_producers(&mut self) {
        for producer in self.pending_producers() {
            if self.watermarks.contains_key(&producer) {
                continue;
            }
            if let Some((&(_, lowest), _)) = self.pending.range((producer, 0)..).next() {
                // `lowest` ≥ 1: sequence 0 is never queued.
                self.watermarks.insert(producer, lowest - 1);
            }
        }
    }

    fn push_ready(&self, ready: &mut BTreeMap<u64, (u64, u64)>, producer: u64) {
        let Some(next) = self.watermark(producer).and_then(|w| w.checked_add(1)) else {
            return;
        };
        if let Some(p) = self.pending.get(&(producer, next)) {
            ready.insert(p.arrival, (producer, next));
        }
    }
}

/// Where the source's delivery path must send an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum CaptureOutcome {
    /// No migration: process it locally, as usual.
    Deliver(CausalEvent),
    /// Kept for the target (between snapshot and cut-over).
    Buffered,
    /// The daemon has cut over: forward it to the target.
    Forward(CausalEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourcePhase {
    Idle,
    Capturing,
    CutOver,
}

/// The source's capture of events delivered during a migration: see the
/// module doc.
#[derive(Debug)]
pub struct SourceBuffer {
    phase: SourcePhase,
    events: Vec<CausalEvent>,
    max_events: usize,
}

impl Default for SourceBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl SourceBuffer {
    /// An idle buffer holding at most [`DEFAULT_MAX_PENDING`] events.
    pub fn new() -> Self {
        Self::with_max_events(DEFAULT_MAX_PENDING)
    }

    /// An idle buffer holding at most `max_events`.
    pub fn with_max_events(max_events: usize) -> Self {
        Self {
            phase: SourcePhase::Idle,
            events: Vec::new(),
            max_events,
        }
    }

    /// Starts capturing; call it under the daemon's lock together with the
    /// snapshot, so no event falls between the two.
    ///
    /// # Errors
    /// [`ReplayError::AlreadyMigrating`].
    pub fn begin(&mut self) -> Result<(), ReplayError> {
        if self.phase != SourcePhase::Idle {
            return Err(ReplayError::AlreadyMigrating);
        }
        self.phase = SourcePhase::Capturing;
        Ok(())
    }

    /// Routes one delivered event.
    ///
    /// # Errors
    /// [`ReplayError::Full`] while capturing with the buffer full (the
    /// event is not taken; abort the migration).
    pub fn capture(&mut self, event: CausalEvent) -> Result<CaptureOutcome, ReplayError> {
        match self.phase {
            SourcePhase::Idle => Ok(CaptureOutcome::Deliver(event)),
            SourcePhase::CutOver => Ok(CaptureOutcome::Forward(event)),
            SourcePhase::Capturing if self.events.len() >= self.max_events => {
                Err(ReplayError::Full(self.events.len()))
            }
            SourcePhase::Capturing => {
                self.events.push(event);
                Ok(CaptureOutcome::Buffered)
            }
        }
    }

    /// Takes the events captured so far, in order (to send a
    /// BufferedEvents batch before cut-over); capture continues.
    pub fn take_batch(&mut self) -> Vec<CausalEvent> {
        std::mem::take(&mut self.events)
    }

    /// Cuts over: returns the remaining captured events, in order; later
    /// events are [`CaptureOutcome::Forward`].
    ///
    /// # Errors
    /// [`ReplayError::NotCapturing`] if no migration was begun. A repeated
    /// cut-over returns an empty batch.
    pub fn cutover(&mut self) -> Result<Vec<CausalEvent>, ReplayError> {
        match self.phase {
            SourcePhase::Idle => Err(ReplayError::NotCapturing),
            _ => {
                self.phase = SourcePhase::CutOver;
                Ok(self.take_batch())
            }
        }
    }

    /// Abandons the migration before cut-over: returns the captured events,
    /// in order, for local processing, and goes back to idle. After
    /// cut-over the daemon lives on the target, so abort changes nothing
    /// and returns no events.
    pub fn abort(&mut self) -> Vec<CausalEvent> {
        match self.phase {
            SourcePhase::CutOver => Vec::new(),
            _ => {
                self.phase = SourcePhase::Idle;
                self.take_batch()
            }
        }
    }

    /// Whether events are being captured.
    pub fn is_capturing(&self) -> bool {
        self.phase == SourcePhase::Capturing
    }

    /// Whether the daemon has cut over.
    pub fn is_cut_over(&self) -> bool {
        self.phase == SourcePhase::CutOver
    }

    /// Events currently held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no events are held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(producer: u64, seq: u64) -> CausalEvent {
        CausalEvent::bare(producer, seq, vec![producer as u8, seq as u8])
    }

    /// A `process` that always succeeds, collecting what it applies.
    fn record(applied: &mut Vec<CausalEvent>) -> impl FnMut(&CausalEvent) -> Result<(), ()> + '_ {
        |e| {
            applied.push(e.clone());
            Ok(())
        }
    }

    fn keys(applied: &[CausalEvent]) -> Vec<(u64, u64)> {
        applied
            .iter()
            .map(|e| (e.producer(), e.sequence()))
            .collect()
    }

    #[test]
    fn replays_after_the_producer_watermark() {
        let mut buffer = ReplayBuffer::new([(7, 10)], UnknownProducers::FromGenesis);
        buffer.insert_all((9..=13).map(|s| ev(7, s))).unwrap();
        assert_eq!(buffer.duplicates(), 2);
        let mut applied = Vec::new();
        let report = buffer.drain(record(&mut applied)).unwrap();
        assert_eq!(
            report,
            DrainReport {
                applied: 3,
                held: 0
            }
        );
        assert_eq!(keys(&applied), [(7, 11), (7, 12), (7, 13)]);
        assert_eq!(buffer.watermark(7), Some(13));
    }

    #[test]
    fn out_of_order_arrivals_apply_in_order() {
        let mut buffer = ReplayBuffer::new([], UnknownProducers::FromGenesis);
        let mut applied = Vec::new();
        for s in [3, 1, 2] {
            buffer.insert(ev(1, s)).unwrap();
        }
        buffer.drain(record(&mut applied)).unwrap();
        assert_eq!(keys(&applied), [(1, 1), (1, 2), (1, 3)]);
    }

    #[test]
    fn producers_with_equal_sequences_do_not_collide() {
        let mut buffer = ReplayBuffer::new([], UnknownProducers::FromGenesis);
        buffer
            .insert_all([ev(1, 1), ev(2, 1), ev(1, 2), ev(2, 2)])
            .unwrap();
        let mut applied = Vec::new();
        buffer.drain(record(&mut applied)).unwrap();
        // Arrival order across producers, sequence order within each.
        assert_eq!(keys(&applied), [(1, 1), (2, 1), (1, 2), (2, 2)]);
    }

    #[test]
    fn a_gap_holds_back_only_its_producer_and_is_reported() {
        let mut buffer = ReplayBuffer::new([(1, 4)], UnknownProducers::FromGenesis);
        buffer.insert_all([ev(1, 7), ev(1, 6), ev(2, 1)]).unwrap();
        let mut applied = Vec::new();
        let report = buffer.drain(record(&mut applied)).unwrap();
        assert_eq!(keys(&applied), [(2, 1)]);
        assert_eq!(report.held, 2);
        assert_eq!(
            buffer.gaps(),
            [ReplayGap {
                producer: 1,
                expected: 5,
                lowest_held: 6,
                held: 2
            }]
        );
        buffer.insert(ev(1, 5)).unwrap();
        buffer.drain(record(&mut applied)).unwrap();
        assert_eq!(keys(&applied)[1..], [(1, 5), (1, 6), (1, 7)]);
        assert!(buffer.gaps().is_empty());
    }

    #[test]
    fn bounded_and_sequence_zero_is_never_an_event() {
        let mut buffer = ReplayBuffer::with_max_pending([], UnknownProducers::FromGenesis, 2);
        assert_eq!(buffer.insert(ev(1, 0)), Ok(InsertOutcome::Duplicate));
        buffer.insert(ev(1, 5)).unwrap();
        assert_eq!(buffer.insert(ev(1, 5)), Ok(InsertOutcome::Duplicate));
        buffer.insert(ev(1, 6)).unwrap();
        assert_eq!(buffer.insert(ev(1, 7)), Err(ReplayError::Full(2)));
        assert_eq!(buffer.pending_len(), 2);
    }

    #[test]
    fn adopt_lowest_anchors_unknown_producers_at_drain() {
        let mut buffer = ReplayBuffer::new([], UnknownProducers::AdoptLowest);
        assert_eq!(buffer.watermark(3), None);
        buffer.insert_all([ev(3, 58), ev(3, 57)]).unwrap();
        let mut applied = Vec::new();
        buffer.drain(record(&mut applied)).unwrap();
        assert_eq!(keys(&applied), [(3, 57), (3, 58)]);
        assert_eq!(buffer.insert(ev(3, 57)), Ok(InsertOutcome::Duplicate));
        assert_eq!(buffer.watermarks(), [(3, 58)]);
    }

    /// COMPUTE.md §2.8: 5 events, the 3rd `process` fails → error, 2
    /// applied, 3 calls; a retry (as after an empty batch) → 5 applied, six
    /// calls in all.
    #[test]
    fn mid_batch_failure_keeps_the_tail_and_resumes_there() {
        let mut buffer = ReplayBuffer::new([(1, 10)], UnknownProducers::FromGenesis);
        buffer.insert_all((11..=15).map(|s| ev(1, s))).unwrap();
        let mut calls = 0;
        let mut applied = Vec::new();
        let mut fail_once = true;
        let mut process = |e: &CausalEvent| {
            calls += 1;
            if e.sequence() == 13 && std::mem::take(&mut fail_once) {
                return Err("boom");
            }
            applied.push(e.sequence());
            Ok(())
        };
        let err = buffer.drain(&mut process).unwrap_err();
        assert_eq!(
            err,
            DrainError {
                applied: 2,
                producer: 1,
                sequence: 13,
                error: "boom"
            }
        );
        assert_eq!(buffer.watermark(1), Some(12));
        assert_eq!(buffer.pending_len(), 3);
        buffer.insert_all([]).unwrap();
        let report = buffer.drain(&mut process).unwrap();
        assert_eq!(report.applied, 3);
        assert_eq!(calls, 6);
        assert_eq!(applied, [11, 12, 13, 14, 15]);
        assert_eq!(buffer.watermark(1), Some(15));
    }

    #[test]
    fn source_buffer_captures_between_snapshot_and_cutover() {
        let mut source = SourceBuffer::with_max_events(3);
        assert_eq!(
            source.capture(ev(1, 1)),
            Ok(CaptureOutcome::Deliver(ev(1, 1)))
        );
        assert_eq!(source.cutover(), Err(ReplayError::NotCapturing));
        source.begin().unwrap();
        assert_eq!(source.begin(), Err(ReplayError::AlreadyMigrating));
        assert_eq!(source.capture(ev(1, 2)), Ok(CaptureOutcome::Buffered));
        assert_eq!(keys(&source.take_batch()), [(1, 2)]);
        for s in 3..=5 {
            assert_eq!(source.capture(ev(1, s)), Ok(CaptureOutcome::Buffered));
        }
        assert_eq!(source.capture(ev(1, 6)), Err(ReplayError::Full(3)));
        assert_eq!(keys(&source.cutover().unwrap()), [(1, 3), (1, 4), (1, 5)]);
        assert_eq!(
            source.capture(ev(1, 6)),
            Ok(CaptureOutcome::Forward(ev(1, 6)))
        );
        assert!(source.cutover().unwrap().is_empty());
        assert!(source.abort().is_empty());
        assert!(source.is_cut_over());
    }

    #[test]
    fn source_abort_returns_captured_events_for_local_processing() {
        let mut source = SourceBuffer::new();
        source.begin().unwrap();
        let _ = source.capture(ev(1, 1)).unwrap();
        let _ = source.capture(ev(2, 1)).unwrap();
        assert_eq!(keys(&source.abort()), [(1, 1), (2, 1)]);
        assert!(!source.is_capturing());
        assert_eq!(
            source.capture(ev(1, 2)),
            Ok(CaptureOutcome::Deliver(ev(1, 2)))
        );
        source.begin().unwrap();
    }

    /// Several producers, each sending 1..=n, delivered in a random
    /// interleaving with duplicates, in random batches with drains between
    /// them and one failing `process` call: every (producer, sequence) is
    /// applied exactly once, in sequence order per producer.
    fn interleaving() -> impl Strategy<Value = (Vec<(u64, u64)>, Vec<usize>, usize)> {
        prop::collection::vec(1u64..12, 1..5).prop_flat_map(|lens| {
            let mut events: Vec<(u64, u64)> = lens
                .iter()
                .enumerate()
                .flat_map(|(p, &n)| (1..=n).map(move |s| (p as u64 + 100, s)))
                .collect();
            // Duplicates: re-send every third event.
            let dups: Vec<_> = events.iter().copied().step_by(3).collect();
            events.extend(dups);
            let len = events.len();
            (
                Just(events).prop_shuffle(),
                prop::collection::vec(0..=len, 0..6),
                // Past the last call sometimes: no failure at all.
                0..len + 2,
            )
        })
    }

    proptest! {
        #[test]
        fn every_event_applied_exactly_once_in_producer_order(
            (events, cuts, fail_at) in interleaving()
        ) {
            let mut buffer = ReplayBuffer::new([], UnknownProducers::FromGenesis);
            let mut applied: Vec<(u64, u64)> = Vec::new();
            let mut calls = 0usize;
            let mut process = |e: &CausalEvent| {
                calls += 1;
                if calls == fail_at + 1 {
                    return Err(());
                }
                applied.push((e.producer(), e.sequence()));
                Ok(())
            };
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut start = 0;
            for cut in cuts.into_iter().chain([events.len()]) {
                let cut = cut.max(start);
                for &(p, s) in &events[start..cut] {
                    buffer.insert(ev(p, s)).unwrap();
                }
                let _ = buffer.drain(&mut process);
                start = cut;
            }
            buffer.drain(&mut process).unwrap();
            prop_assert_eq!(buffer.pending_len(), 0);
            let mut expected: Vec<(u64, u64)> = events.clone();
            expected.sort_unstable();
            expected.dedup();
            let mut got = applied.clone();
            got.sort_unstable();
            prop_assert_eq!(&got, &expected);
            let mut last: HashMap<u64, u64> = HashMap::new();
            for (p, s) in applied {
                let prev = last.insert(p, s).unwrap_or(0);
                prop_assert_eq!(s, prev + 1);
            }
        }

        /// In batches of any size the drain applies the same events in the
        /// same order, fails at the same event and leaves the same state.
        #[test]
        fn a_batched_drain_is_the_same_drain(
            (events, cuts, fail_at) in interleaving(),
            max in 1usize..9,
        ) {
            let mut one = ReplayBuffer::new([], UnknownProducers::FromGenesis);
            let mut batched = ReplayBuffer::new([], UnknownProducers::FromGenesis);
            let (mut applied_one, mut applied_batched) = (Vec::new(), Vec::new());
            let (mut calls_one, mut calls_batched) = (0usize, 0usize);
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut start = 0;
            for cut in cuts.into_iter().chain([events.len()]) {
                let cut = cut.max(start);
                for &(p, s) in &events[start..cut] {
                    let _ = one.insert(ev(p, s));
                    let _ = batched.insert(ev(p, s));
                }
                let a = one.drain(|e: &CausalEvent| {
                    calls_one += 1;
                    if calls_one == fail_at + 1 {
                        return Err(());
                    }
                    applied_one.push((e.producer(), e.sequence()));
                    Ok(())
                });
                let b = batched.drain_batched(max, |batch: &[CausalEvent]| {
                    for (i, e) in batch.iter().enumerate() {
                        calls_batched += 1;
                        if calls_batched == fail_at + 1 {
                            return (i, Err(()));
                        }
                        applied_batched.push((e.producer(), e.sequence()));
                    }
                    (batch.len(), Ok(()))
                });
                prop_assert_eq!(a, b);
                prop_assert_eq!(&applied_one, &applied_batched);
                prop_assert_eq!(one.pending_len(), batched.pending_len());
                for &(p, _) in &events {
                    prop_assert_eq!(one.watermark(p), batched.watermark(p));
                }
                start = cut;
            }
        }
    }
}
