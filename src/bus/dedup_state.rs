//! The producer's persisted dedup state: its nonce and, per shard, a
//! reserved sequence high-water mark. Server-side dedup ids are
//! `(nonce, shard, sequence, index)`; keeping the nonce across restarts lets
//! a replayed batch dedup against its first delivery, and starting each
//! shard at its reservation means a restarted producer never hands an
//! earlier id to a new event (v0.11 rotated the nonce instead and lost
//! cross-restart dedup).
//!
//! The file (`producer.state`) is written atomically: a temp file (any
//! stale one from a crashed run is removed first), written, fsynced, renamed
//! over the old one, directory fsynced. Every fsync failure is returned.
//!
//! ```text
//! "NETPROD1" | nonce u64 | count u32 | count × (shard u16, reserved u64) | xxh3_64 of the preceding bytes
//! ```
//! (little-endian).

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::redex::storage::{DurableRenameError, Storage, durable_rename};

const MAGIC: &[u8; 8] = b"NETPROD1";
const FILE: &str = "producer.state";
const TEMP: &str = "producer.state.tmp";
/// More shard entries than this is not a file we wrote (u16 shard ids).
const MAX_ENTRIES: usize = 1 << 16;

/// Why the producer state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DedupStateError {
    /// A file-system operation failed (fsync failures included).
    #[error("producer state: {op} failed: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file is not a producer state we wrote (or was torn by a crash
    /// that the atomic write should have prevented).
    #[error("producer state is corrupt: {0}")]
    Corrupt(String),
}

/// The decoded state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupState {
    /// The producer nonce.
    pub nonce: u64,
    /// Per shard: every sequence below this may have been used.
    pub reserved: BTreeMap<u16, u64>,
}

impl DedupState {
    /// The file bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.reserved.len() * 10);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.nonce.to_le_bytes());
        out.extend_from_slice(&(self.reserved.len() as u32).to_le_bytes());
        for (shard, seq) in &self.reserved {
            out.extend_from_slice(&shard.to_le_bytes());
            out.extend_from_slice(&seq.to_le_bytes());
        }
        let sum = xxhash_rust::xxh3::xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parses file bytes.
    ///
    /// # Errors
    /// [`DedupStateError::Corrupt`] naming what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, DedupStateError> {
        let corrupt = |why: &str| DedupStateError::Corrupt(why.to_owned());
        if bytes.len() < 28 {
            return Err(corrupt("shorter than the fixed fields"));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let sum = u64::from_le_bytes(sum.try_into().map_err(|_| corrupt("checksum"))?);
        if xxhash_rust::xxh3::xxh3_64(body) != sum {
            return Err(corrupt("checksum mismatch"));
        }
        let word = |at: usize, n: usize| &body[at..at + n];
        let nonce = u64::from_le_bytes(word(8, 8).try_into().map_err(|_| corrupt("nonce"))?);
        let count = u32::from_le_bytes(word(16, 4).try_into().map_err(|_| corrupt("count"))?);
        let count = usize::try_from(count).map_err(|_| corrupt("count"))?;
        if count > MAX_ENTRIES || body.len() != 20 + count * 10 {
            return Err(corrupt("entry count does not match the length"));
        }
        let mut reserved = BTreeMap::new();
        for i in 0..count {
            let at = 20 + i * 10;
            let shard = u16::from_le_bytes([body[at], body[at + 1]]);
            let seq = u64::from_le_bytes(word(at + 2, 8).try_into().map_err(|_| corrupt("entry"))?);
            if reserved.insert(shard, seq).is_some() {
                return Err(corrupt("a shard appears twice"));
            }
        }
        Ok(Self { nonce, reserved })
    }
}

/// The state file of one producer directory.
#[derive(Debug, Clone)]
pub struct DedupStateFile {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> DedupStateError {
    move |source| DedupStateError::Io { op, source }
}

impl DedupStateFile {
    /// The state file in `dir` (created on first save).
    pub fn new(storage: Arc<dyn Storage>, dir: impl Into<PathBuf>) -> Self {
        Self {
            storage,
            dir: dir.into(),
        }
    }

    /// The state file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The saved state, or None when there is none yet.
    ///
    /// # Errors
    /// [`DedupStateError`] on I/O failure or a corrupt file.
    pub fn load(&self) -> Result<Option<DedupState>, DedupStateError> {
        let path = self.path();
        match self.storage.kind(&path).map_err(io_err("stat"))? {
            None => Ok(None),
            Some(_) => {
                let bytes = self.storage.read_all(&path).map_err(io_err("read"))?;
                DedupState::decode(&bytes).map(Some)
            }
        }
    }

    /// Replaces the saved state atomically and durably.
    ///
    /// # Errors
    /// [`DedupStateError::Io`] for any failed step, fsyncs included; the
    /// previous state is then still the one on disk.
    pub fn save(&self, state: &DedupState) -> Result<(), DedupStateError> {
        // New directories are durable only once their parents are synced.
        let mut missing = Vec::new();
        let mut at = Some(self.dir.as_path());
        while let Some(dir) = at {
            if self
                .storage
                .kind(dir)
                .map_err(io_err("stat directory"))?
                .is_some()
            {
                break;
            }
            missing.push(dir);
            at = dir.parent();
        }
        if !missing.is_empty() {
            self.storage
                .create_dir_all(&self.dir)
                .map_err(io_err("create directory"))?;
            for dir in missing.iter().rev() {
                if let Some(parent) = dir.parent() {
                    self.storage
                        .sync_dir(parent)
                        .map_err(io_err("fsync parent directory"))?;
                }
            }
        }
        let temp = self.dir.join(TEMP);
        // A temp file left by a crashed save must not break this one.
        match self.storage.remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove stale temp file")(e)),
        }
        let mut file = self
            .storage
            .create_truncate(&temp)
            .map_err(io_err("create temp file"))?;
        file.append(&state.encode()).map_err(io_err("write"))?;
        file.sync().map_err(io_err("fsync"))?;
        drop(file);
        durable_rename(&*self.storage, &temp, &self.path()).map_err(|e| match e {
            DurableRenameError::Rename(e) => io_err("rename")(e),
            DurableRenameError::SyncDir(e) => io_err("fsync directory")(e),
        })
    }
}

/// Loads the producer state, or creates one with a fresh random nonce, and
/// returns the nonce and each shard's first sequence for this run.
///
/// # Errors
/// As [`DedupStateFile::load`] and [`DedupStateFile::save`].
pub fn open_producer(file: &DedupStateFile) -> Result<DedupState, DedupStateError> {
    if let Some(state) = file.load()? {
        return Ok(state);
    }
    let state = DedupState {
        nonce: random_nonce(),
        reserved: BTreeMap::new(),
    };
    file.save(&state)?;
    Ok(state)
}

/// Sequences reserved per save: a producer persists its state about once
/// per this many events per shard.
pub const RESERVATION_STEP: u64 = 1 << 20;

/// A running producer's reservations: before a batch uses sequences up to
/// `upto`, they are covered by a durable reservation, so a restart — even
/// after a crash — starts above every sequence ever used.
#[derive(Debug)]
pub(crate) struct Reservations {
    file: DedupStateFile,
    state: std::sync::Mutex<DedupState>,
    step: u64,
}

impl Reservations {
    pub fn open(file: DedupStateFile, step: u64) -> Result<Self, DedupStateError> {
        let state = open_producer(&file)?;
        Ok(Self {
            file,
            state: std::sync::Mutex::new(state),
            step: step.max(1),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DedupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn nonce(&self) -> u64 {
        self.lock().nonce
    }

    /// Each shard's first sequence for this run.
    pub fn starts(&self) -> std::collections::HashMap<u16, u64> {
        self.lock().reserved.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Makes sure sequences below `upto` on `shard` are reserved durably.
    pub fn ensure(&self, shard: u16, upto: u64) -> Result<(), DedupStateError> {
        let mut state = self.lock();
        if state.reserved.get(&shard).is_some_and(|r| *r >= upto) {
            return Ok(());
        }
        let mut next = state.clone();
        next.reserved.insert(shard, upto.saturating_add(self.step));
        self.file.save(&next)?;
        *state = next;
        Ok(())
    }
}

fn random_nonce() -> u64 {
    use rand_core::RngCore;
    rand_core::OsRng.next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redex::fault::{CrashMode, Fault, FaultyStorage, OpKind};

    fn state(nonce: u64, n: u64) -> DedupState {
        DedupState {
            nonce,
            reserved: (0..4u16).map(|s| (s, n * 1000 + u64::from(s))).collect(),
        }
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let s = state(7, 3);
        assert_eq!(DedupState::decode(&s.encode()).unwrap(), s);
        let mut bad = s.encode();
        bad[12] ^= 1;
        assert!(matches!(
            DedupState::decode(&bad),
            Err(DedupStateError::Corrupt(_))
        ));
        for cut in 0..s.encode().len() {
            assert!(DedupState::decode(&s.encode()[..cut]).is_err());
        }
        assert!(DedupState::decode(b"NETPROD1 garbage garbage garbage").is_err());
    }

    #[test]
    fn nested_new_directories_survive_power_loss() {
        let fs = FaultyStorage::new();
        let file = DedupStateFile::new(Arc::new(fs.clone()), "/a/b/c");
        file.save(&state(5, 1)).unwrap();
        fs.crash(CrashMode::PowerLoss);
        assert_eq!(file.load().unwrap(), Some(state(5, 1)));
    }

    #[test]
    fn a_stale_temp_file_does_not_break_saving() {
        let fs = FaultyStorage::new();
        fs.write_file("/p/producer.state.tmp", b"left by a crash")
            .unwrap();
        let file = DedupStateFile::new(Arc::new(fs.clone()), "/p");
        file.save(&state(1, 1)).unwrap();
        assert_eq!(file.load().unwrap(), Some(state(1, 1)));
    }

    #[test]
    fn fsync_failures_propagate_and_keep_the_old_state() {
        for (kind, suffix) in [
            (OpKind::Sync, Some("producer.state.tmp")),
            (OpKind::SyncDir, None),
        ] {
            let fs = FaultyStorage::new();
            let file = DedupStateFile::new(Arc::new(fs.clone()), "/p");
            file.save(&state(1, 1)).unwrap();
            fs.inject_next(kind, suffix, Fault::Error);
            let err = file.save(&state(1, 2)).unwrap_err();
            assert!(matches!(err, DedupStateError::Io { .. }), "{kind:?}: {err}");
        }
    }

    #[test]
    fn a_crash_at_every_step_leaves_the_old_or_the_new_state() {
        // Count the operations of one save, then crash before each.
        let probe = FaultyStorage::new();
        let file = DedupStateFile::new(Arc::new(probe.clone()), "/p");
        file.save(&state(9, 1)).unwrap();
        let start = probe.op_count();
        file.save(&state(9, 2)).unwrap();
        let steps = probe.op_count() - start;
        assert!(steps >= 5);
        for mode in [
            CrashMode::ProcessCrash,
            CrashMode::PowerLoss,
            CrashMode::TornPowerLoss { seed: 3 },
        ] {
            for step in 0..=steps {
                let fs = FaultyStorage::new();
                let file = DedupStateFile::new(Arc::new(fs.clone()), "/p");
                file.save(&state(9, 1)).unwrap();
                fs.inject(fs.op_count() + step, Fault::Crash);
                let saved = file.save(&state(9, 2)).is_ok();
                fs.crash(mode);
                let got = file.load().unwrap().expect("state survives");
                assert!(
                    got == state(9, 1) || got == state(9, 2),
                    "{mode:?} step {step}: {got:?}"
                );
                if saved {
                    assert_eq!(
                        got,
                        state(9, 2),
                        "{mode:?} step {step}: a completed save is durable"
                    );
                }
            }
        }
    }
}
