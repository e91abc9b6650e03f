//! `net_compute_group_*`: replica, fork and standby groups (COMPUTE.md §3)
//! over the C ABI.
//!
//! A `net_compute_group_t` is a group of daemons of one SDK-implemented
//! kind, placed by the scheduler on **distinct** nodes among the
//! `net_compute_t` runtimes it was created over (this process's nodes: a
//! group spanning processes needs a remote-spawn protocol that does not
//! exist yet, see docs/compute.md). The group itself lives in the
//! process that created it and drives the members on their nodes.
//!
//! Members are SDK objects like any foreign daemon: when the group places
//! a member on a node it asks that node's SDK side for a fresh object with
//! a **Create** work item (`net_compute_next` on that node's runtime, the
//! payload naming the kind), then feeds, snapshots and restores it with
//! the usual work items. So every node's runtime must have the kind
//! registered and a thread pulling its work.
//!
//! Group calls wait for those work items (bounded by each node's
//! `work_timeout_ms`); never make them from a thread that pulls work.
//!
//! A group keeps its nodes' runtimes (not their handles) alive until it
//! is freed: freeing a node's `net_compute_t` shuts that runtime down (its
//! members' calls fail until `net_compute_group_node_failed` replaces
//! them), and its memory goes with the group.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use serde_json::json;

use super::bytes::net_bytes_t;
use super::cancel::net_error_t;
use super::compute::{ComputeHandle, net_compute_t, outcome_code};
use super::error::FfiError;
use super::export::{ffi_export, input_values};
use super::handle::{self, HandleInner, opaque_handle};
use super::status::net_status_t;
use crate::behavior::loadbalance::{LbConfig, RequestContext};
use crate::compute::groups::{
    DaemonMaker, FailureWatch, ForkGroup, GroupCluster, GroupError, GroupHealth, MemberInfo,
    NodeFailures, ReplicaGroup, RuntimeCluster, StandbyGroup, WatchedGroup, watch_failures,
};
use crate::compute::scheduler::Candidate;
use crate::compute::{
    CausalEvent, DaemonError, DaemonFactory, DaemonHost, DaemonSnapshot, DeliveryOutcome,
    ForeignDaemon, LedgerFollower, MeshDaemon, SubscriptionLedger, WorkBridge, WorkReply,
    WorkRequest,
};
use crate::mesh::capability::CapabilitySet;

/// A group of daemons over several compute runtimes. Thread-safe: routes
/// of a replica or fork group run concurrently; membership changes and
/// standby deliveries take turns.
#[allow(non_camel_case_types)]
pub struct net_compute_group_t {
    _opaque: [u8; 0],
}

/// A member's SDK object: unbound until the group spawns the member on a
/// node (then a Create work item on that node builds it). A state restored
/// before that (a fork's starting state) is kept and restored into the
/// object when it is built.
enum Binding {
    Unbound { state: Option<Vec<u8>> },
    Bound(ForeignDaemon),
}

struct MemberDaemon {
    kind: String,
    stateful: bool,
    binding: Arc<Mutex<Binding>>,
}

impl MemberDaemon {
    fn binding(&self) -> std::sync::MutexGuard<'_, Binding> {
        self.binding.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MeshDaemon for MemberDaemon {
    fn name(&self) -> &str {
        &self.kind
    }

    fn is_stateful(&self) -> bool {
        self.stateful
    }

    fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        match &mut *self.binding() {
            Binding::Bound(daemon) => daemon.process(event),
            Binding::Unbound { .. } => Err(DaemonError::ProcessFailed(
                "the group member is not placed on a node yet".into(),
            )),
        }
    }

    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        match &*self.binding() {
            Binding::Bound(daemon) => daemon.snapshot(),
            Binding::Unbound { state } => Ok(state.clone().unwrap_or_default()),
        }
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
        match &mut *self.binding() {
            Binding::Bound(daemon) => daemon.restore(state),
            Binding::Unbound { state: kept } => {
                *kept = Some(state.to_vec());
                Ok(())
            }
        }
    }
}

/// One node of the group: its runtime's work bridge.
struct NodeSide {
    bridge: Arc<WorkBridge>,
}

/// The [`GroupCluster`] of a group handle: a [`RuntimeCluster`] over the
/// nodes' runtimes that builds each member's SDK object on the node it is
/// spawned on.
struct SdkCluster {
    inner: RuntimeCluster,
    kind: String,
    stateful: bool,
    nodes: HashMap<u64, NodeSide>,
    /// Member daemons made and not spawned yet, by the address of their
    /// boxed value (stable once boxed): the spawn finds its member's
    /// binding through the host it is handed.
    made: Mutex<HashMap<usize, Weak<Mutex<Binding>>>>,
}

impl SdkCluster {
    fn maker(self: &Arc<Self>) -> DaemonMaker {
        let cluster = Arc::downgrade(self);
        let (kind, stateful) = (self.kind.clone(), self.stateful);
        Arc::new(move || {
            let binding = Arc::new(Mutex::new(Binding::Unbound { state: None }));
            let daemon = Box::new(MemberDaemon {
                kind: kind.clone(),
                stateful,
                binding: Arc::clone(&binding),
            });
            if let Some(cluster) = cluster.upgrade() {
                let mut made = cluster.made.lock().unwrap_or_else(PoisonError::into_inner);
                made.retain(|_, b| b.strong_count() > 0);
                made.insert(address_of(&*daemon), Arc::downgrade(&binding));
            }
            daemon
        })
    }

    /// Builds the SDK object of the member `host` carries on `node`.
    fn bind(&self, node: u64, host: &DaemonHost) -> Result<(), GroupError> {
        let side = self.nodes.get(&node).ok_or(GroupError::UnknownNode(node))?;
        let binding = self
            .made
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&address_of(host.daemon()))
            .and_then(|b| b.upgrade())
            .ok_or_else(|| {
                DaemonError::RestoreFailed("the member's daemon was not made by its group".into())
            })?;
        let origin = host.origin_hash();
        let reply = side
            .bridge
            .call(WorkRequest::Create {
                kind: self.kind.clone(),
                daemon: origin,
            })
            .map_err(|e| DaemonError::RestoreFailed(format!("constructing {}: {e}", self.kind)))?;
        let WorkReply::Created(instance) = reply else {
            return Err(
                DaemonError::RestoreFailed("Create answered with another reply".into()).into(),
            );
        };
        let mut daemon = ForeignDaemon::new(
            Arc::clone(&side.bridge),
            self.kind.clone(),
            instance,
            origin,
            self.stateful,
        );
        let mut binding = binding.lock().unwrap_or_else(PoisonError::into_inner);
        if let Binding::Unbound { state: Some(state) } = &*binding {
            // On failure `daemon` drops here: its object gets a Drop item.
            daemon.restore(state)?;
        }
        *binding = Binding::Bound(daemon);
        Ok(())
    }
}

fn address_of(daemon: &dyn MeshDaemon) -> usize {
    std::ptr::from_ref(daemon).cast::<()>() as usize
}

impl GroupCluster for SdkCluster {
    fn local_node(&self) -> u64 {
        self.inner.local_node()
    }

    fn candidates(&self) -> Vec<Candidate> {
        self.inner.candidates()
    }

    fn spawn(&self, node: u64, host: DaemonHost) -> Result<(), GroupError> {
        self.bind(node, &host)?;
        self.inner.spawn(node, host)
    }

    fn deliver(
        &self,
        node: u64,
        origin: u64,
        event: CausalEvent,
    ) -> Result<DeliveryOutcome, GroupError> {
        self.inner.deliver(node, origin, event)
    }

    fn snapshot(&self, node: u64, origin: u64) -> Result<DaemonSnapshot, GroupError> {
        self.inner.snapshot(node, origin)
    }

    fn restore(&self, node: u64, origin: u64, snapshot: &DaemonSnapshot) -> Result<(), GroupError> {
        self.inner.restore(node, origin, snapshot)
    }

    fn stop(&self, node: u64, origin: u64) -> Result<(), GroupError> {
        self.inner.stop(node, origin)
    }

    fn contains(&self, node: u64, origin: u64) -> bool {
        self.inner.contains(node, origin)
    }

    fn bind_channels(&self, node: u64, origin: u64) -> Result<(), GroupError> {
        self.inner.bind_channels(node, origin)
    }

    fn release_channels(&self, node: u64, origin: u64) -> Result<(), GroupError> {
        self.inner.release_channels(node, origin)
    }

    fn follow_ledger(
        &self,
        node: u64,
        origin: u64,
        follower: LedgerFollower,
    ) -> Result<bool, GroupError> {
        self.inner.follow_ledger(node, origin, follower)
    }

    fn unfollow_ledger(&self, node: u64, origin: u64) {
        self.inner.unfollow_ledger(node, origin);
    }

    fn set_ledger(
        &self,
        node: u64,
        origin: u64,
        ledger: &SubscriptionLedger,
    ) -> Result<(), GroupError> {
        self.inner.set_ledger(node, origin, ledger)
    }

    fn migrate(
        &self,
        origin: u64,
        from: u64,
        to: u64,
        _factory: DaemonFactory,
    ) -> Result<(), GroupError> {
        // At the new node the member is an SDK object of the kind, made
        // there by a Create work item when its snapshot arrives.
        let side = self.nodes.get(&to).ok_or(GroupError::UnknownNode(to))?;
        let factory = ForeignDaemon::factory(
            Arc::clone(&side.bridge),
            self.kind.clone(),
            origin,
            self.stateful,
        );
        self.inner.migrate(origin, from, to, factory)
    }
}

enum Group {
    Replica(ReplicaGroup),
    Fork(ForkGroup),
    Standby(Box<StandbyGroup>),
}

impl Group {
    fn kind(&self) -> &'static str {
        match self {
            Self::Replica(_) => "replica",
            Self::Fork(_) => "fork",
            Self::Standby(_) => "standby",
        }
    }

    fn members(&self) -> Vec<MemberInfo> {
        match self {
            Self::Replica(g) => g.members(),
            Self::Fork(g) => g.members(),
            Self::Standby(g) => g.members(),
        }
    }

    fn health(&self) -> GroupHealth {
        match self {
            Self::Replica(g) => g.health(),
            Self::Fork(g) => g.health(),
            Self::Standby(g) => g.health(),
        }
    }

    fn wrong_kind(&self, what: &str) -> FfiError {
        FfiError::new(
            net_status_t::NET_ERR_COMPUTE_GROUP_WRONG_KIND,
            format!("{what} does not apply to a {} group", self.kind()),
        )
    }
}

pub(crate) struct GroupHandle {
    /// A watch of a node's failure detector
    /// (`net_compute_group_watch_failures`); ended when the group is freed,
    /// before the group (fields drop in order).
    watch: Mutex<Option<FailureWatch>>,
    group: Arc<RwLock<Group>>,
    kind: String,
    nodes: Vec<u64>,
}

// Group calls block only on daemon work items, which the nodes' work
// timeouts bound: nothing to wake.
impl HandleInner for GroupHandle {}

opaque_handle!(net_compute_group_t => GroupHandle, kind = b"NCGR");

impl WatchedGroup for RwLock<Group> {
    fn with_group(&self, look: &mut dyn FnMut(&mut dyn NodeFailures)) {
        look(&mut *self.write().unwrap_or_else(PoisonError::into_inner));
    }
}

impl NodeFailures for Group {
    fn member_nodes(&self) -> Vec<u64> {
        match self {
            Self::Replica(g) => g.member_nodes(),
            Self::Fork(g) => g.member_nodes(),
            Self::Standby(g) => g.member_nodes(),
        }
    }

    fn node_failed(&mut self, node: u64) -> Result<(), GroupError> {
        match self {
            Self::Replica(g) => g.node_failed(node),
            Self::Fork(g) => g.node_failed(node),
            Self::Standby(g) => g.node_failed(node),
        }
    }

    fn node_recovered(&mut self, node: u64) {
        match self {
            Self::Replica(g) => g.node_recovered(node),
            Self::Fork(g) => g.node_recovered(node),
            Self::Standby(g) => g.node_recovered(node),
        }
    }
}

impl GroupHandle {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Group> {
        self.group.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Group> {
        self.group.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl From<GroupError> for FfiError {
    fn from(err: GroupError) -> Self {
        let status = match &err {
            GroupError::InvalidConfig(_) => net_status_t::NET_ERR_COMPUTE_CONFIG,
            GroupError::PlacementFailed(_) => net_status_t::NET_ERR_COMPUTE_GROUP_PLACEMENT,
            GroupError::NoHealthyMember => net_status_t::NET_ERR_COMPUTE_GROUP_NO_HEALTHY_MEMBER,
            GroupError::UnknownNode(_) => net_status_t::NET_ERR_COMPUTE_GROUP_UNKNOWN_NODE,
            GroupError::Stateless => net_status_t::NET_ERR_COMPUTE_GROUP_STATELESS,
            GroupError::Replay { .. } => net_status_t::NET_ERR_COMPUTE_GROUP_REPLAY,
            GroupError::Migration(_) => net_status_t::NET_ERR_COMPUTE_GROUP_MIGRATION,
            GroupError::Daemon(daemon) => return daemon.clone().into(),
            GroupError::Compute(compute) => return compute.clone().into(),
        };
        Self::new(status, err.to_string())
    }
}

/// The nodes behind `nodes` (runtimes with kind `kind` registered) as a
/// cluster coordinated by the first.
///
/// # Safety
/// `nodes` is readable for `count` pointers.
unsafe fn cluster_of(
    nodes: *const *const net_compute_t,
    count: usize,
    kind: &str,
) -> Result<(Arc<SdkCluster>, Vec<u64>), FfiError> {
    // SAFETY: forwarded contract.
    let pointers = unsafe { input_values(nodes, count, "nodes") }?;
    if pointers.is_empty() {
        return Err(FfiError::invalid_argument("`nodes` is empty"));
    }
    let mut runtimes = Vec::with_capacity(pointers.len());
    let mut stateful = None;
    for &pointer in pointers {
        let compute = handle::enter::<net_compute_t>(pointer)?;
        let compute: &ComputeHandle = &compute;
        let this = compute.stateful(kind)?;
        if stateful.is_some_and(|s| s != this) {
            return Err(FfiError::new(
                net_status_t::NET_ERR_COMPUTE_CONFIG,
                format!("kind {kind:?} is stateful on some nodes and stateless on others"),
            ));
        }
        stateful = Some(this);
        runtimes.push((Arc::clone(&compute.runtime), Arc::clone(&compute.bridge)));
    }
    let local = runtimes[0].0.node_id();
    let inner = RuntimeCluster::new(local);
    let mut sides = HashMap::new();
    let mut ids = Vec::new();
    for (runtime, bridge) in runtimes {
        let id = runtime.node_id();
        if sides.insert(id, NodeSide { bridge }).is_some() {
            return Err(FfiError::invalid_argument(format!(
                "node {id:#018x} is listed twice"
            )));
        }
        ids.push(id);
        inner.add(runtime, CapabilitySet::default());
    }
    let cluster = Arc::new(SdkCluster {
        inner,
        kind: kind.to_owned(),
        stateful: stateful.unwrap_or(false),
        nodes: sides,
        made: Mutex::new(HashMap::new()),
    });
    Ok((cluster, ids))
}

fn lb_config(json: Option<&str>) -> Result<LbConfig, FfiError> {
    match json.filter(|t| !t.trim().is_empty()) {
        None => Ok(LbConfig::default()),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            FfiError::new(
                net_status_t::NET_ERR_COMPUTE_CONFIG,
                format!("load-balancer config: {e}"),
            )
        }),
    }
}

fn member_count(count: u32) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX)
}

fn finish(group: Group, kind: &str, nodes: Vec<u64>) -> *mut net_compute_group_t {
    handle::into_raw(GroupHandle {
        group: Arc::new(RwLock::new(group)),
        kind: kind.to_owned(),
        nodes,
        watch: Mutex::new(None),
    })
}

/// Creates a replica group: `count` (1–255) daemons of kind `kind`, each
/// on its own node among the `node_count` runtimes `nodes` (the first
/// coordinates), with identities derived from `seed` (32 bytes; member
/// `i` of generation 0 has v0.11's replica identity). `lb_json`
/// (NULL/empty: defaults) is the load balancer's configuration, e.g.
/// `{"strategy": "round_robin"}`. Every node must have `kind` registered
/// and a thread pulling its work: each member's object is built with a
/// Create work item on its node.
///
/// Errors: `NET_ERR_COMPUTE_CONFIG` (count out of range, bad `lb_json`,
/// a kind stateful on some nodes only); `NET_ERR_COMPUTE_UNKNOWN_KIND`
/// (not registered on a node); `NET_ERR_COMPUTE_GROUP_PLACEMENT` (fewer
/// than `count` nodes: nothing stays spawned); `NET_ERR_INVALID_ARGUMENT`
/// (no nodes, a node listed twice); `NET_ERR_COMPUTE_DAEMON` (an object
/// could not be built).
///
/// # Safety
/// `nodes` is readable for `node_count` pointers, each NULL or from
/// libnet; `kind`, `seed` and `lb_json` are readable for their lengths
/// (`lb_json` may be NULL); `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_replica(
    nodes: *const *const net_compute_t,
    node_count: usize,
    kind: *const u8,
    kind_len: usize,
    seed: *const u8,
    seed_len: usize,
    count: u32,
    lb_json: *const u8,
    lb_json_len: usize,
    out: *mut *mut net_compute_group_t,
) -> net_status_t {
    ffi_export!(str kind[kind_len]; array seed[seed_len] 32; opt_str lb_json[lb_json_len]; out out; {
        let lb = lb_config(lb_json)?;
        // SAFETY: forwarded contract.
        let (cluster, ids) = unsafe { cluster_of(nodes, node_count, kind) }?;
        let maker = cluster.maker();
        let group = ReplicaGroup::spawn(cluster, maker, *seed, member_count(count), lb)?;
        out.write(finish(Group::Replica(group), kind, ids));
        Ok(())
    })
}

/// Creates a fork group: snapshots daemon `parent_origin` (of kind
/// `kind`, running on node `parent_node`, one of `nodes`) once and starts
/// `count` (1–255) forks of it from that state, each with its own
/// identity and a ForkRecord naming the parent and the fork point (see
/// `net_compute_group_status`), on distinct nodes. `lb_json` as for
/// `net_compute_group_replica`.
///
/// Errors: as `net_compute_group_replica`; `NET_ERR_COMPUTE_GROUP_UNKNOWN_NODE`
/// (`parent_node` is not among `nodes`); `NET_ERR_COMPUTE_NOT_FOUND` (no
/// such parent there).
///
/// # Safety
/// As `net_compute_group_replica`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_fork(
    nodes: *const *const net_compute_t,
    node_count: usize,
    kind: *const u8,
    kind_len: usize,
    parent_node: u64,
    parent_origin: u64,
    count: u32,
    lb_json: *const u8,
    lb_json_len: usize,
    out: *mut *mut net_compute_group_t,
) -> net_status_t {
    ffi_export!(str kind[kind_len]; opt_str lb_json[lb_json_len]; out out; {
        let lb = lb_config(lb_json)?;
        // SAFETY: forwarded contract.
        let (cluster, ids) = unsafe { cluster_of(nodes, node_count, kind) }?;
        let maker = cluster.maker();
        let group = ForkGroup::fork(cluster, maker, parent_node, parent_origin, member_count(count), lb)?;
        out.write(finish(Group::Fork(group), kind, ids));
        Ok(())
    })
}

/// Creates a standby group: `count` (2–255) copies of one daemon of kind
/// `kind` (identity from `seed`, 32 bytes) on distinct nodes among
/// `nodes`; member 0 is active and takes every routed event, the others
/// are standbys brought to its state by `net_compute_group_sync` and made
/// active by `net_compute_group_promote`, which replays the events the
/// group logged since their sync (each applied once).
///
/// Errors: as `net_compute_group_replica` (count 2–255).
///
/// # Safety
/// As `net_compute_group_replica`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_standby(
    nodes: *const *const net_compute_t,
    node_count: usize,
    kind: *const u8,
    kind_len: usize,
    seed: *const u8,
    seed_len: usize,
    count: u32,
    out: *mut *mut net_compute_group_t,
) -> net_status_t {
    ffi_export!(str kind[kind_len]; array seed[seed_len] 32; out out; {
        // SAFETY: forwarded contract.
        let (cluster, ids) = unsafe { cluster_of(nodes, node_count, kind) }?;
        let maker = cluster.maker();
        let group = StandbyGroup::spawn(cluster, maker, *seed, member_count(count))?;
        out.write(finish(Group::Standby(Box::new(group)), kind, ids));
        Ok(())
    })
}

/// Frees the group: its members are stopped on their nodes (their objects
/// get Drop work items). NULL-safe, idempotent; waits for calls in flight
/// (at most 5 s: then `NET_ERR_BUSY`).
///
/// # Safety
/// `group` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_free(group: *mut net_compute_group_t) -> net_status_t {
    super::export::run(|| handle::free(group))
}

/// Routes the event (`producer`, `sequence`, `payload`) into the group:
/// a replica or fork group's load balancer picks a healthy member
/// (`key`, UTF-8, NULL for none, is the consistent-hash key for the
/// hashing strategies); a standby group's active member takes it (and
/// the group logs it for the standbys). Writes the member's index, origin
/// and node, and what its runtime did (`NET_COMPUTE_PROCESSED`, ...).
/// Blocks while the member processes it.
///
/// Errors: `NET_ERR_COMPUTE_GROUP_NO_HEALTHY_MEMBER`; the member's
/// delivery error (`NET_ERR_COMPUTE_DAEMON`, ...).
///
/// # Safety
/// `group` is NULL or from libnet; `payload` and `key` are readable for
/// their lengths (`key` may be NULL); the outputs are valid for one write;
/// `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_route(
    group: *const net_compute_group_t,
    producer: u64,
    sequence: u64,
    payload: *const u8,
    payload_len: usize,
    key: *const u8,
    key_len: usize,
    index_out: *mut u32,
    origin_out: *mut u64,
    node_out: *mut u64,
    outcome_out: *mut u32,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle group; bytes payload[payload_len]; opt_str key[key_len];
        out index_out; out origin_out; out node_out; out outcome_out; {
        let event = CausalEvent::bare(producer, sequence, payload.to_vec());
        let ctx = RequestContext {
            routing_key: key.map(str::to_owned),
            ..RequestContext::default()
        };
        let routed = match &*group.read() {
            Group::Replica(g) => Some(g.route(&ctx, event.clone())?),
            Group::Fork(g) => Some(g.route(&ctx, event.clone())?),
            Group::Standby(_) => None,
        };
        let (index, origin, node, outcome) = match routed {
            Some(r) => (r.index, r.origin_hash, r.node_id, r.outcome),
            None => match &mut *group.write() {
                Group::Standby(g) => {
                    let outcome = g.deliver(event)?;
                    (g.active_index(), g.origin_hash(), g.active_node(), outcome)
                }
                other => return Err(other.wrong_kind("routing")),
            },
        };
        index_out.write(u32::from(index));
        origin_out.write(origin);
        node_out.write(node);
        outcome_out.write(outcome_code(outcome));
        Ok(())
    })
}

/// Scales a replica or fork group to `count` members (1–255): new ones
/// are placed on nodes the group does not use (a fork group's new members
/// are new forks at the same point); the highest indices are stopped.
///
/// Errors: `NET_ERR_COMPUTE_CONFIG` (out of range);
/// `NET_ERR_COMPUTE_GROUP_PLACEMENT` (the members this call added are
/// removed again); `NET_ERR_COMPUTE_GROUP_WRONG_KIND` (a standby group).
///
/// # Safety
/// `group` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_scale(
    group: *const net_compute_group_t,
    count: u32,
) -> net_status_t {
    ffi_export!(handle group; {
        match &mut *group.write() {
            Group::Replica(g) => g.scale_to(member_count(count))?,
            Group::Fork(g) => g.scale_to(member_count(count))?,
            other => return Err(other.wrong_kind("scaling")),
        }
        Ok(())
    })
}

/// Moves member `index` to node `node` with the migration protocol: a
/// replica or fork (any index), or a standby group's active (`index` =
/// its active index). The same member — identity, state and chain —
/// continues there; `node` must be one of the group's runtimes, not
/// reported failed, and hold no member of the group. Waits until the move
/// is over.
///
/// Errors: `NET_ERR_COMPUTE_CONFIG` (no such member);
/// `NET_ERR_INVALID_ARGUMENT` (a standby that is not the active);
/// `NET_ERR_COMPUTE_GROUP_PLACEMENT` (a node the member may not go to);
/// `NET_ERR_COMPUTE_GROUP_NO_HEALTHY_MEMBER` (the member is out of
/// service); `NET_ERR_COMPUTE_GROUP_UNKNOWN_NODE`;
/// `NET_ERR_COMPUTE_GROUP_MIGRATION` (the move failed; the member stays).
///
/// # Safety
/// `group` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_migrate(
    group: *const net_compute_group_t,
    index: u32,
    node: u64,
) -> net_status_t {
    ffi_export!(handle group; {
        let index = u8::try_from(index)
            .map_err(|_| FfiError::new(net_status_t::NET_ERR_COMPUTE_CONFIG, format!("no member {index}")))?;
        match &mut *group.write() {
            Group::Replica(g) => g.migrate_member(index, node)?,
            Group::Fork(g) => g.migrate_member(index, node)?,
            Group::Standby(g) => {
                if index != g.active_index() {
                    return Err(FfiError::new(
                        net_status_t::NET_ERR_INVALID_ARGUMENT,
                        format!("member {index} is a standby: only the active ({}) moves", g.active_index()),
                    ));
                }
                g.migrate_active(node)?;
            }
        }
        Ok(())
    })
}

/// Reports node `node` failed (the application's failure detector, or a
/// node it shut down): its members turn unhealthy and are re-created on
/// other nodes of the group — replicas and forks with a new identity and
/// fresh state; in a standby group a standby is promoted first if the
/// active was there, and re-created standbys are synced at once. Writes
/// `{"replaced": [index, ...]}`; a member that could not be placed stays
/// unhealthy (it takes no traffic).
///
/// Errors: a standby group's promotion error
/// (`NET_ERR_COMPUTE_GROUP_NO_HEALTHY_MEMBER`,
/// `NET_ERR_COMPUTE_GROUP_REPLAY`).
///
/// # Safety
/// `group` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_node_failed(
    group: *const net_compute_group_t,
    node: u64,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle group; out json_out; {
        let replaced = match &mut *group.write() {
            Group::Replica(g) => g.on_node_failed(node),
            Group::Fork(g) => g.on_node_failed(node),
            Group::Standby(g) => g.on_node_failed(node)?,
        };
        json_out.write(json_bytes(&json!({"replaced": replaced})));
        Ok(())
    })
}

/// Makes the group follow `observer`'s failure detector: every `every_ms`
/// (1 or more; the node's heartbeat interval is a good value) the group
/// looks at the peers of `observer`'s node and is told, as by
/// `net_compute_group_node_failed` / `net_compute_group_node_recovered`,
/// when a node it saw alive is reported failed or is gone — once — and
/// when it is alive again. The application no longer reports failures
/// itself (it still may). A node `observer` never saw alive is not judged.
/// `observer` is one of the group's runtimes or any other on a node
/// connected to the members' nodes; a second call replaces the watch. The
/// watch ends with `net_compute_group_unwatch_failures` or when the group
/// is freed (freeing waits for a look in progress).
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` (`every_ms` 0); `NET_ERR_INTERNAL`
/// if the watch thread cannot start.
///
/// # Safety
/// `group` and `observer` are NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_watch_failures(
    group: *const net_compute_group_t,
    observer: *const net_compute_t,
    every_ms: u32,
) -> net_status_t {
    ffi_export!(handle group; {
        if every_ms == 0 {
            return Err(FfiError::invalid_argument("every_ms must be 1 or more"));
        }
        let mesh = {
            let observer = handle::enter::<net_compute_t>(observer)?;
            let observer: &ComputeHandle = &observer;
            Arc::clone(&observer.mesh)
        };
        let every = std::time::Duration::from_millis(u64::from(every_ms));
        let watch = watch_failures(mesh, Arc::clone(&group.group), every)
            .map_err(|e| FfiError::new(net_status_t::NET_ERR_INTERNAL, format!("starting the failure watch: {e}")))?;
        // The old watch (if any) ends outside the lock.
        let old = group.watch.lock().unwrap_or_else(PoisonError::into_inner).replace(watch);
        drop(old);
        Ok(())
    })
}

/// Ends the group's watch of a failure detector
/// (`net_compute_group_watch_failures`), waiting for a look in progress;
/// `NET_OK` also when there is none.
///
/// # Safety
/// `group` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_unwatch_failures(
    group: *const net_compute_group_t,
) -> net_status_t {
    ffi_export!(handle group; {
        let old = group.watch.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(old);
        Ok(())
    })
}

/// Reports node `node` back (the application's failure detector saw it
/// recover, or it was restarted): it may hold members again; copies of the
/// group's daemons the group left there (members it replaced) are stopped;
/// an unhealthy member still running there takes traffic again. Writes
/// `{"restored": [index, ...]}`, the members back in service (always empty
/// for a standby group, whose standbys are re-created and synced instead).
///
/// # Safety
/// `group` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_node_recovered(
    group: *const net_compute_group_t,
    node: u64,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle group; out json_out; {
        let restored = match &mut *group.write() {
            Group::Replica(g) => g.on_node_recovered(node),
            Group::Fork(g) => g.on_node_recovered(node),
            Group::Standby(g) => {
                g.on_node_recovered(node);
                Vec::new()
            }
        };
        json_out.write(json_bytes(&json!({"restored": restored})));
        Ok(())
    })
}

/// Brings every healthy standby of a standby group to the active's state
/// (snapshot of the active, restored into each). Writes `{"through_seq":
/// n, "synced": [index, ...], "failed": [{"index": i, "error": "..."}]}`.
///
/// Errors: `NET_ERR_COMPUTE_GROUP_STATELESS`; the active's snapshot error
/// (nothing changed); `NET_ERR_COMPUTE_GROUP_WRONG_KIND`.
///
/// # Safety
/// `group` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_sync(
    group: *const net_compute_group_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle group; out json_out; {
        let report = match &mut *group.write() {
            Group::Standby(g) => g.sync_standbys()?,
            other => return Err(other.wrong_kind("syncing standbys")),
        };
        let failed: Vec<_> = report
            .failed
            .iter()
            .map(|(index, e)| json!({"index": index, "error": e.to_string()}))
            .collect();
        json_out.write(json_bytes(&json!({
            "through_seq": report.through_seq,
            "synced": report.synced,
            "failed": failed,
        })));
        Ok(())
    })
}

/// Makes a standby the active member of a standby group: the synced
/// standby with the latest state, into which the events logged since its
/// sync are replayed (each applied once). The old active becomes a
/// standby (unsynced until the next sync). Writes the new active's index.
///
/// Errors: `NET_ERR_COMPUTE_GROUP_NO_HEALTHY_MEMBER` (nothing changed);
/// `NET_ERR_COMPUTE_GROUP_REPLAY` (the new active is in place, the rest
/// of the log pending: promote again resumes it after a fix);
/// `NET_ERR_COMPUTE_GROUP_WRONG_KIND`.
///
/// # Safety
/// `group` is NULL or from libnet; `index_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_promote(
    group: *const net_compute_group_t,
    index_out: *mut u32,
) -> net_status_t {
    ffi_export!(handle group; out index_out; {
        let index = match &mut *group.write() {
            Group::Standby(g) => g.promote()?,
            other => return Err(other.wrong_kind("promotion")),
        };
        index_out.write(u32::from(index));
        Ok(())
    })
}

/// The group as a JSON object: `kind` ("replica" | "fork" | "standby"),
/// `daemon_kind`, `nodes` (the group's node ids), `health` ("healthy" |
/// "degraded" | "dead"), `healthy` and `total` member counts, and
/// `members`: `[{"index", "origin", "node", "healthy", "generation"}]`.
/// A replica group adds `group_id`; a fork group `parent_origin`,
/// `fork_seq`, `lineage_verified` and `records` (each member's 65-byte
/// ForkRecord in hex, by index); a standby group `origin`, `active`
/// (index), `logged` (events kept for the standbys) and each member's
/// `synced_through` (null: the active, or not synced since placed).
///
/// # Safety
/// `group` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_compute_group_status(
    group: *const net_compute_group_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle group; out json_out; {
        json_out.write(json_bytes(&status(group)));
        Ok(())
    })
}

fn status(handle: &GroupHandle) -> serde_json::Value {
    let group = handle.read();
    let members = group.members();
    let healthy = members.iter().filter(|m| m.healthy).count();
    let mut entries: Vec<serde_json::Value> = members
        .iter()
        .map(|m| {
            json!({
                "index": m.index,
                "origin": m.origin_hash,
                "node": m.node_id,
                "healthy": m.healthy,
                "generation": m.generation,
            })
        })
        .collect();
    let health = match group.health() {
        GroupHealth::Healthy => "healthy",
        GroupHealth::Degraded { .. } => "degraded",
        _ => "dead",
    };
    let mut value = json!({
        "kind": group.kind(),
        "daemon_kind": handle.kind,
        "nodes": handle.nodes,
        "health": health,
        "healthy": healthy,
        "total": members.len(),
    });
    match &*group {
        Group::Replica(g) => value["group_id"] = json!(g.group_id()),
        Group::Fork(g) => {
            let records: Vec<String> = g
                .records()
                .iter()
                .map(|r| r.to_bytes().iter().map(|b| format!("{b:02x}")).collect())
                .collect();
            value["parent_origin"] = json!(g.parent_origin());
            value["fork_seq"] = json!(g.fork_seq());
            value["lineage_verified"] = json!(g.verify_lineage());
            value["records"] = json!(records);
        }
        Group::Standby(g) => {
            value["origin"] = json!(g.origin_hash());
            value["active"] = json!(g.active_index());
            value["logged"] = json!(g.logged());
            for (entry, synced) in entries.iter_mut().zip(g.synced_through()) {
                entry["synced_through"] = json!(synced);
            }
        }
    }
    value["members"] = json!(entries);
    value
}

fn json_bytes(value: &serde_json::Value) -> net_bytes_t {
    net_bytes_t::from_vec(value.to_string().into_bytes())
}
