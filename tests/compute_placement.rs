//! Where a daemon migrates when the application does not say: the
//! scheduler over the mesh's capability index. Runtimes on a mesh stamp
//! `subprotocol:0x0500` and `compute:load=<daemons>` on their node's
//! announcements (and announce again when the number changes); a daemon's
//! targets are the nodes with the tag that match its requirements, least
//! loaded first. A node without a runtime, one whose runtime shut down and
//! one that lacks a required tag are never targets.

use std::sync::Arc;
use std::time::Duration;

mod compute_common;
mod mesh_common;

use compute_common::Counter;
use mesh_common::{bound_link, started_node, wait_until};
use net::compute::{
    CausalEvent, ComputeError, ComputeRuntime, DaemonError, DaemonHost, LOAD_TAG_PREFIX,
    MIGRATION_TAG, MeshDaemon, MigrationOptions, MigrationStatus, RuntimeConfig,
};
use net::identity::EntityKeypair;
use net::mesh::MeshNode;
use net::mesh::capability::{CapabilityFilter, CapabilitySet};

/// A counter that runs only where `tag` is announced.
struct Needs {
    tag: &'static str,
    inner: Counter,
}

impl MeshDaemon for Needs {
    fn name(&self) -> &str {
        "needs"
    }

    fn requirements(&self) -> CapabilityFilter {
        CapabilityFilter::new().with_tag(self.tag)
    }

    fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        self.inner.process(event)
    }

    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        self.inner.snapshot()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
        self.inner.restore(state)
    }
}

struct Site {
    node: Arc<MeshNode>,
    runtime: Option<ComputeRuntime>,
}

impl Site {
    fn runtime(&self) -> &ComputeRuntime {
        self.runtime.as_ref().unwrap()
    }
}

fn site(with_runtime: bool) -> Site {
    let node = Arc::new(started_node(r#","min_announce_interval_ms":20"#));
    let runtime = with_runtime.then(|| {
        let mut config = RuntimeConfig::default();
        config.retry_interval = Duration::from_millis(20);
        ComputeRuntime::on_mesh(Arc::clone(&node), config).unwrap()
    });
    Site { node, runtime }
}

fn announce(site: &Site, tags: &[&str]) {
    let caps = CapabilitySet {
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..CapabilitySet::default()
    };
    site.node.announce(caps).unwrap();
}

fn spawn(site: &Site, seed: u8) -> (u64, EntityKeypair) {
    let keypair = EntityKeypair::from_seed(&[seed; 32]);
    let origin = site
        .runtime()
        .spawn(DaemonHost::new(
            Box::new(Counter::default()),
            keypair.clone(),
        ))
        .unwrap();
    (origin, keypair)
}

/// A counter on `site` that runs only where `tag` is announced.
fn spawn_needing(site: &Site, tag: &'static str, seed: u8) -> u64 {
    let daemon = Needs {
        tag,
        inner: Counter::default(),
    };
    site.runtime()
        .spawn(DaemonHost::new(
            Box::new(daemon),
            EntityKeypair::from_seed(&[seed; 32]),
        ))
        .unwrap()
}

fn targets(site: &Site, origin: u64) -> Vec<u64> {
    site.runtime().migration_targets(origin).unwrap()
}

#[test]
fn the_scheduler_picks_the_least_loaded_node_that_takes_migrations() {
    // a: the daemons' home; b and c: runtimes; d: a node without one.
    let [a, b, c, d] = [site(true), site(true), site(true), site(false)];
    for other in [&b, &c, &d] {
        bound_link(&a.node, &other.node);
    }
    spawn(&b, 1);
    spawn(&b, 2);
    spawn(&c, 3);
    announce(&a, &[]);
    announce(&b, &["gpu"]);
    announce(&c, &[]);
    announce(&d, &["gpu"]);
    let (counter, keypair) = spawn(&a, 4);
    wait_until(
        || targets(&a, counter) == vec![c.node.node_id(), b.node.node_id()],
        "c (one daemon), then b (two); not d (no runtime), not a (the source)",
    );
    let tags: Vec<String> = b
        .node
        .matching_nodes(&CapabilityFilter::new().with_tag(MIGRATION_TAG))
        .into_iter()
        .find(|(node, _)| *node == b.node.node_id())
        .map(|(_, caps)| caps.tags)
        .unwrap();
    assert!(tags.contains(&format!("{LOAD_TAG_PREFIX}2")), "{tags:?}");
    assert!(
        tags.contains(&"gpu".to_owned()),
        "the application's tags stay"
    );

    // Requirements narrow the choice; none left is an error.
    let gpu = spawn_needing(&a, "gpu", 5);
    wait_until(
        || targets(&a, gpu) == vec![b.node.node_id()],
        "only b has a gpu and a runtime",
    );
    let tpu = spawn_needing(&a, "tpu", 6);
    assert_eq!(
        a.runtime().place_migration(tpu),
        Err(ComputeError::NoTarget(tpu))
    );
    assert_eq!(
        a.runtime().place_migration(0x77),
        Err(ComputeError::Daemon(DaemonError::NotFound(0x77)))
    );

    // c's load changes: it announces again, and b comes first.
    spawn(&c, 7);
    spawn(&c, 8);
    wait_until(
        || targets(&a, counter) == vec![b.node.node_id(), c.node.node_id()],
        "c's new load (three daemons) announced",
    );

    // The placed move goes there.
    for site in [&b, &c] {
        site.runtime()
            .factories()
            .register(
                keypair.clone(),
                Arc::new(|| Ok(Box::new(Counter::default()) as Box<dyn MeshDaemon>)),
            )
            .unwrap();
    }
    a.runtime()
        .deliver(counter, CausalEvent::bare(9, 1, vec![1]))
        .unwrap();
    let target = a
        .runtime()
        .start_migration_placed(counter, &MigrationOptions::default())
        .unwrap();
    assert_eq!(target, b.node.node_id());
    assert_eq!(
        a.runtime()
            .wait_migration(counter, Duration::from_secs(20))
            .unwrap(),
        MigrationStatus::Completed
    );
    assert!(b.runtime().registry().contains(counter));

    // A runtime that shuts down takes its tags back.
    c.runtime().shutdown();
    wait_until(
        || {
            a.node
                .matching_nodes(&CapabilityFilter::new().with_tag(MIGRATION_TAG))
                .iter()
                .all(|(node, _)| *node != c.node.node_id())
        },
        "c no longer takes migrations",
    );
}
