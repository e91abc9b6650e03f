//! The small storage interface every RedEX file operation goes through, and
//! its real implementation on the local file system.
//!
//! Tests swap in `FaultyStorage` (`redex::fault`, built only with the
//! `test-util` feature and in unit tests), an in-memory file system
//! that can fail or tear any operation and can "crash", discarding whatever
//! was not made durable. Keeping the interface this small is what makes that
//! model faithful: every durability step of RedEX is one call here.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (symlink, socket, ...): never a RedEX file.
    Other,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (not a path).
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
}

/// An open file, positioned for appending.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Writes all of `data` at the end of the file. On error, any prefix of
    /// `data` may have been written (a torn write); the caller rolls back
    /// with [`truncate`](Self::truncate).
    fn append(&mut self, data: &[u8]) -> io::Result<()>;

    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// The current length.
    fn len(&self) -> io::Result<u64>;

    /// True when the file has no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Shrinks (or grows with zeros) the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;

    /// Makes the contents durable (`fsync`, data and metadata).
    fn sync(&self) -> io::Result<()>;
}

/// A held exclusive lock on a directory; released on drop.
pub trait DirLock: Send + Sync + fmt::Debug {}

/// The file-system operations RedEX needs.
pub trait Storage: Send + Sync + fmt::Debug + 'static {
    /// Creates `path` and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// The entries of a directory (not `.`/`..`), in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;

    /// What `path` is, or `None` if it does not exist.
    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>>;

    /// Opens `path` for appending, creating it empty if missing.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;

    /// Creates `path` empty (truncating it if it exists) for appending.
    fn create_truncate(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;

    /// The whole contents of `path`.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Atomically renames `from` to `to`, replacing `to` if it exists. On
    /// Windows this is `MoveFileExW(MOVEFILE_REPLACE_EXISTING |
    /// MOVEFILE_WRITE_THROUGH)`, which is durable by itself.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the entries of directory `path` durable (fsync of the directory;
    /// a no-op where directories cannot be synced).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Takes an exclusive, non-blocking lock on directory `path`, held until
    /// the returned guard is dropped. Fails with `WouldBlock` when another
    /// holder (in this process or another) has it.
    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>>;
}

/// Why a [`durable_rename`] did not fully succeed.
#[derive(Debug)]
pub enum DurableRenameError {
    /// The rename itself failed: nothing changed.
    Rename(io::Error),
    /// The rename happened, but syncing the directory failed, so it may not
    /// survive a power loss.
    SyncDir(io::Error),
}

/// Renames `from` over `to` and makes the rename durable: on POSIX a rename
/// followed by an fsync of the destination directory; on Windows the rename is
/// issued write-through (see [`Storage::rename`]) and there is no directory to
/// sync. This is the only way RedEX renames anything.
///
/// # Errors
/// [`DurableRenameError::Rename`] if nothing happened;
/// [`DurableRenameError::SyncDir`] if the rename happened but may not be
/// durable yet. Callers decide which of these they can tolerate.
pub fn durable_rename(
    storage: &dyn Storage,
    from: &Path,
    to: &Path,
) -> Result<(), DurableRenameError> {
    storage
        .rename(from, to)
        .map_err(DurableRenameError::Rename)?;
    let dir = to.parent().unwrap_or_else(|| Path::new("."));
    storage.sync_dir(dir).map_err(DurableRenameError::SyncDir)
}

/// The local file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsStorage;

#[derive(Debug)]
struct FsFile {
    file: File,
    path: PathBuf,
}

impl StorageFile for FsFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_read(
                    &self.file,
                    &mut buf[done..],
                    offset + done as u64,
                )?;
                if n == 0 {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
                }
                done += n;
            }
            Ok(())
        }
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        // The file is opened in append mode, so later writes go to the new end.
        self.file.set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        self.file
            .sync_all()
            .map_err(|e| annotate(e, "fsync", &self.path))
    }
}

fn annotate(err: io::Error, op: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{op} {}: {err}", path.display()))
}

#[derive(Debug)]
struct FsDirLock {
    _file: File,
}

impl DirLock for FsDirLock {}

impl FsStorage {
    fn open_with(&self, path: &Path, truncate: bool) -> io::Result<Box<dyn StorageFile>> {
        let mut options = OpenOptions::new();
        options.read(true).create(true);
        if truncate {
            options.write(true).truncate(true);
        } else {
            options.append(true);
        }
        let mut file = options.open(path).map_err(|e| annotate(e, "open", path))?;
        if truncate {
            // Reopen in append mode so `append` always writes at the end.
            drop(file);
            file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(path)
                .map_err(|e| annotate(e, "open", path))?;
        }
        Ok(Box::new(FsFile {
            file,
            path: path.to_path_buf(),
        }))
    }
}

impl Storage for FsStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path).map_err(|e| annotate(e, "mkdir", path))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(path).map_err(|e| annotate(e, "readdir", path))? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            let kind = if file_type.is_file() {
                EntryKind::File
            } else if file_type.is_dir() {
                EntryKind::Dir
            } else {
                EntryKind::Other
            };
            entries.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                kind,
            });
        }
        Ok(entries)
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => Ok(Some(EntryKind::File)),
            Ok(meta) if meta.is_dir() => Ok(Some(EntryKind::Dir)),
            Ok(_) => Ok(Some(EntryKind::Other)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(annotate(e, "stat", path)),
        }
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.open_with(path, false)
    }

    fn create_truncate(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.open_with(path, true)
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path).map_err(|e| annotate(e, "read", path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        platform_rename(from, to).map_err(|e| annotate(e, "rename", from))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(path)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| annotate(e, "fsync dir", path))
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(())
        }
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path).map_err(|e| annotate(e, "unlink", path))
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path).map_err(|e| annotate(e, "rmdir", path))
    }

    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let file = File::open(path).map_err(|e| annotate(e, "open dir", path))?;
        // The lock belongs to an open file description, and a process that
        // forks (any thread of it spawning a child) hands the child a share
        // of every description until the child's exec closes it: a writer
        // that has just closed may still hold its lock through such a child
        // for an instant. Held longer than LOCK_GRACE, it is another writer.
        let deadline = std::time::Instant::now() + LOCK_GRACE;
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Box::new(FsDirLock { _file: file })),
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!("{} is locked by another writer", path.display()),
                    ));
                }
                Err(fs::TryLockError::Error(e)) => return Err(annotate(e, "lock", path)),
            }
        }
    }
}

/// How long [`FsStorage::lock_dir`] keeps trying a held lock before it
/// reports another writer: far beyond a fork-to-exec window.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

#[cfg(not(windows))]
fn platform_rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)
}

#[cfg(windows)]
fn platform_rename(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::{
        MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH, MoveFileExW,
    };
    let wide = |p: &Path| -> Vec<u16> { p.as_os_str().encode_wide().chain(Some(0)).collect() };
    let (from, to) = (wide(from), wide(to));
    // SAFETY: both buffers are NUL-terminated UTF-16 strings that outlive the call.
    let ok = unsafe {
        MoveFileExW(
            from.as_ptr(),
            to.as_ptr(),
            MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH,
        )
    };
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("net-storage-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A child process between its fork and its exec shares the lock of a
    /// writer that closes meanwhile: the next writer waits for the exec
    /// instead of reporting the directory locked.
    #[cfg(unix)]
    #[test]
    fn a_lock_a_child_inherited_until_its_exec_is_waited_for() {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;
        use std::os::unix::process::CommandExt;
        let dir = temp_dir("fork-lock");
        let lock = FsStorage.lock_dir(&dir).unwrap();
        let (mut forked, in_child) = UnixStream::pair().unwrap();
        let mut command = std::process::Command::new("true");
        // SAFETY: between fork and exec the child only writes to a socket
        // and sleeps (both system calls, nothing allocated or locked).
        unsafe {
            command.pre_exec(move || {
                (&in_child).write_all(&[1])?;
                std::thread::sleep(std::time::Duration::from_millis(100));
                Ok(())
            });
        }
        // `spawn` returns once the child has exec'd: from another thread.
        let child = std::thread::spawn(move || command.status());
        let mut byte = [0];
        forked.read_exact(&mut byte).unwrap();
        drop(lock); // the child still shares it
        let again = FsStorage.lock_dir(&dir);
        assert!(again.is_ok(), "{:?}", again.err());
        assert!(child.join().unwrap().unwrap().success());
        drop(again);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn append_read_truncate() {
        let dir = temp_dir("basic");
        let path = dir.join("f");
        let mut f = FsStorage.open_append(&path).unwrap();
        f.append(b"hello").unwrap();
        f.append(b" world").unwrap();
        assert_eq!(f.len().unwrap(), 11);
        let mut buf = [0u8; 5];
        f.read_at(6, &mut buf).unwrap();
        assert_eq!(&buf, b"world");
        f.truncate(5).unwrap();
        f.append(b"!").unwrap();
        f.sync().unwrap();
        assert_eq!(FsStorage.read_all(&path).unwrap(), b"hello!");
        let mut g = FsStorage.create_truncate(&path).unwrap();
        g.append(b"x").unwrap();
        assert_eq!(FsStorage.read_all(&path).unwrap(), b"x");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn durable_rename_replaces_and_syncs() {
        let dir = temp_dir("rename");
        fs::write(dir.join("a"), b"new").unwrap();
        fs::write(dir.join("b"), b"old").unwrap();
        durable_rename(&FsStorage, &dir.join("a"), &dir.join("b")).unwrap();
        assert_eq!(fs::read(dir.join("b")).unwrap(), b"new");
        assert_eq!(FsStorage.kind(&dir.join("a")).unwrap(), None);
        match durable_rename(&FsStorage, &dir.join("missing"), &dir.join("b")) {
            Err(DurableRenameError::Rename(_)) => {}
            other => panic!("{other:?}"),
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn directory_lock_is_exclusive_even_in_one_process() {
        let dir = temp_dir("lock");
        let first = FsStorage.lock_dir(&dir).unwrap();
        let err = FsStorage.lock_dir(&dir).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(first);
        let _again = FsStorage.lock_dir(&dir).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }
}
