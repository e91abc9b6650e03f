//! `cargo bench --bench partitions`: time from a partition healing to
//! reconciled chains (issue 16: "record it"), on five nodes on 127.0.0.1
//! split 3 | 2 by their outbound filters (no root needed).
//!
//! Each round follows a fresh chain on every node, splits the mesh, waits
//! until every node has detected the split, lets side A write `A_EVENTS`
//! and side B `B_EVENTS` of 100 B each, then removes the filters and
//! measures until every node holds A's head and the fork of B's events.
//! Printed next to it, from the same round: heal → the last node's Healed
//! event (the failure detector seeing heartbeats again, the floor of any
//! reconciliation), and the pure `reconcile` of the same two branches.
//!
//! Under `cargo test` (no `--bench` argument) it runs one short round.

use std::sync::Arc;
use std::time::{Duration, Instant};

use net::compute::CausalEvent;
use net::continuity::{PartitionEvent, reconcile};
use net::cortex::causal::CausalLink;
use net::mesh::filter::DropTo;
use net::mesh::{ContinuityEvent, MeshConfig, MeshNode};

const PSK_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn node() -> MeshNode {
    let json = format!(
        r#"{{"psk_hex":"{PSK_HEX}","heartbeat_interval_ms":50,"session_timeout_ms":400,"hello_timeout_ms":500}}"#
    );
    let n = MeshNode::new(MeshConfig::from_json(&json).unwrap()).unwrap();
    n.start().unwrap();
    n
}

fn extend(from: &CausalEvent, n: usize, tag: u8) -> Vec<CausalEvent> {
    let mut prev = from.clone();
    (0..n)
        .map(|i| {
            let mut payload = vec![tag; 100];
            payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let event = CausalEvent {
                link: prev.link.next(&prev.payload, 0),
                payload,
                received_at: 0,
            };
            prev = event.clone();
            event
        })
        .collect()
}

/// Waits until `done(node, event)` holds for every node, handing it each
/// of the node's events as they come (the wait is on them, never a sleep).
fn wait_all(
    nodes: &[MeshNode],
    what: &str,
    mut done: impl FnMut(usize, &MeshNode, Option<ContinuityEvent>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, n) in nodes.iter().enumerate() {
        while !done(i, n, None) {
            assert!(Instant::now() < deadline, "node {i}: {what} timed out");
            if let Ok(event) = n.next_continuity_event(Some(Duration::from_millis(20)))
                && done(i, n, Some(event))
            {
                break;
            }
        }
    }
}

struct Round {
    healed: Duration,
    reconciled: Duration,
    pure: Duration,
}

fn round(nodes: &[MeshNode], origin: u64, a_events: usize, b_events: usize) -> Round {
    let genesis = CausalEvent {
        link: CausalLink::genesis(origin),
        payload: Vec::new(),
        received_at: 0,
    };
    let before = extend(&genesis, 10, 0);
    let split_event = before.last().unwrap().clone();
    for n in nodes {
        n.follow_chain(origin).unwrap();
        for e in &before {
            n.observe_chain_event(e).unwrap();
        }
        while n.next_continuity_event(Some(Duration::ZERO)).is_ok() {}
    }
    let (side_a, side_b) = (&nodes[..3], &nodes[3..]);
    let addrs = |side: &[MeshNode]| side.iter().map(MeshNode::local_addr).collect();
    for n in side_a {
        n.set_filter(Some(Arc::new(DropTo(addrs(side_b)))));
    }
    for n in side_b {
        n.set_filter(Some(Arc::new(DropTo(addrs(side_a)))));
    }
    let mut detected = vec![false; nodes.len()];
    wait_all(nodes, "detection", |i, _, event| {
        if let Some(ContinuityEvent::Partition(PartitionEvent::Detected(_))) = event {
            detected[i] = true;
        }
        detected[i]
    });
    let a_branch = extend(&split_event, a_events, 0xA);
    let b_branch = extend(&split_event, b_events, 0xB);
    for (side, branch) in [(side_a, &a_branch), (side_b, &b_branch)] {
        for n in side {
            for e in branch.iter() {
                n.observe_chain_event(e).unwrap();
            }
        }
    }
    let winner = a_branch.last().unwrap();
    let winner_hash = winner.link.chain_hash(&winner.payload);

    let healed_at = Instant::now();
    for n in nodes {
        n.set_filter(None);
    }
    let mut healed = vec![false; nodes.len()];
    wait_all(nodes, "the heal", |i, n, event| {
        if let Some(ContinuityEvent::Partition(PartitionEvent::Healed(_))) = event {
            healed[i] = true;
        }
        healed[i]
            || n.partitions()
                .iter()
                .all(|p| p.record.healed_at_ms.is_some())
    });
    let last_healed = healed_at.elapsed();
    wait_all(nodes, "reconciliation", |_, n, _| {
        let status = n.continuity_status();
        let chain = status.iter().find(|c| c.origin == origin).unwrap();
        chain.head.hash == winner_hash && !chain.forks.is_empty()
    });
    let reconciled = healed_at.elapsed();
    let started = Instant::now();
    let pure = reconcile(&split_event, &b_branch, &a_branch).unwrap();
    let pure_time = started.elapsed();
    std::hint::black_box(pure);
    Round {
        healed: last_healed,
        reconciled,
        pure: pure_time,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, a_events, b_events) = if full { (5, 1_000, 500) } else { (1, 50, 20) };
    let nodes: Vec<MeshNode> = (0..5).map(|_| node()).collect();
    for i in 0..5 {
        for j in i + 1..5 {
            nodes[i]
                .connect(
                    nodes[j].local_addr(),
                    &nodes[j].public_key(),
                    nodes[j].node_id(),
                )
                .unwrap();
        }
    }
    // Every session bound (continuity is negotiated in the hello).
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes
        .iter()
        .any(|n| n.peers().iter().filter(|p| p.identity == "net").count() < 4)
    {
        assert!(Instant::now() < deadline, "sessions did not bind");
        let _ = nodes[0].next_continuity_event(Some(Duration::from_millis(10)));
    }
    let results: Vec<Round> = (0..rounds)
        .map(|r| round(&nodes, 0xBE7C_0000 + r as u64, a_events, b_events))
        .collect();
    let reconciled = median(results.iter().map(|r| r.reconciled).collect());
    let healed = median(results.iter().map(|r| r.healed).collect());
    let pure = median(results.iter().map(|r| r.pure).collect());
    println!(
        "heal -> reconciled chains, 5 nodes (3|2), branches {a_events}|{b_events} x 100 B: median {:.1} ms over {rounds} rounds (each: {})",
        reconciled.as_secs_f64() * 1e3,
        results
            .iter()
            .map(|r| format!("{:.1}", r.reconciled.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  of which heal -> every node Healed (failure detector, 50 ms heartbeats): median {:.1} ms; pure reconcile of the two branches: {:.1} us",
        healed.as_secs_f64() * 1e3,
        pure.as_secs_f64() * 1e6
    );
    for n in &nodes {
        n.shutdown();
    }
}
