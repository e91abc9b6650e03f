//! ForkRecords (COMPUTE.md §3.3): the lineage of a daemon forked from
//! another at a point of its causal chain (STORAGE.md §14).
//!
//! A fork has its own identity and chain. Its genesis link is
//! `{fork origin, horizon 0, sequence 0, parent = sentinel}` where the
//! sentinel is `xxh3_64(parent_origin LE8 ‖ fork_seq LE8 ‖ "fork")`, so the
//! first output of the fork (sequence 1) chains over a genesis that names
//! its parent and fork point.
//!
//! Byte format (65 bytes, little-endian, v0.11's):
//!
//! | Offset | Size | Field |
//! |---:|---:|---|
//! | 0 | 8 | original (parent) origin_hash |
//! | 8 | 8 | forked origin_hash |
//! | 16 | 8 | fork_seq: the parent's chain sequence at the fork point |
//! | 24 | 32 | the fork's genesis link |
//! | 56 | 1 | flag: non-zero = a snapshot sequence follows |
//! | 57 | 8 | snapshot sequence (0 when absent) |
//!
//! Pure: no I/O. [`ForkRecord::from_bytes`] reads untrusted bytes and
//! rejects anything [`ForkRecord::verify`] would (fuzzed:
//! `fuzz/checks/fork_record_decode.rs`). Verification is structural, as in
//! v0.11: it proves the record is self-consistent, not that the parent's
//! chain really reached `fork_seq`.

use xxhash_rust::xxh3::xxh3_64;

use crate::cortex::causal::{CAUSAL_LINK_SIZE, CausalLink};

/// Size of an encoded [`ForkRecord`].
pub const FORK_RECORD_SIZE: usize = 65;
/// The ASCII suffix hashed into a fork's sentinel.
pub const FORK_SENTINEL_LABEL: &[u8] = b"fork";

const GENESIS_AT: usize = 24;
const FLAG_AT: usize = GENESIS_AT + CAUSAL_LINK_SIZE;
const SNAPSHOT_SEQ_AT: usize = FLAG_AT + 1;

/// Why a ForkRecord was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForkRecordError {
    /// Not exactly [`FORK_RECORD_SIZE`] bytes.
    #[error("fork record must be {FORK_RECORD_SIZE} bytes, got {0}")]
    Length(usize),
    /// The genesis link's parent is not the sentinel of (original, fork_seq).
    #[error("fork genesis parent {got:#018x} is not the sentinel {expected:#018x}")]
    Sentinel {
        /// The sentinel of the record's original and fork_seq.
        expected: u64,
        /// What the genesis link carries.
        got: u64,
    },
    /// The genesis link is not the forked origin's.
    #[error("fork genesis origin {got:#018x} is not the forked origin {expected:#018x}")]
    GenesisOrigin {
        /// The record's forked origin.
        expected: u64,
        /// The genesis link's origin.
        got: u64,
    },
    /// The genesis link's sequence is not 0.
    #[error("fork genesis sequence is {0}, not 0")]
    GenesisSequence(u64),
    /// A daemon cannot be its own fork.
    #[error("fork origin equals its original {0:#018x}")]
    SelfFork(u64),
}

/// `xxh3_64(parent_origin LE8 ‖ fork_seq LE8 ‖ "fork")`.
pub fn fork_sentinel(parent_origin: u64, fork_seq: u64) -> u64 {
    let mut bytes = [0u8; 16 + FORK_SENTINEL_LABEL.len()];
    bytes[..8].copy_from_slice(&parent_origin.to_le_bytes());
    bytes[8..16].copy_from_slice(&fork_seq.to_le_bytes());
    bytes[16..].copy_from_slice(FORK_SENTINEL_LABEL);
    xxh3_64(&bytes)
}

/// The genesis link of a fork of `parent_origin` at `fork_seq` whose own
/// origin is `forked_origin`.
pub fn fork_genesis(forked_origin: u64, parent_origin: u64, fork_seq: u64) -> CausalLink {
    CausalLink {
        origin_hash: forked_origin,
        horizon_encoded: 0,
        sequence: 0,
        parent_hash: fork_sentinel(parent_origin, fork_seq),
    }
}

/// The lineage of one fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkRecord {
    /// The parent daemon's origin.
    pub original_origin: u64,
    /// The fork's origin.
    pub forked_origin: u64,
    /// The parent's chain sequence at the fork point.
    pub fork_seq: u64,
    /// The fork's genesis link (parent = sentinel).
    pub genesis: CausalLink,
    /// The parent snapshot's `through_seq` the fork's state came from, if
    /// it was forked from a snapshot.
    pub snapshot_seq: Option<u64>,
}

impl ForkRecord {
    /// The record of a fork of `original_origin` at `fork_seq`, whose
    /// origin is `forked_origin` (its genesis computed here).
    pub fn new(
        original_origin: u64,
        forked_origin: u64,
        fork_seq: u64,
        snapshot_seq: Option<u64>,
    ) -> Self {
        Self {
            original_origin,
            forked_origin,
            fork_seq,
            genesis: fork_genesis(forked_origin, original_origin, fork_seq),
            snapshot_seq,
        }
    }

    /// Checks the record's structure: the sentinel matches, the genesis is
    /// the fork's and at sequence 0, and the fork is not its own parent.
    ///
    /// # Errors
    /// The first [`ForkRecordError`] found.
    pub fn verify(&self) -> Result<(), ForkRecordError> {
        if self.original_origin == self.forked_origin {
            return Err(ForkRecordError::SelfFork(self.forked_origin));
        }
        if self.genesis.origin_hash != self.forked_origin {
            return Err(ForkRecordError::GenesisOrigin {
                expected: self.forked_origin,
                got: self.genesis.origin_hash,
            });
        }
        if self.genesis.sequence != 0 {
            return Err(ForkRecordError::GenesisSequence(self.genesis.sequence));
        }
        let expected = fork_sentinel(self.original_origin, self.fork_seq);
        if self.genesis.parent_hash != expected {
            return Err(ForkRecordError::Sentinel {
                expected,
                got: self.genesis.parent_hash,
            });
        }
        Ok(())
    }

    /// The 65 bytes.
    pub fn to_bytes(&self) -> [u8; FORK_RECORD_SIZE] {
        let mut out = [0u8; FORK_RECORD_SIZE];
        out[0..8].copy_from_slice(&self.original_origin.to_le_bytes());
        out[8..16].copy_from_slice(&self.forked_origin.to_le_bytes());
        out[16..24].copy_from_slice(&self.fork_seq.to_le_bytes());
        out[GENESIS_AT..FLAG_AT].copy_from_slice(&self.genesis.to_bytes());
        out[FLAG_AT] = u8::from(self.snapshot_seq.is_some());
        out[SNAPSHOT_SEQ_AT..].copy_from_slice(&self.snapshot_seq.unwrap_or(0).to_le_bytes());
        out
    }

    /// Parses exactly 65 bytes and [`verify`](Self::verify)s them. Any
    /// non-zero flag means a snapshot sequence is present (v0.11); the
    /// sequence field is ignored when the flag is 0.
    ///
    /// # Errors
    /// [`ForkRecordError::Length`], or what `verify` reports.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ForkRecordError> {
        let bytes: &[u8; FORK_RECORD_SIZE] = bytes
            .try_into()
            .map_err(|_| ForkRecordError::Length(bytes.len()))?;
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let genesis = CausalLink {
            origin_hash: u64_at(GENESIS_AT),
            horizon_encoded: u64_at(GENESIS_AT + 8),
            sequence: u64_at(GENESIS_AT + 16),
            parent_hash: u64_at(GENESIS_AT + 24),
        };
        let record = Self {
            original_origin: u64_at(0),
            forked_origin: u64_at(8),
            fork_seq: u64_at(16),
            genesis,
            snapshot_seq: (bytes[FLAG_AT] != 0).then(|| u64_at(SNAPSHOT_SEQ_AT)),
        };
        record.verify()?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_constants_match_the_spec() {
        assert_eq!(FORK_RECORD_SIZE, 8 + 8 + 8 + 32 + 1 + 8);
        assert_eq!(FLAG_AT, 56);
        assert_eq!(SNAPSHOT_SEQ_AT, 57);
    }

    #[test]
    fn round_trips_with_and_without_snapshot_seq() {
        for snapshot_seq in [None, Some(0), Some(42)] {
            let record = ForkRecord::new(7, 9, 41, snapshot_seq);
            let bytes = record.to_bytes();
            assert_eq!(ForkRecord::from_bytes(&bytes), Ok(record));
        }
    }

    #[test]
    fn sentinel_is_the_spec_hash() {
        let mut input = Vec::new();
        input.extend_from_slice(&5u64.to_le_bytes());
        input.extend_from_slice(&6u64.to_le_bytes());
        input.extend_from_slice(b"fork");
        assert_eq!(fork_sentinel(5, 6), xxh3_64(&input));
        assert_ne!(fork_sentinel(5, 6), fork_sentinel(5, 7));
    }

    #[test]
    fn rejects_garbage_with_typed_errors() {
        let good = ForkRecord::new(1, 2, 3, None).to_bytes();
        assert_eq!(
            ForkRecord::from_bytes(&good[..64]),
            Err(ForkRecordError::Length(64))
        );
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(
            ForkRecord::from_bytes(&long),
            Err(ForkRecordError::Length(66))
        );
        let mut bad_sentinel = good;
        bad_sentinel[GENESIS_AT + 24] ^= 1;
        assert!(matches!(
            ForkRecord::from_bytes(&bad_sentinel),
            Err(ForkRecordError::Sentinel { .. })
        ));
        let mut bad_seq = good;
        bad_seq[GENESIS_AT + 16] = 1;
        assert_eq!(
            ForkRecord::from_bytes(&bad_seq),
            Err(ForkRecordError::GenesisSequence(1))
        );
        let mut bad_origin = good;
        bad_origin[GENESIS_AT] ^= 1;
        assert!(matches!(
            ForkRecord::from_bytes(&bad_origin),
            Err(ForkRecordError::GenesisOrigin { .. })
        ));
        let self_fork = ForkRecord::new(4, 4, 0, None);
        assert_eq!(
            ForkRecord::from_bytes(&self_fork.to_bytes()),
            Err(ForkRecordError::SelfFork(4))
        );
    }

    #[test]
    fn any_non_zero_flag_means_present() {
        let mut bytes = ForkRecord::new(1, 2, 3, Some(8)).to_bytes();
        bytes[FLAG_AT] = 0xff;
        assert_eq!(
            ForkRecord::from_bytes(&bytes).map(|r| r.snapshot_seq),
            Ok(Some(8))
        );
    }
}
