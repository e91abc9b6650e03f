//! Fork groups (COMPUTE.md §3.3): daemons forked from a parent daemon's
//! snapshot, each with its own identity and a [`ForkRecord`] naming its
//! parent and fork point.
//!
//! A fork starts from the parent's state at the snapshot's chain head
//! (`fork_seq` = the snapshot's `through_seq`) and chains from its fork
//! genesis (parent = the sentinel), so its first output is sequence 1.
//! Forks are routed, scaled and replaced like replicas
//! ([`set`](crate::compute::groups::set)); a fork re-created after its
//! node failed is a **new fork at the same point** (new identity, new
//! record), where v0.11 restarts the same identity from genesis and reuses
//! its sequences (§8 item 8). Its state since the fork died with the node.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::behavior::loadbalance::{LbConfig, RequestContext};
use crate::compute::daemon::CausalEvent;
use crate::compute::groups::fork::{ForkRecord, fork_genesis};
use crate::compute::groups::members::{GroupHealth, MemberInfo};
use crate::compute::groups::set::{MemberSet, Routed};
use crate::compute::groups::{DaemonMaker, GroupCluster, GroupError, check_count};
use crate::compute::host::DaemonHost;
use crate::compute::snapshot::StateSnapshot;
use crate::identity::EntityKeypair;

/// A fork group; see the module doc.
#[derive(Debug)]
pub struct ForkGroup {
    set: MemberSet,
    parent_origin: u64,
    fork_seq: u64,
    records: Arc<Mutex<BTreeMap<u64, ForkRecord>>>,
}

impl ForkGroup {
    /// Forks daemon `parent_origin` (running on `parent_node`) `count`
    /// times (1–255): snapshots it once and starts each fork from that
    /// state, on distinct nodes.
    ///
    /// # Errors
    /// [`GroupError::InvalidConfig`]; the parent's snapshot error;
    /// [`GroupError::PlacementFailed`] (nothing stays spawned); a restore
    /// or spawn error.
    pub fn fork(
        cluster: Arc<dyn GroupCluster>,
        make: DaemonMaker,
        parent_node: u64,
        parent_origin: u64,
        count: usize,
        lb_config: LbConfig,
    ) -> Result<Self, GroupError> {
        let count = check_count(count, 1, "fork count")?;
        let parent = cluster.snapshot(parent_node, parent_origin)?;
        let fork_seq = parent.snapshot.through_seq;
        let state = parent.snapshot.state;
        let filter = make().requirements();
        let records = Arc::new(Mutex::new(BTreeMap::new()));
        let minted = Arc::clone(&records);
        let maker = Arc::clone(&make);
        let mint = Box::new(move |_index: u8, _generation: u32| {
            let keypair = EntityKeypair::generate();
            let origin = keypair.origin_hash();
            let start = StateSnapshot {
                entity_id: *keypair.entity_id(),
                through_seq: 0,
                chain_link: fork_genesis(origin, parent_origin, fork_seq),
                created_at: crate::redex::now_ns(),
                state: state.clone(),
                bindings: Vec::new(),
                envelope: None,
            };
            let host = DaemonHost::from_snapshot(make(), keypair, &start, None)?;
            let record = ForkRecord::new(parent_origin, origin, fork_seq, Some(fork_seq));
            minted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(origin, record);
            Ok(host)
        });
        let set = MemberSet::new(cluster, filter, (mint, maker), count, lb_config)?;
        let group = Self {
            set,
            parent_origin,
            fork_seq,
            records,
        };
        group.prune_records();
        Ok(group)
    }

    /// Keeps the records of current members only.
    fn prune_records(&self) {
        let live: Vec<u64> = self.set.members().iter().map(|m| m.origin_hash).collect();
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|origin, _| live.contains(origin));
    }

    /// Moves fork `index` to `node` ([`MemberSet::migrate`]): the fork
    /// keeps its identity, record and chain.
    ///
    /// # Errors
    /// As [`MemberSet::migrate`].
    pub fn migrate_member(&mut self, index: u8, node: u64) -> Result<(), GroupError> {
        self.set.migrate(index, node)
    }

    /// The parent's origin.
    pub fn parent_origin(&self) -> u64 {
        self.parent_origin
    }

    /// The parent's chain sequence at the fork point.
    pub fn fork_seq(&self) -> u64 {
        self.fork_seq
    }

    /// The current members' records, by member index.
    pub fn records(&self) -> Vec<ForkRecord> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        self.set
            .members()
            .iter()
            .filter_map(|m| records.get(&m.origin_hash).copied())
            .collect()
    }

    /// Whether every member's record verifies and names this group's
    /// parent and fork point.
    pub fn verify_lineage(&self) -> bool {
        let records = self.records();
        records.len() == self.set.members().len()
            && records.iter().all(|r| {
                r.verify().is_ok()
                    && r.original_origin == self.parent_origin
                    && r.fork_seq == self.fork_seq
            })
    }

    /// Routes `event` to one healthy fork chosen by the load balancer.
    ///
    /// # Errors
    /// [`GroupError::NoHealthyMember`]; the fork's delivery error.
    pub fn route(&self, ctx: &RequestContext, event: CausalEvent) -> Result<Routed, GroupError> {
        self.set.route(ctx, event)
    }

    /// Adds new forks at the same point or removes the highest indices.
    ///
    /// # Errors
    /// As [`ReplicaGroup::scale_to`](crate::compute::groups::ReplicaGroup::scale_to).
    pub fn scale_to(&mut self, count: usize) -> Result<(), GroupError> {
        let count = check_count(count, 1, "fork count")?;
        let result = self.set.scale_to(count);
        self.prune_records();
        result
    }

    /// `node` failed: its forks are re-forked elsewhere at the same point.
    /// Returns the indices replaced.
    pub fn on_node_failed(&mut self, node: u64) -> Vec<u8> {
        let replaced = self.set.on_node_failed(node);
        self.prune_records();
        replaced
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
