//! The daemon contract (COMPUTE.md §1.1): [`MeshDaemon`], the
//! [`CausalEvent`] it processes and the [`DaemonError`] it and the host,
//! registry and factories report.
//!
//! Departures from v0.11:
//! - a stateless daemon snapshots an **empty** state instead of refusing,
//!   so it can migrate and be synced (§8 item 4): [`MeshDaemon::snapshot`]
//!   returns bytes, not an `Option`;
//! - a snapshot failure is an error ([`DaemonError::SnapshotFailed`]), never
//!   "treated as stateless";
//! - a duplicate registration is [`DaemonError::AlreadyRegistered`], not a
//!   `ProcessFailed` text to substring-match, and a causal sequence
//!   overflow is [`DaemonError::SequenceOverflow`];
//! - re-locking an origin from inside its own `with_host` closure is
//!   [`DaemonError::Reentrant`] instead of a deadlock.

use std::time::Instant;

use crate::cancel::CancelToken;
use crate::cortex::causal::CausalLink;
use crate::mesh::capability::CapabilityFilter;

/// An event delivered to (or emitted by) a daemon: its causal link, payload
/// and receive time.
///
/// The producer is `link.origin_hash` and its position in the producer's
/// chain is `link.sequence`; the target replay buffer keys on that pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CausalEvent {
    /// The event's causal link (STORAGE.md §14).
    pub link: CausalLink,
    /// The event's payload.
    pub payload: Vec<u8>,
    /// Receive time, nanoseconds since the UNIX epoch (0 if unknown).
    pub received_at: u64,
}

impl CausalEvent {
    /// An event from `origin_hash` at `sequence` with no horizon and no
    /// parent, as foreign bindings build inbound events (§1.6).
    pub fn bare(origin_hash: u64, sequence: u64, payload: Vec<u8>) -> Self {
        Self {
            link: CausalLink {
                origin_hash,
                horizon_encoded: 0,
                sequence,
                parent_hash: 0,
            },
            payload,
            received_at: 0,
        }
    }

    /// The producer's origin hash.
    pub fn producer(&self) -> u64 {
        self.link.origin_hash
    }

    /// The event's sequence in its producer's chain.
    pub fn sequence(&self) -> u64 {
        self.link.sequence
    }
}

/// Why a daemon, host, registry or factory operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The daemon's `process` failed; the text is the daemon's. The event
    /// was not applied; delivering it again is the caller's choice.
    #[error("process failed: {0}")]
    ProcessFailed(String),
    /// The daemon could not serialize its state; nothing was changed.
    #[error("snapshot failed: {0}")]
    SnapshotFailed(String),
    /// A state could not be restored (bad bytes, wrong identity, state for a
    /// stateless daemon, malformed ledger). A fresh host was not built; an
    /// in-place restore may have left the daemon as its `restore` left it.
    #[error("restore failed: {0}")]
    RestoreFailed(String),
    /// No daemon (or factory) is registered under this origin.
    #[error("no daemon {0:#018x}")]
    NotFound(u64),
    /// The daemon was replaced or unregistered while the call waited for it;
    /// the call did nothing. Look the origin up again.
    #[error("daemon {0:#018x} was replaced or unregistered during the call")]
    Stale(u64),
    /// The origin is already registered; the existing entry was kept.
    #[error("daemon {0:#018x} is already registered")]
    AlreadyRegistered(u64),
    /// A registry call for an origin whose host lock this thread already
    /// holds (from inside `with_host`); it would deadlock, so it did
    /// nothing. Use the `&mut DaemonHost` the closure was given.
    #[error("daemon {0:#018x} is already locked by this thread")]
    Reentrant(u64),
    /// The daemon's chain is at sequence 2^64−1 and cannot emit; nothing
    /// was appended.
    #[error("causal sequence overflow for {0:#018x}")]
    SequenceOverflow(u64),
    /// A batch's wait limit passed before the daemon took the batch up;
    /// nothing was applied or recorded. Delivering it again is safe.
    #[error("the batch was not taken up within the wait; nothing was applied")]
    TimedOut,
    /// A batch's cancel token fired before the daemon took the batch up;
    /// nothing was applied or recorded.
    #[error("the batch was cancelled before it was taken up; nothing was applied")]
    Cancelled,
    /// A daemon in another language took a call that changes its state
    /// (`process`, a batch, `restore`) and did not answer within the reply
    /// timeout: its object may have applied what Rust did not record.
    /// Until a `restore` replaces its state, every call that would read or
    /// extend that state (`process`, batches, `snapshot`) fails with this,
    /// so a state nobody knows is neither built on nor migrated.
    #[error("the daemon's state is in doubt ({0}); stop it, or restore it from a snapshot")]
    InDoubt(String),
}

/// How long a batched delivery may wait for its daemon to take the batch
/// up ([`MeshDaemon::process_batch`]); `Default`: no limit.
///
/// The limit bounds only the wait **before** the daemon starts: once a
/// daemon is applying a batch the call waits for its answer, so a batch is
/// never half given up on.
#[derive(Debug, Clone, Default)]
pub struct BatchWait {
    /// Give up if the batch is not taken up by then.
    pub deadline: Option<Instant>,
    /// Give up if this fires before the batch is taken up.
    pub cancel: Option<CancelToken>,
}

/// One applied event's outputs, as [`AppliedOutputs`] hands them on.
pub type Outputs<'a> = dyn ExactSizeIterator<Item = Vec<u8>> + 'a;

/// Where [`MeshDaemon::process_batch`] hands each applied event's outputs,
/// in order, as it applies them: the host records and chains them at once,
/// so a batch holds no list of lists and each event's bookkeeping follows
/// it while its data is still in cache.
pub struct AppliedOutputs<'a> {
    take: &'a mut dyn FnMut(&mut Outputs<'_>) -> bool,
    applied: usize,
    stopped: bool,
}

impl<'a> AppliedOutputs<'a> {
    /// A sink that gives each event's outputs to `take`, which answers
    /// whether the batch may go on.
    pub fn new(take: &'a mut dyn FnMut(&mut Outputs<'_>) -> bool) -> Self {
        Self {
            take,
            applied: 0,
            stopped: false,
        }
    }

    /// Hands over the outputs of the next event of the batch, which the
    /// daemon has applied. `false`: the host could not record it (its
    /// chain is at sequence 2^64−1) and the daemon must apply no more
    /// events of this batch; further pushes are ignored.
    pub fn push(&mut self, outputs: Vec<Vec<u8>>) -> bool {
        self.push_iter(outputs.into_iter())
    }

    /// [`push`](Self::push) from an iterator (e.g. a run of a batch's one
    /// output list), without a list per event.
    pub fn push_iter(&mut self, mut outputs: impl ExactSizeIterator<Item = Vec<u8>>) -> bool {
        if self.stopped {
            return false;
        }
        self.applied += 1;
        self.stopped = !(self.take)(&mut outputs);
        !self.stopped
    }

    /// How many events' outputs were handed over.
    pub fn applied(&self) -> usize {
        self.applied
    }

    /// Whether the host asked the batch to stop.
    pub fn stopped(&self) -> bool {
        self.stopped
    }
}

impl std::fmt::Debug for AppliedOutputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppliedOutputs")
            .field("applied", &self.applied)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

/// A daemon: a deterministic, synchronous event processor that Net can
/// snapshot on one node and restore on another.
///
/// Every method runs under the daemon's host lock, so keep them fast.
pub trait MeshDaemon: Send {
    /// A name for diagnostics.
    fn name(&self) -> &str;

    /// Where the daemon may run; the empty filter (the default) means
    /// anywhere.
    fn requirements(&self) -> CapabilityFilter {
        CapabilityFilter::new()
    }

    /// Processes one event, returning zero or more output payloads (the
    /// host chains each one).
    ///
    /// # Errors
    /// [`DaemonError::ProcessFailed`] if the event cannot be applied; the
    /// daemon must then be unchanged.
    fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError>;

    /// Processes `events` in order, stopping at the first failure, with
    /// exactly the effects of calling [`process`](Self::process) on each
    /// and handing each one's outputs to `applied` as it goes (the default
    /// does that). Returns the error of event `applied.applied()` if the
    /// batch stopped there; stop, too, once a push answers `false`.
    /// Daemons reached through a queue (see `ForeignDaemon`) override it to
    /// pay one round trip per batch; they may give up with
    /// [`DaemonError::TimedOut`] or [`DaemonError::Cancelled`] per `wait`
    /// only before applying anything.
    ///
    /// # Errors
    /// The error of the first event that could not be applied (the events
    /// after it were not attempted).
    fn process_batch(
        &mut self,
        events: &[CausalEvent],
        wait: &BatchWait,
        applied: &mut AppliedOutputs<'_>,
    ) -> Result<(), DaemonError> {
        let _ = wait;
        for event in events {
            if !applied.push(self.process(event)?) {
                break;
            }
        }
        Ok(())
    }

    /// The SDK object this daemon stands for, when it is one (a
    /// [`ForeignDaemon`]): its runtime may lend such a daemon's batches to
    /// the SDK's own delivering thread. Every other daemon keeps the
    /// default, `None`.
    ///
    /// [`ForeignDaemon`]: crate::compute::ForeignDaemon
    fn as_foreign(&mut self) -> Option<&mut crate::compute::ForeignDaemon> {
        None
    }

    /// Whether the daemon carries state. Stateless daemons (the default)
    /// snapshot an empty state and still migrate.
    fn is_stateful(&self) -> bool {
        false
    }

    /// The daemon's state as bytes (empty for a stateless daemon, the
    /// default).
    ///
    /// # Errors
    /// [`DaemonError::SnapshotFailed`] if the state cannot be serialized.
    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        Ok(Vec::new())
    }

    /// The exact length of the state [`snapshot`](Self::snapshot) would
    /// return, if the daemon can tell without building it. A migration
    /// then has the daemon write its state through
    /// [`snapshot_into`](Self::snapshot_into) straight into the messages
    /// that carry it: a large state is copied once, not first into a
    /// buffer of its own. Default: `None` (migrations call `snapshot`).
    fn snapshot_len(&self) -> Option<usize> {
        None
    }

    /// Writes the state to `out`, in writes of any size: exactly
    /// [`snapshot_len`](Self::snapshot_len) bytes, the ones `snapshot`
    /// would return (a migration that gets another count fails with
    /// `StateFailed`). Default: `snapshot`'s bytes in one write.
    ///
    /// # Errors
    /// As [`snapshot`](Self::snapshot).
    fn snapshot_into(&self, out: &mut dyn FnMut(&[u8])) -> Result<(), DaemonError> {
        out(&self.snapshot()?);
        Ok(())
    }

    /// Replaces the daemon's state with `state`.
    ///
    /// # Errors
    /// [`DaemonError::RestoreFailed`] if the bytes are not a valid state.
    /// The default accepts only the empty state.
    fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
        if state.is_empty() {
            Ok(())
        } else {
            Err(DaemonError::RestoreFailed(format!(
                "{} is stateless but got {} bytes of state",
                self.name(),
                state.len()
            )))
        }
    }

    /// [`restore`](Self::restore) from bytes the daemon may keep: a
    /// migration target hands the received state over this way, so a
    /// daemon that holds its state as one buffer takes it without a copy
    /// (for a large state, the copy and its page faults are a good part of
    /// the migration's time). The default calls `restore`.
    ///
    /// # Errors
    /// As [`restore`](Self::restore).
    fn restore_owned(&mut self, state: Vec<u8>) -> Result<(), DaemonError> {
        self.restore(&state)
    }
}

#[cfg(test)]
mod tests {
    use super::test_daemons::Counter;
    use super::*;

    #[test]
    fn a_refused_push_stops_the_default_batch() {
        let events: Vec<_> = (1..=5)
            .map(|s| CausalEvent::bare(1, s, b"e".to_vec()))
            .collect();
        let mut taken = Vec::new();
        let mut take = |outputs: &mut Outputs<'_>| {
            taken.push(outputs.collect::<Vec<_>>());
            taken.len() < 2
        };
        let mut daemon = Counter::default();
        let mut applied = AppliedOutputs::new(&mut take);
        daemon
            .process_batch(&events, &BatchWait::default(), &mut applied)
            .unwrap();
        assert_eq!((applied.applied(), applied.stopped()), (2, true));
        // Pushes after a refusal are not taken.
        assert!(!applied.push(vec![b"late".to_vec()]));
        assert_eq!(applied.applied(), 2);
        assert_eq!(daemon.count, 2);
        assert_eq!(taken.len(), 2);
    }

    #[test]
    fn the_default_batch_stops_at_a_failure() {
        let events: Vec<_> = [&b"a"[..], b"fail", b"c"]
            .iter()
            .zip(1..)
            .map(|(p, s)| CausalEvent::bare(1, s, p.to_vec()))
            .collect();
        let mut take = |_: &mut Outputs<'_>| true;
        let mut daemon = Counter::default();
        let mut applied = AppliedOutputs::new(&mut take);
        let error = daemon.process_batch(&events, &BatchWait::default(), &mut applied);
        assert!(matches!(error, Err(DaemonError::ProcessFailed(_))));
        assert_eq!(
            (applied.applied(), applied.stopped(), daemon.count),
            (1, false, 1)
        );
    }
}

/// Daemons for the compute tests.
#[cfg(test)]
pub(crate) mod test_daemons {
    use super::*;

    /// Sums event payload lengths; state is the count as 8 LE bytes; emits
    /// the new count; rejects events whose payload is `fail`.
    #[derive(Debug, Default)]
    pub(crate) struct Counter {
        pub(crate) count: u64,
    }

    impl MeshDaemon for Counter {
        fn name(&self) -> &str {
            "counter"
        }

        fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
            if event.payload == b"fail" {
                return Err(DaemonError::ProcessFailed("asked to fail".into()));
            }
            self.count += 1;
            Ok(vec![self.count.to_le_bytes().to_vec()])
        }

        fn is_stateful(&self) -> bool {
            true
        }

        fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
            Ok(self.count.to_le_bytes().to_vec())
        }

        fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
            let bytes: [u8; 8] = state
                .try_into()
                .map_err(|_| DaemonError::RestoreFailed(format!("{} bytes", state.len())))?;
            self.count = u64::from_le_bytes(bytes);
            Ok(())
        }
    }

    /// Stateless: echoes each payload twice.
    #[derive(Debug, Default)]
    pub(crate) struct Echo;

    impl MeshDaemon for Echo {
        fn name(&self) -> &str {
            "echo"
        }

        fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
            Ok(vec![event.payload.clone(), event.payload.clone()])
        }
    }
}
