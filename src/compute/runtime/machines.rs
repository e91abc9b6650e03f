//! The migration state machines of one node — orchestrator, source and
//! target in one dispatcher (§2.1) — and the migration-aware delivery
//! path. All state is behind one lock ([`State`]), taken by the worker
//! for each message and tick and by [`deliver`].
//!
//! # The flow (O = orchestrator, S = source, T = target; any two of O, S, T may be one node)
//!
//! | Phase | O sends (re-sent every retry interval until the reply) | reply |
//! |---|---|---|
//! | Snapshot | TakeSnapshot → S | S snapshots, starts capturing, sends every SnapshotReady chunk → O |
//! | Transfer | each chunk, unchanged → T (all chunks again on retry) | T reassembles, restores (held, not yet running), RestoreComplete → O |
//! | Restore → Replay | BufferedEvents (its own, empty) → T | T replays, ReplayComplete → O |
//! | Cutover | CutoverNotify → S | S stops the daemon, forwards its captured events → T (until T acknowledges them, `forward.rs`), then CleanupComplete → O |
//! | Complete | ActivateTarget → T | T drains, registers the daemon, ActivateAck → O; O's record ends |
//!
//! Departures from v0.11 (§2.7, §8):
//! - retransmission as above, and timeouts: before Cutover the
//!   orchestrator aborts a phase that overruns `step_timeout` and sends
//!   MigrationFailed to source and target; a source that hears nothing for
//!   `source_timeout` aborts by itself. An abort at the source applies the
//!   captured events locally: the daemon stays where it was, nothing lost.
//!   From Cutover on nothing is aborted: the daemon has left the source,
//!   so the orchestrator keeps re-sending until the target is active;
//! - between Snapshot and Cutover the orchestrator sends the source an
//!   empty BufferedEvents each retry interval as a keep-alive; chunks are
//!   re-requested only when they stop arriving, and the source re-sends
//!   them at most once per retry interval;
//! - every refusal gets a MigrationFailed reply (daemon missing at the
//!   source, a second migration, a missing factory, restore failures);
//! - the source's captured events, and every event delivered to it after
//!   cut-over, go on to the target through a forwarder (`forward.rs`) until
//!   the target acknowledges them, and CleanupComplete is sent only once
//!   the captured ones are, so the target is activated only after it has
//!   every captured event (v0.11's final batch could lose the race).
//!   Between Net nodes: numbered ForwardedEvents on the subprotocol
//!   stream, a window in flight, acknowledged by index (ForwardAck).
//!   Towards v0.11: BufferedEvents, one batch at a time, which the target
//!   answers to their **sender** with ReplayComplete{replayed_seq = events
//!   it has taken for the daemon so far, duplicates excluded} — a count the
//!   source compares with what it sent (v0.11: the last replayed inbound
//!   sequence, to the orchestrator);
//! - the restored daemon is not registered until ActivateTarget, so local
//!   deliveries on the target before that go through the replay buffer in
//!   (producer, sequence) order;
//! - after activation the target keeps accepting forwarded events for the
//!   daemon, applying each event above its producer's applied watermark
//!   once — in batches while the daemon stays, through the same
//!   migration-aware path as a local delivery while it is leaving again
//!   (captured, or forwarded on);
//! - a forwarder on the node the daemon is being restored on pauses, and
//!   what it holds joins the replay at activation (resumes on an abort);
//! - a target refuses one snapshot once (its payload hash is remembered):
//!   v0.11 messages carry no attempt id, and a re-refused retransmission
//!   would abort the orchestrator's next attempt;
//! - snapshot chunks for other nodes leave through a token bucket
//!   (`RuntimeConfig::transfer_rate`), and a whole re-send of a complete
//!   snapshot waits until the last one is out and the target had time to
//!   restore it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::subscriptions::{self, Binding};
use super::{
    BatchOutcome, ComputeError, DeliveryOutcome, MigrationOptions, MigrationPhase, MigrationStatus,
    Shared,
};
use crate::compute::migration::wire::SnapshotChunk;
use crate::compute::migration::{
    CaptureOutcome, ChunkGroup, ChunkWriter, FailureReason, InsertOutcome, MigrationMessage,
    ReplayBuffer, SnapshotReassembler, SourceBuffer, UnknownProducers,
};
use crate::compute::registry::HostLease;
use crate::compute::snapshot::{
    SNAPSHOT_STATE_OFFSET, decode_owned_migration_parts, encode_migration_around_state_of,
};
use crate::compute::{BatchDelivered, BatchWait, CausalEvent, DaemonError, DaemonHost};
use crate::identity::{EntityKeypair, IDENTITY_ENVELOPE_SIZE, IdentityEnvelope};
use xxhash_rust::xxh3::xxh3_64;

mod forward;
use forward::{Forwarder, Inbound};

/// Most BufferedEvents bytes per message, so one message fits a packet.
const MAX_BATCH_BYTES: usize = 7_000;
/// Snapshot chunks encoded (and sent) at a time: ~450 KiB.
const ENCODE_GROUP: u32 = 64;
/// How many times an abort is announced (MigrationFailed has no reply).
const ABORT_ANNOUNCEMENTS: u32 = 3;

#[derive(Debug)]
struct Orchestration {
    source: u64,
    target: u64,
    phase: MigrationPhase,
    phase_started: Instant,
    last_sent: Instant,
    /// When the last new chunk arrived (a Transfer still in progress is
    /// not re-requested).
    last_progress: Instant,
    /// SnapshotReady chunks as received (encoded), by index.
    chunks: BTreeMap<u32, Chunk>,
    total_chunks: Option<u32>,
    /// [`MigrationOptions::transport_identity`]: when this node is also
    /// the source, whether it seals the daemon's identity for the target.
    transport_identity: bool,
}

#[derive(Debug)]
struct SourceRecord {
    orchestrator: u64,
    target: u64,
    /// The encoded SnapshotReady chunks, re-sent on a repeated request.
    chunks: Vec<Chunk>,
    buffer: SourceBuffer,
    last_heard: Instant,
    /// When the chunks were last sent (requests queued while a large
    /// snapshot was built do not each re-send it).
    chunks_sent: Instant,
    /// After cut-over: the forwarder count CleanupComplete waits for.
    cutover_mark: Option<u64>,
}

#[derive(Debug)]
struct TargetRecord {
    orchestrator: u64,
    /// The restored snapshot payload's `snapshot_identity`.
    payload_hash: u64,
    host: DaemonHost,
    replay: ReplayBuffer,
    taken: u64,
    /// The daemon's channels are subscribed here: RestoreComplete may go
    /// (`subscriptions.rs`).
    bound: bool,
}

/// A restore this node refused as target: the same snapshot again (the
/// orchestrator's retransmission, queued while the refusal was being
/// decided) is not refused a second time. v0.11 messages carry no attempt
/// id, so a second MigrationFailed would reach the orchestrator late and
/// abort its next attempt of the daemon with this attempt's reason.
#[derive(Debug)]
struct Refusal {
    orchestrator: u64,
    /// The refused snapshot payload's `snapshot_identity` (every snapshot carries its
    /// creation time, so a new attempt never matches).
    payload_hash: u64,
    at: Instant,
}

#[derive(Debug)]
struct Activated {
    taken: u64,
    /// Per producer, the highest sequence taken from BufferedEvents since
    /// activation: a retransmitted batch is not taken (or counted) twice
    /// when its events were captured or forwarded rather than applied.
    seen: HashMap<u64, u64>,
}

#[derive(Debug)]
struct Announcement {
    origin: u64,
    to: Vec<u64>,
    bytes: Vec<u8>,
    left: u32,
}

use super::bulk::Chunk;

/// Snapshot chunks on their way to other nodes, sent at
/// `RuntimeConfig::transfer_rate` (a token bucket): a large snapshot sent
/// in one burst overflows the receiver's socket buffer, and every lost
/// chunk costs a whole re-send.
#[derive(Debug)]
struct Pacer {
    queue: VecDeque<(u64, Chunk)>,
    tokens: f64,
    refilled: Instant,
    /// When the queue last ran empty (a whole re-send waits for the
    /// previous one to be out).
    drained: Instant,
}

impl Default for Pacer {
    fn default() -> Self {
        let now = Instant::now();
        Self {
            queue: VecDeque::new(),
            tokens: PACER_BURST,
            refilled: now,
            drained: now,
        }
    }
}

/// Bytes per second a whole re-send of an unpaced snapshot assumes the
/// target needs to receive and restore it (the re-send waits twice that).
const ASSUMED_RESTORE_RATE: u64 = 256 << 20;

/// Bytes the pacer may send at once.
const PACER_BURST: f64 = (1 << 20) as f64;

/// The reassembly of snapshots arriving here: each one's state is kept
/// apart from the record's header, to become the daemon's state buffer as
/// it is.
#[derive(Debug)]
struct Reassembler(SnapshotReassembler);

impl Default for Reassembler {
    fn default() -> Self {
        Self(SnapshotReassembler::new().split_at(SNAPSHOT_STATE_OFFSET))
    }
}

/// One node's migration state.
#[derive(Debug, Default)]
pub(crate) struct State {
    pacer: Pacer,
    orchestrations: HashMap<u64, Orchestration>,
    finished: HashMap<u64, MigrationStatus>,
    sources: HashMap<u64, SourceRecord>,
    forwarders: HashMap<u64, Forwarder>,
    /// Forwardings this node receives, by (origin, sender).
    forwarded_in: HashMap<(u64, u64), Inbound>,
    /// The last forwarding id handed out here.
    forward_streams: u64,
    targets: HashMap<u64, TargetRecord>,
    activated: HashMap<u64, Activated>,
    refused: HashMap<u64, Refusal>,
    reassembler: Reassembler,
    announcements: Vec<Announcement>,
}

impl State {
    pub(crate) fn status(&self, origin: u64) -> Option<MigrationStatus> {
        self.orchestrations
            .get(&origin)
            .map(|o| MigrationStatus::Running(o.phase))
            .or_else(|| self.finished.get(&origin).cloned())
    }

    /// No source, forwarder or target record: every delivery is a plain
    /// local one.
    pub(crate) fn is_quiet(&self) -> bool {
        self.sources.is_empty() && self.forwarders.is_empty() && self.targets.is_empty()
    }

    /// A delivery to `origin` is captured, forwarded or replayed rather
    /// than processed here: `origin` has a capturing source, a forwarder
    /// or a target record.
    fn diverts(&self, origin: u64) -> bool {
        self.sources
            .get(&origin)
            .is_some_and(|source| source.cutover_mark.is_none())
            || self.forwarders.contains_key(&origin)
            || self.targets.contains_key(&origin)
    }

    pub(crate) fn is_migrating(&self, origin: u64) -> bool {
        self.orchestrations.contains_key(&origin)
            || self
                .sources
                .get(&origin)
                .is_some_and(|s| s.cutover_mark.is_none())
            || self.targets.contains_key(&origin)
    }

    pub(crate) fn unacknowledged_forwards(&self, origin: u64) -> u64 {
        self.forwarders
            .get(&origin)
            .map_or(0, Forwarder::unacknowledged)
    }
}

fn encode(message: &MigrationMessage) -> Option<Vec<u8>> {
    match message.encode() {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::warn!(error = %e, "migration message cannot be encoded");
            None
        }
    }
}

fn send(shared: &Shared, to: u64, message: &MigrationMessage) {
    if let Some(bytes) = encode(message) {
        send_bytes(shared, to, &bytes);
    }
}

fn send_bytes(shared: &Shared, to: u64, bytes: &[u8]) {
    if let Err(e) = shared.send(to, bytes) {
        tracing::debug!(to, error = %e, "migration message not sent");
    }
}

/// Sends a snapshot chunk: at once to this node, on a subprotocol stream
/// to a Net peer that takes one (`bulk.rs`), through the pacer to another.
fn send_chunk(shared: &Shared, state: &mut State, to: u64, chunk: &Chunk) {
    if to == shared.node_id {
        send_bytes(shared, to, chunk);
    } else if shared.bulk.takes(to) {
        shared.bulk.push(to, chunk);
    } else if shared.config.transfer_rate == 0 {
        send_bytes(shared, to, chunk);
    } else {
        state.pacer.queue.push_back((to, chunk.clone()));
    }
}

/// Whether every chunk sent so far is out (paced and streamed), and when
/// the last went.
fn chunks_out(shared: &Shared, state: &State) -> Option<Instant> {
    if !state.pacer.queue.is_empty() {
        return None;
    }
    match shared.bulk.drained_since() {
        Err(()) => None,
        Ok(Some(streamed)) => Some(streamed.max(state.pacer.drained)),
        Ok(None) => Some(state.pacer.drained),
    }
}

/// Sends the queued chunks the rate allows; returns how long until the
/// next one may go (`None`: nothing queued).
pub(super) fn pump_chunks(shared: &Shared, now: Instant) -> Option<Duration> {
    let mut state = shared.state();
    let pacer = &mut state.pacer;
    if pacer.queue.is_empty() {
        return None;
    }
    let rate = shared.config.transfer_rate as f64;
    let elapsed = now.saturating_duration_since(pacer.refilled).as_secs_f64();
    pacer.tokens = (pacer.tokens + elapsed * rate).min(PACER_BURST);
    pacer.refilled = now;
    while let Some((to, chunk)) = pacer.queue.front() {
        let len = chunk.len() as f64;
        if pacer.tokens < len {
            let wait = (len - pacer.tokens) / rate.max(1.0);
            return Some(Duration::from_secs_f64(wait));
        }
        pacer.tokens -= len;
        send_bytes(shared, *to, chunk);
        pacer.queue.pop_front();
    }
    pacer.drained = now;
    None
}

fn fail(shared: &Shared, to: u64, origin: u64, reason: FailureReason) {
    send(
        shared,
        to,
        &MigrationMessage::MigrationFailed { origin, reason },
    );
}

fn state_failed(text: impl Into<String>) -> FailureReason {
    let mut text = text.into();
    text.truncate(1024);
    FailureReason::StateFailed(text)
}

// ---------------------------------------------------------------- delivery

/// Where a delivery's chained outputs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outputs {
    /// In the outcome, and a copy in the `next_output` queue when the
    /// runtime keeps one (`ComputeRuntime::deliver`).
    Returned,
    /// Moved into the queue; the outcome carries none (the C ABI, whose
    /// callers read `next_output`, and deliveries nobody waits for).
    Queued,
}

/// The migration-aware delivery path (module doc of `runtime`).
pub(super) fn deliver(
    shared: &Shared,
    origin: u64,
    event: CausalEvent,
    sink: Outputs,
) -> Result<DeliveryOutcome, ComputeError> {
    // Without migration state on this node, no state lock: the flag is
    // read under the daemon's own lock, which a snapshot takes after
    // clearing it (see `Shared::quiet`).
    if shared.quiet.load(Ordering::Acquire) {
        let quiet = || shared.quiet.load(Ordering::Acquire);
        match shared.registry.deliver_when(origin, &event, quiet) {
            Ok(Some(outputs)) => return Ok(shared.hand_out(outputs, sink)),
            // Not quiet any more, or not here (it may have moved): the
            // locked path decides.
            Ok(None) | Err(DaemonError::NotFound(_) | DaemonError::Stale(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut state = shared.state();
    loop {
        if state.diverts(origin) {
            return deliver_locked(shared, &mut state, origin, event, sink);
        }
        // Hand over: the daemon's lock is taken before the state lock is
        // let go, so a snapshot (taken under both) cannot fall between the
        // checks above and the processing, and the daemon's work holds up
        // neither the node's other deliveries nor its migration messages.
        let handed_over = move || drop(state);
        if let Some(outputs) = shared.registry.try_deliver(origin, &event, handed_over)? {
            return Ok(shared.hand_out(outputs, sink));
        }
        // The daemon is busy: wait for it without the state lock (let go
        // with the unused closure), then decide again.
        shared.registry.wait_idle(origin)?;
        state = shared.state();
    }
}

/// [`deliver`] under the state lock: also the path of events forwarded to
/// a node the daemon has left again (captured or forwarded on, never
/// applied to a copy that is leaving).
fn deliver_locked(
    shared: &Shared,
    state: &mut State,
    origin: u64,
    event: CausalEvent,
    sink: Outputs,
) -> Result<DeliveryOutcome, ComputeError> {
    // No migration on this node at all (the common case): no lookups.
    if state.is_quiet() {
        return process_local(shared, origin, &event, sink);
    }
    if let Some(source) = state.sources.get_mut(&origin)
        && source.cutover_mark.is_none()
    {
        return match source.buffer.capture(event) {
            Ok(CaptureOutcome::Buffered) => Ok(DeliveryOutcome::Buffered),
            Ok(CaptureOutcome::Deliver(event) | CaptureOutcome::Forward(event)) => {
                // Not reachable while capturing; deliver rather than drop.
                process_local(shared, origin, &event, sink)
            }
            Err(e) => Err(ComputeError::Buffer(e.to_string())),
        };
    }
    if let Some(forwarder) = state.forwarders.get_mut(&origin) {
        forwarder.push(event, shared.config.max_forwarded)?;
        forwarder.pump(shared, origin, Instant::now());
        return Ok(DeliveryOutcome::Forwarded);
    }
    if let Some(target) = state.targets.get_mut(&origin) {
        return match target.replay.insert(event) {
            Ok(InsertOutcome::Queued) => Ok(DeliveryOutcome::Buffered),
            Ok(InsertOutcome::Duplicate) => Ok(DeliveryOutcome::Duplicate),
            Err(e) => Err(ComputeError::Buffer(e.to_string())),
        };
    }
    process_local(shared, origin, &event, sink)
}

/// [`deliver`] for several events under one hold of the state lock: the
/// migration state cannot change meanwhile, so each event goes where a
/// single delivery would have sent it — events for a daemon that migrates,
/// has moved or is arriving take [`deliver_locked`] one by one, and events
/// processed here go to the daemon as one batch.
pub(super) fn deliver_batch(
    shared: &Shared,
    origin: u64,
    events: Vec<CausalEvent>,
    wait: &BatchWait,
    sink: Outputs,
) -> Result<BatchOutcome, ComputeError> {
    // As for one event (`deliver`): without migration state on this node,
    // no state lock, so a slow daemon's batch does not hold up the node's
    // other deliveries and its migration messages.
    if shared.quiet.load(Ordering::Acquire) {
        let quiet = || shared.quiet.load(Ordering::Acquire);
        match shared
            .registry
            .deliver_batch_when(origin, &events, wait, quiet)
        {
            Ok(Some(delivered)) => return Ok(batch_outcome(shared, delivered, sink)),
            // Not quiet any more, or not here (it may have moved): the
            // locked path decides.
            Ok(None) | Err(DaemonError::NotFound(_) | DaemonError::Stale(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut state = shared.state();
    loop {
        if state.diverts(origin) {
            let mut done = BatchOutcome::default();
            for event in events {
                if !done.push(deliver_locked(shared, &mut state, origin, event, sink)) {
                    break;
                }
            }
            return Ok(done);
        }
        // Handing over from the state lock to the daemon's, as for one
        // event; a busy daemon is waited for without the state lock.
        let handed_over = move || drop(state);
        if let Some(delivered) =
            shared
                .registry
                .try_deliver_batch(origin, &events, wait, handed_over)?
        {
            return Ok(batch_outcome(shared, delivered, sink));
        }
        shared.registry.wait_idle(origin)?;
        state = shared.state();
    }
}

/// The host of `origin`'s daemon lent out, if `lend` agrees and the
/// daemon is processed here and free now (see [`deliver_batch`]: a node
/// without migration state needs no state lock; otherwise the state lock,
/// if free, is held until the host is lent, so no snapshot falls between
/// the check and the lending). `Ok(None)` when the usual delivery path
/// must decide.
pub(super) fn try_lend(
    shared: &Shared,
    origin: u64,
    lend: impl FnOnce(&mut DaemonHost) -> bool,
) -> Result<Option<HostLease>, DaemonError> {
    let lent = if shared.quiet.load(Ordering::Acquire) {
        let quiet = || shared.quiet.load(Ordering::Acquire);
        shared
            .registry
            .try_lend(origin, |host| quiet() && lend(host))
    } else {
        let Some(state) = shared.try_state() else {
            return Ok(None);
        };
        if state.diverts(origin) {
            return Ok(None);
        }
        let lent = shared.registry.try_lend(origin, lend);
        drop(state);
        lent
    };
    match lent {
        Err(DaemonError::NotFound(_) | DaemonError::Stale(_)) => Ok(None),
        lent => lent,
    }
}

/// A batch processed here: its outputs handed out, per event.
pub(super) fn batch_outcome(
    shared: &Shared,
    delivered: BatchDelivered,
    sink: Outputs,
) -> BatchOutcome {
    let (outcomes, outputs) = shared.hand_out_all(delivered.outputs, &delivered.counts, sink);
    BatchOutcome {
        outcomes,
        outputs,
        error: delivered.error.map(ComputeError::Daemon),
    }
}

fn process_local(
    shared: &Shared,
    origin: u64,
    event: &CausalEvent,
    sink: Outputs,
) -> Result<DeliveryOutcome, ComputeError> {
    let outputs = shared.registry.deliver(origin, event)?;
    Ok(shared.hand_out(outputs, sink))
}

// ----------------------------------------------------------- orchestrator

pub(super) fn start(
    shared: &Shared,
    origin: u64,
    source: u64,
    target: u64,
    options: &MigrationOptions,
    now: Instant,
) -> Result<(), ComputeError> {
    let mut state = shared.state();
    if state.orchestrations.contains_key(&origin) {
        return Err(ComputeError::AlreadyMigrating(origin));
    }
    if source == shared.node_id && options.transport_identity {
        // Checked before anything starts, as v0.11 does for a local source.
        if shared.transport.peer_static_key(target).is_none() {
            return Err(ComputeError::IdentityTransport(format!(
                "the static key of {target:#018x} is not known here (a v0.11 node that \
                 connected to this one); connect to it, or migrate without transport_identity"
            )));
        }
        if shared
            .registry
            .daemon_keypair(origin)
            .is_some_and(|k| k.seed().is_err())
        {
            return Err(ComputeError::IdentityTransport(
                "the daemon's keypair here is public-only: nothing to seal".into(),
            ));
        }
    }
    let take = take_snapshot(shared, origin, source, target);
    let bytes = encode(&take).ok_or(ComputeError::Transport("encode".into()))?;
    shared
        .send(source, &bytes)
        .map_err(|e| ComputeError::Transport(e.to_string()))?;
    state.finished.remove(&origin);
    // The last attempt's abort must not reach this one.
    state.announcements.retain(|a| a.origin != origin);
    state.orchestrations.insert(
        origin,
        Orchestration {
            source,
            target,
            phase: MigrationPhase::Snapshot,
            phase_started: now,
            last_sent: now,
            last_progress: now,
            chunks: BTreeMap::new(),
            total_chunks: None,
            transport_identity: options.transport_identity,
        },
    );
    shared.changed.notify_all();
    Ok(())
}

fn set_phase(o: &mut Orchestration, phase: MigrationPhase, now: Instant) {
    o.phase = phase;
    o.phase_started = now;
    o.last_sent = now;
}

fn finish(shared: &Shared, state: &mut State, origin: u64, status: MigrationStatus) {
    state.orchestrations.remove(&origin);
    state.finished.insert(origin, status);
    shared.changed.notify_all();
}

/// Aborts an orchestration before Cutover: tells source and target.
fn abort_orchestration(shared: &Shared, state: &mut State, origin: u64, reason: FailureReason) {
    let Some(o) = state.orchestrations.get(&origin) else {
        return;
    };
    let message = MigrationMessage::MigrationFailed {
        origin,
        reason: reason.clone(),
    };
    // The source or target role here is aborted in place: a failure looped
    // through the transport to ourselves could arrive after a retry began
    // and read as that attempt's source or target failing.
    let here = o.source == shared.node_id || o.target == shared.node_id;
    let to: Vec<u64> = [o.source, o.target]
        .into_iter()
        .filter(|&node| node != shared.node_id)
        .collect();
    if let Some(bytes) = encode(&message) {
        for &node in &to {
            send_bytes(shared, node, &bytes);
        }
        state.announcements.push(Announcement {
            origin,
            to,
            bytes,
            left: ABORT_ANNOUNCEMENTS - 1,
        });
    }
    finish(shared, state, origin, MigrationStatus::Failed(reason));
    if here {
        on_failed(shared, state, shared.node_id, origin);
    }
}

/// Handles a message if it belongs to the orchestration; returns whether
/// it did.
fn orchestrate(
    shared: &Shared,
    state: &mut State,
    from: u64,
    message: &MigrationMessage,
    now: Instant,
) -> bool {
    let origin = message.origin();
    let Some(o) = state.orchestrations.get_mut(&origin) else {
        return false;
    };
    use MigrationPhase as P;
    match message {
        MigrationMessage::RestoreComplete { .. }
            if from == o.target && matches!(o.phase, P::Transfer | P::Restore) =>
        {
            set_phase(o, P::Restore, now);
            set_phase(o, P::Replay, now);
            let target = o.target;
            send(
                shared,
                target,
                &MigrationMessage::BufferedEvents {
                    origin,
                    events: Vec::new(),
                },
            );
            shared.changed.notify_all();
            true
        }
        MigrationMessage::ReplayComplete { .. } if from == o.target && o.phase == P::Replay => {
            set_phase(o, P::Cutover, now);
            let (source, target) = (o.source, o.target);
            send(
                shared,
                source,
                &MigrationMessage::CutoverNotify {
                    origin,
                    target_node: target,
                },
            );
            shared.changed.notify_all();
            true
        }
        MigrationMessage::CleanupComplete { .. } if from == o.source && o.phase == P::Cutover => {
            set_phase(o, P::Complete, now);
            let target = o.target;
            send(shared, target, &MigrationMessage::ActivateTarget { origin });
            shared.changed.notify_all();
            true
        }
        MigrationMessage::ActivateAck { .. } if from == o.target && o.phase == P::Complete => {
            finish(shared, state, origin, MigrationStatus::Completed);
            true
        }
        MigrationMessage::MigrationFailed { reason, .. }
            if from == o.source || from == o.target =>
        {
            if o.phase < P::Cutover {
                abort_orchestration(shared, state, origin, reason.clone());
            } else {
                tracing::error!(
                    origin,
                    ?reason,
                    "migration failed after cut-over; the daemon is not running until a retry"
                );
                finish(
                    shared,
                    state,
                    origin,
                    MigrationStatus::Failed(reason.clone()),
                );
            }
            // The local source and target roles see the failure too.
            false
        }
        _ => false,
    }
}

/// The orchestrator keeps a chunk of the source's snapshot (for a whole
/// re-send) and sends it on to the target. The caller checked that the
/// orchestration is in Snapshot or Transfer and the chunk is its source's.
fn relay_chunk(
    shared: &Shared,
    state: &mut State,
    origin: u64,
    index: u32,
    total: u32,
    chunk: Chunk,
    now: Instant,
) {
    let Some(o) = state.orchestrations.get_mut(&origin) else {
        return;
    };
    if o.phase == MigrationPhase::Snapshot {
        set_phase(o, MigrationPhase::Transfer, now);
    }
    if o.total_chunks.is_some_and(|t| t != total) {
        o.chunks.clear();
    }
    o.total_chunks = Some(total);
    if o.chunks.insert(index, chunk.clone()).is_none() {
        o.last_progress = now;
    }
    let target = o.target;
    send_chunk(shared, state, target, &chunk);
}

/// Whether a chunk from `from` belongs to an orchestration here (`None`:
/// `from` is not the source of one for `origin`), and whether that
/// orchestration still relays chunks (Snapshot or Transfer).
fn source_chunk_wanted(state: &State, origin: u64, from: u64) -> Option<bool> {
    let o = state
        .orchestrations
        .get(&origin)
        .filter(|o| o.source == from)?;
    Some(matches!(
        o.phase,
        MigrationPhase::Snapshot | MigrationPhase::Transfer
    ))
}

/// A source's chunks for its orchestrator: through the transport, or,
/// when this node orchestrates, straight to the orchestration (the same
/// shared bytes, no loop through the node).
#[allow(clippy::too_many_arguments)]
fn chunks_to_orchestrator(
    shared: &Shared,
    state: &mut State,
    orchestrator: u64,
    origin: u64,
    first: u32,
    total: u32,
    chunks: &[Chunk],
    now: Instant,
) {
    if orchestrator != shared.node_id {
        for chunk in chunks {
            send_chunk(shared, state, orchestrator, chunk);
        }
        return;
    }
    if source_chunk_wanted(state, origin, shared.node_id) != Some(true) {
        return;
    }
    for (index, chunk) in (first..).zip(chunks) {
        relay_chunk(shared, state, origin, index, total, chunk.clone(), now);
    }
}

fn orchestrator_tick(shared: &Shared, state: &mut State, now: Instant) {
    use MigrationPhase as P;
    let mut timed_out = Vec::new();
    let mut resend = Vec::new();
    let drained = chunks_out(shared, state);
    for (&origin, o) in &mut state.orchestrations {
        if o.phase < P::Cutover && now.duration_since(o.phase_started) > shared.config.step_timeout
        {
            timed_out.push((origin, o.phase));
            continue;
        }
        let complete = o.total_chunks.is_some_and(|t| o.chunks.len() == t as usize);
        let receiving = o.phase == P::Transfer
            && !complete
            && now.duration_since(o.last_progress) < shared.config.retry_interval;
        if now.duration_since(o.last_sent) < shared.config.retry_interval {
            continue;
        }
        o.last_sent = now;
        if o.phase > P::Snapshot && o.phase < P::Cutover {
            // The source hears nothing else from us until Cutover: an
            // empty batch keeps its `source_timeout` from firing.
            send(
                shared,
                o.source,
                &MigrationMessage::BufferedEvents {
                    origin,
                    events: Vec::new(),
                },
            );
        }
        if receiving {
            continue;
        }
        match o.phase {
            P::Transfer if complete => {
                // A large snapshot takes the target a while to restore:
                // a whole re-send waits for the last one to be out, and
                // for twice its paced sending time after that.
                let bytes: usize = o.chunks.values().map(|c| c.len()).sum();
                let rate = match shared.config.transfer_rate {
                    0 => ASSUMED_RESTORE_RATE,
                    rate => rate,
                };
                let settle = Duration::from_secs_f64(2.0 * bytes as f64 / rate as f64)
                    .max(shared.config.retry_interval);
                if drained.is_some_and(|at| now.saturating_duration_since(at) >= settle) {
                    resend.push((o.target, o.chunks.values().cloned().collect::<Vec<_>>()));
                }
            }
            P::Snapshot | P::Transfer => send(
                shared,
                o.source,
                &take_snapshot(shared, origin, o.source, o.target),
            ),
            P::Restore | P::Replay => send(
                shared,
                o.target,
                &MigrationMessage::BufferedEvents {
                    origin,
                    events: Vec::new(),
                },
            ),
            P::Cutover => send(
                shared,
                o.source,
                &MigrationMessage::CutoverNotify {
                    origin,
                    target_node: o.target,
                },
            ),
            P::Complete => send(
                shared,
                o.target,
                &MigrationMessage::ActivateTarget { origin },
            ),
        }
    }
    for (target, chunks) in resend {
        for chunk in &chunks {
            send_chunk(shared, state, target, chunk);
        }
    }
    for (origin, phase) in timed_out {
        tracing::warn!(origin, phase = phase.as_str(), "migration phase timed out");
        abort_orchestration(
            shared,
            state,
            origin,
            state_failed(format!("timed out in phase {}", phase.as_str())),
        );
    }
    state.announcements.retain_mut(|a| {
        for &node in &a.to {
            send_bytes(shared, node, &a.bytes);
        }
        a.left -= 1;
        a.left > 0
    });
}

// ----------------------------------------------------------------- source

/// The orchestrator's TakeSnapshot: to a Net source (or this node) it says
/// whether the target takes the Net snapshot extension — the orchestrator
/// talks to the target, the source may not.
fn take_snapshot(shared: &Shared, origin: u64, source: u64, target: u64) -> MigrationMessage {
    let net_source = source == shared.node_id || shared.transport.peer_is_net(source) == Some(true);
    MigrationMessage::TakeSnapshot {
        origin,
        target_node: target,
        target_takes_extension: net_source.then(|| target_is_net(shared, target)),
    }
}

/// Whether `target` is known here to be a Net node (this node is).
fn target_is_net(shared: &Shared, target: u64) -> bool {
    target == shared.node_id || shared.transport.peer_is_net(target) == Some(true)
}

fn on_take_snapshot(
    shared: &Shared,
    state: &mut State,
    from: u64,
    origin: u64,
    target: u64,
    target_takes_extension: Option<bool>,
    now: Instant,
) {
    let all_out = chunks_out(shared, state).is_some();
    if let Some(source) = state.sources.get_mut(&origin) {
        if source.cutover_mark.is_some() {
            // Already handed over: a stale request.
            return;
        }
        if source.orchestrator == from && source.target == target {
            source.last_heard = now;
            if now.duration_since(source.chunks_sent) >= shared.config.retry_interval && all_out {
                source.chunks_sent = now;
                let chunks = source.chunks.clone();
                let total = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
                chunks_to_orchestrator(shared, state, from, origin, 0, total, &chunks, now);
            }
        } else {
            fail(shared, from, origin, FailureReason::AlreadyMigrating);
        }
        return;
    }
    if state.targets.contains_key(&origin) {
        fail(shared, from, origin, FailureReason::AlreadyMigrating);
        return;
    }
    // The lock on `state` keeps deliveries out: the snapshot and the start
    // of capture are one step (those that skip the lock see `quiet`
    // cleared once the snapshot has the daemon's lock).
    shared.quiet.store(false, Ordering::Release);
    // The orchestration here says whether to seal; a remote orchestrator
    // cannot (TakeSnapshot has no room), so then it is sealed if possible.
    let seal = if from == shared.node_id {
        state
            .orchestrations
            .get(&origin)
            .map_or(Seal::IfPossible, |o| {
                if o.transport_identity {
                    Seal::Required
                } else {
                    Seal::Never
                }
            })
    } else {
        Seal::IfPossible
    };
    let mut buffer = SourceBuffer::new();
    if buffer.begin().is_err() {
        return;
    }
    // v0.11's orchestrator says nothing: the target then gets the
    // extension only if this node knows it for a Net node.
    let extension = shared.config.send_extension
        && target_takes_extension.unwrap_or_else(|| target_is_net(shared, target));
    let chunks = match send_snapshot(shared, state, from, origin, target, seal, extension, now) {
        Ok(chunks) => chunks,
        Err(reason) => {
            fail(shared, from, origin, reason);
            return;
        }
    };
    // A daemon that comes back here leaves no forwarder to its old node.
    state.forwarders.remove(&origin);
    state.sources.insert(
        origin,
        SourceRecord {
            orchestrator: from,
            target,
            chunks,
            buffer,
            last_heard: now,
            chunks_sent: Instant::now(),
            cutover_mark: None,
        },
    );
}

/// Snapshots daemon `origin` and sends the chunks to the orchestrator
/// `from` a range at a time, each as soon as it is encoded (the transfer
/// starts while the rest is encoded); returns them all, for re-sends. A
/// daemon that knows its state's length writes the state straight into
/// the chunk messages ([`MeshDaemon::snapshot_into`](crate::compute::MeshDaemon::snapshot_into)):
/// one copy of it in all. The identity envelope comes after the state in
/// the record, so it is sealed while the state's chunks are on their way.
#[allow(clippy::too_many_arguments)]
fn send_snapshot(
    shared: &Shared,
    state: &mut State,
    from: u64,
    origin: u64,
    target: u64,
    seal: Seal,
    extension: bool,
    now: Instant,
) -> Result<Vec<Chunk>, FailureReason> {
    let failed = |e: &dyn std::fmt::Display| state_failed(e.to_string());
    let sent = shared.registry.with_host(origin, |host| {
        let (mut snapshot, streamed) = host
            .snapshot_for_transfer_at(crate::redex::now_ns())
            .map_err(|e| failed(&e))?;
        let sealing_to = seal_key(shared, target, host.keypair(), seal)?;
        let state_len = streamed.unwrap_or(snapshot.snapshot.state.len());
        let ext = extension.then_some(&snapshot.ext);
        let (head, unsealed_tail) =
            encode_migration_around_state_of(&snapshot.snapshot, ext, state_len)
                .map_err(|e| failed(&e))?;
        let tail_len = unsealed_tail.len() + sealing_to.map_or(0, |_| IDENTITY_ENVELOPE_SIZE);
        let len = head.len() + state_len + tail_len;
        let mut writer = ChunkWriter::new(origin, snapshot.snapshot.through_seq, len, ENCODE_GROUP)
            .map_err(|e| failed(&e))?;
        let total = writer.total();
        let mut chunks = Vec::with_capacity(total as usize);
        let mut emit = |(first, bytes, ranges): ChunkGroup| {
            let group = Chunk::split(bytes, ranges);
            chunks_to_orchestrator(shared, state, from, origin, first, total, &group, now);
            chunks.extend(group);
        };
        writer.write(&head, &mut emit);
        if streamed.is_some() {
            host.daemon()
                .snapshot_into(&mut |bytes| writer.write(bytes, &mut emit))
                .map_err(|e| failed(&e))?;
        } else {
            writer.write(&snapshot.snapshot.state, &mut emit);
        }
        let tail = match sealing_to {
            None => unsealed_tail,
            Some(key) => {
                let link = snapshot.snapshot.chain_link.to_bytes();
                let envelope = IdentityEnvelope::seal(host.keypair(), &key, &link)
                    .map_err(|e| state_failed(format!("sealing the identity: {e}")))?;
                snapshot.snapshot.envelope = Some(envelope);
                let ext = extension.then_some(&snapshot.ext);
                encode_migration_around_state_of(&snapshot.snapshot, ext, state_len)
                    .map_err(|e| failed(&e))?
                    .1
            }
        };
        debug_assert_eq!(tail.len(), tail_len, "the envelope's size is fixed");
        writer.write(&tail, &mut emit);
        writer.finish(&mut emit).map_err(|e| failed(&e))?;
        Ok(chunks)
    });
    match sent {
        Ok(chunks) => chunks,
        Err(DaemonError::NotFound(_) | DaemonError::Stale(_)) => {
            Err(state_failed("daemon not found on the source"))
        }
        Err(e) => Err(failed(&e)),
    }
}

/// Whether a source seals the daemon's identity for the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seal {
    Required,
    IfPossible,
    Never,
}

/// The target's static key to seal the daemon's identity to, bound to
/// the snapshot's chain head (COMPUTE.md §2.6): `None` when not asked for,
/// or when not possible and not required.
fn seal_key(
    shared: &Shared,
    target: u64,
    keypair: &EntityKeypair,
    seal: Seal,
) -> Result<Option<[u8; 32]>, FailureReason> {
    if seal == Seal::Never {
        return Ok(None);
    }
    let refused = |why: String| {
        if seal == Seal::Required {
            Err(FailureReason::IdentityTransportFailed(why))
        } else {
            Ok(None)
        }
    };
    let Some(key) = shared.transport.peer_static_key(target) else {
        return refused(format!("the static key of {target:#018x} is not known"));
    };
    if keypair.seed().is_err() {
        return refused("the daemon's keypair is public-only".into());
    }
    Ok(Some(key))
}

fn on_cutover(
    shared: &Shared,
    state: &mut State,
    from: u64,
    origin: u64,
    target: u64,
    now: Instant,
) {
    let Some(source) = state.sources.get_mut(&origin) else {
        fail(
            shared,
            from,
            origin,
            state_failed("no migration of this daemon at the source"),
        );
        return;
    };
    source.last_heard = now;
    if source.cutover_mark.is_none() {
        if source.target != target {
            fail(shared, from, origin, FailureReason::AlreadyMigrating);
            return;
        }
        let captured = source.buffer.cutover().unwrap_or_default();
        match shared.registry.unregister(origin) {
            Ok(host) => {
                // The target subscribed before it answered RestoreComplete.
                if let Some(host) = &host {
                    shared.release_bindings(origin, subscriptions::bindings(host.ledger()));
                }
                retire(host);
            }
            Err(e) => tracing::warn!(origin, error = %e, "source daemon already gone at cut-over"),
        }
        if !state.forwarders.contains_key(&origin) {
            let forwarder = Forwarder::new(shared, state, target, now);
            state.forwarders.insert(origin, forwarder);
        }
        let Some(forwarder) = state.forwarders.get_mut(&origin) else {
            return;
        };
        forwarder.extend(captured);
        let mark = forwarder.enqueued();
        forwarder.pump(shared, origin, now);
        if let Some(source) = state.sources.get_mut(&origin) {
            source.cutover_mark = Some(mark);
        }
    }
    maybe_cleanup_complete(shared, state, origin);
}

/// Drops a daemon that left, off the runtime's thread: freeing a state of
/// tens of MiB takes milliseconds the protocol's next step would wait for.
fn retire(host: Option<DaemonHost>) {
    if let Some(host) = host {
        // Should no thread start, the host is dropped here, with the closure.
        let _ = std::thread::Builder::new()
            .name("net-compute-retire".into())
            .spawn(move || drop(host));
    }
}

/// CleanupComplete once the target has every event captured before
/// cut-over.
fn maybe_cleanup_complete(shared: &Shared, state: &State, origin: u64) {
    let Some(source) = state.sources.get(&origin) else {
        return;
    };
    let Some(mark) = source.cutover_mark else {
        return;
    };
    let acked = state.forwarders.get(&origin).map_or(0, |f| f.acked);
    if acked >= mark {
        send(
            shared,
            source.orchestrator,
            &MigrationMessage::CleanupComplete { origin },
        );
    }
}

/// An acknowledgement for the forwarder of `origin` from `from`:
/// ForwardAck (`Ok((stream, next))`) or a v0.11 node's ReplayComplete
/// count (`Err(count)`).
fn on_forward_ack(
    shared: &Shared,
    state: &mut State,
    from: u64,
    origin: u64,
    ack: Result<(u64, u64), u64>,
    now: Instant,
) {
    let Some(forwarder) = state.forwarders.get_mut(&origin) else {
        return;
    };
    if forwarder.target != from {
        return;
    }
    let before = forwarder.acked;
    let moved = match ack {
        Ok((stream, next)) => forwarder.on_ack(stream, next, now),
        Err(count) => forwarder.on_count(count),
    };
    if !moved {
        return;
    }
    let acked = forwarder.acked;
    forwarder.pump(shared, origin, now);
    let mark = state.sources.get(&origin).and_then(|s| s.cutover_mark);
    if mark.is_some_and(|m| before < m && acked >= m) {
        maybe_cleanup_complete(shared, state, origin);
    }
}

/// Gives the daemon back to local processing: captured events first.
fn abort_source(shared: &Shared, state: &mut State, origin: u64) {
    let Some(mut source) = state.sources.remove(&origin) else {
        return;
    };
    if source.cutover_mark.is_some() {
        // Handed over already: the daemon lives on the target now.
        state.sources.insert(origin, source);
        return;
    }
    // In batches (one work item each for an SDK's daemon); an event that
    // fails is logged and skipped, as a delivery's failure would be.
    let mut captured = source.buffer.abort();
    while !captured.is_empty() {
        let rest = captured.split_off(captured.len().min(REPLAY_BATCH));
        let done = match shared
            .registry
            .deliver_batch(origin, &captured, &BatchWait::default())
        {
            Ok(delivered) => batch_outcome(shared, delivered, Outputs::Queued),
            Err(e) => {
                tracing::warn!(origin, error = %e, "captured events dropped after abort: the daemon is gone");
                return;
            }
        };
        let taken = done.outcomes.len();
        if let Some(e) = done.error {
            tracing::warn!(origin, error = %e, "captured event failed after abort");
            captured.drain(..=taken.min(captured.len() - 1));
        } else {
            captured.clear();
        }
        captured.extend(rest);
    }
}

fn source_tick(shared: &Shared, state: &mut State, now: Instant) {
    let expired: Vec<u64> = state
        .sources
        .iter()
        .filter(|(_, s)| {
            s.cutover_mark.is_none()
                && now.duration_since(s.last_heard) > shared.config.source_timeout
        })
        .map(|(&origin, _)| origin)
        .collect();
    for origin in expired {
        tracing::warn!(origin, "orchestrator silent: source aborts the migration");
        abort_source(shared, state, origin);
    }
    for (&origin, forwarder) in &mut state.forwarders {
        forwarder.tick(shared, origin, now);
    }
}

// ----------------------------------------------------------------- target

fn on_snapshot_ready(
    shared: &Shared,
    state: &mut State,
    from: u64,
    chunk: &SnapshotChunk<'_>,
    now: Instant,
) {
    let (origin, seq_through) = (chunk.origin, chunk.seq_through);
    let leaving = state
        .sources
        .get(&origin)
        .is_some_and(|s| s.cutover_mark.is_none());
    if shared.registry.contains(origin) || leaving {
        // The daemon runs (or is leaving) here: a stale chunk.
        return;
    }
    let payload = match state.reassembler.0.feed_parts(
        origin,
        seq_through,
        chunk.index,
        chunk.total,
        chunk.bytes,
        now,
    ) {
        Ok(Some(payload)) => payload,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(origin, error = %e, "snapshot chunk refused");
            return;
        }
    };
    state.reassembler.0.discard(origin);
    // The same snapshot again (a retransmission): answer, restore nothing.
    // Its identity, not its seq_through, decides: a daemon that emitted
    // nothing since an aborted attempt keeps its seq but not its state.
    let payload_hash = snapshot_identity(&payload.0, &payload.1);
    if let Some(target) = state.targets.get(&origin)
        && target.payload_hash == payload_hash
        && target.orchestrator == from
    {
        // Still subscribing its channels: the answer follows then.
        if target.bound {
            restore_complete(shared, from, origin, seq_through);
        }
        return;
    }
    // The same refused snapshot again: refused once already.
    if state
        .refused
        .get(&origin)
        .is_some_and(|r| r.payload_hash == payload_hash && r.orchestrator == from)
    {
        return;
    }
    // Another migration of the daemon: a held copy is superseded (what it
    // alone subscribed is let go below, once the new copy's are known).
    let superseded = state
        .targets
        .remove(&origin)
        .map(|old| subscriptions::bindings(old.host.ledger()))
        .unwrap_or_default();
    let restored = restore(shared, origin, payload);
    let arriving = match &restored {
        Ok((host, _)) => subscriptions::bindings(host.ledger()),
        Err(_) => Vec::new(),
    };
    shared.release_bindings(origin, subscriptions::without(superseded, &arriving));
    match restored {
        Ok((host, ext_applied)) => {
            state.refused.remove(&origin);
            let replay = match ext_applied {
                Some(applied) => ReplayBuffer::new(applied, UnknownProducers::FromGenesis),
                None => ReplayBuffer::new([], UnknownProducers::AdoptLowest),
            };
            state.activated.remove(&origin);
            if let Some(forwarder) = state.forwarders.get_mut(&origin) {
                forwarder.paused = true;
            }
            // The daemon's channels are subscribed here before the answer:
            // the source lets go of them only after it (at cut-over).
            let bound = arriving.is_empty();
            state.targets.insert(
                origin,
                TargetRecord {
                    orchestrator: from,
                    payload_hash,
                    host,
                    replay,
                    taken: 0,
                    bound,
                },
            );
            if bound {
                restore_complete(shared, from, origin, seq_through);
            } else {
                shared.rebind_arriving(origin, payload_hash, arriving);
            }
        }
        Err(reason) => {
            if let Some(forwarder) = state.forwarders.get_mut(&origin) {
                forwarder.paused = false;
                forwarder.pump(shared, origin, now);
            }
            state.refused.insert(
                origin,
                Refusal {
                    orchestrator: from,
                    payload_hash,
                    at: now,
                },
            );
            fail(shared, from, origin, reason);
        }
    }
}

fn restore_complete(shared: &Shared, to: u64, origin: u64, restored_seq: u64) {
    send(
        shared,
        to,
        &MigrationMessage::RestoreComplete {
            origin,
            restored_seq,
        },
    );
}

type Restored = (DaemonHost, Option<Vec<(u64, u64)>>);

/// Builds the daemon of a whole snapshot payload (given up: its state is
/// moved to the daemon, not copied).
fn restore(
    shared: &Shared,
    origin: u64,
    (head, rest): (Vec<u8>, Vec<u8>),
) -> Result<Restored, FailureReason> {
    let (snapshot, ext) =
        decode_owned_migration_parts(head, rest).map_err(|e| state_failed(e.to_string()))?;
    if snapshot.origin_hash() != origin {
        return Err(state_failed("snapshot of another daemon"));
    }
    let (daemon, keypair) = match shared.factories.construct(origin) {
        Ok(built) => built,
        Err(DaemonError::NotFound(_)) => return Err(FailureReason::FactoryNotFound),
        Err(e) => return Err(state_failed(e.to_string())),
    };
    // An envelope must open (and name the snapshot's entity); without
    // one the factory's keypair is used (COMPUTE.md §2.6).
    let keypair = match &snapshot.envelope {
        Some(envelope) => shared
            .transport
            .open_identity_envelope(
                envelope,
                &snapshot.chain_link.to_bytes(),
                &snapshot.entity_id,
            )
            .map_err(|e| {
                FailureReason::IdentityTransportFailed(format!("identity envelope: {e}"))
            })?,
        None => keypair.ok_or_else(|| {
            FailureReason::IdentityTransportFailed(
                "no identity envelope and no keypair for the daemon here".into(),
            )
        })?,
    };
    let host = DaemonHost::from_owned_snapshot(daemon, keypair, snapshot, ext.as_ref())
        .map_err(|e| state_failed(e.to_string()))?;
    Ok((host, ext.map(|e| e.applied)))
}

/// A snapshot payload's identity for recognising a retransmission: a hash
/// of its length, its first and its last 4 KiB. The head holds the
/// snapshot's creation time (ns), which differs between attempts, so the
/// tens of MiB between need not be hashed (~5 ms per 64 MiB).
fn snapshot_identity(head: &[u8], rest: &[u8]) -> u64 {
    const EDGE: usize = 4096;
    let len = head.len() + rest.len();
    if len <= 2 * EDGE {
        return xxh3_64(&[head, rest].concat());
    }
    // The payload is `head ‖ rest`; the hash streams its pieces.
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&(len as u64).to_le_bytes());
    let first = head.len().min(EDGE);
    hasher.update(&head[..first]);
    hasher.update(&rest[..EDGE - first]);
    let from_head = EDGE.saturating_sub(rest.len());
    hasher.update(&head[head.len() - from_head..]);
    hasher.update(&rest[rest.len() - (EDGE - from_head)..]);
    hasher.digest()
}

/// Events a target applies per daemon call when it replays or takes
/// forwarded events (one work item each for an SDK's daemon).
const REPLAY_BATCH: usize = 256;

/// Applies what the target's replay buffer holds in order, in batches.
fn drain_target(shared: &Shared, target: &mut TargetRecord) -> Result<(), DaemonError> {
    let host = &mut target.host;
    let mut outputs = Vec::new();
    let wait = BatchWait::default();
    let result = target.replay.drain_batched(REPLAY_BATCH, |events| {
        let delivered = host.deliver_batch_at(events, &wait, crate::redex::now_ns());
        outputs.extend(delivered.outputs);
        (delivered.counts.len(), delivered.error.map_or(Ok(()), Err))
    });
    shared.push_outputs(outputs);
    result.map(drop).map_err(|e| e.error)
}

fn on_buffered_events(
    shared: &Shared,
    state: &mut State,
    from: u64,
    origin: u64,
    events: Vec<CausalEvent>,
) {
    if let Some(target) = state.targets.get_mut(&origin) {
        for event in events {
            match target.replay.insert(event) {
                Ok(InsertOutcome::Queued) => target.taken += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(origin, error = %e, "replay buffer full");
                    return;
                }
            }
        }
        match drain_target(shared, target) {
            Ok(()) => send(
                shared,
                from,
                &MigrationMessage::ReplayComplete {
                    origin,
                    replayed_seq: target.taken,
                },
            ),
            // No reply: the sender re-sends, and that drain resumes at the
            // failed event (§2.8).
            Err(e) => tracing::warn!(origin, error = %e, "replay stopped at a failing event"),
        }
        return;
    }
    if !state.activated.contains_key(&origin) {
        return;
    }
    // Forwarded after cut-over by the node the daemon left. The daemon may
    // be leaving here again (captured), or gone on (forwarded further).
    // What was applied or taken already is skipped (the sender re-sends).
    // The host's applied watermarks, read once (nothing is applied before
    // the batch below).
    let applied = shared
        .registry
        .with_host(origin, |h| h.applied().clone())
        .ok();
    let mut fresh = Vec::with_capacity(events.len());
    let mut seen_here: HashMap<u64, u64> = HashMap::new();
    for event in events {
        let (producer, sequence) = (event.producer(), event.sequence());
        let applied = applied.as_ref().and_then(|a| a.get(producer));
        let seen = seen_here.get(&producer).copied().or_else(|| {
            state
                .activated
                .get(&origin)
                .and_then(|a| a.seen.get(&producer).copied())
        });
        let below = |watermark: Option<u64>| watermark.is_some_and(|w| sequence <= w);
        if sequence == 0 || below(applied) || below(seen) {
            continue;
        }
        seen_here.insert(producer, sequence);
        fresh.push(event);
    }
    let keys: Vec<(u64, u64)> = fresh.iter().map(|e| (e.producer(), e.sequence())).collect();
    let (taken, failure) = deliver_forwarded(shared, state, origin, fresh);
    if let Some(activated) = state.activated.get_mut(&origin) {
        for &(producer, sequence) in &keys[..taken] {
            activated.taken += 1;
            activated.seen.insert(producer, sequence);
        }
    }
    if let Some(e) = failure {
        // No reply: the sender re-sends from the failed event.
        tracing::warn!(origin, error = %e, "forwarded event failed");
        return;
    }
    if let Some(activated) = state.activated.get(&origin) {
        send(
            shared,
            from,
            &MigrationMessage::ReplayComplete {
                origin,
                replayed_seq: activated.taken,
            },
        );
    }
}

/// Forwarded events for an activated daemon: applied here as one batch
/// (one work item for an SDK's daemon), or, if the daemon is leaving or
/// gone again, one by one the way a delivery goes. How many were taken,
/// and the error of the next one.
fn deliver_forwarded(
    shared: &Shared,
    state: &mut State,
    origin: u64,
    events: Vec<CausalEvent>,
) -> (usize, Option<ComputeError>) {
    if events.is_empty() {
        return (0, None);
    }
    if state.diverts(origin) {
        let mut taken = 0;
        for event in events {
            if let Err(e) = deliver_locked(shared, state, origin, event, Outputs::Queued) {
                return (taken, Some(e));
            }
            taken += 1;
        }
        return (taken, None);
    }
    match shared
        .registry
        .deliver_batch(origin, &events, &BatchWait::default())
    {
        Ok(delivered) => {
            let done = batch_outcome(shared, delivered, Outputs::Queued);
            (done.outcomes.len(), done.error)
        }
        Err(e) => (0, Some(e.into())),
    }
}

fn on_activate(shared: &Shared, state: &mut State, from: u64, origin: u64) {
    if let Some(mut target) = state.targets.remove(&origin) {
        // The daemon is back where events were still being forwarded to
        // its last node: those not acknowledged join the replay (what the
        // last node applied or sent on is a duplicate there).
        if let Some(forwarder) = state.forwarders.remove(&origin) {
            for event in forwarder.into_pending() {
                if let Err(e) = target.replay.insert(event) {
                    tracing::warn!(origin, error = %e, "replay buffer full");
                }
            }
        }
        if let Err(e) = drain_target(shared, &mut target) {
            tracing::warn!(origin, error = %e, "activation waits for a failing replay");
            state.targets.insert(origin, target);
            return;
        }
        let taken = target.taken;
        if let Err(e) = shared.registry.register(target.host) {
            fail(shared, from, origin, state_failed(e.to_string()));
            return;
        }
        shared.factories.remove(origin);
        state.sources.remove(&origin);
        state.activated.insert(
            origin,
            Activated {
                taken,
                seen: HashMap::new(),
            },
        );
    }
    match state.activated.get(&origin) {
        Some(activated) => send(
            shared,
            from,
            &MigrationMessage::ActivateAck {
                origin,
                replayed_seq: activated.taken,
            },
        ),
        None => fail(
            shared,
            from,
            origin,
            state_failed("no restored daemon to activate"),
        ),
    }
}

/// An arriving daemon's channels are subscribed: RestoreComplete goes to
/// its orchestrator — unless the arrival was aborted or superseded
/// meanwhile, whose subscriptions are let go again.
pub(super) fn on_rebound(shared: &Shared, origin: u64, payload_hash: u64, bindings: Vec<Binding>) {
    let mut state = shared.state();
    let Some(target) = state
        .targets
        .get_mut(&origin)
        .filter(|t| t.payload_hash == payload_hash && !t.bound)
    else {
        // Aborted, or superseded by another snapshot (which subscribes
        // for itself): let go of what this arrival took and the daemon, as
        // it is here now (if at all), does not hold.
        let keep = match state.targets.get(&origin) {
            Some(target) => subscriptions::bindings(target.host.ledger()),
            None => shared
                .registry
                .with_host(origin, |host| subscriptions::bindings(host.ledger()))
                .unwrap_or_default(),
        };
        shared.release_bindings(origin, subscriptions::without(bindings, &keep));
        return;
    };
    target.bound = true;
    let (to, restored_seq) = (target.orchestrator, target.host.head().sequence);
    restore_complete(shared, to, origin, restored_seq);
}

fn on_failed(shared: &Shared, state: &mut State, from: u64, origin: u64) {
    // Only the migration's own orchestrator or target can abort a source.
    let party = state
        .sources
        .get(&origin)
        .is_some_and(|s| s.orchestrator == from || s.target == from);
    if party {
        abort_source(shared, state, origin);
    }
    if state
        .targets
        .get(&origin)
        .is_some_and(|t| t.orchestrator == from)
    {
        if let Some(target) = state.targets.remove(&origin) {
            shared.release_bindings(origin, subscriptions::bindings(target.host.ledger()));
        }
        state.reassembler.0.discard(origin);
        // The daemon stays where it was: events held for it go on there.
        if let Some(forwarder) = state.forwarders.get_mut(&origin) {
            forwarder.paused = false;
            forwarder.pump(shared, origin, Instant::now());
        }
    }
}

// --------------------------------------------------------------- dispatch

/// One inbound 0x0500 message.
pub(super) fn handle(shared: &Shared, from: u64, bytes: Vec<u8>, now: Instant) {
    match SnapshotChunk::parse(&bytes) {
        Ok(Some(chunk)) => {
            let mut state = shared.state();
            if let Some(wanted) = source_chunk_wanted(&state, chunk.origin, from) {
                // The orchestration's (a late or repeated one once the
                // snapshot is through is dropped), never the local target
                // role's.
                if wanted {
                    let (origin, index, total) = (chunk.origin, chunk.index, chunk.total);
                    relay_chunk(
                        shared,
                        &mut state,
                        origin,
                        index,
                        total,
                        Chunk::whole(bytes),
                        now,
                    );
                }
                return;
            }
            on_snapshot_ready(shared, &mut state, from, &chunk, now);
            return;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::debug!(from, error = %e, "undecodable snapshot chunk");
            return;
        }
    }
    let message = match MigrationMessage::decode(&bytes) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(from, error = %e, "undecodable migration message");
            return;
        }
    };
    let mut state = shared.state();
    if orchestrate(shared, &mut state, from, &message, now) {
        return;
    }
    let origin = message.origin();
    if let Some(source) = state.sources.get_mut(&origin)
        && source.orchestrator == from
    {
        source.last_heard = now;
    }
    match message {
        MigrationMessage::TakeSnapshot {
            target_node,
            target_takes_extension,
            ..
        } => {
            on_take_snapshot(
                shared,
                &mut state,
                from,
                origin,
                target_node,
                target_takes_extension,
                now,
            );
        }
        MigrationMessage::BufferedEvents { events, .. } => {
            on_buffered_events(shared, &mut state, from, origin, events);
        }
        MigrationMessage::ReplayComplete { replayed_seq, .. } => {
            on_forward_ack(shared, &mut state, from, origin, Err(replayed_seq), now);
        }
        MigrationMessage::ForwardedEvents {
            stream,
            first,
            events,
            ..
        } => {
            forward::on_forwarded_events(shared, &mut state, from, origin, stream, first, events);
        }
        MigrationMessage::ForwardAck { stream, next, .. } => {
            on_forward_ack(shared, &mut state, from, origin, Ok((stream, next)), now);
        }
        MigrationMessage::CutoverNotify { target_node, .. } => {
            on_cutover(shared, &mut state, from, origin, target_node, now);
        }
        MigrationMessage::ActivateTarget { .. } => on_activate(shared, &mut state, from, origin),
        MigrationMessage::MigrationFailed { reason, .. } => {
            tracing::info!(origin, from, ?reason, "migration failed");
            on_failed(shared, &mut state, from, origin);
        }
        // Replies for an orchestration we no longer hold: stale.
        _ => {}
    }
}

/// Retransmissions and timeouts.
pub(super) fn tick(shared: &Shared, now: Instant) {
    let mut state = shared.state();
    orchestrator_tick(shared, &mut state, now);
    source_tick(shared, &mut state, now);
    // Retransmissions of a refused snapshot end when its orchestrator
    // aborts (at the refusal, or at its step timeout).
    let keep = shared.config.step_timeout.max(shared.config.source_timeout);
    state
        .refused
        .retain(|_, r| now.duration_since(r.at) <= keep);
    state.reassembler.0.sweep(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The identity of a payload in two parts is that of the whole: its
    /// length, first and last 4 KiB (whole for 8 KiB or less).
    #[test]
    fn a_snapshots_identity_is_the_same_however_it_is_split() {
        fn whole(payload: &[u8]) -> u64 {
            const EDGE: usize = 4096;
            if payload.len() <= 2 * EDGE {
                return xxh3_64(payload);
            }
            let mut bytes = (payload.len() as u64).to_le_bytes().to_vec();
            bytes.extend_from_slice(&payload[..EDGE]);
            bytes.extend_from_slice(&payload[payload.len() - EDGE..]);
            xxh3_64(&bytes)
        }
        for len in [0usize, 1, 89, 8192, 8193, 12_000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
            for at in [
                0,
                1,
                89,
                4095,
                4096,
                4097,
                8000,
                len / 2,
                len.saturating_sub(1),
                len,
            ] {
                let (head, rest) = payload.split_at(at.min(len));
                assert_eq!(
                    snapshot_identity(head, rest),
                    whole(&payload),
                    "{len} split at {at}"
                );
            }
        }
        // Another length, or other edges, is another identity.
        let a: Vec<u8> = vec![1; 20_000];
        let mut b = a.clone();
        b[19_999] = 2;
        assert_ne!(
            snapshot_identity(&a[..89], &a[89..]),
            snapshot_identity(&b[..89], &b[89..])
        );
    }
}
