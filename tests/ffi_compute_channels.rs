//! A daemon's channel subscriptions through the C ABI
//! (`net_compute_subscribe_channel` / `net_compute_unsubscribe_channel`,
//! the `channels` of `net_compute_stats`): two daemons of one node hold a
//! channel and the node subscribes once; unsubscribing one keeps the
//! node's subscription, stopping the other ends it; typed errors for an
//! unknown daemon, a bad name, a short token, a refused channel, an
//! unknown publisher, a cancelled wait. (Migration carrying a subscription: `tests/compute_subscriptions.rs`
//! and the SDK suites.)

use std::ptr;

mod ffi_common;

use ffi_common::*;
use net::ffi::*;
use serde_json::Value;

const OK: net_status_t = net_status_t::NET_OK;
const CONFIG: &str = r#"{"psk_hex":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","heartbeat_interval_ms":50,"session_timeout_ms":5000,"hello_timeout_ms":500}"#;
const KIND: &str = "counter";

fn started() -> *mut net_mesh_t {
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { net_mesh_new(CONFIG.as_ptr(), CONFIG.len(), &mut out) },
        OK,
        "{}",
        last_error()
    );
    assert_eq!(unsafe { net_mesh_start(out) }, OK);
    out
}

fn spawn(rt: *mut net_compute_t, seed: u8) -> u64 {
    let seed = [seed; 32];
    let mut origin = 0;
    let st = unsafe {
        net_compute_spawn(
            rt,
            KIND.as_ptr(),
            KIND.len(),
            seed.as_ptr(),
            seed.len(),
            u64::from(seed[0]),
            &mut origin,
        )
    };
    assert_eq!(st, OK, "{}", last_error());
    origin
}

fn subscribe(
    rt: *mut net_compute_t,
    origin: u64,
    publisher: u64,
    name: &str,
    token: &[u8],
    cancel: *const net_cancel_t,
) -> (net_status_t, String) {
    let mut error = error_slot();
    let tp = if token.is_empty() {
        ptr::null()
    } else {
        token.as_ptr()
    };
    let st = unsafe {
        net_compute_subscribe_channel(
            rt,
            origin,
            publisher,
            name.as_ptr(),
            name.len(),
            tp,
            token.len(),
            cancel,
            &mut error,
        )
    };
    let (status, message) = error_of(error);
    assert_eq!(status, st);
    (st, message)
}

fn unsubscribe(rt: *mut net_compute_t, origin: u64, publisher: u64, name: &str) -> net_status_t {
    let mut error = error_slot();
    let st = unsafe {
        net_compute_unsubscribe_channel(
            rt,
            origin,
            publisher,
            name.as_ptr(),
            name.len(),
            ptr::null(),
            &mut error,
        )
    };
    assert_eq!(error_of(error).0, st);
    st
}

fn subscribers(publisher: *mut net_mesh_t, name: &str) -> u64 {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_mesh_channels(publisher, &mut out) }, OK);
    let channels = json(out);
    channels["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["subscribers"].as_u64())
        .unwrap_or(0)
}

fn channels_of(rt: *mut net_compute_t, origin: u64) -> Vec<Value> {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_compute_stats(rt, origin, &mut out) }, OK);
    json(out)["channels"].as_array().unwrap().clone()
}

#[test]
fn daemons_hold_channels_and_the_node_unsubscribes_with_the_last() {
    let (publisher, node) = (started(), started());
    connect(node, publisher);
    let p = node_id(publisher);
    let name = "sensors/ticks";
    let config = "{}";
    let mut evicted = 0;
    assert_eq!(
        unsafe {
            net_mesh_register_channel(
                publisher,
                name.as_ptr(),
                name.len(),
                config.as_ptr(),
                config.len(),
                &mut evicted,
            )
        },
        OK
    );
    let mut rt = ptr::null_mut();
    assert_eq!(
        unsafe { net_compute_new(node, ptr::null(), 0, &mut rt) },
        OK
    );
    assert_eq!(
        unsafe { net_compute_register_kind(rt, KIND.as_ptr(), KIND.len(), true) },
        OK
    );
    let (first, second) = (spawn(rt, 1), spawn(rt, 2));

    assert_eq!(subscribe(rt, first, p, name, &[], ptr::null()).0, OK);
    assert_eq!(subscribe(rt, second, p, name, &[], ptr::null()).0, OK);
    assert_eq!(subscribers(publisher, name), 1);
    assert_eq!(
        channels_of(rt, first),
        vec![serde_json::json!({ "publisher": p, "channel": name })]
    );

    // Typed refusals; nothing recorded.
    let (st, message) = subscribe(rt, 0x42, p, name, &[], ptr::null());
    assert_eq!(st, net_status_t::NET_ERR_COMPUTE_NOT_FOUND, "{message}");
    assert_eq!(
        subscribe(rt, first, p, "sensors/none", &[], ptr::null()).0,
        net_status_t::NET_ERR_CHANNEL_UNKNOWN
    );
    assert_eq!(
        subscribe(rt, first, p, "", &[], ptr::null()).0,
        net_status_t::NET_ERR_CHANNEL_INVALID_NAME
    );
    assert_eq!(
        subscribe(rt, first, p, name, &[1, 2, 3], ptr::null()).0,
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        subscribe(rt, second, node_id(node) ^ 1, name, &[], ptr::null()).0,
        net_status_t::NET_ERR_MESH_UNKNOWN_PEER
    );
    let cancel = cancel_token();
    unsafe { net_cancel_cancel(cancel) };
    assert_eq!(
        subscribe(rt, second, p, "sensors/other", &[], cancel).0,
        net_status_t::NET_ERR_CANCELLED
    );
    unsafe { net_cancel_free(cancel) };
    assert_eq!(channels_of(rt, first).len(), 1);
    assert_eq!(channels_of(rt, second).len(), 1);

    // One lets go: the other still holds the node's subscription.
    assert_eq!(unsubscribe(rt, first, p, name), OK);
    assert!(channels_of(rt, first).is_empty());
    assert_eq!(subscribers(publisher, name), 1);
    assert_eq!(
        unsubscribe(rt, first, p, name),
        OK,
        "nothing held: nothing to do"
    );
    assert_eq!(
        unsubscribe(rt, 0x42, p, name),
        net_status_t::NET_ERR_COMPUTE_NOT_FOUND
    );
    // Stopping the last holder ends it (in the background).
    assert_eq!(unsafe { net_compute_stop(rt, second) }, OK);
    wait_for("the node without holders unsubscribes", || {
        subscribers(publisher, name) == 0
    });

    unsafe {
        net_compute_free(rt);
        net_mesh_free(node);
        net_mesh_free(publisher);
    }
}
