//! The nodes a group places its members on ([`GroupCluster`]), and its
//! implementation over compute runtimes ([`RuntimeCluster`]).
//!
//! Not pure: this is where a group's decisions reach daemons. A group
//! never touches a registry directly; it asks the cluster to spawn, feed,
//! snapshot, restore or stop a daemon **on a given node**, so members
//! really run on the nodes the scheduler chose (v0.11's groups keep every
//! member in the creating node's registry, §3).
//!
//! [`RuntimeCluster`] reaches each node's [`ComputeRuntime`] in this
//! process (one per [`MeshNode`](crate::mesh::MeshNode)). A cluster whose
//! members are in other processes implements the same trait over a
//! remote-spawn protocol (not built yet; see `docs/compute.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::compute::daemon::CausalEvent;
use crate::compute::factory::DaemonFactory;
use crate::compute::groups::{DaemonMaker, GroupError, MemberInfo};
use crate::compute::host::{DaemonHost, DaemonSnapshot};
use crate::compute::ledger::SubscriptionLedger;
use crate::compute::migration::FailureReason;
use crate::compute::runtime::{
    ComputeError, ComputeRuntime, DeliveryOutcome, LedgerFollower, MigrationStatus,
};
use crate::compute::scheduler::{Candidate, Scheduler};
use crate::mesh::capability::{CapabilityFilter, CapabilitySet};

/// Where a group's members run. Every call names the node.
pub trait GroupCluster: Send + Sync {
    /// The node the group's coordinator runs on.
    fn local_node(&self) -> u64;

    /// The nodes that may host members now, with their capabilities and
    /// load (lower is preferred).
    fn candidates(&self) -> Vec<Candidate>;

    /// Runs `host` on `node`.
    ///
    /// # Errors
    /// [`GroupError::UnknownNode`], or the runtime's refusal.
    fn spawn(&self, node: u64, host: DaemonHost) -> Result<(), GroupError>;

    /// Delivers `event` to daemon `origin` on `node`.
    ///
    /// # Errors
    /// [`GroupError::UnknownNode`], or the runtime's or daemon's error.
    fn deliver(
        &self,
        node: u64,
        origin: u64,
        event: CausalEvent,
    ) -> Result<DeliveryOutcome, GroupError>;

    /// Snapshots daemon `origin` on `node`.
    ///
    /// # Errors
    /// [`GroupError::UnknownNode`], or the registry's or daemon's error.
    fn snapshot(&self, node: u64, origin: u64) -> Result<DaemonSnapshot, GroupError>;

    /// Restores `snapshot` into daemon `origin` on `node`, in place.
    ///
    /// # Errors
    /// [`GroupError::UnknownNode`], or the registry's or daemon's error.
    fn restore(&self, node: u64, origin: u64, snapshot: &DaemonSnapshot) -> Result<(), GroupError>;

    /// Stops daemon `origin` on `node` (absent is fine).
    ///
    /// # Errors
    /// [`GroupError::UnknownNode`].
    fn stop(&self, node: u64, origin: u64) -> Result<(), GroupError>;

    /// Whether daemon `origin` runs on `node`.
    fn contains(&self, node: u64, origin: u64) -> bool;

    /// Moves daemon `origin` from `from` to `to` with the migration
    /// protocol (COMPUTE.md §2: its state, chain and identity go along;
    /// events delivered meanwhile are applied once, where it lands) and
    /// waits until the move is over. `factory` builds the daemon's object
    /// at `to`. Default: not supported by this cluster.
    ///
    /// # Errors
    /// [`GroupError::UnknownNode`]; [`GroupError::Migration`] (the daemon
    /// stays on `from`); the runtime's refusal to start.
    fn migrate(
        &self,
        origin: u64,
        from: u64,
        to: u64,
        factory: DaemonFactory,
    ) -> Result<(), GroupError> {
        let _ = (origin, from, to, factory);
        Err(GroupError::Migration(FailureReason::ComputeNotSupported))
    }

    /// Daemon `origin` on `node` now stands for the group (a promoted
    /// standby): `node` subscribes the channels in its ledger, as the old
    /// active's node did (COMPUTE.md §1.8). Default: a cluster without
    /// channels does nothing.
    ///
    /// # Errors
    /// [`GroupError::UnknownNode`]; the daemon does not run there.
    fn bind_channels(&self, node: u64, origin: u64) -> Result<(), GroupError> {
        let _ = (node, origin);
        Ok(())
    }

    /// Daemon `origin` on `node` no longer stands for the group (a demoted
    /// active): `node` lets go of its ledger's channels. Default: nothing.
    ///
    /// # Errors
    /// As [`bind_channels`](Self::bind_channels).
    fn release_channels(&self, node: u64, origin: u64) -> Result<(), GroupError> {
        let _ = (node, origin);
        Ok(())
    }

    /// Tells `follower` the ledger of daemon `origin` on `node` now and
    /// after each change there ([`ComputeRuntime::follow_ledger`]).
    /// Returns whether it is followed. Default: a cluster without channels
    /// follows nothing.
    ///
    /// # Errors
    /// [`GroupError::UnknownNode`]; the daemon does not run there.
    fn follow_ledger(
        &self,
        node: u64,
        origin: u64,
        follower: LedgerFollower,
    ) -> Result<bool, GroupError> {
        let _ = (node, origin, follower);
        Ok(false)
    }

    /// Ends [`follow_ledger`](Self::follow_ledger) (a node that is gone
    /// is fine).
    fn unfollow_ledger(&self, node: u64, origin: u64) {
        let _ = (node, origin);
    }

    /// Replaces the ledger of daemon `origin` on `node` (nothing is
    /// subscribed: [`bind_channels`](Self::bind_channels) does that).
    /// Default: nothing.
    ///
    /// # Errors
    /// As [`bind_channels`](Self::bind_channels).
    fn set_ledger(
        &self,
        node: u64,
        origin: u64,
        ledger: &SubscriptionLedger,
    ) -> Result<(), GroupError> {
        let _ = (node, origin, ledger);
        Ok(())
    }
}

/// How long [`RuntimeCluster::migrate`] waits for a move: far beyond its
/// phases' own timeouts (which end a move that stalls before cut-over).
const MIGRATE_WAIT: Duration = Duration::from_secs(120);

/// A node for a new member requiring `filter`: matching, not in
/// `excluded` (the group's nodes and the failed ones), least loaded. The
/// coordinator's node is a candidate only if it is in the cluster.
///
/// # Errors
/// [`GroupError::PlacementFailed`].
pub(crate) fn place_distinct(
    cluster: &dyn GroupCluster,
    filter: &CapabilityFilter,
    mut excluded: BTreeSet<u64>,
) -> Result<u64, GroupError> {
    let candidates = cluster.candidates();
    let local_id = cluster.local_node();
    let local = match candidates.iter().find(|c| c.node_id == local_id) {
        Some(local) => local.clone(),
        None => {
            excluded.insert(local_id);
            Candidate {
                node_id: local_id,
                capabilities: CapabilitySet::default(),
                load: u64::MAX,
            }
        }
    };
    Scheduler::new(local)
        .place_excluding(filter, &candidates, &excluded)
        .map(|p| p.node_id)
        .map_err(|_| {
            GroupError::PlacementFailed(
                "no matching node outside the group's nodes and the failed ones".into(),
            )
        })
}

/// Moves the member `info` to `node` with the migration protocol, its
/// object made there by `make`: the member must be in service, and `node`
/// neither known failed nor one of the group's `member_nodes` (members
/// stay on distinct nodes).
///
/// # Errors
/// [`GroupError::NoHealthyMember`]; [`GroupError::PlacementFailed`]; the
/// move's error.
pub(crate) fn move_member(
    cluster: &dyn GroupCluster,
    make: &DaemonMaker,
    info: &MemberInfo,
    node: u64,
    failed: &BTreeSet<u64>,
    mut member_nodes: impl Iterator<Item = u64>,
) -> Result<(), GroupError> {
    if !info.healthy {
        return Err(GroupError::NoHealthyMember);
    }
    if failed.contains(&node) || member_nodes.any(|n| n == node) {
        return Err(GroupError::PlacementFailed(format!(
            "node {node:#018x} holds a member of the group or has failed"
        )));
    }
    let make = Arc::clone(make);
    let factory: DaemonFactory = Arc::new(move || Ok(make()));
    cluster.migrate(info.origin_hash, info.node_id, node, factory)
}

struct Site {
    runtime: Arc<ComputeRuntime>,
    capabilities: CapabilitySet,
}

/// A [`GroupCluster`] over compute runtimes in this process; the load of a
/// node is the number of daemons its runtime hosts.
pub struct RuntimeCluster {
    local: u64,
    sites: RwLock<BTreeMap<u64, Site>>,
}

impl std::fmt::Debug for RuntimeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeCluster")
            .field("local", &format_args!("{:#018x}", self.local))
            .field("nodes", &self.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RuntimeCluster {
    /// A cluster whose coordinator is `local` (a node of the cluster or
    /// not).
    pub fn new(local: u64) -> Self {
        Self {
            local,
            sites: RwLock::new(BTreeMap::new()),
        }
    }

    /// Adds (or replaces) a node, announcing `capabilities`.
    pub fn add(&self, runtime: Arc<ComputeRuntime>, capabilities: CapabilitySet) {
        let node = runtime.node_id();
        self.sites
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                node,
                Site {
                    runtime,
                    capabilities,
                },
            );
    }

    /// Removes a node (it left, or its failure was detected); returns
    /// whether it was there.
    pub fn remove(&self, node: u64) -> bool {
        self.sites
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&node)
            .is_some()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Site>> {
        self.sites.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn runtime(&self, node: u64) -> Result<Arc<ComputeRuntime>, GroupError> {
        self.read()
            .get(&node)
            .map(|site| Arc::clone(&site.runtime))
            .ok_or(GroupError::UnknownNode(node))
    }
}

impl GroupCluster for RuntimeCluster {
    fn local_node(&self) -> u64 {
        self.local
    }

    fn candidates(&self) -> Vec<Candidate> {
        self.read()
            .iter()
            .map(|(&node_id, site)| Candidate {
                node_id,
                capabilities: site.capabilities.clone(),
                load: u64::try_from(site.runtime.registry().count()).unwrap_or(u64::MAX),
            })
            .collect()
    }

    fn spawn(&self, node: u64, host: DaemonHost) -> Result<(), GroupError> {
        self.runtime(node)?.spawn(host)?;
        Ok(())
    }

    fn deliver(
        &self,
        node: u64,
        origin: u64,
        event: CausalEvent,
    ) -> Result<DeliveryOutcome, GroupError> {
        Ok(self.runtime(node)?.deliver(origin, event)?)
    }

    fn snapshot(&self, node: u64, origin: u64) -> Result<DaemonSnapshot, GroupError> {
        Ok(self.runtime(node)?.registry().snapshot(origin)?)
    }

    fn restore(&self, node: u64, origin: u64, snapshot: &DaemonSnapshot) -> Result<(), GroupError> {
        self.runtime(node)?.registry().restore_from_snapshot(
            origin,
            &snapshot.snapshot,
            Some(&snapshot.ext),
        )?;
        Ok(())
    }

    fn stop(&self, node: u64, origin: u64) -> Result<(), GroupError> {
        // Absent (already stopped) is what we want. Its channels are let go.
        let _ = self.runtime(node)?.stop(origin);
        Ok(())
    }

    fn contains(&self, node: u64, origin: u64) -> bool {
        self.runtime(node)
            .is_ok_and(|runtime| runtime.registry().contains(origin))
    }

    fn bind_channels(&self, node: u64, origin: u64) -> Result<(), GroupError> {
        self.runtime(node)?.bind_channels(origin)?;
        Ok(())
    }

    fn follow_ledger(
        &self,
        node: u64,
        origin: u64,
        follower: LedgerFollower,
    ) -> Result<bool, GroupError> {
        self.runtime(node)?.follow_ledger(origin, follower)?;
        Ok(true)
    }

    fn unfollow_ledger(&self, node: u64, origin: u64) {
        if let Ok(runtime) = self.runtime(node) {
            runtime.unfollow_ledger(origin);
        }
    }

    fn set_ledger(
        &self,
        node: u64,
        origin: u64,
        ledger: &SubscriptionLedger,
    ) -> Result<(), GroupError> {
        self.runtime(node)?.set_ledger(origin, ledger)?;
        Ok(())
    }

    fn release_channels(&self, node: u64, origin: u64) -> Result<(), GroupError> {
        self.runtime(node)?.release_channels(origin)?;
        Ok(())
    }

    fn migrate(
        &self,
        origin: u64,
        from: u64,
        to: u64,
        factory: DaemonFactory,
    ) -> Result<(), GroupError> {
        let (source, target) = (self.runtime(from)?, self.runtime(to)?);
        // The identity travels sealed: the target needs only the object.
        // An entry left by an earlier move is kept (AlreadyRegistered).
        let _ = target.factories().register_placeholder(origin, factory);
        source.start_migration(origin, from, to)?;
        match source.wait_migration(origin, MIGRATE_WAIT) {
            Ok(MigrationStatus::Completed) => Ok(()),
            Ok(MigrationStatus::Failed(reason)) => Err(GroupError::Migration(reason)),
            Ok(MigrationStatus::Running(_)) | Err(ComputeError::Timeout) => Err(
                GroupError::Migration(FailureReason::StateFailed("the move did not end".into())),
            ),
            Err(e) => Err(e.into()),
        }
    }
}
