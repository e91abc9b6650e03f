//! NAT classification on running nodes over loopback (the real NATs are in
//! `nat_traversal.rs`): probes go to Net peers on distinct addresses
//! (127.0.0.1/2/3 are three addresses of lo), the round commits by itself,
//! the class and reflex reach the announcement and the stats, the operator
//! override wins, and a v0.11 peer is answered but never probed.

mod mesh_common;

use std::net::SocketAddr;
use std::time::Duration;

use mesh_common::{PSK, RawPeer, bound_link, node, wait_until};
use net::mesh::capability::CapabilitySet;
use net::mesh::traversal::NatClass;
use net::mesh::*;
use net::wire::ids;
use net::wire::subproto::decode_address;

fn on(ip: &str, extra: &str) -> MeshNode {
    let n = node(&format!(
        r#","bind":"{ip}:0","min_announce_interval_ms":100{extra}"#
    ));
    n.start().unwrap();
    n
}

fn stat(n: &MeshNode, key: &str) -> serde_json::Value {
    let s: serde_json::Value = serde_json::from_str(&n.stats_json()).unwrap();
    s[key].clone()
}

/// `of`'s announcement as `at` indexed it: (tags, reflex_addr).
fn indexed(at: &MeshNode, of: u64) -> Option<(Vec<String>, Option<String>)> {
    let json: serde_json::Value = serde_json::from_str(&at.capabilities_json()).unwrap();
    json["nodes"].as_array()?.iter().find_map(|n| {
        (n["node_id"].as_u64() == Some(of)).then(|| {
            let tags = n["capabilities"]["tags"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (tags, n["reflex_addr"].as_str().map(str::to_owned))
        })
    })
}

#[test]
fn a_node_classifies_itself_once_two_probe_peers_on_distinct_addresses_exist() {
    let a = on("127.0.0.1", "");
    let (b, c) = (on("127.0.0.2", ""), on("127.0.0.3", ""));
    assert_eq!(a.nat_status().class, NatClass::Unknown);
    a.announce(CapabilitySet {
        tags: vec!["gpu".into()],
        ..CapabilitySet::default()
    })
    .unwrap();
    bound_link(&a, &b);
    // One probe address is not enough: nothing is decided yet.
    assert_eq!(a.nat_status().rounds, 0);
    bound_link(&a, &c);
    wait_until(|| a.nat_status().rounds >= 1, "a classification round");
    let status = a.nat_status();
    // Both peers saw our own bound address: no NAT. Loopback is never
    // advertised as a reflex.
    assert_eq!(status.class, NatClass::Open, "{status:?}");
    assert_eq!(status.reflex, None);
    assert!(stat(&a, "reflex_probes").as_u64().unwrap() >= 2);
    assert!(stat(&a, "reflex_answers").as_u64().unwrap() >= 2);
    assert_eq!(stat(&b, "reflex_answered").as_u64(), Some(1));
    let nat: serde_json::Value = serde_json::from_str(&a.nat_json()).unwrap();
    assert_eq!(nat["class"], "open");
    assert_eq!(nat["rounds"], 1);
    assert_eq!(nat["reflex"], serde_json::Value::Null);

    // The class reached our announcement by itself (re-announced), the
    // application's own tags kept.
    wait_until(
        || {
            indexed(&b, a.node_id()).is_some_and(|(tags, _)| {
                tags.contains(&"nat:open".to_owned()) && tags.contains(&"gpu".to_owned())
            })
        },
        "b indexes a's nat:open tag",
    );
    // A later announce keeps exactly one nat tag.
    a.announce(CapabilitySet {
        tags: vec!["gpu".into(), "nat:symmetric".into()],
        ..CapabilitySet::default()
    })
    .unwrap();
    let (tags, _) = indexed(&a, a.node_id()).unwrap();
    assert_eq!(tags, vec!["gpu".to_owned(), "nat:open".to_owned()]);
}

#[test]
fn the_operator_override_is_announced_at_once_and_cleared_back() {
    let (a, b) = (on("127.0.0.1", ""), on("127.0.0.2", ""));
    bound_link(&a, &b);
    a.announce(CapabilitySet::default()).unwrap();
    let public: SocketAddr = "203.0.113.7:4242".parse().unwrap();
    a.set_reflex_override(Some(public));
    let status = a.nat_status();
    assert_eq!(
        (status.class, status.reflex),
        (NatClass::Open, Some(public))
    );
    wait_until(
        || {
            indexed(&b, a.node_id()).is_some_and(|(tags, reflex)| {
                tags == vec!["nat:open".to_owned()] && reflex.as_deref() == Some("203.0.113.7:4242")
            })
        },
        "b indexes the override",
    );
    a.set_reflex_override(None);
    let status = a.nat_status();
    assert_eq!((status.class, status.reflex), (NatClass::Unknown, None));
    wait_until(
        || {
            indexed(&b, a.node_id()).is_some_and(|(tags, reflex)| {
                tags == vec!["nat:unknown".to_owned()] && reflex.is_none()
            })
        },
        "b sees the override gone",
    );
}

#[test]
fn config_override_and_bad_values() {
    let a = on("127.0.0.1", r#","reflex_override":"198.51.100.9:7000""#);
    assert_eq!(
        a.nat_status().reflex,
        Some("198.51.100.9:7000".parse().unwrap())
    );
    for bad in [
        r#"{"reflex_override":"10.0.0.1:7000"}"#,
        r#"{"reflex_override":"0.0.0.0:7000"}"#,
        r#"{"reflex_override":"nonsense"}"#,
        r#"{"classify_period_ms":10}"#,
    ] {
        let err = MeshConfig::from_json(bad).unwrap_err().to_string();
        assert!(
            err.contains("reflex_override") || err.contains("classify_period_ms"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn a_v011_peer_is_answered_with_its_source_address_and_never_probed() {
    let a = on("127.0.0.1", "");
    let (b, c) = (on("127.0.0.2", ""), on("127.0.0.3", ""));
    let mut raw = RawPeer::connect(&a, 0x0bad_cafe_0000_0001, &PSK).expect("handshake");
    let raw_addr = raw.sock.local_addr().unwrap();
    bound_link(&a, &b);
    bound_link(&a, &c);
    wait_until(|| a.nat_status().rounds >= 1, "a classification round");
    // The round went to b and c only: nothing on 0x0D00 reached the
    // v0.11 peer.
    assert!(
        raw.recv_matching(Duration::from_millis(300), |h, _| h.subprotocol_id
            == ids::REFLEX)
            .is_none()
    );
    // Its own probe is answered with the address it sent from.
    let probe = raw.subprotocol(ids::REFLEX, &[b""]);
    raw.send(&probe);
    let (header, events) = raw
        .recv_matching(Duration::from_secs(5), |h, _| {
            h.subprotocol_id == ids::REFLEX
        })
        .expect("the reflex answer");
    assert_eq!(header.stream_id, u64::from(ids::REFLEX));
    assert_eq!(decode_address(&events[0]).unwrap(), raw_addr);
    // Garbage on 0x0D00 is counted, not answered.
    let before = stat(&a, "malformed").as_u64().unwrap();
    let junk = raw.subprotocol(ids::REFLEX, &[b"xyz"]);
    raw.send(&junk);
    wait_until(
        || stat(&a, "malformed").as_u64().unwrap() > before,
        "the junk is counted",
    );
}
