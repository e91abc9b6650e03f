//! The continuity C ABI from Rust (`net_mesh_partitions`,
//! `net_mesh_continuity_status`, `net_mesh_follow_chain`,
//! `net_mesh_observe_chain_event`, `net_mesh_continuity_next`,
//! `net_mesh_request_continuity_proof`, `net_mesh_open_causal_stream`): a
//! chain followed and broken through the ABI, a proof asked of a peer, a
//! causal stream followed and proved by the node itself, refusals with
//! their statuses, and
//! the three handle races for these calls on `net_mesh_t` (op after free,
//! concurrent idempotent frees with racing ops, free and cancel wake a
//! blocked `continuity_next`). The partition itself runs on real nodes in
//! `tests/mesh_partitions.rs`.

use std::ptr;
use std::thread;
use std::time::{Duration, Instant};

mod ffi_common;

use ffi_common::*;
use net::cortex::causal::CausalLink;
use net::ffi::*;

const PSK: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn node_with(extra: &str) -> *mut net_mesh_t {
    let config = format!(r#"{{"psk_hex":"{PSK}"{extra}}}"#);
    let mut out = ptr::null_mut();
    let st = unsafe { net_mesh_new(config.as_ptr(), config.len(), &mut out) };
    assert_eq!(st, net_status_t::NET_OK, "{}", last_error());
    out
}

fn observe(m: *mut net_mesh_t, link: &[u8], payload: &[u8]) -> Result<u32, net_status_t> {
    let mut code = u32::MAX;
    match unsafe {
        net_mesh_observe_chain_event(
            m,
            link.as_ptr(),
            link.len(),
            payload.as_ptr(),
            payload.len(),
            &mut code,
        )
    } {
        net_status_t::NET_OK => Ok(code),
        st => Err(st),
    }
}

fn next(
    m: *mut net_mesh_t,
    timeout_ms: u32,
    cancel: *const net_cancel_t,
) -> Result<serde_json::Value, (net_status_t, String)> {
    let mut out = net_bytes_t::EMPTY;
    let mut error = error_slot();
    let st = unsafe { net_mesh_continuity_next(m, timeout_ms, &mut out, cancel, &mut error) };
    if st == net_status_t::NET_OK {
        Ok(json(out))
    } else {
        let (_, message) = error_of(error);
        Err((st, message))
    }
}

fn status_json(m: *mut net_mesh_t) -> serde_json::Value {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_mesh_continuity_status(m, &mut out) },
        net_status_t::NET_OK
    );
    json(out)
}

fn partitions_json(m: *mut net_mesh_t) -> Result<serde_json::Value, net_status_t> {
    let mut out = net_bytes_t::EMPTY;
    match unsafe { net_mesh_partitions(m, &mut out) } {
        net_status_t::NET_OK => Ok(json(out)),
        st => Err(st),
    }
}

#[test]
fn a_chain_followed_and_broken_through_the_abi() {
    let m = node_with("");
    const ORIGIN: u64 = 0x1234_5678_9ABC;
    assert_eq!(partitions_json(m).unwrap(), serde_json::json!([]));
    assert_eq!(status_json(m), serde_json::json!([]));
    // Not followed yet: refused, named.
    let genesis = CausalLink::genesis(ORIGIN);
    let first = genesis.next(&[], 0);
    assert_eq!(
        observe(m, &first.to_bytes(), b"one"),
        Err(net_status_t::NET_ERR_INVALID_ARGUMENT)
    );
    assert!(last_error().contains("not followed"), "{}", last_error());
    assert_eq!(
        unsafe { net_mesh_follow_chain(m, ORIGIN) },
        net_status_t::NET_OK
    );
    assert_eq!(
        unsafe { net_mesh_follow_chain(m, ORIGIN) },
        net_status_t::NET_OK
    );
    assert_eq!(
        observe(m, &first.to_bytes(), b"one"),
        Ok(NET_CHAIN_EXTENDED)
    );
    assert_eq!(
        observe(m, &first.to_bytes(), b"one"),
        Ok(NET_CHAIN_DUPLICATE)
    );
    let second = first.next(b"one", 0);
    assert_eq!(
        observe(m, &second.to_bytes(), b"two"),
        Ok(NET_CHAIN_EXTENDED)
    );
    // A link of another length, or bytes that are no link: refused.
    assert_eq!(
        observe(m, &second.to_bytes()[..31], b"two"),
        Err(net_status_t::NET_ERR_INVALID_ARGUMENT)
    );
    let status = status_json(m);
    assert_eq!(status[0]["origin"], ORIGIN);
    assert_eq!(status[0]["head"]["seq"], 2);
    assert_eq!(
        status[0]["head"]["hash"],
        second.chain_hash(b"two"),
        "the head hash is exact"
    );
    assert_eq!(status[0]["held"], 3, "genesis and two events");
    assert!(status[0]["broken"].is_null());
    assert_eq!(
        next(m, 10, ptr::null()).unwrap_err().0,
        net_status_t::NET_TIMEOUT
    );
    // A second writer at sequence 2: the chain breaks, and says so.
    assert_eq!(
        observe(m, &second.to_bytes(), b"other"),
        Ok(NET_CHAIN_BROKE)
    );
    assert_eq!(
        observe(m, &second.next(b"two", 0).to_bytes(), b"x"),
        Ok(NET_CHAIN_IGNORED)
    );
    let event = next(m, 1_000, ptr::null()).unwrap();
    assert_eq!(event["type"], "chain_broken");
    assert_eq!(event["origin"], ORIGIN);
    let status = status_json(m);
    assert_eq!(status[0]["broken"]["reason"], "conflicting_chains");
    assert_eq!(status[0]["broken"]["last_verified_seq"], 2);
    unsafe { net_mesh_free(m) };
}

#[test]
fn continuity_off_is_refused_with_a_status() {
    let m = node_with(r#","continuity":false"#);
    assert_eq!(
        unsafe { net_mesh_follow_chain(m, 7) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert!(
        last_error().contains("continuity is off"),
        "{}",
        last_error()
    );
    let (st, message) = next(m, 0, ptr::null()).unwrap_err();
    assert_eq!(st, net_status_t::NET_ERR_INVALID_ARGUMENT);
    assert!(message.contains("continuity is off"), "{message}");
    // Status calls still answer (nothing to report).
    assert_eq!(partitions_json(m).unwrap(), serde_json::json!([]));
    unsafe { net_mesh_free(m) };
}

/// A proof asked of a connected peer through the ABI: both follow the
/// chain from its genesis, which both hold, so the verdict is consistent;
/// the refusals carry their reasons.
#[test]
fn a_proof_asked_through_the_abi_arrives_as_an_event() {
    const CHAIN: u64 = 0xC0A1_7000_0000_0003;
    let a = node_with("");
    let b = node_with("");
    unsafe {
        assert_eq!(net_mesh_start(a), net_status_t::NET_OK);
        assert_eq!(net_mesh_start(b), net_status_t::NET_OK);
    }
    connect(a, b);
    let peer = node_id(b);
    let ask =
        |origin, from, to| unsafe { net_mesh_request_continuity_proof(a, peer, origin, from, to) };
    assert_eq!(ask(CHAIN, 0, 0), net_status_t::NET_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("not followed"), "{}", last_error());
    for m in [a, b] {
        assert_eq!(
            unsafe { net_mesh_follow_chain(m, CHAIN) },
            net_status_t::NET_OK
        );
    }
    assert_eq!(ask(CHAIN, 3, 2), net_status_t::NET_ERR_INVALID_ARGUMENT);
    assert_eq!(
        unsafe { net_mesh_request_continuity_proof(a, 0xDEAD, CHAIN, 0, 0) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("continuity peer"), "{}", last_error());
    assert_eq!(ask(CHAIN, 0, 0), net_status_t::NET_OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    let event = loop {
        assert!(Instant::now() < deadline, "no proof_checked event");
        if let Ok(event) = next(a, 100, ptr::null())
            && event["type"] == "proof_checked"
        {
            break event;
        }
    };
    assert_eq!(event["peer"], peer);
    assert_eq!(event["origin"], CHAIN);
    assert_eq!(event["verdict"], "consistent", "{event}");
    unsafe {
        net_mesh_free(a);
        net_mesh_free(b);
    }
}

#[test]
fn a_causal_stream_opened_through_the_abi_is_followed_and_proved() {
    const CHAIN: u64 = 0xC0A1_5700_0000_0003;
    let a = node_with("");
    let b = node_with(r#","proof_interval_ms":100"#);
    unsafe {
        assert_eq!(net_mesh_start(a), net_status_t::NET_OK);
        assert_eq!(net_mesh_start(b), net_status_t::NET_OK);
    }
    connect(a, b);
    let peer = node_id(b);
    for m in [a, b] {
        assert_eq!(
            unsafe { net_mesh_follow_chain(m, CHAIN) },
            net_status_t::NET_OK
        );
    }
    let mut stream = ptr::null_mut();
    assert_eq!(
        unsafe { net_mesh_open_causal_stream(a, 0xDEAD, 5, true, u64::MAX, &mut stream) },
        net_status_t::NET_ERR_MESH_UNKNOWN_PEER
    );
    assert_eq!(
        unsafe { net_mesh_open_causal_stream(a, peer, 5, true, u64::MAX, &mut stream) },
        net_status_t::NET_OK
    );
    // Ten events of the chain, one frame each: u32 LE length ‖ link ‖ payload.
    let mut link = CausalLink::genesis(CHAIN);
    let mut payload: Vec<u8> = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..10u8 {
        link = link.next(&payload, 0);
        payload = vec![i; 3];
        let mut body = ((32 + payload.len()) as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&link.to_bytes());
        body.extend_from_slice(&payload);
        bodies.push(body);
    }
    let slices: Vec<net_slice_t> = bodies
        .iter()
        .map(|b| net_slice_t {
            ptr: b.as_ptr(),
            len: b.len(),
        })
        .collect();
    assert_eq!(
        unsafe { net_mesh_stream_send(stream, slices.as_ptr(), slices.len()) },
        net_status_t::NET_OK
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no proof of the whole chain");
        if let Ok(event) = next(b, 100, ptr::null())
            && event["type"] == "proof_checked"
        {
            assert_eq!(event["verdict"], "consistent", "{event}");
            if event["to_seq"] == 10 {
                break;
            }
        }
    }
    let chain = &status_json(b)[0];
    assert_eq!(chain["head"]["seq"], 10, "{chain}");
    assert_eq!(chain["source"], node_id(a), "{chain}");
    assert_eq!(chain["proved_to"], 10, "{chain}");
    assert_eq!(chain["proof_conflicted"], false, "{chain}");
    // The sender followed what it sent.
    assert_eq!(status_json(a)[0]["head"]["seq"], 10);
    unsafe {
        net_mesh_stream_free(stream);
        net_mesh_free(a);
        net_mesh_free(b);
    }
}

#[test]
fn the_next_causal_link_is_computed_as_the_chain_does() {
    let genesis = CausalLink::genesis(0xC0A1);
    let mut out = net_bytes_t::EMPTY;
    let prev = genesis.to_bytes();
    assert_eq!(
        unsafe { net_causal_next_link(prev.as_ptr(), 32, ptr::null(), 0, 0, &mut out) },
        net_status_t::NET_OK
    );
    let first = genesis.next(&[], 0);
    assert_eq!(take(out), first.to_bytes());
    let prev = first.to_bytes();
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_causal_next_link(prev.as_ptr(), 32, b"ab".as_ptr(), 2, 7, &mut out) },
        net_status_t::NET_OK
    );
    assert_eq!(take(out), first.next(b"ab", 7).to_bytes());
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_causal_next_link(prev.as_ptr(), 31, ptr::null(), 0, 0, &mut out) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    let mut last = first;
    last.sequence = u64::MAX;
    let last = last.to_bytes();
    assert_eq!(
        unsafe { net_causal_next_link(last.as_ptr(), 32, ptr::null(), 0, 0, &mut out) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("last sequence"), "{}", last_error());
}

// ---- race 1: op after free -----------------------------------------------------

#[test]
fn race_continuity_calls_after_free_are_refused() {
    let m = node_with("");
    unsafe {
        net_mesh_free(m);
        assert_eq!(partitions_json(m), Err(net_status_t::NET_ERR_SHUTTING_DOWN));
        let mut out = net_bytes_t::EMPTY;
        assert_eq!(
            net_mesh_continuity_status(m, &mut out),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        assert_eq!(
            net_mesh_follow_chain(m, 1),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        assert_eq!(
            net_mesh_request_continuity_proof(m, 2, 1, 0, 0),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        let mut stream = ptr::null_mut();
        assert_eq!(
            net_mesh_open_causal_stream(m, 2, 1, true, u64::MAX, &mut stream),
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        assert!(stream.is_null());
        let link = CausalLink::genesis(1).next(&[], 0).to_bytes();
        assert_eq!(
            observe(m, &link, b""),
            Err(net_status_t::NET_ERR_SHUTTING_DOWN)
        );
        assert_eq!(
            next(m, 0, ptr::null()).unwrap_err().0,
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
        net_mesh_free(m); // idempotent
    }
}

// ---- race 2: concurrent frees with racing ops ----------------------------------

#[test]
fn race_concurrent_frees_are_idempotent_with_continuity_ops_racing() {
    for round in 0..8 {
        let pm = P(node_with(""));
        let started = Instant::now();
        let mut threads = Vec::new();
        for t in 0..4 {
            threads.push(thread::spawn(move || {
                let pm = pm;
                for i in 0..200u64 {
                    let st = match t {
                        0 => partitions_json(pm.0).err().unwrap_or(net_status_t::NET_OK),
                        1 => next(pm.0, 1, ptr::null())
                            .err()
                            .map_or(net_status_t::NET_OK, |e| e.0),
                        2 => unsafe { net_mesh_follow_chain(pm.0, i) },
                        _ => {
                            let mut stream = ptr::null_mut();
                            match unsafe {
                                net_mesh_open_causal_stream(pm.0, i, 1, true, u64::MAX, &mut stream)
                            } {
                                // No such peer: refused while the node lives.
                                net_status_t::NET_ERR_MESH_UNKNOWN_PEER => net_status_t::NET_OK,
                                st => st,
                            }
                        }
                    };
                    assert!(
                        matches!(
                            st,
                            net_status_t::NET_OK
                                | net_status_t::NET_TIMEOUT
                                | net_status_t::NET_END
                                | net_status_t::NET_ERR_SHUTTING_DOWN
                        ),
                        "round {round}: {st:?}"
                    );
                }
            }));
        }
        for _ in 0..2 {
            threads.push(thread::spawn(move || {
                let pm = pm;
                let_it_block();
                unsafe { net_mesh_free(pm.0) };
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

// ---- race 3: free and cancel wake a blocked wait -------------------------------

#[test]
fn race_free_wakes_a_continuity_next_blocked_forever() {
    until_won(200, 5, |_| {
        let pm = P(node_with(""));
        let blocked = thread::spawn(move || {
            let pm = pm;
            next(pm.0, NET_WAIT_FOREVER, ptr::null())
        });
        let_it_block();
        assert_eq!(unsafe { net_mesh_free(pm.0) }, net_status_t::NET_OK);
        // NET_END: woken in its wait; SHUTTING_DOWN: freed before it began.
        match blocked.join().unwrap() {
            Err((net_status_t::NET_END, _)) => true,
            Err((net_status_t::NET_ERR_SHUTTING_DOWN, _)) => false,
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn race_cancel_wakes_a_blocked_continuity_next() {
    let pm = P(node_with(""));
    until_won(200, 5, |_| {
        let token = P(cancel_token());
        let blocked = thread::spawn(move || {
            let (pm, token) = (pm, token);
            next(pm.0, NET_WAIT_FOREVER, token.0)
        });
        let_it_block();
        unsafe { net_cancel_cancel(token.0) };
        let outcome = blocked.join().unwrap();
        unsafe { net_cancel_free(token.0) };
        match outcome {
            Err((net_status_t::NET_ERR_CANCELLED, message)) => interrupted_while_waiting(&message),
            other => panic!("{other:?}"),
        }
    });
    unsafe { net_mesh_free(pm.0) };
}
