//! Compute groups over the C ABI, as an SDK uses them: members are SDK
//! objects built by Create work items on the nodes the group places them
//! on (a pull loop per runtime here). Replica routing, scaling and the
//! replacement of a member whose node shut down over several nodes; a
//! standby group promoted (explicitly, and after its active's node died)
//! with every event applied exactly once; a fork group's lineage;
//! `net_compute_wait_processed`; and the three handle races for
//! `net_compute_group_t`.

use std::collections::{BTreeSet, HashMap};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

mod ffi_common;

use ffi_common::*;
use net::ffi::*;

const OK: net_status_t = net_status_t::NET_OK;
const CONFIG: &str = r#"{"psk_hex":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","heartbeat_interval_ms":50,"session_timeout_ms":5000,"hello_timeout_ms":500}"#;
const RUNTIME: &str = r#"{"work_timeout_ms": 5000}"#;
const KIND: &str = "counter";
const PRODUCER: u64 = 0xfeed_0000_0000_0001;
const SEED: [u8; 32] = [9; 32];

/// The counter an SDK would implement: refuses an event whose sequence is
/// not above the last one it applied (so an event applied twice fails);
/// state = count ‖ last sequence.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
struct Counter {
    count: u64,
    last: u64,
}

impl Counter {
    fn state(self) -> Vec<u8> {
        [self.count.to_le_bytes(), self.last.to_le_bytes()].concat()
    }

    fn from_state(state: &[u8]) -> Option<Self> {
        (state.len() == 16).then(|| Self {
            count: u64::from_le_bytes(state[..8].try_into().unwrap()),
            last: u64::from_le_bytes(state[8..].try_into().unwrap()),
        })
    }
}

/// An object of the SDK: the daemon it serves and its counter.
#[derive(Clone, Copy, Debug)]
struct Object {
    daemon: u64,
    counter: Counter,
}

/// One node: mesh, runtime, and the SDK's pull loop over it.
struct Node {
    mesh: P<net_mesh_t>,
    rt: P<net_compute_t>,
    id: u64,
    objects: Arc<Mutex<HashMap<u64, Object>>>,
    /// Process items wait for a message here when set (race tests).
    gate: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
    puller: Option<thread::JoinHandle<()>>,
}

fn new_node() -> Node {
    new_node_with(CONFIG)
}

/// A node whose failure detector calls a peer failed after 3 s of
/// silence (3 × the session timeout).
const QUICK_DETECTOR: &str = r#"{"psk_hex":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","heartbeat_interval_ms":50,"session_timeout_ms":1000,"hello_timeout_ms":500}"#;

fn new_node_with(config: &str) -> Node {
    let mut mesh = ptr::null_mut();
    assert_eq!(
        unsafe { net_mesh_new(config.as_ptr(), config.len(), &mut mesh) },
        OK,
        "{}",
        last_error()
    );
    let mut rt = ptr::null_mut();
    assert_eq!(
        unsafe { net_compute_new(mesh, RUNTIME.as_ptr(), RUNTIME.len(), &mut rt) },
        OK,
        "{}",
        last_error()
    );
    assert_eq!(
        unsafe { net_compute_register_kind(rt, KIND.as_ptr(), KIND.len(), true) },
        OK
    );
    let objects: Arc<Mutex<HashMap<u64, Object>>> = Arc::default();
    let gate: Arc<Mutex<Option<mpsc::Receiver<()>>>> = Arc::default();
    let puller = {
        let (rt, objects, gate) = (P(rt), Arc::clone(&objects), Arc::clone(&gate));
        thread::spawn(move || serve(rt, &objects, &gate))
    };
    Node {
        id: node_id(mesh),
        mesh: P(mesh),
        rt: P(rt),
        objects,
        gate,
        puller: Some(puller),
    }
}

fn serve(
    rt: P<net_compute_t>,
    objects: &Mutex<HashMap<u64, Object>>,
    gate: &Mutex<Option<mpsc::Receiver<()>>>,
) {
    let mut next_instance = 1u64;
    loop {
        let (mut id, mut kind, mut instance, mut daemon, mut producer, mut sequence) =
            (0, 0, 0, 0, 0, 0);
        let mut payload = net_bytes_t::EMPTY;
        let st = unsafe {
            net_compute_next(
                rt.0,
                NET_WAIT_FOREVER,
                &mut id,
                &mut kind,
                &mut instance,
                &mut daemon,
                &mut producer,
                &mut sequence,
                &mut payload,
                ptr::null(),
                ptr::null_mut(),
            )
        };
        if st == net_status_t::NET_END || st == net_status_t::NET_ERR_SHUTTING_DOWN {
            return;
        }
        assert_eq!(st, OK, "{}", last_error());
        let payload = take(payload);
        let mut objs = objects.lock().unwrap();
        let st = match kind {
            NET_COMPUTE_WORK_CREATE => {
                assert_eq!(payload, KIND.as_bytes());
                let instance = next_instance;
                next_instance += 1;
                objs.insert(
                    instance,
                    Object {
                        daemon,
                        counter: Counter::default(),
                    },
                );
                unsafe { net_compute_complete_create(rt.0, id, instance) }
            }
            NET_COMPUTE_WORK_PROCESS => {
                let object = objs.get_mut(&instance).expect("process for a known object");
                assert_eq!(object.daemon, daemon);
                if let Some(gate) = gate.lock().unwrap().as_ref() {
                    drop(objs);
                    let _ = gate.recv();
                    objs = objects.lock().unwrap();
                }
                let object = objs.get_mut(&instance).unwrap();
                if sequence <= object.counter.last {
                    let msg = format!("sequence {sequence} applied twice");
                    unsafe { net_compute_fail(rt.0, id, msg.as_ptr(), msg.len()) }
                } else {
                    object.counter.count += 1;
                    object.counter.last = sequence;
                    unsafe { net_compute_complete_process(rt.0, id, ptr::null(), 0) }
                }
            }
            NET_COMPUTE_WORK_SNAPSHOT => {
                let state = objs[&instance].counter.state();
                unsafe { net_compute_complete_snapshot(rt.0, id, state.as_ptr(), state.len()) }
            }
            NET_COMPUTE_WORK_RESTORE => {
                let counter = Counter::from_state(&payload).expect("a counter state");
                objs.get_mut(&instance).unwrap().counter = counter;
                unsafe { net_compute_complete_restore(rt.0, id) }
            }
            NET_COMPUTE_WORK_DROP => {
                objs.remove(&instance);
                OK
            }
            other => panic!("unknown work kind {other}"),
        };
        assert!(
            st == OK || st == net_status_t::NET_ERR_COMPUTE_WORK_EXPIRED,
            "{st:?}: {}",
            last_error()
        );
    }
}

impl Node {
    /// The counter of the object serving `daemon` here (None: no object).
    fn counter(&self, daemon: u64) -> Option<Counter> {
        self.objects
            .lock()
            .unwrap()
            .values()
            .find(|o| o.daemon == daemon)
            .map(|o| o.counter)
    }

    fn object_count(&self) -> usize {
        self.objects.lock().unwrap().len()
    }

    /// Frees the runtime (the node shuts down) and ends the pull loop.
    fn shut_down(&mut self) {
        assert_eq!(unsafe { net_compute_free(self.rt.0) }, OK);
        if let Some(puller) = self.puller.take() {
            puller.join().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shut_down();
        unsafe { net_mesh_free(self.mesh.0) };
    }
}

fn runtimes(nodes: &[Node]) -> Vec<*const net_compute_t> {
    nodes.iter().map(|n| n.rt.0.cast_const()).collect()
}

/// `net_compute_group_replica` over `rts`: the status and the handle.
fn create_replica(
    rts: &[*const net_compute_t],
    kind: &str,
    count: u32,
    lb: &str,
) -> (net_status_t, *mut net_compute_group_t) {
    let mut group = ptr::null_mut();
    let st = unsafe {
        net_compute_group_replica(
            rts.as_ptr(),
            rts.len(),
            kind.as_ptr(),
            kind.len(),
            SEED.as_ptr(),
            SEED.len(),
            count,
            lb.as_ptr(),
            lb.len(),
            &mut group,
        )
    };
    (st, group)
}

/// `net_compute_group_standby` over `rts`: the status and the handle.
fn create_standby(
    rts: &[*const net_compute_t],
    count: u32,
) -> (net_status_t, *mut net_compute_group_t) {
    let mut group = ptr::null_mut();
    let st = unsafe {
        net_compute_group_standby(
            rts.as_ptr(),
            rts.len(),
            KIND.as_ptr(),
            KIND.len(),
            SEED.as_ptr(),
            SEED.len(),
            count,
            &mut group,
        )
    };
    (st, group)
}

fn replica(nodes: &[Node], count: u32) -> P<net_compute_group_t> {
    let (st, group) = create_replica(
        &runtimes(nodes),
        KIND,
        count,
        r#"{"strategy": "round_robin"}"#,
    );
    assert_eq!(st, OK, "{}", last_error());
    P(group)
}

fn standby(nodes: &[Node], count: u32) -> P<net_compute_group_t> {
    let (st, group) = create_standby(&runtimes(nodes), count);
    assert_eq!(st, OK, "{}", last_error());
    P(group)
}

/// Where an event went.
#[derive(Debug, Clone, Copy)]
struct Routed {
    index: u32,
    origin: u64,
    node: u64,
    outcome: u32,
}

fn route(group: P<net_compute_group_t>, sequence: u64) -> Result<Routed, (net_status_t, String)> {
    let mut r = Routed {
        index: 0,
        origin: 0,
        node: 0,
        outcome: 0,
    };
    let payload = sequence.to_le_bytes();
    let mut error = error_slot();
    let st = unsafe {
        net_compute_group_route(
            group.0,
            PRODUCER,
            sequence,
            payload.as_ptr(),
            payload.len(),
            ptr::null(),
            0,
            &mut r.index,
            &mut r.origin,
            &mut r.node,
            &mut r.outcome,
            &mut error,
        )
    };
    if st == OK {
        error_of(error);
        Ok(r)
    } else {
        Err(error_of(error))
    }
}

fn status(group: P<net_compute_group_t>) -> serde_json::Value {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_compute_group_status(group.0, &mut out) },
        OK,
        "{}",
        last_error()
    );
    json(out)
}

fn member_nodes(status: &serde_json::Value) -> Vec<u64> {
    status["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["node"].as_u64().unwrap())
        .collect()
}

fn free_group(group: P<net_compute_group_t>) {
    assert_eq!(unsafe { net_compute_group_free(group.0) }, OK);
}

fn node_failed(group: P<net_compute_group_t>, node: u64) -> serde_json::Value {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_compute_group_node_failed(group.0, node, &mut out) },
        OK,
        "{}",
        last_error()
    );
    json(out)
}

fn processed(node: &Node, origin: u64) -> u64 {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_compute_stats(node.rt.0, origin, &mut out) },
        OK,
        "{}",
        last_error()
    );
    json(out)["events_processed"].as_u64().unwrap()
}

#[test]
fn replica_routes_over_three_nodes_and_scales() {
    let nodes: Vec<Node> = (0..3).map(|_| new_node()).collect();
    let group = replica(&nodes, 3);
    let st = status(group);
    assert_eq!(st["kind"], "replica");
    assert_eq!(st["health"], "healthy");
    assert_eq!(st["total"], 3);
    let placed: BTreeSet<u64> = member_nodes(&st).into_iter().collect();
    let all: BTreeSet<u64> = nodes.iter().map(|n| n.id).collect();
    assert_eq!(placed, all, "one member per node");
    // Each member is an SDK object built on its own node.
    for node in &nodes {
        assert_eq!(node.object_count(), 1);
    }

    // Round robin: 30 events, 10 per member; what route says matches what
    // each member's node processed.
    let mut taken: HashMap<(u64, u64), u64> = HashMap::new();
    for seq in 1..=30 {
        let r = route(group, seq).unwrap();
        assert_eq!(r.outcome, NET_COMPUTE_PROCESSED);
        *taken.entry((r.node, r.origin)).or_default() += 1;
    }
    assert_eq!(taken.len(), 3);
    for (&(node, origin), &count) in &taken {
        assert_eq!(count, 10);
        let node = nodes.iter().find(|n| n.id == node).unwrap();
        assert_eq!(processed(node, origin), 10);
        assert_eq!(node.counter(origin).unwrap().count, 10);
    }

    // Down to 2: the highest index is stopped on its node (its object
    // dropped); traffic goes to the two left.
    let last = st["members"][2].clone();
    assert_eq!(unsafe { net_compute_group_scale(group.0, 2) }, OK);
    let st = status(group);
    assert_eq!(st["total"], 2);
    let gone = nodes
        .iter()
        .find(|n| n.id == last["node"].as_u64().unwrap())
        .unwrap();
    wait_for("the stopped member's object to be dropped", || {
        gone.object_count() == 0
    });
    for seq in 31..=40 {
        let r = route(group, seq).unwrap();
        assert!(r.index < 2);
    }
    // Up to 3 again: the free node takes the new member.
    assert_eq!(unsafe { net_compute_group_scale(group.0, 3) }, OK);
    let placed: BTreeSet<u64> = member_nodes(&status(group)).into_iter().collect();
    assert_eq!(placed, all);
    // Bad counts are refused and change nothing.
    for bad in [0, 256] {
        assert_eq!(
            unsafe { net_compute_group_scale(group.0, bad) },
            net_status_t::NET_ERR_COMPUTE_CONFIG
        );
    }
    assert_eq!(status(group)["total"], 3);
    // A fourth member has no node of its own.
    assert_eq!(
        unsafe { net_compute_group_scale(group.0, 4) },
        net_status_t::NET_ERR_COMPUTE_GROUP_PLACEMENT
    );
    assert_eq!(status(group)["total"], 3);
    // Moves: no such member; a node outside the group's runtimes; a node
    // holding a member (the three nodes all do).
    let held = member_nodes(&status(group))[1];
    for (index, node, expected) in [
        (300, held, net_status_t::NET_ERR_COMPUTE_CONFIG),
        (7, held, net_status_t::NET_ERR_COMPUTE_CONFIG),
        (0, 0x1234, net_status_t::NET_ERR_COMPUTE_GROUP_UNKNOWN_NODE),
        (0, held, net_status_t::NET_ERR_COMPUTE_GROUP_PLACEMENT),
    ] {
        assert_eq!(
            unsafe { net_compute_group_migrate(group.0, index, node) },
            expected,
            "member {index} to {node:#x}"
        );
    }
    // Standby-only calls are refused by kind.
    let mut index = 0;
    assert_eq!(
        unsafe { net_compute_group_promote(group.0, &mut index) },
        net_status_t::NET_ERR_COMPUTE_GROUP_WRONG_KIND
    );
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_compute_group_sync(group.0, &mut out) },
        net_status_t::NET_ERR_COMPUTE_GROUP_WRONG_KIND
    );
    free_group(group);
    // Freeing the group stops its members everywhere.
    for node in &nodes {
        wait_for("members stopped", || node.object_count() == 0);
    }
}

#[test]
fn a_member_whose_node_shut_down_is_replaced() {
    let mut nodes: Vec<Node> = (0..4).map(|_| new_node()).collect();
    let group = replica(&nodes, 3);
    let before = status(group);
    let victim = before["members"][1].clone();
    let victim_node = victim["node"].as_u64().unwrap();
    let spare = nodes
        .iter()
        .map(|n| n.id)
        .find(|id| !member_nodes(&before).contains(id))
        .unwrap();
    nodes
        .iter_mut()
        .find(|n| n.id == victim_node)
        .unwrap()
        .shut_down();
    // Until the failure is reported, the member's events fail.
    let failures = (1..=3).filter(|&seq| route(group, seq).is_err()).count();
    assert_eq!(
        failures, 1,
        "one of three round-robin routes hit the dead node"
    );

    let report = node_failed(group, victim_node);
    assert_eq!(report["replaced"], serde_json::json!([1]));
    let after = status(group);
    assert_eq!(after["health"], "healthy");
    let member = &after["members"][1];
    assert_eq!(member["node"].as_u64().unwrap(), spare);
    assert_eq!(member["generation"], 1);
    assert_ne!(member["origin"], victim["origin"], "a new identity");
    // Every route succeeds again, over three live nodes.
    let mut used = BTreeSet::new();
    for seq in 10..=21 {
        used.insert(route(group, seq).unwrap().node);
    }
    assert_eq!(used.len(), 3);
    assert!(!used.contains(&victim_node));
    free_group(group);
}

/// A group following a node's failure detector
/// (`net_compute_group_watch_failures`) replaces the member of a node that
/// died without anyone reporting it.
#[test]
fn a_watching_group_replaces_the_member_of_a_dead_node_by_itself() {
    let mut nodes: Vec<Node> = (0..4).map(|_| new_node_with(QUICK_DETECTOR)).collect();
    for node in &nodes {
        // Heartbeats and failure detection.
        assert_eq!(unsafe { net_mesh_start(node.mesh.0) }, OK);
    }
    for other in &nodes[1..] {
        connect(nodes[0].mesh.0, other.mesh.0);
    }
    let group = replica(&nodes, 2);
    let observer = nodes[0].rt.0.cast_const();
    assert_eq!(
        unsafe { net_compute_group_watch_failures(group.0, observer, 0) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert_ne!(
        unsafe { net_compute_group_watch_failures(group.0, ptr::null(), 20) },
        OK
    );
    assert_eq!(
        unsafe { net_compute_group_watch_failures(group.0, observer, 20) },
        OK,
        "{}",
        last_error()
    );
    // A second call replaces the watch.
    assert_eq!(
        unsafe { net_compute_group_watch_failures(group.0, observer, 20) },
        OK
    );
    let before = status(group);
    let (index, victim) = before["members"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, m)| (i, m["node"].as_u64().unwrap()))
        .find(|&(_, node)| node != nodes[0].id)
        .unwrap();
    let dead = nodes.iter_mut().find(|n| n.id == victim).unwrap();
    dead.shut_down();
    assert_eq!(unsafe { net_mesh_free(dead.mesh.0) }, OK);
    // Nobody calls net_compute_group_node_failed.
    wait_for("the dead node's member replaced", || {
        let member = &status(group)["members"][index];
        member["node"].as_u64() != Some(victim) && member["generation"] == 1
    });
    assert_eq!(status(group)["health"], "healthy");
    for seq in 1..=4 {
        assert_ne!(route(group, seq).unwrap().node, victim);
    }
    assert_eq!(unsafe { net_compute_group_unwatch_failures(group.0) }, OK);
    assert_eq!(unsafe { net_compute_group_unwatch_failures(group.0) }, OK);
    // A watch still running when the group is freed ends with it.
    assert_eq!(
        unsafe { net_compute_group_watch_failures(group.0, observer, 20) },
        OK
    );
    free_group(group);
    assert_ne!(
        unsafe { net_compute_group_watch_failures(group.0, observer, 20) },
        OK,
        "a freed group"
    );
}

/// Events 1..=n through a standby group, each to the active.
fn node_recovered(group: P<net_compute_group_t>, node: u64) -> serde_json::Value {
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_compute_group_node_recovered(group.0, node, &mut out) },
        OK,
        "{}",
        last_error()
    );
    json(out)
}

/// A node reported failed with no node free to take its member: the
/// member stays out of service; reported back, the member (still running
/// there) takes traffic again.
#[test]
fn a_member_on_a_node_reported_back_returns_to_service() {
    let nodes: Vec<Node> = (0..2).map(|_| new_node()).collect();
    let group = replica(&nodes, 2);
    let member = status(group)["members"][1].clone();
    let node = member["node"].as_u64().unwrap();
    assert_eq!(node_failed(group, node)["replaced"], serde_json::json!([]));
    let degraded = status(group);
    assert_eq!(degraded["health"], "degraded");
    assert_eq!(degraded["members"][1]["healthy"], false);
    // Every event goes to the other member meanwhile.
    let others: BTreeSet<u64> = (1..=4).map(|seq| route(group, seq).unwrap().node).collect();
    assert!(!others.contains(&node), "{others:?}");

    assert_eq!(
        node_recovered(group, node)["restored"],
        serde_json::json!([1])
    );
    let back = status(group);
    assert_eq!(back["health"], "healthy");
    assert_eq!(
        back["members"][1]["origin"], member["origin"],
        "the same member"
    );
    let used: BTreeSet<u64> = (5..=8).map(|seq| route(group, seq).unwrap().node).collect();
    assert!(used.contains(&node), "{used:?}");
    // A node the group never lost restores nothing.
    assert_eq!(
        node_recovered(group, node)["restored"],
        serde_json::json!([])
    );
    free_group(group);
}

fn feed(group: P<net_compute_group_t>, range: std::ops::RangeInclusive<u64>) -> Routed {
    let mut last = None;
    for seq in range {
        last = Some(route(group, seq).unwrap());
    }
    last.unwrap()
}

#[test]
fn standby_promotion_applies_nothing_twice() {
    let nodes: Vec<Node> = (0..3).map(|_| new_node()).collect();
    let group = standby(&nodes, 2);
    let st = status(group);
    assert_eq!(st["kind"], "standby");
    assert_eq!(st["active"], 0);
    let origin = st["origin"].as_u64().unwrap();
    let active = feed(group, 1..=10);
    assert_eq!((active.index, active.origin), (0, origin));
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_compute_group_sync(group.0, &mut out) }, OK);
    let report = json(out);
    assert_eq!(report["synced"], serde_json::json!([1]));
    assert_eq!(report["failed"], serde_json::json!([]));
    // Logged after the sync: replayed into the standby on promotion.
    feed(group, 11..=15);
    assert_eq!(status(group)["logged"], 5);

    let mut index = 0;
    assert_eq!(
        unsafe { net_compute_group_promote(group.0, &mut index) },
        OK
    );
    assert_eq!(index, 1);
    let st = status(group);
    assert_eq!(st["active"], 1);
    let new_active = st["members"][1]["node"].as_u64().unwrap();
    let node = nodes.iter().find(|n| n.id == new_active).unwrap();
    // The synced state (10) plus the replayed five, each once (the
    // counter refuses a sequence it has passed).
    assert_eq!(
        node.counter(origin),
        Some(Counter {
            count: 15,
            last: 15
        })
    );
    let routed = feed(group, 16..=20);
    assert_eq!((routed.index, routed.node), (1, new_active));
    assert_eq!(
        node.counter(origin),
        Some(Counter {
            count: 20,
            last: 20
        })
    );
    free_group(group);
}

#[test]
fn the_active_node_dies_and_a_standby_takes_over() {
    let mut nodes: Vec<Node> = (0..3).map(|_| new_node()).collect();
    let group = standby(&nodes, 2);
    let origin = status(group)["origin"].as_u64().unwrap();
    let dead = feed(group, 1..=8).node;
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_compute_group_sync(group.0, &mut out) }, OK);
    take(out);
    feed(group, 9..=12);
    nodes.iter_mut().find(|n| n.id == dead).unwrap().shut_down();
    // The dead active's events fail until the failure is reported.
    assert!(route(group, 13).is_err());
    let report = node_failed(group, dead);
    assert_eq!(report["replaced"], serde_json::json!([0]));
    let st = status(group);
    assert_eq!(st["active"], 1);
    assert_eq!(st["health"], "healthy");
    let active_node = st["members"][1]["node"].as_u64().unwrap();
    let standby_node = st["members"][0]["node"].as_u64().unwrap();
    assert!(active_node != dead && standby_node != dead && active_node != standby_node);
    // State at the last sync plus the logged events, nothing twice.
    let active = nodes.iter().find(|n| n.id == active_node).unwrap();
    assert_eq!(
        active.counter(origin),
        Some(Counter {
            count: 12,
            last: 12
        })
    );
    // The re-created standby was synced from the new active at once.
    let standby = nodes.iter().find(|n| n.id == standby_node).unwrap();
    assert_eq!(
        standby.counter(origin),
        Some(Counter {
            count: 12,
            last: 12
        })
    );
    feed(group, 13..=14);
    assert_eq!(
        active.counter(origin),
        Some(Counter {
            count: 14,
            last: 14
        })
    );
    free_group(group);
}

/// The channels `origin` holds on `node`, by name (its stats).
fn held_channels(node: &Node, origin: u64) -> Vec<String> {
    let mut out = net_bytes_t::EMPTY;
    if unsafe { net_compute_stats(node.rt.0, origin, &mut out) } != OK {
        return Vec::new();
    }
    json(out)["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A channel the active subscribed after the last sync is held by the
/// standby promoted when the active's node dies (the group follows the
/// active's ledger through the C ABI's groups too).
#[test]
fn a_promoted_standby_holds_the_channel_its_active_subscribed_after_the_sync() {
    let mut nodes: Vec<Node> = (0..3).map(|_| new_node()).collect();
    let publisher = new_node();
    for node in &nodes {
        connect(node.mesh.0, publisher.mesh.0);
    }
    let name = "sensors/late";
    let mut evicted = 0;
    assert_eq!(
        unsafe {
            net_mesh_register_channel(
                publisher.mesh.0,
                name.as_ptr(),
                name.len(),
                ptr::null(),
                0,
                &mut evicted,
            )
        },
        OK
    );
    let group = standby(&nodes, 2);
    let origin = status(group)["origin"].as_u64().unwrap();
    let dead = feed(group, 1..=3).node;
    let mut out = net_bytes_t::EMPTY;
    assert_eq!(unsafe { net_compute_group_sync(group.0, &mut out) }, OK);
    take(out);
    let active = nodes.iter().find(|n| n.id == dead).unwrap();
    let mut error = error_slot();
    let st = unsafe {
        net_compute_subscribe_channel(
            active.rt.0,
            origin,
            publisher.id,
            name.as_ptr(),
            name.len(),
            ptr::null(),
            0,
            ptr::null(),
            &mut error,
        )
    };
    assert_eq!(st, OK, "{}", error_of(error).1);
    nodes.iter_mut().find(|n| n.id == dead).unwrap().shut_down();
    node_failed(group, dead);
    let st = status(group);
    let promoted = st["members"][1]["node"].as_u64().unwrap();
    let promoted = nodes.iter().find(|n| n.id == promoted).unwrap();
    assert_eq!(held_channels(promoted, origin), vec![name.to_owned()]);
    free_group(group);
}

#[test]
fn a_fork_group_carries_its_lineage() {
    let nodes: Vec<Node> = (0..3).map(|_| new_node()).collect();
    // The parent: a daemon of the SDK on node 0, fed five events.
    nodes[0].objects.lock().unwrap().insert(
        1_000,
        Object {
            daemon: 0,
            counter: Counter::default(),
        },
    );
    let mut parent = 0;
    let seed = [3u8; 32];
    assert_eq!(
        unsafe {
            net_compute_spawn(
                nodes[0].rt.0,
                KIND.as_ptr(),
                KIND.len(),
                seed.as_ptr(),
                seed.len(),
                1_000,
                &mut parent,
            )
        },
        OK
    );
    nodes[0]
        .objects
        .lock()
        .unwrap()
        .get_mut(&1_000)
        .unwrap()
        .daemon = parent;
    for seq in 1..=5 {
        let mut outcome = 0;
        let st = unsafe {
            net_compute_deliver(
                nodes[0].rt.0,
                parent,
                PRODUCER,
                seq,
                ptr::null(),
                0,
                &mut outcome,
                ptr::null_mut(),
            )
        };
        assert_eq!(st, OK, "{}", last_error());
    }
    let rts = runtimes(&nodes);
    let mut group = ptr::null_mut();
    let st = unsafe {
        net_compute_group_fork(
            rts.as_ptr(),
            rts.len(),
            KIND.as_ptr(),
            KIND.len(),
            nodes[0].id,
            parent,
            2,
            ptr::null(),
            0,
            &mut group,
        )
    };
    assert_eq!(st, OK, "{}", last_error());
    let group = P(group);
    let st = status(group);
    assert_eq!(st["kind"], "fork");
    assert_eq!(st["parent_origin"].as_u64(), Some(parent));
    assert_eq!(st["lineage_verified"], true);
    let records = st["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    for (record, member) in records.iter().zip(st["members"].as_array().unwrap()) {
        let bytes: Vec<u8> = (0..65)
            .map(|i| u8::from_str_radix(&record.as_str().unwrap()[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(
            bytes[..8],
            parent.to_le_bytes(),
            "the record names the parent first"
        );
        let origin = member["origin"].as_u64().unwrap();
        assert_eq!(bytes[8..16], origin.to_le_bytes(), "then the fork");
        // Each fork started from the parent's state.
        let node = nodes
            .iter()
            .find(|n| Some(n.id) == member["node"].as_u64())
            .unwrap();
        assert_eq!(node.counter(origin), Some(Counter { count: 5, last: 5 }));
    }
    // A fork takes new events on top of the parent's state.
    let routed = route(group, 6).unwrap();
    let node = nodes.iter().find(|n| n.id == routed.node).unwrap();
    assert_eq!(
        node.counter(routed.origin),
        Some(Counter { count: 6, last: 6 })
    );
    free_group(group);
    // An unknown parent node is named.
    let mut group = ptr::null_mut();
    let st = unsafe {
        net_compute_group_fork(
            rts.as_ptr(),
            rts.len(),
            KIND.as_ptr(),
            KIND.len(),
            42,
            parent,
            1,
            ptr::null(),
            0,
            &mut group,
        )
    };
    assert_eq!(st, net_status_t::NET_ERR_COMPUTE_GROUP_UNKNOWN_NODE);
}

#[test]
fn bad_group_arguments_are_refused_with_their_status() {
    let nodes: Vec<Node> = (0..2).map(|_| new_node()).collect();
    let rts = runtimes(&nodes);
    let refused = |(st, group): (net_status_t, *mut net_compute_group_t)| {
        assert!(group.is_null(), "nothing written on failure");
        st
    };
    let cases: [(&str, u32, &str, &[*const net_compute_t], net_status_t); 6] = [
        (
            "nope",
            1,
            "",
            &rts,
            net_status_t::NET_ERR_COMPUTE_UNKNOWN_KIND,
        ),
        (
            KIND,
            3,
            "",
            &rts,
            net_status_t::NET_ERR_COMPUTE_GROUP_PLACEMENT,
        ),
        (KIND, 0, "", &rts, net_status_t::NET_ERR_COMPUTE_CONFIG),
        (
            KIND,
            1,
            r#"{"bogus": 1}"#,
            &rts,
            net_status_t::NET_ERR_COMPUTE_CONFIG,
        ),
        (KIND, 1, "", &[], net_status_t::NET_ERR_INVALID_ARGUMENT),
        (
            KIND,
            1,
            "",
            &[rts[0], rts[0]],
            net_status_t::NET_ERR_INVALID_ARGUMENT,
        ),
    ];
    for (kind, count, lb, nodes_of, want) in cases {
        assert_eq!(
            refused(create_replica(nodes_of, kind, count, lb)),
            want,
            "{kind} {count} {lb}"
        );
        if lb.contains("bogus") {
            assert!(last_error().contains("bogus"), "{}", last_error());
        }
    }
    // A failed placement left nothing spawned (the objects it had built
    // are dropped).
    for node in &nodes {
        wait_for("objects of the failed placement dropped", || {
            node.object_count() == 0
        });
    }
    // Standby groups need two members.
    assert_eq!(
        refused(create_standby(&rts, 1)),
        net_status_t::NET_ERR_COMPUTE_CONFIG
    );
    // Scaling a standby group is refused by kind.
    let group = standby(&nodes, 2);
    assert_eq!(
        unsafe { net_compute_group_scale(group.0, 3) },
        net_status_t::NET_ERR_COMPUTE_GROUP_WRONG_KIND
    );
    free_group(group);
}

// --- net_compute_wait_processed -----------------------------------------

fn wait_processed(
    node: &Node,
    origin: u64,
    count: u64,
    timeout_ms: u32,
    cancel: *const net_cancel_t,
) -> (net_status_t, Option<serde_json::Value>) {
    let mut out = net_bytes_t::EMPTY;
    let st = unsafe {
        net_compute_wait_processed(
            node.rt.0,
            origin,
            count,
            timeout_ms,
            &mut out,
            cancel,
            ptr::null_mut(),
        )
    };
    (st, (st == OK).then(|| json(out)))
}

#[test]
fn wait_processed_returns_once_the_count_is_reached() {
    let node = new_node();
    let group = replica(std::slice::from_ref(&node), 1);
    let origin = status(group)["members"][0]["origin"].as_u64().unwrap();
    // Nothing processed yet: a short wait times out, a cancelled one ends.
    assert_eq!(
        wait_processed(&node, origin, 1, 20, ptr::null()).0,
        net_status_t::NET_TIMEOUT
    );
    let token = cancel_token();
    unsafe { net_cancel_cancel(token) };
    assert_eq!(
        wait_processed(&node, origin, 1, NET_WAIT_FOREVER, token).0,
        net_status_t::NET_ERR_CANCELLED
    );
    unsafe { net_cancel_free(token) };
    // A producer on another thread; the wait returns at the 50th event.
    let producer = thread::spawn(move || {
        for seq in 1..=50 {
            route(group, seq).unwrap();
        }
    });
    let (st, stats) = wait_processed(&node, origin, 50, 10_000, ptr::null());
    assert_eq!(st, OK, "{}", last_error());
    let stats = stats.unwrap();
    assert_eq!(stats["events_processed"], 50);
    assert_eq!(stats["origin"].as_u64(), Some(origin));
    producer.join().unwrap();
    free_group(group);
    // A daemon that is not here is waited for (it may arrive): a timeout.
    assert_eq!(
        wait_processed(&node, 7, 1, 20, ptr::null()).0,
        net_status_t::NET_TIMEOUT
    );
}

#[test]
fn freeing_the_runtime_ends_a_wait_processed() {
    let node = new_node();
    let rt = node.rt;
    let waiter = thread::spawn(move || {
        let rt = rt;
        let mut out = net_bytes_t::EMPTY;
        unsafe {
            net_compute_wait_processed(
                rt.0,
                7,
                1,
                NET_WAIT_FOREVER,
                &mut out,
                ptr::null(),
                ptr::null_mut(),
            )
        }
    });
    let_it_block();
    drop(node);
    let st = waiter.join().unwrap();
    assert_eq!(st, net_status_t::NET_ERR_SHUTTING_DOWN);
}

// --- the three handle races ---------------------------------------------

/// A quick call, or (slow) a route its member's SDK holds until `gate`.
fn call(group: P<net_compute_group_t>, slow: bool) -> net_status_t {
    if slow {
        match route(group, 1) {
            Ok(_) => OK,
            Err((st, _)) => st,
        }
    } else {
        let mut out = net_bytes_t::EMPTY;
        let st = unsafe { net_compute_group_status(group.0, &mut out) };
        take(out);
        st
    }
}

#[test]
fn race_op_after_free_is_refused() {
    let node = new_node();
    for _ in 0..5 {
        let group = replica(std::slice::from_ref(&node), 1);
        free_group(group);
        assert_eq!(call(group, false), net_status_t::NET_ERR_SHUTTING_DOWN);
        assert!(last_error().contains("freed"), "{}", last_error());
        let mut out = net_bytes_t::EMPTY;
        assert_eq!(
            unsafe { net_compute_group_node_recovered(group.0, node.id, &mut out) },
            net_status_t::NET_ERR_SHUTTING_DOWN
        );
    }
    for _ in 0..5 {
        let group = replica(std::slice::from_ref(&node), 1);
        let start = Arc::new(Barrier::new(4));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let start = start.clone();
                thread::spawn(move || {
                    start.wait();
                    for _ in 0..100 {
                        let st = call(group, false);
                        assert!(
                            st == OK || st == net_status_t::NET_ERR_SHUTTING_DOWN,
                            "{st:?}"
                        );
                    }
                })
            })
            .collect();
        start.wait();
        free_group(group);
        for w in workers {
            w.join().unwrap();
        }
    }
}

#[test]
fn race_concurrent_frees_are_idempotent() {
    let node = new_node();
    for _ in 0..5 {
        let group = replica(std::slice::from_ref(&node), 1);
        let start = Arc::new(Barrier::new(6));
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let start = start.clone();
                thread::spawn(move || {
                    start.wait();
                    if i % 2 == 1 {
                        let _ = call(group, false);
                    }
                    unsafe { net_compute_group_free(group.0) }
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), OK);
        }
        assert_eq!(call(group, false), net_status_t::NET_ERR_SHUTTING_DOWN);
        wait_for("members stopped", || node.object_count() == 0);
    }
}

/// A route held inside its member's SDK is in flight when the free comes:
/// the free returns only after it (no call inside once it returned).
#[test]
fn race_free_waits_for_in_flight_call() {
    let node = new_node();
    for _ in 0..20 {
        let group = replica(std::slice::from_ref(&node), 1);
        let (open, gate) = mpsc::channel();
        *node.gate.lock().unwrap() = Some(gate);
        let done = Arc::new(AtomicBool::new(false));
        let worker = {
            let done = done.clone();
            thread::spawn(move || {
                let st = call(group, true);
                done.store(true, Ordering::SeqCst);
                st
            })
        };
        let in_flight = wait_in_flight(group.0, &done);
        let freer = thread::spawn(move || {
            let group = group;
            let st = unsafe { net_compute_group_free(group.0) };
            (st, net::ffi::calls_in_flight(group.0))
        });
        let_it_block();
        open.send(()).unwrap();
        let (st, inside_after_free) = freer.join().unwrap();
        assert_eq!(st, OK);
        let routed = worker.join().unwrap();
        *node.gate.lock().unwrap() = None;
        if in_flight {
            assert_eq!(
                inside_after_free, 0,
                "the free returned before the call it waited for"
            );
            assert_eq!(routed, OK, "the call in flight finished normally");
            return;
        }
    }
    panic!("the call was never seen in flight in 20 rounds");
}
