//! Mesh II benchmarks (issue 13), each next to a baseline measured in the
//! same run, on loopback:
//!
//! * Channel fan-out: a publisher with 1, 10 and 100 subscriber nodes,
//!   64 B events, 8 per publish call, best-effort; events/s delivered in
//!   total (summed over the subscribers) against one direct stream of the
//!   same events, 8 per send call. Target ≥ 0.8 at 10 subscribers.
//! * Stream throughput through one relay (a `connect_via` session), 1200 B
//!   events one per call, against the same stream direct: fire-and-forget
//!   (no window) and reliable (`send_blocking`, default window). Target
//!   ≥ 0.5.
//! * Reroute: a reliable stream over a diamond whose relay is shut down;
//!   the time from its death to the first event that was sent after it
//!   (so took the new path), in ms and in heartbeat intervals. Target ≤ 3.
//! * Route convergence on a 7-node chain from cold start: from the first
//!   link to every node holding a route to every other at the right hop
//!   count (recorded).
//!
//! Events are counted at the receivers from their `events_received`
//! counters (what they queued for the application), and every receiver has
//! a reader thread taking them as an application would, baselines
//! included: 100 subscribers are 100 readers on the same 2 cores. `cargo bench --bench mesh2`; `MESH2_QUICK=1` (or `cargo test
//! --bench mesh2`) runs shorter rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use net::identity::ChannelName;
use net::mesh::channels::ChannelConfig;
use net::mesh::*;

const PSK: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const HEARTBEAT_MS: u64 = 100;
const FANOUT_EVENT: usize = 64;
const FANOUT_PER_CALL: usize = 8;
const RELAY_EVENT: usize = 1200;

/// `cargo bench` passes `--bench`; `cargo test` runs the binary without it.
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Full rounds under `cargo bench` unless MESH2_QUICK is set.
fn full() -> bool {
    benchmarking() && std::env::var_os("MESH2_QUICK").is_none()
}

/// Seconds per measured window: 3 (full), 0.5 (quick), 0.1 (the smoke
/// pass `cargo test` runs).
fn secs() -> f64 {
    match (full(), benchmarking()) {
        (true, _) => 3.0,
        (false, true) => 0.5,
        (false, false) => 0.1,
    }
}

/// Whether the part `name` (fanout, relay, reroute, chain) runs:
/// `MESH2_ONLY=relay,reroute` runs those two (for profiling one).
fn wanted(name: &str) -> bool {
    std::env::var("MESH2_ONLY").map_or(true, |only| only.split(',').any(|w| w == name))
}

fn rounds() -> usize {
    if full() { 3 } else { 1 }
}

/// A started node: 4 MiB socket buffers, a large inbound queue, heartbeats
/// every HEARTBEAT_MS (6 missed: failed), `window` as its stream window
/// (0: none).
fn node(window: Option<u64>) -> MeshNode {
    node_with(window, HEARTBEAT_MS, HEARTBEAT_MS * 6)
}

/// For the throughput runs: heartbeats every 500 ms and a 10 s session
/// timeout, so 101 saturated nodes on 2 cores never time each other out.
fn quiet_node(window: Option<u64>) -> MeshNode {
    node_with(window, 500, 10_000)
}

fn node_with(window: Option<u64>, heartbeat_ms: u64, timeout_ms: u64) -> MeshNode {
    let window = window
        .map(|w| format!(r#","window":{w}"#))
        .unwrap_or_default();
    let json = format!(
        r#"{{"psk_hex":"{PSK}","recv_buffer":4194304,"send_buffer":4194304,"shard_capacity":4000000,"heartbeat_interval_ms":{heartbeat_ms},"session_timeout_ms":{timeout_ms}{window}}}"#
    );
    let n = MeshNode::new(MeshConfig::from_json(&json).unwrap()).unwrap();
    n.start().unwrap();
    n
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn bound(n: &MeshNode, peer: u64) -> bool {
    n.peers()
        .iter()
        .any(|p| p.node_id == peer && p.identity == "net")
}

fn link(a: &MeshNode, b: &MeshNode) {
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    wait_until("link", || bound(a, b.node_id()) && bound(b, a.node_id()));
}

/// Events the nodes have queued for their application so far (a shard
/// that refuses a packet does not count it).
fn delivered(nodes: &[&MeshNode]) -> u64 {
    nodes.iter().map(|n| n.stat("events_received")).sum()
}

/// Runs `send` in a loop on its own thread for `secs()` after a short
/// warm-up, with one reader per receiver taking events as an application
/// would (credit returns as they are read); returns events/s the
/// receivers took in during the window.
fn rate_while(receivers: &[&MeshNode], mut send: impl FnMut() + Send) -> f64 {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for r in receivers {
            let stop = &stop;
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = r.recv(4096, Some(Duration::from_millis(20)));
                }
            });
        }
        let sender = scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                send();
            }
        });
        std::thread::sleep(Duration::from_secs_f64(secs() / 5.0));
        let (start, t) = (delivered(receivers), Instant::now());
        std::thread::sleep(Duration::from_secs_f64(secs()));
        let (end, elapsed) = (delivered(receivers), t.elapsed());
        stop.store(true, Ordering::Relaxed);
        sender.join().unwrap();
        (end - start) as f64 / elapsed.as_secs_f64()
    })
}

fn best_of(mut f: impl FnMut() -> f64) -> f64 {
    (0..rounds()).map(|_| f()).fold(0.0, f64::max)
}

/// One direct fire-and-forget stream, `size`-byte events, `per_call` per
/// send: events/s received.
fn direct_stream(size: usize, per_call: usize) -> f64 {
    let (a, b) = (Arc::new(quiet_node(Some(0))), quiet_node(Some(0)));
    link(&a, &b);
    let peer = b.node_id();
    a.open_stream(peer, 1, false, Some(0)).unwrap();
    let events = vec![vec![0u8; size]; per_call];
    let sender = a.clone();
    let rate = rate_while(&[&b], move || {
        let _ = sender.send(peer, 1, &events);
    });
    a.shutdown();
    b.shutdown();
    rate
}

/// A publisher with `k` subscriber nodes; best-effort publishes of
/// FANOUT_PER_CALL events: events/s delivered in total.
fn fanout(k: usize) -> f64 {
    let publisher = Arc::new(quiet_node(Some(0)));
    let channel = ChannelName::new("bench/fanout").unwrap();
    publisher
        .register_channel(&channel, ChannelConfig::default())
        .unwrap();
    let subscribers: Vec<MeshNode> = (0..k).map(|_| quiet_node(Some(0))).collect();
    for s in &subscribers {
        s.connect(
            publisher.local_addr(),
            &publisher.public_key(),
            publisher.node_id(),
        )
        .unwrap();
    }
    wait_until("sessions bound", || {
        subscribers
            .iter()
            .all(|s| bound(&publisher, s.node_id()) && bound(s, publisher.node_id()))
    });
    for s in &subscribers {
        s.subscribe(publisher.node_id(), &channel, None, None)
            .unwrap();
    }
    let events = vec![vec![0u8; FANOUT_EVENT]; FANOUT_PER_CALL];
    let p = publisher.clone();
    let receivers: Vec<&MeshNode> = subscribers.iter().collect();
    let rate = rate_while(&receivers, move || {
        let _ = p.publish(&channel, &events, false);
    });
    publisher.shutdown();
    for s in &subscribers {
        s.shutdown();
    }
    rate
}

/// 1200 B events one per call, a -> c through relay r (`connect_via`) or
/// direct. `window`: Some(0) = fire-and-forget, no window; None = reliable
/// `send_blocking` with the default window; Some(bytes) = reliable with
/// that window.
fn relay_stream(relayed: bool, window: Option<u64>) -> f64 {
    let reliable = window != Some(0);
    let (a, r, c) = (
        Arc::new(quiet_node(window)),
        quiet_node(window),
        quiet_node(window),
    );
    if relayed {
        link(&a, &r);
        link(&c, &r);
        a.connect_via(r.node_id(), &c.public_key(), c.node_id(), None)
            .unwrap();
    } else {
        link(&a, &c);
    }
    wait_until("session bound", || bound(&a, c.node_id()));
    let peer = c.node_id();
    a.open_stream(peer, 1, reliable, window).unwrap();
    let event = vec![0u8; RELAY_EVENT];
    let sender = a.clone();
    let rate = rate_while(&[&c], move || {
        let sent = if reliable {
            sender.send_blocking(
                peer,
                1,
                &[&event],
                Some(Instant::now() + Duration::from_millis(100)),
            )
        } else {
            sender.send(peer, 1, &[&event])
        };
        // A timeout only means no credit came back within 100 ms.
        let _ = sent;
    });
    for n in [&*a, &r, &c] {
        n.shutdown();
    }
    rate
}

/// A reliable stream a -> d over the diamond a-{b1,b2}-d, relayed by b1,
/// one numbered event per ms; b1 dies. Time from its death to the first
/// event d receives that a sent after it.
fn reroute() -> Duration {
    let (a, b1, b2, d) = (Arc::new(node(None)), node(None), node(None), node(None));
    link(&a, &b1);
    link(&a, &b2);
    link(&d, &b1);
    link(&d, &b2);
    let route_hops = |n: &MeshNode, dest: u64| -> Option<u64> {
        let json: serde_json::Value = serde_json::from_str(&n.routes_json()).ok()?;
        json["routes"]
            .as_array()?
            .iter()
            .find(|r| r["destination"].as_u64() == Some(dest))
            .and_then(|r| r["hops"].as_u64())
    };
    wait_until("a and d learn each other", || {
        route_hops(&a, d.node_id()) == Some(2) && route_hops(&d, a.node_id()) == Some(2)
    });
    a.connect_via(b1.node_id(), &d.public_key(), d.node_id(), None)
        .unwrap();
    wait_until("relayed session bound", || {
        bound(&a, d.node_id()) && bound(&d, a.node_id())
    });
    let peer = d.node_id();
    a.open_stream(peer, 3, true, None).unwrap();
    let sent = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (a, sent, stop) = (a.clone(), sent.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                a.send_blocking(
                    peer,
                    3,
                    &[i.to_le_bytes()],
                    Some(Instant::now() + Duration::from_secs(10)),
                )
                .unwrap();
                i += 1;
                sent.store(i, Ordering::Release);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // Warm: events flow over b1.
    let mut next = 0u32;
    let give_up = Instant::now() + Duration::from_secs(60);
    // Every event of a batch is checked before `take` returns: one `recv`
    // can hand over events past the one `until` waits for.
    let mut take = |until: &mut dyn FnMut(u32, Instant) -> bool| loop {
        assert!(Instant::now() < give_up, "the stream stalled at {next}");
        let mut done = false;
        for e in d
            .recv(256, Some(Duration::from_millis(50)))
            .unwrap_or_default()
        {
            let at = Instant::now();
            let n = u32::from_le_bytes(e.data[..4].try_into().unwrap());
            assert_eq!(n, next, "reliable stream out of order or duplicated");
            next += 1;
            done = done || until(n, at);
        }
        if done {
            return;
        }
    };
    take(&mut |n, _| n >= 200);
    let killed = Instant::now();
    let first_after = sent.load(Ordering::Acquire);
    b1.shutdown();
    drop(b1);
    let mut arrived = killed;
    take(&mut |n, at| {
        if n >= first_after {
            arrived = at;
            true
        } else {
            false
        }
    });
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    for n in [&*a, &b2, &d] {
        n.shutdown();
    }
    arrived.saturating_duration_since(killed)
}

/// A 7-node chain linked end to end from cold; the time from the first
/// link until every node has a route to every other at the right hops.
fn chain_convergence() -> Duration {
    let chain: Vec<MeshNode> = (0..7).map(|_| node(None)).collect();
    let t = Instant::now();
    for pair in chain.windows(2) {
        pair[0]
            .connect(
                pair[1].local_addr(),
                &pair[1].public_key(),
                pair[1].node_id(),
            )
            .unwrap();
    }
    let converged = || {
        chain.iter().enumerate().all(|(i, n)| {
            let json: serde_json::Value = serde_json::from_str(&n.routes_json()).unwrap();
            let routes = json["routes"].as_array().unwrap();
            chain
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .all(|(j, m)| {
                    routes.iter().any(|r| {
                        r["destination"].as_u64() == Some(m.node_id())
                            && r["hops"].as_u64() == Some(i.abs_diff(j) as u64)
                    })
                })
        })
    };
    wait_until("the chain converges", converged);
    let elapsed = t.elapsed();
    for n in &chain {
        n.shutdown();
    }
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mode = match (full(), benchmarking()) {
        (true, _) => "full",
        (false, true) => "quick",
        (false, false) => "smoke pass",
    };
    println!(
        "mesh2 ({mode}: best of {} rounds of {:.1} s; loopback, 2 vCPUs)",
        rounds(),
        secs()
    );
    if wanted("fanout") {
        let baseline = best_of(|| direct_stream(FANOUT_EVENT, FANOUT_PER_CALL));
        println!(
            "direct stream, {FANOUT_EVENT} B x {FANOUT_PER_CALL}/call (baseline)   {baseline:>10.0} events/s"
        );
        // MESH2_FANOUT=1,10 picks the subscriber counts (for profiling one).
        let ks: Vec<usize> = std::env::var("MESH2_FANOUT").map_or(vec![1, 10, 100], |v| {
            v.split(',').filter_map(|k| k.trim().parse().ok()).collect()
        });
        for k in ks {
            let rate = best_of(|| fanout(k));
            println!(
                "publish to {k:>3} subscribers, delivered total {rate:>10.0} events/s   ratio {:.2}{}",
                rate / baseline,
                if k == 10 { "  (target >= 0.80)" } else { "" }
            );
        }
    }
    let relay_runs = [
        ("fire-and-forget", Some(0)),
        ("reliable, 64 KiB", None),
        ("reliable, 1 MiB", Some(1 << 20)),
    ];
    for (label, window) in relay_runs.into_iter().filter(|_| wanted("relay")) {
        let direct = best_of(|| relay_stream(false, window));
        let relayed = best_of(|| relay_stream(true, window));
        println!(
            "1200 B {label:<16} direct {direct:>9.0} ev/s, through one relay {relayed:>9.0} ev/s   ratio {:.2}  (target >= 0.50)",
            relayed / direct
        );
    }
    if wanted("reroute") {
        reroute_report();
    }
    if wanted("chain") {
        let chains: Vec<Duration> = (0..rounds()).map(|_| chain_convergence()).collect();
        let med = median(chains);
        println!(
            "7-node chain, cold start to all routes median {:>5.0} ms = {:.1} heartbeat intervals (recorded)",
            med.as_secs_f64() * 1e3,
            med.as_secs_f64() * 1e3 / HEARTBEAT_MS as f64
        );
    }
}

fn reroute_report() {
    let reroutes: Vec<Duration> = (0..rounds()).map(|_| reroute()).collect();
    let worst = *reroutes.iter().max().unwrap();
    let med = median(reroutes.clone());
    println!(
        "reroute after the relay's death       median {:>5.0} ms = {:.1} heartbeat intervals (H {HEARTBEAT_MS} ms), worst {:.0} ms = {:.1}  (target <= 3)",
        med.as_secs_f64() * 1e3,
        med.as_secs_f64() * 1e3 / HEARTBEAT_MS as f64,
        worst.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3 / HEARTBEAT_MS as f64,
    );
}
