//! NAT traversal against real Linux NATs (the test bed in
//! `tests/nat_common`): classification behind a cone and a symmetric
//! nftables router, and the port mapper against Debian's miniupnpd with
//! each protocol — the mapping forwards, renews, and is gone after
//! teardown. Needs root; fails (never skips) without it.

mod nat_common;

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use nat_common::{
    Bed, CLIENT_IP, Echo, INET1_IP, INET2_ALT_IP, INET2_IP, NatKind, ROUTER_LAN_IP, ROUTER_WAN_IP,
    Role, observed, receive,
};
use net::mesh::traversal::portmap::mapper::{
    Backend, MapperConfig, MapperEvent, NatPmpBackend, PcpBackend, PortMapper, RemovedReason,
    UpnpBackend, gateway_v4,
};
use net::mesh::traversal::portmap::upnp::SSDP_MULTICAST;
use net::mesh::traversal::portmap::{Lease, Protocol, Retransmit};
use net::mesh::traversal::{
    Filtering, FilteringEvidence, LocalView, Mapping, NatClass, Observation, classify,
};

const ECHO_PORT: u16 = 3478;
const ECHO_PORT_2: u16 = 3479;

fn v4(ip: std::net::Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// Probes three echoes (two ports on inet1, one on inet2) from one client
/// socket, tests filtering with unsolicited datagrams, and classifies.
fn classify_behind(kind: NatKind) -> (net::mesh::traversal::Classification, u16) {
    let bed = Bed::new(kind, false);
    let _e1 = Echo::start(&bed, Role::Inet1, v4(INET1_IP, ECHO_PORT));
    let _e1b = Echo::start(&bed, Role::Inet1, v4(INET1_IP, ECHO_PORT_2));
    let _e2 = Echo::start(&bed, Role::Inet2, v4(INET2_IP, ECHO_PORT));
    let local_port = 40_000;
    let client = bed.udp(Role::Client, v4("0.0.0.0".parse().unwrap(), local_port));

    let probes = [
        (1, SocketAddr::V4(v4(INET1_IP, ECHO_PORT))),
        (2, SocketAddr::V4(v4(INET2_IP, ECHO_PORT))),
        (3, SocketAddr::V4(v4(INET1_IP, ECHO_PORT_2))),
    ];
    let observations: Vec<Observation> = probes
        .iter()
        .map(|(peer, addr)| Observation {
            probe_peer: *peer,
            probe_addr: *addr,
            observed: observed(&client, *addr),
        })
        .collect();

    // Filtering: unsolicited datagrams to the mapping inet1 saw, from a
    // port of inet1 we never sent to, and from an address we never sent
    // to (inet2's second address). The echo answers above already proved
    // the path back to the client works, so silence here is the NAT.
    let mapping_seen_by_inet1 = observations[0].observed;
    let other_port = bed.udp(Role::Inet1, v4(INET1_IP, 5000));
    other_port
        .send_to(b"other port", mapping_seen_by_inet1)
        .expect("send");
    let from_other_port = receive(&client, b"other port", Duration::from_millis(700)).is_some();
    let other_ip = bed.udp(Role::Inet2, v4(INET2_ALT_IP, 5000));
    other_ip
        .send_to(b"other ip", mapping_seen_by_inet1)
        .expect("send");
    let from_other_ip = receive(&client, b"other ip", Duration::from_millis(700)).is_some();
    let evidence = FilteringEvidence {
        from_other_ip: Some(from_other_ip),
        from_other_port: Some(from_other_port),
    };
    let local = LocalView {
        bound: SocketAddr::V4(v4("0.0.0.0".parse().unwrap(), local_port)),
        interface_addrs: vec![CLIENT_IP.into()],
    };
    (classify(&local, &observations, evidence), local_port)
}

#[test]
fn classification_behind_a_cone_nat_is_cone() {
    let (c, local_port) = classify_behind(NatKind::Cone);
    assert_eq!(c.class, NatClass::Cone, "{c:?}");
    assert_eq!(c.mapping, Mapping::EndpointIndependent);
    assert_eq!(
        c.reflex,
        Some(SocketAddr::V4(v4(ROUTER_WAN_IP, local_port))),
        "masquerade keeps a free source port"
    );
    assert!(c.port_preserving);
    // Linux conntrack filters by address and port.
    assert_eq!(c.filtering, Filtering::AddressAndPortDependent);
}

#[test]
fn classification_behind_a_symmetric_nat_is_symmetric() {
    let (c, _) = classify_behind(NatKind::Symmetric);
    assert_eq!(c.class, NatClass::Symmetric, "{c:?}");
    // Two ports of inet1 saw two different mappings.
    assert_eq!(c.mapping, Mapping::AddressAndPortDependent);
    assert_eq!(c.reflex, None, "a symmetric NAT has no usable reflex");
}

fn quick_config(internal_port: u16) -> MapperConfig {
    MapperConfig {
        enabled: true,
        gateway: Some(gateway_v4(ROUTER_LAN_IP)),
        natpmp_schedule: Retransmit {
            initial: Duration::from_millis(250),
            tries: 4,
        },
        ..MapperConfig::new(internal_port)
    }
}

/// Sends from inet1 to `external` until `client` receives it (or 5 s).
fn forwards(bed: &Bed, client: &UdpSocket, external: SocketAddr, payload: &'static [u8]) -> bool {
    let sender = bed.udp(Role::Inet1, v4(INET1_IP, 0));
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        sender.send_to(payload, external).expect("send");
        if receive(client, payload, Duration::from_millis(250)).is_some() {
            return true;
        }
    }
    false
}

/// The whole lifecycle with one protocol, behind the symmetric router (a
/// mapping is what makes such a node reachable).
fn lifecycle(protocol: Protocol, internal_port: u16) {
    let bed = Bed::new(NatKind::Symmetric, true);
    let client = bed.udp(Role::Client, v4("0.0.0.0".parse().unwrap(), internal_port));
    let config = quick_config(internal_port);
    let backend: Box<dyn Backend> = match protocol {
        Protocol::Pcp => Box::new(PcpBackend::new(
            gateway_v4(ROUTER_LAN_IP),
            config.pcp_schedule,
        )),
        Protocol::NatPmp => Box::new(NatPmpBackend::new(
            gateway_v4(ROUTER_LAN_IP),
            config.natpmp_schedule,
        )),
        _ => Box::new(UpnpBackend::new(
            SocketAddr::V4(SSDP_MULTICAST),
            config.upnp_timeout,
        )),
    };
    // The mapper's sockets must live in the client's namespace.
    let mut mapper = bed.in_ns(Role::Client, move || {
        PortMapper::with_backends(config, vec![backend])
    });
    let (mut mapper, installed) = bed.in_ns(Role::Client, move || {
        let ev = mapper.start(Instant::now());
        (mapper, ev)
    });
    let lease: Lease = match installed {
        Ok(MapperEvent::Installed(lease)) => lease,
        other => panic!("{protocol:?}: {other:?}\n{}", bed.miniupnpd_log()),
    };
    assert_eq!(lease.protocol, protocol);
    assert_eq!(lease.external.ip(), std::net::IpAddr::V4(ROUTER_WAN_IP));
    assert!(mapper.stats().active);
    let rules = bed.upnp_rules();
    assert!(
        rules.contains(&format!("dport {}", lease.external.port())),
        "{rules}"
    );
    assert!(
        forwards(&bed, &client, lease.external, b"mapped"),
        "{protocol:?}: a datagram to {} did not reach the client",
        lease.external
    );

    // Renew (driven by the mapper's own deadline, handed in as "now").
    let due = mapper.next_deadline().expect("a renewal is scheduled");
    let (m, renewed) = bed.in_ns(Role::Client, move || {
        let ev = mapper.tick(due);
        (mapper, ev)
    });
    mapper = m;
    match renewed {
        Some(MapperEvent::Renewed { lease: new, .. }) => {
            assert_eq!(new.external, lease.external, "renewal keeps the mapping")
        }
        other => panic!("{protocol:?} renewal: {other:?}\n{}", bed.miniupnpd_log()),
    }
    assert_eq!(mapper.stats().renewals, 1);
    assert!(forwards(&bed, &client, lease.external, b"renewed"));

    // Teardown: the gateway confirms and the rule is gone.
    let (_mapper, removed) = bed.in_ns(Role::Client, move || {
        let ev = mapper.shutdown();
        (mapper, ev)
    });
    assert_eq!(
        removed,
        Some(MapperEvent::Removed {
            reason: RemovedReason::Shutdown,
            deleted: true
        }),
        "{}",
        bed.miniupnpd_log()
    );
    let rules = bed.upnp_rules();
    assert!(
        !rules.contains(&format!("dport {}", lease.external.port())),
        "{rules}"
    );
}

#[test]
fn port_mapping_with_pcp_against_miniupnpd() {
    lifecycle(Protocol::Pcp, 41_001);
}

#[test]
fn port_mapping_with_nat_pmp_against_miniupnpd() {
    lifecycle(Protocol::NatPmp, 41_002);
}

#[test]
fn port_mapping_with_upnp_igd_against_miniupnpd() {
    lifecycle(Protocol::Upnp, 41_003);
}

#[test]
fn probe_order_picks_pcp_on_miniupnpd() {
    let bed = Bed::new(NatKind::Cone, true);
    let config = quick_config(41_004);
    let (mut mapper, ev) = bed.in_ns(Role::Client, move || {
        let mut m = PortMapper::new(config);
        let ev = m.start(Instant::now());
        (m, ev)
    });
    match ev {
        Ok(MapperEvent::Installed(lease)) => assert_eq!(lease.protocol, Protocol::Pcp),
        other => panic!("{other:?}\n{}", bed.miniupnpd_log()),
    }
    let removed = bed.in_ns(Role::Client, move || mapper.shutdown());
    assert!(matches!(
        removed,
        Some(MapperEvent::Removed { deleted: true, .. })
    ));
}
