//! `net_mesh_*` NAT calls: where the node's NAT stands (class, reflex,
//! RFC 4787 detail), the operator's reflex override, and a classification
//! round on demand. Classification itself runs by itself on the node
//! (`src/mesh/node/traversal.rs`).

use super::bytes::net_bytes_t;
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
