//! RedEX: Net's crash-safe, per-channel append-only log, byte-compatible with
//! Net v0.11 on disk (STORAGE.md §1–9).
//!
//! A [`Redex`](crate::redex::Redex) opens [`RedexFile`](crate::redex::RedexFile)s by channel name, in memory or under a base
//! directory. Appends get consecutive sequence numbers; `RedexFile::tail`
//! reads from any point and then follows new appends; retention removes
//! prefixes and, on disk, compacts into a new generation behind an atomic
//! manifest flip. `docs/redex.md` gives the format, what each fsync policy
//! promises, and the crash argument of recovery and compaction.
//!
//! Stronger than Net v0.11 on purpose: a failed fsync poisons the file instead
//! of being logged and ignored; each channel directory has a single-writer
//! lock; tails backfill any length from the log.

mod config;
mod disk;
mod entry;
mod error;
#[cfg(any(test, feature = "test-util"))]
pub mod fault;
mod file;
pub mod format;
mod index;
mod manager;
mod recovery;
pub mod storage;
mod syncer;
mod tail;
mod typed;

pub use config::{FsyncPolicy, RedexFileConfig, RetentionPolicy};
pub use error::{RedexError, Result};
pub use file::RedexFile;
pub(crate) use file::now_ns;
pub use index::RedexIndex;
pub use manager::Redex;
pub use recovery::{DropReason, DroppedRecord, RecoveryReport, SEQ_LIMIT};
pub use tail::{RedexTail, TailBatch, TailCloser, TailEntry, TailItem, TailPoll};
pub use typed::{OrderedAppender, TypedItem, TypedRedexFile, TypedTail};
