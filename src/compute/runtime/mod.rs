//! The node side of compute (COMPUTE.md §1.6–1.7, §2): a
//! [`ComputeRuntime`] owns a node's [`DaemonRegistry`] and
//! [`DaemonFactoryRegistry`], delivers events to daemons (every output
//! chained by the host's CausalLink and queued for
//! [`ComputeRuntime::next_output`]), and runs the orchestrator, source and
//! target state machines of the 0x0500 migration over a
//! [`MigrationTransport`] (a [`MeshNode`] in production).
//!
//! # Delivery is migration-aware (§8 item 1)
//!
//! [`ComputeRuntime::deliver`] consults the migration state first:
//! - a daemon being snapshotted or transferred here (the **source**) keeps
//!   its events in a [`SourceBuffer`]: capture begins under the same lock
//!   as the snapshot, so every event is either in the snapshot or in the
//!   buffer, never both and never neither;
//! - after cut-over the source **forwards** every event (the buffered ones
//!   first) to the target, in order, retransmitting each batch until the
//!   target acknowledges it — late events are never dropped;
//! - a daemon restored here but not yet activated (the **target**) takes
//!   events into its [`ReplayBuffer`], keyed by (producer, sequence) with
//!   the snapshot's per-producer applied watermarks, so each event is
//!   applied once, in producer order.
//!
//! An event processed here holds only its daemon's lock while the daemon
//! works: the delivery takes it before letting go of the state lock (and a
//! node without migration state takes no state lock), so a slow daemon
//! holds up neither the node's other daemons nor its migration messages.
//!
//! # Reliability (§8 items 3, 6)
//!
//! The 0x0500 messages are v0.11's bytes, one per packet
//! ([`MeshNode::send_subprotocol`]). Reliability is built on the protocol's
//! own request/reply pairs: the orchestrator re-sends the request of its
//! current phase every `retry_interval` until the phase's reply arrives,
//! and every handler is idempotent (a repeated TakeSnapshot re-sends the
//! same chunks, a repeated SnapshotReady re-sends RestoreComplete, …). See
//! `machines.rs` for the flow and where it departs from v0.11.
//!
//! [`MeshNode`]: crate::mesh::MeshNode
//! [`MeshNode::send_subprotocol`]: crate::mesh::MeshNode::send_subprotocol
//! [`SourceBuffer`]: crate::compute::migration::SourceBuffer
//! [`ReplayBuffer`]: crate::compute::migration::ReplayBuffer

mod bulk;
mod lend;
mod machines;
mod placement;
mod subscriptions;

pub use lend::LentBatch;
pub use placement::LOAD_TAG_PREFIX;
pub use subscriptions::{LedgerFollower, SubscriptionError};

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;
use crate::compute::migration::FailureReason;
use crate::compute::{
    BatchWait, CausalEvent, DaemonError, DaemonFactoryRegistry, DaemonHost, DaemonRegistry,
};
use crate::identity::{
    ChannelName, EntityId, EntityKeypair, EnvelopeError, IdentityEnvelope, PermissionToken,
};
use crate::mesh::capability::{CapabilityFilter, CapabilitySet};
use crate::mesh::{ChannelError, MeshError, MeshNode, SubprotocolHandler};
use crate::wire::ids;

use machines::State;

/// Where migration messages go: the mesh node in production, anything in
/// tests.
pub trait MigrationTransport: Send + Sync + 'static {
    /// This node's id.
    fn local_node(&self) -> u64;
    /// Sends one encoded 0x0500 message to `to` (our own id included);
    /// best-effort, one datagram.
    ///
    /// # Errors
    /// Whatever the transport reports (no session with `to`, shut down).
    fn send(&self, to: u64, message: &[u8]) -> Result<(), MeshError>;

    /// Whether `to` takes [`send_stream`](Self::send_stream) (a Net peer
    /// that negotiated subprotocol streams). Default: no.
    fn takes_streams(&self, _to: u64) -> bool {
        false
    }

    /// Sends `messages` to `to` in order, reliably (a Net reliable stream),
    /// waiting for flow-control credit until `deadline` or until `cancel`
    /// fires (the runtime shuts down). Only called for a peer that
    /// [`takes_streams`](Self::takes_streams).
    ///
    /// # Errors
    /// Whatever the transport reports (the peer lacks streams, went away,
    /// the deadline passed, cancelled).
    fn send_stream(
        &self,
        to: u64,
        messages: &[&[u8]],
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<(), MeshError> {
        let _ = (messages, deadline, cancel);
        Err(MeshError::PeerLacks {
            peer: to,
            feature: "subprotocol streams",
        })
    }

    /// Whether `node` is a Net node (`None`: not known here): a source
    /// sends the Net snapshot extension only to a Net target, since a
    /// v0.11 one rejects it. Default: every node is (a transport of Net
    /// runtimes only).
    fn peer_is_net(&self, _node: u64) -> Option<bool> {
        Some(true)
    }

    /// `node`'s X25519 static public key, which a daemon's identity is
    /// sealed to when it migrates there. Default: unknown — a migration
    /// this node is the source of then starts only without
    /// [`MigrationOptions::transport_identity`].
    fn peer_static_key(&self, _node: u64) -> Option<[u8; 32]> {
        None
    }

    /// Opens an identity envelope sealed to this node's static key,
    /// checking that `signer` sealed it for `chain_link`. Default: this
    /// transport has no static key.
    ///
    /// # Errors
    /// As [`IdentityEnvelope::open`].
    fn open_identity_envelope(
        &self,
        envelope: &IdentityEnvelope,
        chain_link: &[u8; 32],
        signer: &EntityId,
    ) -> Result<EntityKeypair, EnvelopeError> {
        let _ = (envelope, chain_link, signer);
        Err(EnvelopeError::SealOpenFailed)
    }

    /// Subscribes this node to `channel` at `publisher`, presenting
    /// `token` if given, and waits for the publisher's answer (a daemon's
    /// subscription, COMPUTE.md §1.8). Default: this transport has no
    /// channels.
    ///
    /// # Errors
    /// As [`MeshNode::subscribe`].
    fn subscribe_channel(
        &self,
        publisher: u64,
        channel: &ChannelName,
        token: Option<&PermissionToken>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        let _ = (channel, token, cancel);
        Err(no_channels(publisher))
    }

    /// Unsubscribes this node from `channel` at `publisher` and waits for
    /// the answer. Default: this transport has no channels.
    ///
    /// # Errors
    /// As [`MeshNode::unsubscribe`].
    fn unsubscribe_channel(
        &self,
        publisher: u64,
        channel: &ChannelName,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        let _ = (channel, cancel);
        Err(no_channels(publisher))
    }

    /// The nodes this node knows of that match `filter`, with what each
    /// announced (the mesh's capability index). Default: none.
    fn migration_candidates(&self, filter: &CapabilityFilter) -> Vec<(u64, CapabilitySet)> {
        let _ = filter;
        Vec::new()
    }

    /// The number of daemons running here changed (the mesh announces it
    /// again). Default: nothing.
    fn load_changed(&self) {}
}

/// A transport without channels, as a channel call's error.
fn no_channels(publisher: u64) -> ChannelError {
    ChannelError::Mesh(MeshError::PeerLacks {
        peer: publisher,
        feature: "channels (the runtime's transport has none)",
    })
}

impl MigrationTransport for MeshNode {
    fn local_node(&self) -> u64 {
        self.node_id()
    }

    fn send(&self, to: u64, message: &[u8]) -> Result<(), MeshError> {
        self.send_subprotocol(to, ids::MIGRATION, message)
    }

    fn takes_streams(&self, to: u64) -> bool {
        self.takes_subprotocol_streams(to)
    }

    fn peer_is_net(&self, node: u64) -> Option<bool> {
        MeshNode::peer_is_net(self, node)
    }

    fn send_stream(
        &self,
        to: u64,
        messages: &[&[u8]],
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<(), MeshError> {
        self.send_subprotocol_stream(to, ids::MIGRATION, messages, Some(deadline), Some(cancel))
    }

    fn peer_static_key(&self, node: u64) -> Option<[u8; 32]> {
        MeshNode::peer_static_key(self, node)
    }

    fn open_identity_envelope(
        &self,
        envelope: &IdentityEnvelope,
        chain_link: &[u8; 32],
        signer: &EntityId,
    ) -> Result<EntityKeypair, EnvelopeError> {
        MeshNode::open_identity_envelope(self, envelope, chain_link, signer)
    }

    fn subscribe_channel(
        &self,
        publisher: u64,
        channel: &ChannelName,
        token: Option<&PermissionToken>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        self.subscribe(publisher, channel, token, cancel)
    }

    fn migration_candidates(&self, filter: &CapabilityFilter) -> Vec<(u64, CapabilitySet)> {
        self.matching_nodes(filter)
    }

    fn load_changed(&self) {
        self.restamp_announcement();
    }

    fn unsubscribe_channel(
        &self,
        publisher: u64,
        channel: &ChannelName,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        self.unsubscribe(publisher, channel, cancel)
    }
}

/// How one migration is made ([`ComputeRuntime::start_migration_with`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MigrationOptions {
    /// When this node is the source: seal the daemon's identity (its
    /// seed) to the target's static key, bound to the snapshot's chain
    /// head, so the target runs it under the same keys without having
    /// them beforehand (COMPUTE.md §2.6). The start fails with
    /// [`ComputeError::IdentityTransport`] when the target's key is not
    /// known or the keypair is public-only. Off: no envelope; the target
    /// needs a factory entry that holds the keypair. A remote source is
    /// not told (TakeSnapshot has no room for it): it seals whenever it
    /// can. Default: on.
    pub transport_identity: bool,
}

impl Default for MigrationOptions {
    fn default() -> Self {
        Self {
            transport_identity: true,
        }
    }
}

impl MigrationOptions {
    /// The defaults with `transport_identity` set.
    pub fn with_transport_identity(mut self, on: bool) -> Self {
        self.transport_identity = on;
        self
    }
}

/// Timers of a [`ComputeRuntime`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// How often an unanswered migration message is re-sent.
    pub retry_interval: Duration,
    /// How long the orchestrator waits in one phase before Cutover
    /// (Snapshot, Transfer, Restore, Replay) before it aborts everywhere.
    pub step_timeout: Duration,
    /// How long a source waits without hearing from the orchestrator
    /// before it aborts on its own (only before cut-over).
    pub source_timeout: Duration,
    /// Whether snapshots carry the Net extension (`NSX1`: head payload,
    /// horizon, applied watermarks) after the `CDS1` bytes. They carry it
    /// only to a target known to be a Net node (a v0.11 target rejects
    /// it): the orchestrator says so in its TakeSnapshot to a Net source,
    /// a source told nothing judges by its own session with the target.
    /// Off: never.
    pub send_extension: bool,
    /// Outputs kept for [`ComputeRuntime::next_output`]; beyond it the
    /// oldest are dropped (and counted). 0 keeps none: a Rust caller that
    /// takes each delivery's outputs from its outcome saves a copy of every
    /// output (outputs of events a migration replays, which no caller
    /// waits for, then reach no one).
    pub output_capacity: usize,
    /// Bytes per second at which snapshot chunks leave for another node
    /// (default 256 MiB/s; 0: all at once). v0.11's protocol has no
    /// per-chunk acknowledgement, so a chunk lost to a full socket buffer
    /// costs a whole re-send; unpaced, a 64 MiB snapshot on a loaded
    /// machine lost chunks and took 1–3.5 s on loopback, paced ~0.75 s.
    pub transfer_rate: u64,
    /// Events an old source holds for the daemon's new node, delivered and
    /// not yet acknowledged there (default 1 000 000, as the capture
    /// buffer); beyond it a delivery is refused with
    /// [`ComputeError::Buffer`] until the new node catches up.
    pub max_forwarded: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            retry_interval: Duration::from_millis(200),
            step_timeout: Duration::from_secs(10),
            source_timeout: Duration::from_secs(30),
            send_extension: true,
            output_capacity: 65_536,
            transfer_rate: 256 << 20,
            max_forwarded: 1_000_000,
        }
    }
}

impl RuntimeConfig {
    /// The defaults with other timers (tests use short ones).
    pub fn with_timers(
        retry_interval: Duration,
        step_timeout: Duration,
        source_timeout: Duration,
    ) -> Self {
        Self {
            retry_interval,
            step_timeout,
            source_timeout,
            ..Self::default()
        }
    }
}

/// A migration's phase at its orchestrator (§2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum MigrationPhase {
    /// Waiting for the source's snapshot.
    Snapshot,
    /// Forwarding chunks to the target.
    Transfer,
    /// The target restored the daemon (passed through on RestoreComplete).
    Restore,
    /// Waiting for the target's replay of the orchestrator's batch.
    Replay,
    /// The source has handed over; waiting for its cleanup.
    Cutover,
    /// Activating the target.
    Complete,
}

impl MigrationPhase {
    /// The v0.11 phase string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Transfer => "transfer",
            Self::Restore => "restore",
            Self::Replay => "replay",
            Self::Cutover => "cutover",
            Self::Complete => "complete",
        }
    }
}

/// Where a migration this node orchestrates stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationStatus {
    /// In progress, in this phase.
    Running(MigrationPhase),
    /// The target is active; the source copy is gone.
    Completed,
    /// Aborted on every side that could be reached; the daemon stays at
    /// the source (a failure after cut-over is reported, never undone).
    Failed(FailureReason),
}

/// What [`ComputeRuntime::deliver`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// Processed here; the chained outputs (also queued for
    /// [`ComputeRuntime::next_output`]).
    Processed(Vec<CausalEvent>),
    /// Kept for the migration in progress; it will be applied once, on
    /// whichever node ends up running the daemon.
    Buffered,
    /// The daemon has moved; the event is on its way to the new node.
    Forwarded,
    /// Already applied (at or below the producer's watermark); dropped.
    Duplicate,
}

/// What [`ComputeRuntime::deliver_batch`] did: one outcome per event
/// delivered (a prefix of the batch, in order), the chained outputs of
/// the processed ones in one list, and, if it stopped early, the error of
/// the next event; the events after that were not delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Per delivered event, what [`ComputeRuntime::deliver`] would have
    /// done with it.
    pub outcomes: Vec<EventOutcome>,
    /// The chained outputs of the processed events, in order (each
    /// event's [`EventOutcome::Processed`] says how many are its); empty
    /// from [`ComputeRuntime::deliver_batch_queued`], whose outputs go to
    /// the queue. One list rather than one per event: a batch allocates
    /// once for its outputs.
    pub outputs: Vec<CausalEvent>,
    /// Why event `outcomes.len()` was not delivered; `None` when all were.
    pub error: Option<ComputeError>,
}

/// What a batch did with one of its events (see [`DeliveryOutcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventOutcome {
    /// Processed here; `outputs` of [`BatchOutcome::outputs`] are its
    /// (0 from [`ComputeRuntime::deliver_batch_queued`]).
    Processed {
        /// How many of the batch's outputs this event produced.
        outputs: usize,
    },
    /// Kept for the migration in progress.
    Buffered,
    /// On its way to the daemon's new node.
    Forwarded,
    /// Already applied; dropped.
    Duplicate,
}

impl From<&DeliveryOutcome> for EventOutcome {
    fn from(outcome: &DeliveryOutcome) -> Self {
        match outcome {
            DeliveryOutcome::Processed(outputs) => Self::Processed {
                outputs: outputs.len(),
            },
            DeliveryOutcome::Buffered => Self::Buffered,
            DeliveryOutcome::Forwarded => Self::Forwarded,
            DeliveryOutcome::Duplicate => Self::Duplicate,
        }
    }
}

impl BatchOutcome {
    /// Records one event's result; `false` once the batch must stop.
    pub(crate) fn push(&mut self, outcome: Result<DeliveryOutcome, ComputeError>) -> bool {
        match outcome {
            Ok(outcome) => {
                self.outcomes.push(EventOutcome::from(&outcome));
                if let DeliveryOutcome::Processed(outputs) = outcome {
                    self.outputs.extend(outputs);
                }
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// Each delivered event's outcome with its outputs (empty unless
    /// processed, and from `deliver_batch_queued`).
    pub fn per_event(&self) -> impl Iterator<Item = (EventOutcome, &[CausalEvent])> {
        let counts = self.outcomes.iter().map(|outcome| match outcome {
            EventOutcome::Processed { outputs } => *outputs,
            _ => 0,
        });
        let runs = crate::compute::host::split_counts(&self.outputs, counts);
        self.outcomes.iter().copied().zip(runs)
    }
}

/// Why a runtime call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ComputeError {
    /// The daemon, registry or factory refused.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// A migration of this origin is already orchestrated here.
    #[error("daemon {0:#018x} is already migrating")]
    AlreadyMigrating(u64),
    /// Source and target are the same node.
    #[error("source and target are both {0:#018x}")]
    SameNode(u64),
    /// The first message could not be sent (e.g. no session with the
    /// node); the migration was not started.
    #[error("migration transport: {0}")]
    Transport(String),
    /// No migration of this origin is known here.
    #[error("no migration of {0:#018x} is known here")]
    NoMigration(u64),
    /// The migration or a buffer refused the event (buffer full).
    #[error("migration buffer: {0}")]
    Buffer(String),
    /// The wait's deadline passed.
    #[error("timed out")]
    Timeout,
    /// The runtime is shut down.
    #[error("compute runtime is shut down")]
    ShuttingDown,
    /// No node known here takes daemon `origin`: none announces the
    /// migration tag and matches its requirements.
    #[error("no node known here may take daemon {0:#018x}")]
    NoTarget(u64),
    /// The wait's cancel token fired.
    #[error("cancelled")]
    Cancelled,
    /// The daemon's identity cannot travel with the migration (see
    /// [`MigrationOptions::transport_identity`]); nothing was started.
    #[error("identity transport: {0}")]
    IdentityTransport(String),
}

pub(crate) enum Inbound {
    Message {
        from: u64,
        bytes: Vec<u8>,
    },
    /// An arriving daemon's channels are subscribed
    /// (`Shared::rebind_arriving`).
    Rebound {
        origin: u64,
        payload_hash: u64,
        bindings: Vec<subscriptions::Binding>,
    },
    Stop,
}

pub(crate) struct Shared {
    node_id: u64,
    transport: Arc<dyn MigrationTransport>,
    config: RuntimeConfig,
    registry: DaemonRegistry,
    factories: DaemonFactoryRegistry,
    state: Mutex<State>,
    /// No migration state on this node (no source, forwarder or target
    /// record): a delivery may skip the state lock. Written under the
    /// state lock (cleared before a snapshot is taken, recomputed whenever
    /// the lock is released: [`StateGuard`]); read by a delivery while it
    /// holds the daemon's slot lock, which a snapshot also takes, so an
    /// event is either processed before the snapshot or sees the flag
    /// cleared and takes the locked path (`machines::deliver`).
    quiet: AtomicBool,
    /// The number of daemons the node last announced (`placement.rs`).
    announced_load: AtomicU64,
    changed: Condvar,
    outputs: Mutex<VecDeque<CausalEvent>>,
    output_ready: Condvar,
    /// Threads asleep in `next_output`, counted under the `outputs` lock:
    /// a delivery with nobody waiting skips the wake-up (a syscall).
    output_waiters: AtomicUsize,
    outputs_dropped: AtomicU64,
    shutdown: AtomicBool,
    inbox: Mutex<mpsc::Sender<Inbound>>,
    /// Snapshot chunks to Net peers, over a subprotocol stream.
    bulk: bulk::BulkSender,
    /// Which daemons hold each channel subscription here.
    subscriptions: Arc<subscriptions::Subscriptions>,
}

/// The state lock's guard: on release it records whether the node has
/// any migration state left ([`Shared::quiet`]).
pub(crate) struct StateGuard<'a> {
    guard: MutexGuard<'a, State>,
    quiet: &'a AtomicBool,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        let quiet = self.guard.is_quiet();
        if self.quiet.load(Ordering::Relaxed) != quiet {
            self.quiet.store(quiet, Ordering::Release);
        }
    }
}

impl Shared {
    fn state(&self) -> StateGuard<'_> {
        StateGuard {
            guard: self.state.lock().unwrap_or_else(PoisonError::into_inner),
            quiet: &self.quiet,
        }
    }

    /// [`state`](Self::state) if no thread holds it now.
    fn try_state(&self) -> Option<StateGuard<'_>> {
        let guard = match self.state.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(StateGuard {
            guard,
            quiet: &self.quiet,
        })
    }

    fn send(&self, to: u64, bytes: &[u8]) -> Result<(), MeshError> {
        self.transport.send(to, bytes)
    }

    /// Whether outputs are kept for `next_output` (`output_capacity` > 0).
    fn keeps_outputs(&self) -> bool {
        self.config.output_capacity > 0
    }

    /// A processed event's outcome, its outputs sent where `sink` says.
    fn hand_out(&self, outputs: Vec<CausalEvent>, sink: machines::Outputs) -> DeliveryOutcome {
        match sink {
            machines::Outputs::Returned => {
                if self.keeps_outputs() {
                    self.push_outputs(outputs.clone());
                }
                DeliveryOutcome::Processed(outputs)
            }
            machines::Outputs::Queued => {
                self.push_outputs(outputs);
                DeliveryOutcome::Processed(Vec::new())
            }
        }
    }

    /// [`hand_out`](Self::hand_out) of a batch's events (their outputs in
    /// one list, `counts[i]` of them event `i`'s), queued under one hold of
    /// the queue's lock; the outcomes and the outputs to return.
    fn hand_out_all(
        &self,
        outputs: Vec<CausalEvent>,
        counts: &[usize],
        sink: machines::Outputs,
    ) -> (Vec<EventOutcome>, Vec<CausalEvent>) {
        let returned = matches!(sink, machines::Outputs::Returned);
        let outcomes = counts
            .iter()
            .map(|&n| EventOutcome::Processed {
                outputs: if returned { n } else { 0 },
            })
            .collect();
        if !self.keeps_outputs() || outputs.is_empty() {
            return (outcomes, if returned { outputs } else { Vec::new() });
        }
        let mut queue = self.outputs.lock().unwrap_or_else(PoisonError::into_inner);
        let returned = if returned {
            self.queue_outputs(&mut queue, outputs.iter().cloned());
            outputs
        } else {
            self.queue_outputs(&mut queue, outputs);
            Vec::new()
        };
        self.wake_output_waiters(&queue);
        (outcomes, returned)
    }

    fn push_outputs(&self, outputs: Vec<CausalEvent>) {
        if outputs.is_empty() || !self.keeps_outputs() {
            return;
        }
        let mut queue = self.outputs.lock().unwrap_or_else(PoisonError::into_inner);
        self.queue_outputs(&mut queue, outputs);
        self.wake_output_waiters(&queue);
    }

    /// Appends to the outputs queue, dropping (and counting) the oldest
    /// beyond `output_capacity`.
    fn queue_outputs(
        &self,
        queue: &mut VecDeque<CausalEvent>,
        outputs: impl IntoIterator<Item = CausalEvent>,
    ) {
        for output in outputs {
            if queue.len() >= self.config.output_capacity {
                queue.pop_front();
                self.outputs_dropped.fetch_add(1, Ordering::Relaxed);
            }
            queue.push_back(output);
        }
    }

    /// Wakes `next_output` waiters; called with the queue's lock held, so
    /// a waiter between its check and its sleep cannot miss it.
    fn wake_output_waiters(&self, _queue: &MutexGuard<'_, VecDeque<CausalEvent>>) {
        if self.output_waiters.load(Ordering::Relaxed) > 0 {
            self.output_ready.notify_all();
        }
    }

    fn enqueue(&self, item: Inbound) {
        let inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        // A closed inbox means the worker ended (shutdown): nothing to do.
        let _ = inbox.send(item);
    }
}

/// The queueing end of a runtime's inbox, installed as the node's 0x0500
/// handler: it only queues (the receive path never waits on a daemon).
struct InboxHandler(Arc<Shared>);

impl SubprotocolHandler for InboxHandler {
    fn on_message(&self, from: u64, message: &[u8]) {
        if !self.0.shutdown.load(Ordering::Relaxed) {
            self.0.enqueue(Inbound::Message {
                from,
                bytes: message.to_vec(),
            });
        }
    }
}

/// How long a wait until `deadline` (`None`: no limit) may still sleep.
fn time_left(deadline: Option<Instant>) -> Result<Duration, ComputeError> {
    let now = Instant::now();
    match deadline {
        Some(deadline) if now >= deadline => Err(ComputeError::Timeout),
        Some(deadline) => Ok(deadline - now),
        None => Ok(Duration::from_secs(3600)),
    }
}

/// A node's compute runtime: see the module doc.
pub struct ComputeRuntime {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    node: Option<Arc<MeshNode>>,
}

impl std::fmt::Debug for ComputeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeRuntime")
            .field("node_id", &format_args!("{:#018x}", self.shared.node_id))
            .field("daemons", &self.shared.registry.count())
            .finish_non_exhaustive()
    }
}

impl ComputeRuntime {
    /// A runtime over `transport`; feed it inbound messages through
    /// [`handler`](Self::handler).
    ///
    /// # Errors
    /// [`ComputeError::Transport`] if the worker thread cannot start.
    pub fn new(
        transport: Arc<dyn MigrationTransport>,
        config: RuntimeConfig,
    ) -> Result<Self, ComputeError> {
        let (tx, rx) = mpsc::channel();
        let bulk = bulk::BulkSender::new(Arc::clone(&transport), config.step_timeout);
        let shared = Arc::new(Shared {
            node_id: transport.local_node(),
            transport,
            bulk,
            config,
            registry: DaemonRegistry::new(),
            factories: DaemonFactoryRegistry::new(),
            state: Mutex::new(State::default()),
            quiet: AtomicBool::new(true),
            announced_load: AtomicU64::new(0),
            changed: Condvar::new(),
            outputs: Mutex::new(VecDeque::new()),
            output_ready: Condvar::new(),
            output_waiters: AtomicUsize::new(0),
            outputs_dropped: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            inbox: Mutex::new(tx),
            subscriptions: Arc::default(),
        });
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("net-compute".into())
            .spawn(move || worker_loop(&worker_shared, &rx))
            .map_err(|e| ComputeError::Transport(format!("worker thread: {e}")))?;
        Ok(Self {
            shared,
            worker: Mutex::new(Some(worker)),
            node: None,
        })
    }

    /// A runtime on `node`, installed as its 0x0500 handler.
    ///
    /// # Errors
    /// [`ComputeError::Transport`] if the node already has a 0x0500
    /// handler or the worker cannot start.
    pub fn on_mesh(node: Arc<MeshNode>, config: RuntimeConfig) -> Result<Self, ComputeError> {
        let mut runtime = Self::new(Arc::clone(&node) as Arc<dyn MigrationTransport>, config)?;
        node.register_subprotocol(ids::MIGRATION, runtime.handler())
            .map_err(|e| ComputeError::Transport(e.to_string()))?;
        node.set_tag_stamp(Some(placement::tag_stamp(Arc::downgrade(&runtime.shared))));
        node.restamp_announcement();
        runtime.node = Some(node);
        Ok(runtime)
    }

    /// The handler that queues inbound 0x0500 messages for this runtime.
    pub fn handler(&self) -> Arc<dyn SubprotocolHandler> {
        Arc::new(InboxHandler(Arc::clone(&self.shared)))
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.shared.node_id
    }

    /// The daemons running here.
    pub fn registry(&self) -> &DaemonRegistry {
        &self.shared.registry
    }

    /// The factories migration targets build daemons with.
    pub fn factories(&self) -> &DaemonFactoryRegistry {
        &self.shared.factories
    }

    /// Runs `host` here.
    ///
    /// # Errors
    /// [`DaemonError::AlreadyRegistered`]; [`ComputeError::ShuttingDown`].
    pub fn spawn(&self, host: DaemonHost) -> Result<u64, ComputeError> {
        self.check_running()?;
        let origin = host.origin_hash();
        self.shared.registry.register(host)?;
        Ok(origin)
    }

    /// Delivers one event to daemon `origin`, wherever the migration state
    /// says it belongs (see the module doc).
    ///
    /// # Errors
    /// The daemon's error (not found, process failed); a full migration
    /// buffer; [`ComputeError::ShuttingDown`].
    pub fn deliver(
        &self,
        origin: u64,
        event: CausalEvent,
    ) -> Result<DeliveryOutcome, ComputeError> {
        self.check_running()?;
        machines::deliver(&self.shared, origin, event, machines::Outputs::Returned)
    }

    /// [`deliver`](Self::deliver) for a caller that reads the outputs from
    /// [`next_output`](Self::next_output) (as the C ABI's callers do): they
    /// are moved into the queue instead of copied, and `Processed` carries
    /// none.
    ///
    /// # Errors
    /// As [`deliver`](Self::deliver).
    pub fn deliver_queued(
        &self,
        origin: u64,
        event: CausalEvent,
    ) -> Result<DeliveryOutcome, ComputeError> {
        self.check_running()?;
        machines::deliver(&self.shared, origin, event, machines::Outputs::Queued)
    }

    /// Delivers `events` to daemon `origin` in order, with the effects of
    /// one [`deliver`](Self::deliver) per event (buffering, forwarding,
    /// duplicates, the daemon's chain, horizon, watermarks and stats are
    /// per event), stopping at the first event that fails. Events processed
    /// here reach the daemon as one [`MeshDaemon::process_batch`] call: a
    /// foreign daemon gets one work item for the batch. `wait` bounds only
    /// the wait for the daemon to take the batch up
    /// ([`DaemonError::TimedOut`], [`DaemonError::Cancelled`]: nothing
    /// applied).
    ///
    /// # Errors
    /// [`ComputeError::ShuttingDown`], or the daemon lookup's error
    /// (nothing delivered); a failure partway is in the [`BatchOutcome`].
    ///
    /// [`MeshDaemon::process_batch`]: crate::compute::MeshDaemon::process_batch
    pub fn deliver_batch(
        &self,
        origin: u64,
        events: Vec<CausalEvent>,
        wait: &BatchWait,
    ) -> Result<BatchOutcome, ComputeError> {
        self.check_running()?;
        machines::deliver_batch(
            &self.shared,
            origin,
            events,
            wait,
            machines::Outputs::Returned,
        )
    }

    /// [`deliver_batch`](Self::deliver_batch) for a caller that reads the
    /// outputs from [`next_output`](Self::next_output): moved into the
    /// queue, none in the outcomes.
    ///
    /// # Errors
    /// As [`deliver_batch`](Self::deliver_batch).
    pub fn deliver_batch_queued(
        &self,
        origin: u64,
        events: Vec<CausalEvent>,
        wait: &BatchWait,
    ) -> Result<BatchOutcome, ComputeError> {
        self.check_running()?;
        machines::deliver_batch(
            &self.shared,
            origin,
            events,
            wait,
            machines::Outputs::Queued,
        )
    }

    /// Starts migrating daemon `origin` from node `source` to node
    /// `target`, orchestrated here (this node may be either, or a third).
    ///
    /// # Errors
    /// [`ComputeError::AlreadyMigrating`]; [`ComputeError::SameNode`];
    /// [`ComputeError::Transport`] if the source cannot be reached (the
    /// record is removed).
    pub fn start_migration(
        &self,
        origin: u64,
        source: u64,
        target: u64,
    ) -> Result<(), ComputeError> {
        self.start_migration_with(origin, source, target, &MigrationOptions::default())
    }

    /// [`start_migration`](Self::start_migration) with options.
    ///
    /// # Errors
    /// As `start_migration`; [`ComputeError::IdentityTransport`] (see
    /// [`MigrationOptions::transport_identity`]).
    pub fn start_migration_with(
        &self,
        origin: u64,
        source: u64,
        target: u64,
        options: &MigrationOptions,
    ) -> Result<(), ComputeError> {
        self.check_running()?;
        if source == target {
            return Err(ComputeError::SameNode(source));
        }
        machines::start(
            &self.shared,
            origin,
            source,
            target,
            options,
            Instant::now(),
        )
    }

    /// The status of the migration of `origin` orchestrated here, if any
    /// (the last one, once finished).
    pub fn migration_status(&self, origin: u64) -> Option<MigrationStatus> {
        self.shared.state().status(origin)
    }

    /// Waits until the migration of `origin` orchestrated here finishes.
    ///
    /// # Errors
    /// [`ComputeError::NoMigration`]; [`ComputeError::Timeout`] (the
    /// migration goes on); [`ComputeError::ShuttingDown`].
    pub fn wait_migration(
        &self,
        origin: u64,
        timeout: Duration,
    ) -> Result<MigrationStatus, ComputeError> {
        self.wait_migration_cancellable(origin, Some(timeout), None)
    }

    /// [`wait_migration`](Self::wait_migration) with no limit (`None`) and
    /// a token that ends the wait.
    ///
    /// # Errors
    /// As `wait_migration`; [`ComputeError::Cancelled`] once `cancel`
    /// fires.
    pub fn wait_migration_cancellable(
        &self,
        origin: u64,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<MigrationStatus, ComputeError> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let _wake = cancel.map(|token| {
            let shared = Arc::clone(&self.shared);
            token.on_cancel(move || {
                let _state = shared.state();
                shared.changed.notify_all();
            })
        });
        // Only read here: the plain guard (no `quiet` to recompute).
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            match state.status(origin) {
                None => return Err(ComputeError::NoMigration(origin)),
                Some(MigrationStatus::Running(_)) => {}
                Some(done) => return Ok(done),
            }
            if self.shared.shutdown.load(Ordering::SeqCst) {
                return Err(ComputeError::ShuttingDown);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(ComputeError::Cancelled);
            }
            let wait = time_left(deadline)?;
            state = self
                .shared
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until `done` returns `Some` for daemon `origin`'s host here,
    /// checking it now and after every delivery, registration or removal on
    /// this node. A daemon not here (yet: it may arrive by migration) is
    /// waited for. `None` waits without limit.
    ///
    /// # Errors
    /// [`ComputeError::Timeout`]; [`ComputeError::Cancelled`] once
    /// `cancel` fires; [`ComputeError::ShuttingDown`].
    pub fn wait_daemon<R>(
        &self,
        origin: u64,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
        mut done: impl FnMut(&DaemonHost) -> Option<R>,
    ) -> Result<R, ComputeError> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let _wake = cancel.map(|token| {
            let shared = Arc::clone(&self.shared);
            token.on_cancel(move || shared.registry.bump())
        });
        let registry = &self.shared.registry;
        // Watched before the first look, so no delivery after it is missed.
        let watch = registry.watch();
        loop {
            let seen = watch.changes();
            match registry.with_host(origin, |host| done(host)) {
                Ok(Some(result)) => return Ok(result),
                Ok(None) | Err(DaemonError::NotFound(_) | DaemonError::Stale(_)) => {}
                Err(e) => return Err(e.into()),
            }
            if self.shared.shutdown.load(Ordering::SeqCst) {
                return Err(ComputeError::ShuttingDown);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(ComputeError::Cancelled);
            }
            let wait = time_left(deadline)?;
            watch.wait(seen, wait);
        }
    }

    /// Whether this node holds any migration state for `origin` (as
    /// orchestrator, source or not-yet-active target).
    pub fn is_migrating(&self, origin: u64) -> bool {
        self.shared.state().is_migrating(origin)
    }

    /// Events forwarded after cut-over that the new node has not yet
    /// acknowledged.
    pub fn unacknowledged_forwards(&self, origin: u64) -> u64 {
        self.shared.state().unacknowledged_forwards(origin)
    }

    /// The next chained output of any daemon here, waiting up to
    /// `timeout`.
    pub fn next_output(&self, timeout: Duration) -> Option<CausalEvent> {
        self.next_output_cancellable(Some(timeout), None)
    }

    /// [`next_output`](Self::next_output) with no limit (`None`) and a
    /// token that ends the wait; `None` also once shut down or cancelled.
    pub fn next_output_cancellable(
        &self,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Option<CausalEvent> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let _wake = cancel.map(|token| {
            let shared = Arc::clone(&self.shared);
            token.on_cancel(move || {
                let _queue = shared
                    .outputs
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                shared.output_ready.notify_all();
            })
        });
        let mut queue = self
            .shared
            .outputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(output) = queue.pop_front() {
                return Some(output);
            }
            if self.shared.shutdown.load(Ordering::SeqCst)
                || cancel.is_some_and(CancelToken::is_cancelled)
            {
                return None;
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(deadline) if now >= deadline => return None,
                Some(deadline) => deadline - now,
                None => Duration::from_secs(3600),
            };
            // Counted while the lock is held: a delivery checks the count
            // under the same lock, so it cannot miss this sleep.
            self.shared.output_waiters.fetch_add(1, Ordering::Relaxed);
            queue = self
                .shared
                .output_ready
                .wait_timeout(queue, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            self.shared.output_waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Outputs dropped because nobody took them in time.
    pub fn outputs_dropped(&self) -> u64 {
        self.shared.outputs_dropped.load(Ordering::Relaxed)
    }

    /// Stops the worker, uninstalls the 0x0500 handler and wakes every
    /// waiter. Idempotent. Daemons stay registered (take them out through
    /// [`registry`](Self::registry) if needed).
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(node) = &self.node {
            node.unregister_subprotocol(ids::MIGRATION);
            // The stamp drops its tags now that the flag is set.
            node.restamp_announcement();
            node.set_tag_stamp(None);
        }
        self.shared.enqueue(Inbound::Stop);
        self.shared.bulk.stop();
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker
            && worker.thread().id() != std::thread::current().id()
        {
            let _ = worker.join();
        }
        self.shared.registry.bump();
        let _state = self.shared.state();
        self.shared.changed.notify_all();
        self.shared.output_ready.notify_all();
    }

    fn check_running(&self) -> Result<(), ComputeError> {
        if self.shared.shutdown.load(Ordering::SeqCst) {
            return Err(ComputeError::ShuttingDown);
        }
        Ok(())
    }
}

impl Drop for ComputeRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker_loop(shared: &Arc<Shared>, rx: &mpsc::Receiver<Inbound>) {
    let tick = (shared.config.retry_interval / 2).max(Duration::from_millis(5));
    let mut next_tick = Instant::now() + tick;
    let mut next_chunk: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let mut wait = next_tick.saturating_duration_since(now);
        if let Some(at) = next_chunk {
            wait = wait.min(at.saturating_duration_since(now));
        }
        match rx.recv_timeout(wait) {
            Ok(Inbound::Message { from, bytes }) => {
                machines::handle(shared, from, bytes, Instant::now());
            }
            Ok(Inbound::Rebound {
                origin,
                payload_hash,
                bindings,
            }) => machines::on_rebound(shared, origin, payload_hash, bindings),
            Ok(Inbound::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        if now >= next_tick {
            machines::tick(shared, now);
            placement::announce_load_if_changed(shared);
            next_tick = now + tick;
        }
        next_chunk = machines::pump_chunks(shared, Instant::now()).map(|d| Instant::now() + d);
    }
}
