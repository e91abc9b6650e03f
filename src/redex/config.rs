//! Per-file configuration: persistence, fsync policy, retention.

use std::time::Duration;

use super::error::{RedexError, Result};

/// When appends are made durable (STORAGE.md §8). `close()` always syncs.
///
/// A sync is a full `fsync` of `dat`, then `idx`, then `ts`. Unlike Net v0.11,
/// a failed fsync is never ignored: it poisons the file and every later append
/// fails with [`RedexError::Poisoned`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// No fsync on append (the default). Appends survive a process crash
    /// (they are in the OS page cache) but not a power loss until `sync()`
    /// or `close()`.
    #[default]
    Never,
    /// Sync after every `n` appended entries (a batch counts each entry;
    /// `n = 0` means 1). The append that reaches the count syncs before it
    /// returns, so with `EveryN(1)` a returned append is durable.
    EveryN(u64),
    /// A background thread syncs every period (zero: never).
    Interval(Duration),
    /// Sync every `period` (if non-zero) and, inline, whenever the bytes
    /// appended since the last sync (heap payload + 20 + 8 per entry) reach
    /// `max_bytes` (if non-zero).
    IntervalOrBytes {
        /// Background sync period (zero: none).
        period: Duration,
        /// Inline sync threshold in bytes (zero: none).
        max_bytes: u64,
    },
}

impl FsyncPolicy {
    /// The background period, if this policy has one.
    pub fn period(&self) -> Option<Duration> {
        match *self {
            Self::Interval(period) | Self::IntervalOrBytes { period, .. } if !period.is_zero() => {
                Some(period)
            }
            _ => None,
        }
    }
}

/// Retention limits, applied by `sweep_retention()` (STORAGE.md §9). Each
/// sweep removes the longest prefix that any limit requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// Keep at most this many entries.
    pub max_events: Option<u64>,
    /// Keep at most this many bytes (20 per inline entry, 20 + len per heap entry).
    pub max_bytes: Option<u64>,
    /// Drop entries older than this. An entry exactly `max_age` old is kept
    /// (the cutoff is `timestamp >= now - max_age`).
    pub max_age: Option<Duration>,
}

impl RetentionPolicy {
    /// True when no limit is set.
    pub fn is_unlimited(&self) -> bool {
        self.max_events.is_none() && self.max_bytes.is_none() && self.max_age.is_none()
    }
}

/// How one RedEX file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RedexFileConfig {
    /// Store on disk under the manager's directory (false: memory only).
    pub persistent: bool,
    /// When appends are made durable (persistent files only).
    pub fsync: FsyncPolicy,
    /// Limits applied by `sweep_retention()`.
    pub retention: RetentionPolicy,
    /// When the live generation lost its `idx` or `dat` (or the manifest
    /// names a missing generation), rebuild the channel from what can be
    /// proven instead of failing with [`RedexError::Corrupt`]. What is lost
    /// is listed in the file's recovery report. Off by default: a missing
    /// file usually means a mistake worth stopping for.
    pub repair: bool,
}

impl RedexFileConfig {
    /// An in-memory file with no limits.
    pub fn heap() -> Self {
        Self::default()
    }

    /// A persistent file with fsync policy `Never` and no limits.
    pub fn persistent() -> Self {
        Self {
            persistent: true,
            ..Self::default()
        }
    }

    /// Sets the fsync policy.
    #[must_use]
    pub fn with_fsync(mut self, fsync: FsyncPolicy) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets the retention limits.
    #[must_use]
    pub fn with_retention(mut self, retention: RetentionPolicy) -> Self {
        self.retention = retention;
        self
    }

    /// Sets [`repair`](Self::repair).
    #[must_use]
    pub fn with_repair(mut self, repair: bool) -> Self {
        self.repair = repair;
        self
    }

    /// Checks the configuration for contradictions.
    ///
    /// # Errors
    /// [`RedexError::InvalidConfig`] naming the setting: an fsync policy other
    /// than `Never` on a memory-only file, or `repair` on one.
    pub fn validate(&self) -> Result<()> {
        if !self.persistent && self.repair {
            return Err(RedexError::InvalidConfig(
                "repair: only a persistent file can be repaired".into(),
            ));
        }
        if !self.persistent && self.fsync != FsyncPolicy::Never {
            return Err(RedexError::InvalidConfig(
                "fsync: a policy other than Never needs persistent = true".into(),
            ));
        }
        Ok(())
    }
}
