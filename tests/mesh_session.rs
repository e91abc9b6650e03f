//! Session rough edges found against v0.11 (issue 13 item 4): a restarted
//! Net peer that proves its pinned identity replaces its live session at
//! once (direct and relayed) while impostors and v0.11 peers keep the
//! v0.11 refusal; `connect` to a v0.11 peer returns near the handshake
//! time; grants keep a small-window sender going.

mod mesh_common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_common::*;
use net::identity::EntityKeypair;
use net::mesh::hello::FLAG_RELIABILITY;
use net::mesh::*;

const SEED_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
/// Sessions stay live far longer than any test: a reconnect inside the
/// idle window is what is exercised.
const LONG_LIVED: &str = r#","session_timeout_ms":30000,"heartbeat_interval_ms":1000"#;

fn restartable(extra: &str) -> MeshNode {
    node(&format!(
        r#"{LONG_LIVED},"identity_seed_hex":"{SEED_A}"{extra}"#
    ))
}

fn identity_of(n: &MeshNode, peer: u64) -> Option<(&'static str, u64)> {
    n.peers()
        .into_iter()
        .find(|p| p.node_id == peer)
        .map(|p| (p.identity, p.session_id))
}

/// `from` sends `text` on a reliable stream and `to` receives it from `from`.
fn flows(from: &MeshNode, to: &MeshNode, stream: u64, text: &[u8]) {
    from.open_stream(to.node_id(), stream, true, None).unwrap();
    from.send_blocking(
        to.node_id(),
        stream,
        &[text],
        Some(Instant::now() + Duration::from_secs(5)),
    )
    .unwrap();
    let got = recv_n(to, 1);
    assert_eq!(got[0].peer, from.node_id());
    assert_eq!(got[0].data, text);
}

#[test]
fn a_restarted_net_peer_replaces_its_live_session_at_once() {
    for form in ["routed", "direct"] {
        let b = node(LONG_LIVED);
        let extra = format!(r#","connect_form":"{form}""#);
        // The direct form needs b to `accept` the caller each time.
        let connect = |a: &MeshNode| {
            if form == "direct" {
                let a_id = a.node_id();
                std::thread::scope(|s| {
                    let accepting = s.spawn(|| b.accept(a_id, Some(Duration::from_secs(5))));
                    wait_until(|| b.accepts_in_flight() == 1, "accept registered");
                    a.connect(b.local_addr(), &b.public_key(), b.node_id())
                        .unwrap();
                    assert_eq!(accepting.join().unwrap().unwrap(), a.local_addr());
                });
            } else {
                a.connect(b.local_addr(), &b.public_key(), b.node_id())
                    .unwrap();
            }
        };
        let a1 = restartable(&extra);
        let id = a1.node_id();
        connect(&a1);
        wait_until(
            || identity_of(&b, id).is_some_and(|(i, _)| i == "net"),
            "b bound a's identity",
        );
        flows(&a1, &b, 1, b"first life");
        a1.shutdown();
        drop(a1);

        // Same identity, new socket, new session: inside the old one's
        // idle window, so v0.11 would refuse it for 30 s.
        let a2 = restartable(&extra);
        assert_eq!(a2.node_id(), id);
        let started = Instant::now();
        connect(&a2);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "{form}: reconnect took {took:?}"
        );
        let new_session = a2.peers()[0].session_id;
        wait_until(
            || identity_of(&b, id) == Some(("net", new_session)),
            "the new session replaced the old one",
        );
        assert_eq!(b.peers().len(), 1, "{form}");
        assert_eq!(b.peers()[0].addr, a2.local_addr(), "{form}");
        assert_eq!(b.stat("sessions_replaced"), 1, "{form}");
        flows(&a2, &b, 2, b"second life");
        flows(&b, &a2, 3, b"welcome back");
    }
}

#[test]
fn a_restarted_peer_behind_a_relay_replaces_both_sessions() {
    let r = node(LONG_LIVED);
    let b = node(LONG_LIVED);
    r.start().unwrap();
    b.start().unwrap();
    b.connect(r.local_addr(), &r.public_key(), r.node_id())
        .unwrap();
    let a1 = restartable("");
    a1.start().unwrap();
    let id = a1.node_id();
    a1.connect(r.local_addr(), &r.public_key(), r.node_id())
        .unwrap();
    a1.connect_via(r.node_id(), &b.public_key(), b.node_id(), None)
        .unwrap();
    wait_until(
        || identity_of(&b, id).is_some_and(|(i, _)| i == "net"),
        "b bound a's identity through r",
    );
    flows(&a1, &b, 1, b"relayed, first life");
    a1.shutdown();
    drop(a1);

    let a2 = restartable("");
    a2.start().unwrap();
    let started = Instant::now();
    a2.connect(r.local_addr(), &r.public_key(), r.node_id())
        .unwrap();
    a2.connect_via(r.node_id(), &b.public_key(), b.node_id(), None)
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "reconnect took {took:?}");
    let relayed = a2
        .peers()
        .into_iter()
        .find(|p| p.node_id == b.node_id())
        .unwrap();
    assert_eq!(relayed.relay, Some(r.node_id()));
    wait_until(
        || identity_of(&b, id) == Some(("net", relayed.session_id)),
        "b's relayed session replaced",
    );
    assert_eq!(r.stat("sessions_replaced"), 1);
    assert_eq!(b.stat("sessions_replaced"), 1);
    let at_b = b.peers().into_iter().find(|p| p.node_id == id).unwrap();
    assert_eq!(at_b.relay, Some(r.node_id()));
    flows(&a2, &b, 2, b"relayed, second life");
    flows(&b, &a2, 3, b"relayed, welcome back");
}

#[test]
fn an_impostor_on_a_bound_node_id_never_replaces_the_session() {
    let b = node(LONG_LIVED);
    let a = restartable("");
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    let id = a.node_id();
    wait_until(
        || identity_of(&b, id).is_some_and(|(i, _)| i == "net"),
        "b bound a's identity",
    );
    let session = b.peers()[0].session_id;

    // An impostor with the PSK claims a's node_id: taken as a candidate
    // (it gets msg2), then its hello, signed by another entity, fails.
    let mut impostor = RawPeer::connect(&b, id, &PSK).expect("candidate answered");
    let other = EntityKeypair::generate();
    let hello = Hello::sign(
        &other,
        impostor.session.handshake_hash(),
        Role::Initiator,
        FLAG_RELIABILITY,
        None,
    )
    .unwrap()
    .encode();
    let packet = impostor.subprotocol(net::wire::ids::STREAM_WINDOW, &[&hello[..]]);
    impostor.send(&packet);
    wait_until(|| b.stat("candidates_dropped") == 1, "the impostor dropped");
    // Data on the impostor's session is never delivered.
    let forged = impostor.data(1, &[b"forged"], 0);
    impostor.send(&forged);

    // One that never says hello expires after hello_timeout.
    let _silent = RawPeer::connect(&b, id, &PSK).expect("candidate answered");
    wait_until(
        || b.stat("candidates_dropped") == 2,
        "the silent one expired",
    );

    assert_eq!(identity_of(&b, id), Some(("net", session)));
    assert_eq!(b.stat("sessions_replaced"), 0);
    assert!(b.stat("identity_refused") >= 1);
    flows(&a, &b, 1, b"still mine");
    flows(&b, &a, 2, b"still yours");
}

#[test]
fn a_restarting_v011_peer_is_still_refused_while_its_session_is_live() {
    let b = node(LONG_LIVED);
    let mut first = RawPeer::connect(&b, 0x5EED, &PSK).expect("first handshake");
    let alive = first.data(1, &[b"alive"], 0);
    first.send(&alive);
    recv_n(&b, 1);
    // Never bound an identity: a second handshake for its node_id, from a
    // new socket, is refused as v0.11 does.
    let again = RawPeer::connect_from(UdpSocket::bind("127.0.0.1:0").unwrap(), &b, 0x5EED, &PSK);
    assert!(again.is_none());
    assert_eq!(b.stat("handshakes_refused"), 1);
    assert_eq!(b.stat("session_candidates"), 0);
    assert_eq!(b.peers()[0].session_id, first.session.id());
}

/// A v0.11 responder: answers routed msg1 with msg2 and never says hello.
fn legacy_responder(node_id: u64) -> (UdpSocket, [u8; 32]) {
    let secret = [0x42u8; 32];
    let public = net::identity::x25519_public_key(&secret);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let answering = sock.try_clone().unwrap();
    answering
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    std::thread::spawn(move || {
        let responder = Responder::new(secret, PSK, node_id);
        let mut buf = [0u8; 9216];
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            let Ok((n, from)) = answering.recv_from(&mut buf) else {
                continue;
            };
            if let Ok(accepted) = responder.accept_routed(&buf[..n]) {
                let _ = answering.send_to(&accepted.msg2, from);
                return;
            }
        }
    });
    (sock, public)
}

#[test]
fn connect_to_a_v011_peer_returns_near_the_handshake_time() {
    let hello_timeout = Duration::from_secs(5);
    let a = node(r#","hello_timeout_ms":5000"#);
    let (sock, public) = legacy_responder(0xAB_CDEF);
    let started = Instant::now();
    a.connect(sock.local_addr().unwrap(), &public, 0xAB_CDEF)
        .unwrap();
    let took = started.elapsed();
    assert!(
        took < hello_timeout / 2,
        "connect to a v0.11 peer took {took:?}"
    );
    eprintln!("connect to a v0.11 peer: {took:?}");
    // Not decided early: pending until the hello timeout says v0.11.
    assert_eq!(a.peers()[0].identity, "pending");

    // Between Net nodes connect still ends with the binding complete, so
    // reliable streams are Net reliable at once.
    let b = node(r#","hello_timeout_ms":5000"#);
    let c = node(r#","hello_timeout_ms":5000"#);
    let started = Instant::now();
    b.connect(c.local_addr(), &c.public_key(), c.node_id())
        .unwrap();
    eprintln!("connect to a Net peer: {:?}", started.elapsed());
    assert_eq!(b.peers()[0].identity, "net");
    // Net reliable: a stream that loses every third packet still delivers
    // everything, in order.
    b.set_filter(Some(Arc::new(DropEvery::new(3))));
    b.open_stream(c.node_id(), 9, true, None).unwrap();
    let events: Vec<Vec<u8>> = (0..30u32).map(|i| i.to_be_bytes().to_vec()).collect();
    for e in &events {
        b.send_blocking(c.node_id(), 9, &[e], None).unwrap();
    }
    let got: Vec<Vec<u8>> = recv_n(&c, 30).into_iter().map(|e| e.data).collect();
    assert_eq!(got, events);
    assert!(b.stat("retransmits") > 0);
}

/// Drops every `n`th data packet on a user stream.
struct DropEvery {
    n: usize,
    seen: std::sync::atomic::AtomicUsize,
}

impl DropEvery {
    fn new(n: usize) -> Self {
        Self {
            n,
            seen: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl PacketFilter for DropEvery {
    fn outbound(&self, _to: std::net::SocketAddr, d: &[u8]) -> Verdict {
        if let Ok(h) = net::wire::NetHeader::decode(d)
            && h.subprotocol_id == 0
            && h.stream_id == 9
        {
            let k = self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if k % self.n == 1 {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    }
}

/// Time for `count` events of `size` bytes, one per send, from a sender
/// whose stream window is `window` (the receiver has the default window).
fn transfer(window: u64, count: usize, size: usize) -> Duration {
    let a = node("");
    let b = node("");
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    a.open_stream(b.node_id(), 4, false, Some(window)).unwrap();
    let event = vec![7u8; size];
    let started = Instant::now();
    std::thread::scope(|s| {
        let receiver = s.spawn(|| recv_n(&b, count).len());
        for _ in 0..count {
            a.send_blocking(
                b.node_id(),
                4,
                &[&event],
                Some(Instant::now() + Duration::from_secs(10)),
            )
            .unwrap();
        }
        assert_eq!(receiver.join().unwrap(), count);
    });
    started.elapsed()
}

#[test]
fn grants_keep_a_small_window_sender_going() {
    // A v0.11 sender with a 4 KiB window, 10,000 events into our node:
    // coalescing must not leave it waiting for the reliability tick.
    // The best of three runs each: the figures are tens of milliseconds,
    // where one scheduling hiccup on a loaded machine would dominate.
    let best = |window| (0..3).map(|_| transfer(window, 10_000, 64)).min().unwrap();
    let small = best(4096);
    let large = best(DEFAULT_WINDOW);
    eprintln!("10,000 events: 4 KiB window {small:?}, 64 KiB window {large:?}");
    // Paced by the reliability tick, the 4 KiB sender would wait one tick
    // (5 ms) per window's worth of events (~68 credit bytes each): ~830 ms.
    // Compared with that, not with the 64 KiB run, which the data path
    // has made fast enough (25 ms here) that three times it is no longer
    // a bound a loaded machine keeps.
    let windows = 10_000 * 68 / 4096;
    let tick_paced = Duration::from_millis(5) * windows;
    assert!(
        small < tick_paced / 2,
        "4 KiB window took {small:?} (64 KiB: {large:?}); paced by the tick it would take {tick_paced:?}"
    );
}

#[test]
fn candidates_are_bounded_across_node_ids_and_expire() {
    // Nine bound peers, and an attacker with the PSK claiming each one's
    // node_id: eight candidates are held, the ninth is refused as v0.11
    // would, and all of them expire without a hello.
    let b = node(&format!(r#"{LONG_LIVED},"hello_timeout_ms":2000"#));
    let peers: Vec<MeshNode> = (0..9).map(|_| node(LONG_LIVED)).collect();
    for p in &peers {
        p.connect(b.local_addr(), &b.public_key(), b.node_id())
            .unwrap();
    }
    wait_until(
        || b.peers().iter().filter(|p| p.identity == "net").count() == 9,
        "all nine bound",
    );
    let held: Vec<RawPeer> = peers[..8]
        .iter()
        .map(|p| RawPeer::connect(&b, p.node_id(), &PSK).expect("a candidate"))
        .collect();
    assert_eq!(held.len(), 8);
    assert!(b.stats_json().contains(r#""candidates_held":8"#));
    assert!(RawPeer::connect(&b, peers[8].node_id(), &PSK).is_none());
    assert_eq!(b.stat("session_candidates"), 8);
    assert_eq!(b.stat("handshakes_refused"), 1);
    wait_until(
        || b.stats_json().contains(r#""candidates_held":0"#),
        "candidates expired",
    );
    assert_eq!(b.stat("candidates_dropped"), 8);
    assert_eq!(b.stat("sessions_replaced"), 0);
    for p in &peers {
        flows(p, &b, 1, b"still here");
    }
}
