//! Daemons' channel subscriptions (COMPUTE.md §1.8, issue 15): a daemon
//! subscribes through its runtime, the subscription is in its ledger and
//! follows it when it migrates — the target subscribes before it answers
//! RestoreComplete, so the publisher already sends to the target when the
//! migration completes — and the node unsubscribes only once no daemon
//! there holds the channel (v0.11 unsubscribed the node whenever one
//! daemon left, §8 item 17). Three nodes over encrypted UDP on 127.0.0.1:
//! a publisher and two nodes with runtimes.

mod compute_common;
mod mesh_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use compute_common::Counter;
use mesh_common::{
    bound_link, channel_subscribers as subscribers, recv_n, started_node, wait_until,
};
use net::compute::{
    ComputeError, ComputeRuntime, DaemonError, DaemonHost, MeshDaemon, MigrationStatus,
    RuntimeConfig, SubscriptionError, SubscriptionLedger,
};
use net::identity::{ChannelName, EntityKeypair};
use net::mesh::channels::ChannelConfig;
use net::mesh::{ChannelError, MeshNode};
use net::wire::AckReason;

const WAIT: Duration = Duration::from_secs(20);

struct Site {
    node: Arc<MeshNode>,
    runtime: ComputeRuntime,
}

fn site() -> Site {
    let node = Arc::new(started_node(""));
    let runtime = ComputeRuntime::on_mesh(Arc::clone(&node), RuntimeConfig::default()).unwrap();
    Site { node, runtime }
}

fn spawn(site: &Site) -> (u64, EntityKeypair) {
    let keypair = EntityKeypair::generate();
    let origin = site
        .runtime
        .spawn(DaemonHost::new(
            Box::new(Counter::default()),
            keypair.clone(),
        ))
        .unwrap();
    (origin, keypair)
}

fn migrate(from: &Site, to: &Site, origin: u64, keypair: &EntityKeypair) {
    let _ = to.runtime.factories().register(
        keypair.clone(),
        Arc::new(|| Ok(Box::new(Counter::default()) as Box<dyn MeshDaemon>)),
    );
    from.runtime
        .start_migration(origin, from.node.node_id(), to.node.node_id())
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match from.runtime.wait_migration(origin, left) {
            Ok(MigrationStatus::Completed) => return,
            Ok(MigrationStatus::Failed(reason)) => panic!("the migration failed: {reason:?}"),
            Ok(_) => assert!(Instant::now() < deadline, "the migration did not end"),
            Err(e) => panic!("waiting for the migration: {e}"),
        }
    }
}

#[test]
fn a_subscription_follows_its_daemon_and_the_node_unsubscribes_with_the_last_holder() {
    let publisher = started_node("");
    let (a, b) = (site(), site());
    bound_link(&a.node, &publisher);
    bound_link(&b.node, &publisher);
    bound_link(&a.node, &b.node);
    let ticks = ChannelName::new("sensors/ticks").unwrap();
    publisher
        .register_channel(&ticks, ChannelConfig::default())
        .unwrap();
    let p = publisher.node_id();

    // Two daemons on `a` hold the channel; the node subscribed once.
    let (mover, keypair) = spawn(&a);
    let (stayer, _) = spawn(&a);
    a.runtime
        .subscribe_channel(mover, p, &ticks, None, None)
        .unwrap();
    assert_eq!(subscribers(&publisher, "sensors/ticks"), 1);
    a.runtime
        .subscribe_channel(stayer, p, &ticks, None, None)
        .unwrap();
    assert_eq!(a.runtime.channel_holders(p, &ticks), {
        let mut both = vec![mover, stayer];
        both.sort_unstable();
        both
    });
    assert_eq!(
        a.runtime.channel_subscriptions(mover).unwrap(),
        vec![(p, ticks.clone())]
    );

    // Refusals leave nothing behind.
    assert!(matches!(
        a.runtime.subscribe_channel(0x77, p, &ticks, None, None),
        Err(SubscriptionError::Compute(ComputeError::Daemon(
            DaemonError::NotFound(0x77)
        )))
    ));
    let unknown = ChannelName::new("sensors/none").unwrap();
    assert!(matches!(
        a.runtime.subscribe_channel(mover, p, &unknown, None, None),
        Err(SubscriptionError::Channel(ChannelError::Rejected(
            AckReason::UnknownChannel
        )))
    ));
    assert_eq!(a.runtime.channel_subscriptions(mover).unwrap().len(), 1);
    assert!(a.runtime.channel_holders(p, &unknown).is_empty());

    // The mover migrates to `b`: `b` subscribed before the migration
    // completed; `a` keeps the channel for the daemon that stayed.
    migrate(&a, &b, mover, &keypair);
    assert_eq!(subscribers(&publisher, "sensors/ticks"), 2);
    assert_eq!(b.runtime.channel_holders(p, &ticks), vec![mover]);
    assert_eq!(
        b.runtime.channel_subscriptions(mover).unwrap(),
        vec![(p, ticks.clone())]
    );
    wait_until(
        || a.runtime.channel_holders(p, &ticks) == vec![stayer],
        "the source lets go of the mover's hold",
    );
    assert_eq!(subscribers(&publisher, "sensors/ticks"), 2);
    publisher
        .publish(&ticks, &[b"tick".as_slice()], true)
        .unwrap();
    for n in [&a.node, &b.node] {
        let got = recv_n(n, 1);
        assert_eq!(got[0].data, b"tick");
    }

    // Stopping the last holder on `a` unsubscribes `a`.
    a.runtime.stop(stayer).unwrap();
    wait_until(
        || subscribers(&publisher, "sensors/ticks") == 1,
        "the node without holders unsubscribes",
    );
    assert!(a.runtime.channel_holders(p, &ticks).is_empty());

    // Unsubscribing through the runtime ends `b`'s.
    b.runtime
        .unsubscribe_channel(mover, p, &ticks, None)
        .unwrap();
    assert_eq!(subscribers(&publisher, "sensors/ticks"), 0);
    assert!(b.runtime.channel_subscriptions(mover).unwrap().is_empty());
    // Again: nothing held, nothing sent.
    b.runtime
        .unsubscribe_channel(mover, p, &ticks, None)
        .unwrap();
    assert!(matches!(
        b.runtime.unsubscribe_channel(0x77, p, &ticks, None),
        Err(SubscriptionError::Compute(ComputeError::Daemon(
            DaemonError::NotFound(0x77)
        )))
    ));

    for s in [a, b] {
        s.runtime.shutdown();
        s.node.shutdown();
    }
    publisher.shutdown();
}

/// A ledger's follower hears the whole ledger at once and after every
/// change through the runtime, in order, until it is let go or the daemon
/// stops; `set_ledger` replaces a ledger without subscribing anything.
#[test]
fn a_followed_ledger_is_told_after_every_change() {
    let publisher = started_node("");
    let a = site();
    bound_link(&a.node, &publisher);
    let (one, two) = (
        ChannelName::new("sensors/one").unwrap(),
        ChannelName::new("sensors/two").unwrap(),
    );
    for channel in [&one, &two] {
        publisher
            .register_channel(channel, ChannelConfig::default())
            .unwrap();
    }
    let p = publisher.node_id();
    let (daemon, _) = spawn(&a);
    a.runtime
        .subscribe_channel(daemon, p, &one, None, None)
        .unwrap();
    let told: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let sink = Arc::clone(&told);
    a.runtime
        .follow_ledger(
            daemon,
            Arc::new(move |ledger: &SubscriptionLedger| {
                let names = ledger
                    .iter()
                    .map(|(_, c, _)| c.as_str().to_owned())
                    .collect();
                sink.lock().unwrap().push(names);
            }),
        )
        .unwrap();
    a.runtime
        .subscribe_channel(daemon, p, &two, None, None)
        .unwrap();
    a.runtime
        .unsubscribe_channel(daemon, p, &one, None)
        .unwrap();
    // Unsubscribing what it does not hold changes nothing: not told.
    a.runtime
        .unsubscribe_channel(daemon, p, &one, None)
        .unwrap();
    let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(
        *told.lock().unwrap(),
        vec![
            names(&["sensors/one"]),
            names(&["sensors/one", "sensors/two"]),
            names(&["sensors/two"]),
        ]
    );

    // A replaced ledger is told, and nothing is subscribed for it.
    a.runtime
        .set_ledger(daemon, &SubscriptionLedger::new())
        .unwrap();
    assert_eq!(told.lock().unwrap().last().unwrap(), &names(&[]));
    assert_eq!(a.runtime.channel_holders(p, &two), vec![daemon]);

    a.runtime.unfollow_ledger(daemon);
    a.runtime
        .subscribe_channel(daemon, p, &one, None, None)
        .unwrap();
    assert_eq!(told.lock().unwrap().len(), 4, "not told once let go");
    assert!(matches!(
        a.runtime
            .follow_ledger(0x77, Arc::new(|_: &SubscriptionLedger| {})),
        Err(ComputeError::Daemon(DaemonError::NotFound(0x77)))
    ));
}
