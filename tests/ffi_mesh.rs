//! The mesh C ABI from Rust: two nodes in one process exchange events both
//! ways; configuration errors name the key; and the three handle races for
//! `net_mesh_t` and `net_mesh_stream_t` (op after free, concurrent
//! idempotent frees with racing ops, free waits for / wakes an op in
//! flight).

use std::ptr;
use std::thread;
use std::time::{Duration, Instant};

mod ffi_common;

use ffi_common::*;
use net::ffi::*;

const CONFIG: &str = r#"{"psk_hex":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","heartbeat_interval_ms":50,"session_timeout_ms":1000,"hello_timeout_ms":500}"#;

fn node() -> *mut net_mesh_t {
    let mut out = ptr::null_mut();
    let st = unsafe { net_mesh_new(CONFIG.as_ptr(), CONFIG.len(), &mut out) };
    assert_eq!(st, net_status_t::NET_OK, "{}", last_error());
    out
}

fn stream(m: *mut net_mesh_t, peer: u64, id: u64, reliable: bool) -> *mut net_mesh_stream_t {
    let mut out = ptr::null_mut();
    let st = unsafe { net_mesh_open_stream(m, peer, id, reliable, u64::MAX, &mut out) };
    assert_eq!(st, net_status_t::NET_OK, "{}", last_error());
    out
}

fn send(s: *mut net_mesh_stream_t, events: &[&[u8]]) -> net_status_t {
    let slices: Vec<net_slice_t> = events
        .iter()
        .map(|e| net_slice_t {
            ptr: e.as_ptr(),
            len: e.len(),
        })
        .collect();
    unsafe { net_mesh_stream_send(s, slices.as_ptr(), slices.len()) }
}

fn recv(m: *mut net_mesh_t, timeout_ms: u32) -> Result<(u64, u64, Vec<u8>), net_status_t> {
    let (mut peer, mut sid, mut data, mut dropped) = (0, 0, net_bytes_t::EMPTY, u64::MAX);
    match unsafe {
        net_mesh_recv_next(
            m,
            timeout_ms,
            &mut peer,
            &mut sid,
            &mut data,
            &mut dropped,
            ptr::null_mut(),
            ptr::null(),
            ptr::null_mut(),
        )
    } {
        net_status_t::NET_OK => {
            assert_eq!(dropped, 0, "no test here overflows a shard");
            Ok((peer, sid, take(data)))
        }
        other => Err(other),
    }
}

#[test]
fn two_nodes_exchange_events_both_ways() {
    let (a, b) = (node(), node());
    unsafe {
        assert_eq!(net_mesh_start(a), net_status_t::NET_OK);
        assert_eq!(net_mesh_start(b), net_status_t::NET_OK);
    }
    connect(a, b);
    let ab = stream(a, node_id(b), 1, true);
    assert_eq!(send(ab, &[b"ping", b"pong?"]), net_status_t::NET_OK);
    assert_eq!(recv(b, 5000), Ok((node_id(a), 1, b"ping".to_vec())));
    assert_eq!(recv(b, 5000).unwrap().2, b"pong?");
    // b answers once it has seen a (the routed responder learned its id).
    let ba = stream(b, node_id(a), 2, false);
    assert_eq!(send(ba, &[b"back"]), net_status_t::NET_OK);
    assert_eq!(recv(a, 5000), Ok((node_id(b), 2, b"back".to_vec())));
    assert_eq!(recv(a, 10), Err(net_status_t::NET_TIMEOUT));
    // Batch receive.
    assert_eq!(send(ab, &[b"1", b"2", b"3"]), net_status_t::NET_OK);
    let mut got = Vec::new();
    while got.len() < 3 {
        let (mut records, mut count) = (net_bytes_t::EMPTY, 0usize);
        let st = unsafe {
            net_mesh_recv_batch(
                b,
                10,
                5000,
                &mut records,
                &mut count,
                ptr::null(),
                ptr::null_mut(),
            )
        };
        assert_eq!(st, net_status_t::NET_OK);
        // Records: peer u64 ‖ stream_id u64 ‖ dropped_before u64 ‖ len u32 ‖
        // channel_len u16 ‖ channel ‖ bytes.
        let r = take(records);
        let mut at = 0;
        for _ in 0..count {
            let u64_at = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().unwrap());
            assert_eq!((u64_at(at), u64_at(at + 16)), (node_id(a), 0));
            let len = u32::from_le_bytes(r[at + 24..at + 28].try_into().unwrap()) as usize;
            let channel_len = u16::from_le_bytes(r[at + 28..at + 30].try_into().unwrap());
            assert_eq!(channel_len, 0, "an ordinary stream has no channel");
            got.push(r[at + 30..at + 30 + len].to_vec());
            at += 30 + len;
        }
        assert_eq!(at, r.len());
    }
    assert_eq!(got, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
    // JSON introspection.
    let mut j = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_mesh_peers(a, &mut j) }, net_status_t::NET_OK);
    let peers: serde_json::Value = serde_json::from_slice(&take(j)).unwrap();
    assert_eq!(peers[0]["node_id"].as_u64(), Some(node_id(b)));
    let mut j = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_mesh_stats(b, &mut j) }, net_status_t::NET_OK);
    let stats: serde_json::Value = serde_json::from_slice(&take(j)).unwrap();
    assert!(stats["events_received"].as_u64().unwrap() >= 5, "{stats}");
    unsafe {
        net_mesh_stream_free(ab);
        net_mesh_stream_free(ba);
        net_mesh_free(a);
        net_mesh_free(b);
    }
}

#[test]
fn config_errors_name_the_key_and_bad_arguments_are_refused() {
    let mut out = ptr::null_mut();
    let bad = r#"{"colour":"blue"}"#;
    assert_eq!(
        unsafe { net_mesh_new(bad.as_ptr(), bad.len(), &mut out) },
        net_status_t::NET_ERR_MESH_CONFIG
    );
    assert!(last_error().contains("colour"));
    assert!(out.is_null());
    let a = node();
    let key = [0u8; 31];
    let addr = "127.0.0.1:1";
    assert_eq!(
        unsafe {
            net_mesh_connect(
                a,
                addr.as_ptr(),
                addr.len(),
                key.as_ptr(),
                key.len(),
                1,
                ptr::null(),
                ptr::null_mut(),
            )
        },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    let key = [0u8; 32];
    let addr = "nowhere";
    assert_eq!(
        unsafe {
            net_mesh_connect(
                a,
                addr.as_ptr(),
                addr.len(),
                key.as_ptr(),
                key.len(),
                1,
                ptr::null(),
                ptr::null_mut(),
            )
        },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    let mut s = ptr::null_mut();
    assert_eq!(
        unsafe { net_mesh_open_stream(a, 42, 1, false, u64::MAX, &mut s) },
        net_status_t::NET_ERR_MESH_UNKNOWN_PEER
    );
    unsafe { net_mesh_free(a) };
}

// ---- race 1: op after free -------------------------------------------------

#[test]
fn race_op_after_free_is_refused() {
    let (a, b) = (node(), node());
    connect(a, b);
    let s = stream(a, node_id(b), 1, false);
    unsafe {
        net_mesh_stream_free(s);
        assert_eq!(send(s, &[b"x"]), net_status_t::NET_ERR_SHUTTING_DOWN);
        let (mut p, mut i) = (0, 0);
        assert_eq!(
            net_mesh_stream_info(s, &mut p, &mut i),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        net_mesh_stream_free(s); // idempotent
        let s2 = stream(a, node_id(b), 2, false);
        net_mesh_free(a);
        // The node is gone: its stream refuses (shut down) but stays safe.
        assert_eq!(send(s2, &[b"x"]), net_status_t::NET_ERR_SHUTTING_DOWN);
        net_mesh_stream_free(s2);
        let mut id = 0;
        assert_eq!(
            net_mesh_node_id(a, &mut id),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        assert_eq!(recv(a, 0), Err(net_status_t::NET_ERR_SHUTTING_DOWN));
        net_mesh_free(a);
        net_mesh_free(b);
    }
}

// ---- race 2: concurrent frees with racing ops --------------------------------

#[test]
fn race_concurrent_frees_are_idempotent_with_ops_racing() {
    for round in 0..8 {
        let (a, b) = (node(), node());
        connect(a, b);
        let s = P(stream(a, node_id(b), 1, false));
        let pa = P(a);
        let started = Instant::now();
        let mut threads = Vec::new();
        for t in 0..3 {
            threads.push(thread::spawn(move || {
                let (s, pa) = (s, pa);
                for i in 0..200u32 {
                    let st = if t == 0 {
                        send(s.0, &[&i.to_le_bytes()])
                    } else if t == 1 {
                        recv(pa.0, 1).err().unwrap_or(net_status_t::NET_OK)
                    } else {
                        let mut j = net_bytes_t::EMPTY;
                        let st = unsafe { net_mesh_stats(pa.0, &mut j) };
                        take(j);
                        st
                    };
                    assert!(
                        matches!(
                            st,
                            net_status_t::NET_OK
                                | net_status_t::NET_TIMEOUT
                                | net_status_t::NET_END
                                | net_status_t::NET_ERR_SHUTTING_DOWN
                                | net_status_t::NET_ERR_MESH_BACKPRESSURE
                                | net_status_t::NET_ERR_MESH_UNKNOWN_PEER
                                | net_status_t::NET_ERR_MESH_STREAM_CLOSED
                        ),
                        "round {round}: {st:?}"
                    );
                }
            }));
        }
        for _ in 0..2 {
            threads.push(thread::spawn(move || {
                let (s, pa) = (s, pa);
                thread::sleep(Duration::from_millis(2));
                unsafe {
                    net_mesh_stream_free(s.0);
                    net_mesh_free(pa.0);
                }
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        unsafe { net_mesh_free(b) };
    }
}

// ---- race 3: free waits for / wakes the op in flight --------------------------

#[test]
fn race_free_wakes_a_recv_blocked_forever() {
    until_won(200, 5, |_| {
        let a = P(node());
        let blocked = thread::spawn(move || {
            let a = a;
            recv(a.0, NET_WAIT_FOREVER)
        });
        let_it_block();
        assert_eq!(unsafe { net_mesh_free(a.0) }, net_status_t::NET_OK);
        // NET_END: woken in its wait; SHUTTING_DOWN: freed before it began.
        match blocked.join().unwrap() {
            Err(net_status_t::NET_END) => true,
            Err(net_status_t::NET_ERR_SHUTTING_DOWN) => false,
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn race_cancel_wakes_a_blocked_recv_and_accept() {
    let a = P(node());
    until_won(200, 5, |round| {
        let token = P(cancel_token());
        let blocked = thread::spawn(move || {
            let (a, token) = (a, token);
            let mut error = error_slot();
            let status = if round % 2 == 0 {
                let (mut peer, mut sid, mut data) = (0, 0, net_bytes_t::EMPTY);
                unsafe {
                    net_mesh_recv_next(
                        a.0,
                        NET_WAIT_FOREVER,
                        &mut peer,
                        &mut sid,
                        &mut data,
                        ptr::null_mut(),
                        ptr::null_mut(),
                        token.0,
                        &mut error,
                    )
                }
            } else {
                let mut addr = net_bytes_t::EMPTY;
                unsafe {
                    net_mesh_accept(a.0, 99, NET_WAIT_FOREVER, &mut addr, token.0, &mut error)
                }
            };
            (status, error_of(error))
        });
        let_it_block();
        unsafe { net_cancel_cancel(token.0) };
        let (status, (error_status, message)) = blocked.join().unwrap();
        assert_eq!(
            (status, error_status),
            (net_status_t::NET_ERR_CANCELLED, status),
            "{message}"
        );
        unsafe { net_cancel_free(token.0) };
        !message.contains("already cancelled")
    });
    // The node works on.
    let b = node();
    connect(a.0, b);
    unsafe {
        net_mesh_free(a.0);
        net_mesh_free(b);
    }
}

/// A stream from `a` whose window is spent and will never be granted
/// again (its receiver is shut down).
fn stalled_stream(a: *mut net_mesh_t, b: *mut net_mesh_t) -> P<net_mesh_stream_t> {
    let mut s = ptr::null_mut();
    assert_eq!(
        unsafe { net_mesh_open_stream(a, node_id(b), 1, false, 200, &mut s) },
        net_status_t::NET_OK
    );
    let event = [7u8; 100];
    assert_eq!(send(s, &[&event]), net_status_t::NET_OK); // 184 of 200 spent
    P(s)
}

fn send_blocking(s: P<net_mesh_stream_t>, cancel: P<net_cancel_t>) -> (net_status_t, String) {
    let e = [7u8; 100];
    let slice = net_slice_t {
        ptr: e.as_ptr(),
        len: e.len(),
    };
    let mut error = error_slot();
    let status = unsafe {
        net_mesh_stream_send_blocking(s.0, &slice, 1, NET_WAIT_FOREVER, cancel.0, &mut error)
    };
    (status, error_of(error).1)
}

#[test]
fn race_stream_free_wakes_a_send_blocked_forever() {
    let (a, b) = (node(), node());
    connect(a, b);
    unsafe { net_mesh_close(b) };
    until_won(200, 5, |_| {
        let s = stalled_stream(a, b);
        let blocked = thread::spawn(move || send_blocking(s, P(ptr::null_mut())));
        let_it_block();
        assert_eq!(unsafe { net_mesh_stream_free(s.0) }, net_status_t::NET_OK);
        // STREAM_CLOSED: woken in its wait; SHUTTING_DOWN: freed before.
        match blocked.join().unwrap().0 {
            net_status_t::NET_ERR_MESH_STREAM_CLOSED => true,
            net_status_t::NET_ERR_SHUTTING_DOWN => false,
            other => panic!("{other:?}"),
        }
    });
    unsafe {
        net_mesh_free(a);
        net_mesh_free(b);
    }
}

#[test]
fn race_cancel_wakes_a_blocked_send() {
    let (a, b) = (node(), node());
    connect(a, b);
    unsafe { net_mesh_close(b) };
    let s = stalled_stream(a, b);
    until_won(200, 5, |_| {
        let token = P(cancel_token());
        let blocked = thread::spawn(move || send_blocking(s, token));
        let_it_block();
        unsafe { net_cancel_cancel(token.0) };
        let (status, message) = blocked.join().unwrap();
        assert_eq!(status, net_status_t::NET_ERR_CANCELLED, "{message}");
        unsafe { net_cancel_free(token.0) };
        !message.contains("already cancelled")
    });
    unsafe {
        net_mesh_stream_free(s.0);
        net_mesh_free(a);
        net_mesh_free(b);
    }
}

#[test]
fn race_free_wakes_an_accept_blocked_forever() {
    until_won(200, 5, |_| {
        let a = P(node());
        let blocked = thread::spawn(move || {
            let a = a;
            let mut addr = net_bytes_t::EMPTY;
            let mut error = error_slot();
            let status = unsafe {
                net_mesh_accept(
                    a.0,
                    99,
                    NET_WAIT_FOREVER,
                    &mut addr,
                    ptr::null(),
                    &mut error,
                )
            };
            (status, error_of(error).1)
        });
        let_it_block();
        assert_eq!(unsafe { net_mesh_free(a.0) }, net_status_t::NET_OK);
        let (status, message) = blocked.join().unwrap();
        assert_eq!(status, net_status_t::NET_ERR_SHUTTING_DOWN);
        // Woken in its wait ("shut down"), not refused at the door ("freed").
        message.contains("shut down")
    });
}

// ---- relays and routes (issue 13) ----------------------------------------------

/// A started node (heartbeats carry the pingwaves routes are learned from).
fn started_node(config: &str) -> *mut net_mesh_t {
    let mut out = ptr::null_mut();
    let st = unsafe { net_mesh_new(config.as_ptr(), config.len(), &mut out) };
    assert_eq!(st, net_status_t::NET_OK, "{}", last_error());
    assert_eq!(unsafe { net_mesh_start(out) }, net_status_t::NET_OK);
    out
}

fn public_key(m: *mut net_mesh_t) -> Vec<u8> {
    let mut key = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_mesh_public_key(m, &mut key) },
        net_status_t::NET_OK
    );
    take(key)
}

fn routes(m: *mut net_mesh_t) -> serde_json::Value {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_mesh_routes(m, &mut out) },
        net_status_t::NET_OK,
        "{}",
        last_error()
    );
    json(out)
}

fn peers(m: *mut net_mesh_t) -> Vec<serde_json::Value> {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_mesh_peers(m, &mut out) }, net_status_t::NET_OK);
    json(out).as_array().unwrap().clone()
}

/// The route of `m` to `destination`, if it has one.
fn route_to(m: *mut net_mesh_t, destination: u64) -> Option<serde_json::Value> {
    routes(m)["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["destination"].as_u64() == Some(destination))
        .cloned()
}

/// The peers-JSON entry of `peer` on `m`, if it is a peer.
fn peer_entry(m: *mut net_mesh_t, peer: u64) -> Option<serde_json::Value> {
    peers(m)
        .into_iter()
        .find(|p| p["node_id"].as_u64() == Some(peer))
}

fn connect_via(
    m: *mut net_mesh_t,
    relay: u64,
    key: &[u8],
    peer: u64,
    cancel: *const net_cancel_t,
) -> (net_status_t, (net_status_t, String)) {
    let mut error = error_slot();
    let st = unsafe {
        net_mesh_connect_via(m, relay, key.as_ptr(), key.len(), peer, cancel, &mut error)
    };
    (st, error_of(error))
}

fn connect_routed(m: *mut net_mesh_t, key: &[u8], peer: u64) -> net_status_t {
    unsafe {
        net_mesh_connect_routed(
            m,
            key.as_ptr(),
            key.len(),
            peer,
            ptr::null(),
            ptr::null_mut(),
        )
    }
}

#[test]
fn relayed_sessions_through_a_relay_and_routes_json() {
    let (a, r, b, c) = (
        started_node(CONFIG),
        started_node(CONFIG),
        started_node(CONFIG),
        started_node(CONFIG),
    );
    let (ida, idr, idb, idc) = (node_id(a), node_id(r), node_id(b), node_id(c));
    for n in [a, b, c] {
        connect(n, r);
        let id = node_id(n);
        wait_for("the link up on the relay", || peer_entry(r, id).is_some());
    }
    let (key_a, key_c) = (public_key(a), public_key(c));

    // A relay must be a direct peer; a routed connect needs a route.
    let (st, (err_st, message)) = connect_via(b, idc, &key_a, ida, ptr::null());
    assert_eq!(
        (st, err_st),
        (
            net_status_t::NET_ERR_MESH_NO_ROUTE,
            net_status_t::NET_ERR_MESH_NO_ROUTE
        ),
        "{message}"
    );
    assert_eq!(
        connect_routed(b, &key_a, 0x1234),
        net_status_t::NET_ERR_MESH_NO_ROUTE
    );
    assert_eq!(
        connect_via(b, idr, &key_a[..31], ida, ptr::null()).0,
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );

    // B reaches A through R, both ways.
    let (st, (_, message)) = connect_via(b, idr, &key_a, ida, ptr::null());
    assert_eq!(st, net_status_t::NET_OK, "{message}");
    assert_eq!(peer_entry(b, ida).unwrap()["relay"].as_u64(), Some(idr));
    wait_for("a sees b relayed by r", || {
        peer_entry(a, idb).is_some_and(|p| p["relay"].as_u64() == Some(idr))
    });
    let ba = stream(b, ida, 3, true);
    assert_eq!(send(ba, &[b"b to a"]), net_status_t::NET_OK);
    assert_eq!(recv(a, 20_000).unwrap(), (idb, 3, b"b to a".to_vec()));
    let ab = stream(a, idb, 4, true);
    assert_eq!(send(ab, &[b"a to b"]), net_status_t::NET_OK);
    assert_eq!(recv(b, 20_000).unwrap(), (ida, 4, b"a to b".to_vec()));
    wait_for("b's route to a through r", || {
        route_to(b, ida).is_some_and(|r| r["next_hop"].as_u64() == Some(idr))
    });
    let relay_routes = routes(r);
    assert_eq!(relay_routes["node_id"].as_u64(), Some(idr));
    assert!(relay_routes["forwarding"]["forwarded"].as_u64().unwrap() > 0);

    // A learns C at two hops from the pingwaves R relays, then connects.
    wait_for("a learns c through r", || {
        route_to(a, idc)
            .is_some_and(|r| r["next_hop"].as_u64() == Some(idr) && r["hops"].as_u64() == Some(2))
    });
    assert_eq!(
        connect_routed(a, &key_c, idc),
        net_status_t::NET_OK,
        "{}",
        last_error()
    );
    assert_eq!(peer_entry(a, idc).unwrap()["relay"].as_u64(), Some(idr));
    unsafe {
        net_mesh_stream_free(ba);
        net_mesh_stream_free(ab);
        for n in [a, b, c, r] {
            assert_eq!(net_mesh_free(n), net_status_t::NET_OK);
        }
    }
}

#[test]
fn race_relay_calls_after_free_are_refused() {
    let m = started_node(CONFIG);
    let key = [7u8; 32];
    assert_eq!(routes(m)["routes"].as_array().map(Vec::len), Some(0));
    unsafe { net_mesh_free(m) };
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_mesh_routes(m, &mut out) },
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
    assert!(out.ptr.is_null());
    assert_eq!(
        connect_via(m, 1, &key, 2, ptr::null()).0,
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
    assert_eq!(
        connect_routed(m, &key, 2),
        net_status_t::NET_ERR_SHUTTING_DOWN
    );
}

/// A node whose connects wait (almost) forever for an answer.
const PATIENT: &str = r#"{"psk_hex":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","heartbeat_interval_ms":50,"handshake_timeout_ms":600000,"handshake_retries":1}"#;

#[test]
fn race_cancel_and_free_wake_a_connect_via_waiting_for_its_peer() {
    // The relay knows no node 0x5eed: the routed handshake is never answered.
    let (a, r) = (P(started_node(PATIENT)), started_node(CONFIG));
    connect(a.0, r);
    let idr = node_id(r);
    until_won(200, 5, |round| {
        let token = P(cancel_token());
        let blocked = thread::spawn(move || {
            let (a, token) = (a, token);
            connect_via(a.0, idr, &[9u8; 32], 0x5eed + round as u64, token.0)
        });
        let_it_block();
        unsafe { net_cancel_cancel(token.0) };
        let (status, (error_status, message)) = blocked.join().unwrap();
        assert_eq!(
            (status, error_status),
            (net_status_t::NET_ERR_CANCELLED, status),
            "{message}"
        );
        unsafe { net_cancel_free(token.0) };
        !message.contains("already cancelled")
    });
    let blocked = thread::spawn(move || {
        let a = a;
        connect_via(a.0, idr, &[9u8; 32], 0xdead, ptr::null())
    });
    // Freed while the connect is in flight: it wakes with "shut down".
    let done = std::sync::atomic::AtomicBool::new(false);
    let _ = wait_in_flight(a.0, &done);
    assert_eq!(unsafe { net_mesh_free(a.0) }, net_status_t::NET_OK);
    let (status, _) = blocked.join().unwrap();
    assert_eq!(status, net_status_t::NET_ERR_SHUTTING_DOWN);
    unsafe { net_mesh_free(r) };
}
