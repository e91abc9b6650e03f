//! Daemon snapshots on the wire: the v0.11 `CDS1` [`StateSnapshot`]
//! (COMPUTE.md §2.4), byte-exact, and the Net-only [`NetSnapshotExt`] that
//! carries what v0.11 drops (§8 item 5).
//!
//! # StateSnapshot v2 (v0.11 bytes, little-endian)
//!
//! `CDS1` (4) ‖ version 2 (1) ‖ entity_id (32) ‖ through_seq u64 ‖
//! chain_link (32) ‖ created_at ns u64 ‖ state_len u32 ‖ state ‖
//! bindings_len u32 ‖ bindings ‖ envelope flag u8 (0/1) ‖
//! [IdentityEnvelope (209)].
//!
//! Decoding requires the magic, version 2, the exact length,
//! `chain_link.sequence == through_seq` and
//! `chain_link.origin_hash == origin_hash(entity_id)`. The envelope, when
//! present, must parse as a v1 envelope. The bindings are kept as bytes;
//! [`SubscriptionLedger::from_bytes`](crate::compute::SubscriptionLedger::from_bytes)
//! validates them when the host is built.
//!
//! # NetSnapshotExt (Net ↔ Net only)
//!
//! v0.11 carries neither the head payload (so a target cannot compute the
//! next link's `parent_hash`, and continuity proofs across the move break)
//! nor the observed horizon, nor which events the state has applied.
//! Rather than change the v2 bytes, a Net source
//! sends this record alongside the snapshot, and only to a peer known to be
//! a Net node; a v0.11 peer never sees it. Layout, little-endian:
//!
//! `NSX1` (4) ‖ version 1 (1) ‖ head link (32) ‖ head_payload_len u32 ‖
//! head_payload ‖ horizon list ‖ applied list, where each list is
//! `count u32 ‖ per origin (strictly ascending): origin u64 ‖ seq u64`.
//! The horizon is the highest sequence *seen* per producer (a failed event
//! counts); the applied list is the highest sequence the state *applied*
//! per producer — the target's replay watermarks.
//!
//! The head link must equal the snapshot's `chain_link` byte for byte
//! ([`NetSnapshotExt::check_binds`]), which ties the extension to exactly
//! one snapshot. Decoding requires the magic, version 1, the exact length,
//! each `count ≤ remaining / 16` and ascending origins (one canonical
//! encoding per value).

use crate::compute::codec::{Reader, Truncated};
use crate::cortex::causal::{CAUSAL_LINK_SIZE, CausalLink};
use crate::identity::{EntityId, EnvelopeError, IDENTITY_ENVELOPE_SIZE, IdentityEnvelope};

/// The snapshot magic.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"CDS1";
/// The only snapshot version.
pub const SNAPSHOT_VERSION: u8 = 2;
/// Size of a snapshot with empty state and bindings and no envelope:
/// magic 4 + version 1 + entity 32 + through_seq 8 + link 32 + created 8 +
/// two lengths 8 + flag 1.
pub const SNAPSHOT_FIXED_SIZE: usize = 94;
/// Bytes of a `CDS1` record before its state: the fixed size less the
/// bindings' length (4) and the envelope flag (1), which follow the state.
pub const SNAPSHOT_STATE_OFFSET: usize = SNAPSHOT_FIXED_SIZE - 5;
/// The extension magic.
pub const EXT_MAGIC: [u8; 4] = *b"NSX1";
/// The only extension version.
pub const EXT_VERSION: u8 = 1;
/// One horizon or applied entry: origin u64 ‖ seq u64.
pub const EXT_HORIZON_ENTRY_SIZE: usize = 16;

/// Why snapshot or extension bytes were rejected, or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A field runs past the end.
    #[error("truncated snapshot: {what} needs {needed} bytes, {available} left")]
    Truncated {
        /// The field.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Not `CDS1` / `NSX1`.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// An unknown version.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// `chain_link.sequence != through_seq`.
    #[error("chain link sequence {link_seq} differs from through_seq {through_seq}")]
    SequenceMismatch {
        /// The link's sequence.
        link_seq: u64,
        /// The snapshot's through_seq.
        through_seq: u64,
    },
    /// `chain_link.origin_hash` is not the entity's origin hash.
    #[error("chain link origin {link:#018x} is not the entity's {entity:#018x}")]
    OriginMismatch {
        /// The link's origin.
        link: u64,
        /// origin_hash(entity_id).
        entity: u64,
    },
    /// An envelope flag other than 0 or 1.
    #[error("envelope flag {0} is not 0 or 1")]
    BadEnvelopeFlag(u8),
    /// The envelope does not parse.
    #[error("identity envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// Bytes after the last field.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A count larger than the remaining bytes can hold.
    #[error("{count} entries declared; at most {max} fit")]
    TooManyEntries {
        /// Declared count.
        count: u32,
        /// What fits.
        max: usize,
    },
    /// Extension horizon or applied origins not strictly ascending.
    #[error("origins are not strictly ascending at {0:#018x}")]
    UnorderedHorizon(u64),
    /// The extension's head link is not the snapshot's chain link.
    #[error("extension head link does not match the snapshot's chain link")]
    ExtensionMismatch,
    /// Encoding only: a field of 2^32 bytes or more. The caller reports it
    /// as StateFailed.
    #[error("{what} is {len} bytes; at most 2^32-1 fit")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// Its size.
        len: usize,
    },
}

impl From<Truncated> for SnapshotError {
    fn from(t: Truncated) -> Self {
        Self::Truncated {
            what: t.what,
            needed: t.needed,
            available: t.available,
        }
    }
}

/// A daemon's state at a point of its chain, as v0.11 puts it on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSnapshot {
    /// The daemon's public key.
    pub entity_id: EntityId,
    /// The chain head's sequence (= `chain_link.sequence`).
    pub through_seq: u64,
    /// The chain head.
    pub chain_link: CausalLink,
    /// When it was taken, ns since the UNIX epoch.
    pub created_at: u64,
    /// The daemon's state bytes.
    pub state: Vec<u8>,
    /// The subscription ledger encoding (empty when there is none).
    pub bindings: Vec<u8>,
    /// The daemon's identity sealed for the target, if transported.
    pub envelope: Option<IdentityEnvelope>,
}

impl StateSnapshot {
    /// The v2 bytes.
    ///
    /// # Errors
    /// [`SnapshotError::TooLarge`] if state or bindings reach 2^32 bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        let (head, tail) = self.encode_around_state()?;
        Ok([head.as_slice(), &self.state, &tail].concat())
    }

    /// The v2 bytes before the state (magic … state length) and after it
    /// (bindings length … envelope): `to_bytes` is `head ‖ state ‖ tail`.
    /// A sender that streams the bytes out never copies the state into one
    /// record.
    ///
    /// # Errors
    /// As [`to_bytes`](Self::to_bytes).
    pub fn encode_around_state(&self) -> Result<(Vec<u8>, Vec<u8>), SnapshotError> {
        self.encode_around_state_of(self.state.len())
    }

    /// [`encode_around_state`](Self::encode_around_state) for a state of
    /// `state_len` bytes kept elsewhere (`self.state` is not read): the
    /// state is written between the two by whoever has it.
    ///
    /// # Errors
    /// As [`encode_around_state`](Self::encode_around_state).
    pub fn encode_around_state_of(
        &self,
        state_len: usize,
    ) -> Result<(Vec<u8>, Vec<u8>), SnapshotError> {
        let state_len = prefix_u32(state_len, "state")?;
        let bindings_len = prefix_u32(self.bindings.len(), "bindings")?;
        let mut head = Vec::with_capacity(SNAPSHOT_FIXED_SIZE);
        head.extend_from_slice(&SNAPSHOT_MAGIC);
        head.push(SNAPSHOT_VERSION);
        head.extend_from_slice(self.entity_id.as_bytes());
        head.extend_from_slice(&self.through_seq.to_le_bytes());
        head.extend_from_slice(&self.chain_link.to_bytes());
        head.extend_from_slice(&self.created_at.to_le_bytes());
        head.extend_from_slice(&state_len.to_le_bytes());
        let envelope_len = self.envelope.as_ref().map_or(0, |_| IDENTITY_ENVELOPE_SIZE);
        let mut tail = Vec::with_capacity(5 + self.bindings.len() + envelope_len);
        tail.extend_from_slice(&bindings_len.to_le_bytes());
        tail.extend_from_slice(&self.bindings);
        match &self.envelope {
            None => tail.push(0),
            Some(envelope) => {
                tail.push(1);
                tail.extend_from_slice(&envelope.to_bytes());
            }
        }
        Ok((head, tail))
    }

    /// Parses v2 bytes (see the module doc for every check).
    ///
    /// # Errors
    /// Any [`SnapshotError`] but the extension and encoding ones.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let (mut snapshot, state) = Self::parse(bytes)?;
        snapshot.state = bytes[state].to_vec();
        Ok(snapshot)
    }

    /// [`from_bytes`](Self::from_bytes) of a record the caller owns: the
    /// state is moved out of `bytes` (the bytes before it shifted down in
    /// place) instead of copied into a new buffer.
    ///
    /// # Errors
    /// As [`from_bytes`](Self::from_bytes).
    pub fn from_owned_bytes(mut bytes: Vec<u8>) -> Result<Self, SnapshotError> {
        let (mut snapshot, state) = Self::parse(&bytes)?;
        bytes.truncate(state.end);
        bytes.drain(..state.start);
        snapshot.state = bytes;
        Ok(snapshot)
    }

    /// [`from_owned_bytes`](Self::from_owned_bytes) of a record in two
    /// parts: its first [`SNAPSHOT_STATE_OFFSET`] bytes, and the rest,
    /// which begins with the state — kept as the state's buffer, with no
    /// copy or move of the state (a reassembler can put it there).
    ///
    /// # Errors
    /// As [`from_bytes`](Self::from_bytes) of the two parts joined.
    pub fn from_owned_parts(head: &[u8], mut rest: Vec<u8>) -> Result<Self, SnapshotError> {
        if head.len() != SNAPSHOT_STATE_OFFSET {
            let mut whole = head.to_vec();
            whole.extend_from_slice(&rest);
            return Self::from_owned_bytes(whole);
        }
        let (mut snapshot, state_len) = Self::parse_parts(head, &rest)?;
        rest.truncate(state_len);
        snapshot.state = rest;
        Ok(snapshot)
    }

    /// Checks and decodes everything but the state, which is at the
    /// returned range of `bytes`.
    fn parse(bytes: &[u8]) -> Result<(Self, std::ops::Range<usize>), SnapshotError> {
        let header = SNAPSHOT_STATE_OFFSET.min(bytes.len());
        let (snapshot, state_len) = Self::parse_parts(&bytes[..header], &bytes[header..])?;
        Ok((snapshot, header..header + state_len))
    }

    /// [`parse`](Self::parse) of `head ‖ rest`, where `head` is at most the
    /// record's first [`SNAPSHOT_STATE_OFFSET`] bytes; the state is the
    /// returned number of bytes at the start of `rest`.
    fn parse_parts(head: &[u8], rest: &[u8]) -> Result<(Self, usize), SnapshotError> {
        let mut r = open_record(head, SNAPSHOT_MAGIC, SNAPSHOT_VERSION)?;
        let entity_id = EntityId::from_bytes(r.array("entity_id")?);
        let through_seq = r.u64("through_seq")?;
        let chain_link = r.causal_link("chain_link")?;
        let created_at = r.u64("created_at")?;
        let state_len = r.u32("state length")? as usize;
        debug_assert_eq!(r.remaining(), 0, "the head ends where the state begins");
        let mut r = Reader::new(rest);
        r.take(state_len, "state")?;
        let state = state_len;
        let bindings_len = r.u32("bindings length")? as usize;
        let bindings = r.take(bindings_len, "bindings")?.to_vec();
        let envelope = match r.u8("envelope flag")? {
            0 => None,
            1 => Some(IdentityEnvelope::from_bytes(
                r.take(IDENTITY_ENVELOPE_SIZE, "envelope")?,
            )?),
            flag => return Err(SnapshotError::BadEnvelopeFlag(flag)),
        };
        if r.remaining() != 0 {
            return Err(SnapshotError::TrailingBytes(r.remaining()));
        }
        if chain_link.sequence != through_seq {
            return Err(SnapshotError::SequenceMismatch {
                link_seq: chain_link.sequence,
                through_seq,
            });
        }
        if chain_link.origin_hash != entity_id.origin_hash() {
            return Err(SnapshotError::OriginMismatch {
                link: chain_link.origin_hash,
                entity: entity_id.origin_hash(),
            });
        }
        Ok((
            Self {
                entity_id,
                through_seq,
                chain_link,
                created_at,
                state: Vec::new(),
                bindings,
                envelope,
            },
            state,
        ))
    }

    /// The daemon's origin hash.
    pub fn origin_hash(&self) -> u64 {
        self.entity_id.origin_hash()
    }
}

/// A migration snapshot payload (what the SnapshotReady chunks carry once
/// reassembled): the `CDS1` record, then — from a Net source to a Net
/// target — the `NSX1` extension. A v0.11 payload is the record alone.
///
/// # Errors
/// As [`StateSnapshot::to_bytes`] and [`NetSnapshotExt::to_bytes`];
/// [`SnapshotError::ExtensionMismatch`] if `ext` is another snapshot's.
pub fn encode_migration_payload(
    snapshot: &StateSnapshot,
    ext: Option<&NetSnapshotExt>,
) -> Result<Vec<u8>, SnapshotError> {
    let (head, tail) = encode_migration_around_state(snapshot, ext)?;
    Ok([head.as_slice(), &snapshot.state, &tail].concat())
}

/// The migration payload's bytes before and after the snapshot's state:
/// [`encode_migration_payload`] is `head ‖ state ‖ tail` (the extension
/// ends the tail).
///
/// # Errors
/// As [`encode_migration_payload`].
pub fn encode_migration_around_state(
    snapshot: &StateSnapshot,
    ext: Option<&NetSnapshotExt>,
) -> Result<(Vec<u8>, Vec<u8>), SnapshotError> {
    encode_migration_around_state_of(snapshot, ext, snapshot.state.len())
}

/// [`encode_migration_around_state`] for a state of `state_len` bytes kept
/// elsewhere (see [`StateSnapshot::encode_around_state_of`]).
///
/// # Errors
/// As [`encode_migration_payload`].
pub fn encode_migration_around_state_of(
    snapshot: &StateSnapshot,
    ext: Option<&NetSnapshotExt>,
    state_len: usize,
) -> Result<(Vec<u8>, Vec<u8>), SnapshotError> {
    let (head, mut tail) = snapshot.encode_around_state_of(state_len)?;
    if let Some(ext) = ext {
        ext.check_binds(snapshot)?;
        tail.extend_from_slice(&ext.to_bytes()?);
    }
    Ok((head, tail))
}

/// [`decode_owned_migration_payload`] of a payload in two parts, `head ‖
/// rest`: when `head` is the record's first [`SNAPSHOT_STATE_OFFSET`]
/// bytes the state stays where it is in `rest` (no move of it).
///
/// # Errors
/// As [`decode_migration_payload`].
pub fn decode_owned_migration_parts(
    head: Vec<u8>,
    mut rest: Vec<u8>,
) -> Result<(StateSnapshot, Option<NetSnapshotExt>), SnapshotError> {
    if head.len() != SNAPSHOT_STATE_OFFSET {
        let mut whole = head;
        whole.extend_from_slice(&rest);
        return decode_owned_migration_payload(whole);
    }
    let end = record_len_after(&head, &rest)?;
    let ext_bytes = rest.split_off(end);
    let snapshot = StateSnapshot::from_owned_parts(&head, rest)?;
    let ext = decode_ext_for(&snapshot, &ext_bytes)?;
    Ok((snapshot, ext))
}

/// Parses a migration snapshot payload (see
/// [`encode_migration_payload`]). The record's own lengths say where it
/// ends; anything after it must be exactly one extension made for it.
///
/// # Errors
/// Any [`StateSnapshot::from_bytes`] or [`NetSnapshotExt::from_bytes`]
/// error; [`SnapshotError::ExtensionMismatch`].
pub fn decode_migration_payload(
    bytes: &[u8],
) -> Result<(StateSnapshot, Option<NetSnapshotExt>), SnapshotError> {
    let end = record_len(bytes)?;
    let snapshot = StateSnapshot::from_bytes(&bytes[..end])?;
    let ext = decode_ext_for(&snapshot, &bytes[end..])?;
    Ok((snapshot, ext))
}

/// [`decode_migration_payload`] of a payload the caller owns: the state is
/// moved out of it ([`StateSnapshot::from_owned_bytes`]), not copied.
///
/// # Errors
/// As [`decode_migration_payload`].
pub fn decode_owned_migration_payload(
    mut bytes: Vec<u8>,
) -> Result<(StateSnapshot, Option<NetSnapshotExt>), SnapshotError> {
    let end = record_len(&bytes)?;
    let ext_bytes = bytes.split_off(end);
    let snapshot = StateSnapshot::from_owned_bytes(bytes)?;
    let ext = decode_ext_for(&snapshot, &ext_bytes)?;
    Ok((snapshot, ext))
}

/// The extension after a record (none if `bytes` is empty), checked
/// against it.
fn decode_ext_for(
    snapshot: &StateSnapshot,
    bytes: &[u8],
) -> Result<Option<NetSnapshotExt>, SnapshotError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let ext = NetSnapshotExt::from_bytes(bytes)?;
    ext.check_binds(snapshot)?;
    Ok(Some(ext))
}

/// Where the `CDS1` record at the start of `bytes` ends, from its length
/// fields (the fields themselves are checked by the decoder).
fn record_len(bytes: &[u8]) -> Result<usize, SnapshotError> {
    let header = SNAPSHOT_STATE_OFFSET.min(bytes.len());
    let rest = record_len_after(&bytes[..header], &bytes[header..])?;
    Ok(header + rest)
}

/// [`record_len`] of `head ‖ rest`, counted from the start of `rest`
/// (`head`: at most the bytes before the state).
fn record_len_after(head: &[u8], rest: &[u8]) -> Result<usize, SnapshotError> {
    let mut r = Reader::new(head);
    r.take(SNAPSHOT_STATE_OFFSET - 4, "snapshot header")?;
    let state_len = r.u32("state length")? as usize;
    let mut r = Reader::new(rest);
    r.take(state_len, "state")?;
    let bindings_len = r.u32("bindings length")? as usize;
    r.take(bindings_len, "bindings")?;
    let flag = r.u8("envelope flag")?;
    if flag == 1 {
        r.take(IDENTITY_ENVELOPE_SIZE, "identity envelope")?;
    }
    Ok(rest.len() - r.remaining())
}

/// What a Net source adds to a snapshot for a Net target: the head
/// payload (chain continuity), the observed horizon and the per-producer
/// applied watermarks (replay). See the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSnapshotExt {
    /// The chain head this extension belongs to (= the snapshot's
    /// `chain_link`).
    pub head: CausalLink,
    /// The head event's payload (empty at genesis).
    pub head_payload: Vec<u8>,
    /// Observed horizon: (producer origin, highest sequence seen), ascending
    /// by origin.
    pub horizon: Vec<(u64, u64)>,
    /// (producer origin, highest sequence applied), ascending by origin.
    pub applied: Vec<(u64, u64)>,
}

impl NetSnapshotExt {
    /// Fails unless this extension was made for `snapshot`.
    ///
    /// # Errors
    /// [`SnapshotError::ExtensionMismatch`].
    pub fn check_binds(&self, snapshot: &StateSnapshot) -> Result<(), SnapshotError> {
        if self.head != snapshot.chain_link {
            return Err(SnapshotError::ExtensionMismatch);
        }
        Ok(())
    }

    /// The extension bytes.
    ///
    /// # Errors
    /// [`SnapshotError::TooLarge`] for a head payload or list of 2^32 or
    /// more; [`SnapshotError::UnorderedHorizon`] if a list's origins are not
    /// strictly ascending.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        let payload_len = prefix_u32(self.head_payload.len(), "head payload")?;
        let entries = self.horizon.len() + self.applied.len();
        let mut out = Vec::with_capacity(
            4 + 1 + CAUSAL_LINK_SIZE + 12 + self.head_payload.len() + 16 * entries,
        );
        out.extend_from_slice(&EXT_MAGIC);
        out.push(EXT_VERSION);
        out.extend_from_slice(&self.head.to_bytes());
        out.extend_from_slice(&payload_len.to_le_bytes());
        out.extend_from_slice(&self.head_payload);
        put_entries(&mut out, &self.horizon, "horizon")?;
        put_entries(&mut out, &self.applied, "applied")?;
        Ok(out)
    }

    /// Parses extension bytes.
    ///
    /// # Errors
    /// Truncation, bad magic or version, too many entries, unordered
    /// origins, trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut r = open_record(bytes, EXT_MAGIC, EXT_VERSION)?;
        let head = r.causal_link("head link")?;
        let len = r.u32("head payload length")? as usize;
        let head_payload = r.take(len, "head payload")?.to_vec();
        let horizon = read_entries(&mut r)?;
        let applied = read_entries(&mut r)?;
        if r.remaining() != 0 {
            return Err(SnapshotError::TrailingBytes(r.remaining()));
        }
        Ok(Self {
            head,
            head_payload,
            horizon,
            applied,
        })
    }
}

fn put_entries(
    out: &mut Vec<u8>,
    entries: &[(u64, u64)],
    what: &'static str,
) -> Result<(), SnapshotError> {
    let count = prefix_u32(entries.len(), what)?;
    check_ascending(entries)?;
    out.extend_from_slice(&count.to_le_bytes());
    for (origin, seq) in entries {
        out.extend_from_slice(&origin.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
    }
    Ok(())
}

fn read_entries(r: &mut Reader<'_>) -> Result<Vec<(u64, u64)>, SnapshotError> {
    let count = r.u32("entry count")?;
    let max = r.remaining() / EXT_HORIZON_ENTRY_SIZE;
    if count as usize > max {
        return Err(SnapshotError::TooManyEntries { count, max });
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        entries.push((r.u64("entry origin")?, r.u64("entry sequence")?));
    }
    check_ascending(&entries)?;
    Ok(entries)
}

/// A reader past `magic ‖ version`, after checking both.
fn open_record(bytes: &[u8], magic: [u8; 4], version: u8) -> Result<Reader<'_>, SnapshotError> {
    let mut r = Reader::new(bytes);
    let got = r.array::<4>("magic")?;
    if got != magic {
        return Err(SnapshotError::BadMagic(got));
    }
    match r.u8("version")? {
        v if v == version => Ok(r),
        v => Err(SnapshotError::UnsupportedVersion(v)),
    }
}

fn prefix_u32(len: usize, what: &'static str) -> Result<u32, SnapshotError> {
    u32::try_from(len).map_err(|_| SnapshotError::TooLarge { what, len })
}

fn check_ascending(horizon: &[(u64, u64)]) -> Result<(), SnapshotError> {
    match horizon.windows(2).find(|w| w[0].0 >= w[1].0) {
        Some(w) => Err(SnapshotError::UnorderedHorizon(w[1].0)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{EntityKeypair, x25519_public_key};

    fn snapshot(keypair: &EntityKeypair) -> StateSnapshot {
        let link = CausalLink {
            origin_hash: keypair.origin_hash(),
            horizon_encoded: 0x55,
            sequence: 10,
            parent_hash: 0x77,
        };
        StateSnapshot {
            entity_id: *keypair.entity_id(),
            through_seq: 10,
            chain_link: link,
            created_at: 0x0102,
            state: b"state".to_vec(),
            bindings: vec![],
            envelope: None,
        }
    }

    #[test]
    fn migration_payload_carries_the_extension_only_when_given() {
        let keypair = EntityKeypair::from_seed(&[6; 32]);
        let snap = snapshot(&keypair);
        let ext = NetSnapshotExt {
            head: snap.chain_link,
            head_payload: b"head".to_vec(),
            horizon: vec![(1, 5)],
            applied: vec![(1, 4)],
        };
        let record = encode_migration_payload(&snap, None).unwrap();
        assert_eq!(record, snap.to_bytes().unwrap(), "v0.11 bytes alone");
        assert_eq!(
            decode_migration_payload(&record).unwrap(),
            (snap.clone(), None)
        );
        let both = encode_migration_payload(&snap, Some(&ext)).unwrap();
        assert_eq!(
            decode_migration_payload(&both).unwrap(),
            (snap.clone(), Some(ext.clone()))
        );
        // Owned decoding moves the state out and agrees in every case.
        for bytes in [&record, &both] {
            assert_eq!(
                decode_owned_migration_payload(bytes.clone()).unwrap(),
                decode_migration_payload(bytes).unwrap()
            );
        }
        let (head, tail) = encode_migration_around_state(&snap, Some(&ext)).unwrap();
        assert_eq!([head.as_slice(), &snap.state, &tail].concat(), both);
        // Garbage after the record is not an extension.
        let mut junk = record.clone();
        junk.push(0);
        assert!(decode_migration_payload(&junk).is_err());
        assert!(decode_owned_migration_payload(junk.clone()).is_err());
        // Every truncation is refused, never a panic, by both decoders.
        for cut in 0..both.len() {
            assert_eq!(
                decode_migration_payload(&both[..cut]).is_ok(),
                decode_owned_migration_payload(both[..cut].to_vec()).is_ok()
            );
        }
        // In two parts (the state left where it is when split where it
        // begins), every payload, truncation and junk decodes alike.
        let parts = |bytes: &[u8], at: usize| {
            let (head, rest) = bytes.split_at(at.min(bytes.len()));
            decode_owned_migration_parts(head.to_vec(), rest.to_vec())
        };
        for bytes in [&record, &both, &junk] {
            for cut in 0..=bytes.len() {
                for at in [SNAPSHOT_STATE_OFFSET, 0, cut / 2] {
                    let bytes = &bytes[..cut];
                    assert_eq!(
                        parts(bytes, at),
                        decode_migration_payload(bytes),
                        "{cut} {at}"
                    );
                }
            }
        }
        let (head, rest) = both.split_at(SNAPSHOT_STATE_OFFSET);
        assert_eq!(
            &rest[..snap.state.len()],
            snap.state,
            "the state begins the rest"
        );
        assert_eq!(
            decode_owned_migration_parts(head.to_vec(), rest.to_vec()).unwrap(),
            (snap.clone(), Some(ext.clone()))
        );
        assert!(decode_migration_payload(&record[..record.len() - 1]).is_err());
        // An extension made for another snapshot.
        let other = NetSnapshotExt {
            head: CausalLink {
                sequence: 11,
                ..snap.chain_link
            },
            ..ext
        };
        let mut forged = record;
        forged.extend_from_slice(&other.to_bytes().unwrap());
        assert_eq!(
            decode_migration_payload(&forged),
            Err(SnapshotError::ExtensionMismatch)
        );
        assert_eq!(
            encode_migration_payload(&snap, Some(&other)),
            Err(SnapshotError::ExtensionMismatch)
        );
    }

    #[test]
    fn layout_matches_the_spec() {
        let keypair = EntityKeypair::from_seed(&[4; 32]);
        let snap = snapshot(&keypair);
        let bytes = snap.to_bytes().unwrap();
        assert_eq!(bytes.len(), SNAPSHOT_FIXED_SIZE + 5);
        let mut expected = b"CDS1\x02".to_vec();
        expected.extend_from_slice(keypair.entity_id().as_bytes());
        expected.extend_from_slice(&hex::decode("0a00000000000000").unwrap());
        expected.extend_from_slice(&snap.chain_link.to_bytes());
        expected
            .extend_from_slice(&hex::decode("0201000000000000 05000000".replace(' ', "")).unwrap());
        expected.extend_from_slice(b"state");
        expected.extend_from_slice(&hex::decode("00000000 00".replace(' ', "")).unwrap());
        assert_eq!(bytes, expected);
        assert_eq!(StateSnapshot::from_bytes(&bytes).unwrap(), snap);
    }

    #[test]
    fn envelope_round_trips_and_adds_209_bytes() {
        let keypair = EntityKeypair::from_seed(&[4; 32]);
        let mut snap = snapshot(&keypair);
        snap.bindings = vec![0, 0, 0, 0];
        let target = x25519_public_key(&[9; 32]);
        snap.envelope =
            Some(IdentityEnvelope::seal(&keypair, &target, &snap.chain_link.to_bytes()).unwrap());
        let bytes = snap.to_bytes().unwrap();
        assert_eq!(
            bytes.len(),
            SNAPSHOT_FIXED_SIZE + 5 + 4 + IDENTITY_ENVELOPE_SIZE
        );
        assert_eq!(StateSnapshot::from_bytes(&bytes).unwrap(), snap);
    }

    #[test]
    fn every_check_rejects() {
        let keypair = EntityKeypair::from_seed(&[4; 32]);
        let good = snapshot(&keypair).to_bytes().unwrap();
        for cut in 0..good.len() {
            assert!(StateSnapshot::from_bytes(&good[..cut]).is_err());
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            StateSnapshot::from_bytes(&trailing),
            Err(SnapshotError::TrailingBytes(1))
        );
        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(matches!(
            StateSnapshot::from_bytes(&magic),
            Err(SnapshotError::BadMagic(_))
        ));
        let mut version = good.clone();
        version[4] = 1;
        assert_eq!(
            StateSnapshot::from_bytes(&version),
            Err(SnapshotError::UnsupportedVersion(1))
        );
        let mut flag = good.clone();
        *flag.last_mut().unwrap() = 2;
        assert_eq!(
            StateSnapshot::from_bytes(&flag),
            Err(SnapshotError::BadEnvelopeFlag(2))
        );
        let mut seq = snapshot(&keypair);
        seq.through_seq = 11;
        assert!(matches!(
            StateSnapshot::from_bytes(&seq.to_bytes().unwrap()),
            Err(SnapshotError::SequenceMismatch {
                link_seq: 10,
                through_seq: 11
            })
        ));
        let mut origin = snapshot(&keypair);
        origin.chain_link.origin_hash ^= 1;
        assert!(matches!(
            StateSnapshot::from_bytes(&origin.to_bytes().unwrap()),
            Err(SnapshotError::OriginMismatch { .. })
        ));
        let mut envelope = good.clone();
        *envelope.last_mut().unwrap() = 1;
        envelope.push(2);
        envelope.resize(envelope.len() + IDENTITY_ENVELOPE_SIZE - 1, 0);
        assert_eq!(
            StateSnapshot::from_bytes(&envelope),
            Err(SnapshotError::Envelope(EnvelopeError::UnknownVersion(2)))
        );
    }

    #[test]
    fn extension_round_trips_binds_and_rejects() {
        let keypair = EntityKeypair::from_seed(&[4; 32]);
        let snap = snapshot(&keypair);
        let ext = NetSnapshotExt {
            head: snap.chain_link,
            head_payload: b"last output".to_vec(),
            horizon: vec![(1, 5), (9, 2)],
            applied: vec![(1, 4)],
        };
        let bytes = ext.to_bytes().unwrap();
        // magic, version, link, payload, horizon list, applied list.
        const HORIZON_AT: usize = 4 + 1 + 32 + 4 + 11;
        assert_eq!(bytes.len(), HORIZON_AT + 4 + 32 + 4 + 16);
        assert_eq!(&bytes[..5], b"NSX1\x01");
        assert_eq!(NetSnapshotExt::from_bytes(&bytes).unwrap(), ext);
        ext.check_binds(&snap).unwrap();
        let mut other = snap.clone();
        other.chain_link.parent_hash ^= 1;
        assert_eq!(
            ext.check_binds(&other),
            Err(SnapshotError::ExtensionMismatch)
        );

        for cut in 0..bytes.len() {
            assert!(NetSnapshotExt::from_bytes(&bytes[..cut]).is_err());
        }
        let unordered = NetSnapshotExt {
            horizon: vec![(9, 2), (9, 3)],
            ..ext.clone()
        };
        assert_eq!(
            unordered.to_bytes(),
            Err(SnapshotError::UnorderedHorizon(9))
        );
        let unordered_applied = NetSnapshotExt {
            applied: vec![(2, 1), (1, 1)],
            ..ext.clone()
        };
        assert_eq!(
            unordered_applied.to_bytes(),
            Err(SnapshotError::UnorderedHorizon(1))
        );
        let mut swapped = bytes.clone();
        swapped[HORIZON_AT + 4..HORIZON_AT + 12].copy_from_slice(&10u64.to_le_bytes());
        assert_eq!(
            NetSnapshotExt::from_bytes(&swapped),
            Err(SnapshotError::UnorderedHorizon(9))
        );
        let mut too_many = bytes.clone();
        too_many[HORIZON_AT..HORIZON_AT + 4].copy_from_slice(&4u32.to_le_bytes());
        assert!(matches!(
            NetSnapshotExt::from_bytes(&too_many),
            Err(SnapshotError::TooManyEntries { count: 4, max: 3 })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            NetSnapshotExt::from_bytes(&trailing),
            Err(SnapshotError::TrailingBytes(1))
        );
    }
}
