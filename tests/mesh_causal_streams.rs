//! Causal streams followed by the node itself (issue 16 item 3): events
//! sent on a causal stream (subprotocol 0x0400) are checked by every node
//! that follows their chain, the sender included, without the application
//! handing them over; each chain is proved against the peer it came from
//! every `proof_interval`; a source whose history differs from what it
//! sent is reported as conflicting; the application receives every event
//! unchanged, malformed ones included.

mod continuity_common;
mod mesh_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use continuity_common::{extend, genesis};
use mesh_common::{bound_link, recv_n, started_node, wait_until};
use net::compute::CausalEvent;
use net::continuity::Agreement;
use net::cortex::causal::encode_frame;
use net::mesh::*;

const CHAIN: u64 = 0xC0A1_5700_0000_0001;
const OTHER: u64 = 0xC0A1_5700_0000_0002;
const STREAM: u64 = 41;
const FAST_PROOFS: &str = r#","proof_interval_ms":100"#;

fn chain_of(origin: u64, tag: &str, n: usize) -> Vec<CausalEvent> {
    let owned: Vec<Vec<u8>> = (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    extend(&genesis(origin), &refs)
}

/// One mesh event per causal event (a single frame each).
fn framed(events: &[CausalEvent]) -> Vec<Vec<u8>> {
    events
        .iter()
        .map(|e| {
            let mut body = Vec::new();
            encode_frame(&mut body, &e.link, &e.payload).unwrap();
            body
        })
        .collect()
}

fn status(node: &MeshNode, origin: u64) -> ChainStatusInfo {
    node.continuity_status()
        .into_iter()
        .find(|c| c.origin == origin)
        .expect("the chain is followed")
}

/// The next ProofChecked on `node` for `origin`, skipping other events.
fn next_verdict(node: &MeshNode, origin: u64) -> (u64, u64, u64, ProofVerdict) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no proof verdict");
        match node.next_continuity_event(Some(left)) {
            Ok(ContinuityEvent::ProofChecked {
                peer,
                origin: o,
                from_seq,
                to_seq,
                verdict,
            }) if o == origin => return (peer, from_seq, to_seq, verdict),
            Ok(_) | Err(MeshError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_reliable_causal_stream_is_followed_and_proved_without_the_application() {
    let a = started_node(FAST_PROOFS);
    let b = started_node(FAST_PROOFS);
    bound_link(&a, &b);
    a.follow_chain(CHAIN).unwrap();
    b.follow_chain(CHAIN).unwrap();
    a.open_causal_stream(b.node_id(), STREAM, true, None)
        .unwrap();
    let events = chain_of(CHAIN, "e", 300);
    let bodies = framed(&events);
    // In several sends, so the proofs see the head move.
    for part in bodies.chunks(50) {
        a.send_blocking(
            b.node_id(),
            STREAM,
            part,
            Some(Instant::now() + Duration::from_secs(10)),
        )
        .unwrap();
    }
    // The application gets the events as sent, and the node had checked
    // each one before handing it over.
    let got = recv_n(&b, bodies.len());
    for (event, body) in got.iter().zip(&bodies) {
        assert_eq!(&event.data[..], &body[..]);
    }
    let seen = status(&b, CHAIN);
    assert_eq!(seen.head.seq, 300);
    assert_eq!(
        seen.head.hash,
        events[299].link.chain_hash(&events[299].payload)
    );
    assert!(seen.broken.is_none());
    assert_eq!(seen.source, Some(a.node_id()));
    // The sender followed its own chain as it sent it.
    assert_eq!(status(&a, CHAIN).head.seq, 300);
    // The node proves the chain against its source by itself until the
    // head is settled.
    loop {
        let (peer, _, to, verdict) = next_verdict(&b, CHAIN);
        assert_eq!(peer, a.node_id());
        assert_eq!(verdict, ProofVerdict::Checked(Agreement::Consistent));
        if to == 300 {
            break;
        }
    }
    assert_eq!(status(&b, CHAIN).proved_to, 300);
    assert_eq!(b.stat("causal_malformed"), 0);
    for n in [a, b] {
        n.shutdown();
    }
}

#[test]
fn a_reliable_causal_stream_is_checked_in_stream_order_under_loss_and_reordering() {
    let a = started_node(r#","session_timeout_ms":5000"#);
    let b = started_node(r#","session_timeout_ms":5000"#);
    bound_link(&a, &b);
    b.follow_chain(CHAIN).unwrap();
    // Loss, duplication and reordering both ways (data and acks): the
    // packets arrive out of order, the node checks them as released.
    for (node, seed) in [(&a, 7), (&b, 8)] {
        node.set_filter(Some(Arc::new(NetemFilter::new(
            0.15,
            0.05,
            0.15,
            Duration::from_millis(20),
            seed,
        ))));
    }
    a.open_causal_stream(b.node_id(), STREAM, true, None)
        .unwrap();
    let bodies = framed(&chain_of(CHAIN, "r", 400));
    for body in &bodies {
        a.send_blocking(
            b.node_id(),
            STREAM,
            &[body],
            Some(Instant::now() + Duration::from_secs(30)),
        )
        .unwrap();
    }
    let got = recv_n(&b, bodies.len());
    assert!(
        got.iter()
            .zip(&bodies)
            .all(|(e, body)| e.data[..] == body[..])
    );
    let seen = status(&b, CHAIN);
    assert!(seen.broken.is_none(), "a break: {:?}", seen.broken);
    assert_eq!(seen.head.seq, 400);
    assert!(a.stat("retransmits") > 0, "the filter lost packets");
    for n in [a, b] {
        n.set_filter(None);
        n.shutdown();
    }
}

#[test]
fn a_source_whose_history_differs_from_what_it_sent_conflicts() {
    let a = started_node(FAST_PROOFS);
    let b = started_node(FAST_PROOFS);
    bound_link(&a, &b);
    // a's own history of the chain is one branch; it sends another.
    let held = chain_of(CHAIN, "held", 20);
    a.follow_chain(CHAIN).unwrap();
    for event in &held {
        a.observe_chain_event(event).unwrap();
    }
    b.follow_chain(CHAIN).unwrap();
    a.open_causal_stream(b.node_id(), STREAM, true, None)
        .unwrap();
    let sent = chain_of(CHAIN, "sent", 20);
    a.send_blocking(
        b.node_id(),
        STREAM,
        &framed(&sent),
        Some(Instant::now() + Duration::from_secs(10)),
    )
    .unwrap();
    recv_n(&b, 20);
    let (peer, from, to, verdict) = next_verdict(&b, CHAIN);
    assert_eq!((peer, from, to), (a.node_id(), 0, 20));
    let ours = sent[19].link.chain_hash(&sent[19].payload);
    let theirs = held[19].link.chain_hash(&held[19].payload);
    assert_eq!(
        verdict,
        ProofVerdict::Checked(Agreement::Conflicts {
            seq: 20,
            ours,
            theirs
        })
    );
    let after = status(&b, CHAIN);
    assert!(after.proof_conflicted);
    assert_eq!(after.proved_to, 0);
    assert_eq!(after.to_json()["proof_conflicted"], true);
    for n in [a, b] {
        n.shutdown();
    }
}

#[test]
fn fire_and_forget_unfollowed_and_malformed_causal_events_reach_the_application() {
    let a = started_node("");
    let b = started_node(r#","proof_interval_ms":0"#);
    bound_link(&a, &b);
    a.follow_chain(CHAIN).unwrap();
    b.follow_chain(CHAIN).unwrap();
    a.open_causal_stream(b.node_id(), STREAM, false, None)
        .unwrap();
    // A followed chain, a chain b does not follow, then garbage, over a
    // fire-and-forget stream, one send at a time (arrival order is stream
    // order on loopback unless a packet is lost, which the check allows
    // for below).
    let followed = framed(&chain_of(CHAIN, "f", 10));
    let unfollowed = framed(&chain_of(OTHER, "u", 5));
    let garbage = vec![0xFFu8; 12];
    let mut all: Vec<Vec<u8>> = followed.clone();
    all.extend(unfollowed.clone());
    all.push(garbage.clone());
    for body in &all {
        a.send_blocking(
            b.node_id(),
            STREAM,
            &[body],
            Some(Instant::now() + Duration::from_secs(10)),
        )
        .unwrap();
    }
    wait_until(
        || b.stat("causal_malformed") == 1,
        "the malformed event counted",
    );
    let got = recv_n(&b, all.len());
    assert_eq!(got.last().unwrap().data[..], garbage[..]);
    let seen = status(&b, CHAIN);
    assert_eq!(seen.head.seq, 10, "every followed event checked");
    assert_eq!(seen.source, Some(a.node_id()));
    assert!(
        b.continuity_status().iter().all(|c| c.origin != OTHER),
        "an unfollowed chain is not picked up"
    );
    // proof_interval 0: the node proves nothing by itself; an ask of the
    // application is still answered.
    assert_eq!(seen.proved_to, 0);
    b.request_continuity_proof(a.node_id(), CHAIN, 0, 10)
        .unwrap();
    let (_, _, _, verdict) = next_verdict(&b, CHAIN);
    assert_eq!(verdict, ProofVerdict::Checked(Agreement::Consistent));
    // The application's own asks do not move the node's proving.
    assert_eq!(status(&b, CHAIN).proved_to, 0);
    for n in [a, b] {
        n.shutdown();
    }
}
