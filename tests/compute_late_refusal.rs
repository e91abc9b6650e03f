//! A refused restore answered once (issue 15; v0.11 migration messages
//! carry no attempt id). Three real runtimes — orchestrator, source and
//! target — joined by a switchboard the test drives by hand: no socket, no
//! timer (the retry interval is an hour), every message delivered when and
//! as often as the test says.
//!
//! The scenario of the bug: the target refuses a restore (no factory) but
//! is slow about it, so the orchestrator's retransmission of the same
//! snapshot reaches it too. Before the fix each copy was refused again,
//! and the late MigrationFailed of the first attempt aborted the *next*
//! attempt of the same daemon with the old reason. The orchestrator cannot
//! filter it by phase (the target is legitimately heard from in Transfer);
//! the target now refuses one snapshot once.

mod compute_common;

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use compute_common::{Counter, count_of};
use net::compute::migration::wire::msg_type;
use net::compute::migration::{FailureReason, MigrationMessage};
use net::compute::{
    CausalEvent, ComputeRuntime, DaemonHost, MeshDaemon, MigrationPhase, MigrationStatus,
    MigrationTransport, RuntimeConfig,
};
use net::identity::EntityKeypair;
use net::mesh::{MeshError, SubprotocolHandler};

const ORCH: u64 = 1;
const SOURCE: u64 = 2;
const TARGET: u64 = 3;
const PRODUCER: u64 = 0xfeed;
/// Origin of the probe: a message for an unknown daemon that the target
/// answers at once, so its answer proves every message before it was
/// handled (one worker, one FIFO inbox).
const PROBE: u64 = 0xdead_beef;
const WAIT: Duration = Duration::from_secs(10);

type Envelope = (u64, u64, Vec<u8>);

/// Every message any runtime sent, until the test takes it.
#[derive(Default)]
struct Board {
    queue: Mutex<VecDeque<Envelope>>,
    arrived: Condvar,
}

impl Board {
    /// Takes the first message `from` → `to` of `kind`, waiting for it.
    fn take(&self, from: u64, to: u64, kind: u8) -> Vec<u8> {
        self.take_where(|f, t, bytes| f == from && t == to && bytes[0] == kind)
            .unwrap_or_else(|| panic!("no message of type {kind} from {from} to {to}"))
    }

    fn take_where(&self, mut matches: impl FnMut(u64, u64, &[u8]) -> bool) -> Option<Vec<u8>> {
        let deadline = Instant::now() + WAIT;
        let mut queue = self.queue.lock().unwrap();
        loop {
            if let Some(at) = queue.iter().position(|(f, t, b)| matches(*f, *t, b)) {
                return queue.remove(at).map(|(_, _, bytes)| bytes);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            queue = self.arrived.wait_timeout(queue, left).unwrap().0;
        }
    }

    /// Takes, without waiting, every queued message `from` → `to`.
    fn drain(&self, from: u64, to: u64) -> Vec<Vec<u8>> {
        let mut queue = self.queue.lock().unwrap();
        let (taken, kept) = queue
            .drain(..)
            .partition::<VecDeque<_>, _>(|(f, t, _)| *f == from && *t == to);
        *queue = kept;
        taken.into_iter().map(|(_, _, bytes)| bytes).collect()
    }

    fn pop(&self) -> Option<Envelope> {
        self.queue.lock().unwrap().pop_front()
    }
}

struct Wire {
    node: u64,
    board: Arc<Board>,
}

impl MigrationTransport for Wire {
    fn local_node(&self) -> u64 {
        self.node
    }

    fn send(&self, to: u64, message: &[u8]) -> Result<(), MeshError> {
        self.board
            .queue
            .lock()
            .unwrap()
            .push_back((self.node, to, message.to_vec()));
        self.board.arrived.notify_all();
        Ok(())
    }
}

struct Switchboard {
    board: Arc<Board>,
    runtimes: Vec<(ComputeRuntime, Arc<dyn SubprotocolHandler>)>,
}

impl Switchboard {
    fn new() -> Self {
        let board = Arc::new(Board::default());
        let hour = Duration::from_secs(3600);
        let runtimes = [ORCH, SOURCE, TARGET]
            .into_iter()
            .map(|node| {
                let wire = Arc::new(Wire {
                    node,
                    board: Arc::clone(&board),
                });
                let runtime =
                    ComputeRuntime::new(wire, RuntimeConfig::with_timers(hour, hour, hour))
                        .unwrap();
                let handler = runtime.handler();
                (runtime, handler)
            })
            .collect();
        Self { board, runtimes }
    }

    fn runtime(&self, node: u64) -> &ComputeRuntime {
        &self.runtimes[(node - 1) as usize].0
    }

    fn deliver(&self, from: u64, to: u64, bytes: &[u8]) {
        self.runtimes[(to - 1) as usize].1.on_message(from, bytes);
    }

    /// Carries one message `from` → `to` of `kind`, waiting for it.
    fn carry(&self, from: u64, to: u64, kind: u8) -> Vec<u8> {
        let bytes = self.board.take(from, to, kind);
        self.deliver(from, to, &bytes);
        bytes
    }

    /// Waits until the target has handled everything delivered to it so
    /// far (its answer to a probe arrives after every earlier answer).
    fn target_settled(&self) {
        let probe = MigrationMessage::ActivateTarget { origin: PROBE }
            .encode()
            .unwrap();
        self.deliver(ORCH, TARGET, &probe);
        self.board
            .take_where(|f, t, bytes| {
                f == TARGET
                    && t == ORCH
                    && MigrationMessage::decode(bytes).is_ok_and(|m| m.origin() == PROBE)
            })
            .expect("the target's answer to the probe");
    }

    /// Carries every message, as sent, until `done` (bounded).
    fn pump_until(&self, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done() {
            assert!(Instant::now() < deadline, "the migration did not finish");
            match self.board.pop() {
                Some((from, to, bytes)) => self.deliver(from, to, &bytes),
                None => {
                    let queue = self.board.queue.lock().unwrap();
                    if queue.is_empty() {
                        drop(
                            self.board
                                .arrived
                                .wait_timeout(queue, Duration::from_millis(50))
                                .unwrap(),
                        );
                    }
                }
            }
        }
    }
}

fn counter_factory(runtime: &ComputeRuntime, keypair: &EntityKeypair) {
    runtime
        .factories()
        .register(
            keypair.clone(),
            Arc::new(|| Ok(Box::new(Counter::default()) as Box<dyn MeshDaemon>)),
        )
        .unwrap();
}

fn deliver_events(runtime: &ComputeRuntime, origin: u64, seqs: std::ops::RangeInclusive<u64>) {
    for seq in seqs {
        runtime
            .deliver(origin, CausalEvent::bare(PRODUCER, seq, vec![]))
            .unwrap();
    }
}

fn refusal_of(bytes: &[u8]) -> (u64, FailureReason) {
    match MigrationMessage::decode(bytes).unwrap() {
        MigrationMessage::MigrationFailed { origin, reason } => (origin, reason),
        other => panic!("expected MigrationFailed, got {other:?}"),
    }
}

#[test]
fn a_retransmitted_refused_restore_is_refused_once_and_cannot_abort_the_next_attempt() {
    let net = Switchboard::new();
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    let (orch, source, target) = (net.runtime(ORCH), net.runtime(SOURCE), net.runtime(TARGET));
    source
        .spawn(DaemonHost::new(
            Box::new(Counter::default()),
            keypair.clone(),
        ))
        .unwrap();
    deliver_events(source, origin, 1..=10);

    // Attempt 1: the target has no factory. Its snapshot arrives twice —
    // the orchestrator's copy and its retransmission, both queued while
    // the target was slow.
    orch.start_migration(origin, SOURCE, TARGET).unwrap();
    net.carry(ORCH, SOURCE, msg_type::TAKE_SNAPSHOT);
    net.carry(SOURCE, ORCH, msg_type::SNAPSHOT_READY);
    let chunk = net.board.take(ORCH, TARGET, msg_type::SNAPSHOT_READY);
    net.deliver(ORCH, TARGET, &chunk);
    net.deliver(ORCH, TARGET, &chunk);
    let refusal = net.board.take(TARGET, ORCH, msg_type::MIGRATION_FAILED);
    assert_eq!(
        refusal_of(&refusal),
        (origin, FailureReason::FactoryNotFound)
    );
    net.deliver(TARGET, ORCH, &refusal);
    assert_eq!(
        orch.wait_migration(origin, WAIT).unwrap(),
        MigrationStatus::Failed(FailureReason::FactoryNotFound)
    );
    // The abort reaches the source, which keeps the daemon.
    net.carry(ORCH, SOURCE, msg_type::MIGRATION_FAILED);
    net.carry(ORCH, TARGET, msg_type::MIGRATION_FAILED);
    net.target_settled();
    let late: Vec<_> = net.board.drain(TARGET, ORCH);
    assert_eq!(
        late.iter().map(|b| refusal_of(b)).collect::<Vec<_>>(),
        Vec::new(),
        "the retransmitted snapshot was refused again"
    );

    // Attempt 2, with a factory now. Late answers of attempt 1 (none, since
    // the fix) reach the orchestrator in Transfer, before the target's.
    counter_factory(target, &keypair);
    deliver_events(source, origin, 11..=20);
    orch.start_migration(origin, SOURCE, TARGET).unwrap();
    net.carry(ORCH, SOURCE, msg_type::TAKE_SNAPSHOT);
    net.carry(SOURCE, ORCH, msg_type::SNAPSHOT_READY);
    let chunk = net.board.take(ORCH, TARGET, msg_type::SNAPSHOT_READY);
    assert_eq!(
        orch.migration_status(origin),
        Some(MigrationStatus::Running(MigrationPhase::Transfer))
    );
    for bytes in &late {
        net.deliver(TARGET, ORCH, bytes);
    }
    net.deliver(ORCH, TARGET, &chunk);
    net.carry(TARGET, ORCH, msg_type::RESTORE_COMPLETE);
    net.pump_until(|| {
        !matches!(
            orch.migration_status(origin),
            Some(MigrationStatus::Running(_))
        )
    });
    assert_eq!(
        orch.migration_status(origin),
        Some(MigrationStatus::Completed)
    );
    assert!(!source.registry().contains(origin));
    let count = target
        .registry()
        .with_host(origin, |h| count_of(h))
        .unwrap();
    assert_eq!(count, 20);
}

#[test]
fn a_new_snapshot_after_a_refusal_is_refused_again() {
    // Refusing once per snapshot, not once per daemon: a retry that still
    // finds no factory hears why.
    let net = Switchboard::new();
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    let (orch, source) = (net.runtime(ORCH), net.runtime(SOURCE));
    source
        .spawn(DaemonHost::new(Box::new(Counter::default()), keypair))
        .unwrap();
    for attempt in 1..=2u64 {
        deliver_events(source, origin, attempt * 10 - 9..=attempt * 10);
        orch.start_migration(origin, SOURCE, TARGET).unwrap();
        net.carry(ORCH, SOURCE, msg_type::TAKE_SNAPSHOT);
        net.carry(SOURCE, ORCH, msg_type::SNAPSHOT_READY);
        let chunk = net.board.take(ORCH, TARGET, msg_type::SNAPSHOT_READY);
        for _ in 0..3 {
            net.deliver(ORCH, TARGET, &chunk);
        }
        let refusal = net.board.take(TARGET, ORCH, msg_type::MIGRATION_FAILED);
        net.deliver(TARGET, ORCH, &refusal);
        assert_eq!(
            orch.wait_migration(origin, WAIT).unwrap(),
            MigrationStatus::Failed(FailureReason::FactoryNotFound),
            "attempt {attempt}"
        );
        net.carry(ORCH, SOURCE, msg_type::MIGRATION_FAILED);
        net.carry(ORCH, TARGET, msg_type::MIGRATION_FAILED);
        net.target_settled();
        assert!(
            net.board.drain(TARGET, ORCH).is_empty(),
            "attempt {attempt}"
        );
    }
    assert_eq!(
        source
            .registry()
            .with_host(origin, |h| count_of(h))
            .unwrap(),
        20
    );
}
