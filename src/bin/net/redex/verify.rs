//! `net redex verify`: every check a channel directory can fail, each
//! reported with the file and byte offset where it was found. Read-only.

use std::path::PathBuf;

use indicatif::ProgressBar;
use net::redex::SEQ_LIMIT;
use net::redex::format::{
    DAT_FILE, FLAG_INLINE, FLAG_TOMBSTONE, FLAGS_MASK, IDX_FILE, IDX_RECORD_LEN, MANIFEST_FILE,
    MANIFEST_TMP_FILE, ManifestError, PayloadRef, TS_FILE, TS_RECORD_LEN,
};
use serde_json::{Value, json};

use super::reader::{Check, LiveSource, ManifestState, Snapshot};
use crate::error::Result;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Data is damaged or the format is violated: an entry is or would be
    /// lost, or a file the channel needs is wrong. `verify` exits non-zero.
    Error,
    /// Left over by a crash or an interrupted compaction, or a v0.11 quirk:
    /// the next open cleans it up without losing an entry.
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// One problem, where it is.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// The file (or directory) concerned.
    pub file: PathBuf,
    /// The byte offset in `file`, when the problem has one.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl Finding {
    /// The finding as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "severity": self.severity.as_str(),
            "file": self.file.display().to_string(),
            "offset": self.offset,
            "message": self.message,
        })
    }

    /// The finding as one line of text.
    pub fn to_line(&self) -> String {
        let at = self
            .offset
            .map_or_else(String::new, |o| format!(" at offset {o}"));
        format!(
            "{}: {}{at}: {}",
            self.severity.as_str(),
            self.file.display(),
            self.message
        )
    }
}

/// What verifying one channel found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Index records read.
    pub records: u64,
    /// Records whose payload checked out.
    pub entries: u64,
    /// Hole records.
    pub holes: u64,
    /// The problems, in the order found.
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// Number of error findings.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    fn add(&mut self, severity: Severity, file: PathBuf, offset: Option<u64>, message: String) {
        self.findings.push(Finding {
            severity,
            file,
            offset,
            message,
        });
    }
}

/// Where in the manifest a decoding error lies.
fn manifest_offset(error: ManifestError) -> u64 {
    match error {
        ManifestError::TooShort(len) => len as u64,
        ManifestError::BadMagic => 0,
        ManifestError::UnsupportedVersion(_) => 4,
        ManifestError::ZeroGeneration => 5,
        ManifestError::ReservedNotZero => 9,
        _ => 12,
    }
}

fn check_layout(snapshot: &Snapshot, verdict: &mut Verdict) {
    use Severity::{Error, Warning};
    let dir = &snapshot.channel.dir;
    let manifest = dir.join(MANIFEST_FILE);
    let live_generation = snapshot.live.as_ref().and_then(|l| l.generation);
    match &snapshot.manifest {
        ManifestState::Valid(g) => {
            if snapshot.live.as_ref().map(|l| l.source) != Some(LiveSource::Manifest) {
                let adopted =
                    live_generation.map_or_else(|| "nothing".to_owned(), |g| g.dir_name());
                verdict.add(
                    Error,
                    manifest,
                    Some(5),
                    format!("names generation {g}, which is missing or incomplete (recovery would adopt {adopted})"),
                );
            }
        }
        ManifestState::Invalid(e) => {
            verdict.add(Error, manifest, Some(manifest_offset(*e)), format!("{e}"))
        }
        ManifestState::Missing => {
            if let Some(live) = &snapshot.live {
                let note = match live.source {
                    LiveSource::Legacy => {
                        "pre-v0.11 flat layout; the next open migrates it to v0000000001".to_owned()
                    }
                    _ => format!(
                        "missing; the next open adopts {}",
                        live_generation.map_or_else(String::new, |g| g.dir_name())
                    ),
                };
                verdict.add(Warning, manifest, None, note);
            }
        }
    }
    for g in &snapshot.generations {
        if Some(*g) != live_generation {
            verdict.add(
                Warning,
                dir.join(g.dir_name()),
                None,
                "generation directory left over (an interrupted compaction or sweep); the next open removes it".to_owned(),
            );
        }
    }
    if snapshot.manifest_tmp {
        verdict.add(
            Warning,
            dir.join(MANIFEST_TMP_FILE),
            None,
            "left over by an interrupted manifest update; the next open removes it".to_owned(),
        );
    }
}

/// Checks one channel: manifest and generations, every index record, every
/// payload's checksum, seqs, and the `dat` and `ts` lengths. `progress`
/// advances once per record.
///
/// # Errors
/// A file exists but cannot be read.
pub fn verify(snapshot: &Snapshot, progress: &ProgressBar) -> Result<Verdict> {
    use Severity::{Error, Warning};
    let mut verdict = Verdict::default();
    check_layout(snapshot, &mut verdict);
    let Some(live) = &snapshot.live else {
        return Ok(verdict);
    };
    let idx = live.path(IDX_FILE);
    let dat_path = live.path(DAT_FILE);
    let ts = live.path(TS_FILE);
    for (name, len) in [(&idx, live.idx_len), (&dat_path, live.dat_len)] {
        if len.0.is_none() {
            verdict.add(
                Error,
                name.clone(),
                None,
                "missing from the live generation".to_owned(),
            );
        }
    }
    let idx_len = live.idx_len.0.unwrap_or(0);
    let torn = idx_len % IDX_RECORD_LEN as u64;
    if torn != 0 {
        verdict.add(
            Error,
            idx.clone(),
            Some(idx_len - torn),
            format!("torn record: {torn} trailing bytes (an interrupted append; the next open cuts them)"),
        );
    }
    let dat = live.open_dat()?;
    progress.set_length(live.records.len() as u64);
    let mut previous: Option<(u64, bool)> = None;
    let mut heap_end = 0u64;
    let mut max_heap_end = 0u64;
    for (position, record) in live.records.iter().enumerate() {
        progress.inc(1);
        verdict.records += 1;
        let at = (position * IDX_RECORD_LEN) as u64;
        let label = format!("record {position} (seq {})", record.seq);
        let check = dat.check(record)?;
        let hole = check == Check::Hole;
        if record.seq >= SEQ_LIMIT {
            verdict.add(
                Error,
                idx.clone(),
                Some(at),
                format!("{label}: seq is at or above 2^63"),
            );
        }
        match previous {
            None if live.generation.is_some_and(|g| g.0 == 1) && record.seq != 0 => verdict.add(
                Error,
                idx.clone(),
                Some(at),
                format!("{label}: generation 1 must start at seq 0"),
            ),
            Some((prev, _)) if record.seq <= prev => verdict.add(
                Error,
                idx.clone(),
                Some(at),
                format!("{label}: seq does not increase (previous record has seq {prev})"),
            ),
            Some((prev, prev_hole)) if record.seq > prev + 1 && !(hole || prev_hole) => verdict.add(
                Warning,
                idx.clone(),
                Some(at),
                format!(
                    "{label}: seqs {}..={} are absent (a gap v0.11's compaction leaves after dropping records)",
                    prev + 1,
                    record.seq - 1
                ),
            ),
            _ => {}
        }
        previous = Some((record.seq, hole));
        let unknown_flags = record.extra_flags & FLAGS_MASK & !FLAG_INLINE & !FLAG_TOMBSTONE;
        if unknown_flags != 0 || (record.extra_flags & FLAG_TOMBSTONE != 0 && !hole) {
            verdict.add(
                Error,
                idx.clone(),
                Some(at + 16),
                format!("{label}: flags {:#010x} are reserved", record.extra_flags),
            );
        }
        match (check, record.payload) {
            (Check::Hole, _) => verdict.holes += 1,
            (Check::Valid(_), _) => verdict.entries += 1,
            (Check::Mismatch { actual }, PayloadRef::Heap { offset, len }) => verdict.add(
                Error,
                dat_path.clone(),
                Some(u64::from(offset)),
                format!(
                    "{label}: checksum mismatch: the {len} payload bytes hash to {actual:#09x}, idx (offset {}) says {:#09x}",
                    at + 16,
                    record.checksum
                ),
            ),
            (Check::Mismatch { actual }, PayloadRef::Inline(_)) => verdict.add(
                Error,
                idx.clone(),
                Some(at + 8),
                format!(
                    "{label}: checksum mismatch: the inline payload hashes to {actual:#09x}, the record says {:#09x}",
                    record.checksum
                ),
            ),
            (Check::OutOfRange { dat_len }, PayloadRef::Heap { offset, len }) => verdict.add(
                Error,
                idx.clone(),
                Some(at + 8),
                format!(
                    "{label}: payload {offset}..{} ends past the end of dat ({dat_len} bytes)",
                    u64::from(offset) + u64::from(len)
                ),
            ),
            (Check::OutOfRange { .. }, PayloadRef::Inline(_)) => {}
        }
        if let PayloadRef::Heap { offset, len } = record.payload {
            if u64::from(offset) != heap_end {
                verdict.add(
                    Warning,
                    idx.clone(),
                    Some(at + 8),
                    format!("{label}: payload starts at dat offset {offset}, the previous one ended at {heap_end}"),
                );
            }
            heap_end = u64::from(offset) + u64::from(len);
            max_heap_end = max_heap_end.max(heap_end);
        }
    }
    if dat.len() > max_heap_end && live.dat_len.0.is_some() {
        verdict.add(
            Warning,
            dat_path,
            Some(max_heap_end),
            format!(
                "{} bytes past the last payload (an interrupted append; the next open truncates them)",
                dat.len() - max_heap_end
            ),
        );
    }
    match live.ts_len.0 {
        None => verdict.add(
            Warning,
            ts,
            None,
            "missing: timestamps are lost (age retention treats the entries as new)".to_owned(),
        ),
        Some(len) => {
            let expected = live.records.len() as u64 * TS_RECORD_LEN as u64;
            if len % TS_RECORD_LEN as u64 != 0 {
                verdict.add(
                    Warning,
                    ts.clone(),
                    Some(len - len % TS_RECORD_LEN as u64),
                    "torn timestamp at the end".to_owned(),
                );
            }
            if len < expected {
                verdict.add(
                    Warning,
                    ts,
                    Some(len),
                    format!(
                        "holds {} timestamps for {} records (the next open stamps the rest)",
                        len / TS_RECORD_LEN as u64,
                        live.records.len()
                    ),
                );
            } else if len / TS_RECORD_LEN as u64 > live.records.len() as u64 {
                verdict.add(
                    Warning,
                    ts,
                    Some(expected),
                    format!(
                        "holds {} timestamps for {} records",
                        len / TS_RECORD_LEN as u64,
                        live.records.len()
                    ),
                );
            }
        }
    }
    Ok(verdict)
}
