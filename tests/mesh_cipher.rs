//! The cipher negotiation between Net nodes (docs/mesh.md, "Ciphers"):
//! two Net nodes whose CPUs have AES instructions move their data packets
//! to AES-256-GCM once the identity binding is complete both ways, and
//! keep everything else (hellos, grants, heartbeats) on ChaCha20-Poly1305;
//! `"aes":false` on either side, or a v0.11 peer, keeps ChaCha; an
//! AES-flagged packet towards a node that did not offer AES is refused.
//!
//! On a machine without AES instructions no node offers AES, and the
//! tests check that everything stays on ChaCha instead.

mod mesh_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mesh_common::*;
use net::mesh::crypto::aes_hardware;
use net::mesh::*;
use net::wire::{HEADER_SIZE, NetHeader, ROUTING_HEADER_SIZE, flags, ids};

const CHACHA: &str = "chacha20-poly1305";
const AES: &str = "aes-256-gcm";

/// What two Net nodes that both allow AES end up with on this machine.
fn negotiated() -> &'static str {
    if aes_hardware() { AES } else { CHACHA }
}

/// Counts a node's outbound protected packets by cipher and kind, then
/// hands them to `inner` (loss, reordering…) when there is one.
#[derive(Default)]
struct CipherTap {
    chacha_data: AtomicU64,
    aes_data: AtomicU64,
    /// Hellos, grants and heartbeats sealed with AES: must stay 0.
    aes_control: AtomicU64,
    inner: Option<Arc<dyn PacketFilter>>,
}

impl CipherTap {
    fn over(inner: Arc<dyn PacketFilter>) -> Self {
        Self {
            inner: Some(inner),
            ..Self::default()
        }
    }

    fn count(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

impl PacketFilter for CipherTap {
    fn outbound(&self, to: SocketAddr, datagram: &[u8]) -> Verdict {
        let packet = if datagram.starts_with(&[0x52, 0x54]) {
            datagram.get(ROUTING_HEADER_SIZE..).unwrap_or(&[])
        } else {
            datagram
        };
        if let Ok(header) = NetHeader::decode(packet)
            && !header.is_handshake()
        {
            let aes = header.flags & flags::AES_256_GCM != 0;
            let control = header.is_heartbeat() || header.subprotocol_id == ids::STREAM_WINDOW;
            let counter = match (control, aes) {
                (true, true) => Some(&self.aes_control),
                (false, true) => Some(&self.aes_data),
                (false, false) => Some(&self.chacha_data),
                (true, false) => None,
            };
            if let Some(c) = counter {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        match &self.inner {
            Some(inner) => inner.outbound(to, datagram),
            None => Verdict::Pass,
        }
    }
}

/// Two started nodes, `a` connected to `b`, each with its tap installed
/// before the handshake.
fn tapped_pair(
    extra_a: &str,
    extra_b: &str,
    tap_a: Arc<CipherTap>,
    tap_b: Arc<CipherTap>,
) -> (Arc<MeshNode>, Arc<MeshNode>) {
    let a = node(extra_a);
    let b = node(extra_b);
    a.set_filter(Some(tap_a));
    b.set_filter(Some(tap_b));
    a.start().unwrap();
    b.start().unwrap();
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    wait_until(|| !b.peers().is_empty(), "b sees a");
    (Arc::new(a), Arc::new(b))
}

fn cipher_of(node: &MeshNode) -> String {
    let peers: serde_json::Value = serde_json::from_str(&node.peers_json()).unwrap();
    peers[0]["cipher"].as_str().unwrap().to_string()
}

fn wait_bound(a: &MeshNode, b: &MeshNode) {
    wait_until(
        || a.peers()[0].identity == "net" && b.peers()[0].identity == "net",
        "identity binding both ways",
    );
}

/// Events both ways, checked.
fn exchange(a: &MeshNode, b: &MeshNode, n: u32) {
    for i in 0..n {
        a.send(b.node_id(), 7, &[&i.to_le_bytes()[..]]).unwrap();
        b.send(a.node_id(), 9, &[&(i + 1000).to_le_bytes()[..]])
            .unwrap();
    }
    let at_b = recv_n(b, n as usize);
    let at_a = recv_n(a, n as usize);
    let values = |events: &[InboundEvent]| -> Vec<u32> {
        events
            .iter()
            .map(|e| u32::from_le_bytes(e.data[..4].try_into().unwrap()))
            .collect()
    };
    assert_eq!(values(&at_b), (0..n).collect::<Vec<_>>());
    assert_eq!(values(&at_a), (1000..1000 + n).collect::<Vec<_>>());
    assert!(
        at_b.iter()
            .all(|e| (e.peer, e.stream_id) == (a.node_id(), 7))
    );
    assert!(
        at_a.iter()
            .all(|e| (e.peer, e.stream_id) == (b.node_id(), 9))
    );
}

#[test]
fn net_nodes_switch_to_aes_and_deliver_both_ways() {
    let (tap_a, tap_b) = (
        Arc::new(CipherTap::default()),
        Arc::new(CipherTap::default()),
    );
    let (a, b) = tapped_pair("", "", tap_a.clone(), tap_b.clone());
    // Events sent while the binding completes cross the switch: the early
    // ones are ChaCha, the later ones AES, and all of them open.
    let early = {
        let (a, peer) = (a.clone(), b.node_id());
        std::thread::spawn(move || {
            for i in 0..300u32 {
                let deadline = Some(Instant::now() + Duration::from_secs(10));
                a.send_blocking(peer, 3, &[&i.to_le_bytes()[..]], deadline)
                    .unwrap();
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let got = recv_n(&b, 300);
    early.join().unwrap();
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, e)| e.data == (i as u32).to_le_bytes())
    );
    wait_bound(&a, &b);
    wait_until(
        || cipher_of(&a) == negotiated() && cipher_of(&b) == negotiated(),
        "both sides send with the negotiated cipher",
    );
    let (aes_a, aes_b) = (
        CipherTap::count(&tap_a.aes_data),
        CipherTap::count(&tap_b.aes_data),
    );
    exchange(&a, &b, 50);
    if aes_hardware() {
        assert!(CipherTap::count(&tap_a.aes_data) > aes_a);
        assert!(CipherTap::count(&tap_b.aes_data) > aes_b);
    } else {
        assert_eq!(CipherTap::count(&tap_a.aes_data), 0);
        assert_eq!(CipherTap::count(&tap_b.aes_data), 0);
    }
    // Hellos, grants and heartbeats never leave ChaCha.
    a_few_heartbeats(&a, &b);
    assert_eq!(CipherTap::count(&tap_a.aes_control), 0);
    assert_eq!(CipherTap::count(&tap_b.aes_control), 0);
    assert_eq!(a.stat("auth_failures") + b.stat("auth_failures"), 0);
}

#[test]
fn reliable_stream_under_loss_with_the_negotiated_cipher() {
    let (tap_a, tap_b) = (
        Arc::new(CipherTap::default()),
        Arc::new(CipherTap::default()),
    );
    // v0.11-sized datagrams: 2000 small events must make enough packets
    // for the loss to hit some (one 64 KiB datagram could hold them all).
    let small = r#","large_datagrams":false"#;
    let (a, b) = tapped_pair(small, small, tap_a, tap_b);
    wait_bound(&a, &b);
    wait_until(
        || cipher_of(&a) == negotiated() && cipher_of(&b) == negotiated(),
        "negotiated",
    );
    // Loss, duplication and reordering both ways (acks and grants too).
    let lossy = |seed| -> Arc<dyn PacketFilter> {
        Arc::new(NetemFilter::new(
            0.20,
            0.05,
            0.10,
            Duration::from_millis(15),
            seed,
        ))
    };
    let tap_a = Arc::new(CipherTap::over(lossy(42)));
    a.set_filter(Some(tap_a.clone()));
    b.set_filter(Some(Arc::new(CipherTap::over(lossy(7)))));
    a.open_stream(b.node_id(), 5, true, None).unwrap();
    // Credit comes back as the application takes the events: read while
    // the sender waits for it.
    let n = 2000u32;
    let reader = {
        let b = b.clone();
        std::thread::spawn(move || recv_n(&b, n as usize))
    };
    for i in 0..n {
        a.send_blocking(
            b.node_id(),
            5,
            &[&i.to_le_bytes()[..]],
            Some(Instant::now() + Duration::from_secs(20)),
        )
        .unwrap();
    }
    let got = reader.join().unwrap();
    let seq: Vec<u32> = got
        .iter()
        .map(|e| u32::from_le_bytes(e.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(seq, (0..n).collect::<Vec<_>>(), "in order, exactly once");
    assert!(nothing_for(&b, 300), "no duplicates trickle in");
    assert!(a.stat("retransmits") > 0);
    let aes = CipherTap::count(&tap_a.aes_data);
    let chacha = CipherTap::count(&tap_a.chacha_data);
    if aes_hardware() {
        // Every data packet and retransmission after the switch is AES.
        assert!(aes > 0 && chacha == 0, "aes {aes}, chacha {chacha}");
    } else {
        assert!(aes == 0 && chacha > 0, "aes {aes}, chacha {chacha}");
    }
    assert_eq!(CipherTap::count(&tap_a.aes_control), 0);
}

#[test]
fn aes_false_on_either_side_keeps_chacha() {
    for (extra_a, extra_b) in [(r#""aes":false"#, ""), ("", r#""aes":false"#)] {
        let (tap_a, tap_b) = (
            Arc::new(CipherTap::default()),
            Arc::new(CipherTap::default()),
        );
        let (a, b) = tapped_pair(extra_a, extra_b, tap_a.clone(), tap_b.clone());
        wait_bound(&a, &b);
        exchange(&a, &b, 50);
        // Give a (wrong) switch every chance to happen: a few heartbeat
        // rounds after the binding settled.
        a_few_heartbeats(&a, &b);
        exchange(&a, &b, 10);
        assert_eq!(
            (cipher_of(&a), cipher_of(&b)),
            (CHACHA.into(), CHACHA.into())
        );
        for tap in [&tap_a, &tap_b] {
            assert_eq!(CipherTap::count(&tap.aes_data), 0, "{extra_a} / {extra_b}");
            assert_eq!(CipherTap::count(&tap.aes_control), 0);
            assert!(CipherTap::count(&tap.chacha_data) > 0);
        }
    }
}

#[test]
fn a_v011_peer_keeps_chacha() {
    let b = node("");
    b.start().unwrap();
    let mut raw = RawPeer::connect(&b, 0xAAAA_0011, &PSK).expect("handshake");
    let first = raw.data(1, &[b"from v0.11"], 0);
    raw.send(&first);
    assert_eq!(recv_n(&b, 1)[0].data, b"from v0.11");
    // It never answers the hello: a v0.11 peer, and ChaCha.
    wait_until(|| b.peers()[0].identity == "legacy", "legacy peer");
    assert_eq!(cipher_of(&b), CHACHA);
    b.send(raw.node_id, 3, &[b"to v0.11"]).unwrap();
    // Its data packet (past hellos and heartbeats) opens under ChaCha.
    let mut buf = [0u8; 9000];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no data packet arrived");
        let Ok((len, _)) = raw.sock.recv_from(&mut buf) else {
            continue;
        };
        let packet = &mut buf[..len];
        let Ok(header) = NetHeader::decode(packet) else {
            continue; // a pingwave
        };
        assert_eq!(header.flags & flags::AES_256_GCM, 0);
        if header.stream_id != 3 {
            continue;
        }
        let opened = raw.session.open(&header, packet).unwrap();
        let events =
            net::wire::decode_events(&packet[opened.plaintext], usize::from(header.event_count));
        assert_eq!(events, vec![&b"to v0.11"[..]]);
        break;
    }
    assert_eq!(b.stat("auth_failures"), 0);
}

#[test]
fn aes_packets_towards_a_node_that_did_not_offer_aes_are_refused() {
    // "aes":false refuses them; so does a node that offers AES but never
    // verified a hello from this peer (a raw peer sends none).
    for extra in [r#""aes":false"#, ""] {
        let b = node(extra);
        b.start().unwrap();
        let mut raw = RawPeer::connect(&b, 0xAAAA_0012, &PSK).expect("handshake");
        raw.session.enable_aes(false, true);
        let aes = raw.data(1, &[b"sealed with aes"], 0);
        assert_ne!(aes[3] & flags::AES_256_GCM, 0);
        assert_eq!(aes.len(), HEADER_SIZE + 4 + 15 + 16);
        raw.send(&aes);
        assert!(nothing_for(&b, 150));
        assert_eq!(b.stat("auth_failures"), 1, "{extra}: {}", b.stats_json());
        // The same peer with ChaCha is fine (the refused counter burned
        // nothing in the window).
        raw.session.enable_aes(false, false);
        let chacha = raw.data(1, &[b"sealed with chacha"], 0);
        raw.send(&chacha);
        assert_eq!(recv_n(&b, 1)[0].data, b"sealed with chacha");
        assert_eq!(cipher_of(&b), CHACHA);
    }
}

/// Waits until each node has sent two more heartbeats.
fn a_few_heartbeats(a: &MeshNode, b: &MeshNode) {
    let (ha, hb) = (a.stat("heartbeats_sent"), b.stat("heartbeats_sent"));
    mesh_common::wait_until(
        || a.stat("heartbeats_sent") >= ha + 2 && b.stat("heartbeats_sent") >= hb + 2,
        "two more heartbeats each",
    );
}
