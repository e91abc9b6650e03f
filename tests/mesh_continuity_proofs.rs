//! Continuity proofs between running nodes (issue 16 item 3): a node asks
//! a continuity peer to prove a span of a chain both follow and gets a
//! verdict — consistent when both hold the same history, conflicting when
//! the peer's differs (naming the sequence and both hashes), unavailable
//! with the peer's head when it does not hold the span, unanswered from a
//! peer that never answers; and the asks a node refuses up front.

mod continuity_common;
mod mesh_common;

use std::time::{Duration, Instant};

use continuity_common::{extend, genesis};
use mesh_common::{bound_link, started_node};
use net::compute::CausalEvent;
use net::continuity::Agreement;
use net::mesh::*;

const CHAIN: u64 = 0xC0A1_7000_0000_0002;

fn payloads(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect()
}

fn chain(tag: &str, n: usize) -> Vec<CausalEvent> {
    let owned = payloads(tag, n);
    let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    extend(&genesis(CHAIN), &refs)
}

fn feed(node: &MeshNode, events: &[CausalEvent]) {
    node.follow_chain(CHAIN).unwrap();
    for event in events {
        assert_eq!(
            node.observe_chain_event(event).unwrap(),
            net::continuity::Observation::Extended
        );
    }
}

/// The next ProofChecked on `node`, skipping other events.
fn verdict(node: &MeshNode, within: Duration) -> (u64, u64, u64, ProofVerdict) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no proof verdict within {within:?}");
        match node.next_continuity_event(Some(left)) {
            Ok(ContinuityEvent::ProofChecked {
                peer,
                from_seq,
                to_seq,
                verdict,
                ..
            }) => return (peer, from_seq, to_seq, verdict),
            Ok(_) | Err(MeshError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_peer_proves_the_same_history_and_a_different_one_conflicts() {
    let a = started_node("");
    let b = started_node("");
    let c = started_node("");
    bound_link(&a, &b);
    bound_link(&a, &c);
    let shared = chain("shared", 40);
    feed(&a, &shared);
    feed(&b, &shared);
    // c's history parts from a's after event 30.
    let mut parted = shared[..30].to_vec();
    let tail: Vec<Vec<u8>> = payloads("other", 10);
    let refs: Vec<&[u8]> = tail.iter().map(Vec::as_slice).collect();
    parted.extend(extend(&shared[29], &refs));
    feed(&c, &parted);

    a.request_continuity_proof(b.node_id(), CHAIN, 5, 40)
        .unwrap();
    let (peer, from, to, v) = verdict(&a, Duration::from_secs(10));
    assert_eq!((peer, from, to), (b.node_id(), 5, 40));
    assert_eq!(v, ProofVerdict::Checked(Agreement::Consistent));

    // Both agree up to 30; at 35 they differ.
    a.request_continuity_proof(c.node_id(), CHAIN, 1, 30)
        .unwrap();
    assert_eq!(
        verdict(&a, Duration::from_secs(10)).3,
        ProofVerdict::Checked(Agreement::Consistent)
    );
    a.request_continuity_proof(c.node_id(), CHAIN, 10, 35)
        .unwrap();
    let (peer, _, _, v) = verdict(&a, Duration::from_secs(10));
    assert_eq!(peer, c.node_id());
    let ours = shared[34].link.chain_hash(&shared[34].payload);
    let theirs = parted[34].link.chain_hash(&parted[34].payload);
    assert_ne!(ours, theirs);
    assert_eq!(
        v,
        ProofVerdict::Checked(Agreement::Conflicts {
            seq: 35,
            ours,
            theirs
        })
    );
    // The JSON form the SDKs read.
    let event = ContinuityEvent::ProofChecked {
        peer,
        origin: CHAIN,
        from_seq: 10,
        to_seq: 35,
        verdict: v,
    };
    let json = event.to_json();
    assert_eq!(json["type"], "proof_checked");
    assert_eq!(json["verdict"], "conflicts");
    assert_eq!(json["seq"], 35);
    for n in [a, b, c] {
        n.shutdown();
    }
}

#[test]
fn a_span_the_peer_lacks_comes_back_with_its_head_and_bad_asks_are_refused() {
    let a = started_node("");
    let b = started_node("");
    bound_link(&a, &b);
    let events = chain("e", 50);
    feed(&a, &events);
    feed(&b, &events[..20]);

    a.request_continuity_proof(b.node_id(), CHAIN, 10, 45)
        .unwrap();
    let (peer, from, to, v) = verdict(&a, Duration::from_secs(10));
    assert_eq!((peer, from, to), (b.node_id(), 10, 45));
    let last = &events[19];
    assert_eq!(
        v,
        ProofVerdict::Unavailable {
            their_head: net::continuity::ChainPoint {
                origin: CHAIN,
                seq: 20,
                hash: last.link.chain_hash(&last.payload),
            }
        }
    );

    let refused = |r: Result<(), MeshError>| match r {
        Err(MeshError::Continuity(e)) => e,
        other => panic!("expected a continuity error, got {other:?}"),
    };
    assert!(matches!(
        refused(a.request_continuity_proof(b.node_id(), CHAIN, 9, 8)),
        ContinuityError::InvalidProofRange { .. }
    ));
    assert!(matches!(
        refused(a.request_continuity_proof(b.node_id(), CHAIN, 0, 100_000)),
        ContinuityError::InvalidProofRange { .. }
    ));
    assert!(matches!(
        refused(a.request_continuity_proof(b.node_id(), 7, 0, 1)),
        ContinuityError::NotFollowed(7)
    ));
    assert!(matches!(
        refused(a.request_continuity_proof(0xDEAD, CHAIN, 0, 1)),
        ContinuityError::NotContinuityPeer(0xDEAD)
    ));
    for n in [a, b] {
        n.shutdown();
    }
}

#[test]
fn a_peer_without_continuity_cannot_be_asked_and_a_silent_one_goes_unanswered() {
    let a = started_node("");
    let off = started_node(r#","continuity":false"#);
    let quiet = started_node("");
    bound_link(&a, &off);
    bound_link(&a, &quiet);
    feed(&a, &chain("e", 5));
    assert!(matches!(
        a.request_continuity_proof(off.node_id(), CHAIN, 1, 5),
        Err(MeshError::Continuity(ContinuityError::NotContinuityPeer(_)))
    ));
    // `quiet` runs continuity but does not follow the chain: it has
    // nothing to answer with, and the ask runs out of retries.
    a.request_continuity_proof(quiet.node_id(), CHAIN, 1, 5)
        .unwrap();
    let (peer, _, _, v) = verdict(&a, Duration::from_secs(30));
    assert_eq!(peer, quiet.node_id());
    assert_eq!(v, ProofVerdict::Unanswered);
    for n in [a, off, quiet] {
        n.shutdown();
    }
}
