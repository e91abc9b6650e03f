//! A channel's files on disk: opening and recovery (STORAGE.md §7.2), the
//! legacy flat-layout migration, the orphan sweep, appends with rollback, and
//! `compact_to` with its manifest flip (§9). See `docs/redex.md` for the crash
//! argument behind each step's order.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::entry::{Entry, PayloadLoc};
use super::error::{RedexError, Result};
use super::format::{
    DAT_FILE, Generation, IDX_FILE, IDX_RECORD_LEN, IdxRecord, MANIFEST_FILE, MANIFEST_TMP_FILE,
    Manifest, PayloadRef, TS_FILE, TS_RECORD_LEN, checksum28, decode_timestamps,
};
use super::recovery::{self, Decision, PayloadCheck, RecoveryReport};
use super::storage::{
    DirLock, DurableRenameError, EntryKind, Storage, StorageFile, durable_rename,
};

/// The three open files of a generation.
#[derive(Debug)]
struct GenFiles {
    idx: Box<dyn StorageFile>,
    dat: Box<dyn StorageFile>,
    ts: Box<dyn StorageFile>,
}

/// A channel's live generation, open for appending, with the channel
/// directory locked for as long as it lives.
#[derive(Debug)]
pub(crate) struct DiskStore {
    storage: Arc<dyn Storage>,
    channel_dir: PathBuf,
    generation: Generation,
    files: GenFiles,
    idx_len: u64,
    dat_len: u64,
    /// Bytes in the `ts` file (not counting `ts_pending`).
    ts_len: u64,
    /// Timestamps of appended entries not yet written to `ts` (see
    /// [`TS_FLUSH_BYTES`]).
    ts_pending: Vec<u8>,
    _lock: Box<dyn DirLock>,
}

/// Timestamps are written to `ts` in groups of this many bytes (128
/// entries), and at every sync, compaction and close, instead of with every
/// append: that saves one `write()` per append (about a third of its cost).
/// A process crash can lose the last few timestamps; recovery then stamps
/// those entries with the time of the open, which only makes them look
/// younger, so age retention can keep an entry longer but never drop it early.
/// Payload and index bytes are still written by every append.
pub(crate) const TS_FLUSH_BYTES: usize = 128 * TS_RECORD_LEN;

/// What opening a channel found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) store: DiskStore,
    pub(crate) entries: VecDeque<Entry>,
    pub(crate) next_seq: u64,
    pub(crate) report: RecoveryReport,
}

/// Suffix of a file being replaced by [`replace_file`].
const TMP_SUFFIX: &str = ".tmp";

/// An append that failed part-way.
#[derive(Debug)]
pub(crate) struct AppendFailure {
    pub(crate) op: &'static str,
    pub(crate) error: io::Error,
    /// Set when the rollback itself failed: the file must be poisoned.
    pub(crate) poison: Option<String>,
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> RedexError {
    move |source| RedexError::io(op, source)
}

fn is_file(storage: &dyn Storage, path: &Path) -> Result<bool> {
    Ok(storage.kind(path).map_err(io_err("stat"))? == Some(EntryKind::File))
}

fn generation_complete(storage: &dyn Storage, dir: &Path) -> Result<bool> {
    for name in [IDX_FILE, DAT_FILE, TS_FILE] {
        if !is_file(storage, &dir.join(name))? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Generation directories in `channel_dir`, highest first.
fn generations(storage: &dyn Storage, channel_dir: &Path) -> Result<Vec<Generation>> {
    let mut found: Vec<Generation> = storage
        .read_dir(channel_dir)
        .map_err(io_err("list channel directory"))?
        .into_iter()
        .filter(|e| e.kind == EntryKind::Dir)
        .filter_map(|e| Generation::from_dir_name(&e.name))
        .collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    Ok(found)
}

/// The atomic manifest update of STORAGE.md §3: write `manifest.tmp`, fsync
/// it, rename it over `manifest`, fsync the directory. A failure of that last
/// fsync is logged, not returned: the rename has happened, and the orphan
/// sweep of the next open converges whichever side of it survives.
pub(crate) fn write_manifest(
    storage: &dyn Storage,
    channel_dir: &Path,
    generation: Generation,
) -> Result<()> {
    let tmp = channel_dir.join(MANIFEST_TMP_FILE);
    let mut file = storage
        .create_truncate(&tmp)
        .map_err(io_err("create manifest.tmp"))?;
    file.append(&Manifest { generation }.encode())
        .map_err(io_err("write manifest.tmp"))?;
    file.sync().map_err(io_err("fsync manifest.tmp"))?;
    drop(file);
    match durable_rename(storage, &tmp, &channel_dir.join(MANIFEST_FILE)) {
        Ok(()) => Ok(()),
        Err(DurableRenameError::Rename(e)) => {
            Err(RedexError::io("rename manifest.tmp over manifest", e))
        }
        Err(DurableRenameError::SyncDir(e)) => {
            tracing::warn!(
                dir = %channel_dir.display(),
                error = %e,
                "fsync of the channel directory after the manifest flip failed; the flip \
                 happened and the next open converges on one generation either way"
            );
            Ok(())
        }
    }
}

/// Reads payloads from `dat` for verification, a megabyte at a time, since
/// records are nearly always laid out in order.
struct SequentialReader<'a> {
    file: &'a dyn StorageFile,
    len: u64,
    chunk_start: u64,
    chunk: Vec<u8>,
}

const READ_CHUNK: u64 = 1 << 20;

impl<'a> SequentialReader<'a> {
    fn new(file: &'a dyn StorageFile, len: u64) -> Self {
        Self {
            file,
            len,
            chunk_start: 0,
            chunk: Vec::new(),
        }
    }

    /// The 28-bit checksum of the `len` bytes at `offset`.
    fn checksum(&mut self, offset: u64, len: u32) -> io::Result<u32> {
        let end = offset + u64::from(len);
        if end > self.len {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        if offset < self.chunk_start || end > chunk_end {
            if u64::from(len) > READ_CHUNK {
                let mut buf = vec![0u8; len as usize];
                self.file.read_at(offset, &mut buf)?;
                return Ok(checksum28(&buf));
            }
            let size = READ_CHUNK.min(self.len - offset);
            self.chunk.resize(size as usize, 0);
            self.file.read_at(offset, &mut self.chunk)?;
            self.chunk_start = offset;
        }
        let from = (offset - self.chunk_start) as usize;
        Ok(checksum28(&self.chunk[from..from + len as usize]))
    }
}

impl DiskStore {
    /// Opens (creating or recovering) the channel in `channel_dir`; with
    /// `repair`, a generation missing its `idx` or `dat` is rebuilt from what
    /// can be proven instead of refused.
    ///
    /// # Errors
    /// [`RedexError::Locked`] when another writer holds the directory;
    /// [`RedexError::Corrupt`] when a file the live generation needs is
    /// missing (every file is left in place; open with `repair` to keep
    /// what can be proven); [`RedexError::Io`] for any storage failure.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        channel_dir: PathBuf,
        now_ns: u64,
        repair: bool,
    ) -> Result<Recovered> {
        let s = storage.as_ref();
        create_dir_durable(s, &channel_dir)?;
        let lock = s.lock_dir(&channel_dir).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                RedexError::Locked(channel_dir.clone())
            } else {
                RedexError::io("lock channel directory", e)
            }
        })?;
        let mut report = RecoveryReport::default();
        let generation = resolve_generation(s, &channel_dir, repair, &mut report)?;
        report.generation = generation.0;
        let gen_dir = channel_dir.join(generation.dir_name());
        remove_stale_temporaries(s, &gen_dir)?;

        // Whole idx records only: a shorter fragment is a torn write.
        let idx_path = gen_dir.join(IDX_FILE);
        let mut idx = s.open_append(&idx_path).map_err(io_err("open idx"))?;
        let idx_bytes = s.read_all(&idx_path).map_err(io_err("read idx"))?;
        let records = IdxRecord::decode_all(&idx_bytes);
        let whole = (records.len() * IDX_RECORD_LEN) as u64;
        if idx_bytes.len() as u64 != whole {
            report.torn_idx_bytes = idx_bytes.len() as u64 - whole;
            idx.truncate(whole)
                .map_err(io_err("truncate torn idx tail"))?;
            idx.sync().map_err(io_err("fsync idx"))?;
        }

        // Check every payload, then decide what each record is.
        let mut dat = s
            .open_append(&gen_dir.join(DAT_FILE))
            .map_err(io_err("open dat"))?;
        let dat_len = dat.len().map_err(io_err("stat dat"))?;
        let mut reader = SequentialReader::new(dat.as_ref(), dat_len);
        let checks = records
            .iter()
            .map(|record| check_payload(record, &mut reader))
            .collect::<Result<Vec<_>>>()?;
        drop(reader);
        let plan = recovery::plan(&records, &checks, generation == Generation::FIRST);

        // Timestamps, one per record where `ts` has them.
        let ts_path = gen_dir.join(TS_FILE);
        let ts_bytes = s.read_all(&ts_path).map_err(io_err("read ts"))?;
        let found_ts = TimestampsFound::new(&ts_bytes, &checks);
        let covered = ts_bytes.len() / TS_RECORD_LEN;

        let mut entries = VecDeque::with_capacity(records.len());
        // The replacement idx and ts, when records are dropped; otherwise only
        // the timestamps `ts` lacks (positions are unchanged then).
        let mut replacement = plan.rewrite.then(|| {
            (
                Vec::with_capacity(records.len() * IDX_RECORD_LEN),
                Vec::with_capacity(records.len() * TS_RECORD_LEN),
            )
        });
        let mut ts_missing = Vec::new();
        for (position, (record, decision)) in records.iter().zip(&plan.decisions).enumerate() {
            let kept = match *decision {
                Decision::Keep => *record,
                Decision::Hole(seq) => {
                    report.holes += 1;
                    recovery::hole_record(seq)
                }
                Decision::Remove => continue,
            };
            let ts = found_ts.at(position).unwrap_or_else(|| {
                report.timestamps_restored += 1;
                now_ns
            });
            if *decision == Decision::Keep {
                entries.push_back(Entry::from_record(record, ts));
            }
            match &mut replacement {
                Some((idx_bytes, ts_values)) => {
                    idx_bytes.extend_from_slice(&kept.encode());
                    ts_values.extend_from_slice(&ts.to_le_bytes());
                }
                None if position >= covered => ts_missing.extend_from_slice(&ts.to_le_bytes()),
                None => {}
            }
        }

        let ts = match replacement {
            Some((idx_bytes, ts_values)) => {
                // What was dropped must not come back: the index (and its
                // timestamps) are replaced atomically before anything else
                // changes and before the first new append.
                replace_file(s, &gen_dir, IDX_FILE, &idx_bytes)?;
                replace_file(s, &gen_dir, TS_FILE, &ts_values)?;
                idx = s.open_append(&idx_path).map_err(io_err("open idx"))?;
                report.index_rewritten = true;
                s.open_append(&ts_path).map_err(io_err("open ts"))?
            }
            None => {
                let mut ts = s.open_append(&ts_path).map_err(io_err("open ts"))?;
                if ts_bytes.len() != records.len() * TS_RECORD_LEN {
                    // Short (a crash lost the last group), long, or torn: keep
                    // the values it has, pad the rest, so later appends line up.
                    let keep = covered.min(records.len()) * TS_RECORD_LEN;
                    ts.truncate(keep as u64).map_err(io_err("truncate ts"))?;
                    ts.append(&ts_missing).map_err(io_err("pad ts"))?;
                    ts.sync().map_err(io_err("fsync ts"))?;
                }
                ts
            }
        };

        // No heap bytes past the last kept payload.
        let heap_end = entries
            .iter()
            .filter_map(|e| match e.payload {
                PayloadLoc::Heap { offset, len } => Some(offset + u64::from(len)),
                PayloadLoc::Inline(_) => None,
            })
            .max()
            .unwrap_or(0);
        let mut dat_len = dat_len;
        if heap_end < dat_len {
            report.dat_truncated_bytes = dat_len - heap_end;
            dat.truncate(heap_end)
                .map_err(io_err("truncate dat past the last record"))?;
            dat.sync().map_err(io_err("fsync dat"))?;
            dat_len = heap_end;
        }
        let ts_len = ts.len().map_err(io_err("stat ts"))?;
        let idx_len = idx.len().map_err(io_err("stat idx"))?;

        // Only the live generation survives an open.
        sweep_orphans(s, &channel_dir, generation)?;

        report.records = records.len() as u64;
        report.entries = entries.len() as u64;
        report.dropped = plan.dropped;
        if !report.is_clean() {
            tracing::warn!(
                dir = %gen_dir.display(),
                dropped = report.dropped.len(),
                seqs = ?report.dropped.iter().map(|d| d.seq).collect::<Vec<_>>(),
                torn_idx_bytes = report.torn_idx_bytes,
                dat_truncated_bytes = report.dat_truncated_bytes,
                timestamps_restored = report.timestamps_restored,
                notes = ?report.notes,
                "RedEX recovery changed the channel (see the file's recovery report)"
            );
        }
        Ok(Recovered {
            store: DiskStore {
                storage,
                channel_dir,
                generation,
                files: GenFiles { idx, dat, ts },
                idx_len,
                dat_len,
                ts_len,
                ts_pending: Vec::new(),
                _lock: lock,
            },
            entries,
            next_seq: plan.next_seq,
            report,
        })
    }

    /// The live generation.
    pub(crate) fn generation(&self) -> Generation {
        self.generation
    }

    /// Bytes in the live `dat`.
    pub(crate) fn dat_len(&self) -> u64 {
        self.dat_len
    }

    /// Appends one batch: all heap payloads to `dat` in one write, then all
    /// records to `idx` (STORAGE.md §7.1); the timestamps join the pending
    /// group, written to `ts` once it is full ([`TS_FLUSH_BYTES`]). On failure
    /// the files are truncated back; if that fails too, the failure says the
    /// file must be poisoned.
    pub(crate) fn append(
        &mut self,
        heap: &[u8],
        records: &[u8],
        timestamps: &[u8],
    ) -> Result<(), AppendFailure> {
        let before = (self.dat_len, self.idx_len, self.ts_len);
        let flush = self.ts_pending.len() + timestamps.len() >= TS_FLUSH_BYTES;
        let mut pending = std::mem::take(&mut self.ts_pending);
        let kept = pending.len();
        pending.extend_from_slice(timestamps);
        let written = write_step(&mut self.files.dat, "append to dat", heap)
            .and_then(|()| write_step(&mut self.files.idx, "append to idx", records))
            .and_then(|()| {
                if flush {
                    write_step(&mut self.files.ts, "append to ts", &pending)
                } else {
                    Ok(())
                }
            });
        if let Err((op, error)) = written {
            pending.truncate(kept);
            self.ts_pending = pending;
            let poison = self.rollback(before).err();
            return Err(AppendFailure { op, error, poison });
        }
        self.dat_len += heap.len() as u64;
        self.idx_len += records.len() as u64;
        if flush {
            self.ts_len += pending.len() as u64;
            pending.clear();
        }
        self.ts_pending = pending;
        Ok(())
    }

    fn rollback(&mut self, (dat, idx, ts): (u64, u64, u64)) -> Result<(), String> {
        let mut failures = Vec::new();
        for (name, file, len) in [
            ("dat", &mut self.files.dat, dat),
            ("idx", &mut self.files.idx, idx),
            ("ts", &mut self.files.ts, ts),
        ] {
            if let Err(e) = file.truncate(len) {
                failures.push(format!("truncate {name} to {len}: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "partial-write rollback could not restore on-disk state to match in-memory ({})",
                failures.join("; ")
            ))
        }
    }

    /// Reads `len` bytes at `offset` of the live `dat`.
    pub(crate) fn read(&self, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len as usize];
        self.files.dat.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Writes the pending timestamps, then fsyncs `dat`, `idx` and `ts`.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if !self.ts_pending.is_empty() {
            if let Err(e) = self.files.ts.append(&self.ts_pending) {
                // Keep ts whole records; the values stay pending.
                let _ = self.files.ts.truncate(self.ts_len);
                return Err(e);
            }
            self.ts_len += self.ts_pending.len() as u64;
            self.ts_pending.clear();
        }
        self.files.dat.sync()?;
        self.files.idx.sync()?;
        self.files.ts.sync()
    }

    /// Writes `survivors` to the next generation and makes it live
    /// (STORAGE.md §9): the new files in full, each fsynced, the new
    /// directory and the channel directory fsynced, then the manifest flip,
    /// the single linearizing step. Returns the survivors with rebased offsets.
    /// Before the flip a failure changes nothing; after it nothing can fail
    /// but the best-effort removal of the old generation.
    ///
    /// # Errors
    /// [`RedexError::GenerationOverflow`] at the last generation;
    /// [`RedexError::Io`] for a failure before the flip (nothing changed).
    pub(crate) fn compact_to(&mut self, survivors: &[Entry], next_seq: u64) -> Result<Vec<Entry>> {
        let next = self
            .generation
            .next()
            .ok_or(RedexError::GenerationOverflow)?;
        let s = self.storage.clone();
        let new_dir = self.channel_dir.join(next.dir_name());
        match self.write_generation(s.as_ref(), &new_dir, survivors, next_seq) {
            Ok((files, rebased, lens)) => {
                if let Err(e) = write_manifest(s.as_ref(), &self.channel_dir, next) {
                    discard_generation(s.as_ref(), &new_dir);
                    return Err(e);
                }
                let old_dir = self.channel_dir.join(self.generation.dir_name());
                self.files = files;
                (self.idx_len, self.dat_len, self.ts_len) = lens;
                // The new ts holds every survivor's timestamp.
                self.ts_pending.clear();
                self.generation = next;
                if let Err(e) = s.remove_dir_all(&old_dir) {
                    tracing::warn!(dir = %old_dir.display(), error = %e, "could not remove the old generation; the next open sweeps it");
                }
                Ok(rebased)
            }
            Err(e) => {
                discard_generation(s.as_ref(), &new_dir);
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn write_generation(
        &self,
        s: &dyn Storage,
        new_dir: &Path,
        survivors: &[Entry],
        next_seq: u64,
    ) -> Result<(GenFiles, Vec<Entry>, (u64, u64, u64))> {
        let dat_base = survivors
            .iter()
            .find_map(|e| match e.payload {
                PayloadLoc::Heap { offset, .. } => Some(offset),
                PayloadLoc::Inline(_) => None,
            })
            .unwrap_or(self.dat_len);
        let rebased: Vec<Entry> = survivors
            .iter()
            .map(|e| match e.payload {
                PayloadLoc::Heap { offset, len } => Entry {
                    payload: PayloadLoc::Heap {
                        offset: offset - dat_base,
                        len,
                    },
                    ..*e
                },
                PayloadLoc::Inline(_) => *e,
            })
            .collect();
        let (records, timestamps) = records_with_holes(&rebased, next_seq);
        let idx_bytes: Vec<u8> = records.iter().flat_map(IdxRecord::encode).collect();
        let ts_bytes: Vec<u8> = timestamps.iter().flat_map(|t| t.to_le_bytes()).collect();

        s.create_dir_all(new_dir)
            .map_err(io_err("create generation directory"))?;
        let mut idx = s
            .create_truncate(&new_dir.join(IDX_FILE))
            .map_err(io_err("create idx"))?;
        idx.append(&idx_bytes).map_err(io_err("write idx"))?;
        idx.sync().map_err(io_err("fsync idx"))?;

        let mut dat = s
            .create_truncate(&new_dir.join(DAT_FILE))
            .map_err(io_err("create dat"))?;
        let mut at = dat_base.min(self.dat_len);
        while at < self.dat_len {
            let n = (self.dat_len - at).min(READ_CHUNK);
            let mut chunk = vec![0u8; n as usize];
            self.files
                .dat
                .read_at(at, &mut chunk)
                .map_err(io_err("read dat"))?;
            dat.append(&chunk).map_err(io_err("write dat"))?;
            at += n;
        }
        dat.sync().map_err(io_err("fsync dat"))?;

        let mut ts = s
            .create_truncate(&new_dir.join(TS_FILE))
            .map_err(io_err("create ts"))?;
        ts.append(&ts_bytes).map_err(io_err("write ts"))?;
        ts.sync().map_err(io_err("fsync ts"))?;

        s.sync_dir(new_dir)
            .map_err(io_err("fsync generation directory"))?;
        // The new directory's own entry must be durable before the manifest
        // can point at it.
        s.sync_dir(&self.channel_dir)
            .map_err(io_err("fsync channel directory"))?;
        let lens = (
            idx_bytes.len() as u64,
            self.dat_len - dat_base.min(self.dat_len),
            ts_bytes.len() as u64,
        );
        Ok((GenFiles { idx, dat, ts }, rebased, lens))
    }
}

/// What a record's payload looks like: valid, a hole, or damaged.
fn check_payload(record: &IdxRecord, reader: &mut SequentialReader<'_>) -> Result<PayloadCheck> {
    if recovery::is_hole(record) {
        return Ok(PayloadCheck::Hole);
    }
    let matches = match record.payload {
        PayloadRef::Inline(bytes) => checksum28(&bytes) == record.checksum,
        PayloadRef::Heap { offset, len } => match reader.checksum(u64::from(offset), len) {
            Ok(checksum) => checksum == record.checksum,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(PayloadCheck::OutOfRange);
            }
            Err(e) => return Err(RedexError::io("read dat", e)),
        },
    };
    Ok(if matches {
        PayloadCheck::Valid
    } else {
        PayloadCheck::ChecksumMismatch
    })
}

/// The timestamp `ts` holds for each record, by position. A sidecar that
/// covers every record is read in order; one that holds exactly one value
/// per record whose payload checks out is Net v0.11's, rewritten after it
/// dropped the others (STORAGE.md §7.2 step 7), and is mapped back onto
/// those records; anything shorter is a prefix (a crash lost the rest).
enum TimestampsFound<'a> {
    /// Value `i` belongs to record `i` (for as many as there are).
    InOrder(&'a [u8]),
    /// v0.11's survivors-only sidecar, mapped back by position.
    Survivors(Vec<Option<u64>>),
}

impl<'a> TimestampsFound<'a> {
    fn new(ts_bytes: &'a [u8], checks: &[PayloadCheck]) -> Self {
        let n = checks.len();
        let valid = checks.iter().filter(|c| **c == PayloadCheck::Valid).count();
        if valid < n && ts_bytes.len() == valid * TS_RECORD_LEN {
            let mut values = decode_timestamps(ts_bytes, valid)
                .unwrap_or_default()
                .into_iter();
            return Self::Survivors(
                checks
                    .iter()
                    .map(|c| {
                        if *c == PayloadCheck::Valid {
                            values.next()
                        } else {
                            None
                        }
                    })
                    .collect(),
            );
        }
        Self::InOrder(ts_bytes)
    }

    fn at(&self, position: usize) -> Option<u64> {
        match self {
            Self::InOrder(bytes) => {
                let at = position.checked_mul(TS_RECORD_LEN)?;
                let value: [u8; TS_RECORD_LEN] =
                    bytes.get(at..at + TS_RECORD_LEN)?.try_into().ok()?;
                Some(u64::from_le_bytes(value))
            }
            Self::Survivors(values) => values.get(position).copied().flatten(),
        }
    }
}

/// Replaces `gen_dir/name` with `bytes` atomically: write `name.tmp`, fsync
/// it, rename it over `name`, fsync the directory. A crash leaves the old
/// file or the new one, and at worst a stale `.tmp` the next open removes.
fn replace_file(s: &dyn Storage, gen_dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = gen_dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = s
        .create_truncate(&tmp)
        .map_err(io_err("create replacement file"))?;
    if !bytes.is_empty() {
        file.append(bytes)
            .map_err(io_err("write replacement file"))?;
    }
    file.sync().map_err(io_err("fsync replacement file"))?;
    drop(file);
    durable_rename(s, &tmp, &gen_dir.join(name)).map_err(|e| match e {
        DurableRenameError::Rename(e) => RedexError::io("rename replacement file", e),
        DurableRenameError::SyncDir(e) => RedexError::io("fsync generation directory", e),
    })
}

/// Removes `idx.tmp` / `ts.tmp` left by a [`replace_file`] a crash
/// interrupted (the rename did not happen, so the old file is still live).
fn remove_stale_temporaries(s: &dyn Storage, gen_dir: &Path) -> Result<()> {
    for name in [IDX_FILE, TS_FILE] {
        let tmp = gen_dir.join(format!("{name}{TMP_SUFFIX}"));
        if is_file(s, &tmp)? {
            s.remove_file(&tmp)
                .map_err(io_err("remove a stale replacement file"))?;
        }
    }
    Ok(())
}

/// The index records of a new generation holding `entries`, with the hole
/// records that keep every missing seq accounted for: a gap between two
/// entries (seqs dropped at an earlier recovery) is marked at both of its
/// ends, so each entry next to it stays corroborated by a neighbour, and seqs
/// handed out after the last entry up to `next_seq` are marked by the last
/// two, so reopening the generation gives the same `next_seq`, also when no
/// entry survives (then the last three); the two seqs before the first entry
/// are holes too. Each hole takes its neighbouring entry's timestamp.
fn records_with_holes(entries: &[Entry], next_seq: u64) -> (Vec<IdxRecord>, Vec<u64>) {
    let mut out = (
        Vec::with_capacity(entries.len() + 4),
        Vec::with_capacity(entries.len() + 4),
    );
    fn push_holes(into: &mut (Vec<IdxRecord>, Vec<u64>), first: u64, last: u64, ts: u64) {
        let mut seqs = vec![first, last.saturating_sub(1).max(first), last];
        seqs.dedup();
        for seq in seqs {
            into.0.push(recovery::hole_record(seq));
            into.1.push(ts);
        }
    }
    // Two leading holes vouch for the first entry, so a damaged seq in any
    // one of the three is outvoted by the other two, even when the entry is
    // the only one.
    if let Some(first) = entries.first() {
        for seq in first.seq.saturating_sub(2)..first.seq {
            out.0.push(recovery::hole_record(seq));
            out.1.push(first.ts);
        }
    }
    let mut previous: Option<&Entry> = None;
    for entry in entries {
        if let Some(prev) = previous
            && entry.seq > prev.seq + 1
        {
            push_holes(&mut out, prev.seq + 1, entry.seq - 1, prev.ts);
        }
        out.0.push(entry.to_record());
        out.1.push(entry.ts);
        previous = Some(entry);
    }
    let next_expected = previous.map_or(0, |e| e.seq + 1);
    if next_seq > next_expected {
        let ts = previous.map_or(0, |e| e.ts);
        if previous.is_some() {
            push_holes(&mut out, next_expected, next_seq - 1, ts);
        } else {
            // No entry: the last three seqs, so one damaged seq is outvoted.
            for seq in next_seq.saturating_sub(3)..next_seq {
                out.0.push(recovery::hole_record(seq));
                out.1.push(ts);
            }
        }
    }
    out
}

fn write_step(
    file: &mut Box<dyn StorageFile>,
    op: &'static str,
    bytes: &[u8],
) -> std::result::Result<(), (&'static str, io::Error)> {
    if bytes.is_empty() {
        return Ok(());
    }
    file.append(bytes).map_err(|e| (op, e))
}

fn discard_generation(s: &dyn Storage, dir: &Path) {
    if let Ok(Some(_)) = s.kind(dir)
        && let Err(e) = s.remove_dir_all(dir)
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove an abandoned generation; the next open sweeps it");
    }
}

/// Creates `dir` and any missing ancestors, and makes each new directory
/// entry durable by syncing its parent: a directory created without that can
/// vanish in a power cut with everything later written inside it.
fn create_dir_durable(s: &dyn Storage, dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut probe = Some(dir);
    while let Some(path) = probe {
        if s.kind(path).map_err(io_err("stat"))?.is_some() {
            break;
        }
        missing.push(path);
        probe = path.parent();
    }
    if missing.is_empty() {
        return Ok(());
    }
    s.create_dir_all(dir)
        .map_err(io_err("create channel directory"))?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent() {
            s.sync_dir(parent)
                .map_err(io_err("fsync parent directory"))?;
        }
    }
    Ok(())
}

/// Which of a generation's files are missing, and whether any that is
/// there holds data.
struct GenerationFiles {
    missing: Vec<&'static str>,
    has_data: bool,
}

fn generation_files(s: &dyn Storage, dir: &Path) -> Result<GenerationFiles> {
    let mut missing = Vec::new();
    let mut has_data = false;
    for name in [IDX_FILE, DAT_FILE, TS_FILE] {
        let path = dir.join(name);
        if is_file(s, &path)? {
            // Only idx and dat hold entries; ts alone is just timestamps.
            if name != TS_FILE {
                let len = s
                    .open_append(&path)
                    .and_then(|f| f.len())
                    .map_err(io_err("stat"))?;
                has_data |= len > 0;
            }
        } else {
            missing.push(name);
        }
    }
    Ok(GenerationFiles { missing, has_data })
}

fn missing_file_error(dir: &Path, generation: Generation, missing: &[&str]) -> RedexError {
    let name = missing
        .iter()
        .find(|n| **n != TS_FILE)
        .copied()
        .unwrap_or(TS_FILE);
    RedexError::Corrupt {
        path: dir.join(name),
        reason: format!(
            "generation {generation} holds entries but its {name} is missing; nothing was \
             changed (open with repair to keep what can be proven)"
        ),
    }
}

/// Step 1 of recovery: which generation is live. Unlike Net v0.11, a live
/// generation that lost its `idx` or `dat` is an error (or, with `repair`,
/// rebuilt from what is left), never replaced by an empty one; a missing `ts`
/// only costs timestamps.
fn resolve_generation(
    s: &dyn Storage,
    channel_dir: &Path,
    repair: bool,
    report: &mut RecoveryReport,
) -> Result<Generation> {
    let manifest_path = channel_dir.join(MANIFEST_FILE);
    if is_file(s, &manifest_path)? {
        let bytes = s
            .read_all(&manifest_path)
            .map_err(io_err("read manifest"))?;
        match Manifest::decode(&bytes) {
            Ok(m) => {
                let dir = channel_dir.join(m.generation.dir_name());
                let exists = s.kind(&dir).map_err(io_err("stat"))? == Some(EntryKind::Dir);
                if exists {
                    let files = generation_files(s, &dir)?;
                    if files.missing.is_empty() {
                        return Ok(m.generation);
                    }
                    if files.missing == [TS_FILE] || !files.has_data || repair {
                        note_completion(report, m.generation, &files, repair);
                        complete_generation(s, channel_dir, &dir, m.generation)?;
                        return Ok(m.generation);
                    }
                    return Err(missing_file_error(&dir, m.generation, &files.missing));
                }
                if !repair {
                    return Err(RedexError::Corrupt {
                        path: dir,
                        reason: format!(
                            "the manifest names generation {}, whose directory is missing; \
                             nothing was changed (open with repair to fall back to the newest \
                             complete generation)",
                            m.generation
                        ),
                    });
                }
                report.repaired = true;
                report.notes.push(format!(
                    "repair: the manifest named generation {}, whose directory was missing",
                    m.generation
                ));
            }
            Err(e) => {
                report
                    .notes
                    .push(format!("the manifest was invalid ({e}) and was rewritten"));
            }
        }
    }
    for generation in generations(s, channel_dir)? {
        if generation_complete(s, &channel_dir.join(generation.dir_name()))? {
            write_manifest(s, channel_dir, generation)?;
            return Ok(generation);
        }
    }
    let legacy = [IDX_FILE, DAT_FILE, TS_FILE]
        .iter()
        .map(|name| is_file(s, &channel_dir.join(name)))
        .collect::<Result<Vec<bool>>>()?;
    if legacy.iter().any(|present| *present) {
        migrate_legacy(s, channel_dir)?;
        return Ok(Generation::FIRST);
    }
    // No complete generation. One that holds data lost a file; one that
    // holds none is a channel whose creation was interrupted.
    for generation in generations(s, channel_dir)? {
        let dir = channel_dir.join(generation.dir_name());
        let files = generation_files(s, &dir)?;
        if files.has_data {
            if !repair {
                return Err(missing_file_error(&dir, generation, &files.missing));
            }
            note_completion(report, generation, &files, repair);
            complete_generation(s, channel_dir, &dir, generation)?;
            return Ok(generation);
        }
    }
    create_first_generation(s, channel_dir)?;
    Ok(Generation::FIRST)
}

fn note_completion(
    report: &mut RecoveryReport,
    generation: Generation,
    files: &GenerationFiles,
    repair: bool,
) {
    for name in &files.missing {
        let consequence = match *name {
            IDX_FILE if files.has_data => {
                report.repaired = repair;
                "repair: idx was missing, so no entry can be proven; the channel restarts empty"
            }
            DAT_FILE if files.has_data => {
                report.repaired = repair;
                "repair: dat was missing; every heap entry is dropped, inline entries are kept"
            }
            TS_FILE => {
                "ts was missing and was recreated; entries are stamped with the time of this open"
            }
            _ => "an empty generation file was missing and was recreated",
        };
        report
            .notes
            .push(format!("generation {generation}: {consequence}"));
    }
}

/// Moves a flat `<channel>/{idx,dat,ts}` into `v0000000001/` and points the
/// manifest at it. Each file is renamed before any missing one is created, so
/// an interrupted migration never leaves a complete generation that lacks a
/// legacy file; re-running it finishes the job.
fn migrate_legacy(s: &dyn Storage, channel_dir: &Path) -> Result<()> {
    let first = channel_dir.join(Generation::FIRST.dir_name());
    tracing::info!(dir = %channel_dir.display(), "migrating a legacy flat RedEX layout to generation 1");
    s.create_dir_all(&first)
        .map_err(io_err("create generation directory"))?;
    for name in [IDX_FILE, DAT_FILE, TS_FILE] {
        let from = channel_dir.join(name);
        if is_file(s, &from)? {
            s.rename(&from, &first.join(name))
                .map_err(io_err("move legacy file"))?;
        }
    }
    complete_generation(s, channel_dir, &first, Generation::FIRST)
}

fn create_first_generation(s: &dyn Storage, channel_dir: &Path) -> Result<()> {
    let first = channel_dir.join(Generation::FIRST.dir_name());
    s.create_dir_all(&first)
        .map_err(io_err("create generation directory"))?;
    complete_generation(s, channel_dir, &first, Generation::FIRST)
}

/// Creates whichever of idx/dat/ts is missing in `gen_dir`, makes the
/// directory durable, and points the manifest at `generation`.
fn complete_generation(
    s: &dyn Storage,
    channel_dir: &Path,
    gen_dir: &Path,
    generation: Generation,
) -> Result<()> {
    for name in [IDX_FILE, DAT_FILE, TS_FILE] {
        let path = gen_dir.join(name);
        if !is_file(s, &path)? {
            let file = s
                .open_append(&path)
                .map_err(io_err("create generation file"))?;
            file.sync().map_err(io_err("fsync generation file"))?;
        }
    }
    s.sync_dir(gen_dir)
        .map_err(io_err("fsync generation directory"))?;
    s.sync_dir(channel_dir)
        .map_err(io_err("fsync channel directory"))?;
    write_manifest(s, channel_dir, generation)
}

/// Removes every generation directory but `live`, and a stale `manifest.tmp`
/// (best effort). Other entries (child channels' directories) are left alone.
fn sweep_orphans(s: &dyn Storage, channel_dir: &Path, live: Generation) -> Result<()> {
    for generation in generations(s, channel_dir)? {
        if generation != live {
            let dir = channel_dir.join(generation.dir_name());
            tracing::info!(dir = %dir.display(), "removing an orphan generation");
            if let Err(e) = s.remove_dir_all(&dir) {
                // Harmless: the manifest names the live generation, and the
                // next open tries again.
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove an orphan generation");
            }
        }
    }
    let tmp = channel_dir.join(MANIFEST_TMP_FILE);
    if is_file(s, &tmp)?
        && let Err(e) = s.remove_file(&tmp)
    {
        tracing::warn!(path = %tmp.display(), error = %e, "could not remove a stale manifest.tmp");
    }
    Ok(())
}
