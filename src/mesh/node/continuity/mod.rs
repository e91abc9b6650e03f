//! The continuity glue: the node drives a [`ContinuityEngine`] so a user
//! gets partition detection, the heal exchange and reconciliation without
//! writing any of it (`docs/continuity.md`, "How the node drives it").
//!
//! * Feeds: a session coming up → `peer_up`; the failure detector's
//!   Failed / recovered edges (`tasks.rs`) → `on_peer_failed` /
//!   `on_peer_returned`; the reliability tick → `tick` (and the
//!   retransmissions below); packets on 0x0700–0x0702 / 0x0800–0x0801,
//!   through internal subprotocol handlers → `on_message`.
//! * Sends go to Net peers that set `FLAG_CONTINUITY` in their verified
//!   hello only: a v0.11 peer (which never says hello) or a Net node with
//!   continuity off never receives one of these messages.
//! * Chains: the application hands the node the events of the causal
//!   streams it follows ([`MeshNode::observe_chain_event`]); each is
//!   checked by a [`ChainFollower`] and kept (the last
//!   [`MAX_BRANCH_EVENTS`] per chain) to answer branch requests.
//! * Branch transfer in pieces: a Branch answer is cut into messages of at
//!   most `PIECE_BUDGET` (7 000) bytes (consecutive `after_seq`s), followed by a
//!   ChainHead naming the sender's head, which tells the requester the
//!   branch is complete. Delivery is datagram-like, so the requester asks
//!   again from the last event it holds when a transfer stalls, and each
//!   side re-sends its HealHello until the peer's arrives (bounded).
//! * On a complete branch the node reconciles: a loser rewrites its log
//!   with the winning events and keeps the fork (record + re-chained
//!   events); the fork is announced (ForkAnnounce with the partition key)
//!   to every continuity peer, which adopts it, so every node names it.
//!
//! The engine and the chains sit behind one mutex; nothing is sent while
//! it is held. Handlers run on the receive path: decoding and a bounded
//! amount of work, never a blocking call.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::super::hello::FLAG_CONTINUITY;
use super::super::peer::Peer;
use super::subprotocols::SubprotocolHandler;
use super::{Inner, MeshError, MeshNode};
use crate::cancel::CancelToken;
use crate::compute::CausalEvent;
use crate::continuity::reconcile::MAX_BRANCH_EVENTS;
use crate::continuity::wire::msg_type;
use serde_json::json;

use crate::continuity::{
    ChainFollower, ChainPoint, ContinuityEngine, ContinuityMessage, Discontinuity,
    DiscontinuityReason, EngineConfig, FailureCause, ForkRecord, Observation, Output,
    PartitionEvent, PartitionPhase, PartitionRecord, Reconciliation, Side, reconcile,
};
use crate::wire::ids;

mod proofs;
mod streams;

use proofs::ProofAsk;
pub use proofs::ProofVerdict;
use streams::Proving;

/// The subprotocols the glue handles.
pub const CONTINUITY_SUBPROTOCOLS: [u16; 5] = [
    ids::CONTINUITY,
    ids::FORK_ANNOUNCE,
    ids::PROOF_TRANSFER,
    ids::PARTITION,
    ids::RECONCILE,
];

/// Most bytes of one Branch piece's body (a mesh event holds 8 108).
pub const PIECE_BUDGET: usize = 7_000;
/// Events queued for [`MeshNode::next_continuity_event`]; the oldest go.
pub const EVENT_QUEUE: usize = 4_096;
/// How long a transfer or a HealHello waits before it is asked / sent
/// again, and how many times.
const RETRY_AFTER: Duration = Duration::from_millis(300);
const MAX_RETRIES: u32 = 20;
/// How long a message waits for its peer's identity hello (a session just
/// up) before it is dropped.
const DEFER_FOR: Duration = Duration::from_secs(2);
/// Bytes of one Branch frame beyond its payload (length + link) and of the
/// message header (version, type, origin, after_seq, count).
const FRAME_OVERHEAD: usize = 4 + 32;
const BRANCH_HEADER: usize = 2 + 8 + 8 + 4;
/// Most bytes a branch being received may hold (links and payloads).
pub const MAX_TRANSFER_BYTES: usize = 64 << 20;

/// Why a continuity call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContinuityError {
    /// The node runs without continuity (`MeshConfig::continuity` false).
    #[error("continuity is off on this node")]
    Disabled,
    /// The event's chain is not followed: call `follow_chain` first.
    #[error("chain {0:#018x} is not followed")]
    NotFollowed(u64),
    /// A proof range that is empty-ended or too long: `from_seq` must not
    /// exceed `to_seq`, and a proof spans fewer than 100 000 events
    /// (STORAGE.md §15).
    #[error("no proof spans {from_seq}..={to_seq} (from ≤ to, fewer than 100 000 events)")]
    InvalidProofRange {
        /// First sequence asked.
        from_seq: u64,
        /// Last sequence asked.
        to_seq: u64,
    },
    /// The peer is not connected, or does not run continuity (a v0.11
    /// node, or a Net node with continuity off).
    #[error("peer {0:#018x} is not a connected continuity peer")]
    NotContinuityPeer(u64),
}

/// How one chain came out of a heal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconcileOutcome {
    /// Both sides held the same events.
    Converged,
    /// One side extended the other; `appended` events were added here.
    CaughtUp {
        /// Events this node appended (0 when the peer was behind).
        appended: usize,
    },
    /// The branches parted: the winner's events are the chain now, the
    /// loser's moved to `fork`.
    Diverged {
        /// Whether this node's branch won.
        we_won: bool,
        /// The fork the losing branch became (the same on both sides).
        fork: ForkRecord,
    },
}

/// What happened, in order, on this node's continuity plane.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ContinuityEvent {
    /// A partition record changed (detected, extended, confirmed, healing,
    /// healed).
    Partition(PartitionEvent),
    /// A returned peer's view arrived: both name the split `partition_key`.
    Agreed {
        /// Our record.
        record: u64,
        /// The peer.
        peer: u64,
        /// The key both sides computed.
        partition_key: u64,
    },
    /// A chain was reconciled with `peer`'s branch.
    Reconciled {
        /// The chain.
        origin: u64,
        /// The peer.
        peer: u64,
        /// The split's key, when agreed.
        partition_key: Option<u64>,
        /// The head of the chain afterwards (the winner's).
        head: ChainPoint,
        /// What happened.
        outcome: ReconcileOutcome,
    },
    /// A peer announced a fork this node had not derived; it was adopted.
    ForkAdopted {
        /// The peer.
        peer: u64,
        /// The split's key.
        partition_key: u64,
        /// The fork.
        fork: ForkRecord,
    },
    /// The answer to [`MeshNode::request_continuity_proof`]: how `peer`'s
    /// account of `from_seq..=to_seq` of `origin` compares with ours.
    ProofChecked {
        /// The peer asked.
        peer: u64,
        /// The chain.
        origin: u64,
        /// First sequence asked.
        from_seq: u64,
        /// Last sequence asked.
        to_seq: u64,
        /// The comparison.
        verdict: ProofVerdict,
    },
    /// A followed chain stopped verifying (two writers, a gap, a foreign
    /// link) or a reconciliation was refused.
    ChainBroken {
        /// The chain.
        origin: u64,
        /// The break.
        discontinuity: Option<Discontinuity>,
        /// Why, in words.
        reason: String,
    },
}

/// One partition record and the key agreed for it (once a returned
/// peer's HealHello arrived).
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionStatus {
    /// The record.
    pub record: PartitionRecord,
    /// The shared key.
    pub partition_key: Option<u64>,
}

/// One followed chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainStatusInfo {
    /// The chain.
    pub origin: u64,
    /// Its verified head.
    pub head: ChainPoint,
    /// Events held (the oldest are dropped past [`MAX_BRANCH_EVENTS`]).
    pub held: usize,
    /// The break, when the stream stopped verifying.
    pub broken: Option<Discontinuity>,
    /// Forks of this chain this node knows (derived or adopted).
    pub forks: Vec<ForkRecord>,
    /// The continuity peer its events last came from on a causal stream
    /// (the peer the node proves it against).
    pub source: Option<u64>,
    /// The last sequence the node's own proofs settled (0: none yet).
    pub proved_to: u64,
    /// A proof against the source conflicted (no more until the chain is
    /// reconciled).
    pub proof_conflicted: bool,
}

struct Chain {
    /// Consecutive events, the oldest first (the genesis when it is held).
    log: VecDeque<CausalEvent>,
    follower: ChainFollower,
    forks: Vec<ForkRecord>,
    /// Each fork's re-chained events.
    fork_events: BTreeMap<u64, Vec<CausalEvent>>,
    /// Its automatic proofs (`streams.rs`).
    proving: Proving,
}

impl Chain {
    fn head(&self) -> ChainPoint {
        let link = self.follower.head();
        ChainPoint {
            origin: link.origin_hash,
            seq: link.sequence,
            hash: self.follower.head_hash(),
        }
    }

    /// Events from `seq` on, if `seq` is held.
    fn events_from(&self, seq: u64) -> Option<Vec<CausalEvent>> {
        let first = self.log.front()?.link.sequence;
        let at = usize::try_from(seq.checked_sub(first)?).ok()?;
        (at < self.log.len()).then(|| self.log.iter().skip(at).cloned().collect())
    }

    fn push(&mut self, event: CausalEvent) {
        if self.log.len() > MAX_BRANCH_EVENTS {
            self.log.pop_front();
        }
        self.log.push_back(event);
    }

    /// Rewrites the log after `common_seq` with `events` and follows them.
    fn rewrite(&mut self, common_seq: u64, events: &[CausalEvent], now_ms: u64) {
        while self
            .log
            .back()
            .is_some_and(|e| e.link.sequence > common_seq)
        {
            self.log.pop_back();
        }
        if let Some(common) = self.log.back() {
            self.follower = ChainFollower::from_head(common.link, &common.payload);
        }
        // What was proved past the common event no longer stands.
        self.proving.proved_to = self.proving.proved_to.min(common_seq);
        self.proving.conflicted = false;
        for event in events {
            self.follower.observe(&event.link, &event.payload, now_ms);
            self.push(event.clone());
        }
    }

    fn add_fork(&mut self, fork: ForkRecord) -> bool {
        if self.forks.contains(&fork) {
            return false;
        }
        self.forks.push(fork);
        true
    }
}

/// A branch arriving in pieces from one peer.
struct Transfer {
    /// The split sequence asked for.
    after_seq: u64,
    events: Vec<CausalEvent>,
    /// Bytes held (links and payloads), capped at [`MAX_TRANSFER_BYTES`].
    bytes: usize,
    /// The sender's head, once its ChainHead arrived.
    head: Option<ChainPoint>,
    last_progress: Instant,
    retries: u32,
}

struct HelloRetry {
    /// The HealHello, or its parts.
    parts: Vec<Vec<u8>>,
    last_sent: Instant,
    retries: u32,
}

struct State {
    engine: ContinuityEngine,
    chains: BTreeMap<u64, Chain>,
    transfers: BTreeMap<(u64, u64), Transfer>,
    /// HealHellos we sent whose answer (the peer's own) has not arrived.
    hellos: BTreeMap<u64, HelloRetry>,
    /// The key agreed with each returned peer.
    keys: BTreeMap<u64, u64>,
    /// Proofs we asked peers for, by (peer, origin).
    proof_asks: BTreeMap<(u64, u64), ProofAsk>,
    /// When each peer was last served a proof, and how many in that
    /// second (a bound on the hashing a peer can make us do).
    proofs_served: BTreeMap<u64, (Instant, u32)>,
    events: VecDeque<ContinuityEvent>,
    events_dropped: u64,
    /// Messages for peers whose identity hello has not arrived, and when
    /// they were first held back.
    deferred: Vec<(Message, Instant)>,
    /// Peers the engine holds as failed: a new session with one of them
    /// (a restarted or reconnected peer, after its old session was
    /// evicted) is its return, not a fresh peer.
    failed: BTreeSet<u64>,
}

/// The node's continuity state (`Inner::continuity`).
pub(super) struct ContinuityGlue {
    enabled: bool,
    state: Mutex<State>,
    changed: Condvar,
    /// Chains followed (a lock-free "nothing to tap" on the data path).
    followed: AtomicUsize,
    /// How often a chain is proved against its source (zero: never).
    proof_interval: Duration,
}

/// Where an outgoing message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    Peer(u64),
    /// Every peer that runs continuity (fork announcements).
    Everyone,
}

/// A message: where, on which subprotocol, the body.
type Message = (To, u16, Vec<u8>);

/// Messages to send once the lock is released.
type Outgoing = Vec<Message>;

impl ContinuityGlue {
    pub(super) fn new(node_id: u64, enabled: bool, proof_interval: Duration) -> Self {
        Self {
            enabled,
            followed: AtomicUsize::new(0),
            proof_interval,
            state: Mutex::new(State {
                engine: ContinuityEngine::new(node_id, EngineConfig::default()),
                chains: BTreeMap::new(),
                transfers: BTreeMap::new(),
                hellos: BTreeMap::new(),
                keys: BTreeMap::new(),
                proof_asks: BTreeMap::new(),
                proofs_served: BTreeMap::new(),
                events: VecDeque::new(),
                events_dropped: 0,
                deferred: Vec::new(),
                failed: BTreeSet::new(),
            }),
            changed: Condvar::new(),
        }
    }

    /// Wakes every continuity wait (shutdown).
    pub(super) fn wake_all(&self) {
        drop(self.state());
        self.changed.notify_all();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn emit(&mut self, event: ContinuityEvent) {
        if self.events.len() >= EVENT_QUEUE {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    /// Checks the next event of a followed chain (None: not followed) and
    /// keeps it when it extends the chain; a break is reported.
    fn observe(&mut self, event: CausalEvent, now_ms: u64) -> Option<Observation> {
        let origin = event.link.origin_hash;
        let chain = self.chains.get_mut(&origin)?;
        let observation = chain.follower.observe(&event.link, &event.payload, now_ms);
        match observation {
            Observation::Extended => {
                chain.push(event);
                let head = chain.head();
                self.engine.set_head(head);
            }
            Observation::Broke(discontinuity) => self.emit(ContinuityEvent::ChainBroken {
                origin,
                discontinuity: Some(discontinuity),
                reason: "the stream stopped verifying".to_string(),
            }),
            _ => {}
        }
        Some(observation)
    }

    fn horizon(&self) -> Vec<(u64, u64)> {
        self.chains
            .iter()
            .map(|(&origin, chain)| (origin, chain.follower.head().sequence))
            .collect()
    }

    /// Handles the engine's outputs; returns what to send.
    fn apply(&mut self, outputs: Vec<Output>, now: Instant, now_ms: u64) -> Outgoing {
        let mut out = Outgoing::new();
        // Peers given a new HealHello here (its parts come one after another).
        let mut hello_to = BTreeSet::new();
        for output in outputs {
            match output {
                Output::Send {
                    to,
                    subprotocol,
                    bytes,
                } => {
                    if subprotocol == ids::PARTITION {
                        let retry = self.hellos.entry(to).or_insert(HelloRetry {
                            parts: Vec::new(),
                            last_sent: now,
                            retries: 0,
                        });
                        if hello_to.insert(to) {
                            retry.parts.clear();
                            retry.last_sent = now;
                            retry.retries = 0;
                        }
                        retry.parts.push(bytes.clone());
                    }
                    out.push((To::Peer(to), subprotocol, bytes));
                }
                Output::Partition(event) => self.emit(ContinuityEvent::Partition(event)),
                Output::HealAgreed {
                    record,
                    peer,
                    partition_key,
                } => {
                    self.keys.insert(peer, partition_key);
                    self.emit(ContinuityEvent::Agreed {
                        record,
                        peer,
                        partition_key,
                    });
                }
                Output::BranchRequested {
                    peer,
                    origin,
                    after_seq,
                } => self.serve_branch(peer, origin, after_seq, &mut out),
                Output::BranchReceived {
                    peer,
                    origin,
                    after_seq,
                    events,
                } => self.on_piece(peer, origin, after_seq, events, now, now_ms, &mut out),
                Output::ChainHead { peer, head } => {
                    if let Some(transfer) = self.transfers.get_mut(&(peer, head.origin)) {
                        transfer.head = Some(head);
                        self.try_finish(peer, head.origin, now_ms, &mut out);
                    } else if !self.on_proof_refused(peer, head) {
                        // Not the answer of a peer that cannot prove a
                        // span we asked: a late one, checked all the same.
                        self.check_unsolicited_head(peer, head);
                    }
                }
                Output::ForkAnnounced {
                    peer,
                    partition_key,
                    record,
                } => {
                    let adopted = self
                        .chains
                        .get_mut(&record.original_origin)
                        .is_some_and(|chain| chain.add_fork(record));
                    if adopted {
                        self.emit(ContinuityEvent::ForkAdopted {
                            peer,
                            partition_key,
                            fork: record,
                        });
                    }
                }
                Output::ProofRequested {
                    peer,
                    origin,
                    from_seq,
                    to_seq,
                } => self.serve_proof(peer, origin, from_seq, to_seq, now, &mut out),
                Output::ProofReceived { peer, proof } => self.on_proof(peer, &proof),
            }
        }
        out
    }

    /// Our events of `origin` from `after_seq`, as Branch pieces and then
    /// our head.
    fn serve_branch(&self, peer: u64, origin: u64, after_seq: u64, out: &mut Outgoing) {
        let Some(chain) = self.chains.get(&origin) else {
            return;
        };
        let Some(events) = chain.events_from(after_seq) else {
            tracing::debug!(
                peer,
                origin,
                after_seq,
                "branch asked from a point not held"
            );
            return;
        };
        let mut piece: Vec<CausalEvent> = Vec::new();
        let mut size = BRANCH_HEADER;
        let mut first = after_seq;
        for event in events {
            let cost = FRAME_OVERHEAD + event.payload.len();
            if !piece.is_empty() && size + cost > PIECE_BUDGET {
                let next = first.saturating_add(piece.len() as u64);
                push_branch(
                    &self.engine,
                    peer,
                    origin,
                    first,
                    std::mem::take(&mut piece),
                    out,
                );
                first = next;
                size = BRANCH_HEADER;
            }
            size += cost;
            piece.push(event);
        }
        if !piece.is_empty() {
            push_branch(&self.engine, peer, origin, first, piece, out);
        }
        if let Ok(Output::Send {
            to,
            subprotocol,
            bytes,
        }) = self
            .engine
            .outgoing(peer, &ContinuityMessage::ChainHead(chain.head()))
        {
            out.push((To::Peer(to), subprotocol, bytes));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_piece(
        &mut self,
        peer: u64,
        origin: u64,
        after_seq: u64,
        events: Vec<CausalEvent>,
        now: Instant,
        now_ms: u64,
        out: &mut Outgoing,
    ) {
        let Some(transfer) = self.transfers.get_mut(&(peer, origin)) else {
            return;
        };
        let next = transfer
            .events
            .last()
            .map_or(transfer.after_seq, |e| e.link.sequence.saturating_add(1));
        // A piece may repeat what we hold (a re-asked transfer starts at
        // our last event): keep only what extends it.
        if after_seq > next {
            return;
        }
        let skip = usize::try_from(next - after_seq).unwrap_or(usize::MAX);
        let mut moved = false;
        for event in events.into_iter().skip(skip) {
            transfer.bytes += FRAME_OVERHEAD + event.payload.len();
            if transfer.events.len() > MAX_BRANCH_EVENTS || transfer.bytes > MAX_TRANSFER_BYTES {
                tracing::debug!(peer, origin, "branch over its bounds: transfer dropped");
                self.transfers.remove(&(peer, origin));
                return;
            }
            transfer.events.push(event);
            moved = true;
        }
        if moved {
            transfer.last_progress = now;
            transfer.retries = 0;
        }
        self.try_finish(peer, origin, now_ms, out);
    }

    /// Reconciles once the transfer holds the sender's head.
    fn try_finish(&mut self, peer: u64, origin: u64, now_ms: u64, out: &mut Outgoing) {
        let Some(transfer) = self.transfers.get(&(peer, origin)) else {
            return;
        };
        let (Some(head), Some(last)) = (transfer.head, transfer.events.last()) else {
            return;
        };
        if last.link.sequence < head.seq {
            return;
        }
        let Some(transfer) = self.transfers.remove(&(peer, origin)) else {
            return;
        };
        self.reconcile_with(peer, origin, transfer, now_ms, out);
    }

    fn reconcile_with(
        &mut self,
        peer: u64,
        origin: u64,
        transfer: Transfer,
        now_ms: u64,
        out: &mut Outgoing,
    ) {
        let key = self.keys.get(&peer).copied();
        let Some(chain) = self.chains.get_mut(&origin) else {
            return;
        };
        let Some(ours) = chain.events_from(transfer.after_seq) else {
            return;
        };
        let theirs = transfer.events;
        let (Some(split), Some(their_split)) = (ours.first(), theirs.first()) else {
            return;
        };
        if split != their_split {
            let reason = "the peer's branch does not start at our split event".to_string();
            self.emit(ContinuityEvent::ChainBroken {
                origin,
                discontinuity: None,
                reason,
            });
            return;
        }
        let outcome = match reconcile(split, &ours[1..], &theirs[1..]) {
            Ok(Reconciliation::AlreadyConverged) => ReconcileOutcome::Converged,
            Ok(Reconciliation::Catchup { behind, events }) => {
                let appended = if behind == Side::Ours {
                    for event in &events {
                        chain.follower.observe(&event.link, &event.payload, now_ms);
                        chain.push(event.clone());
                    }
                    events.len()
                } else {
                    0
                };
                ReconcileOutcome::CaughtUp { appended }
            }
            Ok(Reconciliation::Diverged(divergence)) => {
                let we_won = divergence.winner == Side::Ours;
                if !we_won {
                    chain.rewrite(divergence.common_seq, &divergence.winning, now_ms);
                }
                let fork = divergence.fork;
                chain.add_fork(fork);
                chain
                    .fork_events
                    .insert(fork.forked_origin, divergence.fork_events);
                ReconcileOutcome::Diverged { we_won, fork }
            }
            Err(error) => {
                self.emit(ContinuityEvent::ChainBroken {
                    origin,
                    discontinuity: None,
                    reason: error.to_string(),
                });
                return;
            }
        };
        let head = chain.head();
        self.engine.set_head(head);
        if let ReconcileOutcome::Diverged { fork, .. } = outcome {
            let announce = ContinuityMessage::ForkAnnounce {
                partition_key: key.unwrap_or(0),
                record: fork,
            };
            if let Ok(bytes) = announce.encode() {
                out.push((To::Everyone, announce.subprotocol(), bytes));
            }
        }
        self.emit(ContinuityEvent::Reconciled {
            origin,
            peer,
            partition_key: key,
            head,
            outcome,
        });
    }

    /// Starts a transfer for each BranchRequest we send.
    fn track_requests(&mut self, outgoing: &Outgoing, now: Instant) {
        for (to, subprotocol, bytes) in outgoing {
            let To::Peer(to) = *to else {
                continue;
            };
            // Only requests (a Branch piece is not decoded again).
            if *subprotocol != ids::RECONCILE || bytes.get(1) != Some(&msg_type::BRANCH_REQUEST) {
                continue;
            }
            if let Ok(ContinuityMessage::BranchRequest { origin, after_seq }) =
                ContinuityMessage::decode(*subprotocol, bytes)
            {
                self.transfers.entry((to, origin)).or_insert(Transfer {
                    after_seq,
                    events: Vec::new(),
                    bytes: 0,
                    head: None,
                    last_progress: now,
                    retries: 0,
                });
            }
        }
    }

    /// Re-asks stalled transfers and re-sends unanswered HealHellos.
    fn retries(&mut self, now: Instant) -> Outgoing {
        let mut out = Outgoing::new();
        self.transfers.retain(|&(peer, origin), transfer| {
            if now.saturating_duration_since(transfer.last_progress) < RETRY_AFTER {
                return true;
            }
            if transfer.retries >= MAX_RETRIES {
                tracing::debug!(peer, origin, "branch transfer given up");
                return false;
            }
            transfer.retries += 1;
            transfer.last_progress = now;
            let from = transfer
                .events
                .last()
                .map_or(transfer.after_seq, |e| e.link.sequence);
            let ask = ContinuityMessage::BranchRequest {
                origin,
                after_seq: from,
            };
            if let Ok(bytes) = ask.encode() {
                out.push((To::Peer(peer), ask.subprotocol(), bytes));
            }
            true
        });
        self.proof_retries(now, &mut out);
        self.hellos.retain(|&peer, hello| {
            if now.saturating_duration_since(hello.last_sent) < RETRY_AFTER {
                return true;
            }
            if hello.retries >= MAX_RETRIES {
                return false;
            }
            hello.retries += 1;
            hello.last_sent = now;
            out.extend(
                hello
                    .parts
                    .iter()
                    .map(|bytes| (To::Peer(peer), ids::PARTITION, bytes.clone())),
            );
            true
        });
        out
    }
}

fn push_branch(
    engine: &ContinuityEngine,
    peer: u64,
    origin: u64,
    after_seq: u64,
    events: Vec<CausalEvent>,
    out: &mut Outgoing,
) {
    match engine.branch(peer, origin, after_seq, events) {
        Ok(Output::Send {
            to,
            subprotocol,
            bytes,
        }) => out.push((To::Peer(to), subprotocol, bytes)),
        Ok(_) => {}
        Err(error) => tracing::debug!(peer, origin, %error, "branch piece not encodable"),
    }
}

/// Whether a peer takes continuity messages now.
enum Gate {
    /// A Net peer whose verified hello set `FLAG_CONTINUITY`.
    Send,
    /// Its identity hello has not arrived yet: ask again later.
    NotYet,
    /// A v0.11 peer, a Net node without continuity, or gone.
    No,
}

/// Routes one continuity subprotocol into the glue.
struct Handler {
    id: u16,
    inner: Weak<Inner>,
}

impl SubprotocolHandler for Handler {
    fn on_message(&self, from: u64, message: &[u8]) {
        if let Some(inner) = self.inner.upgrade() {
            inner.continuity_message(from, self.id, message);
        }
    }
}

impl Inner {
    /// Installs the handlers (construction, when continuity is on).
    pub(super) fn install_continuity(self: &Arc<Self>) {
        if !self.continuity.enabled {
            return;
        }
        for id in CONTINUITY_SUBPROTOCOLS {
            let handler = Arc::new(Handler {
                id,
                inner: Arc::downgrade(self),
            });
            self.subprotocols.install(id, handler);
        }
    }

    /// Whether `id` is one of the continuity ids the node dispatches.
    pub(super) fn continuity_owns(&self, id: u16) -> bool {
        self.continuity.enabled && CONTINUITY_SUBPROTOCOLS.contains(&id)
    }

    fn continuity_now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether `peer` takes continuity messages: a Net peer whose verified
    /// hello set `FLAG_CONTINUITY`.
    fn continuity_peer(&self, node_id: u64) -> Gate {
        let Some(peer) = self.peers.get(&node_id).map(|p| p.value().clone()) else {
            return Gate::No;
        };
        let binding = peer.binding();
        if binding.peer_has(FLAG_CONTINUITY) {
            Gate::Send
        } else if binding.peer_entity.is_none() && !binding.legacy {
            Gate::NotYet
        } else {
            Gate::No
        }
    }

    /// Sends each message to its continuity peers; one for a peer whose
    /// identity hello has not arrived yet (a session just up) is returned,
    /// to be tried again on the tick.
    fn continuity_send(&self, outgoing: Outgoing) -> Outgoing {
        let mut later = Outgoing::new();
        for (to, subprotocol, bytes) in outgoing {
            let targets: Vec<u64> = match to {
                To::Everyone => self.peers.iter().map(|e| *e.key()).collect(),
                To::Peer(peer) => vec![peer],
            };
            for peer in targets {
                match self.continuity_peer(peer) {
                    Gate::Send => {}
                    Gate::NotYet => {
                        later.push((To::Peer(peer), subprotocol, bytes.clone()));
                        continue;
                    }
                    Gate::No => continue,
                }
                if let Err(error) = self.send_subprotocol(peer, subprotocol, &bytes) {
                    tracing::debug!(peer, subprotocol, %error, "continuity message not sent");
                }
            }
        }
        later
    }

    /// Runs `f` on the state, records what it emitted, sends what it
    /// returned (after the lock is released) and wakes waiters.
    fn continuity_drive(&self, f: impl FnOnce(&mut State, Instant, u64) -> Outgoing) {
        if !self.continuity.enabled {
            return;
        }
        let now = Instant::now();
        let now_ms = self.continuity_now_ms();
        let outgoing = {
            let mut state = self.continuity.state();
            let before = state.events.len() + state.events_dropped as usize;
            let outgoing = f(&mut state, now, now_ms);
            state.track_requests(&outgoing, now);
            if state.events.len() + state.events_dropped as usize != before {
                self.continuity.changed.notify_all();
            }
            outgoing
        };
        self.defer(self.continuity_send(outgoing), now);
    }

    pub(super) fn continuity_peer_up(&self, peer: &Peer) {
        let node_id = peer.node_id;
        self.continuity_drive(|state, now, now_ms| {
            if state.failed.remove(&node_id) {
                let outputs = state.engine.on_peer_returned(node_id, now_ms);
                return state.apply(outputs, now, now_ms);
            }
            state.engine.peer_up(node_id, None);
            Outgoing::new()
        });
    }

    pub(super) fn continuity_peer_failed(&self, peer: &Peer) {
        let node_id = peer.node_id;
        let subnet = self.peer_subnet(&self.capabilities.plane(), node_id);
        self.continuity_drive(|state, now, now_ms| {
            state.engine.peer_up(node_id, subnet);
            state.failed.insert(node_id);
            let horizon = state.horizon();
            let outputs = state.engine.on_peer_failed(node_id, now_ms, &horizon);
            state.apply(outputs, now, now_ms)
        });
    }

    pub(super) fn continuity_peer_returned(&self, peer: &Peer) {
        let node_id = peer.node_id;
        self.continuity_drive(|state, now, now_ms| {
            state.failed.remove(&node_id);
            let outputs = state.engine.on_peer_returned(node_id, now_ms);
            state.apply(outputs, now, now_ms)
        });
    }

    /// Keeps messages for peers whose binding is not done, until
    /// [`DEFER_FOR`] after they were first held back.
    fn defer(&self, later: Outgoing, since: Instant) {
        if later.is_empty() {
            return;
        }
        let mut state = self.continuity.state();
        state
            .deferred
            .extend(later.into_iter().map(|message| (message, since)));
    }

    /// The reliability tick's share: confirmations, retransmissions, and
    /// messages held back for peers whose binding was not done.
    pub(super) fn continuity_tick(&self) {
        if !self.continuity.enabled {
            return;
        }
        let deferred = std::mem::take(&mut self.continuity.state().deferred);
        let now = Instant::now();
        for (message, since) in deferred {
            if now.saturating_duration_since(since) < DEFER_FOR {
                self.defer(self.continuity_send(vec![message]), since);
            }
        }
        let interval = self.continuity.proof_interval;
        self.continuity_drive(|state, now, now_ms| {
            let outputs = state.engine.tick(now_ms);
            let mut out = state.apply(outputs, now, now_ms);
            out.extend(state.retries(now));
            out.extend(state.auto_proofs(now, interval));
            out
        });
    }

    fn continuity_message(&self, from: u64, subprotocol: u16, bytes: &[u8]) {
        self.continuity_drive(|state, now, now_ms| {
            let whole_hello =
                subprotocol == ids::PARTITION && bytes.get(1) == Some(&msg_type::HEAL_HELLO);
            match state.engine.on_message(from, subprotocol, bytes) {
                Ok(outputs) => {
                    // Their HealHello (whole, or its last part) answers
                    // ours; whether ours arrived is not known, so a
                    // pending one goes once more (they answer no more).
                    let answered = whole_hello
                        || outputs
                            .iter()
                            .any(|o| matches!(o, Output::HealAgreed { peer, .. } if *peer == from));
                    let again = if answered {
                        state.hellos.remove(&from)
                    } else {
                        None
                    };
                    let mut out = state.apply(outputs, now, now_ms);
                    if let Some(hello) = again {
                        out.extend(
                            hello
                                .parts
                                .into_iter()
                                .map(|bytes| (To::Peer(from), ids::PARTITION, bytes)),
                        );
                    }
                    out
                }
                Err(error) => {
                    tracing::debug!(from, subprotocol, %error, "continuity message refused");
                    Outgoing::new()
                }
            }
        });
    }
}

impl MeshNode {
    fn continuity_on(&self) -> Result<(), MeshError> {
        if self.inner.continuity.enabled {
            Ok(())
        } else {
            Err(MeshError::Continuity(ContinuityError::Disabled))
        }
    }

    /// Follows `origin`'s causal chain from its genesis: its events are
    /// then handed over with [`observe_chain_event`](Self::observe_chain_event),
    /// its head goes into HealHellos, and it is reconciled after a heal.
    /// Following a chain already followed changes nothing.
    ///
    /// # Errors
    /// [`ContinuityError::Disabled`] (as [`MeshError::Continuity`]).
    pub fn follow_chain(&self, origin: u64) -> Result<(), MeshError> {
        self.continuity_on()?;
        self.inner.continuity_drive(|state, _, _| {
            if !state.chains.contains_key(&origin) {
                let genesis = CausalEvent {
                    link: crate::cortex::causal::CausalLink::genesis(origin),
                    payload: Vec::new(),
                    received_at: 0,
                };
                let chain = Chain {
                    log: VecDeque::from([genesis]),
                    follower: ChainFollower::from_genesis(origin),
                    forks: Vec::new(),
                    fork_events: BTreeMap::new(),
                    proving: Proving::default(),
                };
                state.engine.set_head(chain.head());
                state.chains.insert(origin, chain);
                self.inner
                    .continuity
                    .followed
                    .fetch_add(1, Ordering::Relaxed);
            }
            Outgoing::new()
        });
        Ok(())
    }

    /// Hands the node the next event of a followed chain: it is checked
    /// against the chain (a break is reported as
    /// [`ContinuityEvent::ChainBroken`] too) and kept when it extends it.
    ///
    /// # Errors
    /// [`ContinuityError::Disabled`], [`ContinuityError::NotFollowed`].
    pub fn observe_chain_event(&self, event: &CausalEvent) -> Result<Observation, MeshError> {
        self.continuity_on()?;
        let origin = event.link.origin_hash;
        let mut result = Err(MeshError::Continuity(ContinuityError::NotFollowed(origin)));
        self.inner.continuity_drive(|state, _, now_ms| {
            if state.chains.contains_key(&origin)
                && let Some(observation) = state.observe(event.clone(), now_ms)
            {
                result = Ok(observation);
            }
            Outgoing::new()
        });
        result
    }

    /// The events held for a followed chain from `from_seq` on (empty when
    /// `from_seq` is not held).
    pub fn chain_events(&self, origin: u64, from_seq: u64) -> Vec<CausalEvent> {
        let state = self.inner.continuity.state();
        state
            .chains
            .get(&origin)
            .and_then(|chain| chain.events_from(from_seq))
            .unwrap_or_default()
    }

    /// The re-chained events of a fork this node derived (empty for one
    /// only adopted from an announcement).
    pub fn fork_events(&self, original: u64, forked: u64) -> Vec<CausalEvent> {
        let state = self.inner.continuity.state();
        state
            .chains
            .get(&original)
            .and_then(|chain| chain.fork_events.get(&forked).cloned())
            .unwrap_or_default()
    }

    /// The partition records (open ones and healed ones still kept) with
    /// their agreed keys.
    pub fn partitions(&self) -> Vec<PartitionStatus> {
        let state = self.inner.continuity.state();
        state
            .engine
            .partitions()
            .records()
            .iter()
            .map(|record| PartitionStatus {
                partition_key: state.engine.agreed_key(record.id),
                record: record.clone(),
            })
            .collect()
    }

    /// The followed chains.
    pub fn continuity_status(&self) -> Vec<ChainStatusInfo> {
        let state = self.inner.continuity.state();
        state
            .chains
            .iter()
            .map(|(&origin, chain)| ChainStatusInfo {
                origin,
                head: chain.head(),
                held: chain.log.len(),
                broken: chain.follower.broken().copied(),
                forks: chain.forks.clone(),
                source: chain.proving.source,
                proved_to: chain.proving.proved_to,
                proof_conflicted: chain.proving.conflicted,
            })
            .collect()
    }

    /// The next continuity event, waiting up to `timeout` (`None`: as
    /// long as it takes).
    ///
    /// # Errors
    /// [`MeshError::Timeout`], [`MeshError::ShuttingDown`],
    /// [`ContinuityError::Disabled`].
    pub fn next_continuity_event(
        &self,
        timeout: Option<Duration>,
    ) -> Result<ContinuityEvent, MeshError> {
        self.next_continuity_event_cancellable(timeout, None)
    }

    /// [`next_continuity_event`](Self::next_continuity_event) that also
    /// returns [`MeshError::Cancelled`] once `cancel` is cancelled.
    ///
    /// # Errors
    /// As `next_continuity_event`, plus [`MeshError::Cancelled`].
    pub fn next_continuity_event_cancellable(
        &self,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<ContinuityEvent, MeshError> {
        self.continuity_on()?;
        let glue = &self.inner.continuity;
        let _wake = cancel.map(|token| {
            let inner = self.inner.clone();
            token.on_cancel(move || {
                drop(inner.continuity.state());
                inner.continuity.changed.notify_all();
            })
        });
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = glue.state();
        loop {
            if let Some(event) = state.events.pop_front() {
                return Ok(event);
            }
            if self.inner.is_shut_down() {
                return Err(MeshError::ShuttingDown);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(MeshError::Cancelled);
            }
            let wait = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(MeshError::Timeout);
                    }
                    (deadline - now).min(Duration::from_millis(100))
                }
                None => Duration::from_millis(100),
            };
            state = glue
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Events dropped because nobody took them (`EVENT_QUEUE`, 4 096).
    pub fn continuity_events_dropped(&self) -> u64 {
        self.inner.continuity.state().events_dropped
    }
}

// ------------------------------------------------------------------ JSON
// The C ABI's forms (`ffi/continuity.rs`); u64 values are exact integers,
// hashes too.

fn point_json(p: &ChainPoint) -> serde_json::Value {
    json!({"origin": p.origin, "seq": p.seq, "hash": p.hash})
}

fn fork_json(f: &ForkRecord) -> serde_json::Value {
    json!({
        "original_origin": f.original_origin,
        "forked_origin": f.forked_origin,
        "fork_seq": f.fork_seq,
        "bytes": f.to_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>(),
    })
}

fn phase_str(phase: PartitionPhase) -> &'static str {
    match phase {
        PartitionPhase::Suspected => "suspected",
        PartitionPhase::Confirmed => "confirmed",
        PartitionPhase::Healing => "healing",
        PartitionPhase::Healed => "healed",
    }
}

fn cause_json(cause: &FailureCause) -> serde_json::Value {
    match cause {
        FailureCause::SubnetFailure { subnet, share } => {
            json!({"kind": "subnet", "subnet": subnet.to_string(), "share": share})
        }
        FailureCause::BroadOutage => json!({"kind": "broad_outage"}),
        _ => json!({"kind": "unknown"}),
    }
}

impl PartitionStatus {
    /// This record as JSON: `id`, `phase` ("suspected" | "confirmed" |
    /// "healing" | "healed"), `our_side`, `other_side`, `returned` (node
    /// ids ascending), `cause` (`kind` "subnet" with `subnet` and `share`,
    /// "broad_outage" or "unknown"), `horizon_at_split` ([origin, seq]
    /// pairs), `detected_at_ms`, `confirmed_at_ms`, `healed_at_ms` (the
    /// node's clock; null when not yet), `partition_key` (null until
    /// agreed).
    pub fn to_json(&self) -> serde_json::Value {
        let r = &self.record;
        json!({
            "id": r.id,
            "phase": phase_str(r.phase),
            "our_side": r.our_side,
            "other_side": r.other_side,
            "returned": r.returned,
            "cause": cause_json(&r.cause),
            "horizon_at_split": r.horizon_at_split,
            "detected_at_ms": r.detected_at_ms,
            "confirmed_at_ms": r.confirmed_at_ms,
            "healed_at_ms": r.healed_at_ms,
            "partition_key": self.partition_key,
        })
    }
}

impl ChainStatusInfo {
    /// This chain as JSON: `origin`, `head` ({origin, seq, hash}), `held`,
    /// `broken` (null, or {`reason`: "chain_break" | "conflicting_chains",
    /// `last_verified_seq`, `detected_at_ms`}), `forks` (each
    /// {original_origin, forked_origin, fork_seq, bytes: the 65-byte record
    /// in hex}), `source` (null or the peer), `proved_to`,
    /// `proof_conflicted`.
    pub fn to_json(&self) -> serde_json::Value {
        let broken = self.broken.map(|d| {
            let reason = match d.reason {
                DiscontinuityReason::ConflictingChains { .. } => "conflicting_chains",
                _ => "chain_break",
            };
            json!({
                "reason": reason,
                "last_verified_seq": d.last_verified.sequence,
                "detected_at_ms": d.detected_at_ms,
            })
        });
        json!({
            "origin": self.origin,
            "head": point_json(&self.head),
            "held": self.held,
            "broken": broken,
            "forks": self.forks.iter().map(fork_json).collect::<Vec<_>>(),
            "source": self.source,
            "proved_to": self.proved_to,
            "proof_conflicted": self.proof_conflicted,
        })
    }
}

impl ContinuityEvent {
    /// This event as JSON, `type` first: "detected" | "extended" |
    /// "confirmed" | "healed" (with `record`), "healing" (`record`,
    /// `progress`), "agreed" (`record`, `peer`, `partition_key`),
    /// "reconciled" (`origin`, `peer`, `partition_key`, `head`, `outcome`
    /// "converged" | "caught_up" (`appended`) | "diverged" (`we_won`,
    /// `fork`)), "fork_adopted" (`peer`, `partition_key`, `fork`),
    /// "proof_checked" (`peer`, `origin`, `from_seq`, `to_seq`, `verdict`
    /// "consistent" | "conflicts" (`seq`, `ours`, `theirs`) | "unknown" |
    /// "unavailable" (`their_head`) | "unanswered"), "chain_broken"
    /// (`origin`, `reason`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ContinuityEvent::Partition(event) => match event {
                PartitionEvent::Detected(id) => json!({"type": "detected", "record": id}),
                PartitionEvent::Extended(id) => json!({"type": "extended", "record": id}),
                PartitionEvent::Confirmed(id) => json!({"type": "confirmed", "record": id}),
                PartitionEvent::Healing { id, progress } => {
                    json!({"type": "healing", "record": id, "progress": progress})
                }
                PartitionEvent::Healed(id) => json!({"type": "healed", "record": id}),
            },
            ContinuityEvent::Agreed {
                record,
                peer,
                partition_key,
            } => json!({
                "type": "agreed", "record": record, "peer": peer, "partition_key": partition_key,
            }),
            ContinuityEvent::Reconciled {
                origin,
                peer,
                partition_key,
                head,
                outcome,
            } => {
                let mut v = json!({
                    "type": "reconciled",
                    "origin": origin,
                    "peer": peer,
                    "partition_key": partition_key,
                    "head": point_json(head),
                });
                match outcome {
                    ReconcileOutcome::Converged => v["outcome"] = json!("converged"),
                    ReconcileOutcome::CaughtUp { appended } => {
                        v["outcome"] = json!("caught_up");
                        v["appended"] = json!(appended);
                    }
                    ReconcileOutcome::Diverged { we_won, fork } => {
                        v["outcome"] = json!("diverged");
                        v["we_won"] = json!(we_won);
                        v["fork"] = fork_json(fork);
                    }
                }
                v
            }
            ContinuityEvent::ForkAdopted {
                peer,
                partition_key,
                fork,
            } => json!({
                "type": "fork_adopted", "peer": peer, "partition_key": partition_key,
                "fork": fork_json(fork),
            }),
            ContinuityEvent::ProofChecked {
                peer,
                origin,
                from_seq,
                to_seq,
                verdict,
            } => {
                let mut v = json!({
                    "type": "proof_checked", "peer": peer, "origin": origin,
                    "from_seq": from_seq, "to_seq": to_seq,
                });
                verdict.add_json(&mut v);
                v
            }
            ContinuityEvent::ChainBroken { origin, reason, .. } => {
                json!({"type": "chain_broken", "origin": origin, "reason": reason})
            }
        }
    }
}

impl MeshNode {
    /// [`partitions`](Self::partitions) as a JSON array
    /// ([`PartitionStatus::to_json`]).
    pub fn partitions_json(&self) -> String {
        serde_json::Value::Array(
            self.partitions()
                .iter()
                .map(PartitionStatus::to_json)
                .collect(),
        )
        .to_string()
    }

    /// [`continuity_status`](Self::continuity_status) as a JSON array
    /// ([`ChainStatusInfo::to_json`]).
    pub fn continuity_json(&self) -> String {
        serde_json::Value::Array(
            self.continuity_status()
                .iter()
                .map(ChainStatusInfo::to_json)
                .collect(),
        )
        .to_string()
    }
}
