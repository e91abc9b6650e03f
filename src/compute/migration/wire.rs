//! The ten messages of migration subprotocol 0x0500 (COMPUTE.md §2.2) and
//! the MigrationFailed reasons (§2.3), byte-exact with v0.11.
//!
//! Every message is `type u8 ‖ origin u64 ‖ body`, little-endian:
//!
//! | Type | Message | Body after origin | Size |
//! |---:|---|---|---|
//! | 0 | TakeSnapshot | target_node u64; Net only: target takes NSX1 u8 | 17; Net only: 18 |
//! | 1 | SnapshotReady | seq_through u64, chunk_index u32, total_chunks u32, len u32, bytes | 29 + len |
//! | 2 | RestoreComplete | restored_seq u64 | 17 |
//! | 3 | ReplayComplete | replayed_seq u64 | 17 |
//! | 4 | CutoverNotify | target_node u64 | 17 |
//! | 5 | CleanupComplete | — | 9 |
//! | 6 | MigrationFailed | code u16, reason payload | 11 + p |
//! | 7 | BufferedEvents | count u32, per event: link 32 ‖ len u32 ‖ payload ‖ received_at u64 | 13 + Σ(44 + len) |
//! | 8 | ActivateTarget | — | 9 |
//! | 9 | ActivateAck | replayed_seq u64 | 17 |
//! | 10 | ForwardedEvents (Net only) | stream u64, first u64, count u32, events as in BufferedEvents | 29 + Σ(44 + len) |
//! | 11 | ForwardAck (Net only) | stream u64, next u64 | 25 |
//!
//! Types 10 and 11 are Net's, never sent to a v0.11 node (only to a peer
//! whose signed hello sets `FLAG_SUBPROTOCOL_STREAMS`; a v0.11 decoder
//! rejects them as an unknown type): an old source's forwarder numbers the
//! events it sends on after cut-over, so the new node takes each exactly
//! once however often a batch is re-sent and acknowledges by index
//! (`machines.rs`, "forwarding").
//!
//! TakeSnapshot's Net byte goes only to a source whose hello showed a Net
//! node: it tells the source whether the target takes the snapshot
//! extension, which a v0.11 target rejects (its decoder wants the `CDS1`
//! record's exact length) and which the source cannot judge when only the
//! orchestrator talks to the target.
//!
//! Reason payloads: StateFailed (3) and IdentityTransportFailed (5) carry
//! `len u16 ‖ UTF-8`; NotReadyTimeout (6) carries `attempts u8`; the other
//! codes carry nothing.
//!
//! **Trailing bytes are accepted and ignored**, as v0.11 does. v0.11's
//! encoder never appends any, but rejecting them would buy nothing (every
//! field is already checked) and would turn any future v0.11-compatible
//! extension into a hard failure. [`MigrationMessage::decode_prefix`]
//! reports how many bytes the message used, so a caller can log the excess.
//!
//! Departures from v0.11 (stricter, never incompatible): the encoder
//! refuses to build what the decoder would reject (chunk bounds, more than
//! 1 000 000 buffered events), not only length-prefix overflows.

use crate::compute::codec::{Reader, Truncated};
use crate::compute::daemon::CausalEvent;
use crate::cortex::causal::CAUSAL_LINK_SIZE;

/// Message type bytes, in table order.
pub mod msg_type {
    /// TakeSnapshot.
    pub const TAKE_SNAPSHOT: u8 = 0;
    /// SnapshotReady.
    pub const SNAPSHOT_READY: u8 = 1;
    /// RestoreComplete.
    pub const RESTORE_COMPLETE: u8 = 2;
    /// ReplayComplete.
    pub const REPLAY_COMPLETE: u8 = 3;
    /// CutoverNotify.
    pub const CUTOVER_NOTIFY: u8 = 4;
    /// CleanupComplete.
    pub const CLEANUP_COMPLETE: u8 = 5;
    /// MigrationFailed.
    pub const MIGRATION_FAILED: u8 = 6;
    /// BufferedEvents.
    pub const BUFFERED_EVENTS: u8 = 7;
    /// ActivateTarget.
    pub const ACTIVATE_TARGET: u8 = 8;
    /// ActivateAck.
    pub const ACTIVATE_ACK: u8 = 9;
    /// ForwardedEvents (Net only).
    pub const FORWARDED_EVENTS: u8 = 10;
    /// ForwardAck (Net only).
    pub const FORWARD_ACK: u8 = 11;
}

/// MigrationFailed reason codes.
pub mod failure_code {
    /// NotReady.
    pub const NOT_READY: u16 = 0;
    /// FactoryNotFound.
    pub const FACTORY_NOT_FOUND: u16 = 1;
    /// ComputeNotSupported.
    pub const COMPUTE_NOT_SUPPORTED: u16 = 2;
    /// StateFailed.
    pub const STATE_FAILED: u16 = 3;
    /// AlreadyMigrating.
    pub const ALREADY_MIGRATING: u16 = 4;
    /// IdentityTransportFailed.
    pub const IDENTITY_TRANSPORT_FAILED: u16 = 5;
    /// NotReadyTimeout.
    pub const NOT_READY_TIMEOUT: u16 = 6;
}

/// `type u8 ‖ origin u64`.
pub const HEADER_SIZE: usize = 9;
/// Largest SnapshotReady chunk body.
pub const MAX_CHUNK_LEN: usize = 7_000;
/// Most chunks a snapshot may be split into.
pub const MAX_TOTAL_CHUNKS: u32 = 700_000;
/// Most events one BufferedEvents message may carry.
pub const MAX_BUFFERED_EVENTS: u32 = 1_000_000;
/// Smallest encoded buffered event: link 32 ‖ len 4 ‖ received_at 8.
pub const MIN_BUFFERED_EVENT_SIZE: usize = CAUSAL_LINK_SIZE + 4 + 8;
/// Longest reason text (its prefix is a u16).
pub const MAX_REASON_LEN: usize = u16::MAX as usize;

/// Fixed size of each message type (or its minimum, for the variable ones),
/// indexed by type byte.
pub const MIN_SIZE: [usize; 12] = [17, 29, 17, 17, 17, 9, 11, 13, 9, 17, 29, 25];

/// Why migration bytes were rejected or a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationWireError {
    /// The input was empty.
    #[error("empty migration message")]
    Empty,
    /// The type byte is not 0–9. Drop the message.
    #[error("unknown migration message type {0}")]
    UnknownType(u8),
    /// The MigrationFailed code is not 0–6. Drop the message.
    #[error("unknown migration failure code {0}")]
    UnknownFailureCode(u16),
    /// A field runs past the end of the input.
    #[error("truncated migration message: {what} needs {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// SnapshotReady chunk fields out of bounds (1 ≤ total ≤ 700 000,
    /// index < total, len ≤ 7 000).
    #[error("bad snapshot chunk: index {index} of {total}, {len} bytes")]
    BadChunk {
        /// chunk_index.
        index: u32,
        /// total_chunks.
        total: u32,
        /// Chunk length.
        len: usize,
    },
    /// BufferedEvents declares more events than the bytes can hold or more
    /// than 1 000 000.
    #[error("BufferedEvents declares {count} events; at most {max} fit")]
    TooManyEvents {
        /// The declared count.
        count: u64,
        /// The bound it broke.
        max: u64,
    },
    /// A reason text is not UTF-8.
    #[error("migration failure reason is not UTF-8")]
    InvalidUtf8,
    /// Encoding only: a length does not fit its prefix.
    #[error("{what} is {len} bytes; its prefix holds at most {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The prefix's maximum.
        max: usize,
    },
}

impl From<Truncated> for MigrationWireError {
    fn from(t: Truncated) -> Self {
        Self::Truncated {
            what: t.what,
            needed: t.needed,
            available: t.available,
        }
    }
}

/// Why a migration failed (MigrationFailed, §2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// 0: the target is not ready yet; retriable.
    NotReady,
    /// 1: the target has no factory for the origin.
    FactoryNotFound,
    /// 2: the node runs no migration handler.
    ComputeNotSupported,
    /// 3: parse, envelope, restore, seal or serialization failure; the text
    /// says which.
    StateFailed(String),
    /// 4: a migration of this origin is already running.
    AlreadyMigrating,
    /// 5: the identity envelope could not be sealed or opened.
    IdentityTransportFailed(String),
    /// 6: NotReady retries ran out after `attempts` tries.
    NotReadyTimeout {
        /// Attempts, including the first.
        attempts: u8,
    },
}

impl FailureReason {
    /// The wire code.
    pub fn code(&self) -> u16 {
        use failure_code::*;
        match self {
            Self::NotReady => NOT_READY,
            Self::FactoryNotFound => FACTORY_NOT_FOUND,
            Self::ComputeNotSupported => COMPUTE_NOT_SUPPORTED,
            Self::StateFailed(_) => STATE_FAILED,
            Self::AlreadyMigrating => ALREADY_MIGRATING,
            Self::IdentityTransportFailed(_) => IDENTITY_TRANSPORT_FAILED,
            Self::NotReadyTimeout { .. } => NOT_READY_TIMEOUT,
        }
    }

    /// Whether retrying the same migration may succeed (only NotReady).
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::NotReady)
    }

    fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), MigrationWireError> {
        match self {
            Self::StateFailed(text) | Self::IdentityTransportFailed(text) => {
                let len = u16::try_from(text.len()).map_err(|_| MigrationWireError::TooLong {
                    what: "failure reason",
                    len: text.len(),
                    max: MAX_REASON_LEN,
                })?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            Self::NotReadyTimeout { attempts } => out.push(*attempts),
            _ => {}
        }
        Ok(())
    }

    fn decode(code: u16, r: &mut Reader<'_>) -> Result<Self, MigrationWireError> {
        use failure_code::*;
        let text = |r: &mut Reader<'_>| -> Result<String, MigrationWireError> {
            let len = r.u16("reason length")?;
            let bytes = r.take(len as usize, "reason text")?;
            String::from_utf8(bytes.to_vec()).map_err(|_| MigrationWireError::InvalidUtf8)
        };
        Ok(match code {
            NOT_READY => Self::NotReady,
            FACTORY_NOT_FOUND => Self::FactoryNotFound,
            COMPUTE_NOT_SUPPORTED => Self::ComputeNotSupported,
            STATE_FAILED => Self::StateFailed(text(r)?),
            ALREADY_MIGRATING => Self::AlreadyMigrating,
            IDENTITY_TRANSPORT_FAILED => Self::IdentityTransportFailed(text(r)?),
            NOT_READY_TIMEOUT => Self::NotReadyTimeout {
                attempts: r.u8("attempts")?,
            },
            other => return Err(MigrationWireError::UnknownFailureCode(other)),
        })
    }
}

/// One 0x0500 message. `origin` is always the migrating daemon's origin hash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationMessage {
    /// Orchestrator → source: snapshot the daemon for `target_node`.
    TakeSnapshot {
        /// The daemon.
        origin: u64,
        /// Where it is going.
        target_node: u64,
        /// Net only, between Net nodes: whether the target takes the Net
        /// snapshot extension (`NSX1`), as the orchestrator — which talks
        /// to the target — knows. One byte after v0.11's 17 (1: yes, 0:
        /// no), which a v0.11 decoder ignores as trailing bytes; `None`:
        /// absent (v0.11's message; another trailing byte also reads as
        /// absent).
        target_takes_extension: Option<bool>,
    },
    /// One chunk of a serialized snapshot (§2.5).
    SnapshotReady {
        /// The daemon.
        origin: u64,
        /// The snapshot's through_seq.
        seq_through: u64,
        /// This chunk's index, `< total_chunks`.
        chunk_index: u32,
        /// Chunks in the snapshot, 1–700 000.
        total_chunks: u32,
        /// The chunk, ≤ 7 000 bytes.
        bytes: Vec<u8>,
    },
    /// Target → orchestrator: the daemon is restored.
    RestoreComplete {
        /// The daemon.
        origin: u64,
        /// The restored snapshot's through_seq.
        restored_seq: u64,
    },
    /// Target → orchestrator: a batch of buffered events was replayed.
    ReplayComplete {
        /// The daemon.
        origin: u64,
        /// The target's replay watermark.
        replayed_seq: u64,
    },
    /// Orchestrator → source: cut over to `target_node`.
    CutoverNotify {
        /// The daemon.
        origin: u64,
        /// The new home.
        target_node: u64,
    },
    /// Source → orchestrator: the source copy is gone.
    CleanupComplete {
        /// The daemon.
        origin: u64,
    },
    /// Any → any: the migration failed.
    MigrationFailed {
        /// The daemon.
        origin: u64,
        /// Why.
        reason: FailureReason,
    },
    /// Events that arrived during the migration, in order.
    BufferedEvents {
        /// The daemon.
        origin: u64,
        /// The events.
        events: Vec<CausalEvent>,
    },
    /// Orchestrator → target: start serving.
    ActivateTarget {
        /// The daemon.
        origin: u64,
    },
    /// Target → orchestrator: serving.
    ActivateAck {
        /// The daemon.
        origin: u64,
        /// The target's replay watermark.
        replayed_seq: u64,
    },
    /// Net only: old source → the daemon's new node, events delivered to
    /// the old source after cut-over, numbered from `first` within the
    /// forwarding `stream`.
    ForwardedEvents {
        /// The daemon.
        origin: u64,
        /// The forwarding (one per cut-over at the sender).
        stream: u64,
        /// Index of the first event within the stream.
        first: u64,
        /// The events, in order.
        events: Vec<CausalEvent>,
    },
    /// Net only: new node → old source, every event of `stream` below
    /// index `next` is taken.
    ForwardAck {
        /// The daemon.
        origin: u64,
        /// The forwarding.
        stream: u64,
        /// Events taken (the index expected next).
        next: u64,
    },
}

impl MigrationMessage {
    /// The migrating daemon's origin hash.
    pub fn origin(&self) -> u64 {
        match self {
            Self::TakeSnapshot { origin, .. }
            | Self::SnapshotReady { origin, .. }
            | Self::RestoreComplete { origin, .. }
            | Self::ReplayComplete { origin, .. }
            | Self::CutoverNotify { origin, .. }
            | Self::CleanupComplete { origin }
            | Self::MigrationFailed { origin, .. }
            | Self::BufferedEvents { origin, .. }
            | Self::ActivateTarget { origin }
            | Self::ActivateAck { origin, .. }
            | Self::ForwardedEvents { origin, .. }
            | Self::ForwardAck { origin, .. } => *origin,
        }
    }

    /// The type byte.
    pub fn type_byte(&self) -> u8 {
        use msg_type::*;
        match self {
            Self::TakeSnapshot { .. } => TAKE_SNAPSHOT,
            Self::SnapshotReady { .. } => SNAPSHOT_READY,
            Self::RestoreComplete { .. } => RESTORE_COMPLETE,
            Self::ReplayComplete { .. } => REPLAY_COMPLETE,
            Self::CutoverNotify { .. } => CUTOVER_NOTIFY,
            Self::CleanupComplete { .. } => CLEANUP_COMPLETE,
            Self::MigrationFailed { .. } => MIGRATION_FAILED,
            Self::BufferedEvents { .. } => BUFFERED_EVENTS,
            Self::ActivateTarget { .. } => ACTIVATE_TARGET,
            Self::ActivateAck { .. } => ACTIVATE_ACK,
            Self::ForwardedEvents { .. } => FORWARDED_EVENTS,
            Self::ForwardAck { .. } => FORWARD_ACK,
        }
    }

    /// Appends the first 29 bytes of a SnapshotReady carrying `len` chunk
    /// bytes (the caller appends them): for an encoder that writes chunks
    /// from pieces. The caller checks the chunk's bounds.
    pub(crate) fn put_snapshot_ready_header(
        out: &mut Vec<u8>,
        origin: u64,
        seq_through: u64,
        index: u32,
        total: u32,
        len: usize,
    ) {
        out.push(msg_type::SNAPSHOT_READY);
        out.extend_from_slice(&origin.to_le_bytes());
        out.extend_from_slice(&seq_through.to_le_bytes());
        put_chunk_fields(out, index, total, len);
    }

    /// Encodes the message.
    ///
    /// # Errors
    /// [`MigrationWireError::TooLong`] if a reason exceeds 65 535 bytes or
    /// an event payload 2^32−1; [`MigrationWireError::BadChunk`] or
    /// [`MigrationWireError::TooManyEvents`] for what no decoder accepts.
    pub fn encode(&self) -> Result<Vec<u8>, MigrationWireError> {
        let mut out = Vec::with_capacity(MIN_SIZE[self.type_byte() as usize]);
        out.push(self.type_byte());
        out.extend_from_slice(&self.origin().to_le_bytes());
        let mut put = |v: u64| out.extend_from_slice(&v.to_le_bytes());
        match self {
            Self::TakeSnapshot {
                target_node,
                target_takes_extension,
                ..
            } => {
                put(*target_node);
                if let Some(takes) = target_takes_extension {
                    out.push(u8::from(*takes));
                }
            }
            Self::CutoverNotify { target_node, .. } => put(*target_node),
            Self::RestoreComplete {
                restored_seq: seq, ..
            }
            | Self::ReplayComplete {
                replayed_seq: seq, ..
            }
            | Self::ActivateAck {
                replayed_seq: seq, ..
            } => put(*seq),
            Self::CleanupComplete { .. } | Self::ActivateTarget { .. } => {}
            Self::SnapshotReady {
                seq_through,
                chunk_index,
                total_chunks,
                bytes,
                ..
            } => {
                check_chunk(*chunk_index, *total_chunks, bytes.len())?;
                put(*seq_through);
                put_chunk_fields(&mut out, *chunk_index, *total_chunks, bytes.len());
                out.extend_from_slice(bytes);
            }
            Self::MigrationFailed { reason, .. } => {
                out.extend_from_slice(&reason.code().to_le_bytes());
                reason.encode_payload(&mut out)?;
            }
            Self::BufferedEvents { events, .. } => encode_events(&mut out, events.iter())?,
            Self::ForwardedEvents {
                stream,
                first,
                events,
                ..
            } => {
                put(*stream);
                put(*first);
                encode_events(&mut out, events.iter())?;
            }
            Self::ForwardAck { stream, next, .. } => {
                put(*stream);
                put(*next);
            }
        }
        Ok(out)
    }

    /// Decodes one message, ignoring trailing bytes (see the module doc).
    ///
    /// # Errors
    /// Any [`MigrationWireError`] but `TooLong`.
    pub fn decode(bytes: &[u8]) -> Result<Self, MigrationWireError> {
        Self::decode_prefix(bytes).map(|(msg, _)| msg)
    }

    /// Decodes one message and returns it with the number of bytes it used
    /// (anything after that is ignored).
    ///
    /// # Errors
    /// As [`decode`](Self::decode).
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Self, usize), MigrationWireError> {
        use msg_type::*;
        let kind = *bytes.first().ok_or(MigrationWireError::Empty)?;
        let min = *MIN_SIZE
            .get(kind as usize)
            .ok_or(MigrationWireError::UnknownType(kind))?;
        if bytes.len() < min {
            return Err(MigrationWireError::Truncated {
                what: "message",
                needed: min,
                available: bytes.len(),
            });
        }
        let mut r = Reader::new(&bytes[1..]);
        let origin = r.u64("origin")?;
        let msg = match kind {
            TAKE_SNAPSHOT => {
                let target_node = r.u64("target_node")?;
                let target_takes_extension = match bytes.get(MIN_SIZE[0]) {
                    Some(&hint @ (0 | 1)) => {
                        r.u8("target_takes_extension")?;
                        Some(hint == 1)
                    }
                    _ => None,
                };
                Self::TakeSnapshot {
                    origin,
                    target_node,
                    target_takes_extension,
                }
            }
            SNAPSHOT_READY => {
                let chunk = SnapshotChunk::read(origin, &mut r)?;
                Self::SnapshotReady {
                    origin,
                    seq_through: chunk.seq_through,
                    chunk_index: chunk.index,
                    total_chunks: chunk.total,
                    bytes: chunk.bytes.to_vec(),
                }
            }
            RESTORE_COMPLETE => Self::RestoreComplete {
                origin,
                restored_seq: r.u64("restored_seq")?,
            },
            REPLAY_COMPLETE => Self::ReplayComplete {
                origin,
                replayed_seq: r.u64("replayed_seq")?,
            },
            CUTOVER_NOTIFY => Self::CutoverNotify {
                origin,
                target_node: r.u64("target_node")?,
            },
            CLEANUP_COMPLETE => Self::CleanupComplete { origin },
            MIGRATION_FAILED => {
                let code = r.u16("failure code")?;
                Self::MigrationFailed {
                    origin,
                    reason: FailureReason::decode(code, &mut r)?,
                }
            }
            BUFFERED_EVENTS => Self::BufferedEvents {
                origin,
                events: decode_events(&mut r)?,
            },
            ACTIVATE_TARGET => Self::ActivateTarget { origin },
            ACTIVATE_ACK => Self::ActivateAck {
                origin,
                replayed_seq: r.u64("replayed_seq")?,
            },
            FORWARDED_EVENTS => Self::ForwardedEvents {
                origin,
                stream: r.u64("stream")?,
                first: r.u64("first")?,
                events: decode_events(&mut r)?,
            },
            FORWARD_ACK => Self::ForwardAck {
                origin,
                stream: r.u64("stream")?,
                next: r.u64("next")?,
            },
            other => return Err(MigrationWireError::UnknownType(other)),
        };
        Ok((msg, 1 + r.position()))
    }
}

fn check_chunk(index: u32, total: u32, len: usize) -> Result<(), MigrationWireError> {
    if total == 0 || total > MAX_TOTAL_CHUNKS || index >= total || len > MAX_CHUNK_LEN {
        return Err(MigrationWireError::BadChunk { index, total, len });
    }
    Ok(())
}

/// A ForwardedEvents message of `events` (borrowed from the forwarder's
/// queue): the same bytes as [`MigrationMessage::encode`] of one.
///
/// # Errors
/// As [`MigrationMessage::encode`].
pub(crate) fn encode_forwarded_events<'a>(
    origin: u64,
    stream: u64,
    first: u64,
    events: impl ExactSizeIterator<Item = &'a CausalEvent>,
) -> Result<Vec<u8>, MigrationWireError> {
    let mut out = Vec::with_capacity(MIN_SIZE[msg_type::FORWARDED_EVENTS as usize]);
    out.push(msg_type::FORWARDED_EVENTS);
    for field in [origin, stream, first] {
        out.extend_from_slice(&field.to_le_bytes());
    }
    encode_events(&mut out, events)?;
    Ok(out)
}

fn encode_events<'a>(
    out: &mut Vec<u8>,
    events: impl ExactSizeIterator<Item = &'a CausalEvent>,
) -> Result<(), MigrationWireError> {
    if events.len() > MAX_BUFFERED_EVENTS as usize {
        return Err(MigrationWireError::TooManyEvents {
            count: events.len() as u64,
            max: u64::from(MAX_BUFFERED_EVENTS),
        });
    }
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for event in events {
        let len = u32::try_from(event.payload.len()).map_err(|_| MigrationWireError::TooLong {
            what: "buffered event payload",
            len: event.payload.len(),
            max: u32::MAX as usize,
        })?;
        out.extend_from_slice(&event.link.to_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&event.payload);
        out.extend_from_slice(&event.received_at.to_le_bytes());
    }
    Ok(())
}

fn decode_events(r: &mut Reader<'_>) -> Result<Vec<CausalEvent>, MigrationWireError> {
    let count = r.u32("event count")?;
    let fit = r.remaining() / MIN_BUFFERED_EVENT_SIZE;
    let max = fit.min(MAX_BUFFERED_EVENTS as usize);
    if count as usize > max {
        return Err(MigrationWireError::TooManyEvents {
            count: u64::from(count),
            max: max as u64,
        });
    }
    let mut events = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let link = r.causal_link("event link")?;
        let len = r.u32("event payload length")? as usize;
        let payload = r.take(len, "event payload")?.to_vec();
        events.push(CausalEvent {
            link,
            payload,
            received_at: r.u64("event received_at")?,
        });
    }
    Ok(events)
}

/// A SnapshotReady read in place: its chunk borrowed from the message
/// (a target copies each chunk once, into the snapshot it reassembles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotChunk<'a> {
    /// The daemon.
    pub origin: u64,
    /// The snapshot's through_seq.
    pub seq_through: u64,
    /// This chunk's index.
    pub index: u32,
    /// Chunks in the snapshot.
    pub total: u32,
    /// The chunk.
    pub bytes: &'a [u8],
}

impl<'a> SnapshotChunk<'a> {
    /// The chunk of a SnapshotReady message; `None` for any other type.
    ///
    /// # Errors
    /// As [`MigrationMessage::decode`] for a SnapshotReady.
    pub fn parse(bytes: &'a [u8]) -> Result<Option<Self>, MigrationWireError> {
        if bytes.first() != Some(&msg_type::SNAPSHOT_READY) {
            return Ok(None);
        }
        let mut r = Reader::new(&bytes[1..]);
        let origin = r.u64("origin")?;
        Self::read(origin, &mut r).map(Some)
    }

    fn read(origin: u64, r: &mut Reader<'a>) -> Result<Self, MigrationWireError> {
        let seq_through = r.u64("seq_through")?;
        let index = r.u32("chunk_index")?;
        let total = r.u32("total_chunks")?;
        let len = r.u32("chunk length")? as usize;
        check_chunk(index, total, len)?;
        Ok(Self {
            origin,
            seq_through,
            index,
            total,
            bytes: r.take(len, "chunk")?,
        })
    }
}

/// SnapshotReady's `chunk_index u32 ‖ total_chunks u32 ‖ len u32`.
fn put_chunk_fields(out: &mut Vec<u8>, index: u32, total: u32, len: usize) {
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cortex::causal::CausalLink;

    const ORIGIN: u64 = 0x0102_0304_0506_0708;
    const ORIGIN_LE: &str = "0807060504030201";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        hex::decode(s).unwrap()
    }

    fn event(seq: u64, payload: &[u8]) -> CausalEvent {
        CausalEvent {
            link: CausalLink {
                origin_hash: 0xAA,
                horizon_encoded: 0xBB,
                sequence: seq,
                parent_hash: 0xCC,
            },
            payload: payload.to_vec(),
            received_at: 0xDD,
        }
    }

    fn every_reason() -> Vec<FailureReason> {
        vec![
            FailureReason::NotReady,
            FailureReason::FactoryNotFound,
            FailureReason::ComputeNotSupported,
            FailureReason::StateFailed("restore: bad magic".into()),
            FailureReason::StateFailed(String::new()),
            FailureReason::AlreadyMigrating,
            FailureReason::IdentityTransportFailed("no key".into()),
            FailureReason::NotReadyTimeout { attempts: 7 },
        ]
    }

    fn every_message() -> Vec<MigrationMessage> {
        use MigrationMessage::*;
        let mut all = vec![
            TakeSnapshot {
                origin: ORIGIN,
                target_node: 2,
                target_takes_extension: None,
            },
            TakeSnapshot {
                origin: ORIGIN,
                target_node: 2,
                target_takes_extension: Some(true),
            },
            TakeSnapshot {
                origin: ORIGIN,
                target_node: 2,
                target_takes_extension: Some(false),
            },
            SnapshotReady {
                origin: ORIGIN,
                seq_through: 10,
                chunk_index: 1,
                total_chunks: 3,
                bytes: vec![7; MAX_CHUNK_LEN],
            },
            SnapshotReady {
                origin: ORIGIN,
                seq_through: 0,
                chunk_index: 0,
                total_chunks: 1,
                bytes: vec![],
            },
            RestoreComplete {
                origin: ORIGIN,
                restored_seq: 10,
            },
            ReplayComplete {
                origin: ORIGIN,
                replayed_seq: 13,
            },
            CutoverNotify {
                origin: ORIGIN,
                target_node: u64::MAX,
            },
            CleanupComplete { origin: ORIGIN },
            BufferedEvents {
                origin: ORIGIN,
                events: vec![],
            },
            BufferedEvents {
                origin: ORIGIN,
                events: vec![event(11, b"x"), event(12, b""), event(13, &[1; 300])],
            },
            ActivateTarget { origin: ORIGIN },
            ActivateAck {
                origin: ORIGIN,
                replayed_seq: 13,
            },
            ForwardedEvents {
                origin: ORIGIN,
                stream: 7,
                first: 0,
                events: vec![],
            },
            ForwardedEvents {
                origin: ORIGIN,
                stream: u64::MAX,
                first: 1 << 40,
                events: vec![event(11, b"x"), event(12, &[2; 500])],
            },
            ForwardAck {
                origin: ORIGIN,
                stream: 7,
                next: 3,
            },
        ];
        all.extend(every_reason().into_iter().map(|reason| MigrationFailed {
            origin: ORIGIN,
            reason,
        }));
        all
    }

    #[test]
    fn every_message_and_code_round_trips() {
        let mut types = std::collections::BTreeSet::new();
        let mut codes = std::collections::BTreeSet::new();
        for msg in every_message() {
            let bytes = msg.encode().unwrap();
            assert_eq!(bytes[0], msg.type_byte());
            assert!(bytes.len() >= MIN_SIZE[msg.type_byte() as usize]);
            assert_eq!(
                MigrationMessage::decode_prefix(&bytes).unwrap(),
                (msg.clone(), bytes.len())
            );
            types.insert(msg.type_byte());
            if let MigrationMessage::MigrationFailed { reason, .. } = &msg {
                codes.insert(reason.code());
            }
        }
        assert_eq!(types.len(), 12);
        assert_eq!(codes.len(), 7);
    }

    #[test]
    fn fixed_size_messages_match_the_table_byte_for_byte() {
        use MigrationMessage::*;
        let cases = [
            (
                TakeSnapshot {
                    origin: ORIGIN,
                    target_node: 0x1112_1314_1516_1718,
                    target_takes_extension: None,
                },
                format!("00 {ORIGIN_LE} 1817161514131211"),
            ),
            (
                RestoreComplete {
                    origin: ORIGIN,
                    restored_seq: 10,
                },
                format!("02 {ORIGIN_LE} 0a00000000000000"),
            ),
            (
                ReplayComplete {
                    origin: ORIGIN,
                    replayed_seq: 0x0100,
                },
                format!("03 {ORIGIN_LE} 0001000000000000"),
            ),
            (
                CutoverNotify {
                    origin: ORIGIN,
                    target_node: 5,
                },
                format!("04 {ORIGIN_LE} 0500000000000000"),
            ),
            (
                CleanupComplete { origin: ORIGIN },
                format!("05 {ORIGIN_LE}"),
            ),
            (ActivateTarget { origin: ORIGIN }, format!("08 {ORIGIN_LE}")),
            (
                ActivateAck {
                    origin: ORIGIN,
                    replayed_seq: 13,
                },
                format!("09 {ORIGIN_LE} 0d00000000000000"),
            ),
            (
                ForwardAck {
                    origin: ORIGIN,
                    stream: 2,
                    next: 3,
                },
                format!("0b {ORIGIN_LE} 0200000000000000 0300000000000000"),
            ),
        ];
        for (msg, expected) in cases {
            let expected = hex(&expected);
            assert_eq!(expected.len(), MIN_SIZE[msg.type_byte() as usize]);
            assert_eq!(msg.encode().unwrap(), expected, "{msg:?}");
            assert_eq!(MigrationMessage::decode(&expected).unwrap(), msg);
        }
    }

    #[test]
    fn snapshot_ready_matches_the_table() {
        let bytes = hex(&format!(
            "01 {ORIGIN_LE} 0a00000000000000 01000000 03000000 03000000 aabbcc"
        ));
        assert_eq!(bytes.len(), 29 + 3);
        let msg = MigrationMessage::SnapshotReady {
            origin: ORIGIN,
            seq_through: 10,
            chunk_index: 1,
            total_chunks: 3,
            bytes: vec![0xaa, 0xbb, 0xcc],
        };
        assert_eq!(msg.encode().unwrap(), bytes);
        assert_eq!(MigrationMessage::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn migration_failed_payloads_match_the_table() {
        let cases = [
            (FailureReason::NotReady, "0000"),
            (FailureReason::FactoryNotFound, "0100"),
            (FailureReason::ComputeNotSupported, "0200"),
            (FailureReason::StateFailed("ab".into()), "0300 0200 6162"),
            (FailureReason::AlreadyMigrating, "0400"),
            (
                FailureReason::IdentityTransportFailed("c".into()),
                "0500 0100 63",
            ),
            (FailureReason::NotReadyTimeout { attempts: 4 }, "0600 04"),
        ];
        for (reason, payload) in cases {
            let bytes = hex(&format!("06 {ORIGIN_LE} {payload}"));
            let msg = MigrationMessage::MigrationFailed {
                origin: ORIGIN,
                reason,
            };
            assert_eq!(msg.encode().unwrap(), bytes);
            assert_eq!(MigrationMessage::decode(&bytes).unwrap(), msg);
        }
        assert!(FailureReason::NotReady.is_retriable());
        assert!(!FailureReason::FactoryNotFound.is_retriable());
    }

    #[test]
    fn buffered_events_match_the_table() {
        let link = "aa00000000000000 bb00000000000000 0b00000000000000 cc00000000000000";
        let bytes = hex(&format!(
            "07 {ORIGIN_LE} 01000000 {link} 01000000 78 dd00000000000000"
        ));
        assert_eq!(bytes.len(), 13 + 44 + 1);
        let msg = MigrationMessage::BufferedEvents {
            origin: ORIGIN,
            events: vec![event(11, b"x")],
        };
        assert_eq!(msg.encode().unwrap(), bytes);
        assert_eq!(MigrationMessage::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn forwarded_events_encoded_from_a_queue_equal_the_message() {
        let events = [event(5, b"a"), event(6, &[9; 40]), event(7, b"")];
        let queue: std::collections::VecDeque<CausalEvent> = events.iter().cloned().collect();
        let bytes = encode_forwarded_events(ORIGIN, 3, 12, queue.range(1..)).unwrap();
        let msg = MigrationMessage::ForwardedEvents {
            origin: ORIGIN,
            stream: 3,
            first: 12,
            events: events[1..].to_vec(),
        };
        assert_eq!(bytes, msg.encode().unwrap());
        assert_eq!(
            &bytes[..29],
            &hex(&format!(
                "0a {ORIGIN_LE} 0300000000000000 0c00000000000000 02000000"
            ))[..]
        );
        for cut in 0..bytes.len() {
            assert!(MigrationMessage::decode(&bytes[..cut]).is_err(), "{cut}");
        }
    }

    #[test]
    fn unknown_types_and_codes_are_rejected() {
        assert_eq!(
            MigrationMessage::decode(&[]),
            Err(MigrationWireError::Empty)
        );
        for kind in [12u8, 0x7f, 0xff] {
            let mut bytes = vec![kind];
            bytes.extend_from_slice(&[0; 40]);
            assert_eq!(
                MigrationMessage::decode(&bytes),
                Err(MigrationWireError::UnknownType(kind))
            );
        }
        for code in [7u16, 0x100, u16::MAX] {
            let mut bytes = hex(&format!("06 {ORIGIN_LE}"));
            bytes.extend_from_slice(&code.to_le_bytes());
            bytes.extend_from_slice(&[0; 8]);
            assert_eq!(
                MigrationMessage::decode(&bytes),
                Err(MigrationWireError::UnknownFailureCode(code))
            );
        }
    }

    #[test]
    fn oversized_and_invalid_reasons_are_rejected() {
        let msg = MigrationMessage::MigrationFailed {
            origin: 1,
            reason: FailureReason::StateFailed("x".repeat(MAX_REASON_LEN + 1)),
        };
        assert!(matches!(
            msg.encode(),
            Err(MigrationWireError::TooLong { .. })
        ));
        let longest = MigrationMessage::MigrationFailed {
            origin: 1,
            reason: FailureReason::IdentityTransportFailed("x".repeat(MAX_REASON_LEN)),
        };
        let bytes = longest.encode().unwrap();
        assert_eq!(MigrationMessage::decode(&bytes).unwrap(), longest);
        // A declared length past the end, and bytes that are not UTF-8.
        let past_end = hex(&format!("06 {ORIGIN_LE} 0300 0500 6162"));
        assert!(matches!(
            MigrationMessage::decode(&past_end),
            Err(MigrationWireError::Truncated { .. })
        ));
        let not_utf8 = hex(&format!("06 {ORIGIN_LE} 0300 0200 c328"));
        assert_eq!(
            MigrationMessage::decode(&not_utf8),
            Err(MigrationWireError::InvalidUtf8)
        );
    }

    #[test]
    fn bad_chunk_fields_are_rejected_both_ways() {
        let chunk = |index: u32, total: u32, len: usize| MigrationMessage::SnapshotReady {
            origin: 1,
            seq_through: 1,
            chunk_index: index,
            total_chunks: total,
            bytes: vec![0; len],
        };
        for (index, total, len) in [
            (0, 0, 0),
            (1, 1, 0),
            (5, 3, 0),
            (0, MAX_TOTAL_CHUNKS + 1, 0),
            (0, 1, MAX_CHUNK_LEN + 1),
        ] {
            let err = MigrationWireError::BadChunk { index, total, len };
            assert_eq!(chunk(index, total, len).encode(), Err(err.clone()));
            let mut bytes = hex(&format!("01 {ORIGIN_LE} 0100000000000000"));
            bytes.extend_from_slice(&index.to_le_bytes());
            bytes.extend_from_slice(&total.to_le_bytes());
            bytes.extend_from_slice(&(len as u32).to_le_bytes());
            bytes.resize(bytes.len() + len, 0);
            assert_eq!(MigrationMessage::decode(&bytes), Err(err));
        }
        let last = chunk(MAX_TOTAL_CHUNKS - 1, MAX_TOTAL_CHUNKS, MAX_CHUNK_LEN);
        assert_eq!(
            MigrationMessage::decode(&last.encode().unwrap()).unwrap(),
            last
        );
    }

    #[test]
    fn every_truncation_is_rejected() {
        for msg in every_message() {
            let bytes = msg.encode().unwrap();
            for cut in 0..bytes.len() {
                if let MigrationMessage::TakeSnapshot {
                    origin,
                    target_node,
                    target_takes_extension: Some(_),
                } = msg
                    && cut == MIN_SIZE[0]
                {
                    // Without its Net byte: v0.11's message, which says nothing.
                    assert_eq!(
                        MigrationMessage::decode(&bytes[..cut]).unwrap(),
                        MigrationMessage::TakeSnapshot {
                            origin,
                            target_node,
                            target_takes_extension: None
                        }
                    );
                    continue;
                }
                assert!(
                    MigrationMessage::decode(&bytes[..cut]).is_err(),
                    "{msg:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn buffered_events_count_is_bounded() {
        let mut bytes = hex(&format!("07 {ORIGIN_LE}"));
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 44 * 4]);
        assert_eq!(
            MigrationMessage::decode(&bytes),
            Err(MigrationWireError::TooManyEvents {
                count: u64::from(u32::MAX),
                max: 4
            })
        );
        // Exactly count × 44 bytes is enough for empty payloads.
        let mut bytes = hex(&format!("07 {ORIGIN_LE} 02000000"));
        bytes.extend_from_slice(&[0; 88]);
        match MigrationMessage::decode(&bytes).unwrap() {
            MigrationMessage::BufferedEvents { events, .. } => assert_eq!(events.len(), 2),
            other => panic!("{other:?}"),
        }
        // The absolute cap holds even when the bytes would fit more.
        let mut bytes = hex(&format!("07 {ORIGIN_LE}"));
        bytes.extend_from_slice(&(MAX_BUFFERED_EVENTS + 1).to_le_bytes());
        bytes.resize(bytes.len() + 44 * (MAX_BUFFERED_EVENTS as usize + 1), 0);
        assert!(matches!(
            MigrationMessage::decode(&bytes),
            Err(MigrationWireError::TooManyEvents { max, .. }) if max == u64::from(MAX_BUFFERED_EVENTS)
        ));
    }

    #[test]
    fn trailing_bytes_are_ignored_and_reported() {
        for msg in every_message() {
            let mut bytes = msg.encode().unwrap();
            let used = bytes.len();
            bytes.extend_from_slice(b"trailer");
            assert_eq!(
                MigrationMessage::decode_prefix(&bytes).unwrap(),
                (msg, used)
            );
        }
    }
}
