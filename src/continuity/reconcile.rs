//! Reconciliation of one origin's chain after a split healed (COMPUTE.md
//! §5 "Reconcile"), and the [`ForkRecord`] the losing branch becomes
//! (§3.3's 65-byte record).
//!
//! Both sides hold the common event at the split (`split`) and each its
//! own events after it. [`reconcile`] checks both branches against the
//! split event, finds where they part, and picks a winner by a rule that
//! depends only on the branches, never on which side is asking:
//!
//! 1. the longer branch (more events after the point they part) wins;
//! 2. on equal length, the branch whose head has the lower `chain_hash`
//!    (`xxh3_64(link ‖ payload)`, which commits to the whole branch) wins;
//! 3. on equal head hashes (a 64-bit collision), the branch whose encoded
//!    events (link bytes, then payload, event by event) compare lower wins.
//!
//! Byte-identical branches have not diverged, so the order is total.
//!
//! The losing branch is not dropped: its events move to a fork entity
//! whose origin is derived from the divergence (the original origin, the
//! last common sequence and hash, and the hash of the loser's first
//! event), so both sides name the same fork. Its events are re-chained
//! under that origin from a genesis link whose parent is the §3.3
//! sentinel, and the [`ForkRecord`] states the lineage.
//!
//! Departures from v0.11 (§8 item 13): the remote branch is anchored to
//! our event at the split (v0.11 never checks their first parent), ours
//! is checked too; the tie-break is a total order on the branches (v0.11
//! falls back to "ours" when its keys tie, so two sides can each keep
//! their own); and the fork identity is derived, not a random keypair on
//! each side. A fork entity therefore has no signing key: it archives the
//! losing branch; an application that wants to keep writing it mints its
//! own entity and links to the record.

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::compute::CausalEvent;
use crate::compute::codec::Reader;
use crate::cortex::causal::{CausalError, CausalLink};

/// Size of an encoded [`ForkRecord`].
pub const FORK_RECORD_SIZE: usize = 65;

/// Most events a branch may hold (the continuity proof span).
pub const MAX_BRANCH_EVENTS: usize = crate::cortex::causal::MAX_PROOF_SPAN as usize;

/// Which side of a reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This node's branch.
    Ours,
    /// The peer's branch.
    Theirs,
}

impl Side {
    /// The other side.
    pub fn flip(self) -> Side {
        match self {
            Side::Ours => Side::Theirs,
            Side::Theirs => Side::Ours,
        }
    }
}

/// Why a reconciliation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// A branch does not chain from the split event (or within itself).
    /// Drop the peer's branch (or, for `Ours`, repair the local log).
    #[error("{side:?} branch does not chain from the split: {source}")]
    BadBranch {
        /// Whose branch.
        side: Side,
        /// The link check that failed.
        source: CausalError,
    },
    /// A branch holds more than [`MAX_BRANCH_EVENTS`] events.
    #[error("{side:?} branch holds {len} events; at most {MAX_BRANCH_EVENTS}")]
    BranchTooLong {
        /// Whose branch.
        side: Side,
        /// Its length.
        len: usize,
    },
}

/// What to do with one chain after a heal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reconciliation {
    /// Both branches are the same.
    AlreadyConverged,
    /// One branch extends the other: `behind` appends `events`.
    Catchup {
        /// The side that must append.
        behind: Side,
        /// The events it lacks, in order.
        events: Vec<CausalEvent>,
    },
    /// The branches parted; one wins, the other becomes a fork.
    Diverged(Divergence),
}

/// The outcome of a real divergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Whose branch wins.
    pub winner: Side,
    /// The last sequence both branches share (the split, or later if the
    /// branches agree for a while).
    pub common_seq: u64,
    /// The winning branch from the point they part: what the losing side
    /// writes in place of its own events.
    pub winning: Vec<CausalEvent>,
    /// The loser's events from the point they part, as they were.
    pub losing: Vec<CausalEvent>,
    /// The lineage of the fork the losing events move to.
    pub fork: ForkRecord,
    /// The losing events re-chained under the fork's origin (sequences from
    /// 1, after the fork's genesis link).
    pub fork_events: Vec<CausalEvent>,
}

/// Reconciles `ours` and `theirs`, the events each side holds after
/// `split` (the last event both held when they parted).
pub fn reconcile(
    split: &CausalEvent,
    ours: &[CausalEvent],
    theirs: &[CausalEvent],
) -> Result<Reconciliation, ReconcileError> {
    check_branch(split, ours, Side::Ours)?;
    check_branch(split, theirs, Side::Theirs)?;
    let common = ours
        .iter()
        .zip(theirs)
        .take_while(|(a, b)| a.link == b.link && a.payload == b.payload)
        .count();
    let (our_rest, their_rest) = (&ours[common..], &theirs[common..]);
    match (our_rest.is_empty(), their_rest.is_empty()) {
        (true, true) => return Ok(Reconciliation::AlreadyConverged),
        (true, false) => {
            return Ok(Reconciliation::Catchup {
                behind: Side::Ours,
                events: their_rest.to_vec(),
            });
        }
        (false, true) => {
            return Ok(Reconciliation::Catchup {
                behind: Side::Theirs,
                events: our_rest.to_vec(),
            });
        }
        (false, false) => {}
    }
    let ancestor = if common == 0 {
        split
    } else {
        &ours[common - 1]
    };
    let winner = match compare_branches(our_rest, their_rest) {
        std::cmp::Ordering::Greater => Side::Theirs,
        _ => Side::Ours,
    };
    let (winning, losing) = match winner {
        Side::Ours => (our_rest, their_rest),
        Side::Theirs => (their_rest, our_rest),
    };
    let fork = ForkRecord::derive(ancestor, &losing[0]);
    let fork_events = fork.rechain(losing);
    Ok(Reconciliation::Diverged(Divergence {
        winner,
        common_seq: ancestor.link.sequence,
        winning: winning.to_vec(),
        losing: losing.to_vec(),
        fork,
        fork_events,
    }))
}

/// The winner rule: `Less` when `a` wins.
fn compare_branches(a: &[CausalEvent], b: &[CausalEvent]) -> std::cmp::Ordering {
    let head_hash = |branch: &[CausalEvent]| {
        branch
            .last()
            .map_or(0, |event| event.link.chain_hash(&event.payload))
    };
    b.len()
        .cmp(&a.len())
        .then_with(|| head_hash(a).cmp(&head_hash(b)))
        .then_with(|| {
            let key = |branch: &[CausalEvent]| {
                branch
                    .iter()
                    .map(|e| (e.link.to_bytes(), e.payload.clone()))
                    .collect::<Vec<_>>()
            };
            key(a).cmp(&key(b))
        })
}

fn check_branch(
    split: &CausalEvent,
    branch: &[CausalEvent],
    side: Side,
) -> Result<(), ReconcileError> {
    if branch.len() > MAX_BRANCH_EVENTS {
        return Err(ReconcileError::BranchTooLong {
            side,
            len: branch.len(),
        });
    }
    let mut prev = split;
    for event in branch {
        event
            .link
            .validate_after(&prev.link, &prev.payload)
            .map_err(|source| ReconcileError::BadBranch { side, source })?;
        prev = event;
    }
    Ok(())
}

/// The lineage of a fork (COMPUTE.md §3.3; 65 bytes, v0.11's layout):
/// `original u64 ‖ forked u64 ‖ fork_seq u64 ‖ genesis link 32 ‖ flag u8 ‖
/// snapshot_seq u64`, little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ForkRecord {
    /// The origin the fork split from.
    pub original_origin: u64,
    /// The fork's origin.
    pub forked_origin: u64,
    /// The last sequence the fork shares with the original.
    pub fork_seq: u64,
    /// The fork's genesis: {forked, horizon 0, seq 0, parent = sentinel}.
    pub genesis: CausalLink,
    /// The snapshot the fork started from, if any.
    pub snapshot_seq: Option<u64>,
}

/// Why fork-record bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForkRecordError {
    /// Not exactly 65 bytes.
    #[error("a fork record is {FORK_RECORD_SIZE} bytes, got {0}")]
    WrongLength(usize),
    /// The genesis link is not the fork's genesis (wrong origin, non-zero
    /// sequence, or a parent that is not the sentinel), or the fork names
    /// its own original.
    #[error("fork record lineage does not verify")]
    BadLineage,
}

/// `xxh3_64(original LE8 ‖ fork_seq LE8 ‖ "fork")` (§3.3).
pub fn fork_sentinel(original_origin: u64, fork_seq: u64) -> u64 {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&original_origin.to_le_bytes());
    bytes[8..16].copy_from_slice(&fork_seq.to_le_bytes());
    bytes[16..].copy_from_slice(b"fork");
    xxh3_64(&bytes)
}

impl ForkRecord {
    /// The record for the branch that parts from `ancestor` with
    /// `first_losing`, the same on every node that holds both events.
    pub fn derive(ancestor: &CausalEvent, first_losing: &CausalEvent) -> Self {
        let original = ancestor.link.origin_hash;
        let fork_seq = ancestor.link.sequence;
        let mut hasher = Xxh3::new();
        hasher.update(b"net-fork-v1");
        hasher.update(&original.to_le_bytes());
        hasher.update(&fork_seq.to_le_bytes());
        hasher.update(&ancestor.link.chain_hash(&ancestor.payload).to_le_bytes());
        hasher.update(
            &first_losing
                .link
                .chain_hash(&first_losing.payload)
                .to_le_bytes(),
        );
        let mut forked = hasher.digest();
        while forked == original || forked == 0 {
            forked = xxh3_64(&forked.to_le_bytes());
        }
        Self::new(original, forked, fork_seq, None)
    }

    /// The record of `forked` splitting from `original` after `fork_seq`.
    pub fn new(original: u64, forked: u64, fork_seq: u64, snapshot_seq: Option<u64>) -> Self {
        Self {
            original_origin: original,
            forked_origin: forked,
            fork_seq,
            genesis: CausalLink {
                origin_hash: forked,
                horizon_encoded: 0,
                sequence: 0,
                parent_hash: fork_sentinel(original, fork_seq),
            },
            snapshot_seq,
        }
    }

    /// Structural checks (§3.3): the sentinel, the genesis origin and
    /// sequence, and original ≠ forked. Proves nothing about the
    /// original's chain; [`reconcile`] does that.
    pub fn verify(&self) -> Result<(), ForkRecordError> {
        let ok = self.genesis.origin_hash == self.forked_origin
            && self.genesis.sequence == 0
            && self.genesis.parent_hash == fork_sentinel(self.original_origin, self.fork_seq)
            && self.original_origin != self.forked_origin;
        ok.then_some(()).ok_or(ForkRecordError::BadLineage)
    }

    /// `events` re-chained under the fork: sequences from 1, parents from
    /// the fork's genesis, horizons and payloads kept.
    pub fn rechain(&self, events: &[CausalEvent]) -> Vec<CausalEvent> {
        let mut prev = (self.genesis, &[][..]);
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let link = prev.0.next(prev.1, event.link.horizon_encoded);
            out.push(CausalEvent {
                link,
                payload: event.payload.clone(),
                received_at: event.received_at,
            });
            prev = (link, &event.payload);
        }
        out
    }

    /// The 65-byte encoding.
    pub fn to_bytes(&self) -> [u8; FORK_RECORD_SIZE] {
        let mut out = [0u8; FORK_RECORD_SIZE];
        out[0..8].copy_from_slice(&self.original_origin.to_le_bytes());
        out[8..16].copy_from_slice(&self.forked_origin.to_le_bytes());
        out[16..24].copy_from_slice(&self.fork_seq.to_le_bytes());
        out[24..56].copy_from_slice(&self.genesis.to_bytes());
        out[56] = u8::from(self.snapshot_seq.is_some());
        out[57..65].copy_from_slice(&self.snapshot_seq.unwrap_or(0).to_le_bytes());
        out
    }

    /// Parses exactly 65 bytes and verifies the lineage.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ForkRecordError> {
        if bytes.len() != FORK_RECORD_SIZE {
            return Err(ForkRecordError::WrongLength(bytes.len()));
        }
        let wrong_length = |_| ForkRecordError::WrongLength(bytes.len());
        let mut r = Reader::new(bytes);
        let original_origin = r.u64("original").map_err(wrong_length)?;
        let forked_origin = r.u64("forked").map_err(wrong_length)?;
        let fork_seq = r.u64("fork_seq").map_err(wrong_length)?;
        let genesis = r.causal_link("genesis").map_err(wrong_length)?;
        let has_snapshot = r.u8("flag").map_err(wrong_length)? != 0;
        let snapshot_seq = r.u64("snapshot_seq").map_err(wrong_length)?;
        let record = Self {
            original_origin,
            forked_origin,
            fork_seq,
            genesis,
            snapshot_seq: has_snapshot.then_some(snapshot_seq),
        };
        record.verify()?;
        Ok(record)
    }
}
