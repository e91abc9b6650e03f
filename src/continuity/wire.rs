//! The messages Net nodes exchange on the continuity and partition
//! subprotocols WIRE.md §9 reserves (v0.11 reserves them and has no
//! handler, so only Net nodes send them). Byte formats: `docs/continuity.md`.
//!
//! Every message is `version u8 (1) ‖ type u8 ‖ body`, integers
//! little-endian; the subprotocol id travels in the packet, not the body:
//!
//! | Subprotocol | Type | Message | Body |
//! |---|---:|---|---|
//! | 0x0700 continuity | 1 | ChainHead | origin u64, seq u64, hash u64 |
//! | 0x0700 continuity | 2 | ProofRequest | origin u64, from_seq u64, to_seq u64 |
//! | 0x0701 fork announce | 1 | ForkAnnounce | partition_key u64, ForkRecord 65 B |
//! | 0x0702 proof transfer | 1 | Proof | ContinuityProof 40 B |
//! | 0x0800 partition | 1 | HealHello | our_side, other_side (u32 count, u64 ids strictly ascending), heads (u32 count, origin u64 seq u64 hash u64 each, origins strictly ascending) |
//! | 0x0800 partition | 2 | HealHelloPart | hello_id u64 (xxh3_64 of the whole HealHello), total u32, offset u32, the bytes from `offset`: [`HELLO_PIECE`] of them, fewer in the last part |
//! | 0x0801 reconcile | 1 | BranchRequest | origin u64, after_seq u64 |
//! | 0x0801 reconcile | 2 | Branch | origin u64, after_seq u64, count u32, count causal frames (STORAGE.md §14: u32 len ‖ link ‖ payload) |
//!
//! A Branch's first event is the one at `after_seq` (the split event the
//! receiver anchors to); every frame's origin is `origin` and sequences
//! follow on. Decoders reject trailing bytes, unsorted or repeated ids,
//! counts the remaining bytes cannot hold, and counts past the limits
//! below, each with a typed [`ContinuityWireError`].

use crate::compute::CausalEvent;
use crate::compute::codec::{Reader, Truncated};
use crate::cortex::causal::{
    CAUSAL_LINK_SIZE, CONTINUITY_PROOF_SIZE, CausalError, ContinuityProof, FRAME_LEN_SIZE,
    decode_frames, encode_frame,
};
use crate::wire::subproto::ids;

use super::reconcile::{FORK_RECORD_SIZE, ForkRecord, ForkRecordError, MAX_BRANCH_EVENTS};

/// The format version every message starts with.
pub const VERSION: u8 = 1;
/// Most members one side of a HealHello may list.
pub const MAX_SIDE_MEMBERS: usize = 4_096;
/// Most chain heads one HealHello may carry.
pub const MAX_HEADS: usize = 4_096;
/// Most events one Branch may carry (the split event plus the branch).
pub const MAX_BRANCH_FRAMES: usize = MAX_BRANCH_EVENTS + 1;
/// Bytes of a HealHello carried by each HealHelloPart (the last carries
/// the rest): a HealHello longer than this travels in parts.
pub const HELLO_PIECE: usize = 6_000;
/// The longest HealHello: both sides and the heads at their limits.
pub const MAX_HELLO_BYTES: usize = 2 + 3 * 4 + 2 * MAX_SIDE_MEMBERS * 8 + MAX_HEADS * 24;

/// Message types, per subprotocol.
pub mod msg_type {
    /// 0x0700 ChainHead.
    pub const CHAIN_HEAD: u8 = 1;
    /// 0x0700 ProofRequest.
    pub const PROOF_REQUEST: u8 = 2;
    /// 0x0701 ForkAnnounce.
    pub const FORK_ANNOUNCE: u8 = 1;
    /// 0x0702 Proof.
    pub const PROOF: u8 = 1;
    /// 0x0800 HealHello.
    pub const HEAL_HELLO: u8 = 1;
    /// 0x0800 HealHelloPart.
    pub const HEAL_HELLO_PART: u8 = 2;
    /// 0x0801 BranchRequest.
    pub const BRANCH_REQUEST: u8 = 1;
    /// 0x0801 Branch.
    pub const BRANCH: u8 = 2;
}

/// A point on a chain: its origin, a sequence and `chain_hash` there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPoint {
    /// The chain's origin.
    pub origin: u64,
    /// The sequence.
    pub seq: u64,
    /// `xxh3_64(link ‖ payload)` at `seq`.
    pub hash: u64,
}

/// One continuity or partition message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContinuityMessage {
    /// A chain's head as the sender holds it.
    ChainHead(ChainPoint),
    /// Asks for a proof of `from_seq..=to_seq` of `origin`.
    ProofRequest {
        /// The chain.
        origin: u64,
        /// First sequence.
        from_seq: u64,
        /// Last sequence.
        to_seq: u64,
    },
    /// A fork reconciliation created, under the split's key.
    ForkAnnounce {
        /// The [`partition_key`](super::partition::partition_key) of the
        /// split (0 if outside one).
        partition_key: u64,
        /// The lineage.
        record: ForkRecord,
    },
    /// A continuity proof.
    Proof(ContinuityProof),
    /// Sent to a returning peer when a record heals: this node's view of
    /// the split and the heads of the chains it follows.
    HealHello {
        /// Our side of the split, ascending.
        our_side: Vec<u64>,
        /// The other side, ascending.
        other_side: Vec<u64>,
        /// Heads of the followed chains, by ascending origin.
        heads: Vec<ChainPoint>,
    },
    /// One piece of a HealHello too long for one packet: the bytes from
    /// `offset` of the encoded HealHello, whose length is `total` and whose
    /// `xxh3_64` is `hello_id` (the receiver checks it once every piece
    /// arrived, then decodes the whole).
    HealHelloPart {
        /// `xxh3_64` of the whole encoded HealHello.
        hello_id: u64,
        /// Its length ([`HELLO_PIECE`] < total ≤ [`MAX_HELLO_BYTES`]).
        total: u32,
        /// Where this piece starts (a multiple of [`HELLO_PIECE`]).
        offset: u32,
        /// [`HELLO_PIECE`] bytes, or the rest in the last piece.
        bytes: Vec<u8>,
    },
    /// Asks for `origin`'s events from `after_seq` on.
    BranchRequest {
        /// The chain.
        origin: u64,
        /// The split sequence (sent back as the Branch's first event).
        after_seq: u64,
    },
    /// `origin`'s events from `after_seq` on.
    Branch {
        /// The chain.
        origin: u64,
        /// The first event's sequence.
        after_seq: u64,
        /// The events, the one at `after_seq` first (`received_at` is not
        /// sent and decodes as 0).
        events: Vec<CausalEvent>,
    },
}

/// Why continuity bytes were refused or a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContinuityWireError {
    /// No bytes. Drop the message.
    #[error("empty continuity message")]
    Empty,
    /// A version this node does not speak. Drop the message.
    #[error("unsupported continuity message version {0}")]
    UnsupportedVersion(u8),
    /// Not one of the five continuity / partition subprotocols.
    #[error("subprotocol {0:#06x} is not a continuity or partition subprotocol")]
    UnknownSubprotocol(u16),
    /// A type byte the subprotocol does not define. Drop the message.
    #[error("unknown message type {kind} on subprotocol {subprotocol:#06x}")]
    UnknownType {
        /// The subprotocol.
        subprotocol: u16,
        /// The type byte.
        kind: u8,
    },
    /// A field runs past the end.
    #[error("truncated continuity message: {what} needs {needed} bytes, {available} left")]
    Truncated {
        /// The field.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A count over its limit or over what the bytes can hold.
    #[error("{what}: {count} entries; at most {max}")]
    TooMany {
        /// The list.
        what: &'static str,
        /// The declared (or given) count.
        count: u64,
        /// The bound it broke.
        max: u64,
    },
    /// Ids or origins not strictly ascending.
    #[error("{0} is not strictly ascending")]
    Unsorted(&'static str),
    /// Bytes after the message.
    #[error("{0} bytes after the continuity message")]
    TrailingBytes(usize),
    /// A malformed causal frame, or one of another origin or out of
    /// sequence.
    #[error("bad branch frame: {0}")]
    BadFrame(CausalError),
    /// A fork record that does not verify.
    #[error("bad fork record: {0}")]
    BadForkRecord(ForkRecordError),
    /// A HealHelloPart whose total, offset or length is off the grid of
    /// [`HELLO_PIECE`]-byte pieces, or whose total is out of bounds.
    #[error("bad HealHello part: total {total}, offset {offset}, {len} bytes")]
    BadHelloPart {
        /// The declared total.
        total: u32,
        /// The declared offset.
        offset: u32,
        /// The bytes carried.
        len: usize,
    },
}

impl From<Truncated> for ContinuityWireError {
    fn from(t: Truncated) -> Self {
        ContinuityWireError::Truncated {
            what: t.what,
            needed: t.needed,
            available: t.available,
        }
    }
}

impl ContinuityMessage {
    /// The subprotocol the message travels on.
    pub fn subprotocol(&self) -> u16 {
        match self {
            ContinuityMessage::ChainHead(_) | ContinuityMessage::ProofRequest { .. } => {
                ids::CONTINUITY
            }
            ContinuityMessage::ForkAnnounce { .. } => ids::FORK_ANNOUNCE,
            ContinuityMessage::Proof(_) => ids::PROOF_TRANSFER,
            ContinuityMessage::HealHello { .. } | ContinuityMessage::HealHelloPart { .. } => {
                ids::PARTITION
            }
            ContinuityMessage::BranchRequest { .. } | ContinuityMessage::Branch { .. } => {
                ids::RECONCILE
            }
        }
    }

    fn kind(&self) -> u8 {
        match self {
            ContinuityMessage::ChainHead(_) => msg_type::CHAIN_HEAD,
            ContinuityMessage::ProofRequest { .. } => msg_type::PROOF_REQUEST,
            ContinuityMessage::ForkAnnounce { .. } => msg_type::FORK_ANNOUNCE,
            ContinuityMessage::Proof(_) => msg_type::PROOF,
            ContinuityMessage::HealHello { .. } => msg_type::HEAL_HELLO,
            ContinuityMessage::HealHelloPart { .. } => msg_type::HEAL_HELLO_PART,
            ContinuityMessage::BranchRequest { .. } => msg_type::BRANCH_REQUEST,
            ContinuityMessage::Branch { .. } => msg_type::BRANCH,
        }
    }

    /// Encodes the body; refuses what [`Self::decode`] would reject.
    pub fn encode(&self) -> Result<Vec<u8>, ContinuityWireError> {
        let mut out = vec![VERSION, self.kind()];
        let put = |out: &mut Vec<u8>, words: &[u64]| {
            words
                .iter()
                .for_each(|w| out.extend_from_slice(&w.to_le_bytes()))
        };
        match self {
            ContinuityMessage::ChainHead(point) => {
                put(&mut out, &[point.origin, point.seq, point.hash])
            }
            ContinuityMessage::ProofRequest {
                origin,
                from_seq,
                to_seq,
            } => put(&mut out, &[*origin, *from_seq, *to_seq]),
            ContinuityMessage::ForkAnnounce {
                partition_key,
                record,
            } => {
                record
                    .verify()
                    .map_err(ContinuityWireError::BadForkRecord)?;
                put(&mut out, &[*partition_key]);
                out.extend_from_slice(&record.to_bytes());
            }
            ContinuityMessage::Proof(proof) => out.extend_from_slice(&proof.to_bytes()),
            ContinuityMessage::HealHello {
                our_side,
                other_side,
                heads,
            } => {
                for (what, side) in [("our_side", our_side), ("other_side", other_side)] {
                    check_ascending(side.iter().copied(), what)?;
                    check_count(side.len(), MAX_SIDE_MEMBERS, what)?;
                    out.extend_from_slice(&(side.len() as u32).to_le_bytes());
                    put(&mut out, side);
                }
                check_ascending(heads.iter().map(|h| h.origin), "heads")?;
                check_count(heads.len(), MAX_HEADS, "heads")?;
                out.extend_from_slice(&(heads.len() as u32).to_le_bytes());
                heads
                    .iter()
                    .for_each(|h| put(&mut out, &[h.origin, h.seq, h.hash]));
            }
            ContinuityMessage::HealHelloPart {
                hello_id,
                total,
                offset,
                bytes,
            } => {
                check_hello_part(*total, *offset, bytes.len())?;
                put(&mut out, &[*hello_id]);
                out.extend_from_slice(&total.to_le_bytes());
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(bytes);
            }
            ContinuityMessage::BranchRequest { origin, after_seq } => {
                put(&mut out, &[*origin, *after_seq])
            }
            ContinuityMessage::Branch {
                origin,
                after_seq,
                events,
            } => {
                check_count(events.len(), MAX_BRANCH_FRAMES, "branch events")?;
                check_branch_links(*origin, *after_seq, events.iter().map(|e| &e.link))?;
                put(&mut out, &[*origin, *after_seq]);
                out.extend_from_slice(&(events.len() as u32).to_le_bytes());
                for event in events {
                    encode_frame(&mut out, &event.link, &event.payload)
                        .map_err(ContinuityWireError::BadFrame)?;
                }
            }
        }
        Ok(out)
    }

    /// Decodes the body of a packet received on `subprotocol`.
    pub fn decode(subprotocol: u16, bytes: &[u8]) -> Result<Self, ContinuityWireError> {
        let mut r = Reader::new(bytes);
        if bytes.is_empty() {
            return Err(ContinuityWireError::Empty);
        }
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(ContinuityWireError::UnsupportedVersion(version));
        }
        let kind = r.u8("type")?;
        let message = match (subprotocol, kind) {
            (ids::CONTINUITY, msg_type::CHAIN_HEAD) => ContinuityMessage::ChainHead(ChainPoint {
                origin: r.u64("origin")?,
                seq: r.u64("seq")?,
                hash: r.u64("hash")?,
            }),
            (ids::CONTINUITY, msg_type::PROOF_REQUEST) => ContinuityMessage::ProofRequest {
                origin: r.u64("origin")?,
                from_seq: r.u64("from_seq")?,
                to_seq: r.u64("to_seq")?,
            },
            (ids::FORK_ANNOUNCE, msg_type::FORK_ANNOUNCE) => {
                let partition_key = r.u64("partition_key")?;
                let record = ForkRecord::from_bytes(r.take(FORK_RECORD_SIZE, "fork record")?)
                    .map_err(ContinuityWireError::BadForkRecord)?;
                ContinuityMessage::ForkAnnounce {
                    partition_key,
                    record,
                }
            }
            (ids::PROOF_TRANSFER, msg_type::PROOF) => {
                let bytes = r.take(CONTINUITY_PROOF_SIZE, "proof")?;
                ContinuityMessage::Proof(
                    ContinuityProof::from_bytes(bytes).map_err(ContinuityWireError::BadFrame)?,
                )
            }
            (ids::PARTITION, msg_type::HEAL_HELLO) => {
                let our_side = read_ids(&mut r, "our_side")?;
                let other_side = read_ids(&mut r, "other_side")?;
                let count = read_count(&mut r, MAX_HEADS, 24, "heads")?;
                let mut heads = Vec::with_capacity(count);
                for _ in 0..count {
                    heads.push(ChainPoint {
                        origin: r.u64("head origin")?,
                        seq: r.u64("head seq")?,
                        hash: r.u64("head hash")?,
                    });
                }
                check_ascending(heads.iter().map(|h| h.origin), "heads")?;
                ContinuityMessage::HealHello {
                    our_side,
                    other_side,
                    heads,
                }
            }
            (ids::PARTITION, msg_type::HEAL_HELLO_PART) => {
                let hello_id = r.u64("hello_id")?;
                let total = r.u32("total")?;
                let offset = r.u32("offset")?;
                let bytes = r.take(r.remaining(), "part")?.to_vec();
                check_hello_part(total, offset, bytes.len())?;
                ContinuityMessage::HealHelloPart {
                    hello_id,
                    total,
                    offset,
                    bytes,
                }
            }
            (ids::RECONCILE, msg_type::BRANCH_REQUEST) => ContinuityMessage::BranchRequest {
                origin: r.u64("origin")?,
                after_seq: r.u64("after_seq")?,
            },
            (ids::RECONCILE, msg_type::BRANCH) => {
                let origin = r.u64("origin")?;
                let after_seq = r.u64("after_seq")?;
                let count = read_count(
                    &mut r,
                    MAX_BRANCH_FRAMES,
                    FRAME_LEN_SIZE + CAUSAL_LINK_SIZE,
                    "branch events",
                )?;
                let rest = r.take(r.remaining(), "frames")?;
                let mut events = Vec::with_capacity(count);
                let mut used = 0usize;
                for frame in decode_frames(rest).take(count) {
                    let frame = frame.map_err(ContinuityWireError::BadFrame)?;
                    used += FRAME_LEN_SIZE + CAUSAL_LINK_SIZE + frame.payload.len();
                    events.push(CausalEvent {
                        link: frame.link,
                        payload: frame.payload.to_vec(),
                        received_at: 0,
                    });
                }
                if events.len() != count {
                    return Err(ContinuityWireError::Truncated {
                        what: "branch events",
                        needed: count,
                        available: events.len(),
                    });
                }
                if rest.len() > used {
                    return Err(ContinuityWireError::TrailingBytes(rest.len() - used));
                }
                check_branch_links(origin, after_seq, events.iter().map(|e| &e.link))?;
                ContinuityMessage::Branch {
                    origin,
                    after_seq,
                    events,
                }
            }
            (ids::CONTINUITY, _)
            | (ids::FORK_ANNOUNCE, _)
            | (ids::PROOF_TRANSFER, _)
            | (ids::PARTITION, _)
            | (ids::RECONCILE, _) => {
                return Err(ContinuityWireError::UnknownType { subprotocol, kind });
            }
            _ => return Err(ContinuityWireError::UnknownSubprotocol(subprotocol)),
        };
        match r.remaining() {
            0 => Ok(message),
            extra => Err(ContinuityWireError::TrailingBytes(extra)),
        }
    }
}

/// A part must lie on the grid of [`HELLO_PIECE`]-byte pieces of a hello
/// that needs more than one.
fn check_hello_part(total: u32, offset: u32, len: usize) -> Result<(), ContinuityWireError> {
    let (t, o) = (total as usize, offset as usize);
    let on_grid = t > HELLO_PIECE
        && t <= MAX_HELLO_BYTES
        && o % HELLO_PIECE == 0
        && o < t
        && len == HELLO_PIECE.min(t - o);
    if on_grid {
        Ok(())
    } else {
        Err(ContinuityWireError::BadHelloPart { total, offset, len })
    }
}

/// An encoded HealHello as it travels: itself when it fits
/// [`HELLO_PIECE`], else its [`ContinuityMessage::HealHelloPart`]s, encoded.
pub fn hello_pieces(hello: Vec<u8>) -> Vec<Vec<u8>> {
    if hello.len() <= HELLO_PIECE || hello.len() > MAX_HELLO_BYTES {
        return vec![hello];
    }
    let hello_id = xxhash_rust::xxh3::xxh3_64(&hello);
    hello
        .chunks(HELLO_PIECE)
        .enumerate()
        .filter_map(|(i, piece)| {
            ContinuityMessage::HealHelloPart {
                hello_id,
                total: hello.len() as u32,
                offset: (i * HELLO_PIECE) as u32,
                bytes: piece.to_vec(),
            }
            .encode()
            .ok()
        })
        .collect()
}

fn check_count(len: usize, max: usize, what: &'static str) -> Result<(), ContinuityWireError> {
    if len > max {
        return Err(ContinuityWireError::TooMany {
            what,
            count: len as u64,
            max: max as u64,
        });
    }
    Ok(())
}

fn check_ascending(
    values: impl Iterator<Item = u64>,
    what: &'static str,
) -> Result<(), ContinuityWireError> {
    let mut prev: Option<u64> = None;
    for value in values {
        if prev.is_some_and(|p| p >= value) {
            return Err(ContinuityWireError::Unsorted(what));
        }
        prev = Some(value);
    }
    Ok(())
}

/// A u32 count, bounded by `max` and by the bytes left at `min_each`.
fn read_count(
    r: &mut Reader<'_>,
    max: usize,
    min_each: usize,
    what: &'static str,
) -> Result<usize, ContinuityWireError> {
    let count = r.u32(what)? as usize;
    let fits = r.remaining() / min_each;
    check_count(count, max.min(fits), what)?;
    Ok(count)
}

fn read_ids(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u64>, ContinuityWireError> {
    let count = read_count(r, MAX_SIDE_MEMBERS, 8, what)?;
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        ids.push(r.u64(what)?);
    }
    check_ascending(ids.iter().copied(), what)?;
    Ok(ids)
}

/// Every link names `origin`, the first is at `after_seq`, the rest follow.
fn check_branch_links<'a>(
    origin: u64,
    after_seq: u64,
    links: impl Iterator<Item = &'a crate::cortex::causal::CausalLink>,
) -> Result<(), ContinuityWireError> {
    let mut expected = Some(after_seq);
    for link in links {
        if link.origin_hash != origin {
            return Err(ContinuityWireError::BadFrame(CausalError::OriginMismatch {
                expected: origin,
                got: link.origin_hash,
            }));
        }
        if Some(link.sequence) != expected {
            return Err(ContinuityWireError::BadFrame(CausalError::SequenceGap {
                expected: expected.unwrap_or(u64::MAX),
                got: link.sequence,
            }));
        }
        expected = link.sequence.checked_add(1);
    }
    Ok(())
}
