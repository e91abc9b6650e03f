//! Two (or more) mesh nodes over real UDP on 127.0.0.1: handshakes in both
//! forms, events both ways, credit, reliable streams under loss /
//! reordering / duplication / partitions, fire-and-forget streams under
//! loss, identity binding.

use std::sync::Arc;
use std::time::{Duration, Instant};

use net::mesh::*;

const PSK: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// A node with test timings; `extra` is `,"key":value...` overriding them.
fn node(extra: &str) -> MeshNode {
    let mut config: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&format!(
        r#"{{"psk_hex":"{PSK}","heartbeat_interval_ms":50,"session_timeout_ms":400,"hello_timeout_ms":500}}"#
    ))
    .unwrap();
    let overrides: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&format!("{{{}}}", extra.trim_start_matches(','))).unwrap();
    config.extend(overrides);
    let json = serde_json::Value::Object(config).to_string();
    MeshNode::new(MeshConfig::from_json(&json).unwrap()).unwrap()
}

fn pair(extra: &str) -> (MeshNode, MeshNode) {
    let a = node(extra);
    let b = node(extra);
    a.start().unwrap();
    b.start().unwrap();
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    wait_until(|| !b.peers().is_empty(), "b sees a");
    (a, b)
}

fn wait_until(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Receives `n` events (panics after 20 s).
fn recv_n(node: &MeshNode, n: usize) -> Vec<InboundEvent> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        assert!(Instant::now() < deadline, "got {} of {n} events", out.len());
        if let Ok(mut events) = node.recv(n - out.len(), Some(Duration::from_millis(100))) {
            out.append(&mut events);
        }
    }
    out
}

#[test]
fn routed_handshake_and_events_both_ways() {
    let (a, b) = pair("");
    a.open_stream(b.node_id(), 7, false, None).unwrap();
    a.send(b.node_id(), 7, &[&b"hello"[..], &b"from a"[..]])
        .unwrap();
    let got = recv_n(&b, 2);
    assert_eq!(got[0].data, b"hello");
    assert_eq!(got[1].data, b"from a");
    assert_eq!((got[0].peer, got[0].stream_id), (a.node_id(), 7));
    b.send(a.node_id(), 9, &[b"back"]).unwrap();
    let got = recv_n(&a, 1);
    assert_eq!(
        (got[0].peer, got[0].stream_id, got[0].data.as_slice()),
        (b.node_id(), 9, &b"back"[..])
    );
    // Both sides bound identities.
    wait_until(
        || a.peers()[0].identity == "net" && b.peers()[0].identity == "net",
        "binding",
    );
    assert_eq!(a.peers()[0].entity, Some(b.entity_id()));
    assert_eq!(b.peers()[0].entity, Some(a.entity_id()));
}

#[test]
fn direct_handshake_with_accept_after_start() {
    let a = node(r#","connect_form":"direct""#);
    let b = node("");
    b.start().unwrap(); // accepting is not tied to start-up
    let b_clone_id = a.node_id();
    let b = Arc::new(b);
    let acceptor = {
        let b = b.clone();
        std::thread::spawn(move || b.accept(b_clone_id, Some(Duration::from_secs(10))))
    };
    wait_until(|| b.accepts_in_flight() == 1, "accept registered");
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    let addr = acceptor.join().unwrap().unwrap();
    assert_eq!(addr, a.local_addr());
    a.send(b.node_id(), 1, &[b"direct"]).unwrap();
    assert_eq!(recv_n(&b, 1)[0].data, b"direct");
}

#[test]
fn wrong_psk_gets_no_session() {
    let a = node(r#","handshake_timeout_ms":100,"handshake_retries":2"#);
    let b = MeshNode::new(MeshConfig::default()).unwrap(); // random PSK
    let err = a
        .connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap_err();
    assert!(
        matches!(err, MeshError::HandshakeTimeout { attempts: 2, .. }),
        "{err}"
    );
    assert!(b.peers().is_empty());
    assert!(b.stat("handshakes_failed") >= 2);
}

#[test]
fn credit_window_backpressure_and_blocking_send() {
    let (a, b) = pair(r#","window":1000"#);
    a.open_stream(b.node_id(), 3, false, Some(1000)).unwrap();
    // 900 bytes + 4 framing + 80 = 984 fits; a second does not until granted.
    let big = vec![7u8; 900];
    a.send(b.node_id(), 3, &[&big]).unwrap();
    match a.send(b.node_id(), 3, &[&big]) {
        Err(MeshError::Backpressure(bp)) => assert_eq!(bp.needed, 984),
        Ok(()) => {} // the grant may already have come back
        Err(e) => panic!("{e}"),
    }
    // A batch bigger than the window can never go at once.
    assert!(matches!(
        a.send(b.node_id(), 3, &[&big, &big]),
        Err(MeshError::BatchExceedsWindow { .. })
    ));
    // send_blocking waits for grants packet by packet; the grants come as
    // the reader takes the events.
    let b = Arc::new(b);
    let reader = {
        let b = b.clone();
        std::thread::spawn(move || recv_n(&b, 4).len())
    };
    let r = a.send_blocking(
        b.node_id(),
        3,
        &[&big, &big, &big],
        Some(Instant::now() + Duration::from_secs(5)),
    );
    if r.is_err() {
        eprintln!("a: {}\nb: {}", a.stats_json(), b.stats_json());
    }
    r.unwrap();
    assert!(reader.join().unwrap() >= 4);
}

#[test]
fn reliable_stream_delivers_in_order_exactly_once_under_loss_reorder_duplication() {
    let (a, b) = pair("");
    wait_until(|| a.peers()[0].identity == "net", "binding");
    let filter: Arc<dyn PacketFilter> = Arc::new(NetemFilter::new(
        0.20,
        0.05,
        0.10,
        Duration::from_millis(15),
        42,
    ));
    a.set_filter(Some(filter.clone()));
    b.set_filter(Some(Arc::new(NetemFilter::new(
        0.20,
        0.05,
        0.10,
        Duration::from_millis(15),
        7,
    ))));
    a.open_stream(b.node_id(), 5, true, None).unwrap();
    let n = 2000u32;
    // Credit comes back as the reader takes events: read meanwhile.
    let b = Arc::new(b);
    let reader = {
        let b = b.clone();
        std::thread::spawn(move || recv_n(&b, n as usize))
    };
    for i in 0..n {
        // 200-byte events: 400 KB spread over dozens of packets even when
        // coalesced, so 20 % loss always hits some and forces retransmits.
        let mut event = [0u8; 200];
        event[..4].copy_from_slice(&i.to_le_bytes());
        a.send_blocking(
            b.node_id(),
            5,
            &[&event],
            Some(Instant::now() + Duration::from_secs(20)),
        )
        .unwrap();
    }
    let got = reader.join().unwrap();
    let seq: Vec<u32> = got
        .iter()
        .map(|e| u32::from_le_bytes(e.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(seq, (0..n).collect::<Vec<_>>(), "in order, exactly once");
    // Nothing more trickles in (no duplicates).
    assert!(matches!(
        b.recv(1, Some(Duration::from_millis(300))),
        Err(MeshError::Timeout)
    ));
    assert!(a.stat("retransmits") > 0);
}

#[test]
fn reliable_stream_survives_a_partition() {
    let (a, b) = pair(r#","session_timeout_ms":5000"#);
    wait_until(|| a.peers()[0].identity == "net", "binding");
    let cut = Arc::new(NetemFilter::new(0.0, 0.0, 0.0, Duration::ZERO, 1));
    a.set_filter(Some(cut.clone()));
    a.open_stream(b.node_id(), 8, true, Some(0)).unwrap();
    a.send(b.node_id(), 8, &[b"before"]).unwrap();
    assert_eq!(recv_n(&b, 1)[0].data, b"before");
    cut.partition(true);
    for i in 0..50u8 {
        a.send(b.node_id(), 8, &[[i]]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(matches!(
        b.recv(1, Some(Duration::ZERO)),
        Err(MeshError::Timeout)
    ));
    cut.partition(false);
    let got = recv_n(&b, 50);
    assert_eq!(
        got.iter().map(|e| e.data[0]).collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
}

#[test]
fn fire_and_forget_under_loss_never_stalls() {
    let (a, b) = pair(r#","window":0"#);
    a.set_filter(Some(Arc::new(NetemFilter::new(
        0.2,
        0.1,
        0.1,
        Duration::from_millis(5),
        3,
    ))));
    a.open_stream(b.node_id(), 2, false, Some(0)).unwrap();
    // 1000-byte events: single sends share datagrams (eight to a packet),
    // so loss is per packet; 125+ packets keep the count statistical.
    for i in 0..1000u32 {
        let mut e = vec![0u8; 1000];
        e[..4].copy_from_slice(&i.to_le_bytes());
        a.send(b.node_id(), 2, &[e]).unwrap();
    }
    let mut got = 0;
    while let Ok(events) = b.recv(1000, Some(Duration::from_millis(300))) {
        got += events.len();
    }
    assert!(
        got > 500 && got < 1300,
        "{got} events arrived: {}",
        a.stats_json()
    );
    // The stream keeps working afterwards.
    a.set_filter(None);
    a.send(b.node_id(), 2, &[b"still here"]).unwrap();
    assert_eq!(recv_n(&b, 1)[0].data, b"still here");
    // Window 0 is unlimited: no grants are ever sent (WIRE.md §7.2).
    assert_eq!(b.stat("grants_sent"), 0);
}

#[test]
fn grants_are_coalesced_and_every_byte_is_credited_back() {
    // 64 KiB windows: a grant at least every 16 KiB consumed, the
    // remainder within one reliability tick, so the sender ends with its
    // whole window back.
    let (a, b) = pair(r#","window":65536"#);
    a.open_stream(b.node_id(), 5, false, None).unwrap();
    let event = vec![1u8; 1000];
    let deadline = Some(Instant::now() + Duration::from_secs(10));
    let b = Arc::new(b);
    let reader = {
        let b = b.clone();
        std::thread::spawn(move || recv_n(&b, 200).len())
    };
    for _ in 0..200 {
        a.send_blocking(b.node_id(), 5, &[&event], deadline)
            .unwrap();
    }
    assert_eq!(reader.join().unwrap(), 200);
    let grants = b.stat("grants_sent");
    assert!(
        grants > 0 && grants < 200,
        "{grants} grants for 200 packets"
    );
    // All credit returns: a window-sized batch goes at once.
    let fill: Vec<Vec<u8>> = (0..60).map(|_| vec![2u8; 1000]).collect();
    wait_until(
        || a.send(b.node_id(), 5, &fill).is_ok(),
        "the whole window credited back",
    );
}

#[test]
fn small_events_are_batched_into_packets() {
    // Reliable, so that a burst overflowing the kernel's socket buffer is
    // repaired rather than lost.
    let (a, b) = pair(r#","window":0"#);
    wait_until(|| a.peers()[0].identity == "net", "binding");
    a.open_stream(b.node_id(), 4, true, Some(0)).unwrap();
    let events: Vec<[u8; 64]> = (0..10_000).map(|i| [i as u8; 64]).collect();
    let before = a.stat("datagrams_sent");
    a.send(b.node_id(), 4, &events).unwrap();
    let sent = a.stat("datagrams_sent") - before;
    assert!(sent < 100, "{sent} datagrams for 10 000 small events");
    let got = recv_n(&b, 10_000);
    assert!(got.iter().enumerate().all(|(i, e)| e.data == [i as u8; 64]));
}

#[test]
fn loopback_send_is_delivered_and_capped() {
    let a = node(r#","loopback_depth":8"#);
    a.send(a.node_id(), 1, &[b"to myself"]).unwrap();
    let got = recv_n(&a, 1);
    assert_eq!(
        (got[0].peer, got[0].data.as_slice()),
        (a.node_id(), &b"to myself"[..])
    );
}

#[test]
fn shutdown_wakes_blocked_calls() {
    let a = Arc::new(node(""));
    let r = {
        let a = a.clone();
        std::thread::spawn(move || a.recv(1, None))
    };
    let acc = {
        let a = a.clone();
        std::thread::spawn(move || a.accept(12345, None))
    };
    // Both calls are really waiting before the shutdown.
    wait_until(
        || a.receivers_waiting() == 1 && a.accepts_in_flight() == 1,
        "the receive and the accept block",
    );
    a.shutdown();
    assert!(matches!(r.join().unwrap(), Err(MeshError::ShuttingDown)));
    assert!(matches!(acc.join().unwrap(), Err(MeshError::ShuttingDown)));
    assert!(matches!(
        a.send(1, 1, &[b"x"]),
        Err(MeshError::ShuttingDown)
    ));
}

#[test]
fn peers_and_stats_json() {
    let (a, b) = pair("");
    let peers: serde_json::Value = serde_json::from_str(&a.peers_json()).unwrap();
    assert_eq!(peers[0]["node_id"].as_u64(), Some(b.node_id()));
    assert_eq!(peers[0]["health"], "alive");
    let stats: serde_json::Value = serde_json::from_str(&a.stats_json()).unwrap();
    assert_eq!(stats["handshakes_completed"].as_u64(), Some(1));
}
