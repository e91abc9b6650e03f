//! Running mesh nodes classify themselves through real Linux NATs (the
//! bed of `tests/nat_common`): a node in the home behind a cone router and
//! one behind a symmetric router, each connected to two nodes on the
//! "internet" (11.0.0.0/24), reach the right class and reflex by
//! themselves, and the public nodes find themselves Open with their own
//! public address. Needs root; fails (never skips) without it.

mod mesh_common;
mod nat_common;

use std::net::SocketAddr;

use mesh_common::{is_bound, node, wait_until};
use nat_common::{Bed, INET1_IP, INET2_IP, NatKind, ROUTER_WAN_IP, Role};
use net::mesh::traversal::{Mapping, NatClass};
use net::mesh::{MeshNode, NatStatus};

const PORT: u16 = 7000;
const HOME_PORT: u16 = 40_000;

/// A started node bound to `bind`, made inside `role`'s namespace (its
/// socket stays there; the node's threads need not).
fn node_in(bed: &Bed, role: Role, bind: SocketAddr) -> MeshNode {
    bed.in_ns(role, move || {
        let n = node(&format!(r#","bind":"{bind}""#));
        n.start().unwrap();
        n
    })
}

fn connect(from: &MeshNode, to: &MeshNode, at: SocketAddr) {
    from.connect(at, &to.public_key(), to.node_id()).unwrap();
    wait_until(
        || is_bound(from, to.node_id()) && is_bound(to, from.node_id()),
        "a bound Net session",
    );
}

/// The bed, the home node and the two public nodes, linked home → both.
fn mesh_behind(kind: NatKind) -> (Bed, MeshNode, MeshNode, MeshNode) {
    let bed = Bed::new(kind, false);
    let p1_addr = SocketAddr::from((INET1_IP, PORT));
    let p2_addr = SocketAddr::from((INET2_IP, PORT));
    let p1 = node_in(&bed, Role::Inet1, p1_addr);
    let p2 = node_in(&bed, Role::Inet2, p2_addr);
    // A wildcard bind, as applications do: the node lists its interfaces.
    let home = node_in(
        &bed,
        Role::Client,
        SocketAddr::from(([0, 0, 0, 0], HOME_PORT)),
    );
    connect(&home, &p1, p1_addr);
    connect(&home, &p2, p2_addr);
    (bed, home, p1, p2)
}

fn classified(n: &MeshNode) -> NatStatus {
    wait_until(|| n.nat_status().rounds >= 1, "a classification round");
    n.nat_status()
}

#[test]
fn a_node_behind_a_cone_nat_finds_cone_and_its_public_mapping() {
    let (_bed, home, p1, p2) = mesh_behind(NatKind::Cone);
    let status = classified(&home);
    assert_eq!(status.class, NatClass::Cone, "{status:?}");
    assert_eq!(status.classification.mapping, Mapping::EndpointIndependent);
    // masquerade keeps a free source port.
    assert_eq!(
        status.reflex,
        Some(SocketAddr::from((ROUTER_WAN_IP, HOME_PORT)))
    );

    // A public node probes the other public node and the home node (whose
    // session the NAT lets through): its own address, Open.
    connect(&p1, &p2, SocketAddr::from((INET2_IP, PORT)));
    let public = classified(&p1);
    assert_eq!(public.class, NatClass::Open, "{public:?}");
    assert_eq!(public.reflex, Some(SocketAddr::from((INET1_IP, PORT))));
}

#[test]
fn a_node_behind_a_symmetric_nat_finds_symmetric_and_advertises_no_reflex() {
    let (_bed, home, _p1, _p2) = mesh_behind(NatKind::Symmetric);
    let status = classified(&home);
    assert_eq!(status.class, NatClass::Symmetric, "{status:?}");
    // Each peer saw another port: nothing another peer could use.
    assert_eq!(status.reflex, None);
}

/// Two homes behind `kind` and `kind2` routers; a coordinator on inet1
/// and a second probe node on inet2; both home nodes classify themselves
/// and announce, then A reaches B relayed by the coordinator.
fn two_homes(kind: NatKind, kind2: NatKind) -> (Bed, [MeshNode; 4]) {
    let bed = Bed::two_homes(kind, kind2);
    let r_addr = SocketAddr::from((INET1_IP, PORT));
    let p_addr = SocketAddr::from((INET2_IP, PORT));
    let r = node_in(&bed, Role::Inet1, r_addr);
    let p = node_in(&bed, Role::Inet2, p_addr);
    let any = SocketAddr::from(([0, 0, 0, 0], HOME_PORT));
    let a = node_in(&bed, Role::Client, any);
    let b = node_in(&bed, Role::Client2, any);
    for home in [&a, &b] {
        connect(home, &r, r_addr);
        connect(home, &p, p_addr);
        classified(home);
        home.announce(net::mesh::capability::CapabilitySet::default())
            .unwrap();
    }
    // R indexes both (their reflexes), A indexes B (its class).
    wait_until(
        || {
            let json = a.capabilities_json();
            json.contains(&b.node_id().to_string())
        },
        "a indexes b's announcement",
    );
    a.connect_via(r.node_id(), &b.public_key(), b.node_id(), None)
        .unwrap();
    wait_until(
        || is_bound(&a, b.node_id()) && is_bound(&b, a.node_id()),
        "a relayed session a-b",
    );
    (bed, [a, b, r, p])
}

fn relay_of(n: &MeshNode, peer: u64) -> Option<Option<u64>> {
    n.peers()
        .into_iter()
        .find(|p| p.node_id == peer)
        .map(|p| p.relay)
}

#[test]
fn two_nodes_behind_cone_nats_punch_and_their_relayed_session_goes_direct() {
    let (_bed, [a, b, r, _p]) = two_homes(NatKind::Cone, NatKind::Cone);
    assert_eq!(relay_of(&a, b.node_id()), Some(Some(r.node_id())));
    let outcome = a
        .connect_direct(b.node_id(), &b.public_key(), r.node_id(), None)
        .unwrap();
    assert_eq!(outcome, net::mesh::DirectOutcome::Direct);
    wait_until(
        || relay_of(&b, a.node_id()) == Some(None),
        "b's session with a went direct",
    );
    // Through the NATs: b sees a at a's router, a sees b at b's.
    let peer_addr = |n: &MeshNode, of: u64| {
        n.peers()
            .into_iter()
            .find(|p| p.node_id == of)
            .map(|p| p.addr.ip())
    };
    assert_eq!(peer_addr(&b, a.node_id()), Some(ROUTER_WAN_IP.into()));
    assert_eq!(
        peer_addr(&a, b.node_id()),
        Some(nat_common::ROUTER2_WAN_IP.into())
    );
    a.send(b.node_id(), 5, &[b"through two NATs".as_slice()])
        .unwrap();
    assert_eq!(mesh_common::recv_n(&b, 1)[0].data, b"through two NATs");
    let stats = a.punch_stats();
    assert_eq!((stats.punches_attempted, stats.punches_succeeded), (1, 1));
}

#[test]
fn two_symmetric_nats_skip_the_punch_and_keep_the_relay() {
    let (_bed, [a, b, r, _p]) = two_homes(NatKind::Symmetric, NatKind::Symmetric);
    let outcome = a
        .connect_direct(b.node_id(), &b.public_key(), r.node_id(), None)
        .unwrap();
    assert_eq!(
        outcome,
        net::mesh::DirectOutcome::Relayed(net::mesh::RelayReason::SkipPunch)
    );
    assert_eq!(relay_of(&a, b.node_id()), Some(Some(r.node_id())));
    assert_eq!(a.punch_stats().relay_fallbacks, 1);
    assert_eq!(a.punch_stats().punches_attempted, 0);
}

#[test]
fn a_punch_that_cannot_pass_falls_back_to_the_relay() {
    // Symmetric → port-restricted cone: A's keep-alives leave from a new
    // port B's router never saw, B's go to A's mapping for R, which only
    // R may use. The punch times out; the session stays relayed.
    let (_bed, [a, b, r, _p]) = two_homes(NatKind::Symmetric, NatKind::Cone);
    let outcome = a
        .connect_direct(b.node_id(), &b.public_key(), r.node_id(), None)
        .unwrap();
    assert_eq!(
        outcome,
        net::mesh::DirectOutcome::Relayed(net::mesh::RelayReason::NoAck)
    );
    assert_eq!(relay_of(&a, b.node_id()), Some(Some(r.node_id())));
    let stats = a.punch_stats();
    assert_eq!(
        (
            stats.punches_attempted,
            stats.punches_succeeded,
            stats.relay_fallbacks
        ),
        (1, 0, 1)
    );
    // The relayed session still carries events.
    a.send(b.node_id(), 6, &[b"still relayed".as_slice()])
        .unwrap();
    assert_eq!(mesh_common::recv_n(&b, 1)[0].data, b"still relayed");
}

#[test]
fn a_node_behind_a_symmetric_nat_maps_its_port_and_is_reached_from_outside() {
    // miniupnpd on the router: the node asks for a mapping by itself
    // (config), announces it, and a public node handshakes to it from
    // outside — which the symmetric NAT alone would never let in.
    let bed = Bed::new(NatKind::Symmetric, true);
    let home = bed.in_ns(Role::Client, || {
        let n = node(&format!(
            r#","bind":"0.0.0.0:{HOME_PORT}","port_mapping":true,"port_mapping_gateway":"{}""#,
            nat_common::ROUTER_LAN_IP
        ));
        n.start().unwrap();
        n
    });
    wait_until(
        || home.nat_status().override_addr.is_some(),
        "a port mapping installed",
    );
    let status = home.nat_status();
    let external = status.override_addr.unwrap();
    assert_eq!(external.ip(), std::net::IpAddr::V4(ROUTER_WAN_IP));
    assert_eq!(
        (status.class, status.reflex),
        (NatClass::Open, Some(external))
    );
    let nat: serde_json::Value = serde_json::from_str(&home.nat_json()).unwrap();
    assert_eq!(nat["port_mapping_active"], true, "{nat}");
    assert!(
        bed.upnp_rules()
            .contains(&format!("dport {}", external.port())),
        "{}",
        bed.upnp_rules()
    );

    let public = node_in(&bed, Role::Inet1, SocketAddr::from((INET1_IP, PORT)));
    connect(&public, &home, external);
    public
        .send(home.node_id(), 3, &[b"from outside".as_slice()])
        .unwrap();
    assert_eq!(mesh_common::recv_n(&home, 1)[0].data, b"from outside");

    // Shutdown deletes the mapping at the gateway.
    home.shutdown();
    assert!(
        !bed.upnp_rules()
            .contains(&format!("dport {}", external.port())),
        "{}",
        bed.upnp_rules()
    );
}

/// The pair matrix on running nodes (the symmetric ↔ symmetric and
/// symmetric → cone cells are the two tests above): every pair of router
/// types, `connect_direct` from the first home to the second over the
/// session the coordinator relays. Direct wherever a path exists — which
/// with authenticated keep-alives includes a full cone and a symmetric NAT
/// both ways — and the relay, still working, where none does.
#[test]
fn the_pair_matrix_through_real_nats() {
    use NatKind::{Cone, FullCone, Symmetric};
    use net::mesh::traversal::{NatProfile, PairAction, pair_action};
    use net::mesh::{DirectOutcome, RelayReason};
    let cells = [
        (Cone, Cone, DirectOutcome::Direct),
        (FullCone, Cone, DirectOutcome::Direct),
        (Cone, FullCone, DirectOutcome::Direct),
        (FullCone, FullCone, DirectOutcome::Direct),
        (FullCone, Symmetric, DirectOutcome::Direct),
        (Symmetric, FullCone, DirectOutcome::Direct),
        (Cone, Symmetric, DirectOutcome::Relayed(RelayReason::NoAck)),
    ];
    for (ka, kb, want) in cells {
        let (_bed, [a, b, r, _p]) = two_homes(ka, kb);
        // What the nodes know of each other decides the action.
        let profile = |n: &MeshNode| NatProfile::from_class(n.nat_status().class);
        let action = pair_action(profile(&a), profile(&b));
        let got = a
            .connect_direct(b.node_id(), &b.public_key(), r.node_id(), None)
            .unwrap();
        assert_eq!(got, want, "{ka:?} → {kb:?} (action {action:?})");
        match got {
            DirectOutcome::Direct => {
                assert_ne!(action, PairAction::SkipPunch);
                wait_until(
                    || relay_of(&b, a.node_id()) == Some(None),
                    "the other end moved too",
                );
            }
            _ => assert_eq!(relay_of(&a, b.node_id()), Some(Some(r.node_id()))),
        }
        a.send(b.node_id(), 7, &[format!("{ka:?}→{kb:?}").as_bytes()])
            .unwrap();
        assert_eq!(
            mesh_common::recv_n(&b, 1)[0].data,
            format!("{ka:?}→{kb:?}").as_bytes()
        );
    }
}

#[test]
fn a_new_local_address_starts_a_classification_round_by_itself() {
    let (bed, home, _p1, _p2) = mesh_behind(NatKind::Cone);
    let first = classified(&home).rounds;
    // The home gets a second address, as when a network changes.
    let status = std::process::Command::new("ip")
        .args([
            "-n",
            &bed.ns(Role::Client),
            "addr",
            "add",
            "192.168.77.9/24",
            "dev",
            "eth0",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until(
        || home.nat_status().rounds > first,
        "a new round after the address change",
    );
    assert_eq!(home.nat_status().class, NatClass::Cone);
}
