//! Daemon placement (COMPUTE.md §1.5): where to spawn a daemon, or where
//! to migrate it, by its capability requirements and the nodes' load.
//!
//! Pure: the caller passes the candidates — this node, and the peers of
//! the capability index ([`candidates_from_index`]) — each with a load
//! figure (daemons hosted, queue depth, whatever the application
//! measures; lower is better).
//!
//! Departures from v0.11 (§8 item 9), whose choice among several matches
//! is the first element of a hash set:
//! - among the matching nodes the **least loaded** wins; ties go to this
//!   node, then to the lower node_id — the same inputs always give the
//!   same answer;
//! - migration targets must announce the `subprotocol:0x0500` tag (v0.11
//!   never adds it automatically; [`MIGRATION_TAG`] is what a node running
//!   a [`ComputeRuntime`](crate::compute::ComputeRuntime) should announce),
//!   the source is excluded, and the list comes back ordered by preference.

use std::collections::BTreeSet;

use crate::mesh::capability::{CapabilityFilter, CapabilitySet, IndexedNode};

/// The tag of nodes that accept migrations.
pub const MIGRATION_TAG: &str = "subprotocol:0x0500";

/// A node that may host a daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The node.
    pub node_id: u64,
    /// What it announced (this node: what it would announce).
    pub capabilities: CapabilitySet,
    /// Its load; lower is preferred.
    pub load: u64,
}

/// Why a node was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlacementReason {
    /// This node matches and no other matching node is less loaded.
    LocalPreferred,
    /// The only node that matches.
    OnlyCandidate,
    /// The least loaded of several matching nodes.
    LeastLoaded,
}

/// A placement decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The chosen node.
    pub node_id: u64,
    /// Why.
    pub reason: PlacementReason,
}

/// Why no node was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// No candidate satisfies the requirements.
    #[error("no node satisfies the daemon's requirements")]
    NoCandidate,
}

/// Places daemons for one node.
#[derive(Debug, Clone)]
pub struct Scheduler {
    local: Candidate,
}

impl Scheduler {
    /// A scheduler for the node `local`.
    pub fn new(local: Candidate) -> Self {
        Self { local }
    }

    /// This node's entry (update its load as daemons come and go).
    pub fn local_mut(&mut self) -> &mut Candidate {
        &mut self.local
    }

    /// Where to spawn a daemon requiring `filter`, among this node and
    /// `remote`.
    ///
    /// # Errors
    /// [`PlacementError::NoCandidate`].
    pub fn place<'a>(
        &'a self,
        filter: &CapabilityFilter,
        remote: impl IntoIterator<Item = &'a Candidate>,
    ) -> Result<Placement, PlacementError> {
        self.place_excluding(filter, remote, &BTreeSet::new())
    }

    /// [`place`](Self::place) among the nodes not in `excluded` (this node
    /// included, unless excluded): how a group spreads its members over
    /// distinct nodes.
    ///
    /// # Errors
    /// [`PlacementError::NoCandidate`] if every matching node is excluded
    /// or none matches.
    pub fn place_excluding<'a>(
        &'a self,
        filter: &CapabilityFilter,
        remote: impl IntoIterator<Item = &'a Candidate>,
        excluded: &BTreeSet<u64>,
    ) -> Result<Placement, PlacementError> {
        let local = std::iter::once(&self.local);
        let matching: Vec<&Candidate> = local
            .chain(
                remote
                    .into_iter()
                    .filter(|c| c.node_id != self.local.node_id),
            )
            .filter(|c| !excluded.contains(&c.node_id))
            .filter(|c| filter.matches(&c.capabilities))
            .collect();
        self.choose(&matching)
    }

    /// Nodes a daemon requiring `filter` may migrate to from `source`,
    /// most preferred first: they announce [`MIGRATION_TAG`], match, and
    /// are not the source. This node qualifies like any other.
    pub fn migration_targets<'a>(
        &'a self,
        filter: &CapabilityFilter,
        source: u64,
        remote: impl IntoIterator<Item = &'a Candidate>,
    ) -> Vec<u64> {
        let local = std::iter::once(&self.local);
        let mut matching: Vec<&Candidate> = local
            .chain(
                remote
                    .into_iter()
                    .filter(|c| c.node_id != self.local.node_id),
            )
            .filter(|c| c.node_id != source)
            .filter(|c| c.capabilities.tags.iter().any(|t| t == MIGRATION_TAG))
            .filter(|c| filter.matches(&c.capabilities))
            .collect();
        matching.sort_by_key(|c| self.rank(c));
        matching.dedup_by_key(|c| c.node_id);
        matching.into_iter().map(|c| c.node_id).collect()
    }

    /// The first of [`migration_targets`](Self::migration_targets).
    ///
    /// # Errors
    /// [`PlacementError::NoCandidate`].
    pub fn place_migration<'a>(
        &'a self,
        filter: &CapabilityFilter,
        source: u64,
        remote: impl IntoIterator<Item = &'a Candidate>,
    ) -> Result<Placement, PlacementError> {
        let targets = self.migration_targets(filter, source, remote);
        let node_id = *targets.first().ok_or(PlacementError::NoCandidate)?;
        let reason = match (targets.len(), node_id == self.local.node_id) {
            (_, true) => PlacementReason::LocalPreferred,
            (1, false) => PlacementReason::OnlyCandidate,
            _ => PlacementReason::LeastLoaded,
        };
        Ok(Placement { node_id, reason })
    }

    fn rank(&self, c: &Candidate) -> (u64, bool, u64) {
        (c.load, c.node_id != self.local.node_id, c.node_id)
    }

    fn choose(&self, matching: &[&Candidate]) -> Result<Placement, PlacementError> {
        let best = matching
            .iter()
            .min_by_key(|c| self.rank(c))
            .ok_or(PlacementError::NoCandidate)?;
        let reason = if best.node_id == self.local.node_id {
            PlacementReason::LocalPreferred
        } else if matching.len() == 1 {
            PlacementReason::OnlyCandidate
        } else {
            PlacementReason::LeastLoaded
        };
        Ok(Placement {
            node_id: best.node_id,
            reason,
        })
    }
}

/// Candidates from the live entries of a capability index, with the load
/// `load_of(node_id)` reports.
pub fn candidates_from_index<'a>(
    live: impl IntoIterator<Item = &'a IndexedNode>,
    load_of: impl Fn(u64) -> u64,
) -> Vec<Candidate> {
    live.into_iter()
        .map(|entry| Candidate {
            node_id: entry.announcement.node_id,
            capabilities: entry.announcement.capabilities.clone(),
            load: load_of(entry.announcement.node_id),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(node_id: u64, load: u64, tags: &[&str]) -> Candidate {
        Candidate {
            node_id,
            capabilities: CapabilitySet {
                tags: tags.iter().map(|t| (*t).to_string()).collect(),
                ..CapabilitySet::default()
            },
            load,
        }
    }

    #[test]
    fn the_least_loaded_matching_node_wins_deterministically() {
        let scheduler = Scheduler::new(node(1, 5, &["gpu"]));
        let remote = [node(3, 2, &["gpu"]), node(2, 2, &["gpu"]), node(4, 0, &[])];
        let gpu = CapabilityFilter::new().with_tag("gpu");
        let chosen = scheduler.place(&gpu, &remote).unwrap();
        assert_eq!(
            chosen,
            Placement {
                node_id: 2,
                reason: PlacementReason::LeastLoaded
            }
        );
        // Same inputs, any order: same answer.
        let reversed: Vec<_> = remote.iter().rev().cloned().collect();
        assert_eq!(scheduler.place(&gpu, &reversed).unwrap(), chosen);
        // The empty filter matches the idle node 4.
        assert_eq!(
            scheduler
                .place(&CapabilityFilter::new(), &remote)
                .unwrap()
                .node_id,
            4
        );
    }

    #[test]
    fn excluded_nodes_are_never_chosen() {
        let scheduler = Scheduler::new(node(1, 0, &[]));
        let remote = [node(2, 1, &[]), node(3, 2, &[])];
        let any = CapabilityFilter::new();
        let chosen = |excluded: &[u64]| {
            scheduler
                .place_excluding(&any, &remote, &excluded.iter().copied().collect())
                .map(|p| p.node_id)
        };
        assert_eq!(chosen(&[]), Ok(1));
        assert_eq!(chosen(&[1]), Ok(2));
        assert_eq!(chosen(&[1, 2]), Ok(3));
        assert_eq!(chosen(&[1, 2, 3]), Err(PlacementError::NoCandidate));
    }

    #[test]
    fn local_wins_ties_and_only_candidates_are_named() {
        let scheduler = Scheduler::new(node(1, 2, &["gpu"]));
        let remote = [node(2, 2, &["gpu"]), node(3, 0, &["tpu"])];
        let gpu = CapabilityFilter::new().with_tag("gpu");
        assert_eq!(
            scheduler.place(&gpu, &remote).unwrap().reason,
            PlacementReason::LocalPreferred
        );
        let tpu = CapabilityFilter::new().with_tag("tpu");
        assert_eq!(
            scheduler.place(&tpu, &remote).unwrap(),
            Placement {
                node_id: 3,
                reason: PlacementReason::OnlyCandidate
            }
        );
        let fpga = CapabilityFilter::new().with_tag("fpga");
        assert_eq!(
            scheduler.place(&fpga, &remote),
            Err(PlacementError::NoCandidate)
        );
    }

    #[test]
    fn migration_targets_need_the_tag_and_exclude_the_source() {
        let scheduler = Scheduler::new(node(1, 9, &[MIGRATION_TAG]));
        let remote = [
            node(2, 1, &[MIGRATION_TAG]),
            node(3, 0, &[]),
            node(4, 3, &[MIGRATION_TAG]),
            node(1, 0, &[MIGRATION_TAG]), // our own entry in the index: ignored
        ];
        let any = CapabilityFilter::new();
        assert_eq!(scheduler.migration_targets(&any, 2, &remote), vec![4, 1]);
        assert_eq!(scheduler.migration_targets(&any, 1, &remote), vec![2, 4]);
        assert_eq!(
            scheduler.place_migration(&any, 9, &remote).unwrap(),
            Placement {
                node_id: 2,
                reason: PlacementReason::LeastLoaded
            }
        );
        let lonely = Scheduler::new(node(1, 0, &[]));
        assert_eq!(
            lonely.place_migration(&any, 1, &remote[..2]),
            Ok(Placement {
                node_id: 2,
                reason: PlacementReason::OnlyCandidate
            })
        );
        assert_eq!(
            lonely.place_migration(&any, 2, &remote[1..2]),
            Err(PlacementError::NoCandidate)
        );
    }
}
