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
}

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

    fn read(&mut self, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        let end = offset + u64::from(len);
        if end > self.len {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        if offset < self.chunk_start || end > chunk_end {
            if u64::from(len) > READ_CHUNK {
                let mut buf = vec![0u8; len as usize];
                self.file.read_at(offset, &mut buf)?;
                return Ok(buf);
            }
            let size = READ_CHUNK.min(self.len - offset);
            self.chunk.resize(size as usize, 0);
            self.file.read_at(offset, &mut self.chunk)?;
            self.chunk_start = offset;
        }
        let from = (offset - self.chunk_start) as usize;
        Ok(self.chunk[from..from + len as usize].to_vec())
    }
}

impl DiskStore {
    /// Opens (creating or recovering) the channel in `channel_dir`.
    ///
    /// # Errors
    /// [`RedexError::Locked`] when another writer holds the directory;
    /// [`RedexError::Io`] for any storage failure.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        channel_dir: PathBuf,
        now_ns: u64,
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
        let generation = resolve_generation(s, &channel_dir)?;
        let gen_dir = channel_dir.join(generation.dir_name());

        // Step 2: whole idx records only.
        let mut idx = s
            .open_append(&gen_dir.join(IDX_FILE))
            .map_err(io_err("open idx"))?;
        let idx_bytes = s
            .read_all(&gen_dir.join(IDX_FILE))
            .map_err(io_err("read idx"))?;
        let mut records = IdxRecord::decode_all(&idx_bytes);
        let whole = (records.len() * IDX_RECORD_LEN) as u64;
        if idx_bytes.len() as u64 != whole {
            idx.truncate(whole)
                .map_err(io_err("truncate torn idx tail"))?;
            idx.sync().map_err(io_err("fsync idx"))?;
        }

        // Steps 3-4: drop a torn tail of heap records pointing past dat.
        let mut dat = s
            .open_append(&gen_dir.join(DAT_FILE))
            .map_err(io_err("open dat"))?;
        let dat_len = dat.len().map_err(io_err("stat dat"))?;
        let mut cut = None;
        for (i, record) in records.iter().enumerate().rev() {
            match record.payload.heap_end() {
                None => continue,
                Some(end) if end > dat_len => cut = Some(i),
                Some(_) => break,
            }
        }
        if let Some(cut) = cut {
            tracing::warn!(
                dir = %gen_dir.display(),
                dropped = records.len() - cut,
                "recovery: dropping a torn tail of index records"
            );
            records.truncate(cut);
            idx.truncate((cut * IDX_RECORD_LEN) as u64)
                .map_err(io_err("truncate idx to the torn tail"))?;
            idx.sync().map_err(io_err("fsync idx"))?;
        }

        // Step 5: no heap bytes past the last record.
        let heap_end = records
            .iter()
            .filter_map(|r| r.payload.heap_end())
            .max()
            .unwrap_or(0);
        let mut dat_len = dat_len;
        if heap_end < dat_len {
            dat.truncate(heap_end)
                .map_err(io_err("truncate dat past the last record"))?;
            dat.sync().map_err(io_err("fsync dat"))?;
            dat_len = heap_end;
        }

        // Step 6: timestamps, if the sidecar covers every record. Unlike
        // v0.11 (which then stamps every entry "now"), a short sidecar keeps
        // the values it has and only the uncovered tail gets "now" (see
        // TS_FLUSH_BYTES); the file is padded to match below.
        let ts_path = gen_dir.join(TS_FILE);
        let ts_bytes = s.read_all(&ts_path).map_err(io_err("read ts"))?;
        let timestamps = decode_timestamps(&ts_bytes, records.len());
        let covered = ts_bytes.len() / TS_RECORD_LEN;
        let partial = (covered < records.len())
            .then(|| decode_timestamps(&ts_bytes, covered).unwrap_or_default());

        // Step 7: checksum filter (memory only; idx and dat stay as they are),
        // plus one check the reference lacks: seqs must increase.
        let mut reader = SequentialReader::new(dat.as_ref(), dat_len);
        let mut entries = VecDeque::with_capacity(records.len());
        let mut kept_ts = Vec::with_capacity(records.len());
        let mut dropped = 0usize;
        for (i, record) in records.iter().enumerate() {
            let valid = match record.payload {
                PayloadRef::Inline(bytes) => checksum28(&bytes) == record.checksum,
                PayloadRef::Heap { offset, len } => match reader.read(u64::from(offset), len) {
                    Ok(bytes) => checksum28(&bytes) == record.checksum,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => false,
                    Err(e) => return Err(RedexError::io("read dat", e)),
                },
            };
            if !valid {
                tracing::warn!(dir = %gen_dir.display(), seq = record.seq, "recovery: dropping an entry whose checksum does not match");
                dropped += 1;
                continue;
            }
            // Net never writes seqs out of order; a record that does not
            // increase the sequence is corrupt and is dropped like one.
            if entries
                .back()
                .is_some_and(|last: &Entry| record.seq <= last.seq)
            {
                tracing::warn!(dir = %gen_dir.display(), seq = record.seq, "recovery: dropping an entry whose seq does not increase");
                dropped += 1;
                continue;
            }
            let ts = match (&timestamps, &partial) {
                (Some(all), _) => all[i],
                (None, Some(prefix)) => prefix.get(i).copied().unwrap_or(now_ns),
                (None, None) => now_ns,
            };
            kept_ts.push(ts);
            entries.push_back(Entry::from_record(record, ts));
        }
        drop(reader);
        let mut ts = s.open_append(&ts_path).map_err(io_err("open ts"))?;
        if timestamps.is_some() {
            let wanted = (entries.len() * TS_RECORD_LEN) as u64;
            if dropped > 0 {
                let mut rewritten = s.create_truncate(&ts_path).map_err(io_err("rewrite ts"))?;
                let bytes: Vec<u8> = kept_ts.iter().flat_map(|t| t.to_le_bytes()).collect();
                rewritten.append(&bytes).map_err(io_err("rewrite ts"))?;
                rewritten.sync().map_err(io_err("fsync ts"))?;
                ts = rewritten;
            } else if ts_bytes.len() as u64 > wanted {
                ts.truncate(wanted).map_err(io_err("truncate ts"))?;
                ts.sync().map_err(io_err("fsync ts"))?;
            }
        } else if partial.is_some() && dropped == 0 {
            // Pad the sidecar to one value per record, so later appends line
            // up with their records again.
            let whole = (covered * TS_RECORD_LEN) as u64;
            if ts_bytes.len() as u64 != whole {
                ts.truncate(whole).map_err(io_err("truncate ts"))?;
            }
            let padding: Vec<u8> = entries
                .iter()
                .skip(covered)
                .flat_map(|e| e.ts.to_le_bytes())
                .collect();
            ts.append(&padding).map_err(io_err("pad ts"))?;
            ts.sync().map_err(io_err("fsync ts"))?;
        }
        let ts_len = ts.len().map_err(io_err("stat ts"))?;
        let idx_len = idx.len().map_err(io_err("stat idx"))?;

        // Step 9: only the live generation survives an open.
        sweep_orphans(s, &channel_dir, generation)?;

        let next_seq = entries.back().map_or(0, |e| e.seq + 1);
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
            next_seq,
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
    pub(crate) fn compact_to(&mut self, survivors: &[Entry]) -> Result<Vec<Entry>> {
        let next = self
            .generation
            .next()
            .ok_or(RedexError::GenerationOverflow)?;
        let s = self.storage.clone();
        let new_dir = self.channel_dir.join(next.dir_name());
        match self.write_generation(s.as_ref(), &new_dir, survivors) {
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
        let idx_bytes: Vec<u8> = rebased
            .iter()
            .flat_map(|e| e.to_record().encode())
            .collect();
        let ts_bytes: Vec<u8> = rebased.iter().flat_map(|e| e.ts.to_le_bytes()).collect();

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

/// Step 1 of recovery: which generation is live.
fn resolve_generation(s: &dyn Storage, channel_dir: &Path) -> Result<Generation> {
    let manifest_path = channel_dir.join(MANIFEST_FILE);
    if is_file(s, &manifest_path)? {
        let bytes = s
            .read_all(&manifest_path)
            .map_err(io_err("read manifest"))?;
        match Manifest::decode(&bytes) {
            Ok(m) if generation_complete(s, &channel_dir.join(m.generation.dir_name()))? => {
                return Ok(m.generation);
            }
            Ok(m) => {
                tracing::warn!(dir = %channel_dir.display(), generation = m.generation.0, "manifest names an incomplete generation")
            }
            Err(e) => {
                tracing::warn!(dir = %channel_dir.display(), error = %e, "manifest is invalid")
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
    } else {
        create_first_generation(s, channel_dir)?;
    }
    Ok(Generation::FIRST)
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
    complete_generation(s, channel_dir, &first)
}

fn create_first_generation(s: &dyn Storage, channel_dir: &Path) -> Result<()> {
    let first = channel_dir.join(Generation::FIRST.dir_name());
    s.create_dir_all(&first)
        .map_err(io_err("create generation directory"))?;
    complete_generation(s, channel_dir, &first)
}

/// Creates whichever of idx/dat/ts is missing in `gen_dir`, makes the
/// directory durable, and points the manifest at generation 1.
fn complete_generation(s: &dyn Storage, channel_dir: &Path, gen_dir: &Path) -> Result<()> {
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
    write_manifest(s, channel_dir, Generation::FIRST)
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
