//! Where a daemon of this node may migrate: the scheduler
//! ([`Scheduler::migration_targets`]) over the nodes of the mesh's
//! capability index that accept migrations, ranked by the load they
//! announced.
//!
//! A runtime on a mesh ([`ComputeRuntime::on_mesh`]) stamps two tags on
//! every announcement its node makes: [`MIGRATION_TAG`] (it takes 0x0500
//! migrations) and `compute:load=<daemons running here>`
//! ([`LOAD_TAG_PREFIX`]). When the number of daemons changes it announces
//! again (rate-limited as any announcement: at most one broadcast per
//! `min_announce_interval`, the latest never dropped) — but only once the
//! application has announced: the tags ride on its capabilities, never
//! instead of them. A node that announces the migration tag without a
//! load (by hand, or a v0.11 node) ranks after every node with one.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{ComputeError, ComputeRuntime, MigrationOptions, Shared};
use crate::compute::scheduler::{Candidate, MIGRATION_TAG, Scheduler};
use crate::mesh::TagStamp;
use crate::mesh::capability::CapabilitySet;

/// The prefix of the load tag a runtime stamps on its node's
/// announcements: `compute:load=<daemons running here>`.
pub const LOAD_TAG_PREFIX: &str = "compute:load=";

/// The load a node announced; `u64::MAX` when it announced none.
pub(super) fn announced_load(capabilities: &CapabilitySet) -> u64 {
    capabilities
        .tags
        .iter()
        .find_map(|tag| tag.strip_prefix(LOAD_TAG_PREFIX)?.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The runtime's tags on its node's announcements (module doc); none once
/// it is shut down.
pub(super) fn tag_stamp(shared: Weak<Shared>) -> TagStamp {
    Arc::new(move |tags: &mut Vec<String>| {
        tags.retain(|t| t != MIGRATION_TAG && !t.starts_with(LOAD_TAG_PREFIX));
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let load = shared.registry.count();
        shared.announced_load.store(load as u64, Ordering::Relaxed);
        tags.push(MIGRATION_TAG.to_owned());
        tags.push(format!("{LOAD_TAG_PREFIX}{load}"));
    })
}

/// On the worker's tick: a changed number of daemons is announced.
pub(super) fn announce_load_if_changed(shared: &Shared) {
    let load = shared.registry.count() as u64;
    if shared.announced_load.load(Ordering::Relaxed) != load {
        shared.announced_load.store(load, Ordering::Relaxed);
        shared.transport.load_changed();
    }
}

impl ComputeRuntime {
    /// The nodes daemon `origin`, running here, may migrate to, most
    /// preferred first: the nodes this node's capability index holds that
    /// announce [`MIGRATION_TAG`] and match the daemon's
    /// [`requirements`](crate::compute::MeshDaemon::requirements), least
    /// loaded first (the `compute:load=` they announced; ties: the lower
    /// node id). This node is not among them.
    ///
    /// # Errors
    /// [`DaemonError::NotFound`](crate::compute::DaemonError::NotFound) if
    /// the daemon does not run here.
    pub fn migration_targets(&self, origin: u64) -> Result<Vec<u64>, ComputeError> {
        let filter = self
            .shared
            .registry
            .with_host(origin, |host| host.daemon().requirements())?;
        let wanted = filter.clone().with_tag(MIGRATION_TAG);
        let remote: Vec<Candidate> = self
            .shared
            .transport
            .migration_candidates(&wanted)
            .into_iter()
            .map(|(node_id, capabilities)| Candidate {
                node_id,
                load: announced_load(&capabilities),
                capabilities,
            })
            .collect();
        let local = self.shared.node_id;
        let scheduler = Scheduler::new(Candidate {
            node_id: local,
            capabilities: CapabilitySet::default(),
            load: u64::MAX,
        });
        Ok(scheduler.migration_targets(&filter, local, &remote))
    }

    /// The first of [`migration_targets`](Self::migration_targets).
    ///
    /// # Errors
    /// As `migration_targets`; [`ComputeError::NoTarget`] when there is
    /// none.
    pub fn place_migration(&self, origin: u64) -> Result<u64, ComputeError> {
        self.migration_targets(origin)?
            .first()
            .copied()
            .ok_or(ComputeError::NoTarget(origin))
    }

    /// Starts migrating daemon `origin` from this node to the node
    /// [`place_migration`](Self::place_migration) chooses, orchestrated
    /// here; returns that node.
    ///
    /// # Errors
    /// As `place_migration` and
    /// [`start_migration_with`](Self::start_migration_with).
    pub fn start_migration_placed(
        &self,
        origin: u64,
        options: &MigrationOptions,
    ) -> Result<u64, ComputeError> {
        let target = self.place_migration(origin)?;
        self.start_migration_with(origin, self.shared.node_id, target, options)?;
        Ok(target)
    }
}
