//! Subnets on running nodes (issue 16 item 2, MESH2.md §5, §1.8): nodes
//! on loopback in several subnets — explicit ids and an assignment policy
//! over their tags — with SubnetLocal, ParentVisible and Global channels,
//! directly and through relays; subscribes refused across a forbidden
//! boundary; a subscriber that moves out of the subnet evicted at the next
//! publish; the confinement stamp stopping a packet at the first hop (the
//! publisher) and at a relay in the middle; capability queries seeing
//! subnets; nodes without a subnet configuration behaving as v0.11.

mod mesh_common;

use mesh_common::{bound_link, nothing_for, recv_n, route_to, wait_until};
use net::identity::ChannelName;
use net::mesh::capability::{CapabilitySet, NodeQuery};
use net::mesh::channels::{ChannelConfig, SubnetId, Visibility};
use net::mesh::*;
use net::wire::AckReason;

/// The policy every node of these tests shares: zone → level 0, site →
/// level 1, rack → level 2.
const POLICY: &str = r#""subnet_policy":[
    {"prefix":"zone:","level":0,"values":{"a":3}},
    {"prefix":"site:","level":1,"values":{"x":7,"y":8}},
    {"prefix":"rack:","level":2,"values":{"r1":1,"r2":2,"r3":3}}]"#;

fn name(s: &str) -> ChannelName {
    ChannelName::new(s).unwrap()
}

fn subnet(text: &str) -> SubnetId {
    text.parse().unwrap()
}

/// A started node with the shared policy (and announcements never
/// deferred), plus `extra` keys.
fn member(extra: &str) -> MeshNode {
    let n = mesh_common::node(&format!(r#","min_announce_interval_ms":0,{POLICY}{extra}"#));
    n.start().unwrap();
    n
}

/// A node in subnet `id` (explicit).
fn in_subnet(id: &str) -> MeshNode {
    member(&format!(r#","subnet":"{id}""#))
}

fn announce(n: &MeshNode, tags: &[&str]) {
    n.announce(CapabilitySet {
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    })
    .unwrap();
}

/// What `n` believes `peer`'s subnet is (from its peers JSON).
fn known_subnet(n: &MeshNode, peer: u64) -> Option<String> {
    let peers: serde_json::Value = serde_json::from_str(&n.peers_json()).unwrap();
    peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node_id"].as_u64() == Some(peer))
        .and_then(|p| p["subnet"].as_str().map(str::to_owned))
}

fn wait_known(n: &MeshNode, peer: &MeshNode, expected: &str) {
    wait_until(
        || known_subnet(n, peer.node_id()).as_deref() == Some(expected),
        &format!("the node learns its peer is in {expected}"),
    );
}

fn register(n: &MeshNode, channel: &ChannelName, visibility: Visibility) {
    n.register_channel(
        channel,
        ChannelConfig {
            visibility,
            ..Default::default()
        },
    )
    .unwrap();
}

fn refused(result: Result<(), ChannelError>) -> AckReason {
    match result {
        Err(ChannelError::Rejected(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn subnet_blocked(n: &MeshNode) -> u64 {
    n.stat("subnet_blocked")
}

/// Publisher `a`, relay `r`, far node `far`: all announce, `a` and `far`
/// link to `r`, and `far` opens a session with `a` through `r`.
fn relayed_triangle(a: &MeshNode, r: &MeshNode, far: &MeshNode) {
    for n in [a, r, far] {
        announce(n, &[]);
    }
    bound_link(a, r);
    bound_link(far, r);
    far.connect_via(r.node_id(), &a.public_key(), a.node_id(), None)
        .unwrap();
    wait_until(
        || mesh_common::is_bound(a, far.node_id()),
        "the relayed session is bound",
    );
}

/// A SubnetLocal and a Global channel at `a`, `b` subscribed to both.
fn local_and_global(a: &MeshNode, b: &MeshNode, prefix: &str) -> (ChannelName, ChannelName) {
    let local = name(&format!("{prefix}/local"));
    let open = name(&format!("{prefix}/global"));
    register(a, &local, Visibility::SubnetLocal);
    register(a, &open, Visibility::Global);
    b.subscribe(a.node_id(), &local, None, None).unwrap();
    b.subscribe(a.node_id(), &open, None, None).unwrap();
    (local, open)
}

#[test]
fn own_subnet_comes_from_the_id_or_the_policy_and_peers_learn_it() {
    let explicit = in_subnet("3.7.2");
    assert_eq!(explicit.subnet(), subnet("3.7.2"));
    let tagged = member("");
    // Before announcing, the policy sees no tags.
    assert_eq!(tagged.subnet(), SubnetId::GLOBAL);
    announce(&tagged, &["zone:a", "site:y", "rack:r1", "gpu"]);
    assert_eq!(tagged.subnet(), subnet("3.8.1"));
    let status: serde_json::Value = serde_json::from_str(&tagged.channels_json()).unwrap();
    assert_eq!(status["subnet"], "3.8.1");

    bound_link(&explicit, &tagged);
    // Nothing announced by `explicit` yet: unknown to a node with a
    // subnet configuration.
    wait_known(&explicit, &tagged, "3.8.1");
    assert_eq!(known_subnet(&tagged, explicit.node_id()), None);
    // Its announcement carries its `subnet:` tag, whatever its other tags
    // would map to under the policy.
    announce(&explicit, &["zone:a", "site:y"]);
    wait_known(&tagged, &explicit, "3.7.2");

    // A node without any subnet configuration honours the claim too.
    let plain = mesh_common::started_node("");
    bound_link(&plain, &tagged);
    wait_known(&plain, &tagged, "3.8.1");
}

#[test]
fn a_subnet_local_channel_never_reaches_another_subnet_directly() {
    let a = in_subnet("3.7.2");
    let b = member("");
    let c = member("");
    announce(&a, &[]);
    announce(&b, &["zone:a", "site:x", "rack:r2"]); // 3.7.2
    announce(&c, &["zone:a", "site:x", "rack:r2"]); // 3.7.2 for now
    bound_link(&b, &a);
    bound_link(&c, &a);
    wait_known(&a, &b, "3.7.2");
    wait_known(&a, &c, "3.7.2");
    let ch = name("site/local");
    register(&a, &ch, Visibility::SubnetLocal);
    b.subscribe(a.node_id(), &ch, None, None).unwrap();
    c.subscribe(a.node_id(), &ch, None, None).unwrap();

    let report = a.publish(&ch, &[b"both".as_slice()], true).unwrap();
    assert_eq!(report.delivered, 2);
    assert_eq!(recv_n(&b, 1)[0].data, b"both");
    assert_eq!(recv_n(&c, 1)[0].data, b"both");

    // C moves to another rack: the next publish re-checks it, evicts it and
    // sends it nothing.
    announce(&c, &["zone:a", "site:x", "rack:r1"]);
    wait_known(&a, &c, "3.7.1");
    let report = a.publish(&ch, &[b"b only".as_slice()], true).unwrap();
    assert_eq!((report.attempted, report.evicted), (1, 1));
    assert_eq!(recv_n(&b, 1)[0].data, b"b only");
    assert!(nothing_for(&c, 300), "an evicted subscriber gets nothing");

    // Its new Subscribe is refused as Unauthorized.
    assert_eq!(
        refused(c.subscribe(a.node_id(), &ch, None, None)),
        AckReason::Unauthorized
    );
    a.publish(&ch, &[b"still b only".as_slice()], true).unwrap();
    assert_eq!(recv_n(&b, 1)[0].data, b"still b only");
    assert!(nothing_for(&c, 300));
}

#[test]
fn parent_visible_goes_up_and_global_goes_everywhere() {
    let publisher = in_subnet("3.7.2");
    let ancestor = in_subnet("3.7");
    let descendant = in_subnet("3.7.2.1");
    let sibling = in_subnet("3.7.3");
    let global = in_subnet("global");
    let others = [&ancestor, &descendant, &sibling, &global];
    announce(&publisher, &[]);
    for n in others {
        announce(n, &[]);
        bound_link(n, &publisher);
    }
    for (n, id) in others.iter().zip(["3.7", "3.7.2.1", "3.7.3", "global"]) {
        wait_known(&publisher, n, id);
    }
    let up = name("up/only");
    let all = name("for/all");
    register(&publisher, &up, Visibility::ParentVisible);
    register(&publisher, &all, Visibility::Global);

    ancestor
        .subscribe(publisher.node_id(), &up, None, None)
        .unwrap();
    global
        .subscribe(publisher.node_id(), &up, None, None)
        .unwrap();
    for n in [&descendant, &sibling] {
        assert_eq!(
            refused(n.subscribe(publisher.node_id(), &up, None, None)),
            AckReason::Unauthorized
        );
    }
    for n in others {
        n.subscribe(publisher.node_id(), &all, None, None).unwrap();
    }
    let report = publisher.publish(&up, &[b"up".as_slice()], true).unwrap();
    assert_eq!(report.delivered, 2);
    let report = publisher.publish(&all, &[b"all".as_slice()], true).unwrap();
    assert_eq!(report.delivered, 4);
    for n in [&ancestor, &global] {
        let got: Vec<_> = recv_n(n, 2).into_iter().map(|e| e.data).collect();
        assert!(got.contains(&b"up".to_vec()) && got.contains(&b"all".to_vec()));
    }
    for n in [&descendant, &sibling] {
        assert_eq!(recv_n(n, 1)[0].data, b"all");
        assert!(
            nothing_for(n, 200),
            "no ParentVisible event below or beside"
        );
    }
    // Exported is never visible to a mesh peer.
    let exported = name("for/gateways");
    register(&publisher, &exported, Visibility::Exported);
    assert_eq!(
        refused(ancestor.subscribe(publisher.node_id(), &exported, None, None)),
        AckReason::Unauthorized
    );
}

#[test]
fn a_subscriber_behind_a_relay_in_another_subnet_is_refused() {
    let a = in_subnet("3.7.2");
    let r = in_subnet("3.7.2");
    let c = in_subnet("3.8.1");
    relayed_triangle(&a, &r, &c);
    // Our announcement reaches a relayed peer too (routed), so the
    // publisher knows the far subscriber's subnet.
    wait_known(&a, &c, "3.8.1");
    let ch = name("relay/local");
    register(&a, &ch, Visibility::SubnetLocal);
    assert_eq!(
        refused(c.subscribe(a.node_id(), &ch, None, None)),
        AckReason::Unauthorized
    );
    let report = a.publish(&ch, &[b"x".as_slice()], true).unwrap();
    assert_eq!(report.attempted, 0);
    assert!(nothing_for(&c, 300));
}

#[test]
fn a_subnet_local_packet_never_takes_a_relay_outside_the_subnet() {
    // A and B share 3.7.2; the only path between them is R in 3.8.1. B may
    // subscribe, but the publisher will not hand the stamped packets to R.
    let a = in_subnet("3.7.2");
    let r = in_subnet("3.8.1");
    let b = in_subnet("3.7.2");
    relayed_triangle(&a, &r, &b);
    wait_known(&a, &b, "3.7.2");
    wait_known(&a, &r, "3.8.1");
    let (local, open) = local_and_global(&a, &b, "confined");

    let blocked_before = subnet_blocked(&a);
    a.publish(&local, &[b"secret".as_slice()], false).unwrap();
    wait_until(
        || subnet_blocked(&a) > blocked_before,
        "the publisher refuses the out-of-subnet first hop",
    );
    // A Global channel takes the same relay.
    a.publish(&open, &[b"public".as_slice()], false).unwrap();
    let got = recv_n(&b, 1);
    assert_eq!(got[0].data, b"public");
    assert_eq!(got[0].channel.as_ref(), Some(&open));
    assert!(nothing_for(&b, 300), "the SubnetLocal event never arrives");
}

#[test]
fn a_relay_drops_a_stamped_packet_whose_next_hop_leaves_the_subnet() {
    // A – R1 – R2 – B: A, R1 and B in 3.7.2, R2 in 3.8.1. A's first hop R1
    // is inside; R1's next hop R2 is not, so R1 drops the packets.
    let a = in_subnet("3.7.2");
    let r1 = in_subnet("3.7.2");
    let r2 = in_subnet("3.8.1");
    let b = in_subnet("3.7.2");
    for n in [&a, &r1, &r2, &b] {
        announce(n, &[]);
    }
    bound_link(&a, &r1);
    bound_link(&r1, &r2);
    bound_link(&r2, &b);
    wait_until(
        || route_to(&b, a.node_id()).is_some(),
        "B learns a route to A",
    );
    b.connect_routed(&a.public_key(), a.node_id(), None)
        .unwrap();
    wait_until(
        || mesh_common::is_bound(&a, b.node_id()),
        "the routed session is bound",
    );
    wait_known(&a, &b, "3.7.2");
    wait_known(&r1, &r2, "3.8.1");
    let (local, open) = local_and_global(&a, &b, "deep");

    let (a_blocked, r1_blocked) = (subnet_blocked(&a), subnet_blocked(&r1));
    a.publish(&local, &[b"secret".as_slice()], false).unwrap();
    wait_until(
        || subnet_blocked(&r1) > r1_blocked,
        "the relay refuses the out-of-subnet next hop",
    );
    assert_eq!(subnet_blocked(&a), a_blocked, "the first hop was inside");
    a.publish(&open, &[b"public".as_slice()], false).unwrap();
    let got = recv_n(&b, 1);
    assert_eq!(got[0].data, b"public");
    assert!(nothing_for(&b, 300), "the SubnetLocal event never arrives");
}

#[test]
fn a_silent_peer_sees_global_channels_only() {
    let a = in_subnet("3.7.2");
    let silent = mesh_common::started_node("");
    bound_link(&silent, &a);
    assert_eq!(known_subnet(&a, silent.node_id()), None);
    let local = name("quiet/local");
    let up = name("quiet/up");
    let open = name("quiet/open");
    register(&a, &local, Visibility::SubnetLocal);
    register(&a, &up, Visibility::ParentVisible);
    register(&a, &open, Visibility::Global);
    // v0.11 would take it for GLOBAL and admit it to ParentVisible.
    for ch in [&local, &up] {
        assert_eq!(
            refused(silent.subscribe(a.node_id(), ch, None, None)),
            AckReason::Unauthorized
        );
    }
    silent.subscribe(a.node_id(), &open, None, None).unwrap();
}

#[test]
fn without_a_subnet_configuration_everyone_is_global() {
    let a = mesh_common::started_node("");
    let b = mesh_common::started_node("");
    bound_link(&b, &a);
    assert_eq!(a.subnet(), SubnetId::GLOBAL);
    assert_eq!(known_subnet(&a, b.node_id()).as_deref(), Some("global"));
    let ch = name("plain/local");
    register(&a, &ch, Visibility::SubnetLocal);
    b.subscribe(a.node_id(), &ch, None, None).unwrap();
    a.publish(&ch, &[b"v0.11 way".as_slice()], true).unwrap();
    assert_eq!(recv_n(&b, 1)[0].data, b"v0.11 way");
    // Our announcements carry no `subnet:` tag.
    announce(&a, &["subnet:9", "gpu"]);
    let caps: serde_json::Value = serde_json::from_str(&a.capabilities_json()).unwrap();
    assert!(!caps.to_string().contains("subnet:"), "{caps}");
}

#[test]
fn capability_queries_respect_subnets() {
    let me = in_subnet("3.7.2");
    let mate = in_subnet("3.7.2");
    let stranger = in_subnet("3.8.1");
    let open = in_subnet("3.8.1");
    announce(&me, &["gpu"]);
    announce(&mate, &["gpu", "scope:subnet-local"]);
    announce(&stranger, &["gpu", "scope:subnet-local"]);
    announce(&open, &["gpu"]);
    for n in [&mate, &stranger, &open] {
        bound_link(n, &me);
    }
    let query = |json: &str| me.find_nodes(&NodeQuery::from_json(json).unwrap()).nodes;
    wait_until(
        || query(r#"{"filter":{"require_tags":["gpu"]}}"#).len() == 3,
        "the announcements are indexed",
    );
    let mut visible = vec![me.node_id(), mate.node_id(), open.node_id()];
    visible.sort_unstable();
    // A subnet-local node of another subnet is never found.
    assert_eq!(query(r#"{"filter":{"require_tags":["gpu"]}}"#), visible);
    let mut same = vec![me.node_id(), mate.node_id()];
    same.sort_unstable();
    assert_eq!(query(r#"{"scope":"same_subnet"}"#), same);
    let best = me.find_best_node(
        &net::mesh::capability::BestNodeQuery::from_json(
            r#"{"filter":{"require_tags":["scope:subnet-local"]}}"#,
        )
        .unwrap(),
    );
    assert_eq!(best.node_id, Some(mate.node_id()));
    // From the other subnet the picture is the mirror image (`me`
    // forwards the others' announcements to the stranger).
    let mut theirs = vec![stranger.node_id(), open.node_id()];
    theirs.sort_unstable();
    wait_until(
        || {
            stranger
                .find_nodes(&NodeQuery::from_json(r#"{"scope":"same_subnet"}"#).unwrap())
                .nodes
                == theirs
        },
        "the stranger sees its own subnet only",
    );
    let seen_by_stranger = stranger
        .find_nodes(&NodeQuery::from_json(r#"{"filter":{"require_tags":["gpu"]}}"#).unwrap())
        .nodes;
    assert!(
        !seen_by_stranger.contains(&mate.node_id()),
        "{seen_by_stranger:?}"
    );
}

#[test]
fn an_exported_channel_reaches_its_export_targets_only() {
    let publisher = in_subnet("3.7.2");
    let target = in_subnet("3.8.1");
    let home = in_subnet("3.7.2");
    let elsewhere = in_subnet("4.1");
    announce(&publisher, &[]);
    for (n, id) in [(&target, "3.8.1"), (&home, "3.7.2"), (&elsewhere, "4.1")] {
        announce(n, &[]);
        bound_link(n, &publisher);
        wait_known(&publisher, n, id);
    }
    let ch = name("exported/feed");
    publisher
        .register_channel(
            &ch,
            ChannelConfig {
                visibility: Visibility::Exported,
                export_to: vec![subnet("3.8")],
                ..Default::default()
            },
        )
        .unwrap();
    target
        .subscribe(publisher.node_id(), &ch, None, None)
        .unwrap();
    for n in [&home, &elsewhere] {
        assert_eq!(
            refused(n.subscribe(publisher.node_id(), &ch, None, None)),
            AckReason::Unauthorized
        );
    }
    let report = publisher.publish(&ch, &[b"out".as_slice()], true).unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(recv_n(&target, 1)[0].data, b"out");
    // Withdrawing the export evicts the subscriber.
    publisher
        .register_channel(
            &ch,
            ChannelConfig {
                visibility: Visibility::Exported,
                ..Default::default()
            },
        )
        .unwrap();
    let report = publisher.publish(&ch, &[b"gone".as_slice()], true).unwrap();
    assert_eq!(report.attempted, 0);
    assert!(nothing_for(&target, 200));
}
