//! Net's two roles: a `MeshNode` per process, paired with a PSK (as in
//! `benches/mesh.rs`), one stream, `send_blocking` with the default window
//! so the sender waits for credit instead of overrunning the receiver.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use net::mesh::{MeshConfig, MeshError, MeshNode};
use serde_json::{Value, json};

use crate::child::{Control, emit, rtt_summary};
use crate::workload::{PING_SIZE, System, Workload};

const PSK: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
/// The data stream (sender → receiver), also the ping direction.
const DATA_STREAM: u64 = 1;
/// The pong direction (receiver → sender).
const PONG_STREAM: u64 = 2;
/// Events taken per `recv` call.
const RECV_MAX: usize = 4096;
/// How long a blocking call waits before the loop looks at `stop` again.
const POLL: Duration = Duration::from_millis(20);
/// How long a `send_blocking` may wait for credit; a timeout is counted (a
/// stall worth seeing), not fatal.
const SEND_DEADLINE: Duration = Duration::from_secs(1);
/// How long the pinger waits for a pong before sending the next ping.
const PONG_TIMEOUT: Duration = Duration::from_millis(500);

/// Defaults but for the PSK and 4 MiB socket buffers (the kernel's
/// `rmem_max` here): the stream window is the default one.
fn node() -> Result<MeshNode, String> {
    // MESH2P_NET_CONFIG: extra keys for side runs (e.g. `"large_datagrams":false`).
    let extra = std::env::var("MESH2P_NET_CONFIG").unwrap_or_default();
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(",{extra}")
    };
    let json = format!(
        r#"{{"psk_hex":"{PSK}","recv_buffer":4194304,"send_buffer":4194304{extra}}}"#
    );
    let config = MeshConfig::from_json(&json).map_err(|e| e.to_string())?;
    MeshNode::new(config).map_err(|e| format!("MeshNode::new: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn stats(node: &MeshNode) -> Value {
    serde_json::from_str(&node.stats_json()).unwrap_or(Value::Null)
}

/// Receives until `stop`, counting events; echoes pings on a stream of the
/// same kind.
pub fn receiver(system: System, workload: Workload, control: &Control) -> Result<Value, String> {
    let node = node()?;
    let peer = format!(
        "{}|{}|{}",
        node.local_addr(),
        hex(&node.public_key()),
        node.node_id()
    );
    emit(&json!({"ready": {"peer": peer}}));
    let reliable = system == System::NetReliable;
    let mut pong_to = None;
    while !control.stopped() {
        match workload {
            Workload::Stream { .. } => match node.recv(RECV_MAX, Some(POLL)) {
                Ok(events) => control.add(events.len() as u64),
                Err(MeshError::Timeout) => {}
                Err(e) => return Err(format!("recv: {e}")),
            },
            Workload::PingPong => match node.recv_next(Some(POLL)) {
                Ok(ping) => {
                    if pong_to != Some(ping.peer) {
                        node.open_stream(ping.peer, PONG_STREAM, reliable, None)
                            .map_err(|e| format!("open_stream: {e}"))?;
                        pong_to = Some(ping.peer);
                    }
                    let deadline = Some(Instant::now() + SEND_DEADLINE);
                    node.send_blocking(ping.peer, PONG_STREAM, &[&ping.data], deadline)
                        .map_err(|e| format!("pong: {e}"))?;
                    control.add(1);
                }
                Err(MeshError::Timeout) => {}
                Err(e) => return Err(format!("recv: {e}")),
            },
        }
    }
    let stats = stats(&node);
    node.shutdown();
    Ok(json!({"count": control.count.load(std::sync::atomic::Ordering::Relaxed), "stats": stats}))
}

/// Connects to the receiver named by `peer` (`addr|key hex|node_id`), then
/// sends from `go` until `stop`.
pub fn sender(
    system: System,
    workload: Workload,
    peer: &str,
    control: &Control,
) -> Result<Value, String> {
    let parts: Vec<&str> = peer.split('|').collect();
    let (addr, key, peer_id) = match parts.as_slice() {
        [addr, key, id] => (
            addr.parse::<SocketAddr>().map_err(|e| e.to_string())?,
            unhex32(key).ok_or("bad peer key")?,
            id.parse::<u64>().map_err(|e| e.to_string())?,
        ),
        _ => return Err(format!("bad --peer {peer:?}")),
    };
    let node = node()?;
    node.connect(addr, &key, peer_id)
        .map_err(|e| format!("connect: {e}"))?;
    node.open_stream(peer_id, DATA_STREAM, system == System::NetReliable, None)
        .map_err(|e| format!("open_stream: {e}"))?;
    emit(&json!({"ready": {}}));
    let mut send_timeouts = 0u64;
    let mut pong_timeouts = 0u64;
    if control.wait_go() {
        match workload {
            Workload::Stream { size, per_call } => {
                let events = vec![vec![0xa5u8; size]; per_call];
                while !control.stopped() {
                    let deadline = Some(Instant::now() + SEND_DEADLINE);
                    match node.send_blocking(peer_id, DATA_STREAM, &events, deadline) {
                        Ok(()) => control.add(per_call as u64),
                        Err(MeshError::Timeout) => send_timeouts += 1,
                        Err(e) => return Err(format!("send_blocking: {e}")),
                    }
                }
            }
            Workload::PingPong => {
                let mut ping = vec![0u8; PING_SIZE];
                let mut seq = 0u64;
                while !control.stopped() {
                    seq += 1;
                    ping[..8].copy_from_slice(&seq.to_le_bytes());
                    let sent = Instant::now();
                    let deadline = Some(sent + SEND_DEADLINE);
                    match node.send_blocking(peer_id, DATA_STREAM, &[&ping], deadline) {
                        Ok(()) => {}
                        Err(MeshError::Timeout) => {
                            send_timeouts += 1;
                            continue;
                        }
                        Err(e) => return Err(format!("ping: {e}")),
                    }
                    if wait_pong(&node, seq, sent + PONG_TIMEOUT)? {
                        control.record_rtt(sent.elapsed());
                        control.add(1);
                    } else {
                        pong_timeouts += 1;
                    }
                }
            }
        }
    }
    control.stopped_then_wait_close();
    let stats = stats(&node);
    node.shutdown();
    Ok(json!({
        "count": control.count.load(std::sync::atomic::Ordering::Relaxed),
        "send_timeouts": send_timeouts,
        "pong_timeouts": pong_timeouts,
        "rtt": rtt_summary(control),
        "stats": stats,
    }))
}

/// Waits for the pong carrying `seq` (older ones are skipped); false at
/// `deadline`.
fn wait_pong(node: &MeshNode, seq: u64, deadline: Instant) -> Result<bool, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        match node.recv_next(Some(left)) {
            Ok(pong) if pong.data.get(..8) == Some(&seq.to_le_bytes()[..]) => return Ok(true),
            Ok(_) | Err(MeshError::Timeout) => {}
            Err(e) => return Err(format!("recv pong: {e}")),
        }
    }
}
