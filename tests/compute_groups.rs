//! Groups of daemons (COMPUTE.md §3, issue 15): replica, fork and standby
//! groups placed on distinct nodes of a cluster of compute runtimes, each
//! on its own mesh node over encrypted UDP on 127.0.0.1. A node's death is
//! a real shutdown, detected by the coordinator node's failure detector
//! (its peer turns "failed" or is evicted) before the group is told.
//!
//! The §9 group scenarios are here as our own, plus what v0.11 gets wrong
//! (§8 items 7–9): members on distinct nodes, load-balancer slots always
//! released, a promoted standby continuing one identity and one chain
//! with nothing applied twice.

mod compute_common;
mod mesh_common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use compute_common::{Counter, count_of};
use mesh_common::{bound_link, started_node, wait_until};
use net::behavior::loadbalance::{LbConfig, RequestContext, Strategy};
use net::compute::groups::{
    DaemonMaker, ForkGroup, ForkRecord, GroupCluster, GroupError, GroupHealth, MemberInfo,
    ReplicaGroup, RuntimeCluster, StandbyGroup, watch_failures,
};
use net::compute::{
    CausalEvent, ComputeRuntime, DaemonError, DaemonHost, DeliveryOutcome, MeshDaemon,
    RuntimeConfig,
};
use net::identity::{ChannelName, EntityKeypair};
use net::mesh::MeshNode;
use net::mesh::capability::{CapabilityFilter, CapabilitySet};
use net::mesh::channels::ChannelConfig;

const PRODUCER: u64 = 0xfeed_0000_0000_0001;

/// Counts whatever it gets (a replica sees an arbitrary share of a
/// producer's sequence), optionally requiring a capability tag.
#[derive(Default)]
struct Tally {
    count: u64,
    require: Option<&'static str>,
}

impl MeshDaemon for Tally {
    fn name(&self) -> &str {
        "tally"
    }

    fn requirements(&self) -> CapabilityFilter {
        CapabilityFilter {
            require_tags: self.require.iter().map(|t| (*t).to_string()).collect(),
            ..CapabilityFilter::default()
        }
    }

    fn is_stateful(&self) -> bool {
        true
    }

    fn process(&mut self, _event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        self.count += 1;
        Ok(vec![self.count.to_le_bytes().to_vec()])
    }

    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        Ok(self.count.to_le_bytes().to_vec())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
        self.count = u64::from_le_bytes(
            state
                .try_into()
                .map_err(|_| DaemonError::RestoreFailed("bad tally".into()))?,
        );
        Ok(())
    }
}

fn counter() -> DaemonMaker {
    Arc::new(|| Box::new(Counter::default()) as Box<dyn MeshDaemon>)
}

fn tally() -> DaemonMaker {
    Arc::new(|| Box::new(Tally::default()) as Box<dyn MeshDaemon>)
}

fn event(producer: u64, sequence: u64) -> CausalEvent {
    CausalEvent::bare(producer, sequence, sequence.to_le_bytes().to_vec())
}

struct Site {
    node: Arc<MeshNode>,
    runtime: Arc<ComputeRuntime>,
}

/// A coordinator node (not a member host) linked to `members` member
/// nodes, each with a runtime in the cluster; `tags[i]` are member i's
/// capability tags.
struct Cluster {
    coordinator: Arc<MeshNode>,
    sites: Vec<Site>,
    cluster: Arc<RuntimeCluster>,
}

impl Cluster {
    fn new(tags: &[&[&str]]) -> Self {
        let coordinator = Arc::new(started_node(""));
        let cluster = Arc::new(RuntimeCluster::new(coordinator.node_id()));
        let sites: Vec<Site> = tags
            .iter()
            .map(|tags| {
                let node = Arc::new(started_node(""));
                bound_link(&coordinator, &node);
                let runtime = Arc::new(
                    ComputeRuntime::on_mesh(Arc::clone(&node), RuntimeConfig::default()).unwrap(),
                );
                let capabilities = CapabilitySet {
                    tags: tags.iter().map(|t| (*t).to_string()).collect(),
                    ..CapabilitySet::default()
                };
                cluster.add(Arc::clone(&runtime), capabilities);
                Site { node, runtime }
            })
            .collect();
        Self {
            coordinator,
            sites,
            cluster,
        }
    }

    fn plain(n: usize) -> Self {
        Self::new(&vec![&[][..]; n])
    }

    /// Links the member nodes to each other too (a migration goes from
    /// node to node).
    fn meshed(n: usize) -> Self {
        let c = Self::plain(n);
        for (i, a) in c.sites.iter().enumerate() {
            for b in &c.sites[i + 1..] {
                bound_link(&a.node, &b.node);
            }
        }
        c
    }

    /// A member node that holds none of `members`.
    fn free_node(&self, members: &[MemberInfo]) -> u64 {
        self.sites
            .iter()
            .map(|s| s.node.node_id())
            .find(|n| members.iter().all(|m| m.node_id != *n))
            .unwrap()
    }

    fn handle(&self) -> Arc<dyn GroupCluster> {
        Arc::clone(&self.cluster) as Arc<dyn GroupCluster>
    }

    fn site(&self, node: u64) -> &Site {
        self.sites
            .iter()
            .find(|s| s.node.node_id() == node)
            .unwrap()
    }

    fn daemons(&self) -> usize {
        self.sites
            .iter()
            .map(|s| s.runtime.registry().count())
            .sum()
    }

    /// Crashes `node` and waits until the coordinator's failure detector
    /// has noticed (the peer is reported failed, or evicted).
    fn kill(&self, node: u64) {
        let site = self.site(node);
        site.runtime.shutdown();
        site.node.shutdown();
        wait_until(
            || {
                !self
                    .coordinator
                    .peers()
                    .iter()
                    .any(|p| p.node_id == node && p.health != "failed")
            },
            "the coordinator's failure detector to report the dead node",
        );
    }

    fn with_host<R>(&self, node: u64, origin: u64, f: impl FnOnce(&mut DaemonHost) -> R) -> R {
        self.site(node)
            .runtime
            .registry()
            .with_host(origin, f)
            .unwrap()
    }
}

fn distinct_nodes(nodes: impl IntoIterator<Item = u64>) -> bool {
    let nodes: Vec<u64> = nodes.into_iter().collect();
    nodes.iter().collect::<BTreeSet<_>>().len() == nodes.len()
}

fn tight_lb(strategy: Strategy) -> LbConfig {
    LbConfig {
        strategy,
        max_connections: 2,
        seed: Some(7),
        ..LbConfig::default()
    }
}

#[test]
fn replica_members_run_on_distinct_nodes_and_routes_release_their_slots() {
    let c = Cluster::plain(3);
    let group = ReplicaGroup::spawn(
        c.handle(),
        tally(),
        [1; 32],
        3,
        tight_lb(Strategy::PowerOfTwo),
    )
    .unwrap();
    let members = group.members();
    assert_eq!(members.len(), 3);
    assert!(distinct_nodes(members.iter().map(|m| m.node_id)));
    for m in &members {
        assert!(c.site(m.node_id).runtime.registry().contains(m.origin_hash));
    }
    // Two slots per member: a leak would exhaust all three after six.
    let ctx = RequestContext::default();
    for seq in 1..=300 {
        let routed = group.route(&ctx, event(PRODUCER, seq)).unwrap();
        assert!(matches!(routed.outcome, DeliveryOutcome::Processed(_)));
    }
    let mut total = 0;
    for m in &members {
        assert_eq!(group.member_set().reserved_slots(m.index), Some(0));
        total += c.with_host(m.node_id, m.origin_hash, |h| count_of(h));
    }
    assert_eq!(total, 300);
    assert_eq!(group.health(), GroupHealth::Healthy);
}

#[test]
fn replica_identities_are_deterministic_and_counts_validated() {
    let c = Cluster::plain(2);
    let origins = |g: &ReplicaGroup| {
        g.members()
            .iter()
            .map(|m| m.origin_hash)
            .collect::<Vec<_>>()
    };
    let first = ReplicaGroup::spawn(c.handle(), tally(), [2; 32], 2, LbConfig::default()).unwrap();
    let before = origins(&first);
    drop(first);
    assert_eq!(c.daemons(), 0, "a dropped group stops its members");
    let again = ReplicaGroup::spawn(c.handle(), tally(), [2; 32], 2, LbConfig::default()).unwrap();
    assert_eq!(origins(&again), before);
    assert!(matches!(
        ReplicaGroup::spawn(c.handle(), tally(), [3; 32], 0, LbConfig::default()),
        Err(GroupError::InvalidConfig(_))
    ));
    assert!(matches!(
        ReplicaGroup::spawn(c.handle(), tally(), [3; 32], 256, LbConfig::default()),
        Err(GroupError::InvalidConfig(_))
    ));
}

#[test]
fn replica_scale_up_spreads_and_scale_down_stops_and_frees_slots() {
    let c = Cluster::plain(3);
    let mut group = ReplicaGroup::spawn(
        c.handle(),
        tally(),
        [4; 32],
        1,
        tight_lb(Strategy::RoundRobin),
    )
    .unwrap();
    group.scale_to(3).unwrap();
    assert!(distinct_nodes(group.members().iter().map(|m| m.node_id)));
    assert_eq!(c.daemons(), 3);
    // Only three nodes: a fourth member has nowhere distinct to go, and
    // the failed scale leaves nothing behind.
    assert!(matches!(
        group.scale_to(4),
        Err(GroupError::PlacementFailed(_))
    ));
    assert_eq!(group.members().len(), 3);
    assert_eq!(c.daemons(), 3);
    let ctx = RequestContext::default();
    for seq in 1..=30 {
        group.route(&ctx, event(PRODUCER, seq)).unwrap();
    }
    let removed = group.members()[1..].to_vec();
    group.scale_to(1).unwrap();
    assert_eq!(group.member_set().endpoint_count(), 1);
    for m in &removed {
        assert!(!c.site(m.node_id).runtime.registry().contains(m.origin_hash));
    }
    assert_eq!(c.daemons(), 1);
    for seq in 31..=60 {
        group.route(&ctx, event(PRODUCER, seq)).unwrap();
    }
    assert_eq!(group.member_set().reserved_slots(0), Some(0));
}

#[test]
fn placement_follows_capability_requirements() {
    let c = Cluster::new(&[&["gpu"], &[], &["gpu"]]);
    let gpu: DaemonMaker = Arc::new(|| {
        Box::new(Tally {
            count: 0,
            require: Some("gpu"),
        }) as Box<dyn MeshDaemon>
    });
    let group = ReplicaGroup::spawn(
        c.handle(),
        Arc::clone(&gpu),
        [5; 32],
        2,
        LbConfig::default(),
    )
    .unwrap();
    let plain = c.sites[1].node.node_id();
    assert!(group.members().iter().all(|m| m.node_id != plain));
    assert!(distinct_nodes(group.members().iter().map(|m| m.node_id)));
    drop(group);
    assert!(matches!(
        ReplicaGroup::spawn(c.handle(), gpu, [5; 32], 3, LbConfig::default()),
        Err(GroupError::PlacementFailed(_))
    ));
    assert_eq!(c.daemons(), 0, "a failed spawn leaves no member behind");
}

#[test]
fn replica_member_on_a_dead_node_is_replaced_on_another_node() {
    let c = Cluster::plain(3);
    let mut group = ReplicaGroup::spawn(
        c.handle(),
        tally(),
        [6; 32],
        2,
        tight_lb(Strategy::RoundRobin),
    )
    .unwrap();
    let ctx = RequestContext::default();
    for seq in 1..=10 {
        group.route(&ctx, event(PRODUCER, seq)).unwrap();
    }
    let victim = group.members()[1].clone();
    let survivor = group.members()[0].clone();
    c.kill(victim.node_id);
    assert_eq!(group.on_node_failed(victim.node_id), vec![1]);
    let members = group.members();
    let replacement = &members[1];
    assert_ne!(replacement.node_id, victim.node_id);
    assert_ne!(replacement.node_id, survivor.node_id);
    assert_ne!(
        replacement.origin_hash, victim.origin_hash,
        "a lost chain comes back under a new identity"
    );
    assert_eq!(replacement.generation, 1);
    assert_eq!(group.health(), GroupHealth::Healthy);
    // Both members take traffic again; the replacement started fresh.
    for seq in 11..=30 {
        group.route(&ctx, event(PRODUCER, seq)).unwrap();
    }
    let fresh = c.with_host(replacement.node_id, replacement.origin_hash, |h| {
        count_of(h)
    });
    assert_eq!(
        fresh, 10,
        "round robin: half of the 20 events after the failure"
    );
    // No node left for a second replacement: the member stays unhealthy
    // and the group routes around it.
    c.kill(survivor.node_id);
    assert!(group.on_node_failed(survivor.node_id).is_empty());
    assert_eq!(
        group.health(),
        GroupHealth::Degraded {
            healthy: 1,
            total: 2
        }
    );
    for seq in 31..=40 {
        let routed = group.route(&ctx, event(PRODUCER, seq)).unwrap();
        assert_eq!(routed.index, 1);
    }
}

/// A counter on the first site that applied events 1..=`events`, and a
/// group of `forks` forks of it: (its node, its origin, the group).
fn fork_of_counter(c: &Cluster, events: u64, forks: usize) -> (u64, u64, ForkGroup) {
    let parent_node = c.sites[0].node.node_id();
    let parent = EntityKeypair::generate();
    let parent_origin = parent.origin_hash();
    c.sites[0]
        .runtime
        .spawn(DaemonHost::new(Box::new(Counter::default()), parent))
        .unwrap();
    for seq in 1..=events {
        c.sites[0]
            .runtime
            .deliver(parent_origin, event(PRODUCER, seq))
            .unwrap();
    }
    let group = ForkGroup::fork(
        c.handle(),
        counter(),
        parent_node,
        parent_origin,
        forks,
        LbConfig::default(),
    )
    .unwrap();
    (parent_node, parent_origin, group)
}

#[test]
fn forks_carry_lineage_and_chain_from_their_sentinel() {
    let c = Cluster::plain(3);
    let (parent_node, parent_origin, mut group) = fork_of_counter(&c, 5, 2);
    assert_eq!(group.fork_seq(), 5);
    assert!(group.verify_lineage());
    let records = group.records();
    assert_eq!(records.len(), 2);
    assert_ne!(records[0].forked_origin, records[1].forked_origin);
    for record in &records {
        assert_eq!(ForkRecord::from_bytes(&record.to_bytes()), Ok(*record));
        assert_eq!(record.original_origin, parent_origin);
    }
    // Each fork resumes the parent's state at the fork point, and its
    // first output is sequence 1 over the sentinel genesis.
    let ctx = RequestContext::default();
    for _ in 0..2 {
        let routed = group.route(&ctx, event(PRODUCER, 6)).unwrap();
        let DeliveryOutcome::Processed(outputs) = routed.outcome else {
            panic!("fork did not process");
        };
        let record = records
            .iter()
            .find(|r| r.forked_origin == routed.origin_hash)
            .unwrap();
        assert_eq!(outputs[0].payload, 6u64.to_le_bytes());
        outputs[0]
            .link
            .validate_after(&record.genesis, &[])
            .unwrap();
    }
    // Scaling mints new forks at the same point; a dead fork's node gets
    // a new fork at the same point, not the old identity from genesis.
    group.scale_to(3).unwrap();
    assert_eq!(group.records().len(), 3);
    assert!(distinct_nodes(group.members().iter().map(|m| m.node_id)));
    assert!(matches!(
        group.scale_to(4),
        Err(GroupError::PlacementFailed(_))
    ));
    group.scale_to(2).unwrap();
    let victim = group.members()[1].clone();
    assert_ne!(victim.node_id, parent_node, "forks are placed by load");
    c.kill(victim.node_id);
    assert_eq!(group.on_node_failed(victim.node_id), vec![1]);
    let after = group.members();
    assert_ne!(after[1].origin_hash, victim.origin_hash);
    assert!(group.verify_lineage());
}

/// Delivers sequences `from..=to` through the group, returning the
/// outputs.
fn feed(group: &mut StandbyGroup, from: u64, to: u64) -> Vec<CausalEvent> {
    let mut outputs = Vec::new();
    for seq in from..=to {
        match group.deliver(event(PRODUCER, seq)).unwrap() {
            DeliveryOutcome::Processed(out) => outputs.extend(out),
            other => panic!("event {seq}: {other:?}"),
        }
    }
    outputs
}

#[test]
fn standby_group_needs_two_members_and_syncs_real_state() {
    let c = Cluster::plain(3);
    assert!(matches!(
        StandbyGroup::spawn(c.handle(), counter(), [7; 32], 1),
        Err(GroupError::InvalidConfig(_))
    ));
    let mut group = StandbyGroup::spawn(c.handle(), counter(), [7; 32], 3).unwrap();
    let members = group.members();
    assert_eq!(group.active_index(), 0);
    assert!(distinct_nodes(members.iter().map(|m| m.node_id)));
    assert!(members.iter().all(|m| m.origin_hash == group.origin_hash()));
    feed(&mut group, 1, 8);
    assert_eq!(group.logged(), 8);
    let report = group.sync_standbys().unwrap();
    assert_eq!(report.synced, vec![1, 2]);
    assert_eq!(report.through_seq, 8);
    assert_eq!(group.logged(), 0, "every standby holds what was logged");
    for m in &members[1..] {
        let (count, head) = c.with_host(m.node_id, m.origin_hash, |h| (count_of(h), *h.head()));
        assert_eq!(count, 8);
        assert_eq!(head.sequence, 8);
    }
    assert_eq!(group.synced_through(), vec![None, Some(8), Some(8)]);
    feed(&mut group, 9, 10);
    assert_eq!(group.logged(), 2);
}

#[test]
fn standby_promoted_after_the_active_dies_continues_one_chain_nothing_twice() {
    let c = Cluster::plain(3);
    let mut group = StandbyGroup::spawn(c.handle(), counter(), [8; 32], 2).unwrap();
    let origin = group.origin_hash();
    // The active holds a channel of the coordinator's (its ledger goes to
    // the standbys with the sync).
    let ticks = ChannelName::new("sensors/ticks").unwrap();
    c.coordinator
        .register_channel(&ticks, ChannelConfig::default())
        .unwrap();
    let publisher = c.coordinator.node_id();
    c.site(group.active_node())
        .runtime
        .subscribe_channel(origin, publisher, &ticks, None, None)
        .unwrap();
    let mut outputs = feed(&mut group, 1, 10);
    group.sync_standbys().unwrap();
    outputs.extend(feed(&mut group, 11, 15));
    assert_eq!(group.logged(), 5);
    let dead = group.active_node();
    c.kill(dead);
    let replaced = group.on_node_failed(dead).unwrap();
    assert_eq!(group.active_index(), 1);
    assert_eq!(
        replaced,
        vec![0],
        "the old active is re-placed as a standby"
    );
    let active = group.active_node();
    assert_ne!(active, dead);
    assert_eq!(
        group.origin_hash(),
        origin,
        "the group keeps its one origin"
    );
    // The promoted standby's node subscribed the active's channel.
    wait_until(
        || c.site(active).runtime.channel_holders(publisher, &ticks) == vec![origin],
        "the promoted standby's node to hold the channel",
    );
    assert_eq!(
        c.site(active)
            .runtime
            .channel_subscriptions(origin)
            .unwrap(),
        vec![(publisher, ticks.clone())]
    );
    // State = the last sync (10) + the 5 logged events replayed once each
    // (the counter refuses a repeated or missing sequence).
    let (count, head) = c.with_host(active, origin, |h| (count_of(h), *h.head()));
    assert_eq!(count, 15);
    assert_eq!(head.sequence, 15);
    // The replayed events re-emitted exactly the old active's links.
    let replayed: Vec<CausalEvent> = std::iter::from_fn(|| {
        c.site(active)
            .runtime
            .next_output(std::time::Duration::ZERO)
    })
    .collect();
    assert_eq!(replayed.len(), 5);
    for (new, old) in replayed.iter().zip(&outputs[10..]) {
        assert_eq!((new.link, &new.payload), (old.link, &old.payload));
    }
    // And the chain goes on from there under the same origin.
    let next = feed(&mut group, 16, 16);
    let last = outputs.last().unwrap();
    next[0]
        .link
        .validate_after(&last.link, &last.payload)
        .unwrap();
    assert_eq!(next[0].link.origin_hash, origin);
    // The re-placed standby is on the third node, synced at once.
    let members = group.members();
    assert!(distinct_nodes(members.iter().map(|m| m.node_id)));
    assert!(members.iter().all(|m| m.node_id != dead));
    assert_eq!(group.synced_through()[0], Some(15));
    assert_eq!(group.health(), GroupHealth::Healthy);
    // A standby holds none: only the active's node is subscribed.
    for m in members.iter().filter(|m| m.node_id != active) {
        assert!(
            c.site(m.node_id)
                .runtime
                .channel_holders(publisher, &ticks)
                .is_empty()
        );
    }
}

/// The promoted standby gets the channels the active held when it died,
/// not those of the last sync: one subscribed after the sync is
/// subscribed by the new active's node, one let go after it is not.
#[test]
fn a_promotion_takes_the_channels_the_active_changed_after_the_last_sync() {
    let c = Cluster::plain(3);
    let mut group = StandbyGroup::spawn(c.handle(), counter(), [12; 32], 2).unwrap();
    let origin = group.origin_hash();
    let (kept, dropped) = (
        ChannelName::new("sensors/late").unwrap(),
        ChannelName::new("sensors/early").unwrap(),
    );
    for channel in [&kept, &dropped] {
        c.coordinator
            .register_channel(channel, ChannelConfig::default())
            .unwrap();
    }
    let publisher = c.coordinator.node_id();
    let active = &c.site(group.active_node()).runtime;
    active
        .subscribe_channel(origin, publisher, &dropped, None, None)
        .unwrap();
    feed(&mut group, 1, 3);
    group.sync_standbys().unwrap();
    // After the sync: one channel more, one less.
    active
        .subscribe_channel(origin, publisher, &kept, None, None)
        .unwrap();
    active
        .unsubscribe_channel(origin, publisher, &dropped, None)
        .unwrap();
    let dead = group.active_node();
    c.kill(dead);
    group.on_node_failed(dead).unwrap();
    let promoted = &c.site(group.active_node()).runtime;
    wait_until(
        || promoted.channel_holders(publisher, &kept) == vec![origin],
        "the promoted standby's node to hold the channel subscribed after the sync",
    );
    assert!(promoted.channel_holders(publisher, &dropped).is_empty());
    assert_eq!(
        promoted.channel_subscriptions(origin).unwrap(),
        vec![(publisher, kept.clone())]
    );
    // And the new active's ledger is followed in turn: a change there is
    // what the next promotion takes.
    promoted
        .unsubscribe_channel(origin, publisher, &kept, None)
        .unwrap();
    let second = group.active_node();
    c.kill(second);
    group.on_node_failed(second).unwrap();
    assert_eq!(
        c.site(group.active_node())
            .runtime
            .channel_subscriptions(origin)
            .unwrap(),
        vec![]
    );
}

#[test]
fn standby_promotion_prefers_the_most_recent_sync_and_fails_cleanly() {
    let c = Cluster::plain(3);
    let mut group = StandbyGroup::spawn(c.handle(), counter(), [9; 32], 3).unwrap();
    feed(&mut group, 1, 4);
    group.sync_standbys().unwrap();
    feed(&mut group, 5, 6);
    // Only member 1 syncs the second time: its node's copy is newer.
    let m2 = group.members()[2].clone();
    c.kill(m2.node_id);
    c.cluster.remove(m2.node_id);
    let report = group.sync_standbys().unwrap();
    assert_eq!(report.synced, vec![1]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(group.logged(), 2, "member 2 still needs the events after 4");
    assert_eq!(group.promote().unwrap(), 1);
    let active = group.active_node();
    assert_eq!(c.with_host(active, group.origin_hash(), |h| count_of(h)), 6);
    // A group whose only standby is gone refuses to promote, unchanged.
    let mut pair = StandbyGroup::spawn(c.handle(), counter(), [10; 32], 2).unwrap();
    let standby = pair.members()[1].node_id;
    c.kill(standby);
    pair.on_node_failed(standby).unwrap();
    assert_eq!(pair.promote(), Err(GroupError::NoHealthyMember));
    assert_eq!(pair.active_index(), 0);
}

#[test]
fn a_suspected_node_that_recovers_takes_its_members_back_and_a_dead_group_refuses() {
    let c = Cluster::plain(2);
    let mut group =
        ReplicaGroup::spawn(c.handle(), tally(), [11; 32], 2, LbConfig::default()).unwrap();
    let suspect = group.members()[1].clone();
    // A false suspicion: the node is alive but reported failed, and there
    // is no spare node to re-create the member on.
    assert!(group.on_node_failed(suspect.node_id).is_empty());
    assert_eq!(
        group.health(),
        GroupHealth::Degraded {
            healthy: 1,
            total: 2
        }
    );
    let ctx = RequestContext::default();
    for seq in 1..=4 {
        assert_eq!(group.route(&ctx, event(PRODUCER, seq)).unwrap().index, 0);
    }
    assert_eq!(group.on_node_recovered(suspect.node_id), vec![1]);
    assert_eq!(group.health(), GroupHealth::Healthy);
    assert_eq!(group.members()[1], suspect);
    let other = group.members()[0].node_id;
    group.on_node_failed(suspect.node_id);
    group.on_node_failed(other);
    assert_eq!(group.health(), GroupHealth::Dead);
    assert_eq!(
        group.route(&ctx, event(PRODUCER, 5)),
        Err(GroupError::NoHealthyMember)
    );
}

#[test]
fn a_standby_group_stops_its_stale_copy_when_a_suspected_node_recovers() {
    let c = Cluster::plain(3);
    let mut group = StandbyGroup::spawn(c.handle(), counter(), [12; 32], 2).unwrap();
    let origin = group.origin_hash();
    feed(&mut group, 1, 3);
    group.sync_standbys().unwrap();
    feed(&mut group, 4, 5);
    let suspect = group.active_node();
    assert_eq!(group.on_node_failed(suspect).unwrap(), vec![0]);
    assert_ne!(group.active_node(), suspect);
    assert_eq!(c.with_host(group.active_node(), origin, |h| count_of(h)), 5);
    // The old active still runs on the suspected node: a second copy of
    // the group's identity, out of the group's hands until it recovers.
    assert!(c.site(suspect).runtime.registry().contains(origin));
    group.on_node_recovered(suspect);
    assert!(!c.site(suspect).runtime.registry().contains(origin));
    assert!(group.members().iter().all(|m| m.node_id != suspect));
    assert_eq!(c.daemons(), 2);
}

/// §9 "fork-then-migrate": a fork moves to another node with the
/// migration protocol and continues there as the same fork — its
/// identity, record, state and chain — and routing follows it; a node
/// that holds a member, or an unknown index, is refused.
#[test]
fn a_fork_migrates_and_continues_as_the_same_fork() {
    let c = Cluster::meshed(4);
    let (parent_node, _, mut group) = fork_of_counter(&c, 3, 1);
    let ctx = RequestContext::default();
    let before = group.route(&ctx, event(PRODUCER, 4)).unwrap();
    let DeliveryOutcome::Processed(first) = before.outcome else {
        panic!("the fork did not process");
    };
    let fork = group.members()[0].clone();
    let others = group.members();
    assert!(matches!(
        group.migrate_member(0, fork.node_id),
        Err(GroupError::PlacementFailed(_))
    ));
    assert!(matches!(
        group.migrate_member(9, parent_node),
        Err(GroupError::InvalidConfig(_))
    ));
    let to = c.free_node(&others);
    group.migrate_member(0, to).unwrap();
    let moved = group.members()[0].clone();
    assert_eq!(
        (moved.node_id, moved.origin_hash),
        (to, fork.origin_hash),
        "the same fork, on the new node"
    );
    assert!(
        !c.site(fork.node_id)
            .runtime
            .registry()
            .contains(fork.origin_hash)
    );
    assert!(group.verify_lineage());
    // It carries on from the parent's state plus event 4, one chain.
    let after = group.route(&ctx, event(PRODUCER, 5)).unwrap();
    assert_eq!(after.node_id, to);
    let DeliveryOutcome::Processed(next) = after.outcome else {
        panic!("the moved fork did not process");
    };
    assert_eq!(next[0].payload, 5u64.to_le_bytes());
    let last = first.last().unwrap();
    next[0]
        .link
        .validate_after(&last.link, &last.payload)
        .unwrap();
    // The same keys: the identity travelled sealed (the node had none).
    let keys = c.with_host(to, fork.origin_hash, |h| h.keypair().clone());
    assert!(keys.seed().is_ok());
}

/// §9 "active migrating via the protocol": the standby group's active
/// moves with the migration protocol; the group's one identity and chain
/// continue on the new node, the standbys keep their sync and log, and a
/// later promotion still replays each logged event once.
#[test]
fn a_standby_groups_active_migrates_and_the_group_goes_on() {
    let c = Cluster::meshed(4);
    let mut group = StandbyGroup::spawn(c.handle(), counter(), [9; 32], 2).unwrap();
    let origin = group.origin_hash();
    let mut outputs = feed(&mut group, 1, 6);
    group.sync_standbys().unwrap();
    outputs.extend(feed(&mut group, 7, 9));
    let (old, members) = (group.active_node(), group.members());
    assert!(matches!(
        group.migrate_active(members[1].node_id),
        Err(GroupError::PlacementFailed(_))
    ));
    let to = c.free_node(&members);
    group.migrate_active(to).unwrap();
    assert_eq!(group.active_node(), to);
    assert_eq!(group.origin_hash(), origin);
    assert!(!c.site(old).runtime.registry().contains(origin));
    assert_eq!(group.logged(), 3, "the log is untouched");
    let next = feed(&mut group, 10, 10);
    let last = outputs.last().unwrap();
    next[0]
        .link
        .validate_after(&last.link, &last.payload)
        .unwrap();
    let (count, head) = c.with_host(to, origin, |h| (count_of(h), *h.head()));
    assert_eq!((count, head.sequence), (10, 10));
    // The active's new node dies: the standby takes over from its sync
    // and the log, each event once (the counter refuses repeats).
    c.kill(to);
    group.on_node_failed(to).unwrap();
    let active = group.active_node();
    assert_eq!(active, members[1].node_id);
    let (count, head) = c.with_host(active, origin, |h| (count_of(h), *h.head()));
    assert_eq!((count, head.sequence), (10, 10));
}

/// Groups that follow the coordinator's failure detector themselves
/// (`watch_failures`): nobody calls `on_node_failed`; a replica whose node
/// dies is replaced, and a standby group whose active's node dies
/// promotes its standby, once the detector reports the node.
#[test]
fn watched_groups_handle_a_dead_node_by_themselves() {
    let c = Cluster::plain(4);
    let replicas = Arc::new(Mutex::new(
        ReplicaGroup::spawn(c.handle(), tally(), [10; 32], 2, LbConfig::default()).unwrap(),
    ));
    let standby = Arc::new(Mutex::new(
        StandbyGroup::spawn(c.handle(), counter(), [11; 32], 2).unwrap(),
    ));
    let every = Duration::from_millis(20);
    let _watches = [
        watch_failures(Arc::clone(&c.coordinator), Arc::clone(&replicas), every).unwrap(),
        watch_failures(Arc::clone(&c.coordinator), Arc::clone(&standby), every).unwrap(),
    ];
    let (active, origin) = {
        let mut group = standby.lock().unwrap();
        feed(&mut group, 1, 4);
        group.sync_standbys().unwrap();
        (group.active_node(), group.origin_hash())
    };
    // A node holding the active (and perhaps a replica) dies.
    let replica_nodes: Vec<u64> = replicas
        .lock()
        .unwrap()
        .members()
        .iter()
        .map(|m| m.node_id)
        .collect();
    c.kill(active);
    wait_until(
        || standby.lock().unwrap().active_node() != active,
        "the standby group to promote by itself",
    );
    let new_active = standby.lock().unwrap().active_node();
    let (count, _) = c.with_host(new_active, origin, |h| (count_of(h), *h.head()));
    assert_eq!(count, 4);
    if replica_nodes.contains(&active) {
        wait_until(
            || {
                let group = replicas.lock().unwrap();
                group.members().iter().all(|m| m.node_id != active)
                    && group.health() == GroupHealth::Healthy
            },
            "the replica group to replace its member by itself",
        );
    } else {
        // Kill a replica's node too.
        let victim = replica_nodes[0];
        c.kill(victim);
        wait_until(
            || {
                let group = replicas.lock().unwrap();
                group.members().iter().all(|m| m.node_id != victim)
                    && group.health() == GroupHealth::Healthy
            },
            "the replica group to replace its member by itself",
        );
    }
}
