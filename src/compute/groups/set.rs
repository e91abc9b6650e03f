//! The members of a replica or fork group (COMPUTE.md §3.1): placement on
//! distinct nodes, load-balanced routing, scaling and replacement.
//!
//! Departures from v0.11:
//! - every member is spawned **on the node the scheduler chose** (v0.11
//!   registers them all locally), and the nodes are distinct: placement
//!   excludes every node already holding a member of the group and every
//!   node reported failed, and picks the least loaded of the rest
//!   ([`Scheduler::place_excluding`](crate::compute::Scheduler::place_excluding));
//! - routing completes its load-balancer
//!   [`Selection`](crate::behavior::loadbalance::Selection) with the
//!   delivery's outcome, so a slot is released on every path (§8 item 7);
//! - a failed spawn or scale removes what it had already placed, and
//!   dropping the group stops its members (§8 item 9);
//! - a member re-created after its node failed gets a **new identity**
//!   from its group's minter (replicas: next generation; forks: a new fork
//!   at the same point): its state and chain died with the node, and a
//!   chain must never restart from genesis under an origin whose later
//!   links others may hold (§8 item 8).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use crate::behavior::loadbalance::{
    Endpoint, EndpointId, Health, LbConfig, LoadBalancer, RequestContext,
};
use crate::compute::daemon::CausalEvent;
use crate::compute::groups::cluster::{move_member, place_distinct};
use crate::compute::groups::members::{GroupHealth, MemberInfo, health_of};
use crate::compute::groups::{DaemonMaker, GroupCluster, GroupError};
use crate::compute::host::DaemonHost;
use crate::compute::runtime::DeliveryOutcome;
use crate::mesh::capability::CapabilityFilter;

/// Builds the host of member `index`, generation `generation`.
pub(crate) type Minter = Box<dyn Fn(u8, u32) -> Result<DaemonHost, GroupError> + Send + Sync>;

/// Where [`MemberSet::route`] delivered an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The member's index.
    pub index: u8,
    /// The member's origin.
    pub origin_hash: u64,
    /// The member's node.
    pub node_id: u64,
    /// What the node's runtime did with the event.
    pub outcome: DeliveryOutcome,
}

struct Member {
    info: MemberInfo,
    endpoint: EndpointId,
}

/// A placed, load-balanced set of members; see the module doc.
pub struct MemberSet {
    cluster: Arc<dyn GroupCluster>,
    filter: CapabilityFilter,
    mint: Minter,
    /// The members' daemon objects, for a node a member migrates to.
    make: DaemonMaker,
    members: Vec<Member>,
    lb: LoadBalancer,
    failed_nodes: BTreeSet<u64>,
    /// Copies left on failed nodes, stopped when the node recovers.
    stale: Vec<(u64, u64)>,
    epoch: Instant,
}

impl std::fmt::Debug for MemberSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberSet")
            .field("members", &self.members())
            .field("failed_nodes", &self.failed_nodes)
            .finish_non_exhaustive()
    }
}

impl MemberSet {
    /// Places `count` members (already validated).
    pub(crate) fn new(
        cluster: Arc<dyn GroupCluster>,
        filter: CapabilityFilter,
        (mint, make): (Minter, DaemonMaker),
        count: u8,
        lb_config: LbConfig,
    ) -> Result<Self, GroupError> {
        let mut set = Self {
            cluster,
            filter,
            mint,
            make,
            members: Vec::new(),
            lb: LoadBalancer::new(lb_config),
            failed_nodes: BTreeSet::new(),
            stale: Vec::new(),
            epoch: Instant::now(),
        };
        set.grow_to(count)?;
        Ok(set)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A node for a member, also avoiding `extra_excluded`.
    fn place(&self, extra_excluded: &BTreeSet<u64>) -> Result<u64, GroupError> {
        let mut excluded: BTreeSet<u64> = self.members.iter().map(|m| m.info.node_id).collect();
        excluded.extend(&self.failed_nodes);
        excluded.extend(extra_excluded);
        place_distinct(self.cluster.as_ref(), &self.filter, excluded)
    }

    /// Places, mints and spawns member `index` of `generation`, avoiding
    /// `extra_excluded` too.
    fn spawn_member(
        &self,
        index: u8,
        generation: u32,
        extra_excluded: &BTreeSet<u64>,
    ) -> Result<Member, GroupError> {
        let node_id = self.place(extra_excluded)?;
        let host = (self.mint)(index, generation)?;
        let origin_hash = host.origin_hash();
        let endpoint = *host.entity_id().as_bytes();
        self.cluster.spawn(node_id, host)?;
        Ok(Member {
            info: MemberInfo {
                index,
                origin_hash,
                node_id,
                healthy: true,
                generation,
            },
            endpoint,
        })
    }

    fn add_endpoint(&self, endpoint: EndpointId) {
        // Ids are fresh public keys: a duplicate cannot happen.
        let _ = self.lb.add(Endpoint::new(endpoint));
    }

    /// Adds members until there are `count`; on failure removes the ones
    /// this call added and returns the error.
    pub(crate) fn grow_to(&mut self, count: u8) -> Result<(), GroupError> {
        let before = self.members.len();
        while self.members.len() < usize::from(count) {
            let index = u8::try_from(self.members.len())
                .map_err(|_| GroupError::InvalidConfig("more than 255 members".into()))?;
            match self.spawn_member(index, 0, &BTreeSet::new()) {
                Ok(member) => {
                    self.add_endpoint(member.endpoint);
                    self.members.push(member);
                }
                Err(e) => {
                    self.shrink_to(before);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Removes the highest-indexed members until there are `count`.
    pub(crate) fn shrink_to(&mut self, count: usize) {
        while self.members.len() > count {
            let Some(member) = self.members.pop() else {
                break;
            };
            let _ = self.lb.remove(&member.endpoint);
            self.stop_member(&member.info);
        }
    }

    fn stop_member(&mut self, info: &MemberInfo) {
        if self.failed_nodes.contains(&info.node_id)
            || self.cluster.stop(info.node_id, info.origin_hash).is_err()
        {
            self.stale.push((info.node_id, info.origin_hash));
        }
    }

    /// Scales to `count` members (validated by the caller).
    pub(crate) fn scale_to(&mut self, count: u8) -> Result<(), GroupError> {
        if usize::from(count) < self.members.len() {
            self.shrink_to(usize::from(count));
            Ok(())
        } else {
            self.grow_to(count)
        }
    }

    /// Picks a member with the load balancer and delivers `event` to it;
    /// the selection is completed (its slot released) with the delivery's
    /// outcome.
    ///
    /// # Errors
    /// [`GroupError::NoHealthyMember`]; the delivery's error.
    pub fn route(&self, ctx: &RequestContext, event: CausalEvent) -> Result<Routed, GroupError> {
        let selection = self
            .lb
            .select_at(ctx, self.now_ms())
            .map_err(|_| GroupError::NoHealthyMember)?;
        let id = selection.id();
        let Some(member) = self.members.iter().find(|m| m.endpoint == id) else {
            // Released on drop; membership changed under a stale endpoint.
            return Err(GroupError::NoHealthyMember);
        };
        let info = &member.info;
        let result = self.cluster.deliver(info.node_id, info.origin_hash, event);
        selection.complete(result.is_ok(), self.now_ms());
        Ok(Routed {
            index: info.index,
            origin_hash: info.origin_hash,
            node_id: info.node_id,
            outcome: result?,
        })
    }

    /// Moves member `index` to `node` with the migration protocol: the
    /// same member — identity, state and chain — continues there (where a
    /// failed node's member is re-created afresh). `node` must be in the
    /// cluster, not reported failed and not hold a member of the group.
    ///
    /// # Errors
    /// [`GroupError::InvalidConfig`] for an unknown index;
    /// [`GroupError::PlacementFailed`] for a node the member may not go
    /// to; [`GroupError::NoHealthyMember`] for a member out of service;
    /// the move's error ([`GroupError::Migration`]: it stays where it
    /// was).
    pub fn migrate(&mut self, index: u8, node: u64) -> Result<(), GroupError> {
        let position = self
            .members
            .iter()
            .position(|m| m.info.index == index)
            .ok_or_else(|| GroupError::InvalidConfig(format!("no member {index}")))?;
        move_member(
            self.cluster.as_ref(),
            &self.make,
            &self.members[position].info,
            node,
            &self.failed_nodes,
            self.members.iter().map(|m| m.info.node_id),
        )?;
        self.members[position].info.node_id = node;
        Ok(())
    }

    /// Marks the members on `node` unhealthy and re-creates each on
    /// another node (a new identity, fresh state). Returns the indices
    /// replaced; a member that could not be placed stays unhealthy (no
    /// traffic) until its node recovers or a later call places it.
    pub fn on_node_failed(&mut self, node: u64) -> Vec<u8> {
        self.failed_nodes.insert(node);
        for member in self.members.iter_mut().filter(|m| m.info.node_id == node) {
            member.info.healthy = false;
            let _ = self.lb.set_health(&member.endpoint, Health::Unhealthy);
        }
        let mut replaced = Vec::new();
        for position in 0..self.members.len() {
            if self.members[position].info.healthy {
                continue;
            }
            let old = &self.members[position].info;
            let (index, generation) = (old.index, old.generation.saturating_add(1));
            let Ok(member) = self.spawn_member(index, generation, &BTreeSet::new()) else {
                continue;
            };
            let old = std::mem::replace(&mut self.members[position], member);
            let _ = self.lb.remove(&old.endpoint);
            self.add_endpoint(self.members[position].endpoint);
            self.stop_member(&old.info);
            replaced.push(index);
        }
        replaced
    }

    /// `node` is back: it may hold members again; stale copies the group
    /// left there are stopped; an unhealthy member still running there
    /// takes traffic again. Returns the indices back in service.
    pub fn on_node_recovered(&mut self, node: u64) -> Vec<u8> {
        self.failed_nodes.remove(&node);
        let (here, elsewhere): (Vec<_>, Vec<_>) =
            self.stale.drain(..).partition(|(n, _)| *n == node);
        self.stale = elsewhere;
        for (n, origin) in here {
            if self.cluster.stop(n, origin).is_err() {
                self.stale.push((n, origin));
            }
        }
        let mut back = Vec::new();
        for member in &mut self.members {
            let info = &mut member.info;
            if !info.healthy
                && info.node_id == node
                && self.cluster.contains(node, info.origin_hash)
            {
                info.healthy = true;
                let _ = self.lb.set_health(&member.endpoint, Health::Healthy);
                back.push(info.index);
            }
        }
        back
    }

    /// The members, by index.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.members.iter().map(|m| m.info.clone()).collect()
    }

    /// The group's health.
    pub fn health(&self) -> GroupHealth {
        health_of(&self.members())
    }

    /// Connection slots reserved on member `index`'s endpoint now (0 when
    /// no route is in flight); `None` for an unknown index.
    pub fn reserved_slots(&self, index: u8) -> Option<u64> {
        let member = self.members.iter().find(|m| m.info.index == index)?;
        self.lb.connections(&member.endpoint).ok()
    }

    /// Endpoints the load balancer holds (one per member).
    pub fn endpoint_count(&self) -> usize {
        self.lb.endpoints().len()
    }
}

impl Drop for MemberSet {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}
