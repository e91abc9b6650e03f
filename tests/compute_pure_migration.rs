//! The pure migration pieces of `net::compute` together, without a mesh:
//! a source host keeps receiving events from several producers while it is
//! snapshotted, its snapshot travels as encoded SnapshotReady chunks, is
//! reassembled and restored (with the Net extension) on a target, and the
//! events captured by the source buffer travel as BufferedEvents — each
//! batch sent twice, as a retransmission would — into the target's replay
//! buffer, whose first `process` call fails once. After cut-over, late
//! events are forwarded. The target must end with every event applied
//! exactly once, in order per producer, and its chain must continue the
//! source's with a verifiable parent hash.

use std::collections::BTreeMap;
use std::time::Instant;

use net::compute::migration::{
    CaptureOutcome, MigrationMessage, ReplayBuffer, SnapshotReassembler, SourceBuffer,
    UnknownProducers, split_snapshot,
};
use net::compute::{
    CausalEvent, DaemonError, DaemonHost, MeshDaemon, NetSnapshotExt, StateSnapshot,
};
use net::identity::EntityKeypair;
use proptest::prelude::*;

/// Counts events per producer and refuses any that is not the producer's
/// next sequence, so a loss, duplicate or reordering fails the test.
#[derive(Debug, Default)]
struct Tally {
    last: BTreeMap<u64, u64>,
    calls: usize,
    fail_at_call: Option<usize>,
}

impl MeshDaemon for Tally {
    fn name(&self) -> &str {
        "tally"
    }

    fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        self.calls += 1;
        if self.fail_at_call == Some(self.calls) {
            return Err(DaemonError::ProcessFailed("injected".into()));
        }
        let last = self.last.entry(event.producer()).or_insert(0);
        if event.sequence() != *last + 1 {
            return Err(DaemonError::ProcessFailed(format!(
                "producer {} sent {} after {}",
                event.producer(),
                event.sequence(),
                last
            )));
        }
        *last = event.sequence();
        Ok(vec![event.payload.clone()])
    }

    fn is_stateful(&self) -> bool {
        true
    }

    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        Ok(self
            .last
            .iter()
            .flat_map(|(p, s)| [p.to_le_bytes(), s.to_le_bytes()].concat())
            .collect())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
        if !state.len().is_multiple_of(16) {
            return Err(DaemonError::RestoreFailed("length".into()));
        }
        self.last = state
            .chunks_exact(16)
            .map(|c| {
                let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
                (word(&c[..8]), word(&c[8..]))
            })
            .collect();
        Ok(())
    }
}

/// Encodes and decodes a message, as the wire would.
fn over_the_wire(msg: &MigrationMessage) -> MigrationMessage {
    MigrationMessage::decode(&msg.encode().unwrap()).unwrap()
}

struct Target {
    host: DaemonHost,
    replay: ReplayBuffer,
    first_output: Option<CausalEvent>,
}

impl Target {
    fn receive(&mut self, origin: u64, events: Vec<CausalEvent>) {
        let msg = over_the_wire(&MigrationMessage::BufferedEvents { origin, events });
        let MigrationMessage::BufferedEvents { events, .. } = msg else {
            panic!("decoded another message");
        };
        self.replay.insert_all(events).unwrap();
        // A failure leaves the tail pending; the next receive resumes it.
        let (host, first) = (&mut self.host, &mut self.first_output);
        let _ = self.replay.drain(|e| {
            let out = host.deliver_at(e, 0)?;
            if first.is_none() {
                *first = out.into_iter().next();
            }
            Ok::<_, DaemonError>(())
        });
    }
}

/// Returns whether the target emitted (so chain continuity was checked).
fn migrate_under_load(
    events: &[(u64, u64)],
    start: usize,
    batches: &[usize],
    cutover: usize,
) -> bool {
    let keypair = EntityKeypair::from_seed(&[7; 32]);
    let origin = keypair.origin_hash();
    let mut source = DaemonHost::new(Box::new(Tally::default()), keypair.clone());
    let mut capture = SourceBuffer::new();
    let mut target: Option<Target> = None;

    for (i, &(producer, seq)) in events.iter().enumerate() {
        if i == start {
            capture.begin().unwrap();
            let taken = source.take_snapshot_at(1).unwrap();
            let bytes = taken.snapshot.to_bytes().unwrap();
            let mut chunks = split_snapshot(origin, taken.snapshot.through_seq, &bytes).unwrap();
            chunks.reverse();
            let mut reassembler = SnapshotReassembler::new();
            let mut whole = None;
            for chunk in &chunks {
                whole = reassembler
                    .feed_message(&over_the_wire(chunk), Instant::now())
                    .unwrap();
            }
            let snapshot = StateSnapshot::from_bytes(&whole.unwrap()).unwrap();
            let ext = NetSnapshotExt::from_bytes(&taken.ext.to_bytes().unwrap()).unwrap();
            let daemon = Tally {
                fail_at_call: Some(1),
                ..Tally::default()
            };
            let host =
                DaemonHost::from_snapshot(Box::new(daemon), keypair.clone(), &snapshot, Some(&ext))
                    .unwrap();
            let replay = ReplayBuffer::new(ext.applied.clone(), UnknownProducers::FromGenesis);
            target = Some(Target {
                host,
                replay,
                first_output: None,
            });
        }
        if i > start && i < cutover && batches.contains(&i) {
            let batch = capture.take_batch();
            let t = target.as_mut().unwrap();
            t.receive(origin, batch.clone());
            t.receive(origin, batch);
        }
        if i == cutover {
            let rest = capture.cutover().unwrap();
            let t = target.as_mut().unwrap();
            t.receive(origin, rest.clone());
            t.receive(origin, rest);
        }
        let event = CausalEvent::bare(producer, seq, format!("{producer}:{seq}").into_bytes());
        match capture.capture(event).unwrap() {
            CaptureOutcome::Deliver(e) => {
                source.deliver_at(&e, 0).unwrap();
            }
            CaptureOutcome::Buffered => {}
            CaptureOutcome::Forward(e) => target.as_mut().unwrap().receive(origin, vec![e]),
        }
    }
    if cutover >= events.len() {
        let rest = capture.cutover().unwrap();
        target.as_mut().unwrap().receive(origin, rest);
    }
    let mut t = target.unwrap();
    t.receive(origin, vec![]);

    assert_eq!(t.replay.pending_len(), 0);
    let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
    for &(p, s) in events {
        expected.insert(p, s.max(expected.get(&p).copied().unwrap_or(0)));
    }
    let state = t.host.take_snapshot_at(0).unwrap().snapshot.state;
    let model = Tally {
        last: expected,
        ..Tally::default()
    };
    assert_eq!(state, model.snapshot().unwrap());

    // The target's first output continued the source's chain.
    if let Some(first) = &t.first_output {
        first
            .link
            .validate_after(source.head(), source.head_payload())
            .unwrap();
    }
    t.first_output.is_some()
}

/// Three producers' events in a random interleaving, with the migration
/// starting, sending batches and cutting over at random points.
fn scenario() -> impl Strategy<Value = (Vec<(u64, u64)>, usize, Vec<usize>, usize)> {
    prop::collection::vec(1u64..15, 3).prop_flat_map(|lens| {
        let events: Vec<(u64, u64)> = lens
            .iter()
            .enumerate()
            .flat_map(|(p, &n)| (1..=n).map(move |s| (p as u64 + 1, s)))
            .collect();
        let len = events.len();
        (
            Just(events).prop_shuffle(),
            0..len,
            prop::collection::vec(0..len, 0..4),
            0..=len,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn every_event_is_applied_exactly_once_across_a_migration(
        (events, start, batches, cutover) in scenario()
    ) {
        // Per-producer order on the wire, as each producer sends in order.
        let mut events = events;
        let mut next: BTreeMap<u64, u64> = BTreeMap::new();
        for e in &mut events {
            let n = next.entry(e.0).or_insert(0);
            *n += 1;
            e.1 = *n;
        }
        let _ = migrate_under_load(&events, start, &batches, cutover.max(start + 1));
    }
}

#[test]
fn a_migration_with_no_events_after_the_snapshot() {
    let events: Vec<(u64, u64)> = (1..=5).map(|s| (1, s)).collect();
    assert!(migrate_under_load(&events, 4, &[], 5));
}
