//! A daemon's channel subscriptions over the C ABI (COMPUTE.md §1.8): the
//! subscription is the node's, recorded in the daemon's ledger so that it
//! follows the daemon when it migrates; the node unsubscribes once no
//! daemon there holds the channel (`compute::runtime::subscriptions`).

use super::cancel::{net_cancel_t, net_error_t};
use super::channels::{TOKEN_LEN, channel_name};
use super::compute::net_compute_t;
use super::error::FfiError;
use super::export::ffi_export;
use super::status::net_status_t;
use crate::compute::SubscriptionError;
use crate::identity::PermissionToken;

impl From<SubscriptionError> for FfiError {
    fn from(err: SubscriptionError) -> Self {
        match err {
            SubscriptionError::Compute(e) => e.into(),
            SubscriptionError::Channel(e) => e.into(),
            #[allow(unreachable_patterns)]
            other => FfiError::new(net_status_t::NET_ERR_INTERNAL, other.to_string()),
        }
    }
}

/// Subscribes daemon `origin` (running here) to the channel `name` at
/// `publisher`, presenting `token` (159 bytes, or NULL with length 0 for
/// none), and waits for the publisher's answer (at most the mesh's
/// membership ack timeout). The subscription is recorded in the daemon's
/// ledger: when the daemon migrates, its new node subscribes before the
/// daemon is restored there, and the old node lets go at cut-over. Several
/// daemons of a node may hold one channel; the node subscribes once.
/// Subscribing again replaces the token. The channel's events arrive
/// through this node's `net_mesh_recv_*`; deliver them to the daemon with
/// `net_compute_deliver[_batch]`. `net_compute_stats` lists a daemon's
/// channels.
///
/// Errors: `NET_ERR_COMPUTE_NOT_FOUND` (not running here; nothing sent);
/// as `net_mesh_subscribe` (the publisher's refusal,
/// `NET_ERR_MESH_UNKNOWN_PEER`, `NET_ERR_CHANNEL_NO_ANSWER`,
/// `NET_ERR_CANCELLED`, `NET_ERR_CHANNEL_INVALID_NAME`,
/// `NET_ERR_TOKEN_INVALID_FORMAT`, …); `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `compute` is NULL or from libnet; `name` is readable for `name_len`
/// bytes; `token` is NULL (with `token_len` 0) or readable for
/// `token_len` bytes; `cancel` is NULL or from libnet; `error_out` is NULL
/// or valid for one write.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn net_compute_subscribe_channel(
    compute: *const net_compute_t,
    origin: u64,
    publisher: u64,
    name: *const u8,
    name_len: usize,
    token: *const u8,
    token_len: usize,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle compute; cancel cancel; str name[name_len]; opt_array token[token_len] TOKEN_LEN; {
        let name = channel_name(name)?;
        let token = token.map(|t| PermissionToken::from_bytes(t)).transpose()?;
        compute
            .runtime
            .subscribe_channel(origin, publisher, &name, token.as_ref(), cancel.token())?;
        Ok(())
    })
}

/// Unsubscribes daemon `origin` (running here) from the channel `name` at
/// `publisher`: the entry leaves its ledger, and the node unsubscribes —
/// waiting for the publisher's answer — once no daemon here holds the
/// channel. A channel the daemon does not hold: nothing happens.
/// (`net_compute_stop` lets go of all of a daemon's channels.)
///
/// Errors: `NET_ERR_COMPUTE_NOT_FOUND`; as `net_mesh_unsubscribe`;
/// `NET_ERR_SHUTTING_DOWN`.
///
/// # Safety
/// `compute` is NULL or from libnet; `name` is readable for `name_len`
/// bytes; `cancel` is NULL or from libnet; `error_out` is NULL or valid for
/// one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_unsubscribe_channel(
    compute: *const net_compute_t,
    origin: u64,
    publisher: u64,
    name: *const u8,
    name_len: usize,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle compute; cancel cancel; str name[name_len]; {
        let name = channel_name(name)?;
        compute
            .runtime
            .unsubscribe_channel(origin, publisher, &name, cancel.token())?;
        Ok(())
    })
}
