//! Capability announcements on running nodes (issue 13, MESH2.md §3): an
//! announcement reaches a direct peer and, forwarded, a peer one hop
//! further; unsigned and forged announcements are not indexed; a failed
//! peer's entry leaves the index; late joiners get the latest
//! announcement when their session comes up.

mod mesh_common;

use std::time::{SystemTime, UNIX_EPOCH};

use mesh_common::{PSK, RawPeer, node, wait_until};
use net::identity::EntityKeypair;
use net::mesh::capability::{Announcement, CapabilitySet, NodeQuery};
use net::mesh::*;
use net::wire::ids;

fn started() -> MeshNode {
    let n = node("");
    n.start().unwrap();
    n
}

fn link(a: &MeshNode, b: &MeshNode) {
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    wait_until(
        || b.peers().iter().any(|p| p.node_id == a.node_id()),
        "the link is up on both ends",
    );
}

fn caps(tags: &[&str]) -> CapabilitySet {
    CapabilitySet {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..CapabilitySet::default()
    }
}

fn query(json: &str) -> NodeQuery {
    NodeQuery::from_json(json).unwrap()
}

fn found(n: &MeshNode, q: &NodeQuery) -> Vec<u64> {
    n.find_nodes(q).nodes
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn an_announcement_reaches_a_direct_peer_and_one_a_hop_further() {
    let (a, b, c) = (started(), started(), started());
    link(&a, &b);
    link(&c, &b);
    a.announce(caps(&["gpu", "zone:eu"])).unwrap();
    let gpus = query(r#"{"filter":{"require_tags":["gpu"]}}"#);
    let tpus = query(r#"{"filter":{"require_tags":["tpu"]}}"#);
    // The announcer indexes itself.
    assert_eq!(found(&a, &gpus), vec![a.node_id()]);
    wait_until(
        || found(&b, &gpus) == vec![a.node_id()],
        "b (direct) finds a",
    );
    wait_until(
        || found(&c, &gpus) == vec![a.node_id()],
        "c (behind b) finds a",
    );
    assert!(found(&c, &tpus).is_empty());
    let json: serde_json::Value = serde_json::from_str(&c.capabilities_json()).unwrap();
    let entry = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"].as_u64() == Some(a.node_id()))
        .cloned()
        .unwrap();
    assert_eq!(entry["hop_count"].as_u64(), Some(1), "forwarded once");
    let best = c.find_best_node(
        &net::mesh::capability::BestNodeQuery::from_json(
            r#"{"filter":{"require_tags":["zone:eu"]}}"#,
        )
        .unwrap(),
    );
    assert_eq!(best.node_id, Some(a.node_id()));
}

#[test]
fn a_late_joiner_gets_the_latest_announcement_when_its_session_comes_up() {
    let (a, b) = (started(), started());
    a.announce(caps(&["first"])).unwrap();
    a.announce(caps(&["second"])).unwrap(); // deferred: within the interval
    link(&b, &a);
    wait_until(
        || found(&b, &query(r#"{"filter":{"require_tags":["second"]}}"#)) == vec![a.node_id()],
        "b indexes a's latest announcement",
    );
}

#[test]
fn unsigned_and_forged_announcements_are_not_indexed() {
    let b = started();
    let key = EntityKeypair::from_seed(&[0x77; 32]);
    let mut raw = RawPeer::connect(&b, key.node_id(), &PSK).expect("handshake");
    let version = now_ns();
    // Unsigned.
    let unsigned = Announcement::new(*key.entity_id(), version, now_ns(), 300, caps(&["x"]));
    // Forged: signed, then its capabilities changed.
    let mut forged = Announcement::new(*key.entity_id(), version + 1, now_ns(), 300, caps(&["x"]));
    forged.sign(&key).unwrap();
    forged.capabilities.tags.push("admin".into());
    for bad in [&unsigned, &forged] {
        let datagram = raw.subprotocol(ids::CAPABILITY, &[&bad.encode()]);
        raw.send(&datagram);
    }
    // A correctly signed one, sent last, is indexed: the two before it
    // were processed and refused, not merely slow.
    let mut good = Announcement::new(*key.entity_id(), version + 2, now_ns(), 300, caps(&["y"]));
    good.sign(&key).unwrap();
    let datagram = raw.subprotocol(ids::CAPABILITY, &[&good.encode()]);
    raw.send(&datagram);
    let everyone = query("{}");
    wait_until(
        || found(&b, &everyone).contains(&key.node_id()),
        "the signed announcement is indexed",
    );
    assert!(found(&b, &query(r#"{"filter":{"require_tags":["x"]}}"#)).is_empty());
    assert!(found(&b, &query(r#"{"filter":{"require_tags":["admin"]}}"#)).is_empty());
    assert_eq!(
        found(&b, &query(r#"{"filter":{"require_tags":["y"]}}"#)),
        vec![key.node_id()]
    );
}

#[test]
fn a_failed_peer_leaves_the_index() {
    let (a, b) = (started(), started());
    link(&a, &b);
    a.announce(caps(&["ephemeral"])).unwrap();
    let q = query(r#"{"filter":{"require_tags":["ephemeral"]}}"#);
    wait_until(|| found(&b, &q) == vec![a.node_id()], "b finds a");
    // a goes silent: b declares it Failed after 3 session timeouts.
    a.shutdown();
    wait_until(|| found(&b, &q).is_empty(), "a's entry goes when it fails");
}

#[test]
fn an_announcement_inside_the_rate_limit_is_sent_later_not_dropped() {
    let a = node(r#","min_announce_interval_ms":300"#);
    a.start().unwrap();
    let b = started();
    link(&a, &b);
    a.announce(caps(&["v1"])).unwrap();
    wait_until(
        || found(&b, &query(r#"{"filter":{"require_tags":["v1"]}}"#)) == vec![a.node_id()],
        "the first announcement goes out at once",
    );
    // Within 300 ms of the first: deferred, then sent by the tick.
    a.announce(caps(&["v2"])).unwrap();
    wait_until(
        || found(&b, &query(r#"{"filter":{"require_tags":["v2"]}}"#)) == vec![a.node_id()],
        "the deferred announcement arrives",
    );
    assert!(found(&b, &query(r#"{"filter":{"require_tags":["v1"]}}"#)).is_empty());
}

#[test]
fn a_recovered_peer_gets_the_announcement_again() {
    use std::sync::Arc;
    let (a, b) = (started(), started());
    link(&a, &b);
    a.announce(caps(&["comeback"])).unwrap();
    let q = query(r#"{"filter":{"require_tags":["comeback"]}}"#);
    wait_until(|| found(&b, &q) == vec![a.node_id()], "b finds a");
    let cuts: Vec<Arc<NetemFilter>> = (0..2)
        .map(|seed| {
            Arc::new(NetemFilter::new(
                0.0,
                0.0,
                0.0,
                std::time::Duration::ZERO,
                seed,
            ))
        })
        .collect();
    for (n, cut) in [(&a, &cuts[0]), (&b, &cuts[1])] {
        cut.partition(true);
        n.set_filter(Some(cut.clone()));
    }
    wait_until(
        || found(&b, &q).is_empty(),
        "b declares a failed and drops it",
    );
    for cut in &cuts {
        cut.partition(false);
    }
    // v0.11 never re-pushes: the entry would stay gone.
    wait_until(
        || found(&b, &q) == vec![a.node_id()],
        "a re-pushes on recovery",
    );
}
