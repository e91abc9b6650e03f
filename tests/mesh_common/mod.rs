//! Shared helpers of the mesh integration tests: node construction with
//! test timings, waiting, and a raw clean-room peer built only from the
//! pure protocol modules (handshake, session, packet), so tests can put
//! arbitrary bytes on the wire.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use net::mesh::packet::PacketKind;
use net::mesh::session::Session;
use net::mesh::*;

pub const PSK_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
pub const PSK: [u8; 32] = [0x5a; 32];

/// A node with test timings; `extra` is `,"key":value...` overriding them.
pub fn node(extra: &str) -> MeshNode {
    let mut config: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&format!(
        r#"{{"psk_hex":"{PSK_HEX}","heartbeat_interval_ms":50,"session_timeout_ms":400,"hello_timeout_ms":500}}"#
    ))
    .unwrap();
    let overrides: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&format!("{{{}}}", extra.trim_start_matches(','))).unwrap();
    config.extend(overrides);
    let json = serde_json::Value::Object(config).to_string();
    MeshNode::new(MeshConfig::from_json(&json).unwrap()).unwrap()
}

/// [`node`], started (heartbeats and failure detection on).
pub fn started_node(extra: &str) -> MeshNode {
    let n = node(extra);
    n.start().unwrap();
    n
}

/// `a` connects to `b`; returns once both ends hold a bound Net session
/// (the identity exchange done).
pub fn bound_link(a: &MeshNode, b: &MeshNode) {
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    wait_until(
        || is_bound(a, b.node_id()) && is_bound(b, a.node_id()),
        "a bound Net session on both ends",
    );
}

/// Whether `n` holds a Net session (identity bound) with `peer`.
pub fn is_bound(n: &MeshNode, peer: u64) -> bool {
    n.peers()
        .iter()
        .any(|p| p.node_id == peer && p.identity == "net")
}

/// `(next_hop, hops)` of `n`'s best route to `dest`, from `routes_json`.
pub fn route_to(n: &MeshNode, dest: u64) -> Option<(u64, u64)> {
    let routes: serde_json::Value = serde_json::from_str(&n.routes_json()).unwrap();
    routes["routes"]
        .as_array()?
        .iter()
        .find(|r| r["destination"].as_u64() == Some(dest))
        .map(|r| (r["next_hop"].as_u64().unwrap(), r["hops"].as_u64().unwrap()))
}

pub fn wait_until(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The subscriber count publisher `n` shows for its channel `channel`
/// (0 when it has no such channel).
pub fn channel_subscribers(n: &MeshNode, channel: &str) -> u64 {
    let json: serde_json::Value = serde_json::from_str(&n.channels_json()).unwrap();
    json["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == channel)
        .and_then(|c| c["subscribers"].as_u64())
        .unwrap_or(0)
}

/// Receives `n` events (panics after 20 s).
pub fn recv_n(node: &MeshNode, n: usize) -> Vec<InboundEvent> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        assert!(Instant::now() < deadline, "got {} of {n} events", out.len());
        if let Ok(mut events) = node.recv(n - out.len(), Some(Duration::from_millis(100))) {
            out.append(&mut events);
        }
    }
    out
}

/// Nothing arrives within `ms`.
pub fn nothing_for(node: &MeshNode, ms: u64) -> bool {
    matches!(
        node.recv(1, Some(Duration::from_millis(ms))),
        Err(MeshError::Timeout)
    )
}

/// A clean-room peer: a plain UDP socket and a session from a routed
/// handshake, sealing whatever the test asks for.
pub struct RawPeer {
    pub sock: UdpSocket,
    pub node_id: u64,
    pub session: Session,
    pub target: SocketAddr,
    pub seq: u64,
}

impl RawPeer {
    /// Handshakes (routed form) with `target` claiming `node_id`; None if
    /// no answer comes within 500 ms.
    pub fn connect(target: &MeshNode, node_id: u64, psk: &[u8; 32]) -> Option<Self> {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        Self::connect_from(sock, target, node_id, psk)
    }

    pub fn connect_from(
        sock: UdpSocket,
        target: &MeshNode,
        node_id: u64,
        psk: &[u8; 32],
    ) -> Option<Self> {
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let init = Initiator::new(
            HandshakeForm::Routed,
            psk,
            node_id,
            target.node_id(),
            &target.public_key(),
        )
        .unwrap();
        sock.send_to(init.msg1(), target.local_addr()).unwrap();
        let mut buf = [0u8; 9000];
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            if Instant::now() > deadline {
                return None;
            }
            let Ok((n, _)) = sock.recv_from(&mut buf) else {
                return None;
            };
            // Skip anything that is not the routed msg2 (a 130-byte datagram).
            if n == 18 + 64 + 48 && buf[0..2] == [0x52, 0x54] {
                let keys = init.finish(&buf[..n]).ok()?;
                return Some(Self {
                    sock,
                    node_id,
                    session: Session::new(&keys, Role::Initiator),
                    target: target.local_addr(),
                    seq: 0,
                });
            }
        }
    }

    /// A sealed data packet of `events` on `stream_id`.
    pub fn data(&mut self, stream_id: u64, events: &[&[u8]], flags: u8) -> Vec<u8> {
        let payload = net::wire::encode_events(events).unwrap();
        let kind = PacketKind {
            flags,
            stream_id,
            sequence: self.seq,
            event_count: events.len() as u16,
            ..PacketKind::default()
        };
        self.seq += 1;
        let mut out = Vec::new();
        self.session.seal(&kind, &payload, &mut out).unwrap();
        out
    }

    pub fn send(&self, datagram: &[u8]) {
        self.sock.send_to(datagram, self.target).unwrap();
    }
}

impl RawPeer {
    /// A sealed packet of `events` on subprotocol `subprotocol` (stream id
    /// = the subprotocol id, flags 0: how v0.11 sends subprotocol traffic).
    pub fn subprotocol(&mut self, subprotocol: u16, events: &[&[u8]]) -> Vec<u8> {
        let payload = net::wire::encode_events(events).unwrap();
        let kind = PacketKind {
            subprotocol_id: subprotocol,
            stream_id: u64::from(subprotocol),
            sequence: self.seq,
            event_count: events.len() as u16,
            ..PacketKind::default()
        };
        self.seq += 1;
        let mut out = Vec::new();
        self.session.seal(&kind, &payload, &mut out).unwrap();
        out
    }

    /// The next protected packet of our session that `accept` takes, with
    /// its plaintext events; None when none comes within `timeout`.
    /// Handshakes, pingwaves and packets that do not open are skipped.
    pub fn recv_matching(
        &mut self,
        timeout: Duration,
        mut accept: impl FnMut(&net::wire::NetHeader, &[Vec<u8>]) -> bool,
    ) -> Option<(net::wire::NetHeader, Vec<Vec<u8>>)> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 9216];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            self.sock
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))
                .unwrap();
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            let packet = &mut buf[..n];
            if net::wire::classify(packet) != net::wire::DatagramClass::Direct {
                continue;
            }
            let Ok(header) = net::wire::NetHeader::decode(packet) else {
                continue;
            };
            if header.is_handshake() || header.session_id != self.session.id() {
                continue;
            }
            let Ok(opened) = self.session.open(&header, packet) else {
                continue;
            };
            let plaintext = &packet[opened.plaintext.clone()];
            let events: Vec<Vec<u8>> =
                net::wire::decode_events(plaintext, usize::from(header.event_count))
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect();
            if accept(&header, &events) {
                return Some((header, events));
            }
        }
    }
}
