//! Node metadata and status (COMPUTE.md §4.2): what a node says about
//! itself (status, tags, custom fields, addresses, region), bounded, with a
//! versioned store.
//!
//! Departs from v0.11 (§8 item 14): [`MetadataStore::update_versioned`] is
//! one compare-and-set under the store's lock — the version is checked and
//! the new record written in the same critical section, so two racing
//! updaters from the same version cannot both win (v0.11 checks, releases,
//! then upserts). Versions must move forward: an update carrying a version
//! not above the stored one is refused, so a late, older record never
//! overwrites a newer one.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

/// Longest string (tag, key, value, address, region).
pub const MAX_STRING_LEN: usize = 1_024;
/// Most tags.
pub const MAX_TAGS: usize = 256;
/// Most custom fields.
pub const MAX_CUSTOM: usize = 256;
/// Most addresses.
pub const MAX_ADDRESSES: usize = 256;

/// A node's lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeStatus {
    /// Serving normally.
    Online,
    /// Serving with reduced capacity.
    Degraded,
    /// Finishing its work, taking no new work.
    Draining,
    /// Out of service on purpose.
    Maintenance,
    /// Not reachable.
    Offline,
    /// Coming up.
    #[default]
    Starting,
    /// Going down.
    ShuttingDown,
}

impl NodeStatus {
    /// Routing priority (higher preferred): Online 5, Degraded 3, Starting
    /// 2, Draining 1, the others 0.
    pub fn routing_priority(self) -> u8 {
        match self {
            Self::Online => 5,
            Self::Degraded => 3,
            Self::Starting => 2,
            Self::Draining => 1,
            Self::Maintenance | Self::Offline | Self::ShuttingDown => 0,
        }
    }

    /// Whether the node takes work (Online or Degraded).
    pub fn accepts_work(self) -> bool {
        matches!(self, Self::Online | Self::Degraded)
    }
}

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeMetadata {
    /// The node.
    pub node_id: u64,
    /// Monotonic version of this record (set by the node).
    pub version: u64,
    /// Status.
    pub status: NodeStatus,
    /// Labels.
    pub tags: Vec<String>,
    /// Free-form fields.
    pub custom: BTreeMap<String, String>,
    /// Addresses it can be reached at.
    pub addresses: Vec<String>,
    /// Region label.
    pub region: Option<String>,
    /// When the record was made, ns since the Unix epoch.
    pub updated_ns: u64,
}

/// Why a record or an update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A bound of the record is broken.
    #[error("metadata {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The stored version is not the one the update expected.
    #[error("version conflict: expected {expected}, stored {stored:?}")]
    VersionConflict {
        /// What the caller expected (0: no record).
        expected: u64,
        /// What is stored (None: no record).
        stored: Option<u64>,
    },
    /// The new record's version does not move forward.
    #[error("version {new} is not above {current}")]
    StaleVersion {
        /// The new record's version.
        new: u64,
        /// The stored one.
        current: u64,
    },
}

fn check_strings<'a>(
    field: &'static str,
    items: impl ExactSizeIterator<Item = &'a String>,
    max: usize,
) -> Result<(), MetadataError> {
    if items.len() > max {
        return Err(MetadataError::Invalid {
            field,
            reason: format!("{} entries, more than {max}", items.len()),
        });
    }
    for s in items {
        if s.len() > MAX_STRING_LEN {
            return Err(MetadataError::Invalid {
                field,
                reason: format!("an entry of {} bytes, more than {MAX_STRING_LEN}", s.len()),
            });
        }
    }
    Ok(())
}

impl NodeMetadata {
    /// Checks every bound.
    ///
    /// # Errors
    /// [`MetadataError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), MetadataError> {
        check_strings("tags", self.tags.iter(), MAX_TAGS)?;
        check_strings("addresses", self.addresses.iter(), MAX_ADDRESSES)?;
        check_strings("custom keys", self.custom.keys(), MAX_CUSTOM)?;
        check_strings("custom values", self.custom.values(), MAX_CUSTOM)?;
        check_strings("region", self.region.iter(), 1)?;
        Ok(())
    }
}

/// Node records by node id. Shareable; every method takes `&self`.
#[derive(Debug, Default)]
pub struct MetadataStore {
    nodes: RwLock<HashMap<u64, NodeMetadata>>,
}

impl MetadataStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `record` if its version is above the stored one (or none is
    /// stored).
    ///
    /// # Errors
    /// [`MetadataError::Invalid`]; [`MetadataError::StaleVersion`].
    pub fn upsert(&self, record: NodeMetadata) -> Result<(), MetadataError> {
        record.validate()?;
        let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(current) = nodes.get(&record.node_id)
            && record.version <= current.version
        {
            return Err(MetadataError::StaleVersion {
                new: record.version,
                current: current.version,
            });
        }
        nodes.insert(record.node_id, record);
        Ok(())
    }

    /// Stores `record` only if the stored version is `expected_version`
    /// (0: no record stored), atomically: check and write happen under one
    /// lock, so of two updaters from the same version exactly one wins.
    ///
    /// # Errors
    /// [`MetadataError::VersionConflict`]; [`MetadataError::StaleVersion`]
    /// when `record.version` is not above `expected_version`;
    /// [`MetadataError::Invalid`].
    pub fn update_versioned(
        &self,
        expected_version: u64,
        record: NodeMetadata,
    ) -> Result<(), MetadataError> {
        record.validate()?;
        if record.version <= expected_version {
            return Err(MetadataError::StaleVersion {
                new: record.version,
                current: expected_version,
            });
        }
        let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        let stored = nodes.get(&record.node_id).map(|m| m.version);
        if stored.unwrap_or(0) != expected_version {
            return Err(MetadataError::VersionConflict {
                expected: expected_version,
                stored,
            });
        }
        nodes.insert(record.node_id, record);
        Ok(())
    }

    /// A node's record.
    pub fn get(&self, node_id: u64) -> Option<NodeMetadata> {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node_id)
            .cloned()
    }

    /// Removes a node's record.
    pub fn remove(&self, node_id: u64) -> Option<NodeMetadata> {
        self.nodes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&node_id)
    }

    /// The nodes that accept work, best routing priority first (ties by
    /// node id).
    pub fn working_nodes(&self) -> Vec<NodeMetadata> {
        let mut out: Vec<NodeMetadata> = self
            .nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| m.status.accepts_work())
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            b.status
                .routing_priority()
                .cmp(&a.status.routing_priority())
                .then(a.node_id.cmp(&b.node_id))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn record(node_id: u64, version: u64, status: NodeStatus) -> NodeMetadata {
        NodeMetadata {
            node_id,
            version,
            status,
            ..NodeMetadata::default()
        }
    }

    #[test]
    fn statuses_route_as_specified() {
        let p: Vec<u8> = [
            NodeStatus::Online,
            NodeStatus::Degraded,
            NodeStatus::Draining,
            NodeStatus::Maintenance,
            NodeStatus::Offline,
            NodeStatus::Starting,
            NodeStatus::ShuttingDown,
        ]
        .iter()
        .map(|s| s.routing_priority())
        .collect();
        assert_eq!(p, vec![5, 3, 1, 0, 0, 2, 0]);
        assert!(NodeStatus::Degraded.accepts_work());
        assert!(!NodeStatus::Draining.accepts_work());
    }

    #[test]
    fn versions_only_move_forward() {
        let store = MetadataStore::new();
        store.upsert(record(1, 5, NodeStatus::Online)).unwrap();
        assert_eq!(
            store.upsert(record(1, 5, NodeStatus::Offline)),
            Err(MetadataError::StaleVersion { new: 5, current: 5 })
        );
        assert_eq!(
            store.update_versioned(4, record(1, 6, NodeStatus::Degraded)),
            Err(MetadataError::VersionConflict {
                expected: 4,
                stored: Some(5)
            })
        );
        store
            .update_versioned(5, record(1, 6, NodeStatus::Degraded))
            .unwrap();
        assert_eq!(store.get(1).unwrap().status, NodeStatus::Degraded);
        store
            .update_versioned(0, record(2, 1, NodeStatus::Online))
            .unwrap();
        let working: Vec<u64> = store.working_nodes().iter().map(|m| m.node_id).collect();
        assert_eq!(working, vec![2, 1]);
    }

    #[test]
    fn bounds_are_enforced_naming_the_field() {
        let mut m = record(1, 1, NodeStatus::Online);
        m.tags = vec!["t".into(); MAX_TAGS + 1];
        assert!(matches!(
            m.validate(),
            Err(MetadataError::Invalid { field: "tags", .. })
        ));
        m.tags.clear();
        m.region = Some("r".repeat(MAX_STRING_LEN + 1));
        assert!(matches!(
            m.validate(),
            Err(MetadataError::Invalid {
                field: "region",
                ..
            })
        ));
        let json = r#"{"node_id": 1, "version": 2, "status": "draining", "colour": 1}"#;
        assert!(serde_json::from_str::<NodeMetadata>(json).is_err());
    }

    #[test]
    fn racing_versioned_updates_have_exactly_one_winner() {
        for _ in 0..50 {
            let store = Arc::new(MetadataStore::new());
            store.upsert(record(7, 1, NodeStatus::Online)).unwrap();
            let start = Arc::new(Barrier::new(8));
            let winners: usize = (0..8)
                .map(|i| {
                    let (store, start) = (store.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        let mut r = record(7, 2, NodeStatus::Degraded);
                        r.tags = vec![format!("writer-{i}")];
                        store.update_versioned(1, r).is_ok()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| usize::from(t.join().unwrap()))
                .sum();
            assert_eq!(winners, 1);
        }
    }
}
