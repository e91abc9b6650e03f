//! Hole punching with the rendezvous machines (`Coordinator`, `Endpoint`)
//! through real NATs: two homes behind nftables routers, the coordinator
//! on an "internet" host. Sessions are stood in for by plain UDP frames
//! (0xEE ‖ sender id ‖ 0x0D01 frame); keep-alives are the real 14-byte
//! datagrams from the endpoints' sockets at the instants the machines
//! give. The outcome per NAT pair is checked against the pair matrix.
//! Needs root; fails (never skips) without it.

mod nat_common;

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nat_common::{Bed, INET1_IP, NatKind, Role};
use net::mesh::traversal::rendezvous::{
    Action, Coordinator, Endpoint, PeerView, PunchKey, PunchOutcome, PunchStats, PunchTiming,
};
use net::mesh::traversal::{Filtering, NatClass, NatProfile, PairAction, pair_action};

const R: u64 = 100;
const A: u64 = 1;
const B: u64 = 2;
const SESSION: u8 = 0xEE;
const R_PORT: u16 = 7000;
const MESH_PORT: u16 = 40_000;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn session_frame(from: u64, frame: &[u8]) -> Vec<u8> {
    let mut b = vec![SESSION];
    b.extend_from_slice(&from.to_le_bytes());
    b.extend_from_slice(frame);
    b
}

fn parse_session(bytes: &[u8]) -> Option<(u64, &[u8])> {
    if bytes.len() < 9 || bytes[0] != SESSION {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[1..9]);
    Some((u64::from_le_bytes(id), &bytes[9..]))
}

/// The coordinator: learns each endpoint's address from its frames and
/// runs the machine, until `until`.
fn coordinator(socket: UdpSocket, until: Instant, done: Arc<AtomicBool>) {
    let mut r = Coordinator::new(R, PunchTiming::default());
    let mut seen: HashMap<u64, SocketAddr> = HashMap::new();
    let mut buf = [0u8; 256];
    while Instant::now() < until && !done.load(Ordering::Relaxed) {
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let Ok((n, src)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Some((from, frame)) = parse_session(&buf[..n]) else {
            continue;
        };
        seen.insert(from, src);
        let view = |id: u64| {
            seen.get(&id).map(|addr| PeerView {
                has_session: true,
                indexed_reflex: None,
                observed: Some(*addr),
                is_net: true,
            })
        };
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&unix_ms().to_le_bytes());
        let Ok(actions) = r.on_frame(from, frame, unix_ms(), || PunchKey(key), view) else {
            continue;
        };
        for action in actions {
            if let Action::Send { to, bytes } = action
                && let Some(addr) = seen.get(&to)
            {
                socket.send_to(&session_frame(R, &bytes), addr).unwrap();
            }
        }
    }
}

/// What an endpoint saw.
#[derive(Debug)]
struct Result {
    outcome: Option<PunchOutcome>,
    direct_confirmed: bool,
    stats: PunchStats,
}

/// An endpoint: registers with R, optionally requests a punch to `target`,
/// performs the machine's actions on its mesh socket until it is done.
fn endpoint(
    socket: UdpSocket,
    id: u64,
    target: Option<u64>,
    r_addr: SocketAddr,
    until: Instant,
    done: Arc<AtomicBool>,
) -> Result {
    let mut e = Endpoint::new(id, PunchTiming::default());
    let mut scheduled: Vec<(Instant, SocketAddr, [u8; 14])> = Vec::new();
    let mut outcome = None;
    let mut direct_confirmed = false;
    let mut direct_to: Option<SocketAddr> = None;
    let mut buf = [0u8; 256];
    socket.send_to(&session_frame(id, &[]), r_addr).unwrap();
    // Let the other endpoint register before asking.
    let mut requested = target.is_none();
    let request_at = Instant::now() + Duration::from_millis(300);
    let perform = |actions: Vec<Action>,
                   scheduled: &mut Vec<(Instant, SocketAddr, [u8; 14])>,
                   outcome: &mut Option<PunchOutcome>| {
        for action in actions {
            match action {
                Action::Send { bytes, .. } => {
                    socket.send_to(&session_frame(id, &bytes), r_addr).unwrap();
                }
                Action::KeepAlive { to, at, bytes } => scheduled.push((at, to, bytes)),
                Action::Finished { outcome: o, .. } => *outcome = Some(o),
                _ => {}
            }
        }
    };
    while Instant::now() < until && !done.load(Ordering::Relaxed) {
        let now = Instant::now();
        if !requested && now >= request_at {
            requested = true;
            let acts = e.request(target.unwrap_or(0), R, None, now);
            perform(acts, &mut scheduled, &mut outcome);
        }
        // Keep-alives whose time has come.
        scheduled.retain(|(at, to, bytes)| {
            if *at <= now {
                let _ = socket.send_to(bytes, to);
                false
            } else {
                true
            }
        });
        let acts = e.poll(now);
        perform(acts, &mut scheduled, &mut outcome);
        if let (Some(PunchOutcome::Direct(addr)), None) = (outcome, direct_to) {
            direct_to = Some(addr);
        }
        if let Some(addr) = direct_to
            && !direct_confirmed
        {
            let _ = socket.send_to(b"direct hello", addr);
        }
        if outcome.is_some() && (direct_confirmed || direct_to.is_none()) {
            done.store(true, Ordering::Relaxed);
            break;
        }
        let wait = scheduled
            .iter()
            .map(|(at, _, _)| at.saturating_duration_since(now))
            .chain([Duration::from_millis(20)])
            .min()
            .unwrap_or(Duration::from_millis(20))
            .max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait)).unwrap();
        let Ok((n, src)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let data = &buf[..n];
        let now = Instant::now();
        if let Some((from, frame)) = parse_session(data) {
            if let Ok(acts) = e.on_frame(from, frame, now, unix_ms()) {
                perform(acts, &mut scheduled, &mut outcome);
            }
        } else if data == b"direct hello" {
            let _ = socket.send_to(b"direct ack", src);
        } else if data == b"direct ack" && Some(src) == direct_to {
            direct_confirmed = true;
            if let Some(t) = target {
                e.on_direct_result(t, true);
            }
        } else if let Ok(acts) = e.on_keepalive(src, data, now) {
            perform(acts, &mut scheduled, &mut outcome);
        }
    }
    Result {
        outcome,
        direct_confirmed,
        stats: e.stats(),
    }
}

fn punch(kind_a: NatKind, kind_b: NatKind) -> (Result, Result) {
    let bed = Bed::two_homes(kind_a, kind_b);
    let r_addr = SocketAddr::V4(SocketAddrV4::new(INET1_IP, R_PORT));
    let until = Instant::now() + Duration::from_secs(9);
    let r_socket = bed.udp(Role::Inet1, SocketAddrV4::new(INET1_IP, R_PORT));
    let any = "0.0.0.0".parse().unwrap();
    let a_socket = bed.udp(Role::Client, SocketAddrV4::new(any, MESH_PORT));
    let b_socket = bed.udp(Role::Client2, SocketAddrV4::new(any, MESH_PORT));
    // The requester's end (direct path confirmed, or fallback) ends all.
    let done = Arc::new(AtomicBool::new(false));
    let (r_done, b_done) = (done.clone(), done.clone());
    let r = std::thread::spawn(move || coordinator(r_socket, until, r_done));
    // B answers direct hellos until A is done.
    let b = std::thread::spawn(move || endpoint(b_socket, B, None, r_addr, until, b_done));
    let a = endpoint(a_socket, A, Some(B), r_addr, until, done);
    let b = b.join().unwrap();
    r.join().unwrap();
    (a, b)
}

fn profile(kind: NatKind) -> NatProfile {
    // What classification finds behind each router (tests/nat_traversal.rs).
    match kind {
        NatKind::Cone => NatProfile {
            class: NatClass::Cone,
            filtering: Filtering::AddressAndPortDependent,
            mapped: false,
        },
        NatKind::FullCone => NatProfile {
            class: NatClass::Cone,
            filtering: Filtering::EndpointIndependent,
            mapped: false,
        },
        NatKind::Symmetric => NatProfile::from_class(NatClass::Symmetric),
    }
}

#[test]
fn cone_to_cone_punches_through() {
    assert_eq!(
        pair_action(profile(NatKind::Cone), profile(NatKind::Cone)),
        PairAction::SinglePunch
    );
    let (a, _b) = punch(NatKind::Cone, NatKind::Cone);
    assert!(matches!(a.outcome, Some(PunchOutcome::Direct(_))), "{a:?}");
    assert!(a.direct_confirmed, "{a:?}");
    assert_eq!(a.stats.punches_attempted, 1);
    assert_eq!(a.stats.punches_succeeded, 1);
}

#[test]
fn symmetric_to_port_restricted_cone_cannot_punch() {
    // The refined matrix skips this punch; the bed shows why.
    assert_eq!(
        pair_action(profile(NatKind::Symmetric), profile(NatKind::Cone)),
        PairAction::SkipPunch
    );
    let (a, _) = punch(NatKind::Symmetric, NatKind::Cone);
    assert!(matches!(a.outcome, Some(PunchOutcome::Relay(_))), "{a:?}");
    assert_eq!(a.stats.punches_succeeded, 0);
}

#[test]
fn symmetric_to_symmetric_cannot_punch() {
    assert_eq!(
        pair_action(profile(NatKind::Symmetric), profile(NatKind::Symmetric)),
        PairAction::SkipPunch
    );
    let (a, _) = punch(NatKind::Symmetric, NatKind::Symmetric);
    assert!(matches!(a.outcome, Some(PunchOutcome::Relay(_))), "{a:?}");
}
