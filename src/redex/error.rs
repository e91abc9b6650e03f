//! `RedexError`: every way a RedEX operation can fail, each with what the
//! caller can do about it.

use std::io;
use std::path::PathBuf;

use crate::identity::ChannelNameError;

/// A failed RedEX operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedexError {
    /// An I/O operation failed. Nothing was appended; if the failure left the
    /// files in a state that could not be rolled back, the file is also
    /// poisoned (see [`RedexError::Poisoned`]).
    #[error("{op} failed: {source}")]
    Io {
        /// What was being done ("append to dat", "fsync", ...).
        op: &'static str,
        /// The underlying error (its message names the path).
        #[source]
        source: io::Error,
    },
    /// The file refuses appends because an earlier failure left its on-disk
    /// state uncertain: a failed fsync, or a partial write that could not be
    /// rolled back. Reads still work. Close and reopen the file: recovery
    /// brings disk and memory back in line.
    #[error("file is poisoned and refuses appends: {0}")]
    Poisoned(String),
    /// The entry was appended (it has sequence number `seq` and is visible to
    /// readers) but the fsync its policy requires failed, so it may not be
    /// durable. The file is now poisoned. Do not re-append it: reopen.
    #[error("appended as seq {seq}, but fsync failed (file now poisoned): {source}")]
    SyncFailed {
        /// The first sequence number of the append.
        seq: u64,
        /// The fsync error.
        #[source]
        source: io::Error,
    },
    /// Another writer (in this process or another) holds the channel
    /// directory. RedEX allows one writer per channel; close the other one.
    #[error("channel directory {0} is locked by another writer")]
    Locked(PathBuf),
    /// The file has been closed.
    #[error("file is closed")]
    Closed,
    /// The channel name is not valid (IDENTITY.md §6.1).
    #[error("invalid channel name: {0}")]
    InvalidChannel(#[from] ChannelNameError),
    /// The configuration is inconsistent; the message names the setting.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// `append_inline` takes exactly 8 bytes.
    #[error("append_inline needs exactly 8 bytes, got {0}")]
    InlineLength(usize),
    /// A heap record cannot carry the INLINE flag.
    #[error("a heap index record cannot carry the INLINE flag")]
    InlineFlagOnHeap,
    /// The payload (or batch) would end past the 4 GiB `dat` offset limit, or
    /// one payload is longer than 4 GiB − 1. Compact or use another channel.
    #[error("payload would end at byte {end} of dat, past the u32 offset limit")]
    OffsetOverflow {
        /// Where it would end.
        end: u64,
    },
    /// The live heap would exceed 3 GiB. Sweep retention or compact.
    #[error("live heap would be {would_be} bytes; the limit is 3 GiB")]
    HeapFull {
        /// The size the append would reach.
        would_be: u64,
    },
    /// The generation counter is at its maximum; no further compaction.
    #[error("generation counter exhausted; cannot compact further")]
    GenerationOverflow,
    /// The base directory is required for a persistent file.
    #[error("persistent file {0:?} needs a Redex with a persistent directory")]
    NoPersistentDir(String),
    /// A file the channel needs is missing or damaged beyond what recovery
    /// may decide alone (for example the live generation's `idx` or `dat`
    /// was deleted). Nothing was changed; `path` names the file. Restore it,
    /// or open with `RedexFileConfig::repair` to keep what can be proven
    /// (the recovery report then says what was lost).
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The missing or damaged file or directory.
        path: PathBuf,
        /// What is wrong and what was (not) done.
        reason: String,
    },
    /// The file has used every sequence number below
    /// [`SEQ_LIMIT`](super::SEQ_LIMIT) (in practice: a corrupt seq near
    /// `u64::MAX` that recovery could not rule out). Nothing was appended.
    #[error("sequence numbers exhausted at {next_seq}; nothing was appended")]
    SeqExhausted {
        /// The seq the append would have taken.
        next_seq: u64,
    },
    /// A typed payload could not be encoded or decoded with postcard.
    #[error("postcard codec error at seq {seq:?}: {source}")]
    Codec {
        /// The entry concerned, when reading.
        seq: Option<u64>,
        /// The codec error.
        #[source]
        source: postcard::Error,
    },
}

impl RedexError {
    pub(crate) fn io(op: &'static str, source: io::Error) -> Self {
        Self::Io { op, source }
    }
}

/// Result alias for RedEX operations.
pub type Result<T, E = RedexError> = std::result::Result<T, E>;
