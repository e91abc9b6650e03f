//! Standby groups (COMPUTE.md §3.4): one active daemon and 1–254 standbys
//! on distinct nodes, kept close to the active by snapshot syncs, and a
//! promotion when the active's node dies.
//!
//! **Coherent identity and chain** (§8 item 8; v0.11 returns the
//! standby's own origin while its outputs continue under the old active's
//! chain). Here every member of the group *is the same entity*: one
//! keypair ([`standby_keypair`]), one origin, one chain. A sync restores
//! the active's snapshot — state, chain head and head payload, horizon,
//! applied watermarks — into each standby, so a standby's chain head is
//! the active's at the sync. After promotion:
//! - the group's origin does not change (routing needs no re-resolve);
//! - the new active's chain continues the active's from the last sync:
//!   its next output is `through_seq + 1` with the parent hash of the
//!   synced head and payload, so a verifier sees one unbroken chain;
//! - the events the old active applied after the sync are replayed from
//!   the group's [`ReplayLog`] (keyed by (producer, sequence), the events
//!   above the standby's applied watermarks only), so nothing is applied
//!   twice and nothing the coordinator delivered is lost. A deterministic
//!   daemon re-emits the **same links** (same sequences, parents and
//!   payloads) for them; a consumer that saw the old active's outputs
//!   sees them again and can drop them by (origin, sequence).
//!
//! What is lost: outputs of a non-deterministic daemon for the replayed
//! events differ from the ones the old active emitted (two links at one
//! sequence — a fork a verifier detects), and events delivered to the old
//! active's node by anyone but this group never reach the log.
//!
//! The log holds what the active applied since the oldest sync of a
//! healthy standby; it is trimmed at each sync to the lowest watermarks
//! of the synced standbys.
//!
//! **Channels.** The group follows the active's subscription ledger where
//! it runs ([`GroupCluster::follow_ledger`]): a promotion gives the new
//! active the ledger the old one held when it died — channels subscribed
//! or let go after the last sync included — and its node subscribes
//! them; the old active's node, if it still answers, lets go.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::compute::daemon::CausalEvent;
use crate::compute::groups::cluster::{move_member, place_distinct};
use crate::compute::groups::members::{
    GroupHealth, MemberInfo, ReplayLog, health_of, standby_keypair,
};
use crate::compute::groups::{DaemonMaker, GroupCluster, GroupError, check_count};
use crate::compute::host::{DaemonHost, DaemonSnapshot};
use crate::compute::ledger::SubscriptionLedger;
use crate::compute::runtime::{DeliveryOutcome, LedgerFollower};
use crate::identity::EntityKeypair;
use crate::mesh::capability::CapabilityFilter;

/// What a member last synced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Synced {
    /// The synced snapshot's `through_seq`.
    through_seq: u64,
    /// Its applied watermarks (producer → sequence).
    applied: BTreeMap<u64, u64>,
    at: Option<Instant>,
}

#[derive(Debug)]
struct Member {
    info: MemberInfo,
    synced: Option<Synced>,
}

/// The outcome of [`StandbyGroup::sync_standbys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// The active's chain sequence the standbys were synced to.
    pub through_seq: u64,
    /// Standbys now at `through_seq`.
    pub synced: Vec<u8>,
    /// Standbys that failed, with why (their previous sync stands).
    pub failed: Vec<(u8, GroupError)>,
}

/// A standby group; see the module doc.
pub struct StandbyGroup {
    cluster: Arc<dyn GroupCluster>,
    make: DaemonMaker,
    filter: CapabilityFilter,
    stateful: bool,
    keypair: EntityKeypair,
    members: Vec<Member>,
    active: usize,
    log: ReplayLog,
    failed_nodes: BTreeSet<u64>,
    stale: Vec<u64>,
    /// The active's ledger as last told by the node it runs on.
    active_ledger: Arc<Mutex<Option<SubscriptionLedger>>>,
    /// The node whose runtime tells `active_ledger`, if any.
    followed_on: Option<u64>,
}

impl std::fmt::Debug for StandbyGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandbyGroup")
            .field("origin", &format_args!("{:#018x}", self.origin_hash()))
            .field("members", &self.members)
            .field("active", &self.active)
            .field("logged", &self.log.len())
            .finish_non_exhaustive()
    }
}

impl StandbyGroup {
    /// Places `count` members (2–255) on distinct nodes; member 0 is
    /// active. The standbys start synced to the active's genesis.
    ///
    /// # Errors
    /// [`GroupError::InvalidConfig`]; [`GroupError::PlacementFailed`]
    /// (nothing stays spawned); a spawn error.
    pub fn spawn(
        cluster: Arc<dyn GroupCluster>,
        make: DaemonMaker,
        group_seed: [u8; 32],
        count: usize,
    ) -> Result<Self, GroupError> {
        let count = check_count(count, 2, "standby group size")?;
        let probe = make();
        let (filter, stateful) = (probe.requirements(), probe.is_stateful());
        let mut group = Self {
            cluster,
            make,
            filter,
            stateful,
            keypair: standby_keypair(&group_seed),
            members: Vec::new(),
            active: 0,
            log: ReplayLog::new(),
            failed_nodes: BTreeSet::new(),
            stale: Vec::new(),
            active_ledger: Arc::new(Mutex::new(None)),
            followed_on: None,
        };
        for index in 0..count {
            match group.place().and_then(|node| group.start_on(node)) {
                Ok(node_id) => group.members.push(Member {
                    info: MemberInfo {
                        index,
                        origin_hash: group.keypair.origin_hash(),
                        node_id,
                        healthy: true,
                        generation: 0,
                    },
                    synced: (index != 0).then(Synced::default),
                }),
                Err(e) => {
                    let origin = group.origin_hash();
                    for member in group.members.drain(..) {
                        let _ = group.cluster.stop(member.info.node_id, origin);
                    }
                    return Err(e);
                }
            }
        }
        group.follow_active();
        Ok(group)
    }

    /// Follows the active's ledger on the node it runs on now (module doc).
    fn follow_active(&mut self) {
        let origin = self.origin_hash();
        let node = self.members[self.active].info.node_id;
        if self.followed_on == Some(node) {
            return;
        }
        if let Some(old) = self.followed_on.take() {
            self.cluster.unfollow_ledger(old, origin);
        }
        let latest = Arc::clone(&self.active_ledger);
        let follower: LedgerFollower = Arc::new(move |ledger: &SubscriptionLedger| {
            *latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(ledger.clone());
        });
        match self.cluster.follow_ledger(node, origin, follower) {
            Ok(followed) => self.followed_on = followed.then_some(node),
            Err(e) => {
                tracing::warn!(origin, node, error = %e, "the active's ledger is not followed");
            }
        }
    }

    fn place(&self) -> Result<u64, GroupError> {
        let mut excluded: BTreeSet<u64> = self.members.iter().map(|m| m.info.node_id).collect();
        excluded.extend(&self.failed_nodes);
        place_distinct(self.cluster.as_ref(), &self.filter, excluded)
    }

    /// Spawns a fresh copy of the group's daemon on `node`.
    fn start_on(&self, node: u64) -> Result<u64, GroupError> {
        let host = DaemonHost::new((self.make)(), self.keypair.clone());
        self.cluster.spawn(node, host)?;
        Ok(node)
    }

    /// The group's one origin (every member's).
    pub fn origin_hash(&self) -> u64 {
        self.keypair.origin_hash()
    }

    /// The active member's index.
    pub fn active_index(&self) -> u8 {
        self.members[self.active].info.index
    }

    /// The node the active member runs on.
    pub fn active_node(&self) -> u64 {
        self.members[self.active].info.node_id
    }

    /// Moves the active member to `node` with the migration protocol: the
    /// group's one identity and chain continue there, and the standbys,
    /// their syncs and the replay log are untouched. `node` must be in the
    /// cluster, not reported failed and hold no member of the group.
    ///
    /// # Errors
    /// [`GroupError::NoHealthyMember`] if the active is out of service;
    /// [`GroupError::PlacementFailed`] for a node it may not go to; the
    /// move's error ([`GroupError::Migration`]: it stays where it was).
    pub fn migrate_active(&mut self, node: u64) -> Result<(), GroupError> {
        move_member(
            self.cluster.as_ref(),
            &self.make,
            &self.members[self.active].info,
            node,
            &self.failed_nodes,
            self.members.iter().map(|m| m.info.node_id),
        )?;
        self.members[self.active].info.node_id = node;
        self.follow_active();
        Ok(())
    }

    /// Delivers `event` to the active member; an event it applied (or
    /// that a migration of the active buffered) is logged for the
    /// standbys.
    ///
    /// # Errors
    /// [`GroupError::NoHealthyMember`] if the active is unhealthy (its
    /// node failed and no standby could be promoted); the delivery error.
    pub fn deliver(&mut self, event: CausalEvent) -> Result<DeliveryOutcome, GroupError> {
        let active = &self.members[self.active].info;
        if !active.healthy {
            return Err(GroupError::NoHealthyMember);
        }
        let outcome = self
            .cluster
            .deliver(active.node_id, active.origin_hash, event.clone())?;
        // Processed, or kept by a migration of the active to be applied
        // once wherever it lands: either way the standbys will need it. A
        // Duplicate was logged when first applied.
        if !matches!(outcome, DeliveryOutcome::Duplicate) {
            self.log.record(event);
        }
        Ok(outcome)
    }

    /// Snapshots the active and restores the snapshot into every healthy
    /// standby. The log is trimmed to what every synced standby holds.
    ///
    /// # Errors
    /// [`GroupError::Stateless`]; the active's snapshot error (nothing
    /// changed). Standby failures are in the report.
    pub fn sync_standbys(&mut self) -> Result<SyncReport, GroupError> {
        if !self.stateful {
            return Err(GroupError::Stateless);
        }
        let active = self.members[self.active].info.clone();
        let snapshot = self.cluster.snapshot(active.node_id, active.origin_hash)?;
        let mut report = SyncReport {
            through_seq: snapshot.snapshot.through_seq,
            synced: Vec::new(),
            failed: Vec::new(),
        };
        for position in 0..self.members.len() {
            if position == self.active || !self.members[position].info.healthy {
                continue;
            }
            let index = self.members[position].info.index;
            match self.sync_one(position, &snapshot) {
                Ok(()) => report.synced.push(index),
                Err(e) => report.failed.push((index, e)),
            }
        }
        self.trim_log();
        Ok(report)
    }

    fn sync_one(&mut self, position: usize, snapshot: &DaemonSnapshot) -> Result<(), GroupError> {
        let info = &self.members[position].info;
        self.cluster
            .restore(info.node_id, info.origin_hash, snapshot)?;
        self.members[position].synced = Some(Synced {
            through_seq: snapshot.snapshot.through_seq,
            applied: snapshot.ext.applied.iter().copied().collect(),
            at: Some(Instant::now()),
        });
        Ok(())
    }

    /// Drops logged events every healthy synced standby already holds.
    fn trim_log(&mut self) {
        let standbys: Vec<&Synced> = self
            .members
            .iter()
            .enumerate()
            .filter(|(p, m)| *p != self.active && m.info.healthy)
            .filter_map(|(_, m)| m.synced.as_ref())
            .collect();
        let Some(first) = standbys.first() else {
            return;
        };
        let mut lowest = first.applied.clone();
        for synced in &standbys[1..] {
            lowest.retain(|producer, seq| {
                synced.applied.get(producer).is_some_and(|other| {
                    *seq = (*seq).min(*other);
                    true
                })
            });
        }
        self.log.trim(&lowest);
    }

    /// Makes a healthy standby the active and replays into it the logged
    /// events above its watermarks. The candidate: the synced standby with
    /// the highest `through_seq` (ties: highest index); else an unsynced
    /// one (it replays what the log still holds — events trimmed before it
    /// joined are lost to it). Returns the new active's index.
    ///
    /// # Errors
    /// [`GroupError::NoHealthyMember`] before any change;
    /// [`GroupError::Replay`] (the new active is in place, the rest of the
    /// log pending: [`replay_pending`](Self::replay_pending) resumes).
    pub fn promote(&mut self) -> Result<u8, GroupError> {
        let candidate = self
            .members
            .iter()
            .enumerate()
            .filter(|(p, m)| *p != self.active && m.info.healthy)
            .max_by_key(|(_, m)| {
                (
                    m.synced.is_some(),
                    m.synced.as_ref().map_or(0, |s| s.through_seq),
                    m.info.index,
                )
            })
            .map(|(p, _)| p)
            .ok_or(GroupError::NoHealthyMember)?;
        let old = self.active;
        self.active = candidate;
        // The old active applied everything logged: as a standby it is
        // unsynced until the next sync.
        self.members[old].synced = None;
        self.members[candidate]
            .synced
            .get_or_insert_with(Synced::default);
        // The channels the active held (its ledger, synced with its state)
        // move to the new active's node; the old one's node, if it still
        // answers, lets go.
        let origin = self.keypair.origin_hash();
        let (from, to) = (
            self.members[old].info.node_id,
            self.members[candidate].info.node_id,
        );
        if let Err(e) = self.cluster.release_channels(from, origin) {
            tracing::debug!(origin, node = from, error = %e, "the old active's channels not let go");
        }
        // What the old active held last, if its node told us: newer than
        // the standby's ledger from the last sync.
        if self.followed_on == Some(from) {
            self.cluster.unfollow_ledger(from, origin);
            self.followed_on = None;
            let latest = self
                .active_ledger
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(ledger) = latest
                && let Err(e) = self.cluster.set_ledger(to, origin, &ledger)
            {
                tracing::warn!(origin, node = to, error = %e, "the active's last ledger not given to the promoted standby");
            }
        }
        if let Err(e) = self.cluster.bind_channels(to, origin) {
            tracing::warn!(origin, node = to, error = %e, "the promoted standby's channels not subscribed");
        }
        self.follow_active();
        self.replay_pending()?;
        Ok(self.active_index())
    }

    /// Replays into the active the logged events above its watermarks,
    /// in order, raising them as it goes.
    ///
    /// # Errors
    /// [`GroupError::Replay`] at the first failure (the failed event and
    /// the rest stay pending).
    pub fn replay_pending(&mut self) -> Result<usize, GroupError> {
        let active = self.members[self.active].info.clone();
        let marks = self.members[self.active]
            .synced
            .as_ref()
            .map(|s| s.applied.clone())
            .unwrap_or_default();
        let mut replayed = 0;
        for event in self.log.after(&marks) {
            let key = (event.producer(), event.sequence());
            match self
                .cluster
                .deliver(active.node_id, active.origin_hash, event)
            {
                Ok(_) => {
                    replayed += 1;
                    if let Some(synced) = self.members[self.active].synced.as_mut() {
                        synced.applied.insert(key.0, key.1);
                    }
                }
                Err(e) => {
                    let error = match e {
                        GroupError::Daemon(d) => d,
                        other => crate::compute::DaemonError::ProcessFailed(other.to_string()),
                    };
                    return Err(GroupError::Replay { replayed, error });
                }
            }
        }
        Ok(replayed)
    }

    /// `node` failed: its members turn unhealthy; if the active was there
    /// a standby is promoted ([`promote`](Self::promote)); then each
    /// affected member is re-created on another node and synced from the
    /// active at once. Returns the indices re-created.
    ///
    /// # Errors
    /// The promotion's error (no member was re-created).
    pub fn on_node_failed(&mut self, node: u64) -> Result<Vec<u8>, GroupError> {
        self.failed_nodes.insert(node);
        let mut hit_active = false;
        for (position, member) in self.members.iter_mut().enumerate() {
            if member.info.node_id == node && member.info.healthy {
                member.info.healthy = false;
                hit_active |= position == self.active;
                self.stale.push(node);
            }
        }
        if hit_active {
            self.promote()?;
        }
        let snapshot = {
            let active = &self.members[self.active].info;
            self.cluster
                .snapshot(active.node_id, active.origin_hash)
                .ok()
        };
        let mut replaced = Vec::new();
        for position in 0..self.members.len() {
            if self.members[position].info.healthy || position == self.active {
                continue;
            }
            let Ok(node_id) = self.place().and_then(|n| self.start_on(n)) else {
                continue;
            };
            let member = &mut self.members[position];
            member.info.node_id = node_id;
            member.info.healthy = true;
            member.info.generation = member.info.generation.saturating_add(1);
            member.synced = None;
            if let Some(snapshot) = &snapshot {
                // A failed sync leaves it unsynced; the next sync retries.
                let _ = self.sync_one(position, snapshot);
            }
            replaced.push(self.members[position].info.index);
        }
        Ok(replaced)
    }

    /// `node` is back: it may hold members again, and the copies of the
    /// group's daemon left there are stopped (a copy of the group's
    /// identity must never run outside the group's knowledge).
    pub fn on_node_recovered(&mut self, node: u64) {
        self.failed_nodes.remove(&node);
        let origin = self.origin_hash();
        let in_use = self.members.iter().any(|m| m.info.node_id == node);
        if self.stale.contains(&node) && !in_use && self.cluster.stop(node, origin).is_ok() {
            self.stale.retain(|n| *n != node);
        }
    }

    /// The members, by index.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.members.iter().map(|m| m.info.clone()).collect()
    }

    /// `through_seq` each member last synced (`None`: the active, or a
    /// standby not synced since it was placed or demoted), by index.
    pub fn synced_through(&self) -> Vec<Option<u64>> {
        self.members
            .iter()
            .enumerate()
            .map(|(p, m)| {
                (p != self.active)
                    .then(|| m.synced.as_ref().map(|s| s.through_seq))
                    .flatten()
            })
            .collect()
    }

    /// When each member last synced, by index.
    pub fn last_sync(&self) -> Vec<Option<Instant>> {
        self.members
            .iter()
            .map(|m| m.synced.as_ref().and_then(|s| s.at))
            .collect()
    }

    /// Events logged for the standbys.
    pub fn logged(&self) -> usize {
        self.log.len()
    }

    /// Healthy / Degraded / Dead.
    pub fn health(&self) -> GroupHealth {
        health_of(&self.members())
    }
}

impl Drop for StandbyGroup {
    fn drop(&mut self) {
        let origin = self.origin_hash();
        if let Some(node) = self.followed_on {
            self.cluster.unfollow_ledger(node, origin);
        }
        for member in &self.members {
            if member.info.healthy {
                let _ = self.cluster.stop(member.info.node_id, origin);
            }
        }
    }
}
