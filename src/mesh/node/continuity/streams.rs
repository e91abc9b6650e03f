//! Causal streams followed by the node itself: the frames of every chain
//! the node follows are checked as they arrive on a causal stream
//! (subprotocol 0x0400), and each chain is proved against the peer it
//! came from, every `proof_interval`.
//!
//! * Tapping: the receive path hands the node each causal packet's events
//!   at the stream's in-order release point (a Net reliable stream) or on
//!   arrival (fire-and-forget, v0.11); the send path hands it the events
//!   it sends on a causal stream, so a producer that follows its own chain
//!   holds it and can answer proofs. Frames of chains not followed cost a
//!   decode; a malformed event is skipped (and counted) without touching
//!   the application's copy.
//! * Proving: a chain heard from a continuity peer is proved against that
//!   peer from the last sequence proved consistent to its head (at most
//!   `MAX_PROOF_SPAN - 1` events back), one ask outstanding per chain.
//!   Every verdict is a [`ContinuityEvent::ProofChecked`]; a conflict
//!   stops the chain's proofs until a reconciliation rewrites it; a peer
//!   that no longer holds the start of the span moves the start to the
//!   span's end.
//! * A ChainHead nobody asked for (a late answer) is checked too: when it
//!   contradicts the event held at its sequence, that is reported as a
//!   conflicting one-event proof.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::proofs::ProofAsk;
use super::{ContinuityEvent, Gate, Inner, Outgoing, ProofVerdict, State};
use crate::compute::CausalEvent;
use crate::continuity::{Agreement, ChainPoint};
use crate::cortex::causal::{MAX_PROOF_SPAN, decode_frames};

/// Where a followed chain stands with its proofs.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Proving {
    /// The continuity peer the chain's events last came from.
    pub source: Option<u64>,
    /// The last sequence proved consistent (or skipped as no longer held
    /// by the source).
    pub proved_to: u64,
    /// When the next proof is due (set when the first event is heard).
    pub next_at: Option<Instant>,
    /// A proof conflicted: no more until the chain is rewritten.
    pub conflicted: bool,
}

impl Inner {
    /// Whether causal frames are worth decoding: continuity is on and at
    /// least one chain is followed.
    pub(in crate::mesh::node) fn continuity_taps(&self) -> bool {
        self.continuity.enabled && self.continuity.followed.load(Ordering::Relaxed) > 0
    }

    /// Checks the frames of followed chains in `events` (the bodies of one
    /// causal packet, in stream order) — received from `from`, or sent by
    /// this node (`None`).
    pub(in crate::mesh::node) fn continuity_tap(&self, from: Option<u64>, events: &[&[u8]]) {
        if !self.continuity_taps() {
            return;
        }
        let source = from.filter(|&peer| matches!(self.continuity_peer(peer), Gate::Send));
        let received_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let interval = self.continuity.proof_interval;
        self.continuity_drive(|state, now, now_ms| {
            for body in events {
                for frame in decode_frames(body) {
                    let Ok(frame) = frame else {
                        self.stats.causal_malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(?from, "malformed causal event skipped");
                        break;
                    };
                    let origin = frame.link.origin_hash;
                    if !state.chains.contains_key(&origin) {
                        continue;
                    }
                    let event = CausalEvent {
                        link: frame.link,
                        payload: frame.payload.to_vec(),
                        received_at: if from.is_some() { received_at } else { 0 },
                    };
                    state.observe(event, now_ms);
                    if let (Some(peer), Some(chain)) = (source, state.chains.get_mut(&origin)) {
                        chain.proving.source = Some(peer);
                        if chain.proving.next_at.is_none() && !interval.is_zero() {
                            chain.proving.next_at = Some(now + interval);
                        }
                    }
                }
            }
            Outgoing::new()
        });
    }
}

impl State {
    /// Asks each chain's source for the proof that is due.
    pub(super) fn auto_proofs(&mut self, now: Instant, interval: std::time::Duration) -> Outgoing {
        let mut out = Outgoing::new();
        if interval.is_zero() {
            return out;
        }
        for (&origin, chain) in self.chains.iter_mut() {
            let proving = &mut chain.proving;
            let Some(peer) = proving.source else {
                continue;
            };
            if proving.conflicted
                || proving.next_at.is_some_and(|at| now < at)
                || self.proof_asks.contains_key(&(peer, origin))
            {
                continue;
            }
            let head = chain.follower.head().sequence;
            if head <= proving.proved_to {
                continue;
            }
            let first = chain.log.front().map_or(head, |e| e.link.sequence);
            let from = proving
                .proved_to
                .max(first)
                .max(head.saturating_sub(MAX_PROOF_SPAN - 1));
            proving.next_at = Some(now + interval);
            self.proof_asks
                .insert((peer, origin), ProofAsk::new(from, head, now, true));
            out.extend(super::proofs::request(peer, origin, from, head));
        }
        out
    }

    /// A verdict on one of the node's own asks moves its chain's proving.
    pub(super) fn after_auto_proof(&mut self, origin: u64, to_seq: u64, verdict: &ProofVerdict) {
        let Some(chain) = self.chains.get_mut(&origin) else {
            return;
        };
        let proving = &mut chain.proving;
        match verdict {
            ProofVerdict::Checked(Agreement::Consistent) => {
                proving.proved_to = proving.proved_to.max(to_seq);
            }
            ProofVerdict::Checked(Agreement::Conflicts { .. }) => proving.conflicted = true,
            ProofVerdict::Unavailable { their_head } if their_head.seq >= to_seq => {
                // The source no longer holds the span's start.
                proving.proved_to = proving.proved_to.max(to_seq);
            }
            _ => {}
        }
    }

    /// A peer's head that answers nothing we asked: a contradiction with
    /// the event held at its sequence is reported.
    pub(super) fn check_unsolicited_head(&mut self, peer: u64, head: ChainPoint) {
        let Some(chain) = self.chains.get(&head.origin) else {
            return;
        };
        if let conflict @ Agreement::Conflicts { .. } = chain.check_point(head.seq, head.hash) {
            self.emit(ContinuityEvent::ProofChecked {
                peer,
                origin: head.origin,
                from_seq: head.seq,
                to_seq: head.seq,
                verdict: ProofVerdict::Checked(conflict),
            });
        }
    }
}
