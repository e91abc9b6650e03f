//! `net_mesh_*`: the encrypted UDP mesh over the C ABI.
//!
//! A `net_mesh_t` is a node (one socket, its tasks, its peers); a
//! `net_mesh_stream_t` is one stream to one peer, opened on a node. Events
//! are received from the node (`net_mesh_recv_next`), whatever their peer
//! and stream. Freeing the node shuts it down: every call blocked in it
//! (`recv_next`, `accept`, `connect`, a blocking send) returns, and later
//! calls on its streams fail with `NET_ERR_SHUTTING_DOWN`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bytes::{net_bytes_t, net_slice_t};
use super::cancel::{net_cancel_t, net_error_t};
use super::error::FfiError;
use super::export::ffi_export;
use super::handle::{self, HandleInner, opaque_handle};
use super::redex::NET_WAIT_FOREVER;
use super::status::net_status_t;
use crate::mesh::{MeshConfig, MeshError, MeshNode};

/// A mesh node. Thread-safe.
#[allow(non_camel_case_types)]
pub struct net_mesh_t {
    _opaque: [u8; 0],
}

/// One stream to one peer. Thread-safe; freeing it closes the stream.
#[allow(non_camel_case_types)]
pub struct net_mesh_stream_t {
    _opaque: [u8; 0],
}

impl From<MeshError> for FfiError {
    fn from(err: MeshError) -> Self {
        Self::new(mesh_status(&err), err.to_string())
    }
}

/// The status a mesh error maps to.
pub(crate) fn mesh_status(err: &MeshError) -> net_status_t {
    match err {
        MeshError::Config(_) => net_status_t::NET_ERR_MESH_CONFIG,
        MeshError::Io(_) => net_status_t::NET_ERR_MESH_IO,
        MeshError::HandshakeTimeout { .. } => net_status_t::NET_ERR_MESH_HANDSHAKE_TIMEOUT,
        MeshError::Handshake(_) => net_status_t::NET_ERR_INVALID_PUBLIC_KEY,
        MeshError::SessionExists(_) => net_status_t::NET_ERR_MESH_SESSION_EXISTS,
        MeshError::HandshakeInProgress(_) => net_status_t::NET_ERR_MESH_HANDSHAKE_IN_PROGRESS,
        MeshError::UnknownPeer(_) => net_status_t::NET_ERR_MESH_UNKNOWN_PEER,
        MeshError::Backpressure(_) => net_status_t::NET_ERR_MESH_BACKPRESSURE,
        MeshError::BatchExceedsWindow { .. } | MeshError::EventTooLarge(_) => {
            net_status_t::NET_ERR_MESH_TOO_LARGE
        }
        MeshError::IdentityRefused(_) => net_status_t::NET_ERR_MESH_IDENTITY_REFUSED,
        MeshError::SelfConnect
        | MeshError::SubprotocolInUse(_)
        | MeshError::Continuity(_)
        | MeshError::PeerLacks { .. } => net_status_t::NET_ERR_INVALID_ARGUMENT,
        MeshError::StreamClosed(_) => net_status_t::NET_ERR_MESH_STREAM_CLOSED,
        MeshError::NoRoute(_) => net_status_t::NET_ERR_MESH_NO_ROUTE,
        MeshError::ShuttingDown => net_status_t::NET_ERR_SHUTTING_DOWN,
        MeshError::Timeout => net_status_t::NET_TIMEOUT,
        MeshError::Cancelled => net_status_t::NET_ERR_CANCELLED,
    }
}

pub(crate) struct MeshHandle(pub(crate) Arc<MeshNode>);

impl HandleInner for MeshHandle {
    fn wake_blocked(&self) {
        self.0.shutdown();
    }
}

pub(crate) struct StreamHandle {
    node: Arc<MeshNode>,
    peer: u64,
    stream_id: u64,
}

impl HandleInner for StreamHandle {
    fn wake_blocked(&self) {
        let _ = self.node.close_stream(self.peer, self.stream_id);
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        let _ = self.node.close_stream(self.peer, self.stream_id);
    }
}

opaque_handle!(net_mesh_t => MeshHandle, kind = b"NMSH");
opaque_handle!(net_mesh_stream_t => StreamHandle, kind = b"NMST");

pub(crate) fn timeout_of(timeout_ms: u32) -> Option<Duration> {
    (timeout_ms != NET_WAIT_FOREVER).then(|| Duration::from_millis(u64::from(timeout_ms)))
}

/// Maps a send or wait outcome: a timeout is the positive `NET_TIMEOUT`.
fn outcome(result: Result<(), MeshError>) -> Result<net_status_t, FfiError> {
    match result {
        Ok(()) => Ok(net_status_t::NET_OK),
        Err(MeshError::Timeout) => Ok(net_status_t::NET_TIMEOUT),
        Err(e) => Err(e.into()),
    }
}

/// Creates a node from `config_json` (NULL/empty: defaults; keys: `bind`,
/// `psk_hex`, `identity_seed_hex`, `static_secret_hex`,
/// `heartbeat_interval_ms`, `session_timeout_ms`, `handshake_timeout_ms`,
/// `handshake_retries`, `num_shards`, `shard_capacity`, `window`,
/// `max_window` (bytes, default 4 MiB: how far a default window widens
/// between Net nodes while its sender is held back and the reader keeps
/// up; at most `window` turns that off), `window_budget` (bytes, default
/// 64 MiB), `large_datagrams` (boolean, default true: up to 65 000-byte
/// datagrams between Net nodes where the route carries them unfragmented
/// and a probe gets through), `path_probe_interval_ms` (≥ 100, default
/// 60 000), `recv_buffer`, `send_buffer`, `gso`, `gro` (booleans: the Linux UDP
/// offloads, on by default), `max_streams`, `stream_idle_timeout_ms`,
/// `connect_form` ("routed" | "direct"), `hello_timeout_ms`,
/// `require_identity`, `max_pending_handshakes`, `loopback_depth`, `aes`
/// (boolean, default true: offer AES-256-GCM to Net peers when the CPU has
/// AES instructions; false keeps ChaCha20-Poly1305; v0.11 peers always get
/// ChaCha20-Poly1305), `subnet` ("global" or 1–4 dotted levels such as
/// "3.7.2": this node's subnet), `subnet_policy` (an array of rules
/// `{"prefix":"region:","level":0,"values":{"eu":3}}` mapping capability
/// tags to subnet levels: this node's subnet when `subnet` is unset, and
/// that of peers announcing no `subnet:` tag)). The socket is bound and
/// handshakes are accepted at once.
///
/// Errors: `NET_ERR_MESH_CONFIG` naming the key (unknown keys included),
/// `NET_ERR_MESH_IO` when the socket cannot be bound.
///
/// # Safety
/// `config_json` is NULL or readable for its length; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_new(
    config_json: *const u8,
    config_json_len: usize,
    out: *mut *mut net_mesh_t,
) -> net_status_t {
    ffi_export!(opt_str config_json[config_json_len]; out out; {
        let config = MeshConfig::from_json(config_json.unwrap_or(""))
            .map_err(|e| FfiError::new(net_status_t::NET_ERR_MESH_CONFIG, e.0))?;
        let node = MeshNode::new(config)?;
        out.write(handle::into_raw(MeshHandle(Arc::new(node))));
        Ok(())
    })
}

/// Shuts the node down and frees it: blocked calls on it (and its
/// streams) return first. NULL-safe, idempotent.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s (its
/// resources are then leaked rather than freed under them; also logged).
///
/// # Safety
/// `mesh` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_free(mesh: *mut net_mesh_t) -> net_status_t {
    super::export::run(|| handle::free(mesh))
}

/// Shuts the node down without freeing it: blocked calls return
/// (`recv_next` with `NET_END`), later ones fail with
/// `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `mesh` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_close(mesh: *const net_mesh_t) -> net_status_t {
    ffi_export!(handle mesh; {
        mesh.0.shutdown();
        Ok(())
    })
}

/// The node's static X25519 public key (32 bytes): what initiators pass to
/// `net_mesh_connect`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_public_key(
    mesh: *const net_mesh_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out out; {
        out.write(net_bytes_t::from_slice(&mesh.0.public_key()));
        Ok(())
    })
}

/// The node's node_id (derived from its ed25519 identity).
///
/// # Safety
/// `mesh` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_node_id(mesh: *const net_mesh_t, out: *mut u64) -> net_status_t {
    ffi_export!(handle mesh; out out; {
        out.write(mesh.0.node_id());
        Ok(())
    })
}

/// The node's ed25519 entity id (32 bytes).
///
/// # Safety
/// `mesh` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_entity_id(
    mesh: *const net_mesh_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out out; {
        out.write(net_bytes_t::from_slice(mesh.0.entity_id().as_bytes()));
        Ok(())
    })
}

/// The bound address, as UTF-8 text ("127.0.0.1:40123").
///
/// # Safety
/// `mesh` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_local_addr(
    mesh: *const net_mesh_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out out; {
        out.write(net_bytes_t::from_vec(mesh.0.local_addr().to_string().into_bytes()));
        Ok(())
    })
}

/// Starts heartbeats, failure detection and eviction. Idempotent.
/// Handshakes are accepted before and after.
///
/// # Safety
/// `mesh` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_start(mesh: *const net_mesh_t) -> net_status_t {
    ffi_export!(handle mesh; {
        mesh.0.start()?;
        Ok(())
    })
}

fn parse_addr(addr: &str) -> Result<SocketAddr, FfiError> {
    addr.parse().map_err(|_| {
        FfiError::invalid_argument(format!("`addr`: {addr:?} is not an IP:port address"))
    })
}

/// Handshakes with node `peer_node_id` at `addr` ("IP:port") whose static
/// X25519 key is `peer_static_pub` (32 bytes), then waits briefly for the
/// identity hello (a grace of a few handshake round trips: a Net peer's
/// hello follows its handshake reply at once; a v0.11 peer sends none and
/// its binding stays pending until the hello timeout, which only the first
/// reliable-stream send waits for). Blocks up to handshake_timeout ×
/// retries.
///
/// Errors: `NET_ERR_MESH_HANDSHAKE_TIMEOUT`, `NET_ERR_MESH_SESSION_EXISTS`,
/// `NET_ERR_MESH_HANDSHAKE_IN_PROGRESS`, `NET_ERR_MESH_IDENTITY_REFUSED`,
/// `NET_ERR_SHUTTING_DOWN` (also when the node is freed meanwhile),
/// `NET_ERR_CANCELLED`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `addr` is readable for `addr_len` bytes;
/// `peer_static_pub` is readable for `peer_static_pub_len` bytes; `cancel`
/// is NULL or from libnet; `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_connect(
    mesh: *const net_mesh_t,
    addr: *const u8,
    addr_len: usize,
    peer_static_pub: *const u8,
    peer_static_pub_len: usize,
    peer_node_id: u64,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle mesh; cancel cancel; str addr[addr_len]; array peer_static_pub[peer_static_pub_len] 32; {
        let addr = parse_addr(addr)?;
        mesh.0.connect_cancellable(addr, peer_static_pub, peer_node_id, cancel.token())?;
        Ok(())
    })
}

/// Handshakes with node `peer_node_id` (static X25519 key `peer_static_pub`,
/// 32 bytes) through `relay_node_id`, one of this node's direct peers: the
/// routed handshake, forwarded by the relay. The session is relayed: its
/// packets travel routed towards the best route (the relay, or another path
/// if the relay fails), heartbeats included. The peer needs no accept.
///
/// Errors: `NET_ERR_MESH_NO_ROUTE` when `relay_node_id` is not a direct
/// peer; as `net_mesh_connect` otherwise.
///
/// # Safety
/// `mesh` is NULL or from libnet; `peer_static_pub` is readable for
/// `peer_static_pub_len` bytes; `cancel` is NULL or from libnet;
/// `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_connect_via(
    mesh: *const net_mesh_t,
    relay_node_id: u64,
    peer_static_pub: *const u8,
    peer_static_pub_len: usize,
    peer_node_id: u64,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle mesh; cancel cancel; array peer_static_pub[peer_static_pub_len] 32; {
        mesh.0.connect_via(relay_node_id, peer_static_pub, peer_node_id, cancel.token())?;
        Ok(())
    })
}

/// `net_mesh_connect_via` through the next hop of the routing table's best
/// route to `peer_node_id` (routes are learned from pingwaves once the
/// nodes on the path run `net_mesh_start`; see `net_mesh_routes`).
///
/// Errors: `NET_ERR_MESH_NO_ROUTE` when no route to `peer_node_id` is
/// known; as `net_mesh_connect_via` otherwise.
///
/// # Safety
/// As `net_mesh_connect_via`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_connect_routed(
    mesh: *const net_mesh_t,
    peer_static_pub: *const u8,
    peer_static_pub_len: usize,
    peer_node_id: u64,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle mesh; cancel cancel; array peer_static_pub[peer_static_pub_len] 32; {
        mesh.0.connect_routed(peer_static_pub, peer_node_id, cancel.token())?;
        Ok(())
    })
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit) for node
/// `peer_node_id` to handshake in the direct form; writes its address as
/// text. Routed handshakes need no accept.
///
/// Returns `NET_OK`, `NET_TIMEOUT`, or an error (`NET_ERR_SHUTTING_DOWN`
/// when the node is shut down or freed meanwhile, `NET_ERR_CANCELLED`).
///
/// # Safety
/// `mesh` is NULL or from libnet; `addr_out` is valid for one write;
/// `cancel` is NULL or from libnet; `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_accept(
    mesh: *const net_mesh_t,
    peer_node_id: u64,
    timeout_ms: u32,
    addr_out: *mut net_bytes_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle mesh; cancel cancel; out addr_out; {
        match mesh.0.accept_cancellable(peer_node_id, timeout_of(timeout_ms), cancel.token()) {
            Ok(addr) => {
                addr_out.write(net_bytes_t::from_vec(addr.to_string().into_bytes()));
                Ok(net_status_t::NET_OK)
            }
            Err(MeshError::Timeout) => Ok(net_status_t::NET_TIMEOUT),
            Err(e) => Err(e.into()),
        }
    })
}

/// Opens stream `stream_id` to `peer` (reliable or fire-and-forget) with a
/// send window of `window` bytes (`UINT64_MAX`: the node's default; 0:
/// unlimited). Opening an id again before its first send reconfigures it.
///
/// Errors: `NET_ERR_MESH_UNKNOWN_PEER`, `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_open_stream(
    mesh: *const net_mesh_t,
    peer: u64,
    stream_id: u64,
    reliable: bool,
    window: u64,
    out: *mut *mut net_mesh_stream_t,
) -> net_status_t {
    ffi_export!(handle mesh; out out; {
        out.write(open_stream_handle(mesh, peer, stream_id, reliable, window, false)?);
        Ok(())
    })
}

/// Opens stream `stream_id` to `peer` as `net_mesh_open_stream` does, as a
/// causal stream: its packets carry subprotocol 0x0400, so each event is
/// read as CausalLink frames (`u32 LE length (32 + payload) ‖ 32-byte link
/// ‖ payload`, concatenated). A Net receiver checks the frames of every
/// chain it follows (`net_mesh_follow_chain`) as they arrive, in stream
/// order on a reliable stream, and proves the chain against this node
/// every `proof_interval_ms`; the sender checks the frames it sends for
/// the chains it follows. Events reach the receiving application as on
/// any stream. Opening an existing id as causal (or plain) applies to the
/// packets written from then on.
///
/// Errors: as `net_mesh_open_stream`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_open_causal_stream(
    mesh: *const net_mesh_t,
    peer: u64,
    stream_id: u64,
    reliable: bool,
    window: u64,
    out: *mut *mut net_mesh_stream_t,
) -> net_status_t {
    ffi_export!(handle mesh; out out; {
        out.write(open_stream_handle(mesh, peer, stream_id, reliable, window, true)?);
        Ok(())
    })
}

/// Opens a plain or causal stream (`window` `UINT64_MAX`: the default)
/// and hands out its handle.
fn open_stream_handle(
    mesh: &MeshHandle,
    peer: u64,
    stream_id: u64,
    reliable: bool,
    window: u64,
    causal: bool,
) -> Result<*mut net_mesh_stream_t, MeshError> {
    let window = (window != u64::MAX).then_some(window);
    if causal {
        mesh.0
            .open_causal_stream(peer, stream_id, reliable, window)?;
    } else {
        mesh.0.open_stream(peer, stream_id, reliable, window)?;
    }
    Ok(handle::into_raw(StreamHandle {
        node: mesh.0.clone(),
        peer,
        stream_id,
    }))
}

/// Sends `count` events now, or none: `NET_ERR_MESH_BACKPRESSURE` when the
/// window cannot take them all. Events are framed into as few packets as fit.
///
/// Errors: also `NET_ERR_MESH_TOO_LARGE`, `NET_ERR_MESH_UNKNOWN_PEER`,
/// `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `stream` is NULL or from libnet; `events` points to `count` slices, each
/// readable for its length (NULL when `count` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_stream_send(
    stream: *const net_mesh_stream_t,
    events: *const net_slice_t,
    count: usize,
) -> net_status_t {
    ffi_export!(handle stream; slices events[count]; {
        stream.node.send(stream.peer, stream.stream_id, &events)?;
        Ok(())
    })
}

/// Sends `count` events, waiting for credit packet by packet, up to
/// `timeout_ms` (`NET_WAIT_FOREVER`: no limit). Returns `NET_OK`,
/// `NET_TIMEOUT` (the packets before the one that timed out were sent), or
/// an error (`NET_ERR_MESH_STREAM_CLOSED` when the stream handle is freed
/// meanwhile, `NET_ERR_SHUTTING_DOWN` when the node is, `NET_ERR_CANCELLED`;
/// the packets before the one it waited for were sent).
///
/// # Safety
/// As `net_mesh_stream_send`; `cancel` is NULL or from libnet; `error_out` is
/// NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_stream_send_blocking(
    stream: *const net_mesh_stream_t,
    events: *const net_slice_t,
    count: usize,
    timeout_ms: u32,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle stream; cancel cancel; slices events[count]; {
        let deadline = timeout_of(timeout_ms).and_then(|t| Instant::now().checked_add(t));
        outcome(stream.node.send_blocking_cancellable(
            stream.peer,
            stream.stream_id,
            &events,
            deadline,
            cancel.token(),
        ))
    })
}

/// The stream's peer and id.
///
/// # Safety
/// `stream` is NULL or from libnet; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_stream_info(
    stream: *const net_mesh_stream_t,
    peer_out: *mut u64,
    stream_id_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle stream; out peer_out; out stream_id_out; {
        peer_out.write(stream.peer);
        stream_id_out.write(stream.stream_id);
        Ok(())
    })
}

/// Closes the stream and frees the handle; a blocking send on it returns
/// `NET_ERR_MESH_STREAM_CLOSED` first. NULL-safe, idempotent.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s (its
/// resources are then leaked rather than freed under them; also logged).
///
/// # Safety
/// `stream` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_stream_free(stream: *mut net_mesh_stream_t) -> net_status_t {
    super::export::run(|| handle::free(stream))
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit) for the next
/// received event, from any peer and stream (inbound shards are drained
/// round-robin). Returns `NET_OK` with the sender's node_id, the stream,
/// the bytes and (when `dropped_before_out` is not NULL) the number of
/// events of that stream dropped just before this one because the inbound
/// queue was full (only senders that do not wait for credit cause drops),
/// and (when `channel_out` is not NULL) the name of the channel the event
/// was published on — empty bytes for an ordinary stream, or a publish
/// stream this node holds no subscription for; `NET_TIMEOUT`; `NET_END`
/// once the node is shut down (also when it is freed during the call); or
/// `NET_ERR_CANCELLED` (nothing taken).
///
/// # Safety
/// `mesh` is NULL or from libnet; the outputs are valid for one write
/// (`dropped_before_out` and `channel_out` may be NULL); `cancel` is NULL or
/// from libnet; `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_recv_next(
    mesh: *const net_mesh_t,
    timeout_ms: u32,
    peer_out: *mut u64,
    stream_id_out: *mut u64,
    data_out: *mut net_bytes_t,
    dropped_before_out: *mut u64,
    channel_out: *mut net_bytes_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle mesh; cancel cancel; out peer_out; out stream_id_out; out data_out; {
        match mesh.0.recv_cancellable(1, timeout_of(timeout_ms), cancel.token()).map(|mut v| v.remove(0)) {
            Ok(event) => {
                peer_out.write(event.peer);
                stream_id_out.write(event.stream_id);
                if !dropped_before_out.is_null() {
                    // SAFETY: the caller passes NULL or a pointer valid for one write.
                    unsafe { dropped_before_out.write(event.dropped_before) };
                }
                if !channel_out.is_null() {
                    let name = event.channel.as_ref().map_or("", |c| c.as_str());
                    let name = net_bytes_t::from_vec(name.as_bytes().to_vec());
                    // SAFETY: the caller passes NULL or a pointer valid for one write.
                    unsafe { channel_out.write(name) };
                }
                data_out.write(net_bytes_t::from_vec(event.data));
                Ok(net_status_t::NET_OK)
            }
            Err(MeshError::Timeout) => Ok(net_status_t::NET_TIMEOUT),
            Err(MeshError::ShuttingDown) => Ok(net_status_t::NET_END),
            Err(e) => Err(e.into()),
        }
    })
}

/// Bytes before each record's event in `net_mesh_recv_batch`'s buffer.
const RECORD_HEADER: usize = 8 + 8 + 8 + 4 + 2;

/// Up to `max` received events as one buffer of records
/// `peer u64 LE ‖ stream_id u64 LE ‖ dropped_before u64 LE ‖ len u32 LE ‖
/// channel_len u16 LE ‖ channel ‖ bytes` (`dropped_before` and the channel
/// name as in `net_mesh_recv_next`; `channel_len` 0: none), waiting up to
/// `timeout_ms` for the first; `*count_out` is the number of records.
/// Returns `NET_OK`, `NET_TIMEOUT`, `NET_END` (shut down or freed) or
/// `NET_ERR_CANCELLED` (nothing taken).
///
/// # Safety
/// `mesh` is NULL or from libnet; the outputs are valid for one write;
/// `cancel` is NULL or from libnet; `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_recv_batch(
    mesh: *const net_mesh_t,
    max: usize,
    timeout_ms: u32,
    records_out: *mut net_bytes_t,
    count_out: *mut usize,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    fn channel(e: &crate::mesh::InboundEvent) -> &[u8] {
        e.channel
            .as_ref()
            .map_or(&[][..], |c| c.as_str().as_bytes())
    }
    ffi_export!(error_out error_out; handle mesh; cancel cancel; out records_out; out count_out; {
        match mesh.0.recv_cancellable(max.max(1), timeout_of(timeout_ms), cancel.token()) {
            Ok(events) => {
                let size = events
                    .iter()
                    .map(|e| RECORD_HEADER + channel(e).len() + e.data.len())
                    .sum();
                let mut buf = Vec::with_capacity(size);
                for e in &events {
                    buf.extend_from_slice(&e.peer.to_le_bytes());
                    buf.extend_from_slice(&e.stream_id.to_le_bytes());
                    buf.extend_from_slice(&e.dropped_before.to_le_bytes());
                    buf.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
                    // Channel names are at most 255 bytes (ChannelName's rule).
                    buf.extend_from_slice(&(channel(e).len() as u16).to_le_bytes());
                    buf.extend_from_slice(channel(e));
                    buf.extend_from_slice(&e.data);
                }
                records_out.write(net_bytes_t::from_vec(buf));
                count_out.write(events.len());
                Ok(net_status_t::NET_OK)
            }
            Err(MeshError::Timeout) => Ok(net_status_t::NET_TIMEOUT),
            Err(MeshError::ShuttingDown) => Ok(net_status_t::NET_END),
            Err(e) => Err(e.into()),
        }
    })
}

/// The peers as a JSON array of objects: `node_id`, `addr`, `session_id`,
/// `health` ("alive" | "suspected" | "failed"), `identity` ("net" |
/// "legacy" | "pending"), `entity` (hex or null), `streams`, `idle_ms`,
/// `cipher` ("chacha20-poly1305" | "aes-256-gcm": what data packets to the
/// peer are sealed with), `dropped_unreported` (events from it dropped for
/// want of queue room and not yet reported on a later event), `relay` (the
/// node_id of the relay a `net_mesh_connect_via` session goes through;
/// null for a direct peer), `subnet` (its subnet as this node knows it,
/// "global" or dotted levels; null when unknown). u64 values are exact
/// JSON integers.
///
/// # Safety
/// `mesh` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_peers(
    mesh: *const net_mesh_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out json_out; {
        json_out.write(net_bytes_t::from_vec(mesh.0.peers_json().into_bytes()));
        Ok(())
    })
}

/// The routing table as a JSON object: `node_id`; `routes`, one per
/// reachable destination in id order (`destination`, `next_hop` (the direct
/// peer packets go to), `hops`, `kind` ("direct" | "relayed" | "learned"),
/// `age_ms`, `stale`, `alternates`); the `forwarding` counters (`forwarded`,
/// `delivered`, `dropped_*`) and the `pingwaves` counters (`sent`,
/// `accepted`, `relayed`, `duplicate`, `dropped_*`). u64 values are exact
/// JSON integers.
///
/// # Safety
/// `mesh` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_routes(
    mesh: *const net_mesh_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out json_out; {
        json_out.write(net_bytes_t::from_vec(mesh.0.routes_json().into_bytes()));
        Ok(())
    })
}

/// The node's counters as a JSON object (datagrams and bytes each way,
/// events, handshakes, rejections by reason, retransmissions, grants,
/// heartbeats, drops; `subnet_blocked`: channel packets not handed to a hop
/// outside their subnet).
///
/// # Safety
/// `mesh` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_stats(
    mesh: *const net_mesh_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out json_out; {
        json_out.write(net_bytes_t::from_vec(mesh.0.stats_json().into_bytes()));
        Ok(())
    })
}
