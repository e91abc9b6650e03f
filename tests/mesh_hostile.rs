//! A hostile peer inside the mesh (issue 13): it holds a real session with
//! a relay, so its datagrams pass the "from an authenticated peer" gate,
//! and it uses that to send forged routing headers, poison routes to build
//! a relay loop, flood spoofed membership Acks and push oversized, garbage
//! and forged capability announcements. Each attack is counted or refused,
//! nothing is misrouted (no forged datagram reaches an application), no
//! node crashes or stalls, and honest traffic across the same relay still
//! arrives whole afterwards.

mod mesh_common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mesh_common::{
    PSK, RawPeer, bound_link, nothing_for, recv_n, route_to, started_node, wait_until,
};
use net::identity::{ChannelName, EntityKeypair};
use net::mesh::capability::{Announcement, CapabilitySet, MAX_ANNOUNCEMENT_LEN};
use net::mesh::channels::ChannelConfig;
use net::mesh::*;
use net::wire::pingwave::PINGWAVE_TTL;
use net::wire::{AckReason, Membership, Pingwave, ROUTED_DATA_TTL, RoutingHeader, ids};

const HOSTILE: u64 = 0x0bad_0000_0000_0001;
const ACCOMPLICE: u64 = 0x0bad_0000_0000_0002;
/// A node that does not exist; the hostile peers advertise it.
const PHANTOM: u64 = 0x0bad_0000_0000_00ff;

fn started() -> MeshNode {
    started_node("")
}

fn link(a: &MeshNode, b: &MeshNode) {
    bound_link(a, b);
}

fn routes(n: &MeshNode) -> serde_json::Value {
    serde_json::from_str(&n.routes_json()).unwrap()
}

fn forwarding(n: &MeshNode, counter: &str) -> u64 {
    routes(n)["forwarding"][counter].as_u64().unwrap()
}

/// A routed datagram: `header` then `inner` bytes (at least a Net header's
/// worth, so it is not malformed for its length).
fn routed(ttl: u8, src: u64, dest: u64, inner_byte: u8) -> Vec<u8> {
    let mut datagram = RoutingHeader {
        ttl,
        hop_count: 0,
        flags: 0,
        src_id: src as u32,
        dest_id: dest,
    }
    .encode()
    .to_vec();
    datagram.extend_from_slice(&[inner_byte; 120]);
    datagram
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A pingwave claiming `origin` is `hop_count` hops behind the sender.
fn pingwave(origin: u64, seq: u64, hop_count: u8) -> [u8; 72] {
    let mut pw = Pingwave::new(origin, seq, now_us());
    pw.hop_count = hop_count;
    pw.ttl = PINGWAVE_TTL;
    pw.encode()
}

/// Sends `n` numbered reliable events a -> c (a relayed session through
/// the relay) and checks c gets exactly them, in order, once.
fn honest_traffic_flows(a: &MeshNode, c: &MeshNode, stream: u64, n: u32) {
    a.open_stream(c.node_id(), stream, true, None).unwrap();
    for i in 0..n {
        a.send_blocking(
            c.node_id(),
            stream,
            &[i.to_le_bytes()],
            Some(Instant::now() + Duration::from_secs(20)),
        )
        .unwrap();
    }
    let got = recv_n(c, n as usize);
    let numbers: Vec<u32> = got
        .iter()
        .map(|e| u32::from_le_bytes(e.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(numbers, (0..n).collect::<Vec<_>>());
    assert!(got.iter().all(|e| e.peer == a.node_id()));
    assert!(nothing_for(c, 200), "no duplicate");
}

#[test]
fn forged_routing_headers_are_dropped_or_die_at_their_destination() {
    let (a, b, c) = (started(), started(), started());
    link(&a, &b);
    link(&c, &b);
    wait_until(
        || route_to(&a, c.node_id()).map(|r| r.1) == Some(2),
        "a learns c",
    );
    let hostile = RawPeer::connect(&b, HOSTILE, &PSK).expect("handshake");
    wait_until(
        || route_to(&b, HOSTILE).is_some(),
        "b routes to its hostile peer",
    );

    // TTL 0 for another node: dropped at the relay.
    let ttl_before = forwarding(&b, "dropped_ttl_expired");
    hostile.send(&routed(0, HOSTILE, c.node_id(), 0x11));
    // No route to a node nobody advertised.
    let no_route_before = forwarding(&b, "dropped_no_route");
    hostile.send(&routed(ROUTED_DATA_TTL, HOSTILE, 0x7777_7777, 0x22));
    // Addressed back to the sender itself: would loop.
    let loop_before = forwarding(&b, "dropped_would_loop");
    hostile.send(&routed(ROUTED_DATA_TTL, HOSTILE, HOSTILE, 0x33));
    // Too short to be a routed packet, with the routing magic.
    let malformed_before = b.stat("malformed");
    hostile.send(&routed(ROUTED_DATA_TTL, HOSTILE, c.node_id(), 0x44)[..40]);
    wait_until(
        || {
            forwarding(&b, "dropped_ttl_expired") == ttl_before + 1
                && forwarding(&b, "dropped_no_route") == no_route_before + 1
                && forwarding(&b, "dropped_would_loop") == loop_before + 1
                && b.stat("malformed") > malformed_before
        },
        "each forged header is dropped for its reason",
    );

    // A spoofed source (a's id) with garbage inside, for c: b forwards it
    // (it is from a peer and the header is all b can read), and c refuses
    // it for what it is: no session opens it, no event comes out.
    let forwarded_before = forwarding(&b, "forwarded");
    let refused_at_c = || c.stat("malformed") + c.stat("unknown_session");
    let c_refused_before = refused_at_c();
    for byte in [0x4e_u8, 0x00, 0xff] {
        hostile.send(&routed(ROUTED_DATA_TTL, a.node_id(), c.node_id(), byte));
    }
    wait_until(
        || refused_at_c() >= c_refused_before + 3,
        "c refuses the spoofed datagrams",
    );
    assert_eq!(forwarding(&b, "forwarded"), forwarded_before + 3);
    assert!(
        nothing_for(&c, 200),
        "no forged event reaches c's application"
    );
    assert!(nothing_for(&a, 50), "nothing reaches a");

    // The real a still reaches c through the same relay.
    a.connect_routed(&c.public_key(), c.node_id(), None)
        .unwrap();
    honest_traffic_flows(&a, &c, 7, 300);
}

/// Reflects every routed datagram for `dest` that reaches `peer` back to
/// where it came from, until `stop`; counts them.
fn reflector(
    sock: UdpSocket,
    dest: u64,
    stop: Arc<AtomicBool>,
    bounced: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 9216];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            if let Ok(header) = RoutingHeader::decode(&buf[..n])
                && header.dest_id == dest
            {
                bounced.fetch_add(1, Ordering::Relaxed);
                sock.send_to(&buf[..n], from).unwrap();
            }
        }
    })
}

#[test]
fn a_relay_loop_built_from_poisoned_routes_dies_out_within_the_ttl() {
    let (a, b, c) = (started(), started(), started());
    link(&a, &b);
    link(&c, &b);
    let hostile = RawPeer::connect(&b, HOSTILE, &PSK).expect("handshake");
    let accomplice = RawPeer::connect(&b, ACCOMPLICE, &PSK).expect("handshake");
    wait_until(
        || route_to(&b, HOSTILE).is_some() && route_to(&b, ACCOMPLICE).is_some(),
        "b routes to both hostile peers",
    );
    // Both claim the phantom node is one hop behind them (kept fresh).
    let stop = Arc::new(AtomicBool::new(false));
    let advertiser = {
        let (stop, h, x) = (
            stop.clone(),
            hostile.sock.try_clone().unwrap(),
            accomplice.sock.try_clone().unwrap(),
        );
        let target = b.local_addr();
        std::thread::spawn(move || {
            let mut seq = 1u64;
            while !stop.load(Ordering::Relaxed) {
                h.send_to(&pingwave(PHANTOM, seq, 1), target).unwrap();
                x.send_to(&pingwave(PHANTOM, seq + 1, 1), target).unwrap();
                seq += 2;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    wait_until(
        || route_to(&b, PHANTOM).is_some(),
        "b learns the phantom route",
    );
    // Each reflects whatever b sends it for the phantom straight back.
    let bounced = Arc::new(AtomicU64::new(0));
    let reflectors = [
        reflector(
            hostile.sock.try_clone().unwrap(),
            PHANTOM,
            stop.clone(),
            bounced.clone(),
        ),
        reflector(
            accomplice.sock.try_clone().unwrap(),
            PHANTOM,
            stop.clone(),
            bounced.clone(),
        ),
    ];
    let before = routes(&b)["forwarding"].clone();
    let sent = 20u64;
    for i in 0..sent {
        hostile.send(&routed(ROUTED_DATA_TTL, HOSTILE, PHANTOM, i as u8));
    }
    // Every datagram ends: dropped at TTL 0 or as a loop back to its
    // sender. None is forwarded more than the TTL allows.
    let ended = |n: &serde_json::Value| {
        n["dropped_ttl_expired"].as_u64().unwrap() + n["dropped_would_loop"].as_u64().unwrap()
    };
    wait_until(
        || ended(&routes(&b)["forwarding"]) >= ended(&before) + sent,
        "every looping datagram is dropped",
    );
    let after = routes(&b)["forwarding"].clone();
    let forwarded = after["forwarded"].as_u64().unwrap() - before["forwarded"].as_u64().unwrap();
    assert!(
        forwarded <= sent * u64::from(ROUTED_DATA_TTL),
        "forwarded {forwarded} times for {sent} datagrams"
    );
    // Quiet once they ended: the loop does not keep spinning.
    std::thread::sleep(Duration::from_millis(200));
    let settled = routes(&b)["forwarding"]["forwarded"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        routes(&b)["forwarding"]["forwarded"].as_u64().unwrap(),
        settled,
        "the loop has stopped"
    );
    assert!(bounced.load(Ordering::Relaxed) > 0, "the loop was real");
    stop.store(true, Ordering::Relaxed);
    advertiser.join().unwrap();
    for r in reflectors {
        r.join().unwrap();
    }
    // The honest routes were never displaced.
    assert_eq!(route_to(&a, c.node_id()).map(|r| r.0), Some(b.node_id()));
    a.connect_routed(&c.public_key(), c.node_id(), None)
        .unwrap();
    honest_traffic_flows(&a, &c, 8, 300);
}

#[test]
fn spoofed_and_garbage_membership_acks_change_no_decision() {
    let (publisher, subscriber) = (started(), Arc::new(started()));
    link(&subscriber, &publisher);
    let gated = ChannelName::new("hostile/gated").unwrap();
    let open = ChannelName::new("hostile/open").unwrap();
    publisher
        .register_channel(
            &gated,
            ChannelConfig {
                require_token: true,
                ..ChannelConfig::default()
            },
        )
        .unwrap();
    publisher
        .register_channel(&open, ChannelConfig::default())
        .unwrap();
    let mut hostile = RawPeer::connect(&subscriber, HOSTILE, &PSK).expect("handshake");
    let watched = subscriber.clone();
    let counter = move |name: &str| {
        let json: serde_json::Value = serde_json::from_str(&watched.channels_json()).unwrap();
        json["counters"][name].as_u64().unwrap()
    };
    let unmatched_before = counter("unmatched_acks");
    let malformed_before = counter("malformed");
    // Accepting Acks with guessed nonces (sequential and scattered), and
    // garbage membership frames, flood the subscriber while it asks.
    let flood = 400u64;
    let mut datagrams = Vec::new();
    for i in 0..flood {
        let nonce = if i % 2 == 0 {
            i
        } else {
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        };
        let ack = Membership::Ack {
            nonce,
            accepted: true,
            reason: AckReason::Ok,
        }
        .encode();
        datagrams.push(hostile.subprotocol(ids::MEMBERSHIP, &[&ack]));
    }
    let garbage: [&[u8]; 4] = [b"", &[0xff; 3], &[0x02; 40], &[0x01; 1000]];
    for g in garbage {
        datagrams.push(hostile.subprotocol(ids::MEMBERSHIP, &[g]));
    }
    let asking = {
        let (s, p, ch) = (subscriber.clone(), publisher.node_id(), gated.clone());
        std::thread::spawn(move || s.subscribe(p, &ch, None, None))
    };
    for d in &datagrams {
        hostile.send(d);
    }
    match asking.join().unwrap() {
        Err(ChannelError::Rejected(AckReason::Unauthorized)) => {}
        other => panic!("the publisher's refusal must stand, got {other:?}"),
    }
    wait_until(
        || {
            counter("unmatched_acks") >= unmatched_before + flood
                && counter("malformed") >= malformed_before + garbage.len() as u64
        },
        "spoofed Acks and garbage are counted",
    );
    let json: serde_json::Value = serde_json::from_str(&publisher.channels_json()).unwrap();
    let gated_row = json["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hostile/gated")
        .unwrap()
        .clone();
    assert_eq!(gated_row["subscribers"].as_u64(), Some(0));
    // Honest membership still works on the same node.
    subscriber
        .subscribe(publisher.node_id(), &open, None, None)
        .unwrap();
    publisher.publish(&open, &[b"honest"], true).unwrap();
    let got = recv_n(&subscriber, 1);
    assert_eq!(got[0].data, b"honest");
    assert_eq!(got[0].channel.as_ref(), Some(&open));
}

#[test]
fn oversized_garbage_and_forged_announcements_are_never_indexed_or_forwarded() {
    let (a, b, c) = (started(), started(), started());
    link(&a, &b);
    link(&c, &b);
    let mut hostile = RawPeer::connect(&b, HOSTILE, &PSK).expect("handshake");
    let nodes = |n: &MeshNode| n.find_nodes(&Default::default()).nodes;

    // A real announcement by a key the hostile peer holds, but its
    // node_id is not the hostile peer's (hop 0 from a non-origin).
    let stolen = EntityKeypair::from_seed(&[0x66; 32]);
    let mut posing = Announcement::new(
        *stolen.entity_id(),
        1,
        now_us() * 1000,
        300,
        CapabilitySet {
            tags: vec!["gpu".into()],
            ..CapabilitySet::default()
        },
    );
    posing.sign(&stolen).unwrap();
    // c's node_id with the hostile key: the signature cannot match.
    let mut forged_id = posing.clone();
    forged_id.node_id = c.node_id();
    forged_id.hop_count = 1;
    // Unsigned, forwarded-looking.
    let mut unsigned = Announcement::new(
        *stolen.entity_id(),
        2,
        now_us() * 1000,
        300,
        CapabilitySet::default(),
    );
    unsigned.hop_count = 1;
    // Expired long ago, correctly signed, forwarded-looking.
    let mut expired = Announcement::new(
        *stolen.entity_id(),
        3,
        1_000_000_000,
        1,
        CapabilitySet::default(),
    );
    expired.sign(&stolen).unwrap();
    expired.hop_count = 1;
    let deep: Vec<u8> = std::iter::repeat_n(b'[', 4000).collect();
    let too_long: Vec<u8> = std::iter::repeat_n(b' ', MAX_ANNOUNCEMENT_LEN - 200)
        .chain(b"{}".iter().copied())
        .collect();
    let frames: Vec<Vec<u8>> = vec![
        posing.encode(),
        forged_id.encode(),
        unsigned.encode(),
        expired.encode(),
        b"not json at all".to_vec(),
        vec![0u8; 64],
        deep,
        too_long,
    ];
    let received_before = b.stat("datagrams_received");
    let dropped_before = b.stat("capabilities_dropped");
    let accepted_before = b.stat("capabilities_accepted");
    for frame in &frames {
        let datagram = hostile.subprotocol(ids::CAPABILITY, &[frame.as_slice()]);
        hostile.send(&datagram);
    }
    // A frame over the size limit cannot be sealed in one packet: the
    // largest a hostile sender can put in a datagram is the node's
    // oversized case, dropped before decryption.
    let oversized_before = b.stat("oversized");
    hostile
        .sock
        .send_to(&vec![0x4e; 65_000], b.local_addr())
        .unwrap();
    wait_until(
        || {
            b.stat("datagrams_received") >= received_before + frames.len() as u64
                && b.stat("oversized") > oversized_before
        },
        "b has taken in every hostile frame",
    );
    // Each one was counted as dropped by the pipeline, none accepted.
    wait_until(
        || b.stat("capabilities_dropped") >= dropped_before + frames.len() as u64,
        "every hostile announcement counted as dropped",
    );
    assert_eq!(b.stat("capabilities_accepted"), accepted_before);
    // An honest announcement sent after them is indexed two hops away:
    // anything b had forwarded would have arrived at a before it.
    c.announce(CapabilitySet {
        tags: vec!["honest".into()],
        ..CapabilitySet::default()
    })
    .unwrap();
    wait_until(
        || nodes(&a).contains(&c.node_id()) && nodes(&b).contains(&c.node_id()),
        "the honest announcement is indexed",
    );
    for n in [&a, &b] {
        let indexed = nodes(n);
        assert!(!indexed.contains(&stolen.node_id()), "{indexed:?}");
        assert!(!indexed.contains(&HOSTILE));
    }
    // c's entry is c's own (the forged copy under its id did not win).
    let json: serde_json::Value = serde_json::from_str(&a.capabilities_json()).unwrap();
    let c_entry = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"].as_u64() == Some(c.node_id()))
        .unwrap()
        .clone();
    assert_eq!(
        c_entry["capabilities"]["tags"],
        serde_json::json!(["honest"]),
        "{c_entry}"
    );
    // The node still serves its honest peers.
    a.connect_via(b.node_id(), &c.public_key(), c.node_id(), None)
        .unwrap();
    honest_traffic_flows(&a, &c, 9, 200);
}
