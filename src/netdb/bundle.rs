//! The NetDB bundle (STORAGE.md §12) and the one snapshot point it is taken
//! at.
//!
//! A bundle is `postcard({tasks: Option<(bytes, Option<u64>)>, memories:
//! Option<(bytes, Option<u64>)>})`, each pair a model snapshot. v0.11 takes
//! the two model snapshots one after the other, so a bundle can hold a
//! memory written after a task that it lacks. Here both models are cut at
//! one instant: the tails of both files are read while appends to the
//! tasks file are held off, and each model's state is brought exactly to
//! its file's tail at that instant (a snapshot taken just before, plus the
//! few events folded here after it). Every write that returned before
//! `snapshot` began is in the bundle, and when a write is in it, so is
//! every write, to either model, that returned before it started.

use serde::{Deserialize, Serialize};

use crate::cortex::{CortexError, EventMeta, ModelFold, ModelSnapshot};
use crate::redex::RedexFile;

/// A whole-database snapshot: one model snapshot per enabled model, taken at
/// one point for both (STORAGE.md §12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetDbBundle {
    /// The tasks model's snapshot, if the database has that model.
    pub tasks: Option<ModelSnapshot>,
    /// The memories model's snapshot, if the database has that model.
    pub memories: Option<ModelSnapshot>,
}

impl NetDbBundle {
    /// The bundle's bytes (postcard, as v0.11 writes them).
    pub fn encode(&self) -> Vec<u8> {
        // Encoding plain structs of bytes and integers into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Reads a bundle's bytes. The bytes are untrusted: anything that is not
    /// exactly one bundle (trailing bytes included) is an error, never a
    /// panic. The model snapshots inside are checked when they are restored.
    ///
    /// # Errors
    /// [`CortexError::Snapshot`] naming what does not decode.
    pub fn decode(bytes: &[u8]) -> Result<Self, CortexError> {
        let (bundle, rest) = postcard::take_from_bytes::<Self>(bytes)
            .map_err(|e| CortexError::Snapshot(format!("NetDB bundle: {e}")))?;
        if !rest.is_empty() {
            return Err(CortexError::Snapshot(format!(
                "NetDB bundle: {} bytes after the end of the bundle",
                rest.len()
            )));
        }
        Ok(bundle)
    }
}

/// The snapshot bytes inside a [`ModelSnapshot`] (STORAGE.md §12).
#[derive(Serialize)]
struct SnapshotBytes<'a> {
    app_seq: u64,
    #[serde(with = "serde_bytes_as_seq")]
    inner: &'a [u8],
}

/// Postcard writes `Vec<u8>` and `&[u8]` alike (varint length, bytes); a
/// borrowed slice keeps the state from being copied once more.
mod serde_bytes_as_seq {
    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(bytes)
    }
}

/// One model as the bundle sees it: its file, its writer origin, and how to
/// take its ordinary snapshot.
pub(crate) struct CutSource<'a, E> {
    /// The model's file (shared with the model).
    pub(crate) file: RedexFile,
    /// The model's writer origin (its app seq is recovered from its records).
    pub(crate) origin_hash: u64,
    /// Takes the model's own snapshot.
    pub(crate) take: &'a dyn Fn() -> Result<ModelSnapshot, E>,
}

/// Snapshots both models at one point (see the module docs).
///
/// # Errors
/// What a model's own snapshot returns; [`CortexError`] when the log cannot
/// be read.
pub(crate) fn consistent_bundle<T, M, E>(
    tasks: Option<CutSource<'_, E>>,
    memories: Option<CutSource<'_, E>>,
) -> Result<NetDbBundle, E>
where
    T: ModelFold,
    M: ModelFold,
    E: From<CortexError>,
{
    // The bases first: their states can only contain events before the cut.
    let tasks_base = tasks.as_ref().map(|s| (s.take)()).transpose()?;
    let memories_base = memories.as_ref().map(|s| (s.take)()).transpose()?;
    let (tasks_end, memories_end) = cut(
        tasks.as_ref().map(|s| &s.file),
        memories.as_ref().map(|s| &s.file),
    );
    let tasks = match (tasks.as_ref(), tasks_base, tasks_end) {
        (Some(side), Some(base), Some(end)) => Some(advance::<T>(base, side, end)?),
        _ => None,
    };
    let memories = match (memories.as_ref(), memories_base, memories_end) {
        (Some(side), Some(base), Some(end)) => Some(advance::<M>(base, side, end)?),
        _ => None,
    };
    Ok(NetDbBundle { tasks, memories })
}

/// The files' tails (next seqs) at one instant: the memories tail is read
/// while appends to the tasks file are held off, and the tasks tail after
/// it, so a memories append counted was preceded by every tasks append
/// counted that returned before it began.
fn cut(tasks: Option<&RedexFile>, memories: Option<&RedexFile>) -> (Option<u64>, Option<u64>) {
    match (tasks, memories) {
        (Some(tasks), Some(memories)) => {
            let _appends_held = tasks.inner.lock();
            let memories_end = memories.next_seq();
            (Some(tasks.next_seq()), Some(memories_end))
        }
        (tasks, memories) => (
            tasks.map(RedexFile::next_seq),
            memories.map(RedexFile::next_seq),
        ),
    }
}

/// `base`, brought to exactly `end` (exclusive): the events after its
/// `last_seq` and before `end` are folded into a copy of its state, and the
/// app seq moved past this writer's records among them. Folding an event a
/// second time onto a state that already has it gives the same state (every
/// model event sets fields or rows outright), so a base whose state ran a
/// little ahead of its `last_seq` is still exact. An event that does not
/// fold (a corrupt record, a hole) ends the model's part there.
fn advance<F: ModelFold>(
    base: ModelSnapshot,
    source: &CutSource<'_, impl Sized>,
    end: u64,
) -> Result<ModelSnapshot, CortexError> {
    let from = base.last_seq.map_or(0, |s| s.saturating_add(1));
    if from >= end {
        return Ok(base);
    }
    let (mut state, mut app_seq) = base.decode_state::<F::State>()?;
    let fold = F::default();
    let mut last_seq = base.last_seq;
    for (seq, record) in source.file.read_range(from..end)? {
        if last_seq.is_some_and(|last| seq != last + 1)
            || fold.apply(&mut state, seq, &record).is_err()
        {
            break;
        }
        if let Ok((meta, _, _)) = EventMeta::parse_record(&record)
            && meta.origin_hash == source.origin_hash
            && meta.seq_or_ts != u64::MAX
        {
            app_seq = app_seq.max(meta.seq_or_ts + 1);
        }
        last_seq = Some(seq);
    }
    let inner = postcard::to_stdvec(&state).map_err(CortexError::Encode)?;
    let bytes = postcard::to_stdvec(&SnapshotBytes {
        app_seq,
        inner: &inner,
    })
    .map_err(CortexError::Encode)?;
    Ok(ModelSnapshot { bytes, last_seq })
}

/// `snapshot`, fitted to a log whose next seq is `next_seq`: a snapshot
/// that claims events this log never had (a bundle restored into a fresh or
/// another redex) is taken as covering the log up to its tail, so the
/// events appended from now on fold on top of it. (v0.11 resumes after the
/// snapshot's `last_seq` whatever the log, and never folds the new log's
/// first events.)
pub(crate) fn fit_to_log(snapshot: &ModelSnapshot, next_seq: u64) -> ModelSnapshot {
    match snapshot.last_seq {
        Some(last) if last >= next_seq => ModelSnapshot {
            bytes: snapshot.bytes.clone(),
            last_seq: next_seq.checked_sub(1),
        },
        _ => snapshot.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_bytes_are_the_model_layout() {
        let bytes = postcard::to_stdvec(&SnapshotBytes {
            app_seq: 5,
            inner: &[1, 2, 3],
        })
        .unwrap();
        assert_eq!(bytes, [5, 3, 1, 2, 3]);
    }

    #[test]
    fn bundle_bytes_follow_storage_12() {
        let bundle = NetDbBundle {
            tasks: Some(ModelSnapshot {
                bytes: vec![0xaa, 0xbb],
                last_seq: Some(300),
            }),
            memories: None,
        };
        let bytes = bundle.encode();
        assert_eq!(bytes, [1, 2, 0xaa, 0xbb, 1, 0xac, 0x02, 0]);
        assert_eq!(NetDbBundle::decode(&bytes).unwrap(), bundle);
        assert_eq!(NetDbBundle::default().encode(), [0, 0]);
        for bad in [&[][..], &[2, 0], &[1, 9, 1], &[0, 0, 0]] {
            assert!(matches!(
                NetDbBundle::decode(bad),
                Err(CortexError::Snapshot(_))
            ));
        }
    }

    #[test]
    fn a_snapshot_ahead_of_the_log_covers_its_tail() {
        let s = ModelSnapshot {
            bytes: vec![1],
            last_seq: Some(9),
        };
        assert_eq!(fit_to_log(&s, 0).last_seq, None);
        assert_eq!(fit_to_log(&s, 4).last_seq, Some(3));
        assert_eq!(fit_to_log(&s, 10).last_seq, Some(9));
        assert_eq!(fit_to_log(&s, 20).last_seq, Some(9));
    }
}
