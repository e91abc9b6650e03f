//! NAT traversal benchmarks (issue 14) through real Linux NATs (the test
//! bed of `tests/nat_common`: two homes behind nftables routers of the pair type measured, a
//! coordinator and a probe node on the "internet"). Needs root.
//!
//! * Time to the first direct event: from `connect_direct` with no session
//!   (punch, direct handshake) to the first event the peer receives, next
//!   to the same for `connect_via` through the coordinator (the baseline:
//!   what a node without traversal gets).
//! * Upgrade: a relayed session moved to a direct path by `connect_direct`
//!   (punch, path switch), call to return.
//! * Punch success over N attempts (50 under `cargo bench`), each with a
//!   fresh pair of home nodes on new ports: how many ended `Direct`.
//!
//! Per pair type where the pair matrix says direct is possible (cone ↔
//! cone, full cone ↔ cone, full cone ↔ symmetric both ways).
//! `cargo bench --bench nat`; `cargo test --bench nat` runs 2 attempts of
//! cone ↔ cone.

#[path = "../tests/mesh_common/mod.rs"]
mod mesh_common;
#[path = "../tests/nat_common/mod.rs"]
mod nat_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mesh_common::{is_bound, node, recv_n, wait_until};
use nat_common::{Bed, INET1_IP, INET2_IP, NatKind, Role};
use net::mesh::capability::CapabilitySet;
use net::mesh::{DirectOutcome, MeshNode};

const PORT: u16 = 7000;

fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn node_in(bed: &Bed, role: Role, bind: SocketAddr) -> MeshNode {
    bed.in_ns(role, move || {
        let n = node(&format!(
            r#","bind":"{bind}","min_announce_interval_ms":100"#
        ));
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

/// Two home nodes on `port`, linked to R and P, classified and announced.
fn homes(bed: &Bed, r: &MeshNode, p: &MeshNode, port: u16) -> (MeshNode, MeshNode) {
    let any = SocketAddr::from(([0, 0, 0, 0], port));
    let a = node_in(bed, Role::Client, any);
    let b = node_in(bed, Role::Client2, any);
    for home in [&a, &b] {
        connect(home, r, SocketAddr::from((INET1_IP, PORT)));
        connect(home, p, SocketAddr::from((INET2_IP, PORT)));
        wait_until(|| home.nat_status().rounds >= 1, "classified");
        home.announce(CapabilitySet::default()).unwrap();
    }
    wait_until(
        || a.capabilities_json().contains(&b.node_id().to_string()),
        "a indexes b",
    );
    (a, b)
}

fn first_event(a: &MeshNode, b: &MeshNode) {
    a.send(b.node_id(), 1, &[b"first".as_slice()]).unwrap();
    recv_n(b, 1);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One pair type: `attempts` rounds of a cold `connect_direct`, a relayed
/// baseline and an upgrade, each with fresh home nodes on new ports.
fn pair(ka: NatKind, kb: NatKind, attempts: u16) {
    let bed = Bed::two_homes(ka, kb);
    let r = node_in(&bed, Role::Inet1, SocketAddr::from((INET1_IP, PORT)));
    let p = node_in(&bed, Role::Inet2, SocketAddr::from((INET2_IP, PORT)));
    let (mut cold, mut relayed, mut upgrade) = (Vec::new(), Vec::new(), Vec::new());
    let mut direct = 0u32;
    for i in 0..attempts {
        // Cold: no session yet.
        let (a, b) = homes(&bed, &r, &p, 40_000 + 3 * i);
        let t0 = Instant::now();
        let outcome = a
            .connect_direct(b.node_id(), &b.public_key(), r.node_id(), None)
            .unwrap();
        first_event(&a, &b);
        cold.push(ms(t0.elapsed()));
        direct += u32::from(outcome == DirectOutcome::Direct);
        // Baseline: a session relayed by the coordinator.
        let (c, d) = homes(&bed, &r, &p, 40_001 + 3 * i);
        let t0 = Instant::now();
        c.connect_via(r.node_id(), &d.public_key(), d.node_id(), None)
            .unwrap();
        first_event(&c, &d);
        relayed.push(ms(t0.elapsed()));
        // Upgrade of that relayed session.
        wait_until(
            || is_bound(&c, d.node_id()) && is_bound(&d, c.node_id()),
            "bound relayed",
        );
        let t0 = Instant::now();
        let outcome = c
            .connect_direct(d.node_id(), &d.public_key(), r.node_id(), None)
            .unwrap();
        upgrade.push(ms(t0.elapsed()));
        direct += u32::from(outcome == DirectOutcome::Direct);
        for n in [&a, &b, &c, &d] {
            n.shutdown();
        }
    }
    let punches = 2 * u32::from(attempts);
    let (cold, relayed, upgrade) = (median(cold), median(relayed), median(upgrade));
    let name = format!("{ka:?} -> {kb:?}");
    println!(
        "{name:<22} first event: connect_direct {cold:>5.0} ms (relayed baseline {relayed:>3.0} ms, ratio {:>5.1}); upgrade {upgrade:>5.0} ms; direct {direct} of {punches} ({:.0} %)",
        cold / relayed,
        100.0 * f64::from(direct) / f64::from(punches)
    );
    assert!(direct > 0, "{name}: no punch succeeded");
}

fn main() {
    let attempts: u16 = if benchmarking() { 50 } else { 2 };
    println!(
        "nat ({attempts} attempts x 2 punches per pair type; real nftables NATs in network namespaces)"
    );
    // The pair types where the pair matrix says direct is possible.
    let pairs: &[(NatKind, NatKind)] = if benchmarking() {
        &[
            (NatKind::Cone, NatKind::Cone),
            (NatKind::FullCone, NatKind::Cone),
            (NatKind::FullCone, NatKind::Symmetric),
            (NatKind::Symmetric, NatKind::FullCone),
        ]
    } else {
        &[(NatKind::Cone, NatKind::Cone)]
    };
    for &(ka, kb) in pairs {
        pair(ka, kb, attempts);
    }
}
