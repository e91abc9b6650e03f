//! [`ContinuityEngine`]: the one value a node drives. It keeps the peers'
//! health, runs correlation and the partition records, and speaks the
//! heal exchange; it returns what to send and what happened, and never
//! touches a socket, a log or a clock.
//!
//! The node's glue is mechanical:
//! - the failure detector's Failed → [`ContinuityEngine::on_peer_failed`],
//!   a peer back → [`ContinuityEngine::on_peer_returned`], a periodic
//!   [`ContinuityEngine::tick`];
//! - a packet on 0x0700–0x0702 / 0x0800–0x0801 →
//!   [`ContinuityEngine::on_message`];
//! - every [`Output::Send`] goes out on its subprotocol; the other outputs
//!   are for the node (events to surface, logs to read).
//!
//! The heal exchange: when a record heals, the engine sends a HealHello
//! (its view of the split and the heads of the chains the node follows,
//! see [`ContinuityEngine::set_head`]) to each returned peer. On a
//! HealHello both sides compute the same [`partition_key`]; for each
//! followed chain whose heads differ, each asks the other for its branch
//! from the split (the chain's entry in the record's horizon). With both
//! branches the node calls [`reconcile`](super::reconcile::reconcile),
//! which picks the same winner and fork on both sides.

use std::collections::{BTreeMap, BTreeSet};

use crate::compute::CausalEvent;
use crate::mesh::channels::SubnetId;

use super::correlation::{CorrelationConfig, CorrelationDetector, Verdict};
use super::partition::{
    PartitionConfig, PartitionEvent, PartitionPhase, PartitionRecord, PartitionTracker,
    partition_key,
};
use super::reconcile::ForkRecord;
use super::wire::{
    ChainPoint, ContinuityMessage, ContinuityWireError, HELLO_PIECE, MAX_HEADS, MAX_SIDE_MEMBERS,
    hello_pieces,
};
use crate::cortex::causal::ContinuityProof;
use crate::wire::ids;

/// What the node should do or know.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Send `bytes` to `to` on `subprotocol`.
    Send {
        /// The peer.
        to: u64,
        /// The subprotocol id.
        subprotocol: u16,
        /// The message body.
        bytes: Vec<u8>,
    },
    /// A partition record changed.
    Partition(PartitionEvent),
    /// A returned peer's view arrived: both sides now name the split
    /// `partition_key`.
    HealAgreed {
        /// Our record.
        record: u64,
        /// The peer.
        peer: u64,
        /// The shared key.
        partition_key: u64,
    },
    /// The peer asks for `origin`'s events from `after_seq`: answer with
    /// [`ContinuityEngine::branch`].
    BranchRequested {
        /// The peer.
        peer: u64,
        /// The chain.
        origin: u64,
        /// The first sequence to send.
        after_seq: u64,
    },
    /// A peer's branch (the split event first): reconcile it with ours.
    BranchReceived {
        /// The peer.
        peer: u64,
        /// The chain.
        origin: u64,
        /// The split sequence.
        after_seq: u64,
        /// The events.
        events: Vec<CausalEvent>,
    },
    /// A peer's chain head, to check with `ChainFollower::check_head`.
    ChainHead {
        /// The peer.
        peer: u64,
        /// Its head.
        head: ChainPoint,
    },
    /// The peer asks for a continuity proof.
    ProofRequested {
        /// The peer.
        peer: u64,
        /// The chain.
        origin: u64,
        /// First sequence.
        from_seq: u64,
        /// Last sequence.
        to_seq: u64,
    },
    /// A peer sent a proof, to verify against the log or a follower.
    ProofReceived {
        /// The peer.
        peer: u64,
        /// The proof.
        proof: ContinuityProof,
    },
    /// A peer announced a fork.
    ForkAnnounced {
        /// The peer.
        peer: u64,
        /// The split's key.
        partition_key: u64,
        /// The lineage (verified structurally).
        record: ForkRecord,
    },
}

/// Settings for the engine (§7 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EngineConfig {
    /// Correlation thresholds.
    pub correlation: CorrelationConfig,
    /// Partition thresholds.
    pub partition: PartitionConfig,
}

#[derive(Debug, Clone, Copy)]
struct PeerState {
    subnet: Option<SubnetId>,
    failed: bool,
}

/// A node's continuity and partition state.
#[derive(Debug, Clone)]
pub struct ContinuityEngine {
    node_id: u64,
    peers: BTreeMap<u64, PeerState>,
    correlation: CorrelationDetector,
    partitions: PartitionTracker,
    heads: BTreeMap<u64, ChainPoint>,
    keys: BTreeMap<u64, u64>,
    /// A HealHello arriving in parts, per peer (a new one replaces it).
    assemblies: BTreeMap<u64, HelloAssembly>,
    /// Records adopted from a peer's HealHello (splits only the other side
    /// saw), and the chains whose branch this node asked for under each.
    adopted: BTreeMap<u64, BTreeSet<u64>>,
    /// The time of the last tick (an adopted record's timestamps).
    now_ms: u64,
}

/// The parts of one HealHello received so far.
#[derive(Debug, Clone)]
struct HelloAssembly {
    hello_id: u64,
    bytes: Vec<u8>,
    /// Which [`HELLO_PIECE`]-byte pieces arrived.
    have: Vec<bool>,
    missing: usize,
}

impl ContinuityEngine {
    /// An engine for node `node_id`.
    pub fn new(node_id: u64, config: EngineConfig) -> Self {
        Self {
            node_id,
            peers: BTreeMap::new(),
            correlation: CorrelationDetector::new(config.correlation),
            partitions: PartitionTracker::new(config.partition),
            heads: BTreeMap::new(),
            keys: BTreeMap::new(),
            assemblies: BTreeMap::new(),
            adopted: BTreeMap::new(),
            now_ms: 0,
        }
    }

    /// A peer with a session (and its subnet, if announced).
    pub fn peer_up(&mut self, peer: u64, subnet: Option<SubnetId>) {
        self.peers.insert(
            peer,
            PeerState {
                subnet,
                failed: false,
            },
        );
    }

    /// The head of a chain the node follows, as it moves.
    pub fn set_head(&mut self, head: ChainPoint) {
        self.heads.insert(head.origin, head);
    }

    /// Stops following a chain.
    pub fn forget_head(&mut self, origin: u64) {
        self.heads.remove(&origin);
    }

    /// The partition records.
    pub fn partitions(&self) -> &PartitionTracker {
        &self.partitions
    }

    /// Removes and returns healed records (and their agreed keys).
    pub fn take_healed(&mut self) -> Vec<(PartitionRecord, Option<u64>)> {
        self.partitions
            .take_healed()
            .into_iter()
            .map(|record| {
                let key = self.keys.remove(&record.id);
                (record, key)
            })
            .collect()
    }

    /// The key agreed for record `id`, once a HealHello arrived.
    pub fn agreed_key(&self, id: u64) -> Option<u64> {
        self.keys.get(&id).copied()
    }

    /// Recoveries to allow at once (`None`: unlimited).
    pub fn recovery_budget(&self) -> Option<u32> {
        self.correlation.recovery_budget()
    }

    /// The failure detector declared `peer` failed at `now_ms`; `horizon`
    /// is the node's exact horizon (origin, highest sequence) now.
    pub fn on_peer_failed(
        &mut self,
        peer: u64,
        now_ms: u64,
        horizon: &[(u64, u64)],
    ) -> Vec<Output> {
        let state = self.peers.entry(peer).or_insert(PeerState {
            subnet: None,
            failed: false,
        });
        state.failed = true;
        let subnet = state.subnet;
        self.correlation.record_failure(peer, subnet, now_ms);
        let verdict = self.correlation.evaluate(self.peers.len(), now_ms);
        if let Verdict::Independent(_) = verdict {
            self.partitions.on_node_failure(peer);
        }
        let mut our_side: BTreeSet<u64> = self
            .peers
            .iter()
            .filter(|(_, s)| !s.failed)
            .map(|(&id, _)| id)
            .collect();
        our_side.insert(self.node_id);
        self.partitions
            .detect(&verdict, &our_side, horizon, now_ms)
            .map(Output::Partition)
            .into_iter()
            .collect()
    }

    /// `peer` is reachable again.
    pub fn on_peer_returned(&mut self, peer: u64, now_ms: u64) -> Vec<Output> {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.failed = false;
        }
        self.correlation.record_recovery(peer);
        let already_healed: Vec<u64> = self
            .partitions
            .records()
            .iter()
            .filter(|r| r.phase == PartitionPhase::Healed && r.other_side.contains(&peer))
            .map(|r| r.id)
            .collect();
        let events = self.partitions.on_node_recovery(peer, now_ms);
        let mut out = Vec::new();
        for event in events {
            if let PartitionEvent::Healed(id) = event
                && let Some(record) = self.partitions.get(id)
            {
                for &to in &record.returned {
                    out.extend(self.hello(record, to));
                }
            }
            out.push(Output::Partition(event));
        }
        for id in already_healed {
            if let Some(record) = self.partitions.get(id) {
                out.extend(self.hello(record, peer));
            }
        }
        out
    }

    /// Confirms records that held long enough.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Output> {
        self.now_ms = now_ms;
        self.partitions
            .tick(now_ms)
            .into_iter()
            .map(Output::Partition)
            .collect()
    }

    /// The HealHello for `to`: one message, or its parts when it does not
    /// fit one packet.
    fn hello(&self, record: &PartitionRecord, to: u64) -> Vec<Output> {
        let Output::Send { bytes, .. } = send(
            to,
            &ContinuityMessage::HealHello {
                our_side: record
                    .our_side
                    .iter()
                    .copied()
                    .take(MAX_SIDE_MEMBERS)
                    .collect(),
                other_side: record
                    .other_side
                    .iter()
                    .copied()
                    .take(MAX_SIDE_MEMBERS)
                    .collect(),
                heads: self.heads.values().copied().take(MAX_HEADS).collect(),
            },
        ) else {
            return Vec::new();
        };
        hello_pieces(bytes)
            .into_iter()
            .map(|bytes| Output::Send {
                to,
                subprotocol: ids::PARTITION,
                bytes,
            })
            .collect()
    }

    /// A part of a HealHello: kept until every part arrived, then the
    /// whole is checked against its id and taken as a HealHello.
    fn on_hello_part(
        &mut self,
        from: u64,
        hello_id: u64,
        total: u32,
        offset: u32,
        bytes: &[u8],
    ) -> Result<Vec<Output>, ContinuityWireError> {
        let total = total as usize;
        let assembly = self
            .assemblies
            .entry(from)
            .or_insert_with(|| HelloAssembly {
                hello_id,
                bytes: Vec::new(),
                have: Vec::new(),
                missing: 0,
            });
        if assembly.hello_id != hello_id || assembly.bytes.len() != total {
            let pieces = total.div_ceil(HELLO_PIECE);
            *assembly = HelloAssembly {
                hello_id,
                bytes: vec![0; total],
                have: vec![false; pieces],
                missing: pieces,
            };
        }
        let at = offset as usize;
        let index = at / HELLO_PIECE;
        if !assembly.have[index] {
            assembly.have[index] = true;
            assembly.missing -= 1;
            assembly.bytes[at..at + bytes.len()].copy_from_slice(bytes);
        }
        if assembly.missing > 0 {
            return Ok(Vec::new());
        }
        let Some(whole) = self.assemblies.remove(&from) else {
            return Ok(Vec::new());
        };
        if xxhash_rust::xxh3::xxh3_64(&whole.bytes) != hello_id {
            return Err(ContinuityWireError::BadHelloPart {
                total: total as u32,
                offset,
                len: bytes.len(),
            });
        }
        match ContinuityMessage::decode(ids::PARTITION, &whole.bytes)? {
            ContinuityMessage::HealHello {
                our_side,
                other_side,
                heads,
            } => Ok(self.on_hello(from, our_side, other_side, heads)),
            _ => Err(ContinuityWireError::UnknownType {
                subprotocol: ids::PARTITION,
                kind: whole.bytes.get(1).copied().unwrap_or_default(),
            }),
        }
    }

    /// The Branch answering a request: `events` from `after_seq` on, as
    /// the node's log holds them.
    pub fn branch(
        &self,
        to: u64,
        origin: u64,
        after_seq: u64,
        events: Vec<CausalEvent>,
    ) -> Result<Output, ContinuityWireError> {
        self.outgoing(
            to,
            &ContinuityMessage::Branch {
                origin,
                after_seq,
                events,
            },
        )
    }

    /// Any message the node sends on its own account (a ForkAnnounce after
    /// a reconciliation, a Proof answering a request, a ChainHead), as an
    /// [`Output::Send`]; refused if it would not decode.
    pub fn outgoing(
        &self,
        to: u64,
        message: &ContinuityMessage,
    ) -> Result<Output, ContinuityWireError> {
        Ok(Output::Send {
            to,
            subprotocol: message.subprotocol(),
            bytes: message.encode()?,
        })
    }

    /// A packet from `from` on one of the continuity / partition
    /// subprotocols. Bad bytes are a typed error and change nothing.
    pub fn on_message(
        &mut self,
        from: u64,
        subprotocol: u16,
        bytes: &[u8],
    ) -> Result<Vec<Output>, ContinuityWireError> {
        let message = ContinuityMessage::decode(subprotocol, bytes)?;
        Ok(match message {
            ContinuityMessage::HealHello {
                our_side,
                other_side,
                heads,
            } => self.on_hello(from, our_side, other_side, heads),
            ContinuityMessage::HealHelloPart {
                hello_id,
                total,
                offset,
                bytes,
            } => self.on_hello_part(from, hello_id, total, offset, &bytes)?,
            ContinuityMessage::BranchRequest { origin, after_seq } => {
                self.on_branch_request(from, origin, after_seq)
            }
            ContinuityMessage::Branch {
                origin,
                after_seq,
                events,
            } => vec![Output::BranchReceived {
                peer: from,
                origin,
                after_seq,
                events,
            }],
            ContinuityMessage::ChainHead(head) => vec![Output::ChainHead { peer: from, head }],
            ContinuityMessage::ProofRequest {
                origin,
                from_seq,
                to_seq,
            } => vec![Output::ProofRequested {
                peer: from,
                origin,
                from_seq,
                to_seq,
            }],
            ContinuityMessage::Proof(proof) => vec![Output::ProofReceived { peer: from, proof }],
            ContinuityMessage::ForkAnnounce {
                partition_key,
                record,
            } => vec![Output::ForkAnnounced {
                peer: from,
                partition_key,
                record,
            }],
        })
    }

    /// The latest record with `peer` on its other side.
    fn record_with(&self, peer: u64) -> Option<&PartitionRecord> {
        self.partitions
            .records()
            .iter()
            .rev()
            .find(|r| r.other_side.contains(&peer))
    }

    /// A peer asks for a branch. Under a record this node adopted (it has
    /// no horizon of the split), the peer's point is the split: this node
    /// asks for the peer's branch from the same point, once per chain.
    fn on_branch_request(&mut self, from: u64, origin: u64, after_seq: u64) -> Vec<Output> {
        let mut out = vec![Output::BranchRequested {
            peer: from,
            origin,
            after_seq,
        }];
        let record = self.record_with(from).map(|record| record.id);
        if let Some(asked) = record.and_then(|id| self.adopted.get_mut(&id))
            && asked.insert(origin)
        {
            out.push(send(
                from,
                &ContinuityMessage::BranchRequest { origin, after_seq },
            ));
        }
        out
    }

    /// A HealHello from a peer that saw a split this node did not (it names
    /// this node on its other side): the split is recorded as healed, with
    /// the peer's view mirrored, and this node's HealHello goes back so the
    /// peer agrees on the key and asks for our branches.
    fn adopt(&mut self, from: u64, their_side: &[u64], their_other: &[u64]) -> Vec<Output> {
        if !their_other.contains(&self.node_id) || !their_side.contains(&from) {
            return Vec::new();
        }
        let id = self.partitions.adopt_healed(
            their_other.iter().copied().collect(),
            their_side.iter().copied().collect(),
            self.now_ms,
        );
        let partitions = &self.partitions;
        self.adopted
            .retain(|record, _| partitions.get(*record).is_some());
        self.adopted.insert(id, BTreeSet::new());
        let mut out = vec![Output::Partition(PartitionEvent::Healed(id))];
        if let Some(record) = self.partitions.get(id) {
            out.extend(self.hello(record, from));
        }
        out
    }

    fn on_hello(
        &mut self,
        from: u64,
        their_side: Vec<u64>,
        their_other: Vec<u64>,
        heads: Vec<ChainPoint>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if self.record_with(from).is_none() {
            out = self.adopt(from, &their_side, &their_other);
        }
        let Some(record) = self.record_with(from) else {
            return out;
        };
        let theirs: (BTreeSet<u64>, BTreeSet<u64>) = (
            their_side.into_iter().collect(),
            their_other.into_iter().collect(),
        );
        let key = partition_key(
            (&record.our_side, &record.other_side),
            (&theirs.0, &theirs.1),
        );
        let id = record.id;
        out.push(Output::HealAgreed {
            record: id,
            peer: from,
            partition_key: key,
        });
        // Under an adopted record the peer, which holds the horizon of the
        // split, asks first; this node follows its point.
        let heads = if self.adopted.contains_key(&id) {
            Vec::new()
        } else {
            heads
        };
        for head in heads {
            let Some(ours) = self.heads.get(&head.origin) else {
                continue;
            };
            if ours.hash == head.hash && ours.seq == head.seq {
                continue;
            }
            // The split point must be an event both sides hold: what we
            // had seen at the split, but no further than either head (the
            // other side may not have received all of it). Both sides may
            // pick different points at or before the divergence;
            // `reconcile` skips the events they share, so the winner and
            // the fork do not depend on it.
            let seen_at_split = record
                .horizon_at_split
                .binary_search_by_key(&head.origin, |&(origin, _)| origin)
                .map_or(0, |at| record.horizon_at_split[at].1);
            let after_seq = seen_at_split.min(head.seq).min(ours.seq);
            out.push(send(
                from,
                &ContinuityMessage::BranchRequest {
                    origin: head.origin,
                    after_seq,
                },
            ));
        }
        self.keys.insert(id, key);
        out
    }
}

/// An [`Output::Send`] of `message`; the engine builds only messages that
/// encode (lists clamped to their limits).
fn send(to: u64, message: &ContinuityMessage) -> Output {
    Output::Send {
        to,
        subprotocol: message.subprotocol(),
        bytes: message.encode().unwrap_or_default(),
    }
}
