//! `net_mesh_*` NAT calls: where the node's NAT stands (class, reflex,
//! RFC 4787 detail), the operator's reflex override, and a classification
//! round on demand, and `net_mesh_connect_direct` (hole punching through a
//! coordinator; a relayed session moves to the punched path).
//! Classification itself runs by itself on the node
//! (`src/mesh/node/traversal.rs`).

use super::bytes::net_bytes_t;
use super::cancel::{net_cancel_t, net_error_t};
use super::error::FfiError;
use super::export::ffi_export;
use super::mesh::net_mesh_t;
use super::status::net_status_t;

/// The node's NAT as a JSON object: `class` ("open" | "cone" |
/// "symmetric" | "unknown": what the `nat:*` capability tag says),
/// `reflex` ("IP:port" peers can reach us at, or null — never a private,
/// loopback or wildcard address), `mapping` and `filtering` (the RFC 4787
/// behaviours the last round showed: "None", "EndpointIndependent",
/// "AddressDependent", "AddressAndPortDependent", "Dependent", "Unknown"),
/// `port_preserving`, `override` ("IP:port" or null), `rounds`
/// (classification rounds committed), `classify` (whether the node
/// classifies by itself: config `nat_classify`).
///
/// # Safety
/// `mesh` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_nat(
    mesh: *const net_mesh_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out json_out; {
        json_out.write(net_bytes_t::from_vec(mesh.0.nat_json().into_bytes()));
        Ok(())
    })
}

/// Sets the operator's reflex override to `addr` ("IP:port", a public
/// address: class Open with that reflex, classification paused), or
/// clears it when `addr` is NULL. A node that announced capabilities
/// re-announces at once with the new `nat:*` tag and reflex.
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` naming `addr` when it is not an
/// IP:port address or is private, loopback, a wildcard or port 0.
///
/// # Safety
/// `mesh` is NULL or from libnet; `addr` is NULL or readable for
/// `addr_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_set_reflex_override(
    mesh: *const net_mesh_t,
    addr: *const u8,
    addr_len: usize,
) -> net_status_t {
    ffi_export!(handle mesh; opt_str addr[addr_len]; {
        let addr = match addr {
            None => None,
            Some(text) => {
                let parsed: std::net::SocketAddr = text.parse().map_err(|_| {
                    FfiError::invalid_argument(format!("`addr`: {text:?} is not an IP:port address"))
                })?;
                if !crate::mesh::traversal::is_advertisable(parsed) {
                    return Err(FfiError::invalid_argument(format!(
                        "`addr`: {parsed} is not reachable from other networks (private, loopback, wildcard or port 0)"
                    )));
                }
                Some(parsed)
            }
        };
        mesh.0.set_reflex_override(addr);
        Ok(())
    })
}

/// Starts a NAT classification round now (as when the local address
/// changed). It probes up to three direct Net peers on distinct IP
/// addresses; with fewer than two it waits for more. Returns at once;
/// `net_mesh_nat`'s `rounds` counts the rounds committed.
///
/// # Safety
/// `mesh` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_reclassify_nat(mesh: *const net_mesh_t) -> net_status_t {
    ffi_export!(handle mesh; {
        mesh.0.reclassify_nat();
        Ok(())
    })
}

/// `net_mesh_connect_direct`: the session runs on a direct path.
pub const NET_DIRECT_OUTCOME_DIRECT: u32 = 0;
/// Relayed: the NAT pair cannot punch (both symmetric, or symmetric and
/// unknown), so the coordinator relays.
pub const NET_DIRECT_OUTCOME_SKIP_PUNCH: u32 = 1;
/// Relayed: the coordinator introduced nobody within the punch deadline.
pub const NET_DIRECT_OUTCOME_NO_INTRODUCE: u32 = 2;
/// Relayed: introduced, but the peer's keep-alives never came through.
pub const NET_DIRECT_OUTCOME_NO_ACK: u32 = 3;
/// Relayed: the punch worked but the session could not use the path.
pub const NET_DIRECT_OUTCOME_PATH_FAILED: u32 = 4;

fn outcome_code(outcome: crate::mesh::DirectOutcome) -> u32 {
    use crate::mesh::{DirectOutcome, RelayReason};
    match outcome {
        DirectOutcome::Direct => NET_DIRECT_OUTCOME_DIRECT,
        DirectOutcome::Relayed(RelayReason::SkipPunch) => NET_DIRECT_OUTCOME_SKIP_PUNCH,
        DirectOutcome::Relayed(RelayReason::NoIntroduce) => NET_DIRECT_OUTCOME_NO_INTRODUCE,
        DirectOutcome::Relayed(RelayReason::NoAck) => NET_DIRECT_OUTCOME_NO_ACK,
        _ => NET_DIRECT_OUTCOME_PATH_FAILED,
    }
}

/// Reaches node `peer_node_id` (static X25519 key `peer_static_pub`, 32
/// bytes) on a direct path, with `coordinator_node_id` — a direct peer
/// holding sessions with both — for the rendezvous: the NAT pair decides
/// (a handshake to the peer's announced reflex, one hole punch, or the
/// relay). With no session yet, a punched path gets a new direct session
/// and any failure a session relayed by the coordinator. A session relayed
/// already (`net_mesh_connect_via`) moves to the punched path itself:
/// streams in flight lose and repeat nothing. `outcome_out` gets
/// `NET_DIRECT_OUTCOME_DIRECT` or the reason the session is relayed
/// (`NET_DIRECT_OUTCOME_SKIP_PUNCH`, `_NO_INTRODUCE`, `_NO_ACK`,
/// `_PATH_FAILED`). Blocks up to about 15 s plus the handshakes; the
/// counters are in `net_mesh_nat` (`punches_attempted`,
/// `punches_succeeded`, `relay_fallbacks`).
///
/// Errors: `NET_ERR_MESH_NO_ROUTE` when `coordinator_node_id` is not a
/// direct peer; `NET_ERR_INVALID_ARGUMENT` for our own node id; the handshake errors of
/// `net_mesh_connect_via` for the fallback; `NET_ERR_CANCELLED`,
/// `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `mesh` is NULL or from libnet; `peer_static_pub` is readable for
/// `peer_static_pub_len` bytes; `cancel` is NULL or from libnet;
/// `error_out` is NULL or valid for one write; `outcome_out` is valid for
/// one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_connect_direct(
    mesh: *const net_mesh_t,
    peer_node_id: u64,
    peer_static_pub: *const u8,
    peer_static_pub_len: usize,
    coordinator_node_id: u64,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
    outcome_out: *mut u32,
) -> net_status_t {
    ffi_export!(error_out error_out; handle mesh; cancel cancel; array peer_static_pub[peer_static_pub_len] 32; out outcome_out; {
        let outcome = mesh.0.connect_direct(peer_node_id, peer_static_pub, coordinator_node_id, cancel.token())?;
        outcome_out.write(outcome_code(outcome));
        Ok(())
    })
}
