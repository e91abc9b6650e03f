//! The safety envelope's audit ring (COMPUTE.md §4.6): the last 10 000
//! blocked requests, warnings and errors (successes only when asked).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Entries the ring keeps.
pub const AUDIT_CAPACITY: usize = 10_000;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditKind {
    /// A request was refused.
    Blocked,
    /// A request was admitted despite a violation (AuditOnly, or a
    /// Warn/Log policy).
    Warning,
    /// Something went wrong (an arithmetic overflow was refused).
    Error,
    /// A request was admitted cleanly (only with `log_success`).
    Success,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// `now_ms` of the call.
    pub at_ms: u64,
    /// The request's source.
    pub source: String,
    /// Kind.
    pub kind: AuditKind,
    /// The violation, or "admitted".
    pub detail: String,
}

/// Which entries to keep (JSON: missing fields default, unknown ones are
/// an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Keep nothing at all when false.
    pub enabled: bool,
    /// Keep admitted requests (default off).
    pub log_success: bool,
    /// Keep refused requests (default on).
    pub log_blocked: bool,
    /// Keep warnings (default on).
    pub log_warnings: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            log_success: false,
            log_blocked: true,
            log_warnings: true,
        }
    }
}

/// A bounded ring of entries, oldest first.
#[derive(Debug, Default)]
pub(crate) struct AuditRing {
    entries: VecDeque<AuditEntry>,
}

impl AuditRing {
    pub fn push(&mut self, config: &AuditConfig, entry: AuditEntry) {
        let keep = config.enabled
            && match entry.kind {
                AuditKind::Blocked => config.log_blocked,
                AuditKind::Warning => config.log_warnings,
                AuditKind::Error => true,
                AuditKind::Success => config.log_success,
            };
        if !keep {
            return;
        }
        if self.entries.len() == AUDIT_CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub fn entries(&self) -> Vec<AuditEntry> {
        self.entries.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
