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
