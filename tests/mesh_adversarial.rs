//! Hostile input against a live node over UDP: replays, old counters,
//! forged / truncated / wrong-version packets, a wrong PSK, a node_id
//! hijack while a session is live, unknown sessions, a flood of
//! unsolicited handshakes, oversized datagrams. Every one is rejected (and
//! counted), and none crashes or stalls the node: legitimate traffic keeps
//! flowing throughout.

mod mesh_common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use mesh_common::*;

#[test]
fn replays_old_counters_forgeries_and_garbage_are_rejected() {
    let b = node("");
    b.start().unwrap();
    let mut raw = RawPeer::connect(&b, 0xAAAA_0001, &PSK).expect("handshake");

    let good = raw.data(1, &[b"first"], 0);
    raw.send(&good);
    assert_eq!(recv_n(&b, 1)[0].data, b"first");

    // The same packet again: a replay.
    raw.send(&good);
    assert!(nothing_for(&b, 100));
    assert_eq!(b.stat("replays"), 1);

    // Move the window far ahead, then an old counter.
    let mut last = Vec::new();
    for i in 0..1100u32 {
        last = raw.data(1, &[&i.to_le_bytes()], 0);
        raw.send(&last);
        if i % 200 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let got = recv_n(&b, 1100);
    assert_eq!(got.len(), 1100);
    raw.send(&good); // counter 0: far older than the window
    raw.send(&last); // the newest again
    assert!(nothing_for(&b, 100));
    assert_eq!(b.stat("replays"), 3);

    // Forged: any flipped bit outside hop_count and the nonce prefix.
    for at in [3usize, 8, 32, 40, 60, 70] {
        let mut forged = raw.data(1, &[b"forged"], 0);
        let at = at.min(forged.len() - 1);
        forged[at] ^= 0x01;
        raw.send(&forged);
    }
    let mut bad_tag = raw.data(1, &[b"bad tag"], 0);
    let n = bad_tag.len();
    bad_tag[n - 1] ^= 0x80;
    raw.send(&bad_tag);
    // Truncated, wrong version, random bytes, empty.
    let whole = raw.data(1, &[b"truncated"], 0);
    raw.send(&whole[..whole.len() - 3]);
    raw.send(&whole[..40]);
    let mut wrong_version = raw.data(1, &[b"v2"], 0);
    wrong_version[2] = 2;
    raw.send(&wrong_version);
    raw.send(&[0x45, 0x4e, 1]);
    raw.send(b"definitely not a packet");
    raw.send(&[]);
    assert!(nothing_for(&b, 150));
    assert!(b.stat("auth_failures") >= 7, "{}", b.stats_json());
    assert!(b.stat("malformed") >= 3, "{}", b.stats_json());

    // Still alive and in order.
    let after = raw.data(1, &[b"after the storm"], 0);
    raw.send(&after);
    assert_eq!(recv_n(&b, 1)[0].data, b"after the storm");
}

#[test]
fn wrong_psk_and_unknown_sessions_are_ignored() {
    let b = node("");
    b.start().unwrap();
    assert!(RawPeer::connect(&b, 0xBAD, &[0x11; 32]).is_none());
    assert!(b.peers().is_empty());
    assert!(b.stat("handshakes_failed") >= 1);

    // A well-formed packet of a session b never had.
    let other = node("");
    let mut raw = RawPeer::connect(&other, 0xC0FFEE, &PSK).unwrap();
    let stray = raw.data(1, &[b"not yours"], 0);
    raw.sock.send_to(&stray, b.local_addr()).unwrap();
    assert!(nothing_for(&b, 100));
    assert_eq!(b.stat("unknown_session"), 1);
}

#[test]
fn a_hijacked_node_id_never_replaces_the_live_session() {
    let a = node("");
    let b = node("");
    a.start().unwrap();
    b.start().unwrap();
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    let session = b.peers()[0].session_id;
    // `connect` returns once a is bound; b is once a's answer reaches it.
    wait_until(|| b.peers()[0].identity == "net", "b binds a");
    // Attackers with the PSK claim a's node_id, each under its own
    // ephemeral. a's session is bound, so each is answered as a candidate
    // (a restarted a would be), one at a time: a newer one supersedes the
    // older, and none can prove a's entity.
    let mut attackers: Vec<RawPeer> = (0..5)
        .map(|_| RawPeer::connect(&b, a.node_id(), &PSK).expect("answered as a candidate"))
        .collect();
    assert_eq!(b.stat("session_candidates"), 5);
    assert!(b.stats_json().contains(r#""candidates_held":1"#));
    // Data on a candidate's session is never delivered.
    for attacker in &mut attackers {
        let forged = attacker.data(1, &[b"forged"], 0);
        attacker.send(&forged);
    }
    // The last one expires without a hello (hello_timeout).
    wait_until(|| b.stat("candidates_dropped") == 5, "candidates dropped");
    assert_eq!(b.stat("sessions_replaced"), 0);
    // a's session is untouched.
    assert_eq!(b.peers()[0].session_id, session);
    a.send(b.node_id(), 1, &[b"still mine"]).unwrap();
    let got = recv_n(&b, 1);
    assert_eq!(
        (got[0].peer, got[0].data.as_slice()),
        (a.node_id(), &b"still mine"[..])
    );
    assert!(nothing_for(&b, 100));
}

#[test]
fn a_flood_of_unsolicited_handshakes_neither_crashes_nor_stalls() {
    let a = node("");
    let b = node(r#","max_pending_handshakes":64"#);
    a.start().unwrap();
    b.start().unwrap();
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let mut delivered = 0;
    for round in 0..20u64 {
        for i in 0..250u64 {
            // Valid-looking routed msg1s with the wrong PSK, and garbage.
            let init = net::mesh::Initiator::new(
                net::mesh::HandshakeForm::Routed,
                &[0x33; 32],
                round * 1000 + i + 1,
                b.node_id(),
                &b.public_key(),
            )
            .unwrap();
            let _ = flood.send_to(init.msg1(), b.local_addr());
        }
        a.send(b.node_id(), 2, &[round.to_le_bytes()]).unwrap();
        if let Ok(events) = b.recv(10, Some(Duration::from_millis(200))) {
            delivered += events.len();
        }
    }
    delivered += b
        .recv(100, Some(Duration::from_millis(500)))
        .map_or(0, |e| e.len());
    assert!(
        delivered >= 18,
        "legitimate traffic stalled: {delivered}/20 delivered"
    );
    assert!(b.stat("handshakes_throttled") > 0, "{}", b.stats_json());
    assert_eq!(b.peers().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn oversized_datagrams_are_dropped() {
    let b = node("");
    let mut raw = RawPeer::connect(&b, 0xB16, &PSK).unwrap();
    let mut huge = raw.data(1, &[&[0u8; 8000]], 0);
    huge.resize(9000, 0);
    raw.send(&huge);
    raw.send(&vec![0x45u8; 60_000]);
    assert!(nothing_for(&b, 100));
    assert_eq!(b.stat("oversized"), 2);
    let fine = raw.data(1, &[b"fine"], 0);
    raw.send(&fine);
    assert_eq!(recv_n(&b, 1)[0].data, b"fine");
}
