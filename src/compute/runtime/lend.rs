//! Lent batches: a batch for a daemon whose code runs in an SDK, applied by
//! that SDK on the thread that delivers it.
//!
//! A batch delivered the usual way to a [`ForeignDaemon`] crosses threads
//! twice: the delivering call queues a work item on the bridge and waits,
//! the SDK's pull loop wakes, applies the events and answers, and the
//! delivering call wakes again. When the caller *is* the SDK that holds the
//! daemon's object (Python's `deliver_batch`, Node's `deliverBatch`), it can
//! apply the events itself: [`ComputeRuntime::lend_batch`] checks, without
//! waiting, that the batch would be processed here, and lends the daemon's
//! host out of the registry ([`HostLease`]) — every other call on the
//! daemon, a snapshot included, waits for it as for a delivery in flight.
//! The SDK applies the events to [`LentBatch::instance`] and answers with
//! [`LentBatch::finish`], which records exactly what a bridged batch's
//! answer records (horizon, stats, watermarks, the causal chain) and gives
//! the host back. When lending is not possible (the daemon is busy, not
//! here, migrating, in doubt, or not that SDK's) the caller takes the usual
//! path, which decides what happens to each event.
//!
//! [`ForeignDaemon`]: crate::compute::ForeignDaemon
//! [`HostLease`]: crate::compute::registry::HostLease

use std::sync::Arc;

use super::machines::{self, Outputs};
use super::{BatchOutcome, ComputeError, ComputeRuntime, Shared};
use crate::compute::registry::HostLease;
use crate::compute::{BatchDelivered, CausalEvent, DaemonError, WorkBridge, WorkReply};

/// A batch lent to the SDK that runs its daemon
/// ([`ComputeRuntime::lend_batch`]): the daemon waits for nobody else until
/// it is finished. Dropped unfinished, the daemon is given back with
/// nothing recorded and its object in doubt (the SDK may have applied some
/// of the events).
pub struct LentBatch {
    shared: Arc<Shared>,
    lease: Option<HostLease>,
    /// The batch's (producer, sequence) pairs: all the bookkeeping reads.
    events: Vec<CausalEvent>,
    instance: u64,
}

impl std::fmt::Debug for LentBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LentBatch")
            .field("lease", &self.lease)
            .field("events", &self.events.len())
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl ComputeRuntime {
    /// Lends the batch of `count` events from `producer` at sequences
    /// `first_sequence`, `first_sequence + 1`, … for daemon `origin` to the
    /// SDK of `bridge`, if the daemon is that SDK's object, would process
    /// the batch here and is free now: the caller applies the events to
    /// [`LentBatch::instance`] on its own thread and answers with
    /// [`LentBatch::finish`]. `Ok(None)` — nothing done, nothing waited
    /// for — when the batch must take the usual path
    /// ([`deliver_batch`](Self::deliver_batch)): the daemon is busy, not
    /// here, migrating or arriving, in doubt, not `bridge`'s, or the batch
    /// is empty or its sequences run past 2^64−1. Finish (or drop) the
    /// batch promptly: a migration of the daemon, and so the runtime's
    /// shutdown, waits for it.
    ///
    /// # Errors
    /// [`ComputeError::ShuttingDown`].
    pub fn lend_batch(
        &self,
        origin: u64,
        producer: u64,
        first_sequence: u64,
        count: usize,
        bridge: &Arc<WorkBridge>,
    ) -> Result<Option<LentBatch>, ComputeError> {
        self.check_running()?;
        let fits = count
            .checked_sub(1)
            .and_then(|last| u64::try_from(last).ok())
            .and_then(|last| first_sequence.checked_add(last))
            .is_some();
        if !fits {
            return Ok(None);
        }
        let mut instance = 0;
        let lend = |host: &mut crate::compute::DaemonHost| match host.daemon_mut().as_foreign() {
            Some(foreign) if foreign.lendable_to(bridge) => {
                instance = foreign.instance();
                true
            }
            _ => false,
        };
        let Some(lease) = machines::try_lend(&self.shared, origin, lend)? else {
            return Ok(None);
        };
        let events = (first_sequence..)
            .take(count)
            .map(|sequence| CausalEvent::bare(producer, sequence, Vec::new()))
            .collect();
        Ok(Some(LentBatch {
            shared: Arc::clone(&self.shared),
            lease: Some(lease),
            events,
            instance,
        }))
    }
}

impl LentBatch {
    /// The SDK's object to apply the events to.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// The number of events lent.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch is empty (never: an empty batch is not lent).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether `answer` fits the batch (see [`WorkReply::fits_batch`]).
    pub fn fits(&self, answer: &WorkReply) -> bool {
        answer.fits_batch(self.events.len())
    }

    /// Records what the SDK did with the batch — `answer`, as it would
    /// answer the batch's work item ([`WorkReply::BatchOutputs`]: the
    /// applied events' outputs and, if one failed, why) — and gives the
    /// daemon back; the outcome is what
    /// [`ComputeRuntime::deliver_batch`] returns for a batch processed
    /// here. An answer that does not fit the batch records nothing and
    /// leaves the daemon's object in doubt (its error says so).
    pub fn finish(self, answer: WorkReply) -> BatchOutcome {
        self.finish_to(answer, Outputs::Returned)
    }

    /// [`finish`](Self::finish) for a caller that reads the outputs from
    /// [`ComputeRuntime::next_output`] (as
    /// [`ComputeRuntime::deliver_batch_queued`]).
    pub fn finish_queued(self, answer: WorkReply) -> BatchOutcome {
        self.finish_to(answer, Outputs::Queued)
    }

    fn finish_to(mut self, answer: WorkReply, sink: Outputs) -> BatchOutcome {
        let mut lease = self.lease.take().expect("finished once");
        let delivered = if self.fits(&answer) {
            lease
                .host()
                .record_lent_batch_at(&self.events, answer, crate::redex::now_ns())
        } else {
            BatchDelivered {
                outputs: Vec::new(),
                counts: Vec::new(),
                error: Some(doubt(&mut lease, "its answer did not fit the batch")),
            }
        };
        drop(lease);
        self.shared.registry.bump_if_watched();
        machines::batch_outcome(&self.shared, delivered, sink)
    }
}

impl Drop for LentBatch {
    fn drop(&mut self) {
        if let Some(mut lease) = self.lease.take() {
            doubt(&mut lease, "it was given back unanswered");
        }
    }
}

/// Puts a lent batch's daemon object in doubt (`why` the batch was not
/// recorded); the error saying so.
fn doubt(lease: &mut HostLease, why: &str) -> DaemonError {
    let why = format!("a lent batch: {why}");
    if let Some(foreign) = lease.host().daemon_mut().as_foreign() {
        foreign.doubt(why.clone());
    }
    DaemonError::InDoubt(why)
}
