//! Multi-hop routing on running nodes (issue 13): routes learned from
//! pingwaves, relays forwarding routed packets, relayed sessions opened with
//! `connect_via` / `connect_routed` that carry streams both ways (and
//! heartbeats, so relayed peers are liveness-checked), reroute around a dead
//! relay with a reliable stream losing and duplicating nothing, a 7-node
//! chain, and a relay that refuses datagrams from non-peers.

mod mesh_common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use mesh_common::{node, recv_n, wait_until};
use net::mesh::*;
use net::wire::{ROUTED_DATA_TTL, RoutingHeader};

/// A started node with fast heartbeats (routes age in 3 intervals).
fn started() -> MeshNode {
    let n = node("");
    n.start().unwrap();
    n
}

/// `a` handshakes with `b` directly and waits until both see the other.
fn link(a: &MeshNode, b: &MeshNode) {
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    wait_until(
        || b.peers().iter().any(|p| p.node_id == a.node_id()),
        "the link is up on both ends",
    );
}

/// The routes JSON of `n`, parsed.
fn routes(n: &MeshNode) -> serde_json::Value {
    serde_json::from_str(&n.routes_json()).unwrap()
}

/// The hop count of `n`'s route to `dest`, if it has one.
fn hops_to(n: &MeshNode, dest: u64) -> Option<u64> {
    routes(n)["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["destination"].as_u64() == Some(dest))
        .and_then(|r| r["hops"].as_u64())
}

fn numbered(events: &[InboundEvent]) -> Vec<u32> {
    events
        .iter()
        .map(|e| u32::from_le_bytes(e.data[..4].try_into().unwrap()))
        .collect()
}

fn send_numbered(from: &MeshNode, to: u64, stream: u64, range: std::ops::Range<u32>) {
    for i in range {
        from.send_blocking(
            to,
            stream,
            &[i.to_le_bytes()],
            Some(Instant::now() + Duration::from_secs(20)),
        )
        .unwrap();
    }
}

#[test]
fn a_reaches_c_through_b_on_a_relayed_session_both_ways() {
    let (a, b, c) = (started(), started(), started());
    link(&a, &b);
    link(&c, &b);
    wait_until(
        || hops_to(&a, c.node_id()) == Some(2),
        "a learns c at 2 hops",
    );
    a.connect_routed(&c.public_key(), c.node_id(), None)
        .unwrap();
    let peer_c = a
        .peers()
        .into_iter()
        .find(|p| p.node_id == c.node_id())
        .unwrap();
    assert_eq!(peer_c.relay, Some(b.node_id()));
    wait_until(
        || {
            c.peers()
                .iter()
                .any(|p| p.node_id == a.node_id() && p.relay == Some(b.node_id()))
        },
        "c sees a relayed through b",
    );
    // Identity binding, streams and credit grants all travel routed.
    wait_until(
        || {
            a.peers()
                .iter()
                .any(|p| p.node_id == c.node_id() && p.identity == "net")
        },
        "identity bound over the relay",
    );
    a.open_stream(c.node_id(), 5, true, None).unwrap();
    send_numbered(&a, c.node_id(), 5, 0..2000);
    let got = recv_n(&c, 2000);
    assert_eq!(numbered(&got), (0..2000).collect::<Vec<_>>());
    assert!(got.iter().all(|e| e.peer == a.node_id()));
    c.send_blocking(a.node_id(), 6, &[b"back"], None).unwrap();
    assert_eq!(recv_n(&a, 1)[0].data, b"back");
    // b relayed them without a session of its own for them.
    let b_routes = routes(&b);
    assert!(b_routes["forwarding"]["forwarded"].as_u64().unwrap() > 0);
    // Relayed peers are heard (routed heartbeats): still alive after
    // several heartbeat intervals without data.
    let heartbeats = c.stat("heartbeats_received");
    wait_until(
        || c.stat("heartbeats_received") > heartbeats + 20,
        "routed heartbeats",
    );
    assert!(
        c.peers()
            .iter()
            .any(|p| p.node_id == a.node_id() && p.health == "alive")
    );
}

#[test]
fn connect_via_names_the_relay_and_refuses_a_non_peer_relay() {
    let (a, b, c) = (started(), started(), started());
    link(&a, &b);
    link(&c, &b);
    // c is no direct peer of a: it cannot relay.
    assert!(matches!(
        a.connect_via(c.node_id(), &c.public_key(), c.node_id(), None),
        Err(MeshError::NoRoute(_))
    ));
    assert!(matches!(
        a.connect_routed(&c.public_key(), 0x1234, None),
        Err(MeshError::NoRoute(0x1234))
    ));
    a.connect_via(b.node_id(), &c.public_key(), c.node_id(), None)
        .unwrap();
    a.send_blocking(c.node_id(), 1, &[b"via b"], None).unwrap();
    assert_eq!(recv_n(&c, 1)[0].data, b"via b");
}

#[test]
fn a_reliable_stream_over_a_diamond_survives_the_death_of_its_relay() {
    let (a, b1, b2, d) = (started(), started(), started(), started());
    link(&a, &b1);
    link(&a, &b2);
    link(&d, &b1);
    link(&d, &b2);
    wait_until(|| hops_to(&a, d.node_id()) == Some(2), "a learns d");
    wait_until(|| hops_to(&d, a.node_id()) == Some(2), "d learns a");
    a.connect_via(b1.node_id(), &d.public_key(), d.node_id(), None)
        .unwrap();
    a.open_stream(d.node_id(), 9, true, None).unwrap();
    send_numbered(&a, d.node_id(), 9, 0..500);
    let mut got = recv_n(&d, 500);
    // The relay dies mid-stream.
    let killed = Instant::now();
    b1.shutdown();
    drop(b1);
    send_numbered(&a, d.node_id(), 9, 500..1000);
    got.extend(recv_n(&d, 500));
    let rerouted = killed.elapsed();
    assert_eq!(numbered(&got), (0..1000).collect::<Vec<_>>());
    // The peer list names the relay in use now, not the dead one.
    let relay_now = a
        .peers()
        .into_iter()
        .find(|p| p.node_id == d.node_id())
        .and_then(|p| p.relay);
    assert_eq!(relay_now, Some(b2.node_id()));
    // Nothing more arrives (no duplicate).
    assert!(mesh_common::nothing_for(&d, 200));
    eprintln!("reroute after the relay's death: first 500 events over b2 within {rerouted:?}");
}

#[test]
fn the_far_ends_of_a_seven_node_chain_reach_each_other() {
    let chain: Vec<MeshNode> = (0..7).map(|_| started()).collect();
    for pair in chain.windows(2) {
        link(&pair[0], &pair[1]);
    }
    let (first, last) = (&chain[0], &chain[6]);
    let cold = Instant::now();
    wait_until(
        || hops_to(first, last.node_id()) == Some(6) && hops_to(last, first.node_id()) == Some(6),
        "the ends learn each other at 6 hops",
    );
    eprintln!("7-node chain converged end to end in {:?}", cold.elapsed());
    first
        .connect_routed(&last.public_key(), last.node_id(), None)
        .unwrap();
    first
        .send_blocking(last.node_id(), 3, &[b"far"], None)
        .unwrap();
    assert_eq!(recv_n(last, 1)[0].data, b"far");
    last.send_blocking(first.node_id(), 3, &[b"back"], None)
        .unwrap();
    assert_eq!(recv_n(first, 1)[0].data, b"back");
}

#[test]
fn a_relay_forwards_nothing_from_a_stranger() {
    let (a, b, c) = (started(), started(), started());
    link(&a, &b);
    link(&c, &b);
    wait_until(|| hops_to(&b, c.node_id()).is_some(), "b routes to c");
    // A stranger's routed datagram for c: a valid header, garbage inside.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut datagram = RoutingHeader {
        ttl: ROUTED_DATA_TTL,
        hop_count: 0,
        flags: 0,
        src_id: 7,
        dest_id: c.node_id(),
    }
    .encode()
    .to_vec();
    datagram.extend_from_slice(&[0x4e; 200]);
    let before = routes(&b)["forwarding"]["dropped_not_from_peer"]
        .as_u64()
        .unwrap();
    for _ in 0..10 {
        stranger.send_to(&datagram, b.local_addr()).unwrap();
    }
    wait_until(
        || {
            routes(&b)["forwarding"]["dropped_not_from_peer"]
                .as_u64()
                .unwrap()
                >= before + 10
        },
        "b drops the stranger's datagrams",
    );
    assert_eq!(routes(&b)["forwarding"]["forwarded"].as_u64(), Some(0));
    // TTL 0 from a real peer is dropped too (a's datagram for c).
    assert!(a.peers().iter().all(|p| p.node_id != c.node_id()));
}

#[test]
fn a_reliable_stream_arrives_whole_through_relays_that_lose_a_fifth() {
    use std::sync::Arc;
    let (a, b, c, d) = (started(), started(), started(), started());
    link(&a, &b);
    link(&b, &c);
    link(&c, &d);
    wait_until(|| hops_to(&a, d.node_id()) == Some(3), "a learns d");
    a.connect_routed(&d.public_key(), d.node_id(), None)
        .unwrap();
    wait_until(
        || {
            a.peers()
                .iter()
                .any(|p| p.node_id == d.node_id() && p.identity == "net")
        },
        "identity bound over two relays",
    );
    // Both relays lose 20 % of what they send, and reorder and duplicate.
    for (relay, seed) in [(&b, 3), (&c, 4)] {
        relay.set_filter(Some(Arc::new(NetemFilter::new(
            0.20,
            0.05,
            0.10,
            Duration::from_millis(10),
            seed,
        ))));
    }
    a.open_stream(d.node_id(), 2, true, None).unwrap();
    let n = 1000u32;
    let d = Arc::new(d);
    let reader = {
        let d = d.clone();
        std::thread::spawn(move || recv_n(&d, n as usize))
    };
    for i in 0..n {
        let mut event = [0u8; 300];
        event[..4].copy_from_slice(&i.to_le_bytes());
        a.send_blocking(
            d.node_id(),
            2,
            &[&event[..]],
            Some(Instant::now() + Duration::from_secs(30)),
        )
        .unwrap();
    }
    let got = reader.join().unwrap();
    assert_eq!(numbered(&got), (0..n).collect::<Vec<_>>());
    assert!(mesh_common::nothing_for(&d, 300), "no duplicate");
    assert!(a.stat("retransmits") > 0);
}
