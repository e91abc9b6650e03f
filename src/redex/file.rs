//! `RedexFile`: one channel's append-only log, in memory or on disk.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::config::{FsyncPolicy, RedexFileConfig};
use super::disk::DiskStore;
use super::entry::{Entry, PayloadLoc, retention_cut};
use super::error::{RedexError, Result};
use super::format::{IDX_RECORD_LEN, INLINE_LEN, MAX_HEAP_BYTES, TS_RECORD_LEN, checksum28};
use super::recovery::{RecoveryReport, SEQ_LIMIT};
use super::syncer;
use super::tail::RedexTail;

/// Current UNIX time in nanoseconds (0 before the epoch).
pub(crate) fn now_ns() -> u64 {
    crate::wallclock::now_ns()
}

/// Payload bytes of an in-memory file, addressed by logical offset.
#[derive(Debug, Default)]
struct HeapStore {
    bytes: Vec<u8>,
    /// Logical offset of `bytes[0]` (advances as retention drops a prefix).
    base: u64,
}

impl HeapStore {
    fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    fn read(&self, offset: u64, len: u32) -> &[u8] {
        let from = (offset - self.base) as usize;
        &self.bytes[from..from + len as usize]
    }

    fn drop_before(&mut self, offset: u64) {
        let cut = (offset.saturating_sub(self.base) as usize).min(self.bytes.len());
        self.bytes.drain(..cut);
        self.base += cut as u64;
    }
}

#[derive(Debug)]
enum Store {
    Heap(HeapStore),
    Disk(DiskStore),
    Closed,
}

#[derive(Debug)]
pub(crate) struct FileState {
    pub(crate) entries: VecDeque<Entry>,
    next_seq: u64,
    /// Lowest sequence number not removed by retention: a reader still below
    /// it has missed entries and is told so (Lagged).
    pub(crate) retained_from: u64,
    store: Store,
    poison: Option<String>,
    unsynced_entries: u64,
    unsynced_bytes: u64,
    /// Live heap payload bytes.
    heap_bytes: u64,
}

impl FileState {
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.store, Store::Closed)
    }

    /// Index of the first entry with `seq >= from`.
    pub(crate) fn position_of(&self, from: u64) -> usize {
        self.entries.partition_point(|e| e.seq < from)
    }

    /// The payload of `entry`, verified against its checksum. `Ok(None)` when
    /// the bytes no longer match (the entry is skipped, never returned wrong).
    pub(crate) fn payload(&self, entry: &Entry) -> Result<Option<Vec<u8>>> {
        let bytes = match (entry.payload, &self.store) {
            (PayloadLoc::Inline(bytes), _) => bytes.to_vec(),
            (PayloadLoc::Heap { offset, len }, Store::Heap(heap)) => {
                heap.read(offset, len).to_vec()
            }
            (PayloadLoc::Heap { offset, len }, Store::Disk(disk)) => disk
                .read(offset, len)
                .map_err(|e| RedexError::io("read dat", e))?,
            (PayloadLoc::Heap { .. }, Store::Closed) => return Err(RedexError::Closed),
        };
        if checksum28(&bytes) != entry.checksum {
            tracing::warn!(
                seq = entry.seq,
                "read: entry checksum mismatch; skipping it"
            );
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// The payloads of up to `max` entries from index `at`, at most about
    /// `max_bytes` of them, each verified like [`payload`](Self::payload). On
    /// disk the range is read with one `read` instead of one per entry.
    pub(crate) fn payloads_from(
        &self,
        at: usize,
        max: usize,
        max_bytes: u64,
    ) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        let mut end = at;
        let mut bytes = 0u64;
        while end < self.entries.len() && end - at < max && (bytes < max_bytes || end == at) {
            bytes += self.entries[end].payload.retention_size();
            end += 1;
        }
        let entries = self.entries.range(at..end);
        let span = match &self.store {
            Store::Disk(disk) => {
                let (start, stop) = entries
                    .clone()
                    .filter_map(|e| match e.payload {
                        PayloadLoc::Heap { offset, len } => Some((offset, offset + u64::from(len))),
                        PayloadLoc::Inline(_) => None,
                    })
                    .fold((u64::MAX, 0), |(s, t), (a, b)| (s.min(a), t.max(b)));
                if start < stop {
                    let len = u32::try_from(stop - start)
                        .map_err(|_| RedexError::OffsetOverflow { end: stop })?;
                    Some((
                        start,
                        disk.read(start, len)
                            .map_err(|e| RedexError::io("read dat", e))?,
                    ))
                } else {
                    None
                }
            }
            _ => None,
        };
        entries
            .map(|entry| {
                let bytes = match (&span, entry.payload) {
                    (Some((base, buf)), PayloadLoc::Heap { offset, len }) => {
                        let from = (offset - base) as usize;
                        buf[from..from + len as usize].to_vec()
                    }
                    _ => return Ok((entry.seq, self.payload(entry)?)),
                };
                if checksum28(&bytes) != entry.checksum {
                    tracing::warn!(
                        seq = entry.seq,
                        "read: entry checksum mismatch; skipping it"
                    );
                    return Ok((entry.seq, None));
                }
                Ok((entry.seq, Some(bytes)))
            })
            .collect()
    }
}

/// Bytes of `dat` a range read fetches per read call.
const READ_SPAN: u64 = 8 << 20;
pub(crate) struct FileInner {
    name: String,
    config: RedexFileConfig,
    state: Mutex<FileState>,
    /// Signalled when entries are appended or removed, or the file closes.
    changed: Condvar,
    /// Tails blocked on `changed`; appends only signal when non-zero.
    waiters: AtomicUsize,
    /// Mirrors of state for `Debug` and cheap reads; written under the lock.
    next_seq: AtomicU64,
    entry_count: AtomicU64,
    closed: AtomicBool,
    poisoned: AtomicBool,
    /// What opening found and did (persistent files only).
    recovery: Option<RecoveryReport>,
}

impl FileInner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, FileState> {
        // A panic while holding the lock never leaves the state half-updated
        // (every mutation is one assignment at the end of its operation), so
        // recover the guard rather than cascade the panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until `changed` is signalled or `timeout` passes.
    pub(crate) fn wait<'a>(
        &self,
        guard: MutexGuard<'a, FileState>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, FileState> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let guard = match timeout {
            Some(timeout) => {
                self.changed
                    .wait_timeout(guard, timeout)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => self.changed.wait(guard).unwrap_or_else(|e| e.into_inner()),
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        guard
    }

    /// Wakes every blocked tail.
    pub(crate) fn wake_all(&self) {
        self.changed.notify_all();
    }

    fn publish(&self, state: &FileState) {
        self.next_seq.store(state.next_seq, Ordering::Release);
        self.entry_count
            .store(state.entries.len() as u64, Ordering::Release);
    }

    /// Syncs now (background syncer and `sync()`); a failure poisons.
    pub(crate) fn sync_now(&self) -> Result<()> {
        let mut state = self.lock();
        sync_locked(self, &mut state)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn fsync_policy(&self) -> FsyncPolicy {
        self.config.fsync
    }
}

fn poison(inner: &FileInner, state: &mut FileState, reason: String) {
    tracing::error!(file = %inner.name, %reason, "RedEX file poisoned");
    inner.poisoned.store(true, Ordering::Release);
    state.poison.get_or_insert(reason);
}

fn sync_locked(inner: &FileInner, state: &mut FileState) -> Result<()> {
    let Store::Disk(disk) = &mut state.store else {
        return Ok(());
    };
    match disk.sync() {
        Ok(()) => {
            state.unsynced_entries = 0;
            state.unsynced_bytes = 0;
            Ok(())
        }
        Err(e) => {
            poison(inner, state, format!("fsync failed: {e}"));
            Err(RedexError::io("fsync", e))
        }
    }
}

/// One payload of an append, before it is placed.
enum Pending<'a> {
    Heap(&'a [u8]),
    Inline([u8; INLINE_LEN]),
}

impl Pending<'_> {
    fn heap_len(&self) -> u64 {
        match self {
            Self::Heap(p) => p.len() as u64,
            Self::Inline(_) => 0,
        }
    }
}

/// The entries of one append: inline for the common single append, so it
/// allocates nothing.
enum NewEntries {
    One([Entry; 1]),
    Many(Vec<Entry>),
}

impl NewEntries {
    fn build(items: &[Pending<'_>], first_seq: u64, mut offset: u64, ts: u64) -> Self {
        let mut make = |i: usize, item: &Pending<'_>| match item {
            Pending::Heap(payload) => {
                let len = payload.len() as u32;
                let entry = Entry {
                    seq: first_seq + i as u64,
                    payload: PayloadLoc::Heap { offset, len },
                    checksum: checksum28(payload),
                    ts,
                };
                offset += u64::from(len);
                entry
            }
            Pending::Inline(bytes) => Entry {
                seq: first_seq + i as u64,
                payload: PayloadLoc::Inline(*bytes),
                checksum: checksum28(bytes),
                ts,
            },
        };
        match items {
            [one] => Self::One([make(0, one)]),
            _ => Self::Many(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| make(i, item))
                    .collect(),
            ),
        }
    }

    fn as_slice(&self) -> &[Entry] {
        match self {
            Self::One(one) => one,
            Self::Many(many) => many,
        }
    }
}

/// One channel's append-only log. Cheap to clone; clones share the file.
///
/// Appends are serialised; each gets the next sequence number (a batch takes
/// consecutive ones). Readers and tails see an entry once its append returns.
/// See the module docs of [`crate::redex`] for durability.
#[derive(Clone)]
pub struct RedexFile {
    pub(crate) inner: Arc<FileInner>,
}

impl RedexFile {
    /// A new in-memory file (not attached to any [`super::Redex`]).
    ///
    /// # Errors
    /// [`RedexError::InvalidConfig`] if `config` asks for persistence or an
    /// fsync policy.
    pub fn new_heap(name: &str, config: RedexFileConfig) -> Result<Self> {
        if config.persistent {
            return Err(RedexError::InvalidConfig(
                "persistent: a heap file cannot be persistent; open it through Redex::with_persistent_dir".into(),
            ));
        }
        config.validate()?;
        Ok(Self::from_parts(
            name,
            config,
            Store::Heap(HeapStore::default()),
            VecDeque::new(),
            0,
            None,
        ))
    }

    /// Opens a persistent file on `store` (already recovered).
    pub(crate) fn open_disk(
        name: &str,
        config: RedexFileConfig,
        recovered: super::disk::Recovered,
    ) -> Self {
        let file = Self::from_parts(
            name,
            config,
            Store::Disk(recovered.store),
            recovered.entries,
            recovered.next_seq,
            Some(recovered.report),
        );
        if config.fsync.period().is_some() {
            syncer::register(&file.inner);
        }
        file
    }

    fn from_parts(
        name: &str,
        config: RedexFileConfig,
        store: Store,
        entries: VecDeque<Entry>,
        next_seq: u64,
        recovery: Option<RecoveryReport>,
    ) -> Self {
        let heap_bytes = entries
            .iter()
            .map(|e| match e.payload {
                PayloadLoc::Heap { len, .. } => u64::from(len),
                PayloadLoc::Inline(_) => 0,
            })
            .sum();
        let retained_from = entries.front().map_or(next_seq, |e| e.seq);
        let state = FileState {
            entries,
            next_seq,
            retained_from,
            store,
            poison: None,
            unsynced_entries: 0,
            unsynced_bytes: 0,
            heap_bytes,
        };
        let inner = FileInner {
            name: name.to_owned(),
            config,
            next_seq: AtomicU64::new(state.next_seq),
            entry_count: AtomicU64::new(state.entries.len() as u64),
            state: Mutex::new(state),
            changed: Condvar::new(),
            waiters: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            recovery,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The channel name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The configuration the file was opened with.
    pub fn config(&self) -> &RedexFileConfig {
        &self.inner.config
    }

    /// Appends a payload (any length, stored on the heap / in `dat`; never
    /// inlined) and returns its sequence number.
    ///
    /// # Errors
    /// [`RedexError::Closed`], [`RedexError::Poisoned`], the size limits
    /// ([`RedexError::OffsetOverflow`], [`RedexError::HeapFull`]),
    /// [`RedexError::Io`] when a write fails (rolled back: nothing appended),
    /// or [`RedexError::SyncFailed`] when the append landed but its fsync did not.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_pending(&[Pending::Heap(payload)])
    }

    /// Appends exactly 8 bytes stored inside the index record (no `dat` bytes).
    ///
    /// # Errors
    /// [`RedexError::InlineLength`] unless `payload` is 8 bytes; otherwise as
    /// [`append`](Self::append).
    pub fn append_inline(&self, payload: &[u8]) -> Result<u64> {
        let bytes: [u8; INLINE_LEN] = payload
            .try_into()
            .map_err(|_| RedexError::InlineLength(payload.len()))?;
        self.append_pending(&[Pending::Inline(bytes)])
    }

    /// Appends a batch atomically: consecutive sequence numbers, one write per
    /// file. Returns the first sequence number, or `None` for an empty batch
    /// (never a made-up 0).
    ///
    /// # Errors
    /// As [`append`](Self::append); on error nothing of the batch is appended.
    pub fn append_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Option<u64>> {
        if payloads.is_empty() {
            return if self.inner.is_closed() {
                Err(RedexError::Closed)
            } else {
                Ok(None)
            };
        }
        let pending: Vec<Pending<'_>> =
            payloads.iter().map(|p| Pending::Heap(p.as_ref())).collect();
        self.append_pending(&pending).map(Some)
    }

    /// [`append_batch`](Self::append_batch), named for parity with Net v0.11:
    /// every RedEX batch lands in slice order on consecutive sequence numbers,
    /// with no other appender's entry in between.
    ///
    /// # Errors
    /// As [`append_batch`](Self::append_batch).
    pub fn append_batch_ordered<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Option<u64>> {
        self.append_batch(payloads)
    }

    fn append_pending(&self, items: &[Pending<'_>]) -> Result<u64> {
        let inner = &*self.inner;
        let mut state = inner.lock();
        if state.is_closed() {
            return Err(RedexError::Closed);
        }
        if let Some(reason) = &state.poison {
            return Err(RedexError::Poisoned(reason.clone()));
        }
        let added_heap: u64 = items.iter().map(Pending::heap_len).sum();
        let would_be = state.heap_bytes + added_heap;
        if would_be > MAX_HEAP_BYTES {
            return Err(RedexError::HeapFull { would_be });
        }
        let first_seq = state.next_seq;
        let count = items.len() as u64;
        if first_seq
            .checked_add(count)
            .is_none_or(|end| end > SEQ_LIMIT)
        {
            return Err(RedexError::SeqExhausted {
                next_seq: first_seq,
            });
        }
        // Timestamps only serve age retention and the on-disk ts sidecar;
        // a memory file without an age limit never reads them.
        let config = &inner.config;
        let ts = if config.persistent || config.retention.max_age.is_some() {
            now_ns()
        } else {
            0
        };
        let offset = match &state.store {
            Store::Heap(heap) => heap.end(),
            Store::Disk(disk) => disk.dat_len(),
            Store::Closed => return Err(RedexError::Closed),
        };
        if matches!(state.store, Store::Disk(_)) && offset + added_heap > u64::from(u32::MAX) {
            return Err(RedexError::OffsetOverflow {
                end: offset + added_heap,
            });
        }
        if let Some(Pending::Heap(p)) = items.iter().find(|p| p.heap_len() > u64::from(u32::MAX)) {
            return Err(RedexError::OffsetOverflow {
                end: p.len() as u64,
            });
        }
        let new_entries = NewEntries::build(items, first_seq, offset, ts);

        match &mut state.store {
            Store::Heap(heap) => {
                for item in items {
                    if let Pending::Heap(payload) = item {
                        heap.bytes.extend_from_slice(payload);
                    }
                }
            }
            Store::Disk(disk) => {
                let written = match (items, new_entries.as_slice()) {
                    ([Pending::Heap(payload)], [entry]) => {
                        disk.append(payload, &entry.to_record().encode(), &ts.to_le_bytes())
                    }
                    _ => {
                        let heap_bytes: Vec<u8> = items
                            .iter()
                            .flat_map(|p| match p {
                                Pending::Heap(bytes) => *bytes,
                                Pending::Inline(_) => &[][..],
                            })
                            .copied()
                            .collect();
                        let records: Vec<u8> = new_entries
                            .as_slice()
                            .iter()
                            .flat_map(|e| e.to_record().encode())
                            .collect();
                        let ts_bytes: Vec<u8> = std::iter::repeat_n(ts.to_le_bytes(), items.len())
                            .flatten()
                            .collect();
                        disk.append(&heap_bytes, &records, &ts_bytes)
                    }
                };
                if let Err(failure) = written {
                    return Err(match failure.poison {
                        Some(reason) => {
                            let reason =
                                format!("{reason}; after {} failed: {}", failure.op, failure.error);
                            poison(inner, &mut state, reason.clone());
                            RedexError::Poisoned(reason)
                        }
                        None => RedexError::io(failure.op, failure.error),
                    });
                }
            }
            Store::Closed => return Err(RedexError::Closed),
        }

        state.entries.extend(new_entries.as_slice().iter().copied());
        state.next_seq = first_seq + count;
        state.heap_bytes = would_be;
        state.unsynced_entries += count;
        state.unsynced_bytes += added_heap + count * (IDX_RECORD_LEN + TS_RECORD_LEN) as u64;
        inner.publish(&state);

        let sync_result = if self.sync_due(&state) {
            sync_locked(inner, &mut state)
        } else {
            Ok(())
        };
        let wake = inner.waiters.load(Ordering::SeqCst) > 0;
        drop(state);
        if wake {
            inner.wake_all();
        }
        match sync_result {
            Ok(()) => Ok(first_seq),
            Err(RedexError::Io { source, .. }) => Err(RedexError::SyncFailed {
                seq: first_seq,
                source,
            }),
            Err(other) => Err(other),
        }
    }

    /// Whether the inline part of the fsync policy calls for a sync now.
    fn sync_due(&self, state: &FileState) -> bool {
        match self.inner.config.fsync {
            FsyncPolicy::EveryN(n) => state.unsynced_entries >= n.max(1),
            FsyncPolicy::IntervalOrBytes { max_bytes, .. } => {
                max_bytes > 0 && state.unsynced_bytes >= max_bytes
            }
            _ => false,
        }
    }

    /// The payload of entry `seq`, or `None` if there is no such entry (never
    /// appended, removed by retention, or dropped for a checksum mismatch).
    ///
    /// # Errors
    /// [`RedexError::Closed`]; [`RedexError::Io`] if `dat` cannot be read.
    pub fn read(&self, seq: u64) -> Result<Option<Vec<u8>>> {
        let state = self.inner.lock();
        if state.is_closed() {
            return Err(RedexError::Closed);
        }
        let at = state.position_of(seq);
        match state.entries.get(at) {
            Some(entry) if entry.seq == seq => state.payload(entry),
            _ => Ok(None),
        }
    }

    /// The entries with sequence numbers in `range`, in order, skipping those
    /// that no longer exist or fail their checksum.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn read_range(&self, range: impl RangeBounds<u64>) -> Result<Vec<(u64, Vec<u8>)>> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let state = self.inner.lock();
        if state.is_closed() {
            return Err(RedexError::Closed);
        }
        let mut at = state.position_of(start);
        let count = state
            .entries
            .range(at..)
            .take_while(|e| range.contains(&e.seq))
            .count();
        let end = at + count;
        let mut out = Vec::with_capacity(count);
        // On disk, each span of up to 8 MiB is one read, not one per entry.
        while at < end {
            let got = state.payloads_from(at, end - at, READ_SPAN)?;
            at += got.len();
            out.extend(got.into_iter().filter_map(|(seq, p)| p.map(|p| (seq, p))));
        }
        Ok(out)
    }

    /// The sequence number the next append will get. Never goes backwards:
    /// a failed append leaves it untouched.
    pub fn next_seq(&self) -> u64 {
        self.inner.next_seq.load(Ordering::Acquire)
    }

    /// Number of live entries.
    pub fn len(&self) -> u64 {
        self.inner.entry_count.load(Ordering::Acquire)
    }

    /// True when there is no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sequence number of the oldest live entry.
    pub fn first_seq(&self) -> Option<u64> {
        self.inner.lock().entries.front().map(|e| e.seq)
    }

    /// The live generation of a persistent file (`None` for heap files).
    pub fn generation(&self) -> Option<u32> {
        match &self.inner.lock().store {
            Store::Disk(disk) => Some(disk.generation().0),
            _ => None,
        }
    }

    /// Readers (tails, CortEX folds) blocked waiting for this file to
    /// change right now; tests use it to know a reader is really waiting.
    #[cfg(feature = "test-util")]
    pub fn blocked_readers(&self) -> usize {
        self.inner.waiters.load(Ordering::SeqCst)
    }

    /// What opening this persistent file found and did: the records recovery
    /// dropped and why, holes, truncations, repairs (`None` for heap files).
    pub fn recovery_report(&self) -> Option<&RecoveryReport> {
        self.inner.recovery.as_ref()
    }

    /// Why the file refuses appends, if it does.
    pub fn poison_reason(&self) -> Option<String> {
        self.inner.lock().poison.clone()
    }

    /// Makes every append so far durable (a no-op for heap files).
    ///
    /// # Errors
    /// [`RedexError::Closed`]; [`RedexError::Io`] if the fsync fails, which
    /// also poisons the file.
    pub fn sync(&self) -> Result<()> {
        let mut state = self.inner.lock();
        if state.is_closed() {
            return Err(RedexError::Closed);
        }
        sync_locked(&self.inner, &mut state)
    }

    /// Syncs (whatever the policy), releases the channel directory, and ends
    /// every tail. Idempotent.
    ///
    /// # Errors
    /// [`RedexError::Io`] if the final fsync fails (the file is closed anyway).
    pub fn close(&self) -> Result<()> {
        close_inner(&self.inner)
    }

    /// Applies the retention limits: removes the prefix they require
    /// (STORAGE.md §9). For a persistent file the survivors are written to a
    /// new generation (`compact_to`), so disk space is actually freed.
    /// Returns how many entries were removed.
    ///
    /// # Errors
    /// [`RedexError::Closed`]; [`RedexError::GenerationOverflow`];
    /// [`RedexError::Io`] if compaction fails before its manifest flip (then
    /// nothing changed).
    pub fn sweep_retention(&self) -> Result<u64> {
        let mut state = self.inner.lock();
        if state.is_closed() {
            return Err(RedexError::Closed);
        }
        let cut = retention_cut(&state.entries, &self.inner.config.retention, now_ns());
        if cut == 0 {
            return Ok(0);
        }
        self.remove_prefix(&mut state, cut)?;
        Ok(cut as u64)
    }

    /// Rewrites a persistent file's live entries into a fresh generation
    /// (dropping bytes of entries that failed their checksum at recovery).
    /// A no-op for heap files.
    ///
    /// # Errors
    /// As [`sweep_retention`](Self::sweep_retention).
    pub fn compact(&self) -> Result<()> {
        let mut state = self.inner.lock();
        if state.is_closed() {
            return Err(RedexError::Closed);
        }
        if matches!(state.store, Store::Disk(_)) {
            self.remove_prefix(&mut state, 0)?;
        }
        Ok(())
    }

    fn remove_prefix(&self, state: &mut FileState, cut: usize) -> Result<()> {
        let removed_heap: u64 = state
            .entries
            .iter()
            .take(cut)
            .map(|e| match e.payload {
                PayloadLoc::Heap { len, .. } => u64::from(len),
                PayloadLoc::Inline(_) => 0,
            })
            .sum();
        let new_retained_from = state.entries.get(cut).map_or(state.next_seq, |e| e.seq);
        match &mut state.store {
            Store::Heap(heap) => {
                let keep_from = state
                    .entries
                    .iter()
                    .skip(cut)
                    .find_map(|e| match e.payload {
                        PayloadLoc::Heap { offset, .. } => Some(offset),
                        PayloadLoc::Inline(_) => None,
                    })
                    .unwrap_or(heap.end());
                heap.drop_before(keep_from);
                state.entries.drain(..cut);
            }
            Store::Disk(disk) => {
                let survivors: Vec<Entry> = state.entries.iter().skip(cut).copied().collect();
                let rebased = disk.compact_to(&survivors, state.next_seq)?;
                state.entries = rebased.into();
                state.unsynced_entries = 0;
                state.unsynced_bytes = 0;
            }
            Store::Closed => return Err(RedexError::Closed),
        }
        state.heap_bytes -= removed_heap;
        state.retained_from = state.retained_from.max(new_retained_from);
        self.inner.publish(state);
        self.inner.wake_all();
        Ok(())
    }

    /// A reader that delivers every entry from `from_seq` on, then follows
    /// new appends. Backfill of any length streams from the log; there is no
    /// handoff between backfill and live delivery, so nothing is skipped or
    /// repeated. Entries removed by retention before the reader reaches them
    /// are reported as [`super::TailItem::Lagged`], never skipped silently.
    pub fn tail(&self, from_seq: u64) -> RedexTail {
        RedexTail::new(self.inner.clone(), from_seq)
    }

    /// A reader of new appends only (from [`next_seq`](Self::next_seq) on).
    pub fn tail_live(&self) -> RedexTail {
        let from = self.inner.lock().next_seq;
        self.tail(from)
    }
}

fn close_inner(inner: &FileInner) -> Result<()> {
    let mut state = inner.lock();
    if state.is_closed() {
        return Ok(());
    }
    let result = sync_locked(inner, &mut state);
    state.store = Store::Closed;
    inner.closed.store(true, Ordering::Release);
    drop(state);
    inner.wake_all();
    result
}

impl Drop for FileInner {
    fn drop(&mut self) {
        if !self.is_closed()
            && let Err(e) = close_inner(self)
        {
            tracing::error!(file = %self.name, error = %e, "closing a dropped RedEX file failed");
        }
    }
}

impl fmt::Debug for RedexFile {
    /// Reads only lock-free mirrors: never takes the state lock, so it is safe
    /// to format a file while holding (or waiting for) that lock.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedexFile")
            .field("name", &self.inner.name)
            .field("persistent", &self.inner.config.persistent)
            .field(
                "next_seq_atomic",
                &self.inner.next_seq.load(Ordering::Acquire),
            )
            .field("entries", &self.inner.entry_count.load(Ordering::Acquire))
            .field("closed", &self.inner.closed.load(Ordering::Acquire))
            .field("poisoned", &self.inner.poisoned.load(Ordering::Acquire))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_acquire_state_lock() {
        let file = RedexFile::new_heap("debug/lock", RedexFileConfig::heap()).unwrap();
        file.append(b"x").unwrap();
        let held = file.inner.lock();
        // With the state lock held by this thread, a Debug that took it would
        // deadlock (or panic); it must read only the atomics.
        let text = format!("{file:?}");
        drop(held);
        assert!(text.contains("next_seq_atomic: 1"), "{text}");
    }

    #[test]
    fn new_heap_refuses_persistence_and_fsync() {
        assert!(matches!(
            RedexFile::new_heap("x", RedexFileConfig::persistent()),
            Err(RedexError::InvalidConfig(_))
        ));
        let mut config = RedexFileConfig::heap();
        config.fsync = FsyncPolicy::EveryN(1);
        assert!(matches!(
            RedexFile::new_heap("x", config),
            Err(RedexError::InvalidConfig(_))
        ));
    }

    #[test]
    fn heap_retention_frees_the_arena_prefix() {
        let config = RedexFileConfig::heap().with_retention(crate::redex::RetentionPolicy {
            max_events: Some(2),
            ..Default::default()
        });
        let file = RedexFile::new_heap("heap/ret", config).unwrap();
        for i in 0..5u8 {
            file.append(&[i; 100]).unwrap();
        }
        file.append_inline(b"inline!!").unwrap();
        assert_eq!(file.sweep_retention().unwrap(), 4);
        let state = file.inner.lock();
        let Store::Heap(heap) = &state.store else {
            panic!()
        };
        assert_eq!(
            heap.bytes.len(),
            100,
            "only the surviving heap payload stays in memory"
        );
        drop(state);
        assert_eq!(file.read(4).unwrap().unwrap(), vec![4; 100]);
        assert_eq!(file.read(5).unwrap().unwrap(), b"inline!!");
        assert_eq!(file.read(3).unwrap(), None);
    }
}
