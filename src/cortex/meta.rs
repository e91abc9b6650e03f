//! `EventMeta`: the 24-byte prefix of every CortEX record (STORAGE.md §10).

use xxhash_rust::xxh3::Xxh3;

/// Size of an encoded `EventMeta`.
pub const EVENT_META_SIZE: usize = 24;

/// Flag: the record carries a causal link (defined; unused by the models).
pub const FLAG_CAUSAL: u8 = 0x01;
/// Flag: the record carries a continuity proof (defined; unused by the models).
pub const FLAG_CONTINUITY_PROOF: u8 = 0x02;

/// Dispatch values at or above this belong to applications.
pub const APPLICATION_DISPATCH_MIN: u8 = 0x80;

mod offset {
    pub const DISPATCH: usize = 0;
    pub const FLAGS: usize = 1;
    pub const PAD: usize = 2;
    pub const ORIGIN_HASH: usize = 4;
    pub const SEQ_OR_TS: usize = 12;
    pub const CHECKSUM: usize = 20;
}

/// Why a record could not be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The record is shorter than the 24-byte header.
    #[error("record is {0} bytes; an EventMeta needs 24")]
    TooShort(usize),
    /// Neither the v2 nor the v1 checksum matches: the record is corrupt.
    #[error("record checksum {stored:#010x} matches neither v2 {v2:#010x} nor v1 {v1:#010x}")]
    ChecksumMismatch {
        /// The checksum in the record.
        stored: u32,
        /// What v2 computes.
        v2: u32,
        /// What v1 computes.
        v1: u32,
    },
}

/// Which checksum a record carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChecksumVersion {
    /// Header-covering (every writer since v0.11).
    V2,
    /// Payload-only (pre-v0.11 records).
    V1,
}

/// The header of a CortEX record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventMeta {
    /// What the record is: 0x00–0x7F CortEX models, 0x80–0xFF applications.
    pub dispatch: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// The writer's `origin_hash`.
    pub origin_hash: u64,
    /// The writer's per-origin app sequence (or a timestamp, by convention).
    pub seq_or_ts: u64,
    /// The record checksum (see [`compute_checksum_with_meta`]).
    pub checksum: u32,
}

impl EventMeta {
    /// A header with checksum 0 (stamp it with [`EventMeta::stamped`]).
    pub fn new(dispatch: u8, origin_hash: u64, seq_or_ts: u64) -> Self {
        Self {
            dispatch,
            flags: 0,
            origin_hash,
            seq_or_ts,
            checksum: 0,
        }
    }

    /// This header with the v2 checksum of itself and `tail`.
    pub fn stamped(mut self, tail: &[u8]) -> Self {
        self.checksum = compute_checksum_with_meta(&self, tail);
        self
    }

    /// The 24 bytes (pad written as zero).
    pub fn to_bytes(&self) -> [u8; EVENT_META_SIZE] {
        let mut out = [0u8; EVENT_META_SIZE];
        out[offset::DISPATCH] = self.dispatch;
        out[offset::FLAGS] = self.flags;
        out[offset::ORIGIN_HASH..offset::SEQ_OR_TS]
            .copy_from_slice(&self.origin_hash.to_le_bytes());
        out[offset::SEQ_OR_TS..offset::CHECKSUM].copy_from_slice(&self.seq_or_ts.to_le_bytes());
        out[offset::CHECKSUM..].copy_from_slice(&self.checksum.to_le_bytes());
        out
    }

    /// Decodes the header of `record` (pad ignored). Does not check the checksum.
    ///
    /// # Errors
    /// [`MetaError::TooShort`] below 24 bytes.
    pub fn decode(record: &[u8]) -> Result<Self, MetaError> {
        let bytes = record
            .get(..EVENT_META_SIZE)
            .ok_or(MetaError::TooShort(record.len()))?;
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        Ok(Self {
            dispatch: bytes[offset::DISPATCH],
            flags: bytes[offset::FLAGS],
            origin_hash: u64_at(offset::ORIGIN_HASH),
            seq_or_ts: u64_at(offset::SEQ_OR_TS),
            checksum: u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]),
        })
    }

    /// Splits a record into its header and tail, accepting it iff its checksum
    /// is the v2 one or (for pre-v0.11 records) the v1 one.
    ///
    /// # Errors
    /// [`MetaError::TooShort`]; [`MetaError::ChecksumMismatch`].
    pub fn parse_record(record: &[u8]) -> Result<(Self, &[u8], ChecksumVersion), MetaError> {
        let meta = Self::decode(record)?;
        let tail = &record[EVENT_META_SIZE..];
        let v2 = compute_checksum_with_meta(&meta, tail);
        if meta.checksum == v2 {
            return Ok((meta, tail, ChecksumVersion::V2));
        }
        let v1 = compute_checksum(tail);
        if meta.checksum == v1 {
            return Ok((meta, tail, ChecksumVersion::V1));
        }
        Err(MetaError::ChecksumMismatch {
            stored: meta.checksum,
            v2,
            v1,
        })
    }

    /// A complete record: this header stamped with the v2 checksum, then `tail`.
    pub fn encode_record(&self, tail: &[u8]) -> Vec<u8> {
        let stamped = self.stamped(tail);
        let mut record = Vec::with_capacity(EVENT_META_SIZE + tail.len());
        record.extend_from_slice(&stamped.to_bytes());
        record.extend_from_slice(tail);
        record
    }
}

/// The v2 checksum: low 32 bits of xxh3_64 over the header with its checksum
/// (and pad) zeroed, then the tail. Covers dispatch, flags, origin and
/// sequence, so a flipped header bit is caught.
pub fn compute_checksum_with_meta(meta: &EventMeta, tail: &[u8]) -> u32 {
    let mut header = EventMeta {
        checksum: 0,
        ..*meta
    }
    .to_bytes();
    header[offset::PAD..offset::ORIGIN_HASH].fill(0);
    let mut hasher = Xxh3::new();
    hasher.update(&header);
    hasher.update(tail);
    hasher.digest() as u32
}

/// The v1 checksum: low 32 bits of xxh3_64 of the tail only. Accepted on read
/// for records written before v0.11; never written.
pub fn compute_checksum(tail: &[u8]) -> u32 {
    xxhash_rust::xxh3::xxh3_64(tail) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_spec() {
        assert_eq!(offset::DISPATCH, 0);
        assert_eq!(offset::FLAGS, 1);
        assert_eq!(offset::PAD, 2);
        assert_eq!(offset::ORIGIN_HASH, 4);
        assert_eq!(offset::SEQ_OR_TS, 12);
        assert_eq!(offset::CHECKSUM, 20);
        assert_eq!(EVENT_META_SIZE, 24);
        assert_eq!((FLAG_CAUSAL, FLAG_CONTINUITY_PROOF), (1, 2));
    }

    #[test]
    fn v2_detects_a_flip_in_any_header_bit() {
        let tail = b"payload";
        let meta = EventMeta::new(0x01, 0x0102_0304_0506_0708, 42).stamped(tail);
        let record = meta.encode_record(tail);
        assert!(EventMeta::parse_record(&record).is_ok());
        // Every bit of dispatch, flags, origin_hash and seq_or_ts.
        for byte in (0..2).chain(4..20) {
            for bit in 0..8 {
                let mut bad = record.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    EventMeta::parse_record(&bad).is_err(),
                    "flip of bit {bit} of byte {byte} went unnoticed"
                );
            }
        }
        // The pad is ignored.
        let mut padded = record.clone();
        padded[2] = 0xaa;
        padded[3] = 0xbb;
        assert_eq!(
            EventMeta::parse_record(&padded).unwrap().2,
            ChecksumVersion::V2
        );
    }

    #[test]
    fn v1_records_are_still_accepted_and_differ_from_v2() {
        for tail in [&b"hello"[..], b"", b"\x01\x0awrite spec"] {
            let meta = EventMeta::new(0x80, 7, 1);
            let v1 = compute_checksum(tail);
            let v2 = compute_checksum_with_meta(&meta, tail);
            assert_ne!(v1, v2);
            let mut legacy = EventMeta {
                checksum: v1,
                ..meta
            }
            .to_bytes()
            .to_vec();
            legacy.extend_from_slice(tail);
            assert_eq!(
                EventMeta::parse_record(&legacy).unwrap().2,
                ChecksumVersion::V1
            );
        }
        assert_eq!(EventMeta::decode(&[0; 23]), Err(MetaError::TooShort(23)));
    }
}
