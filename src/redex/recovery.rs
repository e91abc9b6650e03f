//! Which index records of a generation recovery keeps, which become holes,
//! and what it reports: the pure half of opening a channel (no I/O). See
//! `docs/redex.md` ("Opening and recovery") for the argument.
//!
//! The 28-bit checksum covers a record's payload, not its seq, so a record's
//! seq is only believed when its neighbours corroborate it. Within a
//! generation Net writes seqs consecutively (a record at position `p + k` has
//! seq `s + k` when the one at `p` has `s`): a *run* is a stretch of records
//! that keep that rule. Net v0.11 can leave legitimate gaps (it compacts
//! after dropping corrupt records), so several runs with increasing seqs are
//! accepted; the chosen runs are the heaviest increasing chain, and a run of
//! one record that no neighbour corroborates is treated as corrupt. Every
//! record that is not kept keeps its *slot*: it becomes a hole (a tombstone
//! record) with the seq its position implies, so no seq that may have been
//! handed out is ever reused, and nothing dropped can come back.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::format::{CHECKSUM_MASK, FLAG_TOMBSTONE, INLINE_LEN, IdxRecord, PayloadRef, checksum28};

/// Sequence numbers are below this. A record claiming a seq at or above it
/// is corrupt, and an append that would need one is refused
/// ([`super::RedexError::SeqExhausted`]): 2^63 leaves the top half of the
/// u64 range as a margin that no real log reaches (29 000 years at ten
/// million appends a second), so no seq arithmetic can wrap.
pub const SEQ_LIMIT: u64 = 1 << 63;

/// The payload bytes of a hole record.
const HOLE_PAYLOAD: [u8; INLINE_LEN] = *b"NET-HOLE";

/// The checksum field of a hole record: the complement of the payload's
/// checksum, so Net v0.11 (which ignores the reserved TOMBSTONE flag) drops
/// the record as corrupt and never returns it as an entry, and no single
/// damaged bit can turn a hole into a valid entry (pinned by a test).
fn hole_checksum() -> u32 {
    !checksum28(&HOLE_PAYLOAD) & CHECKSUM_MASK
}

/// The index record that marks `seq` as a hole: an inline record with the
/// TOMBSTONE flag and a checksum that never matches.
pub(crate) fn hole_record(seq: u64) -> IdxRecord {
    IdxRecord {
        seq,
        payload: PayloadRef::Inline(HOLE_PAYLOAD),
        extra_flags: FLAG_TOMBSTONE,
        checksum: hole_checksum(),
    }
}

/// Whether `record` is a hole written by [`hole_record`].
pub(crate) fn is_hole(record: &IdxRecord) -> bool {
    record.extra_flags == FLAG_TOMBSTONE
        && record.payload == PayloadRef::Inline(HOLE_PAYLOAD)
        && record.checksum == hole_checksum()
}

/// What checking a record's payload found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadCheck {
    /// The payload matches its checksum.
    Valid,
    /// A hole record.
    Hole,
    /// The payload does not match its checksum.
    ChecksumMismatch,
    /// A heap payload that ends past `dat`.
    OutOfRange,
}

/// Why recovery dropped a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The payload does not match the record's checksum.
    ChecksumMismatch,
    /// The record's heap payload ends past the end of `dat` (a torn append,
    /// a truncated `dat`, or a corrupt offset or length).
    PayloadOutOfRange,
    /// The record's seq is at or above [`SEQ_LIMIT`].
    SeqOutOfRange,
    /// The record's seq does not continue the run of its neighbours, so it
    /// cannot be trusted (its payload may be another entry's).
    SeqBreaksRun,
}

impl DropReason {
    /// A short stable name (`checksum_mismatch`, ...), as in the stats JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::PayloadOutOfRange => "payload_out_of_range",
            Self::SeqOutOfRange => "seq_out_of_range",
            Self::SeqBreaksRun => "seq_breaks_run",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record recovery dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DroppedRecord {
    /// The record's position in `idx` (0-based) as found.
    pub position: u64,
    /// The seq its slot keeps as a hole (never reused), or `None` when its
    /// position leaves no seq free for it.
    pub seq: Option<u64>,
    /// The seq the record claimed (the same as `seq` unless the seq itself
    /// was the damage).
    pub stored_seq: u64,
    /// Why it was dropped.
    pub reason: DropReason,
}

/// What opening a persistent channel found and did. Everything recovery
/// drops is listed here and logged as a warning; nothing is dropped silently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The live generation after the open.
    pub generation: u32,
    /// Whole index records found in `idx`.
    pub records: u64,
    /// Entries recovered (readable).
    pub entries: u64,
    /// Hole records in the index after the open (seqs that are known
    /// missing and never reused), including those this open made.
    pub holes: u64,
    /// The records this open dropped, with why.
    pub dropped: Vec<DroppedRecord>,
    /// Bytes of a partial record cut from the end of `idx` (a torn write).
    pub torn_idx_bytes: u64,
    /// Bytes cut from the end of `dat` that no kept entry refers to.
    pub dat_truncated_bytes: u64,
    /// Entries (and holes) whose timestamp `ts` lacked, stamped with the time
    /// of the open (only age retention reads timestamps).
    pub timestamps_restored: u64,
    /// Whether `idx` and `ts` were rewritten (atomically) to record drops.
    pub index_rewritten: bool,
    /// Whether the open was asked to repair (`RedexFileConfig::repair`) and
    /// had to.
    pub repaired: bool,
    /// Other findings, one sentence each (an invalid manifest, a missing
    /// `ts`, what a repair gave up).
    pub notes: Vec<String>,
}

impl RecoveryReport {
    /// True when the open found nothing to drop, cut or repair.
    pub fn is_clean(&self) -> bool {
        self.dropped.is_empty()
            && self.torn_idx_bytes == 0
            && self.dat_truncated_bytes == 0
            && self.timestamps_restored == 0
            && !self.repaired
            && self.notes.is_empty()
    }

    /// The report as a JSON object (the form the C ABI returns).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "generation": self.generation,
            "records": self.records,
            "entries": self.entries,
            "holes": self.holes,
            "dropped": self.dropped.iter().map(|d| serde_json::json!({
                "position": d.position,
                "seq": d.seq,
                "stored_seq": d.stored_seq,
                "reason": d.reason.as_str(),
            })).collect::<Vec<_>>(),
            "torn_idx_bytes": self.torn_idx_bytes,
            "dat_truncated_bytes": self.dat_truncated_bytes,
            "timestamps_restored": self.timestamps_restored,
            "index_rewritten": self.index_rewritten,
            "repaired": self.repaired,
            "notes": self.notes,
            "clean": self.is_clean(),
        })
    }
}

/// What recovery decided for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// An entry: kept as it is.
    Keep,
    /// A hole with this seq (already one, or a dropped record turned into one).
    Hole(u64),
    /// Removed from `idx` (no seq is free for its position).
    Remove,
}

/// The outcome of [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// One decision per record, in `idx` order.
    pub(crate) decisions: Vec<Decision>,
    /// The records dropped by this recovery (holes found as holes are not
    /// listed: they were reported when they were made).
    pub(crate) dropped: Vec<DroppedRecord>,
    /// Whether `idx` must be rewritten: some decision is not what is on disk.
    pub(crate) rewrite: bool,
    /// The seq the next append gets.
    pub(crate) next_seq: u64,
}

/// A record recovery may believe: a valid entry or a hole.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    position: usize,
    seq: u64,
}

/// A stretch of candidates whose seqs advance exactly with their positions.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Index into the candidate list of the first and last member.
    first: usize,
    last: usize,
}

/// Whether `b` continues `a`: its seq is `a`'s plus the distance between them.
fn continues(a: Candidate, b: Candidate) -> bool {
    let distance = (b.position - a.position) as u64;
    a.seq.checked_add(distance) == Some(b.seq)
}

/// Decides, for the records of one generation and what checking their
/// payloads found, which are kept, which become holes and which go; and the
/// next seq. `anchored` says the generation's first record has seq 0 (true
/// of generation 1, which is never compacted): it vouches for a lone first
/// record only when that record's seq is its position. Pure and total: any
/// input gives a plan in which the kept and hole seqs strictly increase in
/// `idx` order and stay below [`SEQ_LIMIT`].
pub(crate) fn plan(records: &[IdxRecord], checks: &[PayloadCheck], anchored: bool) -> Plan {
    debug_assert_eq!(records.len(), checks.len());
    if let Some(plan) = clean_plan(records, checks, anchored) {
        return plan;
    }
    let candidates: Vec<Candidate> = records
        .iter()
        .zip(checks)
        .enumerate()
        .filter(|(_, (r, c))| {
            matches!(c, PayloadCheck::Valid | PayloadCheck::Hole) && r.seq < SEQ_LIMIT
        })
        .map(|(position, (r, _))| Candidate {
            position,
            seq: r.seq,
        })
        .collect();

    let runs = runs_of(&candidates);
    let chain = heaviest_increasing_chain(&candidates, &runs);
    let accepted = corroborated(&candidates, &runs, &chain, anchored);

    // Every position's decision: accepted candidates keep their seq; every
    // other position gets the seq its place between accepted ones implies.
    let mut trusted: Vec<(usize, u64)> = accepted
        .iter()
        .flat_map(|&run| &candidates[runs[run].first..=runs[run].last])
        .map(|c| (c.position, c.seq))
        .collect();
    trusted.sort_unstable();
    let fallback_base = if anchored {
        Some(0)
    } else if trusted.is_empty() {
        most_common_base(records)
    } else {
        None
    };
    let mut slots = Slots {
        trusted: &trusted,
        next: 0,
        last_given: None,
        fallback_base,
    };

    let mut decisions = Vec::with_capacity(records.len());
    let mut dropped = Vec::new();
    let mut rewrite = false;
    for (position, record) in records.iter().enumerate() {
        let check = checks[position];
        let trusted_seq = slots.trusted_at(position);
        let decision = match (trusted_seq, check) {
            (Some(_), PayloadCheck::Valid) => Decision::Keep,
            (Some(seq), _) => Decision::Hole(seq),
            (None, _) => slots
                .slot_seq(position)
                .map_or(Decision::Remove, Decision::Hole),
        };
        let unchanged = match decision {
            Decision::Keep => true,
            Decision::Hole(seq) => check == PayloadCheck::Hole && record.seq == seq,
            Decision::Remove => false,
        };
        rewrite |= !unchanged;
        if trusted_seq.is_none() && check != PayloadCheck::Hole {
            let reason = match check {
                PayloadCheck::ChecksumMismatch => DropReason::ChecksumMismatch,
                PayloadCheck::OutOfRange => DropReason::PayloadOutOfRange,
                _ if record.seq >= SEQ_LIMIT => DropReason::SeqOutOfRange,
                _ => DropReason::SeqBreaksRun,
            };
            dropped.push(DroppedRecord {
                position: position as u64,
                seq: match decision {
                    Decision::Hole(seq) => Some(seq),
                    _ => None,
                },
                stored_seq: record.seq,
                reason,
            });
        }
        decisions.push(decision);
    }
    let next_seq = decisions
        .iter()
        .zip(records)
        .rev()
        .find_map(|(d, r)| match d {
            Decision::Keep => Some(r.seq),
            Decision::Hole(seq) => Some(*seq),
            Decision::Remove => None,
        })
        .map_or(0, |last| last + 1);
    Plan {
        decisions,
        dropped,
        rewrite,
        next_seq,
    }
}

/// The plan for the common case, found in one pass: every payload valid,
/// seqs consecutive from the first (from 0 in an anchored generation) and
/// below the limit. `None` when recovery has anything to decide.
fn clean_plan(records: &[IdxRecord], checks: &[PayloadCheck], anchored: bool) -> Option<Plan> {
    let first = records.first().map_or(0, |r| r.seq);
    let consecutive = records
        .iter()
        .enumerate()
        .all(|(i, r)| first.checked_add(i as u64) == Some(r.seq));
    let clean = consecutive
        && (!anchored || first == 0)
        && checks.iter().all(|c| *c == PayloadCheck::Valid)
        && records.last().is_none_or(|r| r.seq < SEQ_LIMIT);
    clean.then(|| Plan {
        decisions: vec![Decision::Keep; records.len()],
        dropped: Vec::new(),
        rewrite: false,
        next_seq: records.last().map_or(0, |r| r.seq + 1),
    })
}

fn runs_of(candidates: &[Candidate]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if continues(candidates[run.last], *c) => run.last = i,
            _ => runs.push(Run { first: i, last: i }),
        }
    }
    runs
}

fn run_len(run: Run) -> usize {
    run.last - run.first + 1
}

/// The runs (indices into `runs`, in order) of the increasing chain with the
/// most records: each run's first seq above the previous run's last. Among
/// chains with as many records, the one with more links where a run
/// continues its predecessor (same `seq - position`) wins, then the one
/// ending at the lowest seq. O(R log R).
fn heaviest_increasing_chain(candidates: &[Candidate], runs: &[Run]) -> Vec<usize> {
    // Weight: 2 per record plus 1 per continuing link.
    //
    // frontier: last seq of a chain's final run -> (weight, that run). Kept
    // so that weights strictly increase with the key: an entry that a
    // lower-keyed one outweighs can never be the best plain predecessor.
    let mut frontier: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    // seq - position -> the latest run on that line, for continuing links.
    let mut latest_on_line: HashMap<u64, usize> = HashMap::new();
    let mut best = vec![0usize; runs.len()];
    let mut previous: Vec<Option<usize>> = vec![None; runs.len()];
    for (i, run) in runs.iter().enumerate() {
        let head = candidates[run.first];
        let first = head.seq;
        let last = candidates[run.last].seq;
        let line = head.seq.wrapping_sub(head.position as u64);
        let own = 2 * run_len(*run);
        let plain = frontier
            .range(..first)
            .next_back()
            .map(|(_, &(w, r))| (w + own, Some(r)));
        let continuing = latest_on_line
            .get(&line)
            .map(|&r| (best[r] + own + 1, Some(r)));
        let (weight, before) = [plain, continuing]
            .into_iter()
            .flatten()
            .max_by_key(|(w, _)| *w)
            .unwrap_or((own, None));
        best[i] = weight;
        previous[i] = before;
        latest_on_line.insert(line, i);
        if frontier
            .range(..=last)
            .next_back()
            .is_some_and(|(_, (w, _))| *w >= weight)
        {
            continue;
        }
        let outweighed: Vec<u64> = frontier
            .range(last..)
            .take_while(|(_, (w, _))| *w <= weight)
            .map(|(k, _)| *k)
            .collect();
        for key in outweighed {
            frontier.remove(&key);
        }
        frontier.insert(last, (weight, i));
    }
    let mut chain = Vec::new();
    let mut at = frontier.values().next_back().map(|(_, r)| *r);
    while let Some(run) = at {
        chain.push(run);
        at = previous[run];
    }
    chain.reverse();
    chain
}

/// The runs of `chain` recovery believes: every run of two or more, and a
/// single record only when it continues its predecessor in the chain, is
/// continued by its successor, or (in an anchored generation) sits where
/// seq 0 at position 0 puts it. A chain of one lone record is believed
/// unless the anchor contradicts it (there is nothing to compare it with).
/// Lone records that contradict each other are all disbelieved: believing
/// the wrong one would return a payload under another entry's seq.
fn corroborated(
    candidates: &[Candidate],
    runs: &[Run],
    chain: &[usize],
    anchored: bool,
) -> Vec<usize> {
    let fits_anchor = |c: Candidate| c.seq == c.position as u64;
    let kept: Vec<usize> = chain
        .iter()
        .enumerate()
        .filter(|&(k, &run)| {
            let this = runs[run];
            if run_len(this) > 1 {
                return true;
            }
            let me = candidates[this.first];
            if anchored && fits_anchor(me) {
                return true;
            }
            if chain.len() == 1 {
                return !anchored;
            }
            let after_previous = k
                .checked_sub(1)
                .is_some_and(|p| continues(candidates[runs[chain[p]].last], me));
            let before_next = chain
                .get(k + 1)
                .is_some_and(|&n| continues(me, candidates[runs[n].first]));
            after_previous || before_next
        })
        .map(|(_, &run)| run)
        .collect();
    kept
}

/// Walks the positions in order, knowing the trusted records (sorted by
/// position), and gives every position without a trusted seq the seq its
/// slot keeps: the one its distance from the nearest trusted record before
/// it implies (or, at the head, after it), if that fits strictly between the
/// seqs around it and below [`SEQ_LIMIT`]. With nothing trusted at all, the
/// anchor (seq = position) or else the most common `seq - position` of the
/// records decides.
struct Slots<'a> {
    trusted: &'a [(usize, u64)],
    /// Index in `trusted` of the first trusted record at or after the
    /// position being decided.
    next: usize,
    /// The last seq given to any earlier position (a slot must be above it).
    last_given: Option<u64>,
    fallback_base: Option<u64>,
}

impl Slots<'_> {
    /// The trusted seq at `position`, if any (positions are asked in order).
    fn trusted_at(&mut self, position: usize) -> Option<u64> {
        match self.trusted.get(self.next) {
            Some(&(p, seq)) if p == position => {
                self.next += 1;
                self.last_given = Some(seq);
                Some(seq)
            }
            _ => None,
        }
    }

    /// The seq the slot at `position` (not trusted) keeps, if one is free.
    fn slot_seq(&mut self, position: usize) -> Option<u64> {
        let previous = self.next.checked_sub(1).map(|i| self.trusted[i]);
        let next = self.trusted.get(self.next).copied();
        let last_given = self.last_given;
        let below_next = |seq: u64| next.is_none_or(|(_, n)| seq < n);
        let above_previous = |seq: u64| last_given.is_none_or(|prev| seq > prev);
        let from_previous = previous.and_then(|(q, seq)| seq.checked_add((position - q) as u64));
        let from_next = next.and_then(|(q, seq)| seq.checked_sub((q - position) as u64));
        let from_base = self
            .fallback_base
            .and_then(|base| base.checked_add(position as u64));
        let seq = [from_previous, from_next, from_base]
            .into_iter()
            .flatten()
            .find(|&seq| seq < SEQ_LIMIT && below_next(seq) && above_previous(seq));
        if seq.is_some() {
            self.last_given = seq;
        }
        seq
    }
}

/// The most common `seq - position` among records whose seq is plausible,
/// or 0 when none is. Ties go to the largest, so seqs that may have been
/// handed out are not reused (at worst some are skipped).
fn most_common_base(records: &[IdxRecord]) -> Option<u64> {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for (p, r) in records.iter().enumerate() {
        if r.seq < SEQ_LIMIT
            && let Some(base) = r.seq.checked_sub(p as u64)
        {
            *counts.entry(base).or_default() += 1;
        }
    }
    Some(
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)))
            .map_or(0, |(base, _)| base),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heap(seq: u64) -> IdxRecord {
        IdxRecord::heap(seq, 0, 0, checksum28(&[]))
    }

    fn valid(seqs: &[u64]) -> (Vec<IdxRecord>, Vec<PayloadCheck>) {
        (
            seqs.iter().map(|&s| heap(s)).collect(),
            vec![PayloadCheck::Valid; seqs.len()],
        )
    }

    fn outcome(plan: &Plan, records: &[IdxRecord]) -> Vec<String> {
        plan.decisions
            .iter()
            .zip(records)
            .map(|(d, r)| match d {
                Decision::Keep => format!("{}", r.seq),
                Decision::Hole(s) => format!("h{s}"),
                Decision::Remove => "x".to_owned(),
            })
            .collect()
    }

    fn run(seqs: &[u64], checks: &[(usize, PayloadCheck)]) -> (Plan, Vec<String>) {
        let (records, mut all) = valid(seqs);
        for &(i, c) in checks {
            all[i] = c;
        }
        let p = plan(&records, &all, false);
        let o = outcome(&p, &records);
        (p, o)
    }

    #[test]
    fn a_clean_log_is_kept_untouched() {
        let (p, _) = run(&[5, 6, 7, 8], &[]);
        assert!(p.decisions.iter().all(|d| *d == Decision::Keep));
        assert!(!p.rewrite);
        assert!(p.dropped.is_empty());
        assert_eq!(p.next_seq, 9);
        let (p, _) = run(&[], &[]);
        assert_eq!((p.next_seq, p.rewrite), (0, false));
    }

    #[test]
    fn a_flipped_seq_in_the_middle_is_dropped_and_its_neighbours_kept() {
        let mut seqs: Vec<u64> = (0..300).collect();
        seqs[22] = 54;
        let (p, o) = run(&seqs, &[]);
        assert_eq!(o[22], "h22");
        assert!(
            o.iter()
                .enumerate()
                .all(|(i, s)| i == 22 || *s == i.to_string())
        );
        assert_eq!(p.next_seq, 300);
        assert_eq!(
            p.dropped,
            vec![DroppedRecord {
                position: 22,
                seq: Some(22),
                stored_seq: 54,
                reason: DropReason::SeqBreaksRun
            }]
        );
        seqs[22] = 22;
        seqs[100] = 100 | (1 << 40);
        let (p, o) = run(&seqs, &[]);
        assert_eq!(o[100], "h100");
        assert_eq!(p.next_seq, 300);
    }

    #[test]
    fn a_flipped_seq_at_either_end_is_caught() {
        let mut seqs: Vec<u64> = (0..10).collect();
        seqs[9] = 9 | (1 << 40);
        let (p, o) = run(&seqs, &[]);
        assert_eq!(o[9], "h9");
        assert_eq!(p.next_seq, 10);
        let mut seqs: Vec<u64> = (0..10).collect();
        seqs[0] = 77;
        let (_, o) = run(&seqs, &[]);
        assert_eq!(o[0], "h0");
        seqs[0] = u64::MAX;
        let (p, o) = run(&seqs, &[]);
        assert_eq!(o[0], "h0");
        assert_eq!(p.dropped[0].reason, DropReason::SeqOutOfRange);
    }

    #[test]
    fn seqs_at_the_limit_never_reach_next_seq() {
        let (p, o) = run(&[0, 1, u64::MAX], &[]);
        assert_eq!(o, ["0", "1", "h2"]);
        assert_eq!(p.next_seq, 3);
        let (p, o) = run(&[SEQ_LIMIT - 2, SEQ_LIMIT - 1, SEQ_LIMIT], &[]);
        assert_eq!(
            o[2], "x",
            "no seq below the limit is free for the last slot"
        );
        assert_eq!(p.next_seq, SEQ_LIMIT);
    }

    #[test]
    fn checksum_failures_keep_their_slots() {
        let (p, o) = run(&[0, 1, 2, 3], &[(1, PayloadCheck::ChecksumMismatch)]);
        assert_eq!(o, ["0", "h1", "2", "3"]);
        assert!(p.rewrite);
        let (p, o) = run(
            &[0, 1, 2, 3],
            &[(2, PayloadCheck::OutOfRange), (3, PayloadCheck::OutOfRange)],
        );
        assert_eq!(o, ["0", "1", "h2", "h3"]);
        assert_eq!(p.next_seq, 4, "a dropped tail never gives its seqs back");
        // Every record corrupt: the seqs they claim still decide.
        let (p, o) = run(
            &[7, 8, 9],
            &[
                (0, PayloadCheck::ChecksumMismatch),
                (1, PayloadCheck::ChecksumMismatch),
                (2, PayloadCheck::ChecksumMismatch),
            ],
        );
        assert_eq!(o, ["h7", "h8", "h9"]);
        assert_eq!(p.next_seq, 10);
    }

    #[test]
    fn slots_squeezed_between_trusted_records_never_share_a_seq() {
        // Found by the redex_recovery fuzz target: two dropped records
        // between seqs 0 and 2 both took seq 1.
        // (Generation 1: the anchor vouches for the lone first record.)
        let (records, mut checks) = valid(&[0, 1, 50_331_649, 2, 3, 4]);
        checks[1] = PayloadCheck::OutOfRange;
        let p = plan(&records, &checks, true);
        assert_eq!(outcome(&p, &records), ["0", "h1", "x", "2", "3", "4"]);
        assert_eq!(p.next_seq, 5);
    }

    #[test]
    fn holes_found_are_kept_without_a_rewrite() {
        let records = vec![heap(0), hole_record(1), heap(2)];
        let checks = [PayloadCheck::Valid, PayloadCheck::Hole, PayloadCheck::Valid];
        let p = plan(&records, &checks, false);
        assert_eq!(outcome(&p, &records), ["0", "h1", "2"]);
        assert!(!p.rewrite);
        assert!(p.dropped.is_empty());
        let records = vec![heap(0), hole_record(1), hole_record(2)];
        let checks = [PayloadCheck::Valid, PayloadCheck::Hole, PayloadCheck::Hole];
        assert_eq!(plan(&records, &checks, false).next_seq, 3);
    }

    #[test]
    fn v011_gaps_after_its_own_compaction_are_legitimate() {
        // v0.11 dropped 3..=5 and compacted: two runs with a gap.
        let (p, o) = run(&[0, 1, 2, 6, 7, 8], &[]);
        assert!(!p.rewrite, "{o:?}");
        assert_eq!(p.next_seq, 9);
        // v0.11 reused seq 3 after dropping a corrupt record 3 at the tail.
        let (p, o) = run(&[0, 1, 2, 3, 3, 4], &[(3, PayloadCheck::ChecksumMismatch)]);
        assert_eq!(o, ["0", "1", "2", "x", "3", "4"]);
        assert_eq!(p.next_seq, 5);
    }

    #[test]
    fn lone_records_need_a_neighbour_to_vouch_for_them() {
        // Two lone records that contradict each other: neither is believed,
        // and the larger reading of their seqs is kept so none is reused.
        let (p, o) = run(&[0, 1 << 40], &[]);
        assert_eq!(
            o,
            [format!("h{}", (1u64 << 40) - 1), format!("h{}", 1u64 << 40)]
        );
        assert_eq!(p.dropped.len(), 2);
        let (_, o) = run(&[1 << 40, 1], &[]);
        assert_eq!(
            o,
            ["h0", "1"],
            "a lower seq that fits after is the heavier chain"
        );
        let (_, o) = run(&[42], &[]);
        assert_eq!(o, ["42"]);
    }

    #[test]
    fn no_single_bit_turns_a_hole_into_an_entry() {
        let hole = hole_record(12_345).encode();
        for bit in 0..hole.len() * 8 {
            let mut damaged = hole;
            damaged[bit / 8] ^= 1 << (bit % 8);
            let record = IdxRecord::decode(&damaged);
            if is_hole(&record) {
                assert_ne!(record.seq, 12_345);
                continue;
            }
            if let PayloadRef::Inline(bytes) = record.payload {
                assert_ne!(checksum28(&bytes), record.checksum, "bit {bit}");
            }
        }
    }

    #[test]
    fn generation_one_starts_at_seq_zero() {
        let checks = [PayloadCheck::Valid];
        let p = plan(&[heap(1 << 40)], &checks, true);
        assert_eq!(p.decisions, [Decision::Hole(0)]);
        assert_eq!(p.next_seq, 1);
        let p = plan(&[heap(0)], &checks, true);
        assert_eq!(p.decisions, [Decision::Keep]);
        let p = plan(&[heap(5)], &checks, false);
        assert_eq!(
            p.decisions,
            [Decision::Keep],
            "a compacted generation may start anywhere"
        );
        let (records, checks) = valid(&[0, 9]);
        let p = plan(&records, &checks, true);
        assert_eq!(p.decisions, [Decision::Keep, Decision::Hole(1)]);
    }

    #[test]
    fn a_plan_is_always_strictly_increasing_and_below_the_limit() {
        // A small exhaustive-ish sweep over odd inputs.
        let seq_choices = [
            0u64,
            1,
            2,
            3,
            5,
            9,
            1 << 40,
            SEQ_LIMIT - 1,
            SEQ_LIMIT,
            u64::MAX,
        ];
        let check_choices = [
            PayloadCheck::Valid,
            PayloadCheck::Hole,
            PayloadCheck::ChecksumMismatch,
            PayloadCheck::OutOfRange,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let n = (next() % 8) as usize;
            let records: Vec<IdxRecord> = (0..n)
                .map(|_| heap(seq_choices[(next() % seq_choices.len() as u64) as usize]))
                .collect();
            let checks: Vec<PayloadCheck> = (0..n)
                .map(|_| check_choices[(next() % 4) as usize])
                .collect();
            let p = plan(&records, &checks, false);
            let seqs: Vec<u64> = p
                .decisions
                .iter()
                .zip(&records)
                .filter_map(|(d, r)| match d {
                    Decision::Keep => Some(r.seq),
                    Decision::Hole(s) => Some(*s),
                    Decision::Remove => None,
                })
                .collect();
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "{records:?} {checks:?} {p:?}"
            );
            assert!(seqs.iter().all(|&s| s < SEQ_LIMIT));
            assert_eq!(p.next_seq, seqs.last().map_or(0, |s| s + 1));
            for (d, c) in p.decisions.iter().zip(&checks) {
                if *d == Decision::Keep {
                    assert_eq!(*c, PayloadCheck::Valid);
                }
            }
        }
    }
}
