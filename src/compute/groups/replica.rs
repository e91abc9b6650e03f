//! Replica groups (COMPUTE.md §3.2): N identical daemons of one kind, on
//! distinct nodes, sharing the traffic through a load balancer.
//!
//! Member identities come from the group seed ([`replica_keypair`]): the
//! same seed gives the same members (generation 0 is v0.11's identity).
//! See [`set`](crate::compute::groups::set) for placement, routing and
//! replacement and how they depart from v0.11.

use std::sync::Arc;

use crate::behavior::loadbalance::{LbConfig, RequestContext};
use crate::compute::daemon::CausalEvent;
use crate::compute::groups::members::{GroupHealth, MemberInfo, replica_keypair};
use crate::compute::groups::set::{MemberSet, Routed};
use crate::compute::groups::{DaemonMaker, GroupCluster, GroupError, check_count};
use crate::compute::host::DaemonHost;

/// A replica group; see the module doc.
#[derive(Debug)]
pub struct ReplicaGroup {
    set: MemberSet,
    group_id: u32,
}

impl ReplicaGroup {
    /// Places `count` replicas (1–255) of the daemons `make` builds, each
    /// on its own node of `cluster` matching the kind's requirements.
    ///
    /// # Errors
    /// [`GroupError::InvalidConfig`]; [`GroupError::PlacementFailed`] if
    /// fewer than `count` nodes qualify (nothing stays spawned); a spawn
    /// error.
    pub fn spawn(
        cluster: Arc<dyn GroupCluster>,
        make: DaemonMaker,
        group_seed: [u8; 32],
        count: usize,
        lb_config: LbConfig,
    ) -> Result<Self, GroupError> {
        let count = check_count(count, 1, "replica count")?;
        let filter = make().requirements();
        let maker = Arc::clone(&make);
        let mint = Box::new(move |index: u8, generation: u32| {
            Ok(DaemonHost::new(
                make(),
                replica_keypair(&group_seed, index, generation),
            ))
        });
        let set = MemberSet::new(cluster, filter, (mint, maker), count, lb_config)?;
        let group_id = (xxhash_rust::xxh3::xxh3_64(&group_seed) & u64::from(u32::MAX)) as u32;
        Ok(Self { set, group_id })
    }

    /// Moves replica `index` to `node` ([`MemberSet::migrate`]).
    ///
    /// # Errors
    /// As [`MemberSet::migrate`].
    pub fn migrate_member(&mut self, index: u8, node: u64) -> Result<(), GroupError> {
        self.set.migrate(index, node)
    }

    /// Low 32 bits of `xxh3_64(group seed)` (v0.11's group id).
    pub fn group_id(&self) -> u32 {
        self.group_id
    }

    /// Routes `event` to one healthy member chosen by the load balancer
    /// (`ctx` carries the consistent-hash key, zone and required tags).
    ///
    /// # Errors
    /// [`GroupError::NoHealthyMember`]; the member's delivery error.
    pub fn route(&self, ctx: &RequestContext, event: CausalEvent) -> Result<Routed, GroupError> {
        self.set.route(ctx, event)
    }

    /// Adds members (placed on new distinct nodes) or removes the highest
    /// indices (stopped on their nodes).
    ///
    /// # Errors
    /// [`GroupError::InvalidConfig`] outside 1–255;
    /// [`GroupError::PlacementFailed`] (the members added by this call are
    /// removed again).
    pub fn scale_to(&mut self, count: usize) -> Result<(), GroupError> {
        let count = check_count(count, 1, "replica count")?;
        self.set.scale_to(count)
    }

    /// `node` failed: its members are re-created elsewhere (next
    /// generation identity, fresh state). Returns the indices replaced.
    pub fn on_node_failed(&mut self, node: u64) -> Vec<u8> {
        self.set.on_node_failed(node)
    }

    /// `node` is back; see [`MemberSet::on_node_recovered`].
    pub fn on_node_recovered(&mut self, node: u64) -> Vec<u8> {
        self.set.on_node_recovered(node)
    }

    /// The members, by index.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.set.members()
    }

    /// Healthy / Degraded / Dead.
    pub fn health(&self) -> GroupHealth {
        self.set.health()
    }

    /// The members' routing state (load-balancer slots).
    pub fn member_set(&self) -> &MemberSet {
        &self.set
    }
}
