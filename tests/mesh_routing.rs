//! Multi-hop routing (MESH2.md §0, §2) through the pure `Router`: the
//! pingwave and routed-packet vectors, the §8 routing scenarios and the
//! "better than v0.11" items of issue 13, on the `sim` network driven by a
//! fake clock (no sockets, no sleeps).

use std::fs;
use std::time::{Duration, Instant};

use net::mesh::routing::sim::SimMesh;
use net::mesh::routing::*;
use net::wire::{Pingwave, RoutingHeader};
use proptest::prelude::*;
use serde_json::Value;

const H: Duration = Duration::from_secs(5);

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("not hex: {v}"))).unwrap()
}

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn field<'a>(obj: &'a Value, prefix: &str) -> &'a Value {
    obj.as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with(prefix))
        .unwrap_or_else(|| panic!("no field {prefix}"))
        .1
}

fn config() -> RoutingConfig {
    RoutingConfig::with_heartbeat_interval(H)
}

/// A router `own` with direct peers `peers` (all speaking `protocol`).
fn router(own: NodeId, peers: &[NodeId], protocol: PeerProtocol, now: Instant) -> Router {
    let mut r = Router::new(own, config());
    for p in peers {
        r.table_mut().add_direct_peer(*p, protocol, now);
    }
    r
}

/// A pingwave of `origin` with the given seq, ttl and hop count.
fn pingwave(origin: NodeId, seq: u64, ttl: u8, hop_count: u8) -> [u8; 72] {
    Pingwave {
        ttl,
        hop_count,
        ..Pingwave::new(origin, seq, 1_700_000_000_000_000)
    }
    .encode()
}

/// A routed datagram (header ‖ 64 dummy bytes) for `dest` with `ttl`.
fn routed(dest: NodeId, ttl: u8) -> Vec<u8> {
    let mut d = RoutingHeader {
        ttl,
        hop_count: 0,
        flags: 0,
        src_id: 7,
        dest_id: dest,
    }
    .encode()
    .to_vec();
    d.extend_from_slice(&[0x45; 64]);
    d
}

fn relayed(outcome: &PingwaveOutcome) -> Vec<OutboundPingwave> {
    match outcome {
        PingwaveOutcome::Accepted { relay } => relay.clone(),
        other => panic!("not accepted: {other:?}"),
    }
}

// --- vectors ---

#[test]
fn pingwave_vector_is_what_we_originate_and_relay_to_v011_peers() {
    let v = load("pingwave.json");
    let origin = hex_u64(field(&v, "origin_node_id"));
    let ts = v["origin_timestamp_us"].as_u64().unwrap();
    let now = Instant::now();

    // Origination: seq 1 to a v0.11 peer is the vector byte for byte.
    let mut a = router(origin, &[2], PeerProtocol::Legacy, now);
    let out = a.originate_pingwaves(ts);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, 2);
    assert_eq!(out[0].bytes.to_vec(), bytes(&v["bytes_72"]));
    assert_eq!(a.last_pingwave_seq(), v["seq"].as_u64().unwrap());
    // The next tick advances the sequence, the same for every peer.
    a.table_mut().add_direct_peer(3, PeerProtocol::Legacy, now);
    let out = a.originate_pingwaves(ts);
    assert!(
        out.iter()
            .all(|o| Pingwave::decode(&o.bytes).unwrap().seq == 2)
    );

    // Relay: received from the origin, the copy to another v0.11 peer is
    // the after-forward vector.
    let mut b = router(9, &[origin, 3], PeerProtocol::Legacy, now);
    let outcome = b.on_pingwave(Some(origin), &bytes(&v["bytes_72"]), now);
    let copies = relayed(&outcome);
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].to, 3);
    assert_eq!(
        copies[0].bytes.to_vec(),
        bytes(&v["after_forward_bytes_72"])
    );
    let route = b.route_for(origin, now).unwrap();
    assert_eq!((route.next_hop, route.hops), (origin, 1));
}

#[test]
fn routed_packet_vector_is_forwarded_with_the_vector_header() {
    let v = load("packets.json");
    let rh = &v["routing_header"];
    let datagram = bytes(field(rh, "routed_packet"));
    let dest = hex_u64(&rh["dest_id"]);
    assert_eq!(datagram[..18], bytes(&rh["bytes_18"])[..]);
    let now = Instant::now();
    let (upstream, next) = (0x1111, 0x2222);

    let mut relay = router(0x3333, &[upstream, next], PeerProtocol::Legacy, now);
    relay.table_mut().learn(dest, next, 2, 1, now).unwrap();
    let decision = relay.forward(Some(upstream), &datagram, now);
    let Forward::Relay { next_hop, header } = decision else {
        panic!("{decision:?}");
    };
    assert_eq!(next_hop, next);
    assert_eq!(header.to_vec(), bytes(&rh["after_one_forward_bytes_18"]));
    let mut out = datagram.clone();
    assert!(decision.rewrite(&mut out));
    assert_eq!(out[..18], bytes(&rh["after_one_forward_bytes_18"])[..]);
    // The inner packet is forwarded untouched.
    assert_eq!(out[18..], datagram[18..]);
    assert_eq!(relay.forward_counters().forwarded, 1);

    // At the destination: delivered, whatever the TTL, from anyone.
    let mut destination = router(dest, &[], PeerProtocol::Legacy, now);
    let delivered = destination.forward(None, &out, now);
    assert_eq!(
        delivered,
        Forward::Deliver(RoutingHeader::decode(&out).unwrap())
    );
}

// --- §8 scenarios ---

#[test]
fn a_reaches_c_through_b_on_a_line() {
    let mut sim = SimMesh::chain(3, config(), PeerProtocol::Legacy);
    let took = sim.run_until_true(H * 3, SimMesh::fully_converged).unwrap();
    assert!(took <= H, "converged in {took:?}");
    let ac = sim.route(0, 2).unwrap();
    assert_eq!(ac.next_hop, SimMesh::node_id(1));
    assert_eq!(ac.hops, 2);
    assert_eq!(ac.kind, RouteKind::Learned);
    assert_eq!(sim.trace(0, 2).unwrap(), vec![0, 1, 2]);
    assert_eq!(sim.trace(2, 0).unwrap(), vec![2, 1, 0]);
    // B forwarded one, delivered none; C delivered one.
    assert_eq!(sim.router(1).forward_counters().forwarded, 2);
    assert_eq!(sim.router(1).forward_counters().delivered, 0);
    assert_eq!(sim.router(2).forward_counters().delivered, 1);
}

/// 0 — 1 — 3 and 0 — 2 — 3.
fn diamond() -> SimMesh {
    let mut sim = SimMesh::new(4, config(), PeerProtocol::Net, Duration::from_millis(1));
    for (a, b) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
        sim.link(a, b);
    }
    sim.run_until_true(H * 3, SimMesh::fully_converged).unwrap();
    sim.advance(H);
    sim
}

#[test]
fn diamond_switches_to_the_other_side_at_once_when_the_middle_node_fails() {
    let mut sim = diamond();
    let before = sim.route(0, 3).unwrap();
    assert_eq!(before.next_hop, SimMesh::node_id(1));
    assert_eq!(sim.trace(0, 3).unwrap(), vec![0, 1, 3]);
    let snapshot = sim.router(0).snapshot(sim.now());
    let to3 = snapshot
        .routes
        .iter()
        .find(|r| r.destination == SimMesh::node_id(3))
        .unwrap();
    assert_eq!(to3.alternates, 1, "the other side is ready");

    // The failure detector's verdict on 1 reroutes at once.
    sim.kill(1);
    let now = sim.now();
    let reroutes = sim
        .router_mut(0)
        .table_mut()
        .peer_failed(SimMesh::node_id(1), now);
    let to3 = reroutes
        .iter()
        .find(|r| r.destination == SimMesh::node_id(3))
        .unwrap();
    assert_eq!(to3.old_next_hop, SimMesh::node_id(1));
    let new = to3.new_route.unwrap();
    assert_eq!((new.next_hop, new.hops), (SimMesh::node_id(2), 2));
    assert_eq!(sim.trace(0, 3).unwrap(), vec![0, 2, 3]);
    // Node 3 has no failure verdict yet but never routes back through the
    // dead node once its news stops (three intervals at most).
    let took = sim
        .run_until_true(H * 4, |s| {
            s.route(3, 0).unwrap().next_hop == SimMesh::node_id(2)
        })
        .unwrap();
    assert!(took <= H * 3, "{took:?}");
}

#[test]
fn diamond_withdraws_the_dead_path_within_three_intervals_without_a_failure_verdict() {
    let mut sim = diamond();
    sim.kill(1);
    let took = sim
        .run_until_true(H * 10, |s| {
            s.route(0, 3).unwrap().next_hop == SimMesh::node_id(2)
        })
        .unwrap();
    assert!(took <= H * 3, "rerouted after {took:?}");
    assert!(
        sim.route(0, 1).is_none(),
        "the dead neighbour itself is gone"
    );
    assert_eq!(sim.trace(0, 3).unwrap(), vec![0, 2, 3]);
    eprintln!(
        "diamond reroute without a failure verdict: {:.2} H",
        took.as_secs_f64() / H.as_secs_f64()
    );
}

#[test]
fn seven_node_chain_far_ends_learn_each_other_between_net_nodes() {
    let mut sim = SimMesh::chain(7, config(), PeerProtocol::Net);
    let took = sim.run_until_true(H * 5, SimMesh::fully_converged).unwrap();
    let far = sim.route(0, 6).unwrap();
    assert_eq!((far.next_hop, far.hops), (SimMesh::node_id(1), 6));
    assert_eq!(sim.route(6, 0).unwrap().hops, 6);
    assert_eq!(sim.trace(0, 6).unwrap(), (0..7).collect::<Vec<_>>());
    assert_eq!(sim.trace(6, 0).unwrap(), (0..7).rev().collect::<Vec<_>>());
    assert!(took <= H * 2, "{took:?}");
    eprintln!(
        "7-node chain cold-start convergence: {:.2} H ({took:?})",
        took.as_secs_f64() / H.as_secs_f64()
    );
}

#[test]
fn seven_node_chain_of_v011_speakers_learns_four_hops_as_v011_does() {
    let mut sim = SimMesh::chain(7, config(), PeerProtocol::Legacy);
    sim.advance(H * 3);
    for far in 1..=4 {
        assert_eq!(sim.route(0, far).unwrap().hops as usize, far);
    }
    assert!(sim.route(0, 5).is_none());
    assert!(sim.route(0, 6).is_none());
}

#[test]
fn routes_reach_nine_links_and_no_further() {
    let mut sim = SimMesh::chain(11, config(), PeerProtocol::Net);
    sim.advance(H * 3);
    assert_eq!(sim.route(0, 9).unwrap().hops, MAX_ROUTE_HOPS);
    assert!(sim.route(0, 10).is_none());
    // A data packet with TTL 8 gets there through eight relays.
    assert_eq!(sim.trace(0, 9).unwrap().len(), 10);
}

#[test]
fn pingwaves_from_unregistered_sources_and_garbage_are_ignored() {
    let now = Instant::now();
    let mut r = router(1, &[2], PeerProtocol::Legacy, now);
    let good = pingwave(50, 1, 3, 0);
    assert_eq!(
        r.on_pingwave(None, &good, now),
        PingwaveOutcome::Dropped(PingwaveDrop::NotFromPeer)
    );
    assert_eq!(
        r.on_pingwave(Some(99), &good, now),
        PingwaveOutcome::Dropped(PingwaveDrop::NotFromPeer)
    );
    let mut bad_health = good;
    bad_health[63] = 4;
    let mut magic = good;
    magic[..2].copy_from_slice(&[0x45, 0x4E]);
    for garbage in [
        &good[..71],
        &[good.as_slice(), &[0]].concat()[..],
        &vec![0xFF; 9000][..],
        &[][..],
        &bad_health[..],
        &magic[..],
    ] {
        assert_eq!(
            r.on_pingwave(Some(2), garbage, now),
            PingwaveOutcome::Dropped(PingwaveDrop::Malformed),
            "{} bytes",
            garbage.len()
        );
    }
    assert_eq!(
        r.on_pingwave(Some(2), &pingwave(1, 1, 3, 0), now),
        PingwaveOutcome::Dropped(PingwaveDrop::OwnOrigin)
    );
    assert_eq!(
        r.on_pingwave(Some(2), &pingwave(50, 1, 3, 16), now),
        PingwaveOutcome::Dropped(PingwaveDrop::TooManyHops)
    );
    assert_eq!(
        r.on_pingwave(Some(2), &pingwave(50, 1, 3, 9), now),
        PingwaveOutcome::Dropped(PingwaveDrop::TooFar)
    );
    assert!(r.route_for(50, now).is_none());
    assert_eq!(r.table().learned_len(), 0);
    let c = r.pingwave_counters();
    assert_eq!(
        (
            c.dropped_not_from_peer,
            c.dropped_malformed,
            c.dropped_own_origin
        ),
        (2, 6, 1)
    );
    assert_eq!((c.dropped_too_many_hops, c.dropped_too_far), (1, 1));
}

#[test]
fn forged_routing_headers_from_non_peers_are_not_relayed() {
    let now = Instant::now();
    let mut r = router(1, &[2, 3], PeerProtocol::Legacy, now);
    let to3 = routed(3, 8);
    assert_eq!(
        r.forward(None, &to3, now),
        Forward::Drop(DropReason::NotFromPeer)
    );
    assert_eq!(
        r.forward(Some(77), &to3, now),
        Forward::Drop(DropReason::NotFromPeer)
    );
    assert!(matches!(
        r.forward(Some(2), &to3, now),
        Forward::Relay { next_hop: 3, .. }
    ));
    // Short, wrong magic, garbage.
    assert_eq!(
        r.forward(Some(2), &to3[..81], now),
        Forward::Drop(DropReason::Malformed)
    );
    let mut wrong_magic = to3.clone();
    wrong_magic[0] = 0x45;
    assert_eq!(
        r.forward(Some(2), &wrong_magic, now),
        Forward::Drop(DropReason::Malformed)
    );
    assert_eq!(
        r.forward(Some(2), &routed(42, 8), now),
        Forward::Drop(DropReason::NoRoute)
    );
    let c = r.forward_counters();
    assert_eq!(
        (
            c.dropped_not_from_peer,
            c.forwarded,
            c.dropped_malformed,
            c.dropped_no_route
        ),
        (2, 1, 2, 1)
    );
}

#[test]
fn ttl_zero_is_dropped_unless_it_is_for_us() {
    let now = Instant::now();
    let mut r = router(1, &[2, 3], PeerProtocol::Legacy, now);
    assert_eq!(
        r.forward(Some(2), &routed(3, 0), now),
        Forward::Drop(DropReason::TtlExpired)
    );
    assert!(matches!(
        r.forward(Some(2), &routed(1, 0), now),
        Forward::Deliver(_)
    ));
    // TTL 1 is still relayed, leaving 0 (v0.11 does the same).
    let Forward::Relay { header, .. } = r.forward(Some(2), &routed(3, 1), now) else {
        panic!()
    };
    assert_eq!((header[2], header[3]), (0, 1));
    assert_eq!(r.forward_counters().dropped_ttl_expired, 1);
}

#[test]
fn a_relay_loop_is_cut_short() {
    // Two nodes that each think the other leads to 9: a datagram never
    // goes back where it came from.
    let now = Instant::now();
    let mut a = router(1, &[2], PeerProtocol::Legacy, now);
    a.table_mut().learn(9, 2, 3, 1, now).unwrap();
    assert_eq!(
        a.forward(Some(2), &routed(9, 8), now),
        Forward::Drop(DropReason::WouldLoop)
    );
    assert_eq!(a.forward_counters().dropped_would_loop, 1);

    // A three-node ring whose tables point round in a circle (forged
    // news): TTL ends it after at most eight relays.
    let mut sim = SimMesh::new(3, config(), PeerProtocol::Net, Duration::from_millis(1));
    for (x, y) in [(0, 1), (1, 2), (2, 0)] {
        sim.link(x, y);
    }
    let ghost = 0xDEAD;
    for (node, via) in [(0, 1), (1, 2), (2, 0)] {
        let now = sim.now();
        sim.router_mut(node)
            .table_mut()
            .learn(ghost, SimMesh::node_id(via), 2, 1, now)
            .unwrap();
    }
    // Trace towards the ghost by sending from node 0 as if to it.
    let now = sim.now();
    let mut datagram = routed(ghost, 8);
    let (mut prev, mut at, mut relays) = (0usize, 1usize, 0);
    let reason = loop {
        match sim
            .router_mut(at)
            .forward(Some(SimMesh::node_id(prev)), &datagram, now)
        {
            decision @ Forward::Relay { next_hop, .. } => {
                decision.rewrite(&mut datagram);
                relays += 1;
                prev = at;
                at = sim.index_of(next_hop).unwrap();
            }
            Forward::Drop(reason) => break reason,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(reason, DropReason::TtlExpired);
    assert_eq!(relays, 8);
}

#[test]
fn count_to_infinity_is_avoided_when_the_far_end_dies() {
    let mut sim = SimMesh::chain(4, config(), PeerProtocol::Net);
    sim.advance(H * 3);
    assert_eq!(sim.route(0, 3).unwrap().hops, 3);
    sim.kill(3);
    let killed_at = sim.now();
    let (mut neighbour_gone, mut stale_everywhere, mut gone_everywhere) = (None, None, None);
    for _ in 0..200 {
        sim.advance(H / 10);
        let since = sim.now() - killed_at;
        for (from, hops) in [(0, 3), (1, 2), (2, 1)] {
            if let Some(r) = sim.route(from, 3) {
                assert!(r.hops <= hops, "node {from} counts up: {r:?}");
            }
        }
        let routes: Vec<_> = (0..3).map(|n| sim.route(n, 3)).collect();
        if neighbour_gone.is_none() && routes[2].is_none() {
            neighbour_gone = Some(since);
        }
        if stale_everywhere.is_none() && routes.iter().flatten().all(|r| r.stale) {
            stale_everywhere = Some(since);
        }
        if gone_everywhere.is_none() && routes.iter().all(Option::is_none) {
            gone_everywhere = Some(since);
        }
    }
    let in_h = |d: Option<Duration>| d.unwrap().as_secs_f64() / H.as_secs_f64();
    // The dead node's neighbour drops it as soon as it has been silent
    // three intervals; further away the route is stale by then (any
    // alternative would win) and deleted after the hold time.
    assert!(in_h(neighbour_gone) <= 3.1, "{neighbour_gone:?}");
    assert!(in_h(stale_everywhere) <= 3.1, "{stale_everywhere:?}");
    assert!(in_h(gone_everywhere) <= 6.1, "{gone_everywhere:?}");
    assert!(
        (0..3).all(|n| sim.route(n, 3).is_none()),
        "and stay withdrawn"
    );
    eprintln!(
        "dead node: neighbour drops it after {:.2} H, stale everywhere after {:.2} H, \
         deleted everywhere after {:.2} H",
        in_h(neighbour_gone),
        in_h(stale_everywhere),
        in_h(gone_everywhere)
    );
}

#[test]
fn worse_news_from_the_current_next_hop_replaces_the_route() {
    let now = Instant::now();
    let mut r = router(1, &[2, 3], PeerProtocol::Net, now);
    assert!(matches!(
        r.on_pingwave(Some(2), &pingwave(9, 1, 8, 1), now),
        PingwaveOutcome::Accepted { .. }
    ));
    assert_eq!(r.route_for(9, now).unwrap().hops, 2);
    // Its path got longer: v0.11 would keep the stale metric 2 for 90 s.
    r.on_pingwave(Some(2), &pingwave(9, 2, 8, 4), now);
    assert_eq!(r.route_for(9, now).unwrap().hops, 5);
    // A late copy of older news does not undo it.
    r.on_pingwave(Some(2), &pingwave(9, 1, 8, 1), now);
    assert_eq!(r.route_for(9, now).unwrap().hops, 5);
    // A shorter path through another neighbour wins.
    r.on_pingwave(Some(3), &pingwave(9, 2, 8, 2), now);
    let best = r.route_for(9, now).unwrap();
    assert_eq!((best.next_hop, best.hops), (3, 3));
}

#[test]
fn split_horizon_and_dedup_decide_who_gets_a_copy() {
    let now = Instant::now();
    let mut r = router(1, &[2, 3, 4], PeerProtocol::Legacy, now);
    // From 2: copies to 3 and 4, not back to 2.
    let copies = relayed(&r.on_pingwave(Some(2), &pingwave(9, 1, 3, 0), now));
    assert_eq!(copies.iter().map(|c| c.to).collect::<Vec<_>>(), vec![3, 4]);
    // The same (origin, seq) through 3: a duplicate, nothing relayed.
    assert_eq!(
        r.on_pingwave(Some(3), &pingwave(9, 1, 2, 1), now),
        PingwaveOutcome::Duplicate
    );
    // Next seq arrives first through 3: our next hop toward 9 is still 2
    // (1 link, shorter), so 2 gets no copy (split horizon), nor does 3.
    let copies = relayed(&r.on_pingwave(Some(3), &pingwave(9, 2, 2, 1), now));
    assert_eq!(copies.iter().map(|c| c.to).collect::<Vec<_>>(), vec![4]);
    // Old sequences are not relayed again.
    assert_eq!(
        r.on_pingwave(Some(4), &pingwave(9, 2, 2, 1), now),
        PingwaveOutcome::Duplicate
    );
}

#[test]
fn v011_peers_only_ever_see_v011_shaped_pingwaves() {
    let now = Instant::now();
    let mut r = router(1, &[2], PeerProtocol::Net, now);
    r.table_mut().add_direct_peer(3, PeerProtocol::Legacy, now);
    r.table_mut().add_direct_peer(4, PeerProtocol::Net, now);
    // Our own: TTL 3 to the v0.11 peer, 8 to Net peers.
    for out in r.originate_pingwaves(0) {
        let pw = Pingwave::decode(&out.bytes).unwrap();
        assert_eq!(pw.ttl, if out.to == 3 { 3 } else { 8 }, "to {}", out.to);
    }
    // A Net pingwave 5 hops out goes on to Net peers only.
    let copies = relayed(&r.on_pingwave(Some(2), &pingwave(9, 1, 3, 5), now));
    assert_eq!(copies.iter().map(|c| c.to).collect::<Vec<_>>(), vec![4]);
    let pw = Pingwave::decode(&copies[0].bytes).unwrap();
    assert_eq!((pw.ttl, pw.hop_count), (2, 6));
    // A v0.11 pingwave 1 hop out: the v0.11 peer gets exactly v0.11's copy,
    // the Net peer one that goes on to the data TTL's reach.
    let copies = relayed(&r.on_pingwave(Some(2), &pingwave(10, 1, 2, 1), now));
    let by_peer = |to| {
        let c = copies.iter().find(|c| c.to == to).unwrap();
        let pw = Pingwave::decode(&c.bytes).unwrap();
        (pw.ttl, pw.hop_count)
    };
    assert_eq!(by_peer(3), (1, 2));
    assert_eq!(by_peer(4), (6, 2));
}

#[test]
fn a_restarted_origin_is_relayed_again() {
    let t0 = Instant::now();
    let mut r = router(1, &[2, 3], PeerProtocol::Legacy, t0);
    r.on_pingwave(Some(2), &pingwave(9, 500, 3, 0), t0);
    // 9 restarts: its counter is back at 1. Refused as a replay at first…
    let t1 = t0 + H;
    r.table_mut().heard_from(2, t1);
    r.table_mut().heard_from(3, t1);
    assert_eq!(
        r.on_pingwave(Some(2), &pingwave(9, 1, 3, 0), t1),
        PingwaveOutcome::Dropped(PingwaveDrop::Stale)
    );
    // …then, the old counter silent for two intervals, relayed again
    // (v0.11 never relays it).
    let t2 = t0 + H * 2;
    r.table_mut().heard_from(2, t2);
    r.table_mut().heard_from(3, t2);
    let copies = relayed(&r.on_pingwave(Some(2), &pingwave(9, 2, 3, 0), t2));
    assert_eq!(copies.len(), 1);
    // Its new life keeps the route fresh past the old one's hold time.
    for tick in 3..12u32 {
        let t = t0 + H * tick;
        r.table_mut().heard_from(2, t);
        r.on_pingwave(Some(2), &pingwave(9, u64::from(tick), 3, 0), t);
        let route = r.route_for(9, t).unwrap();
        assert!(
            !route.stale && route.refreshed_at == t,
            "tick {tick}: {route:?}"
        );
    }
}

#[test]
fn a_flood_of_fake_origins_fills_only_the_flooders_quota() {
    let now = Instant::now();
    let cfg = RoutingConfig {
        max_destinations: 300,
        max_routes_per_neighbor: 100,
        ..config()
    };
    let mut r = Router::new(1, cfg);
    for p in [2, 3] {
        r.table_mut().add_direct_peer(p, PeerProtocol::Legacy, now);
    }
    for fake in 0..100_000u64 {
        r.on_pingwave(Some(2), &pingwave((1 + fake) << 20, 1, 3, 0), now);
    }
    assert_eq!(r.table().learned_len(), 100);
    assert_eq!(r.table().learned_via(2), 100);
    let c = r.pingwave_counters();
    assert_eq!(c.dropped_neighbor_quota, 100_000 - 100);
    assert_eq!(c.relayed, 100, "the flood is not relayed beyond the quota");
    // An honest neighbour still teaches routes.
    for origin in 10..60 {
        r.on_pingwave(Some(3), &pingwave(origin, 1, 3, 1), now);
    }
    assert!((10..60).all(|o| r.route_for(o, now).is_some()));
    // The fakes are deleted after the hold time and free the table.
    let later = now + H * 6 + Duration::from_millis(1);
    r.tick(later);
    assert_eq!(r.table().learned_len(), 0);
    assert_eq!(r.table().learned_via(2), 0);
}

#[test]
fn the_global_cap_holds_against_many_flooding_neighbours() {
    let now = Instant::now();
    let cfg = RoutingConfig {
        max_destinations: 250,
        max_routes_per_neighbor: 100,
        max_candidates_per_destination: 2,
        ..config()
    };
    let mut r = Router::new(1, cfg);
    for p in 2..10 {
        r.table_mut().add_direct_peer(p, PeerProtocol::Net, now);
        for fake in 0..1000u64 {
            r.on_pingwave(
                Some(p),
                &pingwave(1_000_000 + p * 10_000 + fake, 1, 8, 0),
                now,
            );
            // The same origins through every neighbour: at most 2 kept.
            r.on_pingwave(Some(p), &pingwave(5_000 + fake % 50, fake, 8, 2), now);
        }
    }
    assert!(r.table().learned_len() <= 250);
    assert!((2..10).all(|p| r.table().learned_via(p) <= 100));
    assert!(r.pingwave_counters().dropped_table_full > 0);
}

#[test]
fn a_relayed_peer_follows_its_relay_and_fails_over_to_a_learned_route() {
    let now = Instant::now();
    let mut r = router(1, &[2, 3], PeerProtocol::Net, now);
    r.table_mut().add_relayed_peer(9, 2, now);
    assert_eq!(r.table().relay_of(9), Some(2));
    assert_eq!(r.table().relayed_peers(), vec![(9, 2)]);
    let route = r.route_for(9, now).unwrap();
    assert_eq!((route.next_hop, route.kind), (2, RouteKind::Relayed));
    r.on_pingwave(Some(3), &pingwave(9, 1, 8, 2), now);
    assert_eq!(r.route_for(9, now).unwrap().next_hop, 2, "pinned first");
    let reroutes = r.table_mut().peer_failed(2, now);
    assert!(
        reroutes
            .iter()
            .any(|x| x.destination == 9
                && x.new_route.is_some_and(|n| n.next_hop == 3 && n.hops == 3))
    );
    // Never through the failed relay (v0.11 may pick its own address).
    assert!(r.table().routes_to(9, now).iter().all(|x| x.next_hop != 2));
    // The relay's heartbeat is back: the pinned route is restored.
    r.table_mut().heard_from(2, now + H);
    assert_eq!(r.route_for(9, now + H).unwrap().next_hop, 2);
    r.table_mut().remove_relayed_peer(9);
    assert_eq!(r.route_for(9, now + H).unwrap().next_hop, 3);
}

#[test]
fn a_silent_direct_peer_stops_being_a_next_hop_after_three_intervals() {
    let now = Instant::now();
    let mut r = router(1, &[2], PeerProtocol::Legacy, now);
    assert!(r.route_for(2, now + H * 3).is_some());
    assert!(
        r.route_for(2, now + H * 3 + Duration::from_millis(1))
            .is_none()
    );
    r.table_mut().heard_from(2, now + H * 4);
    assert!(r.route_for(2, now + H * 4).is_some());
    let reroutes = r.table_mut().remove_direct_peer(2, now + H * 4);
    assert_eq!(reroutes.len(), 1);
    assert!(!r.table().is_direct_peer(2));
}

#[test]
fn failure_detector_in_the_loop_reroutes_and_recovers() {
    let mut sim = SimMesh::new(4, config(), PeerProtocol::Net, Duration::from_millis(1))
        .with_failure_detector(H * 3);
    for (a, b) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
        sim.link(a, b);
    }
    sim.advance(H * 3);
    assert_eq!(sim.trace(0, 3).unwrap(), vec![0, 1, 3]);
    sim.cut(0, 1);
    sim.advance(H * 4);
    assert_eq!(sim.trace(0, 3).unwrap(), vec![0, 2, 3]);
    assert!(sim.route(0, 1).is_some_and(|r| r.hops == 3));
    // Healed: the short path is back within an interval or two.
    sim.link(0, 1);
    sim.advance(H * 2);
    assert_eq!(sim.trace(0, 3).unwrap(), vec![0, 1, 3]);
    assert_eq!(sim.route(0, 1).unwrap().hops, 1);
}

#[test]
fn snapshot_serializes_routes_and_counters() {
    let mut sim = SimMesh::chain(3, config(), PeerProtocol::Net);
    sim.advance(H * 2);
    let json = serde_json::to_value(sim.router(0).snapshot(sim.now())).unwrap();
    assert_eq!(json["node_id"], SimMesh::node_id(0));
    let routes = json["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0]["destination"], SimMesh::node_id(1));
    assert_eq!(routes[0]["kind"], "direct");
    assert_eq!(routes[1]["destination"], SimMesh::node_id(2));
    assert_eq!(routes[1]["kind"], "learned");
    assert_eq!(routes[1]["hops"], 2);
    assert_eq!(routes[1]["next_hop"], SimMesh::node_id(1));
    assert!(json["pingwaves"]["accepted"].as_u64().unwrap() > 0);
    assert_eq!(json["forwarding"]["forwarded"], 0);
}

proptest! {
    /// No input crashes the forwarder, and a relayed header differs from
    /// the received one only in ttl − 1 and hop_count + 1.
    #[test]
    fn forward_never_panics_and_rewrites_only_ttl_and_hops(
        datagram in proptest::collection::vec(any::<u8>(), 0..200),
        magic in any::<bool>(),
        from in 0u64..4,
    ) {
        let now = Instant::now();
        let mut r = router(1, &[2, 3], PeerProtocol::Legacy, now);
        let mut datagram = datagram;
        if magic && datagram.len() >= 2 {
            datagram[..2].copy_from_slice(&[0x52, 0x54]);
            if datagram.len() >= 18 {
                datagram[10..18].copy_from_slice(&3u64.to_le_bytes());
            }
        }
        if let Forward::Relay { next_hop, header } = r.forward(Some(from), &datagram, now) {
            prop_assert_eq!(next_hop, 3);
            prop_assert_ne!(from, 3);
            prop_assert!(datagram[2] > 0);
            prop_assert_eq!(header[2], datagram[2] - 1);
            prop_assert_eq!(header[3], datagram[3].saturating_add(1));
            prop_assert_eq!(&header[4..], &datagram[4..18]);
            prop_assert_eq!(&header[..2], &datagram[..2]);
        }
    }

    /// Whatever pingwaves arrive, a v0.11 peer is sent only copies shaped
    /// as v0.11 makes them (hop_count ≤ 3, ttl ≤ 3 − hop_count), and the
    /// table never exceeds its caps.
    #[test]
    fn pingwave_relay_stays_v011_shaped_and_bounded(
        waves in proptest::collection::vec((0u64..40, 0u64..6, any::<u8>(), 0u8..20, 2u64..5), 1..200),
    ) {
        let now = Instant::now();
        let cfg = RoutingConfig { max_destinations: 16, max_routes_per_neighbor: 8, ..config() };
        let mut r = Router::new(1, cfg);
        r.table_mut().add_direct_peer(2, PeerProtocol::Net, now);
        r.table_mut().add_direct_peer(3, PeerProtocol::Legacy, now);
        r.table_mut().add_direct_peer(4, PeerProtocol::Net, now);
        for (origin, seq, ttl, hops, from) in waves {
            let outcome = r.on_pingwave(Some(from), &pingwave(origin + 10, seq, ttl, hops), now);
            if let PingwaveOutcome::Accepted { relay } = outcome {
                for copy in relay {
                    let pw = Pingwave::decode(&copy.bytes).unwrap();
                    prop_assert_ne!(copy.to, from);
                    if copy.to == 3 {
                        prop_assert!(pw.hop_count <= 3);
                        prop_assert!(pw.ttl <= 3 - pw.hop_count);
                    } else {
                        prop_assert!(pw.hop_count + pw.ttl <= NET_PINGWAVE_TTL);
                    }
                }
            }
        }
        prop_assert!(r.table().learned_len() <= 16);
        for p in 2..5 {
            prop_assert!(r.table().learned_via(p) <= 8);
        }
    }
}

// --- the fuzz target's check, on the stable toolchain ---

#[path = "../fuzz/checks/mesh_routing.rs"]
mod fuzz_check;

/// A record of the fuzz input format: kind, from, gap, then the bytes.
fn record(kind: u8, from: u8, gap_ms: u8, bytes: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, from, gap_ms, bytes.len() as u8];
    r.extend_from_slice(bytes);
    r
}

/// Seed inputs: the vectors and the hostile cases above, as records.
fn fuzz_seeds() -> Vec<Vec<u8>> {
    let pw = load("pingwave.json");
    let packets = load("packets.json");
    let routed_vector = bytes(field(&packets["routing_header"], "routed_packet"));
    let mut to_peer3 = routed(3, 8);
    to_peer3.truncate(82);
    let mut ttl0 = routed(3, 0);
    ttl0.truncate(82);
    vec![
        record(0, 1, 0, &bytes(&pw["bytes_72"])),
        [
            record(0, 2, 0, &pingwave(9, 1, 8, 0)),
            record(0, 3, 10, &pingwave(9, 1, 8, 2)),
            record(4, 2, 250, &pingwave(9, 2, 8, 4)),
            record(1, 3, 0, &routed(9, 8)[..82]),
        ]
        .concat(),
        [record(1, 1, 0, &to_peer3), record(1, 0, 0, &to_peer3)].concat(),
        record(1, 2, 0, &ttl0),
        record(1, 1, 0, &routed_vector[..routed_vector.len().min(255)]),
        [
            record(2, 2, 0, &[0xFF; 40]),
            record(0, 9, 0, &pingwave(5, 1, 3, 0)),
        ]
        .concat(),
        (0..60u8)
            .flat_map(|i| record(0, 1 + i % 4, 1, &pingwave(1000 + u64::from(i), 1, 3, 0)))
            .collect(),
        [
            record(0x2C, 2, 0, &pingwave(9, 1, 8, 0)),
            record(1, 3, 0, &routed(9, 8)[..82]),
        ]
        .concat(),
    ]
}

#[test]
fn fuzz_check_passes_on_the_seeds_and_on_random_inputs() {
    for seed in fuzz_seeds() {
        fuzz_check::check(&seed);
    }
    // Writes the seeds as the target's corpus when asked (once, by hand).
    if std::env::var_os("NET_WRITE_ROUTING_CORPUS").is_some() {
        let dir = format!("{}/fuzz/corpus/mesh_routing", env!("CARGO_MANIFEST_DIR"));
        fs::create_dir_all(&dir).unwrap();
        for (i, seed) in fuzz_seeds().iter().enumerate() {
            fs::write(format!("{dir}/seed-{i:02}"), seed).unwrap();
        }
    }
}

proptest! {
    #[test]
    fn fuzz_check_holds_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        fuzz_check::check(&data);
    }
}

/// Fraction of 100 ms samples over `duration` in which node 0 has a route
/// to node `to`.
fn availability(sim: &mut SimMesh, to: usize, duration: Duration) -> f64 {
    let samples = (duration.as_millis() / 100) as u32;
    let up = (0..samples)
        .filter(|_| {
            sim.advance(Duration::from_millis(100));
            sim.route(0, to).is_some()
        })
        .count();
    up as f64 / f64::from(samples)
}

#[test]
fn twenty_percent_loss_on_every_link_keeps_routes_through_the_hold_time() {
    let mut report = Vec::new();
    for hold in [3, ROUTE_HOLD_INTERVALS] {
        let cfg = RoutingConfig {
            route_hold_intervals: hold,
            ..config()
        };
        let mut sim = SimMesh::chain(7, cfg, PeerProtocol::Net).with_loss(200, 7);
        sim.advance(H * 4);
        let near = availability(&mut sim, 1, H * 200);
        let mid = availability(&mut sim, 3, H * 200);
        let far = availability(&mut sim, 6, H * 200);
        report.push(format!(
            "hold {hold} H: 1 hop {near:.3}, 3 hops {mid:.3}, 6 hops {far:.3}"
        ));
        // A direct neighbour survives two lost heartbeats in a row.
        assert!(near > 0.97, "{report:?}");
        if hold == ROUTE_HOLD_INTERVALS {
            assert!(mid > 0.95 && far > 0.75, "{report:?}");
        }
        // Whatever the loss, a route is never longer than the path.
        if let Some(r) = sim.route(0, 6) {
            assert_eq!(r.hops, 6);
        }
    }
    eprintln!("route availability under 20 % loss per link: {report:?}");
}

#[test]
fn a_dead_hop_two_links_away_loses_to_the_fresh_path_within_three_intervals() {
    // 0 — 1 — 3 — 5 and 0 — 2 — 4 — 5: two disjoint paths of 3 links.
    let mut sim = SimMesh::new(6, config(), PeerProtocol::Net, Duration::from_millis(1));
    for (a, b) in [(0, 1), (1, 3), (3, 5), (0, 2), (2, 4), (4, 5)] {
        sim.link(a, b);
    }
    sim.advance(H * 3);
    assert_eq!(sim.trace(0, 5).unwrap(), vec![0, 1, 3, 5]);
    sim.kill(3);
    let took = sim
        .run_until_true(H * 10, |s| {
            s.route(0, 5)
                .is_some_and(|r| r.next_hop == SimMesh::node_id(2))
        })
        .unwrap();
    // Three intervals after the last news through 3 (the clock moves in
    // events, so allow the gap to the next one).
    assert!(took <= H * 3 + H / 10, "{took:?}");
    assert_eq!(sim.trace(0, 5).unwrap(), vec![0, 2, 4, 5]);
    eprintln!(
        "reroute around a dead hop two links away: {:.2} H",
        took.as_secs_f64() / H.as_secs_f64()
    );
}
