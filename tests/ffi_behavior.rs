//! The behavior plane's C ABI (`net_rules_*`, `net_safety_*`, `net_lb_*`)
//! through the same `extern "C"` functions C calls: JSON in and out,
//! typed statuses with messages naming the bad key, permits and selections
//! that release what they hold, and the three handle races for each of the
//! five handle types.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

mod ffi_common;

use ffi_common::{P, json, last_error, wait_in_flight};
use net::ffi::*;
use serde_json::Value;

const OK: net_status_t = net_status_t::NET_OK;

const RULES: &str = r#"{"name": "edge", "rules": [
  {"id": "big", "name": "big payload", "priority": "high",
   "condition": {"single": {"field": "size", "op": "Gt", "value": 1000}},
   "action": {"reject": {"reason": "too large"}},
   "rate_limit": {"max_executions": 2, "window_ms": 3600000}},
  {"id": "pro", "name": "pro tier", "tags": ["tier"],
   "condition": {"single": {"field": "user.tier", "op": "Eq", "value": "pro"}},
   "action": {"log": {"level": "info", "message": "pro"}}}]}"#;

fn rules_new(json_text: &str) -> Result<*mut net_rules_t, net_status_t> {
    let mut out = ptr::null_mut();
    match unsafe { net_rules_new(json_text.as_ptr(), json_text.len(), &mut out) } {
        OK => Ok(out),
        s => {
            assert!(out.is_null(), "no output on failure");
            Err(s)
        }
    }
}

fn evaluate(r: *mut net_rules_t, ctx: &str, tag: Option<&str>) -> Result<Value, net_status_t> {
    let mut out = net_bytes_t::EMPTY;
    let (tag_ptr, tag_len) = tag.map_or((ptr::null(), 0), |t| (t.as_ptr(), t.len()));
    match unsafe { net_rules_evaluate(r, ctx.as_ptr(), ctx.len(), tag_ptr, tag_len, &mut out) } {
        OK => Ok(json(out)),
        s => Err(s),
    }
}

fn stats(r: *mut net_rules_t, id: &str) -> Result<Value, net_status_t> {
    let mut out = net_bytes_t::EMPTY;
    match unsafe { net_rules_stats(r, id.as_ptr(), id.len(), &mut out) } {
        OK => Ok(json(out)),
        s => Err(s),
    }
}

#[test]
fn rules_evaluate_rate_limit_stats_and_round_trip() {
    let r = rules_new(RULES).unwrap();
    let big = r#"{"size": 5000, "user": {"tier": "pro"}}"#;
    let e = evaluate(r, big, None).unwrap();
    assert_eq!(e["visited"], 2);
    let outcomes = e["outcomes"].as_array().unwrap();
    assert_eq!(outcomes[0]["rule_id"], "big");
    assert_eq!(outcomes[0]["action"]["reject"]["reason"], "too large");
    assert_eq!(outcomes[0]["suppressed"], Value::Null);
    assert_eq!(outcomes[1]["rule_id"], "pro");
    // 5000.0 compares as a number; the third release is over the limit.
    evaluate(r, r#"{"size": 5000.0}"#, None).unwrap();
    let third = evaluate(r, big, None).unwrap();
    assert_eq!(third["outcomes"][0]["action"], Value::Null);
    assert_eq!(third["outcomes"][0]["suppressed"], "rate_limited");
    let s = stats(r, "big").unwrap();
    assert_eq!(
        (s["matches"].as_u64(), s["executions"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(s["suppressed_rate_limit"], 1);
    // Tagged: only "pro" is visited.
    let tagged = evaluate(r, big, Some("tier")).unwrap();
    assert_eq!(tagged["visited"], 1);
    // The JSON form loads back into an equal engine.
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_rules_to_json(r, &mut out) }, OK);
    let text = String::from_utf8(ffi_common::take(out)).unwrap();
    let again = rules_new(&text).unwrap();
    assert_eq!(
        evaluate(again, big, None).unwrap()["outcomes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Remove, then unknown.
    assert_eq!(unsafe { net_rules_remove(r, "pro".as_ptr(), 3) }, OK);
    assert_eq!(
        unsafe { net_rules_remove(r, "pro".as_ptr(), 3) },
        net_status_t::NET_ERR_RULES_UNKNOWN_RULE
    );
    assert_eq!(
        stats(r, "pro"),
        Err(net_status_t::NET_ERR_RULES_UNKNOWN_RULE)
    );
    assert!(last_error().contains("pro"), "{}", last_error());
    // Load adds, all or none.
    let more = r#"{"name": "m", "rules": [{"id": "pro", "condition": {"single": {"field": "a", "op": "Exists"}}, "action": {"log": {"level": "info", "message": "x"}}}]}"#;
    assert_eq!(unsafe { net_rules_load(r, more.as_ptr(), more.len()) }, OK);
    assert_eq!(
        unsafe { net_rules_load(r, more.as_ptr(), more.len()) },
        net_status_t::NET_ERR_RULES_INVALID
    );
    assert!(last_error().contains("duplicate"), "{}", last_error());
    unsafe {
        assert_eq!(net_rules_free(r), OK);
        assert_eq!(net_rules_free(again), OK);
    }
}

#[test]
fn rules_errors_name_what_is_wrong() {
    assert_eq!(
        rules_new(r#"{"name": "x", "rulez": []}"#),
        Err(net_status_t::NET_ERR_RULES_INVALID)
    );
    assert!(last_error().contains("rulez"), "{}", last_error());
    let bad_regex = r#"{"name": "x", "rules": [{"id": "a", "condition": {"single": {"field": "f", "op": "Matches", "value": "("}}, "action": {"log": {"level": "info", "message": "x"}}}]}"#;
    assert_eq!(
        rules_new(bad_regex),
        Err(net_status_t::NET_ERR_RULES_INVALID)
    );
    assert!(last_error().contains("regex"), "{}", last_error());
    let r = rules_new("").unwrap();
    assert_eq!(
        evaluate(r, "{not json", None),
        Err(net_status_t::NET_ERR_RULES_INVALID)
    );
    assert!(last_error().contains("context"), "{}", last_error());
    assert_eq!(evaluate(r, "{}", None).unwrap()["visited"], 0);
    unsafe { net_rules_free(r) };
}

// ---- safety ------------------------------------------------------------------

fn safety_new(config: &str) -> Result<*mut net_safety_t, net_status_t> {
    let mut out = ptr::null_mut();
    match unsafe { net_safety_new(config.as_ptr(), config.len(), &mut out) } {
        OK => Ok(out),
        s => Err(s),
    }
}

fn acquire(s: *mut net_safety_t, req: &str) -> Result<*mut net_safety_permit_t, net_status_t> {
    let mut out = ptr::null_mut();
    match unsafe { net_safety_acquire(s, req.as_ptr(), req.len(), &mut out) } {
        OK => Ok(out),
        status => {
            assert!(out.is_null());
            Err(status)
        }
    }
}

fn usage(s: *mut net_safety_t) -> Value {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_safety_usage(s, &mut out) }, OK);
    json(out)
}

#[test]
fn safety_caps_policies_kill_switch_limits_and_audit() {
    let s = safety_new(
        r#"{"limits": {"max_concurrent": 2, "per_source_rpm": 100},
            "policies": [{"name": "no-secrets", "rule": {"block": "(?i)password"}},
                         {"name": "mail", "rule": {"redact": "[a-z]+@[a-z]+"}}]}"#,
    )
    .unwrap();
    let a = acquire(s, r#"{"source": "a"}"#).unwrap();
    let b = acquire(
        s,
        r#"{"source": "a", "content": "mail bob@example now", "tokens": 10}"#,
    )
    .unwrap();
    assert_eq!(
        acquire(s, r#"{"source": "b"}"#),
        Err(net_status_t::NET_ERR_SAFETY_LIMIT)
    );
    assert!(last_error().contains("concurrent"), "{}", last_error());
    let mut info = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_safety_permit_info(b, &mut info) }, OK);
    let info = json(info);
    assert_eq!(info["redacted"], "mail [REDACTED] now");
    assert_eq!(unsafe { net_safety_permit_consume(b, 4, 0) }, OK);
    assert_eq!(usage(s)["concurrent"], 2);
    unsafe {
        assert_eq!(net_safety_permit_free(a), OK);
        assert_eq!(net_safety_permit_free(a), OK, "idempotent");
        assert_eq!(net_safety_permit_free(b), OK);
    }
    let u = usage(s);
    assert_eq!(u["concurrent"], 0);
    assert_eq!(
        u["tokens_last_minute"], 4,
        "the unconsumed tokens were given back"
    );
    // Content policies apply on acquire and on check.
    let secret = r#"{"source": "a", "content": "my PASSWORD"}"#;
    assert_eq!(
        acquire(s, secret),
        Err(net_status_t::NET_ERR_SAFETY_CONTENT)
    );
    assert!(last_error().contains("no-secrets"), "{}", last_error());
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_safety_check(s, secret.as_ptr(), secret.len(), &mut out) },
        net_status_t::NET_ERR_SAFETY_CONTENT
    );
    // Kill switch.
    assert_eq!(unsafe { net_safety_kill(s, "maint".as_ptr(), 5, 0) }, OK);
    assert_eq!(
        acquire(s, r#"{"source": "a"}"#),
        Err(net_status_t::NET_ERR_SAFETY_KILL_SWITCH)
    );
    assert!(last_error().contains("maint"));
    assert_eq!(usage(s)["kill_switch"], true);
    assert_eq!(unsafe { net_safety_reset_kill_switch(s) }, OK);
    // Limits update: a per-source rate of 1.
    let limits = r#"{"per_source_rpm": 1}"#;
    assert_eq!(
        unsafe { net_safety_set_limits(s, limits.as_ptr(), limits.len()) },
        OK
    );
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_safety_limits(s, &mut out) }, OK);
    assert_eq!(json(out)["per_source_rpm"], 1);
    let c = acquire(s, r#"{"source": "fresh"}"#).unwrap();
    assert_eq!(
        acquire(s, r#"{"source": "fresh"}"#),
        Err(net_status_t::NET_ERR_SAFETY_RATE_LIMITED)
    );
    unsafe { net_safety_permit_free(c) };
    let bad = r#"{"per_source_rmp": 1}"#;
    assert_eq!(
        unsafe { net_safety_set_limits(s, bad.as_ptr(), bad.len()) },
        net_status_t::NET_ERR_SAFETY_CONFIG
    );
    assert!(last_error().contains("per_source_rmp"), "{}", last_error());
    // The audit names every refusal; clearing empties it.
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_safety_audit(s, true, &mut out) }, OK);
    let audit = json(out);
    let kinds: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.iter().filter(|k| **k == "blocked").count() >= 4,
        "{kinds:?}"
    );
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_safety_audit(s, false, &mut out) }, OK);
    assert_eq!(json(out), serde_json::json!([]));
    assert_eq!(
        safety_new(r#"{"limits": {"max_concurent": 1}}"#),
        Err(net_status_t::NET_ERR_SAFETY_CONFIG)
    );
    assert!(last_error().contains("max_concurent"), "{}", last_error());
    unsafe { net_safety_free(s) };
}

#[test]
fn safety_exact_cap_under_100_racing_acquirers_through_the_abi() {
    let s = P(safety_new(r#"{"limits": {"max_concurrent": 10}}"#).unwrap());
    let start = Arc::new(Barrier::new(100));
    let admitted = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let (start, admitted) = (start.clone(), admitted.clone());
            thread::spawn(move || {
                let s = s;
                start.wait();
                let req = format!(r#"{{"source": "s{i}"}}"#);
                match acquire(s.0, &req) {
                    Ok(p) => {
                        admitted.fetch_add(1, Ordering::SeqCst);
                        Some(P(p))
                    }
                    Err(status) => {
                        assert_eq!(status, net_status_t::NET_ERR_SAFETY_LIMIT);
                        None
                    }
                }
            })
        })
        .collect();
    let permits: Vec<_> = threads
        .into_iter()
        .filter_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(admitted.load(Ordering::SeqCst), 10);
    assert_eq!(usage(s.0)["concurrent"], 10);
    for p in permits {
        unsafe { net_safety_permit_free(p.0) };
    }
    assert_eq!(usage(s.0)["concurrent"], 0);
    unsafe { net_safety_free(s.0) };
}

// ---- load balancing ------------------------------------------------------------

fn lb_new(config: &str) -> Result<*mut net_lb_t, net_status_t> {
    let mut out = ptr::null_mut();
    match unsafe { net_lb_new(config.as_ptr(), config.len(), &mut out) } {
        OK => Ok(out),
        s => Err(s),
    }
}

fn add(lb: *mut net_lb_t, id: u8, options: &str) -> net_status_t {
    let id = [id; 32];
    unsafe { net_lb_add(lb, id.as_ptr(), 32, options.as_ptr(), options.len()) }
}

fn select(lb: *mut net_lb_t, req: &str) -> Result<*mut net_lb_selection_t, net_status_t> {
    let mut out = ptr::null_mut();
    match unsafe { net_lb_select(lb, req.as_ptr(), req.len(), &mut out) } {
        OK => Ok(out),
        s => Err(s),
    }
}

fn selected(sel: *mut net_lb_selection_t) -> u8 {
    let mut id = net_bytes_t::EMPTY;
    let mut probe = true;
    assert_eq!(unsafe { net_lb_selection_id(sel, &mut id, &mut probe) }, OK);
    let id = ffi_common::take(id);
    assert_eq!(id.len(), 32);
    assert!(!probe);
    id[0]
}

fn connections(lb: *mut net_lb_t) -> Vec<u64> {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_lb_endpoints(lb, &mut out) }, OK);
    json(out)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["connections"].as_u64().unwrap())
        .collect()
}

#[test]
fn lb_select_release_tags_and_errors() {
    let lb = lb_new(r#"{"strategy": "power_of_two", "seed": 7, "max_connections": 2}"#).unwrap();
    assert_eq!(select(lb, ""), Err(net_status_t::NET_ERR_LB_NO_ENDPOINT));
    assert_eq!(add(lb, 1, ""), OK);
    assert_eq!(add(lb, 2, r#"{"tags": ["gpu"], "zone": "eu"}"#), OK);
    assert_eq!(add(lb, 2, ""), net_status_t::NET_ERR_LB_DUPLICATE_ENDPOINT);
    assert_eq!(
        add(lb, 3, r#"{"wieght": 1}"#),
        net_status_t::NET_ERR_LB_CONFIG
    );
    assert!(last_error().contains("wieght"), "{}", last_error());
    // Required tags pick the one endpoint carrying them.
    let gpu = select(lb, r#"{"required_tags": ["gpu"]}"#).unwrap();
    assert_eq!(selected(gpu), 2);
    assert_eq!(connections(lb), vec![0, 1]);
    assert_eq!(unsafe { net_lb_selection_complete(gpu, true) }, OK);
    assert_eq!(connections(lb), vec![0, 0], "complete releases the slot");
    assert_eq!(
        unsafe { net_lb_selection_complete(gpu, true) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    unsafe { net_lb_selection_free(gpu) };
    // Four selections fill both endpoints' caps; a fifth finds none.
    let held: Vec<_> = (0..4).map(|_| select(lb, "").unwrap()).collect();
    assert_eq!(connections(lb), vec![2, 2]);
    assert_eq!(select(lb, ""), Err(net_status_t::NET_ERR_LB_NO_ENDPOINT));
    // Freeing without completing releases too.
    for s in held {
        unsafe { net_lb_selection_free(s) };
    }
    assert_eq!(connections(lb), vec![0, 0]);
    let id = [2u8; 32];
    assert_eq!(unsafe { net_lb_remove(lb, id.as_ptr(), 32) }, OK);
    assert_eq!(
        unsafe { net_lb_remove(lb, id.as_ptr(), 32) },
        net_status_t::NET_ERR_LB_UNKNOWN_ENDPOINT
    );
    assert_eq!(
        unsafe { net_lb_remove(lb, id.as_ptr(), 31) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        lb_new(r#"{"strategy": "fastest"}"#),
        Err(net_status_t::NET_ERR_LB_CONFIG)
    );
    assert!(last_error().contains("fastest"), "{}", last_error());
    // A selection outlives its balancer and still releases.
    let s = select(lb, "").unwrap();
    unsafe {
        assert_eq!(net_lb_free(lb), OK);
        assert_eq!(selected(s), 1);
        assert_eq!(net_lb_selection_complete(s, false), OK);
        assert_eq!(net_lb_selection_free(s), OK);
    }
}

// ---- the three handle races, for each handle type -------------------------------

/// One kind of handle under test: how to make one, a call on it (slow when
/// `slow`), and its free.
struct Kind<T> {
    make: fn() -> *mut T,
    call: fn(*mut T, bool) -> net_status_t,
    free: unsafe extern "C" fn(*mut T) -> net_status_t,
}

fn big_context() -> &'static str {
    static BIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIG.get_or_init(|| {
        let items: Vec<String> = (0..400_000).map(|i| format!("{{\"k\": {i}}}")).collect();
        format!(r#"{{"size": 1, "items": [{}]}}"#, items.join(","))
    })
}

fn rules_kind() -> Kind<net_rules_t> {
    Kind {
        make: || rules_new(RULES).unwrap(),
        call: |r, slow| {
            let ctx = if slow {
                big_context()
            } else {
                r#"{"size": 1}"#
            };
            evaluate(r, ctx, None).err().unwrap_or(OK)
        },
        free: net_rules_free,
    }
}

fn safety_kind() -> Kind<net_safety_t> {
    Kind {
        make: || safety_new("").unwrap(),
        call: |s, slow| {
            let mut out = net_bytes_t::EMPTY;
            let req = if slow {
                format!(
                    r#"{{"source": "a", "content": {}}}"#,
                    serde_json::json!(big_context())
                )
            } else {
                r#"{"source": "a"}"#.to_owned()
            };
            let status = unsafe { net_safety_check(s, req.as_ptr(), req.len(), &mut out) };
            ffi_common::take(out);
            status
        },
        free: net_safety_free,
    }
}

fn permit_kind() -> Kind<net_safety_permit_t> {
    Kind {
        make: || {
            static ENVELOPE: std::sync::OnceLock<P<net_safety_t>> = std::sync::OnceLock::new();
            let s = ENVELOPE.get_or_init(|| P(safety_new("").unwrap()));
            acquire(s.0, r#"{"source": "race"}"#).unwrap()
        },
        call: |p, _| {
            let mut out = net_bytes_t::EMPTY;
            let status = unsafe { net_safety_permit_info(p, &mut out) };
            ffi_common::take(out);
            status
        },
        free: net_safety_permit_free,
    }
}

fn lb_kind() -> Kind<net_lb_t> {
    Kind {
        make: || {
            let lb = lb_new("").unwrap();
            assert_eq!(add(lb, 1, ""), OK);
            lb
        },
        call: |lb, slow| {
            let req = if slow {
                format!(r#"{{"routing_key": {}}}"#, serde_json::json!(big_context()))
            } else {
                String::new()
            };
            match select(lb, &req) {
                Ok(s) => unsafe { net_lb_selection_free(s) },
                Err(s) => s,
            }
        },
        free: net_lb_free,
    }
}

fn selection_kind() -> Kind<net_lb_selection_t> {
    Kind {
        make: || {
            static LB: std::sync::OnceLock<P<net_lb_t>> = std::sync::OnceLock::new();
            let lb = LB.get_or_init(|| {
                let lb = lb_new(r#"{"max_connections": 1000000}"#).unwrap();
                assert_eq!(add(lb, 9, ""), OK);
                P(lb)
            });
            select(lb.0, "").unwrap()
        },
        call: |s, _| {
            let mut id = net_bytes_t::EMPTY;
            let mut probe = false;
            let status = unsafe { net_lb_selection_id(s, &mut id, &mut probe) };
            ffi_common::take(id);
            status
        },
        free: net_lb_selection_free,
    }
}

fn op_after_free_is_refused<T: 'static>(kind: Kind<T>) {
    for _ in 0..50 {
        let h = (kind.make)();
        assert_eq!(unsafe { (kind.free)(h) }, OK);
        assert_eq!((kind.call)(h, false), net_status_t::NET_ERR_SHUTTING_DOWN);
        assert!(last_error().contains("freed"), "{}", last_error());
    }
    for _ in 0..20 {
        let h = P((kind.make)());
        let start = Arc::new(Barrier::new(4));
        let call = kind.call;
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let start = start.clone();
                thread::spawn(move || {
                    let h = h;
                    start.wait();
                    for _ in 0..100 {
                        let status = call(h.0, false);
                        assert!(
                            status == OK || status == net_status_t::NET_ERR_SHUTTING_DOWN,
                            "{status:?}"
                        );
                    }
                })
            })
            .collect();
        start.wait();
        assert_eq!(unsafe { (kind.free)(h.0) }, OK);
        for w in workers {
            w.join().unwrap();
        }
    }
}

fn concurrent_frees_are_idempotent<T: 'static>(kind: Kind<T>) {
    for _ in 0..50 {
        let h = P((kind.make)());
        let start = Arc::new(Barrier::new(6));
        let (call, free) = (kind.call, kind.free);
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let start = start.clone();
                thread::spawn(move || {
                    let h = h;
                    start.wait();
                    if i % 2 == 1 {
                        let _ = call(h.0, false);
                    }
                    unsafe { free(h.0) }
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), OK);
        }
        assert_eq!((kind.call)(h.0, false), net_status_t::NET_ERR_SHUTTING_DOWN);
    }
}

/// The free waits for a call in flight: the call finishes with its own
/// result (never SHUTTING_DOWN or garbage once inside), and the free
/// returns OK only after it. Handles with a slow call make one call and
/// check the order directly; for handles whose calls are all quick, the
/// worker calls in a loop until refused, and the free must still drain it.
fn free_waits_for_in_flight<T: 'static>(kind: Kind<T>, slow: bool) {
    // Rounds end early once the call was seen inside; on a loaded machine
    // the watching thread may miss a 15 ms call many times in a row.
    for _ in 0..1000 {
        let h = P((kind.make)());
        let done = Arc::new(AtomicBool::new(false));
        let call = kind.call;
        let worker = {
            let done = done.clone();
            thread::spawn(move || {
                let h = h;
                let mut status = call(h.0, true);
                while !slow && status == OK {
                    status = call(h.0, false);
                }
                done.store(true, Ordering::SeqCst);
                status
            })
        };
        let in_flight = wait_in_flight(h.0, &done);
        assert_eq!(unsafe { (kind.free)(h.0) }, OK);
        // The property itself: once the free returned, no call is inside.
        // (`done` is set after the call returned, so it may still be false
        // here: it only says whether the call ended before it was seen.)
        let inside_after_free = net::ffi::calls_in_flight(h.0);
        let status = worker.join().unwrap();
        if !slow {
            assert_eq!(status, net_status_t::NET_ERR_SHUTTING_DOWN);
            assert_eq!(net::ffi::calls_in_flight(h.0), 0);
            if in_flight {
                return;
            }
        } else if in_flight {
            assert!(
                inside_after_free == 0,
                "the free returned before the call it waited for"
            );
            assert_ne!(status, net_status_t::NET_ERR_SHUTTING_DOWN);
            return;
        }
    }
    panic!(
        "{}: the call was never seen in flight in 1000 rounds",
        std::any::type_name::<T>()
    );
}

macro_rules! races {
    ($($kind:ident: $slow:expr),*) => {
        #[test]
        fn race_op_after_free_is_refused() {
            $( op_after_free_is_refused($kind()); )*
        }
        #[test]
        fn race_concurrent_frees_are_idempotent() {
            $( concurrent_frees_are_idempotent($kind()); )*
        }
        #[test]
        fn race_free_waits_for_in_flight_call() {
            $( free_waits_for_in_flight($kind(), $slow); )*
        }
    };
}

races!(rules_kind: true, safety_kind: true, permit_kind: false, lb_kind: true, selection_kind: false);

#[test]
fn a_permit_freed_while_in_use_releases_its_claim_once() {
    let s = safety_new(r#"{"limits": {"max_concurrent": 1}}"#).unwrap();
    for _ in 0..50 {
        let p = P(acquire(s, r#"{"source": "x"}"#).unwrap());
        let start = Arc::new(Barrier::new(3));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let start = start.clone();
                thread::spawn(move || {
                    let p = p;
                    start.wait();
                    let _ = unsafe { net_safety_permit_consume(p.0, 1, 0) };
                    unsafe { net_safety_permit_free(p.0) }
                })
            })
            .collect();
        start.wait();
        for t in threads {
            assert_eq!(t.join().unwrap(), OK);
        }
        assert_eq!(usage(s)["concurrent"], 0);
    }
    unsafe { net_safety_free(s) };
}
