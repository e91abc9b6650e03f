//! The one shared runtime (src/runtime.rs): every bus and mesh node of the
//! process runs its tasks on the same small pool; shutting one down never
//! disturbs another or the pool; a Rust user can inject a multi-thread
//! runtime (a current-thread one is refused with a clear error); and every
//! blocking call — Rust API or C ABI — works from inside a tokio runtime
//! (a current-thread runtime, a multi-thread runtime's task, our own
//! runtime's workers), without a panic.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use net::bus::{BusConfig, BusError, EventBus, PollRequest, RedexAdapter};
use net::mesh::{MeshConfig, MeshError, MeshNode};
use net::redex::{Redex, RedexFileConfig};

fn bus() -> EventBus {
    EventBus::new(config(), adapter()).unwrap()
}

fn config() -> BusConfig {
    BusConfig::from_json(
        r#"{"num_shards":2,"batch":{"min_size":1,"max_size":64,"max_delay_ms":1}}"#,
    )
    .unwrap()
}

fn adapter() -> Arc<RedexAdapter> {
    Arc::new(RedexAdapter::new(
        Redex::new(),
        "bus",
        RedexFileConfig::default(),
    ))
}

/// Ingests `n` events, flushes, and polls them all back.
fn round_trip(bus: &EventBus, n: usize) {
    for i in 0..n {
        bus.ingest(format!("{i}").into_bytes()).unwrap();
    }
    bus.flush().unwrap();
    let page = bus
        .poll(&PollRequest {
            limit: n.max(1),
            ..PollRequest::default()
        })
        .unwrap();
    assert_eq!(page.events.len(), n);
}

/// Threads of this process by name.
fn threads() -> HashMap<String, usize> {
    let mut names = HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let comm = task.unwrap().path().join("comm");
        if let Ok(name) = std::fs::read_to_string(comm) {
            *names.entry(name.trim().to_owned()).or_default() += 1;
        }
    }
    names
}

fn mesh() -> MeshNode {
    MeshNode::new(MeshConfig::default()).unwrap()
}

#[test]
fn buses_and_nodes_share_one_small_pool() {
    // One runtime each would be 2 threads per bus and 1 per node: 80.
    let buses: Vec<EventBus> = (0..32).map(|_| bus()).collect();
    let nodes: Vec<MeshNode> = (0..16).map(|_| mesh()).collect();
    for b in &buses {
        round_trip(b, 10);
    }
    let names = threads();
    let pool = names.get(net::runtime::THREAD_NAME).copied().unwrap_or(0);
    // The workers, plus the few blocking-pool threads (same name) that
    // other tests of this binary may have started through block_in_place.
    let workers = net::runtime::worker_threads();
    assert!(pool >= workers && pool <= workers + 8, "{names:?}");
    // No per-instance runtime anywhere (the old pools were named so).
    assert!(
        !names.contains_key("net-bus") && !names.contains_key("net-mesh"),
        "{names:?}"
    );
    drop(buses);
    drop(nodes);
}

#[test]
fn shutting_one_bus_or_node_down_leaves_the_others_running() {
    let a = bus();
    let b = bus();
    let node_a = mesh();
    let node_b = mesh();
    let report = a.shutdown();
    assert!(!report.shutdown_was_lossy, "{report:?}");
    node_a.shutdown();
    drop(a);
    drop(node_a);
    // b and node_b (and new ones) still have their tasks.
    round_trip(&b, 100);
    let c = bus();
    round_trip(&c, 100);
    node_b.start().unwrap();
    let node_c = mesh();
    assert!(node_c.recv(1, Some(Duration::from_millis(20))).is_err());
    drop(node_b);
}

#[test]
fn a_shut_down_node_releases_its_port() {
    let node = mesh();
    let addr = node.local_addr();
    node.shutdown();
    drop(node);
    // The receive task owned a clone of the socket: it is gone too.
    UdpSocket::bind(addr).expect("the port is free once the node is gone");
}

#[test]
fn an_injected_runtime_runs_the_tasks_and_survives_them() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("user-rt")
        .enable_all()
        .build()
        .unwrap();
    let bus = EventBus::builder(config(), adapter())
        .runtime(rt.handle().clone())
        .build()
        .unwrap();
    round_trip(&bus, 50);
    bus.shutdown();
    let node = MeshNode::with_runtime(MeshConfig::default(), rt.handle().clone()).unwrap();
    node.start().unwrap();
    node.shutdown();
    drop(bus);
    drop(node);
    // Still usable: neither shut it down.
    assert_eq!(
        rt.block_on(async { tokio::spawn(async { 3 }).await.unwrap() }),
        3
    );
}

#[test]
fn a_current_thread_runtime_is_refused_clearly() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match EventBus::builder(config(), adapter())
        .runtime(rt.handle().clone())
        .build()
    {
        Err(BusError::InvalidConfig(m)) => assert!(m.contains("multi-thread"), "{m}"),
        other => panic!("{other:?}"),
    }
    match MeshNode::with_runtime(MeshConfig::default(), rt.handle().clone()) {
        Err(MeshError::Config(e)) => assert!(e.to_string().contains("multi-thread"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// Every blocking bus and mesh call, from wherever `run` runs it.
fn blocking_calls() {
    let bus = bus();
    round_trip(&bus, 20);
    bus.add_shard().unwrap();
    bus.remove_shard(bus.shard_ids()[0]).unwrap();
    assert!(!bus.shutdown().shutdown_was_lossy);
    drop(bus);
    let node = mesh();
    node.start().unwrap();
    assert!(matches!(
        node.recv(1, Some(Duration::from_millis(5))),
        Err(MeshError::Timeout)
    ));
    node.shutdown();
}

#[test]
fn blocking_calls_work_inside_a_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { blocking_calls() });
}

#[test]
fn blocking_calls_work_inside_a_multi_thread_runtime_task() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { tokio::spawn(async { blocking_calls() }).await.unwrap() });
}

#[test]
fn blocking_calls_work_on_the_shared_runtime_itself() {
    let shared = net::runtime::shared().unwrap();
    net::runtime::block_on(&shared, async {
        tokio::spawn(async { blocking_calls() }).await.unwrap()
    });
    // A bus whose own runtime is the caller's.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            let bus = EventBus::builder(config(), adapter())
                .runtime(handle)
                .build()
                .unwrap();
            round_trip(&bus, 20);
            bus.shutdown();
        })
        .await
        .unwrap()
    });
}

#[test]
fn c_calls_that_wait_work_inside_a_runtime() {
    use net::ffi::*;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = r#"{"num_shards":2}"#;
        let mut bus = ptr::null_mut();
        let st = unsafe { net_bus_new(config.as_ptr(), config.len(), &mut bus) };
        assert_eq!(st, net_status_t::NET_OK);
        for i in 0..100u32 {
            let e = i.to_le_bytes();
            let st = unsafe { net_bus_ingest_raw(bus, e.as_ptr(), e.len()) };
            assert_eq!(st, net_status_t::NET_OK);
        }
        // The free drains the bus (a blocking shutdown on our runtime).
        unsafe { net_bus_free(bus) };
        let mut mesh = ptr::null_mut();
        let st = unsafe { net_mesh_new(ptr::null(), 0, &mut mesh) };
        assert_eq!(st, net_status_t::NET_OK);
        unsafe { net_mesh_free(mesh) };
    });
}
