//! `Redex`: the channels of one process under one base directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use super::config::RedexFileConfig;
use super::disk::DiskStore;
use super::error::{RedexError, Result};
use super::file::{FileInner, RedexFile, now_ns};
use super::storage::{FsStorage, Storage};
use crate::identity::ChannelName;

/// Opens and tracks the RedEX files of one base directory (or memory-only
/// files when there is none). Opening a name that is already open returns
/// the same file.
pub struct Redex {
    base: Option<PathBuf>,
    storage: Arc<dyn Storage>,
    open: Mutex<HashMap<String, Weak<FileInner>>>,
}

impl Default for Redex {
    fn default() -> Self {
        Self::new()
    }
}

impl Redex {
    /// A manager for memory-only files.
    pub fn new() -> Self {
        Self {
            base: None,
            storage: Arc::new(FsStorage),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A manager whose persistent files live under `base` on the local disk.
    pub fn with_persistent_dir(base: impl Into<PathBuf>) -> Self {
        Self::with_storage(base, Arc::new(FsStorage))
    }

    /// A manager over any [`Storage`] (tests use the fault-injecting one).
    pub fn with_storage(base: impl Into<PathBuf>, storage: Arc<dyn Storage>) -> Self {
        Self {
            base: Some(base.into()),
            storage,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The base directory of persistent files.
    pub fn base_dir(&self) -> Option<&Path> {
        self.base.as_deref()
    }

    /// The directory of channel `name` (`base/s1/s2/…`).
    pub fn channel_dir(&self, name: &ChannelName) -> Option<PathBuf> {
        self.base.as_ref().map(|base| {
            name.as_str()
                .split('/')
                .fold(base.clone(), |dir, segment| dir.join(segment))
        })
    }

    /// Opens (creating or recovering) channel `name`. A persistent file locks
    /// its channel directory until closed.
    ///
    /// # Errors
    /// [`RedexError::InvalidChannel`]; [`RedexError::InvalidConfig`];
    /// [`RedexError::NoPersistentDir`] for a persistent file on a memory-only
    /// manager; [`RedexError::Locked`] when another writer has the channel;
    /// [`RedexError::Io`] when recovery fails.
    pub fn open_file(&self, name: &str, config: RedexFileConfig) -> Result<RedexFile> {
        let channel = ChannelName::new(name)?;
        config.validate()?;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, file| file.upgrade().is_some_and(|f| !f.is_closed()));
        if let Some(inner) = open.get(name).and_then(Weak::upgrade) {
            let file = RedexFile { inner };
            // `repair` only matters while opening; the open file serves both.
            if file.config().with_repair(false) != config.with_repair(false) {
                return Err(RedexError::InvalidConfig(format!(
                    "{name} is already open with a different configuration"
                )));
            }
            return Ok(file);
        }
        let file = if config.persistent {
            let dir = self
                .channel_dir(&channel)
                .ok_or_else(|| RedexError::NoPersistentDir(name.to_owned()))?;
            let recovered = DiskStore::open(self.storage.clone(), dir, now_ns(), config.repair)?;
            RedexFile::open_disk(name, config, recovered)
        } else {
            RedexFile::new_heap(name, config)?
        };
        open.insert(name.to_owned(), Arc::downgrade(&file.inner));
        Ok(file)
    }

    /// Closes every open file (syncing each). Returns the first error.
    ///
    /// # Errors
    /// The first close that failed.
    pub fn close_all(&self) -> Result<()> {
        let files: Vec<RedexFile> = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .filter_map(|(_, w)| w.upgrade().map(|inner| RedexFile { inner }))
            .collect();
        let mut first_error = None;
        for file in files {
            if let Err(e) = file.close() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl std::fmt::Debug for Redex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redex")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}
