//! [`FaultyStorage`]: an in-memory [`Storage`] for durability tests that can
//! fail, tear or freeze any operation and can "crash", keeping only what was
//! made durable.
//!
//! Test-only: compiled into unit tests and into `test-util` builds (which
//! integration tests, benches and the fuzz crate enable), never into a
//! release libnet.
//!
//! # Durability model
//!
//! The model is POSIX-like and deliberately pessimistic:
//!
//! * Every file is an inode with a *current* content (what reads see) and a
//!   *durable* content. [`StorageFile::append`] and [`StorageFile::truncate`]
//!   change the current content; [`StorageFile::sync`] copies the current
//!   content of that inode to its durable content.
//! * Every directory has *current* entries and *durable* entries (name →
//!   file inode or subdirectory). Creating a file, `create_dir_all`, `rename`,
//!   `remove_file` and `remove_dir_all` change current entries only;
//!   [`Storage::sync_dir`] copies the current entries *directly inside* that
//!   directory to its durable entries. Nothing else makes an entry durable: a
//!   file that was created and fsynced but whose directory was never synced
//!   is lost by a power cut, and so is a directory whose parent was never
//!   synced, with its whole subtree.
//! * [`FaultyStorage::crash`] with [`CrashMode::PowerLoss`] rebuilds the file
//!   system from the durable state: starting at `/`, it follows durable
//!   entries only, and every file reached gets its durable content. With
//!   [`CrashMode::TornPowerLoss`], a file whose changes since its last fsync
//!   only touched bytes past its durable length additionally keeps a
//!   pseudo-random prefix of those bytes. [`CrashMode::ProcessCrash`] loses
//!   nothing (the page cache survives a killed process).
//!
//! Because durability is tracked per directory, a rename across two
//! directories of which only one was synced can leave a file reachable under
//! both names after a power cut (a hard link) or under neither; a directory
//! reachable twice keeps only the first path in breadth-first, name order.
//!
//! # Operation log and faults
//!
//! Every *mutating* call gets the next global index (0, 1, 2, ...) and an
//! [`OpRecord`] in [`FaultyStorage::ops`], whether it then succeeds, fails on
//! its own (say `NotFound`) or fails by injection. Reads, `kind`, `read_dir`,
//! `lock_dir` and an `open_append` of an existing file are not logged.
//! [`FaultyStorage::inject`] and [`FaultyStorage::inject_next`] schedule a
//! [`Fault`] for a future operation. [`Fault::Crash`] freezes the storage so
//! that the test can "cut the power" just before any operation, then
//! materialise the disk with [`FaultyStorage::crash`] and reopen:
//!
//! ```
//! use std::path::Path;
//! use net::redex::fault::{CrashMode, Fault, FaultyStorage};
//! use net::redex::storage::Storage;
//!
//! let fs = FaultyStorage::new();
//! fs.create_dir_all(Path::new("/d")).unwrap(); // op 0
//! fs.sync_dir(Path::new("/")).unwrap(); // op 1
//! fs.inject(3, Fault::Crash);
//! let mut f = fs.open_append(Path::new("/d/log")).unwrap(); // op 2
//! assert!(f.append(b"lost").is_err()); // op 3: the power is cut here
//! assert!(fs.is_frozen());
//! fs.crash(CrashMode::PowerLoss);
//! assert_eq!(fs.kind(Path::new("/d/log")).unwrap(), None);
//! assert!(fs.kind(Path::new("/d")).unwrap().is_some());
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::storage::{DirEntry, DirLock, EntryKind, Storage, StorageFile};

/// The inode number of the root directory.
const ROOT: u64 = 0;

/// What a logged operation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpKind {
    /// [`Storage::create_dir_all`] (one record per call, however many
    /// directories it creates).
    CreateDir,
    /// [`Storage::open_append`] of a missing path, or any
    /// [`Storage::create_truncate`] (including one that truncates an
    /// existing file).
    Create,
    /// [`StorageFile::append`]; `len` is the number of bytes asked for.
    Append,
    /// [`StorageFile::truncate`]; `len` is the new length.
    Truncate,
    /// [`StorageFile::sync`].
    Sync,
    /// [`Storage::rename`]; `path` is the source and `to` the destination.
    Rename,
    /// [`Storage::sync_dir`].
    SyncDir,
    /// [`Storage::remove_file`].
    RemoveFile,
    /// [`Storage::remove_dir_all`].
    RemoveDir,
}

/// One logged mutating operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    /// Its global index, in call order, starting at 0.
    pub index: u64,
    /// What it was.
    pub kind: OpKind,
    /// The (normalised, absolute) path it acted on; for file-handle
    /// operations the path the handle was opened with.
    pub path: PathBuf,
    /// The destination of a [`OpKind::Rename`].
    pub to: Option<PathBuf>,
    /// The byte count of an [`OpKind::Append`] or new length of an
    /// [`OpKind::Truncate`] (saturated to `usize::MAX`).
    pub len: Option<usize>,
}

/// A fault to inject into one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The operation fails with an `io::Error` of kind `Other` whose message
    /// contains "injected fault", and has no effect.
    Error,
    /// An append writes its first `min(keep, len)` bytes, then fails like
    /// [`Fault::Error`]. On any other operation this is [`Fault::Error`].
    Torn {
        /// How many bytes of the append reach the file.
        keep: usize,
    },
    /// The power is cut just before this operation: it and every later
    /// operation (reads and handle operations too) fail with an error whose
    /// message contains "crashed" and have no effect, until
    /// [`FaultyStorage::crash`] is called.
    Crash,
}

/// How [`FaultyStorage::crash`] crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashMode {
    /// The process dies but the OS survives: every byte written so far is
    /// kept (and stays exactly as durable, or not, as it was).
    ProcessCrash,
    /// The machine loses power: only durable entries and durable file
    /// contents survive.
    PowerLoss,
    /// Like [`CrashMode::PowerLoss`], but a file whose changes since its last
    /// fsync only touched bytes past its durable length keeps its durable
    /// content plus a pseudo-random prefix (possibly empty, possibly all) of
    /// the bytes after it, chosen deterministically from `seed`.
    TornPowerLoss {
        /// Seeds the choice of the surviving prefixes.
        seed: u64,
    },
}

/// An in-memory, fault-injecting, crash-simulating [`Storage`]; see the
/// [module documentation](self) for the model.
///
/// Clones share one file system. Paths must be absolute (`/a/b`); `.` is
/// ignored and `..` removes the previous component lexically. `read_dir`
/// lists entries in name order. Directory locks are kept per (normalised)
/// path: renaming a locked directory does not move its lock.
#[derive(Clone)]
pub struct FaultyStorage {
    shared: Arc<Mutex<State>>,
}

impl FaultyStorage {
    /// The largest file this storage holds; longer appends or truncates fail
    /// with `FileTooLarge` (instead of exhausting memory).
    pub const MAX_FILE_LEN: u64 = 1 << 30;

    /// An empty file system: just the root directory `/`, durable.
    #[must_use]
    pub fn new() -> Self {
        let mut dirs = BTreeMap::new();
        dirs.insert(ROOT, Dir::default());
        Self {
            shared: Arc::new(Mutex::new(State {
                inodes: BTreeMap::new(),
                dirs,
                next_node: ROOT + 1,
                epoch: 0,
                ops: Vec::new(),
                next_index: 0,
                at_faults: BTreeMap::new(),
                next_faults: Vec::new(),
                frozen_at: None,
                locks: HashMap::new(),
                next_lock: 0,
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    /// Crashes: every [`StorageFile`] and [`DirLock`] handed out before is
    /// dead (file operations fail with "crashed"; dropping an old lock does
    /// nothing), every lock is released, pending faults are cleared and the
    /// storage is no longer frozen. What survives depends on `mode`.
    ///
    /// The operation log is *not* reset: indices continue after the crash,
    /// so operations of a recovery run follow those of the run that crashed.
    pub fn crash(&self, mode: CrashMode) {
        self.state().crash(mode);
    }

    /// Whether a [`Fault::Crash`] has fired and [`crash`](Self::crash) has
    /// not been called since.
    #[must_use]
    pub fn is_frozen(&self) -> bool {
        self.state().frozen_at.is_some()
    }

    /// Every mutating operation so far, in call order (see [`OpRecord`]).
    #[must_use]
    pub fn ops(&self) -> Vec<OpRecord> {
        self.state().ops.clone()
    }

    /// The number of mutating operations so far: the index the next one
    /// will get.
    #[must_use]
    pub fn op_count(&self) -> u64 {
        self.state().next_index
    }

    /// Schedules `fault` for the mutating operation with index `at`
    /// (replacing a fault already scheduled there). An index already past
    /// never fires. An index fault takes precedence over an
    /// [`inject_next`](Self::inject_next) fault, which then stays pending.
    pub fn inject(&self, at: u64, fault: Fault) {
        self.state().at_faults.insert(at, fault);
    }

    /// Schedules `fault` for the next operation of `kind` whose path ends
    /// with `path_suffix` (compared on the `/`-separated normalised path; for
    /// a rename, either the source or the destination may match), or for the
    /// next operation of `kind` if `path_suffix` is `None`. Several pending
    /// faults fire in the order they were scheduled.
    pub fn inject_next(&self, kind: OpKind, path_suffix: Option<&str>, fault: Fault) {
        self.state().next_faults.push(PendingFault {
            kind,
            suffix: path_suffix.map(str::to_owned),
            fault,
        });
    }

    /// Drops every scheduled fault that has not fired.
    pub fn clear_faults(&self) {
        let mut st = self.state();
        st.at_faults.clear();
        st.next_faults.clear();
    }

    /// The current content of every file, by path.
    #[must_use]
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let st = self.state();
        let walk = st.walk(false);
        walk.files
            .into_iter()
            .filter_map(|(path, ino)| st.inodes.get(&ino).map(|i| (path, i.current.clone())))
            .collect()
    }

    /// The files a [`CrashMode::PowerLoss`] crash would leave, with the
    /// content it would leave.
    #[must_use]
    pub fn durable_files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let st = self.state();
        let walk = st.walk(true);
        walk.files
            .into_iter()
            .filter_map(|(path, ino)| st.inodes.get(&ino).map(|i| (path, i.durable.clone())))
            .collect()
    }

    /// Every directory that currently exists, including `/`.
    #[must_use]
    pub fn dirs(&self) -> BTreeSet<PathBuf> {
        self.state()
            .walk(false)
            .dirs
            .into_values()
            .map(|(path, _)| path)
            .collect()
    }

    /// The directories a [`CrashMode::PowerLoss`] crash would leave,
    /// including `/`.
    #[must_use]
    pub fn durable_dirs(&self) -> BTreeSet<PathBuf> {
        self.state()
            .walk(true)
            .dirs
            .into_values()
            .map(|(path, _)| path)
            .collect()
    }

    /// The current content of file `path`, or `None` if it is not a file (or
    /// not a valid path). Works while frozen.
    #[must_use]
    pub fn read_file(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let st = self.state();
        let names = parse(path.as_ref(), "read").ok()?;
        match st.lookup(&names, path.as_ref(), "read").ok()?? {
            Node::File(ino) => st.inodes.get(&ino).map(|i| i.current.clone()),
            Node::Dir(_) => None,
        }
    }

    /// Test setup: makes `path` a file holding `bytes`, creating missing
    /// parent directories. Unlogged, immune to faults, allowed while frozen,
    /// and durable at once: the file content and every directory entry on the
    /// way to it (including those of directories that already existed) become
    /// durable. An existing file keeps its inode, so open handles see the new
    /// content.
    ///
    /// # Errors
    /// `InvalidInput` for a relative path, `IsADirectory` if `path` is a
    /// directory, `NotADirectory` if a parent is a file, `FileTooLarge`
    /// beyond [`MAX_FILE_LEN`](Self::MAX_FILE_LEN).
    pub fn write_file(&self, path: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.state().write_file(path.as_ref(), bytes.as_ref())
    }

    /// Test setup: removes the file or directory tree at `path`, durably
    /// (from both the current and the durable entries of its parent).
    /// Unlogged, immune to faults, allowed while frozen.
    ///
    /// # Errors
    /// `InvalidInput` for a relative path or `/`, `NotFound` if it is
    /// missing.
    pub fn remove(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.state().remove(path.as_ref())
    }
}

impl Default for FaultyStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FaultyStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state();
        f.debug_struct("FaultyStorage")
            .field("files", &st.inodes.len())
            .field("dirs", &st.dirs.len())
            .field("ops", &st.next_index)
            .field("frozen_at", &st.frozen_at)
            .field("epoch", &st.epoch)
            .finish()
    }
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A directory entry's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir(u64),
}

#[derive(Debug, Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Since the last fsync, a truncate cut into the durable bytes: a torn
    /// power loss may not keep a prefix of the newer bytes.
    rewritten: bool,
}

#[derive(Debug, Default)]
struct Dir {
    current: BTreeMap<OsString, Node>,
    durable: BTreeMap<OsString, Node>,
}

#[derive(Debug)]
struct PendingFault {
    kind: OpKind,
    suffix: Option<String>,
    fault: Fault,
}

#[derive(Debug)]
struct State {
    inodes: BTreeMap<u64, Inode>,
    dirs: BTreeMap<u64, Dir>,
    next_node: u64,
    /// Bumped by every crash; handles and locks from an older epoch are dead.
    epoch: u64,
    ops: Vec<OpRecord>,
    next_index: u64,
    at_faults: BTreeMap<u64, Fault>,
    next_faults: Vec<PendingFault>,
    /// The index of the operation a [`Fault::Crash`] fired on.
    frozen_at: Option<u64>,
    /// Locked directory path → token of the guard holding it.
    locks: HashMap<PathBuf, u64>,
    next_lock: u64,
}

/// The result of walking the tree from `/` along current or durable entries.
struct Walk {
    /// Directory inode → (path, the entries followed).
    dirs: BTreeMap<u64, (PathBuf, BTreeMap<OsString, Node>)>,
    /// Every file reached, by path.
    files: Vec<(PathBuf, u64)>,
}

fn error(kind: io::ErrorKind, op: &str, path: &Path, msg: &str) -> io::Error {
    io::Error::new(kind, format!("{op} {}: {msg}", path.display()))
}

fn not_found(op: &str, path: &Path) -> io::Error {
    error(
        io::ErrorKind::NotFound,
        op,
        path,
        "no such file or directory",
    )
}

fn is_a_dir(op: &str, path: &Path) -> io::Error {
    error(io::ErrorKind::IsADirectory, op, path, "is a directory")
}

fn not_a_dir(op: &str, path: &Path) -> io::Error {
    error(io::ErrorKind::NotADirectory, op, path, "not a directory")
}

fn too_large(op: &str, path: &Path) -> io::Error {
    error(
        io::ErrorKind::FileTooLarge,
        op,
        path,
        &format!(
            "FaultyStorage holds at most {} bytes per file",
            FaultyStorage::MAX_FILE_LEN
        ),
    )
}

fn fault_error(fault: Fault, op: &str, path: &Path, index: u64) -> io::Error {
    match fault {
        Fault::Crash => error(
            io::ErrorKind::Other,
            op,
            path,
            &format!("storage crashed (simulated power cut at op {index})"),
        ),
        _ => error(
            io::ErrorKind::Other,
            op,
            path,
            &format!("injected fault (op {index})"),
        ),
    }
}

/// Splits an absolute path into its normal components, resolving `.` and
/// `..` lexically.
fn parse(path: &Path, op: &str) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    let mut rooted = false;
    for component in path.components() {
        match component {
            Component::Prefix(_) => {
                return Err(error(
                    io::ErrorKind::InvalidInput,
                    op,
                    path,
                    "path prefixes are not supported; use /-rooted paths",
                ));
            }
            Component::RootDir => rooted = true,
            Component::CurDir => {}
            Component::ParentDir => {
                names.pop();
            }
            Component::Normal(name) => {
                if !rooted {
                    break;
                }
                names.push(name.to_os_string());
            }
        }
    }
    if rooted {
        Ok(names)
    } else {
        Err(error(
            io::ErrorKind::InvalidInput,
            op,
            path,
            "path must be absolute",
        ))
    }
}

fn join(names: &[OsString]) -> PathBuf {
    let mut path = PathBuf::from("/");
    path.extend(names);
    path
}

/// `path` with `/` separators, for suffix matching on every platform.
fn slashed(path: &Path) -> String {
    let mut out = String::new();
    for component in path.components() {
        if let Component::Normal(name) = component {
            out.push('/');
            out.push_str(&name.to_string_lossy());
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn clamp_len(len: u64) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

/// Xorshift64, seeded through splitmix64 so every seed (even 0) works.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-enough in `0..=max`.
    fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }
}

impl State {
    fn check_frozen(&self, op: &str, path: &Path) -> io::Result<()> {
        match self.frozen_at {
            Some(index) => Err(fault_error(Fault::Crash, op, path, index)),
            None => Ok(()),
        }
    }

    fn check_handle(&self, epoch: u64, op: &str, path: &Path) -> io::Result<()> {
        if epoch != self.epoch {
            return Err(error(
                io::ErrorKind::Other,
                op,
                path,
                "stale handle: the storage crashed since it was opened",
            ));
        }
        self.check_frozen(op, path)
    }

    /// Logs a mutating operation and returns the fault it must suffer, if
    /// any, as an error (except a torn append, returned as `Ok(Some(keep))`).
    fn begin(
        &mut self,
        kind: OpKind,
        op: &str,
        path: &Path,
        to: Option<&Path>,
        len: Option<usize>,
    ) -> io::Result<Option<usize>> {
        let index = self.next_index;
        self.next_index += 1;
        self.ops.push(OpRecord {
            index,
            kind,
            path: path.to_path_buf(),
            to: to.map(Path::to_path_buf),
            len,
        });
        let fault = match self.at_faults.remove(&index) {
            Some(fault) => Some(fault),
            None => {
                let from = slashed(path);
                let to = to.map(slashed);
                let matches = |p: &PendingFault| {
                    p.kind == kind
                        && p.suffix.as_deref().is_none_or(|s| {
                            from.ends_with(s) || to.as_deref().is_some_and(|t| t.ends_with(s))
                        })
                };
                self.next_faults
                    .iter()
                    .position(matches)
                    .map(|at| self.next_faults.remove(at).fault)
            }
        };
        match fault {
            None => Ok(None),
            Some(Fault::Torn { keep }) if kind == OpKind::Append => Ok(Some(keep)),
            Some(Fault::Crash) => {
                self.frozen_at = Some(index);
                Err(fault_error(Fault::Crash, op, path, index))
            }
            Some(fault) => Err(fault_error(fault, op, path, index)),
        }
    }

    /// What `names` currently points at; `Err` if a parent is a file.
    fn lookup(&self, names: &[OsString], path: &Path, op: &str) -> io::Result<Option<Node>> {
        let mut node = Node::Dir(ROOT);
        for name in names {
            let Node::Dir(dir) = node else {
                return Err(not_a_dir(op, path));
            };
            match self.dirs.get(&dir).and_then(|d| d.current.get(name)) {
                Some(next) => node = *next,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The directory that holds (or would hold) the last component of
    /// `names`, which must not be empty.
    fn parent<'n>(
        &self,
        names: &'n [OsString],
        path: &Path,
        op: &str,
    ) -> io::Result<(u64, &'n OsString)> {
        let Some((last, parents)) = names.split_last() else {
            return Err(error(
                io::ErrorKind::InvalidInput,
                op,
                path,
                "not allowed on /",
            ));
        };
        match self.lookup(parents, path, op)? {
            Some(Node::Dir(dir)) => Ok((dir, last)),
            Some(Node::File(_)) => Err(not_a_dir(op, path)),
            None => Err(not_found(op, path)),
        }
    }

    fn dir_mut(&mut self, dir: u64, op: &str, path: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(&dir).ok_or_else(|| {
            error(
                io::ErrorKind::Other,
                op,
                path,
                "internal: dangling directory",
            )
        })
    }

    fn inode_mut(&mut self, ino: u64, op: &str, path: &Path) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| error(io::ErrorKind::Other, op, path, "internal: dangling inode"))
    }

    fn new_node(&mut self) -> u64 {
        let id = self.next_node;
        self.next_node += 1;
        id
    }

    fn create_file(&mut self, names: &[OsString], path: &Path, op: &str) -> io::Result<u64> {
        let (dir, name) = self.parent(names, path, op)?;
        let ino = self.new_node();
        self.inodes.insert(ino, Inode::default());
        self.dir_mut(dir, op, path)?
            .current
            .insert(name.clone(), Node::File(ino));
        Ok(ino)
    }

    fn create_dir_all(
        &mut self,
        names: &[OsString],
        path: &Path,
        durable: bool,
    ) -> io::Result<u64> {
        let op = "mkdir";
        let mut dir = ROOT;
        for (i, name) in names.iter().enumerate() {
            let existing = self
                .dirs
                .get(&dir)
                .and_then(|d| d.current.get(name))
                .copied();
            let child = match existing {
                Some(Node::Dir(child)) => child,
                Some(Node::File(_)) if i + 1 == names.len() => {
                    return Err(error(
                        io::ErrorKind::AlreadyExists,
                        op,
                        path,
                        "exists and is not a directory",
                    ));
                }
                Some(Node::File(_)) => return Err(not_a_dir(op, path)),
                None => {
                    let child = self.new_node();
                    self.dirs.insert(child, Dir::default());
                    self.dir_mut(dir, op, path)?
                        .current
                        .insert(name.clone(), Node::Dir(child));
                    child
                }
            };
            if durable {
                self.dir_mut(dir, op, path)?
                    .durable
                    .insert(name.clone(), Node::Dir(child));
            }
            dir = child;
        }
        Ok(dir)
    }

    fn rename(
        &mut self,
        from_names: &[OsString],
        to_names: &[OsString],
        from: &Path,
        to: &Path,
    ) -> io::Result<()> {
        let op = "rename";
        if from_names.is_empty() || to_names.is_empty() {
            return Err(error(
                io::ErrorKind::InvalidInput,
                op,
                from,
                "cannot rename /",
            ));
        }
        let src = self
            .lookup(from_names, from, op)?
            .ok_or_else(|| not_found(op, from))?;
        let (from_dir, from_name) = self.parent(from_names, from, op)?;
        let (to_dir, to_name) = self.parent(to_names, to, op)?;
        let dst = self
            .dirs
            .get(&to_dir)
            .and_then(|d| d.current.get(to_name))
            .copied();
        if dst == Some(src) {
            return Ok(());
        }
        match (src, dst) {
            (Node::Dir(_), _) if to_names.starts_with(from_names) => {
                return Err(error(
                    io::ErrorKind::InvalidInput,
                    op,
                    from,
                    &format!("cannot move a directory into itself ({})", to.display()),
                ));
            }
            (Node::File(_), Some(Node::Dir(_))) => return Err(is_a_dir(op, to)),
            (Node::Dir(_), Some(Node::File(_))) => return Err(not_a_dir(op, to)),
            (Node::Dir(_), Some(Node::Dir(d)))
                if self.dirs.get(&d).is_some_and(|d| !d.current.is_empty()) =>
            {
                return Err(error(
                    io::ErrorKind::DirectoryNotEmpty,
                    op,
                    to,
                    "directory not empty",
                ));
            }
            _ => {}
        }
        self.dir_mut(from_dir, op, from)?.current.remove(from_name);
        self.dir_mut(to_dir, op, to)?
            .current
            .insert(to_name.clone(), src);
        Ok(())
    }

    fn walk(&self, durable: bool) -> Walk {
        let mut out = Walk {
            dirs: BTreeMap::new(),
            files: Vec::new(),
        };
        let mut queue = VecDeque::from([(ROOT, PathBuf::from("/"))]);
        let mut visited = BTreeSet::from([ROOT]);
        while let Some((id, path)) = queue.pop_front() {
            let Some(dir) = self.dirs.get(&id) else {
                continue;
            };
            let entries = if durable { &dir.durable } else { &dir.current };
            let mut kept = BTreeMap::new();
            for (name, node) in entries {
                match *node {
                    Node::Dir(child) => {
                        if self.dirs.contains_key(&child) && visited.insert(child) {
                            kept.insert(name.clone(), *node);
                            queue.push_back((child, path.join(name)));
                        }
                    }
                    Node::File(ino) => {
                        if self.inodes.contains_key(&ino) {
                            kept.insert(name.clone(), *node);
                            out.files.push((path.join(name), ino));
                        }
                    }
                }
            }
            out.dirs.insert(id, (path, kept));
        }
        out
    }

    fn crash(&mut self, mode: CrashMode) {
        self.epoch += 1;
        self.locks.clear();
        self.at_faults.clear();
        self.next_faults.clear();
        self.frozen_at = None;
        let mut rng = match mode {
            CrashMode::ProcessCrash => return,
            CrashMode::PowerLoss => None,
            CrashMode::TornPowerLoss { seed } => Some(XorShift::new(seed)),
        };
        let walk = self.walk(true);
        let dirs = walk
            .dirs
            .into_iter()
            .map(|(id, (_, entries))| {
                let dir = Dir {
                    current: entries.clone(),
                    durable: entries,
                };
                (id, dir)
            })
            .collect();
        let reached: BTreeSet<u64> = walk.files.iter().map(|(_, ino)| *ino).collect();
        let mut inodes = BTreeMap::new();
        for ino in reached {
            let Some(old) = self.inodes.remove(&ino) else {
                continue;
            };
            let mut content = old.durable;
            let start = content.len();
            if let Some(rng) = rng.as_mut()
                && !old.rewritten
                && old.current.len() > start
                && old.current.starts_with(&content)
            {
                let extra = old.current.len() - start;
                let keep = clamp_len(rng.up_to(extra as u64)).min(extra);
                content.extend_from_slice(&old.current[start..start + keep]);
            }
            let inode = Inode {
                current: content.clone(),
                durable: content,
                rewritten: false,
            };
            inodes.insert(ino, inode);
        }
        self.dirs = dirs;
        self.inodes = inodes;
    }

    fn write_file(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let op = "write_file";
        let names = parse(path, op)?;
        let Some((name, parents)) = names.split_last() else {
            return Err(is_a_dir(op, path));
        };
        if bytes.len() as u64 > FaultyStorage::MAX_FILE_LEN {
            return Err(too_large(op, path));
        }
        let dir = self.create_dir_all(parents, path, true)?;
        let existing = self
            .dirs
            .get(&dir)
            .and_then(|d| d.current.get(name))
            .copied();
        let ino = match existing {
            Some(Node::Dir(_)) => return Err(is_a_dir(op, path)),
            Some(Node::File(ino)) => ino,
            None => {
                let ino = self.new_node();
                self.inodes.insert(ino, Inode::default());
                ino
            }
        };
        let inode = self.inode_mut(ino, op, path)?;
        inode.current = bytes.to_vec();
        inode.durable = bytes.to_vec();
        inode.rewritten = false;
        let dir = self.dir_mut(dir, op, path)?;
        dir.current.insert(name.clone(), Node::File(ino));
        dir.durable.insert(name.clone(), Node::File(ino));
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        let op = "remove";
        let names = parse(path, op)?;
        let (dir, name) = self.parent(&names, path, op)?;
        let dir = self.dir_mut(dir, op, path)?;
        if dir.current.remove(name).is_none() {
            return Err(not_found(op, path));
        }
        dir.durable.remove(name);
        Ok(())
    }
}

/// A file handle of [`FaultyStorage`].
struct FaultyFile {
    shared: Arc<Mutex<State>>,
    ino: u64,
    epoch: u64,
    path: PathBuf,
}

impl fmt::Debug for FaultyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyFile")
            .field("path", &self.path)
            .field("ino", &self.ino)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl StorageFile for FaultyFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let op = "append";
        let mut st = lock(&self.shared);
        st.check_handle(self.epoch, op, &self.path)?;
        let torn = st.begin(OpKind::Append, op, &self.path, None, Some(data.len()))?;
        let path = &self.path;
        let inode = st.inode_mut(self.ino, op, path)?;
        let write = torn.map_or(data.len(), |keep| keep.min(data.len()));
        if inode.current.len() as u64 + write as u64 > FaultyStorage::MAX_FILE_LEN {
            return Err(too_large(op, path));
        }
        inode.current.extend_from_slice(&data[..write]);
        match torn {
            None => Ok(()),
            Some(_) => Err(error(
                io::ErrorKind::Other,
                op,
                path,
                &format!(
                    "injected fault: torn write, {write} of {} bytes written",
                    data.len()
                ),
            )),
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let op = "read";
        let mut st = lock(&self.shared);
        st.check_handle(self.epoch, op, &self.path)?;
        let inode = st.inode_mut(self.ino, op, &self.path)?;
        let len = inode.current.len() as u64;
        match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= len => {
                let start = clamp_len(offset);
                buf.copy_from_slice(&inode.current[start..start + buf.len()]);
                Ok(())
            }
            _ => Err(error(
                io::ErrorKind::UnexpectedEof,
                op,
                &self.path,
                &format!(
                    "{} bytes at offset {offset} are past the end ({len} bytes)",
                    buf.len()
                ),
            )),
        }
    }

    fn len(&self) -> io::Result<u64> {
        let op = "len";
        let mut st = lock(&self.shared);
        st.check_handle(self.epoch, op, &self.path)?;
        Ok(st.inode_mut(self.ino, op, &self.path)?.current.len() as u64)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let op = "truncate";
        let mut st = lock(&self.shared);
        st.check_handle(self.epoch, op, &self.path)?;
        st.begin(OpKind::Truncate, op, &self.path, None, Some(clamp_len(len)))?;
        if len > FaultyStorage::MAX_FILE_LEN {
            return Err(too_large(op, &self.path));
        }
        let inode = st.inode_mut(self.ino, op, &self.path)?;
        let len = clamp_len(len);
        inode.current.resize(len, 0);
        if len < inode.durable.len() {
            inode.rewritten = true;
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let op = "fsync";
        let mut st = lock(&self.shared);
        st.check_handle(self.epoch, op, &self.path)?;
        st.begin(OpKind::Sync, op, &self.path, None, None)?;
        let inode = st.inode_mut(self.ino, op, &self.path)?;
        inode.durable.clone_from(&inode.current);
        inode.rewritten = false;
        Ok(())
    }
}

/// A directory lock of [`FaultyStorage`].
struct FaultyLock {
    shared: Arc<Mutex<State>>,
    path: PathBuf,
    token: u64,
}

impl fmt::Debug for FaultyLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyLock")
            .field("path", &self.path)
            .finish()
    }
}

impl DirLock for FaultyLock {}

impl Drop for FaultyLock {
    fn drop(&mut self) {
        let mut st = lock(&self.shared);
        // Tokens are never reused, so a lock taken after a crash survives
        // the drop of one taken before.
        if st.locks.get(&self.path) == Some(&self.token) {
            st.locks.remove(&self.path);
        }
    }
}

impl FaultyStorage {
    fn handle(&self, st: &State, ino: u64, path: PathBuf) -> Box<dyn StorageFile> {
        Box::new(FaultyFile {
            shared: Arc::clone(&self.shared),
            ino,
            epoch: st.epoch,
            path,
        })
    }
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let op = "mkdir";
        let mut st = self.state();
        st.check_frozen(op, path)?;
        let names = parse(path, op)?;
        st.begin(OpKind::CreateDir, op, &join(&names), None, None)?;
        st.create_dir_all(&names, path, false).map(|_| ())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let op = "readdir";
        let st = self.state();
        st.check_frozen(op, path)?;
        let names = parse(path, op)?;
        match st.lookup(&names, path, op)? {
            None => Err(not_found(op, path)),
            Some(Node::File(_)) => Err(not_a_dir(op, path)),
            Some(Node::Dir(dir)) => Ok(st
                .dirs
                .get(&dir)
                .map(|d| {
                    d.current
                        .iter()
                        .map(|(name, node)| DirEntry {
                            name: name.to_string_lossy().into_owned(),
                            kind: match node {
                                Node::File(_) => EntryKind::File,
                                Node::Dir(_) => EntryKind::Dir,
                            },
                        })
                        .collect()
                })
                .unwrap_or_default()),
        }
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        let op = "stat";
        let st = self.state();
        st.check_frozen(op, path)?;
        let names = parse(path, op)?;
        Ok(st.lookup(&names, path, op)?.map(|node| match node {
            Node::File(_) => EntryKind::File,
            Node::Dir(_) => EntryKind::Dir,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let op = "open";
        let mut st = self.state();
        st.check_frozen(op, path)?;
        let names = parse(path, op)?;
        let norm = join(&names);
        let ino = match st.lookup(&names, path, op)? {
            Some(Node::File(ino)) => ino,
            Some(Node::Dir(_)) => return Err(is_a_dir(op, path)),
            None => {
                st.begin(OpKind::Create, op, &norm, None, None)?;
                st.create_file(&names, path, op)?
            }
        };
        Ok(self.handle(&st, ino, norm))
    }

    fn create_truncate(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let op = "create";
        let mut st = self.state();
        st.check_frozen(op, path)?;
        let names = parse(path, op)?;
        let norm = join(&names);
        st.begin(OpKind::Create, op, &norm, None, None)?;
        let ino = match st.lookup(&names, path, op)? {
            Some(Node::File(ino)) => {
                let inode = st.inode_mut(ino, op, path)?;
                inode.current.clear();
                if !inode.durable.is_empty() {
                    inode.rewritten = true;
                }
                ino
            }
            Some(Node::Dir(_)) => return Err(is_a_dir(op, path)),
            None => st.create_file(&names, path, op)?,
        };
        Ok(self.handle(&st, ino, norm))
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let op = "read";
        let st = self.state();
        st.check_frozen(op, path)?;
        let names = parse(path, op)?;
        match st.lookup(&names, path, op)? {
            None => Err(not_found(op, path)),
            Some(Node::Dir(_)) => Err(is_a_dir(op, path)),
            Some(Node::File(ino)) => st
                .inodes
                .get(&ino)
                .map(|i| i.current.clone())
                .ok_or_else(|| error(io::ErrorKind::Other, op, path, "internal: dangling inode")),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let op = "rename";
        let mut st = self.state();
        st.check_frozen(op, from)?;
        let from_names = parse(from, op)?;
        let to_names = parse(to, op)?;
        st.begin(
            OpKind::Rename,
            op,
            &join(&from_names),
            Some(&join(&to_names)),
            None,
        )?;
        st.rename(&from_names, &to_names, from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let op = "fsync dir";
        let mut st = self.state();
        st.check_frozen(op, path)?;
        let names = parse(path, op)?;
        st.begin(OpKind::SyncDir, op, &join(&names), None, None)?;
        match st.lookup(&names, path, op)? {
            None => Err(not_found(op, path)),
            Some(Node::File(_)) => Err(not_a_dir(op, path)),
            Some(Node::Dir(dir)) => {
                let dir = st.dir_mut(dir, op, path)?;
                dir.durable.clone_from(&dir.current);
                Ok(())
            }
        }
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let op = "unlink";
        let mut st = self.state();
        st.check_frozen(op, path)?;
        let names = parse(path, op)?;
        st.begin(OpKind::RemoveFile, op, &join(&names), None, None)?;
        match st.lookup(&names, path, op)? {
            None => Err(not_found(op, path)),
            Some(Node::Dir(_)) => Err(is_a_dir(op, path)),
            Some(Node::File(_)) => {
                let (dir, name) = st.parent(&names, path, op)?;
                st.dir_mut(dir, op, path)?.current.remove(name);
                Ok(())
            }
        }
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let op = "rmdir";
        let mut st = self.state();
        st.check_frozen(op, path)?;
        let names = parse(path, op)?;
        st.begin(OpKind::RemoveDir, op, &join(&names), None, None)?;
        match st.lookup(&names, path, op)? {
            None => Err(not_found(op, path)),
            Some(Node::File(_)) => Err(not_a_dir(op, path)),
            Some(Node::Dir(_)) => {
                // Fails on `/` (it has no parent).
                let (dir, name) = st.parent(&names, path, op)?;
                st.dir_mut(dir, op, path)?.current.remove(name);
                Ok(())
            }
        }
    }

    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let op = "lock";
        let mut st = self.state();
        st.check_frozen(op, path)?;
        let names = parse(path, op)?;
        match st.lookup(&names, path, op)? {
            None => return Err(not_found(op, path)),
            Some(Node::File(_)) => return Err(not_a_dir(op, path)),
            Some(Node::Dir(_)) => {}
        }
        let key = join(&names);
        if st.locks.contains_key(&key) {
            return Err(error(
                io::ErrorKind::WouldBlock,
                op,
                path,
                "locked by another writer",
            ));
        }
        let token = st.next_lock;
        st.next_lock += 1;
        st.locks.insert(key.clone(), token);
        Ok(Box::new(FaultyLock {
            shared: Arc::clone(&self.shared),
            path: key,
            token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    /// `/d` exists durably.
    fn with_dir() -> FaultyStorage {
        let fs = FaultyStorage::new();
        fs.create_dir_all(p("/d")).unwrap();
        fs.sync_dir(p("/")).unwrap();
        fs
    }

    fn is_crashed(err: &io::Error) -> bool {
        err.to_string().contains("crashed")
    }

    #[test]
    fn append_sync_power_loss_keeps_only_synced_bytes() {
        let fs = with_dir();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        fs.sync_dir(p("/d")).unwrap();
        f.append(b"hello").unwrap();
        f.sync().unwrap();
        f.append(b" world").unwrap();
        assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"hello world");
        assert_eq!(f.len().unwrap(), 11);
        assert_eq!(fs.durable_files()[p("/d/f")], b"hello");
        fs.crash(CrashMode::PowerLoss);
        assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"hello");
        assert_eq!(fs.read_file("/d/f").unwrap(), b"hello");
    }

    #[test]
    fn created_file_needs_sync_dir_to_survive() {
        for sync_dir in [false, true] {
            let fs = with_dir();
            let mut f = fs.create_truncate(p("/d/f")).unwrap();
            f.append(b"data").unwrap();
            f.sync().unwrap();
            if sync_dir {
                fs.sync_dir(p("/d")).unwrap();
            }
            fs.crash(CrashMode::PowerLoss);
            let expected = sync_dir.then(|| b"data".to_vec());
            assert_eq!(fs.read_file("/d/f"), expected, "sync_dir = {sync_dir}");
            assert_eq!(fs.kind(p("/d/f")).unwrap().is_some(), sync_dir);
        }
    }

    #[test]
    fn synced_entry_of_unsynced_file_is_empty() {
        let fs = with_dir();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        f.append(b"data").unwrap();
        fs.sync_dir(p("/d")).unwrap();
        fs.crash(CrashMode::PowerLoss);
        assert_eq!(fs.read_file("/d/f").unwrap(), b"");
    }

    #[test]
    fn rename_durable_only_after_sync_dir() {
        for sync in [false, true] {
            let fs = FaultyStorage::new();
            fs.write_file("/d/manifest", b"old").unwrap();
            let mut f = fs.create_truncate(p("/d/manifest.tmp")).unwrap();
            f.append(b"new").unwrap();
            f.sync().unwrap();
            fs.rename(p("/d/manifest.tmp"), p("/d/manifest")).unwrap();
            assert_eq!(fs.read_file("/d/manifest").unwrap(), b"new");
            assert_eq!(fs.kind(p("/d/manifest.tmp")).unwrap(), None);
            if sync {
                fs.sync_dir(p("/d")).unwrap();
            }
            fs.crash(CrashMode::PowerLoss);
            let files = fs.files();
            if sync {
                assert_eq!(files.len(), 1);
                assert_eq!(files[p("/d/manifest")], b"new");
            } else {
                // The temporary file was never durable either.
                assert_eq!(files.len(), 1);
                assert_eq!(files[p("/d/manifest")], b"old");
            }
        }
    }

    #[test]
    fn rename_semantics() {
        let fs = FaultyStorage::new();
        fs.write_file("/a/x", b"x").unwrap();
        fs.write_file("/b/y", b"y").unwrap();
        let err = fs.rename(p("/a/missing"), p("/a/z")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("/a/missing"), "{err}");
        assert_eq!(
            fs.rename(p("/a/x"), p("/nope/x")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.rename(p("/a/x"), p("/b")).unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
        assert_eq!(
            fs.rename(p("/a"), p("/a/sub")).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            fs.rename(p("/a"), p("/b")).unwrap_err().kind(),
            io::ErrorKind::DirectoryNotEmpty
        );
        fs.rename(p("/a/x"), p("/a/x")).unwrap();
        // Directories move with their contents.
        fs.rename(p("/a"), p("/c")).unwrap();
        assert_eq!(fs.read_file("/c/x").unwrap(), b"x");
        assert_eq!(
            fs.dirs(),
            BTreeSet::from([PathBuf::from("/"), "/b".into(), "/c".into()])
        );
        // Replace an existing file across directories.
        fs.rename(p("/c/x"), p("/b/y")).unwrap();
        assert_eq!(fs.read_file("/b/y").unwrap(), b"x");
        assert_eq!(fs.files().len(), 1);
    }

    #[test]
    fn process_crash_keeps_everything_but_kills_handles() {
        let fs = FaultyStorage::new();
        fs.create_dir_all(p("/a/b")).unwrap();
        let mut f = fs.open_append(p("/a/b/f")).unwrap();
        f.append(b"unsynced").unwrap();
        fs.rename(p("/a/b/f"), p("/a/b/g")).unwrap();
        let before = (fs.files(), fs.dirs());
        let durable_before = fs.durable_files();
        fs.crash(CrashMode::ProcessCrash);
        assert_eq!((fs.files(), fs.dirs()), before);
        assert_eq!(fs.durable_files(), durable_before);
        let err = f.append(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert!(is_crashed(&err), "{err}");
        // A power loss later still loses what was never made durable.
        fs.crash(CrashMode::PowerLoss);
        assert!(fs.files().is_empty());
        assert_eq!(fs.dirs(), BTreeSet::from([PathBuf::from("/")]));
    }

    fn torn_run(seed: u64) -> Vec<u8> {
        let fs = with_dir();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        fs.sync_dir(p("/d")).unwrap();
        f.append(b"durable-").unwrap();
        f.sync().unwrap();
        f.append(b"0123456789abcdefghijklmnopqrstuvwxyz").unwrap();
        fs.crash(CrashMode::TornPowerLoss { seed });
        fs.read_file("/d/f").unwrap()
    }

    #[test]
    fn torn_power_loss_keeps_a_deterministic_prefix() {
        let full = b"durable-0123456789abcdefghijklmnopqrstuvwxyz";
        let mut lengths = BTreeSet::new();
        for seed in 0..64 {
            let got = torn_run(seed);
            assert!(got.len() >= 8 && full.starts_with(&got), "{seed}: {got:?}");
            assert_eq!(torn_run(seed), got, "seed {seed} is not deterministic");
            lengths.insert(got.len());
        }
        assert!(lengths.len() > 5, "prefix lengths hardly vary: {lengths:?}");
    }

    #[test]
    fn torn_power_loss_reverts_rewritten_files() {
        for seed in 0..16 {
            let fs = with_dir();
            let mut f = fs.open_append(p("/d/f")).unwrap();
            fs.sync_dir(p("/d")).unwrap();
            f.append(b"abcdef").unwrap();
            f.sync().unwrap();
            f.truncate(2).unwrap();
            f.append(b"XXXXXXXX").unwrap();
            fs.crash(CrashMode::TornPowerLoss { seed });
            assert_eq!(fs.read_file("/d/f").unwrap(), b"abcdef");
        }
    }

    #[test]
    fn injected_error_on_sync_leaves_content_non_durable() {
        let fs = with_dir();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        fs.sync_dir(p("/d")).unwrap();
        f.append(b"abc").unwrap();
        fs.inject_next(OpKind::Sync, Some("/f"), Fault::Error);
        let err = f.sync().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert!(err.to_string().contains("injected fault"), "{err}");
        assert!(err.to_string().contains("/d/f"), "{err}");
        assert_eq!(fs.durable_files()[p("/d/f")], b"");
        fs.crash(CrashMode::PowerLoss);
        assert_eq!(fs.read_file("/d/f").unwrap(), b"");
    }

    #[test]
    fn injected_errors_have_no_effect() {
        let fs = with_dir();
        fs.write_file("/d/a", b"a").unwrap();
        let n = fs.op_count();
        for i in 0..5 {
            fs.inject(n + i, Fault::Error);
        }
        assert!(fs.create_dir_all(p("/d/e")).is_err());
        assert!(fs.create_truncate(p("/d/a")).is_err());
        assert!(fs.rename(p("/d/a"), p("/d/b")).is_err());
        assert!(fs.remove_file(p("/d/a")).is_err());
        assert!(fs.remove_dir_all(p("/d")).is_err());
        assert_eq!(fs.read_file("/d/a").unwrap(), b"a");
        assert_eq!(fs.dirs().len(), 2);
        // Faults were consumed.
        fs.remove_file(p("/d/a")).unwrap();
        assert!(fs.files().is_empty());
    }

    #[test]
    fn inject_next_matches_kind_and_suffix() {
        let fs = with_dir();
        fs.inject_next(OpKind::Create, Some("manifest"), Fault::Error);
        let _ = fs.create_truncate(p("/d/idx")).unwrap();
        assert!(fs.create_truncate(p("/d/manifest")).is_err());
        let _ = fs.create_truncate(p("/d/manifest")).unwrap();
        fs.inject_next(OpKind::Rename, Some("manifest"), Fault::Error);
        fs.create_truncate(p("/d/tmp")).unwrap();
        assert!(fs.rename(p("/d/tmp"), p("/d/manifest")).is_err());
        assert!(fs.read_file("/d/tmp").is_some());
    }

    #[test]
    fn torn_append_writes_a_prefix_and_fails() {
        let fs = with_dir();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        f.append(b"ok").unwrap();
        fs.inject_next(OpKind::Append, None, Fault::Torn { keep: 3 });
        let err = f.append(b"abcdef").unwrap_err();
        assert!(err.to_string().contains("injected fault"), "{err}");
        assert_eq!(fs.read_file("/d/f").unwrap(), b"okabc");
        // keep beyond the length writes everything and still fails.
        fs.inject_next(OpKind::Append, None, Fault::Torn { keep: 100 });
        assert!(f.append(b"gh").is_err());
        assert_eq!(fs.read_file("/d/f").unwrap(), b"okabcgh");
        // The caller rolls back with truncate.
        f.truncate(2).unwrap();
        assert_eq!(fs.read_file("/d/f").unwrap(), b"ok");
        // On other operations Torn is a plain error.
        fs.inject_next(OpKind::Truncate, None, Fault::Torn { keep: 1 });
        assert!(f.truncate(0).is_err());
        assert_eq!(f.len().unwrap(), 2);
    }

    #[test]
    fn crash_fault_freezes_until_crash() {
        let fs = with_dir();
        let mut f = fs.open_append(p("/d/f")).unwrap();
        fs.sync_dir(p("/d")).unwrap();
        f.append(b"a").unwrap();
        f.sync().unwrap();
        let at = fs.op_count() + 1;
        fs.inject(at, Fault::Crash);
        f.append(b"b").unwrap();
        assert!(!fs.is_frozen());
        let err = f.sync().unwrap_err();
        assert!(is_crashed(&err), "{err}");
        assert!(fs.is_frozen());
        // Everything fails now, reads too, and nothing is logged.
        assert!(is_crashed(&f.append(b"c").unwrap_err()));
        assert!(is_crashed(&f.len().unwrap_err()));
        assert!(is_crashed(&f.read_at(0, &mut [0]).unwrap_err()));
        assert!(is_crashed(&fs.read_all(p("/d/f")).unwrap_err()));
        assert!(is_crashed(&fs.kind(p("/d")).unwrap_err()));
        assert!(is_crashed(&fs.read_dir(p("/d")).unwrap_err()));
        assert!(is_crashed(&fs.create_dir_all(p("/x")).unwrap_err()));
        assert!(is_crashed(&fs.open_append(p("/d/f")).unwrap_err()));
        assert!(is_crashed(&fs.lock_dir(p("/d")).unwrap_err()));
        assert_eq!(fs.op_count(), at + 1);
        assert_eq!(fs.read_file("/d/f").unwrap(), b"ab");
        fs.crash(CrashMode::PowerLoss);
        assert!(!fs.is_frozen());
        assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"a");
        assert!(is_crashed(&f.len().unwrap_err()));
        // The log continues.
        let mut g = fs.open_append(p("/d/f")).unwrap();
        g.append(b"z").unwrap();
        assert_eq!(fs.ops().last().unwrap().index, at + 1);
    }

    #[test]
    fn op_log_indexes_every_mutation() {
        let fs = FaultyStorage::new();
        fs.create_dir_all(p("/base/chan")).unwrap(); // 0
        fs.create_dir_all(p("/base/chan")).unwrap(); // 1: creates nothing, still logged
        let mut f = fs.open_append(p("/base/chan/idx")).unwrap(); // 2
        let _existing = fs.open_append(p("/base/chan/idx")).unwrap(); // not logged
        f.append(b"abc").unwrap(); // 3
        f.truncate(1).unwrap(); // 4
        f.sync().unwrap(); // 5
        let _t = fs.create_truncate(p("/base/chan/idx")).unwrap(); // 6
        fs.rename(p("/base/chan/idx"), p("/base/chan/dat")).unwrap(); // 7
        fs.sync_dir(p("/base/chan")).unwrap(); // 8
        fs.remove_file(p("/base/chan/dat")).unwrap(); // 9
        assert!(fs.remove_file(p("/base/chan/dat")).is_err()); // 10: failed, still logged
        fs.remove_dir_all(p("/base")).unwrap(); // 11
        let _ = fs.read_dir(p("/"));
        let _ = fs.kind(p("/base"));
        let rec = |index, kind, path: &str, to: Option<&str>, len| OpRecord {
            index,
            kind,
            path: path.into(),
            to: to.map(PathBuf::from),
            len,
        };
        let expected = vec![
            rec(0, OpKind::CreateDir, "/base/chan", None, None),
            rec(1, OpKind::CreateDir, "/base/chan", None, None),
            rec(2, OpKind::Create, "/base/chan/idx", None, None),
            rec(3, OpKind::Append, "/base/chan/idx", None, Some(3)),
            rec(4, OpKind::Truncate, "/base/chan/idx", None, Some(1)),
            rec(5, OpKind::Sync, "/base/chan/idx", None, None),
            rec(6, OpKind::Create, "/base/chan/idx", None, None),
            rec(
                7,
                OpKind::Rename,
                "/base/chan/idx",
                Some("/base/chan/dat"),
                None,
            ),
            rec(8, OpKind::SyncDir, "/base/chan", None, None),
            rec(9, OpKind::RemoveFile, "/base/chan/dat", None, None),
            rec(10, OpKind::RemoveFile, "/base/chan/dat", None, None),
            rec(11, OpKind::RemoveDir, "/base", None, None),
        ];
        assert_eq!(fs.ops(), expected);
        assert_eq!(fs.op_count(), 12);
    }

    #[test]
    fn crash_at_every_prefix() {
        // A durable "write temp, fsync, rename, fsync dir" protocol must leave
        // either the old or the new content at every crash point.
        fn run(fs: &FaultyStorage) -> io::Result<()> {
            let mut f = fs.create_truncate(p("/d/m.tmp"))?;
            f.append(b"new")?;
            f.sync()?;
            fs.rename(p("/d/m.tmp"), p("/d/m"))?;
            fs.sync_dir(p("/d"))
        }
        let setup = || {
            let fs = FaultyStorage::new();
            fs.write_file("/d/m", b"old").unwrap();
            fs
        };
        let clean = setup();
        run(&clean).unwrap();
        let total = clean.op_count();
        assert_eq!(total, 5);
        let mut seen = BTreeSet::new();
        for n in 0..=total {
            let fs = setup();
            fs.inject(n, Fault::Crash);
            let result = run(&fs);
            assert_eq!(result.is_err(), n < total);
            fs.crash(CrashMode::PowerLoss);
            let m = fs.read_file("/d/m").unwrap();
            assert!(m == b"old" || m == b"new", "{n}: {m:?}");
            seen.insert(m);
        }
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn old_handles_are_dead_after_any_crash() {
        for mode in [
            CrashMode::ProcessCrash,
            CrashMode::PowerLoss,
            CrashMode::TornPowerLoss { seed: 7 },
        ] {
            let fs = FaultyStorage::new();
            fs.write_file("/f", b"x").unwrap();
            let mut f = fs.open_append(p("/f")).unwrap();
            fs.crash(mode);
            for err in [
                f.append(b"y").unwrap_err(),
                f.truncate(0).unwrap_err(),
                f.sync().unwrap_err(),
                f.len().unwrap_err(),
                f.read_at(0, &mut [0]).unwrap_err(),
            ] {
                assert_eq!(err.kind(), io::ErrorKind::Other);
                assert!(is_crashed(&err), "{mode:?}: {err}");
            }
            assert_eq!(fs.read_file("/f").unwrap(), b"x");
            let g = fs.open_append(p("/f")).unwrap();
            assert_eq!(g.len().unwrap(), 1);
        }
    }

    #[test]
    fn locks_are_exclusive_and_released() {
        let fs = with_dir();
        let first = fs.lock_dir(p("/d")).unwrap();
        let err = fs.lock_dir(p("/d/.")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(err.to_string().contains("/d"), "{err}");
        // Another clone shares the locks; another directory is independent.
        assert_eq!(
            fs.clone().lock_dir(p("/d")).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let root = fs.lock_dir(p("/")).unwrap();
        drop(first);
        let second = fs.lock_dir(p("/d")).unwrap();
        // A crash releases every lock; dropping the old guards afterwards
        // must not release the new holder's lock.
        fs.crash(CrashMode::ProcessCrash);
        let third = fs.lock_dir(p("/d")).unwrap();
        drop(second);
        drop(root);
        assert_eq!(
            fs.lock_dir(p("/d")).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(third);
        let _fourth = fs.lock_dir(p("/d")).unwrap();
        assert_eq!(
            fs.lock_dir(p("/missing")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn unsynced_directory_vanishes_with_its_subtree() {
        let fs = FaultyStorage::new();
        fs.create_dir_all(p("/base/chan/v1")).unwrap();
        let mut f = fs.create_truncate(p("/base/chan/v1/idx")).unwrap();
        f.append(b"i").unwrap();
        f.sync().unwrap();
        // Everything below /base is synced, but /base itself is not in `/`.
        for d in ["/base/chan/v1", "/base/chan", "/base"] {
            fs.sync_dir(p(d)).unwrap();
        }
        assert!(fs.durable_files().is_empty());
        assert_eq!(fs.durable_dirs(), BTreeSet::from([PathBuf::from("/")]));
        fs.crash(CrashMode::PowerLoss);
        assert_eq!(fs.kind(p("/base")).unwrap(), None);
        assert_eq!(fs.dirs(), BTreeSet::from([PathBuf::from("/")]));
        assert!(fs.files().is_empty());

        // Syncing the root too makes the whole chain durable.
        fs.create_dir_all(p("/base/chan")).unwrap();
        fs.write_file("/base/chan/x", b"x").unwrap();
        fs.crash(CrashMode::PowerLoss);
        assert_eq!(fs.read_file("/base/chan/x").unwrap(), b"x");
    }

    #[test]
    fn removals_revert_unless_synced() {
        let fs = FaultyStorage::new();
        fs.write_file("/a/f", b"f").unwrap();
        fs.write_file("/a/sub/g", b"g").unwrap();
        fs.remove_file(p("/a/f")).unwrap();
        fs.remove_dir_all(p("/a/sub")).unwrap();
        assert!(fs.files().is_empty());
        fs.crash(CrashMode::PowerLoss);
        assert_eq!(fs.files().len(), 2);
        fs.remove_file(p("/a/f")).unwrap();
        fs.remove_dir_all(p("/a/sub")).unwrap();
        fs.sync_dir(p("/a")).unwrap();
        fs.crash(CrashMode::PowerLoss);
        assert!(fs.files().is_empty());
        assert_eq!(fs.dirs(), BTreeSet::from([PathBuf::from("/"), "/a".into()]));
    }

    #[test]
    fn unlinked_open_file_keeps_working_until_crash() {
        let fs = FaultyStorage::new();
        fs.write_file("/f", b"x").unwrap();
        let mut f = fs.open_append(p("/f")).unwrap();
        fs.remove_file(p("/f")).unwrap();
        f.append(b"y").unwrap();
        f.sync().unwrap();
        assert_eq!(f.len().unwrap(), 2);
        assert!(fs.files().is_empty());
    }

    #[test]
    fn cross_directory_rename_with_one_side_synced() {
        let fs = FaultyStorage::new();
        fs.write_file("/a/f", b"f").unwrap();
        fs.create_dir_all(p("/b")).unwrap();
        fs.sync_dir(p("/")).unwrap();
        fs.rename(p("/a/f"), p("/b/f")).unwrap();
        fs.sync_dir(p("/b")).unwrap();
        // Only the destination directory is durable: both names survive.
        fs.crash(CrashMode::PowerLoss);
        assert_eq!(
            fs.files().keys().cloned().collect::<Vec<_>>(),
            vec![PathBuf::from("/a/f"), "/b/f".into()]
        );
    }

    #[test]
    fn cyclic_durable_directories_do_not_loop() {
        let fs = FaultyStorage::new();
        fs.create_dir_all(p("/a")).unwrap();
        fs.create_dir_all(p("/b")).unwrap();
        fs.sync_dir(p("/")).unwrap();
        fs.rename(p("/b"), p("/a/b")).unwrap();
        fs.sync_dir(p("/a")).unwrap();
        fs.rename(p("/a/b"), p("/b")).unwrap();
        fs.rename(p("/a"), p("/b/a")).unwrap();
        fs.sync_dir(p("/b")).unwrap();
        // Durable: / → {a, b}, a → {b}, b → {a}.
        fs.crash(CrashMode::PowerLoss);
        assert_eq!(
            fs.dirs(),
            BTreeSet::from([PathBuf::from("/"), "/a".into(), "/b".into()])
        );
        assert!(fs.read_dir(p("/a")).unwrap().is_empty());
        assert!(fs.read_dir(p("/b")).unwrap().is_empty());
    }

    #[test]
    fn errors_for_bad_inputs() {
        let fs = FaultyStorage::new();
        fs.write_file("/d/f", b"abc").unwrap();
        let kind = |r: io::Result<()>| r.unwrap_err().kind();
        assert_eq!(
            kind(fs.create_dir_all(p("relative"))),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            fs.open_append(p("d/f")).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            fs.open_append(p("/nope/f")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.open_append(p("/d")).unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
        assert_eq!(
            fs.open_append(p("/")).unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
        assert_eq!(
            fs.open_append(p("/d/f/g")).unwrap_err().kind(),
            io::ErrorKind::NotADirectory
        );
        assert_eq!(
            fs.read_all(p("/d/g")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.read_all(p("/d")).unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
        assert_eq!(
            fs.read_dir(p("/x")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.read_dir(p("/d/f")).unwrap_err().kind(),
            io::ErrorKind::NotADirectory
        );
        assert_eq!(kind(fs.sync_dir(p("/x"))), io::ErrorKind::NotFound);
        assert_eq!(kind(fs.remove_file(p("/d"))), io::ErrorKind::IsADirectory);
        assert_eq!(
            kind(fs.remove_dir_all(p("/d/f"))),
            io::ErrorKind::NotADirectory
        );
        assert_eq!(kind(fs.remove_dir_all(p("/"))), io::ErrorKind::InvalidInput);
        assert_eq!(
            kind(fs.rename(p("/"), p("/x"))),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(fs.create_dir_all(p("/d/f"))),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind(fs.create_dir_all(p("/d/f/g"))),
            io::ErrorKind::NotADirectory
        );
        assert_eq!(kind(fs.remove(p("/x"))), io::ErrorKind::NotFound);
        assert_eq!(kind(fs.write_file("/d", b"")), io::ErrorKind::IsADirectory);
        assert_eq!(fs.read_file("/d"), None);
        assert_eq!(fs.read_file("rel"), None);
        assert_eq!(fs.kind(p("/d/g")).unwrap(), None);
        assert_eq!(fs.kind(p("/d/../d/./f")).unwrap(), Some(EntryKind::File));
        assert_eq!(fs.kind(p("/")).unwrap(), Some(EntryKind::Dir));

        let mut f = fs.open_append(p("/d/f")).unwrap();
        let mut buf = [0u8; 2];
        f.read_at(1, &mut buf).unwrap();
        assert_eq!(&buf, b"bc");
        let err = f.read_at(2, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("/d/f"), "{err}");
        assert_eq!(
            f.read_at(u64::MAX, &mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(
            f.truncate(u64::MAX).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        f.truncate(5).unwrap();
        assert_eq!(fs.read_file("/d/f").unwrap(), b"abc\0\0");
        let entries = fs.read_dir(p("/d")).unwrap();
        assert_eq!(
            entries,
            vec![DirEntry {
                name: "f".into(),
                kind: EntryKind::File
            }]
        );
        assert!(format!("{fs:?}").contains("FaultyStorage"));
        assert!(format!("{f:?}").contains("FaultyFile"));
    }

    #[test]
    fn test_setup_helpers_are_durable_and_unlogged() {
        let fs = FaultyStorage::new();
        fs.write_file("/a/b/c", b"1").unwrap();
        fs.write_file("/a/b/c", b"2").unwrap();
        fs.write_file("/a/d", b"3").unwrap();
        fs.remove("/a/d").unwrap();
        assert_eq!(fs.op_count(), 0);
        fs.crash(CrashMode::PowerLoss);
        assert_eq!(
            fs.files(),
            BTreeMap::from([(PathBuf::from("/a/b/c"), b"2".to_vec())])
        );
        assert_eq!(
            fs.dirs(),
            BTreeSet::from([PathBuf::from("/"), "/a".into(), "/a/b".into()])
        );
    }
}
