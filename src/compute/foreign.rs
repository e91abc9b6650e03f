//! Daemons written in another language, without callbacks (COMPUTE.md
//! §1.9, DESIGN.md "No callbacks from Rust into foreign code").
//!
//! A [`ForeignDaemon`] is the Rust side of a daemon whose code lives in an
//! SDK (Go, Python, Node, C). Every call the host makes on it — `process`,
//! `snapshot`, `restore` — becomes a [`WorkRequest`] queued on a
//! [`WorkBridge`]; the SDK pulls requests with [`WorkBridge::next`] (on a
//! thread of its own), runs its daemon object and answers with
//! [`WorkBridge::complete`]. The calling thread waits for the answer up to
//! the bridge's reply timeout: an unanswered request fails the daemon call
//! with a typed error (the delivery or migration step fails cleanly), and a
//! late answer is refused ([`WorkError::Expired`]).
//!
//! A migration target builds a foreign daemon from a factory that asks the
//! SDK to construct an object of the daemon's kind ([`WorkRequest::Create`],
//! answered with the SDK's instance id); the snapshot is then restored into
//! it by a [`WorkRequest::Restore`]. When a foreign daemon is dropped (it
//! migrated away, was stopped, or its runtime closed) the SDK is told with a
//! [`WorkRequest::Drop`], which needs no answer.
//!
//! Instance ids are the SDK's: it picks one when it builds an object (for a
//! local spawn, before handing it to Rust; for a Create, in its answer) and
//! keys its objects by it.
//!
//! Both waits — the puller's for the next request, the caller's for its
//! answer — first look for [`LINGER`] without the lock, yielding the CPU
//! between looks, and only then park: a parked thread's wake-up is tens of
//! microseconds on a virtual machine, and a daemon call pays two (the
//! mesh's receivers do the same, `mesh/inbound.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;
use crate::compute::{
    AppliedOutputs, BatchRecords, BatchWait, CausalEvent, DaemonError, DaemonFactory, MeshDaemon,
};

/// What the SDK is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkRequest {
    /// Apply one event to instance `instance` (daemon `daemon`); answer with
    /// its outputs.
    Process {
        /// The SDK's object.
        instance: u64,
        /// The daemon's origin hash.
        daemon: u64,
        /// The event's producer (origin hash).
        producer: u64,
        /// The event's sequence in its producer's chain.
        sequence: u64,
        /// The event's payload.
        payload: Vec<u8>,
    },
    /// Apply `events` in order to instance `instance`, stopping at the
    /// first failure; answer once with each applied event's outputs
    /// ([`WorkReply::BatchOutputs`]).
    ProcessBatch {
        /// The SDK's object.
        instance: u64,
        /// The daemon's origin hash.
        daemon: u64,
        /// The events, in delivery order, packed as the SDK receives them.
        events: BatchRecords,
    },
    /// Serialize the instance's state; answer with the bytes.
    Snapshot {
        /// The SDK's object.
        instance: u64,
        /// The daemon's origin hash.
        daemon: u64,
    },
    /// Replace the instance's state with `state`; answer done.
    Restore {
        /// The SDK's object.
        instance: u64,
        /// The daemon's origin hash.
        daemon: u64,
        /// The state bytes (from a snapshot).
        state: Vec<u8>,
    },
    /// Build a fresh object of kind `kind` for daemon `daemon` (a migration
    /// is arriving); answer with its instance id.
    Create {
        /// The kind's name, as registered.
        kind: String,
        /// The daemon's origin hash.
        daemon: u64,
    },
    /// The instance is no longer used by Rust: release it. Needs no answer.
    Drop {
        /// The SDK's object.
        instance: u64,
        /// The daemon's origin hash.
        daemon: u64,
    },
}

impl WorkRequest {
    /// The request's kind as a number (the C ABI's work item kinds).
    pub fn code(&self) -> u32 {
        match self {
            Self::Process { .. } => Self::PROCESS,
            Self::Snapshot { .. } => Self::SNAPSHOT,
            Self::Restore { .. } => Self::RESTORE,
            Self::Create { .. } => Self::CREATE,
            Self::Drop { .. } => Self::DROP,
            Self::ProcessBatch { .. } => Self::PROCESS_BATCH,
        }
    }

    /// [`code`](Self::code) of a Process.
    pub const PROCESS: u32 = 1;
    /// [`code`](Self::code) of a Snapshot.
    pub const SNAPSHOT: u32 = 2;
    /// [`code`](Self::code) of a Restore.
    pub const RESTORE: u32 = 3;
    /// [`code`](Self::code) of a Create.
    pub const CREATE: u32 = 4;
    /// [`code`](Self::code) of a Drop.
    pub const DROP: u32 = 5;
    /// [`code`](Self::code) of a ProcessBatch.
    pub const PROCESS_BATCH: u32 = 6;

    fn wants_answer(&self) -> bool {
        !matches!(self, Self::Drop { .. })
    }
}

/// The SDK's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkReply {
    /// Outputs of a Process.
    Outputs(Vec<Vec<u8>>),
    /// State of a Snapshot.
    State(Vec<u8>),
    /// A Restore succeeded.
    Restored,
    /// The instance a Create built.
    Created(u64),
    /// Outputs of a ProcessBatch: the applied events' (a prefix of the
    /// batch) outputs in one list, how many each event produced; and, when
    /// fewer events than the batch's were applied, why the next one failed
    /// (the rest were not attempted).
    BatchOutputs {
        /// The applied events' outputs, in order.
        outputs: Vec<Vec<u8>>,
        /// Per applied event, how many of `outputs` are its; they add up
        /// to `outputs.len()`.
        counts: Vec<usize>,
        /// The failure of event `counts.len()`; present exactly when that
        /// is less than the batch's length.
        failure: Option<String>,
    },
}

/// What answers a request: its kind, and a batch's length.
#[derive(Debug, Clone, Copy)]
struct Expected {
    code: u32,
    batch: usize,
}

impl Expected {
    fn of(request: &WorkRequest) -> Self {
        let batch = match request {
            WorkRequest::ProcessBatch { events, .. } => events.len(),
            _ => 0,
        };
        Self {
            code: request.code(),
            batch,
        }
    }
}

impl WorkReply {
    /// Whether this is a fitting answer to a batch of `len` events
    /// (a [`BatchOutputs`](Self::BatchOutputs) whose counts and failure
    /// fit it).
    pub fn fits_batch(&self, len: usize) -> bool {
        self.answers(Expected {
            code: WorkRequest::PROCESS_BATCH,
            batch: len,
        })
    }

    fn answers(&self, expected: Expected) -> bool {
        match self {
            Self::BatchOutputs {
                outputs,
                counts,
                failure,
            } => {
                expected.code == WorkRequest::PROCESS_BATCH
                    && counts.len() <= expected.batch
                    && failure.is_some() == (counts.len() < expected.batch)
                    && counts.iter().try_fold(0usize, |sum, &n| sum.checked_add(n))
                        == Some(outputs.len())
            }
            Self::Outputs(_) => expected.code == WorkRequest::PROCESS,
            Self::State(_) => expected.code == WorkRequest::SNAPSHOT,
            Self::Restored => expected.code == WorkRequest::RESTORE,
            Self::Created(_) => expected.code == WorkRequest::CREATE,
        }
    }
}

/// Why a bridge call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkError {
    /// No request arrived within the wait (not an error for `next`).
    #[error("no work within the wait")]
    Timeout,
    /// The bridge is closed (its runtime is shutting down).
    #[error("the compute runtime is closed")]
    Closed,
    /// The caller's cancel token fired.
    #[error("cancelled")]
    Cancelled,
    /// The work id is unknown: already answered, or its caller stopped
    /// waiting (the reply timeout passed). The answer was dropped.
    #[error("work item {0} is no longer awaited (answered already, or it timed out)")]
    Expired(u64),
    /// The answer does not fit the request (e.g. outputs for a Snapshot).
    #[error("work item {id} is a {request} request; that answer does not fit it")]
    WrongAnswer {
        /// The work id.
        id: u64,
        /// The request kind.
        request: &'static str,
    },
    /// The SDK did not take the request up in time (it was withdrawn:
    /// the SDK never saw it).
    #[error("the daemon did not answer within {0:?}")]
    NoAnswer(Duration),
    /// The SDK took the request but did not answer in time: it may yet
    /// apply it (its late answer is refused).
    #[error("the daemon took the request but did not answer within {0:?}")]
    InDoubt(Duration),
    /// The SDK answered with a failure; the text is its.
    #[error("{0}")]
    Failed(String),
    /// A batch was not taken up by the SDK before the caller's deadline
    /// (withdrawn; nothing was handed out).
    #[error("the batch was not taken up within the wait")]
    NotTaken,
}

struct Item {
    /// Taken when the SDK pulls it (so it is handed out, not copied).
    request: Option<WorkRequest>,
    expected: Expected,
    reply: Option<Result<WorkReply, String>>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<u64>,
    items: HashMap<u64, Item>,
    next_id: u64,
    closed: bool,
}

/// How long a wait on the bridge keeps looking (yielding the CPU between
/// looks) before it parks; see the module doc.
pub const LINGER: Duration = Duration::from_micros(50);

/// The queue between Rust daemon calls and the SDK's pull loop; see the
/// module doc.
pub struct WorkBridge {
    state: Mutex<State>,
    queued: Condvar,
    answered: Condvar,
    reply_timeout: Duration,
    /// Requests pushed so far (read without the lock by a lingering puller).
    pushes: AtomicU64,
    /// Answers given so far (read without the lock by a lingering caller).
    answers: AtomicU64,
}

impl std::fmt::Debug for WorkBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("WorkBridge")
            .field("queued", &state.queue.len())
            .field("pending", &state.items.len())
            .field("closed", &state.closed)
            .finish()
    }
}

impl WorkBridge {
    /// A bridge whose daemon calls wait up to `reply_timeout` for the SDK.
    pub fn new(reply_timeout: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            queued: Condvar::new(),
            answered: Condvar::new(),
            reply_timeout,
            pushes: AtomicU64::new(0),
            answers: AtomicU64::new(0),
        }
    }

    /// Waits up to [`LINGER`] (less when `until` comes first) for `counter`
    /// to move past `seen`, without parking.
    fn linger(
        counter: &AtomicU64,
        seen: u64,
        until: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) {
        let end = Instant::now() + LINGER;
        crate::cancel::linger(until.map_or(end, |u| u.min(end)), cancel, || {
            counter.load(Ordering::Acquire) != seen
        });
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(state: &mut State, request: WorkRequest) -> u64 {
        state.next_id += 1;
        let id = state.next_id;
        state.items.insert(
            id,
            Item {
                expected: Expected::of(&request),
                request: Some(request),
                reply: None,
            },
        );
        state.queue.push_back(id);
        id
    }

    /// [`push`](Self::push), then wakes a puller (a lingering one sees the
    /// count move).
    fn push_and_wake(&self, state: &mut State, request: WorkRequest) -> u64 {
        let id = Self::push(state, request);
        self.pushes.fetch_add(1, Ordering::Release);
        self.queued.notify_one();
        id
    }

    /// Queues `request` and waits for the SDK's answer.
    ///
    /// # Errors
    /// [`WorkError::Closed`]; [`WorkError::NoAnswer`] after the reply
    /// timeout (the request is withdrawn, a late answer is refused);
    /// [`WorkError::Failed`] with the SDK's text.
    pub fn call(&self, request: WorkRequest) -> Result<WorkReply, WorkError> {
        self.wait_reply(request, None, None)
    }

    /// [`call`](Self::call), giving up with [`WorkError::NotTaken`] at
    /// `deadline` or [`WorkError::Cancelled`] when `cancel` fires — but only
    /// while the SDK has not taken the request: once handed out, the call
    /// waits for the answer (up to the reply timeout), so the SDK never
    /// applies a request its caller gave up on for that reason.
    ///
    /// # Errors
    /// As [`call`](Self::call), plus those two.
    pub fn call_within(
        self: &Arc<Self>,
        request: WorkRequest,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<WorkReply, WorkError> {
        let _wake = cancel.map(|token| {
            let bridge = Arc::clone(self);
            token.on_cancel(move || {
                let _state = bridge.state();
                bridge.answered.notify_all();
            })
        });
        self.wait_reply(request, deadline, cancel)
    }

    fn wait_reply(
        &self,
        request: WorkRequest,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<WorkReply, WorkError> {
        let reply_deadline = Instant::now() + self.reply_timeout;
        let mut state = self.state();
        if state.closed {
            return Err(WorkError::Closed);
        }
        let id = self.push_and_wake(&mut state, request);
        let mut lingered = false;
        loop {
            let item = state
                .items
                .get_mut(&id)
                .expect("only its caller removes it");
            if let Some(reply) = item.reply.take() {
                state.items.remove(&id);
                return reply.map_err(WorkError::Failed);
            }
            let now = Instant::now();
            let waiting = item.request.is_some();
            let given_up = if state.closed {
                Some(WorkError::Closed)
            } else if now >= reply_deadline && waiting {
                Some(WorkError::NoAnswer(self.reply_timeout))
            } else if now >= reply_deadline {
                Some(WorkError::InDoubt(self.reply_timeout))
            } else if waiting && cancel.is_some_and(CancelToken::is_cancelled) {
                Some(WorkError::Cancelled)
            } else if waiting && deadline.is_some_and(|d| now >= d) {
                Some(WorkError::NotTaken)
            } else {
                None
            };
            if let Some(err) = given_up {
                state.items.remove(&id);
                state.queue.retain(|queued| *queued != id);
                return Err(err);
            }
            let mut until = reply_deadline;
            if waiting && let Some(d) = deadline {
                until = until.min(d);
            }
            if !lingered {
                // An answer often comes within microseconds (a C or Go
                // daemon): look for it before parking.
                lingered = true;
                let seen = self.answers.load(Ordering::Acquire);
                drop(state);
                Self::linger(&self.answers, seen, Some(until), cancel);
                state = self.state();
                continue;
            }
            state = self
                .answered
                .wait_timeout(state, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Queues `request` without waiting (a Drop).
    pub fn notify(&self, request: WorkRequest) {
        let mut state = self.state();
        if !state.closed {
            self.push_and_wake(&mut state, request);
        }
    }

    /// The next request and its work id, waiting up to `timeout` (`None`:
    /// no limit). A Drop is forgotten once handed out (it has no answer).
    ///
    /// # Errors
    /// [`WorkError::Timeout`]; [`WorkError::Closed`] once the bridge is
    /// closed and nothing is queued; [`WorkError::Cancelled`].
    pub fn next(
        self: &Arc<Self>,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<(u64, WorkRequest), WorkError> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let _wake = cancel.map(|token| {
            let bridge = Arc::clone(self);
            token.on_cancel(move || {
                let _state = bridge.state();
                bridge.queued.notify_all();
            })
        });
        let mut state = self.state();
        let mut lingered = false;
        loop {
            while let Some(id) = state.queue.pop_front() {
                let Some(item) = state.items.get_mut(&id) else {
                    continue;
                };
                let Some(request) = item.request.take() else {
                    continue; // handed out already (not queued twice)
                };
                if !request.wants_answer() {
                    state.items.remove(&id);
                }
                return Ok((id, request));
            }
            if state.closed {
                return Err(WorkError::Closed);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(WorkError::Cancelled);
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(d) if now >= d => return Err(WorkError::Timeout),
                Some(d) => d - now,
                None => Duration::from_secs(3600),
            };
            if !lingered {
                // The next request often follows the last answer within
                // microseconds (a producer delivering in a loop): look for
                // it before parking.
                lingered = true;
                let seen = self.pushes.load(Ordering::Acquire);
                drop(state);
                Self::linger(&self.pushes, seen, deadline, cancel);
                state = self.state();
                continue;
            }
            state = self
                .queued
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Answers work item `id`.
    ///
    /// # Errors
    /// [`WorkError::Expired`] if nobody waits for it any more (the answer
    /// is dropped: a Create's object should be released);
    /// [`WorkError::WrongAnswer`] if `reply` does not fit the request (the
    /// item stays open).
    pub fn complete(&self, id: u64, reply: Result<WorkReply, String>) -> Result<(), WorkError> {
        let mut state = self.state();
        let item = state
            .items
            .get_mut(&id)
            .filter(|item| item.request.is_none() && item.reply.is_none())
            .ok_or(WorkError::Expired(id))?;
        if let Ok(answer) = &reply
            && !answer.answers(item.expected)
        {
            return Err(WorkError::WrongAnswer {
                id,
                request: request_name(item.expected.code),
            });
        }
        item.reply = Some(reply);
        self.answers.fetch_add(1, Ordering::Release);
        self.answered.notify_all();
        Ok(())
    }

    /// Closes the bridge: every waiting daemon call fails with
    /// [`WorkError::Closed`], `next` returns it once the queue is empty,
    /// and new requests are refused. Idempotent.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        let State { queue, items, .. } = &mut *state;
        queue.retain(|id| {
            items
                .get(id)
                .and_then(|item| item.request.as_ref())
                .is_some_and(|request| !request.wants_answer())
        });
        self.queued.notify_all();
        self.answered.notify_all();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Requests queued or handed out and not yet answered.
    pub fn pending(&self) -> usize {
        self.state().items.len()
    }
}

fn request_name(code: u32) -> &'static str {
    match code {
        WorkRequest::PROCESS => "process",
        WorkRequest::SNAPSHOT => "snapshot",
        WorkRequest::RESTORE => "restore",
        WorkRequest::CREATE => "create",
        WorkRequest::PROCESS_BATCH => "process batch",
        _ => "drop",
    }
}

/// A daemon whose code runs in an SDK; every call goes through the bridge.
///
/// A call that changes the object's state and was taken but not answered
/// in time leaves the object **in doubt** ([`DaemonError::InDoubt`]): it
/// may have applied what the host never recorded, so calls that would
/// build on or copy that state fail until a restore replaces it.
pub struct ForeignDaemon {
    bridge: Arc<WorkBridge>,
    kind: String,
    instance: u64,
    daemon: u64,
    stateful: bool,
    /// Why the object's state is in doubt, if it is.
    in_doubt: Option<String>,
}

impl std::fmt::Debug for ForeignDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignDaemon")
            .field("kind", &self.kind)
            .field("instance", &self.instance)
            .field("daemon", &format_args!("{:#018x}", self.daemon))
            .finish()
    }
}

impl ForeignDaemon {
    /// The Rust side of SDK object `instance` of kind `kind`, for daemon
    /// `daemon`.
    pub fn new(
        bridge: Arc<WorkBridge>,
        kind: impl Into<String>,
        instance: u64,
        daemon: u64,
        stateful: bool,
    ) -> Self {
        Self {
            bridge,
            kind: kind.into(),
            instance,
            daemon,
            stateful,
            in_doubt: None,
        }
    }

    /// Fails if the object's state is in doubt.
    fn check_doubt(&self) -> Result<(), DaemonError> {
        match &self.in_doubt {
            Some(why) => Err(DaemonError::InDoubt(why.clone())),
            None => Ok(()),
        }
    }

    /// The error of a state-changing call that failed with `e`: a taken,
    /// unanswered call leaves the object in doubt.
    fn changing_call_failed(&mut self, call: &str, e: WorkError) -> DaemonError {
        if let WorkError::InDoubt(_) = e {
            let why = format!("a {call} call: {e}");
            self.in_doubt = Some(why.clone());
            return DaemonError::InDoubt(why);
        }
        match call {
            "restore" => DaemonError::RestoreFailed(e.to_string()),
            _ => DaemonError::ProcessFailed(e.to_string()),
        }
    }

    /// A factory for a migration target: asks the SDK to build an object
    /// of `kind` for `daemon` (a Create request) and wraps it.
    pub fn factory(
        bridge: Arc<WorkBridge>,
        kind: String,
        daemon: u64,
        stateful: bool,
    ) -> DaemonFactory {
        Arc::new(move || {
            let reply = bridge
                .call(WorkRequest::Create {
                    kind: kind.clone(),
                    daemon,
                })
                .map_err(|e| DaemonError::RestoreFailed(format!("constructing {kind}: {e}")))?;
            let WorkReply::Created(instance) = reply else {
                unreachable!("complete() accepts only a fitting answer");
            };
            Ok(Box::new(ForeignDaemon::new(
                Arc::clone(&bridge),
                kind.clone(),
                instance,
                daemon,
                stateful,
            )) as Box<dyn MeshDaemon>)
        })
    }

    /// The SDK's instance id.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Whether `bridge`'s SDK may apply a batch of this daemon on its own
    /// thread (a lent batch): the object is that SDK's, and its state is
    /// not in doubt.
    pub(crate) fn lendable_to(&self, bridge: &Arc<WorkBridge>) -> bool {
        Arc::ptr_eq(&self.bridge, bridge) && self.in_doubt.is_none()
    }

    /// Puts the object's state in doubt (`why`): calls that build on it
    /// fail until a restore.
    pub(crate) fn doubt(&mut self, why: String) {
        self.in_doubt = Some(why);
    }

    /// Hands a batch answer's outputs to `applied`, event by event; the
    /// answer's failure (or, when all were applied, `after`) is the
    /// result. `answer` fits the batch ([`WorkReply::fits_batch`]).
    fn hand_over(
        answer: WorkReply,
        applied: &mut AppliedOutputs<'_>,
        after: Option<DaemonError>,
    ) -> Result<(), DaemonError> {
        let WorkReply::BatchOutputs {
            outputs,
            counts,
            failure,
        } = answer
        else {
            unreachable!("only a fitting answer is handed over");
        };
        let mut outputs = outputs.into_iter();
        for n in counts {
            if !applied.push_iter(outputs.by_ref().take(n)) {
                return Ok(());
            }
        }
        match failure {
            Some(f) => Err(DaemonError::ProcessFailed(f)),
            None => after.map_or(Ok(()), Err),
        }
    }

    /// What the SDK did with a lent batch (`answer`, fitting it), handed
    /// to `applied` as [`MeshDaemon::process_batch`] hands over a batch
    /// answered through the bridge.
    pub(crate) fn take_batch_answer(
        &mut self,
        answer: WorkReply,
        applied: &mut AppliedOutputs<'_>,
    ) -> Result<(), DaemonError> {
        Self::hand_over(answer, applied, None)
    }
}

impl MeshDaemon for ForeignDaemon {
    fn name(&self) -> &str {
        &self.kind
    }

    fn as_foreign(&mut self) -> Option<&mut ForeignDaemon> {
        Some(self)
    }

    fn is_stateful(&self) -> bool {
        self.stateful
    }

    fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        self.check_doubt()?;
        let reply = self
            .bridge
            .call(WorkRequest::Process {
                instance: self.instance,
                daemon: self.daemon,
                producer: event.producer(),
                sequence: event.sequence(),
                payload: event.payload.clone(),
            })
            .map_err(|e| self.changing_call_failed("process", e))?;
        match reply {
            WorkReply::Outputs(outputs) => Ok(outputs),
            _ => unreachable!("complete() accepts only a fitting answer"),
        }
    }

    /// One ProcessBatch work item for the whole batch, answered once.
    /// (The SDK has applied the events it answers for: should the host
    /// stop partway, which takes a chain at sequence 2^64−1, the rest of
    /// their outputs are not chained.)
    fn process_batch(
        &mut self,
        events: &[CausalEvent],
        wait: &BatchWait,
        applied: &mut AppliedOutputs<'_>,
    ) -> Result<(), DaemonError> {
        if events.is_empty() {
            return Ok(());
        }
        self.check_doubt()?;
        // An event too large for a record fails there: the SDK gets the
        // events before it.
        let (records, too_large) = match BatchRecords::pack(events) {
            Ok(records) => (records, None),
            Err(e) => (
                BatchRecords::pack(&events[..e.index]).expect("the events before fit"),
                Some(DaemonError::ProcessFailed(e.to_string())),
            ),
        };
        if records.is_empty() {
            return too_large.map_or(Ok(()), Err);
        }
        let reply = self.bridge.call_within(
            WorkRequest::ProcessBatch {
                instance: self.instance,
                daemon: self.daemon,
                events: records,
            },
            wait.deadline,
            wait.cancel.as_ref(),
        );
        match reply {
            Ok(answer) => Self::hand_over(answer, applied, too_large),
            Err(WorkError::NotTaken) => Err(DaemonError::TimedOut),
            Err(WorkError::Cancelled) => Err(DaemonError::Cancelled),
            Err(e) => Err(self.changing_call_failed("process batch", e)),
        }
    }

    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        self.check_doubt()?;
        let reply = self
            .bridge
            .call(WorkRequest::Snapshot {
                instance: self.instance,
                daemon: self.daemon,
            })
            .map_err(|e| DaemonError::SnapshotFailed(e.to_string()))?;
        match reply {
            WorkReply::State(state) => Ok(state),
            _ => unreachable!("complete() accepts only a fitting answer"),
        }
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
        self.restore_owned(state.to_vec())
    }

    /// The state goes into the work item as it is (a migration target's
    /// received state is not copied again on its way to the SDK).
    fn restore_owned(&mut self, state: Vec<u8>) -> Result<(), DaemonError> {
        self.bridge
            .call(WorkRequest::Restore {
                instance: self.instance,
                daemon: self.daemon,
                state,
            })
            .map_err(|e| self.changing_call_failed("restore", e))?;
        // The whole state was replaced: whatever was in doubt is gone.
        self.in_doubt = None;
        Ok(())
    }
}

impl Drop for ForeignDaemon {
    fn drop(&mut self) {
        self.bridge.notify(WorkRequest::Drop {
            instance: self.instance,
            daemon: self.daemon,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::Outputs;

    /// What a `process_batch` call handed over and returned.
    #[derive(Debug, Default, PartialEq)]
    struct Batched {
        outputs: Vec<Vec<Vec<u8>>>,
        error: Option<DaemonError>,
    }

    fn run_batch(daemon: &mut ForeignDaemon, events: &[CausalEvent], wait: &BatchWait) -> Batched {
        let mut outputs = Vec::new();
        let mut take = |o: &mut Outputs<'_>| {
            outputs.push(o.collect());
            true
        };
        let error = daemon
            .process_batch(events, wait, &mut AppliedOutputs::new(&mut take))
            .err();
        Batched { outputs, error }
    }

    fn serve(bridge: Arc<WorkBridge>, count: usize) -> std::thread::JoinHandle<Vec<WorkRequest>> {
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while seen.len() < count {
                let (id, request) = bridge.next(Some(Duration::from_secs(10)), None).unwrap();
                let reply = match &request {
                    WorkRequest::ProcessBatch { events, .. } => {
                        let applied = events.iter().take_while(|(_, _, p)| *p != b"fail");
                        let outputs: Vec<_> = applied.map(|(_, _, p)| p.to_vec()).collect();
                        let failure = (outputs.len() < events.len()).then(|| "fail".to_owned());
                        let counts = vec![1; outputs.len()];
                        Ok(WorkReply::BatchOutputs {
                            outputs,
                            counts,
                            failure,
                        })
                    }
                    WorkRequest::Process { payload, .. } => {
                        Ok(WorkReply::Outputs(vec![payload.clone()]))
                    }
                    WorkRequest::Snapshot { .. } => Ok(WorkReply::State(b"s".to_vec())),
                    WorkRequest::Restore { state, .. } if state == b"bad" => {
                        Err("bad state".into())
                    }
                    WorkRequest::Restore { .. } => Ok(WorkReply::Restored),
                    WorkRequest::Create { .. } => Ok(WorkReply::Created(77)),
                    WorkRequest::Drop { .. } => {
                        seen.push(request);
                        continue;
                    }
                };
                bridge.complete(id, reply).unwrap();
                seen.push(request);
            }
            seen
        })
    }

    #[test]
    fn every_daemon_call_is_a_request_the_sdk_answers() {
        let bridge = Arc::new(WorkBridge::new(Duration::from_secs(10)));
        let server = serve(Arc::clone(&bridge), 5);
        let factory = ForeignDaemon::factory(Arc::clone(&bridge), "counter".into(), 9, true);
        let mut daemon = factory().unwrap();
        assert_eq!(daemon.name(), "counter");
        assert!(daemon.is_stateful());
        let event = CausalEvent::bare(1, 1, b"hi".to_vec());
        assert_eq!(daemon.process(&event).unwrap(), vec![b"hi".to_vec()]);
        assert_eq!(daemon.snapshot().unwrap(), b"s");
        daemon.restore(b"ok").unwrap();
        drop(daemon);
        let seen = server.join().unwrap();
        assert_eq!(
            seen.iter().map(WorkRequest::code).collect::<Vec<_>>(),
            [4, 1, 2, 3, 5]
        );
        assert_eq!(bridge.pending(), 0);
    }

    #[test]
    fn a_batch_is_one_request_answered_once_and_stops_at_a_failure() {
        let bridge = Arc::new(WorkBridge::new(Duration::from_secs(10)));
        let server = serve(Arc::clone(&bridge), 3);
        let mut daemon = ForeignDaemon::new(Arc::clone(&bridge), "k", 1, 2, true);
        let events: Vec<_> = [&b"a"[..], b"b", b"fail", b"c"]
            .iter()
            .enumerate()
            .map(|(i, p)| CausalEvent::bare(1, i as u64 + 1, p.to_vec()))
            .collect();
        let wait = BatchWait::default();
        let done = run_batch(&mut daemon, &events[..2], &wait);
        assert_eq!(done.outputs, vec![vec![b"a".to_vec()], vec![b"b".to_vec()]]);
        assert_eq!(done.error, None);
        let done = run_batch(&mut daemon, &events, &wait);
        assert_eq!(done.outputs.len(), 2);
        assert_eq!(done.error, Some(DaemonError::ProcessFailed("fail".into())));
        assert_eq!(run_batch(&mut daemon, &[], &wait), Batched::default());
        drop(daemon);
        let seen = server.join().unwrap();
        assert_eq!(
            seen.iter().map(WorkRequest::code).collect::<Vec<_>>(),
            [6, 6, 5]
        );
    }

    #[test]
    fn a_batch_answer_must_fit_its_batch() {
        let bridge = Arc::new(WorkBridge::new(Duration::from_secs(10)));
        let caller = {
            let bridge = Arc::clone(&bridge);
            std::thread::spawn(move || {
                let events = vec![CausalEvent::bare(1, 1, Vec::new()); 2];
                let mut daemon = ForeignDaemon::new(bridge, "k", 1, 2, true);
                let done = run_batch(&mut daemon, &events, &BatchWait::default());
                std::mem::forget(daemon);
                done
            })
        };
        let (id, _) = bridge.next(Some(Duration::from_secs(10)), None).unwrap();
        for (counts, outputs, failure) in [
            (vec![0; 3], 0, None),                 // more events than the batch
            (vec![0], 0, None),                    // short without a failure
            (vec![0; 2], 0, Some("x".to_owned())), // a failure after all applied
            (vec![1, 1], 1, None),                 // counts beyond the outputs
            (vec![1, 0], 2, None),                 // outputs beyond the counts
            (vec![usize::MAX, 2], 1, None),        // counts that overflow
        ] {
            let reply = WorkReply::BatchOutputs {
                outputs: vec![Vec::new(); outputs],
                counts,
                failure,
            };
            assert!(matches!(
                bridge.complete(id, Ok(reply)),
                Err(WorkError::WrongAnswer { .. })
            ));
        }
        let reply = WorkReply::BatchOutputs {
            outputs: vec![b"y".to_vec()],
            counts: vec![0, 1],
            failure: None,
        };
        bridge.complete(id, Ok(reply)).unwrap();
        assert_eq!(
            caller.join().unwrap().outputs,
            vec![vec![], vec![b"y".to_vec()]]
        );
    }

    /// The wait limit and cancel apply until the SDK takes the batch;
    /// after that the caller waits for the answer.
    #[test]
    fn a_batch_wait_gives_up_only_before_the_sdk_takes_it() {
        let bridge = Arc::new(WorkBridge::new(Duration::from_secs(10)));
        let events = vec![CausalEvent::bare(1, 1, Vec::new())];
        let mut daemon = ForeignDaemon::new(Arc::clone(&bridge), "k", 1, 2, true);
        let soon = BatchWait {
            deadline: Some(Instant::now() + Duration::from_millis(20)),
            cancel: None,
        };
        let done = run_batch(&mut daemon, &events, &soon);
        assert_eq!(done.error, Some(DaemonError::TimedOut));
        assert_eq!(bridge.pending(), 0, "withdrawn");
        let token = CancelToken::new();
        token.cancel();
        let cancelled = BatchWait {
            deadline: None,
            cancel: Some(token),
        };
        let done = run_batch(&mut daemon, &events, &cancelled);
        assert_eq!(done.error, Some(DaemonError::Cancelled));
        // Taken before the deadline: the answer is waited for past it.
        let deadline = Instant::now() + Duration::from_millis(300);
        let answerer = {
            let bridge = Arc::clone(&bridge);
            std::thread::spawn(move || {
                let (id, _) = bridge.next(Some(Duration::from_secs(10)), None).unwrap();
                // The property is about time: answer once the deadline passed.
                while Instant::now() <= deadline + Duration::from_millis(20) {
                    std::thread::yield_now();
                }
                let reply = WorkReply::BatchOutputs {
                    outputs: vec![b"x".to_vec()],
                    counts: vec![1],
                    failure: None,
                };
                bridge.complete(id, Ok(reply)).unwrap();
            })
        };
        let short = BatchWait {
            deadline: Some(deadline),
            cancel: None,
        };
        let done = run_batch(&mut daemon, &events, &short);
        answerer.join().unwrap();
        assert_eq!(done.error, None);
        assert_eq!(done.outputs, vec![vec![b"x".to_vec()]]);
        std::mem::forget(daemon);
    }

    #[test]
    fn a_failure_answer_is_the_daemon_error() {
        let bridge = Arc::new(WorkBridge::new(Duration::from_secs(10)));
        let server = serve(Arc::clone(&bridge), 1);
        let mut daemon = ForeignDaemon::new(Arc::clone(&bridge), "k", 1, 2, true);
        let err = daemon.restore(b"bad").unwrap_err();
        assert_eq!(err, DaemonError::RestoreFailed("bad state".into()));
        server.join().unwrap();
    }

    #[test]
    fn an_unanswered_request_times_out_and_a_late_answer_is_refused() {
        let bridge = Arc::new(WorkBridge::new(Duration::from_millis(50)));
        let daemon = ForeignDaemon::new(Arc::clone(&bridge), "k", 1, 2, true);
        let taker = {
            let bridge = Arc::clone(&bridge);
            std::thread::spawn(move || bridge.next(Some(Duration::from_secs(10)), None).unwrap())
        };
        let err = daemon.snapshot().unwrap_err();
        assert!(matches!(err, DaemonError::SnapshotFailed(ref t) if t.contains("did not answer")));
        let (id, _) = taker.join().unwrap();
        assert_eq!(
            bridge.complete(id, Ok(WorkReply::State(Vec::new()))),
            Err(WorkError::Expired(id))
        );
        // A request nobody took is withdrawn too.
        assert!(daemon.snapshot().is_err());
        std::mem::forget(daemon);
        assert_eq!(bridge.pending(), 0);
        assert_eq!(
            bridge.next(Some(Duration::ZERO), None),
            Err(WorkError::Timeout)
        );
    }

    /// A state-changing call taken but not answered in time leaves the
    /// object in doubt: calls that would build on or copy its state fail
    /// at once (nothing queued) until a restore replaces it. A call nobody
    /// took, or a read (snapshot), leaves no doubt.
    #[test]
    fn a_taken_unanswered_change_leaves_the_object_in_doubt_until_a_restore() {
        let bridge = Arc::new(WorkBridge::new(Duration::from_millis(50)));
        let mut daemon = ForeignDaemon::new(Arc::clone(&bridge), "k", 1, 2, true);
        let event = CausalEvent::bare(1, 1, b"e".to_vec());

        // Not taken: withdrawn, the SDK never saw it; no doubt.
        let err = daemon.process(&event).unwrap_err();
        assert!(matches!(err, DaemonError::ProcessFailed(ref t) if t.contains("did not answer")));
        assert_eq!(bridge.pending(), 0);

        // Taken, answered too late: in doubt.
        let taker = {
            let bridge = Arc::clone(&bridge);
            std::thread::spawn(move || bridge.next(Some(Duration::from_secs(10)), None).unwrap())
        };
        let err = daemon.process(&event).unwrap_err();
        assert!(
            matches!(err, DaemonError::InDoubt(ref t) if t.contains("process")),
            "{err:?}"
        );
        let (id, _) = taker.join().unwrap();
        assert_eq!(
            bridge.complete(id, Ok(WorkReply::Outputs(Vec::new()))),
            Err(WorkError::Expired(id))
        );
        for refused in [
            daemon.process(&event).unwrap_err(),
            daemon.snapshot().unwrap_err(),
            run_batch(
                &mut daemon,
                std::slice::from_ref(&event),
                &BatchWait::default(),
            )
            .error
            .unwrap(),
        ] {
            assert!(matches!(refused, DaemonError::InDoubt(_)), "{refused:?}");
        }
        assert_eq!(bridge.pending(), 0, "refused without asking the SDK");

        // A restore replaces the state: the doubt is gone.
        let server = serve(Arc::clone(&bridge), 3);
        daemon.restore(b"known").unwrap();
        assert_eq!(daemon.process(&event).unwrap(), vec![b"e".to_vec()]);
        assert_eq!(daemon.snapshot().unwrap(), b"s");
        server.join().unwrap();
    }

    #[test]
    fn a_wrong_answer_is_refused_and_the_item_stays_open() {
        let bridge = Arc::new(WorkBridge::new(Duration::from_secs(10)));
        let caller = {
            let bridge = Arc::clone(&bridge);
            std::thread::spawn(move || {
                bridge.call(WorkRequest::Snapshot {
                    instance: 1,
                    daemon: 2,
                })
            })
        };
        let (id, _) = bridge.next(Some(Duration::from_secs(10)), None).unwrap();
        assert!(matches!(
            bridge.complete(id, Ok(WorkReply::Restored)),
            Err(WorkError::WrongAnswer { .. })
        ));
        bridge
            .complete(id, Ok(WorkReply::State(b"x".to_vec())))
            .unwrap();
        assert_eq!(caller.join().unwrap(), Ok(WorkReply::State(b"x".to_vec())));
        assert_eq!(
            bridge.complete(id, Err("again".into())),
            Err(WorkError::Expired(id))
        );
    }

    #[test]
    fn close_wakes_callers_and_pullers_and_cancel_wakes_a_puller() {
        let bridge = Arc::new(WorkBridge::new(Duration::from_secs(60)));
        let token = CancelToken::new();
        let puller = {
            let (bridge, token) = (Arc::clone(&bridge), token.clone());
            std::thread::spawn(move || bridge.next(None, Some(&token)))
        };
        token.cancel();
        assert_eq!(puller.join().unwrap(), Err(WorkError::Cancelled));
        let caller = {
            let bridge = Arc::clone(&bridge);
            std::thread::spawn(move || {
                bridge.call(WorkRequest::Snapshot {
                    instance: 1,
                    daemon: 2,
                })
            })
        };
        while bridge.pending() == 0 {
            std::thread::yield_now();
        }
        bridge.close();
        assert_eq!(caller.join().unwrap(), Err(WorkError::Closed));
        assert_eq!(bridge.next(None, None), Err(WorkError::Closed));
        assert_eq!(
            bridge.call(WorkRequest::Snapshot {
                instance: 1,
                daemon: 2
            }),
            Err(WorkError::Closed)
        );
    }
}
