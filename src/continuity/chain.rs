//! Chain status over a causal stream (COMPUTE.md §5 "Chain status"), the
//! incremental [`ChainFollower`] a node keeps for every stream it follows,
//! and causal cones ("Cone").
//!
//! Links, hashes and proofs are `crate::cortex::causal`'s; nothing here
//! re-derives them.
//!
//! Departures from v0.11:
//! - A gap is reported as [`ChainStatus::Gap`] (v0.11 says
//!   `Unverifiable{last, last + 1}`, which hides where the chain resumed),
//!   and a link of another origin as [`ChainStatus::OriginMismatch`]
//!   (v0.11 does not check the origin between events).
//! - [`ChainFollower`] checks a stream as it arrives and remembers the
//!   hashes of its recent events (bounded), so a continuity proof or a
//!   peer's chain head that contradicts what was followed is reported as
//!   conflicting chains; v0.11 only assesses a whole log on request.
//! - [`CausalCone::could_have_influenced`] never answers `Unknown` (v0.11
//!   declares the variant and never returns it), and there is no
//!   `Migrated` status.

use std::collections::{BTreeMap, VecDeque};

use crate::compute::{CausalEvent, ObservedHorizon};
use crate::cortex::causal::{CausalLink, CausalLog, ContinuityProof, Horizon};

/// Where a log's first event must attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor<'a> {
    /// The log starts right after the genesis link (its first event is 1).
    Genesis,
    /// The log continues a snapshot whose head is `link`.
    Snapshot {
        /// The snapshot's head link (`through_seq` is its sequence).
        link: CausalLink,
        /// The head event's payload, when the snapshot carries it.
        head_payload: Option<&'a [u8]>,
    },
}

/// The verdict on a log (COMPUTE.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainStatus {
    /// Every event chains to the anchor and to its predecessor.
    Continuous {
        /// `chain_hash` of the first event (0 for an empty log).
        first_hash: u64,
        /// The last sequence (the anchor's for an empty log).
        head_seq: u64,
        /// `chain_hash` of the last event (0 for an empty log).
        head_hash: u64,
    },
    /// An event's parent is not the hash of what precedes it: two writers
    /// extended the same point (or the bytes were altered).
    Forked {
        /// The event whose parent does not match.
        seq: u64,
        /// The hash of the preceding event.
        expected: u64,
        /// The parent the event carries.
        found: u64,
    },
    /// Sequences do not follow each other.
    Gap {
        /// The last sequence that verified.
        last_verified: u64,
        /// The sequence found after it.
        found: u64,
    },
    /// An event of another origin inside the chain.
    OriginMismatch {
        /// Its sequence.
        seq: u64,
        /// The chain's origin.
        expected: u64,
        /// The origin it names.
        found: u64,
    },
    /// Nothing to anchor the first event to (no snapshot, or a snapshot
    /// without the payload its head needs).
    Unverifiable,
}

impl ChainStatus {
    /// Whether the chain verified.
    pub fn is_continuous(&self) -> bool {
        matches!(self, ChainStatus::Continuous { .. })
    }
}

/// The parent the first event after `anchor` must carry, or `None` when
/// the anchor cannot say (v0.11's rules: a genesis snapshot must have an
/// empty payload; any other needs its payload).
fn anchor_hash(anchor: Anchor<'_>, origin: u64, first_seq: u64) -> Option<u64> {
    match anchor {
        Anchor::Genesis if first_seq == 1 => Some(CausalLink::genesis(origin).chain_hash(&[])),
        Anchor::Genesis => None,
        Anchor::Snapshot { link, head_payload } => {
            if link.sequence.checked_add(1) != Some(first_seq) {
                return None;
            }
            match head_payload {
                Some(payload) if link.sequence == 0 && !payload.is_empty() => None,
                Some(payload) => Some(link.chain_hash(payload)),
                None => None,
            }
        }
    }
}

/// Assesses `events` (ascending, as stored) against `anchor`.
///
/// A first event at sequence 1 with no usable anchor attaches to the
/// origin's genesis link, as v0.11's does; an explicit snapshot anchor at
/// sequence 0 wins over it, so a fork's chain (whose genesis parent is the
/// fork sentinel, see [`ForkRecord`](super::reconcile::ForkRecord)) verifies.
pub fn assess(events: &[CausalEvent], anchor: Option<Anchor<'_>>) -> ChainStatus {
    let Some(first) = events.first() else {
        let head_seq = match anchor {
            Some(Anchor::Snapshot { link, .. }) => link.sequence,
            _ => 0,
        };
        return ChainStatus::Continuous {
            first_hash: 0,
            head_seq,
            head_hash: 0,
        };
    };
    let origin = first.link.origin_hash;
    let expected = anchor
        .and_then(|anchor| anchor_hash(anchor, origin, first.link.sequence))
        .or_else(|| anchor_hash(Anchor::Genesis, origin, first.link.sequence));
    let Some(expected) = expected else {
        return ChainStatus::Unverifiable;
    };
    if first.link.parent_hash != expected {
        return ChainStatus::Forked {
            seq: first.link.sequence,
            expected,
            found: first.link.parent_hash,
        };
    }
    for pair in events.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        if let Some(status) = step(&prev.link, &prev.payload, &next.link) {
            return status;
        }
    }
    let last = events.last().unwrap_or(first);
    ChainStatus::Continuous {
        first_hash: first.link.chain_hash(&first.payload),
        head_seq: last.link.sequence,
        head_hash: last.link.chain_hash(&last.payload),
    }
}

/// The status `next` earns after `prev`, or `None` if it chains.
fn step(prev: &CausalLink, prev_payload: &[u8], next: &CausalLink) -> Option<ChainStatus> {
    if next.origin_hash != prev.origin_hash {
        return Some(ChainStatus::OriginMismatch {
            seq: next.sequence,
            expected: prev.origin_hash,
            found: next.origin_hash,
        });
    }
    if prev.sequence.checked_add(1) != Some(next.sequence) {
        return Some(ChainStatus::Gap {
            last_verified: prev.sequence,
            found: next.sequence,
        });
    }
    let expected = prev.chain_hash(prev_payload);
    (next.parent_hash != expected).then_some(ChainStatus::Forked {
        seq: next.sequence,
        expected,
        found: next.parent_hash,
    })
}

/// How many recent (sequence, hash) pairs a follower remembers to compare
/// proofs and peers' heads against.
pub const FOLLOWER_MEMORY: usize = 1_024;

/// What one event did to a followed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observation {
    /// It extended the chain; the head moved.
    Extended,
    /// It repeats an event already followed (same sequence and hash).
    Duplicate,
    /// It is older than the follower remembers; not checked, not applied.
    Stale,
    /// The stream broke here; the follower holds the break until
    /// [`ChainFollower::resync`].
    Broke(Discontinuity),
    /// The stream was already broken; the event was not checked.
    Ignored,
}

/// Why a followed stream stopped verifying (COMPUTE.md §5 "Discontinuity").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discontinuity {
    /// The stream's origin.
    pub origin_hash: u64,
    /// The last link that verified.
    pub last_verified: CausalLink,
    /// The link that failed, if one did.
    pub failed: Option<CausalLink>,
    /// What went wrong.
    pub reason: DiscontinuityReason,
    /// When the caller saw it (its clock, milliseconds).
    pub detected_at_ms: u64,
}

/// The kinds of break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscontinuityReason {
    /// Sequences skipped, or a link of another origin arrived.
    ChainBreak,
    /// Two different events claim the same sequence.
    ConflictingChains {
        /// The contested sequence.
        seq: u64,
        /// The hash this follower holds for it.
        ours: u64,
        /// The hash the other event (or proof, or head) has.
        theirs: u64,
    },
}

/// The follower's verdict on a proof or a peer's chain head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Agreement {
    /// Every hash the claim states that the follower remembers matches.
    Consistent,
    /// The claim states a hash the follower remembers differently.
    Conflicts {
        /// The sequence in dispute.
        seq: u64,
        /// The follower's hash.
        ours: u64,
        /// The claimed hash.
        theirs: u64,
    },
    /// The follower remembers none of the claim's sequences.
    Unknown,
}

impl Agreement {
    /// Two checks of one claim together: a conflict in either is the
    /// verdict, else consistent if either end was known.
    pub fn and(self, other: Agreement) -> Agreement {
        match (self, other) {
            (conflict @ Agreement::Conflicts { .. }, _)
            | (_, conflict @ Agreement::Conflicts { .. }) => conflict,
            (Agreement::Unknown, Agreement::Unknown) => Agreement::Unknown,
            _ => Agreement::Consistent,
        }
    }
}

/// Follows one origin's stream event by event: checks each link against
/// the head and remembers the last [`FOLLOWER_MEMORY`] hashes.
#[derive(Debug, Clone)]
pub struct ChainFollower {
    head: CausalLink,
    head_hash: u64,
    recent: VecDeque<(u64, u64)>,
    broken: Option<Discontinuity>,
}

impl ChainFollower {
    /// Follows `origin_hash` from its genesis.
    pub fn from_genesis(origin_hash: u64) -> Self {
        Self::from_head(CausalLink::genesis(origin_hash), &[])
    }

    /// Follows a stream whose verified head is `head` (with `payload`),
    /// e.g. a snapshot's.
    pub fn from_head(head: CausalLink, payload: &[u8]) -> Self {
        let head_hash = head.chain_hash(payload);
        let mut recent = VecDeque::with_capacity(16);
        recent.push_back((head.sequence, head_hash));
        Self {
            head,
            head_hash,
            recent,
            broken: None,
        }
    }

    /// The stream's origin.
    pub fn origin_hash(&self) -> u64 {
        self.head.origin_hash
    }

    /// The last verified link.
    pub fn head(&self) -> &CausalLink {
        &self.head
    }

    /// `chain_hash` of the last verified event.
    pub fn head_hash(&self) -> u64 {
        self.head_hash
    }

    /// The break the stream is in, if any.
    pub fn broken(&self) -> Option<&Discontinuity> {
        self.broken.as_ref()
    }

    /// Checks the next event of the stream.
    pub fn observe(&mut self, link: &CausalLink, payload: &[u8], now_ms: u64) -> Observation {
        if self.broken.is_some() {
            return Observation::Ignored;
        }
        let hash = link.chain_hash(payload);
        if link.origin_hash == self.head.origin_hash
            && link.sequence <= self.head.sequence
            && let Some(ours) = self.remembered(link.sequence)
        {
            if ours == hash {
                return Observation::Duplicate;
            }
            return self.break_with(
                Some(*link),
                DiscontinuityReason::ConflictingChains {
                    seq: link.sequence,
                    ours,
                    theirs: hash,
                },
                now_ms,
            );
        }
        if link.origin_hash == self.head.origin_hash && link.sequence <= self.head.sequence {
            return Observation::Stale;
        }
        if link.origin_hash != self.head.origin_hash
            || self.head.sequence.checked_add(1) != Some(link.sequence)
        {
            return self.break_with(Some(*link), DiscontinuityReason::ChainBreak, now_ms);
        }
        if link.parent_hash != self.head_hash {
            return self.break_with(
                Some(*link),
                DiscontinuityReason::ConflictingChains {
                    seq: self.head.sequence,
                    ours: self.head_hash,
                    theirs: link.parent_hash,
                },
                now_ms,
            );
        }
        self.head = *link;
        self.head_hash = hash;
        if self.recent.len() == FOLLOWER_MEMORY {
            self.recent.pop_front();
        }
        self.recent.push_back((link.sequence, hash));
        Observation::Extended
    }

    fn break_with(
        &mut self,
        failed: Option<CausalLink>,
        reason: DiscontinuityReason,
        now_ms: u64,
    ) -> Observation {
        let discontinuity = Discontinuity {
            origin_hash: self.head.origin_hash,
            last_verified: self.head,
            failed,
            reason,
            detected_at_ms: now_ms,
        };
        self.broken = Some(discontinuity);
        Observation::Broke(discontinuity)
    }

    /// The hash remembered for `seq`.
    pub fn remembered(&self, seq: u64) -> Option<u64> {
        let first = self.recent.front()?.0;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.recent
            .get(index)
            .filter(|(s, _)| *s == seq)
            .map(|&(_, hash)| hash)
    }

    /// Compares a peer's claim that `seq` hashes to `hash`.
    pub fn check_head(&self, seq: u64, hash: u64) -> Agreement {
        match self.remembered(seq) {
            Some(ours) if ours != hash => Agreement::Conflicts {
                seq,
                ours,
                theirs: hash,
            },
            Some(_) => Agreement::Consistent,
            None => Agreement::Unknown,
        }
    }

    /// Compares both end hashes of a proof with what was followed (the
    /// proof's own chaining is checked against a log with
    /// [`ContinuityProof::verify`]).
    pub fn check_proof(&self, proof: &ContinuityProof) -> Agreement {
        if proof.origin_hash != self.origin_hash() {
            return Agreement::Unknown;
        }
        self.check_head(proof.from_seq, proof.from_hash)
            .and(self.check_head(proof.to_seq, proof.to_hash))
    }

    /// Verifies `proof` against `log` and, if it holds, adopts its end as
    /// the new head (after a break, or to skip ahead over a span the caller
    /// holds in full).
    pub fn resync(
        &mut self,
        proof: &ContinuityProof,
        log: &impl CausalLog,
    ) -> Result<(), crate::cortex::causal::CausalError> {
        proof.verify(log)?;
        let (link, payload) =
            log.event(proof.to_seq)
                .ok_or(crate::cortex::causal::CausalError::MissingEvent(
                    proof.to_seq,
                ))?;
        *self = Self::from_head(*link, payload);
        Ok(())
    }
}

/// Whether an event could have influenced another (COMPUTE.md §5 "Cone").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Influence {
    /// It certainly did (it precedes in the chain, or the exact horizon
    /// covers it).
    Definite,
    /// The bloom says it may have (false positives possible).
    Possible,
    /// It certainly did not.
    No,
}

/// What an event at (`origin`, `seq`) had observed when it was written:
/// its own chain below `seq`, plus an exact horizon when the writer's is
/// known, else the link's bloom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CausalCone {
    origin_hash: u64,
    sequence: u64,
    bloom: Horizon,
    exact: Option<BTreeMap<u64, u64>>,
}

impl CausalCone {
    /// The cone a link states (bloom only).
    pub fn from_link(link: &CausalLink) -> Self {
        Self {
            origin_hash: link.origin_hash,
            sequence: link.sequence,
            bloom: Horizon(link.horizon_encoded),
            exact: None,
        }
    }

    /// The cone with the writer's exact horizon.
    pub fn with_horizon(link: &CausalLink, observed: &ObservedHorizon) -> Self {
        Self {
            exact: Some(observed.entries().into_iter().collect()),
            bloom: Horizon(link.horizon_encoded).merge(observed.bloom()),
            ..Self::from_link(link)
        }
    }

    /// Whether event `seq` of `origin` could have influenced this one.
    pub fn could_have_influenced(&self, origin: u64, seq: u64) -> Influence {
        if origin == self.origin_hash {
            return if seq < self.sequence {
                Influence::Definite
            } else {
                Influence::No
            };
        }
        if let Some(exact) = &self.exact {
            return match exact.get(&origin) {
                Some(&observed) if observed >= seq => Influence::Definite,
                _ => Influence::No,
            };
        }
        if self.bloom.might_contain(origin) {
            Influence::Possible
        } else {
            Influence::No
        }
    }

    /// Whether neither event could have influenced the other: `Definite`
    /// ordering in either direction is `No`, both `No` is `Definite`
    /// concurrency, anything else `Possible`. Exact only when both cones
    /// carry horizons.
    pub fn concurrent_with(&self, other: &CausalCone) -> Influence {
        let a = self.could_have_influenced(other.origin_hash, other.sequence);
        let b = other.could_have_influenced(self.origin_hash, self.sequence);
        match (a, b) {
            (Influence::Definite, _) | (_, Influence::Definite) => Influence::No,
            (Influence::No, Influence::No) => Influence::Definite,
            _ => Influence::Possible,
        }
    }

    /// Merges the horizons of `self` and `other` into `self`: blooms OR,
    /// and the exact horizon survives only if both had one (the highest
    /// sequence per origin).
    pub fn merge(&mut self, other: &CausalCone) {
        self.bloom = self.bloom.merge(other.bloom);
        self.exact = match (self.exact.take(), &other.exact) {
            (Some(mut mine), Some(theirs)) => {
                for (&origin, &seq) in theirs {
                    let entry = mine.entry(origin).or_insert(seq);
                    *entry = (*entry).max(seq);
                }
                Some(mine)
            }
            _ => None,
        };
    }
}
