//! `cargo bench --bench compute`: compute daemons (issue 15), each row next
//! to a baseline measured in the same run, medians of several rounds.
//!
//! - Events/s through a Rust daemon on the runtime's real delivery path
//!   (`ComputeRuntime::deliver`: migration check, registry, host, horizon,
//!   watermark and stats, one CausalLink per output) against a bare call
//!   of the same work — the state update, the output and its causal link
//!   chained by hand. With the outputs returned only (`output_capacity` 0),
//!   moved into the queue only (`deliver_queued`, the C ABI's and so the
//!   SDKs' path) and both (`deliver` with the default queue); one event
//!   per call and batches of 64. Target ratio ≥ 0.5 (ratio =
//!   ours / baseline events per second). `--bench events` runs only these
//!   rows; `NET_BENCH_ROW=text` only those whose label contains `text`.
//! - Migration time of a daemon holding 1 MiB and 64 MiB of state between
//!   two nodes on loopback (encrypted UDP, the six phases, orchestrated by
//!   the source) against sending the same bytes over a reliable stream
//!   between the same nodes. Target ≤ 2× (ratio = ours / baseline time).
//!   Then the snapshot transport alone: 64 MiB of SnapshotReady-sized
//!   messages on a subprotocol stream to a handler that only counts them,
//!   against the same application stream (`--bench substream` runs only
//!   that, `--bench migration` only the migration rows).
//! - 100 migrations under load: a producer keeps delivering at one node
//!   while a third node bounces the daemon between two; events lost and
//!   applied twice (target 0) and the mean migration time.
//!
//! Under `cargo test` (no `--bench` argument) it runs a short smoke pass:
//! fewer events, 1 MiB only, 4 migrations; figures meaningless.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use net::compute::{
    BatchWait, CausalEvent, ComputeRuntime, DaemonError, DaemonHost, MeshDaemon, MigrationStatus,
    MigrationTransport, RuntimeConfig,
};
use net::cortex::causal::{CausalLink, Horizon};
use net::identity::EntityKeypair;
use net::mesh::{MeshError, MeshNode};

#[path = "../tests/compute_common/mod.rs"]
mod compute_common;
#[path = "../tests/mesh_common/mod.rs"]
mod mesh_common;

use compute_common::Blob;
const PRODUCER: u64 = 0xfeed_0000_0000_0001;
const WAIT: Duration = Duration::from_secs(60);

fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

// ------------------------------------------------------------ events/s

/// The daemon's work: per-producer last sequence, a running count and
/// sum, and one 16-byte output per event.
#[derive(Default)]
struct Tally {
    last: HashMap<u64, u64>,
    count: u64,
    sum: u64,
}

impl Tally {
    fn apply(&mut self, producer: u64, sequence: u64) -> Vec<Vec<u8>> {
        self.last.insert(producer, sequence);
        self.count += 1;
        self.sum = self.sum.wrapping_add(sequence);
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.sum.to_le_bytes());
        vec![out]
    }
}

impl MeshDaemon for Tally {
    fn name(&self) -> &str {
        "tally"
    }

    fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        Ok(self.apply(event.producer(), event.sequence()))
    }
}

/// A runtime that never migrates: its transport reaches no one.
struct Nowhere;

impl MigrationTransport for Nowhere {
    fn local_node(&self) -> u64 {
        1
    }

    fn send(&self, to: u64, _: &[u8]) -> Result<(), MeshError> {
        Err(MeshError::UnknownPeer(to))
    }
}

/// The same work written by hand, as a program without the runtime would:
/// the daemon's state update, then each output chained onto the previous
/// one with the horizon's bloom (`CausalLink::next`) — "process + causal
/// link".
struct ByHand {
    tally: Tally,
    head: CausalLink,
    head_payload: Vec<u8>,
    bloom: Horizon,
}

impl ByHand {
    fn new() -> Self {
        Self {
            tally: Tally::default(),
            head: CausalLink::genesis(0xB0B),
            head_payload: Vec::new(),
            bloom: Horizon::default(),
        }
    }

    fn deliver(&mut self, event: &CausalEvent) -> Vec<CausalEvent> {
        let producers = self.tally.last.len();
        let outputs = self.tally.apply(event.producer(), event.sequence());
        if self.tally.last.len() != producers {
            // A new producer joins the horizon the links carry.
            self.bloom.observe(event.producer());
        }
        outputs
            .into_iter()
            .map(|payload| {
                self.head = self.head.next(&self.head_payload, self.bloom.0);
                self.head_payload.clone_from(&payload);
                CausalEvent {
                    link: self.head,
                    payload,
                    received_at: 0,
                }
            })
            .collect()
    }
}

fn events_per_second() {
    let n = if full() { 300_000 } else { 3_000 };
    let runtime_with = |output_capacity: usize| {
        let mut config = RuntimeConfig::default();
        config.output_capacity = output_capacity;
        let runtime = ComputeRuntime::new(Arc::new(Nowhere), config).unwrap();
        let origin = runtime
            .spawn(DaemonHost::new(
                Box::new(Tally::default()),
                EntityKeypair::generate(),
            ))
            .unwrap();
        (runtime, origin)
    };
    let mut seq = 0u64;
    let mut bare = ByHand::new();
    // Events of `batch` through `deliver` (one per call) or, above 1,
    // `deliver_batch` (one lookup and lock per batch; each event still gets
    // its own horizon, watermark, causal link and output), and the same
    // number through the same work by hand; medians of 7 rounds.
    // `queued_only`: the outputs are moved into the queue
    // (`deliver_queued`, the C ABI's path) instead of returned (`deliver`,
    // which also copies them into the queue when the runtime keeps one).
    let mut rates = |runtime: &ComputeRuntime, origin: u64, batch: usize, queued_only: bool| {
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        let rounds = n / batch as u64;
        // Calls between drains: their outputs fit the queue (65 536).
        let chunk = (16_384 / batch as u64).max(1);
        for _ in 0..7 {
            let mut elapsed = Duration::ZERO;
            let mut done = 0;
            while done < rounds {
                let calls = chunk.min(rounds - done);
                done += calls;
                let start = Instant::now();
                for _ in 0..calls {
                    if batch == 1 {
                        seq += 1;
                        let event = CausalEvent::bare(PRODUCER, seq, Vec::new());
                        let outcome = if queued_only {
                            runtime.deliver_queued(origin, event)
                        } else {
                            runtime.deliver(origin, event)
                        };
                        black_box(outcome.unwrap());
                        continue;
                    }
                    let events: Vec<CausalEvent> = (0..batch)
                        .map(|_| {
                            seq += 1;
                            CausalEvent::bare(PRODUCER, seq, Vec::new())
                        })
                        .collect();
                    let wait = BatchWait::default();
                    let outcome = if queued_only {
                        runtime.deliver_batch_queued(origin, events, &wait)
                    } else {
                        runtime.deliver_batch(origin, events, &wait)
                    }
                    .unwrap();
                    assert!(outcome.error.is_none());
                    black_box(outcome);
                }
                elapsed += start.elapsed();
                // Drained outside the timing (the consumer's side, not
                // delivery), before the queue fills: a full queue drops its
                // oldest outputs, which a consumer keeping up never sees.
                while runtime.next_output(Duration::ZERO).is_some() {}
            }
            ours.push((rounds * batch as u64) as f64 / elapsed.as_secs_f64());
            let start = Instant::now();
            for _ in 0..n {
                seq += 1;
                let event = black_box(CausalEvent::bare(PRODUCER, seq, Vec::new()));
                black_box(bare.deliver(&event));
            }
            base.push(n as f64 / start.elapsed().as_secs_f64());
        }
        (median(ours), median(base))
    };
    const BATCH: usize = 64;
    let (queued, queued_origin) = runtime_with(RuntimeConfig::default().output_capacity);
    let (direct, direct_origin) = runtime_with(0);
    // (label, outputs queued, returned too, batch)
    for (label, queue, returned, batch) in [
        ("deliver, outputs returned only", false, true, 1),
        ("deliver_queued, outputs queued only", true, false, 1),
        ("deliver, outputs returned and queued", true, true, 1),
        ("deliver_batch of 64, returned only", false, true, BATCH),
        ("deliver_batch_queued of 64", true, false, BATCH),
    ] {
        // `NET_BENCH_ROW=text`: only the rows whose label contains it.
        if let Ok(only) = std::env::var("NET_BENCH_ROW")
            && !label.contains(only.as_str())
        {
            continue;
        }
        let (runtime, origin) = if queue {
            (&queued, queued_origin)
        } else {
            (&direct, direct_origin)
        };
        let (ours, base) = rates(runtime, origin, batch, !returned);
        println!(
            "daemon events/s, {label:<36} {ours:>10.0}/s   vs process + causal link by hand {base:>10.0}/s   ratio {:.2} (target >= 0.5)",
            ours / base
        );
    }
    queued.shutdown();
    direct.shutdown();
}

// ----------------------------------------------------------- migration

/// The default runtime configuration; `NET_BENCH_TRANSFER_RATE` (bytes/s,
/// 0 = unpaced) overrides the snapshot pacing to explore it.
fn config() -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    if let Some(rate) = std::env::var("NET_BENCH_TRANSFER_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.transfer_rate = rate;
    }
    config
}

struct Site {
    node: Arc<MeshNode>,
    runtime: ComputeRuntime,
}

fn sites(n: usize) -> Vec<Site> {
    sites_over(n, true)
}

/// The mesh as a transport that never uses subprotocol streams: migration
/// messages as they go to a v0.11 node (one datagram each).
struct DatagramsOnly(Arc<MeshNode>);

impl MigrationTransport for DatagramsOnly {
    fn local_node(&self) -> u64 {
        self.0.node_id()
    }

    fn send(&self, to: u64, message: &[u8]) -> Result<(), MeshError> {
        self.0
            .send_subprotocol(to, net::wire::ids::MIGRATION, message)
    }

    // A v0.11 node dialed by us: its static key is known (the identity
    // travels sealed, as it would).
    fn peer_static_key(&self, node: u64) -> Option<[u8; 32]> {
        self.0.peer_static_key(node)
    }

    fn open_identity_envelope(
        &self,
        envelope: &net::identity::IdentityEnvelope,
        chain_link: &[u8; 32],
        signer: &net::identity::EntityId,
    ) -> Result<EntityKeypair, net::identity::EnvelopeError> {
        self.0.open_identity_envelope(envelope, chain_link, signer)
    }
}

/// `n` connected nodes with a runtime each; their migration messages use
/// subprotocol streams between them when `streams`, else datagrams only.
fn sites_over(n: usize, streams: bool) -> Vec<Site> {
    let sites: Vec<Site> = (0..n)
        .map(|_| {
            // Default 4 MiB socket buffers; slow heartbeats, long sessions.
            let node = Arc::new(mesh_common::node(
                r#","heartbeat_interval_ms":200,"session_timeout_ms":10000"#,
            ));
            node.start().unwrap();
            let runtime = if streams {
                ComputeRuntime::on_mesh(Arc::clone(&node), config()).unwrap()
            } else {
                let transport = Arc::new(DatagramsOnly(Arc::clone(&node)));
                let runtime = ComputeRuntime::new(transport, config()).unwrap();
                node.register_subprotocol(net::wire::ids::MIGRATION, runtime.handler())
                    .unwrap();
                runtime
            };
            Site { node, runtime }
        })
        .collect();
    for i in 0..n {
        for j in i + 1..n {
            mesh_common::bound_link(&sites[i].node, &sites[j].node);
        }
    }
    sites
}

fn teardown(sites: Vec<Site>) {
    for s in sites {
        s.runtime.shutdown();
        s.node.shutdown();
    }
}

/// Migrates `origin` from `from` to `to`, orchestrated by `from`; the
/// factory at `to` builds an empty daemon of the same identity.
fn migrate(
    from: &Site,
    to: &Site,
    origin: u64,
    keypair: &EntityKeypair,
    make: fn() -> Box<dyn MeshDaemon>,
) -> Result<f64, String> {
    let _ = to
        .runtime
        .factories()
        .register(keypair.clone(), Arc::new(move || Ok(make())));
    let start = Instant::now();
    from.runtime
        .start_migration(origin, from.node.node_id(), to.node.node_id())
        .map_err(|e| e.to_string())?;
    match from.runtime.wait_migration(origin, WAIT) {
        Ok(MigrationStatus::Completed) => Ok(start.elapsed().as_secs_f64()),
        Ok(other) => Err(format!("{other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// `bytes` over a reliable stream from `a` to `b`, 7 000-byte events (the
/// migration's chunk size), until `b` has received them all.
fn stream_transfer(a: &MeshNode, b: &MeshNode, stream: u64, bytes: usize) -> f64 {
    a.open_stream(b.node_id(), stream, true, None).unwrap();
    let chunk = vec![0x5au8; 7_000];
    let peer = b.node_id();
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for at in (0..bytes).step_by(chunk.len()) {
                let len = (bytes - at).min(chunk.len());
                a.send_blocking(peer, stream, &[&chunk[..len]], Some(Instant::now() + WAIT))
                    .unwrap();
            }
        });
        let mut got = 0usize;
        let deadline = Instant::now() + WAIT;
        while got < bytes {
            assert!(Instant::now() < deadline, "stream transfer stalled");
            if let Ok(events) = b.recv(1024, Some(Duration::from_millis(100))) {
                got += events
                    .iter()
                    .filter(|e| e.stream_id == stream)
                    .map(|e| e.data.len())
                    .sum::<usize>();
            }
        }
    });
    start.elapsed().as_secs_f64()
}

/// Counts the bytes a subprotocol handler is handed.
struct CountBytes(AtomicU64);

impl net::mesh::SubprotocolHandler for CountBytes {
    fn on_message(&self, _: u64, message: &[u8]) {
        self.0.fetch_add(message.len() as u64, Ordering::Relaxed);
    }
}

/// 64 MiB as 7 029-byte messages (a SnapshotReady's size) on a
/// subprotocol stream to a handler that only counts them, against the same
/// bytes over an application stream: the snapshot transport alone.
fn subprotocol_stream_transfer(rounds: u64) {
    let sites = sites(2);
    let (a, b) = (&sites[0].node, &sites[1].node);
    let counter = Arc::new(CountBytes(AtomicU64::new(0)));
    b.register_subprotocol(0x0600, Arc::clone(&counter) as _)
        .unwrap();
    let size = 64usize << 20;
    let len: usize = std::env::var("SUBLEN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7_029);
    let per: usize = std::env::var("SUBBATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let message = vec![0x5au8; len];
    let n = size / 7_000;
    for round in 0..rounds {
        let before = counter.0.load(Ordering::Relaxed);
        let start = Instant::now();
        let batch: Vec<&[u8]> = vec![&message[..]; per];
        for _ in 0..n / per {
            a.send_subprotocol_stream(
                b.node_id(),
                0x0600,
                &batch,
                Some(Instant::now() + WAIT),
                None,
            )
            .unwrap();
        }
        let want = before + (n / per * per * message.len()) as u64;
        let deadline = Instant::now() + WAIT;
        while counter.0.load(Ordering::Relaxed) < want {
            assert!(Instant::now() < deadline, "subprotocol stream stalled");
            std::thread::yield_now();
        }
        let ours = start.elapsed().as_secs_f64();
        let base = stream_transfer(a, b, 100 + round, size);
        println!(
            "subprotocol stream, 64 MiB     {:>8.1} ms   vs application stream {:>8.1} ms   ratio {:.2}",
            ours * 1e3,
            base * 1e3,
            ours / base
        );
    }
    teardown(sites);
}

fn migration_time() {
    let sizes: &[(usize, usize)] = if full() {
        &[(1 << 20, 5), (64 << 20, 3)]
    } else {
        &[(1 << 20, 1)]
    };
    let sites = sites(2);
    let mut stream = 10;
    for &(size, rounds) in sizes {
        let keypair = EntityKeypair::generate();
        let origin = keypair.origin_hash();
        let state: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        sites[0]
            .runtime
            .spawn(DaemonHost::new(Box::new(Blob(state)), keypair.clone()))
            .unwrap();
        let (mut ours, mut base, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        let mut home = 0;
        for _ in 0..rounds {
            let (from, to) = (&sites[home], &sites[1 - home]);
            match migrate(from, to, origin, &keypair, || Box::new(Blob(Vec::new()))) {
                Ok(t) => {
                    ours.push(t);
                    home = 1 - home;
                }
                Err(e) => failed.push(e),
            }
            stream += 1;
            base.push(stream_transfer(&from.node, &to.node, stream, size));
        }
        let base = median(base);
        let label = format!("migration, {} MiB state", size >> 20);
        if ours.is_empty() {
            println!(
                "{label:<34} FAILED ({})   vs reliable stream, same bytes {:>8.1} ms",
                failed.join("; "),
                base * 1e3
            );
        } else {
            let ours = median(ours);
            println!(
                "{label:<34} {:>8.1} ms   vs reliable stream, same bytes {:>8.1} ms   ratio {:.2} (target <= 2){}",
                ours * 1e3,
                base * 1e3,
                ours / base,
                if failed.is_empty() {
                    String::new()
                } else {
                    format!("   {} failed: {}", failed.len(), failed.join("; "))
                }
            );
        }
        let _ = sites[home].runtime.registry().unregister(origin);
    }
    teardown(sites);
}

// ------------------------------------------------ migrations under load

/// Records which sequences it has applied; a repeat is counted, never
/// refused, so the tally says exactly what was lost and what doubled.
#[derive(Default)]
struct Ledger {
    seen: Vec<u64>,
    distinct: u64,
    repeated: u64,
}

impl MeshDaemon for Ledger {
    fn name(&self) -> &str {
        "ledger"
    }

    fn is_stateful(&self) -> bool {
        true
    }

    fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        let seq = event.sequence() as usize;
        let (word, bit) = (seq / 64, 1u64 << (seq % 64));
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & bit == 0 {
            self.seen[word] |= bit;
            self.distinct += 1;
        } else {
            self.repeated += 1;
        }
        Ok(Vec::new())
    }

    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        let mut out = Vec::with_capacity(16 + self.seen.len() * 8);
        out.extend_from_slice(&self.distinct.to_le_bytes());
        out.extend_from_slice(&self.repeated.to_le_bytes());
        for w in &self.seen {
            out.extend_from_slice(&w.to_le_bytes());
        }
        Ok(out)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
        if state.len() < 16 || !state.len().is_multiple_of(8) {
            return Err(DaemonError::RestoreFailed("bad ledger state".into()));
        }
        let words: Vec<u64> = state
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        self.distinct = words[0];
        self.repeated = words[1];
        self.seen = words[2..].to_vec();
        Ok(())
    }
}

fn tally_of(site: &Site, origin: u64) -> Option<(u64, u64)> {
    site.runtime
        .registry()
        .with_host(origin, |h| {
            let state = h.daemon().snapshot().ok()?;
            let word = |at: usize| -> Option<u64> {
                Some(u64::from_le_bytes(state.get(at..at + 8)?.try_into().ok()?))
            };
            Some((word(0)?, word(8)?))
        })
        .ok()
        .flatten()
}

/// Events delivered at a daemon's old node after it moved: forwarded to
/// the new node until the new node has applied them all, against the same
/// events delivered at the new node directly. Events/s; ratio = forwarded
/// rate / direct rate. Between Net nodes (`streams`): numbered
/// ForwardedEvents on the subprotocol stream, a window in flight, applied
/// in batches; else as towards v0.11: BufferedEvents, one batch in flight.
fn forwarding_rate(streams: bool) {
    let n: u64 = match (full(), streams) {
        (false, _) => 2_000,
        (true, true) => 200_000,
        (true, false) => 20_000,
    };
    let sites = sites_over(2, streams);
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    sites[0]
        .runtime
        .spawn(DaemonHost::new(Box::new(Tally::default()), keypair.clone()))
        .unwrap();
    migrate(&sites[0], &sites[1], origin, &keypair, || {
        Box::new(Tally::default())
    })
    .unwrap();
    let processed = |site: &Site| {
        site.runtime
            .registry()
            .with_host(origin, |h| h.stats().events_processed)
            .unwrap()
    };
    let mut seq = 0u64;
    let mut run = |at: &Site| {
        let before = processed(&sites[1]);
        let start = Instant::now();
        for _ in 0..n {
            seq += 1;
            let event = CausalEvent::bare(PRODUCER, seq, seq.to_le_bytes().to_vec());
            loop {
                match at.runtime.deliver_queued(origin, event.clone()) {
                    Ok(_) => break,
                    // Pushed back: the forwarder holds max_forwarded.
                    Err(net::compute::ComputeError::Buffer(_)) => std::thread::yield_now(),
                    Err(e) => panic!("event {seq}: {e}"),
                }
            }
        }
        sites[1]
            .runtime
            .wait_daemon(origin, Some(WAIT), None, |h| {
                (h.stats().events_processed >= before + n).then_some(())
            })
            .expect("forwarded events applied");
        let rate = n as f64 / start.elapsed().as_secs_f64();
        while sites[1].runtime.next_output(Duration::ZERO).is_some() {}
        rate
    };
    let (mut forwarded, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        forwarded.push(run(&sites[0]));
        direct.push(run(&sites[1]));
    }
    let (forwarded, direct) = (median(forwarded), median(direct));
    let how = if streams {
        "on a stream"
    } else {
        "BufferedEvents"
    };
    println!(
        "forwarded after cut-over ({how:<14}) {forwarded:>10.0}/s   vs delivered at the new node {direct:>10.0}/s   ratio {:.2}",
        forwarded / direct
    );
    teardown(sites);
}

fn migrations_under_load() {
    let migrations = if full() { 100 } else { 4 };
    let sites = Arc::new(sites(3));
    let keypair = EntityKeypair::generate();
    let origin = keypair.origin_hash();
    sites[0]
        .runtime
        .spawn(DaemonHost::new(
            Box::new(Ledger::default()),
            keypair.clone(),
        ))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let producer = {
        let (sites, stop, sent, errors) = (
            Arc::clone(&sites),
            Arc::clone(&stop),
            Arc::clone(&sent),
            Arc::clone(&errors),
        );
        std::thread::spawn(move || {
            let mut seq = 0;
            while !stop.load(Ordering::SeqCst) {
                seq += 1;
                let event = CausalEvent::bare(PRODUCER, seq, seq.to_le_bytes().to_vec());
                if let Err(e) = sites[0].runtime.deliver(origin, event) {
                    errors.lock().unwrap().push(format!("event {seq}: {e}"));
                }
                sent.store(seq, Ordering::SeqCst);
                // The producer's pace (about 5 000 events/s).
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let mut times = Vec::new();
    let mut failures = Vec::new();
    let mut home = 0;
    let orchestrator = &sites[2];
    for _ in 0..migrations {
        let to = 1 - home;
        let _ = sites[to].runtime.factories().register(
            keypair.clone(),
            Arc::new(|| Ok(Box::new(Ledger::default()))),
        );
        let start = Instant::now();
        let result = orchestrator
            .runtime
            .start_migration(origin, sites[home].node.node_id(), sites[to].node.node_id())
            .map_err(|e| e.to_string())
            .and_then(|()| {
                orchestrator
                    .runtime
                    .wait_migration(origin, WAIT)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(MigrationStatus::Completed) => {
                times.push(start.elapsed().as_secs_f64());
                home = to;
            }
            Ok(other) => failures.push(format!("{other:?}")),
            Err(e) => failures.push(e),
        }
    }
    stop.store(true, Ordering::SeqCst);
    producer.join().unwrap();
    let sent = sent.load(Ordering::SeqCst);
    // Forwarded events settle: wait (bounded) for the count to stop moving.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    loop {
        let now = tally_of(&sites[home], origin);
        if now.is_some_and(|(distinct, _)| distinct >= sent) || Instant::now() > deadline {
            last = now.or(last);
            break;
        }
        last = now.or(last);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (distinct, repeated) = last.unwrap_or((0, 0));
    let mean = if times.is_empty() {
        0.0
    } else {
        times.iter().sum::<f64>() / times.len() as f64
    };
    println!(
        "{} migrations under load          {sent} events sent: lost {} duplicated {repeated} (target 0), mean migration {:.1} ms, {} failed{}",
        migrations,
        sent.saturating_sub(distinct),
        mean * 1e3,
        failures.len(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(" ({})", failures.join("; "))
        }
    );
    let errors = errors.lock().unwrap();
    if !errors.is_empty() {
        println!("  delivery errors: {} (first: {})", errors.len(), errors[0]);
    }
    drop(errors);
    if let Ok(sites) = Arc::try_unwrap(sites) {
        teardown(sites);
    }
}

fn main() {
    println!("compute (issue 15): ours vs a same-run baseline, medians");
    // `--bench substream`: the snapshot transport alone (diagnosis).
    if std::env::args().any(|a| a == "substream") {
        subprotocol_stream_transfer(3);
        return;
    }
    // `--bench forward`: the forwarding row only.
    if std::env::args().any(|a| a == "forward") {
        forwarding_rate(true);
        forwarding_rate(false);
        return;
    }
    // `--bench migration`: the migration-time rows only (profiling).
    if std::env::args().any(|a| a == "migration") {
        migration_time();
        return;
    }
    events_per_second();
    // `--bench events`: the first row only (profiling).
    if std::env::args().any(|a| a == "events") {
        return;
    }
    migration_time();
    if full() {
        subprotocol_stream_transfer(3);
    }
    forwarding_rate(true);
    forwarding_rate(false);
    migrations_under_load();
}
