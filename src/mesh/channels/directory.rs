//! How the hub asks the node about its peers when it re-checks
//! subscribers (publish, sweep, config changes).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::authorize::{PeerContext, PeerKind};
use super::subnet::SubnetId;
use crate::identity::EntityId;

/// The node's current knowledge of its peers.
pub trait PeerDirectory {
    /// What is known of `node_id`, or `None` when it has no peer record.
    fn peer(&self, node_id: u64) -> Option<PeerContext<'_>>;
}

/// Owned facts about one peer: a simple directory entry for glue and tests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerFacts {
    /// Its proved or pinned entity.
    pub entity: Option<EntityId>,
    /// Its subnet.
    pub subnet: SubnetId,
    /// Its announced tags (`None`: never announced).
    pub capabilities: Option<BTreeSet<String>>,
    /// Net or v0.11.
    pub kind: PeerKind,
}

impl PeerFacts {
    /// The decision context for `node_id`.
    pub fn context(&self, node_id: u64) -> PeerContext<'_> {
        PeerContext {
            node_id,
            entity: self.entity,
            subnet: Some(self.subnet),
            capabilities: self
                .capabilities
                .as_ref()
                .map(|c| c as &dyn super::Capabilities),
            kind: self.kind,
        }
    }
}

impl PeerDirectory for HashMap<u64, PeerFacts> {
    fn peer(&self, node_id: u64) -> Option<PeerContext<'_>> {
        self.get(&node_id).map(|f| f.context(node_id))
    }
}

impl PeerDirectory for BTreeMap<u64, PeerFacts> {
    fn peer(&self, node_id: u64) -> Option<PeerContext<'_>> {
        self.get(&node_id).map(|f| f.context(node_id))
    }
}
