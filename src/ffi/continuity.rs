//! `net_mesh_*` continuity calls: partition records, followed chains and
//! the node's continuity events (`docs/continuity.md`, "How the node
//! drives it"). Structured results are JSON; the event wait is a pull with
//! a timeout and a `net_cancel_t`.

use super::bytes::net_bytes_t;
use super::cancel::{net_cancel_t, net_error_t};
use super::export::ffi_export;
use super::mesh::{net_mesh_t, timeout_of};
use super::status::net_status_t;
use crate::compute::CausalEvent;
use crate::continuity::Observation;
use crate::cortex::causal::{CAUSAL_LINK_SIZE, CausalLink};
use crate::mesh::MeshError;

/// `net_mesh_observe_chain_event`: the event extended the chain.
pub const NET_CHAIN_EXTENDED: u32 = 0;
/// The event repeats one already followed.
pub const NET_CHAIN_DUPLICATE: u32 = 1;
/// The event is older than the follower remembers (not applied).
pub const NET_CHAIN_STALE: u32 = 2;
/// The chain broke at this event (a `chain_broken` event follows).
pub const NET_CHAIN_BROKE: u32 = 3;
/// The chain was already broken; the event was not checked.
pub const NET_CHAIN_IGNORED: u32 = 4;

/// The node's partition records as a JSON array, oldest first: `id`,
/// `phase` ("suspected" | "confirmed" | "healing" | "healed"), `our_side`,
/// `other_side`, `returned` (node ids), `cause` (`kind`: "subnet" with
/// `subnet` and `share`, "broad_outage", "unknown"), `horizon_at_split`
/// ([origin, seq] pairs), `detected_at_ms`, `confirmed_at_ms`,
/// `healed_at_ms` (null until then), `partition_key` (null until a
/// returned peer's view arrived). u64 values are exact JSON integers.
///
/// # Safety
/// `mesh` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_partitions(
    mesh: *const net_mesh_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out json_out; {
        json_out.write(net_bytes_t::from_vec(mesh.0.partitions_json().into_bytes()));
        Ok(())
    })
}

/// The chains the node follows as a JSON array: `origin`, `head`
/// ({`origin`, `seq`, `hash`}), `held` (events kept), `broken` (null or
/// {`reason`: "chain_break" | "conflicting_chains", `last_verified_seq`,
/// `detected_at_ms`}), `forks` (each {`original_origin`, `forked_origin`,
/// `fork_seq`, `bytes`: the 65-byte fork record in hex}).
///
/// # Safety
/// `mesh` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_continuity_status(
    mesh: *const net_mesh_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle mesh; out json_out; {
        json_out.write(net_bytes_t::from_vec(mesh.0.continuity_json().into_bytes()));
        Ok(())
    })
}

/// Follows chain `origin` from its genesis (idempotent): its events are
/// handed over with `net_mesh_observe_chain_event` and it is reconciled
/// after a partition heals. `NET_ERR_INVALID_ARGUMENT` when the node runs
/// without continuity (`"continuity": false`).
///
/// # Safety
/// `mesh` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_follow_chain(
    mesh: *const net_mesh_t,
    origin: u64,
) -> net_status_t {
    ffi_export!(handle mesh; {
        mesh.0.follow_chain(origin)?;
        Ok(())
    })
}

/// Asks `peer` to prove `from_seq..=to_seq` of the followed chain `origin`
/// (STORAGE.md §15) and checks the proof against the events this node
/// holds or remembers; the verdict arrives as a `proof_checked` event of
/// `net_mesh_continuity_next` (`verdict`: "consistent", "conflicts" with
/// `seq`/`ours`/`theirs`, "unknown", "unavailable" with `their_head`, or
/// "unanswered" after about six seconds). `NET_ERR_INVALID_ARGUMENT` when
/// continuity is off, the chain is not followed, `from_seq > to_seq` or the
/// span is 100 000 events or more, or `peer` is not a connected continuity
/// peer (a v0.11 node, or one with continuity off).
///
/// # Safety
/// `mesh` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_request_continuity_proof(
    mesh: *const net_mesh_t,
    peer: u64,
    origin: u64,
    from_seq: u64,
    to_seq: u64,
) -> net_status_t {
    ffi_export!(handle mesh; {
        mesh.0.request_continuity_proof(peer, origin, from_seq, to_seq)?;
        Ok(())
    })
}

/// Hands the node the next event of a followed chain: `link` is its
/// 32-byte causal link (STORAGE.md §14), `payload` its bytes. Writes what
/// it did to the chain (`NET_CHAIN_EXTENDED` … `NET_CHAIN_IGNORED`).
/// `NET_ERR_INVALID_ARGUMENT` for a link of another length or a malformed
/// one, a chain not followed, or continuity off.
///
/// # Safety
/// `mesh` is NULL or from libnet; `link` holds `link_len` bytes; `payload`
/// holds `payload_len` bytes (NULL when 0); `observation_out` is valid for
/// one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_observe_chain_event(
    mesh: *const net_mesh_t,
    link: *const u8,
    link_len: usize,
    payload: *const u8,
    payload_len: usize,
    observation_out: *mut u32,
) -> net_status_t {
    ffi_export!(handle mesh; array link[link_len] CAUSAL_LINK_SIZE; bytes payload[payload_len]; out observation_out; {
        let link = CausalLink::from_bytes(link).map_err(|e| {
            super::error::FfiError::new(net_status_t::NET_ERR_INVALID_ARGUMENT, e.to_string())
        })?;
        let event = CausalEvent {
            link,
            payload: payload.to_vec(),
            received_at: 0,
        };
        let code = match mesh.0.observe_chain_event(&event)? {
            Observation::Extended => NET_CHAIN_EXTENDED,
            Observation::Duplicate => NET_CHAIN_DUPLICATE,
            Observation::Stale => NET_CHAIN_STALE,
            Observation::Broke(_) => NET_CHAIN_BROKE,
            _ => NET_CHAIN_IGNORED,
        };
        observation_out.write(code);
        Ok(())
    })
}

/// The causal link that follows `prev_link` (32 bytes, STORAGE.md §14)
/// whose event carried `prev_payload`: the same origin, `horizon`, the next
/// sequence, and the parent hash xxh3_64(prev_link ‖ prev_payload). A
/// chain starts at its genesis link (the origin as u64 LE, then 24 zero
/// bytes; its payload is empty). With the 32 bytes written to `out`, an
/// event is framed for a causal stream as u32 LE (32 + payload length) ‖
/// link ‖ payload. `NET_ERR_INVALID_ARGUMENT` for a link of another length
/// or at the last sequence.
///
/// # Safety
/// `prev_link` holds `prev_link_len` bytes; `prev_payload` holds
/// `prev_payload_len` bytes (NULL when 0); `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_causal_next_link(
    prev_link: *const u8,
    prev_link_len: usize,
    prev_payload: *const u8,
    prev_payload_len: usize,
    horizon: u64,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(array prev_link[prev_link_len] CAUSAL_LINK_SIZE; bytes prev_payload[prev_payload_len]; out out; {
        let invalid = |message: String| {
            super::error::FfiError::new(net_status_t::NET_ERR_INVALID_ARGUMENT, message)
        };
        let prev = CausalLink::from_bytes(prev_link).map_err(|e| invalid(e.to_string()))?;
        if prev.sequence == u64::MAX {
            return Err(invalid("the chain is at its last sequence".to_string()));
        }
        out.write(net_bytes_t::from_slice(&prev.next(prev_payload, horizon).to_bytes()));
        Ok(())
    })
}

/// The node's next continuity event as JSON, waiting up to `timeout_ms`
/// (`NET_WAIT_FOREVER`: no limit): `type` "detected" | "extended" |
/// "confirmed" | "healed" (`record`), "healing" (`record`, `progress`),
/// "agreed" (`record`, `peer`, `partition_key`), "reconciled" (`origin`,
/// `peer`, `partition_key`, `head`, `outcome`: "converged", "caught_up"
/// with `appended`, "diverged" with `we_won` and `fork`), "fork_adopted"
/// (`peer`, `partition_key`, `fork`), "chain_broken" (`origin`,
/// `reason`). One queue per node: each event goes to one caller. Returns
/// `NET_OK`, `NET_TIMEOUT`, `NET_END` (shut down or freed during the
/// call), `NET_ERR_CANCELLED`, or `NET_ERR_INVALID_ARGUMENT` (continuity
/// off).
///
/// # Safety
/// `mesh` is NULL or from libnet; `json_out` is valid for one write;
/// `cancel` is NULL or from libnet; `error_out` is NULL or valid for one
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_mesh_continuity_next(
    mesh: *const net_mesh_t,
    timeout_ms: u32,
    json_out: *mut net_bytes_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle mesh; cancel cancel; out json_out; {
        match mesh.0.next_continuity_event_cancellable(timeout_of(timeout_ms), cancel.token()) {
            Ok(event) => {
                json_out.write(net_bytes_t::from_vec(event.to_json().to_string().into_bytes()));
                Ok(net_status_t::NET_OK)
            }
            Err(MeshError::Timeout) => Ok(net_status_t::NET_TIMEOUT),
            Err(MeshError::ShuttingDown) => Ok(net_status_t::NET_END),
            Err(e) => Err(e.into()),
        }
    })
}
