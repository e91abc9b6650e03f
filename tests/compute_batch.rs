//! `ComputeRuntime::deliver_batch` leaves a daemon exactly as the same
//! events delivered one by one: outcomes, chained outputs (links and
//! payloads), the causal head, horizon, applied watermarks and stats, and
//! the outputs queue — with several producers and an event refused partway
//! (the batch stops there; the rest can be delivered again).

use std::sync::Arc;
use std::time::Duration;

mod compute_common;

use compute_common::{Counter, Gate};
use net::compute::{
    BatchOutcome, BatchWait, CausalEvent, ComputeError, ComputeRuntime, DaemonError, DaemonHost,
    DeliveryOutcome, EventOutcome, ForeignDaemon, MigrationOptions, MigrationTransport,
    RuntimeConfig, WorkBridge, WorkReply, WorkRequest,
};
use net::cortex::causal::CausalLink;
use net::identity::EntityKeypair;
use net::mesh::MeshError;

const PRODUCER: u64 = 0xfeed;

/// A node alone: nothing is ever sent (no migration runs here).
struct Alone;

impl MigrationTransport for Alone {
    fn local_node(&self) -> u64 {
        1
    }

    fn send(&self, _to: u64, _message: &[u8]) -> Result<(), MeshError> {
        Ok(())
    }
}

fn runtime() -> (ComputeRuntime, u64) {
    let rt = ComputeRuntime::new(Arc::new(Alone), RuntimeConfig::default()).unwrap();
    let host = DaemonHost::new(
        Box::new(Counter::default()),
        EntityKeypair::from_seed(&[3; 32]),
    );
    let origin = rt.spawn(host).unwrap();
    (rt, origin)
}

/// Two producers interleaved; producer 8's sequence 3 is missing, so its
/// sequence 4 (the sixth event) is refused.
fn events() -> Vec<CausalEvent> {
    [(7, 1), (8, 1), (7, 2), (8, 2), (7, 3), (8, 4), (7, 4)]
        .into_iter()
        .map(|(producer, seq)| CausalEvent::bare(producer, seq, vec![seq as u8; 3]))
        .collect()
}

fn drain(rt: &ComputeRuntime) -> Vec<CausalEvent> {
    std::iter::from_fn(|| rt.next_output(Duration::ZERO)).collect()
}

#[test]
fn a_batch_equals_the_same_single_deliveries() {
    let (single, origin) = runtime();
    let mut single_outcomes = Vec::new();
    let mut single_error = None;
    for event in events() {
        match single.deliver(origin, event) {
            Ok(outcome) => single_outcomes.push(outcome),
            Err(e) => {
                single_error = Some(e);
                break;
            }
        }
    }
    let (batched, origin_b) = runtime();
    assert_eq!(origin, origin_b);
    let done = batched
        .deliver_batch(origin, events(), &BatchWait::default())
        .unwrap();
    assert_eq!(done.outcomes.len(), 5);
    assert!(matches!(
        done.error,
        Some(ComputeError::Daemon(DaemonError::ProcessFailed(ref t))) if t.contains("sequence 4 after 2")
    ));
    assert_eq!(done.error, single_error);
    // Received-at times differ between the two runs; everything else
    // matches, link by link.
    let strip = |outcomes: Vec<DeliveryOutcome>| -> Vec<_> {
        outcomes
            .into_iter()
            .map(|o| match o {
                DeliveryOutcome::Processed(out) => out
                    .into_iter()
                    .map(|e| (e.link, e.payload))
                    .collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let batched_runs: Vec<Vec<_>> = done
        .per_event()
        .map(|(outcome, outputs)| {
            assert_eq!(
                outcome,
                EventOutcome::Processed {
                    outputs: outputs.len()
                }
            );
            outputs
                .iter()
                .map(|e| (e.link, e.payload.clone()))
                .collect()
        })
        .collect();
    assert_eq!(batched_runs, strip(single_outcomes));
    let queued = |rt: &ComputeRuntime| -> Vec<_> {
        drain(rt).into_iter().map(|e| (e.link, e.payload)).collect()
    };
    assert_eq!(queued(&batched), queued(&single));
    let view = |rt: &ComputeRuntime| {
        rt.registry()
            .with_host(origin, |h| {
                (
                    h.stats(),
                    *h.head(),
                    h.head_payload().to_vec(),
                    h.horizon().clone(),
                    h.applied().clone(),
                    h.daemon().snapshot().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(view(&batched), view(&single));
    assert_eq!(view(&batched).0.events_processed, 5);
    assert_eq!(view(&batched).0.errors, 1);
    // The rest, from the refused event's producer's next sequence.
    let rest = vec![
        CausalEvent::bare(8, 3, vec![3; 3]),
        CausalEvent::bare(8, 4, vec![4; 3]),
        CausalEvent::bare(7, 4, vec![4; 3]),
    ];
    for event in rest.clone() {
        single.deliver(origin, event).unwrap();
    }
    let done = batched
        .deliver_batch(origin, rest, &BatchWait::default())
        .unwrap();
    assert_eq!((done.outcomes.len(), done.error), (3, None));
    assert_eq!(queued(&batched), queued(&single));
    assert_eq!(view(&batched), view(&single));
    // Unknown daemons and an empty batch.
    assert!(matches!(
        batched.deliver_batch(42, events(), &BatchWait::default()),
        Err(ComputeError::Daemon(DaemonError::NotFound(42)))
    ));
    let empty = batched
        .deliver_batch(origin, Vec::new(), &BatchWait::default())
        .unwrap();
    assert_eq!((empty.outcomes.len(), empty.error), (0, None));
}

/// `output_capacity` 0 keeps no outputs for `next_output`: deliveries,
/// single and batched, still return theirs, chained as with a queue.
#[test]
fn without_an_output_queue_outputs_come_only_with_the_outcome() {
    let (queued, origin) = runtime();
    let mut config = RuntimeConfig::default();
    config.output_capacity = 0;
    let bare = ComputeRuntime::new(Arc::new(Alone), config).unwrap();
    let host = DaemonHost::new(
        Box::new(Counter::default()),
        EntityKeypair::from_seed(&[3; 32]),
    );
    assert_eq!(bare.spawn(host).unwrap(), origin);
    let all = events();
    let (first, rest) = all[..5].split_at(2);
    let mut outcomes = Vec::new();
    for rt in [&queued, &bare] {
        let mut mine = Vec::new();
        for event in first {
            mine.push(rt.deliver(origin, event.clone()).unwrap());
        }
        let done = rt
            .deliver_batch(origin, rest.to_vec(), &BatchWait::default())
            .unwrap();
        assert!(done.error.is_none());
        assert_eq!(done.outcomes.len(), rest.len());
        mine.push(DeliveryOutcome::Processed(done.outputs));
        outcomes.push(mine);
    }
    // Links and payloads (each runtime stamps its own receive times).
    let emitted = |outcomes: &[DeliveryOutcome]| -> Vec<(CausalLink, Vec<u8>)> {
        outcomes
            .iter()
            .flat_map(|o| match o {
                DeliveryOutcome::Processed(outputs) => outputs
                    .iter()
                    .map(|e| (e.link, e.payload.clone()))
                    .collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(emitted(&outcomes[0]), emitted(&outcomes[1]));
    assert_eq!(emitted(&outcomes[1]).len(), 5);
    let queued_outputs: Vec<_> = drain(&queued)
        .into_iter()
        .map(|e| (e.link, e.payload))
        .collect();
    assert_eq!(queued_outputs, emitted(&outcomes[0]));
    assert!(drain(&bare).is_empty());
}

/// `deliver_queued` / `deliver_batch_queued` (the C ABI's path): the
/// outputs are moved into the queue, the outcomes carry none, and the queue
/// holds what `deliver` would have returned.
#[test]
fn queued_deliveries_move_their_outputs_into_the_queue() {
    let (returned, origin) = runtime();
    let (queued, _) = runtime();
    let all = events();
    let (first, rest) = all[..5].split_at(2);
    let mut expected = Vec::new();
    for event in first {
        match returned.deliver(origin, event.clone()).unwrap() {
            DeliveryOutcome::Processed(outputs) => expected.extend(outputs),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            queued.deliver_queued(origin, event.clone()).unwrap(),
            DeliveryOutcome::Processed(Vec::new())
        );
    }
    let done = returned
        .deliver_batch(origin, rest.to_vec(), &BatchWait::default())
        .unwrap();
    for (outcome, outputs) in done.per_event() {
        assert_eq!(
            outcome,
            EventOutcome::Processed {
                outputs: outputs.len()
            }
        );
        expected.extend(outputs.iter().cloned());
    }
    let done = queued
        .deliver_batch_queued(origin, rest.to_vec(), &BatchWait::default())
        .unwrap();
    assert!(done.error.is_none());
    assert_eq!(
        done.outcomes,
        vec![EventOutcome::Processed { outputs: 0 }; rest.len()]
    );
    assert!(done.outputs.is_empty());
    let links = |events: Vec<CausalEvent>| -> Vec<(CausalLink, Vec<u8>)> {
        events.into_iter().map(|e| (e.link, e.payload)).collect()
    };
    assert_eq!(expected.len(), 5);
    assert_eq!(links(drain(&queued)), links(expected));
    // The refused event is refused the same way.
    assert_eq!(
        queued.deliver_queued(origin, all[5].clone()).unwrap_err(),
        returned.deliver(origin, all[5].clone()).unwrap_err()
    );
}

/// A batch in a slow daemon holds only that daemon: another daemon's batch
/// is processed and a migration starts meanwhile (the batch used to hold
/// the node's migration state lock while the daemon worked).
#[test]
fn a_slow_batch_holds_up_only_its_own_daemon() {
    let (rt, counter) = runtime();
    let rt = Arc::new(rt);
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let gate = rt
        .spawn(DaemonHost::new(
            Box::new(Gate::new(entered_tx, release_rx)),
            EntityKeypair::from_seed(&[4; 32]),
        ))
        .unwrap();
    let slow = {
        let rt = Arc::clone(&rt);
        std::thread::spawn(move || {
            rt.deliver_batch(
                gate,
                vec![CausalEvent::bare(9, 1, vec![1])],
                &BatchWait::default(),
            )
        })
    };
    entered.recv_timeout(Duration::from_secs(60)).unwrap();

    // While the gate's batch is in its daemon, from another thread (so that
    // a regression fails the wait below instead of hanging the test).
    let (done_tx, done) = std::sync::mpsc::channel();
    let others = {
        let rt = Arc::clone(&rt);
        std::thread::spawn(move || {
            let batch = rt
                .deliver_batch(counter, events()[..2].to_vec(), &BatchWait::default())
                .unwrap();
            let plain = MigrationOptions::default().with_transport_identity(false);
            let started = rt.start_migration_with(counter, 1, 2, &plain);
            done_tx.send((batch.outcomes.len(), started)).unwrap();
        })
    };
    let outcome = done.recv_timeout(Duration::from_secs(30));
    release.send(()).unwrap();
    let (processed, started) = outcome.expect("the other daemon waited for the slow batch");
    assert_eq!(processed, 2);
    started.unwrap();
    others.join().unwrap();
    let slow = slow.join().unwrap().unwrap();
    assert_eq!(slow.outcomes.len(), 1);
    assert!(slow.error.is_none());
}

/// A runtime whose daemon (seed 5) is an SDK object of `bridge` (instance 1).
fn foreign_runtime(bridge: &Arc<WorkBridge>) -> (ComputeRuntime, u64) {
    let rt = ComputeRuntime::new(Arc::new(Alone), RuntimeConfig::default()).unwrap();
    let keypair = EntityKeypair::from_seed(&[5; 32]);
    let origin = keypair.origin_hash();
    let daemon = ForeignDaemon::new(Arc::clone(bridge), "sdk", 1, origin, true);
    rt.spawn(DaemonHost::new(Box::new(daemon), keypair))
        .unwrap();
    (rt, origin)
}

/// What the SDK answers for a batch of `count` events from `first`: each
/// event's sequence as its one output, and event `fail_at` refused.
fn sdk_answer(first: u64, count: usize, fail_at: Option<u64>) -> WorkReply {
    let applied: Vec<u64> = (first..)
        .take(count)
        .take_while(|s| Some(*s) != fail_at)
        .collect();
    WorkReply::BatchOutputs {
        outputs: applied.iter().map(|s| s.to_le_bytes().to_vec()).collect(),
        counts: vec![1; applied.len()],
        failure: (applied.len() < count).then(|| "refused".to_owned()),
    }
}

/// A batch lent to its daemon's SDK and answered leaves the daemon exactly
/// as the same batch answered through the bridge (outputs, chain, stats,
/// horizon, queue); lending is refused, with nothing done, for a Rust
/// daemon, another SDK's daemon, a busy one and an empty batch; a lent
/// batch dropped unanswered leaves the object in doubt.
#[test]
fn a_lent_batch_records_what_a_bridged_batch_does() {
    let (bridge, other) = (
        Arc::new(WorkBridge::new(Duration::from_secs(10))),
        Arc::new(WorkBridge::new(Duration::from_secs(10))),
    );
    let (bridged, origin) = foreign_runtime(&bridge);
    let sdk = {
        let bridge = Arc::clone(&bridge);
        std::thread::spawn(move || {
            for fail_at in [None, Some(11)] {
                let (id, request) = bridge.next(Some(Duration::from_secs(10)), None).unwrap();
                let WorkRequest::ProcessBatch { events, .. } = request else {
                    panic!("{request:?}");
                };
                let (_, first) = events.first().unwrap();
                bridge
                    .complete(id, Ok(sdk_answer(first, events.len(), fail_at)))
                    .unwrap();
            }
        })
    };
    let batch = |first: u64, n: u64| -> Vec<CausalEvent> {
        (first..first + n)
            .map(|s| CausalEvent::bare(PRODUCER, s, vec![s as u8]))
            .collect()
    };
    let wait = BatchWait::default();
    let through_bridge = [
        bridged.deliver_batch(origin, batch(1, 8), &wait).unwrap(),
        bridged.deliver_batch(origin, batch(9, 4), &wait).unwrap(),
    ];
    sdk.join().unwrap();

    let lender_bridge = Arc::new(WorkBridge::new(Duration::from_secs(10)));
    let (lender, origin_l) = foreign_runtime(&lender_bridge);
    assert_eq!(origin, origin_l);
    // Not lent: another SDK's daemon, an empty batch, sequences past 2^64-1.
    assert!(
        lender
            .lend_batch(origin, PRODUCER, 1, 8, &other)
            .unwrap()
            .is_none()
    );
    assert!(
        lender
            .lend_batch(origin, PRODUCER, 1, 0, &lender_bridge)
            .unwrap()
            .is_none()
    );
    assert!(
        lender
            .lend_batch(origin, PRODUCER, u64::MAX, 2, &lender_bridge)
            .unwrap()
            .is_none()
    );
    assert!(
        lender
            .lend_batch(42, PRODUCER, 1, 8, &lender_bridge)
            .unwrap()
            .is_none()
    );
    let first = lender
        .lend_batch(origin, PRODUCER, 1, 8, &lender_bridge)
        .unwrap()
        .unwrap();
    assert_eq!((first.instance(), first.len()), (1, 8));
    // Busy while lent.
    assert!(
        lender
            .lend_batch(origin, PRODUCER, 9, 4, &lender_bridge)
            .unwrap()
            .is_none()
    );
    assert!(
        !first.fits(&sdk_answer(1, 9, None)),
        "an answer for 9 events"
    );
    let lent_first = first.finish(sdk_answer(1, 8, None));
    let second = lender
        .lend_batch(origin, PRODUCER, 9, 4, &lender_bridge)
        .unwrap()
        .unwrap();
    let lent_second = second.finish(sdk_answer(9, 4, Some(11)));
    assert!(matches!(
        lent_second.error,
        Some(ComputeError::Daemon(DaemonError::ProcessFailed(ref t))) if t == "refused"
    ));
    let strip = |o: &BatchOutcome| -> (Vec<EventOutcome>, Vec<_>, bool) {
        let outputs = o
            .outputs
            .iter()
            .map(|e| (e.link, e.payload.clone()))
            .collect();
        (o.outcomes.clone(), outputs, o.error.is_some())
    };
    assert_eq!(strip(&lent_first), strip(&through_bridge[0]));
    assert_eq!(strip(&lent_second), strip(&through_bridge[1]));
    assert_eq!(lent_second.outcomes.len(), 2);
    let view = |rt: &ComputeRuntime| {
        rt.registry()
            .with_host(origin, |h| {
                let queued: Vec<_> = drain(rt).into_iter().map(|e| (e.link, e.payload)).collect();
                (
                    h.stats(),
                    *h.head(),
                    h.horizon().clone(),
                    h.applied().clone(),
                    queued,
                )
            })
            .unwrap()
    };
    let (lent_view, bridged_view) = (view(&lender), view(&bridged));
    assert_eq!(lent_view, bridged_view);
    assert_eq!((lent_view.0.events_processed, lent_view.0.errors), (10, 1));

    // A Rust daemon is not lent.
    let (rust, rust_origin) = runtime();
    assert!(
        rust.lend_batch(rust_origin, 7, 1, 3, &lender_bridge)
            .unwrap()
            .is_none()
    );

    // Dropped unanswered: nothing recorded, the object in doubt.
    let dropped = lender
        .lend_batch(origin, PRODUCER, 11, 2, &lender_bridge)
        .unwrap()
        .unwrap();
    drop(dropped);
    assert!(
        lender
            .lend_batch(origin, PRODUCER, 11, 2, &lender_bridge)
            .unwrap()
            .is_none()
    );
    let done = lender.deliver_batch(origin, batch(11, 2), &wait).unwrap();
    assert!(
        matches!(
            done.error,
            Some(ComputeError::Daemon(DaemonError::InDoubt(_)))
        ),
        "{done:?}"
    );
    assert_eq!(view(&lender).0.events_processed, 10);
}
