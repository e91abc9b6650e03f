//! A read-only view of a RedEX channel directory (STORAGE.md §2–6).
//!
//! Opening a channel through `net::redex::Redex` runs recovery, which may
//! rewrite files, and takes the single-writer lock; an inspection tool must
//! do neither (the directory may belong to a running writer, or be the
//! evidence of a crash). This module only reads: it finds the live
//! generation the way recovery would, decodes the records with the
//! library's codecs (`net::redex::format`) and checks payloads on demand.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use net::redex::format::{
    CHECKSUM_MASK, DAT_FILE, FLAG_TOMBSTONE, Generation, IDX_FILE, IDX_RECORD_LEN, INLINE_LEN,
    IdxRecord, MANIFEST_FILE, MANIFEST_LEN, MANIFEST_TMP_FILE, Manifest, ManifestError, PayloadRef,
    TS_FILE, TS_RECORD_LEN, checksum28,
};

use crate::error::{CliError, Context, Result};

/// A channel found under a base directory.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Its name (`a/b`), or `.` for a channel directory given directly.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file())
}

/// Whether `dir` holds a channel: a manifest, a generation directory, or
/// the legacy flat files.
pub fn is_channel_dir(dir: &Path) -> bool {
    if is_file(&dir.join(MANIFEST_FILE)) || is_file(&dir.join(IDX_FILE)) {
        return true;
    }
    !generations(dir).unwrap_or_default().is_empty()
}

/// The generation directories of a channel directory, ascending.
pub fn generations(dir: &Path) -> Result<Vec<Generation>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).context(format!("listing {}", dir.display()))? {
        let entry = entry.context(format!("listing {}", dir.display()))?;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if let (true, Some(name)) = (is_dir, entry.file_name().to_str()) {
            found.extend(Generation::from_dir_name(name));
        }
    }
    found.sort();
    Ok(found)
}

/// Every channel under `base` (itself included), sorted by name.
///
/// # Errors
/// `base` cannot be listed.
pub fn find_channels(base: &Path) -> Result<Vec<Channel>> {
    if !base.is_dir() {
        return Err(CliError::new(format!(
            "{}: not a directory",
            base.display()
        )));
    }
    let mut out = Vec::new();
    walk(base, base, &mut out)?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<Channel>) -> Result<()> {
    if is_channel_dir(dir) {
        out.push(Channel {
            name: channel_name(base, dir),
            dir: dir.to_path_buf(),
        });
    }
    for entry in fs::read_dir(dir).context(format!("listing {}", dir.display()))? {
        let entry = entry.context(format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let is_generation = name.to_str().and_then(Generation::from_dir_name).is_some();
        if entry.file_type().is_ok_and(|t| t.is_dir()) && !is_generation {
            walk(base, &entry.path(), out)?;
        }
    }
    Ok(())
}

fn channel_name(base: &Path, dir: &Path) -> String {
    let relative = dir.strip_prefix(base).unwrap_or(dir);
    let parts: Vec<_> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// The channel a command works on: `base/channel` when a channel is named,
/// `base` itself when it is a channel directory, or the only channel under
/// `base`.
///
/// # Errors
/// No channel there, or several and none named.
pub fn resolve_channel(base: &Path, channel: Option<&str>) -> Result<Channel> {
    if let Some(name) = channel {
        net::identity::validate_channel_name(name)
            .map_err(|e| CliError::new(format!("channel {name:?}: {e}")))?;
        let dir = name.split('/').fold(base.to_path_buf(), |p, s| p.join(s));
        if !dir.is_dir() || !is_channel_dir(&dir) {
            return Err(CliError::new(format!(
                "no RedEX channel {name:?} under {}",
                base.display()
            )));
        }
        return Ok(Channel {
            name: name.to_owned(),
            dir,
        });
    }
    let mut channels = find_channels(base)?;
    match channels.len() {
        0 => Err(CliError::new(format!(
            "no RedEX channel under {}",
            base.display()
        ))),
        1 => Ok(channels.remove(0)),
        n => {
            let names: Vec<_> = channels.iter().map(|c| c.name.as_str()).collect();
            Err(CliError::new(format!(
                "{n} channels under {}; name one of: {}",
                base.display(),
                names.join(", ")
            )))
        }
    }
}

/// What the manifest says.
#[derive(Debug, Clone)]
pub enum ManifestState {
    /// There is no manifest file.
    Missing,
    /// The manifest does not decode.
    Invalid(ManifestError),
    /// The manifest names this generation.
    Valid(Generation),
}

/// Where the live files were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveSource {
    /// The generation the manifest names.
    Manifest,
    /// The highest complete generation (the manifest is missing, invalid
    /// or names an incomplete one): what recovery would adopt.
    Highest,
    /// The pre-v0.11 flat layout (files directly in the channel directory).
    Legacy,
    /// The generation the manifest names, although it is incomplete.
    Incomplete,
}

/// One file's length, or `None` when it is missing.
#[derive(Debug, Clone, Copy)]
pub struct FileLen(pub Option<u64>);

/// The files of the live generation.
#[derive(Debug)]
pub struct Live {
    /// The generation (`None` for the legacy layout).
    pub generation: Option<Generation>,
    /// How it was chosen.
    pub source: LiveSource,
    /// The directory holding `idx`, `dat` and `ts`.
    pub dir: PathBuf,
    /// Length of `idx`.
    pub idx_len: FileLen,
    /// Length of `dat`.
    pub dat_len: FileLen,
    /// Length of `ts`.
    pub ts_len: FileLen,
    /// Every whole record of `idx`, in file order.
    pub records: Vec<IdxRecord>,
    /// The timestamps `ts` holds (at most one per record).
    pub timestamps: Vec<u64>,
}

impl Live {
    /// Path of a file of the live generation.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The timestamp of the record at `position`, when `ts` has it.
    pub fn timestamp(&self, position: usize) -> Option<u64> {
        self.timestamps.get(position).copied()
    }

    /// Opens `dat` for payload reads.
    ///
    /// # Errors
    /// `dat` exists but cannot be opened.
    pub fn open_dat(&self) -> Result<Dat> {
        Dat::open(&self.path(DAT_FILE))
    }
}

/// A snapshot of one channel directory.
#[derive(Debug)]
pub struct Snapshot {
    /// The channel.
    pub channel: Channel,
    /// The manifest.
    pub manifest: ManifestState,
    /// Every generation directory present, ascending.
    pub generations: Vec<Generation>,
    /// Whether a `manifest.tmp` is present.
    pub manifest_tmp: bool,
    /// The live files (`None` for an empty, never-written channel).
    pub live: Option<Live>,
}

fn file_len(path: &Path) -> Result<FileLen> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(FileLen(Some(m.len()))),
        Ok(_) => Ok(FileLen(None)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileLen(None)),
        Err(e) => Err(CliError::new(format!("{}: {e}", path.display()))),
    }
}

fn read_optional(path: &Path) -> Result<Vec<u8>> {
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(CliError::new(format!("reading {}: {e}", path.display()))),
    }
}

fn is_complete(dir: &Path) -> bool {
    [IDX_FILE, DAT_FILE, TS_FILE]
        .iter()
        .all(|name| is_file(&dir.join(name)))
}

/// Decodes the timestamps of a `ts` file, at most `max` of them.
fn decode_ts(bytes: &[u8], max: usize) -> Vec<u64> {
    bytes
        .chunks_exact(TS_RECORD_LEN)
        .take(max)
        .map(|c| {
            let mut word = [0u8; TS_RECORD_LEN];
            word.copy_from_slice(c);
            u64::from_le_bytes(word)
        })
        .collect()
}

impl Snapshot {
    /// Reads `channel`'s directory. Changes nothing.
    ///
    /// # Errors
    /// A file that exists cannot be read.
    pub fn read(channel: Channel) -> Result<Self> {
        let dir = &channel.dir;
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = if is_file(&manifest_path) {
            let bytes =
                fs::read(&manifest_path).context(format!("reading {}", manifest_path.display()))?;
            match Manifest::decode(&bytes) {
                Ok(m) => ManifestState::Valid(m.generation),
                Err(e) => ManifestState::Invalid(e),
            }
        } else {
            ManifestState::Missing
        };
        let generations = generations(dir)?;
        let manifest_tmp = dir.join(MANIFEST_TMP_FILE).exists();
        let chosen = match &manifest {
            ManifestState::Valid(g) if is_complete(&dir.join(g.dir_name())) => {
                Some((Some(*g), LiveSource::Manifest))
            }
            _ => None,
        };
        let chosen = chosen.or_else(|| {
            generations
                .iter()
                .rev()
                .find(|g| is_complete(&dir.join(g.dir_name())))
                .map(|g| (Some(*g), LiveSource::Highest))
        });
        let chosen = chosen.or_else(|| {
            if is_file(&dir.join(IDX_FILE)) {
                Some((None, LiveSource::Legacy))
            } else if let ManifestState::Valid(g) = &manifest {
                dir.join(g.dir_name())
                    .is_dir()
                    .then_some((Some(*g), LiveSource::Incomplete))
            } else {
                None
            }
        });
        let live = match chosen {
            None => None,
            Some((generation, source)) => {
                let live_dir = generation.map_or_else(|| dir.clone(), |g| dir.join(g.dir_name()));
                let idx = read_optional(&live_dir.join(IDX_FILE))?;
                let records = IdxRecord::decode_all(&idx);
                let ts = read_optional(&live_dir.join(TS_FILE))?;
                Some(Live {
                    generation,
                    source,
                    idx_len: file_len(&live_dir.join(IDX_FILE))?,
                    dat_len: file_len(&live_dir.join(DAT_FILE))?,
                    ts_len: file_len(&live_dir.join(TS_FILE))?,
                    timestamps: decode_ts(&ts, records.len()),
                    records,
                    dir: live_dir,
                })
            }
        };
        Ok(Self {
            channel,
            manifest,
            generations,
            manifest_tmp,
            live,
        })
    }

    /// The records, or none for an empty channel.
    pub fn records(&self) -> &[IdxRecord] {
        self.live.as_ref().map_or(&[], |l| l.records.as_slice())
    }
}

/// The payload bytes of a generation.
#[derive(Debug)]
pub struct Dat {
    file: Option<File>,
    len: u64,
}

/// What checking one record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The payload matches its checksum.
    Valid(Vec<u8>),
    /// A hole record (a seq kept by recovery or compaction, no entry).
    Hole,
    /// The payload does not match: its checksum is `actual`.
    Mismatch {
        /// The payload's checksum.
        actual: u32,
    },
    /// A heap payload ending past the end of `dat` (its length).
    OutOfRange {
        /// Length of `dat`.
        dat_len: u64,
    },
}

/// The payload bytes of a hole record (docs/redex.md, "Hole records").
const HOLE_PAYLOAD: [u8; INLINE_LEN] = *b"NET-HOLE";

/// Whether `record` is a hole: inline, the TOMBSTONE flag, the payload
/// `NET-HOLE` and the complement of its checksum.
pub fn is_hole(record: &IdxRecord) -> bool {
    record.extra_flags == FLAG_TOMBSTONE
        && record.payload == PayloadRef::Inline(HOLE_PAYLOAD)
        && record.checksum == !checksum28(&HOLE_PAYLOAD) & CHECKSUM_MASK
}

impl Dat {
    /// Opens a `dat` file; a missing one reads as empty.
    ///
    /// # Errors
    /// It exists but cannot be opened.
    pub fn open(path: &Path) -> Result<Self> {
        match File::open(path) {
            Ok(file) => {
                let len = file
                    .metadata()
                    .context(format!("reading {}", path.display()))?
                    .len();
                Ok(Self {
                    file: Some(file),
                    len,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self { file: None, len: 0 }),
            Err(e) => Err(CliError::new(format!("opening {}: {e}", path.display()))),
        }
    }

    /// Length of `dat` when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Reads and checks the payload of `record`.
    ///
    /// # Errors
    /// `dat` cannot be read.
    pub fn check(&self, record: &IdxRecord) -> Result<Check> {
        if is_hole(record) {
            return Ok(Check::Hole);
        }
        let payload = match record.payload {
            PayloadRef::Inline(bytes) => bytes.to_vec(),
            PayloadRef::Heap { offset, len } => {
                let end = u64::from(offset) + u64::from(len);
                let Some(file) = self.file.as_ref().filter(|_| end <= self.len) else {
                    return Ok(Check::OutOfRange { dat_len: self.len });
                };
                let mut buf = vec![0u8; len as usize];
                match file.read_exact_at(&mut buf, u64::from(offset)) {
                    Ok(()) => buf,
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return Ok(Check::OutOfRange { dat_len: self.len });
                    }
                    Err(e) => return Err(CliError::new(format!("reading dat: {e}"))),
                }
            }
        };
        let actual = checksum28(&payload);
        Ok(if actual == record.checksum {
            Check::Valid(payload)
        } else {
            Check::Mismatch { actual }
        })
    }
}

/// Follows a channel as it grows: new records since the last poll, across
/// compactions (a new generation is read from its start, skipping seqs
/// already delivered).
#[derive(Debug)]
pub struct Follower {
    channel: Channel,
    generation: Option<Generation>,
    idx_read: u64,
    last_seq: Option<u64>,
}

/// One new record found by [`Follower::poll`].
#[derive(Debug)]
pub struct Followed {
    /// The record.
    pub record: IdxRecord,
    /// What its payload check found.
    pub check: Check,
    /// Its timestamp, when `ts` already has it.
    pub timestamp: Option<u64>,
}

impl Follower {
    /// A follower that delivers records with seqs after `last_seq`.
    pub fn new(channel: Channel, last_seq: Option<u64>) -> Self {
        Self {
            channel,
            generation: None,
            idx_read: 0,
            last_seq,
        }
    }

    fn live_generation(&self) -> Option<Generation> {
        let bytes = fs::read(self.channel.dir.join(MANIFEST_FILE)).ok()?;
        Manifest::decode(bytes.get(..MANIFEST_LEN)?)
            .ok()
            .map(|m| m.generation)
    }

    /// The records appended since the last call.
    ///
    /// # Errors
    /// A file of the channel cannot be read.
    pub fn poll(&mut self) -> Result<Vec<Followed>> {
        let generation = self.live_generation();
        if generation != self.generation {
            self.generation = generation;
            self.idx_read = 0;
        }
        let dir = generation.map_or_else(
            || self.channel.dir.clone(),
            |g| self.channel.dir.join(g.dir_name()),
        );
        let idx_path = dir.join(IDX_FILE);
        let mut idx = match File::open(&idx_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(CliError::new(format!(
                    "opening {}: {e}",
                    idx_path.display()
                )));
            }
        };
        let mut fresh = Vec::new();
        idx.seek(SeekFrom::Start(self.idx_read))
            .and_then(|_| idx.read_to_end(&mut fresh))
            .context(format!("reading {}", idx_path.display()))?;
        let whole = fresh.len() - fresh.len() % IDX_RECORD_LEN;
        if whole == 0 {
            return Ok(Vec::new());
        }
        let first_position = self.idx_read / IDX_RECORD_LEN as u64;
        self.idx_read += whole as u64;
        let records = IdxRecord::decode_all(&fresh[..whole]);
        let dat = Dat::open(&dir.join(DAT_FILE))?;
        let ts = read_optional(&dir.join(TS_FILE))?;
        let mut out = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            if self.last_seq.is_some_and(|last| record.seq <= last) {
                continue;
            }
            let check = dat.check(&record)?;
            if check == Check::Hole {
                self.last_seq = Some(record.seq);
                continue;
            }
            let position = first_position as usize + i;
            let timestamp = ts
                .get(position * TS_RECORD_LEN..(position + 1) * TS_RECORD_LEN)
                .map(|b| decode_ts(b, 1)[0]);
            self.last_seq = Some(record.seq);
            out.push(Followed {
                record,
                check,
                timestamp,
            });
        }
        Ok(out)
    }
}
