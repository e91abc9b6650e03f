//! `connect_direct` on running nodes over loopback (the real NATs are in
//! `nat_nodes.rs`): a relayed session moves to a direct path through one
//! rendezvous while a reliable stream runs on it — nothing lost, nothing
//! twice, in order — and afterwards the relay forwards nothing more; a
//! node with no session gets a direct one; a bad coordinator is refused.

mod mesh_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mesh_common::{bound_link, is_bound, recv_n, started_node, wait_until};
use net::mesh::*;

fn relay_of(n: &MeshNode, peer: u64) -> Option<Option<u64>> {
    n.peers()
        .into_iter()
        .find(|p| p.node_id == peer)
        .map(|p| p.relay)
}

fn forwarded(n: &MeshNode) -> u64 {
    let routes: serde_json::Value = serde_json::from_str(&n.routes_json()).unwrap();
    routes["forwarding"]["forwarded"].as_u64().unwrap()
}

#[test]
fn a_relayed_session_moves_to_a_direct_path_with_a_stream_in_flight() {
    let (a, r, b) = (
        Arc::new(started_node("")),
        started_node(""),
        Arc::new(started_node("")),
    );
    bound_link(&a, &r);
    bound_link(&b, &r);
    a.connect_via(r.node_id(), &b.public_key(), b.node_id(), None)
        .unwrap();
    wait_until(
        || is_bound(&a, b.node_id()) && is_bound(&b, a.node_id()),
        "a bound relayed session",
    );
    assert_eq!(relay_of(&a, b.node_id()), Some(Some(r.node_id())));

    // A reliable stream runs before, during and after the move: the
    // sender signals once 200 events are out, keeps sending while the
    // path changes, and sends 500 more once it has changed.
    a.open_stream(b.node_id(), 9, true, None).unwrap();
    let moved = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let sender = {
        let (a, peer, moved) = (a.clone(), b.node_id(), moved.clone());
        std::thread::spawn(move || {
            let mut after = 0u32;
            let mut i = 0u32;
            while after < 500 {
                a.send_blocking(
                    peer,
                    9,
                    &[i.to_le_bytes()],
                    Some(Instant::now() + Duration::from_secs(20)),
                )
                .unwrap();
                i += 1;
                if i == 200 {
                    started_tx.send(()).unwrap();
                }
                if moved.load(Ordering::SeqCst) {
                    after += 1;
                }
            }
            i
        })
    };
    // b reads as an application would (credit follows consumption), until
    // it has what the sender reports it sent.
    let expected = Arc::new(AtomicU32::new(0));
    let reader = {
        let (b, expected) = (b.clone(), expected.clone());
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let want = expected.load(Ordering::SeqCst) as usize;
                if want > 0 && got.len() >= want {
                    return got;
                }
                assert!(Instant::now() < deadline, "got {} events", got.len());
                if let Ok(mut events) = b.recv(4096, Some(Duration::from_millis(50))) {
                    got.append(&mut events);
                }
            }
        })
    };
    started_rx.recv().unwrap();
    let outcome = a
        .connect_direct(b.node_id(), &b.public_key(), r.node_id(), None)
        .unwrap();
    moved.store(true, Ordering::SeqCst);
    assert_eq!(outcome, DirectOutcome::Direct);
    assert_eq!(relay_of(&a, b.node_id()), Some(None));
    wait_until(|| relay_of(&b, a.node_id()) == Some(None), "b moved too");
    let total = sender.join().unwrap();
    expected.store(total, Ordering::SeqCst);
    let got = reader.join().unwrap();
    let seqs: Vec<u32> = got
        .iter()
        .map(|e| u32::from_le_bytes(e.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(seqs, (0..total).collect::<Vec<_>>(), "in order, once each");
    assert_eq!(a.punch_stats().punches_succeeded, 1);
    let s: serde_json::Value = serde_json::from_str(&a.stats_json()).unwrap();
    assert_eq!(s["paths_upgraded"], 1);

    // The relay is out of the path now.
    let before = forwarded(&r);
    a.send_blocking(b.node_id(), 9, &[b"after".as_slice()], None)
        .unwrap();
    assert_eq!(recv_n(&b, 1)[0].data, b"after");
    b.open_stream(a.node_id(), 10, true, None).unwrap();
    b.send_blocking(a.node_id(), 10, &[b"back".as_slice()], None)
        .unwrap();
    assert_eq!(recv_n(&a, 1)[0].data, b"back");
    assert_eq!(forwarded(&r), before, "nothing went through the relay");
    // Already direct: nothing to do.
    assert_eq!(
        a.connect_direct(b.node_id(), &b.public_key(), r.node_id(), None)
            .unwrap(),
        DirectOutcome::Direct
    );
}

#[test]
fn without_a_session_connect_direct_punches_and_handshakes_directly() {
    let (a, r, b) = (started_node(""), started_node(""), started_node(""));
    bound_link(&a, &r);
    bound_link(&b, &r);
    let outcome = a
        .connect_direct(b.node_id(), &b.public_key(), r.node_id(), None)
        .unwrap();
    assert_eq!(outcome, DirectOutcome::Direct);
    assert_eq!(relay_of(&a, b.node_id()), Some(None));
    a.send(b.node_id(), 4, &[b"hi".as_slice()]).unwrap();
    assert_eq!(recv_n(&b, 1)[0].data, b"hi");
}

#[test]
fn a_coordinator_that_is_no_direct_peer_is_refused() {
    let (a, b) = (started_node(""), started_node(""));
    let err = a
        .connect_direct(b.node_id(), &b.public_key(), 0x1234, None)
        .unwrap_err();
    assert!(matches!(err, MeshError::NoRoute(0x1234)), "{err}");
    assert!(matches!(
        a.connect_direct(a.node_id(), &a.public_key(), 0x1234, None),
        Err(MeshError::SelfConnect)
    ));
}
