//! The RedEX on-disk byte formats (STORAGE.md §2–6): the 16-byte manifest,
//! 20-byte index records, the 28-bit payload checksum, timestamps and
//! generation directory names. Pure: bytes in, bytes out, no I/O.

use std::fmt;

use super::error::RedexError;

/// Size of an index record.
pub const IDX_RECORD_LEN: usize = 20;
/// Size of one timestamp in the `ts` sidecar.
pub const TS_RECORD_LEN: usize = 8;
/// Size of the manifest.
pub const MANIFEST_LEN: usize = 16;
/// Manifest magic, ASCII `REDM`.
pub const MANIFEST_MAGIC: [u8; 4] = *b"REDM";
/// The only manifest version.
pub const MANIFEST_VERSION: u8 = 1;
/// Size of an inline payload.
pub const INLINE_LEN: usize = 8;

/// Index flag: the payload is the 8 bytes inside the record.
pub const FLAG_INLINE: u32 = 0x8000_0000;
/// Index flag: reserved, never written by v0.11.
pub const FLAG_TOMBSTONE: u32 = 0x4000_0000;
/// Index flag: reserved, never written by v0.11.
pub const FLAG_COMPACTED: u32 = 0x2000_0000;
/// The flag nibble of `flags_and_checksum`.
pub const FLAGS_MASK: u32 = 0xF000_0000;
/// The checksum bits of `flags_and_checksum`.
pub const CHECKSUM_MASK: u32 = 0x0FFF_FFFF;

/// Live heap bytes one file may hold (3 GiB).
pub const MAX_HEAP_BYTES: u64 = 3 << 30;

/// File names inside a generation directory.
pub const IDX_FILE: &str = "idx";
/// Heap payloads.
pub const DAT_FILE: &str = "dat";
/// Timestamps.
pub const TS_FILE: &str = "ts";
/// The manifest, in the channel directory.
pub const MANIFEST_FILE: &str = "manifest";
/// The manifest being replaced.
pub const MANIFEST_TMP_FILE: &str = "manifest.tmp";

/// The 28-bit checksum of a payload: `xxh3_64(payload) & 0x0FFF_FFFF`.
pub fn checksum28(payload: &[u8]) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(payload) as u32) & CHECKSUM_MASK
}

/// Where an entry's payload lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadRef {
    /// `len` bytes at `offset` in the generation's `dat`.
    Heap {
        /// Byte offset in `dat`.
        offset: u32,
        /// Payload length.
        len: u32,
    },
    /// Exactly 8 bytes stored in the record itself.
    Inline([u8; INLINE_LEN]),
}

impl PayloadRef {
    /// Payload length in bytes.
    pub fn len(&self) -> u32 {
        match self {
            Self::Heap { len, .. } => *len,
            Self::Inline(_) => INLINE_LEN as u32,
        }
    }

    /// True for a zero-length heap payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The end offset in `dat` of a heap payload (`None` for inline ones).
    pub fn heap_end(&self) -> Option<u64> {
        match self {
            Self::Heap { offset, len } => Some(u64::from(*offset) + u64::from(*len)),
            Self::Inline(_) => None,
        }
    }
}

/// One 20-byte index record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdxRecord {
    /// Sequence number.
    pub seq: u64,
    /// Where the payload is.
    pub payload: PayloadRef,
    /// Flag bits other than INLINE (reserved ones are carried, never set by us).
    pub extra_flags: u32,
    /// The 28-bit payload checksum.
    pub checksum: u32,
}

impl IdxRecord {
    /// A heap record.
    pub fn heap(seq: u64, offset: u32, len: u32, checksum: u32) -> Self {
        Self {
            seq,
            payload: PayloadRef::Heap { offset, len },
            extra_flags: 0,
            checksum: checksum & CHECKSUM_MASK,
        }
    }

    /// A heap record with explicit flag bits, as the v0.11 constructor takes
    /// them. The reserved flags are carried; INLINE is refused because a heap
    /// record carrying it would be read back as an inline payload.
    ///
    /// # Errors
    /// [`RedexError::InlineFlagOnHeap`] when `flags` has the INLINE bit.
    pub fn new_heap(
        seq: u64,
        offset: u32,
        len: u32,
        flags: u32,
        checksum: u32,
    ) -> Result<Self, RedexError> {
        if flags & FLAG_INLINE != 0 {
            return Err(RedexError::InlineFlagOnHeap);
        }
        Ok(Self {
            extra_flags: flags & FLAGS_MASK,
            ..Self::heap(seq, offset, len, checksum)
        })
    }

    /// An inline record for an 8-byte payload.
    pub fn inline(seq: u64, payload: [u8; INLINE_LEN]) -> Self {
        Self {
            seq,
            payload: PayloadRef::Inline(payload),
            extra_flags: 0,
            checksum: checksum28(&payload),
        }
    }

    /// The 20 bytes.
    pub fn encode(&self) -> [u8; IDX_RECORD_LEN] {
        let mut out = [0u8; IDX_RECORD_LEN];
        out[0..8].copy_from_slice(&self.seq.to_le_bytes());
        let mut flags = self.extra_flags & FLAGS_MASK & !FLAG_INLINE;
        match self.payload {
            PayloadRef::Heap { offset, len } => {
                out[8..12].copy_from_slice(&offset.to_le_bytes());
                out[12..16].copy_from_slice(&len.to_le_bytes());
            }
            PayloadRef::Inline(bytes) => {
                out[8..16].copy_from_slice(&bytes);
                flags |= FLAG_INLINE;
            }
        }
        out[16..20].copy_from_slice(&(flags | (self.checksum & CHECKSUM_MASK)).to_le_bytes());
        out
    }

    /// Decodes 20 bytes. Every bit pattern is a record; whether it is
    /// plausible is for recovery to judge.
    pub fn decode(bytes: &[u8; IDX_RECORD_LEN]) -> Self {
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[0..8]);
        let word = u32_at(16);
        let payload = if word & FLAG_INLINE != 0 {
            let mut inline = [0u8; INLINE_LEN];
            inline.copy_from_slice(&bytes[8..16]);
            PayloadRef::Inline(inline)
        } else {
            PayloadRef::Heap {
                offset: u32_at(8),
                len: u32_at(12),
            }
        };
        Self {
            seq: u64::from_le_bytes(seq),
            payload,
            extra_flags: word & FLAGS_MASK & !FLAG_INLINE,
            checksum: word & CHECKSUM_MASK,
        }
    }

    /// Decodes every whole record of an `idx` file; a trailing fragment shorter
    /// than 20 bytes is ignored (it is a torn write).
    pub fn decode_all(bytes: &[u8]) -> Vec<Self> {
        bytes
            .chunks_exact(IDX_RECORD_LEN)
            .map(|chunk| {
                let mut record = [0u8; IDX_RECORD_LEN];
                record.copy_from_slice(chunk);
                Self::decode(&record)
            })
            .collect()
    }
}

/// Why a manifest was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Fewer than 16 bytes.
    #[error("manifest is {0} bytes; at least 16 are needed")]
    TooShort(usize),
    /// The first four bytes are not `REDM`.
    #[error("manifest magic is not REDM")]
    BadMagic,
    /// The version byte is not 1.
    #[error("manifest version {0} is not supported")]
    UnsupportedVersion(u8),
    /// A reserved byte is not zero.
    #[error("manifest reserved bytes are not zero")]
    ReservedNotZero,
    /// The checksum does not match.
    #[error("manifest checksum mismatch")]
    BadChecksum,
    /// Generation 0 is not a valid generation.
    #[error("manifest names generation 0")]
    ZeroGeneration,
}

/// The 16-byte pointer to the live generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Manifest {
    /// The live generation (≥ 1).
    pub generation: Generation,
}

impl Manifest {
    /// The 16 bytes.
    pub fn encode(&self) -> [u8; MANIFEST_LEN] {
        let mut out = [0u8; MANIFEST_LEN];
        out[0..4].copy_from_slice(&MANIFEST_MAGIC);
        out[4] = MANIFEST_VERSION;
        out[5..9].copy_from_slice(&self.generation.0.to_le_bytes());
        let checksum = xxhash_rust::xxh3::xxh3_64(&out[0..12]) as u32;
        out[12..16].copy_from_slice(&checksum.to_le_bytes());
        out
    }

    /// Decodes the first 16 bytes of `bytes` (extra bytes are ignored).
    ///
    /// # Errors
    /// The first check that fails, as a [`ManifestError`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let bytes = bytes
            .get(..MANIFEST_LEN)
            .ok_or(ManifestError::TooShort(bytes.len()))?;
        if bytes[0..4] != MANIFEST_MAGIC {
            return Err(ManifestError::BadMagic);
        }
        if bytes[4] != MANIFEST_VERSION {
            return Err(ManifestError::UnsupportedVersion(bytes[4]));
        }
        if bytes[9..12] != [0, 0, 0] {
            return Err(ManifestError::ReservedNotZero);
        }
        let stored = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        if stored != xxhash_rust::xxh3::xxh3_64(&bytes[0..12]) as u32 {
            return Err(ManifestError::BadChecksum);
        }
        let generation = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
        if generation == 0 {
            return Err(ManifestError::ZeroGeneration);
        }
        Ok(Self {
            generation: Generation(generation),
        })
    }
}

/// A generation number (≥ 1); its directory is `v` + 10 zero-padded digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u32);

impl Generation {
    /// The first generation of every channel.
    pub const FIRST: Self = Self(1);

    /// The directory name, e.g. `v0000000001`.
    pub fn dir_name(self) -> String {
        format!("v{:010}", self.0)
    }

    /// Parses a directory name: exactly `v` + 10 ASCII digits, value ≥ 1 and
    /// within u32.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let digits = name.strip_prefix('v')?;
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u64 = digits.parse().ok()?;
        let value = u32::try_from(value).ok()?;
        (value >= 1).then_some(Self(value))
    }

    /// The next generation, or `None` at `u32::MAX`.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dir_name())
    }
}

/// Decodes the first `count` timestamps of a `ts` file, or `None` when it
/// holds fewer than `count`.
pub fn decode_timestamps(bytes: &[u8], count: usize) -> Option<Vec<u64>> {
    let needed = count.checked_mul(TS_RECORD_LEN)?;
    let bytes = bytes.get(..needed)?;
    Some(
        bytes
            .chunks_exact(TS_RECORD_LEN)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_spec() {
        assert_eq!(IDX_RECORD_LEN, 20);
        assert_eq!(TS_RECORD_LEN, 8);
        assert_eq!(MANIFEST_LEN, 16);
        assert_eq!(&MANIFEST_MAGIC, b"REDM");
        assert_eq!(FLAG_INLINE, 0x8000_0000);
        assert_eq!(FLAG_TOMBSTONE, 0x4000_0000);
        assert_eq!(FLAG_COMPACTED, 0x2000_0000);
        assert_eq!(CHECKSUM_MASK, 0x0FFF_FFFF);
        assert_eq!(MAX_HEAP_BYTES, 3 * 1024 * 1024 * 1024);
    }

    #[test]
    fn spec_examples() {
        let hello = IdxRecord::heap(0, 0, 5, checksum28(b"hello"));
        assert_eq!(
            hex(&hello.encode()),
            "00000000000000000000000005000000fddc620c"
        );
        let inline = IdxRecord::inline(1, *b"INLINE08");
        assert_eq!(
            hex(&inline.encode()),
            "0100000000000000494e4c494e45303875884180"
        );
        assert_eq!(inline.checksum, 0x0418875);
        assert_eq!(IdxRecord::decode(&inline.encode()), inline);
        let manifest = Manifest {
            generation: Generation(1),
        };
        assert_eq!(hex(&manifest.encode()), "5245444d01010000000000003ee1c150");
    }

    #[test]
    fn new_heap_rejects_the_inline_flag() {
        assert!(matches!(
            IdxRecord::new_heap(1, 0, 5, FLAG_INLINE, 0),
            Err(RedexError::InlineFlagOnHeap)
        ));
        let reserved = IdxRecord::new_heap(1, 0, 5, FLAG_TOMBSTONE, checksum28(b"hello")).unwrap();
        assert_eq!(IdxRecord::decode(&reserved.encode()), reserved);
        assert_eq!(reserved.payload, PayloadRef::Heap { offset: 0, len: 5 });
    }

    #[test]
    fn manifest_rejections() {
        let good = Manifest {
            generation: Generation(7),
        }
        .encode();
        assert_eq!(
            Manifest::decode(&good[..15]),
            Err(ManifestError::TooShort(15))
        );
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(Manifest::decode(&bad), Err(ManifestError::BadMagic));
        let mut bad = good;
        bad[4] = 2;
        assert_eq!(
            Manifest::decode(&bad),
            Err(ManifestError::UnsupportedVersion(2))
        );
        let mut bad = good;
        bad[10] = 1;
        assert_eq!(Manifest::decode(&bad), Err(ManifestError::ReservedNotZero));
        let mut bad = good;
        bad[15] ^= 1;
        assert_eq!(Manifest::decode(&bad), Err(ManifestError::BadChecksum));
        let zero = Manifest {
            generation: Generation(0),
        }
        .encode();
        assert_eq!(Manifest::decode(&zero), Err(ManifestError::ZeroGeneration));
        let mut long = good.to_vec();
        long.extend_from_slice(b"trailing");
        assert_eq!(Manifest::decode(&long).unwrap().generation, Generation(7));
    }

    #[test]
    fn generation_names() {
        assert_eq!(Generation(1).dir_name(), "v0000000001");
        assert_eq!(Generation(u32::MAX).dir_name(), "v4294967295");
        assert_eq!(
            Generation::from_dir_name("v0000000002"),
            Some(Generation(2))
        );
        for bad in [
            "v0000000000",
            "v000000001",
            "v00000000001",
            "x0000000001",
            "v00000000a1",
            "v9999999999",
            "v+000000001",
        ] {
            assert_eq!(Generation::from_dir_name(bad), None, "{bad}");
        }
        assert_eq!(Generation(u32::MAX).next(), None);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
