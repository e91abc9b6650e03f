//! Continuity proofs between nodes (STORAGE.md §15, ProofRequest / Proof
//! on 0x0700): a node asks a continuity peer to prove a span of a chain
//! both follow, and checks the answer against what it holds.
//!
//! * Asking: [`MeshNode::request_continuity_proof`]. The ask is re-sent
//!   every `RETRY_AFTER` until answered, at most `MAX_RETRIES` times; one
//!   ask per (peer, chain) is outstanding (a new one replaces it).
//! * Serving: a proof is built from the chain's held events
//!   ([`ContinuityProof::build`], which also re-checks their chaining).
//!   A node that does not hold the whole span answers with its ChainHead,
//!   so the asker learns how far the peer's chain goes instead of waiting.
//!   A peer is served at most [`PROOFS_PER_SECOND`] proofs a second (each
//!   can hash up to 100 000 events).
//! * Checking: each end of the proof is compared with the event this node
//!   holds at that sequence, or else with its follower's memory of recent
//!   hashes. The verdict arrives as [`ContinuityEvent::ProofChecked`].
//!   Answers nobody asked for, or for another span, are ignored.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    Chain, ContinuityError, ContinuityEvent, Gate, MAX_RETRIES, MeshError, MeshNode, Outgoing,
    RETRY_AFTER, State, To, point_json,
};
use crate::continuity::{Agreement, ChainPoint, ContinuityMessage};
use crate::cortex::causal::{CausalLink, CausalLog, ContinuityProof, MAX_PROOF_SPAN};

/// How many proofs one peer is served per second at most.
pub const PROOFS_PER_SECOND: u32 = 32;

/// A proof this node asked a peer for.
pub(super) struct ProofAsk {
    from_seq: u64,
    to_seq: u64,
    last_sent: Instant,
    retries: u32,
    /// Asked by the node itself (`streams.rs`), not the application.
    auto: bool,
}

impl ProofAsk {
    pub(super) fn new(from_seq: u64, to_seq: u64, now: Instant, auto: bool) -> Self {
        Self {
            from_seq,
            to_seq,
            last_sent: now,
            retries: 0,
            auto,
        }
    }
}

/// How a peer's account of a span compares with this node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofVerdict {
    /// The proof's end hashes against the events this node holds or
    /// remembers: `Consistent`, `Conflicts` (the two histories differ at
    /// that sequence) or `Unknown` (it neither holds nor remembers either
    /// end).
    Checked(Agreement),
    /// The peer does not hold the whole span; its head instead.
    Unavailable {
        /// The peer's head of the chain.
        their_head: ChainPoint,
    },
    /// No answer came after the retries.
    Unanswered,
}

impl ProofVerdict {
    /// Adds `verdict` (and its fields) to an event's JSON object.
    pub(super) fn add_json(&self, v: &mut serde_json::Value) {
        match self {
            ProofVerdict::Checked(Agreement::Conflicts { seq, ours, theirs }) => {
                v["verdict"] = json!("conflicts");
                v["seq"] = json!(seq);
                v["ours"] = json!(ours);
                v["theirs"] = json!(theirs);
            }
            ProofVerdict::Checked(Agreement::Unknown) => v["verdict"] = json!("unknown"),
            ProofVerdict::Checked(_) => v["verdict"] = json!("consistent"),
            ProofVerdict::Unavailable { their_head } => {
                v["verdict"] = json!("unavailable");
                v["their_head"] = point_json(their_head);
            }
            ProofVerdict::Unanswered => v["verdict"] = json!("unanswered"),
        }
    }
}

/// A chain's held events as a log proofs are built from and checked with.
impl CausalLog for Chain {
    fn origin_hash(&self) -> u64 {
        self.follower.head().origin_hash
    }

    fn event(&self, seq: u64) -> Option<(&CausalLink, &[u8])> {
        let first = self.log.front()?.link.sequence;
        let event = self
            .log
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)?;
        Some((&event.link, &event.payload))
    }
}

impl Chain {
    /// `hash` at `seq` against the held event there, else the follower's
    /// memory.
    pub(super) fn check_point(&self, seq: u64, hash: u64) -> Agreement {
        match self.event(seq) {
            Some((link, payload)) => {
                let ours = link.chain_hash(payload);
                if ours == hash {
                    Agreement::Consistent
                } else {
                    Agreement::Conflicts {
                        seq,
                        ours,
                        theirs: hash,
                    }
                }
            }
            None => self.follower.check_head(seq, hash),
        }
    }

    fn check_proof(&self, proof: &ContinuityProof) -> Agreement {
        self.check_point(proof.from_seq, proof.from_hash)
            .and(self.check_point(proof.to_seq, proof.to_hash))
    }
}

impl State {
    /// A peer asks us to prove a span: the proof, or our head when we do
    /// not hold the span.
    pub(super) fn serve_proof(
        &mut self,
        peer: u64,
        origin: u64,
        from_seq: u64,
        to_seq: u64,
        now: Instant,
        out: &mut Outgoing,
    ) {
        let served = self.proofs_served.entry(peer).or_insert((now, 0));
        if now.saturating_duration_since(served.0) >= Duration::from_secs(1) {
            *served = (now, 0);
        }
        if served.1 >= PROOFS_PER_SECOND {
            return; // the peer asks again
        }
        served.1 += 1;
        let Some(chain) = self.chains.get(&origin) else {
            return;
        };
        let answer = match ContinuityProof::build(chain, from_seq, to_seq) {
            Ok(proof) => ContinuityMessage::Proof(proof),
            Err(_) => ContinuityMessage::ChainHead(chain.head()),
        };
        if let Ok(bytes) = answer.encode() {
            out.push((To::Peer(peer), answer.subprotocol(), bytes));
        }
    }

    /// A peer's proof: checked if we asked for exactly this span.
    pub(super) fn on_proof(&mut self, peer: u64, proof: &ContinuityProof) {
        let key = (peer, proof.origin_hash);
        let asked = self
            .proof_asks
            .get(&key)
            .is_some_and(|ask| (ask.from_seq, ask.to_seq) == (proof.from_seq, proof.to_seq));
        if !asked {
            return;
        }
        let Some(ask) = self.proof_asks.remove(&key) else {
            return;
        };
        let Some(chain) = self.chains.get(&proof.origin_hash) else {
            return; // no longer followed
        };
        let verdict = ProofVerdict::Checked(chain.check_proof(proof));
        self.verdict(peer, proof.origin_hash, &ask, verdict);
    }

    /// A peer's head outside a branch transfer: its answer to our ask
    /// when it does not hold the span; false when we asked nothing.
    pub(super) fn on_proof_refused(&mut self, peer: u64, head: ChainPoint) -> bool {
        let Some(ask) = self.proof_asks.remove(&(peer, head.origin)) else {
            return false;
        };
        self.verdict(
            peer,
            head.origin,
            &ask,
            ProofVerdict::Unavailable { their_head: head },
        );
        true
    }

    /// Reports the verdict on `ask`; one the node asked itself moves its
    /// chain's proving.
    fn verdict(&mut self, peer: u64, origin: u64, ask: &ProofAsk, verdict: ProofVerdict) {
        if ask.auto {
            self.after_auto_proof(origin, ask.to_seq, &verdict);
        }
        self.emit(ContinuityEvent::ProofChecked {
            peer,
            origin,
            from_seq: ask.from_seq,
            to_seq: ask.to_seq,
            verdict,
        });
    }

    /// Re-sends unanswered asks; one re-sent `MAX_RETRIES` times is
    /// reported unanswered.
    pub(super) fn proof_retries(&mut self, now: Instant, out: &mut Outgoing) {
        let mut unanswered = Vec::new();
        self.proof_asks.retain(|&(peer, origin), ask| {
            if now.saturating_duration_since(ask.last_sent) < RETRY_AFTER {
                return true;
            }
            if ask.retries >= MAX_RETRIES {
                unanswered.push((peer, origin, ask.from_seq, ask.to_seq, ask.auto));
                return false;
            }
            ask.retries += 1;
            ask.last_sent = now;
            out.extend(request(peer, origin, ask.from_seq, ask.to_seq));
            true
        });
        for (peer, origin, from_seq, to_seq, auto) in unanswered {
            let ask = ProofAsk::new(from_seq, to_seq, now, auto);
            self.verdict(peer, origin, &ask, ProofVerdict::Unanswered);
        }
    }
}

pub(super) fn request(
    peer: u64,
    origin: u64,
    from_seq: u64,
    to_seq: u64,
) -> Option<(To, u16, Vec<u8>)> {
    let ask = ContinuityMessage::ProofRequest {
        origin,
        from_seq,
        to_seq,
    };
    ask.encode()
        .ok()
        .map(|bytes| (To::Peer(peer), ask.subprotocol(), bytes))
}

impl MeshNode {
    /// Asks `peer` to prove `from_seq..=to_seq` of the followed chain
    /// `origin` (STORAGE.md §15) and checks the proof against the events
    /// this node holds or remembers. The verdict arrives as
    /// [`ContinuityEvent::ProofChecked`] on
    /// [`next_continuity_event`](Self::next_continuity_event): consistent,
    /// conflicting (the peer's history differs), unknown to us,
    /// unavailable at the peer (with its head), or unanswered after the
    /// retries (about six seconds). A new ask to the same peer for the
    /// same chain replaces an outstanding one.
    ///
    /// # Errors
    /// [`ContinuityError::Disabled`], [`ContinuityError::NotFollowed`],
    /// [`ContinuityError::InvalidProofRange`] (`from_seq > to_seq`, or a
    /// span of 100 000 events or more), [`ContinuityError::NotContinuityPeer`]
    /// (not connected, or a peer without continuity: a v0.11 node).
    pub fn request_continuity_proof(
        &self,
        peer: u64,
        origin: u64,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<(), MeshError> {
        self.continuity_on()?;
        if from_seq > to_seq || to_seq - from_seq >= MAX_PROOF_SPAN {
            return Err(MeshError::Continuity(ContinuityError::InvalidProofRange {
                from_seq,
                to_seq,
            }));
        }
        if matches!(self.inner.continuity_peer(peer), Gate::No) {
            return Err(MeshError::Continuity(ContinuityError::NotContinuityPeer(
                peer,
            )));
        }
        let mut result = Err(MeshError::Continuity(ContinuityError::NotFollowed(origin)));
        self.inner.continuity_drive(|state, now, _| {
            if !state.chains.contains_key(&origin) {
                return Outgoing::new();
            }
            result = Ok(());
            state
                .proof_asks
                .insert((peer, origin), ProofAsk::new(from_seq, to_seq, now, false));
            request(peer, origin, from_seq, to_seq)
                .into_iter()
                .collect()
        });
        result
    }
}
