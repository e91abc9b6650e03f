//! Snapshot chunking and target-side reassembly (COMPUTE.md §2.5).
//!
//! A serialized snapshot of at most 7 000 bytes travels as one
//! SnapshotReady (chunk 0 of 1, possibly empty); a larger one as 7 000-byte
//! chunks in index order, all with the same `seq_through` and total.
//!
//! [`SnapshotReassembler`] holds one partial snapshot per origin. For each
//! chunk, in this order: sweep partial snapshots idle for the idle limit
//! (300 s; time is passed in); check the chunk's bounds; reject a
//! `seq_through` below the latest one accepted for the origin; a higher
//! one evicts the older partial snapshot; the first chunk fixes the total
//! (a different total is rejected); a duplicate index replaces the earlier
//! chunk; at most 64 MiB are buffered per (origin, seq_through); when every
//! index is present the chunks are concatenated in order and the partial
//! state is dropped. **A rejected chunk never changes anything** — every
//! check runs before the first mutation.
//!
//! Departures from v0.11: the byte cap and idle limit are configurable
//! ([`SnapshotReassembler::with_limits`]; a Net-to-Net migration of more
//! than 64 MiB of state needs a larger cap on the target), and the latest
//! accepted `seq_through` of an origin survives both completion and the
//! idle sweep until [`SnapshotReassembler::discard`], so an old chunk
//! replayed late cannot start a stale reassembly.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use std::ops::Range;

use super::wire::{MAX_CHUNK_LEN, MAX_TOTAL_CHUNKS, MIN_SIZE, MigrationMessage, msg_type};

/// A partial snapshot idle this long is dropped.
pub const REASSEMBLY_IDLE_LIMIT: Duration = Duration::from_secs(300);
/// Most bytes buffered per (origin, seq_through): a 64 MiB daemon state
/// (issue 15's largest) plus its snapshot's framing, with room.
pub const MAX_REASSEMBLY_BYTES: usize = 96 * 1024 * 1024;

/// Why a snapshot could not be split, or a chunk was rejected (nothing
/// changed; the sender may retry or give up).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The snapshot needs more than 700 000 chunks.
    #[error("snapshot of {0} bytes needs more than 700000 chunks")]
    SnapshotTooLarge(usize),
    /// Chunk index, total or length out of bounds.
    #[error("bad chunk: index {index} of {total}, {len} bytes")]
    BadChunk {
        /// chunk_index.
        index: u32,
        /// total_chunks.
        total: u32,
        /// Chunk length.
        len: usize,
    },
    /// `seq_through` is below the latest accepted for the origin.
    #[error("stale chunk: seq_through {got} is below {latest}")]
    Stale {
        /// The chunk's seq_through.
        got: u64,
        /// The latest accepted.
        latest: u64,
    },
    /// The total differs from the one the first chunk fixed.
    #[error("chunk says {got} chunks; the first chunk said {expected}")]
    TotalMismatch {
        /// The total fixed by the first chunk.
        expected: u32,
        /// The chunk's total.
        got: u32,
    },
    /// Accepting the chunk would buffer more than the byte cap.
    #[error("reassembly would hold {would_hold} bytes; the cap is {cap}")]
    TooLarge {
        /// Buffered bytes with this chunk.
        would_hold: usize,
        /// The cap.
        cap: usize,
    },
    /// A [`ChunkWriter`] was given another number of bytes than announced.
    #[error("snapshot announced as {announced} bytes, {written} were written")]
    LengthMismatch {
        /// The length the writer was made for.
        announced: usize,
        /// The bytes written (counted up to one past the announced length).
        written: usize,
    },
}

/// How many chunks a serialized snapshot of `len` bytes travels in (at
/// least one).
///
/// # Errors
/// [`ChunkError::SnapshotTooLarge`] above 700 000 chunks.
pub fn chunk_count(len: usize) -> Result<u32, ChunkError> {
    u32::try_from(len.div_ceil(MAX_CHUNK_LEN).max(1))
        .ok()
        .filter(|&total| total <= MAX_TOTAL_CHUNKS)
        .ok_or(ChunkError::SnapshotTooLarge(len))
}

/// Splits serialized snapshot bytes into SnapshotReady messages.
///
/// # Errors
/// [`ChunkError::SnapshotTooLarge`] above 700 000 × 7 000 bytes.
pub fn split_snapshot(
    origin: u64,
    seq_through: u64,
    bytes: &[u8],
) -> Result<Vec<MigrationMessage>, ChunkError> {
    let total = chunk_count(bytes.len())?;
    let chunk = |index: u32, bytes: &[u8]| MigrationMessage::SnapshotReady {
        origin,
        seq_through,
        chunk_index: index,
        total_chunks: total,
        bytes: bytes.to_vec(),
    };
    if bytes.is_empty() {
        return Ok(vec![chunk(0, &[])]);
    }
    Ok(bytes
        .chunks(MAX_CHUNK_LEN)
        .zip(0..)
        .map(|(part, index)| chunk(index, part))
        .collect())
}

/// The encoded SnapshotReady messages `indices` of a serialized snapshot
/// given as consecutive pieces (`head ‖ state ‖ tail`, see
/// [`encode_migration_around_state`](crate::compute::snapshot::encode_migration_around_state)):
/// the bytes of [`split_snapshot`] then [`MigrationMessage::encode`], back
/// to back in one buffer, with the range of each. Each byte of the
/// snapshot is copied once, straight into its message; a sender encodes a
/// large snapshot a range at a time and sends each range as it is ready.
///
/// # Errors
/// [`ChunkError::SnapshotTooLarge`] above 700 000 × 7 000 bytes;
/// [`ChunkError::BadChunk`] for indices past the snapshot's last chunk.
pub fn encode_snapshot_chunks(
    origin: u64,
    seq_through: u64,
    pieces: &[&[u8]],
    indices: Range<u32>,
) -> Result<(Vec<u8>, Vec<Range<usize>>), ChunkError> {
    let len: usize = pieces.iter().map(|p| p.len()).sum();
    let total = chunk_count(len)?;
    if indices.end > total {
        return Err(ChunkError::BadChunk {
            index: indices.end - 1,
            total,
            len: 0,
        });
    }
    let header = MIN_SIZE[msg_type::SNAPSHOT_READY as usize];
    let first = indices.start as usize * MAX_CHUNK_LEN;
    let bytes = (indices.end as usize * MAX_CHUNK_LEN).min(len) - first.min(len);
    let mut out = Vec::new();
    crate::compute::prefault::reserve_prefaulted(&mut out, bytes + indices.len() * header);
    let mut ranges = Vec::with_capacity(indices.len());
    // The pieces from the first chunk's first byte on.
    let mut skip = first;
    let mut rest = pieces.iter().copied().filter_map(|p| {
        let from = skip.min(p.len());
        skip -= from;
        Some(&p[from..]).filter(|p| !p.is_empty())
    });
    let mut piece: &[u8] = &[];
    for index in indices {
        let start = out.len();
        let chunk_len = (len - index as usize * MAX_CHUNK_LEN).min(MAX_CHUNK_LEN);
        MigrationMessage::put_snapshot_ready_header(
            &mut out,
            origin,
            seq_through,
            index,
            total,
            chunk_len,
        );
        let mut need = chunk_len;
        while need > 0 {
            if piece.is_empty() {
                piece = rest.next().unwrap_or_default();
            }
            let take = need.min(piece.len());
            out.extend_from_slice(&piece[..take]);
            piece = &piece[take..];
            need -= take;
        }
        ranges.push(start..out.len());
    }
    Ok((out, ranges))
}

/// A group of encoded SnapshotReady messages from a [`ChunkWriter`]: the
/// index of the first, the messages back to back, and each one's range.
pub type ChunkGroup = (u32, Vec<u8>, Vec<Range<usize>>);

/// [`encode_snapshot_chunks`] for a snapshot whose bytes come in pieces of
/// any size, in order (a daemon writing its state straight into the
/// transfer): each byte is copied once, into its message, and every
/// `group` chunks the finished messages are handed out while the rest is
/// still being written. The length must be known up front (every message
/// carries the chunk count).
#[derive(Debug)]
pub struct ChunkWriter {
    origin: u64,
    seq_through: u64,
    len: usize,
    total: u32,
    group: u32,
    /// Bytes written so far.
    written: usize,
    /// The index of `out`'s first message.
    first: u32,
    out: Vec<u8>,
    ranges: Vec<Range<usize>>,
}

impl ChunkWriter {
    /// A writer for a snapshot of exactly `len` bytes, handing out `group`
    /// messages at a time (at least one).
    ///
    /// # Errors
    /// [`ChunkError::SnapshotTooLarge`] above 700 000 × 7 000 bytes.
    pub fn new(origin: u64, seq_through: u64, len: usize, group: u32) -> Result<Self, ChunkError> {
        let total = chunk_count(len)?;
        let mut writer = Self {
            origin,
            seq_through,
            len,
            total,
            group: group.max(1),
            written: 0,
            first: 0,
            out: Vec::new(),
            ranges: Vec::new(),
        };
        writer.begin_group();
        Ok(writer)
    }

    /// The number of messages the snapshot travels in.
    pub fn total(&self) -> u32 {
        self.total
    }

    fn begin_group(&mut self) {
        let header = MIN_SIZE[msg_type::SNAPSHOT_READY as usize];
        let from = self.first as usize * MAX_CHUNK_LEN;
        let last = (self.first + self.group).min(self.total);
        let bytes = (last as usize * MAX_CHUNK_LEN).min(self.len) - from.min(self.len);
        self.out = Vec::new();
        crate::compute::prefault::reserve_prefaulted(
            &mut self.out,
            bytes + (last - self.first) as usize * header,
        );
        self.ranges = Vec::with_capacity((last - self.first) as usize);
    }

    /// The message being filled: its index, and the bytes it still takes.
    fn open_message(&mut self) -> usize {
        let index = self.written / MAX_CHUNK_LEN;
        let within = self.written % MAX_CHUNK_LEN;
        let chunk_len = (self.len - index * MAX_CHUNK_LEN).min(MAX_CHUNK_LEN);
        if within == 0 {
            let start = self.out.len();
            MigrationMessage::put_snapshot_ready_header(
                &mut self.out,
                self.origin,
                self.seq_through,
                index as u32,
                self.total,
                chunk_len,
            );
            self.ranges.push(start..self.out.len());
        }
        chunk_len - within
    }

    /// Appends `bytes`; `emit` gets each group once its messages are
    /// complete. Bytes past the announced length are counted, not
    /// written ([`finish`](Self::finish) refuses then).
    pub fn write(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(ChunkGroup)) {
        while !bytes.is_empty() {
            if self.written >= self.len {
                self.written = self.written.saturating_add(1);
                return;
            }
            let room = self.open_message();
            let take = room.min(bytes.len());
            self.out.extend_from_slice(&bytes[..take]);
            self.written += take;
            bytes = &bytes[take..];
            if let Some(range) = self.ranges.last_mut() {
                range.end = self.out.len();
            }
            if take == room {
                self.message_done(emit);
            }
        }
    }

    /// After the message being filled was completed.
    fn message_done(&mut self, emit: &mut dyn FnMut(ChunkGroup)) {
        let done = self.first + self.ranges.len() as u32;
        if self.ranges.len() as u32 == self.group || done == self.total {
            let out = std::mem::take(&mut self.out);
            let ranges = std::mem::take(&mut self.ranges);
            emit((self.first, out, ranges));
            self.first = done;
            if done < self.total {
                self.begin_group();
            }
        }
    }

    /// Ends the snapshot: hands out the last group (an empty snapshot's
    /// one empty message included).
    ///
    /// # Errors
    /// [`ChunkError::LengthMismatch`] unless exactly the announced length
    /// was written (what was handed out is then of no use).
    pub fn finish(mut self, emit: &mut dyn FnMut(ChunkGroup)) -> Result<(), ChunkError> {
        if self.written != self.len {
            return Err(ChunkError::LengthMismatch {
                announced: self.len,
                written: self.written,
            });
        }
        if self.len == 0 {
            self.open_message();
            self.message_done(emit);
        }
        Ok(())
    }
}

/// A reassembled snapshot as its first bytes and the rest
/// ([`SnapshotReassembler::feed_parts`]).
pub type SnapshotParts = (Vec<u8>, Vec<u8>);

/// Bytes of a reassembly buffer faulted in at a time.
const PREFAULT_WINDOW: usize = 4 << 20;

/// One snapshot being reassembled. Chunks arriving in index order (the
/// usual case: one sender, one ordered stream) are appended to one buffer
/// that becomes the snapshot as it is, with no copy at the end; chunks out
/// of order, or not on the 7 000-byte grid, wait in a map until their turn.
#[derive(Debug)]
struct Partial {
    seq_through: u64,
    total: u32,
    /// The snapshot's first `skip` bytes (fewer while they have not all
    /// arrived), kept apart from `in_order` ([`SnapshotReassembler::split_at`]).
    head: Vec<u8>,
    skip: usize,
    /// Chunks `0..in_order_count`, back to back, less the bytes in `head`;
    /// all but chunk `total − 1` are exactly 7 000 bytes.
    in_order: Vec<u8>,
    in_order_count: u32,
    /// `in_order` is faulted in up to here (`PREFAULT_WINDOW` at a time:
    /// memory is committed as chunks arrive, not for a claimed total).
    prefaulted: usize,
    /// Other chunks by index, every index ≥ `in_order_count`.
    chunks: BTreeMap<u32, Vec<u8>>,
    bytes: usize,
    last_activity: Instant,
}

impl Partial {
    fn new(seq_through: u64, total: u32, skip: usize, now: Instant) -> Self {
        Self {
            seq_through,
            total,
            head: Vec::new(),
            skip,
            in_order: Vec::new(),
            in_order_count: 0,
            prefaulted: 0,
            chunks: BTreeMap::new(),
            bytes: 0,
            last_activity: now,
        }
    }

    /// Whether a chunk of `len` bytes at `index` may sit in `in_order`.
    fn on_grid(&self, index: u32, len: usize) -> bool {
        len == MAX_CHUNK_LEN || index == self.total - 1
    }

    /// The length of chunk `index`, if held.
    fn held_len(&self, index: u32) -> Option<usize> {
        if index < self.in_order_count {
            let at = index as usize * MAX_CHUNK_LEN;
            return Some((self.in_order_len() - at).min(MAX_CHUNK_LEN));
        }
        self.chunks.get(&index).map(Vec::len)
    }

    /// Bytes of the in-order chunks (`head` and `in_order`).
    fn in_order_len(&self) -> usize {
        self.head.len() + self.in_order.len()
    }

    /// Overwrites in-order bytes from snapshot offset `at`.
    fn overwrite(&mut self, at: usize, bytes: &[u8]) {
        let head_len = self.head.len();
        let (to_head, rest) = bytes.split_at(head_len.saturating_sub(at).min(bytes.len()));
        if !to_head.is_empty() {
            self.head[at..at + to_head.len()].copy_from_slice(to_head);
        }
        if !rest.is_empty() {
            // Past the head: `at + to_head.len() >= head_len` here.
            let from = at + to_head.len() - head_len;
            self.in_order[from..from + rest.len()].copy_from_slice(rest);
        }
    }

    fn received(&self) -> usize {
        self.in_order_count as usize + self.chunks.len()
    }

    /// Holds `bytes` as chunk `index` (a held one is replaced);
    /// `reserve` bounds the buffer reserved up front.
    fn insert(&mut self, index: u32, bytes: &[u8], reserve: usize) {
        if index < self.in_order_count {
            let at = index as usize * MAX_CHUNK_LEN;
            if self.held_len(index) == Some(bytes.len()) {
                self.overwrite(at, bytes);
                return;
            }
            // A repeat of another length: every chunk back to the map.
            let mut held = std::mem::take(&mut self.head);
            held.append(&mut std::mem::take(&mut self.in_order));
            for (i, chunk) in (0..self.in_order_count).zip(held.chunks(MAX_CHUNK_LEN)) {
                self.chunks.insert(i, chunk.to_vec());
            }
            self.in_order_count = 0;
            self.prefaulted = 0;
            self.chunks.insert(index, bytes.to_vec());
            return;
        }
        if index != self.in_order_count || !self.on_grid(index, bytes.len()) {
            self.chunks.insert(index, bytes.to_vec());
            return;
        }
        if self.in_order.capacity() == 0 {
            self.in_order
                .reserve((self.total as usize * MAX_CHUNK_LEN).min(reserve));
        }
        self.chunks.remove(&index);
        self.append(bytes);
        while let Some(next) = self.chunks.get(&self.in_order_count)
            && self.on_grid(self.in_order_count, next.len())
        {
            if let Some(next) = self.chunks.remove(&self.in_order_count) {
                self.append(&next);
            }
        }
    }

    /// Appends the next in-order chunk.
    fn append(&mut self, bytes: &[u8]) {
        // `head` fills first: while it is short, `in_order` is empty.
        let to_head = self.skip.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..to_head]);
        let bytes = &bytes[to_head..];
        if self.in_order.len() + bytes.len() > self.prefaulted {
            crate::compute::prefault::populate_spare(&mut self.in_order, PREFAULT_WINDOW);
            self.prefaulted = self.in_order.len() + PREFAULT_WINDOW;
        }
        self.in_order.extend_from_slice(bytes);
        self.in_order_count += 1;
    }

    /// The whole snapshot (every chunk held), as its first `skip` bytes
    /// and the rest.
    fn into_parts(self) -> SnapshotParts {
        let mut rest = self.in_order;
        for chunk in self.chunks.into_values() {
            rest.extend_from_slice(&chunk);
        }
        let mut head = self.head;
        if head.len() < self.skip && !rest.is_empty() {
            // Chunks off the grid held the head's bytes: move them up.
            let n = (self.skip - head.len()).min(rest.len());
            head.extend_from_slice(&rest[..n]);
            rest.drain(..n);
        }
        (head, rest)
    }
}

#[derive(Debug, Default)]
struct OriginState {
    latest_seq: u64,
    partial: Option<Partial>,
}

/// Per-origin snapshot reassembly on a migration target; see the module
/// doc for the rules.
#[derive(Debug)]
pub struct SnapshotReassembler {
    idle_limit: Duration,
    max_bytes: usize,
    /// Completed snapshots come out as their first `split` bytes and the
    /// rest ([`feed_parts`](Self::feed_parts)).
    split: usize,
    origins: HashMap<u64, OriginState>,
}

impl Default for SnapshotReassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotReassembler {
    /// A reassembler with v0.11's limits (300 s idle, 64 MiB).
    pub fn new() -> Self {
        Self::with_limits(REASSEMBLY_IDLE_LIMIT, MAX_REASSEMBLY_BYTES)
    }

    /// A reassembler with other limits.
    pub fn with_limits(idle_limit: Duration, max_bytes: usize) -> Self {
        Self {
            idle_limit,
            max_bytes,
            split: 0,
            origins: HashMap::new(),
        }
    }

    /// Completed snapshots are kept as their first `skip` bytes and the
    /// rest, each in a buffer of its own: a migration target takes the
    /// rest, which begins with the daemon's state, as the state's buffer
    /// (no move of the state past the record's header).
    #[must_use]
    pub fn split_at(mut self, skip: usize) -> Self {
        self.split = skip;
        self
    }

    /// Feeds one chunk received at `now`. Returns the whole snapshot when
    /// this chunk completes it.
    ///
    /// # Errors
    /// [`ChunkError::BadChunk`], [`ChunkError::Stale`],
    /// [`ChunkError::TotalMismatch`] or [`ChunkError::TooLarge`]; the
    /// chunk is dropped and nothing else changes (the idle sweep still ran).
    pub fn feed(
        &mut self,
        origin: u64,
        seq_through: u64,
        index: u32,
        total: u32,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Option<Vec<u8>>, ChunkError> {
        let parts = self.feed_parts(origin, seq_through, index, total, bytes, now)?;
        Ok(parts.map(|(mut head, rest)| {
            if head.is_empty() {
                return rest;
            }
            head.extend_from_slice(&rest);
            head
        }))
    }

    /// [`feed`](Self::feed), the whole snapshot coming out as its first
    /// bytes (as many as [`split_at`](Self::split_at) says, fewer when the
    /// snapshot is shorter) and the rest.
    ///
    /// # Errors
    /// As [`feed`](Self::feed).
    pub fn feed_parts(
        &mut self,
        origin: u64,
        seq_through: u64,
        index: u32,
        total: u32,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Option<SnapshotParts>, ChunkError> {
        self.sweep(now);
        if total == 0 || total > MAX_TOTAL_CHUNKS || index >= total || bytes.len() > MAX_CHUNK_LEN {
            return Err(ChunkError::BadChunk {
                index,
                total,
                len: bytes.len(),
            });
        }
        let state = self.origins.get(&origin);
        if let Some(state) = state
            && seq_through < state.latest_seq
        {
            return Err(ChunkError::Stale {
                got: seq_through,
                latest: state.latest_seq,
            });
        }
        let current = state
            .and_then(|s| s.partial.as_ref())
            .filter(|p| p.seq_through == seq_through);
        let would_hold = match current {
            Some(partial) if partial.total != total => {
                return Err(ChunkError::TotalMismatch {
                    expected: partial.total,
                    got: total,
                });
            }
            Some(partial) => partial.bytes - partial.held_len(index).unwrap_or(0) + bytes.len(),
            None => bytes.len(),
        };
        if would_hold > self.max_bytes {
            return Err(ChunkError::TooLarge {
                would_hold,
                cap: self.max_bytes,
            });
        }

        // Every check passed: from here on the chunk is accepted.
        let state = self.origins.entry(origin).or_default();
        state.latest_seq = seq_through;
        let partial = match &mut state.partial {
            Some(p) if p.seq_through == seq_through => p,
            slot => slot.insert(Partial::new(seq_through, total, self.split, now)),
        };
        partial.insert(index, bytes, self.max_bytes);
        partial.bytes = would_hold;
        partial.last_activity = now;
        if partial.received() < total as usize {
            return Ok(None);
        }
        Ok(state.partial.take().map(Partial::into_parts))
    }

    /// Feeds a SnapshotReady message; other messages are ignored (`None`).
    ///
    /// # Errors
    /// As [`feed`](Self::feed).
    pub fn feed_message(
        &mut self,
        message: &MigrationMessage,
        now: Instant,
    ) -> Result<Option<Vec<u8>>, ChunkError> {
        match message {
            MigrationMessage::SnapshotReady {
                origin,
                seq_through,
                chunk_index,
                total_chunks,
                bytes,
            } => self.feed(
                *origin,
                *seq_through,
                *chunk_index,
                *total_chunks,
                bytes,
                now,
            ),
            _ => Ok(None),
        }
    }

    /// Drops partial snapshots idle for the idle limit or longer (the
    /// origins' latest accepted `seq_through` is kept).
    pub fn sweep(&mut self, now: Instant) {
        for state in self.origins.values_mut() {
            if state
                .partial
                .as_ref()
                .is_some_and(|p| now.saturating_duration_since(p.last_activity) >= self.idle_limit)
            {
                state.partial = None;
            }
        }
    }

    /// Forgets everything about `origin` (its migration completed or was
    /// aborted).
    pub fn discard(&mut self, origin: u64) {
        self.origins.remove(&origin);
    }

    /// Bytes buffered for `origin`'s partial snapshot.
    pub fn buffered_bytes(&self, origin: u64) -> usize {
        self.partial(origin).map_or(0, |p| p.bytes)
    }

    /// The `seq_through` of `origin`'s partial snapshot, if one is pending.
    pub fn pending_seq(&self, origin: u64) -> Option<u64> {
        self.partial(origin).map(|p| p.seq_through)
    }

    /// The latest `seq_through` accepted for `origin`.
    pub fn latest_seq(&self, origin: u64) -> Option<u64> {
        self.origins.get(&origin).map(|s| s.latest_seq)
    }

    fn partial(&self, origin: u64) -> Option<&Partial> {
        self.origins.get(&origin).and_then(|s| s.partial.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    struct Chunk {
        origin: u64,
        seq: u64,
        index: u32,
        total: u32,
        bytes: Vec<u8>,
    }

    fn chunks_of(origin: u64, seq: u64, snapshot: &[u8]) -> Vec<Chunk> {
        split_snapshot(origin, seq, snapshot)
            .unwrap()
            .into_iter()
            .map(|m| match m {
                MigrationMessage::SnapshotReady {
                    origin,
                    seq_through,
                    chunk_index,
                    total_chunks,
                    bytes,
                } => Chunk {
                    origin,
                    seq: seq_through,
                    index: chunk_index,
                    total: total_chunks,
                    bytes,
                },
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn feed(
        r: &mut SnapshotReassembler,
        c: &Chunk,
        now: Instant,
    ) -> Result<Option<Vec<u8>>, ChunkError> {
        r.feed(c.origin, c.seq, c.index, c.total, &c.bytes, now)
    }

    #[test]
    fn small_large_and_empty_snapshots_split_and_reassemble() {
        let now = Instant::now();
        for len in [
            0,
            1,
            MAX_CHUNK_LEN,
            MAX_CHUNK_LEN + 1,
            5 * MAX_CHUNK_LEN + 17,
        ] {
            let snapshot = bytes(len);
            let chunks = chunks_of(9, 4, &snapshot);
            assert_eq!(
                chunks.len(),
                len.div_ceil(MAX_CHUNK_LEN).max(1),
                "len {len}"
            );
            assert!(
                chunks
                    .iter()
                    .all(|c| c.bytes.len() <= MAX_CHUNK_LEN && c.seq == 4)
            );
            let mut r = SnapshotReassembler::new();
            let (last, rest) = chunks.split_last().unwrap();
            for c in rest {
                assert_eq!(feed(&mut r, c, now).unwrap(), None);
            }
            assert_eq!(feed(&mut r, last, now).unwrap(), Some(snapshot));
            assert_eq!(r.pending_seq(9), None);
            assert_eq!(r.latest_seq(9), Some(4));
        }
        let most = MAX_CHUNK_LEN * MAX_TOTAL_CHUNKS as usize;
        assert_eq!(chunk_count(0), Ok(1));
        assert_eq!(chunk_count(most), Ok(MAX_TOTAL_CHUNKS));
        assert_eq!(
            chunk_count(most + 1),
            Err(ChunkError::SnapshotTooLarge(most + 1))
        );
    }

    #[test]
    fn chunks_encoded_from_pieces_are_split_then_encoded() {
        for len in [
            0,
            1,
            29,
            MAX_CHUNK_LEN,
            MAX_CHUNK_LEN + 1,
            3 * MAX_CHUNK_LEN + 17,
        ] {
            let snapshot = bytes(len);
            let expected: Vec<Vec<u8>> = split_snapshot(7, 3, &snapshot)
                .unwrap()
                .iter()
                .map(|m| m.encode().unwrap())
                .collect();
            // Any cut into pieces, empty ones included.
            for (a, b) in [
                (0, 0),
                (0, len),
                (len / 3, len / 2),
                (len, len),
                (1.min(len), len),
            ] {
                let pieces = [&snapshot[..a], &[][..], &snapshot[a..b], &snapshot[b..]];
                let total = expected.len() as u32;
                // All at once, and a range at a time (ranges of 1 and 2).
                for step in [total, 1, 2] {
                    let mut got = Vec::new();
                    for first in (0..total).step_by(step as usize) {
                        let indices = first..(first + step).min(total);
                        let (buffer, ranges) =
                            encode_snapshot_chunks(7, 3, &pieces, indices).unwrap();
                        got.extend(ranges.into_iter().map(|r| buffer[r].to_vec()));
                    }
                    assert_eq!(got, expected, "len {len}, cuts {a} {b}, step {step}");
                }
                assert!(matches!(
                    encode_snapshot_chunks(7, 3, &pieces, 0..total + 1),
                    Err(ChunkError::BadChunk { .. })
                ));
            }
        }
    }

    /// A writer fed in pieces of any size gives the messages
    /// `split_snapshot` does, handed out in groups of the asked size with
    /// the right first index; a wrong length is refused.
    #[test]
    fn a_chunk_writer_gives_the_split_messages_in_groups() {
        for len in [
            0,
            1,
            MAX_CHUNK_LEN - 1,
            MAX_CHUNK_LEN,
            3 * MAX_CHUNK_LEN + 17,
        ] {
            let snapshot = bytes(len);
            let expected: Vec<Vec<u8>> = split_snapshot(7, 3, &snapshot)
                .unwrap()
                .iter()
                .map(|m| m.encode().unwrap())
                .collect();
            for (piece, group) in [(1, 1), (13, 2), (MAX_CHUNK_LEN, 3), (len.max(1), 64)] {
                let mut writer = ChunkWriter::new(7, 3, len, group).unwrap();
                assert_eq!(writer.total() as usize, expected.len());
                let mut got = Vec::new();
                let mut emit = |(first, buffer, ranges): ChunkGroup| {
                    assert_eq!(first as usize, got.len(), "groups in order");
                    assert!(ranges.len() <= group as usize);
                    got.extend(ranges.into_iter().map(|r| buffer[r].to_vec()));
                };
                for part in snapshot.chunks(piece) {
                    writer.write(&[], &mut emit);
                    writer.write(part, &mut emit);
                }
                writer.finish(&mut emit).unwrap();
                assert_eq!(
                    got, expected,
                    "len {len}, pieces of {piece}, groups of {group}"
                );
            }
            // One byte short, one too many.
            let mut ignore = |_: ChunkGroup| {};
            if len > 0 {
                let mut short = ChunkWriter::new(7, 3, len, 4).unwrap();
                short.write(&snapshot[1..], &mut ignore);
                assert!(matches!(
                    short.finish(&mut ignore),
                    Err(ChunkError::LengthMismatch { .. })
                ));
            }
            let mut long = ChunkWriter::new(7, 3, len, 4).unwrap();
            long.write(&snapshot, &mut ignore);
            long.write(&[1, 2], &mut ignore);
            assert!(matches!(
                long.finish(&mut ignore),
                Err(ChunkError::LengthMismatch { written, .. }) if written == len + 1
            ));
        }
    }

    /// The in-order buffer and the map give the bytes a map alone would,
    /// whatever the order, repeats (same or other lengths) and off-grid
    /// chunks.
    #[test]
    fn reassembly_in_any_order_with_repeats_and_off_grid_chunks() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        // Bytes that tell their place within a chunk apart.
        let chunk = |fill: u8, len: usize| -> Vec<u8> {
            (0..len).map(|i| fill.wrapping_add(i as u8)).collect()
        };
        let strategy = (
            1usize..6,
            proptest::collection::vec((0u32..6, 0usize..=MAX_CHUNK_LEN, any::<u8>()), 0..30),
            any::<bool>(),
            prop_oneof![
                Just(0usize),
                Just(crate::compute::snapshot::SNAPSHOT_STATE_OFFSET),
                0usize..3 * MAX_CHUNK_LEN,
            ],
        );
        TestRunner::new(Config::with_cases(300))
            .run(&strategy, |(total, noise, grid_first, skip)| {
                let total = total as u32;
                let now = Instant::now();
                let mut r = SnapshotReassembler::new().split_at(skip);
                let mut model: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
                let mut done = None;
                let mut feed_one = |r: &mut SnapshotReassembler, index: u32, chunk: Vec<u8>| {
                    if done.is_some() {
                        return;
                    }
                    let got = r.feed_parts(1, 1, index, total, &chunk, now).unwrap();
                    model.insert(index, chunk);
                    if model.len() == total as usize {
                        let whole: Vec<u8> = model.values().flatten().copied().collect();
                        let (head, rest) = whole.split_at(skip.min(whole.len()));
                        assert_eq!(got, Some((head.to_vec(), rest.to_vec())));
                        done = got;
                    } else {
                        assert_eq!(got, None);
                    }
                };
                if grid_first {
                    feed_one(&mut r, 0, chunk(1, MAX_CHUNK_LEN));
                }
                for (index, len, fill) in noise {
                    if index < total {
                        feed_one(&mut r, index, chunk(fill, len));
                    }
                }
                for index in 0..total {
                    feed_one(&mut r, index, chunk(index as u8, MAX_CHUNK_LEN));
                }
                prop_assert!(done.is_some());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn out_of_order_and_duplicate_chunks() {
        let now = Instant::now();
        let snapshot = bytes(3 * MAX_CHUNK_LEN);
        let chunks = chunks_of(1, 2, &snapshot);
        let mut r = SnapshotReassembler::new();
        assert_eq!(feed(&mut r, &chunks[2], now).unwrap(), None);
        // A duplicate replaces: a forged copy of chunk 0 is overwritten by the real one.
        let forged = Chunk {
            bytes: vec![0xEE; 10],
            ..chunks_of(1, 2, &snapshot).remove(0)
        };
        assert_eq!(feed(&mut r, &forged, now).unwrap(), None);
        assert_eq!(r.buffered_bytes(1), MAX_CHUNK_LEN + 10);
        assert_eq!(feed(&mut r, &chunks[0], now).unwrap(), None);
        assert_eq!(r.buffered_bytes(1), 2 * MAX_CHUNK_LEN);
        assert_eq!(feed(&mut r, &chunks[2], now).unwrap(), None);
        assert_eq!(feed(&mut r, &chunks[1], now).unwrap(), Some(snapshot));
    }

    #[test]
    fn mixed_seq_through_stale_rejected_newer_evicts() {
        let now = Instant::now();
        let old = bytes(2 * MAX_CHUNK_LEN);
        let new = bytes(2 * MAX_CHUNK_LEN + 1);
        let old_chunks = chunks_of(1, 5, &old);
        let new_chunks = chunks_of(1, 6, &new);
        let mut r = SnapshotReassembler::new();
        feed(&mut r, &old_chunks[0], now).unwrap();
        feed(&mut r, &new_chunks[0], now).unwrap();
        assert_eq!(r.pending_seq(1), Some(6));
        assert_eq!(r.buffered_bytes(1), MAX_CHUNK_LEN);
        assert_eq!(
            feed(&mut r, &old_chunks[1], now),
            Err(ChunkError::Stale { got: 5, latest: 6 })
        );
        feed(&mut r, &new_chunks[1], now).unwrap();
        assert_eq!(feed(&mut r, &new_chunks[2], now).unwrap(), Some(new));
        // After completion an older seq is still stale.
        assert!(matches!(
            feed(&mut r, &old_chunks[0], now),
            Err(ChunkError::Stale { .. })
        ));
    }

    #[test]
    fn origins_are_isolated() {
        let now = Instant::now();
        let a = bytes(2 * MAX_CHUNK_LEN);
        let b = bytes(MAX_CHUNK_LEN + 3);
        let (ca, cb) = (chunks_of(1, 9, &a), chunks_of(2, 1, &b));
        let mut r = SnapshotReassembler::new();
        feed(&mut r, &ca[0], now).unwrap();
        feed(&mut r, &cb[0], now).unwrap();
        assert_eq!(feed(&mut r, &cb[1], now).unwrap(), Some(b));
        assert_eq!(r.pending_seq(1), Some(9));
        assert_eq!(feed(&mut r, &ca[1], now).unwrap(), Some(a));
    }

    #[test]
    fn byte_cap_rejects_without_mutation() {
        let now = Instant::now();
        let mut r = SnapshotReassembler::with_limits(REASSEMBLY_IDLE_LIMIT, 2 * MAX_CHUNK_LEN);
        let chunks = chunks_of(1, 1, &bytes(3 * MAX_CHUNK_LEN));
        feed(&mut r, &chunks[0], now).unwrap();
        feed(&mut r, &chunks[1], now).unwrap();
        assert!(matches!(
            feed(&mut r, &chunks[2], now),
            Err(ChunkError::TooLarge { .. })
        ));
        assert_eq!(r.buffered_bytes(1), 2 * MAX_CHUNK_LEN);
        // A replacement of the same size still fits.
        assert_eq!(feed(&mut r, &chunks[1], now).unwrap(), None);
        // A newer snapshot's first chunk that alone exceeds the cap does not evict.
        let mut tiny = SnapshotReassembler::with_limits(REASSEMBLY_IDLE_LIMIT, 10);
        tiny.feed(1, 1, 0, 2, &[1; 10], now).unwrap();
        assert!(tiny.feed(1, 2, 0, 2, &[1; 11], now).is_err());
        assert_eq!(
            (tiny.pending_seq(1), tiny.latest_seq(1)),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn idle_sweep_drops_partials_but_keeps_latest_seq() {
        let t0 = Instant::now();
        let mut r = SnapshotReassembler::new();
        let chunks = chunks_of(1, 7, &bytes(2 * MAX_CHUNK_LEN));
        feed(&mut r, &chunks[0], t0).unwrap();
        r.sweep(t0 + REASSEMBLY_IDLE_LIMIT - Duration::from_millis(1));
        assert_eq!(r.pending_seq(1), Some(7));
        r.sweep(t0 + REASSEMBLY_IDLE_LIMIT);
        assert_eq!(r.pending_seq(1), None);
        assert_eq!(r.latest_seq(1), Some(7));
        let later = t0 + REASSEMBLY_IDLE_LIMIT;
        assert!(matches!(
            r.feed(1, 6, 0, 1, b"old", later),
            Err(ChunkError::Stale { .. })
        ));
        // The lone second chunk does not complete the swept snapshot.
        assert_eq!(feed(&mut r, &chunks[1], later).unwrap(), None);
    }

    #[test]
    fn forged_chunk_sets_never_complete_and_rejects_do_not_mutate() {
        let now = Instant::now();
        let mut r = SnapshotReassembler::new();
        r.feed(1, 3, 0, 3, b"a", now).unwrap();
        for (index, total, len) in [
            (3, 3, 1),
            (0, 0, 1),
            (0, MAX_TOTAL_CHUNKS + 1, 1),
            (1, 3, MAX_CHUNK_LEN + 1),
        ] {
            assert!(matches!(
                r.feed(1, 3, index, total, &vec![0; len], now),
                Err(ChunkError::BadChunk { .. })
            ));
        }
        // A different total cannot finish the set (nor can a 1-of-1 "shortcut").
        assert_eq!(
            r.feed(1, 3, 1, 2, b"b", now),
            Err(ChunkError::TotalMismatch {
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            r.feed(1, 3, 0, 1, b"all", now),
            Err(ChunkError::TotalMismatch {
                expected: 3,
                got: 1
            })
        );
        assert_eq!(r.buffered_bytes(1), 1);
        r.feed(1, 3, 1, 3, b"b", now).unwrap();
        assert_eq!(
            r.feed(1, 3, 2, 3, b"c", now).unwrap(),
            Some(b"abc".to_vec())
        );
    }

    #[test]
    fn failure_mid_chunking_then_retargeting_has_intact_coverage() {
        let now = Instant::now();
        let snapshot = bytes(4 * MAX_CHUNK_LEN + 5);
        let chunks = chunks_of(1, 11, &snapshot);
        let mut first_target = SnapshotReassembler::new();
        feed(&mut first_target, &chunks[0], now).unwrap();
        feed(&mut first_target, &chunks[3], now).unwrap();
        first_target.discard(1);
        assert_eq!(first_target.latest_seq(1), None);
        let mut second_target = SnapshotReassembler::new();
        let mut done = None;
        for c in chunks.iter().rev() {
            assert!(done.is_none());
            done = feed(&mut second_target, c, now).unwrap();
        }
        assert_eq!(done, Some(snapshot.clone()));
        // The first target, retried from scratch, also completes intact.
        let mut done = None;
        for c in &chunks {
            done = feed(&mut first_target, c, now).unwrap();
        }
        assert_eq!(done, Some(snapshot));
    }
}
