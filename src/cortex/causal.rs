//! Causal records (STORAGE.md §14–16): the 32-byte [`CausalLink`] that
//! chains an entity's events, the 40-byte [`ContinuityProof`] that a span of
//! that chain is intact, the [`Horizon`] bloom of origins a writer has
//! observed, and the length-prefixed frames subprotocol 0x0400 carries.
//!
//! Every decoder here takes untrusted bytes and fails with a typed
//! [`CausalError`]; none panics (see `fuzz/fuzz_targets/causal_decode.rs`).

use std::collections::BTreeMap;

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

/// Size of an encoded [`CausalLink`].
pub const CAUSAL_LINK_SIZE: usize = 32;
/// Size of an encoded [`ContinuityProof`].
pub const CONTINUITY_PROOF_SIZE: usize = 40;
/// A proof may span at most this many sequence numbers (exclusive bound on
/// `to_seq - from_seq`).
pub const MAX_PROOF_SPAN: u64 = 100_000;
/// Size of a causal frame's length prefix.
pub const FRAME_LEN_SIZE: usize = 4;

/// Why causal bytes or a causal chain were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CausalError {
    /// A fixed-size record had the wrong length.
    #[error("{what} must be exactly {expected} bytes, got {got}")]
    WrongLength {
        /// Which record.
        what: &'static str,
        /// Its fixed size.
        expected: usize,
        /// The bytes supplied.
        got: usize,
    },
    /// A link (or proof) names a different origin than the chain.
    #[error("origin {got:#018x} does not match the chain's origin {expected:#018x}")]
    OriginMismatch {
        /// The chain's origin.
        expected: u64,
        /// The origin found.
        got: u64,
    },
    /// A link's sequence is not its predecessor's plus one.
    #[error("sequence gap: expected {expected}, got {got}")]
    SequenceGap {
        /// The sequence that should follow.
        expected: u64,
        /// The sequence found.
        got: u64,
    },
    /// A link's parent hash is not the hash of its predecessor.
    #[error("parent hash at sequence {seq}: expected {expected:#018x}, got {got:#018x}")]
    ParentHashMismatch {
        /// The link's sequence.
        seq: u64,
        /// The hash of the predecessor link and payload.
        expected: u64,
        /// The parent hash the link carries.
        got: u64,
    },
    /// A proof with `from_seq > to_seq`.
    #[error("proof range {from}..={to} is empty")]
    InvalidRange {
        /// The proof's first sequence.
        from: u64,
        /// The proof's last sequence.
        to: u64,
    },
    /// A proof spanning `MAX_PROOF_SPAN` sequences or more.
    #[error("proof spans {span} sequences; the limit is {MAX_PROOF_SPAN}")]
    SpanTooLarge {
        /// `to_seq - from_seq`.
        span: u64,
    },
    /// The log lacks an event the proof covers.
    #[error("event {0} is missing from the log")]
    MissingEvent(u64),
    /// An end-point hash of a proof does not match the log.
    #[error("hash at sequence {seq}: expected {expected:#018x}, got {got:#018x}")]
    HashMismatch {
        /// The sequence whose hash differs.
        seq: u64,
        /// What the proof states.
        expected: u64,
        /// What the log yields.
        got: u64,
    },
    /// A frame's length prefix is below the 32-byte link or runs past the
    /// end of the buffer.
    #[error("frame at offset {offset} declares {declared} bytes; {available} remain")]
    BadFrameLength {
        /// Offset of the frame's length prefix.
        offset: usize,
        /// The declared `total_len`.
        declared: u32,
        /// Bytes left after the prefix.
        available: usize,
    },
    /// The buffer ends inside a frame's 4-byte length prefix.
    #[error("truncated frame length prefix at offset {0}")]
    TruncatedFrame(usize),
}

/// One link of an entity's causal chain (STORAGE.md §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CausalLink {
    /// The entity's 64-bit origin hash.
    pub origin_hash: u64,
    /// The writer's observed horizon, as a [`Horizon`] bloom.
    pub horizon_encoded: u64,
    /// Position in the chain; the genesis link is 0.
    pub sequence: u64,
    /// `xxh3_64(previous link ‖ previous payload)`; 0 for genesis.
    pub parent_hash: u64,
}

impl CausalLink {
    /// The genesis link of `origin_hash`'s chain (its payload is empty).
    pub fn genesis(origin_hash: u64) -> Self {
        Self {
            origin_hash,
            horizon_encoded: 0,
            sequence: 0,
            parent_hash: 0,
        }
    }

    /// The link following `self` (whose event carried `payload`).
    pub fn next(&self, payload: &[u8], horizon_encoded: u64) -> Self {
        Self {
            origin_hash: self.origin_hash,
            horizon_encoded,
            sequence: self.sequence.wrapping_add(1),
            parent_hash: self.chain_hash(payload),
        }
    }

    /// `xxh3_64(self ‖ payload)`: the parent hash the next link carries.
    pub fn chain_hash(&self, payload: &[u8]) -> u64 {
        let mut hasher = Xxh3::new();
        hasher.update(&self.to_bytes());
        hasher.update(payload);
        hasher.digest()
    }

    /// Checks that `self` legitimately follows `prev` (whose event carried
    /// `prev_payload`).
    pub fn validate_after(
        &self,
        prev: &CausalLink,
        prev_payload: &[u8],
    ) -> Result<(), CausalError> {
        if self.origin_hash != prev.origin_hash {
            return Err(CausalError::OriginMismatch {
                expected: prev.origin_hash,
                got: self.origin_hash,
            });
        }
        let expected_seq = prev
            .sequence
            .checked_add(1)
            .ok_or(CausalError::SequenceGap {
                expected: u64::MAX,
                got: self.sequence,
            })?;
        if self.sequence != expected_seq {
            return Err(CausalError::SequenceGap {
                expected: expected_seq,
                got: self.sequence,
            });
        }
        let expected = prev.chain_hash(prev_payload);
        if self.parent_hash != expected {
            return Err(CausalError::ParentHashMismatch {
                seq: self.sequence,
                expected,
                got: self.parent_hash,
            });
        }
        Ok(())
    }

    /// The 32-byte little-endian encoding.
    pub fn to_bytes(&self) -> [u8; CAUSAL_LINK_SIZE] {
        let mut out = [0u8; CAUSAL_LINK_SIZE];
        out[0..8].copy_from_slice(&self.origin_hash.to_le_bytes());
        out[8..16].copy_from_slice(&self.horizon_encoded.to_le_bytes());
        out[16..24].copy_from_slice(&self.sequence.to_le_bytes());
        out[24..32].copy_from_slice(&self.parent_hash.to_le_bytes());
        out
    }

    /// Parses exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CausalError> {
        let words = fixed_words::<4>(bytes, "CausalLink")?;
        Ok(Self {
            origin_hash: words[0],
            horizon_encoded: words[1],
            sequence: words[2],
            parent_hash: words[3],
        })
    }
}

/// Splits exactly `N * 8` bytes into little-endian u64 words.
fn fixed_words<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u64; N], CausalError> {
    if bytes.len() != N * 8 {
        return Err(CausalError::WrongLength {
            what,
            expected: N * 8,
            got: bytes.len(),
        });
    }
    let mut words = [0u64; N];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut le = [0u8; 8];
        le.copy_from_slice(chunk);
        *word = u64::from_le_bytes(le);
    }
    Ok(words)
}

/// Read access to an entity's causal events, by sequence.
pub trait CausalLog {
    /// The chain's origin.
    fn origin_hash(&self) -> u64;
    /// The link and payload at `seq`, if the log holds it.
    fn event(&self, seq: u64) -> Option<(&CausalLink, &[u8])>;
}

/// An in-memory causal chain for one origin: builds links as events are
/// appended, or accepts received links after validating each.
#[derive(Debug, Clone)]
pub struct CausalChain {
    origin_hash: u64,
    events: BTreeMap<u64, (CausalLink, Vec<u8>)>,
    head: CausalLink,
    head_payload_hash: u64,
}

impl CausalChain {
    /// A chain holding only the genesis link of `origin_hash`.
    pub fn new(origin_hash: u64) -> Self {
        let genesis = CausalLink::genesis(origin_hash);
        let mut events = BTreeMap::new();
        events.insert(0, (genesis, Vec::new()));
        Self {
            origin_hash,
            events,
            head: genesis,
            head_payload_hash: genesis.chain_hash(&[]),
        }
    }

    /// Appends an event written locally; returns its link.
    pub fn append(&mut self, payload: &[u8], horizon_encoded: u64) -> CausalLink {
        let link = CausalLink {
            origin_hash: self.origin_hash,
            horizon_encoded,
            sequence: self.head.sequence.wrapping_add(1),
            parent_hash: self.head_payload_hash,
        };
        self.accept_unchecked(link, payload);
        link
    }

    /// Appends a received event after checking it follows the head.
    pub fn accept(&mut self, link: CausalLink, payload: &[u8]) -> Result<(), CausalError> {
        let (prev, prev_payload) = self.event(self.head.sequence).expect("head is held");
        link.validate_after(prev, prev_payload)?;
        self.accept_unchecked(link, payload);
        Ok(())
    }

    fn accept_unchecked(&mut self, link: CausalLink, payload: &[u8]) {
        self.head = link;
        self.head_payload_hash = link.chain_hash(payload);
        self.events.insert(link.sequence, (link, payload.to_vec()));
    }

    /// The latest link.
    pub fn head(&self) -> &CausalLink {
        &self.head
    }

    /// A proof that the chain is intact from `from_seq` through `to_seq`.
    pub fn prove(&self, from_seq: u64, to_seq: u64) -> Result<ContinuityProof, CausalError> {
        ContinuityProof::build(self, from_seq, to_seq)
    }
}

impl CausalLog for CausalChain {
    fn origin_hash(&self) -> u64 {
        self.origin_hash
    }

    fn event(&self, seq: u64) -> Option<(&CausalLink, &[u8])> {
        self.events
            .get(&seq)
            .map(|(link, payload)| (link, payload.as_slice()))
    }
}

/// A compact claim that an origin's chain is unbroken between two sequences
/// (STORAGE.md §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContinuityProof {
    /// The chain's origin.
    pub origin_hash: u64,
    /// First sequence covered.
    pub from_seq: u64,
    /// Last sequence covered.
    pub to_seq: u64,
    /// `xxh3_64(link(from_seq) ‖ payload(from_seq))`.
    pub from_hash: u64,
    /// `xxh3_64(link(to_seq) ‖ payload(to_seq))`.
    pub to_hash: u64,
}

impl ContinuityProof {
    /// Builds the proof for `from_seq..=to_seq` of `log`, checking the span.
    pub fn build(log: &impl CausalLog, from_seq: u64, to_seq: u64) -> Result<Self, CausalError> {
        check_range(from_seq, to_seq)?;
        let hash_at = |seq| {
            log.event(seq)
                .map(|(link, payload)| link.chain_hash(payload))
                .ok_or(CausalError::MissingEvent(seq))
        };
        let proof = Self {
            origin_hash: log.origin_hash(),
            from_seq,
            to_seq,
            from_hash: hash_at(from_seq)?,
            to_hash: hash_at(to_seq)?,
        };
        proof.verify(log)?;
        Ok(proof)
    }

    /// Checks the proof against `log`: same origin, a sane range, every
    /// event present and chained, and both end hashes as stated.
    pub fn verify(&self, log: &impl CausalLog) -> Result<(), CausalError> {
        if self.origin_hash != log.origin_hash() {
            return Err(CausalError::OriginMismatch {
                expected: log.origin_hash(),
                got: self.origin_hash,
            });
        }
        check_range(self.from_seq, self.to_seq)?;
        let mut prev: Option<(&CausalLink, &[u8])> = None;
        for seq in self.from_seq..=self.to_seq {
            let (link, payload) = log.event(seq).ok_or(CausalError::MissingEvent(seq))?;
            if let Some((prev_link, prev_payload)) = prev {
                link.validate_after(prev_link, prev_payload)?;
            } else if link.origin_hash != self.origin_hash {
                return Err(CausalError::OriginMismatch {
                    expected: self.origin_hash,
                    got: link.origin_hash,
                });
            }
            let expected = match seq {
                s if s == self.from_seq => Some(self.from_hash),
                s if s == self.to_seq => Some(self.to_hash),
                _ => None,
            };
            check_end_hash(seq, link, payload, expected)?;
            if seq == self.from_seq && seq == self.to_seq {
                check_end_hash(seq, link, payload, Some(self.to_hash))?;
            }
            prev = Some((link, payload));
        }
        Ok(())
    }

    /// The 40-byte little-endian encoding.
    pub fn to_bytes(&self) -> [u8; CONTINUITY_PROOF_SIZE] {
        let mut out = [0u8; CONTINUITY_PROOF_SIZE];
        let words = [
            self.origin_hash,
            self.from_seq,
            self.to_seq,
            self.from_hash,
            self.to_hash,
        ];
        for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// Parses exactly 40 bytes (the range is checked by [`Self::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CausalError> {
        let words = fixed_words::<5>(bytes, "ContinuityProof")?;
        Ok(Self {
            origin_hash: words[0],
            from_seq: words[1],
            to_seq: words[2],
            from_hash: words[3],
            to_hash: words[4],
        })
    }
}

fn check_range(from: u64, to: u64) -> Result<(), CausalError> {
    if from > to {
        return Err(CausalError::InvalidRange { from, to });
    }
    let span = to - from;
    if span >= MAX_PROOF_SPAN {
        return Err(CausalError::SpanTooLarge { span });
    }
    Ok(())
}

fn check_end_hash(
    seq: u64,
    link: &CausalLink,
    payload: &[u8],
    expected: Option<u64>,
) -> Result<(), CausalError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let got = link.chain_hash(payload);
    if got != expected {
        return Err(CausalError::HashMismatch { seq, expected, got });
    }
    Ok(())
}

/// The bloom of origins a writer has observed (STORAGE.md §16). Sequence
/// numbers are not encoded; membership may report false positives, never
/// false negatives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Horizon(pub u64);

impl Horizon {
    /// The three bits `origin_hash` sets.
    pub fn bits(origin_hash: u64) -> u64 {
        let h = xxh3_64(&origin_hash.to_le_bytes());
        let h1 = h as u32;
        let h2 = ((h >> 32) as u32) | 1;
        let p1 = h1 % 64;
        let p2 = h1.wrapping_add(h2) % 64;
        let p3 = h1.wrapping_add(h2.wrapping_mul(2)) % 64;
        (1u64 << p1) | (1u64 << p2) | (1u64 << p3)
    }

    /// Records that `origin_hash` has been observed.
    pub fn observe(&mut self, origin_hash: u64) {
        self.0 |= Self::bits(origin_hash);
    }

    /// Whether `origin_hash` may have been observed.
    pub fn might_contain(&self, origin_hash: u64) -> bool {
        let bits = Self::bits(origin_hash);
        self.0 & bits == bits
    }

    /// The union of two horizons.
    pub fn merge(self, other: Horizon) -> Horizon {
        Horizon(self.0 | other.0)
    }
}

/// One decoded causal frame: a link and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CausalFrame<'a> {
    /// The event's link.
    pub link: CausalLink,
    /// The event's payload.
    pub payload: &'a [u8],
}

/// Appends a frame (`u32 LE total_len ‖ link ‖ payload`) to `out`.
///
/// Fails if the payload is too large for the 32-bit length prefix.
pub fn encode_frame(
    out: &mut Vec<u8>,
    link: &CausalLink,
    payload: &[u8],
) -> Result<(), CausalError> {
    let total = CAUSAL_LINK_SIZE
        .checked_add(payload.len())
        .and_then(|total| u32::try_from(total).ok())
        .ok_or(CausalError::BadFrameLength {
            offset: out.len(),
            declared: u32::MAX,
            available: payload.len(),
        })?;
    out.reserve(FRAME_LEN_SIZE + total as usize);
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&link.to_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Iterates the frames of a 0x0400 event body; yields an error (and then
/// stops) at the first malformed frame.
pub fn decode_frames(bytes: &[u8]) -> FrameIter<'_> {
    FrameIter {
        bytes,
        offset: 0,
        failed: false,
    }
}

/// Iterator returned by [`decode_frames`].
#[derive(Debug, Clone)]
pub struct FrameIter<'a> {
    bytes: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Iterator for FrameIter<'a> {
    type Item = Result<CausalFrame<'a>, CausalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset == self.bytes.len() {
            return None;
        }
        let result = self.decode_one();
        self.failed = result.is_err();
        Some(result)
    }
}

impl<'a> FrameIter<'a> {
    fn decode_one(&mut self) -> Result<CausalFrame<'a>, CausalError> {
        let start = self.offset;
        let rest = &self.bytes[start..];
        let prefix: [u8; FRAME_LEN_SIZE] = rest
            .get(..FRAME_LEN_SIZE)
            .and_then(|p| p.try_into().ok())
            .ok_or(CausalError::TruncatedFrame(start))?;
        let declared = u32::from_le_bytes(prefix);
        let body = &rest[FRAME_LEN_SIZE..];
        let len = declared as usize;
        if len < CAUSAL_LINK_SIZE || len > body.len() {
            return Err(CausalError::BadFrameLength {
                offset: start,
                declared,
                available: body.len(),
            });
        }
        let link = CausalLink::from_bytes(&body[..CAUSAL_LINK_SIZE])?;
        self.offset = start + FRAME_LEN_SIZE + len;
        Ok(CausalFrame {
            link,
            payload: &body[CAUSAL_LINK_SIZE..len],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_event_proof_checks_both_hashes() {
        let mut chain = CausalChain::new(7);
        chain.append(b"a", 0);
        let mut proof = chain.prove(1, 1).unwrap();
        proof.to_hash ^= 1;
        assert!(matches!(
            proof.verify(&chain),
            Err(CausalError::HashMismatch { seq: 1, .. })
        ));
    }
}
