//! [`DaemonHost`]: one daemon with its keypair, causal chain head, observed
//! horizon, subscription ledger and stats (COMPUTE.md §1.2).
//!
//! `deliver` runs, in order: (1) record the event in the observed horizon
//! — **before** `process`, so a failing event still advances it; (2)
//! `process` (on error: `errors += 1`, return it); (3) `events_processed
//! += 1` and record the event as applied (the per-producer watermark a
//! migration target replays from); (4) compute the horizon bloom once and chain every output
//! (sequence + 1, `parent_hash = xxh3(head link ‖ head payload)`, that
//! bloom, `received_at = now`), `events_emitted += 1` each; (5) return the
//! chained outputs. The host never sends anything. A new host starts at its
//! origin's genesis link, so its first output is sequence 1.
//!
//! Departures from v0.11:
//! - a stateless daemon snapshots an empty state, so it can migrate (§8
//!   item 4), and `snapshots_taken` counts;
//! - [`DaemonHost::take_snapshot_at`] also returns a
//!   [`NetSnapshotExt`] with the head payload, the horizon and the
//!   applied watermarks, and
//!   [`DaemonHost::from_snapshot`] uses it, so the chain continues across a
//!   migration with a verifiable `parent_hash` and replay watermarks
//!   survive (§8 item 5). Without it (a v0.11 source) a non-genesis head
//!   payload falls back to the state bytes, as v0.11 does, and the horizon
//!   and watermarks start empty;
//! - [`DaemonHost::restore_from_snapshot`] of **another** entity's snapshot
//!   (standby sync) takes the state, horizon and ledger but keeps the
//!   host's own chain, instead of adopting the other origin's chain (§8
//!   item 8); a snapshot of the host's own entity also moves its head;
//! - the chain keeps only its head and head payload (not every event), and
//!   a sequence overflow is checked before anything is appended;
//! - v0.11's inert `DaemonHostConfig` (two fields never read) is dropped.

use std::collections::BTreeMap;

use crate::compute::daemon::{
    AppliedOutputs, BatchWait, CausalEvent, DaemonError, MeshDaemon, Outputs,
};
use crate::compute::foreign::WorkReply;
use crate::compute::ledger::SubscriptionLedger;
use crate::compute::snapshot::{NetSnapshotExt, StateSnapshot};
use crate::cortex::causal::{CausalLink, Horizon};
use crate::identity::{EntityId, EntityKeypair};

/// What [`DaemonHost::deliver_batch_at`] did: the chained outputs of the
/// delivered events (a prefix of the batch), in order, in one list, how
/// many of them each event produced, and the error of the next event if
/// the batch stopped early.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchDelivered {
    /// The chained outputs of every delivered event, in order.
    pub outputs: Vec<CausalEvent>,
    /// Per delivered event, how many of `outputs` are its (in order).
    pub counts: Vec<usize>,
    /// Why event `counts.len()` was not delivered; `None` when all were.
    pub error: Option<DaemonError>,
}

impl BatchDelivered {
    /// How many events were delivered.
    pub fn delivered(&self) -> usize {
        self.counts.len()
    }

    /// Each delivered event's chained outputs, in order.
    pub fn per_event(&self) -> impl Iterator<Item = &[CausalEvent]> {
        split_counts(&self.outputs, self.counts.iter().copied())
    }
}

/// `items` cut into consecutive runs of `counts[i]` items (the runs of a
/// batch's flat output list).
pub(crate) fn split_counts<'a, T>(
    items: &'a [T],
    counts: impl IntoIterator<Item = usize> + 'a,
) -> impl Iterator<Item = &'a [T]> {
    let mut start = 0;
    counts.into_iter().map(move |n| {
        let end = (start + n).min(items.len());
        let run = &items[start.min(end)..end];
        start = end;
        run
    })
}

/// Per producer origin, the highest sequence a daemon has seen.
#[derive(Debug, Clone, Default)]
pub struct ObservedHorizon {
    /// Every origin seen; the entry of `last`'s origin may lag behind it.
    seen: BTreeMap<u64, u64>,
    /// The bloom of `seen`'s origins, kept as they arrive (every output
    /// link carries it).
    bloom: Horizon,
    /// The origin observed last and its highest sequence: a run of one
    /// producer's events (the usual case) updates only this, not the map.
    last: Option<(u64, u64)>,
}

impl ObservedHorizon {
    /// The empty horizon.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `origin`'s event `sequence` was seen (keeps the max).
    pub fn observe(&mut self, origin: u64, sequence: u64) {
        if let Some((last, highest)) = &mut self.last
            && *last == origin
        {
            *highest = (*highest).max(sequence);
            return;
        }
        self.settle();
        let highest = match self.seen.entry(origin) {
            std::collections::btree_map::Entry::Occupied(mut seen) => {
                let highest = seen.get_mut();
                *highest = (*highest).max(sequence);
                *highest
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(sequence);
                self.bloom.observe(origin);
                sequence
            }
        };
        self.last = Some((origin, highest));
    }

    /// Writes `last` back into the map.
    fn settle(&mut self) {
        if let Some((origin, highest)) = self.last
            && let Some(seen) = self.seen.get_mut(&origin)
        {
            *seen = highest;
        }
    }

    /// The highest sequence seen from `origin`.
    pub fn get(&self, origin: u64) -> Option<u64> {
        match self.last {
            Some((last, highest)) if last == origin => Some(highest),
            _ => self.seen.get(&origin).copied(),
        }
    }

    /// (origin, highest sequence) pairs, ascending by origin.
    pub fn entries(&self) -> Vec<(u64, u64)> {
        self.seen
            .keys()
            .map(|&origin| (origin, self.get(origin).unwrap_or_default()))
            .collect()
    }

    /// The bloom of every origin seen (STORAGE.md §16), as links carry it.
    pub fn bloom(&self) -> Horizon {
        self.bloom
    }

    /// Origins seen.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

impl PartialEq for ObservedHorizon {
    fn eq(&self, other: &Self) -> bool {
        self.bloom == other.bloom && self.entries() == other.entries()
    }
}

impl Eq for ObservedHorizon {}

impl FromIterator<(u64, u64)> for ObservedHorizon {
    fn from_iter<I: IntoIterator<Item = (u64, u64)>>(iter: I) -> Self {
        let mut horizon = Self::new();
        iter.into_iter().for_each(|(o, s)| horizon.observe(o, s));
        horizon
    }
}

/// A host's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DaemonStats {
    /// Events `process` accepted.
    pub events_processed: u64,
    /// Outputs chained.
    pub events_emitted: u64,
    /// Events `process` rejected.
    pub errors: u64,
    /// Snapshots taken.
    pub snapshots_taken: u64,
}

/// A snapshot as a host takes it: the v0.11 record, and the Net extension
/// that only goes to Net peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSnapshot {
    /// The v0.11 `CDS1` record (no envelope; the migration seals one).
    pub snapshot: StateSnapshot,
    /// The head payload, observed horizon and applied watermarks.
    pub ext: NetSnapshotExt,
}

/// One daemon and everything Net keeps about it; see the module doc.
pub struct DaemonHost {
    daemon: Box<dyn MeshDaemon>,
    keypair: EntityKeypair,
    head: CausalLink,
    head_payload: Vec<u8>,
    horizon: ObservedHorizon,
    applied: ObservedHorizon,
    ledger: SubscriptionLedger,
    stats: DaemonStats,
}

/// A host's bookkeeping of applied events, borrowed apart from its daemon
/// ([`DaemonHost::split`]).
struct Books<'a> {
    keypair: &'a EntityKeypair,
    head: &'a mut CausalLink,
    head_payload: &'a mut Vec<u8>,
    horizon: &'a mut ObservedHorizon,
    applied: &'a mut ObservedHorizon,
    stats: &'a mut DaemonStats,
}

impl Books<'_> {
    /// The bookkeeping of an applied event: stats, applied watermark, and
    /// its outputs chained onto `chained`; how many.
    fn record_applied(
        &mut self,
        event: &CausalEvent,
        outputs: &mut Outputs<'_>,
        now_ns: u64,
        chained: &mut Vec<CausalEvent>,
    ) -> Result<usize, DaemonError> {
        self.stats.events_processed += 1;
        self.applied.observe(event.producer(), event.sequence());
        let fits = u64::try_from(outputs.len())
            .ok()
            .and_then(|n| self.head.sequence.checked_add(n))
            .is_some();
        if !fits {
            return Err(DaemonError::SequenceOverflow(self.keypair.origin_hash()));
        }
        let bloom = self.horizon.bloom().0;
        let count = outputs.len();
        chained.reserve(count);
        for payload in outputs {
            *self.head = self.head.next(self.head_payload, bloom);
            self.head_payload.clone_from(&payload);
            self.stats.events_emitted += 1;
            chained.push(CausalEvent {
                link: *self.head,
                payload,
                received_at: now_ns,
            });
        }
        Ok(count)
    }
}

impl std::fmt::Debug for DaemonHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonHost")
            .field("name", &self.daemon.name())
            .field("origin_hash", &format_args!("{:#018x}", self.origin_hash()))
            .field("head", &self.head)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl DaemonHost {
    /// A host at its origin's genesis link.
    pub fn new(daemon: Box<dyn MeshDaemon>, keypair: EntityKeypair) -> Self {
        let head = CausalLink::genesis(keypair.origin_hash());
        Self {
            daemon,
            keypair,
            head,
            head_payload: Vec::new(),
            horizon: ObservedHorizon::new(),
            applied: ObservedHorizon::new(),
            ledger: SubscriptionLedger::new(),
            stats: DaemonStats::default(),
        }
    }

    /// Rebuilds a host from a snapshot (a migration target, or a restart).
    /// `ext`, when the source sent one, restores the head payload and the
    /// horizon.
    ///
    /// # Errors
    /// [`DaemonError::RestoreFailed`] if the snapshot is another entity's
    /// (full 32-byte comparison), `ext` belongs to another snapshot, the
    /// ledger bytes are malformed; or the daemon's own `restore` error.
    pub fn from_snapshot(
        daemon: Box<dyn MeshDaemon>,
        keypair: EntityKeypair,
        snapshot: &StateSnapshot,
        ext: Option<&NetSnapshotExt>,
    ) -> Result<Self, DaemonError> {
        Self::restored(daemon, keypair, snapshot, ext, |daemon| {
            daemon.restore(&snapshot.state)
        })
    }

    /// [`from_snapshot`](Self::from_snapshot) of a snapshot the caller
    /// gives up: the state goes to the daemon's
    /// [`restore_owned`](MeshDaemon::restore_owned), not copied.
    ///
    /// # Errors
    /// As [`from_snapshot`](Self::from_snapshot).
    pub fn from_owned_snapshot(
        daemon: Box<dyn MeshDaemon>,
        keypair: EntityKeypair,
        mut snapshot: StateSnapshot,
        ext: Option<&NetSnapshotExt>,
    ) -> Result<Self, DaemonError> {
        if ext.is_none() && snapshot.through_seq != 0 {
            // A v0.11 source's chain continues from the state bytes
            // (`head_payload_of`): they are needed twice.
            return Self::from_snapshot(daemon, keypair, &snapshot, ext);
        }
        let state = std::mem::take(&mut snapshot.state);
        Self::restored(daemon, keypair, &snapshot, ext, |daemon| {
            daemon.restore_owned(state)
        })
    }

    /// A host for `daemon` after `restore` gave it `snapshot`'s state.
    fn restored(
        mut daemon: Box<dyn MeshDaemon>,
        keypair: EntityKeypair,
        snapshot: &StateSnapshot,
        ext: Option<&NetSnapshotExt>,
        restore: impl FnOnce(&mut dyn MeshDaemon) -> Result<(), DaemonError>,
    ) -> Result<Self, DaemonError> {
        if &snapshot.entity_id != keypair.entity_id() {
            return Err(DaemonError::RestoreFailed(format!(
                "snapshot is of entity {} but the keypair is {}",
                snapshot.entity_id,
                keypair.entity_id()
            )));
        }
        let (ledger, horizon, applied) = Self::checked_parts(snapshot, ext)?;
        restore(daemon.as_mut())?;
        Ok(Self {
            daemon,
            keypair,
            head: snapshot.chain_link,
            head_payload: head_payload_of(snapshot, ext),
            horizon,
            applied,
            ledger,
            stats: DaemonStats::default(),
        })
    }

    /// Restores a snapshot in place (standby sync). The daemon's state,
    /// horizon and ledger become the snapshot's; the chain head moves to
    /// the snapshot's only if it is this host's own entity. The keypair and
    /// stats are kept.
    ///
    /// # Errors
    /// [`DaemonError::RestoreFailed`] for a mismatched `ext` or malformed
    /// ledger (nothing changed), or the daemon's `restore` error (the
    /// daemon is as its `restore` left it; nothing else changed).
    pub fn restore_from_snapshot(
        &mut self,
        snapshot: &StateSnapshot,
        ext: Option<&NetSnapshotExt>,
    ) -> Result<(), DaemonError> {
        let (ledger, horizon, applied) = Self::checked_parts(snapshot, ext)?;
        self.daemon.restore(&snapshot.state)?;
        if &snapshot.entity_id == self.keypair.entity_id() {
            self.head = snapshot.chain_link;
            self.head_payload = head_payload_of(snapshot, ext);
        }
        self.horizon = horizon;
        self.applied = applied;
        self.ledger = ledger;
        Ok(())
    }

    fn checked_parts(
        snapshot: &StateSnapshot,
        ext: Option<&NetSnapshotExt>,
    ) -> Result<(SubscriptionLedger, ObservedHorizon, ObservedHorizon), DaemonError> {
        if let Some(ext) = ext {
            ext.check_binds(snapshot)
                .map_err(|e| DaemonError::RestoreFailed(e.to_string()))?;
        }
        let ledger = SubscriptionLedger::from_bytes(&snapshot.bindings)
            .map_err(|e| DaemonError::RestoreFailed(e.to_string()))?;
        let (horizon, applied) = ext.map_or_else(Default::default, |ext| {
            (
                ext.horizon.iter().copied().collect(),
                ext.applied.iter().copied().collect(),
            )
        });
        Ok((ledger, horizon, applied))
    }

    /// Delivers an event received at `now_ns` (ns since the UNIX epoch) and
    /// returns the daemon's outputs, chained. See the module doc for the
    /// order of effects.
    ///
    /// # Errors
    /// The daemon's `process` error (the horizon still recorded the
    /// event); [`DaemonError::SequenceOverflow`] if the outputs would pass
    /// sequence 2^64−1 (the event was processed; nothing was chained).
    pub fn deliver_at(
        &mut self,
        event: &CausalEvent,
        now_ns: u64,
    ) -> Result<Vec<CausalEvent>, DaemonError> {
        self.deliver_then_stamp(event, || now_ns)
    }

    /// [`deliver_at`](Self::deliver_at), asking `now_ns` for the time only
    /// when there are outputs to stamp.
    fn deliver_then_stamp(
        &mut self,
        event: &CausalEvent,
        now_ns: impl FnOnce() -> u64,
    ) -> Result<Vec<CausalEvent>, DaemonError> {
        let (daemon, mut books) = self.split();
        books.horizon.observe(event.producer(), event.sequence());
        let outputs = match daemon.process(event) {
            Ok(outputs) => outputs,
            Err(e) => {
                books.stats.errors += 1;
                return Err(e);
            }
        };
        let now = if outputs.is_empty() { 0 } else { now_ns() };
        let mut chained = Vec::with_capacity(outputs.len());
        books.record_applied(event, &mut outputs.into_iter(), now, &mut chained)?;
        Ok(chained)
    }

    /// Delivers `events` in order through one
    /// [`MeshDaemon::process_batch`] call, with exactly the effects of
    /// [`deliver_at`](Self::deliver_at) on each event up to the first
    /// failure: per event, the horizon, then the stats, the applied
    /// watermark and the chained outputs (each event's outputs chained with
    /// the horizon as it stood after that event), recorded as the daemon
    /// hands them over. The failing event counts as an error and advances
    /// the horizon, as a single failed delivery does; events after it are
    /// not delivered. A batch the daemon never took up
    /// ([`DaemonError::TimedOut`], [`DaemonError::Cancelled`]) records
    /// nothing.
    pub fn deliver_batch_at(
        &mut self,
        events: &[CausalEvent],
        wait: &BatchWait,
        now_ns: u64,
    ) -> BatchDelivered {
        self.record_batch_at(events, now_ns, |daemon, applied| {
            daemon.process_batch(events, wait, applied)
        })
    }

    /// The bookkeeping of [`deliver_batch_at`](Self::deliver_batch_at)
    /// around a batch its daemon's SDK applied on its own thread (a
    /// lent batch: `runtime::lend`), `answer` being what the SDK says it
    /// did (it fits `events`: [`WorkReply::fits_batch`]).
    pub(crate) fn record_lent_batch_at(
        &mut self,
        events: &[CausalEvent],
        answer: WorkReply,
        now_ns: u64,
    ) -> BatchDelivered {
        self.record_batch_at(events, now_ns, |daemon, applied| {
            match daemon.as_foreign() {
                Some(foreign) => foreign.take_batch_answer(answer, applied),
                None => Err(DaemonError::ProcessFailed(
                    "a lent batch for a daemon that is not an SDK's".to_owned(),
                )),
            }
        })
    }

    /// Runs a batch through `run` (the daemon and the outputs' recorder),
    /// recording each applied event as [`deliver_batch_at`] says.
    ///
    /// [`deliver_batch_at`]: Self::deliver_batch_at
    fn record_batch_at(
        &mut self,
        events: &[CausalEvent],
        now_ns: u64,
        run: impl FnOnce(&mut dyn MeshDaemon, &mut AppliedOutputs<'_>) -> Result<(), DaemonError>,
    ) -> BatchDelivered {
        let mut delivered = BatchDelivered {
            // One list for the whole batch: no allocation per event.
            outputs: Vec::with_capacity(events.len()),
            counts: Vec::with_capacity(events.len()),
            error: None,
        };
        let (daemon, mut books) = self.split();
        let mut refused = None;
        let mut record = |outputs: &mut Outputs<'_>| {
            // A daemon handing over more than the batch: not recorded.
            let Some(event) = events.get(delivered.counts.len()) else {
                return false;
            };
            books.horizon.observe(event.producer(), event.sequence());
            match books.record_applied(event, outputs, now_ns, &mut delivered.outputs) {
                Ok(count) => {
                    delivered.counts.push(count);
                    true
                }
                Err(e) => {
                    refused = Some(e);
                    false
                }
            }
        };
        let result = run(daemon, &mut AppliedOutputs::new(&mut record));
        if refused.is_some() {
            delivered.error = refused;
            return delivered;
        }
        if let Err(e) = result {
            let untaken = matches!(e, DaemonError::TimedOut | DaemonError::Cancelled);
            if !untaken || !delivered.counts.is_empty() {
                if let Some(event) = events.get(delivered.counts.len()) {
                    books.horizon.observe(event.producer(), event.sequence());
                }
                books.stats.errors += 1;
            }
            delivered.error = Some(e);
        }
        delivered
    }

    /// The daemon and, borrowed apart from it, the bookkeeping of its
    /// events (so a batch can record each event as the daemon hands it
    /// over).
    fn split(&mut self) -> (&mut dyn MeshDaemon, Books<'_>) {
        (
            self.daemon.as_mut(),
            Books {
                keypair: &self.keypair,
                head: &mut self.head,
                head_payload: &mut self.head_payload,
                horizon: &mut self.horizon,
                applied: &mut self.applied,
                stats: &mut self.stats,
            },
        )
    }

    /// [`deliver_at`](Self::deliver_at) with the current time.
    ///
    /// # Errors
    /// As [`deliver_at`](Self::deliver_at).
    pub fn deliver(&mut self, event: &CausalEvent) -> Result<Vec<CausalEvent>, DaemonError> {
        // No clock read for a daemon that emitted nothing.
        self.deliver_then_stamp(event, crate::redex::now_ns)
    }

    /// Snapshots the daemon at its chain head, taken at `now_ns`. Stateless
    /// daemons snapshot an empty state.
    ///
    /// # Errors
    /// The daemon's [`DaemonError::SnapshotFailed`]; or
    /// [`DaemonError::SnapshotFailed`] if the ledger cannot be encoded.
    pub fn take_snapshot_at(&mut self, now_ns: u64) -> Result<DaemonSnapshot, DaemonError> {
        let state = self.daemon.snapshot()?;
        self.snapshot_with(state, now_ns)
    }

    /// A snapshot to send: as [`take_snapshot_at`](Self::take_snapshot_at),
    /// except that a daemon that knows its state's length
    /// ([`MeshDaemon::snapshot_len`]) is not asked for the state: it is
    /// left empty and the length returned, for the caller to have the
    /// daemon write it ([`MeshDaemon::snapshot_into`], through
    /// [`daemon`](Self::daemon)) while it still holds the host.
    ///
    /// # Errors
    /// As [`take_snapshot_at`](Self::take_snapshot_at).
    pub fn snapshot_for_transfer_at(
        &mut self,
        now_ns: u64,
    ) -> Result<(DaemonSnapshot, Option<usize>), DaemonError> {
        match self.daemon.snapshot_len() {
            Some(len) => Ok((self.snapshot_with(Vec::new(), now_ns)?, Some(len))),
            None => Ok((self.take_snapshot_at(now_ns)?, None)),
        }
    }

    fn snapshot_with(
        &mut self,
        state: Vec<u8>,
        now_ns: u64,
    ) -> Result<DaemonSnapshot, DaemonError> {
        let bindings = self
            .ledger
            .to_bytes()
            .map_err(|e| DaemonError::SnapshotFailed(e.to_string()))?;
        self.stats.snapshots_taken += 1;
        Ok(DaemonSnapshot {
            snapshot: StateSnapshot {
                entity_id: *self.keypair.entity_id(),
                through_seq: self.head.sequence,
                chain_link: self.head,
                created_at: now_ns,
                state,
                bindings,
                envelope: None,
            },
            ext: NetSnapshotExt {
                head: self.head,
                head_payload: self.head_payload.clone(),
                horizon: self.horizon.entries(),
                applied: self.applied.entries(),
            },
        })
    }

    /// [`take_snapshot_at`](Self::take_snapshot_at) with the current time.
    ///
    /// # Errors
    /// As [`take_snapshot_at`](Self::take_snapshot_at).
    pub fn take_snapshot(&mut self) -> Result<DaemonSnapshot, DaemonError> {
        self.take_snapshot_at(crate::redex::now_ns())
    }

    /// The daemon's name.
    pub fn name(&self) -> &str {
        self.daemon.name()
    }

    /// The daemon, the host dropped (its keypair and chain with it).
    pub fn into_daemon(self) -> Box<dyn MeshDaemon> {
        self.daemon
    }

    /// The daemon.
    pub fn daemon(&self) -> &dyn MeshDaemon {
        self.daemon.as_ref()
    }

    /// The daemon, to change.
    pub(crate) fn daemon_mut(&mut self) -> &mut dyn MeshDaemon {
        self.daemon.as_mut()
    }

    /// The daemon's origin hash.
    pub fn origin_hash(&self) -> u64 {
        self.keypair.origin_hash()
    }

    /// The daemon's public key.
    pub fn entity_id(&self) -> &EntityId {
        self.keypair.entity_id()
    }

    /// The daemon's keypair.
    pub fn keypair(&self) -> &EntityKeypair {
        &self.keypair
    }

    /// The chain head (genesis until the first output).
    pub fn head(&self) -> &CausalLink {
        &self.head
    }

    /// The head event's payload.
    pub fn head_payload(&self) -> &[u8] {
        &self.head_payload
    }

    /// The observed horizon.
    pub fn horizon(&self) -> &ObservedHorizon {
        &self.horizon
    }

    /// Per producer, the highest sequence `process` accepted: where a
    /// target's replay resumes (`ReplayBuffer` watermarks).
    pub fn applied(&self) -> &ObservedHorizon {
        &self.applied
    }

    /// The subscription ledger.
    pub fn ledger(&self) -> &SubscriptionLedger {
        &self.ledger
    }

    /// The subscription ledger, to record or remove subscriptions.
    pub fn ledger_mut(&mut self) -> &mut SubscriptionLedger {
        &mut self.ledger
    }

    /// The counters.
    pub fn stats(&self) -> DaemonStats {
        self.stats
    }
}

/// The head payload to chain from: the extension's, else empty at genesis,
/// else (v0.11 source) the state bytes.
fn head_payload_of(snapshot: &StateSnapshot, ext: Option<&NetSnapshotExt>) -> Vec<u8> {
    match ext {
        Some(ext) => ext.head_payload.clone(),
        None if snapshot.through_seq == 0 => Vec::new(),
        None => {
            tracing::warn!(
                origin = snapshot.origin_hash(),
                "snapshot without head payload; chaining from the state bytes as v0.11 does"
            );
            snapshot.state.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::daemon::test_daemons::{Counter, Echo};
    use crate::identity::ChannelName;

    fn keypair(seed: u8) -> EntityKeypair {
        EntityKeypair::from_seed(&[seed; 32])
    }

    #[test]
    fn the_kept_bloom_is_the_bloom_of_every_origin_seen() {
        let mut horizon = ObservedHorizon::new();
        let mut rebuilt = Horizon::default();
        assert_eq!(horizon.bloom(), rebuilt);
        for i in 0..500u64 {
            let origin = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 97; // repeats
            horizon.observe(origin, i);
            rebuilt = Horizon::default();
            horizon
                .entries()
                .iter()
                .for_each(|&(origin, _)| rebuilt.observe(origin));
            assert_eq!(horizon.bloom(), rebuilt);
            assert_eq!(horizon.get(origin), Some(i));
        }
        let collected: ObservedHorizon = horizon.entries().into_iter().collect();
        assert_eq!(collected, horizon);
    }

    proptest::proptest! {
        /// The last-origin shortcut answers as a plain map of maxima would,
        /// for any interleaving of producers (runs and switches alike).
        #[test]
        fn the_horizon_is_a_map_of_maxima(
            events in proptest::collection::vec((0u64..6, 0u64..50), 0..200)
        ) {
            let mut horizon = ObservedHorizon::new();
            let mut model = BTreeMap::new();
            for (origin, sequence) in events {
                horizon.observe(origin, sequence);
                let highest = model.entry(origin).or_insert(sequence);
                *highest = (*highest).max(sequence);
                for probe in 0..7 {
                    proptest::prop_assert_eq!(horizon.get(probe), model.get(&probe).copied());
                }
                let entries: Vec<_> = model.iter().map(|(&o, &s)| (o, s)).collect();
                proptest::prop_assert_eq!(horizon.entries(), entries.clone());
                proptest::prop_assert_eq!(horizon.len(), model.len());
                let rebuilt: ObservedHorizon = entries.into_iter().collect();
                proptest::prop_assert_eq!(&rebuilt, &horizon);
            }
        }
    }

    fn counter_host(seed: u8) -> DaemonHost {
        DaemonHost::new(Box::new(Counter::default()), keypair(seed))
    }

    fn ev(producer: u64, seq: u64, payload: &[u8]) -> CausalEvent {
        CausalEvent::bare(producer, seq, payload.to_vec())
    }

    #[test]
    fn outputs_are_chained_from_genesis() {
        let mut host = DaemonHost::new(Box::new(Echo), keypair(1));
        let genesis = *host.head();
        assert_eq!(genesis, CausalLink::genesis(host.origin_hash()));
        let out = host.deliver_at(&ev(9, 1, b"hi"), 42).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].link.sequence, 1);
        out[0].link.validate_after(&genesis, &[]).unwrap();
        out[1]
            .link
            .validate_after(&out[0].link, &out[0].payload)
            .unwrap();
        assert!(out.iter().all(|o| o.received_at == 42));
        let mut bloom = Horizon::default();
        bloom.observe(9);
        assert_eq!(out[0].link.horizon_encoded, bloom.0);
        assert_eq!(host.head(), &out[1].link);
        assert_eq!(host.head_payload(), b"hi");
        assert_eq!(
            host.stats(),
            DaemonStats {
                events_processed: 1,
                events_emitted: 2,
                errors: 0,
                snapshots_taken: 0
            }
        );
    }

    /// Several producers, and a failing event in the middle: a batch leaves
    /// the host exactly as the same events delivered one by one (outputs,
    /// chain, horizon, watermarks, stats, snapshot), stopping at the
    /// failure.
    #[test]
    fn a_batch_equals_the_same_single_deliveries() {
        let events: Vec<_> = (1..=6)
            .map(|s| ev(5 + s % 2, s, if s == 5 { b"fail" } else { b"e" }))
            .collect();
        let mut single = counter_host(3);
        let mut expected = Vec::new();
        let mut failure = None;
        for event in &events {
            match single.deliver_at(event, 7) {
                Ok(out) => expected.push(out),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut batched = counter_host(3);
        let done = batched.deliver_batch_at(&events, &BatchWait::default(), 7);
        assert_eq!(done.delivered(), 4);
        assert_eq!(done.per_event().collect::<Vec<_>>(), expected);
        assert_eq!(done.error, failure);
        assert_eq!(batched.stats(), single.stats());
        assert_eq!(batched.stats().errors, 1);
        assert_eq!(batched.head(), single.head());
        assert_eq!(batched.head_payload(), single.head_payload());
        assert_eq!(batched.horizon(), single.horizon());
        assert_eq!(batched.applied(), single.applied());
        assert_eq!(
            batched.take_snapshot_at(1).unwrap(),
            single.take_snapshot_at(1).unwrap()
        );
        // The rest goes on from the failure as it would have.
        let rest = [ev(6, 6, b"e")];
        let out = batched.deliver_batch_at(&rest, &BatchWait::default(), 7);
        assert_eq!(out.outputs, single.deliver_at(&rest[0], 7).unwrap());
        assert_eq!(out.counts, [out.outputs.len()]);
    }

    #[test]
    fn a_batch_lists_each_events_outputs_in_turn() {
        /// As many outputs as the payload's first byte says.
        struct Repeat;
        impl MeshDaemon for Repeat {
            fn name(&self) -> &str {
                "repeat"
            }
            fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
                let n = event.payload.first().copied().unwrap_or(0);
                Ok((0..n).map(|i| vec![n, i]).collect())
            }
        }
        let events: Vec<_> = [2u8, 0, 1, 3, 0]
            .iter()
            .zip(1..)
            .map(|(&n, s)| ev(5, s, &[n]))
            .collect();
        let mut single = DaemonHost::new(Box::new(Repeat), keypair(6));
        let expected: Vec<_> = events
            .iter()
            .map(|e| single.deliver_at(e, 7).unwrap())
            .collect();
        let mut batched = DaemonHost::new(Box::new(Repeat), keypair(6));
        let done = batched.deliver_batch_at(&events, &BatchWait::default(), 7);
        assert_eq!(
            done.counts,
            expected.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert_eq!(done.per_event().collect::<Vec<_>>(), expected);
        assert_eq!(done.outputs, expected.concat());
    }

    /// A chain about to pass sequence 2^64−1 stops a batch at the event
    /// whose outputs do not fit: the daemon applies nothing after it.
    #[test]
    fn a_batch_stops_where_the_chain_runs_out_of_sequences() {
        let mut host = counter_host(8);
        let mut snapshot = host.take_snapshot_at(1).unwrap().snapshot;
        snapshot.chain_link.sequence = u64::MAX - 2;
        host.restore_from_snapshot(&snapshot, None).unwrap();
        let events: Vec<_> = (1..=5).map(|s| ev(5, s, b"e")).collect();
        let done = host.deliver_batch_at(&events, &BatchWait::default(), 7);
        assert_eq!(done.counts, [1, 1]);
        assert_eq!(
            done.error,
            Some(DaemonError::SequenceOverflow(host.origin_hash()))
        );
        assert_eq!(host.head().sequence, u64::MAX);
        // Three applied (the third's output could not be chained), none
        // after: the batch stopped.
        assert_eq!(host.daemon().snapshot().unwrap(), 3u64.to_le_bytes());
        assert_eq!(host.applied().get(5), Some(3));
    }

    #[test]
    fn counts_cut_a_list_into_runs() {
        let items = [1, 2, 3, 4, 5];
        let runs: Vec<_> = split_counts(&items, [0, 2, 0, 3]).collect();
        assert_eq!(runs, [&[][..], &[1, 2], &[], &[3, 4, 5]]);
        // Counts past the end give what is there, never a panic.
        let runs: Vec<_> = split_counts(&items, [4, 4, 1]).collect();
        assert_eq!(runs, [&[1, 2, 3, 4][..], &[5], &[]]);
    }

    #[test]
    fn a_batch_not_taken_up_records_nothing() {
        struct Late;
        impl MeshDaemon for Late {
            fn name(&self) -> &str {
                "late"
            }
            fn process(&mut self, _: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
                unreachable!("a late daemon never gets an event")
            }
            fn process_batch(
                &mut self,
                _: &[CausalEvent],
                _: &BatchWait,
                _: &mut AppliedOutputs<'_>,
            ) -> Result<(), DaemonError> {
                Err(DaemonError::TimedOut)
            }
        }
        let mut host = DaemonHost::new(Box::new(Late), keypair(4));
        let done = host.deliver_batch_at(&[ev(5, 1, b"e")], &BatchWait::default(), 0);
        assert_eq!(done.error, Some(DaemonError::TimedOut));
        assert_eq!(host.stats(), DaemonStats::default());
        assert_eq!(host.horizon().get(5), None);
    }

    #[test]
    fn a_failing_event_still_advances_the_horizon() {
        let mut host = counter_host(1);
        let err = host.deliver_at(&ev(5, 8, b"fail"), 0).unwrap_err();
        assert!(matches!(err, DaemonError::ProcessFailed(_)));
        assert_eq!(host.horizon().get(5), Some(8));
        assert_eq!(host.applied().get(5), None, "seen but not applied");
        assert_eq!(host.stats().errors, 1);
        assert_eq!(host.stats().events_processed, 0);
        assert_eq!(host.head().sequence, 0);
    }

    /// Keeps its state as given and says which restore it got.
    #[derive(Default)]
    struct Buffer {
        state: Vec<u8>,
        owned: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl MeshDaemon for Buffer {
        fn name(&self) -> &str {
            "buffer"
        }
        fn process(&mut self, _: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
            Ok(vec![self.state.clone()])
        }
        fn is_stateful(&self) -> bool {
            true
        }
        fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
            Ok(self.state.clone())
        }
        fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
            self.state = state.to_vec();
            Ok(())
        }
        fn restore_owned(&mut self, state: Vec<u8>) -> Result<(), DaemonError> {
            self.state = state;
            self.owned.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    }

    #[test]
    fn an_owned_snapshot_restores_alike_and_hands_the_state_over() {
        let mut source = DaemonHost::new(
            Box::new(Buffer {
                state: b"the state".to_vec(),
                owned: Default::default(),
            }),
            keypair(9),
        );
        source.deliver_at(&ev(5, 1, b"e"), 0).unwrap();
        let taken = source.take_snapshot_at(7).unwrap();
        // With the extension, and as from v0.11 (no extension: the chain
        // continues from the state bytes, which are then copied).
        for (ext, owned) in [(Some(&taken.ext), true), (None, false)] {
            let by_ref = DaemonHost::from_snapshot(
                Box::new(Buffer::default()),
                keypair(9),
                &taken.snapshot,
                ext,
            )
            .unwrap();
            let handed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut by_value = DaemonHost::from_owned_snapshot(
                Box::new(Buffer {
                    state: Vec::new(),
                    owned: std::sync::Arc::clone(&handed),
                }),
                keypair(9),
                taken.snapshot.clone(),
                ext,
            )
            .unwrap();
            assert_eq!(handed.load(std::sync::atomic::Ordering::Relaxed), owned);
            assert_eq!(by_value.head(), by_ref.head());
            assert_eq!(by_value.head_payload(), by_ref.head_payload());
            assert_eq!(by_value.horizon(), by_ref.horizon());
            assert_eq!(by_value.daemon().snapshot().unwrap(), b"the state");
            let snap = by_value.take_snapshot_at(8);
            assert_eq!(snap.unwrap().snapshot.state, b"the state");
        }
        // The wrong keypair is refused before the daemon is touched.
        assert!(
            DaemonHost::from_owned_snapshot(
                Box::new(Buffer::default()),
                keypair(10),
                taken.snapshot.clone(),
                Some(&taken.ext),
            )
            .is_err()
        );
    }

    #[test]
    fn migration_through_the_wire_keeps_chain_horizon_and_ledger() {
        let mut source = counter_host(2);
        source
            .ledger_mut()
            .record(77, ChannelName::new("feeds/x").unwrap(), Some(vec![1]))
            .unwrap();
        for s in 1..=3 {
            source.deliver_at(&ev(5, s, b"e"), 0).unwrap();
        }
        let taken = source.take_snapshot_at(99).unwrap();
        assert_eq!(source.stats().snapshots_taken, 1);
        assert_eq!(taken.snapshot.through_seq, 3);
        assert_eq!(taken.snapshot.created_at, 99);
        let snapshot = StateSnapshot::from_bytes(&taken.snapshot.to_bytes().unwrap()).unwrap();
        let ext = NetSnapshotExt::from_bytes(&taken.ext.to_bytes().unwrap()).unwrap();

        let mut target = DaemonHost::from_snapshot(
            Box::new(Counter::default()),
            keypair(2),
            &snapshot,
            Some(&ext),
        )
        .unwrap();
        assert_eq!(target.stats(), DaemonStats::default());
        assert_eq!(target.horizon().get(5), Some(3));
        assert_eq!(target.applied().get(5), Some(3));
        assert_eq!(target.ledger(), source.ledger());
        let out = target.deliver_at(&ev(5, 4, b"e"), 0).unwrap();
        assert_eq!(out[0].payload, 4u64.to_le_bytes());
        // The chain continues at through_seq + 1 with a verifiable parent.
        out[0]
            .link
            .validate_after(source.head(), source.head_payload())
            .unwrap();
    }

    #[test]
    fn without_the_extension_the_head_payload_is_the_state() {
        let mut source = counter_host(2);
        source.deliver_at(&ev(5, 1, b"e"), 0).unwrap();
        let taken = source.take_snapshot_at(0).unwrap();
        let target = DaemonHost::from_snapshot(
            Box::new(Counter::default()),
            keypair(2),
            &taken.snapshot,
            None,
        )
        .unwrap();
        assert_eq!(target.head_payload(), taken.snapshot.state);
        assert!(target.horizon().is_empty());
        // At genesis there is no payload to lose.
        let fresh = counter_host(3).take_snapshot_at(0).unwrap();
        let target = DaemonHost::from_snapshot(
            Box::new(Counter::default()),
            keypair(3),
            &fresh.snapshot,
            None,
        )
        .unwrap();
        assert!(target.head_payload().is_empty());
    }

    #[test]
    fn from_snapshot_rejects_wrong_identity_foreign_ext_and_bad_ledger() {
        let taken = counter_host(2).take_snapshot_at(0).unwrap();
        let wrong = DaemonHost::from_snapshot(
            Box::new(Counter::default()),
            keypair(3),
            &taken.snapshot,
            None,
        );
        assert!(matches!(wrong, Err(DaemonError::RestoreFailed(_))));
        let mut ext = taken.ext.clone();
        ext.head.parent_hash ^= 1;
        let foreign = DaemonHost::from_snapshot(
            Box::new(Counter::default()),
            keypair(2),
            &taken.snapshot,
            Some(&ext),
        );
        assert!(matches!(foreign, Err(DaemonError::RestoreFailed(_))));
        let mut bad_ledger = taken.snapshot.clone();
        bad_ledger.bindings = vec![1, 0, 0];
        let bad =
            DaemonHost::from_snapshot(Box::new(Counter::default()), keypair(2), &bad_ledger, None);
        assert!(matches!(bad, Err(DaemonError::RestoreFailed(_))));
        assert!(
            taken.snapshot.bindings.is_empty(),
            "an empty ledger adds no bytes"
        );
    }

    #[test]
    fn stateless_daemons_snapshot_empty_state_and_migrate() {
        let mut source = DaemonHost::new(Box::new(Echo), keypair(4));
        source.deliver_at(&ev(1, 1, b"x"), 0).unwrap();
        let taken = source.take_snapshot_at(0).unwrap();
        assert!(taken.snapshot.state.is_empty());
        let target = DaemonHost::from_snapshot(
            Box::new(Echo),
            keypair(4),
            &taken.snapshot,
            Some(&taken.ext),
        )
        .unwrap();
        assert_eq!(target.head(), source.head());
        let mut with_state = taken.snapshot.clone();
        with_state.state = vec![1];
        let err = DaemonHost::from_snapshot(Box::new(Echo), keypair(4), &with_state, None);
        assert!(matches!(err, Err(DaemonError::RestoreFailed(_))));
    }

    #[test]
    fn restore_in_place_keeps_own_chain_for_another_entity() {
        let mut active = counter_host(5);
        for s in 1..=4 {
            active.deliver_at(&ev(8, s, b"e"), 0).unwrap();
        }
        let taken = active.take_snapshot_at(0).unwrap();
        let mut standby = counter_host(6);
        standby.deliver_at(&ev(8, 1, b"e"), 0).unwrap();
        let own_head = *standby.head();
        standby
            .restore_from_snapshot(&taken.snapshot, Some(&taken.ext))
            .unwrap();
        assert_eq!(standby.head(), &own_head);
        assert_eq!(standby.horizon().get(8), Some(4));
        let out = standby.deliver_at(&ev(8, 5, b"e"), 0).unwrap();
        assert_eq!(out[0].payload, 5u64.to_le_bytes());
        assert_eq!(out[0].link.origin_hash, standby.origin_hash());

        // The same entity's own snapshot moves the head back.
        let mut again = counter_host(5);
        again
            .restore_from_snapshot(&taken.snapshot, Some(&taken.ext))
            .unwrap();
        assert_eq!(again.head(), active.head());
        assert_eq!(again.head_payload(), active.head_payload());
    }
}
