//! One named regression test per mesh fix of the v0.11 release notes
//! (their tests/mesh_audit.rs): the heartbeat loop holds no guard, accept /
//! start are SeqCst, the handshake insert is atomic, re-keying a live
//! session is refused, every sender sets the reliable flag, the loopback
//! path is depth-capped, and the address index is refreshed when a peer's
//! address changes.

mod mesh_common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use mesh_common::*;
use net::mesh::*;

/// A filter that makes every send slow (as a congested socket would).
struct SlowSends(Duration);

impl PacketFilter for SlowSends {
    fn outbound(&self, _to: SocketAddr, _d: &[u8]) -> Verdict {
        std::thread::sleep(self.0);
        Verdict::Pass
    }
}

#[test]
fn heartbeat_loop_holds_no_guard() {
    let a = Arc::new(node(""));
    // 40 peers (sessions installed directly; their addresses go nowhere).
    for i in 0..40u64 {
        a.install_session_for_test(
            1000 + i,
            SocketAddr::from(([127, 0, 0, 1], 9)),
            [i as u8 + 1; 32],
        )
        .unwrap();
    }
    a.set_filter(Some(Arc::new(SlowSends(Duration::from_millis(5)))));
    let round = {
        let a = a.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            a.heartbeat_round_for_test(); // 80 slow sends: ≥ 400 ms
            t.elapsed()
        })
    };
    std::thread::sleep(Duration::from_millis(30));
    // Write access to every entry while the round is sending: with a guard
    // held across the sends this would wait for the whole round.
    let t = Instant::now();
    a.touch_all_entries_for_test();
    let touch = t.elapsed();
    let round = round.join().unwrap();
    assert!(round >= Duration::from_millis(300), "round took {round:?}");
    assert!(
        touch < Duration::from_millis(100),
        "map entries were blocked for {touch:?} by the heartbeat round"
    );
}

#[test]
fn seqcst_accept_start() {
    // accept and start racing on two threads while a direct handshake
    // arrives: the handshake is served exactly once, accept returns it.
    for round in 0..10 {
        let b = Arc::new(node(""));
        let a = node(r#","connect_form":"direct""#);
        let barrier = Arc::new(Barrier::new(2));
        let acceptor = {
            let (b, barrier, id) = (b.clone(), barrier.clone(), a.node_id());
            std::thread::spawn(move || {
                barrier.wait();
                b.accept(id, Some(Duration::from_secs(10)))
            })
        };
        let starter = {
            let (b, barrier) = (b.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                b.start()
            })
        };
        starter.join().unwrap().unwrap();
        wait_until(|| b.accepts_in_flight() == 1, "accept registered");
        a.connect(b.local_addr(), &b.public_key(), b.node_id())
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(acceptor.join().unwrap().unwrap(), a.local_addr());
        assert_eq!(b.peers().len(), 1);
        assert_eq!(b.accepts_in_flight(), 0);
        assert_eq!(b.stat("handshakes_completed"), 1);
    }
}

#[test]
fn atomic_handshake_insert() {
    // Many concurrent handshakes completing for one node_id: exactly one
    // wins, every loser is told.
    let a = Arc::new(node(""));
    for round in 0..20u64 {
        let barrier = Arc::new(Barrier::new(8));
        let wins = Arc::new(AtomicUsize::new(0));
        let losses = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let (a, barrier, wins, losses) =
                    (a.clone(), barrier.clone(), wins.clone(), losses.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    match a.install_session_for_test(
                        5000 + round,
                        SocketAddr::from(([127, 0, 0, 1], 9)),
                        [i + 1; 32],
                    ) {
                        Ok(()) => wins.fetch_add(1, Ordering::SeqCst),
                        Err(MeshError::SessionExists(_)) => losses.fetch_add(1, Ordering::SeqCst),
                        Err(e) => panic!("{e}"),
                    };
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(wins.load(Ordering::SeqCst), 1, "round {round}");
        assert_eq!(losses.load(Ordering::SeqCst), 7);
    }
}

#[test]
fn rekey_refused() {
    let b = node(r#","session_timeout_ms":1000"#);
    b.start().unwrap();
    let mut raw = RawPeer::connect(&b, 0x5EED, &PSK).expect("first handshake");
    // Live (the peer keeps talking): a second handshake for the node_id is
    // refused, with the same static key (NK initiators have none) or from
    // another socket.
    let keepalive = raw.data(1, &[b"alive"], 0);
    raw.send(&keepalive);
    assert!(RawPeer::connect(&b, 0x5EED, &PSK).is_none());
    let keepalive = raw.data(1, &[b"alive"], 0);
    raw.send(&keepalive);
    assert!(
        RawPeer::connect_from(UdpSocket::bind("127.0.0.1:0").unwrap(), &b, 0x5EED, &PSK).is_none()
    );
    assert_eq!(b.stat("handshakes_refused"), 2);
    assert_eq!(b.peers()[0].session_id, raw.session.id());
    // Once the session has been idle past the timeout, re-keying works.
    std::thread::sleep(Duration::from_millis(1100));
    let again = RawPeer::connect(&b, 0x5EED, &PSK).expect("re-key after idle");
    assert_eq!(b.peers()[0].session_id, again.session.id());
    // And connect() to a live session is refused locally.
    let a = node("");
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    assert!(matches!(
        a.connect(b.local_addr(), &b.public_key(), b.node_id()),
        Err(MeshError::SessionExists(_))
    ));
}

/// Records the flags of every data packet on `stream` (the header is
/// plaintext), optionally dropping some to force retransmissions.
struct FlagRecorder {
    stream: u64,
    flags: Mutex<Vec<u8>>,
    drop_every: usize,
    seen: AtomicUsize,
}

impl PacketFilter for FlagRecorder {
    fn outbound(&self, _to: SocketAddr, d: &[u8]) -> Verdict {
        if let Ok(h) = net::wire::NetHeader::decode(d)
            && h.stream_id == self.stream
            && h.subprotocol_id == 0
        {
            self.flags.lock().unwrap().push(h.flags);
            let n = self.seen.fetch_add(1, Ordering::SeqCst);
            if self.drop_every > 0 && n.is_multiple_of(self.drop_every) {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    }
}

#[test]
fn reliable_flag_on_every_sender() {
    for (label, extra) in [
        // 8 KiB datagrams: the 30 kB below are several packets even when a
        // busy writer coalesces everything (a loaded machine).
        ("net peer", r#","large_datagrams":false"#),
        (
            "legacy-style peer",
            r#","hello_timeout_ms":0,"large_datagrams":false"#,
        ),
    ] {
        let a = node(extra);
        let b = node(extra);
        a.connect(b.local_addr(), &b.public_key(), b.node_id())
            .unwrap();
        let rec = Arc::new(FlagRecorder {
            stream: 77,
            flags: Mutex::new(Vec::new()),
            drop_every: 4,
            seen: AtomicUsize::new(0),
        });
        a.set_filter(Some(rec.clone()));
        a.open_stream(b.node_id(), 77, true, None).unwrap();
        a.send(b.node_id(), 77, &[b"send"]).unwrap();
        a.send_blocking(b.node_id(), 77, &[b"blocking"], None)
            .unwrap();
        let many: Vec<Vec<u8>> = (0..300).map(|i| vec![i as u8; 100]).collect();
        a.send_blocking(
            b.node_id(),
            77,
            &many,
            Some(Instant::now() + Duration::from_secs(10)),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300)); // retransmissions, if any
        let flags = rec.flags.lock().unwrap().clone();
        assert!(flags.len() >= 3, "{label}: {} packets", flags.len());
        assert!(
            flags.iter().all(|f| f & net::wire::flags::RELIABLE != 0),
            "{label}: a packet of a reliable stream went without the RELIABLE flag: {flags:?}"
        );
    }
}

#[test]
fn loopback_cap() {
    let a = node(r#","loopback_depth":8"#);
    a.set_loopback_echo(true); // every self-delivery sends itself again
    let started = Instant::now();
    a.send(a.node_id(), 3, &[b"bounce"]).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the self-bounce spun"
    );
    let got = recv_n(&a, 8);
    assert!(
        got.iter()
            .all(|e| e.data == b"bounce" && e.peer == a.node_id())
    );
    assert!(nothing_for(&a, 50), "more than loopback_depth deliveries");
    assert_eq!(a.stat("loopback_dropped"), 1);
}

#[test]
fn addr_to_node_refresh() {
    let b = node("");
    let first = UdpSocket::bind("127.0.0.1:0").unwrap();
    let old_addr = first.local_addr().unwrap();
    let mut raw = RawPeer::connect_from(first, &b, 0xADD2, &PSK).unwrap();
    assert_eq!(b.indexed_node(old_addr), Some(0xADD2));
    let hello = raw.data(1, &[b"from the old address"], 0);
    raw.send(&hello);
    recv_n(&b, 1);
    let scans_before = b.stat("session_scans");

    // The peer moves (NAT rebinding, or a direct path replacing a relayed
    // one): same session, new address.
    raw.sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let new_addr = raw.sock.local_addr().unwrap();
    let moved = raw.data(1, &[b"from the new address"], 0);
    raw.send(&moved);
    assert_eq!(recv_n(&b, 1)[0].data, b"from the new address");
    assert_eq!(
        b.stat("session_scans"),
        scans_before + 1,
        "the first packet finds the session by id"
    );
    assert_eq!(
        b.indexed_node(new_addr),
        Some(0xADD2),
        "index refreshed to the new address"
    );
    assert_eq!(
        b.indexed_node(old_addr),
        None,
        "old address dropped from the index"
    );
    assert_eq!(b.peers()[0].addr, new_addr);
    // Later packets take the fast path again.
    for i in 0..10u8 {
        let p = raw.data(1, &[&[i]], 0);
        raw.send(&p);
    }
    recv_n(&b, 10);
    assert_eq!(b.stat("session_scans"), scans_before + 1);
    // A forged packet from a third address does not move the peer.
    let thief = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut forged = raw.data(1, &[b"steal"], 0);
    forged[70] ^= 1;
    thief.send_to(&forged, b.local_addr()).unwrap();
    assert!(nothing_for(&b, 100));
    assert_eq!(b.peers()[0].addr, new_addr);
    let _ = AtomicBool::new(false);
}

/// The reliability tick looks only at peers whose state changed or whose
/// timer came. A peer that went quiet (identity exchange settled, no
/// streams: the tick no longer visits it) and then opens a reliable stream
/// whose packets are lost still gets them retransmitted, in order, once.
#[test]
fn quiet_peer_still_retransmits() {
    let a = node(r#","large_datagrams":false"#);
    let b = node(r#","large_datagrams":false"#);
    bound_link(&a, &b);
    wait_until(
        || a.tick_scheduled_for_test(b.node_id()) == Some(false),
        "the tick to leave the quiet peer alone",
    );
    let rec = Arc::new(FlagRecorder {
        stream: 78,
        flags: Mutex::new(Vec::new()),
        drop_every: 2,
        seen: AtomicUsize::new(0),
    });
    a.set_filter(Some(rec.clone()));
    a.open_stream(b.node_id(), 78, true, None).unwrap();
    for i in 0..20u8 {
        a.send(b.node_id(), 78, &[&[i; 32][..]]).unwrap();
    }
    let got = recv_n(&b, 20);
    let data: Vec<u8> = got.iter().map(|e| e.data[0]).collect();
    assert_eq!(data, (0..20).collect::<Vec<u8>>());
    assert!(nothing_for(&b, 100), "an event arrived twice");
    // The first data packet was dropped, so its events came by a re-send.
    assert!(rec.seen.load(Ordering::SeqCst) >= 2);
}
