//! Channels and capabilities through the mesh C ABI: register, subscribe
//! (accepted, unknown channel, token required without and with a token the
//! publisher's identity issued), publish and receive with the channel name
//! (`recv_next` and `recv_batch`), unsubscribe stops delivery, the publish
//! report, configuration errors naming the key, a hash collision (at
//! registration and at subscription), a full channel, a spent rate; announce
//! and find across three nodes (one hop forwarded); a subscriber relayed
//! through R; calls after free refused.

use std::ptr;

mod ffi_common;

use ffi_common::*;
use net::ffi::*;
use serde_json::Value;

const PSK: &str = r#""psk_hex":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","heartbeat_interval_ms":50"#;
const SEED: [u8; 32] = [7; 32];

fn started(extra: &str) -> *mut net_mesh_t {
    let config = format!("{{{PSK}{extra}}}");
    let mut out = ptr::null_mut();
    let st = unsafe { net_mesh_new(config.as_ptr(), config.len(), &mut out) };
    assert_eq!(st, net_status_t::NET_OK, "{}", last_error());
    assert_eq!(unsafe { net_mesh_start(out) }, net_status_t::NET_OK);
    out
}

fn bytes_of(
    m: *mut net_mesh_t,
    f: unsafe extern "C" fn(*const net_mesh_t, *mut net_bytes_t) -> net_status_t,
) -> Vec<u8> {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { f(m, &mut out) }, net_status_t::NET_OK);
    take(out)
}

fn json_of(
    m: *mut net_mesh_t,
    f: unsafe extern "C" fn(*const net_mesh_t, *mut net_bytes_t) -> net_status_t,
) -> Value {
    serde_json::from_slice(&bytes_of(m, f)).unwrap()
}

fn register(m: *mut net_mesh_t, name: &str, config: &str) -> (net_status_t, String) {
    let mut evicted = u64::MAX;
    let st = unsafe {
        net_mesh_register_channel(
            m,
            name.as_ptr(),
            name.len(),
            config.as_ptr(),
            config.len(),
            &mut evicted,
        )
    };
    if st == net_status_t::NET_OK {
        assert_eq!(evicted, 0);
    }
    (st, last_error())
}

fn subscribe(
    m: *mut net_mesh_t,
    publisher: u64,
    name: &str,
    token: Option<&[u8]>,
) -> (net_status_t, (net_status_t, String)) {
    let mut error = error_slot();
    let (t, tl) = token.map_or((ptr::null(), 0), |t| (t.as_ptr(), t.len()));
    let st = unsafe {
        net_mesh_subscribe(
            m,
            publisher,
            name.as_ptr(),
            name.len(),
            t,
            tl,
            ptr::null(),
            &mut error,
        )
    };
    (st, error_of(error))
}

fn publish(m: *mut net_mesh_t, name: &str, events: &[&[u8]]) -> Result<Value, net_status_t> {
    let slices: Vec<net_slice_t> = events
        .iter()
        .map(|e| net_slice_t {
            ptr: e.as_ptr(),
            len: e.len(),
        })
        .collect();
    let mut report = net_bytes_t::EMPTY;
    match unsafe {
        net_mesh_publish(
            m,
            name.as_ptr(),
            name.len(),
            slices.as_ptr(),
            slices.len(),
            false,
            &mut report,
        )
    } {
        net_status_t::NET_OK => Ok(json(report)),
        other => Err(other),
    }
}

/// The next event: (peer, data, channel name).
fn recv(m: *mut net_mesh_t) -> (u64, Vec<u8>, String) {
    let (mut peer, mut sid, mut data, mut channel) = (0, 0, net_bytes_t::EMPTY, net_bytes_t::EMPTY);
    let st = unsafe {
        net_mesh_recv_next(
            m,
            20_000,
            &mut peer,
            &mut sid,
            &mut data,
            ptr::null_mut(),
            &mut channel,
            ptr::null(),
            ptr::null_mut(),
        )
    };
    assert_eq!(st, net_status_t::NET_OK, "{}", last_error());
    (peer, take(data), String::from_utf8(take(channel)).unwrap())
}

/// Records of one `net_mesh_recv_batch`: (peer, data, channel name).
fn recv_batch(m: *mut net_mesh_t) -> Vec<(u64, Vec<u8>, String)> {
    let (mut records, mut count) = (net_bytes_t::EMPTY, 0usize);
    let st = unsafe {
        net_mesh_recv_batch(
            m,
            16,
            20_000,
            &mut records,
            &mut count,
            ptr::null(),
            ptr::null_mut(),
        )
    };
    assert_eq!(st, net_status_t::NET_OK, "{}", last_error());
    let r = take(records);
    let mut at = 0;
    let mut out = Vec::new();
    for _ in 0..count {
        let peer = u64::from_le_bytes(r[at..at + 8].try_into().unwrap());
        let len = u32::from_le_bytes(r[at + 24..at + 28].try_into().unwrap()) as usize;
        let clen = u16::from_le_bytes(r[at + 28..at + 30].try_into().unwrap()) as usize;
        let channel = String::from_utf8(r[at + 30..at + 30 + clen].to_vec()).unwrap();
        let data = r[at + 30 + clen..at + 30 + clen + len].to_vec();
        out.push((peer, data, channel));
        at += 30 + clen + len;
    }
    assert_eq!(at, r.len());
    out
}

/// A SUBSCRIBE token for `channel` from the identity with `issuer_seed` to
/// the node `subject`'s entity.
fn token_for(issuer_seed: &[u8; 32], subject: *mut net_mesh_t, channel: &str) -> Vec<u8> {
    let entity = bytes_of(subject, net_mesh_entity_id);
    let (mut issuer, mut hash, mut token) = (ptr::null_mut(), 0u16, net_bytes_t::EMPTY);
    unsafe {
        assert_eq!(
            net_identity_from_seed(issuer_seed.as_ptr(), 32, &mut issuer),
            net_status_t::NET_OK
        );
        assert_eq!(
            net_channel_hash(channel.as_ptr(), channel.len(), &mut hash),
            net_status_t::NET_OK
        );
        assert_eq!(
            net_token_issue(
                issuer,
                entity.as_ptr(),
                entity.len(),
                NET_SCOPE_SUBSCRIBE,
                hash,
                3600,
                0,
                &mut token
            ),
            net_status_t::NET_OK,
            "{}",
            last_error()
        );
        net_identity_free(issuer);
    }
    take(token)
}

fn seed_config(seed: &[u8; 32]) -> String {
    format!(r#","identity_seed_hex":"{}""#, hex::encode(seed))
}

#[test]
fn subscribe_publish_receive_unsubscribe_with_and_without_tokens() {
    let a = started(&seed_config(&SEED));
    let b = started("");
    connect(b, a);
    let (ida, idb) = (node_id(a), node_id(b));
    wait_for("a sees b", || {
        json_of(a, net_mesh_peers)
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["node_id"].as_u64() == Some(idb)))
    });

    // Configuration errors name the key; a good config registers.
    let (st, message) = register(a, "news", r#"{"visibilty":"global"}"#);
    assert_eq!(st, net_status_t::NET_ERR_CHANNEL_CONFIG);
    assert!(message.contains("`visibilty`"), "{message}");
    let (st, message) = register(a, "news", r#"{"priority":300}"#);
    assert_eq!(st, net_status_t::NET_ERR_CHANNEL_CONFIG);
    assert!(message.contains("`priority`"), "{message}");
    assert_eq!(
        register(a, "news", r#"{"reliable":true}"#).0,
        net_status_t::NET_OK
    );
    assert_eq!(
        register(a, "secret", r#"{"require_token":true}"#).0,
        net_status_t::NET_OK
    );
    assert_eq!(
        register(a, "bad name!", "").0,
        net_status_t::NET_ERR_CHANNEL_INVALID_NAME
    );

    // Accepted, unknown, token required.
    let (st, (_, message)) = subscribe(b, ida, "news", None);
    assert_eq!(st, net_status_t::NET_OK, "{message}");
    let (st, (err, message)) = subscribe(b, ida, "nope", None);
    assert_eq!(
        (st, err),
        (net_status_t::NET_ERR_CHANNEL_UNKNOWN, st),
        "{message}"
    );
    let (st, (_, message)) = subscribe(b, ida, "secret", None);
    assert_eq!(st, net_status_t::NET_ERR_CHANNEL_UNAUTHORIZED, "{message}");
    let token = token_for(&SEED, b, "secret");
    let (st, (_, message)) = subscribe(b, ida, "secret", Some(&token));
    assert_eq!(st, net_status_t::NET_OK, "{message}");
    let (st, _) = subscribe(b, ida, "secret", Some(&token[..100]));
    assert_eq!(st, net_status_t::NET_ERR_INVALID_ARGUMENT);

    // Publish: the report, and the events arrive with the channel name.
    let report = publish(a, "news", &[b"n1", b"n2"]).unwrap();
    assert_eq!(
        (
            &report["attempted"],
            &report["delivered"],
            &report["evicted"]
        ),
        (&Value::from(1), &Value::from(1), &Value::from(0)),
        "{report}"
    );
    assert_eq!(report["errors"], Value::Array(vec![]));
    assert_eq!(recv(b), (ida, b"n1".to_vec(), "news".to_owned()));
    assert_eq!(recv(b), (ida, b"n2".to_vec(), "news".to_owned()));
    publish(a, "secret", &[b"s1"]).unwrap();
    assert_eq!(
        recv_batch(b),
        vec![(ida, b"s1".to_vec(), "secret".to_owned())]
    );
    assert_eq!(
        publish(a, "unregistered", &[b"x"]),
        Err(net_status_t::NET_ERR_CHANNEL_UNKNOWN)
    );
    let channels = json_of(a, net_mesh_channels);
    let news = channels["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "news")
        .cloned()
        .unwrap();
    assert_eq!(news["subscribers"].as_u64(), Some(1), "{channels}");

    // Unsubscribe stops delivery: the next event b gets is on "secret".
    let mut error = error_slot();
    let st = unsafe { net_mesh_unsubscribe(b, ida, "news".as_ptr(), 4, ptr::null(), &mut error) };
    assert_eq!(st, net_status_t::NET_OK, "{}", error_of(error).1);
    let report = publish(a, "news", &[b"gone"]).unwrap();
    assert_eq!(report["attempted"].as_u64(), Some(0), "{report}");
    publish(a, "secret", &[b"s2"]).unwrap();
    assert_eq!(recv(b), (ida, b"s2".to_vec(), "secret".to_owned()));

    // De-registering evicts the subscriber.
    let mut evicted = 0;
    let st = unsafe { net_mesh_deregister_channel(a, "secret".as_ptr(), 6, &mut evicted) };
    assert_eq!((st, evicted), (net_status_t::NET_OK, 1));

    // Two names with one 16-bit hash cannot both be registered.
    let (first, second) = colliding_names();
    assert_eq!(register(a, &first, "").0, net_status_t::NET_OK);
    let (st, message) = register(a, &second, "");
    assert_eq!(
        st,
        net_status_t::NET_ERR_CHANNEL_HASH_COLLISION,
        "{message}"
    );
    // A subscriber holding one of them cannot take the other at that publisher.
    assert_eq!(subscribe(b, ida, &first, None).0, net_status_t::NET_OK);
    let (st, (_, message)) = subscribe(b, ida, &second, None);
    assert_eq!(
        st,
        net_status_t::NET_ERR_CHANNEL_HASH_COLLISION,
        "{message}"
    );

    // Calls after free fail cleanly.
    unsafe {
        assert_eq!(net_mesh_free(b), net_status_t::NET_OK);
        assert_eq!(net_mesh_free(a), net_status_t::NET_OK);
    }
    assert_eq!(
        register(a, "news", "").0,
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
    assert_eq!(
        subscribe(b, ida, "news", None).0,
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
    assert_eq!(
        publish(a, "news", &[b"x"]),
        Err(net_status_t::NET_ERR_SHUTTING_DOWN)
    );
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_mesh_channels(a, &mut out) },
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
    assert_eq!(
        unsafe { net_mesh_announce(a, "{}".as_ptr(), 2) },
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
}

/// Two valid channel names with the same 16-bit hash.
fn colliding_names() -> (String, String) {
    let mut seen = std::collections::HashMap::new();
    for i in 0u32.. {
        let name = format!("c{i}");
        let mut hash = 0u16;
        assert_eq!(
            unsafe { net_channel_hash(name.as_ptr(), name.len(), &mut hash) },
            net_status_t::NET_OK
        );
        if let Some(first) = seen.insert(hash, name.clone()) {
            return (first, name);
        }
    }
    unreachable!("the hash space is 16 bits")
}

fn query(
    m: *mut net_mesh_t,
    f: unsafe extern "C" fn(*const net_mesh_t, *const u8, usize, *mut net_bytes_t) -> net_status_t,
    q: &str,
) -> Result<Value, (net_status_t, String)> {
    let mut out = net_bytes_t::EMPTY;
    match unsafe { f(m, q.as_ptr(), q.len(), &mut out) } {
        net_status_t::NET_OK => Ok(json(out)),
        other => Err((other, last_error())),
    }
}

#[test]
fn announce_and_find_across_three_nodes() {
    let (a, b, c) = (started(""), started(""), started(""));
    connect(a, b);
    connect(c, b);
    let idc = node_id(c);
    let caps = r#"{"tags":["gpu","zone:eu"],"hardware":{"memory_mb":4096}}"#;
    assert_eq!(
        unsafe { net_mesh_announce(c, caps.as_ptr(), caps.len()) },
        net_status_t::NET_OK,
        "{}",
        last_error()
    );
    let bad = r#"{"hardware":{"memroy_mb":1}}"#;
    assert_eq!(
        unsafe { net_mesh_announce(c, bad.as_ptr(), bad.len()) },
        net_status_t::NET_ERR_MESH_CAPABILITIES
    );
    assert!(
        last_error().contains("`hardware.memroy_mb`"),
        "{}",
        last_error()
    );

    // a hears c's announcement through b (one hop forwarded).
    let gpu = r#"{"filter":{"require_tags":["gpu"]}}"#;
    wait_for("a finds c", || {
        query(a, net_mesh_find_nodes, gpu).unwrap()["nodes"] == serde_json::json!([idc])
    });
    let best = query(a, net_mesh_find_best_node, gpu).unwrap();
    assert_eq!(best["node_id"].as_u64(), Some(idc), "{best}");
    assert_eq!(
        query(
            a,
            net_mesh_find_nodes,
            r#"{"filter":{"require_tags":["tpu"]}}"#
        )
        .unwrap()["nodes"],
        serde_json::json!([])
    );
    let (st, message) = query(a, net_mesh_find_nodes, r#"{"filtre":{}}"#).unwrap_err();
    assert_eq!(st, net_status_t::NET_ERR_MESH_CAPABILITIES);
    assert!(message.contains("filtre"), "{message}");
    let all = json_of(a, net_mesh_capabilities);
    let entry = all["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"].as_u64() == Some(idc))
        .cloned()
        .unwrap();
    assert_eq!(entry["hop_count"].as_u64(), Some(1), "{entry}");
    assert_eq!(
        entry["capabilities"]["hardware"]["memory_mb"].as_u64(),
        Some(4096)
    );

    // A channel whose subscribe filter needs the gpu tag admits c, not b.
    assert_eq!(
        register(a, "jobs", r#"{"subscribe_caps":{"require_tags":["gpu"]}}"#).0,
        net_status_t::NET_OK
    );
    connect(c, a);
    let ida = node_id(a);
    assert_eq!(subscribe(c, ida, "jobs", None).0, net_status_t::NET_OK);
    assert_eq!(
        subscribe(b, ida, "jobs", None).0,
        net_status_t::NET_ERR_CHANNEL_UNAUTHORIZED
    );
    unsafe {
        for n in [a, b, c] {
            assert_eq!(net_mesh_free(n), net_status_t::NET_OK);
        }
    }
}

#[test]
fn a_subscriber_relayed_through_r_receives_with_the_channel() {
    let (a, r, b) = (started(""), started(""), started(""));
    connect(a, r);
    connect(b, r);
    let (ida, idr) = (node_id(a), node_id(r));
    let key_a = bytes_of(a, net_mesh_public_key);
    wait_for("r sees a", || {
        json_of(r, net_mesh_peers)
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["node_id"].as_u64() == Some(ida)))
    });
    let mut error = error_slot();
    let st = unsafe {
        net_mesh_connect_via(
            b,
            idr,
            key_a.as_ptr(),
            key_a.len(),
            ida,
            ptr::null(),
            &mut error,
        )
    };
    assert_eq!(st, net_status_t::NET_OK, "{}", error_of(error).1);
    assert_eq!(register(a, "relayed", "").0, net_status_t::NET_OK);
    let (st, (_, message)) = subscribe(b, ida, "relayed", None);
    assert_eq!(st, net_status_t::NET_OK, "{message}");
    let report = publish(a, "relayed", &[b"over r"]).unwrap();
    assert_eq!(report["delivered"].as_u64(), Some(1), "{report}");
    assert_eq!(recv(b), (ida, b"over r".to_vec(), "relayed".to_owned()));
    unsafe {
        for n in [a, r, b] {
            assert_eq!(net_mesh_free(n), net_status_t::NET_OK);
        }
    }
}

#[test]
fn a_full_channel_and_a_spent_rate_have_their_own_statuses() {
    let (a, b, c) = (started(""), started(""), started(""));
    connect(b, a);
    connect(c, a);
    let ida = node_id(a);
    assert_eq!(
        register(a, "one", r#"{"max_subscribers":1}"#).0,
        net_status_t::NET_OK
    );
    assert_eq!(subscribe(b, ida, "one", None).0, net_status_t::NET_OK);
    let (st, (err, message)) = subscribe(c, ida, "one", None);
    assert_eq!(
        (st, err),
        (net_status_t::NET_ERR_CHANNEL_FULL, st),
        "{message}"
    );

    assert_eq!(
        register(a, "slow", r#"{"max_rate_pps":1}"#).0,
        net_status_t::NET_OK
    );
    assert!(publish(a, "slow", &[b"first"]).is_ok());
    assert_eq!(
        publish(a, "slow", &[b"second"]),
        Err(net_status_t::NET_ERR_CHANNEL_RATE_LIMITED)
    );
    assert!(last_error().contains("rate"), "{}", last_error());
    unsafe {
        for n in [a, b, c] {
            assert_eq!(net_mesh_free(n), net_status_t::NET_OK);
        }
    }
}
