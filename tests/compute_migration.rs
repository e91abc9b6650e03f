//! Daemon migration on the mesh (COMPUTE.md §2, issue 15): three nodes over
//! encrypted UDP on 127.0.0.1, a stateful counter daemon, a producer that
//! keeps delivering while the daemon moves, and faults injected in each
//! phase. The counter refuses any event that is not its producer's next
//! sequence, so a lost, repeated or reordered event fails the run; the
//! final count must equal the number of events sent, the daemon must run
//! in exactly one place, and its causal chain must continue the source's.
//!
//! Faults are injected by a transport wrapper that drops the 0x0500
//! messages of one type a node sends (a lossy or dead peer for exactly
//! that step), by packet loss on every node, and by shutting a node down.

mod compute_common;
mod mesh_common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use compute_common::{Blob, Counter, Gate, count_of};
use mesh_common::{bound_link, channel_subscribers, node, started_node, wait_until};
use net::cancel::CancelToken;
use net::compute::migration::FailureReason;
use net::compute::migration::wire::{MigrationMessage, msg_type};
use net::compute::{
    CausalEvent, ComputeError, ComputeRuntime, DaemonError, DaemonHost, DeliveryOutcome,
    MeshDaemon, MigrationOptions, MigrationPhase, MigrationStatus, MigrationTransport,
    RuntimeConfig, decode_migration_payload,
};
use net::identity::{
    ChannelName, EntityId, EntityKeypair, EnvelopeError, IdentityEnvelope, PermissionToken,
};
use net::mesh::channels::ChannelConfig;
use net::mesh::{ChannelError, MeshError, MeshNode, NetemFilter};
use net::wire::ids;

const PRODUCER: u64 = 0xfeed_0000_0000_0001;
const WAIT: Duration = Duration::from_secs(20);

/// The mesh as a migration transport, with faults: message types this
/// node drops, and a switch that drops everything.
struct FaultyTransport {
    node: Arc<MeshNode>,
    dropped: Mutex<HashSet<u8>>,
    dead: AtomicBool,
    /// Snapshot chunks go over subprotocol streams (Net to Net), as with
    /// the node itself as transport; off: one datagram each, as to v0.11.
    streams: AtomicBool,
    /// SnapshotReady messages sent to another node as datagrams.
    datagram_chunks: AtomicU64,
    /// ForwardedEvents messages sent on streams.
    streamed_forwards: AtomicU64,
    /// What this node knows of other nodes' static keys (identity
    /// envelopes are sealed to them).
    keys: Mutex<Keys>,
    /// Nodes this one takes for v0.11 nodes (the others: as the mesh
    /// knows them).
    v011: Mutex<HashSet<u64>>,
    /// Every SnapshotReady this node sent to another node.
    snapshot_ready: Mutex<Vec<Vec<u8>>>,
}

/// The static keys a [`FaultyTransport`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// The mesh's (every Net peer's key is known).
    Known,
    /// None: as when a v0.11 node dialed this one.
    Unknown,
    /// This one for every node: a key the target cannot open with.
    Wrong([u8; 32]),
}

impl FaultyTransport {
    fn drops(&self, message: &[u8]) -> bool {
        let kind = message.first().copied().unwrap_or(u8::MAX);
        self.dead.load(Ordering::SeqCst) || self.dropped.lock().unwrap().contains(&kind)
    }
}

impl MigrationTransport for FaultyTransport {
    fn local_node(&self) -> u64 {
        self.node.node_id()
    }

    fn send(&self, to: u64, message: &[u8]) -> Result<(), MeshError> {
        if self.drops(message) {
            return Ok(());
        }
        if message.first() == Some(&msg_type::SNAPSHOT_READY) && to != self.node.node_id() {
            self.datagram_chunks.fetch_add(1, Ordering::SeqCst);
            self.snapshot_ready.lock().unwrap().push(message.to_vec());
        }
        self.node.send_subprotocol(to, ids::MIGRATION, message)
    }

    fn takes_streams(&self, to: u64) -> bool {
        self.streams.load(Ordering::SeqCst) && self.node.takes_subprotocol_streams(to)
    }

    fn send_stream(
        &self,
        to: u64,
        messages: &[&[u8]],
        deadline: std::time::Instant,
        cancel: &net::cancel::CancelToken,
    ) -> Result<(), MeshError> {
        if messages.first().is_some_and(|m| self.drops(m)) {
            return Ok(());
        }
        let forwards = messages
            .iter()
            .filter(|m| m.first() == Some(&msg_type::FORWARDED_EVENTS))
            .count();
        self.snapshot_ready.lock().unwrap().extend(
            messages
                .iter()
                .filter(|m| m.first() == Some(&msg_type::SNAPSHOT_READY))
                .map(|m| m.to_vec()),
        );
        self.streamed_forwards
            .fetch_add(forwards as u64, Ordering::SeqCst);
        self.node.send_subprotocol_stream(
            to,
            ids::MIGRATION,
            messages,
            Some(deadline),
            Some(cancel),
        )
    }

    fn peer_is_net(&self, node: u64) -> Option<bool> {
        if self.v011.lock().unwrap().contains(&node) {
            Some(false)
        } else {
            self.node.peer_is_net(node)
        }
    }

    fn peer_static_key(&self, node: u64) -> Option<[u8; 32]> {
        match *self.keys.lock().unwrap() {
            Keys::Known => self.node.peer_static_key(node),
            Keys::Unknown => None,
            Keys::Wrong(key) => Some(key),
        }
    }

    fn open_identity_envelope(
        &self,
        envelope: &IdentityEnvelope,
        chain_link: &[u8; 32],
        signer: &EntityId,
    ) -> Result<EntityKeypair, EnvelopeError> {
        self.node
            .open_identity_envelope(envelope, chain_link, signer)
    }

    fn subscribe_channel(
        &self,
        publisher: u64,
        channel: &ChannelName,
        token: Option<&PermissionToken>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        self.node.subscribe(publisher, channel, token, cancel)
    }

    fn unsubscribe_channel(
        &self,
        publisher: u64,
        channel: &ChannelName,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        self.node.unsubscribe(publisher, channel, cancel)
    }
}

struct Site {
    node: Arc<MeshNode>,
    transport: Arc<FaultyTransport>,
    runtime: ComputeRuntime,
}

impl Site {
    fn id(&self) -> u64 {
        self.node.node_id()
    }

    fn drop_type(&self, kind: u8) {
        self.transport.dropped.lock().unwrap().insert(kind);
    }

    fn stream_chunks(&self) {
        self.transport.streams.store(true, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.transport.dropped.lock().unwrap().clear();
    }

    fn has(&self, origin: u64) -> bool {
        self.runtime.registry().contains(origin)
    }

    fn count(&self, origin: u64) -> Option<u64> {
        self.runtime
            .registry()
            .with_host(origin, |h| count_of(h))
            .ok()
    }

    /// Crashes the node: its runtime and its sessions are gone.
    fn kill(&self) {
        self.transport.dead.store(true, Ordering::SeqCst);
        self.runtime.shutdown();
        self.node.shutdown();
    }
}

/// Short timers, and snapshot chunks paced at 64 MiB/s so every test also
/// runs the pacer (a 1 MiB state takes ~16 ms).
fn config() -> RuntimeConfig {
    let mut config = RuntimeConfig::with_timers(
        Duration::from_millis(50),
        Duration::from_millis(1_500),
        Duration::from_millis(3_000),
    );
    config.transfer_rate = 64 << 20;
    config
}

fn site() -> Site {
    site_with(config())
}

fn site_with(config: RuntimeConfig) -> Site {
    let node = Arc::new(node(r#","session_timeout_ms":5000"#));
    node.start().unwrap();
    let transport = Arc::new(FaultyTransport {
        node: Arc::clone(&node),
        dropped: Mutex::new(HashSet::new()),
        dead: AtomicBool::new(false),
        streams: AtomicBool::new(false),
        datagram_chunks: AtomicU64::new(0),
        streamed_forwards: AtomicU64::new(0),
        keys: Mutex::new(Keys::Known),
        v011: Mutex::new(HashSet::new()),
        snapshot_ready: Mutex::new(Vec::new()),
    });
    let runtime = ComputeRuntime::new(
        Arc::clone(&transport) as Arc<dyn MigrationTransport>,
        config,
    )
    .unwrap();
    node.register_subprotocol(ids::MIGRATION, runtime.handler())
        .unwrap();
    Site {
        node,
        transport,
        runtime,
    }
}

/// Three nodes, all connected.
fn three() -> [Site; 3] {
    connected([site(), site(), site()])
}

fn connected(sites: [Site; 3]) -> [Site; 3] {
    bound_link(&sites[0].node, &sites[1].node);
    bound_link(&sites[0].node, &sites[2].node);
    bound_link(&sites[1].node, &sites[2].node);
    sites
}

/// Spawns the counter on `home` and lets every other site build it when
/// it arrives (with the keypair, so an envelope is not needed; the
/// identity tests use placeholders).
fn spawn_counter(sites: &[Site], home: usize) -> u64 {
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    for (i, s) in sites.iter().enumerate() {
        if i == home {
            s.runtime
                .spawn(DaemonHost::new(
                    Box::new(Counter::default()),
                    keypair.clone(),
                ))
                .unwrap();
        } else {
            register_factory(s, &keypair);
        }
    }
    origin
}

fn register_factory(site: &Site, keypair: &EntityKeypair) {
    // A node the daemon left may still hold its factory: keep it.
    let _ = site.runtime.factories().register(
        keypair.clone(),
        Arc::new(|| Ok(Box::new(Counter::default()) as Box<dyn MeshDaemon>)),
    );
}

/// Delivers sequences 1.. to the daemon at the node named by `home`,
/// paced, until stopped; returns how many it sent.
struct Producer {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    /// Events the delivery path kept for the migration, and forwarded
    /// after it.
    buffered: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
    thread: Option<JoinHandle<u64>>,
}

impl Producer {
    fn start(runtime: &'static ComputeRuntime, origin: u64) -> Self {
        Self::start_as(runtime, origin, PRODUCER)
    }

    fn start_as(runtime: &'static ComputeRuntime, origin: u64, producer: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let buffered = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let (s, n) = (Arc::clone(&stop), Arc::clone(&sent));
        let (b, f) = (Arc::clone(&buffered), Arc::clone(&forwarded));
        let thread = std::thread::spawn(move || {
            let mut seq = 0u64;
            while !s.load(Ordering::SeqCst) {
                seq += 1;
                let event = CausalEvent::bare(producer, seq, seq.to_le_bytes().to_vec());
                match runtime.deliver(origin, event) {
                    Ok(DeliveryOutcome::Duplicate) => panic!("event {seq} called a duplicate"),
                    Ok(DeliveryOutcome::Buffered) => drop(b.fetch_add(1, Ordering::SeqCst)),
                    Ok(DeliveryOutcome::Forwarded) => drop(f.fetch_add(1, Ordering::SeqCst)),
                    Ok(_) => {}
                    Err(e) => panic!("event {seq}: {e}"),
                }
                n.store(seq, Ordering::SeqCst);
                // The producer's pace, not a synchronisation.
                std::thread::sleep(Duration::from_micros(300));
            }
            seq
        });
        Self {
            stop,
            sent,
            buffered,
            forwarded,
            thread: Some(thread),
        }
    }

    fn wait_sent(&self, at_least: u64) {
        wait_until(
            || self.sent.load(Ordering::SeqCst) >= at_least,
            "the producer to send",
        );
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Leaks the sites so a producer thread can borrow a runtime for the
/// test's lifetime.
fn leak(sites: [Site; 3]) -> &'static [Site; 3] {
    Box::leak(Box::new(sites))
}

fn wait_done(orchestrator: &Site, origin: u64) -> MigrationStatus {
    orchestrator.runtime.wait_migration(origin, WAIT).unwrap()
}

/// Moves `origin` from site `from` to site `to`, orchestrated by site 2.
fn move_by_third(sites: &[Site], origin: u64, from: usize, to: usize) -> MigrationStatus {
    sites[2]
        .runtime
        .start_migration(origin, sites[from].id(), sites[to].id())
        .unwrap();
    wait_done(&sites[2], origin)
}

/// Waits until the migration of `origin` that `orchestrator` runs is in
/// `phase`.
fn wait_phase(orchestrator: &Site, origin: u64, phase: MigrationPhase) {
    wait_until(
        || orchestrator.runtime.migration_status(origin) == Some(MigrationStatus::Running(phase)),
        &format!("the migration to reach {phase:?}"),
    );
}

fn wait_count(site: &Site, origin: u64, expected: u64) {
    wait_until(
        || site.count(origin) == Some(expected),
        "the daemon to apply every event",
    );
}

/// Exactly one site runs the daemon, with the model's count, and its
/// chain head is one output per event (the chain continued across moves).
fn assert_only(sites: &[Site], home: usize, origin: u64, expected: u64) {
    wait_count(&sites[home], origin, expected);
    for (i, s) in sites.iter().enumerate() {
        assert_eq!(s.has(origin), i == home, "daemon on site {i}");
    }
    let head = sites[home]
        .runtime
        .registry()
        .with_host(origin, |h| *h.head())
        .unwrap();
    assert_eq!(head.sequence, expected, "one chained output per event");
}

/// Two producers deliver at the source throughout; the second one's
/// sequences collide with the first's (v0.11 keyed replay by sequence
/// alone and lost one of each pair).
fn migrate_under_load(orch: usize, source: usize, target: usize) {
    migrate_under_load_over(orch, source, target, false);
}

/// [`migrate_under_load`]; between Net nodes (chunks and forwarded events
/// on subprotocol streams) when `streams`.
fn migrate_under_load_over(orch: usize, source: usize, target: usize, streams: bool) {
    const SECOND: u64 = PRODUCER + 1;
    let sites = leak(three());
    if streams {
        sites.iter().for_each(Site::stream_chunks);
    }
    let origin = spawn_counter(sites, source);
    let first = Producer::start(&sites[source].runtime, origin);
    let second = Producer::start_as(&sites[source].runtime, origin, SECOND);
    first.wait_sent(200);
    // Hold the move in Replay (the target's answer is lost and re-sent)
    // until events have arrived during it.
    sites[target].drop_type(msg_type::REPLAY_COMPLETE);
    sites[orch]
        .runtime
        .start_migration(origin, sites[source].id(), sites[target].id())
        .unwrap();
    wait_until(
        || first.buffered.load(Ordering::SeqCst) >= 50,
        "events delivered during the migration",
    );
    sites[target].heal();
    assert_eq!(wait_done(&sites[orch], origin), MigrationStatus::Completed);
    // Late events, delivered at the old home, are forwarded.
    let after = first.sent.load(Ordering::SeqCst);
    first.wait_sent(after + 200);
    let buffered = first.buffered.load(Ordering::SeqCst) + second.buffered.load(Ordering::SeqCst);
    let forwarded =
        first.forwarded.load(Ordering::SeqCst) + second.forwarded.load(Ordering::SeqCst);
    let sent = first.finish() + second.finish();
    assert!(buffered > 0, "no event arrived during the migration");
    assert!(forwarded > 0, "no event arrived after the cut-over");
    assert_only(sites, target, origin, sent);
    wait_until(
        || sites[source].runtime.unacknowledged_forwards(origin) == 0,
        "every forwarded event acknowledged",
    );
    let streamed = sites[source]
        .transport
        .streamed_forwards
        .load(Ordering::SeqCst);
    assert_eq!(
        streamed > 0,
        streams,
        "{streamed} ForwardedEvents on streams"
    );
    teardown(sites);
}

fn teardown(sites: &[Site]) {
    for s in sites {
        s.kill();
    }
}

#[test]
fn migrates_under_load_with_a_third_node_orchestrating() {
    migrate_under_load(2, 0, 1);
}

#[test]
fn migrates_under_load_orchestrated_by_the_source() {
    migrate_under_load(0, 0, 1);
}

#[test]
fn migrates_under_load_orchestrated_by_the_target() {
    migrate_under_load(1, 0, 1);
}

#[test]
fn migrates_under_load_between_net_nodes_forwarding_on_streams() {
    migrate_under_load_over(2, 0, 1, true);
}

#[test]
fn migrates_under_load_between_net_nodes_orchestrated_by_the_source() {
    migrate_under_load_over(0, 0, 1, true);
}

#[test]
fn migrates_there_and_back() {
    let sites = leak(three());
    let origin = spawn_counter(sites, 0);
    for i in 1..=10 {
        sites[0]
            .runtime
            .deliver(origin, CausalEvent::bare(PRODUCER, i, vec![]))
            .unwrap();
    }
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    assert_eq!(wait_done(&sites[2], origin), MigrationStatus::Completed);
    for i in 11..=20 {
        sites[1]
            .runtime
            .deliver(origin, CausalEvent::bare(PRODUCER, i, vec![]))
            .unwrap();
    }
    let keypair = sites[1].runtime.registry().daemon_keypair(origin).unwrap();
    register_factory(&sites[0], &keypair);
    sites[2]
        .runtime
        .start_migration(origin, sites[1].id(), sites[0].id())
        .unwrap();
    assert_eq!(wait_done(&sites[2], origin), MigrationStatus::Completed);
    assert_only(sites, 0, origin, 20);
    teardown(sites);
}

/// The daemon bounces between two nodes twenty times, orchestrated by a
/// third, while a producer keeps delivering at the first node: events for
/// a daemon that has left are forwarded, events forwarded to a node the
/// daemon is leaving again are captured and forwarded back, and a
/// forwarder still holding events when the daemon returns hands them to
/// the replay. The counter refuses any gap or repeat; its final count must
/// equal the events sent.
#[test]
fn twenty_migrations_under_load_lose_and_repeat_nothing() {
    twenty_migrations_under_load(false);
}

/// The same between Net nodes: every forwarding is numbered ForwardedEvents
/// on a stream, and the node the daemon left twice forwards on (a second
/// hop) what it receives for a daemon that is gone again.
#[test]
fn twenty_migrations_between_net_nodes_lose_and_repeat_nothing() {
    twenty_migrations_under_load(true);
}

fn twenty_migrations_under_load(streams: bool) {
    let sites = leak(three());
    if streams {
        sites.iter().for_each(Site::stream_chunks);
    }
    let origin = spawn_counter(sites, 0);
    let producer = Producer::start(&sites[0].runtime, origin);
    let mut home = 0;
    for i in 0..20 {
        let to = 1 - home;
        register_factory(
            &sites[to],
            &sites[home]
                .runtime
                .registry()
                .daemon_keypair(origin)
                .unwrap(),
        );
        producer.wait_sent(producer.sent.load(Ordering::SeqCst) + 20);
        assert_eq!(
            move_by_third(sites, origin, home, to),
            MigrationStatus::Completed,
            "migration {i}"
        );
        home = to;
    }
    producer.wait_sent(producer.sent.load(Ordering::SeqCst) + 20);
    let sent = producer.finish();
    assert_only(sites, home, origin, sent);
    wait_until(
        || sites[0].runtime.unacknowledged_forwards(origin) == 0,
        "every forwarded event acknowledged",
    );
    teardown(sites);
}

/// A move back to the node that forwards the producer's events is
/// aborted after the restore there (its RestoreComplete never arrives):
/// the forwarder, paused during the restore, resumes, and the daemon keeps
/// every event where it stayed.
#[test]
fn an_aborted_move_back_resumes_the_paused_forwarder() {
    let sites = leak(three());
    let origin = spawn_counter(sites, 0);
    let producer = Producer::start(&sites[0].runtime, origin);
    producer.wait_sent(50);
    assert_eq!(
        move_by_third(sites, origin, 0, 1),
        MigrationStatus::Completed
    );
    let keypair = sites[1].runtime.registry().daemon_keypair(origin).unwrap();
    register_factory(&sites[0], &keypair);
    sites[0].drop_type(msg_type::RESTORE_COMPLETE);
    let forwarded = producer.forwarded.load(Ordering::SeqCst);
    assert!(matches!(
        move_by_third(sites, origin, 1, 0),
        MigrationStatus::Failed(_)
    ));
    sites[0].heal();
    // Events delivered at node 0 during and after the abort reach node 1.
    producer.wait_sent(producer.sent.load(Ordering::SeqCst) + 50);
    assert!(producer.forwarded.load(Ordering::SeqCst) > forwarded + 50);
    let sent = producer.finish();
    assert_only(sites, 1, origin, sent);
    wait_until(
        || sites[0].runtime.unacknowledged_forwards(origin) == 0,
        "every forwarded event acknowledged",
    );
    teardown(sites);
}

/// Between Net nodes, after cut-over: an event the producer delivers twice
/// at the old node is forwarded twice and applied once (the counter refuses
/// a repeat), and forwarding goes on behind it — every event is
/// acknowledged by index, duplicates included (v0.11's BufferedEvents
/// count excludes them, so such a duplicate left the count short forever).
#[test]
fn a_duplicate_forwarded_after_cutover_is_applied_once_and_forwarding_goes_on() {
    let sites = leak(three());
    sites.iter().for_each(Site::stream_chunks);
    let origin = spawn_counter(sites, 0);
    let deliver = |seq: u64| {
        sites[0]
            .runtime
            .deliver(origin, CausalEvent::bare(PRODUCER, seq, vec![]))
            .unwrap()
    };
    for seq in 1..=10 {
        deliver(seq);
    }
    assert_eq!(
        move_by_third(sites, origin, 0, 1),
        MigrationStatus::Completed
    );
    for seq in 11..=20 {
        assert_eq!(deliver(seq), DeliveryOutcome::Forwarded);
    }
    assert_eq!(deliver(20), DeliveryOutcome::Forwarded);
    for seq in 21..=30 {
        assert_eq!(deliver(seq), DeliveryOutcome::Forwarded);
    }
    wait_count(&sites[1], origin, 30);
    wait_until(
        || sites[0].runtime.unacknowledged_forwards(origin) == 0,
        "every forwarded event acknowledged, the duplicate too",
    );
    let errors = sites[1]
        .runtime
        .registry()
        .with_host(origin, |h| h.stats().errors)
        .unwrap();
    assert_eq!(errors, 0, "the duplicate reached the daemon");
    assert_only(sites, 1, origin, 30);
    teardown(sites);
}

/// A forwarder whose new node stops acknowledging holds at most
/// `max_forwarded` events: the next delivery is refused with
/// `ComputeError::Buffer` (not queued without bound); once the new node
/// acknowledges again deliveries are taken, and every taken event is
/// applied once.
#[test]
fn a_forwarder_refuses_events_beyond_its_limit_until_the_new_node_catches_up() {
    let mut limited = config();
    limited.max_forwarded = 40;
    let sites = leak(connected([site_with(limited), site(), site()]));
    sites.iter().for_each(Site::stream_chunks);
    let origin = spawn_counter(sites, 0);
    let deliver = |seq: u64| {
        sites[0]
            .runtime
            .deliver(origin, CausalEvent::bare(PRODUCER, seq, vec![]))
    };
    for seq in 1..=5 {
        deliver(seq).unwrap();
    }
    assert_eq!(
        move_by_third(sites, origin, 0, 1),
        MigrationStatus::Completed
    );
    sites[0].drop_type(msg_type::FORWARDED_EVENTS);
    for seq in 6..=45 {
        assert_eq!(deliver(seq).unwrap(), DeliveryOutcome::Forwarded);
    }
    assert_eq!(sites[0].runtime.unacknowledged_forwards(origin), 40);
    match deliver(46) {
        Err(ComputeError::Buffer(text)) => assert!(text.contains("unacknowledged"), "{text}"),
        other => panic!("the 41st unacknowledged event: {other:?}"),
    }
    sites[0].heal();
    wait_until(
        || sites[0].runtime.unacknowledged_forwards(origin) == 0,
        "the held events sent again and acknowledged",
    );
    for seq in 46..=60 {
        assert_eq!(deliver(seq).unwrap(), DeliveryOutcome::Forwarded);
    }
    assert_only(sites, 1, origin, 60);
    teardown(sites);
}

/// Whether the last snapshot `site` sent as a source carried the Net
/// extension (its SnapshotReady chunks reassembled and decoded); forgets
/// them.
fn sent_extension(site: &Site) -> bool {
    let mut chunks = std::collections::BTreeMap::new();
    for message in site.transport.snapshot_ready.lock().unwrap().drain(..) {
        if let Ok(MigrationMessage::SnapshotReady {
            chunk_index, bytes, ..
        }) = MigrationMessage::decode(&message)
        {
            chunks.insert(chunk_index, bytes);
        }
    }
    let payload: Vec<u8> = chunks.into_values().flatten().collect();
    let (_, ext) = decode_migration_payload(&payload).expect("a snapshot payload");
    ext.is_some()
}

/// The `NSX1` extension goes only to a target known to be a Net node: a
/// v0.11 target rejects a `CDS1` record that does not end the payload.
/// A local source judges by its own session; a third-node orchestrator
/// tells a Net source what it knows of the target (the source may not talk
/// to it); a source told nothing (a v0.11 orchestrator) judges by its own.
#[test]
fn the_snapshot_extension_goes_only_to_net_targets() {
    let sites = three();
    let origin = spawn_counter(&sites, 0);
    let keypair = sites[0].runtime.registry().daemon_keypair(origin).unwrap();
    let mut sent = 0;
    let mut deliver = |site: &Site, n: u64| {
        for _ in 0..n {
            sent += 1;
            let event = CausalEvent::bare(PRODUCER, sent, sent.to_le_bytes().to_vec());
            site.runtime.deliver(origin, event).unwrap();
        }
        sent
    };
    let by = |o: usize, from: usize, to: usize| {
        register_factory(&sites[to], &keypair);
        sites[o]
            .runtime
            .start_migration(origin, sites[from].id(), sites[to].id())
            .unwrap();
        assert_eq!(wait_done(&sites[o], origin), MigrationStatus::Completed);
    };
    let v011 = |site: usize, peer: usize| {
        let mut v011 = sites[site].transport.v011.lock().unwrap();
        v011.clear();
        v011.insert(sites[peer].id());
    };

    // A local source, a Net target.
    deliver(&sites[0], 3);
    by(0, 0, 1);
    assert!(sent_extension(&sites[0]), "to a Net target");
    // A local source whose target is a v0.11 node: the record alone (which
    // a Net target takes as well).
    v011(1, 0);
    let n = deliver(&sites[1], 3);
    by(1, 1, 0);
    assert!(!sent_extension(&sites[1]), "to a v0.11 target");
    assert_only(&sites, 0, origin, n);
    // A third node orchestrates and takes the target for v0.11; the source
    // itself would take it for a Net node: the orchestrator's word counts.
    v011(2, 1);
    let n = deliver(&sites[0], 3);
    by(2, 0, 1);
    assert!(!sent_extension(&sites[0]), "the orchestrator said v0.11");
    assert_only(&sites, 1, origin, n);
    // The orchestrator takes the source for v0.11 and says nothing (v0.11's
    // TakeSnapshot): the source judges the target itself — a Net node.
    sites[1].transport.v011.lock().unwrap().clear();
    {
        let mut v011 = sites[2].transport.v011.lock().unwrap();
        v011.insert(sites[0].id());
        v011.insert(sites[1].id());
    }
    let n = deliver(&sites[1], 3);
    by(2, 1, 0);
    assert!(
        sent_extension(&sites[1]),
        "a source told nothing judges itself"
    );
    assert_only(&sites, 0, origin, n);
    // ... and leaves it out for a target it knows for a v0.11 node.
    v011(0, 1);
    let n = deliver(&sites[0], 3);
    by(2, 0, 1);
    assert!(
        !sent_extension(&sites[0]),
        "a source told nothing judges itself"
    );
    assert_only(&sites, 1, origin, n);
    teardown(&sites);
}

#[test]
fn stateless_daemons_migrate() {
    struct Echo;
    impl MeshDaemon for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
            Ok(vec![event.payload.clone()])
        }
    }
    let sites = three();
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    sites[0]
        .runtime
        .spawn(DaemonHost::new(Box::new(Echo), keypair.clone()))
        .unwrap();
    sites[1]
        .runtime
        .factories()
        .register(
            keypair,
            Arc::new(|| Ok(Box::new(Echo) as Box<dyn MeshDaemon>)),
        )
        .unwrap();
    sites[0]
        .runtime
        .deliver(origin, CausalEvent::bare(PRODUCER, 1, b"x".to_vec()))
        .unwrap();
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    assert_eq!(wait_done(&sites[2], origin), MigrationStatus::Completed);
    assert!(!sites[0].has(origin) && sites[1].has(origin));
    let outcome = sites[1]
        .runtime
        .deliver(origin, CausalEvent::bare(PRODUCER, 2, b"y".to_vec()))
        .unwrap();
    let DeliveryOutcome::Processed(outputs) = outcome else {
        panic!("not processed: {outcome:?}");
    };
    assert_eq!(
        outputs[0].link.sequence, 2,
        "the chain continues at the target"
    );
}

#[test]
fn migrates_under_packet_loss() {
    let sites = leak(three());
    for s in sites.iter() {
        s.node.set_filter(Some(Arc::new(NetemFilter::new(
            0.15,
            0.0,
            0.0,
            Duration::ZERO,
            7,
        ))));
    }
    let origin = spawn_counter(sites, 0);
    let producer = Producer::start(&sites[0].runtime, origin);
    producer.wait_sent(100);
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    assert_eq!(wait_done(&sites[2], origin), MigrationStatus::Completed);
    let after = producer.sent.load(Ordering::SeqCst);
    producer.wait_sent(after + 100);
    let sent = producer.finish();
    assert_only(sites, 1, origin, sent);
    teardown(sites);
}

#[test]
fn a_target_without_a_factory_fails_everywhere_and_a_retry_succeeds() {
    let sites = leak(three());
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    sites[0]
        .runtime
        .spawn(DaemonHost::new(
            Box::new(Counter::default()),
            keypair.clone(),
        ))
        .unwrap();
    let producer = Producer::start(&sites[0].runtime, origin);
    producer.wait_sent(50);
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    let status = wait_done(&sites[2], origin);
    assert!(
        matches!(status, MigrationStatus::Failed(ref r) if r.code() == 1),
        "{status:?}"
    );
    wait_until(
        || !sites[0].runtime.is_migrating(origin),
        "the source to abort",
    );
    register_factory(&sites[1], &keypair);
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    assert_eq!(wait_done(&sites[2], origin), MigrationStatus::Completed);
    let sent = producer.finish();
    assert_only(sites, 1, origin, sent);
    teardown(sites);
}

#[test]
fn a_second_migration_of_the_same_daemon_is_refused() {
    let sites = three();
    let origin = spawn_counter(&sites, 0);
    sites[1].drop_type(msg_type::RESTORE_COMPLETE);
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    let again = sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id());
    assert!(matches!(again, Err(net::compute::ComputeError::AlreadyMigrating(o)) if o == origin));
    sites[1].heal();
    assert_eq!(wait_done(&sites[2], origin), MigrationStatus::Completed);
}

/// While a daemon leaves its node (which therefore keeps migration state),
/// another daemon busy in `process` holds up only itself: the move
/// completes and a third daemon's event is processed meanwhile (deliveries
/// used to keep the node's state lock while the daemon worked).
#[test]
fn a_busy_daemon_holds_up_neither_a_migration_nor_other_daemons_on_its_node() {
    let sites = leak(three());
    let moving = spawn_counter(sites, 0);
    let other = spawn_counter(sites, 0);
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let gate = sites[0]
        .runtime
        .spawn(DaemonHost::new(
            Box::new(Gate::new(entered_tx, release_rx)),
            EntityKeypair::generate(),
        ))
        .unwrap();
    // The move stalls in Transfer (the source's chunks are lost) with the
    // source capturing: the first event it buffers says so.
    sites[0].drop_type(msg_type::SNAPSHOT_READY);
    sites[2]
        .runtime
        .start_migration(moving, sites[0].id(), sites[1].id())
        .unwrap();
    let mut sent = 0;
    wait_until(
        || {
            sent += 1;
            let event = CausalEvent::bare(7, sent, vec![1]);
            sites[0].runtime.deliver(moving, event).unwrap() == DeliveryOutcome::Buffered
        },
        "the source to capture",
    );
    let busy = std::thread::spawn(move || {
        sites[0]
            .runtime
            .deliver(gate, CausalEvent::bare(9, 1, vec![1]))
    });
    entered.recv_timeout(WAIT).unwrap();
    // A second event for the busy daemon waits for it — without the
    // node's state lock (it used to wait holding it).
    let queued = std::thread::spawn(move || {
        sites[0]
            .runtime
            .deliver(gate, CausalEvent::bare(9, 2, vec![2]))
    });

    // On another thread, so that a regression fails the wait below.
    let (done_tx, done) = std::sync::mpsc::channel();
    let others = std::thread::spawn(move || {
        let processed = sites[0]
            .runtime
            .deliver(other, CausalEvent::bare(7, 1, vec![1]));
        sites[0].heal();
        let moved = wait_done(&sites[2], moving);
        done_tx.send((processed, moved)).unwrap();
    });
    let outcome = done.recv_timeout(WAIT);
    release.send(()).unwrap();
    release.send(()).unwrap();
    let (processed, moved) = outcome.expect("held up by the busy daemon");
    assert!(matches!(processed.unwrap(), DeliveryOutcome::Processed(_)));
    assert_eq!(moved, MigrationStatus::Completed);
    others.join().unwrap();
    for delivery in [busy, queued] {
        assert!(matches!(
            delivery.join().unwrap().unwrap(),
            DeliveryOutcome::Processed(_)
        ));
    }
    assert_only(sites, 1, moving, sent);
    teardown(sites);
}

/// Drops the messages of `kind` sent by site `dropper` from the start; if
/// the loss is before Cutover the migration must fail and leave the daemon
/// at the source with every event applied; healing and retrying must
/// succeed. After Cutover the migration must ride the loss out once healed.
fn fault_in_phase(dropper: usize, kind: u8, before_cutover: bool) {
    fault_in_phase_over(dropper, kind, before_cutover, false);
}

/// [`fault_in_phase`], chunks over subprotocol streams when `streams`.
fn fault_in_phase_over(dropper: usize, kind: u8, before_cutover: bool, streams: bool) {
    let (orch, source, target) = (2, 0, 1);
    let sites = leak(three());
    if streams {
        sites.iter().for_each(Site::stream_chunks);
    }
    let origin = spawn_counter(sites, source);
    let producer = Producer::start(&sites[source].runtime, origin);
    producer.wait_sent(100);
    sites[dropper].drop_type(kind);
    sites[orch]
        .runtime
        .start_migration(origin, sites[source].id(), sites[target].id())
        .unwrap();
    if before_cutover {
        let status = wait_done(&sites[orch], origin);
        assert!(matches!(status, MigrationStatus::Failed(_)), "{status:?}");
        wait_until(
            || !sites[source].runtime.is_migrating(origin),
            "the source to abort",
        );
        let now = producer.sent.load(Ordering::SeqCst);
        producer.wait_sent(now + 50);
        // The daemon never left: every event so far is applied there.
        let sent_so_far = producer.sent.load(Ordering::SeqCst);
        wait_until(
            || {
                sites[source]
                    .count(origin)
                    .is_some_and(|c| c >= sent_so_far)
            },
            "the source to keep applying",
        );
        assert!(!sites[target].has(origin) && !sites[orch].has(origin));
        sites[dropper].heal();
        sites[orch]
            .runtime
            .start_migration(origin, sites[source].id(), sites[target].id())
            .unwrap();
    } else {
        wait_until(
            || {
                sites[orch].runtime.migration_status(origin)
                    == Some(MigrationStatus::Running(MigrationPhase::Cutover))
                    || sites[orch].runtime.migration_status(origin)
                        == Some(MigrationStatus::Running(MigrationPhase::Complete))
            },
            "the migration to pass cut-over",
        );
        sites[dropper].heal();
    }
    assert_eq!(wait_done(&sites[orch], origin), MigrationStatus::Completed);
    let after = producer.sent.load(Ordering::SeqCst);
    producer.wait_sent(after + 50);
    let sent = producer.finish();
    assert_only(sites, target, origin, sent);
    teardown(sites);
}

#[test]
fn fault_snapshot_phase_orchestrator_loses_take_snapshot() {
    fault_in_phase(2, msg_type::TAKE_SNAPSHOT, true);
}

#[test]
fn fault_transfer_phase_source_loses_its_chunks() {
    fault_in_phase(0, msg_type::SNAPSHOT_READY, true);
}

#[test]
fn fault_transfer_phase_source_loses_its_streamed_chunks() {
    fault_in_phase_over(0, msg_type::SNAPSHOT_READY, true, true);
}

#[test]
fn fault_transfer_phase_orchestrator_loses_the_streamed_chunks() {
    fault_in_phase_over(2, msg_type::SNAPSHOT_READY, true, true);
}

/// A 1 MiB state (150 chunks) from node 0 to node 1, orchestrated by node
/// 2, chunks over subprotocol streams (source → orchestrator →
/// target), 15 % of every node's packets lost: the target's state is the
/// source's, byte for byte, and no chunk went as a datagram.
#[test]
fn a_large_state_migrates_over_subprotocol_streams_under_loss() {
    let sites = leak(three());
    for s in sites.iter() {
        s.stream_chunks();
        s.node.set_filter(Some(Arc::new(NetemFilter::new(
            0.15,
            0.0,
            0.0,
            Duration::ZERO,
            11,
        ))));
    }
    let state: Vec<u8> = (0..1usize << 20).map(|i| (i * 7 % 253) as u8).collect();
    blob_migrates_intact(sites, &state);
    for s in sites.iter() {
        assert_eq!(s.transport.datagram_chunks.load(Ordering::SeqCst), 0);
    }
    teardown(sites);
}

/// A runtime shut down while its stream send of snapshot chunks waits for
/// credit that never comes (the target's packets all dropped) stops at
/// once, not at the send's deadline (the step timeout, a minute here).
#[test]
fn shutdown_does_not_wait_for_a_stalled_chunk_stream() {
    let mut long = config();
    long.step_timeout = Duration::from_secs(60);
    let sites = [site_with(long.clone()), site_with(long)];
    bound_link(&sites[0].node, &sites[1].node);
    sites.iter().for_each(Site::stream_chunks);
    let origin = spawn_blob(&sites, &[7; 8 << 20]);
    let silent = Arc::new(NetemFilter::new(0.0, 0.0, 0.0, Duration::ZERO, 3));
    silent.partition(true);
    sites[1].node.set_filter(Some(silent));
    sites[0]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    wait_phase(&sites[0], origin, MigrationPhase::Transfer);
    let start = std::time::Instant::now();
    sites[0].runtime.shutdown();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "shutdown waited {:?} for the stalled stream",
        start.elapsed()
    );
    for s in &sites {
        s.node.shutdown();
    }
}

#[test]
fn fault_restore_phase_target_loses_restore_complete() {
    fault_in_phase(1, msg_type::RESTORE_COMPLETE, true);
}

#[test]
fn fault_replay_phase_target_loses_replay_complete() {
    fault_in_phase(1, msg_type::REPLAY_COMPLETE, true);
}

#[test]
fn fault_cutover_phase_source_loses_its_forwarded_events() {
    fault_in_phase(0, msg_type::BUFFERED_EVENTS, false);
}

#[test]
fn fault_cutover_phase_source_loses_its_streamed_forwarded_events() {
    fault_in_phase_over(0, msg_type::FORWARDED_EVENTS, false, true);
}

#[test]
fn fault_cutover_phase_target_loses_its_forward_acks() {
    fault_in_phase_over(1, msg_type::FORWARD_ACK, false, true);
}

#[test]
fn fault_cutover_phase_source_loses_cleanup_complete() {
    fault_in_phase(0, msg_type::CLEANUP_COMPLETE, false);
}

#[test]
fn fault_complete_phase_orchestrator_loses_activate_target() {
    fault_in_phase(2, msg_type::ACTIVATE_TARGET, false);
}

#[test]
fn fault_cutover_phase_orchestrator_loses_cutover_notify() {
    fault_in_phase(2, msg_type::CUTOVER_NOTIFY, false);
}

#[test]
fn fault_complete_phase_target_loses_activate_ack() {
    fault_in_phase(1, msg_type::ACTIVATE_ACK, false);
}

#[test]
fn shutdown_wakes_a_waiter_and_refuses_new_work() {
    let sites = three();
    let origin = spawn_counter(&sites, 0);
    sites[1].drop_type(msg_type::RESTORE_COMPLETE);
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| sites[2].runtime.wait_migration(origin, WAIT));
        wait_until(|| sites[2].runtime.is_migrating(origin), "the migration");
        sites[2].runtime.shutdown();
        let woken = waiter.join().unwrap();
        assert!(
            matches!(
                woken,
                Err(net::compute::ComputeError::ShuttingDown) | Ok(MigrationStatus::Failed(_))
            ),
            "{woken:?}"
        );
    });
    assert!(matches!(
        sites[2]
            .runtime
            .start_migration(origin, sites[0].id(), sites[1].id()),
        Err(net::compute::ComputeError::ShuttingDown)
    ));
    // The source, left without its orchestrator, keeps the daemon.
    wait_until(
        || !sites[0].runtime.is_migrating(origin),
        "the source to abort",
    );
    assert!(sites[0].has(origin));
}

#[test]
fn killed_target_in_transfer_fails_and_a_retry_elsewhere_succeeds() {
    let sites = leak(three());
    let origin = spawn_counter(sites, 0);
    let producer = Producer::start(&sites[0].runtime, origin);
    producer.wait_sent(100);
    sites[1].kill();
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    let status = wait_done(&sites[2], origin);
    assert!(matches!(status, MigrationStatus::Failed(_)), "{status:?}");
    wait_until(
        || !sites[0].runtime.is_migrating(origin),
        "the source to abort",
    );
    // Retry towards the orchestrator's own node.
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[2].id())
        .unwrap();
    assert_eq!(wait_done(&sites[2], origin), MigrationStatus::Completed);
    let sent = producer.finish();
    wait_count(&sites[2], origin, sent);
    assert!(!sites[0].has(origin));
    teardown(sites);
}

#[test]
fn killed_orchestrator_in_replay_lets_the_source_abort_and_a_retry_succeeds() {
    let sites = leak(three());
    let origin = spawn_counter(sites, 0);
    let producer = Producer::start(&sites[0].runtime, origin);
    producer.wait_sent(100);
    // The target's replies stop at Replay; then the orchestrator dies.
    sites[1].drop_type(msg_type::REPLAY_COMPLETE);
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    wait_phase(&sites[2], origin, MigrationPhase::Replay);
    sites[2].kill();
    wait_until(
        || !sites[0].runtime.is_migrating(origin),
        "the source to abort by itself",
    );
    assert!(sites[0].has(origin) && !sites[1].has(origin));
    // The source orchestrates the retry itself; the target's held copy is
    // superseded by the new snapshot.
    sites[1].heal();
    assert_eq!(
        move_from(sites, origin, 0, 1, &MigrationOptions::default()),
        MigrationStatus::Completed
    );
    let sent = producer.finish();
    wait_count(&sites[1], origin, sent);
    assert!(!sites[0].has(origin));
    teardown(sites);
}

/// A handler that hands every message to the test.
struct Collect(Mutex<std::sync::mpsc::Sender<(u64, Vec<u8>)>>);

impl net::mesh::SubprotocolHandler for Collect {
    fn on_message(&self, from: u64, message: &[u8]) {
        let _ = self.0.lock().unwrap().send((from, message.to_vec()));
    }
}

#[test]
fn subprotocol_hooks_route_one_id_to_one_handler() {
    const ID: u16 = 0x0600;
    let a = node("");
    let b = node("");
    bound_link(&a, &b);
    let (tx, rx) = std::sync::mpsc::channel();
    let handler = Arc::new(Collect(Mutex::new(tx)));
    b.register_subprotocol(ID, handler.clone()).unwrap();
    // Core ids and taken ids are refused; the first handler stays.
    for core in [
        ids::EVENTS,
        ids::MEMBERSHIP,
        ids::STREAM_WINDOW,
        ids::NET_RELIABILITY,
    ] {
        assert!(matches!(
            b.register_subprotocol(core, handler.clone()),
            Err(MeshError::SubprotocolInUse(id)) if id == core
        ));
    }
    assert!(matches!(
        b.register_subprotocol(ID, handler.clone()),
        Err(MeshError::SubprotocolInUse(ID))
    ));
    a.send_subprotocol(b.node_id(), ID, b"over the wire")
        .unwrap();
    let got = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(got, (a.node_id(), b"over the wire".to_vec()));
    b.send_subprotocol(b.node_id(), ID, b"to ourselves")
        .unwrap();
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        (b.node_id(), b"to ourselves".to_vec())
    );
    // Without a session, or to ourselves without a handler: UnknownPeer.
    assert!(matches!(
        a.send_subprotocol(0x1234, ID, b"x"),
        Err(MeshError::UnknownPeer(0x1234))
    ));
    assert!(matches!(
        a.send_subprotocol(a.node_id(), ID, b"x"),
        Err(MeshError::UnknownPeer(_))
    ));
    assert!(b.unregister_subprotocol(ID));
    assert!(!b.unregister_subprotocol(ID));
    b.register_subprotocol(ID, handler).unwrap();
}

/// Many messages of one subprotocol on a subprotocol stream, 20 % of the
/// sender's packets lost, 10 % duplicated and 20 % reordered: the receiver's handler gets
/// each once, in order, and none reaches its application; a peer that
/// never offered streams (a v0.11 one) and the node's own ids are refused.
#[test]
fn subprotocol_streams_deliver_every_message_once_in_order_under_loss() {
    const ID: u16 = 0x0600;
    let a = node("");
    let b = node("");
    bound_link(&a, &b);
    let (tx, rx) = std::sync::mpsc::channel();
    b.register_subprotocol(ID, Arc::new(Collect(Mutex::new(tx))))
        .unwrap();
    assert!(a.takes_subprotocol_streams(b.node_id()));
    a.set_filter(Some(Arc::new(NetemFilter::new(
        0.2,
        0.1,
        0.2,
        Duration::from_millis(2),
        5,
    ))));
    let messages: Vec<Vec<u8>> = (0u32..3_000)
        .map(|i| {
            let mut m = i.to_le_bytes().to_vec();
            m.resize(100 + (i as usize * 37) % 6_000, i as u8);
            m
        })
        .collect();
    let deadline = Some(std::time::Instant::now() + WAIT);
    for part in messages.chunks(500) {
        a.send_subprotocol_stream(b.node_id(), ID, part, deadline, None)
            .unwrap();
    }
    for expected in &messages {
        let (from, got) = rx.recv_timeout(WAIT).expect("every message");
        assert_eq!(from, a.node_id());
        assert!(&got == expected, "in order, intact");
    }
    a.set_filter(None);
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing twice"
    );
    assert!(mesh_common::nothing_for(&b, 50), "none to the application");
    // Credit goes back as the application's does: per receive batch, and
    // a sender held back by credit is offered a wider window (without
    // that the stream ran at a third of an application stream's rate).
    let stat = |n: &MeshNode, key: &str| -> u64 {
        let stats: serde_json::Value = serde_json::from_str(&n.stats_json()).unwrap();
        stats[key].as_u64().unwrap()
    };
    let (grants, packets) = (stat(&b, "grants_sent"), stat(&b, "datagrams_received"));
    let big = vec![0x33u8; 6_000];
    let batch: Vec<&[u8]> = vec![&big; 64];
    for _ in 0..20 {
        a.send_subprotocol_stream(b.node_id(), ID, &batch, deadline, None)
            .unwrap();
    }
    for _ in 0..20 * 64 {
        rx.recv_timeout(WAIT).expect("every message");
    }
    let grants = stat(&b, "grants_sent") - grants;
    let packets = stat(&b, "datagrams_received") - packets;
    assert!(
        grants * 2 < packets,
        "{grants} grants for {packets} packets"
    );
    assert!(
        stat(&b, "windows_offered") > 0,
        "the held-back sender was offered a wider window"
    );
    // The node's own ids and the causal id are not subprotocol streams.
    for id in [ids::EVENTS, ids::STREAM_WINDOW, ids::CAUSAL] {
        assert!(matches!(
            a.send_subprotocol_stream(b.node_id(), id, &[b"x"], deadline, None),
            Err(MeshError::SubprotocolInUse(got)) if got == id
        ));
    }
    // A peer that speaks only v0.11 never offered them.
    let c = node("");
    let raw = mesh_common::RawPeer::connect(&c, 0xAAAA_0002, &mesh_common::PSK).unwrap();
    assert!(!c.takes_subprotocol_streams(0xAAAA_0002));
    assert!(matches!(
        c.send_subprotocol_stream(0xAAAA_0002, ID, &[b"x"], deadline, None),
        Err(MeshError::PeerLacks {
            peer: 0xAAAA_0002,
            ..
        })
    ));
    drop(raw);
    assert!(matches!(
        a.send_subprotocol_stream(0x1234, ID, &[b"x"], deadline, None),
        Err(MeshError::UnknownPeer(0x1234))
    ));
}

#[test]
fn racing_starts_of_one_migration_admit_exactly_one() {
    let sites = three();
    let origin = spawn_counter(&sites, 0);
    sites[1].drop_type(msg_type::RESTORE_COMPLETE);
    let barrier = std::sync::Barrier::new(8);
    let started: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    sites[2]
                        .runtime
                        .start_migration(origin, sites[0].id(), sites[1].id())
                        .is_ok()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(started.iter().filter(|&&ok| ok).count(), 1);
    sites[1].heal();
    assert_eq!(wait_done(&sites[2], origin), MigrationStatus::Completed);
    assert!(sites[1].has(origin) && !sites[0].has(origin));
}

#[test]
fn a_target_without_compute_says_so_and_the_daemon_stays() {
    let sites = three();
    let origin = spawn_counter(&sites, 0);
    assert!(sites[1].node.unregister_subprotocol(ids::MIGRATION));
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    let status = wait_done(&sites[2], origin);
    assert_eq!(
        status,
        MigrationStatus::Failed(net::compute::migration::FailureReason::ComputeNotSupported)
    );
    wait_until(
        || !sites[0].runtime.is_migrating(origin),
        "the source to abort",
    );
    assert!(sites[0].has(origin));
    sites[0]
        .runtime
        .deliver(origin, CausalEvent::bare(PRODUCER, 1, vec![]))
        .unwrap();
    assert_eq!(sites[0].count(origin), Some(1));
}

#[test]
fn a_multi_chunk_state_of_one_mebibyte_migrates_intact() {
    let sites = three();
    let state: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
    blob_migrates_intact(&sites, &state);
}

/// A [`Blob`] that announces one byte more than it writes.
struct Miscounted(Blob);

impl MeshDaemon for Miscounted {
    fn name(&self) -> &str {
        "miscounted"
    }

    fn is_stateful(&self) -> bool {
        true
    }

    fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        self.0.process(event)
    }

    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        self.0.snapshot()
    }

    fn snapshot_len(&self) -> Option<usize> {
        Some(self.0.0.len() + 1)
    }

    fn snapshot_into(&self, out: &mut dyn FnMut(&[u8])) -> Result<(), DaemonError> {
        self.0.snapshot_into(out)
    }
}

/// Blobs write their state straight into the chunk messages
/// (`snapshot_len` / `snapshot_into`, in two writes): an empty one and one
/// of a few chunks arrive intact; a daemon that writes another length than
/// it announced fails the move (StateFailed) and stays where it was.
#[test]
fn a_state_written_into_the_chunks_arrives_intact_and_a_miscount_fails() {
    let sites = three();
    blob_migrates_intact(&sites, &[]);
    let state: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    blob_migrates_intact(&sites, &state);
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    sites[0]
        .runtime
        .spawn(DaemonHost::new(
            Box::new(Miscounted(Blob(state.clone()))),
            keypair.clone(),
        ))
        .unwrap();
    register_factory(&sites[1], &keypair);
    let status = move_by_third(&sites, origin, 0, 1);
    assert!(
        matches!(
            status,
            MigrationStatus::Failed(FailureReason::StateFailed(_))
        ),
        "{status:?}"
    );
    wait_until(
        || !sites[0].runtime.is_migrating(origin),
        "the source to abort",
    );
    assert!(sites[0].has(origin) && !sites[1].has(origin));
    teardown(&sites);
}

/// Spawns a daemon that is `state` on node 0, which node 1 can build.
fn spawn_blob(sites: &[Site], state: &[u8]) -> u64 {
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    sites[0]
        .runtime
        .spawn(DaemonHost::new(
            Box::new(Blob(state.to_vec())),
            keypair.clone(),
        ))
        .unwrap();
    sites[1]
        .runtime
        .factories()
        .register(
            keypair,
            Arc::new(|| Ok(Box::new(Blob(Vec::new())) as Box<dyn MeshDaemon>)),
        )
        .unwrap();
    origin
}

/// A daemon that is `state` moves from node 0 to node 1, orchestrated by
/// node 2, and arrives byte for byte.
fn blob_migrates_intact(sites: &[Site], state: &[u8]) {
    let origin = spawn_blob(sites, state);
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    assert_eq!(wait_done(&sites[2], origin), MigrationStatus::Completed);
    let moved = sites[1]
        .runtime
        .registry()
        .with_host(origin, |h| h.daemon().snapshot().unwrap())
        .unwrap();
    assert!(moved == state, "the state arrived intact");
    assert!(!sites[0].has(origin));
}

#[test]
fn a_retry_after_an_unannounced_abort_restores_the_new_state_not_the_held_copy() {
    /// Counts without emitting: its chain head never moves, so every
    /// snapshot has the same seq_through.
    #[derive(Default)]
    struct Silent(Counter);
    impl MeshDaemon for Silent {
        fn name(&self) -> &str {
            "silent"
        }
        fn is_stateful(&self) -> bool {
            true
        }
        fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
            self.0.process(event).map(|_| Vec::new())
        }
        fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
            self.0.snapshot()
        }
        fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
            self.0.restore(state)
        }
    }
    let sites = three();
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    sites[0]
        .runtime
        .spawn(DaemonHost::new(
            Box::new(Silent::default()),
            keypair.clone(),
        ))
        .unwrap();
    sites[1]
        .runtime
        .factories()
        .register(
            keypair,
            Arc::new(|| Ok(Box::new(Silent::default()) as Box<dyn MeshDaemon>)),
        )
        .unwrap();
    let deliver = |seq: u64| {
        sites[0]
            .runtime
            .deliver(origin, CausalEvent::bare(PRODUCER, seq, vec![]))
            .unwrap()
    };
    deliver(1);
    // The first attempt stalls in Replay and times out; the target never
    // hears of the abort, so it keeps its restored copy (count 1).
    sites[1].drop_type(msg_type::REPLAY_COMPLETE);
    sites[2].drop_type(msg_type::MIGRATION_FAILED);
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    assert!(matches!(
        wait_done(&sites[2], origin),
        MigrationStatus::Failed(_)
    ));
    assert!(sites[1].runtime.is_migrating(origin), "the held copy stays");
    wait_until(
        || !sites[0].runtime.is_migrating(origin),
        "the source to abort",
    );
    for seq in 2..=5 {
        assert!(matches!(deliver(seq), DeliveryOutcome::Processed(_)));
    }
    sites[1].heal();
    sites[2].heal();
    sites[2]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id())
        .unwrap();
    assert_eq!(wait_done(&sites[2], origin), MigrationStatus::Completed);
    let count = sites[1]
        .runtime
        .registry()
        .with_host(origin, |h| {
            u64::from_le_bytes(h.daemon().snapshot().unwrap()[..8].try_into().unwrap())
        })
        .unwrap();
    assert_eq!(count, 5, "the retry carried the state after the abort");
}

#[test]
fn runtimes_installed_on_mesh_nodes_migrate_and_one_node_takes_one_runtime() {
    let a = Arc::new(node(""));
    let b = Arc::new(node(""));
    bound_link(&a, &b);
    let ra = ComputeRuntime::on_mesh(Arc::clone(&a), config()).unwrap();
    let rb = ComputeRuntime::on_mesh(Arc::clone(&b), config()).unwrap();
    assert!(matches!(
        ComputeRuntime::on_mesh(Arc::clone(&a), config()),
        Err(net::compute::ComputeError::Transport(_))
    ));
    let keypair = EntityKeypair::generate();
    let origin = ra
        .spawn(DaemonHost::new(
            Box::new(Counter::default()),
            keypair.clone(),
        ))
        .unwrap();
    rb.factories()
        .register(
            keypair,
            Arc::new(|| Ok(Box::new(Counter::default()) as Box<dyn MeshDaemon>)),
        )
        .unwrap();
    ra.deliver(origin, CausalEvent::bare(PRODUCER, 1, vec![]))
        .unwrap();
    ra.start_migration(origin, a.node_id(), b.node_id())
        .unwrap();
    assert_eq!(
        ra.wait_migration(origin, WAIT).unwrap(),
        MigrationStatus::Completed
    );
    rb.deliver(origin, CausalEvent::bare(PRODUCER, 2, vec![]))
        .unwrap();
    assert_eq!(rb.registry().with_host(origin, |h| count_of(h)).unwrap(), 2);
    // The runtime's outputs: one per event, chained on the node that
    // applied it.
    assert_eq!(ra.next_output(WAIT).unwrap().link.sequence, 1);
    assert_eq!(rb.next_output(WAIT).unwrap().link.sequence, 2);
    // Shut down, the node forgets the handler: a new runtime may attach.
    ra.shutdown();
    let again = ComputeRuntime::on_mesh(Arc::clone(&a), config()).unwrap();
    again.shutdown();
}

/// Spawns the counter on `home`; every other site expects it through a
/// factory that has no keypair (a placeholder): it can run there only
/// under an identity that travels with the migration (COMPUTE.md §2.6).
fn spawn_counter_expected_without_keys(sites: &[Site], home: usize) -> (u64, EntityKeypair) {
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    for (i, s) in sites.iter().enumerate() {
        if i == home {
            s.runtime
                .spawn(DaemonHost::new(
                    Box::new(Counter::default()),
                    keypair.clone(),
                ))
                .unwrap();
        } else {
            s.runtime
                .factories()
                .register_placeholder(
                    origin,
                    Arc::new(|| Ok(Box::new(Counter::default()) as Box<dyn MeshDaemon>)),
                )
                .unwrap();
        }
    }
    (origin, keypair)
}

/// Delivers `seqs` of [`PRODUCER`] at `site`.
fn deliver_seqs(site: &Site, origin: u64, seqs: std::ops::RangeInclusive<u64>) {
    for seq in seqs {
        let event = CausalEvent::bare(PRODUCER, seq, seq.to_le_bytes().to_vec());
        site.runtime.deliver(origin, event).unwrap();
    }
}

/// The keypair the daemon runs under at `site`: the same entity, able to
/// sign (its seed came along).
fn assert_runs_as(site: &Site, origin: u64, keypair: &EntityKeypair) {
    let here = site.runtime.registry().daemon_keypair(origin).unwrap();
    assert_eq!(here.entity_id(), keypair.entity_id());
    assert_eq!(*here.seed().unwrap(), *keypair.seed().unwrap());
}

/// Moves `origin` from site `from` to site `to`, orchestrated by `from`.
fn move_from(
    sites: &[Site],
    origin: u64,
    from: usize,
    to: usize,
    options: &MigrationOptions,
) -> MigrationStatus {
    sites[from]
        .runtime
        .start_migration_with(origin, sites[from].id(), sites[to].id(), options)
        .unwrap();
    wait_done(&sites[from], origin)
}

/// The move failed for want of the daemon's identity, and `source` gave
/// up its part.
fn assert_identity_refused(source: &Site, origin: u64, status: &MigrationStatus) {
    assert!(
        matches!(
            status,
            MigrationStatus::Failed(FailureReason::IdentityTransportFailed(_))
        ),
        "{status:?}"
    );
    wait_until(
        || !source.runtime.is_migrating(origin),
        "the source to abort",
    );
}

#[test]
fn each_side_of_a_session_knows_the_others_static_key() {
    let a = node("");
    let b = node("");
    bound_link(&a, &b);
    // a dialed b (the handshake proved b's key); b learned a's from a's
    // signed hello.
    assert_eq!(a.peer_static_key(b.node_id()), Some(b.public_key()));
    wait_until(
        || b.peer_static_key(a.node_id()) == Some(a.public_key()),
        "b to learn a's key from its hello",
    );
    assert_eq!(a.peer_static_key(0x1234), None);
}

#[test]
fn the_identity_travels_with_the_daemon_to_nodes_that_only_expect_it() {
    let sites = three();
    let (origin, keypair) = spawn_counter_expected_without_keys(&sites, 0);
    deliver_seqs(&sites[0], origin, 1..=10);
    // A remote source (a third node orchestrates) seals when it can.
    assert_eq!(
        move_by_third(&sites, origin, 0, 1),
        MigrationStatus::Completed
    );
    assert_runs_as(&sites[1], origin, &keypair);
    deliver_seqs(&sites[1], origin, 11..=20);
    // A source that orchestrates seals by default: the node that received
    // the identity passes it on.
    assert_eq!(
        move_from(&sites, origin, 1, 2, &MigrationOptions::default()),
        MigrationStatus::Completed
    );
    assert_runs_as(&sites[2], origin, &keypair);
    deliver_seqs(&sites[2], origin, 21..=30);
    assert_only(&sites, 2, origin, 30);
    teardown(&sites);
}

#[test]
fn without_identity_transport_a_placeholder_fails_and_a_retry_with_it_succeeds() {
    let sites = three();
    let (origin, keypair) = spawn_counter_expected_without_keys(&sites, 0);
    deliver_seqs(&sites[0], origin, 1..=5);
    let unsealed = MigrationOptions::default().with_transport_identity(false);
    let status = move_from(&sites, origin, 0, 1, &unsealed);
    assert_identity_refused(&sites[0], origin, &status);
    deliver_seqs(&sites[0], origin, 6..=8);
    assert_only(&sites, 0, origin, 8);
    assert_eq!(
        move_from(&sites, origin, 0, 1, &MigrationOptions::default()),
        MigrationStatus::Completed
    );
    assert_runs_as(&sites[1], origin, &keypair);
    deliver_seqs(&sites[1], origin, 9..=12);
    assert_only(&sites, 1, origin, 12);
    teardown(&sites);
}

#[test]
fn an_unsealed_migration_runs_under_the_targets_own_keypair() {
    let sites = three();
    let origin = spawn_counter(&sites, 0);
    deliver_seqs(&sites[0], origin, 1..=5);
    let unsealed = MigrationOptions::default().with_transport_identity(false);
    assert_eq!(
        move_from(&sites, origin, 0, 1, &unsealed),
        MigrationStatus::Completed
    );
    deliver_seqs(&sites[1], origin, 6..=7);
    assert_only(&sites, 1, origin, 7);
    teardown(&sites);
}

#[test]
fn strict_identity_transport_without_the_targets_key_refuses_to_start() {
    let sites = three();
    let (origin, _) = spawn_counter_expected_without_keys(&sites, 0);
    *sites[0].transport.keys.lock().unwrap() = Keys::Unknown;
    let refused = sites[0]
        .runtime
        .start_migration(origin, sites[0].id(), sites[1].id());
    assert!(
        matches!(refused, Err(ComputeError::IdentityTransport(_))),
        "{refused:?}"
    );
    assert_eq!(sites[0].runtime.migration_status(origin), None);
    assert!(!sites[0].runtime.is_migrating(origin));
    // A remote source that cannot seal sends the snapshot unsealed: the
    // placeholder refuses it, everything aborts, the daemon stays.
    let status = move_by_third(&sites, origin, 0, 1);
    assert_identity_refused(&sites[0], origin, &status);
    deliver_seqs(&sites[0], origin, 1..=3);
    assert_only(&sites, 0, origin, 3);
    teardown(&sites);
}

#[test]
fn an_envelope_sealed_to_another_key_is_refused_and_the_daemon_stays() {
    let sites = three();
    let (origin, keypair) = spawn_counter_expected_without_keys(&sites, 0);
    deliver_seqs(&sites[0], origin, 1..=4);
    // The source seals to site 2's key, not the target's.
    *sites[0].transport.keys.lock().unwrap() = Keys::Wrong(sites[2].node.public_key());
    let status = move_from(&sites, origin, 0, 1, &MigrationOptions::default());
    assert_identity_refused(&sites[0], origin, &status);
    deliver_seqs(&sites[0], origin, 5..=6);
    assert_only(&sites, 0, origin, 6);
    // With the right key the same move succeeds.
    *sites[0].transport.keys.lock().unwrap() = Keys::Known;
    assert_eq!(
        move_from(&sites, origin, 0, 1, &MigrationOptions::default()),
        MigrationStatus::Completed
    );
    assert_runs_as(&sites[1], origin, &keypair);
    teardown(&sites);
}

/// A daemon's channel subscription through an aborted arrival and a retry:
/// the target subscribes when it restores the daemon; the migration fails
/// (the target's ReplayComplete is lost) and the target lets go, the source
/// keeping the channel; healed, the retry moves the subscription with the
/// daemon and the source lets go.
#[test]
fn a_subscription_is_let_go_by_an_aborted_arrival_and_follows_on_retry() {
    let (orch, source, target) = (2, 0, 1);
    let sites = leak(three());
    let publisher = started_node("");
    bound_link(&sites[source].node, &publisher);
    bound_link(&sites[target].node, &publisher);
    let ticks = ChannelName::new("sensors/ticks").unwrap();
    publisher
        .register_channel(&ticks, ChannelConfig::default())
        .unwrap();
    let p = publisher.node_id();
    let origin = spawn_counter(sites, source);
    sites[source]
        .runtime
        .subscribe_channel(origin, p, &ticks, None, None)
        .unwrap();
    assert_eq!(channel_subscribers(&publisher, "sensors/ticks"), 1);

    sites[target].drop_type(msg_type::REPLAY_COMPLETE);
    sites[orch]
        .runtime
        .start_migration(origin, sites[source].id(), sites[target].id())
        .unwrap();
    wait_until(
        || sites[target].runtime.channel_holders(p, &ticks) == vec![origin],
        "the target to subscribe as it restores",
    );
    assert_eq!(channel_subscribers(&publisher, "sensors/ticks"), 2);
    let status = wait_done(&sites[orch], origin);
    assert!(matches!(status, MigrationStatus::Failed(_)), "{status:?}");
    wait_until(
        || sites[target].runtime.channel_holders(p, &ticks).is_empty(),
        "the aborted target to let go",
    );
    wait_until(
        || channel_subscribers(&publisher, "sensors/ticks") == 1,
        "the publisher to keep the source only",
    );
    assert_eq!(
        sites[source].runtime.channel_holders(p, &ticks),
        vec![origin]
    );

    sites[target].heal();
    sites[orch]
        .runtime
        .start_migration(origin, sites[source].id(), sites[target].id())
        .unwrap();
    assert_eq!(wait_done(&sites[orch], origin), MigrationStatus::Completed);
    assert_eq!(
        sites[target].runtime.channel_holders(p, &ticks),
        vec![origin]
    );
    assert_eq!(
        sites[target].runtime.channel_subscriptions(origin).unwrap(),
        vec![(p, ticks.clone())]
    );
    wait_until(
        || sites[source].runtime.channel_holders(p, &ticks).is_empty(),
        "the source to let go",
    );
    wait_until(
        || channel_subscribers(&publisher, "sensors/ticks") == 1,
        "the publisher to keep the target only",
    );
    publisher.shutdown();
    teardown(sites);
}
